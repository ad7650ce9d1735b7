//! Prometheus exposition: [`crate::Client::metrics_text`].
//!
//! Nothing here runs on a call's path. A scrape reads what already exists:
//!
//! - per call (capability × outcome, latency, overhead): [`CallMetrics`],
//!   fed by the analytics drain from the same [`CallRecord`]s the analytics
//!   store gets, flushed first so the counters are current (so these series
//!   are absent with `[analytics] enabled = false`);
//! - per provider (attempts by outcome, upstream latency, tokens, cost):
//!   the counters of [`crate::stats`], kept by every call anyway;
//! - breaker states, quota left, Redis degradation: what
//!   [`crate::Client::stats`] and [`crate::Client::health`] report (the
//!   client hands them over: this module depends on no client type).
//!
//! Latency histograms have one `le` bound per power of two of microseconds
//! from 1.024 ms to 67.1 s: each is an exact union of the log-scale
//! buckets of [`crate::stats`], so bucket counts are exact, not estimated.
//! Label values are capability ids, provider or deployment names and
//! outcome names: never a key, a parameter or an answer.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::analytics::CallRecord;
use crate::stats::{bucket_of, SUB_BUCKETS};

/// The `Content-Type` of [`crate::Client::metrics_text`]: the Prometheus
/// text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The first `le` bound is 2^FIRST_OCTAVE µs (1.024 ms).
const FIRST_OCTAVE: u32 = 10;
/// `le` bounds below `+Inf`: 2^10 … 2^26 µs (67.108864 s).
const BOUNDS: usize = 17;

/// A latency histogram with the bounds above; counts per bound, not yet
/// cumulative (the encoder sums them).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Histogram {
    /// Count per bound; the last is `+Inf`.
    counts: [u64; BOUNDS + 1],
    /// Observations.
    pub(crate) count: u64,
    /// Sum of the observations, in seconds.
    pub(crate) sum_seconds: f64,
}

impl Histogram {
    /// A provider's HTTP request latencies, from its counters.
    pub(crate) fn of_requests(stats: &crate::stats::ProviderStats) -> Self {
        let (counts, sum_micros) = stats.latency_buckets();
        let mut histogram = Self::default();
        for (i, count) in counts.into_iter().enumerate() {
            histogram.add_bucket(i, count);
        }
        histogram.sum_seconds = sum_micros as f64 / 1_000_000.0;
        histogram
    }

    /// Adds `count` observations of the [`crate::stats`] bucket `index`:
    /// its octave decides the bound, exactly.
    pub(crate) fn add_bucket(&mut self, index: usize, count: u64) {
        if count == 0 {
            return;
        }
        // Bucket `index` holds latencies below 2^(octave + 1) µs.
        let octave = index as u32 / SUB_BUCKETS;
        let bound = ((octave + 1).saturating_sub(FIRST_OCTAVE) as usize).min(BOUNDS);
        self.counts[bound] += count;
        self.count += count;
    }

    fn observe(&mut self, latency: std::time::Duration) {
        self.add_bucket(bucket_of(latency), 1);
        self.sum_seconds += latency.as_secs_f64();
    }

    fn buckets(&self) -> Vec<(f64, u64)> {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, count)| {
                let upper = if i < BOUNDS {
                    (1u64 << (FIRST_OCTAVE as usize + i)) as f64 / 1_000_000.0
                } else {
                    f64::INFINITY
                };
                (upper, *count)
            })
            .collect()
    }
}

/// One capability's calls.
#[derive(Debug, Clone, Default)]
struct CapabilityCalls {
    /// By outcome: `success`, `cached`, `stale` or an error kind.
    outcomes: BTreeMap<&'static str, u64>,
    latency: Histogram,
    overhead: Histogram,
}

/// The per-call series, by capability. Fed off the hot path by the
/// analytics drain, a batch at a time.
#[derive(Debug, Default)]
pub(crate) struct CallMetrics {
    by_capability: Mutex<BTreeMap<&'static str, CapabilityCalls>>,
}

impl CallMetrics {
    /// Counts a drained batch of finished calls.
    pub(crate) fn observe(&self, records: &[CallRecord]) {
        let mut by_capability = self.by_capability.lock();
        for record in records {
            let calls = by_capability.entry(record.capability).or_default();
            let outcome = match (record.stale, record.cached) {
                (true, _) => "stale",
                (false, true) => "cached",
                (false, false) => record.outcome,
            };
            *calls.outcomes.entry(outcome).or_default() += 1;
            calls.latency.observe(record.latency);
            calls
                .overhead
                .observe(record.latency.saturating_sub(record.upstream));
        }
    }

    fn snapshot(&self) -> BTreeMap<&'static str, CapabilityCalls> {
        self.by_capability.lock().clone()
    }
}

/// One provider's (or deployment's) series.
#[derive(Debug)]
pub(crate) struct ProviderScrape {
    /// Provider id or deployment name.
    pub(crate) name: &'static str,
    pub(crate) counters: crate::stats::StatsCounters,
    /// State of its breaker per capability.
    pub(crate) breakers: Vec<(&'static str, &'static str)>,
    /// Units left in its quota window, when it has a quota.
    pub(crate) quota_remaining: Option<u64>,
    pub(crate) latency: Histogram,
}

impl ProviderScrape {
    /// Has LLM answers counted: tokens and cost are shown for it.
    fn answers_llm(&self) -> bool {
        let c = &self.counters;
        c.input_tokens > 0 || c.output_tokens > 0 || c.cost_usd > 0.0 || c.unpriced_answers > 0
    }
}

/// Everything one scrape shows, read at once.
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    calls: BTreeMap<&'static str, CapabilityCalls>,
    /// Providers asked at least once.
    pub(crate) providers: Vec<ProviderScrape>,
    /// Providers that would be asked now, by capability.
    pub(crate) ready: Vec<(&'static str, usize)>,
    pub(crate) redis_degraded: bool,
    pub(crate) dropped_records: u64,
}

impl Scrape {
    /// A scrape of the per-call series `calls` (none with analytics off);
    /// the caller fills in the rest.
    pub(crate) fn new(calls: Option<&CallMetrics>) -> Self {
        Self {
            calls: calls.map(CallMetrics::snapshot).unwrap_or_default(),
            ..Self::default()
        }
    }

    /// The Prometheus text.
    pub(crate) fn render(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        text
    }
}

/// One series of a family: its labels and how to write its value.
type Labels<'a> = Vec<(&'static str, &'a str)>;

fn family<'a, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    series: impl IntoIterator<Item = (Labels<'a>, M)>,
) -> Result<(), std::fmt::Error> {
    let mut series = series.into_iter().peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in series {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn histograms<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels<'a>, &'a Histogram)>,
) -> Result<(), std::fmt::Error> {
    let mut series = series.into_iter().peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, histogram) in series {
        metric
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(
                histogram.sum_seconds,
                histogram.count,
                &histogram.buckets(),
                None,
            )?;
    }
    Ok(())
}

fn counter(n: u64) -> ConstCounter<u64> {
    ConstCounter::new(n)
}

fn gauge(n: i64) -> ConstGauge<i64> {
    ConstGauge::new(n)
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let calls = &self.calls;
        family(
            &mut e,
            "polyrelay_calls",
            "Finished calls by capability and outcome: success, cached, stale or the error kind.",
            MetricType::Counter,
            calls.iter().flat_map(|(capability, c)| {
                c.outcomes.iter().map(|(outcome, n)| {
                    (
                        vec![("capability", *capability), ("outcome", *outcome)],
                        counter(*n),
                    )
                })
            }),
        )?;
        family(
            &mut e,
            "polyrelay_cache_hits",
            "Calls answered from the cache (stale answers included), by capability.",
            MetricType::Counter,
            calls.iter().map(|(capability, c)| {
                let hits = c.outcomes.get("cached").copied().unwrap_or(0)
                    + c.outcomes.get("stale").copied().unwrap_or(0);
                (vec![("capability", *capability)], counter(hits))
            }),
        )?;
        histograms(
            &mut e,
            "polyrelay_call_duration_seconds",
            "Time from a call to its answer or error, by capability.",
            calls
                .iter()
                .map(|(capability, c)| (vec![("capability", *capability)], &c.latency)),
        )?;
        histograms(
            &mut e,
            "polyrelay_overhead_duration_seconds",
            "polyrelay's own time in a call: its time minus its HTTP exchanges with providers.",
            calls
                .iter()
                .map(|(capability, c)| (vec![("capability", *capability)], &c.overhead)),
        )?;

        // Only providers asked at least once (see `Client::metrics_text`).
        let providers = &self.providers;
        family(
            &mut e,
            "polyrelay_provider_attempts",
            "Provider turns by outcome: success, a failure class or a skip reason.",
            MetricType::Counter,
            providers.iter().flat_map(|p| {
                p.counters.outcomes.iter().map(|(outcome, n)| {
                    (
                        vec![("provider", p.name), ("outcome", *outcome)],
                        counter(*n),
                    )
                })
            }),
        )?;
        histograms(
            &mut e,
            "polyrelay_upstream_request_duration_seconds",
            "HTTP exchanges with a provider (each retry counted), by provider.",
            providers
                .iter()
                .map(|p| (vec![("provider", p.name)], &p.latency)),
        )?;
        family(
            &mut e,
            "polyrelay_tokens",
            "LLM tokens reported by providers, by provider and direction (input or output).",
            MetricType::Counter,
            providers.iter().filter(|p| p.answers_llm()).flat_map(|p| {
                let c = &p.counters;
                [("input", c.input_tokens), ("output", c.output_tokens)]
                    .into_iter()
                    .map(|(direction, n)| {
                        (
                            vec![("provider", p.name), ("direction", direction)],
                            counter(n),
                        )
                    })
            }),
        )?;
        family(
            &mut e,
            "polyrelay_cost_usd",
            "What priced LLM answers cost, in US dollars, by provider.",
            MetricType::Counter,
            providers.iter().filter(|p| p.answers_llm()).map(|p| {
                (
                    vec![("provider", p.name)],
                    ConstCounter::new(p.counters.cost_usd),
                )
            }),
        )?;
        family(
            &mut e,
            "polyrelay_breaker_state",
            "1 for the state each breaker (provider × capability) is in, else 0.",
            MetricType::Gauge,
            providers.iter().flat_map(|p| {
                p.breakers.iter().flat_map(move |(capability, current)| {
                    ["closed", "open", "half_open"]
                        .into_iter()
                        .map(move |state| {
                            (
                                vec![
                                    ("provider", p.name),
                                    ("capability", *capability),
                                    ("state", state),
                                ],
                                gauge(i64::from(*current == state)),
                            )
                        })
                })
            }),
        )?;
        family(
            &mut e,
            "polyrelay_quota_remaining",
            "Units left in a provider's quota window (day or month).",
            MetricType::Gauge,
            providers.iter().filter_map(|p| {
                let remaining = p.quota_remaining?;
                Some((
                    vec![("provider", p.name)],
                    gauge(i64::try_from(remaining).unwrap_or(i64::MAX)),
                ))
            }),
        )?;

        family(
            &mut e,
            "polyrelay_capability_ready_providers",
            "Providers that would be asked now, by capability (0: the capability is down).",
            MetricType::Gauge,
            self.ready.iter().map(|(capability, ready)| {
                (vec![("capability", *capability)], gauge(*ready as i64))
            }),
        )?;
        family(
            &mut e,
            "polyrelay_redis_degraded",
            "1 while Redis is unreachable and quotas, limits and the cache run on local state.",
            MetricType::Gauge,
            [(Vec::new(), gauge(i64::from(self.redis_degraded)))],
        )?;
        family(
            &mut e,
            "polyrelay_analytics_dropped_records",
            "Call records dropped because the analytics queue was full (not in the call series).",
            MetricType::Counter,
            [(Vec::new(), counter(self.dropped_records))],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn bound_of(latency: Duration) -> f64 {
        let mut histogram = Histogram::default();
        histogram.observe(latency);
        let buckets = histogram.buckets();
        buckets
            .iter()
            .find(|(_, n)| *n == 1)
            .map(|(le, _)| *le)
            .unwrap()
    }

    #[test]
    fn each_latency_lands_under_the_first_bound_not_below_it() {
        assert_eq!(bound_of(Duration::from_micros(1)), 0.001024);
        assert_eq!(bound_of(Duration::from_micros(1023)), 0.001024);
        assert_eq!(bound_of(Duration::from_micros(1024)), 0.002048);
        assert_eq!(bound_of(Duration::from_millis(100)), 0.131072);
        assert_eq!(bound_of(Duration::from_secs(67)), 67.108864);
        assert_eq!(bound_of(Duration::from_secs(68)), f64::INFINITY);
    }

    #[test]
    fn overhead_subtracts_the_upstream_time_and_outcomes_name_cache_hits() {
        let metrics = CallMetrics::default();
        let record = |cached, stale, outcome| CallRecord {
            at: chrono::DateTime::UNIX_EPOCH,
            capability: "weather.current",
            provider: None,
            outcome,
            latency: Duration::from_millis(100),
            upstream: Duration::from_millis(90),
            cached,
            stale,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
            tag: None,
        };
        metrics.observe(&[
            record(false, false, "success"),
            record(true, false, "success"),
            record(true, true, "success"),
            record(false, false, "timeout"),
        ]);
        let snapshot = metrics.snapshot();
        let calls = &snapshot["weather.current"];
        let outcomes: Vec<(&str, u64)> = calls.outcomes.iter().map(|(o, n)| (*o, *n)).collect();
        assert_eq!(
            outcomes,
            [("cached", 1), ("stale", 1), ("success", 1), ("timeout", 1)]
        );
        assert_eq!(calls.latency.count, 4);
        assert!((calls.overhead.sum_seconds - 0.040).abs() < 1e-9);
    }
}
