"""Liveness and readiness probes from ``client.health()``."""

from __future__ import annotations

from typing import Any, Dict, Sequence

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .._native import capabilities
from ..exceptions import ConfigError
from ._client import app_client

_NO_STORE = {"Cache-Control": "no-store"}


def readiness(health: Dict[str, Any], critical: Sequence[str]) -> Dict[str, Any]:
    """Whether an app whose ``critical`` capabilities are those given is
    ready, from a client's ``health()``: each has a provider that would be
    tried now, and Redis (when the client uses it) answers. Statuses only:
    no provider names or reasons (they stay in ``health()``)."""
    known = health.get("capabilities", {})
    statuses = {
        name: "ready" if known.get(name, {}).get("ready") else "unavailable" for name in critical
    }
    uses_redis = health.get("state_backend") == "redis"
    redis = ("degraded" if health.get("redis_degraded") else "ok") if uses_redis else "unused"
    ready = all(status == "ready" for status in statuses.values()) and redis != "degraded"
    return {"status": "ready" if ready else "unavailable", "capabilities": statuses, "redis": redis}


def add_health_routes(
    app: FastAPI,
    *,
    critical: Sequence[str] = (),
    live_path: str = "/healthz",
    ready_path: str = "/readyz",
) -> None:
    """``GET /healthz``: 200 while the process serves requests (liveness).
    ``GET /readyz``: 200 when every capability in ``critical`` (e.g.
    ``["llm.chat", "weather.current"]``) has a provider that would be tried
    now (not every one without a key, benched or behind an open breaker)
    and Redis answers when configured; else 503, so a load balancer sends
    traffic elsewhere. Both answer from memory (``client.health()``), never
    calling a provider. Unknown capability names raise
    :class:`~polyrelay.exceptions.ConfigError` here."""
    names = {entry["name"] for entry in capabilities()}
    unknown = [name for name in critical if name not in names]
    if unknown:
        raise ConfigError(f"unknown critical capabilities: {', '.join(unknown)}", field="critical")
    wanted = tuple(critical)

    @app.get(live_path, include_in_schema=False)
    async def live() -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    @app.get(ready_path, include_in_schema=False)
    async def ready(request: Request) -> JSONResponse:
        answer = readiness(app_client(request).health(), wanted)
        status = 200 if answer["status"] == "ready" else 503
        return JSONResponse(answer, status_code=status, headers=_NO_STORE)
