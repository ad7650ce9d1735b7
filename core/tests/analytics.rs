//! Call analytics: every finished call recorded once, off the hot path,
//! into the configured store; queries by hour or day × capability /
//! provider / tag. Against the emulator, with a fake clock; the SQLite
//! and Redis stores across real OS processes (this binary re-executed,
//! see `common/processes.rs`).

mod common;
#[path = "common/processes.rs"]
mod processes;
#[cfg(feature = "redis")]
#[path = "common/redis_server.rs"]
mod redis_server;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{builder, client, clock, emulator, openai_chat_reply, Emulator, Fault, TestWeather};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use polyrelay::analytics::{
    AnalyticsQuery, AnalyticsRow, AnalyticsStore, BucketKey, BucketTotals, Dimension, MemoryStore,
    Period,
};
use polyrelay::capability::marker;
use polyrelay::capability::weather::{CurrentQuery, CurrentWeather};
use polyrelay::clock::FakeClock;
use polyrelay::provider::{
    CallContext, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};
use polyrelay::{Client, ProviderFailure};
use processes::{env, finish, spawn, ROLE};
use serde_json::{json, Value};

/// The tests that start processes run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn at(lat: f64) -> Value {
    json!({"lat": lat, "lon": 13.41})
}

/// Weather by open-meteo (cached), FX by frankfurter, chat by OpenAI.
const CONFIG: &str = r#"
[capabilities."weather.current"]
chain = ["open-meteo"]

[capabilities."finance.fx_rates"]
chain = ["frankfurter"]

[capabilities."llm.chat"]
chain = ["openai"]

[providers.frankfurter]
retry = { max_attempts = 1 }
"#;

fn query(by: Period, group_by: &[Dimension]) -> AnalyticsQuery {
    AnalyticsQuery {
        by,
        group_by: group_by.to_vec(),
        ..AnalyticsQuery::default()
    }
}

fn row<'a>(rows: &'a [AnalyticsRow], capability: &str) -> &'a AnalyticsRow {
    rows.iter()
        .find(|r| r.capability.as_deref() == Some(capability))
        .unwrap_or_else(|| panic!("no row for {capability}: {rows:#?}"))
}

#[tokio::test]
async fn totals_equal_the_calls_made_with_failures_cache_hits_tokens_and_tags() {
    let emulator = emulator().await;
    openai_chat_reply(&emulator);
    emulator.fault_always("/frankfurter/*", Fault::status(503));
    let clock = clock();
    let client = client(
        &emulator,
        &clock,
        CONFIG,
        &[("OPENAI_API_KEY", "sk-test-openai-0123456789")],
    );
    // 3 misses, then the same 3 again: 3 cache hits (2 of them tagged).
    for lat in [1.0, 2.0, 3.0] {
        client.call("weather.current", at(lat)).await.unwrap();
    }
    for lat in [1.0, 2.0] {
        let request = polyrelay::Request::parse("weather.current", at(lat)).unwrap();
        let reply = client
            .request_tagged(request, Some("team-a"))
            .await
            .unwrap();
        assert!(reply.cached);
    }
    assert!(
        client
            .call("weather.current", at(3.0))
            .await
            .unwrap()
            .cached
    );
    // 2 failures.
    let mut kinds = Vec::new();
    for base in ["EUR", "USD"] {
        let error = client
            .call(
                "finance.fx_rates",
                json!({"base": base, "symbols": ["JPY"]}),
            )
            .await
            .unwrap_err();
        kinds.push(error.kind().as_str());
    }
    assert_eq!(kinds[0], kinds[1]);
    // 1 chat, its tag its own parameter.
    let chat = client
        .call(
            "llm.chat",
            json!({"messages": [{"role": "user", "content": "Hello"}], "tag": "team-b"}),
        )
        .await
        .unwrap();

    let rows = client
        .analytics(&query(Period::Hour, &[Dimension::Capability]))
        .await
        .unwrap();
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let weather = row(&rows, "weather.current");
    assert_eq!(
        (weather.calls, weather.successes, weather.cached),
        (6, 6, 3)
    );
    assert_eq!(weather.cache_hit_ratio, 0.5);
    assert_eq!(weather.success_rate, 1.0);
    assert!(weather.provider.is_none() && weather.tag.is_none());
    assert_eq!(weather.period.to_rfc3339(), "2025-01-01T00:00:00+00:00");
    let fx = row(&rows, "finance.fx_rates");
    assert_eq!((fx.calls, fx.successes, fx.success_rate), (2, 0, 0.0));
    assert_eq!(fx.top_errors.len(), 1, "{fx:?}");
    assert_eq!(
        (fx.top_errors[0].class.as_str(), fx.top_errors[0].calls),
        (kinds[0], 2)
    );
    let llm = row(&rows, "llm.chat");
    assert_eq!((llm.calls, llm.input_tokens, llm.output_tokens), (1, 6, 10));
    assert!((llm.cost_usd - chat.cost_usd.unwrap_or(0.0)).abs() < 1e-12);
    let total: u64 = rows.iter().map(|r| r.calls).sum();
    assert_eq!(total, 9, "every call counted once");

    // By provider: failed calls have none.
    let by_provider = client
        .analytics(&query(Period::Day, &[Dimension::Provider]))
        .await
        .unwrap();
    let calls_of = |p: Option<&str>| {
        by_provider
            .iter()
            .find(|r| r.provider.as_deref() == p)
            .map(|r| r.calls)
    };
    assert_eq!(calls_of(Some("open-meteo")), Some(6));
    assert_eq!(calls_of(Some("openai")), Some(1));
    assert_eq!(calls_of(None), Some(2));
    // By tag, and filtered by tag.
    let by_tag = client
        .analytics(&query(Period::Day, &[Dimension::Tag]))
        .await
        .unwrap();
    let tagged: Vec<(Option<&str>, u64)> =
        by_tag.iter().map(|r| (r.tag.as_deref(), r.calls)).collect();
    assert_eq!(
        tagged,
        [(None, 6), (Some("team-a"), 2), (Some("team-b"), 1)]
    );
    let team_a = client
        .analytics(&AnalyticsQuery {
            tag: Some("team-a".into()),
            ..AnalyticsQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(team_a.len(), 1);
    assert_eq!((team_a[0].calls, team_a[0].cached), (2, 2));
    // Filtered by provider `none`: the failures.
    let none = client
        .analytics(&AnalyticsQuery::from_json(json!({"provider": "none", "by": "day"})).unwrap())
        .await
        .unwrap();
    assert_eq!(none[0].calls, 2);
    let status = client.analytics_status();
    assert_eq!((status.recorded, status.dropped, status.written), (9, 0, 9));
    assert_eq!(status.store, "memory");
}

#[tokio::test]
async fn a_bad_query_or_tag_is_a_typed_error() {
    let error = AnalyticsQuery::from_json(json!({"by": "week"})).unwrap_err();
    assert_eq!(
        error.kind(),
        polyrelay::ErrorKind::InvalidRequest,
        "{error}"
    );
    let error = AnalyticsQuery::from_json(json!({"group_by": ["model"]})).unwrap_err();
    assert_eq!(
        error.kind(),
        polyrelay::ErrorKind::InvalidRequest,
        "{error}"
    );
    let emulator = emulator().await;
    let client = client(&emulator, &clock(), CONFIG, &[]);
    let request = polyrelay::Request::parse("weather.current", at(1.0)).unwrap();
    let error = client
        .request_tagged(request, Some("no spaces"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), polyrelay::ErrorKind::InvalidRequest);
    assert_eq!(emulator.served(), 0, "nothing was sent");
}

/// A `weather.current` provider whose answers take the next of `latencies`
/// (on the fake clock).
struct Timed {
    inner: Arc<TestWeather>,
    clock: FakeClock,
    latencies: Mutex<VecDeque<Duration>>,
}

impl Provider for Timed {
    fn info(&self) -> &ProviderInfo {
        self.inner.info()
    }
}

polyrelay::serves!(Timed: WeatherCurrent);

impl Serves<marker::WeatherCurrent> for Timed {
    fn build_request(
        &self,
        query: &CurrentQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Serves::<marker::WeatherCurrent>::build_request(&*self.inner, query, ctx)
    }

    fn read_response(
        &self,
        query: &CurrentQuery,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<CurrentWeather>, ProviderFailure> {
        if let Some(latency) = self.latencies.lock().pop_front() {
            self.clock.advance(latency);
        }
        Serves::<marker::WeatherCurrent>::read_response(&*self.inner, query, ctx, response)
    }
}

#[tokio::test]
async fn percentiles_come_from_the_histogram_within_a_bucket() {
    let emulator = emulator().await;
    let clock = clock();
    let inner = TestWeather::keyless("timed");
    inner.serve(&emulator, 20.0);
    let timed = Arc::new(Timed {
        inner,
        clock: clock.clone(),
        latencies: Mutex::new((1..=100).rev().map(Duration::from_millis).collect()),
    });
    let config = r#"
[cache]
enabled = false
[capabilities."weather.current"]
chain = ["timed"]
"#;
    let client = builder(&emulator, &clock, config, &[])
        .provider(timed)
        .build()
        .unwrap();
    for _ in 0..100 {
        client.call("weather.current", at(1.0)).await.unwrap();
    }
    let rows = client
        .analytics(&query(Period::Day, &[Dimension::Provider]))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let (p50, p95) = (
        rows[0].latency_ms_p50.unwrap(),
        rows[0].latency_ms_p95.unwrap(),
    );
    // The upper bound of the bucket holding the true value: at most one
    // eighth of an octave (12.5 %) above it.
    assert!((50.0..=50.0 * 1.125).contains(&p50), "p50 {p50}");
    assert!((95.0..=95.0 * 1.125).contains(&p95), "p95 {p95}");
    assert_eq!(rows[0].calls, 100);
}

#[tokio::test]
async fn old_hours_are_pruned_after_the_retention() {
    let emulator = emulator().await;
    let clock = clock();
    let store = Arc::new(MemoryStore::new());
    let config = format!("{CONFIG}\n[analytics]\nretention = \"2h\"\n");
    let client = builder(&emulator, &clock, &config, &[])
        .analytics_store(store.clone())
        .build()
        .unwrap();
    client.call("weather.current", at(1.0)).await.unwrap();
    clock.advance(Duration::from_secs(3600));
    client.call("weather.current", at(2.0)).await.unwrap();
    let rows = client.analytics(&AnalyticsQuery::default()).await.unwrap();
    let hours: Vec<(String, u64)> = rows
        .iter()
        .map(|r| (r.period.format("%H:%M").to_string(), r.calls))
        .collect();
    assert_eq!(hours, [("00:00".into(), 1), ("01:00".into(), 1)]);
    assert_eq!(store.len(), 2);
    // At 02:00 the 00:00 hour is out of the 2 h; at 03:00 both are.
    clock.advance(Duration::from_secs(3600));
    let rows = client.analytics(&AnalyticsQuery::default()).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(store.len(), 1, "the old bucket is gone, not hidden");
    clock.advance(Duration::from_secs(3600));
    assert!(client
        .analytics(&AnalyticsQuery::default())
        .await
        .unwrap()
        .is_empty());
    assert!(store.is_empty());
}

/// A store whose writes wait until the test opens its gate.
#[derive(Debug)]
struct Gated {
    inner: MemoryStore,
    entered: tokio::sync::Notify,
    gate: tokio::sync::Semaphore,
}

impl AnalyticsStore for Gated {
    fn kind(&self) -> &'static str {
        "gated"
    }

    fn write<'a>(
        &'a self,
        buckets: &'a [(BucketKey, BucketTotals)],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.entered.notify_one();
            let _open = self.gate.acquire().await.map_err(|e| e.to_string())?;
            self.inner.write(buckets).await
        })
    }

    fn read(
        &self,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Vec<(BucketKey, BucketTotals)>, String>> {
        self.inner.read(from, to)
    }

    fn prune(&self, hour: i64) -> BoxFuture<'_, Result<(), String>> {
        self.inner.prune(hour)
    }
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_records_and_never_blocks_a_call() {
    let emulator = emulator().await;
    let clock = clock();
    let store = Arc::new(Gated {
        inner: MemoryStore::new(),
        entered: tokio::sync::Notify::new(),
        gate: tokio::sync::Semaphore::new(0),
    });
    let config = format!("{CONFIG}\n[analytics]\nqueue = 4\n");
    let client = builder(&emulator, &clock, &config, &[])
        .analytics_store(store.clone())
        .build()
        .unwrap();
    client.call("weather.current", at(1.0)).await.unwrap();
    // The drain task holds that record, stuck in the store's write.
    tokio::time::timeout(Duration::from_secs(10), store.entered.notified())
        .await
        .expect("the drain task writes");
    let started = Instant::now();
    for _ in 0..20 {
        assert!(
            client
                .call("weather.current", at(1.0))
                .await
                .unwrap()
                .cached
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "calls were not held"
    );
    let status = client.analytics_status();
    assert_eq!((status.recorded, status.dropped), (5, 16), "{status:?}");
    store.gate.add_permits(1000);
    let rows = client.analytics(&AnalyticsQuery::default()).await.unwrap();
    assert_eq!(rows[0].calls, 5);
    assert_eq!(client.analytics_status().written, 5);
}

// ------------------------------------------------------------ processes

/// The child side: does nothing unless started by `spawn`.
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
            "analytics" => calls_role().await,
            other => panic!("unknown role {other}"),
        }
    });
    println!("RESULT {result}");
}

fn child_client() -> Client {
    Client::builder()
        .config(polyrelay::Config::from_toml_str(&env("CONFIG")).expect("config parses"))
        .env_vars([("POLYRELAY_EMULATOR_URL".to_string(), env("EMULATOR_URL"))])
        .build()
        .expect("client builds")
}

/// `COUNT` weather calls at once (5 places, so most are cache hits) and
/// `FAILURES` failing FX calls; the records written before the RESULT line.
async fn calls_role() -> Value {
    let client = child_client();
    let count: usize = env("COUNT").parse().unwrap();
    let failures: usize = env("FAILURES").parse().unwrap();
    let weather = (0..count).map(|i| client.call("weather.current", at((i % 5) as f64)));
    let results = futures::future::join_all(weather).await;
    let fx = (0..failures).map(|i| {
        let symbol = ["JPY", "USD"][i % 2];
        client.call(
            "finance.fx_rates",
            json!({"base": "EUR", "symbols": [symbol]}),
        )
    });
    let fx = futures::future::join_all(fx).await;
    client.flush_analytics().await;
    let status = client.analytics_status();
    json!({
        "ok": results.iter().filter(|r| r.is_ok()).count() + fx.iter().filter(|r| r.is_ok()).count(),
        "cached": results.iter().filter(|r| r.as_ref().is_ok_and(|e| e.cached)).count(),
        "calls": count + failures,
        "dropped": status.dropped,
        "written": status.written,
    })
}

/// 4 processes record into `analytics_toml`'s store; a fifth client on it
/// sees exactly their calls.
async fn four_processes_record(analytics_toml: &str) {
    let emulator = emulator().await;
    emulator.fault_always("/frankfurter/*", Fault::status(503));
    let toml = format!(
        "{CONFIG}\n[analytics]\n{analytics_toml}\n[providers.open-meteo]\nrate_limit = \"off\"\n"
    );
    let children: Vec<_> = (0..4)
        .map(|_| {
            spawn(
                "analytics",
                &[
                    ("CONFIG", toml.clone()),
                    ("EMULATOR_URL", emulator.base_url()),
                    ("COUNT", "40".to_string()),
                    ("FAILURES", "10".to_string()),
                ],
            )
        })
        .collect();
    let results: Vec<Value> =
        tokio::task::spawn_blocking(|| children.into_iter().map(finish).collect())
            .await
            .unwrap();
    let sum = |field: &str| -> u64 { results.iter().map(|r| r[field].as_u64().unwrap()).sum() };
    assert_eq!(sum("calls"), 200);
    assert_eq!(sum("dropped"), 0);
    assert_eq!(sum("written"), 200, "{results:?}");
    let reader = Client::builder()
        .config(polyrelay::Config::from_toml_str(&toml).unwrap())
        .env_vars([("POLYRELAY_EMULATOR_URL".to_string(), emulator.base_url())])
        .build()
        .unwrap();
    let rows = reader
        .analytics(&query(Period::Day, &[Dimension::Capability]))
        .await
        .unwrap();
    let total = |capability: &str, f: fn(&AnalyticsRow) -> u64| -> u64 {
        rows.iter()
            .filter(|r| r.capability.as_deref() == Some(capability))
            .map(f)
            .sum()
    };
    assert_eq!(total("weather.current", |r| r.calls), 160, "{rows:#?}");
    assert_eq!(total("finance.fx_rates", |r| r.calls), 40, "{rows:#?}");
    assert_eq!(
        total("weather.current", |r| r.successes) + total("finance.fx_rates", |r| r.successes),
        sum("ok")
    );
    assert_eq!(total("weather.current", |r| r.cached), sum("cached"));
}

fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "polyrelay-analytics-{}-{}",
        std::process::id(),
        name
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("analytics.sqlite")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_writing_one_sqlite_file_lose_no_record() {
    let _serial = SERIAL.lock().await;
    let path = temp_file("four");
    four_processes_record(&format!("sqlite = {:?}", path.display().to_string())).await;
}

// ------------------------------------------------------------ quotas

fn quota_client(emulator: &Emulator, clock: &FakeClock, path: &std::path::Path) -> Client {
    let config = format!(
        "{CONFIG}\n[providers.open-meteo]\ndaily_quota = 10\n[analytics]\nsqlite = {:?}\n",
        path.display().to_string()
    );
    client(emulator, clock, &config, &[])
}

fn quota_used(client: &Client) -> u64 {
    client.stats().providers["open-meteo"]
        .quota
        .as_ref()
        .expect("open-meteo has a quota")
        .used
}

#[tokio::test]
async fn a_restarted_client_on_the_sqlite_file_keeps_its_quota_until_the_day_resets() {
    let emulator = emulator().await;
    let clock = clock();
    let path = temp_file("quota");
    let first = quota_client(&emulator, &clock, &path);
    for lat in 1..=4 {
        first
            .call("weather.current", at(f64::from(lat)))
            .await
            .unwrap();
    }
    assert_eq!(quota_used(&first), 4);
    drop(first);
    // The same day: the 4 requests stay spent.
    let second = quota_client(&emulator, &clock, &path);
    assert_eq!(quota_used(&second), 4);
    second.call("weather.current", at(5.0)).await.unwrap();
    assert_eq!(quota_used(&second), 5);
    // Without a file, a new client starts from zero (the old behaviour).
    let plain = client(
        &emulator,
        &clock,
        "[providers.open-meteo]\ndaily_quota = 10",
        &[],
    );
    assert_eq!(quota_used(&plain), 0);
    drop(second);
    // The next day the saved count is out of date: the quota has reset.
    clock.advance(Duration::from_secs(24 * 3600));
    let third = quota_client(&emulator, &clock, &path);
    assert_eq!(quota_used(&third), 0);
    // Its analytics are in the file too: 5 calls, on the first day.
    let rows = third.analytics(&query(Period::Day, &[])).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.calls).sum::<u64>(), 5, "{rows:#?}");
}

// ------------------------------------------------------------ redis

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_writing_one_redis_lose_no_record() {
    let _serial = SERIAL.lock().await;
    let server = redis_server::RedisServer::start();
    four_processes_record(&format!(
        "redis = true\n[redis]\nurl = \"{}\"\ncache = false\n",
        server.url()
    ))
    .await;
    // One hash per hour, under the prefix, expiring.
    let keys = server.keys("polyrelay:a:*");
    assert!(!keys.is_empty() && keys.len() <= 2, "{keys:?}");
    for key in &keys {
        assert!(key.starts_with("polyrelay:a:{"), "{key}");
        assert!(server.pttl(key) > 29 * 24 * 3600 * 1000, "{key} expires");
    }
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_keeps_records_in_memory_and_hands_them_over_later() {
    let _serial = SERIAL.lock().await;
    let mut server = redis_server::RedisServer::start();
    let emulator = emulator().await;
    let toml = format!(
        "{CONFIG}\n[analytics]\nredis = true\n[redis]\nurl = \"{}\"\ncache = false\nbreaker_open = \"50ms\"\n",
        server.url()
    );
    let client = Client::builder()
        .config(polyrelay::Config::from_toml_str(&toml).unwrap())
        .env_vars([("POLYRELAY_EMULATOR_URL".to_string(), emulator.base_url())])
        .build()
        .unwrap();
    let calls = |n: usize| {
        let client = client.clone();
        async move {
            for i in 0..n {
                client.call("weather.current", at(i as f64)).await.unwrap();
            }
            client.flush_analytics().await;
        }
    };
    calls(3).await;
    server.kill();
    calls(4).await;
    let status = client.analytics_status();
    assert!(status.fallback_writes >= 1, "{status:?}");
    assert!(status.degraded, "{status:?}");
    assert_eq!(status.write_errors, 0);
    // While Redis is down, the rows hold what memory kept.
    let rows = client.analytics(&query(Period::Day, &[])).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.calls).sum::<u64>(), 4, "{rows:#?}");
    server.restart();
    tokio::time::sleep(Duration::from_millis(100)).await;
    calls(2).await;
    let status = client.analytics_status();
    assert!(!status.degraded, "{status:?}");
    // The restarted server (no persistence) has the outage's and the new
    // calls: none lost, none counted twice.
    let rows = client.analytics(&query(Period::Day, &[])).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.calls).sum::<u64>(), 6, "{rows:#?}");
}

#[tokio::test]
async fn any_call_takes_a_tag_parameter_recorded_not_sent() {
    let emulator = emulator().await;
    let client = client(&emulator, &clock(), CONFIG, &[]);
    let mut params = at(7.0);
    params["tag"] = json!("route:/weather");
    client.call("weather.current", params).await.unwrap();
    let sent = emulator.requests();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].query_pairs.iter().all(|(name, _)| name != "tag"),
        "{:?}",
        sent[0].query_pairs
    );
    let rows = client.analytics(&query_by_tag()).await.unwrap();
    assert_eq!(rows[0].tag.as_deref(), Some("route:/weather"));
    let mut bad = at(7.0);
    bad["tag"] = json!(42);
    let error = client.call("weather.current", bad).await.unwrap_err();
    assert_eq!(
        error.kind(),
        polyrelay::ErrorKind::InvalidRequest,
        "{error}"
    );
}

fn query_by_tag() -> AnalyticsQuery {
    query(Period::Day, &[Dimension::Tag])
}
