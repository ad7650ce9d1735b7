"""Plain value types shared by results and exceptions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Optional

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Attempt:
    """What one provider did during a call: one entry of the trail.

    ``outcome`` is ``"success"``, a failure class (``"transient"``,
    ``"rate_limited"``, ``"quota_exhausted"``, ``"auth"``,
    ``"invalid_request"``, ``"not_found"``, ``"malformed_response"``,
    ``"unsupported"``, ``"context_length_exceeded"``,
    ``"content_filtered"``), a skip (``"skipped_no_key"``,
    ``"skipped_benched"``, ``"skipped_quota"``, ``"skipped_rate_limit"``,
    ``"skipped_circuit_open"``, ``"skipped_context_window"``,
    ``"skipped_budget"``) or ``"cancelled"`` (a hedged call's loser).
    ``reason`` is a sentence a person can act on, e.g.
    ``"skipped: OPENWEATHER_API_KEY is not set"``. ``hedged`` is true when
    the provider was asked as a hedge because the one before it was slow.
    ``cost_usd`` is what the answer cost in US dollars, on the entry of the
    provider that answered an LLM call whose model and usage are priced;
    ``None`` otherwise.
    ``deployment`` names the provider's deployment when the call's ``model``
    named a model group (``None`` otherwise).
    """

    provider: str
    outcome: str
    status: Optional[int]
    tries: int
    elapsed: float
    reason: str
    retry_after: Optional[float]
    hedged: bool = False
    cost_usd: Optional[float] = None
    deployment: Optional[str] = None

    @property
    def succeeded(self) -> bool:
        """Whether this attempt produced the answer."""
        return self.outcome == "success"

    @property
    def skipped(self) -> bool:
        """Whether the provider was skipped without an HTTP request."""
        return self.outcome.startswith("skipped")

    def to_dict(self) -> Dict[str, Any]:
        """The attempt as plain data."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        if self.deployment is not None:
            return f"{self.provider} ({self.deployment}): {self.reason}"
        return f"{self.provider}: {self.reason}"


class Health(Dict[str, Any]):
    """What ``health()`` returns: the plain dict documented there
    (``state_backend``, ``redis_degraded``, ``capabilities``, ``budgets``),
    which Jupyter shows as a table."""

    def _repr_html_(self) -> str:
        from ._html import health_html

        return health_html(self)


class Stats(Dict[str, Dict[str, Any]]):
    """What ``stats()`` returns: the plain dict of per-provider statistics
    documented there, which Jupyter shows as a table."""

    def _repr_html_(self) -> str:
        from ._html import stats_html

        return stats_html(self)


def utc_from_micros(micros: int) -> datetime:
    """An aware UTC datetime from microseconds since the Unix epoch."""
    return _EPOCH + timedelta(microseconds=micros)
