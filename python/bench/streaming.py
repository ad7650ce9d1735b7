"""Python streaming benchmark (issue #14): streamed chat answers, polyrelay
against the official ``openai`` SDK, LiteLLM and raw aiohttp.

A program, not a test. Run it through ``python/bench/run.sh --streaming``,
which builds polyrelay in release mode into its own venv (``.venv-bench``)
together with the contenders' libraries, then runs this file.

One upstream for everyone: the loopback SSE server of the Rust streaming
benchmark (``core/benches/streaming.rs --serve``, polyrelay's emulator, a
hyper server) in a separate process, so no contender's GIL is shared with
it. It plays OpenAI's ``/v1/chat/completions``: every answer is ``--chunks``
content chunks (200 by default), each a write of its own, framed as OpenAI
frames them (a role chunk, the content chunks, a chunk with the finish
reason, the usage chunk when ``stream_options.include_usage`` asks for it,
``data: [DONE]``). Every contender asks for the usage chunk, as polyrelay's
``openai`` provider does, so all read the same bytes.

Contenders, each reading every content chunk's text as it arrives:

* raw aiohttp: one POST, the body read line by line, each ``data:`` line's
  JSON parsed (the baseline);
* the official ``openai`` SDK: ``AsyncOpenAI.chat.completions.create(stream=True)``;
* LiteLLM: ``acompletion(model="openai/gpt-4o-mini", stream=True)``;
* polyrelay ``AsyncClient``: ``async for chunk in client.llm.stream(...)``,
  production settings (not testing mode), cache off, every guard on (daily
  quota, GCRA limiter, breaker, retries, timeouts), limits far above what
  the machine reaches.

Each contender runs ``--rounds`` times for ``--seconds`` at concurrency 64
(content chunks per second, the median of the rounds) and at concurrency 1
(time to first token: from the call to the first content chunk in hand,
percentiles over every answer of every round); the order rotates between
rounds so that machine drift hits all alike.

``--isolate-upstream`` gives the upstream the first CPU of this process's
set and the contenders the others, keeping the load generator off the
CPUs of what it measures. Without it, the upstream's write bursts (an answer's
200 chunks in about 300 µs) share the contenders' CPUs: on a 2-CPU machine
a contender whose reading takes two threads (an event loop and a runtime
worker) waits behind the burst in the first-token race, while a
single-threaded one does not (see BENCHMARKS.md).
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
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable, Dict, List, Optional, Sequence, Set, Tuple

MESSAGES: List[Dict[str, str]] = [{"role": "user", "content": "Count to two hundred."}]
API_KEY = "sk-bench-not-a-real-key"
MODEL = "gpt-4o-mini"
CONCURRENCIES = (64, 1)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Limits far above what the machine can do: checked on every call, never biting.
RATE_LIMIT_PER_SECOND = 1_000_000
DAILY_QUOTA = 1_000_000_000


class Upstream:
    """The Rust benchmark's SSE upstream in its own process, built (release)
    and run by cargo; it serves until its standard input closes."""

    def __init__(self, chunks: int, cpus: Optional[Set[int]] = None) -> None:
        print("starting the upstream (cargo bench -p polyrelay --bench streaming -- --serve)", file=sys.stderr)
        self.process = subprocess.Popen(
            ["cargo", "bench", "-q", "-p", "polyrelay", "--bench", "streaming", "--", "--serve",
             "--chunks", str(chunks)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.process.kill()
            raise RuntimeError(f"the upstream did not start (said {self.url!r})")
        #: OpenAI's API root, as the SDKs take it.
        self.openai_base = f"{self.url}/openai/v1"

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


#: One streamed answer: yields each content chunk's text as it arrives.
Streamer = Callable[[], AsyncIterator[str]]


@dataclass
class Contender:
    name: str
    stream: Streamer
    close: Callable[[], Awaitable[None]]


async def raw_aiohttp(upstream: Upstream) -> Contender:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        headers={"authorization": f"Bearer {API_KEY}"},
    )
    url = f"{upstream.openai_base}/chat/completions"
    body = {
        "model": MODEL,
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    async def stream() -> AsyncIterator[str]:
        async with session.post(url, json=body) as response:
            if response.status != 200:
                raise RuntimeError(f"raw aiohttp: HTTP {response.status}")
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].strip()
                if data == b"[DONE]":
                    break
                choices = json.loads(data)["choices"]
                if choices:
                    content = choices[0]["delta"].get("content")
                    if content:
                        yield content

    return Contender("raw aiohttp", stream, session.close)


async def openai_sdk(upstream: Upstream) -> Contender:
    import openai

    client = openai.AsyncOpenAI(base_url=upstream.openai_base, api_key=API_KEY)

    async def stream() -> AsyncIterator[str]:
        answer = await client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in answer:
            if chunk.choices:
                content = chunk.choices[0].delta.content
                if content:
                    yield content

    return Contender(f"openai SDK {openai.__version__}", stream, client.close)


async def litellm_acompletion(upstream: Upstream) -> Contender:
    # Never fetch the model price list from the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm
    from importlib.metadata import version

    litellm.telemetry = False
    litellm.suppress_debug_info = True

    async def stream() -> AsyncIterator[str]:
        answer = await litellm.acompletion(
            model=f"openai/{MODEL}",
            messages=MESSAGES,
            api_base=upstream.openai_base,
            api_key=API_KEY,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in answer:  # type: ignore[union-attr]
            if chunk.choices:
                content = chunk.choices[0].delta.content
                if content:
                    yield content

    async def close() -> None:
        pass

    return Contender(f"LiteLLM {version('litellm')} acompletion", stream, close)


async def polyrelay_async(upstream: Upstream) -> Contender:
    import polyrelay

    client = polyrelay.AsyncClient(
        config={
            "cache": {"enabled": False},
            "capabilities": {"llm.chat": {"chain": ["openai"]}},
            "providers": {
                "openai": {"rate_limit": f"{RATE_LIMIT_PER_SECOND}/s", "daily_quota": DAILY_QUOTA}
            },
        },
        env={"POLYRELAY_EMULATOR_URL": upstream.url},
        api_keys={"openai": API_KEY},
        testing=False,
    )
    if not hasattr(client.llm, "stream"):
        await client.aclose()
        raise Unavailable("this polyrelay has no AsyncClient.llm.stream yet")

    async def stream() -> AsyncIterator[str]:
        async for chunk in client.llm.stream(messages=MESSAGES):
            if chunk.text:
                yield chunk.text

    return Contender("polyrelay AsyncClient", stream, client.aclose)


class Unavailable(Exception):
    """A contender that cannot run here."""


CONTENDERS = {
    "raw-aiohttp": raw_aiohttp,
    "openai": openai_sdk,
    "litellm": litellm_acompletion,
    "polyrelay": polyrelay_async,
}


# --------------------------------------------------------------------------
# Measuring.


@dataclass
class Run:
    """Answers read in one timed run."""

    chunks: int
    seconds: float
    first_token_ns: List[int]

    @property
    def rate(self) -> float:
        return self.chunks / self.seconds


async def read_answer(stream: Streamer) -> Tuple[int, int]:
    """Reads one answer: (time to its first content chunk in ns, chunks)."""
    clock = time.perf_counter_ns
    started = clock()
    first = 0
    chunks = 0
    async for _text in stream():
        if not chunks:
            first = clock() - started
        chunks += 1
    return first, chunks


async def run(contender: Contender, concurrency: int, seconds: float, chunks: int) -> Run:
    first_tokens: List[int] = []
    totals = [0]
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            first, read = await read_answer(contender.stream)
            if read != chunks:
                raise RuntimeError(f"{contender.name}: read {read} chunks of {chunks}")
            first_tokens.append(first)
            totals[0] += read

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run(totals[0], time.perf_counter() - started, first_tokens)


def percentile(sorted_values: Sequence[int], p: float) -> float:
    index = min(len(sorted_values) - 1, max(0, int(len(sorted_values) * p + 0.5) - 1))
    return sorted_values[index] / 1000.0


@dataclass
class Cell:
    """One contender at one concurrency, over every round."""

    runs: List[Run] = field(default_factory=list)

    def first_tokens(self) -> List[int]:
        return sorted(x for run in self.runs for x in run.first_token_ns)

    def rate(self) -> float:
        return statistics.median(run.rate for run in self.runs)


# --------------------------------------------------------------------------
# Report.


def report(
    cells: Dict[Tuple[str, int], Cell],
    names: Sequence[str],
    labels: Dict[str, str],
    missing: Dict[str, str],
    args: argparse.Namespace,
) -> None:
    print()
    print(
        f"Python streaming benchmark: {args.chunks} content chunks per answer, {args.rounds} rounds × "
        f"{args.seconds:g} s per contender and concurrency; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs"
        + (f"; upstream on CPU {sorted(args.upstream_cpus)}, contenders on CPUs "
           f"{sorted(os.sched_getaffinity(0))}" if args.upstream_cpus else "; CPUs shared with the upstream")
    )
    print()
    print("| contender | concurrency | chunks/s | answers | TTFT p50 µs | TTFT p99 µs | chunks/s vs raw aiohttp |")
    print("|---|---|---|---|---|---|---|")
    raw = "raw-aiohttp"
    for concurrency in CONCURRENCIES:
        for name in names:
            cell = cells[(name, concurrency)]
            first = cell.first_tokens()
            base = cells.get((raw, concurrency))
            vs = f"{cell.rate() / base.rate():.2f}×" if base else "–"
            print(
                f"| {labels[name]} | {concurrency} | {cell.rate():.0f} | {len(first)} | "
                f"{percentile(first, 0.5):.0f} | {percentile(first, 0.99):.0f} | {vs} |"
            )
    for name, why in missing.items():
        print(f"| {name} | – | not measured: {why} | | | | |")
    print()

    targets: List[Tuple[str, Optional[bool]]] = []
    ours = "polyrelay"

    def rate(name: str) -> Optional[float]:
        cell = cells.get((name, 64))
        return cell.rate() if cell else None

    for other, factor in (("openai", 3.0), ("litellm", 30.0)):
        theirs = rate(other)
        if theirs is None:
            continue
        mine = rate(ours)
        if mine is None:
            targets.append((f"AsyncClient ≥ {factor:g}× {other}'s chunks/s at concurrency 64: unmeasured", None))
        else:
            got = mine / theirs
            targets.append(
                (f"AsyncClient ≥ {factor:g}× {other}'s chunks/s at concurrency 64: {got:.2f}×", got >= factor)
            )
    if (raw, 1) in cells:
        theirs_p50 = percentile(cells[(raw, 1)].first_tokens(), 0.5)
        if (ours, 1) in cells:
            mine_p50 = percentile(cells[(ours, 1)].first_tokens(), 0.5)
            targets.append(
                (
                    f"AsyncClient time to first token at concurrency 1 no worse than raw aiohttp: "
                    f"p50 {mine_p50:.0f} µs vs {theirs_p50:.0f} µs",
                    mine_p50 <= theirs_p50,
                )
            )
        else:
            targets.append(
                ("AsyncClient time to first token at concurrency 1 no worse than raw aiohttp: unmeasured", None)
            )
    for text, met in targets:
        verdict = {True: "PASS", False: "MISS", None: "UNMEASURED"}[met]
        print(f"- {text} — {verdict}")


async def main_async(args: argparse.Namespace) -> None:
    wanted = [n for n in CONTENDERS if n in args.only] if args.only else list(CONTENDERS)
    upstream = Upstream(args.chunks, args.upstream_cpus)
    contenders: Dict[str, Contender] = {}
    missing: Dict[str, str] = {}
    try:
        for name in wanted:
            try:
                contenders[name] = await CONTENDERS[name](upstream)
            except (ImportError, Unavailable) as err:
                missing[name] = str(err)
                print(f"  {name}: not measured ({err})", file=sys.stderr)
        names = list(contenders)
        labels = {name: contender.name for name, contender in contenders.items()}
        cells: Dict[Tuple[str, int], Cell] = {}
        for concurrency in CONCURRENCIES:
            for contender in contenders.values():  # warm connections and code paths
                await run(contender, concurrency, args.warmup, args.chunks)
            for round_ in range(args.rounds):
                order = names[round_ % len(names):] + names[: round_ % len(names)]
                for name in order:
                    result = await run(contenders[name], concurrency, args.seconds, args.chunks)
                    cells.setdefault((name, concurrency), Cell()).runs.append(result)
                    print(
                        f"  c={concurrency:<3} round {round_ + 1}  {labels[name]:<34} "
                        f"{result.rate:9.0f} chunks/s  {len(result.first_token_ns):6d} answers",
                        file=sys.stderr,
                        flush=True,
                    )
        for contender in contenders.values():
            await contender.close()
    finally:
        upstream.stop()
    report(cells, names, labels, missing, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one timed run")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per contender and concurrency")
    parser.add_argument("--warmup", type=float, default=1.0, help="untimed run before the rounds")
    parser.add_argument("--chunks", type=int, default=200, help="content chunks per answer")
    parser.add_argument("--only", nargs="+", choices=list(CONTENDERS), help="run only these contenders")
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s")
    parser.add_argument("--isolate-upstream", action="store_true",
                        help="upstream on one CPU, contenders on the others (needs 2 or more)")
    args = parser.parse_args()
    args.upstream_cpus = None
    if args.isolate_upstream:
        cpus = os.sched_getaffinity(0)
        if len(cpus) < 2:
            parser.error("--isolate-upstream needs at least 2 CPUs")
        args.upstream_cpus = {min(cpus)}
        # Before any contender starts a thread: threads inherit this set.
        os.sched_setaffinity(0, cpus - args.upstream_cpus)
    if args.quick:
        args.seconds, args.rounds, args.warmup = 1.0, 1, 0.5
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
