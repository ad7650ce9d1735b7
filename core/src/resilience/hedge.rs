//! Hedged requests: when the provider asked first is slow, ask the next one
//! too and keep the first answer (as gRPC's hedging policy and Envoy's
//! per-try hedging do).
//!
//! This module holds the setting, the hedge delay (fixed, or a percentile of
//! the provider's recent latency) and the budget that bounds the extra load;
//! the engine runs the race.
//!
//! ```toml
//! [capabilities."weather.current"]
//! hedge = { after = "p95", budget = 0.1 }   # or after = "50ms"
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::clock::SharedClock;
use crate::resilience::retry::{RetryBudget, RetryBudgetConfig};

/// Fewest recent latencies a percentile delay is computed from; with fewer,
/// the provider is not hedged yet (a percentile of three samples says little).
const MIN_SAMPLES: usize = 20;
/// Recent latencies kept per provider for percentile delays.
const RECENT: usize = 128;

/// The `hedge` setting of a capability.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HedgeConfig {
    /// How long the provider asked first has before the next one is asked
    /// too: a duration (`"50ms"`) or a percentile of that provider's recent
    /// latency (`"p95"`).
    pub after: HedgeDelay,
    /// Largest share of extra requests hedges may add over the last 10 s
    /// (default 0.1: one hedge per ten calls).
    #[serde(default = "default_budget")]
    pub budget: f64,
}

fn default_budget() -> f64 {
    0.1
}

impl HedgeConfig {
    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.budget.is_finite() && (0.0..=1.0).contains(&self.budget)) {
            return Err("budget must be between 0 and 1".into());
        }
        Ok(())
    }
}

/// When a hedge is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeDelay {
    /// After this long.
    Fixed(Duration),
    /// After this quantile (0.95 for `"p95"`) of the provider's recent
    /// latency.
    Percentile(f64),
}

impl<'de> Deserialize<'de> for HedgeDelay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let text = String::deserialize(d)?;
        if let Some(p) = text.strip_prefix('p') {
            return match p.parse::<f64>() {
                Ok(p) if p > 0.0 && p < 100.0 => Ok(Self::Percentile(p / 100.0)),
                _ => Err(D::Error::custom(
                    "a percentile must be like \"p95\" (between p0 and p100)",
                )),
            };
        }
        crate::duration::parse(&text)
            .map(Self::Fixed)
            .map_err(D::Error::custom)
    }
}

impl fmt::Display for HedgeDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(d) => write!(f, "{:.0} ms", d.as_secs_f64() * 1000.0),
            Self::Percentile(p) => write!(f, "p{}", p * 100.0),
        }
    }
}

/// A capability's hedging: its setting and its budget.
#[derive(Debug)]
pub(crate) struct Hedging {
    pub delay: HedgeDelay,
    budget: RetryBudget,
}

impl Hedging {
    pub(crate) fn new(config: &HedgeConfig, clock: SharedClock) -> Self {
        // The retry budget's token bucket, with no reserve: hedges stay
        // within `budget` of recent calls, as gRPC's retry throttling.
        let budget = RetryBudgetConfig {
            enabled: true,
            ttl: Duration::from_secs(10),
            min_per_sec: 0,
            retry_percent: config.budget,
        };
        Self {
            delay: config.after,
            budget: RetryBudget::new(&budget, clock),
        }
    }

    /// Counts one call that may be hedged.
    pub(crate) fn deposit(&self) {
        self.budget.deposit();
    }

    /// Takes one hedge from the budget, if the recent share allows it.
    pub(crate) fn withdraw(&self) -> bool {
        self.budget.withdraw()
    }

    /// How long `latencies`' provider has before a hedge, if it can be
    /// hedged now.
    pub(crate) fn delay_for(&self, latencies: &RecentLatencies) -> Option<Duration> {
        match self.delay {
            HedgeDelay::Fixed(delay) => Some(delay),
            HedgeDelay::Percentile(p) => latencies.quantile(p),
        }
    }
}

/// The last [`RECENT`] request latencies of a provider, written without a
/// lock on every request.
#[derive(Debug)]
pub(crate) struct RecentLatencies {
    micros: [AtomicU64; RECENT],
    next: AtomicUsize,
}

impl RecentLatencies {
    pub(crate) fn new() -> Self {
        Self {
            micros: std::array::from_fn(|_| AtomicU64::new(0)),
            next: AtomicUsize::new(0),
        }
    }

    pub(crate) fn record(&self, latency: Duration) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % RECENT;
        // 0 marks an empty slot.
        let micros = (latency.as_micros() as u64).max(1);
        self.micros[i].store(micros, Ordering::Relaxed);
    }

    /// The `q` quantile (0..1) of the recent latencies, or `None` while
    /// there are too few.
    pub(crate) fn quantile(&self, q: f64) -> Option<Duration> {
        let mut samples: Vec<u64> = self
            .micros
            .iter()
            .map(|m| m.load(Ordering::Relaxed))
            .filter(|m| *m > 0)
            .collect();
        if samples.len() < MIN_SAMPLES {
            return None;
        }
        samples.sort_unstable();
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        Some(Duration::from_micros(samples[rank - 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    #[test]
    fn the_delay_reads_a_duration_or_a_percentile() {
        let fixed: HedgeConfig = toml::from_str(r#"after = "50ms""#).unwrap();
        assert_eq!(fixed.after, HedgeDelay::Fixed(Duration::from_millis(50)));
        assert_eq!(fixed.budget, 0.1);
        let pct: HedgeConfig = toml::from_str("after = \"p95\"\nbudget = 0.05").unwrap();
        assert_eq!(pct.after, HedgeDelay::Percentile(0.95));
        for bad in ["p0", "p100", "pfast", "soon"] {
            let text = format!("after = \"{bad}\"");
            assert!(toml::from_str::<HedgeConfig>(&text).is_err(), "{bad}");
        }
        let greedy: HedgeConfig = toml::from_str("after = \"1s\"\nbudget = 2.0").unwrap();
        assert!(greedy.validate().is_err());
    }

    #[test]
    fn a_percentile_needs_enough_recent_samples_and_forgets_old_ones() {
        let recent = RecentLatencies::new();
        for ms in 1..MIN_SAMPLES as u64 {
            recent.record(Duration::from_millis(ms));
        }
        assert_eq!(recent.quantile(0.95), None);
        recent.record(Duration::from_millis(20));
        assert_eq!(recent.quantile(0.95), Some(Duration::from_millis(19)));
        assert_eq!(recent.quantile(0.5), Some(Duration::from_millis(10)));
        // A full ring of fast answers pushes the old slow ones out.
        for _ in 0..RECENT {
            recent.record(Duration::from_millis(2));
        }
        assert_eq!(recent.quantile(0.99), Some(Duration::from_millis(2)));
    }

    #[test]
    fn hedges_stay_within_the_budget_share_of_calls() {
        let clock = FakeClock::at_epoch();
        let config = HedgeConfig {
            after: HedgeDelay::Fixed(Duration::from_millis(10)),
            budget: 0.1,
        };
        let hedging = Hedging::new(&config, clock.shared());
        let mut hedges = 0;
        for _ in 0..100 {
            hedging.deposit();
            if hedging.withdraw() {
                hedges += 1;
            }
        }
        assert_eq!(hedges, 10);
    }
}
