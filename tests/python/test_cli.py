"""The `polyrelay` command, as installed with the package."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Optional

import polyrelay
from polyrelay.testing import Emulator, Fault

COMMAND = str(Path(sys.executable).with_name("polyrelay"))


def run(*args: str, env: Optional[Dict[str, str]] = None) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_the_console_script_is_installed() -> None:
    assert Path(COMMAND).is_file()
    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"polyrelay {polyrelay.__version__}"
    module = subprocess.run([sys.executable, "-m", "polyrelay", "--help"], capture_output=True, text=True)
    assert module.returncode == 0 and "emulate" in module.stdout


def test_call_prints_the_answer_and_the_trail(emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.status(503))
    done = run("call", "weather.current", "lat=52.52", "lon=13.41")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("weather.current via met-norway (fresh")
    assert '"temperature_c"' in done.stdout
    assert "trail:" in done.stdout
    assert "open-meteo" in done.stdout and "HTTP 503" in done.stdout and "3 tries" in done.stdout
    assert "answered" in done.stdout


def test_call_json_and_parameter_parsing(emu: Emulator) -> None:
    done = run("call", "--json", "finance.fx_rates", "base=EUR", "symbols=USD,GBP")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["provider"] == "frankfurter"
    assert set(result["data"]["rates"]) >= {"USD", "GBP"}
    done = run("call", "--json", "crypto.price", 'assets=["BTC","ETH"]')
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["data"]["quotes"]) == 2


def test_call_failures_exit_non_zero_with_the_reason(emu: Emulator) -> None:
    done = run("call", "weather.current", "lat=91", "lon=0")
    assert done.returncode == 1
    assert "error: invalid request: `lat`" in done.stderr
    done = run("call", "weather.current", "lat")
    assert done.returncode == 1 and "name=value" in done.stderr
    emu.fault_always("*", Fault.status(503))
    done = run("call", "weather.current", "city=Berlin")
    assert done.returncode == 1
    assert "no provider could answer" in done.stderr
    assert "trail:" in done.stderr and "wttr-in" in done.stderr


def test_providers(emu: Emulator) -> None:
    done = run("providers")
    assert done.returncode == 0, done.stderr
    for provider in polyrelay.providers():
        assert provider["id"] in done.stdout
    assert "COINGECKO_API_KEY (optional)" in done.stdout
    listing = json.loads(run("providers", "--json").stdout)
    assert {p["id"] for p in listing} == {p["id"] for p in polyrelay.providers()}


def test_check_shows_keys_without_values_and_what_can_be_served(emu: Emulator, tmp_path: Path) -> None:
    secret = "CG-check-secret-123"
    done = run("check", env={"COINGECKO_API_KEY": secret})
    assert done.returncode == 0, done.stderr
    assert "configuration: ok" in done.stdout
    assert "COINGECKO_API_KEY" in done.stdout and " set " in done.stdout
    assert secret not in done.stdout + done.stderr
    for capability in polyrelay.capabilities():
        assert capability["name"] in done.stdout
    assert "healthy" in done.stdout

    config = tmp_path / "polyrelay.toml"
    config.write_text('[capabilities."weather.current"]\nchain = ["met-norway"]\n')
    done = run("--config", str(config), "check")
    assert done.returncode == 0 and str(config) in done.stdout
    assert "served by: met-norway" in done.stdout

    done = run("check", env={"POLYRELAY_TIMEZONE": "Mars/Olympus"})
    assert done.returncode == 1
    assert "INVALID" in done.stderr and "Mars/Olympus" in done.stderr


def test_check_exits_non_zero_when_a_critical_capability_has_no_usable_provider(
    emu: Emulator, tmp_path: Path
) -> None:
    config = tmp_path / "polyrelay.toml"
    config.write_text('[capabilities."finance.quote"]\nchain = ["finnhub"]\n')
    # finnhub takes a key, and none is set: nobody can serve finance.quote.
    done = run("--config", str(config), "check", "--critical", "weather.current,finance.quote")
    assert done.returncode == 1, done.stdout
    assert "critical capabilities without a usable provider: finance.quote" in done.stderr
    assert "finnhub: FINNHUB_API_KEY is not set" in done.stdout
    assert "weather.current" not in done.stderr
    # Not critical: reported, but the check passes.
    assert run("--config", str(config), "check").returncode == 0

    secret = "finnhub-check-secret-42"
    done = run("--config", str(config), "check", "--critical", "weather.current",
               "--critical", "finance.quote", env={"FINNHUB_API_KEY": secret})
    assert done.returncode == 0, done.stderr
    assert "served by: finnhub (critical)" in done.stdout
    assert secret not in done.stdout + done.stderr

    done = run("check", "--critical", "weather.nowcast")
    assert done.returncode == 2
    assert "unknown capabilities: weather.nowcast" in done.stderr


def test_check_reports_whether_the_configured_redis_answers(
    emu: Emulator, tmp_path: Path, redis_url: str
) -> None:
    done = run("check")
    assert done.returncode == 0, done.stderr
    assert "redis: not configured" in done.stdout

    done = run("check", env={"POLYRELAY_REDIS_URL": redis_url})
    assert done.returncode == 0, done.stderr
    assert "redis: reachable" in done.stdout

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{probe.getsockname()[1]}"
    config = tmp_path / "polyrelay.toml"
    config.write_text(f'[redis]\nurl = "{dead}"\n')
    done = run("--config", str(config), "check")
    assert done.returncode == 1
    assert "redis: UNREACHABLE" in done.stdout
    assert "the configured Redis does not answer" in done.stderr


def test_health(emu: Emulator) -> None:
    done = run("health")
    assert done.returncode == 0, done.stderr
    assert "weather.current" in done.stdout and "healthy" in done.stdout
    health = json.loads(run("health", "--json").stdout)
    assert health["capabilities"]["crypto.price"]["status"] == "healthy"


def test_health_lists_model_groups(emu: Emulator, tmp_path: Path) -> None:
    config = tmp_path / "polyrelay.toml"
    config.write_text(
        '[deployments.gpt-eu]\nprovider = "openai"\nmodel = "gpt-4o-mini"\n'
        'api_key_env = "POLYRELAY_TEST_UNSET_KEY"\n'
        '[deployments.groq-llama]\nprovider = "groq"\nmodel = "llama-3.1-8b-instant"\n'
        '[groups.fast]\ndeployments = ["gpt-eu", "groq-llama"]\n'
        '[budgets.team-a]\ntokens = 1000\nperiod = "day"\n'
    )
    env = {"GROQ_API_KEY": "gsk_test"}
    done = run("--config", str(config), "health", env=env)
    assert done.returncode == 0, done.stderr
    assert "group fast" in done.stdout and "degraded" in done.stdout
    assert "gpt-eu: POLYRELAY_TEST_UNSET_KEY is not set" in done.stdout
    assert "budget team-a      0 of 1000 tokens this day, resets " in done.stdout
    health = json.loads(run("--config", str(config), "health", "--json", env=env).stdout)
    fast = health["groups"]["fast"]
    assert (fast["capability"], fast["strategy"], fast["ready"]) == ("llm.chat", "ordered", ["groq-llama"])


def test_emulate_serves_until_ctrl_c() -> None:
    child = subprocess.Popen([COMMAND, "emulate"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    first = child.stdout.readline().strip()
    assert first.startswith("polyrelay emulator listening on http://127.0.0.1:")
    url = first.rsplit(" ", 1)[1]
    with polyrelay.Client(env={"POLYRELAY_EMULATOR_URL": url}) as client:
        assert client.weather.current(lat=1.0, lon=2.0).provider == "open-meteo"
    child.send_signal(signal.SIGINT)
    started = time.perf_counter()
    out, err = child.communicate(timeout=10)
    assert child.returncode == 0, err
    assert time.perf_counter() - started < 2.0
    assert "stopped after 1 requests" in out


def test_demo_tours_fallback_breaker_cache_and_stale_answers() -> None:
    done = run("demo")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "via open-meteo (fresh" in out
    assert "via met-norway (fresh" in out and "HTTP 503" in out
    assert "skipped: circuit open" in out
    assert "requests sent to open-meteo by that call: 0" in out
    assert "(cached" in out and "(no provider was asked)" in out
    assert "(stale" in out
