"""Plain value types shared by results and exceptions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional

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


class AnalyticsRows(List[Dict[str, Any]]):
    """What ``analytics()`` returns: a list of plain dict rows (``period``,
    the grouped ``capability`` / ``provider`` / ``tag``, ``calls``,
    ``successes``, ``success_rate``, ``cached``, ``cache_hit_ratio``,
    ``stale``, ``latency_ms_p50``, ``latency_ms_p95``, ``input_tokens``,
    ``output_tokens``, ``cost_usd``, ``top_errors``), which Jupyter shows as
    a chart and a table."""

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame (``period`` as UTC timestamps);
        needs pandas installed."""
        try:
            import pandas  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas() needs pandas: pip install pandas") from error
        frame = pandas.DataFrame(list(self))
        if "period" in frame:
            frame["period"] = pandas.to_datetime(frame["period"], utc=True)
        return frame

    #: The same as :meth:`to_pandas`.
    to_dataframe = to_pandas

    def _repr_html_(self) -> str:
        from ._html import analytics_html

        return analytics_html(self)


def utc_from_micros(micros: int) -> datetime:
    """An aware UTC datetime from microseconds since the Unix epoch."""
    return _EPOCH + timedelta(microseconds=micros)
