//! What shared state on Redis costs per request, next to in-memory state.
//!
//! Run: `cargo bench -p polyrelay --bench redis_state` (add `-- --quick` for
//! a short run). Starts its own `redis-server` on a free loopback port
//! (install it with `tests/setup.sh`). Each row asks one provider's daily
//! quota and GCRA limiter to admit one request, the way the pipeline does:
//!
//! * `memory admit`: [`InMemoryState`], one process;
//! * `redis admit`: [`RedisState::admit`], quota and limiter in one script;
//! * `redis quota, then limiter`: the two questions asked separately, as a
//!   store without a combined operation would;
//! * `redis admit ×32`: 32 concurrent callers on the one multiplexed
//!   connection (latency per call, and calls per second).
//!
//! Round trips per call are counted on the server (`INFO commandstats`:
//! `EVALSHA`, `EVAL` and `SCRIPT LOAD` calls, the only commands the store
//! sends).

#[path = "../tests/common/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use polyrelay::clock::SystemClock;
use polyrelay::internal::resilience::rate_limit::RateLimitConfig;
use polyrelay::internal::state::redis::{RedisBackend, RedisConfig, RedisState};
use polyrelay::internal::state::{Admission, InMemoryState, ProviderLimits, StateStore};
use redis_server::RedisServer;

const PROVIDER: &str = "bench";

fn limits() -> Vec<ProviderLimits> {
    vec![ProviderLimits {
        provider: PROVIDER,
        // Never limiting at the rates measured here, but always checked.
        rate_limit: Some(RateLimitConfig {
            rate: "1000000/s".parse().expect("rate"),
            burst: Some(1_000_000),
        }),
        quota: Some(polyrelay::provider::Quota::per_day(1_000_000_000)),
        timezone: chrono_tz::Europe::Paris,
    }]
}

struct Row {
    name: &'static str,
    calls: usize,
    latencies: Vec<Duration>,
    wall: Duration,
    round_trips: Option<f64>,
}

fn round_trips(server: &RedisServer) -> u64 {
    ["evalsha", "eval", "script|load"]
        .iter()
        .map(|command| server.command_calls(command))
        .sum()
}

async fn sequential<F, Fut>(calls: usize, mut admit: F) -> (Vec<Duration>, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Admission>,
{
    let mut latencies = Vec::with_capacity(calls);
    let started = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        let admission = admit().await;
        latencies.push(t.elapsed());
        assert_eq!(admission, Admission::Admitted);
    }
    (latencies, started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let calls = if quick { 2_000 } else { 20_000 };
    let server = RedisServer::start();
    let clock = SystemClock::shared();

    let memory = InMemoryState::new(&limits(), clock.clone()).expect("in-memory state");
    let backend =
        RedisBackend::new(&RedisConfig::new(&server.url()), clock.clone()).expect("redis backend");
    let redis = Arc::new(RedisState::new(backend, &limits()).expect("redis state"));

    // Warm up: connection, script cache, allocator.
    for _ in 0..500 {
        memory.admit(PROVIDER, 1).await;
        redis.admit(PROVIDER, 1).await;
    }
    let mut rows = Vec::new();

    let (latencies, wall) = sequential(calls * 10, || memory.admit(PROVIDER, 1)).await;
    rows.push(Row {
        name: "memory admit",
        calls: calls * 10,
        latencies,
        wall,
        round_trips: None,
    });

    let before = round_trips(&server);
    let (latencies, wall) = sequential(calls, || redis.admit(PROVIDER, 1)).await;
    rows.push(Row {
        name: "redis admit",
        calls,
        latencies,
        wall,
        round_trips: Some((round_trips(&server) - before) as f64 / calls as f64),
    });

    let before = round_trips(&server);
    let (latencies, wall) = sequential(calls, || async {
        redis.consume_quota(PROVIDER, 1).await;
        Admission::from(redis.check_rate(PROVIDER, 1).await)
    })
    .await;
    rows.push(Row {
        name: "redis quota, then limiter",
        calls,
        latencies,
        wall,
        round_trips: Some((round_trips(&server) - before) as f64 / calls as f64),
    });

    let before = round_trips(&server);
    let concurrency = 32;
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let redis = Arc::clone(&redis);
            tokio::spawn(async move {
                sequential(calls / concurrency, || redis.admit(PROVIDER, 1))
                    .await
                    .0
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(calls);
    for task in tasks {
        latencies.extend(task.await.expect("task"));
    }
    rows.push(Row {
        name: "redis admit ×32",
        calls: latencies.len(),
        wall: started.elapsed(),
        round_trips: Some((round_trips(&server) - before) as f64 / latencies.len() as f64),
        latencies,
    });
    assert_eq!(redis.stats().failures + redis.stats().timeouts, 0);

    println!(
        "\nquota + GCRA limiter per request (redis-server {} on loopback, {} build)\n",
        server
            .cli(&["INFO", "server"])
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("?"),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimised"
        }
    );
    println!(
        "| {:<26} | {:>7} | {:>9} | {:>9} | {:>9} | {:>10} | {:>11} |",
        "operation", "calls", "p50 µs", "p99 µs", "mean µs", "calls/s", "round trips"
    );
    println!(
        "|{:-<28}|{:-<9}|{:-<11}|{:-<11}|{:-<11}|{:-<12}|{:-<13}|",
        "", "", "", "", "", "", ""
    );
    let script_usec = server
        .cli(&["INFO", "commandstats"])
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:"))
        .and_then(|stats| {
            stats
                .split(',')
                .find_map(|f| f.strip_prefix("usec_per_call="))
        })
        .unwrap_or("?")
        .to_string();
    for mut row in rows {
        row.latencies.sort();
        let mean = row.latencies.iter().sum::<Duration>() / row.latencies.len() as u32;
        println!(
            "| {:<26} | {:>7} | {:>9.2} | {:>9.2} | {:>9.2} | {:>10.0} | {:>11} |",
            row.name,
            row.calls,
            micros(percentile(&row.latencies, 0.5)),
            micros(percentile(&row.latencies, 0.99)),
            micros(mean),
            row.calls as f64 / row.wall.as_secs_f64(),
            row.round_trips
                .map_or_else(|| "0".to_string(), |r| format!("{r:.2}")),
        );
    }
    println!("\nserver time per EVALSHA (INFO commandstats): {script_usec} µs");
}
