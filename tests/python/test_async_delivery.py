"""How async results reach the event loop: in batches through a socket the
loop watches, answered inline when the first poll finishes the call, and
through ``call_soon_threadsafe`` on loops that cannot watch sockets."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, List

import polyrelay
from polyrelay.testing import Emulator, Fault

BERLIN = {"lat": 52.52, "lon": 13.41}
WEATHER = {"capabilities": {"weather.current": {"chain": ["open-meteo", "met-norway", "wttr-in"]}}}
#: Weather answers; fx rates fail (their only provider is made to answer 404).
MIXED = {
    "cache": {"enabled": False},
    "capabilities": {"finance.fx_rates": {"chain": ["frankfurter"]}, **WEATHER["capabilities"]},
}


async def test_a_cache_hit_is_answered_before_the_first_await(aclient: polyrelay.AsyncClient) -> None:
    await aclient.call("weather.current", **BERLIN)
    pending = aclient._native.acall("weather.current", dict(BERLIN))
    assert asyncio.isfuture(pending) and pending.done()
    assert (await pending).cached


async def _mixed_batch(client: polyrelay.AsyncClient, count: int) -> List[Any]:
    """``count`` concurrent calls, every other one failing."""
    calls = [
        client.call("weather.current", lat=float(i % 80), lon=1.0)
        if i % 2 == 0
        else client.call("finance.fx_rates", base="EUR", symbols="USD")
        for i in range(count)
    ]
    return await asyncio.gather(*calls, return_exceptions=True)


async def test_each_of_many_concurrent_calls_gets_its_own_outcome(emu: Emulator) -> None:
    emu.fault_always("/frankfurter/*", Fault.status(404))
    async with polyrelay.AsyncClient(MIXED) as client:
        outcomes = await _mixed_batch(client, 200)
    # They came through the socket the loop watches, not as callbacks.
    readers = asyncio.get_running_loop()._selector.get_map().values()  # type: ignore[attr-defined]
    assert any("drain" in repr(key.data[0]) for key in readers)
    for i, outcome in enumerate(outcomes):
        if i % 2 == 0:
            assert isinstance(outcome, polyrelay.Result) and outcome.capability == "weather.current"
        else:
            assert isinstance(outcome, polyrelay.Error), outcome


def test_successive_and_concurrent_event_loops_share_one_client(emu: Emulator) -> None:
    client = polyrelay.AsyncClient(WEATHER)
    try:

        async def three() -> List[str]:
            results = await asyncio.gather(
                *(client.call("weather.current", lat=float(i), lon=0.0) for i in range(3))
            )
            return [r.provider for r in results]

        assert asyncio.run(three()) == ["open-meteo"] * 3
        assert asyncio.run(three()) == ["open-meteo"] * 3, "a second loop gets its own inbox"
        seen: List[List[str]] = []
        threads = [threading.Thread(target=lambda: seen.append(asyncio.run(three()))) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert seen == [["open-meteo"] * 3] * 4
    finally:
        client.close()


class _LoopWithoutReaders(asyncio.SelectorEventLoop):
    """Like the Windows proactor loop: cannot watch a file descriptor."""

    def add_reader(self, *args: Any) -> None:
        raise NotImplementedError


def test_a_loop_that_cannot_watch_sockets_still_gets_results(emu: Emulator) -> None:
    emu.fault_always("/frankfurter/*", Fault.status(404))

    async def scenario() -> None:
        async with polyrelay.AsyncClient(MIXED) as client:
            outcomes = await _mixed_batch(client, 20)
            assert [isinstance(o, polyrelay.Result) for o in outcomes] == [i % 2 == 0 for i in range(20)]
            # Only the hanging call's request counts from here on: the
            # batch's requests would satisfy the wait below at once.
            emu.clear_log()
            emu.fault_always("/open-meteo/*", Fault.hang())
            task = asyncio.create_task(client.call("weather.current", **BERLIN))
            await asyncio.to_thread(emu.wait_for_requests, "/open-meteo/*", 1, 5.0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert task.cancelled()
            await asyncio.to_thread(emu.wait_for_closed_early, "/open-meteo/*", 1, 5.0)

    loop = _LoopWithoutReaders()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
