"""Testing support: run your own test suite against polyrelay without any
network.

* :func:`enable` switches on testing mode for clients built afterwards:
  retries never wait (zero backoff) and jitter is seeded, so failure paths
  run in milliseconds and repeatably. Breakers, limits, quotas and the cache
  behave exactly as in production.
* :func:`emulator` starts an offline emulator of every built-in provider
  (real wire formats, on 127.0.0.1) and points every provider of every
  client built afterwards at it, in testing mode, until it is stopped::

      import polyrelay
      from polyrelay.testing import Fault, emulator

      def test_fallback():
          with emulator() as emu:
              emu.fault_always("/open-meteo/*", Fault.status(503))
              with polyrelay.Client() as client:
                  result = client.weather.current(lat=52.52, lon=13.41)
              assert result.provider == "met-norway"

* :class:`FakeClock` is time that moves only when told to: pass it as
  ``clock=`` to :class:`polyrelay.auth.TokenIssuer` or
  :class:`polyrelay.auth.Verifier` to test token lifetimes without sleeping.
"""

from __future__ import annotations

import json
import os
from types import TracebackType
from typing import Any, Dict, List, Optional, Type

from . import _native
from ._native import FakeClock, Fault, RecordedRequest

__all__ = ["Emulator", "FakeClock", "Fault", "RecordedRequest", "emulator", "enable", "is_enabled"]

_ENV = "POLYRELAY_EMULATOR_URL"
_enabled = False


def enable(on: bool = True) -> None:
    """Turns testing mode on (or off) for clients built afterwards that do
    not pass ``testing=`` themselves."""
    global _enabled
    _enabled = on


def is_enabled() -> bool:
    """Whether testing mode is on for new clients."""
    return _enabled


class Emulator:
    """A running emulator of every built-in provider; provider ``x`` is
    served under ``{url}/x``. While it runs, ``POLYRELAY_EMULATOR_URL``
    points new clients at it and testing mode is on. Use it as a context
    manager or call :meth:`stop`.
    """

    def __init__(self) -> None:
        self._native = _native.Emulator()
        self._previous_url = os.environ.get(_ENV)
        self._previous_testing = _enabled
        self._stopped = False
        os.environ[_ENV] = self._native.url
        enable(True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self._native.url

    def fault_next(self, path: str, fault: Fault, times: int = 1) -> None:
        """Injects ``fault`` into the next ``times`` requests whose path
        matches ``path`` (exact, a prefix ending in ``*`` such as
        ``"/open-meteo/*"``, or ``"*"`` for all)."""
        self._native.fault_next(path, fault, times)

    def fault_always(self, path: str, fault: Fault) -> None:
        """Injects ``fault`` into every request matching ``path`` until
        :meth:`clear_faults`."""
        self._native.fault_always(path, fault)

    def stream(self, provider: str, delay: float = 0.0) -> str:
        """Answers ``provider``'s chat requests with its recorded stream
        (what streamed calls read), one event every ``delay`` seconds, and
        returns the path it answers, for faults such as
        ``Fault.at_chunk(3, "cut")``. Plain chat calls to that provider
        then receive the stream too."""
        return self._native.stream(provider, delay)

    def script_chat(
        self, provider: str, script: List[Dict[str, Any]], model: str = "gpt-4.1"
    ) -> str:
        """Plays a scripted model on ``provider``'s chat path, plain and
        streamed, in that provider's own wire format: any built-in LLM
        provider (``openai``, ``groq``, ``mistral``, ``deepseek``,
        ``openrouter``, ``together``, ``anthropic``, ``gemini``,
        ``cohere``, ``ollama``). Returns the path its requests arrive at
        (for Gemini a pattern covering its plain and streamed paths), for
        ``requests`` and ``hits``. ``script`` is a list of turns,
        ``{"text": ...}`` or ``{"tool_calls": [{"name": ..., "arguments":
        {...}}]}``, each with an optional ``"usage": {"input_tokens": n,
        "output_tokens": n}``; a request gets the turn at the number of the
        model's turns it carries (assistant messages; Gemini's ``model``
        contents), the last turn once past the end (so a script ending with
        a tool call loops). ``model`` is the model the replies claim,
        priced like it; for Gemini, whose path names the model, it must be
        the model the requests ask for (``gemini-2.5-flash`` by default)."""
        return self._native.script_chat(provider, json.dumps(script), model)

    def clear_faults(self) -> None:
        """Removes every injected fault."""
        self._native.clear_faults()

    def requests(self, path: Optional[str] = None) -> List[RecordedRequest]:
        """Requests received, oldest first (only those matching ``path``
        if given)."""
        return self._native.requests(path)

    def hits(self, path: str) -> int:
        """How many requests matching ``path`` were received."""
        return self._native.hits(path)

    def clear_log(self) -> None:
        """Forgets the requests received so far."""
        self._native.clear_log()

    def set_logging(self, enabled: bool) -> None:
        """Turns the request log on (the default) or off. Off, requests are
        only counted (:attr:`served`): long runs neither pay for recording
        nor grow memory."""
        self._native.set_logging(enabled)

    @property
    def served(self) -> int:
        """Requests received since start, logged or not."""
        return self._native.served

    @property
    def peak_in_flight(self) -> int:
        """The most requests answered at the same time since start or the
        last :meth:`reset_peak_in_flight`: how much concurrency clients
        really used (e.g. to check a batch's ``concurrency``)."""
        return self._native.peak_in_flight

    def reset_peak_in_flight(self) -> None:
        """Starts measuring :attr:`peak_in_flight` afresh."""
        self._native.reset_peak_in_flight()

    def wait_for_requests(
        self, path: str, count: int = 1, timeout: float = 5.0
    ) -> List[RecordedRequest]:
        """Waits until ``count`` requests matching ``path`` arrived."""
        return self._native.wait_for_requests(path, count, timeout)

    def wait_for_closed_early(
        self, path: str, count: int = 1, timeout: float = 5.0
    ) -> List[RecordedRequest]:
        """Waits until ``count`` requests matching ``path`` were abandoned
        by the client before their answer was complete (cancelled calls)."""
        return self._native.wait_for_closed_early(path, count, timeout)

    def stop(self) -> None:
        """Stops the server and restores the environment and testing mode."""
        if self._stopped:
            return
        self._stopped = True
        self._native.stop()
        if os.environ.get(_ENV) == self._native.url:
            if self._previous_url is None:
                os.environ.pop(_ENV, None)
            else:
                os.environ[_ENV] = self._previous_url
        enable(self._previous_testing)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<polyrelay.testing.Emulator at {self.url}>"


def emulator() -> Emulator:
    """Starts an emulator of every built-in provider and points every client
    built afterwards at it, in testing mode, until it is stopped."""
    return Emulator()
