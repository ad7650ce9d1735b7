"""polyrelay: one resilient client for many public APIs.

A call names a capability (``weather.current``, ``finance.fx_rates``, …)
and is answered by the first healthy provider of that capability's fallback
chain, each guarded by a daily quota, a rate limiter, a circuit breaker,
retries and timeouts, with a cache in front and one total deadline.

>>> import polyrelay
>>> with polyrelay.Client() as client:                     # doctest: +SKIP
...     result = client.weather.current(city="Berlin")
...     print(result.data["temperature_c"], "via", result.provider)

The work happens in a Rust core; see :class:`Client`, :class:`AsyncClient`,
:class:`Result` and :mod:`polyrelay.exceptions`. Log records go to the
``polyrelay`` logger.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

from . import _native
from ._assistant import AssistantEvent, AssistantReply
from ._client import AsyncClient, Client, ConfigSource
from ._models import AnalyticsRows, Attempt, Health, Stats
from ._native import AsyncChatStream, ChatChunk, ChatStream, InboundLimiter, Result
from ._stream_display import display_stream
from .exceptions import (
    AllProvidersFailedError,
    AuthError,
    AuthUnavailableError,
    BadAlgorithmError,
    BadClaimError,
    BadSignatureError,
    CircuitOpenError,
    ConfigError,
    ContentFilteredError,
    ContextLengthExceededError,
    Error,
    InvalidRequestError,
    LimitReachedError,
    MalformedTokenError,
    MissingKeyError,
    NotFoundError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitedError,
    StreamInterruptedError,
    TimeoutError,
    TokenError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenReusedError,
    TokenRevokedError,
    UnknownKeyError,
    UsageError,
)

__version__: str = _native.__version__

__all__ = [
    "AllProvidersFailedError",
    "AnalyticsRows",
    "AsyncChatStream",
    "AssistantEvent",
    "AssistantReply",
    "AsyncClient",
    "Attempt",
    "AuthError",
    "AuthUnavailableError",
    "BadAlgorithmError",
    "BadClaimError",
    "BadSignatureError",
    "ChatChunk",
    "ChatStream",
    "CircuitOpenError",
    "Client",
    "ConfigError",
    "ConfigSource",
    "ContentFilteredError",
    "ContextLengthExceededError",
    "Error",
    "Health",
    "InboundLimiter",
    "InvalidRequestError",
    "LimitReachedError",
    "MalformedTokenError",
    "MissingKeyError",
    "NotFoundError",
    "ProviderError",
    "QuotaExhaustedError",
    "RateLimitedError",
    "Result",
    "Stats",
    "StreamInterruptedError",
    "TimeoutError",
    "TokenError",
    "TokenExpiredError",
    "TokenNotYetValidError",
    "TokenReusedError",
    "TokenRevokedError",
    "UnknownKeyError",
    "UsageError",
    "capabilities",
    "display_stream",
    "parameter_schema",
    "providers",
]

logging.getLogger("polyrelay").addHandler(logging.NullHandler())


def capabilities() -> List[Dict[str, Any]]:
    """Every capability the library serves: ``name`` and default cache
    ``ttl`` in seconds."""
    return _native.capabilities()


def parameter_schema(capability: Optional[str] = None) -> Dict[str, Any]:
    """The parameters of ``capability`` as the core declares and validates
    them, as a JSON Schema: each parameter's type, bounds, default, whether
    it is required, and a description. Without ``capability``, every
    capability's schema by name."""
    return _native.parameter_schema(capability)


def providers() -> List[Dict[str, Any]]:
    """The built-in providers as a client with the default configuration
    sees them (keys read from ``os.environ``): the core's catalog, with the
    same entries as :meth:`Client.providers` — ``id``, ``name``,
    ``capabilities``, ``auth`` (``"keyless"``, ``"optional_key"`` or
    ``"key"``), ``key_env``, ``key_in``, ``key_set``, ``enabled``,
    ``chains`` (position in each capability's chain), ``docs_url``,
    ``terms``, ``commercial_use``, ``default_rate_limit``,
    ``default_daily_quota`` and ``default_monthly_quota``."""
    return _native.builtin_providers()
