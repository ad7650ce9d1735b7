"""The JSON error body every answer of the kit has."""

from __future__ import annotations

from typing import Dict, Mapping, Optional

from fastapi.responses import JSONResponse

from ._request_id import request_id


def json_error(
    status: int,
    kind: str,
    message: str,
    headers: Optional[Mapping[str, str]] = None,
    **extra: object,
) -> JSONResponse:
    """``{"error": kind, "message": text, ...}`` with the request id (when
    serving a request) as ``request_id``."""
    body: Dict[str, object] = {"error": kind, "message": message, **extra}
    rid = request_id()
    if rid is not None:
        body["request_id"] = rid
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))
