"""The assistant's Python side: the reply object and the streamed events.

The loop itself (LLM turns, tool calls through the normal pipeline,
limits) is the core's ``polyrelay::assistant``; options, conversations and
replies cross the native boundary as JSON text.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from . import _native

__all__ = ["AssistantReply", "AssistantEvent", "Conversation"]

#: A conversation as :attr:`AssistantReply.conversation` gives it
#: (``{"messages": [...]}``, plain JSON data), or its JSON text.
Conversation = Union[Mapping[str, Any], str]


class AssistantReply:
    """The answer of :meth:`Client.assistant <polyrelay.Client.assistant>`.

    Attributes:
        text: The model's final answer.
        conversation: The conversation so far (``{"messages": [...]}``,
            plain JSON data): pass it back as ``conversation=`` to continue,
            or store it with ``json.dumps``.
        steps: One dict per LLM turn: ``provider``, ``model``, ``attempts``,
            ``usage``, ``cost_usd`` and ``tools`` (each tool call's ``name``,
            ``capability``, ``arguments``, answering ``provider``,
            ``attempts``, ``error``).
        total_tokens: Tokens of every turn of this call.
        cost_usd: Price of every turn of this call (unpriced ones count 0).
    """

    __slots__ = ("text", "conversation", "steps", "total_tokens", "cost_usd")

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.text: str = data["text"]
        self.conversation: Dict[str, Any] = data["conversation"]
        self.steps: List[Dict[str, Any]] = data["steps"]
        self.total_tokens: int = data["total_tokens"]
        self.cost_usd: float = data["cost_usd"]

    def to_dict(self) -> Dict[str, Any]:
        """The reply as plain JSON data."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"<AssistantReply {len(self.steps)} steps: {self.text[:60]!r}>"


class AssistantEvent:
    """One event of a streamed assistant answer.

    ``kind`` is ``"tool"`` (a tool call finished: ``tool`` is its dict),
    ``"text"`` (``text`` is answer text to append) or ``"done"``
    (``reply`` is the whole :class:`AssistantReply`).
    """

    __slots__ = ("kind", "text", "tool", "reply")

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.kind: str = data["type"]
        self.text: str = data.get("text", "")
        self.tool: Optional[Dict[str, Any]] = data.get("tool")
        self.reply: Optional[AssistantReply] = (
            AssistantReply(data["reply"]) if "reply" in data else None
        )

    def to_dict(self) -> Dict[str, Any]:
        """The event as plain JSON data (``type`` and its field)."""
        if self.kind == "tool":
            return {"type": "tool", "tool": self.tool}
        if self.kind == "done" and self.reply is not None:
            return {"type": "done", "reply": self.reply.to_dict()}
        return {"type": self.kind, "text": self.text}

    def __repr__(self) -> str:
        return f"<AssistantEvent {self.kind}>"


def options(
    tools: Optional[Sequence[str]],
    max_steps: Optional[int],
    max_tokens: Optional[int],
    max_cost_usd: Optional[float],
    system: Optional[str],
    model: Optional[str],
) -> str:
    """The options as the native client takes them (``None``: default)."""
    return json.dumps(
        {
            "tools": None if tools is None else list(tools),
            "max_steps": max_steps,
            "max_tokens": max_tokens,
            "max_cost_usd": max_cost_usd,
            "system": system,
            "model": model,
        }
    )


def conversation_text(conversation: Optional[Conversation]) -> Optional[str]:
    """A conversation as JSON text for the native client."""
    if conversation is None or isinstance(conversation, str):
        return conversation
    return json.dumps(conversation)


def conversation_json(conversation: Conversation) -> str:
    """A conversation to save, as JSON text (required, unlike
    :func:`conversation_text`)."""
    return conversation if isinstance(conversation, str) else json.dumps(conversation)


def conversation_data(text: str) -> Dict[str, Any]:
    """A stored conversation's JSON text as plain data."""
    data: Dict[str, Any] = json.loads(text)
    return data


def reply(text: str) -> AssistantReply:
    return AssistantReply(json.loads(text))


def events(stream: _native.AssistantStream) -> Iterator[AssistantEvent]:
    """The events of a native stream, closing it when left early."""
    try:
        while True:
            event = stream.next_event()
            if event is None:
                return
            yield AssistantEvent(json.loads(event))
    finally:
        stream.close()


async def aevents(stream: _native.AssistantStream) -> AsyncIterator[AssistantEvent]:
    """:func:`events` for asyncio."""
    try:
        while True:
            event = await stream.anext_event()
            if event is None:
                return
            yield AssistantEvent(json.loads(event))
    finally:
        stream.close()
