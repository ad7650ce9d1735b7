"""``cost_usd`` on results, trail entries and stats, against the emulator:
Groq's recorded answers run ``llama-3.3-70b-versatile`` ($0.59 in, $0.79
out a million tokens in the shipped table)."""

from __future__ import annotations

import math

import polyrelay
from polyrelay.testing import Emulator

HELLO = [{"role": "user", "content": "What is the capital of France?"}]
KEYS = {"groq": "gsk-test"}
CONFIG = {"capabilities": {"llm.chat": {"chain": ["groq"]}}}


def test_a_chat_result_its_trail_and_stats_say_what_it_cost(emu: Emulator) -> None:
    # The plain fixture: 45 prompt and 8 generated tokens.
    expected = (45 * 0.59 + 8 * 0.79) / 1e6
    with polyrelay.Client(CONFIG, api_keys=KEYS) as c:
        result = c.llm.chat(messages=HELLO)
        assert not result.cached
        assert math.isclose(result.cost_usd, expected, rel_tol=1e-9)
        assert math.isclose(result.to_dict()["cost_usd"], expected, rel_tol=1e-9)
        [attempt] = result.attempts
        assert math.isclose(attempt.cost_usd, expected, rel_tol=1e-9)
        groq = c.stats()["groq"]
        assert (groq["input_tokens"], groq["output_tokens"]) == (45, 8)
        assert math.isclose(groq["cost_usd"], expected, rel_tol=1e-9)
        assert groq["unpriced_answers"] == 0
        # A cache hit spent nothing.
        again = c.llm.chat(messages=HELLO)
        assert again.cached and again.cost_usd == 0.0
        assert math.isclose(c.stats()["groq"]["cost_usd"], expected, rel_tol=1e-9)


def test_a_stream_result_says_what_it_cost(emu: Emulator) -> None:
    emu.stream("groq")
    # The recorded stream: 48 prompt and 8 generated tokens.
    expected = (48 * 0.59 + 8 * 0.79) / 1e6
    with polyrelay.Client(CONFIG, api_keys=KEYS) as c:
        stream = c.llm.stream(messages=HELLO)
        list(stream)
        assert math.isclose(stream.result.cost_usd, expected, rel_tol=1e-9)


def test_overrides_reprice_a_model_and_other_capabilities_have_no_cost(emu: Emulator) -> None:
    priced = {**CONFIG, "models": {"groq/llama-3.3-70b-versatile": {"output_per_mtok": 0.0}}}
    with polyrelay.Client(priced, api_keys=KEYS) as c:
        result = c.llm.chat(messages=HELLO)
        assert math.isclose(result.cost_usd, 45 * 0.59 / 1e6, rel_tol=1e-9)
    with polyrelay.Client({}) as c:
        weather = c.weather.current(lat=52.52, lon=13.41)
        assert weather.cost_usd is None and "cost_usd" not in weather.to_dict()
        assert weather.attempts[0].cost_usd is None
