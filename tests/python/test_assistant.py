"""The assistant from Python: ``client.assistant(...)`` (sync and async)
and ``client.assistant_stream(...)`` against a scripted model in the
emulator (``Emulator.script_chat``). A two-tool question whose weather
call falls back past a provider that is down; a looping model stopped by
``max_steps`` and by ``max_cost_usd`` with ``LimitReachedError`` carrying
the conversation; a JSON round trip of the conversation that resumes; an
unknown tool and invalid arguments as error results, without any network
call; conversations kept by id (``conversation_id=``) in memory and in
the SQLite file across clients, streamed and async, with bad ids refused
before anything is sent. The loop itself is tested in the core
(``core/tests/assistant.rs``, ``core/tests/conversations.rs``)."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

import polyrelay
from polyrelay.testing import Emulator, Fault

CHAT = "/openai/v1/chat/completions"
CONFIG: Dict[str, Any] = {
    "capabilities": {
        "llm.chat": {"chain": ["openai"]},
        "weather.current": {"chain": ["open-meteo", "met-norway", "wttr-in"]},
        "finance.fx_rates": {"chain": ["frankfurter"]},
    }
}
KEYS = {"openai": "sk-test-openai-0123456789"}
ANSWER = "Oslo is cloudy at 3 °C, and 1 EUR buys 11.75 NOK."
OSLO = {"name": "weather_current", "arguments": {"lat": 59.91, "lon": 10.75}}
EUR_NOK = {"name": "finance_fx_rates", "arguments": {"base": "EUR", "symbols": ["NOK"]}}
LOOP: List[Dict[str, Any]] = [
    {
        "tool_calls": [
            {"name": "crypto_price", "arguments": {"assets": ["BTC"], "vs_currencies": ["USD"]}}
        ],
        # gpt-4.1 at $2 in and $8 out a million: 0.006 USD a turn.
        "usage": {"input_tokens": 1000, "output_tokens": 500},
    }
]


def client() -> polyrelay.Client:
    return polyrelay.Client(CONFIG, api_keys=KEYS)


def test_two_tools_with_the_weather_call_falling_back(emu: Emulator) -> None:
    emu.script_chat("openai", [{"tool_calls": [OSLO, EUR_NOK]}, {"text": ANSWER}])
    emu.fault_always("/open-meteo/*", Fault.status(503))
    with client() as c:
        reply = c.assistant("What is the weather in Oslo and the EUR→NOK rate?")
    assert reply.text == ANSWER
    assert len(reply.steps) == 2
    weather, fx = reply.steps[0]["tools"]
    assert weather["capability"] == "weather.current"
    assert weather["provider"] == "met-norway"
    assert weather["attempts"][0]["provider"] == "open-meteo"
    assert weather["attempts"][0]["outcome"] != "success"
    assert fx["provider"] == "frankfurter"
    assert reply.steps[0]["provider"] == "openai"
    json.dumps(reply.conversation)  # plain JSON data
    roles = [m["role"] for m in reply.conversation["messages"]]
    assert roles == ["user", "assistant", "tool", "tool", "assistant"]


def test_the_step_and_cost_limits_stop_a_looping_model(emu: Emulator) -> None:
    emu.script_chat("openai", LOOP)
    with client() as c:
        with pytest.raises(polyrelay.LimitReachedError) as steps:
            c.assistant("Bitcoin?", max_steps=3)
        assert steps.value.kind == "limit_reached"
        assert steps.value.limit == "max_steps"
        assert len(steps.value.steps) == 3
        assert len(steps.value.conversation["messages"]) == 1 + 3 * 2
        assert emu.hits(CHAT) == 3
        emu.clear_log()
        # Another question: the same one would be answered by the cache,
        # which costs nothing.
        with pytest.raises(polyrelay.LimitReachedError) as cost:
            c.assistant("Ether?", max_cost_usd=0.01)
        assert cost.value.limit == "max_cost_usd"
        assert len(cost.value.steps) == 2
        assert emu.hits(CHAT) == 2
        with pytest.raises(polyrelay.InvalidRequestError):
            c.assistant("Bitcoin?", max_steps=0)


def test_a_conversation_survives_json_and_resumes(emu: Emulator) -> None:
    emu.script_chat(
        "openai",
        [{"tool_calls": [OSLO]}, {"text": "It is 3 °C."}, {"text": "Same tomorrow."}],
    )
    with client() as c:
        first = c.assistant("Weather in Oslo?")
        saved = json.dumps(first.conversation)
        # The JSON text itself is accepted as well as the dict.
        second = c.assistant("And tomorrow?", conversation=saved)
        assert second.text == "Same tomorrow."
        assert len(second.conversation["messages"]) == 6
        with pytest.raises(polyrelay.InvalidRequestError):
            c.assistant("x", conversation={"messages": [{"role": "robot", "content": "x"}]})
    sent = json.loads(emu.requests(CHAT)[-1].body)
    questions = [m["content"] for m in sent["messages"] if m["role"] == "user"]
    assert questions == ["Weather in Oslo?", "And tomorrow?"]


def test_an_unknown_tool_and_bad_arguments_become_error_results(emu: Emulator) -> None:
    emu.script_chat(
        "openai",
        [
            {
                "tool_calls": [
                    {"name": "launch_rockets", "arguments": {}},
                    {"name": "weather_current", "arguments": {"lat": "north", "lon": 1}},
                ]
            },
            {"text": "Sorry."},
        ],
    )
    with client() as c:
        reply = c.assistant("Weather?", tools=["weather.current"])
    assert reply.text == "Sorry."
    unknown, invalid = reply.steps[0]["tools"]
    assert unknown["error_kind"] == "invalid_request"
    assert "unknown tool" in unknown["error"]
    assert invalid["error_kind"] == "invalid_request"
    assert "`lat`" in invalid["error"]
    assert emu.hits("/open-meteo/*") == emu.hits("/met-norway/*") == 0
    declared = json.loads(emu.requests(CHAT)[0].body)["tools"]
    assert [t["function"]["name"] for t in declared] == ["weather_current"]


def test_the_stream_yields_tool_progress_then_text(emu: Emulator) -> None:
    emu.script_chat("openai", [{"tool_calls": [OSLO, EUR_NOK]}, {"text": ANSWER}])
    with client() as c:
        events = list(c.assistant_stream("Oslo weather and EUR→NOK?"))
    kinds = [e.kind for e in events]
    assert kinds[:2] == ["tool", "tool"]
    assert kinds[-1] == "done"
    assert "".join(e.text for e in events if e.kind == "text") == ANSWER
    done = events[-1].reply
    assert done is not None and done.text == ANSWER


async def test_async_assistant_and_stream(emu: Emulator) -> None:
    emu.script_chat("openai", LOOP)
    async with polyrelay.AsyncClient(CONFIG, api_keys=KEYS) as c:
        with pytest.raises(polyrelay.LimitReachedError) as stopped:
            await c.assistant("Bitcoin?", max_steps=2)
        assert stopped.value.limit == "max_steps"
        emu.script_chat("openai", [{"tool_calls": [EUR_NOK]}, {"text": "11.75 NOK."}])
        reply = await c.assistant("EUR→NOK?")
        assert reply.text == "11.75 NOK."
        text = ""
        async for event in c.assistant_stream("EUR→NOK again?"):
            text += event.text
        assert text == "11.75 NOK."


def _user_questions(emu: Emulator) -> List[str]:
    sent = json.loads(emu.requests(CHAT)[-1].body)
    return [m["content"] for m in sent["messages"] if m["role"] == "user"]


def test_a_conversation_kept_by_id_resumes_in_a_new_client_on_the_sqlite_file(
    emu: Emulator, tmp_path: Any
) -> None:
    emu.script_chat(
        "openai",
        [{"tool_calls": [OSLO]}, {"text": "It is 3 °C."}, {"text": "Same tomorrow."}],
    )
    config = dict(CONFIG, analytics={"sqlite": str(tmp_path / "analytics.sqlite")})
    with polyrelay.Client(config, api_keys=KEYS) as c:
        assert c.conversation("chat-1") is None
        first = c.assistant("Weather in Oslo?", conversation_id="chat-1")
        assert first.text == "It is 3 °C."
        assert c.conversation("chat-1") == first.conversation
    with polyrelay.Client(config, api_keys=KEYS) as c:
        second = c.assistant("And tomorrow?", conversation_id="chat-1")
        assert second.text == "Same tomorrow."
        # The model was sent the earlier turn.
        assert _user_questions(emu) == ["Weather in Oslo?", "And tomorrow?"]
        stored = c.conversation("chat-1")
        assert stored == second.conversation
        assert stored is not None and len(stored["messages"]) == 6
        # Saved and listed, most recent first.
        c.save_conversation("chat-2", {"messages": [{"role": "user", "content": "hi"}]})
        c.save_conversation("chat-3", json.dumps(first.conversation))
        # (Saved in the same millisecond, the greater id comes first.)
        assert c.conversation_ids(limit=2) == ["chat-3", "chat-2"]
        assert set(c.conversation_ids()) == {"chat-1", "chat-2", "chat-3"}
        assert c.delete_conversation("chat-2") is True
        assert c.delete_conversation("chat-2") is False
        assert c.conversation("chat-2") is None


def test_conversation_ids_are_checked_before_anything_is_sent(emu: Emulator) -> None:
    emu.script_chat("openai", [{"text": "Hello."}])
    with client() as c:
        for bad in ["", "has space", "a/b", "x" * 129]:
            with pytest.raises(polyrelay.InvalidRequestError) as error:
                c.assistant("Hi?", conversation_id=bad)
            assert "conversation_id" in str(error.value)
            with pytest.raises(polyrelay.InvalidRequestError):
                c.assistant_stream("Hi?", conversation_id=bad)
            with pytest.raises(polyrelay.InvalidRequestError):
                c.conversation(bad)
            with pytest.raises(polyrelay.InvalidRequestError):
                c.save_conversation(bad, {"messages": []})
            with pytest.raises(polyrelay.InvalidRequestError):
                c.delete_conversation(bad)
        with pytest.raises(polyrelay.InvalidRequestError):
            c.conversation_ids(limit=0)
        with pytest.raises(polyrelay.InvalidRequestError):
            c.conversation_ids(limit=-1)
        with pytest.raises(polyrelay.InvalidRequestError):
            c.save_conversation("ok", {"messages": [{"role": "robot", "content": "x"}]})
        # A conversation and an id together: which one to continue?
        with pytest.raises(polyrelay.InvalidRequestError):
            c.assistant("Hi?", conversation={"messages": []}, conversation_id="ok")
    assert emu.hits(CHAT) == 0


def test_a_streamed_answer_is_saved_when_done_and_not_when_left_early(emu: Emulator) -> None:
    emu.script_chat("openai", [{"tool_calls": [OSLO]}, {"text": "It is 3 °C."}])
    with client() as c:
        for event in c.assistant_stream("Weather in Oslo?", conversation_id="s"):
            assert event.kind == "tool"
            break
        assert c.conversation("s") is None
        events = list(c.assistant_stream("Weather in Oslo?", conversation_id="s"))
        done = events[-1].reply
        assert done is not None
        assert c.conversation("s") == done.conversation
        assert c.conversation_ids() == ["s"]


async def test_async_conversations_by_id(emu: Emulator) -> None:
    emu.script_chat("openai", [{"text": "Hello."}, {"text": "Hello again."}])
    async with polyrelay.AsyncClient(CONFIG, api_keys=KEYS) as c:
        first = await c.assistant("Hi?", conversation_id="a-1")
        assert await c.conversation("a-1") == first.conversation
        text = ""
        async for event in c.assistant_stream("Hi again?", conversation_id="a-1"):
            text += event.text
        assert text == "Hello again."
        assert _user_questions(emu) == ["Hi?", "Hi again?"]
        stored = await c.conversation("a-1")
        assert stored is not None and len(stored["messages"]) == 4
        await c.save_conversation("a-2", first.conversation)
        assert await c.conversation_ids(limit=5) == ["a-2", "a-1"]
        assert await c.delete_conversation("a-1") is True
        assert await c.conversation("a-1") is None
        with pytest.raises(polyrelay.InvalidRequestError):
            await c.conversation_ids(limit=0)


def test_a_scripted_anthropic_model_speaks_its_own_format(emu: Emulator) -> None:
    # Any built-in LLM provider can be scripted, in its own wire format.
    path = emu.script_chat(
        "anthropic", [{"tool_calls": [OSLO, EUR_NOK]}, {"text": ANSWER}], "claude-haiku-4-5"
    )
    assert path == "/anthropic/v1/messages"
    chain: Dict[str, Any] = {"llm.chat": {"chain": ["anthropic"]}}
    config = dict(CONFIG, capabilities=dict(CONFIG["capabilities"], **chain))
    with polyrelay.Client(config, api_keys={"anthropic": "sk-ant-test"}) as c:
        reply = c.assistant("What is the weather in Oslo and the EUR→NOK rate?")
        assert reply.text == ANSWER
        tools = reply.steps[0]["tools"]
        assert [t["capability"] for t in tools] == ["weather.current", "finance.fx_rates"]
        events = list(c.assistant_stream("Oslo weather and EUR→NOK, streamed?"))
    assert [e.kind for e in events][:2] == ["tool", "tool"]
    assert "".join(e.text for e in events if e.kind == "text") == ANSWER
    sent = [json.loads(r.body) for r in emu.requests(path)]
    assert len(sent) == 4
    # The results went back as `tool_result` blocks of a user turn.
    results = [
        block
        for message in sent[1]["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block["type"] == "tool_result"
    ]
    assert [b["tool_use_id"] for b in results] == ["toolu_0_0", "toolu_0_1"]
    assert [b.get("stream") for b in sent] == [None, None, True, True]
