"""Budgets from Python, against the emulator: a budget in the configuration,
the ``tag`` parameter of the typed helpers, the error of a call no provider
may take any more, and the budget's state in ``health()``. Groq's recorded
answer reports 45 prompt and 8 generated tokens."""

from __future__ import annotations

import pytest

import polyrelay
from polyrelay.testing import Emulator

HELLO = [{"role": "user", "content": "What is the capital of France?"}]
KEYS = {"groq": "gsk-test"}
GROQ = "/groq/openai/v1/chat/completions"


def config(**budget: object) -> dict:
    return {
        "cache": {"enabled": False},
        "capabilities": {"llm.chat": {"chain": ["groq"]}},
        "budgets": {"team-a": {"tokens": 60, "period": "day", **budget}},
    }


def test_a_tagged_call_past_its_budget_is_not_sent(emu: Emulator) -> None:
    with polyrelay.Client(config(tags=["team-a"]), api_keys=KEYS) as c:
        # Estimated at 12 prompt tokens and 10 to write, settled at 53.
        c.llm.chat(messages=HELLO, max_tokens=10, tag="team-a")
        budget = c.health()["budgets"]["team-a"]
        assert (budget["unit"], budget["limit"], budget["spent"]) == ("tokens", 60, 53)
        assert budget["period"] == "day" and budget["remaining"] == 7
        assert budget["reset_at"]
        html = c.health()._repr_html_()
        assert "team-a" in html and "53.0 / 60.0 tokens" in html

        with pytest.raises(polyrelay.QuotaExhaustedError) as raised:
            c.llm.chat(messages=HELLO, max_tokens=10, tag="team-a")
        [attempt] = raised.value.attempts
        assert attempt.outcome == "skipped_budget" and attempt.skipped
        assert "budget team-a has 7 tokens left" in attempt.reason
        assert raised.value.reset_at is not None
        assert emu.hits(GROQ) == 1

        # Another caller's tag is not counted by this budget.
        c.llm.chat(messages=HELLO, max_tokens=10, tag="team-b")
        assert emu.hits(GROQ) == 2
        assert c.health()["budgets"]["team-a"]["spent"] == 53


def test_a_tag_is_checked_before_anything_is_sent(emu: Emulator) -> None:
    with polyrelay.Client(config(), api_keys=KEYS) as c:
        with pytest.raises(polyrelay.InvalidRequestError) as raised:
            c.llm.chat(messages=HELLO, tag="team a")
        assert raised.value.field == "tag"
        with pytest.raises(polyrelay.InvalidRequestError):
            c.llm.embeddings(inputs="x", tag="x" * 65)
        assert emu.served == 0


def test_a_budget_naming_an_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(polyrelay.ConfigError) as raised:
        polyrelay.Client(config(providers=["nope"]))
    assert raised.value.field == "budgets.team-a.providers"
