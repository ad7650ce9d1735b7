//! The hedging benchmark: the first provider answers a few requests late,
//! the next one is healthy; the same calls with hedging off and on.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use polyrelay::emulation::Fault;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::chaos::{self, ms, Tally};

/// The provider that is sometimes slow, and the healthy one after it.
const SLOW: &str = "open-meteo";
const HEALTHY: &str = "met-norway";

/// Calls made before each measured run: connections opened, and enough
/// latencies recorded for a percentile hedge delay (it needs 20).
const WARM_UP: u64 = 100;

/// How the benchmark is run.
#[derive(Debug, Clone)]
pub struct HedgeBench {
    /// Measured calls per variant.
    pub calls: u64,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Share of the slow provider's requests answered late.
    pub slow_share: f64,
    /// How late.
    pub slow_by: Duration,
    /// Seed of the draws of late requests.
    pub seed: u64,
}

/// One configuration measured.
struct Variant {
    name: &'static str,
    chain: &'static [&'static str],
    hedge: Option<&'static str>,
}

const VARIANTS: [Variant; 5] = [
    Variant {
        name: "healthy provider alone",
        chain: &[HEALTHY],
        hedge: None,
    },
    Variant {
        name: "hedging off",
        chain: &[SLOW, HEALTHY],
        hedge: None,
    },
    Variant {
        name: "hedge after 50ms",
        chain: &[SLOW, HEALTHY],
        hedge: Some("50ms"),
    },
    Variant {
        name: "hedge after p95",
        chain: &[SLOW, HEALTHY],
        hedge: Some("p95"),
    },
    Variant {
        name: "hedge after p90",
        chain: &[SLOW, HEALTHY],
        hedge: Some("p90"),
    },
];

fn config(variant: &Variant) -> String {
    let hedge = variant
        .hedge
        .map(|after| format!("hedge = {{ after = \"{after}\", budget = 0.1 }}"))
        .unwrap_or_default();
    // One try per provider and no client limits: only the late answers and
    // the hedges decide the latency. The attempt timeout is above the late
    // answers, so they answer rather than time out.
    format!(
        r#"
[cache]
enabled = false
[defaults]
daily_quota = 0
rate_limit = "off"
retry = {{ max_attempts = 1, attempt_timeout = "3s" }}
[capabilities."weather.current"]
chain = {chain:?}
total_timeout = "5s"
{hedge}
"#,
        chain = variant.chain,
    )
}

/// What one variant measured.
struct Measured {
    tally: Tally,
    requests: u64,
}

impl Measured {
    /// Requests beyond one per call, of the calls.
    fn extra_share(&self) -> f64 {
        self.requests.saturating_sub(self.tally.calls) as f64 / self.tally.calls.max(1) as f64
    }
}

/// Runs every variant on one emulator and prints a table and the verdict
/// against the targets: p99 with hedging at most three times the healthy
/// provider's p99 plus the hedge delay, and at most 10 % extra requests.
/// Returns whether every hedging variant met them.
pub async fn run(bench: &HedgeBench) -> Result<bool, Box<dyn std::error::Error>> {
    let emulator = chaos::start_emulator()?;
    let rng = Arc::new(Mutex::new(SmallRng::seed_from_u64(bench.seed)));
    let (share, late) = (bench.slow_share, bench.slow_by);
    emulator.fault_with(&format!("/{SLOW}/*"), move || {
        rng.lock()
            .random_bool(share)
            .then_some(Fault::Latency(late))
    });
    println!(
        "hedging benchmark: {SLOW} answers {:.0} % of requests after {}, {HEALTHY} is healthy; \
         {} calls per variant at concurrency {} (after {WARM_UP} warm-up calls)",
        share * 100.0,
        ms(late),
        bench.calls,
        bench.concurrency,
    );
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>9} {:>8} {:>12} {:>9}",
        "variant", "p50", "p99", "max", "extra", "hedged", "hedge delay", "answered"
    );
    let mut measured = Vec::new();
    for variant in &VARIANTS {
        let client = chaos::client(&emulator, &config(variant), bench.seed)?;
        chaos::call_many(&client, WARM_UP, bench.concurrency, None).await;
        let before = emulator.served();
        let tally = chaos::call_many(&client, bench.calls, bench.concurrency, None).await;
        let m = Measured {
            requests: emulator.served() - before,
            tally,
        };
        let delay = if m.tally.hedge_delays.is_empty() {
            "-".to_string()
        } else {
            ms(chaos::percentile(&m.tally.hedge_delays, 0.5))
        };
        println!(
            "{:<24} {:>10} {:>10} {:>10} {:>8.2}% {:>8} {:>12} {:>9}",
            variant.name,
            ms(m.tally.percentile(0.5)),
            ms(m.tally.percentile(0.99)),
            ms(m.tally.max_latency()),
            100.0 * m.extra_share(),
            m.tally.hedged_calls,
            delay,
            m.tally.answered,
        );
        measured.push(m);
    }

    let healthy_p99 = measured[0].tally.percentile(0.99);
    let mut all_met = true;
    for (variant, m) in VARIANTS.iter().zip(&measured).skip(2) {
        // A percentile delay is what the trails show the hedges waited.
        let delay = match variant
            .hedge
            .and_then(|after| polyrelay::internal::duration::parse(after).ok())
        {
            Some(fixed) => fixed,
            None => chaos::percentile(&m.tally.hedge_delays, 0.5),
        };
        let bound = 3 * healthy_p99 + delay;
        let p99 = m.tally.percentile(0.99);
        let met = p99 <= bound && m.extra_share() <= 0.10 && m.tally.failed_calls() == 0;
        all_met &= met;
        println!(
            "{}: p99 {} vs 3 x {} + {} = {}; extra requests {:.2} % vs 10 %; failed {}: {}",
            variant.name,
            ms(p99),
            ms(healthy_p99),
            ms(delay),
            ms(bound),
            100.0 * m.extra_share(),
            m.tally.failed_calls(),
            if met { "met" } else { "MISSED" },
        );
    }
    Ok(all_met)
}
