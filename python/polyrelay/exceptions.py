"""Every error polyrelay raises, rooted at :class:`Error`.

The classes are defined here, in Python, and raised by the native module,
which maps the core's error kinds to them in one place. Messages never
contain API keys.

Hierarchy::

    Error
    ├── ConfigError                 (also ValueError)
    ├── InvalidRequestError         (also ValueError)
    ├── UsageError
    ├── NotFoundError               (also LookupError)
    ├── TimeoutError                (also the builtin TimeoutError)
    ├── ContentFilteredError        a provider refused the content (.provider, .reason)
    ├── StreamInterruptedError      a stream failed after its first text (.partial_text)
    ├── ContextLengthExceededError  the prompt fits no model's context window (also ValueError)
    ├── LimitReachedError           an assistant hit max_steps, max_tokens or max_cost_usd (.conversation)
    └── AllProvidersFailedError     no provider could answer; see .attempts
        ├── MissingKeyError         every provider needs a key that is not set
        ├── RateLimitedError        every provider is rate limited (.retry_after)
        ├── QuotaExhaustedError     every provider's quota is used up (.reset_at)
        ├── CircuitOpenError        every provider's circuit breaker is open
        ├── AuthError               every provider refused its key
        └── ProviderError           providers failed on their side (.status, .provider)

Token errors (:mod:`polyrelay.auth`) are about *your* users' tokens, not
providers' keys, so they are not :class:`AuthError`s; an HTTP layer turns
them into 401 while provider failures become 5xx::

    Error
    └── TokenError                  a token was refused
        ├── MalformedTokenError     not a compact JWS
        ├── TokenExpiredError       exp is past (beyond the leeway)
        ├── TokenNotYetValidError   nbf or iat is in the future
        ├── BadSignatureError
        ├── BadAlgorithmError       alg missing, "none", or not the key's
        ├── BadClaimError           a claim is missing or wrong (.claim)
        ├── UnknownKeyError         no key with the token's kid
        ├── TokenRevokedError       the token or its login was revoked
        ├── TokenReusedError        a spent refresh token; its login is now revoked
        └── AuthUnavailableError    the token store cannot answer (fails closed)

A key or setting refused when configuring auth raises :class:`ConfigError`.
"""

from __future__ import annotations

import builtins
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, TypeVar

from ._models import Attempt

__all__ = [
    "Error",
    "ConfigError",
    "InvalidRequestError",
    "UsageError",
    "NotFoundError",
    "TimeoutError",
    "ContentFilteredError",
    "StreamInterruptedError",
    "ContextLengthExceededError",
    "LimitReachedError",
    "AllProvidersFailedError",
    "MissingKeyError",
    "RateLimitedError",
    "QuotaExhaustedError",
    "CircuitOpenError",
    "AuthError",
    "ProviderError",
    "TokenError",
    "MalformedTokenError",
    "TokenExpiredError",
    "TokenNotYetValidError",
    "BadSignatureError",
    "BadAlgorithmError",
    "BadClaimError",
    "UnknownKeyError",
    "TokenRevokedError",
    "TokenReusedError",
    "AuthUnavailableError",
]

_E = TypeVar("_E", bound="Error")


def _restore(cls: Type[_E], message: str, state: Dict[str, Any]) -> _E:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class Error(Exception):
    """Base class of every polyrelay error.

    Attributes:
        message: What went wrong, for people.
        kind: The stable snake_case kind (``"rate_limited"``, ``"config"``,
            …; ``"internal"`` for a bug in polyrelay, e.g. a Rust panic).
        capability: The capability called, when a call failed.
        attempts: What each provider did (empty when none was tried).
        retry_after: Seconds until a throttled or benched provider may
            answer again, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "internal",
        capability: Optional[str] = None,
        attempts: Sequence[Attempt] = (),
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.message: str = message
        self.kind: str = kind
        self.capability: Optional[str] = capability
        self.attempts: Tuple[Attempt, ...] = tuple(attempts)
        self.retry_after: Optional[float] = retry_after

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Any:
        return (_restore, (type(self), self.message, dict(self.__dict__)))


class ConfigError(Error, ValueError):
    """The configuration (file, dict, environment or arguments) is invalid.

    ``field`` names the offending setting, e.g.
    ``"providers.open-meteo.base_url"`` or ``"POLYRELAY_TIMEZONE"``.
    """

    def __init__(self, message: str, *, field: Optional[str] = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.field: Optional[str] = field


class InvalidRequestError(Error, ValueError):
    """The call's parameters are invalid; nothing was sent to any provider.

    ``field`` names the parameter (``"lat"``, ``"symbols[1]"``) and
    ``expected`` says what it must be.
    """

    def __init__(
        self,
        message: str,
        *,
        field: Optional[str] = None,
        expected: Optional[str] = None,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.field: Optional[str] = field
        self.expected: Optional[str] = expected


class UsageError(Error):
    """The API was used in a way that cannot work (e.g. a closed client)."""


class NotFoundError(Error, LookupError):
    """Every provider that answered said the thing asked for does not exist."""


class TimeoutError(Error, builtins.TimeoutError):
    """No answer within the call's total deadline (``deadline`` seconds).

    Also a builtin :class:`TimeoutError`, so generic timeout handling
    catches it.
    """

    def __init__(self, message: str, *, deadline: Optional[float] = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.deadline: Optional[float] = deadline


class ContentFilteredError(Error):
    """A provider refused the content: a content-policy or safety refusal.

    An answer, not an outage: the request is not retried, and not sent to
    another provider unless the capability's ``content_filtered_fallback``
    is on. ``provider`` names the provider that refused and ``reason`` is
    its explanation, as it gave it: for logs, not for end users.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: Optional[str] = None,
        reason: Optional[str] = None,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.provider: Optional[str] = provider
        self.reason: Optional[str] = reason


class StreamInterruptedError(Error):
    """A streamed answer failed after its first text: the provider's
    connection was cut, it stalled past ``chunk_timeout``, or it sent an
    error or a malformed event (and, with ``mid_stream = "continue"``, no
    other provider could continue the answer).

    ``partial_text`` is the answer text received before the failure (what
    the stream handed out), ``provider`` the provider whose stream failed;
    ``attempts`` includes its failure.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: Optional[str] = None,
        partial_text: str = "",
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.provider: Optional[str] = provider
        self.partial_text: str = partial_text


class ContextLengthExceededError(Error, ValueError):
    """The prompt fits no model the call could run on: each provider or
    deployment was passed over for its context window, or refused the
    prompt as too long, and no ``context_fallback`` group could take it.
    Shorten the prompt (or ``max_tokens``); calling again will not help.

    ``estimated_tokens`` is the call's estimate (prompt, plus
    ``max_tokens`` when set), ``largest_window`` the largest context window
    among the models tried, when any was known.
    """

    def __init__(
        self,
        message: str,
        *,
        estimated_tokens: int = 0,
        largest_window: Optional[int] = None,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.estimated_tokens: int = estimated_tokens
        self.largest_window: Optional[int] = largest_window


class LimitReachedError(Error):
    """An assistant (:meth:`Client.assistant <polyrelay.Client.assistant>`)
    reached one of its limits before the model answered in text.

    ``limit`` names it (``"max_steps"``, ``"max_tokens"`` or
    ``"max_cost_usd"``); ``conversation`` is the conversation so far (pass
    it as ``conversation=`` with another question to continue) and
    ``steps`` the LLM turns taken, with their tool calls.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: str = "",
        conversation: Optional[Dict[str, Any]] = None,
        steps: Sequence[Dict[str, Any]] = (),
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.limit: str = limit
        self.conversation: Dict[str, Any] = conversation or {"messages": []}
        self.steps: List[Dict[str, Any]] = list(steps)


class AllProvidersFailedError(Error):
    """No provider could answer; ``attempts`` says why for each.

    Subclasses name a common cause when every provider failed the same way.
    """


class MissingKeyError(AllProvidersFailedError):
    """Every provider of the chain needs an API key and none is set."""


class RateLimitedError(AllProvidersFailedError):
    """Every provider is rate limited; ``retry_after`` says for how long."""


class QuotaExhaustedError(AllProvidersFailedError):
    """Every provider's quota is used up until ``reset_at`` (an aware UTC
    datetime), if known: the instant the first of them resets, on the
    client's clock."""

    def __init__(
        self, message: str, *, reset_at: Optional[float] = None, **details: Any
    ) -> None:
        super().__init__(message, **details)
        self.reset_at: Optional[datetime] = (
            datetime.fromtimestamp(reset_at, timezone.utc) if reset_at is not None else None
        )


class CircuitOpenError(AllProvidersFailedError):
    """Every provider's circuit breaker is open; ``retry_after`` says until when."""


class AuthError(AllProvidersFailedError):
    """Every provider refused its API key."""


class ProviderError(AllProvidersFailedError):
    """Providers failed on their side (5xx, timeouts, malformed replies).

    ``status`` and ``provider`` are those of the last provider that answered
    with an error status, when one did.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: Optional[str] = None,
        status: Optional[int] = None,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.provider: Optional[str] = provider
        self.status: Optional[int] = status


class TokenError(Error):
    """A token was refused. ``kind`` is the core's stable name
    (``"expired"``, ``"bad_claim"``, …). The message never contains the
    token."""


class MalformedTokenError(TokenError):
    """Not a compact JWS: wrong segment count, bad base64url, a header that
    is not a JSON object, or too long."""


class TokenExpiredError(TokenError):
    """``exp`` is past, beyond the leeway."""


class TokenNotYetValidError(TokenError):
    """``nbf`` or ``iat`` is in the future, beyond the leeway."""


class BadSignatureError(TokenError):
    """The signature does not verify with the selected key."""


class BadAlgorithmError(TokenError):
    """The header's ``alg`` is missing, unknown (``none`` included) or not
    the algorithm pinned to the selected key."""


class BadClaimError(TokenError):
    """A claim (or the ``typ``/``crit`` header) is missing, mistyped or
    wrong; ``claim`` names it (``"aud"``, ``"exp"``, ``"crit"``, …)."""

    def __init__(self, message: str, *, claim: Optional[str] = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.claim: Optional[str] = claim


class UnknownKeyError(TokenError):
    """No key with the token's ``kid`` (or no ``kid`` while several keys
    exist)."""


class TokenRevokedError(TokenError):
    """The token or its login (refresh family) was revoked."""


class TokenReusedError(TokenError):
    """A spent refresh token was presented again; its whole login is now
    revoked."""


class AuthUnavailableError(TokenError):
    """The token store could not answer and auth fails closed."""
