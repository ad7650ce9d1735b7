"""A small progress bar for batches, with no dependency: an updating HTML
bar in Jupyter (through IPython's display, when running in a kernel) and a
one-line text bar on a terminal's stderr."""

from __future__ import annotations

import importlib
import sys
import time
from html import escape
from typing import Any, Optional, TextIO

__all__ = ["REFRESH_SECONDS", "ProgressBar", "open_bar"]

#: Redraws at most this often (seconds); the last one always happens.
REFRESH_SECONDS = 0.1
_WIDTH = 30


def _in_jupyter_kernel() -> bool:
    """Whether this code runs in a Jupyter kernel (where HTML displays)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell: Any = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class ProgressBar:
    """Shows ``completed / total`` with the rate and the elapsed time."""

    def __init__(self, total: int, label: str, stream: Optional[TextIO]) -> None:
        self.total = total
        self.label = label
        self.completed = 0
        self._stream = stream
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._handle: Any = None
        if stream is None:
            # Imported only in a kernel (where IPython is), untyped.
            ipython_display: Any = importlib.import_module("IPython.display")
            self._handle = ipython_display.display(self, display_id=True)
        else:
            self._draw()

    def _summary(self) -> str:
        elapsed = time.monotonic() - self._started
        rate = self.completed / elapsed if elapsed > 0 else 0.0
        return f"{self.completed}/{self.total} [{elapsed:.1f} s, {rate:.0f}/s]"

    def __repr__(self) -> str:
        return f"{self.label}: {self._summary()}"

    def _repr_html_(self) -> str:
        return (
            f'<div><code>{escape(self.label)}</code> '
            f'<progress value="{self.completed}" max="{max(self.total, 1)}" '
            f'style="width:20em;vertical-align:middle"></progress> '
            f"{escape(self._summary())}</div>"
        )

    def _draw(self) -> None:
        self._drawn_at = time.monotonic()
        if self._stream is None:
            if self._handle is not None:
                self._handle.update(self)
            return
        filled = _WIDTH * self.completed // max(self.total, 1)
        bar = "#" * filled + "-" * (_WIDTH - filled)
        self._stream.write(f"\r{self.label} |{bar}| {self._summary()}")
        self._stream.flush()

    def update(self, completed: int) -> None:
        """Records ``completed`` finished items; redraws if it is time."""
        changed = completed != self.completed
        self.completed = completed
        if changed and (
            completed >= self.total or time.monotonic() - self._drawn_at >= REFRESH_SECONDS
        ):
            self._draw()

    def close(self) -> None:
        """Draws the final state (and ends the text line)."""
        self._draw()
        if self._stream is not None:
            self._stream.write("\n")
            self._stream.flush()


def open_bar(total: int, label: str, progress: Optional[bool]) -> Optional[ProgressBar]:
    """A bar for a batch of ``total`` items, or ``None``. ``progress=None``
    shows one in Jupyter or when stderr is a terminal; ``True`` always
    (Jupyter, else stderr); ``False`` never."""
    if progress is False or total == 0:
        return None
    if _in_jupyter_kernel():
        return ProgressBar(total, label, None)
    stream = sys.stderr
    if stream is not None and (progress or stream.isatty()):
        return ProgressBar(total, label, stream)
    return None
