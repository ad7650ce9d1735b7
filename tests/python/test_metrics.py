"""Prometheus metrics: ``/metrics`` of the FastAPI kit served by a real
uvicorn, parsed with the Prometheus client library's own parser, after
calls that succeed, fail and hit the cache; ``polyrelay.metrics`` alone."""

from __future__ import annotations

from typing import Any, Callable, ContextManager, Dict, Tuple

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

import polyrelay
from polyrelay.fastapi import ClientDep, harden, lifespan
from polyrelay.metrics import CONTENT_TYPE, render
from polyrelay.testing import Emulator, Fault

KEY = "sk-metrics-python-secret-4b1d"

CONFIG = {
    "defaults": {"retry": {"max_attempts": 1}},
    "capabilities": {
        "weather.current": {"chain": ["open-meteo"]},
        "finance.fx_rates": {"chain": ["frankfurter"]},
        "llm.chat": {"chain": ["openai"]},
    },
}

#: The conftest fixture running an app on a real uvicorn.
Serve = Callable[[FastAPI], ContextManager[httpx.Client]]


def kit_app(**options: Any) -> FastAPI:
    app = FastAPI(lifespan=lifespan(lambda: polyrelay.AsyncClient(CONFIG)))
    harden(app, **options)
    return app


def samples(text: str) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    """Every sample of ``text``, by name and sorted labels."""
    found: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def metrics_app() -> FastAPI:
    app = kit_app(metrics=True)

    @app.get("/weather")
    async def weather(client: ClientDep) -> Any:
        return (await client.call("weather.current", lat=52.5, lon=13.4)).data

    @app.get("/fx")
    async def fx(client: ClientDep) -> Any:
        return (await client.call("finance.fx_rates", base="EUR", symbols=["JPY"])).data

    @app.get("/chat")
    async def chat(client: ClientDep) -> Any:
        reply = await client.call("llm.chat", messages=[{"role": "user", "content": "Hi"}])
        return reply.data

    return app


def test_metrics_route_counts_successes_failures_and_cache_hits(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, serve: Serve
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    emu.fault_always("/frankfurter/*", Fault.status(503))
    with serve(metrics_app()) as http:
        for _ in range(3):  # 1 answer, then 2 from the cache
            assert http.get("/weather").status_code == 200
        assert http.get("/fx").status_code == 503
        assert http.get("/chat").status_code == 200
        scraped = http.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"] == CONTENT_TYPE
    text = scraped.text
    assert KEY not in text and "python-secret" not in text
    found = samples(text)

    calls = "polyrelay_calls_total"
    weather, fx, chat = "weather.current", "finance.fx_rates", "llm.chat"
    assert value(found, calls, capability=weather, outcome="success") == 1
    assert value(found, calls, capability=weather, outcome="cached") == 2
    assert value(found, calls, capability=fx, outcome="provider_error") == 1
    assert value(found, calls, capability=chat, outcome="success") == 1
    assert sum(v for (name, _), v in found.items() if name == calls) == 5
    assert value(found, "polyrelay_cache_hits_total", capability=weather) == 2
    assert value(found, "polyrelay_call_duration_seconds_count", capability=weather) == 3
    assert value(found, "polyrelay_call_duration_seconds_bucket", capability=fx, le="+Inf") == 1
    assert value(found, "polyrelay_overhead_duration_seconds_count", capability=chat) == 1

    attempts = "polyrelay_provider_attempts_total"
    assert value(found, attempts, provider="open-meteo", outcome="success") == 1
    assert value(found, attempts, provider="openai", outcome="success") == 1
    assert value(found, attempts, provider="frankfurter", outcome="transient") >= 1
    assert value(found, "polyrelay_upstream_request_duration_seconds_count", provider="openai") == 1
    assert value(found, "polyrelay_tokens_total", provider="openai", direction="input") > 0
    assert (
        value(
            found,
            "polyrelay_breaker_state",
            provider="open-meteo",
            capability=weather,
            state="closed",
        )
        == 1
    )
    assert value(found, "polyrelay_redis_degraded") == 0


def test_metrics_route_is_off_unless_asked(emu: Emulator, serve: Serve) -> None:
    with serve(kit_app()) as http:
        assert http.get("/metrics").status_code == 404


def test_render_is_the_clients_text(emu: Emulator) -> None:
    with polyrelay.Client(CONFIG) as client:
        client.call("weather.current", lat=1.0, lon=2.0)
        found = samples(render(client))
    assert value(found, "polyrelay_calls_total", capability="weather.current", outcome="success") == 1
