"""Python clients benchmark (issue #4): polyrelay against pure-Python stacks.

A program, not a test. Run it through ``python/bench/run.sh``, which builds
polyrelay in release mode into its own venv (``.venv-bench``) together with
the contenders' libraries, then runs this file.

Every contender makes the same call against one loopback upstream: an
OpenAI-style chat completion (``POST /v1/chat/completions``, the reply
parsed and normalised to text, finish reason and token usage), through a
fallback chain of two OpenAI-compatible providers (``openai``, then
``mistral``). The upstream is polyrelay's emulator (a Rust hyper server,
request log off) in a separate process, so no contender's GIL is shared
with the server.

Contenders:

* raw aiohttp: one POST, no guards (the baseline);
* aiohttp stack: the best pure-Python equivalent of polyrelay's pipeline per
  provider: daily quota counter, aiolimiter rate limiter, pybreaker circuit
  breaker, tenacity retries with full-jitter backoff, attempt timeout, and a
  total deadline over the chain; a cachetools TTL cache in front;
* httpx stack: the same on httpx;
* LiteLLM ``Router``: two deployments with a fallback, retries, cooldowns
  (its breaker) and a timeout;
* polyrelay ``AsyncClient`` and the sync ``Client`` (one thread per
  concurrent call): every guard on (daily quota, GCRA limiter, breaker,
  retries, attempt timeout, total deadline); production settings, not
  testing mode.

Throughput runs have the cache off in every contender (each call is a
miss). Cache-hit latency is measured separately, with the cache on.

Each contender runs ``--rounds`` times for ``--seconds`` at concurrency 1
and 64 (the order rotates between rounds so that machine drift hits all
alike); throughput is the median of the rounds, latency percentiles are
over every call of every round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple, Type

MESSAGES: List[Dict[str, str]] = [{"role": "user", "content": "What is the capital of France?"}]
API_KEY = "sk-bench-not-a-real-key"

#: The fallback chain: provider id (the emulator serves it under ``/{id}``)
#: and the model each provider gets when the call names none.
CHAIN: List[Tuple[str, str]] = [("openai", "gpt-4o-mini"), ("mistral", "mistral-small-latest")]

#: Guards every contender gets, per provider. Limits are far above what the
#: machine can do so that they are checked on every call but never bite.
RATE_LIMIT_PER_SECOND = 1_000_000
DAILY_QUOTA = 1_000_000_000
MAX_ATTEMPTS = 3  # counts the first try
ATTEMPT_TIMEOUT = 10.0
TOTAL_TIMEOUT = 30.0
BREAKER_FAILURES = 5
BREAKER_RESET = 30.0
CACHE_TTL = 600.0

CONCURRENCIES = (1, 64)


# --------------------------------------------------------------------------
# The upstream: polyrelay's emulator in its own process.


def serve() -> None:
    """Runs the upstream until stdin closes. Prints its URL first. Lines on
    stdin: ``down PATH`` (answer 503 there), ``up`` (clear faults)."""
    from polyrelay.testing import Emulator, Fault

    emulator = Emulator()
    emulator.set_logging(False)
    print(emulator.url, flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[:1] == ["down"] and len(command) == 2:
            emulator.fault_always(command[1], Fault.status(503))
        elif command == ["up"]:
            emulator.clear_faults()
        print("ok", flush=True)
    emulator.stop()


class Upstream:
    """The upstream process, seen from the benchmark."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the upstream did not start (said {self.url!r})")

    def command(self, line: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        self.process.stdout.readline()

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


def chat_url(base: str, provider: str) -> str:
    return f"{base}/{provider}/v1/chat/completions"


def normalise(provider: str, reply: Dict[str, Any]) -> Dict[str, Any]:
    """What polyrelay's normalised ``llm.chat`` answer holds, built the way
    a pure-Python client would."""
    choice = reply["choices"][0]
    usage = reply.get("usage") or {}
    return {
        "provider": provider,
        "id": reply.get("id"),
        "model": reply.get("model"),
        "text": choice["message"]["content"],
        "finish_reason": choice.get("finish_reason"),
        "usage": {
            "input_tokens": usage.get("prompt_tokens"),
            "output_tokens": usage.get("completion_tokens"),
            "total_tokens": usage.get("total_tokens"),
        },
    }


# --------------------------------------------------------------------------
# The pure-Python stacks.


class Transient(Exception):
    """A failure worth retrying (connection trouble, timeout, 429, 5xx)."""


class Permanent(Exception):
    """A failure not worth retrying at this provider (other 4xx)."""


class QuotaExhausted(Exception):
    """The provider's daily quota is used up."""


class AllFailed(Exception):
    """Every provider of the chain failed."""


class ProviderGuards:
    """One provider's guards in the pure-Python stacks: quota, limiter,
    breaker and retry policy, as a user would wire them."""

    def __init__(self, provider: str, model: str, url: str) -> None:
        import aiolimiter
        import pybreaker
        import tenacity

        self.provider = provider
        self.model = model
        self.url = url
        self.calls_today = 0
        self.limiter = aiolimiter.AsyncLimiter(RATE_LIMIT_PER_SECOND, 1.0)
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=BREAKER_FAILURES,
            reset_timeout=BREAKER_RESET,
            exclude=[Permanent, QuotaExhausted],
        )
        self.retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(MAX_ATTEMPTS),
            wait=tenacity.wait_random_exponential(multiplier=0.1, max=2.0),
            retry=tenacity.retry_if_exception_type(Transient),
            reraise=True,
        )


Post = Callable[[str, Dict[str, Any]], Awaitable[Tuple[int, Any]]]


class Stack:
    """The pure-Python equivalent of polyrelay's pipeline over one HTTP
    library (``post`` sends one attempt and returns status and JSON)."""

    def __init__(
        self, base: str, post: Post, transient_errors: Tuple[Type[BaseException], ...], cache: bool
    ) -> None:
        import cachetools

        self.post = post
        self.transient_errors = transient_errors
        self.cache: Optional[cachetools.TTLCache[str, Dict[str, Any]]] = (
            cachetools.TTLCache(maxsize=10_000, ttl=CACHE_TTL) if cache else None
        )
        self.guards = [ProviderGuards(p, m, chat_url(base, p)) for p, m in CHAIN]

    async def chat(self, messages: List[Dict[str, str]]) -> Dict[str, Any]:
        key = ""
        if self.cache is not None:
            key = json.dumps(messages, sort_keys=True)
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        async with asyncio.timeout(TOTAL_TIMEOUT):
            answer = await self._through_chain(messages)
        if self.cache is not None:
            self.cache[key] = answer
        return answer

    async def _through_chain(self, messages: List[Dict[str, str]]) -> Dict[str, Any]:
        import pybreaker

        failures: List[str] = []
        for guards in self.guards:
            if guards.calls_today >= DAILY_QUOTA:
                failures.append(f"{guards.provider}: quota exhausted")
                continue
            try:
                return await guards.retrying(self._attempt, guards, messages)
            except pybreaker.CircuitBreakerError:
                failures.append(f"{guards.provider}: circuit open")
            except (Transient, Permanent, QuotaExhausted) as error:
                failures.append(f"{guards.provider}: {error}")
        raise AllFailed("; ".join(failures))

    async def _attempt(
        self, guards: ProviderGuards, messages: List[Dict[str, str]]
    ) -> Dict[str, Any]:
        if guards.calls_today >= DAILY_QUOTA:
            raise QuotaExhausted("quota exhausted")
        async with guards.limiter:
            guards.calls_today += 1
            with guards.breaker.calling():
                body = {"model": guards.model, "messages": messages, "stream": False}
                try:
                    status, reply = await self.post(guards.url, body)
                except self.transient_errors as error:
                    raise Transient(type(error).__name__) from error
                if status == 429 or status >= 500:
                    raise Transient(f"HTTP {status}")
                if status >= 400:
                    raise Permanent(f"HTTP {status}")
                return normalise(guards.provider, reply)


# --------------------------------------------------------------------------
# Contenders: each has an async or a sync `call()` returning the answer
# text, and its own setup and teardown.


@dataclass
class Contender:
    name: str
    #: One awaited call (async contenders).
    acall: Optional[Callable[[], Awaitable[str]]] = None
    #: One blocking call, run on one thread per concurrent call.
    call: Optional[Callable[[], str]] = None
    close: Callable[[], Awaitable[None]] = field(default=lambda: _nothing())
    #: The provider that answered, for the fallback check.
    provider_of_last: Callable[[], str] = lambda: ""


async def _nothing() -> None:
    return None


async def raw_aiohttp(base: str) -> Contender:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT)
    )
    provider, model = CHAIN[0]
    url = chat_url(base, provider)

    async def acall() -> str:
        body = {"model": model, "messages": MESSAGES, "stream": False}
        async with session.post(url, json=body) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            reply = await response.json()
        return str(normalise(provider, reply)["text"])

    return Contender("raw aiohttp (no guards)", acall=acall, close=session.close)


def aiohttp_stack(base: str, cache: bool = False) -> Tuple[Stack, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT)
    )

    async def post(url: str, body: Dict[str, Any]) -> Tuple[int, Any]:
        async with session.post(url, json=body) as response:
            return response.status, await response.json(content_type=None)

    return Stack(base, post, (aiohttp.ClientError, asyncio.TimeoutError), cache), session.close


def stack_contender(name: str, stack: Stack, close: Callable[[], Awaitable[None]]) -> Contender:
    """A contender calling `stack`, remembering which provider answered last."""
    last: List[str] = [""]

    async def acall() -> str:
        answer = await stack.chat(MESSAGES)
        last[0] = answer["provider"]
        return str(answer["text"])

    return Contender(name, acall=acall, close=close, provider_of_last=lambda: last[0])


async def aiohttp_stack_contender(base: str) -> Contender:
    stack, close = aiohttp_stack(base)
    return stack_contender("aiohttp stack", stack, close)


async def httpx_stack_contender(base: str) -> Contender:
    import httpx

    client = httpx.AsyncClient(
        timeout=ATTEMPT_TIMEOUT, limits=httpx.Limits(max_connections=None, max_keepalive_connections=128)
    )

    async def post(url: str, body: Dict[str, Any]) -> Tuple[int, Any]:
        response = await client.post(url, json=body)
        return response.status_code, response.json()

    stack = Stack(base, post, (httpx.TransportError,), cache=False)
    return stack_contender("httpx stack", stack, client.aclose)


async def litellm_router(base: str) -> Contender:
    # Never fetch the model price list from the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    router = litellm.Router(
        model_list=[
            {
                "model_name": provider,
                "litellm_params": {
                    "model": f"openai/{model}",
                    "api_base": f"{base}/{provider}/v1",
                    "api_key": API_KEY,
                },
            }
            for provider, model in CHAIN
        ],
        fallbacks=[{CHAIN[0][0]: [CHAIN[1][0]]}],
        num_retries=MAX_ATTEMPTS - 1,
        retry_after=0,
        timeout=ATTEMPT_TIMEOUT,
        allowed_fails=BREAKER_FAILURES,
        cooldown_time=BREAKER_RESET,
    )
    last: List[str] = [""]

    async def acall() -> str:
        reply = await router.acompletion(model=CHAIN[0][0], messages=MESSAGES)
        last[0] = str(reply.model)
        return str(reply.choices[0].message.content)

    return Contender("LiteLLM Router", acall=acall, provider_of_last=lambda: last[0])


def polyrelay_config(cache: bool) -> Dict[str, Any]:
    limits = {"rate_limit": f"{RATE_LIMIT_PER_SECOND}/s", "daily_quota": DAILY_QUOTA}
    return {
        "total_timeout": f"{int(TOTAL_TIMEOUT)}s",
        "cache": {"enabled": cache},
        "capabilities": {"llm.chat": {"chain": [p for p, _ in CHAIN]}},
        "providers": {p: dict(limits) for p, _ in CHAIN},
    }


def polyrelay_kwargs(base: str, cache: bool) -> Dict[str, Any]:
    return {
        "config": polyrelay_config(cache),
        "env": {"POLYRELAY_EMULATOR_URL": base},
        "api_keys": {p: API_KEY for p, _ in CHAIN},
        "testing": False,
    }


async def polyrelay_async(base: str) -> Contender:
    import polyrelay

    client = polyrelay.AsyncClient(**polyrelay_kwargs(base, cache=False))
    last: List[str] = [""]

    async def acall() -> str:
        result = await client.call("llm.chat", messages=MESSAGES)
        last[0] = result.provider
        return str(result.data["text"])

    return Contender(
        "polyrelay AsyncClient", acall=acall, close=client.aclose, provider_of_last=lambda: last[0]
    )


async def polyrelay_sync(base: str) -> Contender:
    import polyrelay

    client = polyrelay.Client(**polyrelay_kwargs(base, cache=False))
    last: List[str] = [""]

    def call() -> str:
        result = client.call("llm.chat", messages=MESSAGES)
        last[0] = result.provider
        return str(result.data["text"])

    async def close() -> None:
        client.close()

    return Contender(
        "polyrelay Client (threads)", call=call, close=close, provider_of_last=lambda: last[0]
    )


CONTENDERS: Dict[str, Callable[[str], Awaitable[Contender]]] = {
    "raw-aiohttp": raw_aiohttp,
    "aiohttp-stack": aiohttp_stack_contender,
    "httpx-stack": httpx_stack_contender,
    "litellm": litellm_router,
    "polyrelay-async": polyrelay_async,
    "polyrelay-sync": polyrelay_sync,
}


# --------------------------------------------------------------------------
# Measuring.


@dataclass
class Run:
    """Calls done in one timed run."""

    latencies_ns: List[int]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.latencies_ns) / self.seconds


async def run_async(acall: Callable[[], Awaitable[str]], concurrency: int, seconds: float) -> Run:
    latencies: List[int] = []
    deadline = time.perf_counter() + seconds
    clock = time.perf_counter_ns

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = clock()
            await acall()
            latencies.append(clock() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run(latencies, time.perf_counter() - started)


def run_threads(call: Callable[[], str], concurrency: int, seconds: float) -> Run:
    per_thread: List[List[int]] = [[] for _ in range(concurrency)]
    ready = threading.Barrier(concurrency + 1)
    deadline = [0.0]
    clock = time.perf_counter_ns

    def worker(latencies: List[int]) -> None:
        ready.wait()
        while time.perf_counter() < deadline[0]:
            started = clock()
            call()
            latencies.append(clock() - started)

    threads = [threading.Thread(target=worker, args=(lat,)) for lat in per_thread]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    ready.wait()
    for thread in threads:
        thread.join()
    return Run([x for lat in per_thread for x in lat], time.perf_counter() - started)


async def measure(contender: Contender, concurrency: int, seconds: float) -> Run:
    if contender.acall is not None:
        return await run_async(contender.acall, concurrency, seconds)
    assert contender.call is not None
    call = contender.call
    # Off the event loop's thread, as in an application that mixes both.
    return await asyncio.to_thread(run_threads, call, concurrency, seconds)


def percentile(sorted_values: Sequence[int], p: float) -> float:
    index = min(len(sorted_values) - 1, max(0, int(len(sorted_values) * p + 0.5) - 1))
    return sorted_values[index] / 1000.0


@dataclass
class Cell:
    """One contender at one concurrency, over every round."""

    runs: List[Run] = field(default_factory=list)

    def latencies(self) -> List[int]:
        return sorted(x for run in self.runs for x in run.latencies_ns)

    def p50_us(self) -> float:
        return percentile(self.latencies(), 0.50)

    def p99_us(self) -> float:
        return percentile(self.latencies(), 0.99)

    def rate(self) -> float:
        return statistics.median(run.rate for run in self.runs)


# --------------------------------------------------------------------------
# Cache hits.


def hit_latencies_sync(call: Callable[[], Any], count: int) -> List[int]:
    clock = time.perf_counter_ns
    latencies = []
    for _ in range(count):
        started = clock()
        call()
        latencies.append(clock() - started)
    return sorted(latencies)


async def hit_latencies_async(acall: Callable[[], Awaitable[Any]], count: int) -> List[int]:
    clock = time.perf_counter_ns
    latencies = []
    for _ in range(count):
        started = clock()
        await acall()
        latencies.append(clock() - started)
    return sorted(latencies)


async def cache_hits(base: str, count: int) -> Dict[str, List[int]]:
    import polyrelay

    results: Dict[str, List[int]] = {}
    with polyrelay.Client(**polyrelay_kwargs(base, cache=True)) as client:
        first = client.call("llm.chat", messages=MESSAGES)
        hit = client.call("llm.chat", messages=MESSAGES)
        if first.cached or not hit.cached:
            raise RuntimeError("polyrelay: the second call should be a cache hit")
        hit_latencies_sync(lambda: client.call("llm.chat", messages=MESSAGES), count // 10)
        results["polyrelay Client.call"] = hit_latencies_sync(
            lambda: client.call("llm.chat", messages=MESSAGES), count
        )

    stack, close = aiohttp_stack(base, cache=True)
    await stack.chat(MESSAGES)
    await hit_latencies_async(lambda: stack.chat(MESSAGES), count // 10)
    results["aiohttp stack (cachetools)"] = await hit_latencies_async(
        lambda: stack.chat(MESSAGES), count
    )
    await close()
    return results


# --------------------------------------------------------------------------
# Fallback check: every contender really has the two-provider chain.


async def check_fallback(upstream: Upstream, names: Sequence[str]) -> None:
    upstream.command(f"down /{CHAIN[0][0]}/*")
    try:
        for name in names:
            if name == "raw-aiohttp":
                continue  # the baseline has no chain
            contender = await CONTENDERS[name](upstream.url)
            try:
                if contender.acall is not None:
                    text = await contender.acall()
                else:
                    assert contender.call is not None
                    text = await asyncio.to_thread(contender.call)
            finally:
                await contender.close()
            answered_by = contender.provider_of_last()
            if "Paris" not in text or CHAIN[1][0] not in answered_by:
                raise RuntimeError(
                    f"{contender.name}: no fallback to {CHAIN[1][0]} (answered by {answered_by!r})"
                )
    finally:
        upstream.command("up")


# --------------------------------------------------------------------------
# Report.


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}×" if baseline else "–"


def report(
    cells: Dict[Tuple[str, int], Cell],
    names: Sequence[str],
    labels: Dict[str, str],
    hits: Dict[str, List[int]],
    args: argparse.Namespace,
) -> None:
    raw = "raw-aiohttp"
    stack = "aiohttp-stack"

    def rate(name: str, concurrency: int) -> float:
        cell = cells.get((name, concurrency))
        return cell.rate() if cell else 0.0

    print()
    print(
        f"Python clients benchmark: {args.rounds} rounds × {args.seconds:g} s per contender and "
        f"concurrency; Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print()
    header = "| contender | concurrency | p50 µs | p99 µs | req/s | vs raw aiohttp | vs aiohttp stack |"
    print(header)
    print("|---|---|---|---|---|---|---|")
    for concurrency in CONCURRENCIES:
        for name in names:
            cell = cells[(name, concurrency)]
            label = labels[name]
            if name == "polyrelay-sync":
                label += f" ({concurrency} thread{'s' if concurrency > 1 else ''})"
            print(
                f"| {label} | {concurrency} | {cell.p50_us():.0f} | {cell.p99_us():.0f} | "
                f"{cell.rate():.0f} | {ratio(cell.rate(), rate(raw, concurrency))} | "
                f"{ratio(cell.rate(), rate(stack, concurrency))} |"
            )
    print()
    if hits:
        print("| cache hit | p50 µs | p99 µs |")
        print("|---|---|---|")
        for name, latencies in hits.items():
            print(f"| {name} | {percentile(latencies, 0.5):.2f} | {percentile(latencies, 0.99):.2f} |")
        print()

    targets: List[Tuple[str, bool]] = []
    async_name = "polyrelay-async"
    if (async_name, 64) in cells and (stack, 64) in cells:
        got = rate(async_name, 64) / rate(stack, 64)
        targets.append((f"AsyncClient ≥ 2.5× the aiohttp stack at concurrency 64: {got:.2f}×", got >= 2.5))
    if (async_name, 1) in cells and (raw, 1) in cells:
        got = rate(async_name, 1) / rate(raw, 1)
        ours, theirs = cells[(async_name, 1)].p50_us(), cells[(raw, 1)].p50_us()
        targets.append(
            (
                f"AsyncClient no slower than raw aiohttp at concurrency 1: {got:.2f}× its req/s, "
                f"p50 {ours:.0f} µs vs {theirs:.0f} µs",
                got >= 1.0 and ours <= theirs,
            )
        )
    if "polyrelay Client.call" in hits:
        got = percentile(hits["polyrelay Client.call"], 0.5)
        targets.append((f"sync cache hit ≤ 5 µs: p50 {got:.2f} µs", got <= 5.0))
    for text, met in targets:
        print(f"- {text} — {'met' if met else 'NOT MET'}")


async def main_async(args: argparse.Namespace) -> None:
    names = [n for n in CONTENDERS if n in args.only] if args.only else list(CONTENDERS)
    upstream = Upstream()
    try:
        if not args.skip_fallback_check:
            await check_fallback(upstream, names)
        contenders = {name: await CONTENDERS[name](upstream.url) for name in names}
        labels = {name: contender.name for name, contender in contenders.items()}
        cells: Dict[Tuple[str, int], Cell] = {}
        for concurrency in CONCURRENCIES:
            for name, contender in contenders.items():  # warm connections and code paths
                await measure(contender, concurrency, args.warmup)
            for round_ in range(args.rounds):
                order = names[round_ % len(names):] + names[: round_ % len(names)]
                for name in order:
                    run = await measure(contenders[name], concurrency, args.seconds)
                    cells.setdefault((name, concurrency), Cell()).runs.append(run)
                    print(
                        f"  c={concurrency:<3} round {round_ + 1}  {labels[name]:<28} "
                        f"{run.rate:8.0f} req/s",
                        file=sys.stderr,
                        flush=True,
                    )
        for contender in contenders.values():
            await contender.close()
        hits = await cache_hits(upstream.url, args.hits) if args.hits else {}
    finally:
        upstream.stop()
    report(cells, names, labels, hits, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one timed run")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per contender and concurrency")
    parser.add_argument("--warmup", type=float, default=0.5, help="untimed run before the rounds")
    parser.add_argument("--hits", type=int, default=100_000, help="cache-hit calls to time (0: none)")
    parser.add_argument(
        "--only", nargs="+", choices=list(CONTENDERS), help="run only these contenders"
    )
    parser.add_argument("--skip-fallback-check", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s, 20 000 hits")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    if args.quick:
        args.seconds, args.rounds, args.hits = 1.0, 1, 20_000
    if sys.version_info < (3, 11):
        sys.exit("the benchmark needs Python 3.11 or later (asyncio.timeout)")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
