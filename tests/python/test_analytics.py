"""Analytics from Python: rows, the tag of any call, the Jupyter view,
pandas, the asyncio client and the `polyrelay analytics` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import polyrelay
from polyrelay.testing import Emulator, Fault

WEATHER_AND_FX = {
    "capabilities": {
        "weather.current": {"chain": ["open-meteo"]},
        "finance.fx_rates": {"chain": ["frankfurter"]},
    },
    "providers": {"frankfurter": {"retry": {"max_attempts": 1}}},
}


def _calls(client: polyrelay.Client) -> None:
    client.call("weather.current", lat=52.52, lon=13.41, tag="route:/home")
    client.call("weather.current", lat=52.52, lon=13.41, tag="route:/home")
    client.call("weather.current", lat=48.85, lon=2.35)
    with pytest.raises(polyrelay.Error):
        client.call("finance.fx_rates", base="EUR", symbols=["USD"])


def test_rows_count_every_call_with_its_tag(emu: Emulator) -> None:
    emu.fault_always("/frankfurter/*", Fault.status(503))
    with polyrelay.Client(WEATHER_AND_FX) as client:
        _calls(client)
        rows = client.analytics(by="day", group_by=["capability"])
        assert isinstance(rows, polyrelay.AnalyticsRows)
        by_capability = {row["capability"]: row for row in rows}
        weather = by_capability["weather.current"]
        assert (weather["calls"], weather["successes"], weather["cached"]) == (3, 3, 1)
        assert weather["latency_ms_p50"] is not None
        fx = by_capability["finance.fx_rates"]
        assert (fx["calls"], fx["success_rate"]) == (1, 0.0)
        assert [e["calls"] for e in fx["top_errors"]] == [1]
        tagged = client.analytics(by="day", tag="route:/home")
        assert [row["calls"] for row in tagged] == [2]
        # A time window in the future holds nothing; naive datetimes are UTC.
        later = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=2)
        assert client.analytics(since=later) == []
        status = client.analytics_status()
        assert (status["store"], status["recorded"], status["dropped"]) == ("memory", 4, 0)
        html = rows._repr_html_()
        assert html.startswith("<svg") and "weather.current" in html and "<table>" in html


def test_bad_queries_and_tags_fail_before_anything_is_sent(emu: Emulator) -> None:
    with polyrelay.Client(WEATHER_AND_FX) as client:
        with pytest.raises(polyrelay.InvalidRequestError):
            client.analytics(by="week")  # type: ignore[arg-type]
        with pytest.raises(polyrelay.InvalidRequestError):
            client.analytics(group_by=["model"])
        with pytest.raises(polyrelay.InvalidRequestError):
            client.call("weather.current", lat=52.52, lon=13.41, tag="has spaces")
    assert emu.served == 0


def test_to_pandas(emu: Emulator) -> None:
    pandas = pytest.importorskip("pandas")
    with polyrelay.Client(WEATHER_AND_FX) as client:
        client.call("weather.current", lat=52.52, lon=13.41)
        frame = client.analytics(group_by="provider").to_pandas()
    assert list(frame["calls"]) == [1] and list(frame["provider"]) == ["open-meteo"]
    assert isinstance(frame["period"].dtype, pandas.DatetimeTZDtype)


async def test_the_async_client(emu: Emulator) -> None:
    async with polyrelay.AsyncClient(WEATHER_AND_FX) as client:
        await client.call("weather.current", lat=52.52, lon=13.41, tag="batch-job")
        rows = await client.analytics("day", ["tag"])
    assert [(row["tag"], row["calls"]) for row in rows] == [("batch-job", 1)]


def test_the_command_reads_what_other_processes_wrote(emu: Emulator, tmp_path: Path) -> None:
    config = tmp_path / "polyrelay.toml"
    config.write_text(
        '[capabilities."weather.current"]\nchain = ["open-meteo"]\n'
        f"[analytics]\nsqlite = {json.dumps(str(tmp_path / 'analytics.sqlite'))}\n"
    )
    command = str(Path(sys.executable).with_name("polyrelay"))

    def run(*args: str) -> "subprocess.CompletedProcess[str]":
        return subprocess.run(
            [command, "--config", str(config), *args],
            capture_output=True, text=True, timeout=60, env=dict(os.environ),
        )

    for lat in ("52.52", "48.85"):
        assert run("call", "weather.current", f"lat={lat}", "lon=13.41").returncode == 0
    done = run("analytics", "--by", "day", "--group-by", "capability,provider", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["capability"], r["provider"], r["calls"]) for r in rows] == [
        ("weather.current", "open-meteo", 2)
    ]
    table = run("analytics", "--by", "day", "--group-by", "provider")
    assert table.returncode == 0 and "open-meteo" in table.stdout and "p95 ms" in table.stdout
