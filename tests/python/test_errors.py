"""Every exception, raised from real failures through the emulator, with
its attributes; secrets never appear; a Rust panic is a polyrelay.Error."""

from __future__ import annotations

import builtins
import json
import pickle
from datetime import datetime, timezone
from typing import Any, Dict

import pytest

import polyrelay
from polyrelay import _native
from polyrelay.testing import Emulator, Fault

BERLIN = {"lat": 52.52, "lon": 13.41}


def only(capability: str, *providers: str, **extra: Any) -> Dict[str, Any]:
    config: Dict[str, Any] = {"capabilities": {capability: {"chain": list(providers)}}}
    config.update(extra)
    return config


def test_the_hierarchy() -> None:
    assert issubclass(polyrelay.ConfigError, ValueError)
    assert issubclass(polyrelay.InvalidRequestError, ValueError)
    assert issubclass(polyrelay.NotFoundError, LookupError)
    assert issubclass(polyrelay.TimeoutError, builtins.TimeoutError)
    for cls in (
        polyrelay.MissingKeyError,
        polyrelay.RateLimitedError,
        polyrelay.QuotaExhaustedError,
        polyrelay.CircuitOpenError,
        polyrelay.AuthError,
        polyrelay.ProviderError,
    ):
        assert issubclass(cls, polyrelay.AllProvidersFailedError)
    for name in polyrelay.exceptions.__all__:
        assert issubclass(getattr(polyrelay, name), polyrelay.Error)


def test_config_error_names_the_field(emu: Emulator, tmp_path: Any) -> None:
    with pytest.raises(polyrelay.ConfigError) as caught:
        polyrelay.Client({"timezone": "Mars/Olympus"})
    assert caught.value.field == "timezone" and caught.value.kind == "config"
    assert "Mars/Olympus" in str(caught.value)
    with pytest.raises(polyrelay.ConfigError) as caught:
        polyrelay.Client({"capabilities": {"weather.current": {"chain": ["nope"]}}})
    assert caught.value.field == "capabilities.weather.current.chain"
    with pytest.raises(polyrelay.ConfigError) as caught:
        polyrelay.Client(str(tmp_path / "missing.toml"))
    assert caught.value.field == "config file"
    with pytest.raises(polyrelay.ConfigError) as caught:
        polyrelay.Client({"defaults": {"retry": {"max_attempts": 0}}})
    assert caught.value.field == "defaults.retry.max_attempts"
    with pytest.raises(TypeError):
        polyrelay.Client(42)  # type: ignore[arg-type]


def test_invalid_request_error_names_the_parameter(client: polyrelay.Client, emu: Emulator) -> None:
    with pytest.raises(polyrelay.InvalidRequestError) as caught:
        client.weather.current(lat=91, lon=0)
    error = caught.value
    assert (error.field, error.kind) == ("lat", "invalid_request")
    assert error.expected is not None and "between -90 and 90" in error.expected
    assert error.attempts == ()
    with pytest.raises(polyrelay.InvalidRequestError) as caught:
        client.call("weather.nowcast")
    assert caught.value.field == "capability" and "weather.current" in str(caught.value)
    with pytest.raises(polyrelay.InvalidRequestError) as caught:
        client.call("weather.current", lat=1, lon=2, altitude=3)
    assert caught.value.field == "altitude"
    assert emu.requests() == [], "nothing was sent"


def test_a_parameter_python_cannot_express_chains_the_cause(client: polyrelay.Client) -> None:
    with pytest.raises(polyrelay.InvalidRequestError) as caught:
        client.finance.fx_rates(symbols=["EUR", object()])  # type: ignore[list-item]
    assert caught.value.field == "symbols[1]"
    assert isinstance(caught.value.__cause__, TypeError)
    with pytest.raises(polyrelay.InvalidRequestError) as caught:
        client.weather.current(lat=float("nan"), lon=0)
    assert caught.value.field == "lat"


def test_not_found_error(emu: Emulator) -> None:
    emu.fault_always("/frankfurter/*", Fault.status(404))
    emu.fault_always("/currency-api/*", Fault.status(404))
    emu.fault_always("/exchangerate-api/*", Fault.status(404))
    with polyrelay.Client() as client, pytest.raises(polyrelay.NotFoundError) as caught:
        client.finance.fx_rates(base="EUR", symbols="USD")
    error = caught.value
    assert isinstance(error, LookupError)
    assert (error.kind, error.capability) == ("not_found", "finance.fx_rates")
    assert [a.outcome for a in error.attempts] == ["not_found"] * 3


def test_timeout_error_is_also_the_builtin(emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.hang())
    config = only("weather.current", "open-meteo", total_timeout="300ms")
    with polyrelay.Client(config) as client, pytest.raises(TimeoutError) as caught:
        client.weather.current(**BERLIN)
    error = caught.value
    assert isinstance(error, polyrelay.TimeoutError) and isinstance(error, polyrelay.Error)
    assert error.deadline == pytest.approx(0.3)
    assert error.capability == "weather.current" and error.kind == "timeout"
    assert error.attempts[0].provider == "open-meteo"


def test_missing_key_error() -> None:
    # No built-in provider requires a key yet, so the mapping is checked on
    # a representative core error.
    with pytest.raises(polyrelay.MissingKeyError) as caught:
        _native._sample_error("missing_key")
    error = caught.value
    assert isinstance(error, polyrelay.AllProvidersFailedError)
    assert error.kind == "missing_key" and error.capability == "weather.current"
    assert error.attempts[0].outcome == "skipped_no_key"
    assert "OPENWEATHER_API_KEY is not set" in str(error)
    assert "Setting a key for openweathermap" in str(error)


def test_rate_limited_error_says_when_to_retry(emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.respond(429, body=b"{}", retry_after=120))
    with polyrelay.Client(only("weather.current", "open-meteo")) as client:
        with pytest.raises(polyrelay.RateLimitedError) as caught:
            client.weather.current(**BERLIN)
        error = caught.value
        assert error.kind == "rate_limited"
        assert error.retry_after == pytest.approx(120, abs=1)
        assert error.attempts[0].outcome == "rate_limited" and error.attempts[0].status == 429
        # 120 s is beyond max_retry_after (60 s): the provider is benched,
        # and the next call, without asking it, says how long is left.
        with pytest.raises(polyrelay.RateLimitedError) as caught:
            client.weather.current(lat=1, lon=1)
        benched = caught.value
        assert benched.kind == "rate_limited"
        assert benched.retry_after == pytest.approx(120, abs=5)
        assert benched.attempts[0].outcome == "skipped_benched"
        assert emu.hits("/open-meteo/*") == 1


#: OpenAI refusing a prompt its safety system flags.
REFUSAL = json.dumps(
    {
        "error": {
            "message": "Your request was rejected as a result of our safety system.",
            "type": "invalid_request_error",
            "param": None,
            "code": "content_policy_violation",
        }
    }
).encode()
LLM_KEYS = {"openai": "sk-test-openai-0001", "mistral": "test-mistral-0002"}
PROMPT = [{"role": "user", "content": "a prompt the filter refuses"}]


def test_content_filtered_error_names_the_provider_and_its_reason(emu: Emulator) -> None:
    emu.fault_always("/openai/*", Fault.respond(400, body=REFUSAL))
    with polyrelay.Client(only("llm.chat", "openai", "mistral"), api_keys=LLM_KEYS) as client:
        with pytest.raises(polyrelay.ContentFilteredError) as caught:
            client.llm.chat(messages=PROMPT)
    error = caught.value
    assert not isinstance(error, polyrelay.AllProvidersFailedError)
    assert (error.kind, error.capability, error.provider) == (
        "content_filtered",
        "llm.chat",
        "openai",
    )
    assert error.reason is not None and "rejected as a result of our safety system" in error.reason
    assert str(error).startswith("llm.chat: openai refused the content: ")
    assert [(a.provider, a.outcome, a.status, a.tries) for a in error.attempts] == [
        ("openai", "content_filtered", 400, 1)
    ]
    assert emu.hits("/openai/*") == 1, "not retried"
    assert emu.hits("/mistral/*") == 0, "not sent to another provider"
    everything = str(error) + repr(error.attempts) + str(error.__dict__)
    assert all(key not in everything for key in LLM_KEYS.values())
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is polyrelay.ContentFilteredError
    assert (copy.provider, copy.reason) == (error.provider, error.reason)


async def test_content_filtered_fallback_lets_the_next_provider_answer(emu: Emulator) -> None:
    emu.fault_always("/openai/*", Fault.respond(400, body=REFUSAL))
    config = only("llm.chat", "openai", "mistral")
    config["capabilities"]["llm.chat"]["content_filtered_fallback"] = True
    async with polyrelay.AsyncClient(config, api_keys=LLM_KEYS) as client:
        result = await client.llm.chat(messages=PROMPT)
    assert result.provider == "mistral"
    assert result.attempts[0].outcome == "content_filtered"
    assert emu.hits("/openai/*") == 1


def test_quota_exhausted_error_says_when_it_resets_on_the_cores_clock(emu: Emulator) -> None:
    """``reset_at`` is the core's (its clock, its calendar), not recomputed
    from Python's wall clock: a client on a fake clock in 2025 gets the
    next midnight of that day in Paris."""
    config = only(
        "finance.fx_rates",
        "frankfurter",
        cache={"enabled": False},
        timezone="Europe/Paris",
        providers={"frankfurter": {"daily_quota": 1}},
    )
    # 2025-01-01T10:00:00Z, 11:00 in Paris.
    clock = _native.FakeClock(datetime(2025, 1, 1, 10, tzinfo=timezone.utc).timestamp())
    client = _native.Client(config=config, testing=True, clock=clock)
    client.call("finance.fx_rates", {"base": "EUR"})
    with pytest.raises(polyrelay.QuotaExhaustedError) as caught:
        client.call("finance.fx_rates", {"base": "EUR"})
    client.close()
    error = caught.value
    assert error.kind == "quota_exhausted"
    assert error.attempts[0].outcome == "skipped_quota"
    # Paris's next day starts at 23:00Z.
    assert error.reset_at == datetime(2025, 1, 1, 23, tzinfo=timezone.utc)
    assert error.retry_after == 13 * 3600
    assert pickle.loads(pickle.dumps(error)).reset_at == error.reset_at


def test_circuit_open_error(emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.status(503))
    config = only(
        "weather.current",
        "open-meteo",
        providers={
            "open-meteo": {
                "retry": {"max_attempts": 1},
                "breaker": {"sliding_window_size": 1, "minimum_number_of_calls": 1},
            }
        },
    )
    # Changed by issue #12: by default a call whose providers all have an
    # open breaker probes one (last resort); without the probe it fails as
    # before.
    config["capabilities"]["weather.current"]["last_resort_probe"] = False
    with polyrelay.Client(config) as client:
        with pytest.raises(polyrelay.ProviderError):
            client.weather.current(**BERLIN)
        with pytest.raises(polyrelay.CircuitOpenError) as caught:
            client.weather.current(lat=1, lon=1)
    error = caught.value
    assert error.kind == "circuit_open"
    assert error.attempts[0].outcome == "skipped_circuit_open"
    assert error.retry_after == pytest.approx(60, abs=1)


def test_auth_error_and_the_key_never_appears(emu: Emulator) -> None:
    secret = "CG-very-secret-key-0042"
    body = b'{"status": {"error_code": 10002, "error_message": "invalid key CG-very-secret-key-0042"}}'
    emu.fault_always("/coingecko/*", Fault.respond(401, body=body))
    config = only("crypto.price", "coingecko")
    with polyrelay.Client(config, api_keys={"coingecko": secret}) as client:
        with pytest.raises(polyrelay.AuthError) as caught:
            client.crypto.price(assets="BTC")
    error = caught.value
    assert error.kind == "auth" and error.attempts[0].outcome == "auth"
    assert error.attempts[0].status == 401
    everything = str(error) + repr(error) + repr(error.attempts) + str(error.__dict__)
    assert secret not in everything
    assert "[redacted]" in error.attempts[0].reason


def test_provider_error_has_status_and_provider(client: polyrelay.Client, emu: Emulator) -> None:
    emu.fault_always("/open-meteo/*", Fault.status(500))
    emu.fault_always("/met-norway/*", Fault.status(502))
    emu.fault_always("/wttr-in/*", Fault.status(503))
    with pytest.raises(polyrelay.ProviderError) as caught:
        client.weather.current(**BERLIN)
    error = caught.value
    assert (error.provider, error.status, error.kind) == ("wttr-in", 503, "provider_error")
    assert [a.status for a in error.attempts] == [500, 502, 503]
    assert str(error).startswith("weather.current: no provider could answer")


def test_all_providers_failed_for_different_reasons(emu: Emulator) -> None:
    emu.fault_always("/coingecko/*", Fault.respond(401, body=b"{}"))
    emu.fault_always("/coinpaprika/*", Fault.status(503))
    config = only("crypto.price", "coingecko", "coinpaprika")
    with polyrelay.Client(config, api_keys={"coingecko": "k-12345678"}) as client:
        with pytest.raises(polyrelay.AllProvidersFailedError) as caught:
            client.crypto.price(assets="BTC")
    error = caught.value
    assert type(error) is polyrelay.AllProvidersFailedError
    assert error.kind == "all_providers_failed"
    assert [(a.provider, a.outcome) for a in error.attempts] == [
        ("coingecko", "auth"),
        ("coinpaprika", "transient"),
    ]


def test_usage_error(emu: Emulator) -> None:
    client = polyrelay.Client()
    client.close()
    with pytest.raises(polyrelay.UsageError) as caught:
        client.call("weather.current", **BERLIN)
    assert caught.value.kind == "usage"
    with pytest.raises(polyrelay.UsageError):
        _native._sample_error("usage")


def test_a_rust_panic_is_a_polyrelay_error_not_a_crash() -> None:
    with pytest.raises(polyrelay.Error) as caught:
        _native._panic()
    assert type(caught.value) is polyrelay.Error
    assert caught.value.kind == "internal"
    assert "deliberate panic" in str(caught.value)


def test_errors_survive_pickling(client: polyrelay.Client, emu: Emulator) -> None:
    emu.fault_always("*", Fault.status(503))
    with pytest.raises(polyrelay.ProviderError) as caught:
        client.weather.current(**BERLIN)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is polyrelay.ProviderError
    assert (copy.status, copy.provider, copy.attempts, str(copy)) == (
        caught.value.status,
        caught.value.provider,
        caught.value.attempts,
        str(caught.value),
    )
    timeout = pickle.loads(pickle.dumps(polyrelay.TimeoutError("late", deadline=1.0)))
    assert isinstance(timeout, builtins.TimeoutError) and timeout.deadline == 1.0
