"""Showing a streamed answer as it arrives: an updating output in Jupyter
(through IPython's display, when running in a kernel), printed text
elsewhere."""

from __future__ import annotations

import importlib
import sys
import time
from html import escape
from typing import Any, Coroutine, Union, overload

from ._native import AsyncChatStream, ChatStream, Result
from ._progress import REFRESH_SECONDS, _in_jupyter_kernel

__all__ = ["display_stream"]


class _LiveText:
    """The answer so far: one Jupyter output updated in place (at most
    every ``REFRESH_SECONDS``, and at the end), or text printed to stdout
    as it comes."""

    def __init__(self) -> None:
        self.text = ""
        self._handle: Any = None
        self._shown = ""
        self._drawn_at = 0.0
        if _in_jupyter_kernel():
            # Imported only in a kernel (where IPython is), untyped.
            ipython_display: Any = importlib.import_module("IPython.display")
            self._handle = ipython_display.display(self, display_id=True)

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f'<div style="white-space:pre-wrap">{escape(self.text)}</div>'

    def add(self, text: str) -> None:
        """Appends ``text``, shown now or at the next redraw."""
        if not text:
            return
        self.text += text
        if self._handle is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        elif time.monotonic() - self._drawn_at >= REFRESH_SECONDS:
            self._draw()

    def _draw(self) -> None:
        if self._shown != self.text:
            self._drawn_at = time.monotonic()
            self._shown = self.text
            self._handle.update(self)

    def close(self) -> None:
        """Shows the whole text (and ends the printed line)."""
        if self._handle is not None:
            self._draw()
        elif self.text:
            sys.stdout.write("\n")
            sys.stdout.flush()


def _show(stream: ChatStream) -> Result:
    live = _LiveText()
    try:
        with stream:
            for chunk in stream:
                live.add(chunk.text)
    finally:
        live.close()
    return stream.result


async def _ashow(stream: AsyncChatStream) -> Result:
    live = _LiveText()
    try:
        async with stream:
            async for chunk in stream:
                live.add(chunk.text)
    finally:
        live.close()
    return stream.result


@overload
def display_stream(stream: ChatStream) -> Result: ...
@overload
def display_stream(stream: AsyncChatStream) -> Coroutine[Any, Any, Result]: ...
def display_stream(
    stream: Union[ChatStream, AsyncChatStream],
) -> Union[Result, Coroutine[Any, Any, Result]]:
    """Shows a streamed answer's text as it arrives, then returns its
    :class:`~polyrelay.Result`: in Jupyter one output updated in place,
    elsewhere the text printed to stdout. An :class:`AsyncChatStream`
    gives a coroutine to await (``await polyrelay.display_stream(s)``).
    An interruption leaves the text received so far shown and raises; the
    stream is closed either way.

    >>> polyrelay.display_stream(client.llm.stream(messages=messages))  # doctest: +SKIP
    """
    if isinstance(stream, AsyncChatStream):
        return _ashow(stream)
    return _show(stream)
