"""CORS with safe defaults, security headers and a request-body size limit."""

from __future__ import annotations

import re
from typing import List, Sequence, Tuple

from fastapi import FastAPI, HTTPException
from starlette.middleware.cors import CORSMiddleware

from ..exceptions import ConfigError
from ._asgi import ASGIApp, Message, Receive, Scope, Send
from ._responses import json_error

#: ``scheme://host[:port]``, as browsers send ``Origin``.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")

#: Response headers a browser script may read: the request id and the
#: rate-limit fields.
_EXPOSED = ("X-Request-ID", "Retry-After", "RateLimit", "RateLimit-Policy")


def add_cors(
    app: FastAPI,
    origins: Sequence[str],
    *,
    allow_credentials: bool = False,
    methods: Sequence[str] = ("GET", "POST", "PUT", "PATCH", "DELETE"),
    headers: Sequence[str] = ("Authorization", "Content-Type", "X-Request-ID"),
    max_age: int = 600,
) -> None:
    """Lets browser pages from ``origins`` (exact ``scheme://host[:port]``
    strings) call the app. ``"*"`` (any origin) is accepted only without
    credentials; with ``allow_credentials`` every origin must be named, as
    browsers refuse a wildcard with credentials and echoing any origin back
    would let every site act with the user's cookies. Bad settings raise
    :class:`~polyrelay.exceptions.ConfigError` at start-up."""
    if isinstance(origins, str):
        origins = [origins]
    if not origins:
        raise ConfigError("CORS needs at least one allowed origin", field="origins")
    for origin in origins:
        if origin == "*":
            if allow_credentials:
                raise ConfigError(
                    "CORS cannot allow any origin (\"*\") with credentials: name the origins",
                    field="origins",
                )
            if len(origins) > 1:
                raise ConfigError('"*" must be the only origin when given', field="origins")
        elif not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"CORS origin {origin!r} must be scheme://host[:port], without a path",
                field="origins",
            )
    if "*" in methods or "*" in headers:
        raise ConfigError("CORS methods and headers must be listed, not \"*\"", field="cors")
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_credentials=allow_credentials,
        allow_methods=list(methods),
        allow_headers=list(headers),
        expose_headers=list(_EXPOSED),
        max_age=max_age,
    )


class SecurityHeadersMiddleware:
    """ASGI middleware adding security headers to every HTTP answer (those
    a route set itself are kept)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts: bool = False,
        content_security_policy: str = "frame-ancestors 'none'",
        no_store_paths: Sequence[str] = ("/auth",),
    ) -> None:
        self.app = app
        self.no_store_paths = tuple(no_store_paths)
        self.headers: List[Tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"content-security-policy", content_security_policy.encode()),
        ]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = list(self.headers)
        if scope["path"].startswith(self.no_store_paths):
            added.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                missing = [(k, v) for k, v in added if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *missing]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_security_headers(
    app: FastAPI,
    *,
    hsts: bool = False,
    content_security_policy: str = "frame-ancestors 'none'",
    no_store_paths: Sequence[str] = ("/auth",),
) -> None:
    """Adds to every answer ``X-Content-Type-Options: nosniff``,
    ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer`` and a
    ``Content-Security-Policy`` (default ``frame-ancestors 'none'``, which
    leaves FastAPI's ``/docs`` working); ``Cache-Control: no-store`` under
    ``no_store_paths`` (tokens must not be cached); and
    ``Strict-Transport-Security`` when ``hsts`` (only when every client
    reaches the app over HTTPS, as browsers then refuse plain HTTP for a
    year)."""
    app.add_middleware(
        SecurityHeadersMiddleware,
        hsts=hsts,
        content_security_policy=content_security_policy,
        no_store_paths=tuple(no_store_paths),
    )


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passed the limit; FastAPI passes
    HTTP exceptions through its body parsing, and the middleware answers
    it."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="request body too large")


class BodySizeLimitMiddleware:
    """ASGI middleware refusing bodies over ``max_bytes`` with 413: at once
    from ``Content-Length``, else as soon as the streamed chunks pass it,
    without reading the rest."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    too_large = True
                if too_large:
                    await self._refuse(scope, receive, send)
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = json_error(
            413, "body_too_large", "request body too large", max_bytes=self.max_bytes
        )
        await refusal(scope, receive, send)


def add_body_limit(app: FastAPI, max_bytes: int = 1_000_000) -> None:
    """Refuses request bodies over ``max_bytes`` (default 1 MB) with 413."""
    if max_bytes < 0:
        raise ConfigError("the body limit must not be negative", field="max_bytes")
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_bytes)
