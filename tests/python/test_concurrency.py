"""The sync client under real-world conditions: many threads, a running
event loop (Jupyter), a forked child, and Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

import pytest

import polyrelay
from polyrelay.testing import Emulator, Fault

BERLIN = {"lat": 52.52, "lon": 13.41}


def test_many_threads_share_one_client(client: polyrelay.Client, emu: Emulator) -> None:
    def work(thread: int) -> List[str]:
        return [
            client.weather.current(lat=float(thread), lon=float(i % 5)).provider
            for i in range(20)
        ]

    with ThreadPoolExecutor(max_workers=16) as pool:
        providers = [p for batch in pool.map(work, range(16)) for p in batch]
    assert providers == ["open-meteo"] * 320
    # 16 threads × 5 distinct places: everything else came from the cache
    # (concurrent misses of one place coalesce into one request).
    assert emu.hits("/open-meteo/*") == 80
    assert client.stats()["open-meteo"]["outcomes"]["success"] == 80


def test_waiting_releases_the_gil(client: polyrelay.Client, emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.latency(0.3))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: client.weather.current(lat=float(i), lon=0.0), range(8)))
    elapsed = time.perf_counter() - started
    assert len(results) == 8
    assert elapsed < 2.0, f"eight 0.3 s calls took {elapsed:.2f} s: they did not overlap"

    counter = 0
    done = threading.Event()

    def count() -> None:
        nonlocal counter
        while not done.is_set():
            counter += 1

    counting = threading.Thread(target=count)
    counting.start()
    client.weather.current(lat=45.0, lon=45.0)
    done.set()
    counting.join()
    assert counter > 1000, "another thread could not run Python while the call waited"


async def test_the_sync_client_works_inside_a_running_event_loop(emu: Emulator) -> None:
    assert asyncio.get_running_loop().is_running()
    with polyrelay.Client() as client:
        result = client.weather.current(**BERLIN)
    assert result.provider == "open-meteo"


def test_the_sync_client_works_in_a_thread_running_an_event_loop(client: polyrelay.Client) -> None:
    async def notebook_cell() -> str:
        return client.weather.current(**BERLIN).provider

    outcome: Dict[str, str] = {}
    thread = threading.Thread(target=lambda: outcome.update(p=asyncio.run(notebook_cell())))
    thread.start()
    thread.join(10)
    assert outcome == {"p": "open-meteo"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_a_working_client(emu: Emulator) -> None:
    config = {
        "capabilities": {"weather.current": {"chain": ["open-meteo"], "total_timeout": "20s"}},
        "defaults": {"retry": {"attempt_timeout": "10s"}},
    }
    with polyrelay.Client(config) as client:
        # Leave pooled connections and a running runtime behind in the parent.
        client.weather.current(lat=1.0, lon=1.0)
        client.weather.current(lat=2.0, lon=2.0)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            status = 1
            try:
                signal.alarm(15)
                started = time.perf_counter()
                result = client.weather.current(lat=3.0, lon=3.0)
                cached = client.weather.current(lat=1.0, lon=1.0)
                elapsed = time.perf_counter() - started
                os.write(write, f"{result.provider} {cached.cached} {elapsed:.3f}".encode())
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        report = os.read(read, 200).decode()
        os.close(read)
        assert os.waitstatus_to_exitcode(status) == 0, report
        provider, cached, elapsed = report.split()
        assert provider == "open-meteo"
        assert cached == "True", "the child keeps the parent's cache"
        assert float(elapsed) < 2.0, "the child must not wait on the parent's dead connections"
        # The parent is unaffected.
        assert client.weather.current(lat=4.0, lon=4.0).provider == "open-meteo"


CHILD = textwrap.dedent(
    """
    import sys, time, polyrelay
    client = polyrelay.Client({"capabilities": {"weather.current": {"chain": ["open-meteo"]}}})
    try:
        client.weather.current(lat=1.0, lon=2.0)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        if sys.argv[1] == "linger":
            time.sleep(3)
        raise
    """
)


def _blocked_child(emu: Emulator, mode: str) -> "subprocess.Popen[str]":
    emu.fault_always("/open-meteo/*", Fault.hang())
    env = {**os.environ, "POLYRELAY_EMULATOR_URL": emu.url}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    emu.wait_for_requests("/open-meteo/*", 1, 20.0)
    time.sleep(0.1)  # the call is now blocked waiting for the answer
    return child


def test_ctrl_c_interrupts_a_blocked_call_promptly(emu: Emulator) -> None:
    child = _blocked_child(emu, "exit")
    sent = time.perf_counter()
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=10)
    took = time.perf_counter() - sent
    assert child.returncode != 0
    assert "KeyboardInterrupt" in stderr
    assert took < 2.0, f"exited {took:.2f} s after SIGINT"


def test_ctrl_c_cancels_the_http_request(emu: Emulator) -> None:
    child = _blocked_child(emu, "linger")
    child.send_signal(signal.SIGINT)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "interrupted"
    # While the child is still alive, the emulator sees the request dropped.
    abandoned = emu.wait_for_closed_early("/open-meteo/*", 1, 2.0)
    assert child.poll() is None, "the child was still running"
    assert abandoned[0].closed_early
    child.kill()
    child.communicate()
