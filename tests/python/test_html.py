"""Jupyter views: ``_repr_html_`` of results, health and stats, with
every value escaped and no secret anywhere."""

from __future__ import annotations

import json
import urllib.request

import polyrelay
from polyrelay.testing import Emulator, Fault

SCRIPT = "<script>alert(1)</script>"
SECRET = "sk-do-not-show-7f3a9"


def test_a_result_shows_provider_flags_trail_and_data(client: polyrelay.Client) -> None:
    first = client.call("weather.current", lat=52.52, lon=13.41)
    html = first._repr_html_()
    assert "weather.current" in html and "open-meteo" in html
    assert "answered" in html, "the trail's reason"
    assert "temperature_c" in html
    assert "cached" not in html
    assert "cached" in client.call("weather.current", lat=52.52, lon=13.41)._repr_html_()


def test_provider_text_in_a_result_is_escaped(emu: Emulator, client: polyrelay.Client) -> None:
    client.call("weather.current", lat=1.0, lon=2.0)
    sent = emu.requests("/open-meteo/*")[0]
    with urllib.request.urlopen(f"{emu.url}{sent.path}?{sent.query}") as reply:
        body = reply.read().decode()
    assert "Europe/Berlin" in body
    emu.fault_next("/open-meteo/*", Fault.replace_body(body.replace("Europe/Berlin", SCRIPT).encode()))
    result = client.call("weather.current", lat=5.0, lon=6.0)
    assert result.data["location"]["timezone"] == SCRIPT
    html = result._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_health_and_stats_stay_plain_data_and_render_as_tables(emu: Emulator) -> None:
    with polyrelay.Client(api_keys={"omdb": SECRET}) as client:
        client.call("weather.current", lat=52.52, lon=13.41)
        health, stats = client.health(), client.stats()
        assert isinstance(health, dict) and isinstance(stats, dict)
        assert json.loads(json.dumps(health)) == health
        assert "open-meteo" in health["capabilities"]["weather.current"]["ready"]
        assert stats["open-meteo"]["requests"] == 1
        health_html, stats_html = health._repr_html_(), stats._repr_html_()
    assert "weather.current" in health_html and "degraded" in health_html
    assert "TMDB_ACCESS_TOKEN is not set" in health_html, "why a provider is unavailable"
    assert "open-meteo" in stats_html and "closed" in stats_html
    for html in (health_html, stats_html):
        assert SECRET not in html


def test_health_and_stats_escape_every_value() -> None:
    health = polyrelay.Health(
        {
            "state_backend": SCRIPT,
            "redis_degraded": False,
            "capabilities": {
                SCRIPT: {"status": SCRIPT, "ready": [SCRIPT], "unavailable": {SCRIPT: SCRIPT}}
            },
        }
    )
    stats = polyrelay.Stats(
        {
            SCRIPT: {
                "requests": SCRIPT,
                "outcomes": {SCRIPT: 1},
                "breakers": {SCRIPT: {"state": SCRIPT}},
                "quota": {"used": SCRIPT, "limit": SCRIPT},
                "latency_ms_p50": SCRIPT,
            }
        }
    )
    for html in (health._repr_html_(), stats._repr_html_()):
        assert "<script>" not in html and "&lt;script&gt;" in html
