"""Type stubs of the native extension ``polyrelay._native`` (Rust, PyO3)."""

import os
from datetime import datetime
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, final

from ._models import Attempt

__all__ = [
    "__version__",
    "Client",
    "Result",
    "BatchProgress",
    "Emulator",
    "Fault",
    "RecordedRequest",
    "capabilities",
    "builtin_providers",
    "_sample_error",
    "_panic",
    "sync_log_level",
]

__version__: str

@final
class Client:
    """The native client behind ``polyrelay.Client`` and ``polyrelay.AsyncClient``."""

    def __new__(
        cls,
        *,
        config: Optional[Mapping[str, Any]] = None,
        config_path: Optional[str | os.PathLike[str]] = None,
        config_toml: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        api_keys: Optional[Mapping[str, str]] = None,
        testing: bool = False,
        seed: Optional[int] = None,
    ) -> Client: ...
    def call(self, capability: str, params: Optional[Mapping[str, Any]] = None) -> Result: ...
    def acall(
        self, capability: str, params: Optional[Mapping[str, Any]] = None
    ) -> Awaitable[Result]: ...
    def batch(
        self,
        capability: str,
        params: Sequence[Optional[Mapping[str, Any]]],
        concurrency: int,
        return_exceptions: bool = False,
        progress: Optional[BatchProgress] = None,
        on_wait: Optional[Callable[[], object]] = None,
    ) -> List[Any]:
        """Runs the calls on the runtime (GIL released) and returns results
        (and, with ``return_exceptions``, exceptions) in input order."""
    def abatch(
        self,
        capability: str,
        params: Sequence[Optional[Mapping[str, Any]]],
        concurrency: int,
        return_exceptions: bool = False,
        progress: Optional[BatchProgress] = None,
    ) -> Awaitable[List[Any]]:
        """:meth:`batch` as an awaitable; cancelling it cancels every call."""
    def health(self) -> Any: ...
    def stats(self) -> Any: ...
    def providers(self) -> Any: ...
    def chain(self, capability: str) -> List[str]: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...

@final
class Result:
    """The answer to a call: the normalised ``data`` and how it was obtained."""

    @property
    def data(self) -> Any:
        """The normalised answer, as plain Python data."""
    @property
    def capability(self) -> str:
        """The capability called, e.g. ``"weather.current"``."""
    @property
    def provider(self) -> str:
        """The provider whose answer this is."""
    @property
    def cached(self) -> bool:
        """Served from the cache rather than fetched by this call."""
    @property
    def stale(self) -> bool:
        """Past its freshness (served while refreshing, or because every provider failed)."""
    @property
    def attempts(self) -> Tuple[Attempt, ...]:
        """What each provider did during this call (empty for a fresh cache hit)."""
    @property
    def elapsed(self) -> float:
        """Seconds this call took."""
    @property
    def fetched_at(self) -> datetime:
        """When the provider produced the answer (aware UTC)."""
    def to_dict(self) -> Dict[str, Any]:
        """Everything as plain, JSON-compatible data."""
    def _repr_html_(self) -> str:
        """An HTML summary for Jupyter, every value escaped."""

@final
class BatchProgress:
    """How many calls of a batch have finished, readable while it runs."""

    def __new__(cls) -> BatchProgress: ...
    @property
    def completed(self) -> int:
        """Calls finished so far (answered, failed or refused as invalid)."""

@final
class Emulator:
    """An offline emulator of every built-in provider on 127.0.0.1."""

    def __new__(cls) -> Emulator: ...
    @property
    def url(self) -> str: ...
    @property
    def served(self) -> int: ...
    @property
    def peak_in_flight(self) -> int: ...
    def reset_peak_in_flight(self) -> None: ...
    def fault_next(self, path: str, fault: Fault, times: int = 1) -> None: ...
    def fault_always(self, path: str, fault: Fault) -> None: ...
    def clear_faults(self) -> None: ...
    def requests(self, path: Optional[str] = None) -> List[RecordedRequest]: ...
    def hits(self, path: str) -> int: ...
    def clear_log(self) -> None: ...
    def set_logging(self, enabled: bool) -> None: ...
    def wait_for_requests(
        self, path: str, count: int = 1, timeout: float = 5.0
    ) -> List[RecordedRequest]: ...
    def wait_for_closed_early(
        self, path: str, count: int = 1, timeout: float = 5.0
    ) -> List[RecordedRequest]: ...
    def stop(self) -> None: ...

@final
class Fault:
    """A misbehaviour for the emulator to inject."""

    @staticmethod
    def status(status: int) -> Fault:
        """Answer with ``status`` and a JSON error body."""
    @staticmethod
    def respond(
        status: int,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,
        retry_after: Optional[float] = None,
    ) -> Fault:
        """Answer with this status, body, headers and ``Retry-After`` (seconds)."""
    @staticmethod
    def latency(seconds: float) -> Fault:
        """Wait ``seconds``, then answer normally."""
    @staticmethod
    def hang() -> Fault:
        """Never answer (until the client gives up)."""
    @staticmethod
    def reset() -> Fault:
        """Close the connection abruptly without answering."""
    @staticmethod
    def malformed() -> Fault:
        """Answer 200 with a body that is not valid JSON."""
    @staticmethod
    def oversized(size: int) -> Fault:
        """Answer 200 with a JSON body of exactly ``size`` bytes."""
    @staticmethod
    def replace_body(body: bytes) -> Fault:
        """Answer with the normal status and headers but this body."""

@final
class RecordedRequest:
    """One request as the emulator received it."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def query(self) -> Optional[str]: ...
    @property
    def query_pairs(self) -> List[Tuple[str, str]]: ...
    @property
    def headers(self) -> Dict[str, str]: ...
    @property
    def body(self) -> bytes: ...
    @property
    def connection(self) -> int: ...
    @property
    def closed_early(self) -> bool: ...
    def header(self, name: str) -> Optional[str]: ...
    def query_param(self, name: str) -> Optional[str]: ...

def capabilities() -> List[Dict[str, Any]]:
    """Every capability the core serves: ``name`` and default cache ``ttl`` (s)."""

def builtin_providers() -> List[Dict[str, Any]]:
    """What every built-in provider declares about itself, as plain data."""

def sync_log_level() -> None:
    """Re-reads the ``polyrelay`` logger's level now."""

def _sample_error(kind: str) -> None:
    """Raises the exception a core error of ``kind`` maps to (tests)."""

def _panic(asynchronous: bool = False) -> Any:
    """Panics in Rust, blocking or in an awaitable (tests)."""
