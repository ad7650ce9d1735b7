"""FastAPI integration: one client per app, bearer-token auth, polyrelay
errors as clean HTTP answers, and the hardening a public API needs. Needs
the ``fastapi`` extra (``pip install 'polyrelay[fastapi]'``).

::

    from fastapi import Depends, FastAPI
    from polyrelay.fastapi import ClientDep, harden, lifespan, require_user

    app = FastAPI(lifespan=lifespan(auth=issuer))
    harden(app, cors_origins=["https://app.example"], per_address="120/min",
           per_user="60/min", critical=["weather.current"])

    @app.get("/weather")
    async def weather(city: str, client: ClientDep, user=Depends(require_user(["weather"]))):
        return (await client.weather.current(city=city)).data

:func:`harden` installs, outermost first: the request id
(:func:`add_request_id`), security headers (:func:`add_security_headers`),
CORS (:func:`add_cors`), the body-size limit (:func:`add_body_limit`), the
per-address rate limit (:func:`add_rate_limits`, whose per-user limit
:func:`require_user` charges), the error handlers
(:func:`add_exception_handlers`) and ``/healthz`` and ``/readyz``
(:func:`add_health_routes`), and ``/metrics`` when asked
(:func:`add_metrics_route`, ``harden(..., metrics=True)``). Each can be
used on its own.
:class:`LoginGuard` protects a login route.

Status codes: a refused token 401 (``WWW-Authenticate: Bearer`` with
``error="invalid_token"``, RFC 6750 §3), a missing scope 403
(``error="insufficient_scope"``), a body over the limit 413, invalid
parameters 422, a prompt a provider refused on content grounds 422 (a fixed
text: the prompt and the provider's reason are not echoed), too many
requests (inbound limits, a locked-out login) or providers rate limited or
out of quota 429 with ``Retry-After``, providers answering with something
unusable (a malformed body, a refused request) 502, no provider able to
answer otherwise (down, 5xx, timeouts, circuits open) 503 (with
``Retry-After`` when known), the call's deadline 504. Bodies are
``{"error": kind, "message": text, "request_id": id}`` with fixed texts:
provider names, attempt trails, key variables and tracebacks stay in the
server log, on a line naming the same request id.

Request ids: the core's call API takes no caller tag, so the id is tied to
a call's trail by the kit's error handler, which logs the trail with the
id, and by :class:`RequestIdFilter` on the app's own log records; the
core's own events (logged from its runtime threads) do not carry it.

Dashboard: :func:`dashboard_router` serves a read-only page of health,
circuit breakers, quotas left and hourly analytics (``polyrelay
dashboard`` serves it alone)::

    app.include_router(dashboard_router(dependencies=[Depends(loopback_only)]))

Streaming: :func:`stream_response` answers with a streamed chat reply as
server-sent events, OpenAI's ``chat.completion.chunk`` format by default::

    @app.post("/chat/stream")
    async def chat_stream(body: Chat, client: ClientDep):
        return await stream_response(client.llm.stream(messages=body.messages))
"""

from __future__ import annotations

from typing import Optional, Sequence

try:
    from fastapi import FastAPI
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        "polyrelay.fastapi needs FastAPI: pip install 'polyrelay[fastapi]'"
    ) from missing

from .._native import FakeClock
from ._auth import TokenAuthority, require_user
from ._client import ClientDep, app_client, lifespan, polyrelay_client
from ._dashboard import dashboard_router, dashboard_snapshot, loopback_only
from ._errors import add_exception_handlers, error_response
from ._health import add_health_routes, readiness
from ._metrics import add_metrics_route
from ._limits import (
    AddressRateLimitMiddleware,
    LoginGuard,
    RateSpec,
    add_rate_limits,
    client_address,
    rate_limit_headers,
)
from ._request_id import RequestIdFilter, RequestIdMiddleware, request_id
from ._responses import json_error
from ._security import (
    BodySizeLimitMiddleware,
    SecurityHeadersMiddleware,
    add_body_limit,
    add_cors,
    add_security_headers,
)
from ._streaming import StreamFormat, assistant_response, stream_response

__all__ = [
    "AddressRateLimitMiddleware",
    "BodySizeLimitMiddleware",
    "ClientDep",
    "LoginGuard",
    "RateSpec",
    "RequestIdFilter",
    "RequestIdMiddleware",
    "SecurityHeadersMiddleware",
    "StreamFormat",
    "TokenAuthority",
    "add_body_limit",
    "add_cors",
    "add_exception_handlers",
    "add_health_routes",
    "add_metrics_route",
    "add_rate_limits",
    "add_request_id",
    "add_security_headers",
    "app_client",
    "assistant_response",
    "client_address",
    "dashboard_router",
    "dashboard_snapshot",
    "error_response",
    "harden",
    "json_error",
    "lifespan",
    "loopback_only",
    "polyrelay_client",
    "rate_limit_headers",
    "readiness",
    "request_id",
    "require_user",
    "stream_response",
]


def add_request_id(app: FastAPI) -> None:
    """Gives every request an id (``X-Request-ID``); add it last, so that
    it is outermost and every answer, refusals included, carries it."""
    app.add_middleware(RequestIdMiddleware)


def harden(
    app: FastAPI,
    *,
    cors_origins: Sequence[str] = (),
    cors_credentials: bool = False,
    max_body_bytes: int = 1_000_000,
    per_address: Optional[RateSpec] = None,
    per_user: Optional[RateSpec] = None,
    redis_url: Optional[str] = None,
    trusted_proxies: int = 0,
    hsts: bool = False,
    critical: Sequence[str] = (),
    clock: Optional[FakeClock] = None,
    metrics: bool = False,
) -> None:
    """Every protection of the kit, in the right order (see the module):
    CORS only when ``cors_origins`` are given; rate limits only when rates
    are; the health routes always (``critical`` as in
    :func:`add_health_routes`); ``/metrics`` only with ``metrics=True``
    (off by default: it shows traffic, so a public app exposes it to its
    scraper alone). Call it once, after creating the app and before it
    starts."""
    add_exception_handlers(app)
    add_health_routes(app, critical=critical)
    if metrics:
        add_metrics_route(app)
    # Starlette runs the middleware added last first: innermost first here.
    add_rate_limits(
        app,
        per_address=per_address,
        per_user=per_user,
        redis_url=redis_url,
        trusted_proxies=trusted_proxies,
        clock=clock,
    )
    add_body_limit(app, max_body_bytes)
    if cors_origins:
        add_cors(app, cors_origins, allow_credentials=cors_credentials)
    add_security_headers(app, hsts=hsts)
    add_request_id(app)
