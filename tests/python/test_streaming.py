"""Streamed chat answers: ``client.llm.stream(...)`` read with ``for`` and
``async for`` against the emulator's recorded provider streams, with
faults at a chunk (cut, stall, error event), fallback before the first
token, ``mid_stream = "continue"``, and every way of leaving early closing
the upstream request (``break`` + close, ``with``, collection, Ctrl-C, a
cancelled task, ``close()`` from another thread)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

import polyrelay
from polyrelay.testing import Emulator, Fault

HELLO = [{"role": "user", "content": "What is the capital of France?"}]
#: Groq's recorded stream: one event per chunk; event 0 only opens the
#: message, events 1-7 carry these texts, event 8 the finish and usage.
GROQ_TEXTS = ["The", " capital", " of", " France", " is", " Paris", "."]
GROQ_TEXT = "".join(GROQ_TEXTS)
KEYS = {"groq": "gsk-test", "mistral": "mistral-test", "openrouter": "or-test", "deepseek": "ds"}


def config(*chain: str, **chat: Any) -> Dict[str, Any]:
    """One fixed chat chain, no cache (unless a test wants it) and no
    retries, so each fault is seen once."""
    return {
        "cache": {"enabled": False},
        "defaults": {"retry": {"max_attempts": 1}},
        "capabilities": {"llm.chat": {"chain": list(chain), **chat}},
    }


def client(*chain: str, **chat: Any) -> polyrelay.Client:
    return polyrelay.Client(config(*chain, **chat), api_keys=KEYS)


def aclient(*chain: str, **chat: Any) -> polyrelay.AsyncClient:
    return polyrelay.AsyncClient(config(*chain, **chat), api_keys=KEYS)


def test_for_gives_the_providers_chunks_then_the_whole_result(emu: Emulator) -> None:
    path = emu.stream("groq")
    with client("groq") as c:
        stream = c.llm.stream(messages=HELLO, max_tokens=64, temperature=0.5)
        assert emu.hits(path) == 0, "nothing is sent before the first chunk is read"
        assert not stream.closed
        chunks = list(stream)
    assert [ch.text for ch in chunks] == GROQ_TEXTS
    assert {ch.kind for ch in chunks} == {"text"} and {ch.reasoning for ch in chunks} == {""}
    assert repr(chunks[0]) == "ChatChunk(text='The')"
    assert stream.text == GROQ_TEXT and stream.closed
    result = stream.result
    assert isinstance(result, polyrelay.Result) and result is stream.result
    assert result.provider == "groq" and result.capability == "llm.chat" and not result.cached
    assert result.data["text"] == GROQ_TEXT
    assert result.data["finish_reason"] == "stop"
    assert result.data["usage"]["output_tokens"] == 8
    assert [a.outcome for a in result.attempts] == ["success"]
    assert stream.parts == [{"provider": "groq", "chars": len(GROQ_TEXT)}]
    assert stream.time_to_first_token is not None and 0 < stream.time_to_first_token
    [sent] = emu.requests(path)
    body = json.loads(sent.body)
    assert body["stream"] is True and body["max_tokens"] == 64 and body["temperature"] == 0.5
    assert sent.header("authorization") == "Bearer gsk-test"
    assert list(stream) == [], "an ended stream yields nothing more"


async def test_async_for_works_on_the_stream_and_on_awaiting_it(emu: Emulator) -> None:
    emu.stream("groq")
    async with aclient("groq") as c:
        stream = c.llm.stream(messages=HELLO)
        assert isinstance(stream, polyrelay.AsyncChatStream)
        texts = [chunk.text async for chunk in stream]
        assert texts == GROQ_TEXTS
        assert stream.result.data["text"] == GROQ_TEXT
        awaited = await c.llm.stream(messages=HELLO)
        assert isinstance(awaited, polyrelay.AsyncChatStream)
        assert [chunk.text async for chunk in awaited] == GROQ_TEXTS
        assert awaited.result.provider == "groq"
        assert [chunk async for chunk in awaited] == []


async def test_chunks_are_handed_on_as_they_arrive_without_blocking_the_loop(
    emu: Emulator,
) -> None:
    # 20 ms between events: each chunk is awaited on its own, and the
    # event loop keeps running meanwhile.
    emu.stream("groq", delay=0.02)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.ensure_future(tick())
    arrivals: List[float] = []
    try:
        async with aclient("groq") as c:
            async for _ in c.llm.stream(messages=HELLO):
                arrivals.append(time.monotonic())
    finally:
        ticker.cancel()
    assert len(arrivals) == len(GROQ_TEXTS)
    # Six gaps of at least 20 ms: the chunks were not held back to the end.
    assert arrivals[-1] - arrivals[0] >= 0.1
    assert ticks >= 10, "the event loop was blocked while chunks were awaited"


def test_reasoning_chunks_are_apart_from_the_text(emu: Emulator) -> None:
    emu.stream("deepseek")
    with client("deepseek") as c:
        stream = c.llm.stream(messages=HELLO)
        chunks = list(stream)
    reasoning = [ch for ch in chunks if ch.kind == "reasoning"]
    text = [ch for ch in chunks if ch.kind == "text"]
    assert reasoning and text
    assert all(ch.text == "" and ch.reasoning for ch in reasoning)
    assert all(ch.reasoning == "" and ch.text for ch in text)
    assert stream.text == "Paris." == stream.result.data["text"]
    assert stream.result.data["reasoning"] == "".join(ch.reasoning for ch in reasoning)


def test_invalid_parameters_raise_when_the_stream_is_made(emu: Emulator) -> None:
    with client("groq") as c:
        with pytest.raises(polyrelay.InvalidRequestError) as invalid:
            c.llm.stream(messages=[])
        assert invalid.value.field == "messages"
        with pytest.raises(polyrelay.InvalidRequestError) as invalid:
            c.llm.stream(messages=HELLO, temperature=-1.0)
        assert invalid.value.field == "temperature"
        with pytest.raises(polyrelay.InvalidRequestError):
            c.stream("weather.current", lat=1.0, lon=2.0)
    assert emu.requests() == []


def test_a_failure_before_the_first_token_falls_back_unseen(emu: Emulator) -> None:
    groq = emu.stream("groq")
    emu.stream("mistral")
    for fault in (Fault.status(503), Fault.at_chunk(0, "cut")):
        emu.fault_next(groq, fault)
        with client("groq", "mistral") as c:
            stream = c.llm.stream(messages=HELLO)
            text = "".join(ch.text for ch in stream)
        assert text == "Paris, la Ville Lumière." == stream.result.data["text"]
        assert stream.result.provider == "mistral"
        assert [(a.provider, a.outcome) for a in stream.result.attempts] == [
            ("groq", "transient"),
            ("mistral", "success"),
        ]
        assert stream.parts == [{"provider": "mistral", "chars": len(text)}]


@pytest.mark.parametrize(
    "action",
    ["cut", "error event"],
)
def test_a_failure_after_the_first_token_raises_with_the_partial_text(
    emu: Emulator, action: str
) -> None:
    path = emu.stream("groq")
    if action == "cut":
        fault = Fault.at_chunk(4, "cut")
    else:
        error = {"error": {"message": "overloaded", "type": "server_error"}}
        fault = Fault.at_chunk(4, "end_with", f"data: {json.dumps(error)}\n\n".encode())
    emu.fault_next(path, fault)
    seen: List[str] = []
    with client("groq", "mistral") as c:
        stream = c.llm.stream(messages=HELLO)
        with pytest.raises(polyrelay.StreamInterruptedError) as interrupted:
            for chunk in stream:
                seen.append(chunk.text)
    error = interrupted.value
    assert seen == GROQ_TEXTS[:3]
    assert error.partial_text == "The capital of" == stream.text
    assert error.kind == "stream_interrupted" and error.provider == "groq"
    assert error.capability == "llm.chat"
    assert isinstance(error, polyrelay.Error)
    assert [a.provider for a in error.attempts] == ["groq"]
    assert "interrupted after 14 characters" in error.attempts[0].reason
    assert "gsk-test" not in str(error) and "gsk-test" not in repr(error.attempts)
    assert emu.hits("/mistral/*") == 0, "with mid_stream = error nobody continues"
    assert stream.closed and list(stream) == []
    with pytest.raises(polyrelay.UsageError, match="failed"):
        stream.result


def test_mid_stream_continue_has_another_provider_finish_the_answer(emu: Emulator) -> None:
    path = emu.stream("groq")
    emu.stream("mistral")
    emu.fault_next(path, Fault.at_chunk(4, "cut"))
    with client("groq", "mistral", mid_stream="continue") as c:
        stream = c.llm.stream(messages=HELLO)
        text = "".join(ch.text for ch in stream)
    assert text == "The capital of" + "Paris, la Ville Lumière."
    assert stream.result.data["text"] == text and stream.result.provider == "mistral"
    assert stream.parts == [
        {"provider": "groq", "chars": 14},
        {"provider": "mistral", "chars": len("Paris, la Ville Lumière.")},
    ]
    [continuation] = emu.requests("/mistral/*")
    messages = json.loads(continuation.body)["messages"]
    assert "The capital of" in json.dumps(messages), "mistral was asked to continue the text"


def test_a_cached_answer_is_replayed_as_one_chunk(emu: Emulator) -> None:
    emu.stream("groq")
    cached = {**config("groq"), "cache": {"enabled": True}}
    with polyrelay.Client(cached, api_keys=KEYS) as c:
        first = c.llm.stream(messages=HELLO)
        assert [ch.text for ch in first] == GROQ_TEXTS
        again = c.llm.stream(messages=HELLO)
        assert [ch.text for ch in again] == [GROQ_TEXT]
        assert again.result.cached and again.time_to_first_token is None
        # The same cache as a plain call.
        assert c.llm.chat(messages=HELLO).cached
    assert emu.hits("/groq/*") == 1


def stalled_groq(emu: Emulator) -> str:
    """Groq's stream, stalling for good after its first two texts."""
    path = emu.stream("groq")
    emu.fault_next(path, Fault.at_chunk(3, "stall"))
    return path


def read_two(stream: Any) -> None:
    """Reads the two texts a stalled stream gives."""
    assert [next(stream).text, next(stream).text] == GROQ_TEXTS[:2]


def test_break_then_close_closes_the_upstream_request(emu: Emulator) -> None:
    path = stalled_groq(emu)
    with client("groq") as c:
        stream = c.llm.stream(messages=HELLO)
        for chunk in stream:
            if chunk.text == " capital":
                break
        assert emu.requests(path)[0].closed_early is False
        stream.close()
        assert emu.wait_for_closed_early(path, 1, 5.0)[0].closed_early
        assert stream.closed and list(stream) == [] and stream.text == "The capital"
        with pytest.raises(polyrelay.UsageError, match="closed before its end"):
            stream.result
        stream.close()  # harmless again


def test_a_with_block_and_collection_close_the_upstream_request(emu: Emulator) -> None:
    path = stalled_groq(emu)
    emu.fault_next(path, Fault.at_chunk(3, "stall"))
    with client("groq") as c:
        with c.llm.stream(messages=HELLO) as stream:
            read_two(stream)
        emu.wait_for_closed_early(path, 1, 5.0)
        dropped = c.llm.stream(messages=HELLO)
        read_two(dropped)
        del dropped
        gc.collect()
        assert len(emu.wait_for_closed_early(path, 2, 5.0)) == 2


def test_close_from_another_thread_ends_a_blocked_read(emu: Emulator) -> None:
    path = stalled_groq(emu)
    with client("groq") as c:
        stream = c.llm.stream(messages=HELLO)
        read_two(stream)
        rest: List[Any] = []
        reader = threading.Thread(target=lambda: rest.extend(stream), daemon=True)
        reader.start()
        # Time for the reader to block on the stall (the test holds either
        # way; without this, the close could come before the read).
        reader.join(0.2)
        assert reader.is_alive(), "the read waits for the stalled stream"
        stream.close()
        reader.join(3.0)
        assert not reader.is_alive(), "close() ended the blocked read"
        assert rest == []
    emu.wait_for_closed_early(path, 1, 5.0)


async def test_break_then_aclose_and_async_with_close_the_upstream(emu: Emulator) -> None:
    path = stalled_groq(emu)
    emu.fault_next(path, Fault.at_chunk(3, "stall"))
    async with aclient("groq") as c:
        stream = c.llm.stream(messages=HELLO)
        async for chunk in stream:
            if chunk.text == " capital":
                break
        await stream.aclose()
        emu.wait_for_closed_early(path, 1, 5.0)
        async with c.llm.stream(messages=HELLO) as scoped:
            assert (await scoped.__anext__()).text == "The"
        assert scoped.closed
        assert len(emu.wait_for_closed_early(path, 2, 5.0)) == 2


async def test_cancelling_a_pending_read_closes_the_upstream(emu: Emulator) -> None:
    path = stalled_groq(emu)
    async with aclient("groq") as c:
        stream = c.llm.stream(messages=HELLO)
        assert (await stream.__anext__()).text == "The"
        assert (await stream.__anext__()).text == " capital"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(stream.__anext__(), 0.2)
        emu.wait_for_closed_early(path, 1, 5.0)
        assert [chunk async for chunk in stream] == []
        assert stream.closed


async def test_a_task_cancelled_while_reading_closes_the_upstream(emu: Emulator) -> None:
    path = stalled_groq(emu)
    async with aclient("groq") as c:
        reached = asyncio.Event()

        async def consume() -> None:
            async for chunk in c.llm.stream(messages=HELLO):
                if chunk.text == " capital":
                    reached.set()

        task = asyncio.ensure_future(consume())
        await reached.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        emu.wait_for_closed_early(path, 1, 5.0)


CHILD = textwrap.dedent(
    """
    import sys, time, polyrelay
    config = {"capabilities": {"llm.chat": {"chain": ["groq"]}}}
    client = polyrelay.Client(config, api_keys={"groq": "k"})
    stream = client.llm.stream(messages=[{"role": "user", "content": "hi"}])
    try:
        for chunk in stream:
            print(chunk.text, flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        time.sleep(3)  # still alive while the test checks the upstream
        raise
    """
)


def main_thread_sleeps(pid: int) -> bool:
    """Whether the process's main thread is blocked (state S)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "S"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_ctrl_c_interrupts_a_blocked_read_and_closes_the_upstream(emu: Emulator) -> None:
    path = stalled_groq(emu)
    env = {**os.environ, "POLYRELAY_EMULATOR_URL": emu.url}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert [child.stdout.readline().strip() for _ in range(2)] == ["The", "capital"]
        # After its second text the child blocks in the third read.
        deadline = time.monotonic() + 10
        while not main_thread_sleeps(child.pid):
            assert time.monotonic() < deadline
        sent = time.monotonic()
        child.send_signal(2)  # SIGINT
        assert child.stdout.readline().strip() == "interrupted"
        assert time.monotonic() - sent < 2.0, "Ctrl-C was handled promptly"
        # While the child still lives, the emulator sees the request dropped.
        assert emu.wait_for_closed_early(path, 1, 2.0)[0].closed_early
        assert child.poll() is None
        _, stderr = child.communicate(timeout=10)
        assert "KeyboardInterrupt" in stderr
    finally:
        child.kill()
        child.communicate()


async def test_a_second_reader_is_refused_and_aclose_ends_a_pending_read(
    emu: Emulator,
) -> None:
    path = emu.stream("groq")
    emu.fault_next(path, Fault.at_chunk(0, "stall"))
    async with aclient("groq") as c:
        stream = c.llm.stream(messages=HELLO)
        first = stream.__anext__()  # pending: the provider stalls
        emu.wait_for_requests(path, 1, 5.0)  # sent: closing must close it
        with pytest.raises(polyrelay.UsageError, match="already being read"):
            await stream.__anext__()
        await stream.aclose()
        with pytest.raises(StopAsyncIteration):
            await first
    emu.wait_for_closed_early(path, 1, 5.0)


def test_display_stream_prints_the_text_outside_jupyter(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.stream("groq")
    with client("groq") as c:
        result = polyrelay.display_stream(c.llm.stream(messages=HELLO))
    assert capsys.readouterr().out == GROQ_TEXT + "\n"
    assert result.data["text"] == GROQ_TEXT


async def test_display_stream_of_an_async_stream_is_awaited(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    path = emu.stream("groq")
    emu.fault_next(path, Fault.at_chunk(4, "cut"))
    async with aclient("groq") as c:
        stream = c.llm.stream(messages=HELLO)
        with pytest.raises(polyrelay.StreamInterruptedError):
            await polyrelay.display_stream(stream)
    assert capsys.readouterr().out == "The capital of\n", "the partial text stays shown"
    assert stream.closed


# The pump: a task on the runtime reads each stream ahead of Python into
# a bounded queue (`ReadAhead::DEFAULT_CAPACITY`, 256 chunks, in
# core/src/stream/read_ahead.rs).

#: Longer than the read-ahead bound: the pump stops until Python reads.
LONG_WORDS = [f"w{i} " for i in range(700)]


def test_an_answer_longer_than_the_read_ahead_is_read_whole_by_a_slow_reader(
    emu: Emulator,
) -> None:
    emu.script_chat("groq", [{"text": "".join(LONG_WORDS)}])
    with client("groq") as c, c.llm.stream(messages=HELLO) as stream:
        chunks = [next(stream).text]
        time.sleep(0.3)  # the pump fills its queue, then waits for room
        chunks += [chunk.text for chunk in stream]
        assert chunks == LONG_WORDS
        assert stream.result.data["text"] == "".join(LONG_WORDS)


async def test_an_async_reader_pausing_past_the_read_ahead_gets_every_chunk(
    emu: Emulator,
) -> None:
    emu.script_chat("groq", [{"text": "".join(LONG_WORDS)}])
    async with aclient("groq") as c:
        stream = c.llm.stream(messages=HELLO)

        async def read() -> List[str]:
            texts = []
            async for chunk in stream:
                texts.append(chunk.text)
                if len(texts) in (1, 300):
                    await asyncio.sleep(0.3)
            return texts

        assert await asyncio.wait_for(read(), 20) == LONG_WORDS
        assert stream.result.data["text"] == "".join(LONG_WORDS)


async def test_many_streams_read_at_once_each_get_their_own_answer(emu: Emulator) -> None:
    # The model's turn is the number of assistant messages a request carries.
    answers = [f"answer {n} " * (5 + n) for n in range(4)]
    emu.script_chat("groq", [{"text": text} for text in answers])

    def question(turn: int) -> List[Dict[str, str]]:
        earlier = [{"role": "assistant", "content": "earlier"}] * turn
        return [{"role": "user", "content": "hi"}, *earlier, {"role": "user", "content": "next"}]

    settings = {**config("groq"), "providers": {"groq": {"rate_limit": "1000/s"}}}
    async with polyrelay.AsyncClient(settings, api_keys=KEYS) as c:

        async def ask(turn: int) -> str:
            text = ""
            async for chunk in c.llm.stream(messages=question(turn)):
                text += chunk.text
                await asyncio.sleep(0)  # interleave the readers
            return text

        turns = [n % len(answers) for n in range(40)]
        got = await asyncio.wait_for(asyncio.gather(*(ask(t) for t in turns)), 30)
    assert got == [answers[t] for t in turns]


async def test_collecting_a_stream_while_a_read_waits_ends_that_read_and_the_upstream(
    emu: Emulator,
) -> None:
    path = stalled_groq(emu)
    async with aclient("groq") as c:
        stream = c.llm.stream(messages=HELLO)
        assert [(await stream.__anext__()).text for _ in range(2)] == GROQ_TEXTS[:2]
        pending = stream.__anext__()  # waits: the provider stalls
        del stream
        gc.collect()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(pending, 5)
    emu.wait_for_closed_early(path, 1, 5.0)
