"""Streamed chat replies as server-sent events."""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any, AsyncIterator, Dict, Literal, Mapping, Optional

from fastapi.responses import Response, StreamingResponse

from .._assistant import AssistantEvent
from .._native import AsyncChatStream, ChatChunk, Result
from ..exceptions import Error
from ._errors import _public, error_response

_log = logging.getLogger("polyrelay.fastapi")


#: What :func:`stream_response` sends per chunk: OpenAI's
#: ``chat.completion.chunk`` objects, or ``{"text": ...}`` objects.
StreamFormat = Literal["openai", "text"]


def _event(payload: Mapping[str, object], event: Optional[str] = None) -> bytes:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    head = "" if event is None else f"event: {event}\n"
    return f"{head}data: {data}\n\n".encode()


class _Events:
    """The server-sent events of one streamed reply, in one format."""

    def __init__(self, format: StreamFormat, model: Optional[str], reasoning: bool) -> None:
        self.format = format
        self.model = model or "polyrelay"
        self.reasoning = reasoning
        self.id = f"chatcmpl-{secrets.token_hex(12)}"
        self.created = int(time.time())
        self.sent_role = False

    def _openai(self, delta: Dict[str, object], **extra: object) -> bytes:
        choice: Dict[str, object] = {"index": 0, "delta": delta, "finish_reason": None}
        if not self.sent_role:
            delta["role"] = "assistant"
            self.sent_role = True
        payload: Dict[str, object] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }
        if "finish_reason" in extra:
            choice["finish_reason"] = extra.pop("finish_reason")
        payload.update(extra)
        return _event(payload)

    def chunk(self, chunk: ChatChunk) -> Optional[bytes]:
        """The event of a chunk, or ``None`` for reasoning left out."""
        if chunk.kind == "reasoning":
            if not self.reasoning:
                return None
            if self.format == "openai":
                return self._openai({"reasoning_content": chunk.reasoning})
            return _event({"reasoning": chunk.reasoning})
        if self.format == "openai":
            return self._openai({"content": chunk.text})
        return _event({"text": chunk.text})

    def end(self, result: Result) -> bytes:
        """The events closing a completed reply: finish reason and usage."""
        data = result.data
        usage = data.get("usage") or {}
        finish_reason = data.get("finish_reason") or "stop"
        if self.format == "text":
            return _event(
                {"finish_reason": finish_reason, "model": data.get("model"), "usage": usage},
                "done",
            )
        self.model = data.get("model") or self.model
        final = self._openai(
            {},
            finish_reason=finish_reason,
            usage={
                "prompt_tokens": usage.get("input_tokens"),
                "completion_tokens": usage.get("output_tokens"),
                "total_tokens": usage.get("total_tokens"),
            },
        )
        return final + b"data: [DONE]\n\n"

    @staticmethod
    def error(error: BaseException, partial_chars: int) -> bytes:
        """The final event of a reply that failed: fixed texts only."""
        if isinstance(error, Error):
            kind, message = error.kind, _public(error)[1]
        else:
            kind, message = "internal", "internal error"
        return _event(
            {"error": {"type": kind, "message": message, "partial_chars": partial_chars}},
            "error",
        )


async def stream_response(
    stream: AsyncChatStream,
    *,
    format: StreamFormat = "openai",
    model: Optional[str] = None,
    include_reasoning: bool = False,
    headers: Optional[Mapping[str, str]] = None,
) -> Response:
    """Answers with ``stream`` as server-sent events (``text/event-stream``).

    The stream is opened first: one that cannot open (every provider down,
    refused, …) answers with the same HTTP error as a plain call
    (:func:`error_response`), before any event. Then, with
    ``format="openai"``, one OpenAI ``chat.completion.chunk`` per chunk
    (``model`` names the model in them until the final chunk, which has
    the model that answered, the ``finish_reason`` and the ``usage``),
    then ``data: [DONE]``; with ``format="text"``, ``{"text": ...}`` per
    chunk, then an ``event: done`` with ``finish_reason``, ``model`` and
    ``usage``. Hidden reasoning is left out unless ``include_reasoning``
    (as ``reasoning_content`` deltas, or ``{"reasoning": ...}``).

    A failure after the first chunk ends the reply with an ``event: error``
    whose data is ``{"error": {"type": kind, "message": fixed text,
    "partial_chars": characters sent}}``; the details go to the server log.
    A client that disconnects closes the upstream request.
    """
    events = _Events(format, model, include_reasoning)
    try:
        first: Optional[ChatChunk] = await stream.__anext__()
    except StopAsyncIteration:
        first = None
    except Error as error:
        stream.close()
        _log.warning("a stream failed to open: %s (%s)", error.kind, error)
        return error_response(error)

    async def body() -> AsyncIterator[bytes]:
        chunk = first
        try:
            while chunk is not None:
                event = events.chunk(chunk)
                if event is not None:
                    yield event
                try:
                    chunk = await stream.__anext__()
                except StopAsyncIteration:
                    chunk = None
            yield events.end(stream.result)
        except Exception as error:
            if isinstance(error, Error):
                _log.warning("a stream failed: %s (%s)", error.kind, error)
            else:
                _log.exception("a stream failed")
            yield events.error(error, len(stream.text))
        finally:
            # Also when the client disconnected (the task is cancelled).
            stream.close()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
    )


def _tool_event(tool: Mapping[str, Any]) -> bytes:
    """A finished tool call, without its trail (provider names and
    reasons stay in the server log)."""
    return _event(
        {
            "name": tool.get("name"),
            "capability": tool.get("capability"),
            "ok": tool.get("error") is None,
        },
        "tool",
    )


async def assistant_response(
    events: AsyncIterator[AssistantEvent],
    *,
    headers: Optional[Mapping[str, str]] = None,
) -> Response:
    """Answers with a streamed assistant reply
    (:meth:`AsyncClient.assistant_stream
    <polyrelay.AsyncClient.assistant_stream>`) as server-sent events.

    The first event is awaited first: an assistant that fails before it
    (its first LLM turn failing, …) answers with the same HTTP error as a
    plain call (:func:`error_response`). Then an ``event: tool`` per
    finished tool call (``{"name", "capability", "ok"}``), ``{"text": ...}``
    per piece of the answer, and an ``event: done`` with ``{"text",
    "conversation", "steps"}`` (``conversation`` continues the dialogue,
    ``steps`` counts the LLM turns). A failure later (a limit reached, an
    LLM turn failing) ends it with an ``event: error`` of fixed texts, as
    :func:`stream_response` does; a client that disconnects cancels the
    turn in flight.
    """
    iterator = events.__aiter__()
    try:
        first: Optional[AssistantEvent] = await iterator.__anext__()
    except StopAsyncIteration:
        first = None
    except Error as error:
        _log.warning("an assistant failed to start: %s (%s)", error.kind, error)
        return error_response(error)

    async def body() -> AsyncIterator[bytes]:
        event = first
        sent = 0
        try:
            while event is not None:
                if event.kind == "tool" and event.tool is not None:
                    yield _tool_event(event.tool)
                elif event.kind == "text":
                    sent += len(event.text)
                    yield _event({"text": event.text})
                elif event.kind == "done" and event.reply is not None:
                    reply = event.reply
                    yield _event(
                        {
                            "text": reply.text,
                            "conversation": reply.conversation,
                            "steps": len(reply.steps),
                        },
                        "done",
                    )
                try:
                    event = await iterator.__anext__()
                except StopAsyncIteration:
                    event = None
        except Exception as error:
            if isinstance(error, Error):
                _log.warning("an assistant failed: %s (%s)", error.kind, error)
            else:
                _log.exception("an assistant failed")
            yield _Events.error(error, sent)
        finally:
            # Also when the client disconnected: closing the generator
            # closes the native stream.
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
    )
