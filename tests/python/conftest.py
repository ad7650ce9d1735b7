"""Shared fixtures: an emulator of every provider per test, and clients
pointed at it. The suite runs against the installed package."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from typing import AsyncIterator, Callable, ContextManager, Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

import polyrelay
from polyrelay.testing import Emulator, emulator

# Started in the background without job control (`cmd &` in a script,
# nohup), the suite inherits Ctrl-C ignored, and so would the children the
# Ctrl-C tests start: an exec keeps SIG_IGN, and Python then never raises
# KeyboardInterrupt. A handler of this process becomes SIG_DFL in a child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

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


@contextlib.contextmanager
def _serve(app: FastAPI) -> Iterator[httpx.Client]:
    """``app`` on a real uvicorn (lifespan included) in a thread, on a
    loopback port, and a client for it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=15) as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        listener.close()


@pytest.fixture
def serve() -> Callable[[FastAPI], ContextManager[httpx.Client]]:
    """``with serve(app) as http:`` runs ``app`` on a real uvicorn in a
    thread, on a loopback port, lifespan included, with an httpx client
    for it."""
    return _serve
