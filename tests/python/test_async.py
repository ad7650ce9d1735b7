"""The asyncio client: every public function, cancellation, contextvars,
and an event loop that never blocks on Rust work."""

from __future__ import annotations

import asyncio
import contextvars
import time
from pathlib import Path

import pytest

import polyrelay
from polyrelay.testing import Emulator, Fault

BERLIN = {"lat": 52.52, "lon": 13.41}


async def test_call_acall_and_the_typed_helpers(aclient: polyrelay.AsyncClient) -> None:
    result = await aclient.call("weather.current", **BERLIN)
    assert (result.provider, result.cached) == ("open-meteo", False)
    again = await aclient.acall("weather.current", **BERLIN)
    assert again.cached and again.data == result.data
    forecast = await aclient.weather.forecast(lat=52.52, lon=13.41, days=2)
    assert forecast.capability == "weather.forecast"
    by_city = await aclient.weather.current(city="Berlin")
    assert by_city.capability == "weather.current"
    rates = await aclient.finance.fx_rates(base="EUR", symbols="USD,GBP")
    assert set(rates.data["rates"]) >= {"USD", "GBP"}
    prices = await aclient.crypto.price(assets="BTC", vs_currencies=["USD", "EUR"])
    assert len(prices.data["quotes"]) == 2


async def test_introspection_context_manager_and_close(emu: Emulator, tmp_path: Path) -> None:
    toml = '[capabilities."weather.current"]\nchain = ["wttr-in"]\n'
    (tmp_path / "polyrelay.toml").write_text(toml)
    async with polyrelay.AsyncClient.from_file(tmp_path / "polyrelay.toml") as from_file:
        assert from_file.chain("weather.current") == ["wttr-in"]
    async with polyrelay.AsyncClient.from_toml(toml) as client:
        assert client.chain("weather.current") == ["wttr-in"]
        assert (await client.weather.current(**BERLIN)).provider == "wttr-in"
        assert client.health()["capabilities"]["weather.current"]["status"] == "healthy"
        assert client.stats()["wttr-in"]["requests"] == 1
        assert any(p["id"] == "wttr-in" and p["enabled"] for p in client.providers())
        assert not client.closed
    assert client.closed
    with pytest.raises(polyrelay.UsageError):
        await client.call("weather.current", **BERLIN)
    other = polyrelay.AsyncClient.from_env()
    await other.aclose()
    assert other.closed and "closed" in repr(other)


async def test_fallback_and_errors_arrive_as_exceptions(aclient: polyrelay.AsyncClient, emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.status(502))
    result = await aclient.weather.current(**BERLIN)
    assert result.provider == "met-norway"
    assert [a.outcome for a in result.attempts] == ["transient", "success"]
    for provider in ("met-norway", "wttr-in"):
        emu.fault_always(f"/{provider}/*", Fault.status(503))
    with pytest.raises(polyrelay.ProviderError) as caught:
        await aclient.weather.current(lat=1, lon=1)
    assert len(caught.value.attempts) == 3
    with pytest.raises(polyrelay.InvalidRequestError):
        await aclient.weather.current(lat=1)


async def test_cancelling_the_task_cancels_the_http_request(aclient: polyrelay.AsyncClient, emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.hang())
    task = asyncio.create_task(aclient.weather.current(**BERLIN))
    await asyncio.to_thread(emu.wait_for_requests, "/open-meteo/*", 1, 5.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The emulator sees the connection closed before it answered.
    abandoned = await asyncio.to_thread(emu.wait_for_closed_early, "/open-meteo/*", 1, 5.0)
    assert abandoned[0].closed_early
    # Cancelled, not moved on to the next provider.
    assert emu.hits("/met-norway/*") == 0


async def test_a_timeout_from_asyncio_wait_for_cancels_too(aclient: polyrelay.AsyncClient, emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.hang())
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(aclient.weather.current(**BERLIN), timeout=0.2)
    await asyncio.to_thread(emu.wait_for_closed_early, "/open-meteo/*", 1, 5.0)


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


async def test_contextvars_are_preserved_across_calls(aclient: polyrelay.AsyncClient) -> None:
    async def handler(name: str) -> tuple[str, str]:
        request_id.set(name)
        await aclient.weather.current(lat=10.0 + len(name), lon=10.0)
        await asyncio.sleep(0)
        return name, request_id.get()

    results = await asyncio.gather(*(handler(n) for n in ("a", "bb", "ccc", "dddd")))
    assert all(sent == seen for sent, seen in results)


async def test_the_event_loop_keeps_running_while_calls_wait(aclient: polyrelay.AsyncClient, emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.latency(0.4))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    results = await asyncio.gather(*(aclient.weather.current(lat=float(i), lon=0.0) for i in range(8)))
    elapsed = time.perf_counter() - started
    ticking.cancel()
    assert all(r.provider == "open-meteo" for r in results)
    assert elapsed < 2.0, "the eight slow calls ran concurrently"
    assert ticks >= 10, f"the loop was blocked: only {ticks} ticks in {elapsed:.2f} s"


async def test_a_rust_panic_in_an_awaitable_is_a_polyrelay_error() -> None:
    from polyrelay import _native

    with pytest.raises(polyrelay.Error) as caught:
        await _native._panic(True)
    assert type(caught.value) is polyrelay.Error
    assert caught.value.kind == "internal"
    assert "panic" in str(caught.value)
