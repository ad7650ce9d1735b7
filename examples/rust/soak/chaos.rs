//! The chaos soak: a `weather.current` chain of four providers served by the
//! emulator, random faults of every kind drawn per request on the providers
//! that are not the healthy one, and a tally of what the calls saw.
//!
//! Shared by the `soak` example (the long run and the hedging benchmark) and
//! by `core/tests/soak.rs` (a short run in the test suite).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use polyrelay::config::Config;
use polyrelay::emulation::{self, Emulator, Fault, Reply};
use polyrelay::{Client, Envelope, Error};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The `weather.current` chain, in fallback order. `weatherapi` needs a key;
/// the emulator accepts any.
pub const CHAIN: [&str; 4] = ["open-meteo", "met-norway", "wttr-in", "weatherapi"];

/// Every call's deadline (`total_timeout`).
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A call counts as past its deadline when it took longer than the deadline
/// plus this: scheduling on a busy two-core machine, not the engine.
pub const DEADLINE_TOLERANCE: Duration = Duration::from_millis(100);

/// The largest answer the client accepts: small, so that an oversized body
/// is noticed after 256 KiB rather than 8 MiB.
const MAX_RESPONSE_BYTES: u64 = 256 * 1024;

/// The soak's client configuration: a realistic deadline and attempt
/// timeout, breakers small enough to open within seconds, and client rate
/// limits the concurrent phases run into.
pub fn soak_config() -> String {
    format!(
        r#"
user_agent = "polyrelay-soak/0.1"
contact = "soak@example.invalid"
max_response_bytes = {MAX_RESPONSE_BYTES}

[cache]
enabled = false

[defaults]
daily_quota = 0
retry = {{ max_attempts = 2, initial_delay = "50ms", max_delay = "400ms", attempt_timeout = "1s", max_retry_after = "2s" }}
breaker = {{ sliding_window_size = 20, minimum_number_of_calls = 10, wait_duration_in_open_state = "30s" }}

[capabilities."weather.current"]
chain = {chain:?}
total_timeout = "{deadline}s"
hedge = {{ after = "p95", budget = 0.1 }}

[providers.open-meteo]
rate_limit = "300/s"
[providers.met-norway]
rate_limit = "200/s"
[providers.wttr-in]
rate_limit = "250/s"
[providers.weatherapi]
rate_limit = "200/s"
"#,
        chain = CHAIN,
        deadline = DEADLINE.as_secs(),
    )
}

/// An emulator of every built-in provider, on its own runtime, not logging
/// (a long run would keep every request in memory).
pub fn start_emulator() -> std::io::Result<Emulator> {
    let emulator = emulation::start()?;
    emulator.set_logging(false);
    Ok(emulator)
}

/// A client of `config` with every provider pointed at `emulator`, seeing no
/// environment variables (the developer's own must not change the run).
pub fn client(emulator: &Emulator, config: &str, seed: u64) -> polyrelay::Result<Client> {
    let mut config = Config::from_toml_str(config)?;
    config.emulator_url = Some(emulator.base_url());
    Client::builder()
        .config(config)
        .env_vars(Vec::<(String, String)>::new())
        .api_key("weatherapi", "soak-fake-key")
        .seed(seed)
        .build()
}

/// The kinds of faults drawn, each once per kind in [`FaultKind::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 500, 502 or 503.
    ServerError,
    /// 429 with `Retry-After: 1`: short enough to retry after.
    RetryAfterShort,
    /// 429 with `Retry-After` 3 or 4 s: above `max_retry_after`, so the
    /// provider is benched; still within a call's deadline.
    RetryAfterLong,
    /// Never answers.
    Hang,
    /// Connection reset.
    Reset,
    /// `200` with broken JSON.
    Malformed,
    /// `200` with a body four times the client's limit.
    Oversized,
    /// The normal answer after 0.3 to 1.5 s (past the attempt timeout of
    /// 1 s for a third of them).
    Slow,
}

impl FaultKind {
    /// Every kind, drawn with equal weight.
    pub const ALL: [FaultKind; 8] = [
        Self::ServerError,
        Self::RetryAfterShort,
        Self::RetryAfterLong,
        Self::Hang,
        Self::Reset,
        Self::Malformed,
        Self::Oversized,
        Self::Slow,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::ServerError => "5xx",
            Self::RetryAfterShort => "429 Retry-After 1s",
            Self::RetryAfterLong => "429 Retry-After 3-4s",
            Self::Hang => "hang",
            Self::Reset => "reset",
            Self::Malformed => "malformed",
            Self::Oversized => "oversized",
            Self::Slow => "slow",
        }
    }

    fn fault(self, rng: &mut SmallRng) -> Fault {
        let too_many = |secs| {
            Fault::Respond(
                Reply::json(&serde_json::json!({"error": "slow down"}))
                    .with_status(429)
                    .with_retry_after(Duration::from_secs(secs)),
            )
        };
        match self {
            Self::ServerError => Fault::status([500, 502, 503][rng.random_range(0..3)]),
            Self::RetryAfterShort => too_many(1),
            Self::RetryAfterLong => too_many(rng.random_range(3..=4)),
            Self::Hang => Fault::Hang,
            Self::Reset => Fault::Reset,
            Self::Malformed => Fault::Malformed,
            Self::Oversized => Fault::Oversized(4 * MAX_RESPONSE_BYTES),
            Self::Slow => Fault::Latency(Duration::from_millis(rng.random_range(300..=1500))),
        }
    }
}

/// Which provider answers normally while the others draw faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// The last provider of the chain is always healthy.
    OneHealthy,
    /// The healthy provider moves one step along the chain every period,
    /// starting with the first.
    RotatingHealthy(Duration),
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OneHealthy => write!(f, "(a) {} always healthy", CHAIN[CHAIN.len() - 1]),
            Self::RotatingHealthy(every) => write!(
                f,
                "(b) healthy provider rotating every {:.1} s",
                every.as_secs_f64()
            ),
        }
    }
}

/// The faults of one run: every request to a provider other than the
/// healthy one draws a fault with probability `fault_rate`, its kind
/// uniformly from [`FaultKind::ALL`].
///
/// The draws come from one seeded generator; with concurrent calls, which
/// request gets which draw depends on timing, so a seed fixes the sequence
/// of faults, not which call meets them.
struct Chaos {
    rng: Mutex<SmallRng>,
    fault_rate: f64,
    healthy: AtomicUsize,
    /// When the healthy provider last changed (since `epoch`, in µs).
    rotated_at: AtomicU64,
    epoch: Instant,
    drawn: [AtomicU64; FaultKind::ALL.len()],
}

impl Chaos {
    fn draw(&self, provider: usize) -> Option<Fault> {
        if provider == self.healthy.load(Ordering::Relaxed) {
            return None;
        }
        let mut rng = self.rng.lock();
        if !rng.random_bool(self.fault_rate) {
            return None;
        }
        let index = rng.random_range(0..FaultKind::ALL.len());
        self.drawn[index].fetch_add(1, Ordering::Relaxed);
        Some(FaultKind::ALL[index].fault(&mut rng))
    }
}

/// One run of the soak.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Who is healthy when.
    pub world: World,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Calls made in all.
    pub calls: u64,
    /// Probability that a request to a provider other than the healthy one
    /// gets a fault.
    pub fault_rate: f64,
    /// Seed of the fault draws and of the client's jitter.
    pub seed: u64,
}

/// Runs `phase` on a fresh emulator and client (fresh breakers, limiters
/// and benches), and tallies every call.
pub async fn run(phase: &Phase) -> Result<Report, Box<dyn std::error::Error>> {
    let emulator = start_emulator()?;
    let chaos = Arc::new(Chaos {
        rng: Mutex::new(SmallRng::seed_from_u64(phase.seed)),
        fault_rate: phase.fault_rate,
        healthy: AtomicUsize::new(match phase.world {
            World::OneHealthy => CHAIN.len() - 1,
            World::RotatingHealthy(_) => 0,
        }),
        rotated_at: AtomicU64::new(0),
        epoch: Instant::now(),
        drawn: Default::default(),
    });
    for (index, provider) in CHAIN.iter().enumerate() {
        let chaos = Arc::clone(&chaos);
        emulator.fault_with(&format!("/{provider}/*"), move || chaos.draw(index));
    }
    let client = client(&emulator, &soak_config(), phase.seed)?;

    let rotation = match phase.world {
        World::OneHealthy => None,
        World::RotatingHealthy(every) => {
            let chaos = Arc::clone(&chaos);
            Some(tokio::spawn(async move {
                let mut ticks =
                    tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    ticks.tick().await;
                    let next = (chaos.healthy.load(Ordering::Relaxed) + 1) % CHAIN.len();
                    chaos.healthy.store(next, Ordering::Relaxed);
                    let since_epoch = chaos.epoch.elapsed().as_micros();
                    chaos.rotated_at.store(
                        u64::try_from(since_epoch).unwrap_or(u64::MAX),
                        Ordering::Relaxed,
                    );
                }
            }))
        }
    };

    let served_before = emulator.served();
    let started = Instant::now();
    let healthy_now: HealthyNow = {
        let chaos = Arc::clone(&chaos);
        Arc::new(move || {
            let since = Duration::from_micros(chaos.rotated_at.load(Ordering::Relaxed));
            (
                CHAIN[chaos.healthy.load(Ordering::Relaxed)],
                chaos.epoch + since,
            )
        })
    };
    let tally = call_many(&client, phase.calls, phase.concurrency, Some(healthy_now)).await;
    let wall = started.elapsed();
    if let Some(rotation) = rotation {
        rotation.abort();
    }
    let faults = FaultKind::ALL
        .iter()
        .zip(&chaos.drawn)
        .map(|(kind, count)| (kind.name(), count.load(Ordering::Relaxed)))
        .collect();
    Ok(Report {
        title: format!("{} at concurrency {}", phase.world, phase.concurrency),
        requests: emulator.served() - served_before,
        wall,
        faults,
        tally,
    })
}

/// Says which provider is healthy right now and since when, for the
/// description of a failed call.
pub type HealthyNow = Arc<dyn Fn() -> (&'static str, Instant) + Send + Sync>;

/// Makes `calls` calls to `weather.current`, `concurrency` at a time, each
/// caller its own task, and tallies them.
pub async fn call_many(
    client: &Client,
    calls: u64,
    concurrency: usize,
    healthy_now: Option<HealthyNow>,
) -> Tally {
    let next = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let client = client.clone();
            let next = Arc::clone(&next);
            let healthy_now = healthy_now.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let healthy = || healthy_now.as_ref().map(|now| now());
                while next.fetch_add(1, Ordering::Relaxed) < calls {
                    let started = Instant::now();
                    let healthy_at_start = healthy();
                    let result = client.call("weather.current", berlin()).await;
                    tally.add(started.elapsed(), &result, || {
                        healthy_at_start
                            .zip(healthy())
                            .map(|((at_start, _), (at_end, since))| {
                                // How long the provider healthy at the end had
                                // been healthy within this call.
                                let for_ =
                                    Instant::now().saturating_duration_since(since.max(started));
                                format!(
                                    "healthy {at_start} at the start, {at_end} for the last {}",
                                    ms(for_)
                                )
                            })
                    });
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for caller in callers {
        match caller.await {
            Ok(part) => tally.merge(part),
            Err(err) => tally.failures.push(format!("a caller task failed: {err}")),
        }
    }
    tally
}

fn berlin() -> serde_json::Value {
    serde_json::json!({"lat": 52.52, "lon": 13.41})
}

/// Failed calls printed per run, to show what failed without flooding.
const SAMPLES: usize = 6;
/// Failed calls kept per run for `--failures`, to bound memory.
pub const KEPT_FAILURES: usize = 10_000;

/// What a set of calls saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Calls made.
    pub calls: u64,
    /// Calls answered (fresh or stale).
    pub answered: u64,
    /// Answers flagged stale.
    pub stale: u64,
    /// Failed calls by error kind.
    pub failed: BTreeMap<&'static str, u64>,
    /// Calls that took longer than [`DEADLINE`] + [`DEADLINE_TOLERANCE`].
    pub past_deadline: u64,
    /// Every call's time, answered or not.
    pub latencies: Vec<Duration>,
    /// Answers per provider.
    pub answered_by: BTreeMap<&'static str, u64>,
    /// HTTP requests according to the trails (`tries`, a cancelled hedge
    /// loser counting one).
    pub tries: u64,
    /// Of those, the tries of providers asked as a hedge.
    pub hedged_tries: u64,
    /// Calls on which a hedge was sent.
    pub hedged_calls: u64,
    /// How long the provider asked first had before its hedge was sent, as
    /// the trail shows it: that entry's time less the hedge's (both end
    /// when the race does). Exact for calls of one pass.
    pub hedge_delays: Vec<Duration>,
    /// Over the failed calls' trails: how often each outcome appears.
    pub failed_trail_outcomes: BTreeMap<&'static str, u64>,
    /// Failed calls described (at most [`KEPT_FAILURES`]), oldest first.
    pub failures: Vec<String>,
}

impl Tally {
    /// Counts one call; `healthy` says who was healthy, asked only for a
    /// failed call.
    fn add(
        &mut self,
        elapsed: Duration,
        result: &Result<Envelope, Error>,
        healthy: impl FnOnce() -> Option<String>,
    ) {
        self.calls += 1;
        self.latencies.push(elapsed);
        if elapsed > DEADLINE + DEADLINE_TOLERANCE {
            self.past_deadline += 1;
        }
        let attempts = match result {
            Ok(reply) => {
                self.answered += 1;
                self.stale += u64::from(reply.stale);
                *self.answered_by.entry(reply.provider).or_default() += 1;
                &reply.attempts
            }
            Err(error) => {
                *self.failed.entry(error.kind().as_str()).or_default() += 1;
                for attempt in error.attempts() {
                    *self
                        .failed_trail_outcomes
                        .entry(attempt.outcome.as_str())
                        .or_default() += 1;
                }
                if self.failures.len() < KEPT_FAILURES {
                    self.failures
                        .push(describe_failure(elapsed, error, healthy()));
                }
                error.attempts()
            }
        };
        let mut hedged = false;
        for (i, attempt) in attempts.iter().enumerate() {
            self.tries += u64::from(attempt.tries);
            if attempt.hedged {
                hedged = true;
                self.hedged_tries += u64::from(attempt.tries);
                if let Some(first) = i.checked_sub(1).map(|j| &attempts[j]) {
                    self.hedge_delays
                        .push(first.elapsed.saturating_sub(attempt.elapsed));
                }
            }
        }
        self.hedged_calls += u64::from(hedged);
    }

    fn merge(&mut self, other: Tally) {
        self.calls += other.calls;
        self.answered += other.answered;
        self.stale += other.stale;
        self.past_deadline += other.past_deadline;
        self.latencies.extend(other.latencies);
        self.tries += other.tries;
        self.hedged_tries += other.hedged_tries;
        self.hedged_calls += other.hedged_calls;
        self.hedge_delays.extend(other.hedge_delays);
        for (kind, n) in other.failed {
            *self.failed.entry(kind).or_default() += n;
        }
        for (provider, n) in other.answered_by {
            *self.answered_by.entry(provider).or_default() += n;
        }
        for (outcome, n) in other.failed_trail_outcomes {
            *self.failed_trail_outcomes.entry(outcome).or_default() += n;
        }
        let room = KEPT_FAILURES.saturating_sub(self.failures.len());
        self.failures.extend(other.failures.into_iter().take(room));
    }

    /// Failed calls, all kinds.
    pub fn failed_calls(&self) -> u64 {
        self.failed.values().sum()
    }

    /// The `q` quantile (0.5, 0.99) of the calls' times.
    pub fn percentile(&self, q: f64) -> Duration {
        percentile(&self.latencies, q)
    }

    /// The longest call.
    pub fn max_latency(&self) -> Duration {
        self.latencies.iter().copied().max().unwrap_or_default()
    }
}

/// A failed call for the report: its kind, when it ended, and each trail
/// entry with its tries and time (the message alone shows neither).
fn describe_failure(elapsed: Duration, error: &Error, healthy: Option<String>) -> String {
    let trail: Vec<String> = error
        .attempts()
        .iter()
        .map(|a| {
            format!(
                "{} [{}{}, {} tries, {}]: {}",
                a.provider,
                a.outcome,
                if a.hedged { ", hedge" } else { "" },
                a.tries,
                ms(a.elapsed),
                a.reason
            )
        })
        .collect();
    let healthy = healthy.map(|h| format!(" ({h})")).unwrap_or_default();
    format!(
        "{} after {}{healthy}: {}",
        error.kind().as_str(),
        ms(elapsed),
        trail.join(" | ")
    )
}

/// The `q` quantile of `samples` (nearest rank), zero when there are none.
pub fn percentile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Milliseconds with one decimal, for reports.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One run's results.
#[derive(Debug)]
pub struct Report {
    /// The world and the concurrency.
    pub title: String,
    /// HTTP requests the emulator received.
    pub requests: u64,
    /// How long the run took.
    pub wall: Duration,
    /// Faults drawn, by kind.
    pub faults: Vec<(&'static str, u64)>,
    /// The calls.
    pub tally: Tally,
}

impl Report {
    /// Requests the emulator received per call.
    pub fn requests_per_call(&self) -> f64 {
        self.requests as f64 / self.tally.calls.max(1) as f64
    }

    /// Requests sent as hedges, of all requests received.
    pub fn hedge_share(&self) -> f64 {
        self.tally.hedged_tries as f64 / self.requests.max(1) as f64
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        let share = |n: u64| 100.0 * n as f64 / t.calls.max(1) as f64;
        writeln!(f, "== {}", self.title)?;
        writeln!(
            f,
            "calls {} in {:.1} s ({:.0}/s): answered {} ({:.3} %), failed {}, stale {}, past the deadline {}",
            t.calls,
            self.wall.as_secs_f64(),
            t.calls as f64 / self.wall.as_secs_f64().max(1e-9),
            t.answered,
            share(t.answered),
            t.failed_calls(),
            t.stale,
            t.past_deadline,
        )?;
        writeln!(
            f,
            "latency p50 {}, p99 {}, max {}",
            ms(t.percentile(0.5)),
            ms(t.percentile(0.99)),
            ms(t.max_latency()),
        )?;
        writeln!(
            f,
            "requests {} ({:.2} per call; trails count {}), hedge share {:.2} % ({} hedged calls)",
            self.requests,
            self.requests_per_call(),
            t.tries,
            100.0 * self.hedge_share(),
            t.hedged_calls,
        )?;
        if !t.hedge_delays.is_empty() {
            writeln!(
                f,
                "hedge delay seen in the trails: p50 {}, p99 {}",
                ms(percentile(&t.hedge_delays, 0.5)),
                ms(percentile(&t.hedge_delays, 0.99)),
            )?;
        }
        writeln!(f, "answered by {:?}", t.answered_by)?;
        writeln!(f, "faults drawn {:?}", self.faults)?;
        if !t.failed.is_empty() {
            writeln!(f, "failed by kind {:?}", t.failed)?;
            writeln!(f, "outcomes in failed trails {:?}", t.failed_trail_outcomes)?;
            for sample in t.failures.iter().take(SAMPLES) {
                writeln!(f, "  e.g. {sample}")?;
            }
        }
        Ok(())
    }
}
