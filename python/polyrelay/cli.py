"""The ``polyrelay`` command.

::

    polyrelay call weather.current city=Berlin     # the answer and the trail
    polyrelay providers                            # what is built in, which keys are set
    polyrelay check                                # is the configuration valid, what can be served
    polyrelay check --critical llm.chat            # ... and exit 1 unless llm.chat has a usable provider
    polyrelay health                               # which providers are ready right now
    polyrelay analytics --group-by provider         # calls, latency, cost per hour
    polyrelay dashboard                            # a live web page on http://127.0.0.1:8765/
    polyrelay emulate                              # an offline emulator of every provider
    polyrelay demo                                 # a guided tour against the emulator

Configuration comes from ``--config FILE`` or the environment
(``POLYRELAY_CONFIG``, ``POLYRELAY_*``, provider key variables). Key values
are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO

from . import _native
from ._client import AsyncClient, Client
from ._models import Attempt
from ._native import Result
from .exceptions import ConfigError, Error, InvalidRequestError


def _parse_value(text: str) -> Any:
    """``52.5`` → float, ``3`` → int, ``true`` → bool, ``["a","b"]`` → list;
    anything else stays text (``Berlin``, ``EUR,GBP``, ``2024-01-02``)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_params(pairs: Sequence[str]) -> Dict[str, Any]:
    params: Dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidRequestError(
                f"invalid request: `{pair}` must be written as name=value",
                kind="invalid_request",
                field=pair,
                expected="name=value",
            )
        params[name] = _parse_value(value)
    return params


def _client(args: argparse.Namespace) -> Client:
    return Client(args.config)


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _print_trail(attempts: Sequence[Attempt], out: TextIO) -> None:
    if not attempts:
        print("  (no provider was asked)", file=out)
        return
    width = max(len(a.provider) for a in attempts)
    for a in attempts:
        mark = "ok" if a.succeeded else ("--" if a.skipped else "xx")
        status = f"HTTP {a.status}" if a.status is not None else "       "
        tries = f"{a.tries} {'try' if a.tries == 1 else 'tries'}"
        print(
            f"  {mark} {a.provider:<{width}}  {status:<8} {tries:<8} "
            f"{a.elapsed * 1000:8.1f} ms  {a.reason}",
            file=out,
        )


def _describe(result: Result) -> str:
    freshness = "stale" if result.stale else ("cached" if result.cached else "fresh")
    return (
        f"{result.capability} via {result.provider} "
        f"({freshness}, {result.elapsed * 1000:.1f} ms)"
    )


def _cmd_call(args: argparse.Namespace) -> int:
    params = _parse_params(args.params)
    with _client(args) as client:
        result = client.call(args.capability, **params)
    if args.json:
        print(_dump(result.to_dict()))
        return 0
    print(_describe(result))
    print(_dump(result.data))
    print("trail:")
    _print_trail(result.attempts, sys.stdout)
    return 0


def _auth_text(provider: Dict[str, Any]) -> str:
    if provider.get("auth") == "keyless":
        return "no key"
    optional = " (optional)" if provider.get("auth") == "optional_key" else ""
    return f"{provider.get('key_env')}{optional}"


def _cmd_providers(args: argparse.Namespace) -> int:
    with _client(args) as client:
        providers = client.providers()
    if args.json:
        print(_dump(providers))
        return 0
    rows = [
        (
            p["id"],
            ", ".join(p["capabilities"]),
            _auth_text(p),
            "set" if p["key_set"] else ("-" if p["auth"] == "keyless" else "not set"),
            "yes" if p["commercial_use"] else "no",
            "yes" if p["enabled"] else "no",
        )
        for p in providers
    ]
    _table(("provider", "capabilities", "key", "key set", "commercial", "enabled"), rows)
    return 0


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())


def _critical(args: argparse.Namespace) -> List[str]:
    """The capabilities named by ``--critical`` (repeatable, comma-separated)."""
    return [name.strip() for group in args.critical for name in group.split(",") if name.strip()]


def _cmd_check(args: argparse.Namespace) -> int:
    source = args.config or os.environ.get("POLYRELAY_CONFIG") or "defaults (no file)"
    critical = _critical(args)
    known = {entry["name"] for entry in _native.capabilities()}
    unknown = [name for name in critical if name not in known]
    if unknown:
        print(f"--critical: unknown capabilities: {', '.join(unknown)}", file=sys.stderr)
        print(f"  known: {', '.join(sorted(known))}", file=sys.stderr)
        return 2
    try:
        client = _client(args)
    except ConfigError as error:
        print(f"configuration: INVALID ({source})", file=sys.stderr)
        print(f"  {error}", file=sys.stderr)
        return 1
    with client:
        providers = client.providers()
        health = client.health()
        redis_answers = client.ping_redis()
    print(f"configuration: ok ({source})")
    for warning in health.get("config_warnings", []):
        print(f"  warning: {warning}")
    if os.environ.get("POLYRELAY_EMULATOR_URL"):
        print(f"emulator: every provider points at {os.environ['POLYRELAY_EMULATOR_URL']}")
    if redis_answers is None:
        print("redis: not configured (quotas, limits, budgets and the cache are per process)")
    elif redis_answers:
        print("redis: reachable (quotas, limits, budgets and the cache are shared)")
    else:
        print("redis: UNREACHABLE (calls would go on with this process's local state)")
    print("keys:")
    keyed = [p for p in providers if p["auth"] != "keyless"]
    if not keyed:
        print("  (no built-in provider takes a key)")
    for p in keyed:
        state = "set" if p["key_set"] else "not set"
        optional = ", optional" if p["auth"] == "optional_key" else ""
        print(f"  {p['key_env']:<28} {state:<8} ({p['id']}{optional})")
    print("capabilities:")
    down = 0
    for name, cap in sorted(health["capabilities"].items()):
        ready = ", ".join(cap["ready"]) or "nobody"
        mark = " (critical)" if name in critical else ""
        print(f"  {name:<18} {cap['status']:<9} served by: {ready}{mark}")
        for provider, reason in sorted(cap["unavailable"].items()):
            print(f"  {'':<18} {'':<9} {provider}: {reason}")
        down += cap["status"] == "down"
    if down:
        print(f"{down} capabilit{'y' if down == 1 else 'ies'} cannot be served now")
    unserved = [name for name in critical if not health["capabilities"][name]["ready"]]
    failed = False
    if unserved:
        print(f"FAILED: critical capabilities without a usable provider: {', '.join(unserved)}",
              file=sys.stderr)
        failed = True
    if redis_answers is False:
        print("FAILED: the configured Redis does not answer", file=sys.stderr)
        failed = True
    return 1 if failed else 0


def _amount(value: float) -> str:
    """A budget amount without a float's noise: ``1000``, ``2.5``, ``0.000125``."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _cmd_health(args: argparse.Namespace) -> int:
    with _client(args) as client:
        health = client.health()
    if args.json:
        print(_dump(health))
        return 0
    print(f"state backend: {health['state_backend']}")
    for name, cap in sorted(health["capabilities"].items()):
        print(f"{name:<18} {cap['status']:<9} ready: {', '.join(cap['ready']) or '-'}")
        for provider, reason in sorted(cap["unavailable"].items()):
            print(f"{'':<28} {provider}: {reason}")
    for name, group in sorted(health.get("groups", {}).items()):
        ready = ", ".join(group["ready"]) or "-"
        print(f"group {name:<12} {group['status']:<9} ready: {ready}")
        for deployment, reason in sorted(group["unavailable"].items()):
            print(f"{'':<28} {deployment}: {reason}")
    for name, budget in sorted(health.get("budgets", {}).items()):
        spent = f"{_amount(budget['spent'])} of {_amount(budget['limit'])} {budget['unit']}"
        print(f"budget {name:<11} {spent} this {budget['period']}, resets {budget['reset_at']}")
    return 0


def _cmd_analytics(args: argparse.Namespace) -> int:
    group_by = [d for part in args.group_by for d in part.split(",") if d]
    with _client(args) as client:
        rows = client.analytics(
            args.by,
            group_by,
            capability=args.capability,
            provider=args.provider,
            tag=args.tag,
            since=args.since,
            until=args.until,
        )
    if args.json:
        print(_dump(list(rows)))
        return 0
    if not rows:
        print("no calls recorded (an [analytics] sqlite file or redis store keeps them "
              "across processes)")
        return 0
    dims = [d for d in ("capability", "provider", "tag") if d in group_by]

    def latency(value: Any) -> str:
        return "-" if value is None else f"{value:.1f}"

    table = [
        [
            row["period"],
            *(row.get(d) or "-" for d in dims),
            str(row["calls"]),
            f"{row['success_rate'] * 100:.0f}%",
            f"{row['cache_hit_ratio'] * 100:.0f}%",
            latency(row["latency_ms_p50"]),
            latency(row["latency_ms_p95"]),
            str(row["input_tokens"] + row["output_tokens"]),
            _amount(row["cost_usd"]),
            ", ".join(f"{e['class']} ({e['calls']})" for e in row["top_errors"]) or "-",
        ]
        for row in rows
    ]
    _table(["period", *dims, "calls", "success", "cached", "p50 ms", "p95 ms", "tokens",
            "cost usd", "top errors"], table)
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    try:
        import uvicorn
        from fastapi import FastAPI

        from .fastapi import dashboard_router, lifespan
        from .fastapi._dashboard import is_loopback
    except ImportError as missing:
        print(f"polyrelay dashboard needs FastAPI and uvicorn ({missing.name} is missing): "
              "pip install 'polyrelay[dashboard]'", file=sys.stderr)
        return 1
    router = dashboard_router(prefix="", refresh_seconds=args.refresh, window_hours=args.hours)
    # Built first, so that a bad configuration fails here, not at start-up.
    client = AsyncClient(args.config)
    app = FastAPI(lifespan=lifespan(lambda: client), docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.include_router(router)
    host = args.host.strip("[]")
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, args.port, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(family, kind)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        # Listening before the address is printed: a client that reads it and connects at once
        # waits in the backlog until uvicorn accepts, rather than being refused.
        listener.listen(2048)
    except OSError as error:
        client.close()
        print(f"error: cannot listen on {args.host} port {args.port}: {error}", file=sys.stderr)
        return 1
    bound, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if not is_loopback(bound):
        print(f"warning: listening on {host}, reachable from other machines: the dashboard has "
              "no login and shows traffic, provider names and configuration problems (never a "
              "key); keep it on 127.0.0.1 unless a proxy in front checks who asks",
              file=sys.stderr)
    print(f"polyrelay dashboard on http://{shown}:{port}/ (refreshes every {args.refresh:g} s; "
          "Ctrl-C stops it)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    try:
        with listener:
            server.run(sockets=[listener])
    except KeyboardInterrupt:
        # uvicorn stops gracefully on Ctrl-C, then raises it again.
        print("stopped")
    finally:
        client.close()  # the lifespan closed it, unless the server never started
    return 0


def _wait_for_interrupt() -> None:
    """Blocks until Ctrl-C (SIGINT) or SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass


def _cmd_emulate(args: argparse.Namespace) -> int:
    emulator = _native.Emulator()
    print(f"polyrelay emulator listening on {emulator.url}")
    print("every built-in provider is served under its id, e.g. "
          f"{emulator.url}/open-meteo")
    print(f"point clients at it:  export POLYRELAY_EMULATOR_URL={emulator.url}")
    print("press Ctrl-C to stop", flush=True)
    _wait_for_interrupt()
    served = emulator.served
    emulator.stop()
    print(f"stopped after {served} requests")
    return 0


_DEMO_CONFIG = {
    "capabilities": {
        "weather.current": {
            "chain": ["open-meteo", "met-norway", "wttr-in"],
            "cache_ttl": "500ms",
            # Every provider is tried again while the deadline allows (an
            # outage may be a blip); the tour's stale step should not wait
            # the default 30 s for that.
            "total_timeout": "2s",
        }
    },
    "providers": {
        "open-meteo": {
            "breaker": {
                "sliding_window_size": 6,
                "minimum_number_of_calls": 6,
                "wait_duration_in_open_state": "30s",
            }
        }
    },
}

_CITIES = {
    "Berlin": (52.52, 13.41),
    "Paris": (48.86, 2.35),
    "Madrid": (40.42, -3.70),
    "Rome": (41.90, 12.50),
}


def _cmd_demo(args: argparse.Namespace) -> int:
    from .testing import Fault, emulator

    def step(number: int, title: str, text: str) -> None:
        print()
        print(f"{number}. {title}")
        print(f"   {text}")

    def show(result: Result) -> None:
        print(f"   -> {_describe(result)}: {result.data['temperature_c']} °C")
        _print_trail(result.attempts, sys.stdout)

    def weather(client: Client, city: str) -> Result:
        lat, lon = _CITIES[city]
        return client.weather.current(lat=lat, lon=lon)

    with emulator() as emu, Client(_DEMO_CONFIG) as client:
        print(f"polyrelay demo: every provider is played by an emulator at {emu.url}")
        print("weather.current chain: " + " -> ".join(client.chain("weather.current")))

        step(1, "A normal call", "The first provider of the chain answers.")
        show(weather(client, "Berlin"))

        step(2, "A provider outage, and fallback",
             "open-meteo now answers 503: it is retried, then met-norway answers.")
        emu.fault_always("/open-meteo/*", Fault.status(503))
        show(weather(client, "Paris"))

        step(3, "The circuit breaker opens",
             "After enough failures open-meteo's breaker opens and it is skipped "
             "without a request.")
        show(weather(client, "Madrid"))
        before = emu.hits("/open-meteo/*")
        show(weather(client, "Rome"))
        print(f"   requests sent to open-meteo by that call: {emu.hits('/open-meteo/*') - before}")

        step(4, "A cache hit", "Asking again answers from the cache: no provider is asked.")
        show(weather(client, "Rome"))

        step(5, "A stale answer",
             "Once the answer is past its freshness and every provider stays down "
             "until the call's 2 s deadline, the last good answer is served, flagged "
             "stale, with the trail saying why.")
        emu.fault_always("*", Fault.status(503))
        time.sleep(0.6)
        show(weather(client, "Rome"))

        print()
        print("Every call above went through quota, rate limit, breaker, retry and "
              "timeout guards per provider, under one total deadline.")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polyrelay",
        description="One resilient client for many public APIs.",
    )
    parser.add_argument("--version", action="version", version=f"polyrelay {_native.__version__}")
    parser.add_argument(
        "--config", metavar="FILE", help="TOML configuration file (default: $POLYRELAY_CONFIG)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], text: str,
                json_flag: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(run=run)
        if json_flag:
            sub.add_argument("--json", action="store_true", help="print JSON")
        return sub

    call = command("call", _cmd_call, "call a capability; prints the answer and the trail")
    call.add_argument("capability", help="e.g. weather.current")
    call.add_argument("params", nargs="*", metavar="NAME=VALUE",
                      help="parameters, e.g. city=Berlin or lat=52.52 lon=13.41")
    command("providers", _cmd_providers, "list the built-in providers and their keys")
    check = command(
        "check", _cmd_check,
        "validate the configuration; show which keys are set, whether Redis answers and "
        "what can be served; exit 1 when a critical capability has no usable provider "
        "or the configured Redis does not answer",
        json_flag=False)
    check.add_argument(
        "--critical", action="append", default=[], metavar="CAPABILITIES",
        help="capabilities that must have a usable provider, comma-separated "
             "(e.g. weather.current,llm.chat); repeatable")
    command("health", _cmd_health, "show which providers are ready for each capability")
    analytics = command("analytics", _cmd_analytics,
                        "calls, success and cache hit rates, latency, tokens and cost "
                        "per hour or day from the [analytics] store")
    analytics.add_argument("--by", choices=["hour", "day"], default="hour",
                           help="one row per hour (default) or day")
    analytics.add_argument("--group-by", action="append", default=[], metavar="DIM",
                           help="capability, provider or tag (repeat, or comma-separated)")
    analytics.add_argument("--capability", help="only this capability's calls")
    analytics.add_argument("--provider", help="only calls this provider answered ('none': "
                           "calls no provider answered)")
    analytics.add_argument("--tag", help="only calls with this tag")
    analytics.add_argument("--since", metavar="TIME", help="RFC 3339, e.g. 2026-01-01T00:00:00Z")
    analytics.add_argument("--until", metavar="TIME", help="RFC 3339")
    dashboard = command(
        "dashboard", _cmd_dashboard,
        "serve a read-only web page of health, circuit breakers, quotas left and hourly "
        "calls, errors and latency (needs FastAPI and uvicorn). This process has a client "
        "of its own: calls and latency come from the shared [analytics] store (SQLite or "
        "Redis), quotas are shared with other processes only through [redis], and health "
        "and breaker states are its own (for an app's live state, mount "
        "polyrelay.fastapi.dashboard_router in the app)",
        json_flag=False)
    dashboard.add_argument("--host", default="127.0.0.1",
                           help="address to listen on (default 127.0.0.1: this machine only)")
    dashboard.add_argument("--port", type=int, default=8765,
                           help="port (default 8765; 0 picks a free one)")
    dashboard.add_argument("--refresh", type=float, default=5.0, metavar="SECS",
                           help="how often the page refreshes itself (default 5)")
    dashboard.add_argument("--hours", type=int, default=24,
                           help="hours of analytics the charts show (default 24)")
    command("emulate", _cmd_emulate, "run the offline provider emulator until Ctrl-C",
            json_flag=False)
    command("demo", _cmd_demo,
            "a guided tour against the emulator: fallback, breaker, cache, stale answers",
            json_flag=False)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
        return status
    except Error as error:
        print(f"error: {error}", file=sys.stderr)
        if error.attempts:
            print("trail:", file=sys.stderr)
            _print_trail(error.attempts, sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
