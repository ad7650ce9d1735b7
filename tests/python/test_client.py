"""Every public function of the sync client, through the emulator."""

from __future__ import annotations

import json
import socket
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

import polyrelay
from polyrelay.testing import Emulator, Fault

BERLIN = {"lat": 52.52, "lon": 13.41}


def test_call_returns_a_result_with_plain_data_and_its_provenance(client: polyrelay.Client) -> None:
    result = client.call("weather.current", **BERLIN)
    assert result.capability == "weather.current"
    assert result.provider == "open-meteo"
    assert not result.cached and not result.stale
    assert isinstance(result.data, dict)
    assert result.data["temperature_c"] == pytest.approx(3.4)
    assert result.data["condition"]["text"] == "Overcast"
    assert 0 < result.elapsed < 5
    assert result.fetched_at.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - result.fetched_at).total_seconds()) < 60
    (attempt,) = result.attempts
    assert attempt == polyrelay.Attempt(
        provider="open-meteo",
        outcome="success",
        status=200,
        tries=1,
        elapsed=attempt.elapsed,
        reason="answered",
        retry_after=None,
    )
    assert attempt.succeeded and not attempt.skipped
    assert "open-meteo" in repr(result)


def test_to_dict_is_json_compatible_and_complete(client: polyrelay.Client) -> None:
    result = client.call("weather.current", **BERLIN)
    as_dict = result.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["provider"] == "open-meteo"
    assert as_dict["data"] == result.data
    assert as_dict["cached"] is False and as_dict["stale"] is False
    assert as_dict["attempts"][0]["outcome"] == "success"
    assert as_dict["fetched_at"].startswith(result.fetched_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert as_dict["elapsed"] == pytest.approx(result.elapsed)


def test_typed_helpers_of_every_family(client: polyrelay.Client, emu: Emulator) -> None:
    current = client.weather.current(lat=52.52, lon=13.41)
    assert current.capability == "weather.current" and "temperature_c" in current.data
    forecast = client.weather.forecast(lat=52.52, lon=13.41, days=3)
    assert forecast.capability == "weather.forecast"
    assert len(forecast.data["daily"]) >= 1
    by_city = client.weather.current(city="Berlin")
    assert by_city.data["temperature_c"] is not None
    rates = client.finance.fx_rates(base="EUR", symbols=["USD", "GBP"])
    assert rates.data["base"] == "EUR" and set(rates.data["rates"]) >= {"USD", "GBP"}
    dated = client.finance.fx_rates(base="EUR", symbols="USD", date=date(2025, 1, 15))
    assert emu.requests("/frankfurter/v1/2025-01-15"), "the date travels as ISO 8601"
    assert dated.capability == "finance.fx_rates"
    prices = client.crypto.price(assets=["bitcoin", "ETH"], vs_currencies="usd")
    assert {q["asset"]["symbol"] for q in prices.data["quotes"]} == {"BTC", "ETH"}


def test_fallback_and_the_trail_say_why(client: polyrelay.Client, emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.status(503))
    result = client.weather.current(**BERLIN)
    assert result.provider == "met-norway"
    first, second = result.attempts
    assert (first.provider, first.outcome, first.status, first.tries) == ("open-meteo", "transient", 503, 3)
    assert "503" in first.reason and str(first).startswith("open-meteo: ")
    assert second.succeeded
    assert emu.hits("/open-meteo/*") == 3
    assert emu.hits("/wttr-in/*") == 0


def test_cache_flags_fresh_hit_and_stale_answer(emu: Emulator) -> None:
    config = {
        "capabilities": {"weather.current": {"chain": ["open-meteo"], "cache_ttl": "200ms"}},
        "cache": {"stale_if_error": "1h"},
    }
    with polyrelay.Client(config) as client:
        fresh = client.weather.current(**BERLIN)
        assert not fresh.cached and not fresh.stale
        hit = client.weather.current(**BERLIN)
        assert hit.cached and not hit.stale and hit.attempts == ()
        assert hit.data == fresh.data and hit.provider == "open-meteo"
        assert emu.hits("/open-meteo/*") == 1
        time.sleep(0.3)
        emu.fault_always("/open-meteo/*", Fault.status(500))
        stale = client.weather.current(**BERLIN)
        assert stale.cached and stale.stale
        assert stale.data == fresh.data
        assert [a.outcome for a in stale.attempts] == ["transient"]


def test_health_stats_providers_and_chain_are_plain_data(client: polyrelay.Client, emu: Emulator) -> None:
    client.weather.current(**BERLIN)
    health = client.health()
    assert health["state_backend"] == "memory"
    weather = health["capabilities"]["weather.current"]
    assert weather == {"status": "healthy", "ready": ["open-meteo", "met-norway", "wttr-in"], "unavailable": {}}
    stats = client.stats()
    assert stats["open-meteo"]["requests"] == 1
    assert stats["open-meteo"]["outcomes"] == {"success": 1}
    assert stats["open-meteo"]["key_set"] is False
    assert stats["open-meteo"]["latency_ms_p50"] > 0
    providers = {p["id"]: p for p in client.providers()}
    assert providers["open-meteo"]["enabled"] is True
    assert providers["open-meteo"]["key_set"] is False
    assert providers["coingecko"]["auth"] == "optional_key"
    assert client.chain("weather.current") == ["open-meteo", "met-norway", "wttr-in"]
    with pytest.raises(polyrelay.InvalidRequestError):
        client.chain("weather.nowcast")


def test_health_reports_an_open_breaker(emu: Emulator) -> None:
    config = {
        "capabilities": {"weather.current": {"chain": ["open-meteo", "met-norway"]}},
        "providers": {"open-meteo": {"breaker": {"sliding_window_size": 2, "minimum_number_of_calls": 2}}},
    }
    emu.fault_always("/open-meteo/*", Fault.status(503))
    with polyrelay.Client(config) as client:
        client.weather.current(**BERLIN)
        weather = client.health()["capabilities"]["weather.current"]
        assert weather["status"] == "degraded"
        assert weather["ready"] == ["met-norway"]
        assert "circuit open" in weather["unavailable"]["open-meteo"]
        assert client.stats()["open-meteo"]["breakers"]["weather.current"]["state"] == "open"


def test_configuration_from_a_dict_a_file_toml_and_the_environment(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = '[capabilities."weather.current"]\nchain = ["met-norway"]\n'
    path = tmp_path / "polyrelay.toml"
    path.write_text(toml)
    clients = [
        polyrelay.Client({"capabilities": {"weather.current": {"chain": ["met-norway"]}}}),
        polyrelay.Client(str(path)),
        polyrelay.Client(path),
        polyrelay.Client.from_file(path),
        polyrelay.Client.from_toml(toml),
    ]
    monkeypatch.setenv("POLYRELAY_CONFIG", str(path))
    clients.append(polyrelay.Client())
    clients.append(polyrelay.Client.from_env())
    monkeypatch.delenv("POLYRELAY_CONFIG")
    monkeypatch.setenv("POLYRELAY_CHAIN_WEATHER_CURRENT", "met-norway")
    clients.append(polyrelay.Client.from_env())
    clients.append(polyrelay.Client(env={"POLYRELAY_EMULATOR_URL": emu.url, "POLYRELAY_CHAIN_WEATHER_CURRENT": "met-norway"}))
    for client in clients:
        with client:
            assert client.chain("weather.current") == ["met-norway"]
            assert client.weather.current(**BERLIN).provider == "met-norway"


def test_an_explicit_env_replaces_the_process_environment(emu: Emulator) -> None:
    with polyrelay.Client(env={}) as client:
        # Without POLYRELAY_EMULATOR_URL the providers point at the real
        # internet, which tests never reach: only check the chain resolves.
        assert client.chain("weather.current")[0] == "open-meteo"
    with pytest.raises(polyrelay.ConfigError) as caught:
        polyrelay.Client(env={"POLYRELAY_TIMEZONE": "Mars/Olympus"})
    assert caught.value.field == "timezone"


def test_variables_that_are_not_utf8_do_not_break_the_client(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOME_BINARY_VARIABLE", "caf\udce9")
    with polyrelay.Client() as client:
        assert client.weather.current(**BERLIN).provider == "open-meteo"


def test_api_keys_are_sent_as_the_provider_declares_and_never_shown(emu: Emulator) -> None:
    secret = "CG-secret-key-123456"
    config = {"capabilities": {"crypto.price": {"chain": ["coingecko"]}}}
    with polyrelay.Client(config, api_keys={"coingecko": secret}) as client:
        client.crypto.price(assets="BTC")
        assert emu.requests("/coingecko/*")[-1].header("x-cg-demo-api-key") == secret
        assert client.stats()["coingecko"]["key_set"] is True
        assert secret not in repr(client) and secret not in json.dumps(client.providers())
    with polyrelay.Client(config, env={"POLYRELAY_EMULATOR_URL": emu.url, "COINGECKO_API_KEY": secret}) as client:
        client.crypto.price(assets="ETH")
        assert emu.requests("/coingecko/*")[-1].header("x-cg-demo-api-key") == secret


def test_close_and_the_context_manager(emu: Emulator) -> None:
    with polyrelay.Client() as client:
        assert not client.closed
        assert "open" in repr(client)
    assert client.closed and "closed" in repr(client)
    with pytest.raises(polyrelay.UsageError, match="closed"):
        client.weather.current(**BERLIN)
    with pytest.raises(polyrelay.UsageError):
        client.health()
    client.close()


def test_parameters_set_to_none_are_not_sent(client: polyrelay.Client) -> None:
    assert client.call("weather.current", city="Berlin", lat=None, lon=None).capability == "weather.current"


def test_a_seed_makes_the_client_reproducible(emu: Emulator) -> None:
    with polyrelay.Client(seed=42, testing=False) as client:
        assert client.weather.current(**BERLIN).provider == "open-meteo"


def test_a_model_group_is_called_by_its_name(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = {
        "cache": {"enabled": False},
        "deployments": {
            "gpt-eu": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "api_key_env": "OPENAI_KEY_EU",
                "retry": {"max_attempts": 1},
            },
            "groq-llama": {"provider": "groq", "model": "llama-3.1-8b-instant"},
        },
        "groups": {"fast": {"deployments": ["gpt-eu", "groq-llama"]}},
    }
    emu.fault_always("/openai/*", Fault.status(500))
    monkeypatch.setenv("OPENAI_KEY_EU", "sk-eu-test")
    with polyrelay.Client(groups, api_keys={"groq": "gsk-test"}) as c:
        result = c.llm.chat(messages=[{"role": "user", "content": "Hi"}], model="fast")
    assert result.provider == "groq"
    assert [(a.provider, a.deployment, a.outcome) for a in result.attempts] == [
        ("openai", "gpt-eu", "transient"),
        ("groq", "groq-llama", "success"),
    ]
    assert str(result.attempts[0]).startswith("openai (gpt-eu): ")


def test_meta_search_merges_every_engine(emu: Emulator) -> None:
    with polyrelay.Client(api_keys={"brave": "test-brave-key"}) as client:
        emu.fault_always("/searxng/*", Fault.status(503))
        reply = client.search.meta(query="rust", limit=3)
        assert reply.provider == "meta-search"
        data = reply.data
        assert len(data["results"]) == 3
        top = data["results"][0]
        assert top["url"] == "https://www.rust-lang.org/"
        assert top["engines"] == ["duckduckgo", "brave"]
        assert data["missing"] == ["searxng"]
        assert [a.outcome for a in reply.attempts if a.provider == "searxng"] == ["transient"]


def test_news_meta_merges_every_news_engine(emu: Emulator) -> None:
    with polyrelay.Client() as client:
        reply = client.news.meta(query="climate", limit=2)
        articles = reply.data["articles"]
        assert len(articles) == 2
        assert all(len(a["engines"]) == 1 for a in articles)
        assert articles[0]["score"] >= articles[1]["score"] > 0
        assert set(reply.data["answered"]) == {"gdelt", "hn-algolia"}
        assert {"gnews", "newsapi", "guardian"} <= set(reply.data["missing"])


async def test_ping_redis_says_whether_the_configured_redis_answers(redis_url: str) -> None:
    with polyrelay.Client() as memory:
        assert memory.ping_redis() is None
    with polyrelay.Client({"redis": {"url": redis_url}}) as shared:
        assert shared.ping_redis() is True
    async with polyrelay.AsyncClient({"redis": {"url": redis_url}}) as shared_async:
        assert await shared_async.ping_redis() is True
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{probe.getsockname()[1]}"
    async with polyrelay.AsyncClient({"redis": {"url": dead}}) as unreachable:
        assert await unreachable.ping_redis() is False
        assert unreachable.health()["redis_degraded"]
