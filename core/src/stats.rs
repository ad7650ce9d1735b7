//! Per-provider counters and latency percentiles, cheap enough for every call.
//!
//! Counters are atomics; latency goes into a fixed log-scale histogram
//! (8 buckets per power of two from 1 µs to ~1 h), so recording never
//! allocates or locks and percentiles are accurate to about 9 %.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::capability::llm::models::Spend;

/// Outcome names counted per provider (`success`, failure classes, skips).
pub(crate) const OUTCOMES: &[&str] = &[
    "success",
    "transient",
    "rate_limited",
    "quota_exhausted",
    "auth",
    "invalid_request",
    "not_found",
    "malformed_response",
    "unsupported",
    "context_length_exceeded",
    "content_filtered",
    "cancelled",
    "skipped_no_key",
    "skipped_benched",
    "skipped_quota",
    "skipped_rate_limit",
    "skipped_circuit_open",
    "skipped_context_window",
    "skipped_budget",
];

pub(crate) const SUB_BUCKETS: u32 = 8;
const OCTAVES: u32 = 32; // 1 µs · 2^32 ≈ 71 min
const BUCKETS: usize = (SUB_BUCKETS * OCTAVES) as usize;

/// Lock-free counters of one provider.
#[derive(Debug)]
pub(crate) struct ProviderStats {
    outcomes: [AtomicU64; OUTCOMES.len()],
    requests: AtomicU64,
    latency: Box<[AtomicU64; BUCKETS]>,
    /// The latencies' sum in µs, for the Prometheus histogram's `_sum`.
    latency_sum_micros: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    /// US dollars, as `f64` bits.
    cost_usd: AtomicU64,
    unpriced_answers: AtomicU64,
}

impl ProviderStats {
    pub(crate) fn new() -> Self {
        Self {
            outcomes: std::array::from_fn(|_| AtomicU64::new(0)),
            requests: AtomicU64::new(0),
            latency: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
            latency_sum_micros: AtomicU64::new(0),
            input_tokens: AtomicU64::new(0),
            output_tokens: AtomicU64::new(0),
            cost_usd: AtomicU64::new(0.0f64.to_bits()),
            unpriced_answers: AtomicU64::new(0),
        }
    }

    /// Counts one LLM answer's reported tokens and its cost.
    pub(crate) fn spend(&self, spend: &Spend) {
        let count = |counter: &AtomicU64, n: Option<u64>| {
            if let Some(n) = n {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        };
        count(&self.input_tokens, spend.input_tokens);
        count(&self.output_tokens, spend.output_tokens);
        match spend.cost_usd {
            Some(cost) => {
                // A float sum has no atomic add: swap in the new total.
                let _ = self
                    .cost_usd
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                        Some((f64::from_bits(bits) + cost).to_bits())
                    });
            }
            None => {
                self.unpriced_answers.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts one provider-level outcome (per provider turn, not per try).
    pub(crate) fn outcome(&self, name: &str) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == name) {
            self.outcomes[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records one HTTP request and its latency.
    pub(crate) fn request(&self, latency: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.latency[bucket_of(latency)].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// The request latencies: count per log-scale bucket, and their sum
    /// in µs.
    pub(crate) fn latency_buckets(&self) -> (Vec<u64>, u64) {
        let counts = self
            .latency
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        (counts, self.latency_sum_micros.load(Ordering::Relaxed))
    }

    pub(crate) fn snapshot(&self) -> StatsCounters {
        let counts: Vec<u64> = self
            .latency
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let pct = |p: f64| -> Option<f64> {
            if total == 0 {
                return None;
            }
            let rank = ((p * total as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Some(bucket_upper_ms(i));
                }
            }
            None
        };
        StatsCounters {
            requests: self.requests.load(Ordering::Relaxed),
            outcomes: OUTCOMES
                .iter()
                .zip(self.outcomes.iter())
                .map(|(name, c)| (*name, c.load(Ordering::Relaxed)))
                .filter(|(_, c)| *c > 0)
                .collect(),
            latency_ms_p50: pct(0.50),
            latency_ms_p90: pct(0.90),
            latency_ms_p99: pct(0.99),
            input_tokens: self.input_tokens.load(Ordering::Relaxed),
            output_tokens: self.output_tokens.load(Ordering::Relaxed),
            cost_usd: f64::from_bits(self.cost_usd.load(Ordering::Relaxed)),
            unpriced_answers: self.unpriced_answers.load(Ordering::Relaxed),
        }
    }
}

pub(crate) fn bucket_of(latency: Duration) -> usize {
    let micros = latency.as_micros().max(1) as u64;
    let octave = 63 - micros.leading_zeros(); // floor(log2)
    let sub = if octave >= 3 {
        (micros >> (octave - 3)) & 0b111
    } else {
        (micros << (3 - octave)) & 0b111
    };
    ((octave * SUB_BUCKETS + sub as u32) as usize).min(BUCKETS - 1)
}

pub(crate) fn bucket_upper_ms(index: usize) -> f64 {
    let octave = index as u32 / SUB_BUCKETS;
    let sub = index as u32 % SUB_BUCKETS;
    let upper_micros = (1u64 << octave) as f64 * (1.0 + (sub + 1) as f64 / SUB_BUCKETS as f64);
    upper_micros / 1000.0
}

/// The counters part of a provider's stats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsCounters {
    /// HTTP requests sent.
    pub requests: u64,
    /// Provider turns by outcome name.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Median request latency (ms), when any request was made.
    pub latency_ms_p50: Option<f64>,
    /// 90th percentile latency (ms).
    pub latency_ms_p90: Option<f64>,
    /// 99th percentile latency (ms).
    pub latency_ms_p99: Option<f64>,
    /// LLM answers: prompt tokens reported (cached ones included).
    pub input_tokens: u64,
    /// LLM answers: generated tokens reported (reasoning included).
    pub output_tokens: u64,
    /// LLM answers: what the priced ones cost, in US dollars (answers
    /// served from the cache cost nothing and are not counted here).
    pub cost_usd: f64,
    /// LLM answers left out of `cost_usd`: their model's price or their
    /// usage is unknown.
    pub unpriced_answers: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_a_bucket_of_the_truth() {
        let stats = ProviderStats::new();
        for ms in 1..=100u64 {
            stats.request(Duration::from_millis(ms));
        }
        let snap = stats.snapshot();
        assert_eq!(snap.requests, 100);
        let p50 = snap.latency_ms_p50.unwrap();
        let p99 = snap.latency_ms_p99.unwrap();
        assert!((50.0..=50.0 * 1.13).contains(&p50), "p50 {p50}");
        assert!((99.0..=99.0 * 1.13).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn spend_adds_tokens_and_cost_and_counts_unpriced_answers() {
        let stats = ProviderStats::new();
        stats.spend(&Spend {
            input_tokens: Some(10),
            output_tokens: Some(5),
            cost_usd: Some(0.25),
        });
        stats.spend(&Spend {
            input_tokens: Some(1),
            output_tokens: None,
            cost_usd: Some(0.5),
        });
        stats.spend(&Spend {
            input_tokens: None,
            output_tokens: Some(2),
            cost_usd: None,
        });
        let snap = stats.snapshot();
        assert_eq!((snap.input_tokens, snap.output_tokens), (11, 7));
        assert_eq!(snap.cost_usd, 0.75);
        assert_eq!(snap.unpriced_answers, 1);
    }

    #[test]
    fn outcomes_are_counted_by_name() {
        let stats = ProviderStats::new();
        stats.outcome("success");
        stats.outcome("success");
        stats.outcome("skipped_no_key");
        let snap = stats.snapshot();
        assert_eq!(snap.outcomes["success"], 2);
        assert_eq!(snap.outcomes["skipped_no_key"], 1);
        assert!(snap.latency_ms_p50.is_none());
    }
}
