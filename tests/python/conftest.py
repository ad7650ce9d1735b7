"""Shared fixtures: an emulator of every provider per test, and clients
pointed at it. The suite runs against the installed package."""

from __future__ import annotations

import os
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
