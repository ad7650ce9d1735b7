"""Type stubs of the native extension ``polyrelay._native`` (Rust, PyO3)."""

import os
from datetime import datetime
from types import TracebackType
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Generator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
    final,
)

from ._models import Attempt

__all__ = [
    "__version__",
    "Client",
    "Result",
    "ChatChunk",
    "ChatStream",
    "AsyncChatStream",
    "BatchProgress",
    "AssistantStream",
    "Emulator",
    "Fault",
    "RecordedRequest",
    "FakeClock",
    "Key",
    "Keyset",
    "Claims",
    "TokenPair",
    "Verifier",
    "TokenIssuer",
    "InboundLimiter",
    "capabilities",
    "builtin_providers",
    "parameter_schema",
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
        clock: Optional[FakeClock] = None,
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
    def metrics_text(self) -> str: ...
    def ping_redis(self) -> Optional[bool]:
        """Whether the client's Redis answers a PING now; None without Redis."""
    def aping_redis(self) -> Awaitable[Optional[bool]]:
        """:meth:`ping_redis` as an awaitable."""
    def stats(self) -> Dict[str, Dict[str, Any]]:
        """Per enabled provider, by id: the core's stats."""
    def analytics(self, query: Optional[Mapping[str, Any]] = None) -> List[Dict[str, Any]]:
        """Analytics rows of ``query`` (``by``, ``group_by``, ``capability``,
        ``provider``, ``tag``, ``since``, ``until``)."""
    def aanalytics(
        self, query: Optional[Mapping[str, Any]] = None
    ) -> Awaitable[List[Dict[str, Any]]]:
        """:meth:`analytics` as an awaitable."""
    def analytics_status(self) -> Dict[str, Any]:
        """The analytics recorder's counters."""
    def providers(self) -> List[Dict[str, Any]]:
        """The core's catalog of every provider this client knows."""
    def stream(
        self, capability: str, params: Optional[Mapping[str, Any]] = None
    ) -> ChatStream:
        """A streamed answer, read with ``for``; parameters checked now."""
    def astream(
        self, capability: str, params: Optional[Mapping[str, Any]] = None
    ) -> AsyncChatStream:
        """A streamed answer, read with ``async for``; parameters checked now."""
    def assistant(
        self,
        question: str,
        options: str,
        conversation: Optional[str] = None,
        conversation_id: Optional[str] = None,
    ) -> str:
        """The assistant's reply as JSON text; options and conversation as
        JSON text, or the conversation kept under ``conversation_id``."""
    def aassistant(
        self,
        question: str,
        options: str,
        conversation: Optional[str] = None,
        conversation_id: Optional[str] = None,
    ) -> Awaitable[str]:
        """:meth:`assistant` from asyncio."""
    def assistant_stream(
        self,
        question: str,
        options: str,
        conversation: Optional[str] = None,
        conversation_id: Optional[str] = None,
    ) -> AssistantStream:
        """The assistant's events; the question is checked now."""
    def save_conversation(self, id: str, conversation: str) -> None:
        """Saves ``conversation`` (JSON text) under ``id`` in the analytics store."""
    def asave_conversation(self, id: str, conversation: str) -> Awaitable[None]:
        """:meth:`save_conversation` as an awaitable."""
    def conversation(self, id: str) -> Optional[str]:
        """The conversation kept under ``id`` as JSON text, ``None`` when none is."""
    def aconversation(self, id: str) -> Awaitable[Optional[str]]:
        """:meth:`conversation` as an awaitable."""
    def delete_conversation(self, id: str) -> bool:
        """Deletes the conversation kept under ``id``; whether there was one."""
    def adelete_conversation(self, id: str) -> Awaitable[bool]:
        """:meth:`delete_conversation` as an awaitable."""
    def conversation_ids(self, limit: int) -> List[str]:
        """Ids of the kept conversations, most recently updated first."""
    def aconversation_ids(self, limit: int) -> Awaitable[List[str]]:
        """:meth:`conversation_ids` as an awaitable."""
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
    def parsed(self) -> Any:
        """An ``llm.chat`` answer asked for with ``response_format``, parsed
        from its JSON (and checked against the schema) as plain Python data
        (a dict, even when the format came from a pydantic model:
        ``Model.model_validate(result.parsed)`` makes the model); ``None``
        for any other answer."""
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
    def cost_usd(self) -> Optional[float]:
        """What this call cost in US dollars (``llm.chat``, ``llm.embeddings``):
        0.0 for a cache hit or a free model, ``None`` when unknown."""
    @property
    def fetched_at(self) -> datetime:
        """When the provider produced the answer (aware UTC)."""
    def to_dict(self) -> Dict[str, Any]:
        """Everything as plain, JSON-compatible data."""
    def _repr_html_(self) -> str:
        """An HTML summary for Jupyter, every value escaped."""

@final
class ChatChunk:
    """A piece of a streamed answer: answer ``text``, or hidden ``reasoning``."""

    @property
    def text(self) -> str:
        """The answer text this chunk adds (empty for reasoning)."""
    @property
    def reasoning(self) -> str:
        """The hidden reasoning this chunk adds (empty for answer text)."""
    @property
    def kind(self) -> Literal["text", "reasoning"]:
        """``"text"`` or ``"reasoning"``."""

@final
class ChatStream:
    """A streamed chat answer, read with ``for``; ``result`` at the end."""

    def __iter__(self) -> ChatStream: ...
    def __next__(self) -> ChatChunk: ...
    def close(self) -> None:
        """Closes the upstream request; the iteration ends."""
    def __enter__(self) -> ChatStream: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None: ...
    @property
    def text(self) -> str:
        """The answer text read so far (all of it once completed)."""
    @property
    def closed(self) -> bool:
        """The stream is over: completed, failed or closed."""
    @property
    def result(self) -> Result:
        """The whole answer as a plain call returns it; ``UsageError``
        before the stream completed."""
    @property
    def parts(self) -> List[Dict[str, Any]]:
        """Which provider wrote which part: ``{"provider", "chars"}`` each."""
    @property
    def time_to_first_token(self) -> Optional[float]:
        """Seconds from the call to the first text (``None`` for a cache hit)."""

@final
class AsyncChatStream:
    """A streamed chat answer, read with ``async for``; ``result`` at the end."""

    def __aiter__(self) -> AsyncChatStream: ...
    def __anext__(self) -> Awaitable[ChatChunk]: ...
    def __await__(self) -> Generator[Any, None, AsyncChatStream]: ...
    def close(self) -> None:
        """Closes the upstream request; the iteration ends."""
    def aclose(self) -> Awaitable[None]:
        """Same as :meth:`close`, awaitable."""
    def __aenter__(self) -> Awaitable[AsyncChatStream]: ...
    def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> Awaitable[None]: ...
    @property
    def text(self) -> str:
        """The answer text read so far (all of it once completed)."""
    @property
    def closed(self) -> bool:
        """The stream is over: completed, failed or closed."""
    @property
    def result(self) -> Result:
        """The whole answer as a plain call returns it; ``UsageError``
        before the stream completed."""
    @property
    def parts(self) -> List[Dict[str, Any]]:
        """Which provider wrote which part: ``{"provider", "chars"}`` each."""
    @property
    def time_to_first_token(self) -> Optional[float]:
        """Seconds from the call to the first text (``None`` for a cache hit)."""

@final
class BatchProgress:
    """How many calls of a batch have finished, readable while it runs."""

    def __new__(cls) -> BatchProgress: ...
    @property
    def completed(self) -> int:
        """Calls finished so far (answered, failed or refused as invalid)."""

@final
class AssistantStream:
    """A streamed assistant answer: each event as JSON text."""

    def next_event(self) -> Optional[str]:
        """The next event, blocking; ``None`` at the end."""
    def anext_event(self) -> Awaitable[Optional[str]]:
        """The next event from asyncio; ``None`` at the end."""
    def close(self) -> None: ...

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
    def stream(self, provider: str, delay: float = 0.0) -> str:
        """Serves ``provider``'s recorded chat stream; the path it answers."""
    def script_chat(self, provider: str, script: str, model: str = "gpt-4.1") -> str:
        """Plays a scripted model (``script``: JSON text) on any built-in LLM
        provider's chat path, in its own wire format; the path it answers."""
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
    def at_chunk(
        index: int,
        action: Literal["cut", "stall", "insert", "end_with"],
        body: Optional[bytes] = None,
    ) -> Fault:
        """Misbehave at chunk ``index`` of a streamed reply."""
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

@final
class FakeClock:
    """Time that moves only when told to (tests of token lifetimes)."""

    def __new__(cls, wall: float) -> FakeClock: ...
    def advance(self, seconds: float) -> None: ...
    @property
    def wall(self) -> float: ...

@final
class Key:
    """One key, pinned to one algorithm and named by a ``kid``."""

    @staticmethod
    def hmac(kid: str, secret: Union[bytes, str], alg: str = "HS256") -> Key:
        """An HMAC key from a secret at least as long as the digest."""
    @staticmethod
    def from_private_pem(kid: str, pem: Union[bytes, str], alg: str) -> Key:
        """A signing key from a private key PEM."""
    @staticmethod
    def from_public_pem(kid: str, pem: Union[bytes, str], alg: str) -> Key:
        """A verification-only key from a public key PEM."""
    @staticmethod
    def from_jwk(jwk: Union[str, Mapping[str, Any]], alg: Optional[str] = None) -> Key:
        """A key from one JWK; its ``kid`` comes from the JWK."""
    @property
    def kid(self) -> str: ...
    @property
    def alg(self) -> str: ...
    @property
    def can_sign(self) -> bool: ...

@final
class Keyset:
    """Keys by ``kid``: several verify, at most one signs."""

    def __new__(cls, keys: Sequence[Key] = ..., signing_kid: Optional[str] = None) -> Keyset: ...
    @staticmethod
    def from_jwks(jwks: Union[str, Mapping[str, Any]]) -> Keyset:
        """Verification keys from a JWKS document."""
    def insert(self, key: Key) -> None: ...
    def sign_with(self, kid: str) -> None: ...
    def remove(self, kid: str) -> bool: ...
    def public_jwks(self) -> Dict[str, Any]: ...
    @property
    def kids(self) -> List[str]: ...
    @property
    def signing_kid(self) -> Optional[str]: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: str, /) -> bool: ...

@final
class Claims:
    """The verified claims of a token."""

    @property
    def subject(self) -> Optional[str]: ...
    @property
    def jti(self) -> Optional[str]: ...
    @property
    def session_id(self) -> Optional[str]: ...
    @property
    def expires_at(self) -> Optional[float]: ...
    @property
    def scopes(self) -> List[str]: ...
    def has_scope(self, scope: str) -> bool: ...
    def get(self, name: str, default: Any = None) -> Any: ...
    def __getitem__(self, key: str, /) -> Any: ...
    def __contains__(self, key: str, /) -> bool: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class TokenPair:
    """An access token and the refresh token to renew it."""

    @property
    def access_token(self) -> str: ...
    @property
    def refresh_token(self) -> str: ...
    @property
    def token_type(self) -> str: ...
    @property
    def expires_in(self) -> int: ...
    @property
    def refresh_expires_in(self) -> int: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class Verifier:
    """Strict, stateless verification against a keyset."""

    def __new__(
        cls,
        keyset: Keyset,
        *,
        issuer: Optional[str] = None,
        audience: Union[str, Sequence[str], None] = None,
        leeway: float = 60.0,
        typ: Optional[str] = None,
        clock: Optional[FakeClock] = None,
    ) -> Verifier: ...
    def verify(self, token: str) -> Claims: ...
    def replace_keyset(self, keyset: Keyset) -> None: ...

@final
class TokenIssuer:
    """Issues, renews, verifies and revokes tokens."""

    def __new__(
        cls,
        keyset: Keyset,
        *,
        issuer: str,
        audience: Union[str, Sequence[str]],
        access_ttl: float = 900.0,
        refresh_ttl: float = 1209600.0,
        leeway: float = 60.0,
        reuse_grace: float = 0.0,
        revocation_fail_mode: str = "closed",
        redis_url: Optional[str] = None,
        clock: Optional[FakeClock] = None,
    ) -> TokenIssuer: ...
    def issue(self, subject: str, claims: Optional[Mapping[str, Any]] = None) -> TokenPair: ...
    def refresh(self, refresh_token: str) -> TokenPair: ...
    def arefresh(self, refresh_token: str) -> Awaitable[TokenPair]: ...
    def verify_access(self, access_token: str) -> Claims: ...
    def averify_access(self, access_token: str) -> Awaitable[Claims]: ...
    def revoke(self, token: str) -> None: ...
    def arevoke(self, token: str) -> Awaitable[None]: ...
    def revoke_session(self, token: str) -> None: ...
    def arevoke_session(self, token: str) -> Awaitable[None]: ...
    def replace_keyset(self, keyset: Keyset) -> None: ...
    def public_jwks(self) -> Dict[str, Any]: ...
    def close(self) -> None:
        """Releases the token store (its Redis connection); idempotent. Every
        later operation raises ``AuthUnavailableError``."""
    def aclose(self) -> Awaitable[None]:
        """``close``, as an awaitable."""
    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""

def capabilities() -> List[Dict[str, Any]]:
    """Every capability the core serves: ``name`` and default cache ``ttl`` (s)."""

def builtin_providers() -> List[Dict[str, Any]]:
    """The core's catalog of the built-in providers under the default
    configuration, keys read from the environment (same schema as
    :meth:`Client.providers`)."""

def parameter_schema(capability: Optional[str] = None) -> Dict[str, Any]:
    """The JSON Schema of ``capability``'s parameters, or every capability's
    by name when ``capability`` is ``None``; raises ``InvalidRequestError``
    for an unknown capability."""

def sync_log_level() -> None:
    """Re-reads the ``polyrelay`` logger's level now."""

# Only in test builds (cargo feature ``testing``, as tests/run.sh builds the
# package); a release build has neither.
def _sample_error(kind: str) -> None:
    """Raises the exception a core error of ``kind`` maps to (test builds only)."""

def _panic(asynchronous: bool = False) -> Any:
    """Panics in Rust, blocking or in an awaitable (test builds only)."""

@final
class InboundLimiter:
    """A GCRA budget per key (a user, a client address), in memory or shared
    through Redis; keys are hashed, never stored as given."""

    def __new__(
        cls,
        rate: str,
        *,
        burst: Optional[int] = None,
        name: str = "default",
        redis_url: Optional[str] = None,
        clock: Optional[FakeClock] = None,
    ) -> InboundLimiter: ...
    def check(self, key: str) -> Tuple[bool, float, int, float]:
        """Takes one unit of ``key``'s budget if it conforms now:
        ``(allowed, retry_after_s, remaining, reset_s)``."""
    def acheck(self, key: str) -> Awaitable[Tuple[bool, float, int, float]]:
        """``check``, as an awaitable."""
    @property
    def limit(self) -> int:
        """Requests allowed back to back from a full budget."""
    @property
    def window(self) -> float:
        """The window of the rate, in seconds."""
    @property
    def shared(self) -> bool:
        """Whether budgets are shared through Redis."""
    @property
    def degraded(self) -> bool:
        """Whether a shared limiter currently limits locally."""
