"""Rust tracing events reach Python logging under the `polyrelay` logger."""

from __future__ import annotations

import logging

import pytest

import polyrelay
from polyrelay.testing import Emulator, Fault

BERLIN = {"lat": 52.52, "lon": 13.41}


def test_events_become_records_of_the_polyrelay_logger(
    client: polyrelay.Client, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="polyrelay")
    emu.fault_next("/open-meteo/*", Fault.status(503), times=3)
    client.weather.current(**BERLIN)
    turns = [r for r in caplog.records if r.getMessage().startswith("provider turn")]
    assert [r.polyrelay["provider"] for r in turns] == ["open-meteo", "met-norway"]  # type: ignore[attr-defined]
    failed = turns[0]
    assert failed.name == "polyrelay.engine"
    assert failed.levelno == logging.DEBUG
    assert failed.polyrelay["outcome"] == "transient"  # type: ignore[attr-defined]
    assert failed.polyrelay["capability"] == "weather.current"  # type: ignore[attr-defined]
    assert "capability=weather.current" in failed.getMessage()
    assert failed.pathname.endswith("engine.rs") and failed.lineno > 0
    attempts = [r for r in caplog.records if r.getMessage().startswith("attempt")]
    assert len(attempts) == 4, "three failed tries and one success"


def test_nothing_is_forwarded_below_the_logger_level(
    client: polyrelay.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="polyrelay")
    client.weather.current(**BERLIN)
    assert [r for r in caplog.records if r.name.startswith("polyrelay")] == []


def test_log_records_never_contain_keys(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="polyrelay")
    secret = "CG-log-secret-998877"
    emu.fault_always("/coingecko/*", Fault.respond(401, body=f'{{"error": "bad key {secret}"}}'.encode()))
    config = {"capabilities": {"crypto.price": {"chain": ["coingecko", "coinpaprika"]}}}
    with polyrelay.Client(config, api_keys={"coingecko": secret}) as client:
        assert client.crypto.price(assets="BTC").provider == "coinpaprika"
    assert caplog.records, "debug records were captured"
    assert secret not in caplog.text
    assert all(secret not in str(getattr(r, "polyrelay", "")) for r in caplog.records)
