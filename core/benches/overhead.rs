//! What polyrelay adds on top of a raw HTTP call.
//!
//! Run: `cargo bench -p polyrelay --bench overhead` (add `-- --quick` for a
//! short run). Everything runs in one process against one hyper server on
//! loopback (the emulator, TCP_NODELAY, keep-alive, logging off), and raw
//! reqwest and polyrelay are measured in alternating rounds so that machine
//! noise hits both alike. polyrelay runs with the cache off and every guard
//! on: daily quota, GCRA limiter, breaker, retry, attempt timeout, deadline.
//!
//! `-- --analytics` measures only what recording a call in analytics adds
//! on the caller: the same client configuration with `[analytics]` on (the
//! default) and off, cache hits and uncached calls at concurrency 1, in
//! alternating rounds.
//!
//! `-- --workers N` sets the client runtime's threads (default 2) and
//! `-- --concurrency N` the throughput runs' tasks (default 64).
//!
//! For profilers: `-- --only raw|polyrelay [--secs N]` runs just one side
//! (at that concurrency) for N seconds (default 10) and prints how many
//! requests it made, e.g. to count instructions per request under
//! `valgrind --tool=callgrind` (see BENCHMARKS.md). `-- --only hit|skip
//! [--calls N]` makes N cache hits, or N calls skipping an open breaker, one
//! after another (default 200 000) and prints their mean.

use std::sync::Arc;
use std::time::{Duration, Instant};

use polyrelay::capability::weather::{Condition, CurrentQuery, CurrentWeather, GeoPoint};
use polyrelay::capability::{marker, Request};
use polyrelay::config::Config;
use polyrelay::emulation::{Emulator, Fault, Method, Reply};
use polyrelay::provider::{
    Auth, CallContext, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};
use polyrelay::Client;
use polyrelay::ProviderFailure;

/// Counts heap allocations, to report allocations per call for each side.
struct CountingAlloc;

static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

// SAFETY: defers to the system allocator; only adds a counter.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

const BODY: &str =
    r#"{"temp": 21.5, "humidity": 40, "wind": 3.2, "observed": "2025-01-01T00:00:00Z"}"#;

/// A one-request provider, as small as a real keyless provider.
struct Bench(ProviderInfo);

impl Provider for Bench {
    fn info(&self) -> &ProviderInfo {
        &self.0
    }
}

polyrelay::serves!(Bench: WeatherCurrent);

impl Serves<marker::WeatherCurrent> for Bench {
    fn build_request(
        &self,
        q: &CurrentQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let c = q.location.coordinates()?;
        Ok(HttpRequest::get(ctx.base_url, "/weather")
            .query("lat", c.lat.to_param())
            .query("lon", c.lon.to_param()))
    }

    fn read_response(
        &self,
        _: &CurrentQuery,
        _: &CallContext<'_>,
        r: HttpResponse,
    ) -> Result<Step<CurrentWeather>, ProviderFailure> {
        r.check_status()?;
        let v: serde_json::Value = r.json()?;
        let temp = v["temp"]
            .as_f64()
            .ok_or_else(|| ProviderFailure::malformed("temp"))?;
        Ok(Step::Done(CurrentWeather {
            location: GeoPoint {
                lat: 52.52,
                lon: 13.41,
                name: None,
                country_code: None,
                timezone: None,
            },
            observed_at: v["observed"].as_str().unwrap_or_default().to_string(),
            temperature_c: temp,
            feels_like_c: None,
            humidity_pct: v["humidity"].as_f64(),
            wind_speed_ms: v["wind"].as_f64(),
            wind_dir_deg: None,
            pressure_hpa: None,
            precipitation_mm: None,
            cloud_cover_pct: None,
            condition: Condition::from_wmo(0),
        }))
    }
}

fn provider(id: &'static str) -> Arc<Bench> {
    Arc::new(Bench(ProviderInfo {
        id,
        name: id,
        auth: Auth::Keyless,
        base_url: "http://127.0.0.1:9",
        docs_url: "",
        terms: "",
        commercial_use: true,
        default_rate_limit: None,
        default_quota: None,
    }))
}

fn client(emulator: &Emulator, toml: &str) -> Client {
    Client::builder()
        .config(Config::from_toml_str(toml).expect("bench config"))
        .env_vars([("POLYRELAY_EMULATOR_URL".to_string(), emulator.base_url())])
        .provider(provider("bench-ok"))
        .provider(provider("bench-down"))
        .build()
        .expect("bench client")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Requests per second of `make` run by [`concurrency`] tasks for `secs`.
async fn throughput<F, Fut>(make: F, secs: f64) -> f64
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency())
        .map(|_| {
            let make = make.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    make().await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn arg_after(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).cloned()
}

/// The number after `flag`, or `default` when it is absent or not a number.
fn number_after<T: std::str::FromStr>(flag: &str, default: T) -> T {
    arg_after(flag)
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Tasks calling at once in the throughput runs (`--concurrency N`, 64).
fn concurrency() -> usize {
    number_after("--concurrency", 64)
}

fn main() {
    // `--workers N`: the client runtime's threads (default 2). With 1, no
    // state is shared between cores, which tells contention from work.
    let workers = number_after("--workers", 2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

async fn run() {
    let quick = std::env::args().any(|a| a == "--quick");
    // Throughput: pairs of short slices, one per side, back to back.
    let (rounds, per_round, slice_pairs) = if quick { (4, 500, 16) } else { (10, 2_000, 80) };
    const SLICE_SECS: f64 = 0.25;

    let emulator = Emulator::start_background().expect("emulator");
    emulator.set_logging(false);
    emulator.route(
        Method::GET,
        "/bench-ok/weather",
        Reply::text(BODY).with_header("content-type", "application/json"),
    );
    emulator.route(Method::GET, "/bench-down/weather", Reply::text(BODY));
    emulator.fault_always("/bench-down/*", Fault::status(503));
    let url = format!("{}/bench-ok/weather", emulator.base_url());

    let guarded = client(
        &emulator,
        r#"
[cache]
enabled = false
[capabilities."weather.current"]
chain = ["bench-ok"]
[providers.bench-ok]
rate_limit = "1000000/s"
daily_quota = 1000000000
"#,
    );
    let raw = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("reqwest");
    let request = Request::parse(
        "weather.current",
        serde_json::json!({"lat": 52.52, "lon": 13.41}),
    )
    .expect("request");

    let raw_call = {
        let (raw, url) = (raw.clone(), url.clone());
        move || {
            let raw = raw.clone();
            let url = url.clone();
            async move {
                let body = raw
                    .get(&url)
                    .query(&[("lat", "52.52"), ("lon", "13.41")])
                    .header("user-agent", "bench")
                    .send()
                    .await
                    .expect("raw send")
                    .bytes()
                    .await
                    .expect("raw body");
                let value: serde_json::Value = serde_json::from_slice(&body).expect("raw json");
                std::hint::black_box(value);
            }
        }
    };
    let relay_call = {
        let (guarded, request) = (guarded.clone(), request.clone());
        move || {
            let client = guarded.clone();
            let request = request.clone();
            async move {
                let reply = client.request(request).await.expect("polyrelay call");
                std::hint::black_box(reply);
            }
        }
    };

    // Warm up connections and code paths.
    for _ in 0..500 {
        raw_call().await;
        relay_call().await;
    }

    if std::env::args().any(|a| a == "--analytics") {
        analytics_overhead(&emulator, &request, quick).await;
        return;
    }

    if let Some(side) = arg_after("--only") {
        let secs: f64 = number_after("--secs", 10.0);
        let calls: u32 = number_after("--calls", 200_000);
        let rate = match side.as_str() {
            "raw" => throughput(raw_call.clone(), secs).await,
            "polyrelay" => throughput(relay_call.clone(), secs).await,
            "hit" | "skip" => {
                let mean = if side == "hit" {
                    cache_hits(&emulator, &request, calls).await
                } else {
                    breaker_skips(&emulator, &request, calls).await
                };
                println!("{side}: {calls} calls, mean {:.3} µs", micros(mean));
                return;
            }
            other => panic!("--only raw|polyrelay|hit|skip, not {other}"),
        };
        println!("{side}: {rate:.0} req/s, {:.0} requests", rate * secs);
        return;
    }

    // Allocations per call (the emulator's own, on its runtime, count in both).
    let count = 2_000u64;
    let before = allocations();
    for _ in 0..count {
        raw_call().await;
    }
    let raw_allocs = (allocations() - before) as f64 / count as f64;
    let before = allocations();
    for _ in 0..count {
        relay_call().await;
    }
    let relay_allocs = (allocations() - before) as f64 / count as f64;

    // Concurrency 1: latency, alternating rounds.
    let mut raw_lat = Vec::new();
    let mut relay_lat = Vec::new();
    for _ in 0..rounds {
        for _ in 0..per_round {
            let t = Instant::now();
            raw_call().await;
            raw_lat.push(t.elapsed());
            let t = Instant::now();
            relay_call().await;
            relay_lat.push(t.elapsed());
        }
    }
    raw_lat.sort();
    relay_lat.sort();

    // Concurrency 64: throughput. The rate of this shared VM drifts by tens
    // of percent over seconds, so the sides alternate in short slices (the
    // first side alternating too) and the ratio is the median of the pairs'.
    let (mut raw_runs, mut relay_runs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..slice_pairs {
        let (raw_rate, relay_rate) = if pair % 2 == 0 {
            let raw_rate = throughput(raw_call.clone(), SLICE_SECS).await;
            (raw_rate, throughput(relay_call.clone(), SLICE_SECS).await)
        } else {
            let relay_rate = throughput(relay_call.clone(), SLICE_SECS).await;
            (throughput(raw_call.clone(), SLICE_SECS).await, relay_rate)
        };
        raw_runs.push(raw_rate);
        relay_runs.push(relay_rate);
        ratios.push(relay_rate / raw_rate);
    }
    let quantile = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q).round() as usize]
    };
    let raw_tput = quantile(&mut raw_runs, 0.5);
    let relay_tput = quantile(&mut relay_runs, 0.5);
    let ratio = quantile(&mut ratios, 0.5);
    let (ratio_q1, ratio_q3) = (quantile(&mut ratios, 0.25), quantile(&mut ratios, 0.75));

    // Cache hit latency (cache on, entry warm).
    let hit_mean = cache_hits(&emulator, &request, if quick { 100_000 } else { 1_000_000 }).await;

    // Skipping a provider whose breaker is open: the call fails without I/O.
    let skip_mean = breaker_skips(&emulator, &request, if quick { 20_000 } else { 200_000 }).await;

    let p = |v: &[Duration], q| micros(percentile(v, q));
    let added50 = p(&relay_lat, 0.50) - p(&raw_lat, 0.50);
    let added99 = p(&relay_lat, 0.99) - p(&raw_lat, 0.99);
    println!(
        "polyrelay overhead benchmark ({} samples per side at concurrency 1)\n",
        raw_lat.len()
    );
    println!("| measure | raw reqwest | polyrelay | added / ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| p50 latency, concurrency 1 | {:.1} µs | {:.1} µs | {:+.1} µs | ≤ 10 µs |",
        p(&raw_lat, 0.5),
        p(&relay_lat, 0.5),
        added50
    );
    println!(
        "| p99 latency, concurrency 1 | {:.1} µs | {:.1} µs | {:+.1} µs | ≤ 50 µs |",
        p(&raw_lat, 0.99),
        p(&relay_lat, 0.99),
        added99
    );
    println!(
        "| throughput, concurrency {} | {raw_tput:.0} req/s | {relay_tput:.0} req/s | {ratio:.3}× (quartiles {ratio_q1:.3}–{ratio_q3:.3}) | ≥ 0.9× |",
        concurrency()
    );
    println!(
        "| heap allocations per call, client + server | {raw_allocs:.1} | {relay_allocs:.1} | {:+.1} | |",
        relay_allocs - raw_allocs
    );
    println!(
        "| cache hit (mean) | | {:.3} µs | | ≤ 1 µs |",
        micros(hit_mean)
    );
    println!(
        "| open-breaker skip (mean) | | {:.3} µs | | ≤ 20 µs |",
        micros(skip_mean)
    );
}

/// Mean time of `hits` cache hits (cache on, entry warm), one after another.
async fn cache_hits(emulator: &Emulator, request: &Request, hits: u32) -> Duration {
    let cached = client(
        emulator,
        "[capabilities.\"weather.current\"]\nchain = [\"bench-ok\"]\n",
    );
    cached.request(request.clone()).await.expect("warm cache");
    let t = Instant::now();
    for _ in 0..hits {
        std::hint::black_box(cached.request(request.clone()).await.expect("hit"));
    }
    t.elapsed() / hits
}

/// Mean time of `skips` calls whose only provider's breaker is open: each
/// fails without I/O.
async fn breaker_skips(emulator: &Emulator, request: &Request, skips: u32) -> Duration {
    let down = client(
        emulator,
        r#"
[cache]
enabled = false
[capabilities."weather.current"]
chain = ["bench-down"]
# Fail at once instead of waiting the deadline out for the breaker (the
# default since resilience.md 2b): this measures the skip itself.
max_wait = "0s"
[providers.bench-down]
retry = { max_attempts = 1 }
breaker = { sliding_window_size = 1, minimum_number_of_calls = 1, wait_duration_in_open_state = "1h" }
"#,
    );
    let _ = down.request(request.clone()).await;
    let t = Instant::now();
    for _ in 0..skips {
        let error = down
            .request(request.clone())
            .await
            .expect_err("breaker open");
        debug_assert_eq!(error.attempts()[0].outcome, "skipped_circuit_open");
        std::hint::black_box(error);
    }
    t.elapsed() / skips
}

/// Recording on vs off: mean cache hit and p50 / p99 of uncached calls, in
/// alternating rounds so that machine noise hits both alike.
async fn analytics_overhead(emulator: &Emulator, request: &Request, quick: bool) {
    let config = |cache: bool, recording: bool| {
        format!(
            "[cache]\nenabled = {cache}\n[analytics]\nenabled = {recording}\n\
             [capabilities.\"weather.current\"]\nchain = [\"bench-ok\"]\n\
             [providers.bench-ok]\nrate_limit = \"1000000/s\"\ndaily_quota = 1000000000\n"
        )
    };
    let (rounds, hits, calls) = if quick {
        (10, 20_000, 200)
    } else {
        (20, 100_000, 1_000)
    };
    // [off, on]
    let hit_clients = [
        client(emulator, &config(true, false)),
        client(emulator, &config(true, true)),
    ];
    let call_clients = [
        client(emulator, &config(false, false)),
        client(emulator, &config(false, true)),
    ];
    for c in hit_clients.iter().chain(&call_clients) {
        for _ in 0..200 {
            c.request(request.clone()).await.expect("warm up");
        }
    }
    let mut hit_means = [Vec::new(), Vec::new()];
    let mut latencies = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for side in [round % 2, 1 - round % 2] {
            let c = &hit_clients[side];
            let t = Instant::now();
            for _ in 0..hits {
                std::hint::black_box(c.request(request.clone()).await.expect("hit"));
            }
            hit_means[side].push(micros(t.elapsed() / hits));
            let c = &call_clients[side];
            for _ in 0..calls {
                let t = Instant::now();
                std::hint::black_box(c.request(request.clone()).await.expect("call"));
                latencies[side].push(t.elapsed());
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (hit_off, hit_on) = (median(&mut hit_means[0]), median(&mut hit_means[1]));
    for l in &mut latencies {
        l.sort();
    }
    let p = |side: usize, q| micros(percentile(&latencies[side], q));
    let status = call_clients[1].analytics_status();
    println!(
        "analytics recording overhead ({rounds} alternating rounds; {hits} hits and {calls} calls per round and side)\n"
    );
    println!("| measure | recording off | recording on | added |");
    println!("|---|---|---|---|");
    println!(
        "| cache hit (median of round means) | {hit_off:.3} µs | {hit_on:.3} µs | {:+.3} µs |",
        hit_on - hit_off
    );
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        println!(
            "| uncached call {name}, concurrency 1 | {:.1} µs | {:.1} µs | {:+.1} µs |",
            p(0, q),
            p(1, q),
            p(1, q) - p(0, q)
        );
    }
    println!(
        "\nrecorded {} calls, dropped {}, written {}",
        status.recorded, status.dropped, status.written
    );
}
