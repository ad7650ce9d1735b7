//! Model groups: in which order one call asks a group's deployments.
//!
//! A deployment is one provider with a model id and its own key, URL and
//! limits; a group is a named list of deployments that a call reaches by
//! naming the group as its `model` (see [`crate::config::GroupSettings`]).
//! Each call orders the group's deployments by the group's [`Strategy`];
//! the engine then walks them in that order exactly as it walks a
//! capability's chain, so a deployment that fails, is throttled or has its
//! breaker open passes the call on to the next one.
//!
//! This module holds the strategies and what they read: the token estimate
//! of a call (also what a tokens-per-minute limit weighs), the recent
//! latency of a deployment, and its price.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;

use crate::capability::llm::models::{self, ModelTable};
use crate::capability::Request;

/// How a group orders its deployments for a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// As configured: the first deployment first (a plain fallback chain).
    #[default]
    Ordered,
    /// At random, each deployment first in proportion to its weight, the
    /// rest after it in a weighted random order too (without replacement).
    Weighted,
    /// Fewest requests in flight first; ties keep the configured order.
    LeastBusy,
    /// Fastest first, by the average of its recent request latencies (an
    /// exponentially weighted mean, where a try that timed out counts its
    /// whole wait). A deployment with no latency yet goes first (in
    /// configured order), so every deployment gets measured, as LiteLLM's
    /// latency-based routing does with untried deployments.
    LowestLatency,
    /// Cheapest first for this call: the estimated input and output tokens
    /// at the deployment's price; deployments without a price go last.
    Cost,
}

impl Strategy {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ordered => "ordered",
            Self::Weighted => "weighted",
            Self::LeastBusy => "least_busy",
            Self::LowestLatency => "lowest_latency",
            Self::Cost => "cost",
        }
    }
}

/// A deployment's price, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million input (prompt) tokens.
    pub input_per_mtok: f64,
    /// Per million output (generated) tokens.
    pub output_per_mtok: f64,
}

impl Price {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (field, value) in [
            ("input_per_mtok", self.input_per_mtok),
            ("output_per_mtok", self.output_per_mtok),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err((field, "must be a number of dollars, 0 or more".into()));
            }
        }
        Ok(())
    }

    /// What `tokens` would cost, in US dollars.
    pub(crate) fn cost_usd(&self, tokens: TokenEstimate) -> f64 {
        (tokens.input as f64 * self.input_per_mtok + tokens.output as f64 * self.output_per_mtok)
            / 1e6
    }
}

/// The price the cost strategy orders deployment (`provider`, `model`)
/// by: the one configured for the deployment, else the model table's.
pub(crate) fn price_of(
    models: &ModelTable,
    provider: &str,
    model: &str,
    configured: Option<Price>,
) -> Option<Price> {
    configured.or_else(|| {
        let info = models.lookup(provider, model)?;
        Some(Price {
            input_per_mtok: info.input_per_mtok?,
            output_per_mtok: info.output_per_mtok?,
        })
    })
}

/// Output tokens assumed for a chat call that does not set `max_tokens`.
pub(crate) const DEFAULT_OUTPUT_TOKENS: u64 = 256;

/// A call's tokens, estimated before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TokenEstimate {
    /// Prompt tokens ([`models::estimate_chat_tokens`]), or those of every
    /// text to embed.
    pub(crate) input: u64,
    /// Tokens to generate: `max_tokens`, or [`DEFAULT_OUTPUT_TOKENS`]; none
    /// for embeddings.
    pub(crate) output: u64,
}

impl TokenEstimate {
    /// Input and output together: what a tokens-per-minute limit weighs.
    pub(crate) fn total(self) -> u64 {
        self.input.saturating_add(self.output)
    }

    /// The estimate of `request` (zero for capabilities without tokens),
    /// as the model table estimates prompts.
    pub(crate) fn of(request: &Request) -> Self {
        match request {
            Request::LlmChat(query) => Self {
                input: models::estimate_chat_tokens(query).0,
                output: query.max_tokens.map_or(DEFAULT_OUTPUT_TOKENS, u64::from),
            },
            Request::LlmEmbeddings(query) => Self {
                input: query
                    .inputs
                    .iter()
                    .map(|t| models::estimate_tokens(t))
                    .sum(),
                output: 0,
            },
            _ => Self::default(),
        }
    }
}

/// Tokens a call needs its model's context window to hold, estimated
/// ([`models::estimate_chat_tokens`]): a chat's prompt, plus `max_tokens`
/// when the call sets it (providers count the answer's room in the window:
/// OpenAI and Anthropic refuse a prompt plus `max_tokens` over it); for
/// embeddings, the longest input's (an embedding model's window holds one
/// input). `None` for capabilities without a model.
pub(crate) fn context_need(request: &Request) -> Option<u64> {
    match request {
        Request::LlmChat(query) => {
            let (prompt, with_answer) = models::estimate_chat_tokens(query);
            Some(with_answer.unwrap_or(prompt))
        }
        Request::LlmEmbeddings(query) => query
            .inputs
            .iter()
            .map(|t| models::estimate_tokens(t))
            .max(),
        _ => None,
    }
}

/// What a strategy knows about one deployment of the group, in configured
/// order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    /// Its weight in the group (1 unless configured).
    pub weight: f64,
    /// Its requests in flight now.
    pub in_flight: u32,
    /// Its recent average latency; `None` before its first request.
    pub latency: Option<Duration>,
    /// What this call would cost on it, in US dollars; `None` without a
    /// price.
    pub cost: Option<f64>,
}

/// The order in which one call asks the group's deployments: indices into
/// `candidates`, every one of them once.
pub(crate) fn order(
    strategy: Strategy,
    candidates: &[Candidate],
    rng: &mut impl Rng,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    // Every sort below is stable: ties keep the configured order.
    match strategy {
        Strategy::Ordered => {}
        Strategy::Weighted => {
            // Efraimidis–Spirakis: each deployment draws an exponential
            // time with rate equal to its weight; earliest first. The first
            // is deployment i with probability w_i / Σw, and the rest
            // follow in the same way among those left.
            let keys: Vec<f64> = candidates
                .iter()
                .map(|c| {
                    let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
                    -u.ln() / c.weight
                })
                .collect();
            order.sort_by(|a, b| keys[*a].total_cmp(&keys[*b]));
        }
        Strategy::LeastBusy => order.sort_by_key(|i| candidates[*i].in_flight),
        Strategy::LowestLatency => order.sort_by_key(|i| {
            // Untried first: `None` sorts before any latency.
            candidates[*i].latency
        }),
        Strategy::Cost => order.sort_by(|a, b| match (candidates[*a].cost, candidates[*b].cost) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }),
    }
    order
}

/// A deployment's recent latency: an exponentially weighted mean of its
/// requests' latencies (each new one weighs 1/8), lock-free. A try that
/// timed out counts the time it waited, so a hanging deployment sinks.
#[derive(Debug, Default)]
pub(crate) struct LatencyAverage {
    /// Microseconds; 0 before the first request.
    micros: AtomicU64,
}

impl LatencyAverage {
    pub(crate) fn record(&self, latency: Duration) {
        let sample = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        // An update lost to a concurrent one only drops one sample.
        let old = self.micros.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old - old / 8).saturating_add(sample / 8).max(1)
        };
        self.micros.store(new, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Option<Duration> {
        match self.micros.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn candidate() -> Candidate {
        Candidate {
            weight: 1.0,
            in_flight: 0,
            latency: None,
            cost: None,
        }
    }

    fn rng() -> SmallRng {
        SmallRng::seed_from_u64(42)
    }

    #[test]
    fn ordered_keeps_the_configured_order() {
        let candidates = vec![candidate(); 4];
        assert_eq!(
            order(Strategy::Ordered, &candidates, &mut rng()),
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn weighted_picks_first_in_proportion_to_the_weights() {
        let weights = [3.0, 1.0, 1.0, 5.0];
        let candidates: Vec<Candidate> = weights
            .iter()
            .map(|w| Candidate {
                weight: *w,
                ..candidate()
            })
            .collect();
        let mut rng = rng();
        let mut first = [0u32; 4];
        const PICKS: u32 = 10_000;
        for _ in 0..PICKS {
            let order = order(Strategy::Weighted, &candidates, &mut rng);
            let mut seen = order.clone();
            seen.sort_unstable();
            assert_eq!(seen, [0, 1, 2, 3], "every deployment once");
            first[order[0]] += 1;
        }
        let total: f64 = weights.iter().sum();
        for (i, w) in weights.iter().enumerate() {
            let share = f64::from(first[i]) / f64::from(PICKS);
            let expected = w / total;
            assert!(
                (share - expected).abs() <= 0.02,
                "deployment {i}: {share:.3} first, expected {expected:.3}"
            );
        }
    }

    #[test]
    fn weighted_orders_the_rest_by_weight_too() {
        // Without replacement: once the heavy deployment is first, the
        // second place goes 2:1 between the others.
        let candidates: Vec<Candidate> = [100.0, 2.0, 1.0]
            .iter()
            .map(|w| Candidate {
                weight: *w,
                ..candidate()
            })
            .collect();
        let mut rng = rng();
        let mut second = [0u32; 3];
        for _ in 0..10_000 {
            let order = order(Strategy::Weighted, &candidates, &mut rng);
            if order[0] == 0 {
                second[order[1]] += 1;
            }
        }
        let share = f64::from(second[1]) / f64::from(second[1] + second[2]);
        assert!((share - 2.0 / 3.0).abs() <= 0.02, "{share:.3}");
    }

    #[test]
    fn least_busy_goes_by_requests_in_flight_ties_in_configured_order() {
        let candidates: Vec<Candidate> = [3, 1, 0, 1, 0]
            .iter()
            .map(|n| Candidate {
                in_flight: *n,
                ..candidate()
            })
            .collect();
        assert_eq!(
            order(Strategy::LeastBusy, &candidates, &mut rng()),
            [2, 4, 1, 3, 0]
        );
    }

    #[test]
    fn lowest_latency_tries_unmeasured_deployments_first_then_the_fastest() {
        let ms = |n| Some(Duration::from_millis(n));
        let candidates: Vec<Candidate> = [ms(300), ms(40), None, ms(120), None]
            .iter()
            .map(|latency| Candidate {
                latency: *latency,
                ..candidate()
            })
            .collect();
        assert_eq!(
            order(Strategy::LowestLatency, &candidates, &mut rng()),
            [2, 4, 1, 3, 0]
        );
    }

    #[test]
    fn cost_goes_cheapest_first_and_unpriced_last() {
        let candidates: Vec<Candidate> = [None, Some(0.002), Some(0.0001), None, Some(0.002)]
            .iter()
            .map(|cost| Candidate {
                cost: *cost,
                ..candidate()
            })
            .collect();
        assert_eq!(
            order(Strategy::Cost, &candidates, &mut rng()),
            [2, 1, 4, 0, 3]
        );
    }

    #[test]
    fn a_price_costs_the_estimated_tokens() {
        let price = Price {
            input_per_mtok: 0.15,
            output_per_mtok: 0.6,
        };
        let tokens = TokenEstimate {
            input: 1_000_000,
            output: 500_000,
        };
        assert!((price.cost_usd(tokens) - 0.45).abs() < 1e-12);
        let bad = Price {
            input_per_mtok: -1.0,
            ..price
        };
        assert_eq!(bad.validate().unwrap_err().0, "input_per_mtok");
    }

    #[test]
    fn the_estimate_is_the_model_tables_plus_the_output() {
        let chat = Request::parse(
            "llm.chat",
            serde_json::json!({"messages": [{"role": "user", "content": "x".repeat(401)}], "max_tokens": 50}),
        )
        .unwrap();
        assert_eq!(
            TokenEstimate::of(&chat),
            TokenEstimate {
                input: 101 + 4,
                output: 50
            }
        );
        let chat = Request::parse(
            "llm.chat",
            serde_json::json!({"messages": [{"role": "user", "content": "hello"}]}),
        )
        .unwrap();
        assert_eq!(TokenEstimate::of(&chat).output, DEFAULT_OUTPUT_TOKENS);
        let embed = Request::parse(
            "llm.embeddings",
            serde_json::json!({"inputs": ["abcd", "efgh"]}),
        )
        .unwrap();
        assert_eq!(TokenEstimate::of(&embed).total(), 2);
    }

    #[test]
    fn the_latency_average_follows_recent_requests() {
        let average = LatencyAverage::default();
        assert_eq!(average.get(), None);
        average.record(Duration::from_millis(800));
        assert_eq!(average.get(), Some(Duration::from_millis(800)));
        for _ in 0..64 {
            average.record(Duration::from_millis(100));
        }
        let now = average.get().unwrap();
        assert!(now < Duration::from_millis(101), "{now:?}");
    }
}
