"""Context-window fallback from Python, against the emulator: a group's
deployment whose window the prompt's estimate exceeds is passed over, a
``context_fallback`` group takes a prompt too long for every deployment of
its group, and a prompt no model fits raises ``ContextLengthExceededError``."""

from __future__ import annotations

import pickle

import pytest

import polyrelay
from polyrelay.testing import Emulator

KEYS = {"openai": "sk-test-openai", "groq": "gsk-test"}
CONFIG = {
    "cache": {"enabled": False},
    "models": {
        "openai/gpt-small": {"context_window": 1000},
        "groq/llama-big": {"context_window": 8000},
    },
    "deployments": {
        "small": {"provider": "openai", "model": "gpt-small"},
        "big": {"provider": "groq", "model": "llama-big"},
    },
    "groups": {
        "fast": {"deployments": ["small"], "context_fallback": "long"},
        "long": {"deployments": ["big"]},
    },
}


def ask(c: polyrelay.Client, chars: int) -> polyrelay.Result:
    return c.llm.chat(messages=[{"role": "user", "content": "x" * chars}], model="fast")


def test_a_prompt_too_long_for_a_group_goes_to_its_context_fallback(emu: Emulator) -> None:
    with polyrelay.Client(CONFIG, api_keys=KEYS) as c:
        short = ask(c, 40)
        # 20 000 characters: about 5004 tokens, over gpt-small's 1000.
        long = ask(c, 20_000)
    assert [(a.deployment, a.outcome) for a in short.attempts] == [("small", "success")]
    assert long.provider == "groq"
    assert [(a.deployment, a.outcome) for a in long.attempts] == [
        ("small", "skipped_context_window"),
        ("big", "success"),
    ]
    assert "estimated 5004 tokens > context window 1000" in long.attempts[0].reason
    assert emu.hits("/openai/v1/chat/completions") == 1


def test_a_prompt_no_model_fits_raises_a_typed_error(emu: Emulator) -> None:
    with polyrelay.Client(CONFIG, api_keys=KEYS) as c:
        with pytest.raises(polyrelay.ContextLengthExceededError) as raised:
            ask(c, 40_000)
    error = raised.value
    assert isinstance(error, ValueError)
    assert error.kind == "context_length_exceeded"
    assert (error.estimated_tokens, error.largest_window) == (10_004, 8000)
    assert [a.outcome for a in error.attempts] == ["skipped_context_window"] * 2
    assert emu.requests() == []
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.largest_window) == (type(error), 8000)
