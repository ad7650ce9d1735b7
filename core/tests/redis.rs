//! Shared state on real Redis servers (started by the tests on free loopback
//! ports) across real OS processes: this test binary re-executes itself with
//! `POLYRELAY_TEST_ROLE` set, and [`child_process`] plays that role.
//!
//! Processes talk to the parent through their environment, a `RESULT <json>`
//! line on stdout, and a stop file.
#![cfg(feature = "redis")]

mod common;
#[path = "common/processes.rs"]
mod processes;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use polyrelay::clock::{Clock, Sleep, SystemClock};
use polyrelay::config::Config;
use polyrelay::internal::state::redis::{RedisBackend, RedisConfig, RedisState};
use polyrelay::internal::state::{ProviderLimits, StateStore};
use polyrelay::Client;
use processes::{env, finish, result_line, spawn, ROLE};
use redis_server::{free_port, RedisCluster, RedisServer};
use serde_json::{json, Value};

/// The tests of this file run one at a time: they start processes and
/// measure latencies, which concurrent runs would distort.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// open-meteo alone serves `weather.current`, with `daily_quota` and a rate
/// limit whose burst is never reached (so both guards run and the limiter
/// key lives long enough to be inspected), sharing state through `url`.
fn config(url: &str, daily_quota: u64, cache: bool, redis_extra: &str) -> String {
    format!(
        r#"
[cache]
enabled = {cache}

[capabilities."weather.current"]
chain = ["open-meteo"]

[providers.open-meteo]
daily_quota = {daily_quota}
rate_limit = {{ rate = "100/h", burst = 1000000 }}
retry = {{ max_attempts = 1 }}

[redis]
url = "{url}"
{redis_extra}
"#
    )
}

fn client(toml: &str, emulator_url: &str) -> Client {
    Client::builder()
        .config(Config::from_toml_str(toml).expect("test config parses"))
        .env_vars([(
            "POLYRELAY_EMULATOR_URL".to_string(),
            emulator_url.to_string(),
        )])
        .build()
        .expect("client builds")
}

/// The emulator of every built-in provider, on loopback.
async fn emulator() -> polyrelay::emulation::Emulator {
    let emulator = polyrelay::emulation::Emulator::start()
        .await
        .expect("emulator starts");
    polyrelay::emulation::mount_builtin(&emulator);
    emulator
}

fn berlin() -> Value {
    json!({"lat": 52.52, "lon": 13.41})
}

// ---------------------------------------------------------------- children

/// The child side: does nothing unless started by [`spawn`].
#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        match role.as_str() {
            "calls" => calls_role().await,
            "chats" => chats_role().await,
            "limiter" => limiter_role().await,
            "hammer" => hammer_role().await,
            other => panic!("unknown role {other}"),
        }
    });
    println!("RESULT {result}");
    let stop = env("STOP_FILE");
    if !stop.is_empty() {
        // Keep the runtime (and its background cache writes) alive until told.
        while !Path::new(&stop).exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `COUNT` concurrent calls with `CONFIG`.
async fn calls_role() -> Value {
    let client = client(&env("CONFIG"), &env("EMULATOR_URL"));
    let count: usize = env("COUNT").parse().unwrap();
    let calls = (0..count).map(|_| client.call("weather.current", berlin()));
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let cached = results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|e| e.cached))
        .count();
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| {
            e.attempts()
                .iter()
                .map(|a| a.outcome.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    json!({"ok": ok, "cached": cached, "error_outcomes": errors})
}

/// `COUNT` concurrent chat calls with `CONFIG`, each estimated at 16
/// tokens (6 for "Hello", 10 to write).
async fn chats_role() -> Value {
    let client = Client::builder()
        .config(Config::from_toml_str(&env("CONFIG")).expect("test config parses"))
        .env_vars([
            ("POLYRELAY_EMULATOR_URL".to_string(), env("EMULATOR_URL")),
            (
                "OPENAI_API_KEY".to_string(),
                "sk-test-openai-0123456789".to_string(),
            ),
        ])
        .build()
        .expect("client builds");
    let count: usize = env("COUNT").parse().unwrap();
    let question = json!({"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 10});
    let calls = (0..count).map(|_| client.call("llm.chat", question.clone()));
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| {
            e.attempts()
                .iter()
                .map(|a| a.outcome.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    json!({"ok": ok, "error_outcomes": errors})
}

/// Calls until `STOP_FILE` exists (or forever: the parent may kill us).
async fn hammer_role() -> Value {
    let client = client(&env("CONFIG"), &env("EMULATOR_URL"));
    let stop = env("STOP_FILE");
    let (mut ok, mut failed) = (0, 0);
    while !Path::new(&stop).exists() {
        let batch = (0..8).map(|_| client.call("weather.current", berlin()));
        for result in futures::future::join_all(batch).await {
            if result.is_ok() {
                ok += 1;
            } else {
                failed += 1;
            }
        }
    }
    json!({"ok": ok, "failed": failed, "degraded": client.health().redis_degraded})
}

/// The system clock with its wall time moved by `SKEW_SECS`.
#[derive(Debug)]
struct SkewedClock {
    system: SystemClock,
    skew: chrono::Duration,
}

impl Clock for SkewedClock {
    fn now(&self) -> Duration {
        self.system.now()
    }
    fn wall(&self) -> DateTime<Utc> {
        self.system.wall() + self.skew
    }
    fn sleep_until(&self, deadline: Duration) -> Sleep {
        self.system.sleep_until(deadline)
    }
}

/// Asks the shared limiter as fast as possible for `DURATION_MS`, on a
/// client clock skewed by `SKEW_SECS`.
async fn limiter_role() -> Value {
    let clock = Arc::new(SkewedClock {
        system: SystemClock::new(),
        skew: chrono::Duration::seconds(env("SKEW_SECS").parse().unwrap()),
    });
    let backend = RedisBackend::new(&RedisConfig::new(&env("REDIS_URL")), clock.clone()).unwrap();
    let limits = [ProviderLimits {
        provider: "skewed",
        rate_limit: Some(
            polyrelay::internal::resilience::rate_limit::RateLimitConfig {
                rate: "20/s".parse().unwrap(),
                burst: Some(5),
            },
        ),
        quota: None,
        timezone: chrono_tz::UTC,
    }];
    let state = RedisState::new(backend, &limits).unwrap();
    let duration = Duration::from_millis(env("DURATION_MS").parse().unwrap());
    let started = clock.now();
    let mut admitted = 0;
    while clock.now() - started < duration {
        if state.admit("skewed", 1).await == polyrelay::internal::state::Admission::Admitted {
            admitted += 1;
        }
    }
    json!({"admitted": admitted, "failures": state.stats().failures})
}

// ------------------------------------------------------------------- tests

/// A path for a stop file, removed first.
fn stop_file(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("polyrelay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

// Client clocks ±30 s apart, one limiter, server time.
#[test]
fn two_processes_with_skewed_clocks_share_one_limiter() {
    let _serial = SERIAL.blocking_lock();
    let server = RedisServer::start();
    let started = Instant::now();
    let children: Vec<Child> = ["30", "-30"]
        .iter()
        .map(|skew| {
            spawn(
                "limiter",
                &[
                    ("REDIS_URL", server.url()),
                    ("SKEW_SECS", skew.to_string()),
                    ("DURATION_MS", "1500".to_string()),
                ],
            )
        })
        .collect();
    let results: Vec<Value> = children.into_iter().map(finish).collect();
    let span = started.elapsed().as_secs_f64();
    let admitted: u64 = results
        .iter()
        .map(|r| r["admitted"].as_u64().unwrap())
        .sum();
    assert!(results.iter().all(|r| r["failures"] == 0), "{results:?}");
    // rate · T + burst, T being at most the whole span of both children.
    let bound = (20.0 * span).floor() as u64 + 5;
    assert!(
        admitted <= bound,
        "{admitted} admitted in {span:.2} s > {bound}"
    );
    assert!(
        admitted >= 25,
        "the limiter admits its rate ({admitted} in {span:.2} s)"
    );
    // Were the time the clients', the process 30 s behind would always find
    // the other's TAT in its future and never be admitted.
    for result in &results {
        assert!(
            result["admitted"].as_u64().unwrap() >= 5,
            "both are served: {results:?}"
        );
    }
    // The TAT lives at most burst / rate = 250 ms past the last admission.
    let ttl = server.pttl("polyrelay:rl:{skewed}");
    assert!(ttl == -2 || (ttl > 0 && ttl <= 250), "TAT expiry {ttl} ms");
}

/// The quota keys of the run: name and value, on a server or a cluster.
fn quota_keys(keys: Vec<String>, get: impl Fn(&str) -> String, pttl: impl Fn(&str) -> i64) -> u64 {
    assert!(!keys.is_empty(), "no quota key");
    keys.iter()
        .map(|key| {
            assert!(pttl(key) > 0, "{key} has no TTL");
            get(key).parse::<u64>().unwrap()
        })
        .sum()
}

/// 4 processes × 50 concurrent calls, daily quota 100.
///
/// The deadline is 1 s: this is about atomicity across processes, and 200
/// calls starting at once on a loaded machine can take longer than the
/// default 100 ms to connect (the outage tests cover that path).
async fn quota_across_processes(url: &str) {
    let emulator = emulator().await;
    let toml = config(url, 100, false, "state_timeout = \"1s\"");
    exactly_100_of_4_times_50("calls", &toml, &emulator, "skipped_quota").await;
}

/// Four child processes in `role` make 50 calls each with configuration
/// `toml`: exactly 100 succeed and reach the upstream, every other one is
/// refused with `refusal` before anything is sent.
async fn exactly_100_of_4_times_50(
    role: &str,
    toml: &str,
    emulator: &polyrelay::emulation::Emulator,
    refusal: &str,
) {
    let children: Vec<Child> = (0..4)
        .map(|_| {
            spawn(
                role,
                &[
                    ("CONFIG", toml.to_string()),
                    ("EMULATOR_URL", emulator.base_url()),
                    ("COUNT", "50".to_string()),
                ],
            )
        })
        .collect();
    let results: Vec<Value> =
        tokio::task::spawn_blocking(|| children.into_iter().map(finish).collect())
            .await
            .unwrap();
    let ok: u64 = results.iter().map(|r| r["ok"].as_u64().unwrap()).sum();
    assert_eq!(ok, 100, "{results:?}");
    assert_eq!(emulator.served(), 100, "upstream calls");
    for result in &results {
        for outcomes in result["error_outcomes"].as_array().unwrap() {
            assert_eq!(outcomes, refusal);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_share_a_daily_quota_of_100() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    quota_across_processes(&server.url()).await;
    let counter = quota_keys(
        server.keys("polyrelay:q:{open-meteo}:*"),
        |key| server.cli(&["GET", key]),
        |key| server.pttl(key),
    );
    assert_eq!(counter, 100, "rejected calls do not count");
    // The day is the server's: its TIME names the key, which lives at least
    // until the next midnight (UTC here).
    let time = server.cli(&["TIME"]);
    let seconds: i64 = time.lines().next().unwrap().parse().unwrap();
    let server_now = DateTime::<Utc>::from_timestamp(seconds, 0).unwrap();
    let key = format!(
        "polyrelay:q:{{open-meteo}}:requests:{}",
        server_now.format("%Y-%m-%d")
    );
    let midnight = (server_now.date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    assert!(server.pttl(&key) >= (midnight - server_now).num_milliseconds() - 1000);
}

/// 4 processes × 50 concurrent chat calls against a token budget of 100
/// calls' worth: every answer reports the 16 tokens its request was
/// estimated at, so exactly 100 are sent, and the shared counter holds
/// exactly the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_share_a_budget_of_100_calls() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let emulator = emulator().await;
    common::openai_chat_reply(&emulator);
    let toml = format!(
        r#"
[cache]
enabled = false

[capabilities."llm.chat"]
chain = ["openai"]

[providers.openai]
rate_limit = "off"
retry = {{ max_attempts = 1 }}

[budgets.chat]
tokens = 1600
period = "day"

[redis]
url = "{}"
state_timeout = "1s"
"#,
        server.url()
    );
    exactly_100_of_4_times_50("chats", &toml, &emulator, "skipped_budget").await;
    let keys = server.keys("polyrelay:b:*");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = &keys[0];
    assert!(key.starts_with("polyrelay:b:{budgets}:chat:"), "{key}");
    assert_eq!(
        server.cli(&["GET", key]),
        "1600",
        "refused calls take nothing"
    );
    assert!(server.pttl(key) > 0, "{key} has no TTL");
}

/// Cross-process cache: A fetches, B is served from Redis.
async fn cache_across_processes(url: &str, cache_keys: impl Fn() -> usize) {
    let emulator = emulator().await;
    // Generous deadlines, as above: B must not give up on a cold connection.
    let toml = config(
        url,
        1000,
        true,
        "state_timeout = \"1s\"\ncache_timeout = \"1s\"",
    );
    let stop = stop_file(&format!("cache-{}", free_port(false)));
    let vars = |hold: bool| {
        let mut vars = vec![
            ("CONFIG", toml.clone()),
            ("EMULATOR_URL", emulator.base_url()),
            ("COUNT", "1".to_string()),
        ];
        if hold {
            vars.push(("STOP_FILE", stop.display().to_string()));
        }
        vars
    };
    let mut a = spawn("calls", &vars(true));
    let first = tokio::task::spawn_blocking(move || (result_line(&mut a), a))
        .await
        .unwrap();
    let (first, mut a) = first;
    assert_eq!(
        (first["ok"].as_u64(), first["cached"].as_u64()),
        (Some(1), Some(0))
    );
    // A writes to Redis in the background; it stays alive until the entry is there.
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache_keys() == 0 {
        assert!(
            Instant::now() < deadline,
            "A never wrote its answer to Redis"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::fs::write(&stop, b"").unwrap();
    assert!(a.wait().unwrap().success());
    let _ = std::fs::remove_file(&stop);

    let b = spawn("calls", &vars(false));
    let second = tokio::task::spawn_blocking(move || finish(b))
        .await
        .unwrap();
    assert_eq!(
        (second["ok"].as_u64(), second["cached"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(emulator.served(), 1, "B made no upstream call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_fetched_by_one_process_is_served_to_another_from_redis() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    cache_across_processes(&server.url(), || server.keys("polyrelay:c:*").len()).await;
    for key in server.keys("polyrelay:c:*") {
        assert!(key.starts_with("polyrelay:c:v1:weather.current:"), "{key}");
        assert!(
            !key.contains("52.52") && !key.contains("lat"),
            "hashed: {key}"
        );
        assert!(server.pttl(&key) > 0);
    }
}

// The quota and cache tests on a 3-master Redis Cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_master_cluster_shares_quota_and_cache() {
    let _serial = SERIAL.lock().await;
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    quota_across_processes(&cluster.urls()).await;
    let keys: Vec<String> = cluster
        .keys("polyrelay:q:*")
        .into_iter()
        .map(|(_, key)| key)
        .collect();
    let counter = quota_keys(
        keys,
        |key| cluster.cli(&["GET", key]),
        |key| cluster.cli(&["PTTL", key]).parse().unwrap_or(-3),
    );
    assert_eq!(counter, 100);
    // Quota and limiter keys of a provider share its slot.
    let slots: Vec<String> = cluster
        .keys("polyrelay:*{open-meteo}*")
        .iter()
        .map(|(_, key)| cluster.cli(&["CLUSTER", "KEYSLOT", key]))
        .collect();
    assert!(
        slots.len() >= 2 && slots.windows(2).all(|w| w[0] == w[1]),
        "{slots:?}"
    );

    cache_across_processes(&cluster.urls(), || cluster.keys("polyrelay:c:*").len()).await;
    let spread: std::collections::BTreeSet<usize> = cluster
        .keys("polyrelay:*")
        .into_iter()
        .map(|(node, _)| node)
        .collect();
    assert!(!spread.is_empty());
}

// SCRIPT FLUSH and a client killed mid-run leave every key
// with a TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_flush_and_a_killed_client_leave_no_key_without_ttl() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let emulator = emulator().await;
    emulator.set_logging(false);
    let stop = stop_file("hammer");
    let vars = [
        ("CONFIG", config(&server.url(), 1_000_000, false, "")),
        ("EMULATOR_URL", emulator.base_url()),
        ("STOP_FILE", stop.display().to_string()),
    ];
    let mut children: Vec<Child> = (0..3).map(|_| spawn("hammer", &vars)).collect();
    let counter = || {
        server
            .keys("polyrelay:q:*")
            .iter()
            .map(|key| server.cli(&["GET", key]).parse::<u64>().unwrap_or(0))
            .sum::<u64>()
    };
    let wait_for_progress = |from: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while counter() < from + 50 {
            assert!(Instant::now() < deadline, "no progress");
            std::thread::sleep(Duration::from_millis(20));
        }
        counter()
    };
    let progress = wait_for_progress(0);
    assert_eq!(server.cli(&["SCRIPT", "FLUSH"]), "OK");
    let progress = wait_for_progress(progress);
    let mut killed = children.remove(0);
    killed.kill().unwrap();
    killed.wait().unwrap();
    server.cli(&["SCRIPT", "FLUSH"]);
    wait_for_progress(progress);
    std::fs::write(&stop, b"").unwrap();
    let results: Vec<Value> = children.into_iter().map(finish).collect();
    let _ = std::fs::remove_file(&stop);
    for result in &results {
        assert_eq!(result["failed"], 0, "{result}");
        assert_eq!(
            result["degraded"], false,
            "SCRIPT FLUSH is not an outage: {result}"
        );
    }
    let keys = server.keys("polyrelay:*");
    assert!(keys.len() >= 2, "{keys:?}");
    for key in keys {
        let ttl = server.pttl(&key);
        assert!(ttl > 0, "{key}: PTTL {ttl}");
    }
}

/// A client on the system clock with quota `daily_quota`, a local share of
/// `fraction`, a 300 ms breaker and 100 ms deadlines.
fn outage_client(url: &str, emulator_url: &str, daily_quota: u64, fraction: f64) -> Client {
    let extra = format!(
        "local_share_fraction = {fraction}\nbreaker_open = \"300ms\"\nstate_timeout = \"100ms\""
    );
    client(&config(url, daily_quota, false, &extra), emulator_url)
}

async fn shared_counter(server: &RedisServer) -> u64 {
    server
        .keys("polyrelay:q:*")
        .iter()
        .map(|key| server.cli(&["GET", key]).parse::<u64>().unwrap_or(0))
        .sum()
}

/// Waits (polling, bounded) until `done`.
async fn eventually(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

// Redis down at start-up, then back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_startup_degrades_to_local_state_then_recovers() {
    let _serial = SERIAL.lock().await;
    let emulator = emulator().await;
    let port = free_port(false);
    let url = format!("redis://127.0.0.1:{port}");
    let client = outage_client(&url, &emulator.base_url(), 20, 0.5);
    assert_eq!(client.health().state_backend, "redis");

    for _ in 0..10 {
        let started = Instant::now();
        client.call("weather.current", berlin()).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "refused connections cost nothing"
        );
    }
    assert!(client.health().redis_degraded);
    let refused = client.call("weather.current", berlin()).await.unwrap_err();
    assert_eq!(
        refused.attempts()[0].outcome,
        "skipped_quota",
        "local share: 10 of 20"
    );

    let server = RedisServer::start_on(port, false).expect("redis starts on the free port");
    eventually("recovery", Duration::from_secs(3), async || {
        client.call("weather.current", berlin()).await.is_ok() && !client.health().redis_degraded
    })
    .await;
    // The 10 units spent locally were added to the shared counter.
    eventually("reconciliation", Duration::from_secs(2), async || {
        shared_counter(&server).await == 11
    })
    .await;
}

// Redis paused (SIGSTOP) mid-run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_mid_run_costs_one_deadline_per_call_until_the_breaker_opens() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let emulator = emulator().await;
    emulator.set_logging(false);
    let client = outage_client(&server.url(), &emulator.base_url(), 100_000, 0.5);
    let mut ok = 0;
    let mut baseline = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        client.call("weather.current", berlin()).await.unwrap();
        baseline.push(started.elapsed());
        ok += 1;
    }
    baseline.sort();
    let typical = baseline[10];

    server.pause();
    let paused_at = Instant::now();
    let mut latencies = Vec::new();
    for _ in 0..60 {
        let started = Instant::now();
        client
            .call("weather.current", berlin())
            .await
            .expect("no call fails");
        latencies.push(started.elapsed());
        ok += 1;
    }
    let paused_for = paused_at.elapsed();
    assert!(client.health().redis_degraded);
    let deadline = Duration::from_millis(100);
    for (i, latency) in latencies[..5].iter().enumerate() {
        assert!(
            *latency >= deadline - Duration::from_millis(5),
            "call {i}: {latency:?}"
        );
        // Scheduling slack: the machine running the tests may be busy.
        assert!(
            *latency <= deadline + typical + Duration::from_millis(100),
            "call {i}: {latency:?}"
        );
    }
    // Open: near zero, except one probe per open period.
    let slow = latencies[5..]
        .iter()
        .filter(|l| **l > Duration::from_millis(50))
        .count();
    let probes = (paused_for.as_millis() / 300) as usize + 1;
    assert!(slow <= probes, "{slow} slow calls, at most {probes} probes");
    let mut fast: Vec<Duration> = latencies[5..].to_vec();
    fast.sort();
    assert!(
        fast[fast.len() / 2] <= typical + Duration::from_millis(5),
        "{fast:?}"
    );

    server.resume();
    let recovered = eventually("recovery", Duration::from_secs(2), async || {
        let done = client.call("weather.current", berlin()).await.is_ok();
        ok += u64::from(done);
        !client.health().redis_degraded
    })
    .await;
    assert!(
        recovered <= Duration::from_millis(300 + 100 + 200),
        "{recovered:?}"
    );
    // Every call counted: locally spent units were reconciled. Operations
    // that timed out ran when Redis woke up, so they may count twice.
    eventually("reconciliation", Duration::from_secs(2), async || {
        shared_counter(&server).await >= ok
    })
    .await;
    let timeouts = 5 + probes as u64 + 1;
    assert!(shared_counter(&server).await <= ok + timeouts);
}

// Redis killed while calls run, then restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_falls_back_to_the_local_share_then_recovers() {
    let _serial = SERIAL.lock().await;
    let mut server = RedisServer::start();
    let emulator = emulator().await;
    let client = outage_client(&server.url(), &emulator.base_url(), 40, 0.25);
    for _ in 0..5 {
        client.call("weather.current", berlin()).await.unwrap();
    }
    // Killed while a batch of calls is in flight: every call still returns.
    let batch: Vec<_> = (0..5)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call("weather.current", berlin()).await })
        })
        .collect();
    server.kill();
    let mut answered = 0;
    for call in batch {
        if call.await.unwrap().is_ok() {
            answered += 1;
        }
    }
    assert_eq!(answered, 5);
    // The local counter holds ceil(40 × 0.25) = 10 (some of the batch may
    // have gone to Redis before the kill).
    let mut local = 0;
    loop {
        match client.call("weather.current", berlin()).await {
            Ok(_) => local += 1,
            Err(error) => {
                assert_eq!(error.attempts()[0].outcome, "skipped_quota", "{error}");
                assert!(
                    !error.to_string().to_lowercase().contains("redis"),
                    "{error}"
                );
                break;
            }
        }
        assert!(local <= 10, "the local share is enforced");
    }
    assert!((5..=10).contains(&local), "{local}");
    assert!(client.health().redis_degraded);

    server.restart();
    eventually("recovery", Duration::from_secs(3), async || {
        client.call("weather.current", berlin()).await.is_ok() && !client.health().redis_degraded
    })
    .await;
    // The restarted Redis is empty: it now holds the units spent locally
    // plus the call that found it back.
    let spent_locally = 10;
    eventually("reconciliation", Duration::from_secs(2), async || {
        shared_counter(&server).await == spent_locally + 1
    })
    .await;
}

// `Client::ping_redis`, behind `polyrelay check`: a fresh client has made no
// Redis operation yet, so only a ping tells whether Redis answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_redis_says_whether_redis_answers_now() {
    let _serial = SERIAL.lock().await;
    let emulator = emulator().await;
    let mut server = RedisServer::start();
    let live = client(&config(&server.url(), 100, false, ""), &emulator.base_url());
    assert!(!live.health().redis_degraded);
    assert_eq!(live.ping_redis().await, Some(true));
    server.kill();
    assert_eq!(live.ping_redis().await, Some(false));
    assert!(
        live.health().redis_degraded,
        "a failed ping is a failed operation"
    );

    let dead_url = format!("redis://127.0.0.1:{}", free_port(false));
    let dead = client(&config(&dead_url, 100, false, ""), &emulator.base_url());
    assert!(!dead.health().redis_degraded, "nothing asked Redis yet");
    assert_eq!(dead.ping_redis().await, Some(false));

    let memory = Client::builder()
        .env_vars([])
        .build()
        .expect("client builds");
    assert_eq!(memory.ping_redis().await, None);
}
