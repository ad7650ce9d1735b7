"""Memory: 100 000 calls, half cache hits and half misses, through the
emulator, do not grow the process after warm-up."""

from __future__ import annotations

import gc
import itertools
import os
import resource
import time
from typing import Any, Dict, Iterator, List

import polyrelay
from polyrelay.testing import Emulator

CALLS = 100_000
CHUNK = 5_000
#: Bounded cache and no client-side limits: misses keep evicting, and the
#: emulator answers as fast as it can.
CONFIG = {
    "cache": {"max_entries": 1_000},
    "capabilities": {"weather.current": {"chain": ["open-meteo"]}},
    "providers": {"open-meteo": {"rate_limit": "off", "daily_quota": 10_000_000}},
}
HOT = [{"lat": i * 0.5, "lon": 0.5} for i in range(100)]


def rss_bytes() -> int:
    """Resident set size now (Linux), else the peak so far."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def mixed_params() -> Iterator[Dict[str, Any]]:
    """Alternately a hot (cached) place and one never asked before."""
    for n in itertools.count():
        yield HOT[n % len(HOT)]
        yield {"lat": -80.0 + n * 1e-3, "lon": 1.5}


def run(client: polyrelay.Client, params: Iterator[Dict[str, Any]], calls: int) -> List[int]:
    """Makes ``calls`` calls; returns how many were cache hits per chunk."""
    hits = []
    for _ in range(calls // CHUNK):
        chunk = list(itertools.islice(params, CHUNK))
        results = client.batch("weather.current", chunk, concurrency=32, progress=False)
        hits.append(sum(r.cached for r in results))
    return hits


def test_a_hundred_thousand_calls_do_not_grow_memory(emu: Emulator) -> None:
    emu.set_logging(False)
    params = mixed_params()
    with polyrelay.Client(CONFIG) as client:
        client.batch("weather.current", HOT, progress=False)
        run(client, params, 20_000)  # warm-up: fills the cache, pools, allocator arenas
        gc.collect()
        before = rss_bytes()
        started = time.monotonic()
        hits = run(client, params, CALLS)
        elapsed = time.monotonic() - started
        gc.collect()
        grown = rss_bytes() - before
        served = emu.served
    print(f"{CALLS} calls in {elapsed:.1f} s, RSS grew by {grown / 1e6:.2f} MB")
    assert all(h == CHUNK // 2 for h in hits), hits
    assert served >= CALLS // 2, "the misses really went upstream"
    assert grown < 10 * 1024 * 1024, f"RSS grew by {grown / 1e6:.1f} MB"
