"""``batch``: many calls at once on both clients, results in input order,
concurrency really bounded, failures raised or returned in place, a
progress bar."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any, Dict, List

import pytest

import polyrelay
from polyrelay.testing import Emulator, Fault

#: Only open-meteo, so every weather call is one request upstream.
OPEN_METEO_ONLY = {"capabilities": {"weather.current": {"chain": ["open-meteo"]}}}


def places(count: int, start: float = 0.0) -> List[Dict[str, Any]]:
    return [{"lat": start + i, "lon": 13.41} for i in range(count)]


def upstream_latitudes(emu: Emulator) -> List[float]:
    return sorted(
        float(r.query_param("latitude") or "nan") for r in emu.requests("/open-meteo/*")
    )


def test_results_come_back_in_input_order(emu: Emulator) -> None:
    with polyrelay.Client(OPEN_METEO_ONLY) as client:
        client.call("weather.current", lat=2.0, lon=13.41)  # item 2 is now cached
        emu.clear_log()
        results = client.batch("weather.current", places(6), concurrency=3)
    assert [r.cached for r in results] == [False, False, True, False, False, False]
    assert all(r.capability == "weather.current" for r in results)
    assert upstream_latitudes(emu) == [0.0, 1.0, 3.0, 4.0, 5.0], "each other item sent once"


def test_concurrency_bounds_the_requests_in_flight_upstream(emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.latency(0.02))
    with polyrelay.Client(OPEN_METEO_ONLY) as client:
        for concurrency in (1, 4):
            emu.reset_peak_in_flight()
            results = client.batch(
                "weather.current", places(12, start=10.0 * concurrency), concurrency=concurrency
            )
            assert len(results) == 12
            if concurrency == 1:
                assert emu.peak_in_flight == 1
            else:
                assert 1 < emu.peak_in_flight <= concurrency


def test_the_first_failure_is_raised_and_the_calls_still_running_are_cancelled(
    emu: Emulator,
) -> None:
    # The first request hangs; the second, sent while it hangs, fails.
    emu.fault_next("/open-meteo/*", Fault.hang())
    emu.fault_next("/open-meteo/*", Fault.status(404))
    emu.fault_always("/open-meteo/*", Fault.hang())
    with polyrelay.Client(OPEN_METEO_ONLY) as client:
        with pytest.raises(polyrelay.NotFoundError):
            client.batch("weather.current", places(5), concurrency=2)
    emu.wait_for_closed_early("/open-meteo/*", count=1)
    assert emu.hits("/open-meteo/*") == 2, "nothing was started after the failure"


def test_return_exceptions_puts_each_failure_in_its_place(emu: Emulator) -> None:
    emu.fault_next("/open-meteo/*", Fault.status(404))
    params = [{"lat": 1.0, "lon": 2.0}, {"lat": "north", "lon": 2.0}, None, {"lat": 3.0, "lon": 4.0}]
    with polyrelay.Client(OPEN_METEO_ONLY) as client:
        results = client.batch("weather.current", params, concurrency=1, return_exceptions=True)
    assert isinstance(results[0], polyrelay.NotFoundError)
    assert isinstance(results[1], polyrelay.InvalidRequestError)
    assert results[1].field == "lat"
    assert isinstance(results[2], polyrelay.InvalidRequestError), "no parameters at all"
    assert isinstance(results[3], polyrelay.Result)
    assert emu.hits("/open-meteo/*") == 2, "invalid items are never sent"


def test_invalid_parameters_are_raised_before_anything_is_sent(emu: Emulator) -> None:
    with polyrelay.Client(OPEN_METEO_ONLY) as client:
        with pytest.raises(polyrelay.InvalidRequestError):
            client.batch("weather.current", [*places(3), {"lat": "north"}])
        with pytest.raises(polyrelay.InvalidRequestError, match="concurrency"):
            client.batch("weather.current", places(2), concurrency=0)
        with pytest.raises(polyrelay.InvalidRequestError, match="concurrency"):
            client.batch("weather.current", places(2), concurrency=-3)
        with pytest.raises(TypeError, match="batch item 1"):
            client.batch("weather.current", [places(1)[0], "Berlin"])  # type: ignore[list-item]
        assert client.batch("weather.current", []) == []
    assert emu.hits("*") == 0


def test_a_progress_bar_on_request_and_none_by_default_off_a_terminal(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    with polyrelay.Client(OPEN_METEO_ONLY) as client:
        client.batch("weather.current", places(3))
        assert capsys.readouterr().err == "", "stderr is no terminal here"
        client.batch("weather.current", places(5, start=10.0), progress=True)
        err = capsys.readouterr().err
        assert "weather.current" in err and "5/5" in err and err.endswith("\n")
        client.batch("weather.current", places(2), progress=False)
        assert capsys.readouterr().err == ""


INTERRUPTED_BATCH = textwrap.dedent(
    """
    import sys, time, polyrelay
    client = polyrelay.Client({"capabilities": {"weather.current": {"chain": ["open-meteo"]}}})
    try:
        client.batch("weather.current", [{"lat": i, "lon": 2.0} for i in range(6)],
                     concurrency=2, progress=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        time.sleep(3)
    """
)


def test_ctrl_c_cancels_a_blocked_batch_and_its_requests(emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.hang())
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_BATCH],
        env={**os.environ, "POLYRELAY_EMULATOR_URL": emu.url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        emu.wait_for_requests("/open-meteo/*", 2, 20.0)
        child.send_signal(signal.SIGINT)
        sent = time.perf_counter()
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "interrupted"
        assert time.perf_counter() - sent < 2.0
        closed = emu.wait_for_closed_early("/open-meteo/*", 2, 2.0)
        assert child.poll() is None, "the calls were cancelled while the child ran on"
        assert len(closed) == 2 and emu.hits("/open-meteo/*") == 2
    finally:
        child.kill()
        child.communicate()


async def test_async_batch_in_order_and_bounded(emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.latency(0.02))
    async with polyrelay.AsyncClient(OPEN_METEO_ONLY) as client:
        await client.call("weather.current", lat=3.0, lon=13.41)
        emu.reset_peak_in_flight()
        results = await client.batch("weather.current", places(10), concurrency=3)
        assert [r.cached for r in results] == [i == 3 for i in range(10)]
        assert 1 < emu.peak_in_flight <= 3
        again = await client.abatch("weather.current", places(2), progress=True)
        assert [r.cached for r in again] == [True, True]


async def test_async_batch_failures_raised_or_returned(emu: Emulator) -> None:
    async with polyrelay.AsyncClient(OPEN_METEO_ONLY) as client:
        emu.fault_next("/open-meteo/*", Fault.status(404))
        results = await client.batch(
            "weather.current", places(3), concurrency=1, return_exceptions=True
        )
        assert [type(r).__name__ for r in results] == ["NotFoundError", "Result", "Result"]
        emu.fault_next("/open-meteo/*", Fault.status(404))
        with pytest.raises(polyrelay.NotFoundError):
            await client.batch("weather.current", places(3, start=50.0), concurrency=1)


@pytest.mark.parametrize("progress", [False, True])
async def test_cancelling_an_async_batch_cancels_its_calls(emu: Emulator, progress: bool) -> None:
    emu.fault_always("/open-meteo/*", Fault.hang())
    async with polyrelay.AsyncClient(OPEN_METEO_ONLY) as client:
        task = asyncio.ensure_future(
            client.batch("weather.current", places(6), concurrency=2, progress=progress)
        )
        await asyncio.to_thread(emu.wait_for_requests, "/open-meteo/*", 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        closed = await asyncio.to_thread(emu.wait_for_closed_early, "/open-meteo/*", 2)
    assert len(closed) == 2
    assert emu.hits("/open-meteo/*") == 2
