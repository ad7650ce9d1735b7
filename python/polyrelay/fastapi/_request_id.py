"""The request id: the caller's ``X-Request-ID`` when it is safe to echo
(1 to 128 letters, digits and ``-._:``), else a new one; echoed in the
response, kept in a context variable for the request's duration, added to
log records by :class:`RequestIdFilter` and to every JSON error body."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Optional

from ._asgi import ASGIApp, Message, Receive, Scope, Send

#: The header read and echoed.
HEADER = "X-Request-ID"

_SAFE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_current: ContextVar[Optional[str]] = ContextVar("polyrelay_request_id", default=None)


def request_id() -> Optional[str]:
    """The id of the request being served, or ``None`` outside one."""
    return _current.get()


def _accepted(value: Optional[bytes]) -> str:
    if value is not None:
        text = value.decode("latin-1")
        if _SAFE.fullmatch(text):
            return text
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """ASGI middleware giving each HTTP request an id (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        rid = _accepted(incoming)
        token = _current.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _current.reset(token)


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id`` (``"-"`` outside a request) so a format
    can show it: ``%(request_id)s``. Attach it to handlers (a filter on a
    handler sees the records of every logger it handles)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _current.get() or "-"
        return True
