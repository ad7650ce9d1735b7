"""``GET /metrics``: the app client's Prometheus text."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..metrics import CONTENT_TYPE, render
from ._client import app_client


def add_metrics_route(app: FastAPI, path: str = "/metrics") -> None:
    """``GET /metrics`` (``path``): the app client's metrics in the
    Prometheus text format (see :mod:`polyrelay.metrics`). Rendered on a
    worker thread, as it writes the pending call records first. The series
    name capabilities and providers (never a key), but show traffic:
    expose the route to the scraper only, or leave it off."""

    @app.get(path, include_in_schema=False)
    async def metrics(request: Request) -> Response:
        text = await run_in_threadpool(render, app_client(request))
        return Response(text, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
