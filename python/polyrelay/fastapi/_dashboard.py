"""A read-only dashboard: one self-contained page and the JSON snapshot it
polls, composed from the app client's ``health()``, ``stats()`` and
``analytics()``."""

from __future__ import annotations

import ipaddress
import math
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Optional, Sequence

from fastapi import APIRouter, HTTPException, Request
from fastapi.params import Depends
from fastapi.responses import HTMLResponse, JSONResponse

from .._client import AsyncClient
from ..exceptions import ConfigError
from ._client import app_client
from ._dashboard_page import render_page

__all__ = ["dashboard_router", "dashboard_snapshot", "loopback_only"]

#: The snapshot route's name, for ``request.url_for``.
_SNAPSHOT_ROUTE = "polyrelay_dashboard_snapshot"

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _content_security_policy(nonce: str) -> str:
    """Nothing but the page's own nonce-bearing style and script, and
    fetches of its own origin (the snapshot)."""
    return (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


async def dashboard_snapshot(client: AsyncClient, *, window_hours: int = 24) -> Dict[str, Any]:
    """What the dashboard page shows, from ``client``: ``capabilities``,
    ``groups``, ``budgets``, ``state_backend``, ``redis_degraded`` and
    ``config_warnings`` as :meth:`~polyrelay.AsyncClient.health` gives
    them; ``providers`` as :meth:`~polyrelay.AsyncClient.stats` gives them
    (breaker states, quota left; never a key); ``analytics`` (the
    recorder's :meth:`~polyrelay.AsyncClient.analytics_status`); ``hours``:
    the :meth:`~polyrelay.AsyncClient.analytics` rows by hour over the last
    ``window_hours``; and ``generated_at``, ``window_hours``."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    # The current hour counts whole, so the window starts on an hour.
    since = now.replace(minute=0, second=0) - timedelta(hours=window_hours - 1)
    health = client.health()
    return {
        "generated_at": now.isoformat().replace("+00:00", "Z"),
        "window_hours": window_hours,
        "state_backend": health.get("state_backend"),
        "redis_degraded": bool(health.get("redis_degraded")),
        "config_warnings": list(health.get("config_warnings", [])),
        "capabilities": health.get("capabilities", {}),
        "groups": health.get("groups", {}),
        "budgets": health.get("budgets", {}),
        "providers": dict(client.stats()),
        "analytics": client.analytics_status(),
        "hours": list(await client.analytics("hour", since=since)),
    }


def dashboard_router(
    *,
    prefix: str = "/dashboard",
    refresh_seconds: float = 5.0,
    window_hours: int = 24,
    title: str = "polyrelay",
    dependencies: Optional[Sequence[Depends]] = None,
) -> APIRouter:
    """A router serving the dashboard: ``GET {prefix}`` the page,
    ``GET {prefix}/snapshot`` the JSON it polls every ``refresh_seconds``
    (:func:`dashboard_snapshot` of the app's client, opened by
    :func:`~polyrelay.fastapi.lifespan`). Read-only: GET routes only (other
    methods answer 405). ``app.include_router(dashboard_router())``.

    The page: health per capability and per provider (ready, or
    unavailable and why), circuit breaker states, quotas left, the cache
    hit ratio, and calls, failures and latency (p50, p95) per hour over the
    last ``window_hours`` from the analytics store. It is self-contained
    (inline style and script under a strict Content-Security-Policy with a
    per-answer nonce; no external resource) and shows no key: only what
    ``health()``, ``stats()`` and ``analytics()`` expose.

    It does show traffic, provider names and configuration problems: keep
    it to operators. ``dependencies`` guard both routes, e.g.
    ``[Depends(loopback_only)]`` (see :func:`loopback_only`) or your own
    check; a bearer-token dependency does not suit a page a browser opens
    directly."""
    if not (isinstance(refresh_seconds, (int, float)) and math.isfinite(refresh_seconds)
            and refresh_seconds >= 0.1):
        raise ConfigError("the refresh interval must be at least 0.1 s", field="refresh_seconds")
    if not (isinstance(window_hours, int) and 1 <= window_hours <= 24 * 31):
        raise ConfigError("the window must be 1 to 744 hours", field="window_hours")
    if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
        raise ConfigError("the prefix must start with / and not end with one", field="prefix")
    router = APIRouter(prefix=prefix, dependencies=list(dependencies or ()))

    @router.get("" if prefix else "/", include_in_schema=False, response_class=HTMLResponse)
    async def page(request: Request) -> HTMLResponse:
        nonce = secrets.token_urlsafe(18)
        html = render_page(
            title=title,
            nonce=nonce,
            snapshot_path=request.url_for(_SNAPSHOT_ROUTE).path,
            refresh_seconds=refresh_seconds,
        )
        headers = {**_HEADERS, "Content-Security-Policy": _content_security_policy(nonce)}
        return HTMLResponse(html, headers=headers)

    @router.get("/snapshot", name=_SNAPSHOT_ROUTE, include_in_schema=False)
    async def snapshot(request: Request) -> JSONResponse:
        body = await dashboard_snapshot(app_client(request), window_hours=window_hours)
        body["refresh_seconds"] = refresh_seconds
        return JSONResponse(body, headers=_HEADERS)

    return router


def is_loopback(host: Optional[str]) -> bool:
    """Whether ``host`` is an address of this machine's loopback."""
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback  # ::ffff:127.0.0.1 from a dual-stack socket
    return address.is_loopback


async def loopback_only(request: Request) -> None:
    """A dependency refusing (403) requests that do not come from this
    machine, or that came through a proxy (``Forwarded`` or
    ``X-Forwarded-For`` present: behind a local reverse proxy every
    request comes from loopback)."""
    client = request.client
    proxied = "forwarded" in request.headers or "x-forwarded-for" in request.headers
    if proxied or not is_loopback(client.host if client else None):
        raise HTTPException(status_code=403, detail="the dashboard is served to this machine only")
