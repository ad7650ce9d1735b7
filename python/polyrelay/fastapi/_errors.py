"""polyrelay errors as HTTP answers: the status table, fixed public texts,
and the handler that logs each failed call's details (its attempt trail)
with the request id."""

from __future__ import annotations

import logging
import math
from typing import Dict, Optional, Tuple, Type

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..exceptions import (
    AllProvidersFailedError,
    ContentFilteredError,
    ContextLengthExceededError,
    Error,
    InvalidRequestError,
    LimitReachedError,
    NotFoundError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitedError,
    StreamInterruptedError,
    TimeoutError,
    TokenError,
)
from ._auth import token_refused
from ._limits import _Refused
from ._request_id import request_id
from ._responses import json_error
from ._security import _BodyTooLarge

_log = logging.getLogger("polyrelay.fastapi")

#: ``Retry-After`` when a 429 has no better estimate.
_DEFAULT_RETRY_AFTER = 60


def _retry_after(error: Error, default: Optional[int]) -> Optional[str]:
    if error.retry_after is not None:
        return str(max(1, math.ceil(error.retry_after)))
    return None if default is None else str(default)


#: Error class → status, public message and default ``Retry-After``; the
#: first matching row wins, so subclasses come before their bases.
_TABLE: Tuple[Tuple[Type[Error], int, str, Optional[int]], ...] = (
    (InvalidRequestError, 422, "the request's parameters are invalid", None),
    (ContentFilteredError, 422, "the request was refused by a content policy", None),
    (ContextLengthExceededError, 422, "the prompt is too long for every model", None),
    (LimitReachedError, 422, "the assistant reached its limit before answering", None),
    (StreamInterruptedError, 502, "the upstream stream was interrupted", None),
    (RateLimitedError, 429, "too many requests; retry later", _DEFAULT_RETRY_AFTER),
    (QuotaExhaustedError, 429, "quota used up; retry later", _DEFAULT_RETRY_AFTER),
    (TimeoutError, 504, "the upstream service did not answer in time", None),
    (ProviderError, 502, "the upstream service failed", None),
    (AllProvidersFailedError, 503, "the upstream service is unavailable", None),
    (NotFoundError, 404, "not found", None),
)


def _outage(error: Error) -> bool:
    """Whether every provider tried was simply down (connection refused,
    timed out, 5xx): the service is unavailable (503), not answered badly
    (502)."""
    tried = [a for a in error.attempts if a.tries > 0]
    return all(a.outcome == "transient" for a in tried)


def _public(error: Error) -> Tuple[int, str, Optional[int]]:
    """Status, fixed public message and default ``Retry-After`` of a
    provider-side error (not a token error)."""
    for cls, status, message, default_wait in _TABLE:
        if isinstance(error, cls):
            if isinstance(error, ProviderError) and _outage(error):
                return 503, "the upstream service is unavailable", default_wait
            return status, message, default_wait
    return 500, "internal error", None


def error_response(error: Error) -> JSONResponse:
    """The HTTP answer for a polyrelay error: a status from the table above
    and a body of fixed texts (plus ``field``/``expected`` for 422, which
    describe the caller's own input, and the ``request_id``). Anything else
    is a 500."""
    if isinstance(error, TokenError):
        refused_status, challenge = token_refused(error)
        return json_error(refused_status, error.kind, str(error), challenge)
    status, message, default_wait = _public(error)
    if status == 500:
        return json_error(500, "internal", message)
    extra: Dict[str, object] = {}
    headers: Dict[str, str] = {}
    wait = _retry_after(error, default_wait) if status in (429, 503) else None
    if wait is not None:
        headers["Retry-After"] = wait
        extra["retry_after"] = int(wait)
    if isinstance(error, InvalidRequestError):
        extra["field"] = error.field
        extra["expected"] = error.expected
    return json_error(status, error.kind, message, headers, **extra)


async def _handle(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, Error):  # pragma: no cover - registered for Error only
        raise error
    # The details (the message holds the attempt trail, provider statuses)
    # are for operators; the request id ties this line to the answer the
    # caller got.
    _log.warning(
        "%s %s failed [request %s]: %s (%s)",
        request.method,
        request.url.path,
        request_id() or "-",
        error.kind,
        error,
    )
    return error_response(error)


async def _refused(request: Request, error: Exception) -> JSONResponse:
    """The kit's own refusals (rate limits, lockouts, a body too large)
    raised inside FastAPI, with the kit's JSON body."""
    if isinstance(error, _Refused):
        headers = dict(error.headers or {})
        wait = int(headers.get("Retry-After", "1"))
        return json_error(429, error.kind, str(error.detail), headers, retry_after=wait)
    if isinstance(error, _BodyTooLarge):
        return json_error(413, "body_too_large", str(error.detail))
    raise error  # pragma: no cover - registered for those two only


def add_exception_handlers(app: FastAPI) -> None:
    """Answers every polyrelay error raised by a route with
    :func:`error_response`, and the kit's refusals (429, 413) with the same
    JSON body."""
    app.add_exception_handler(Error, _handle)
    app.add_exception_handler(_Refused, _refused)
    app.add_exception_handler(_BodyTooLarge, _refused)
