"""Tool calls from Python: ``client.llm.chat(tools=..., tool_choice=...)``
reaches the core as given (the provider is sent its own form of the tools),
and a ``tool_choice`` naming no declared tool is refused before any
request. How each provider's tool-call answers are read is checked by the
core's tests (``core/tests/tool_calls.rs``)."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

import polyrelay
from polyrelay.testing import Emulator

HELLO = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER: List[Dict[str, Any]] = [
    {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


def client() -> polyrelay.Client:
    return polyrelay.Client(
        {"cache": {"enabled": False}, "capabilities": {"llm.chat": {"chain": ["mistral"]}}},
        api_keys={"mistral": "mistral-test"},
    )


def test_tools_and_tool_choice_are_sent_in_the_providers_form(emu: Emulator) -> None:
    with client() as c:
        c.llm.chat(messages=HELLO, tools=WEATHER, tool_choice="required")
    body = json.loads(emu.requests("/mistral/v1/chat/completions")[-1].body)
    assert body["tools"][0]["type"] == "function"
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["tools"][0]["function"]["parameters"] == WEATHER[0]["parameters"]
    assert body["tool_choice"] in ("required", "any")


def test_a_tool_choice_naming_no_declared_tool_is_refused_before_sending(emu: Emulator) -> None:
    choice = {"type": "function", "function": {"name": "get_time"}}
    with client() as c:
        with pytest.raises(polyrelay.InvalidRequestError) as refused:
            c.llm.chat(messages=HELLO, tools=WEATHER, tool_choice=choice)
    assert "tool_choice" in str(refused.value)
    assert emu.requests("/mistral/v1/chat/completions") == []
