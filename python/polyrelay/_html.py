"""HTML views of results, health and stats for Jupyter (``_repr_html_``).

Every value is escaped: provider answers are third-party text. Nothing
rendered here can hold a secret: results, health and stats never carry keys.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any, Dict, Iterable, Mapping, Sequence, Tuple

if TYPE_CHECKING:
    from ._native import Result

__all__ = ["result_html", "health_html", "stats_html", "analytics_html"]

_STATUS_COLOURS = {"healthy": "#1a7f37", "degraded": "#9a6700", "down": "#cf222e"}
_STATE_COLOURS = {"closed": "#1a7f37", "half_open": "#9a6700", "open": "#cf222e"}


def _text(value: Any) -> str:
    return escape("" if value is None else str(value))


def _badge(text: str, colour: str) -> str:
    return (
        f'<span style="color:{colour};border:1px solid {colour};border-radius:3px;'
        f'padding:0 4px;font-size:90%">{_text(text)}</span>'
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table; ``rows`` hold already escaped HTML."""
    head = "".join(f'<th style="text-align:left">{_text(h)}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="text-align:left">{cell}</td>' for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _ms(seconds: Any) -> str:
    return f"{float(seconds) * 1000:.1f} ms" if isinstance(seconds, (int, float)) else ""


def result_html(result: Result) -> str:
    """A result: what answered and how, the attempts trail, and the data."""
    flags = []
    if result.cached:
        flags.append(_badge("cached", "#0969da"))
    if result.stale:
        flags.append(_badge("stale", "#9a6700"))
    title = (
        f"<b>{_text(result.capability)}</b> from <b>{_text(result.provider)}</b>"
        f"{''.join(' ' + flag for flag in flags)} in {_ms(result.elapsed)}, fetched "
        f"{_text(result.fetched_at.isoformat(timespec='seconds'))}"
    )
    trail = ""
    if result.attempts:
        trail = _table(
            ["provider", "outcome", "status", "tries", "elapsed", "reason"],
            (
                [
                    _text(a.provider),
                    _text(a.outcome),
                    _text(a.status),
                    _text(a.tries),
                    _ms(a.elapsed),
                    _text(a.reason),
                ]
                for a in result.attempts
            ),
        )
    data = json.dumps(result.data, indent=2, ensure_ascii=False, default=str)
    return (
        '<div class="polyrelay-result">'
        f"<div>{title}</div>{trail}"
        f"<details><summary>data</summary><pre>{_text(data)}</pre></details>"
        "</div>"
    )


def health_html(health: Mapping[str, Any]) -> str:
    """Health: per capability (and model group) its status, ready providers
    and why the others are unavailable."""
    rows = []
    entries = list(health.get("capabilities", {}).items()) + [
        (f"group {name}", entry) for name, entry in health.get("groups", {}).items()
    ]
    for capability, entry in entries:
        status = str(entry.get("status", ""))
        unavailable = "<br>".join(
            f"{_text(provider)}: {_text(reason)}"
            for provider, reason in entry.get("unavailable", {}).items()
        )
        rows.append(
            [
                _text(capability),
                _badge(status, _STATUS_COLOURS.get(status, "#57606a")),
                _text(", ".join(map(str, entry.get("ready", [])))),
                unavailable,
            ]
        )
    backend = _text(health.get("state_backend"))
    degraded = " (degraded)" if health.get("redis_degraded") else ""
    budgets = [
        [
            _text(name),
            _text(f"{b.get('spent')} / {b.get('limit')} {b.get('unit')}"),
            _text(b.get("period")),
            _text(b.get("reset_at")),
        ]
        for name, b in health.get("budgets", {}).items()
    ]
    budget_table = (
        _table(["budget", "spent", "period", "resets"], budgets) if budgets else ""
    )
    return (
        '<div class="polyrelay-health">'
        f"<div>state: {backend}{degraded}</div>"
        f"{_table(['capability', 'status', 'ready', 'unavailable'], rows)}"
        f"{budget_table}</div>"
    )


def stats_html(stats: Mapping[str, Mapping[str, Any]]) -> str:
    """Stats: per provider its traffic, latency, breakers and quota."""
    rows = []
    for provider, entry in stats.items():
        outcomes = ", ".join(
            f"{name} {count}" for name, count in sorted(entry.get("outcomes", {}).items())
        )
        breakers = "<br>".join(
            f"{_text(capability)}: "
            + _badge(str(b.get("state")), _STATE_COLOURS.get(str(b.get("state")), "#57606a"))
            for capability, b in entry.get("breakers", {}).items()
        )
        quota = entry.get("quota") or {}
        used = f"{quota.get('used')} / {quota.get('limit')}" if quota.get("limit") else ""
        latency = " / ".join(
            f"{entry[k]:.1f}" if isinstance(entry.get(k), (int, float)) else "-"
            for k in ("latency_ms_p50", "latency_ms_p90", "latency_ms_p99")
        )
        rows.append(
            [
                _text(provider),
                _text(entry.get("requests")),
                _text(outcomes),
                _text(latency),
                breakers,
                _text(used),
                "yes" if entry.get("key_set") else "no",
            ]
        )
    header = [
        "provider",
        "requests",
        "outcomes",
        "latency p50/p90/p99 (ms)",
        "breakers",
        "quota used",
        "key set",
    ]
    return f'<div class="polyrelay-stats">{_table(header, rows)}</div>'


def _bars_svg(rows: Sequence[Mapping[str, Any]]) -> str:
    """Calls per period as bars, the failed part of each in red; periods
    summed over the rows' groups. Plain SVG: no plotting dependency."""
    periods: Dict[str, Tuple[int, int]] = {}
    for row in rows:
        calls, ok = periods.get(row["period"], (0, 0))
        periods[row["period"]] = (calls + int(row["calls"]), ok + int(row["successes"]))
    if not periods:
        return ""
    width, height, gap = 640, 160, 2
    top = max(calls for calls, _ in periods.values()) or 1
    step = width / len(periods)
    bars = []
    for i, (period, (calls, ok)) in enumerate(sorted(periods.items())):
        x = i * step
        w = max(step - gap, 1)
        h_all = height * calls / top
        h_ok = height * ok / top
        title = f"{period}: {calls} calls, {calls - ok} failed"
        bars.append(
            f'<g><title>{_text(title)}</title>'
            f'<rect x="{x:.1f}" y="{height - h_all:.1f}" width="{w:.1f}" '
            f'height="{h_all - h_ok:.1f}" fill="#cf222e"/>'
            f'<rect x="{x:.1f}" y="{height - h_ok:.1f}" width="{w:.1f}" '
            f'height="{h_ok:.1f}" fill="#1a7f37"/></g>'
        )
    first, last = min(periods), max(periods)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20}" '
        f'role="img" aria-label="calls per period">'
        + "".join(bars)
        + f'<text x="0" y="{height + 15}" font-size="11">{_text(first)}</text>'
        + f'<text x="{width}" y="{height + 15}" font-size="11" text-anchor="end">'
        + f"{_text(last)} · max {top} calls</text></svg>"
    )


def analytics_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """Analytics rows: an SVG chart of calls per period (answered green,
    failed red) over a table of the rows."""
    if not rows:
        return "<p>no calls recorded</p>"

    def ratio(value: Any) -> str:
        return f"{float(value) * 100:.0f} %"

    def latency(value: Any) -> str:
        return "" if value is None else f"{float(value):.1f} ms"

    dims = [d for d in ("capability", "provider", "tag") if any(r.get(d) for r in rows)]
    header = ["period", *dims, "calls", "success", "cache hits", "p50", "p95", "tokens",
              "cost (USD)", "top errors"]
    table = _table(
        header,
        (
            [
                _text(row["period"]),
                *(_text(row.get(d) or "-") for d in dims),
                _text(row["calls"]),
                ratio(row["success_rate"]),
                ratio(row["cache_hit_ratio"]),
                latency(row.get("latency_ms_p50")),
                latency(row.get("latency_ms_p95")),
                _text(int(row["input_tokens"]) + int(row["output_tokens"])),
                _text(f"{float(row['cost_usd']):.6f}".rstrip("0").rstrip(".")),
                _text(", ".join(f"{e['class']} ({e['calls']})" for e in row["top_errors"])),
            ]
            for row in rows
        ),
    )
    return _bars_svg(rows) + table
