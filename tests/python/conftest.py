"""Shared fixtures: an emulator of every provider per test, and clients
pointed at it. The suite runs against the installed package."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from typing import AsyncIterator, Iterator

import pytest

import polyrelay
from polyrelay.testing import Emulator, emulator

#: A fixed weather chain, so tests do not depend on the default order.
WEATHER = {"capabilities": {"weather.current": {"chain": ["open-meteo", "met-norway", "wttr-in"]}}}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer configuration or key leaks into a test."""
    for name in list(os.environ):
        if name.startswith("POLYRELAY_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with emulator() as running:
        yield running


@pytest.fixture
def client(emu: Emulator) -> Iterator[polyrelay.Client]:
    with polyrelay.Client(WEATHER) as c:
        yield c


@pytest.fixture
async def aclient(emu: Emulator) -> AsyncIterator[polyrelay.AsyncClient]:
    async with polyrelay.AsyncClient(WEATHER) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A throwaway real Redis (tests/setup.sh installs redis-server)."""
    server_binary = shutil.which("redis-server")
    assert server_binary, "redis-server is missing: run tests/setup.sh"
    port = _free_port()
    server = subprocess.Popen(
        [
            server_binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
