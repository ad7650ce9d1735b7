"""Prometheus exposition of a client's metrics.

::

    from polyrelay.metrics import CONTENT_TYPE, render

    body = render(client)  # serve with Content-Type: CONTENT_TYPE

The text is the core's (``Client.metrics_text``), in the Prometheus text
format 0.0.4. Series (label values are capability ids, provider or
deployment names and outcome names, never a key):

- ``polyrelay_calls_total{capability, outcome}``: finished calls; outcome
  ``success``, ``cached``, ``stale`` or the error kind (``provider_error``,
  ``timeout``, ``quota_exhausted``, ...);
- ``polyrelay_cache_hits_total{capability}``;
- ``polyrelay_call_duration_seconds{capability}`` and
  ``polyrelay_overhead_duration_seconds{capability}`` (a call's time minus
  its HTTP exchanges with providers): histograms;
- ``polyrelay_provider_attempts_total{provider, outcome}`` and
  ``polyrelay_upstream_request_duration_seconds{provider}`` (histogram);
- ``polyrelay_tokens_total{provider, direction}``,
  ``polyrelay_cost_usd_total{provider}``;
- ``polyrelay_breaker_state{provider, capability, state}`` (1 for the
  current state), ``polyrelay_quota_remaining{provider}``,
  ``polyrelay_capability_ready_providers{capability}``,
  ``polyrelay_redis_degraded``, ``polyrelay_analytics_dropped_records_total``.

The per-call series come from the call records of analytics, so they are
absent with ``[analytics] enabled = false``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONTENT_TYPE", "render"]

#: The ``Content-Type`` of :func:`render`'s text.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(client: Any) -> str:
    """The Prometheus text of ``client`` (a :class:`polyrelay.Client` or
    :class:`polyrelay.AsyncClient`): its ``metrics_text()``."""
    return str(client.metrics_text())
