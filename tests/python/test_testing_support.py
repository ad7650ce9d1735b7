"""polyrelay.testing: testing mode and the emulator, as users' suites use them."""

from __future__ import annotations

import os
import time

import pytest

import polyrelay
from polyrelay import testing
from polyrelay.testing import Emulator, Fault, emulator

BERLIN = {"lat": 52.52, "lon": 13.41}
CHAIN = {
    "capabilities": {"weather.current": {"chain": ["open-meteo", "met-norway"]}},
    "defaults": {"retry": {"max_attempts": 2}},
}


def _timed_fallback(emu: Emulator, testing_mode: bool) -> float:
    emu.fault_always("/open-meteo/*", Fault.respond(503, body=b"{}", retry_after=1))
    with polyrelay.Client(CHAIN, testing=testing_mode) as client:
        started = time.perf_counter()
        result = client.weather.current(**BERLIN)
        elapsed = time.perf_counter() - started
    assert result.provider == "met-norway"
    assert result.attempts[0].tries == 2
    return elapsed


def test_testing_mode_skips_backoff_waits(emu: Emulator) -> None:
    assert _timed_fallback(emu, testing_mode=False) >= 1.0, "production honours Retry-After: 1"
    assert _timed_fallback(emu, testing_mode=True) < 0.5, "testing mode retries at once"


def test_enable_sets_the_default_for_new_clients(emu: Emulator) -> None:
    assert testing.is_enabled(), "the emulator turns testing mode on"
    testing.enable(False)
    try:
        assert not testing.is_enabled()
        assert _timed_fallback(emu, testing_mode=False) >= 1.0
    finally:
        testing.enable(True)


def test_the_emulator_points_new_clients_at_itself_and_restores_after() -> None:
    assert "POLYRELAY_EMULATOR_URL" not in os.environ
    assert not testing.is_enabled()
    with emulator() as emu:
        assert os.environ["POLYRELAY_EMULATOR_URL"] == emu.url
        assert emu.url.startswith("http://127.0.0.1:")
        assert testing.is_enabled()
        with polyrelay.Client() as client:
            client.weather.current(**BERLIN)
        assert emu.hits("/open-meteo/v1/forecast") == 1
        assert "127.0.0.1" in repr(emu)
    assert "POLYRELAY_EMULATOR_URL" not in os.environ
    assert not testing.is_enabled()
    emu.stop()  # stopping twice is harmless


def test_request_log_and_fault_controls(client: polyrelay.Client, emu: Emulator) -> None:
    client.weather.current(**BERLIN)
    (request,) = emu.requests("/open-meteo/*")
    assert request.method == "GET" and request.path == "/open-meteo/v1/forecast"
    assert request.query_param("latitude") == "52.52"
    assert ("latitude", "52.52") in request.query_pairs
    assert request.query is not None and "latitude=52.52" in request.query
    assert request.header("user-agent", ).startswith("polyrelay/")  # type: ignore[union-attr]
    assert request.headers["user-agent"].startswith("polyrelay/")
    assert request.body == b"" and request.connection >= 0 and not request.closed_early
    assert "GET /open-meteo/v1/forecast" in repr(request)
    assert len(emu.requests()) == 1
    assert emu.wait_for_requests("/open-meteo/*", 1, 1.0)[0].path == request.path
    emu.clear_log()
    assert emu.requests() == []
    with pytest.raises(TimeoutError):
        emu.wait_for_requests("/open-meteo/*", 1, 0.05)

    emu.set_logging(False)
    client.weather.current(lat=5, lon=5)
    assert emu.requests() == [] and emu.served == 2, "counted, not recorded"
    emu.set_logging(True)

    emu.fault_next("/open-meteo/*", Fault.status(503), times=3)
    assert client.weather.current(lat=1, lon=1).provider == "met-norway"
    assert client.weather.current(lat=2, lon=2).provider == "open-meteo", "the queued fault is used up"
    emu.fault_always("/open-meteo/*", Fault.status(503))
    emu.clear_faults()
    assert client.weather.current(lat=3, lon=3).provider == "open-meteo"


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        (Fault.status(500), "transient"),
        (Fault.respond(418, body=b"{}", headers={"x-test": "1"}), "invalid_request"),
        (Fault.latency(30), "transient"),
        (Fault.hang(), "transient"),
        (Fault.reset(), "transient"),
        (Fault.malformed(), "malformed_response"),
        (Fault.oversized(9 * 1024 * 1024), "malformed_response"),
        (Fault.replace_body(b"<html>busy</html>"), "malformed_response"),
    ],
    ids=repr,
)
def test_every_fault_kind(emu: Emulator, fault: Fault, outcome: str) -> None:
    config = {
        "capabilities": {"weather.current": {"chain": ["open-meteo", "met-norway"]}},
        "defaults": {"retry": {"max_attempts": 1, "attempt_timeout": "300ms"}},
    }
    emu.fault_always("/open-meteo/*", fault)
    with polyrelay.Client(config) as client:
        result = client.weather.current(**BERLIN)
    assert result.provider == "met-norway"
    assert result.attempts[0].outcome == outcome
    assert repr(fault).startswith("Fault.")
