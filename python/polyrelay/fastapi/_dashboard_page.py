"""The dashboard's one page: inline CSS and JavaScript, SVG charts drawn by
the script, no external resource. The script renders every value with
``textContent`` and DOM calls (provider reasons are third-party text);
the server fills in only the nonce, the snapshot path and the refresh
interval, all escaped."""

from __future__ import annotations

from html import escape

_STYLE = """
:root {
  --bg: #f6f8fa; --card: #ffffff; --text: #1f2328; --muted: #656d76; --line: #d0d7de;
  --ok: #1a7f37; --ok-bg: #dafbe1; --warn: #9a6700; --warn-bg: #fff8c5;
  --bad: #cf222e; --bad-bg: #ffebe9; --info: #0969da; --p95: #bc4c00;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; }
header { display: flex; align-items: center; gap: 16px; padding: 14px 24px;
  background: #24292f; color: #fff; }
header h1 { margin: 0; font-size: 18px; font-weight: 600; letter-spacing: .2px; }
header h1 span { color: #8c959f; font-weight: 400; }
#meta { margin-left: auto; display: flex; gap: 14px; align-items: center; font-size: 12px;
  color: #d0d7de; }
#live { display: inline-flex; align-items: center; gap: 6px; }
#live::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: #8c959f; }
#live.up::before { background: #3fb950; }
#live.down::before { background: #f85149; }
main { padding: 20px 24px 8px; display: grid; gap: 16px; max-width: 1400px; margin: 0 auto; }
.tiles { display: grid; grid-template-columns: repeat(6, minmax(0, 1fr)); gap: 12px; }
.tile, .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
.tile { padding: 12px 14px; }
.tile .label { font-size: 12px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .4px; }
.tile .value { font-size: 24px; font-weight: 600; margin-top: 2px; font-variant-numeric: tabular-nums;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.tile .note { font-size: 12px; color: var(--muted); }
.tile.bad .value { color: var(--bad); }
.tile.warn .value { color: var(--warn); }
.tile.ok .value { color: var(--ok); }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.card { padding: 14px 16px; min-width: 0; }
.card h2 { margin: 0 0 8px; font-size: 15px; font-weight: 600; display: flex; align-items: baseline;
  gap: 10px; }
.card h2 .aside { font-size: 12px; font-weight: 400; color: var(--muted); margin-left: auto; }
.legend { display: flex; gap: 14px; font-size: 12px; color: var(--muted); margin-bottom: 4px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px;
  vertical-align: -1px; }
.chart { width: 100%; height: 220px; display: block; }
.chart text { font-size: 11px; fill: var(--muted); }
.chart .grid { stroke: #eaeef2; }
.chart .axis { stroke: var(--line); }
.chart .empty { font-size: 13px; }
.errors { font-size: 12px; color: var(--muted); margin-top: 6px; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px;
  border-bottom: 1px solid var(--line); padding: 6px 8px; }
td { border-bottom: 1px solid #eaeef2; padding: 6px 8px; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.num { text-align: right; }
tr:last-child td { border-bottom: 0; }
.name { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px;
  font-weight: 500; border: 1px solid transparent; white-space: nowrap; margin: 1px 4px 1px 0; }
.s-healthy, .s-closed, .s-ready { color: var(--ok); background: var(--ok-bg); border-color: #aceebb; }
.s-degraded, .s-half_open { color: var(--warn); background: var(--warn-bg); border-color: #eac54f; }
.s-down, .s-open, .s-forced_open, .s-unavailable { color: var(--bad); background: var(--bad-bg);
  border-color: #ffcecb; }
.s-other { color: var(--muted); background: #f6f8fa; border-color: var(--line); }
.reason { display: block; font-size: 12px; color: var(--muted); }
.reason b { font-weight: 500; color: var(--text); }
.quota { min-width: 150px; }
.bar { height: 5px; background: #eaeef2; border-radius: 3px; margin-top: 3px; overflow: hidden; }
.bar div { height: 100%; background: var(--ok); }
.bar.low div { background: var(--warn); }
.bar.out div { background: var(--bad); }
.muted { color: var(--muted); }
.toolbar { font-size: 12px; color: var(--muted); font-weight: 400; margin-left: auto; }
.two { display: grid; grid-template-columns: 3fr 2fr; gap: 16px; align-items: start; }
footer { text-align: center; font-size: 12px; color: var(--muted); padding: 8px 0 20px; }
@media (max-width: 1000px) {
  .tiles { grid-template-columns: repeat(3, minmax(0, 1fr)); }
  .charts, .two { grid-template-columns: 1fr; }
}
"""

_SCRIPT = r"""
"use strict";
(function () {
  const SNAPSHOT = document.body.dataset.snapshot;
  const REFRESH_MS = Math.max(100, Number(document.body.dataset.refresh) || 5000);
  const SVG = "http://www.w3.org/2000/svg";
  const SEVERITY = { down: 0, degraded: 1, healthy: 2 };
  let showIdle = false;
  let last = null;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function byId(id) { return document.getElementById(id); }
  function num(value) { return typeof value === "number" && isFinite(value); }
  function count(value) { return num(value) ? value.toLocaleString("en-US") : "–"; }
  function percent(value) {
    if (!num(value)) return "–";
    const p = value * 100;
    return (p === 0 || p === 100 ? p.toFixed(0) : p.toFixed(1)) + " %";
  }
  function millis(value) {
    if (!num(value)) return "–";
    if (value === 0) return "0";
    return value >= 1000 ? (value / 1000).toFixed(2) + " s" : value.toFixed(value < 10 ? 1 : 0) + " ms";
  }
  // "2.0 / 5.1 ms": one unit for both when they share it.
  function pair(a, b) {
    const [x, y] = [millis(a), millis(b)];
    const unit = (text) => text.split(" ")[1];
    return unit(x) === unit(y) ? x.split(" ")[0] + " / " + y : x + " / " + y;
  }
  function badge(state, text) {
    const known = ["healthy", "degraded", "down", "closed", "half_open", "open", "forced_open",
      "ready", "unavailable"];
    const node = el("span", "badge " + (known.includes(state) ? "s-" + state : "s-other"),
      text === undefined ? String(state).replace("_", " ") : text);
    node.dataset.state = String(state);
    return node;
  }
  function cell(row, content, className) {
    const td = el("td", className);
    if (content instanceof Node) td.appendChild(content);
    else if (content !== undefined && content !== null) td.textContent = String(content);
    row.appendChild(td);
    return td;
  }
  function hourLabel(date) { return String(date.getUTCHours()).padStart(2, "0") + ":00"; }

  // One entry per hour of the window, oldest first; hours without calls are empty.
  function hourly(snapshot) {
    const rows = new Map();
    for (const row of snapshot.hours) rows.set(Date.parse(row.period), row);
    const end = Math.floor(Date.parse(snapshot.generated_at) / 3600000) * 3600000;
    const hours = [];
    for (let i = snapshot.window_hours - 1; i >= 0; i--) {
      const t = end - i * 3600000;
      hours.push({ time: new Date(t), row: rows.get(t) || null });
    }
    return hours;
  }

  // The top of an axis of four ticks: a round step, whole for counts.
  function axisTop(value, whole) {
    const raw = Math.max(value, whole ? 4 : 1) / 4;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const factor of [1, 2, 2.5, 5, 10]) {
      const step = factor * power;
      if (step >= raw && (!whole || Number.isInteger(step))) return step * 4;
    }
    return 40 * power;
  }

  // Axes, grid and labels shared by both charts; returns the plotting frame.
  function frame(node, hours, top, unit) {
    clear(node);
    const width = Math.max(node.clientWidth || 600, 300), height = 220;
    node.setAttribute("viewBox", "0 0 " + width + " " + height);
    const box = { left: 52, right: width - 12, top: 10, bottom: height - 34 };
    const ticks = 4;
    for (let i = 0; i <= ticks; i++) {
      const value = top * i / ticks;
      const y = box.bottom - (box.bottom - box.top) * i / ticks;
      node.appendChild(svg("line", { x1: box.left, x2: box.right, y1: y, y2: y,
        class: i === 0 ? "axis" : "grid" }));
      const label = unit === "ms" ? millis(value) : (Number.isInteger(value) ? value : value.toFixed(1));
      node.appendChild(svg("text", { x: box.left - 6, y: y + 4, "text-anchor": "end" }, label));
    }
    const step = (box.right - box.left) / hours.length;
    const every = Math.ceil(hours.length / 8);
    hours.forEach((hour, i) => {
      if ((hours.length - 1 - i) % every !== 0) return;
      node.appendChild(svg("text", { x: box.left + step * (i + 0.5), y: box.bottom + 16,
        "text-anchor": "middle" }, hourLabel(hour.time)));
    });
    node.appendChild(svg("text", { x: (box.left + box.right) / 2, y: height - 2,
      "text-anchor": "middle" }, "hour (UTC)"));
    return { box, step };
  }

  function emptyNote(node, box, text) {
    node.appendChild(svg("text", { x: (box.left + box.right) / 2, y: (box.top + box.bottom) / 2,
      "text-anchor": "middle", class: "empty" }, text));
  }

  function drawCalls(snapshot, hours) {
    const node = byId("chart-calls");
    const top = axisTop(Math.max(0, ...hours.map((h) => (h.row ? h.row.calls : 0))), true);
    const { box, step } = frame(node, hours, top, "calls");
    const scale = (box.bottom - box.top) / top;
    const width = Math.max(step * 0.7, 1);
    let any = false;
    hours.forEach((hour, i) => {
      if (!hour.row || !hour.row.calls) return;
      any = true;
      const row = hour.row, failed = row.calls - row.successes;
      const x = box.left + step * i + (step - width) / 2;
      const group = svg("g", {});
      group.appendChild(svg("title", {}, hourLabel(hour.time) + " UTC: " + row.calls + " calls, " +
        failed + " failed, " + row.cached + " from the cache"));
      group.appendChild(svg("rect", { x, width, y: box.bottom - row.successes * scale,
        height: row.successes * scale, fill: "#2da44e", rx: 1 }));
      if (failed > 0) {
        group.appendChild(svg("rect", { x, width, y: box.bottom - row.calls * scale,
          height: failed * scale, fill: "#cf222e", rx: 1 }));
      }
      node.appendChild(group);
    });
    if (!any) emptyNote(node, box, "no calls recorded in this window");
    const errors = new Map();
    for (const row of snapshot.hours) {
      for (const e of row.top_errors || []) errors.set(e.class, (errors.get(e.class) || 0) + e.calls);
    }
    const list = [...errors.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
    byId("errors").textContent = list.length
      ? "Top errors: " + list.map(([name, calls]) => name + " (" + calls + ")").join(", ")
      : "No errors in this window.";
  }

  function drawLatency(hours) {
    const node = byId("chart-latency");
    const values = [];
    for (const h of hours) {
      if (h.row && num(h.row.latency_ms_p95)) values.push(h.row.latency_ms_p95);
      if (h.row && num(h.row.latency_ms_p50)) values.push(h.row.latency_ms_p50);
    }
    const top = axisTop(Math.max(0, ...values), false);
    const { box, step } = frame(node, hours, top, "ms");
    if (!values.length) { emptyNote(node, box, "no latency recorded in this window"); return; }
    const scale = (box.bottom - box.top) / top;
    for (const [key, colour] of [["latency_ms_p95", "#bc4c00"], ["latency_ms_p50", "#0969da"]]) {
      let path = "", pen = false;
      hours.forEach((h, i) => {
        const value = h.row ? h.row[key] : null;
        if (!num(value)) { pen = false; return; }
        const x = box.left + step * (i + 0.5), y = box.bottom - value * scale;
        path += (pen ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
        pen = true;
        const dot = svg("circle", { cx: x, cy: y, r: 3, fill: colour });
        dot.appendChild(svg("title", {}, hourLabel(h.time) + " UTC " +
          key.replace("latency_ms_", "") + ": " + millis(value)));
        node.appendChild(dot);
      });
      node.appendChild(svg("path", { d: path, fill: "none", stroke: colour, "stroke-width": 2 }));
    }
  }

  function tile(label, value, note, tone, id) {
    const node = el("div", "tile" + (tone ? " " + tone : ""));
    node.appendChild(el("div", "label", label));
    const shown = el("div", "value", value);
    if (id) shown.id = id;
    node.appendChild(shown);
    node.appendChild(el("div", "note", note));
    return node;
  }

  function openBreakers(snapshot) {
    const open = [];
    for (const [provider, entry] of Object.entries(snapshot.providers)) {
      for (const [capability, breaker] of Object.entries(entry.breakers || {})) {
        if (breaker.state !== "closed") open.push([provider, capability, breaker.state]);
      }
    }
    return open;
  }

  function drawTiles(snapshot, hours) {
    const node = byId("tiles");
    clear(node);
    let calls = 0, successes = 0, cached = 0;
    for (const row of snapshot.hours) { calls += row.calls; successes += row.successes; cached += row.cached; }
    const latest = [...hours].reverse().find((h) => h.row && num(h.row.latency_ms_p50));
    const statuses = Object.values(snapshot.capabilities).map((c) => c.status);
    const down = statuses.filter((s) => s === "down").length;
    const degraded = statuses.filter((s) => s === "degraded").length;
    const open = openBreakers(snapshot);
    const span = "last " + snapshot.window_hours + " h";
    node.appendChild(tile("Calls", count(calls), span, "", "calls-total"));
    const rate = calls ? successes / calls : null;
    node.appendChild(tile("Success rate", percent(rate), count(calls - successes) + " failed",
      rate === null ? "" : rate >= 0.99 ? "ok" : rate >= 0.9 ? "warn" : "bad"));
    node.appendChild(tile("Cache hit ratio", percent(calls ? cached / calls : null),
      count(cached) + " from the cache"));
    node.appendChild(tile("Latency p50 / p95",
      latest ? pair(latest.row.latency_ms_p50, latest.row.latency_ms_p95) : "–",
      latest ? "hour of " + hourLabel(latest.time) + " UTC" : "no calls yet"));
    node.appendChild(tile("Open breakers", String(open.length),
      open.length ? open.slice(0, 2).map((b) => b[0]).join(", ") + (open.length > 2 ? ", …" : "")
        : "all circuits closed", open.length ? "bad" : "ok", "open-breakers"));
    node.appendChild(tile("Capabilities", (statuses.length - down - degraded) + " / " + statuses.length,
      "healthy · " + degraded + " degraded · " + down + " down", down ? "bad" : degraded ? "warn" : "ok"));
  }

  function quotaCell(row, quota) {
    const td = cell(row, null, "quota");
    if (!quota || !num(quota.limit)) { td.appendChild(el("span", "muted", "no quota")); return; }
    const left = Math.max(0, quota.remaining);
    const period = quota.period === "day" ? "today" : quota.period === "month" ? "this month"
      : "per " + quota.period;
    td.appendChild(el("span", "", count(left) + " / " + count(quota.limit) + " left " + period));
    const share = quota.limit > 0 ? left / quota.limit : 0;
    const bar = el("div", "bar" + (share <= 0 ? " out" : share < 0.1 ? " low" : ""));
    const fill = el("div");
    fill.style.width = (share * 100).toFixed(1) + "%";
    bar.appendChild(fill);
    td.appendChild(bar);
  }

  function drawProviders(snapshot) {
    const body = byId("providers");
    clear(body);
    const entries = Object.entries(snapshot.providers).map(([id, p]) => {
      const breakers = Object.entries(p.breakers || {});
      const trouble = breakers.some(([, b]) => b.state !== "closed") || p.benched_for;
      return { id, p, breakers, trouble, active: p.requests > 0 || trouble };
    });
    entries.sort((a, b) => (b.trouble - a.trouble) || (b.p.requests - a.p.requests) ||
      a.id.localeCompare(b.id));
    // Why a provider is unavailable, per capability, from health.
    const reasons = new Map();
    for (const [capability, entry] of Object.entries(snapshot.capabilities)) {
      for (const [provider, reason] of Object.entries(entry.unavailable || {})) {
        if (!reasons.has(provider)) reasons.set(provider, []);
        reasons.get(provider).push([capability, reason]);
      }
    }
    let hidden = 0;
    for (const { id, p, breakers, trouble, active } of entries) {
      if (!active && !showIdle) { hidden += 1; continue; }
      const row = el("tr");
      row.dataset.provider = id;
      cell(row, id, "name");
      const health = cell(row, null, "health");
      const why = reasons.get(id) || [];
      health.appendChild(badge(why.length ? "unavailable" : "ready"));
      for (const [capability, reason] of why) {
        const line = el("span", "reason");
        line.appendChild(el("b", "", capability));
        line.appendChild(document.createTextNode(": " + reason));
        health.appendChild(line);
      }
      cell(row, count(p.requests), "num requests");
      const outcomes = Object.entries(p.outcomes || {}).sort((a, b) => b[1] - a[1]);
      const ok = (p.outcomes || {}).success || 0;
      const failed = outcomes.filter(([k]) => k !== "success" && !k.startsWith("skipped"))
        .reduce((sum, [, v]) => sum + v, 0);
      cell(row, count(ok), "num");
      const failures = cell(row, count(failed), "num");
      failures.title = outcomes.map(([k, v]) => k + ": " + v).join("\n");
      cell(row, pair(p.latency_ms_p50, p.latency_ms_p90), "num");
      const states = cell(row, null, "breakers");
      const notClosed = breakers.filter(([, b]) => b.state !== "closed");
      for (const [capability, b] of notClosed) {
        const mark = badge(b.state, String(b.state).replace("_", " ") + " · " + capability);
        mark.dataset.capability = capability;
        if (num(b.open_until)) mark.title = "tries again in " + b.open_until.toFixed(0) + " s";
        states.appendChild(mark);
      }
      if (!notClosed.length) {
        states.appendChild(badge("closed", breakers.length > 1 ? "closed (" + breakers.length + ")" : "closed"));
      }
      if (p.benched_for) states.appendChild(badge("degraded", "benched " + Number(p.benched_for).toFixed(0) + " s"));
      quotaCell(row, p.quota);
      body.appendChild(row);
    }
    byId("idle-note").textContent = hidden ? hidden + " idle providers hidden" : "";
  }

  function drawCapabilities(snapshot) {
    const body = byId("capabilities");
    clear(body);
    const entries = Object.entries(snapshot.capabilities).sort((a, b) =>
      (SEVERITY[a[1].status] ?? 3) - (SEVERITY[b[1].status] ?? 3) || a[0].localeCompare(b[0]));
    for (const [name, capability] of entries) {
      const row = el("tr");
      row.dataset.capability = name;
      cell(row, name, "name");
      cell(row, badge(capability.status));
      cell(row, (capability.ready || []).join(", ") || "nobody", "name");
      const reasons = cell(row, null);
      for (const [provider, reason] of Object.entries(capability.unavailable || {})) {
        const line = el("span", "reason");
        line.appendChild(el("b", "", provider));
        line.appendChild(document.createTextNode(": " + reason));
        reasons.appendChild(line);
      }
      body.appendChild(row);
    }
  }

  function drawBudgets(snapshot) {
    const budgets = Object.entries(snapshot.budgets || {});
    byId("budgets-card").hidden = budgets.length === 0;
    const body = byId("budgets");
    clear(body);
    for (const [name, b] of budgets) {
      const row = el("tr");
      cell(row, name, "name");
      cell(row, b.spent + " / " + b.limit + " " + b.unit + " this " + b.period, "num");
      cell(row, b.reset_at, "muted");
      body.appendChild(row);
    }
  }

  function render(snapshot) {
    last = snapshot;
    const hours = hourly(snapshot);
    drawTiles(snapshot, hours);
    drawCalls(snapshot, hours);
    drawLatency(hours);
    drawProviders(snapshot);
    drawCapabilities(snapshot);
    drawBudgets(snapshot);
    const analytics = snapshot.analytics || {};
    byId("backend").textContent = "state: " + snapshot.state_backend +
      (snapshot.redis_degraded ? " (degraded)" : "") + " · analytics: " + (analytics.store || "off") +
      (analytics.degraded ? " (degraded)" : "");
    const warnings = snapshot.config_warnings || [];
    byId("warnings").textContent = warnings.length ? "Configuration warnings: " + warnings.join("; ") : "";
  }

  function status(up, text) {
    const live = byId("live");
    live.className = up ? "up" : "down";
    live.textContent = text;
  }

  async function poll() {
    try {
      const answer = await fetch(SNAPSHOT, { cache: "no-store", credentials: "same-origin",
        headers: { Accept: "application/json" } });
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      render(await answer.json());
      status(true, "live · updated " + new Date().toLocaleTimeString("en-GB"));
    } catch (error) {
      status(false, "not updating: " + (error && error.message ? error.message : error));
    } finally {
      setTimeout(poll, REFRESH_MS);
    }
  }

  byId("show-idle").addEventListener("change", (event) => {
    showIdle = event.target.checked;
    if (last) drawProviders(last);
  });
  window.addEventListener("resize", () => { if (last) render(last); });
  byId("refresh-note").textContent = "refreshes every " + (REFRESH_MS / 1000) + " s";
  poll();
})();
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="icon" href="data:,">
<style nonce="{nonce}">{style}</style>
</head>
<body data-snapshot="{snapshot}" data-refresh="{refresh_ms}">
<header>
  <h1>{title} <span>dashboard</span></h1>
  <div id="meta"><span id="backend"></span><span id="refresh-note"></span>
  <span id="live">connecting…</span></div>
</header>
<main>
  <section class="tiles" id="tiles" aria-label="summary"></section>
  <section class="charts">
    <div class="card">
      <h2>Calls per hour <span class="aside">analytics store</span></h2>
      <div class="legend"><span><i class="l-ok"></i>answered</span><span><i class="l-bad"></i>failed</span></div>
      <svg class="chart" id="chart-calls" role="img" aria-label="calls per hour"></svg>
      <div class="errors" id="errors"></div>
    </div>
    <div class="card">
      <h2>Latency per hour <span class="aside">whole call, ms</span></h2>
      <div class="legend"><span><i class="l-p50"></i>p50</span><span><i class="l-p95"></i>p95</span></div>
      <svg class="chart" id="chart-latency" role="img" aria-label="latency per hour"></svg>
    </div>
  </section>
  <section class="card">
    <h2>Providers <span class="toolbar"><span id="idle-note"></span>
      <label><input type="checkbox" id="show-idle"> show idle</label></span></h2>
    <table>
      <thead><tr><th>provider</th><th>health</th><th class="num">requests</th><th class="num">answered</th>
      <th class="num">failed</th><th class="num">latency p50 / p90</th><th>circuit breakers</th>
      <th>quota left</th></tr></thead>
      <tbody id="providers"></tbody>
    </table>
  </section>
  <section class="card">
    <h2>Capabilities <span class="aside">problems first</span></h2>
    <table>
      <thead><tr><th>capability</th><th>status</th><th>ready providers</th><th>unavailable</th></tr></thead>
      <tbody id="capabilities"></tbody>
    </table>
  </section>
  <section class="card" id="budgets-card" hidden>
    <h2>Budgets</h2>
    <table><tbody id="budgets"></tbody></table>
  </section>
  <div class="errors" id="warnings"></div>
</main>
<footer>read-only · no key is ever shown · health, breakers and quotas are this server's client;
calls and latency come from the analytics store</footer>
<script nonce="{nonce}">{script}</script>
</body>
</html>
"""

_LEGEND_STYLE = """
.l-ok { background: #2da44e; } .l-bad { background: #cf222e; }
.l-p50 { background: #0969da; } .l-p95 { background: #bc4c00; }
"""


def render_page(*, title: str, nonce: str, snapshot_path: str, refresh_seconds: float) -> str:
    """The page, with the nonce of its inline style and script, the path
    of its snapshot and its refresh interval."""
    return _PAGE.format(
        title=escape(title),
        nonce=escape(nonce),
        snapshot=escape(snapshot_path),
        refresh_ms=int(refresh_seconds * 1000),
        style=_STYLE + _LEGEND_STYLE,
        script=_SCRIPT,
    )
