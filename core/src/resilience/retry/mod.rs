//! Retry policy building blocks: configuration, full-jitter backoff
//! (`backoff`), the per-failure retry decision (`decision`), the retry budget
//! (`budget`) and idempotency keys (`idempotency`).
//!
//! The retry *loop* lives in the call pipeline; this module only answers the
//! questions the loop asks, and knows nothing about HTTP types:
//!
//! 1. before each original request: [`RetryBudget::deposit`];
//! 2. after a retryable failure (connect error, timeout, 5xx, 408, 429):
//!    take the server hint read by `HttpResponse::retry_after`, then call
//!    [`RetryDecision::decide`];
//! 3. on [`RetryDecision::Retry`]: [`RetryBudget::withdraw`]; if the budget
//!    refuses, end this provider's turn, otherwise wait `after` through the
//!    injected clock and try again;
//! 4. on [`RetryDecision::FailOver`]: mark the provider rate-limited for
//!    `bench_for` and move to the next provider at once;
//! 5. on [`RetryDecision::GiveUp`]: end this provider's turn.
//!
//! `max_attempts` counts the first call, the backoff is full jitter, a
//! parsed `Retry-After` replaces the computed delay, and no retry is
//! scheduled to start at or after the total deadline.

mod backoff;
mod budget;
mod decision;
mod idempotency;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::serde_secs;

pub use backoff::{Backoff, RandomSource};
pub use budget::{RetryBudget, RetryBudgetConfig};
pub use decision::{GiveUpReason, RetryDecision};
pub use idempotency::IdempotencyKey;

/// Retry settings for one provider.
///
/// Durations accept `"500ms"`, `"1.5s"`, `"2m"` or a number of seconds (units
/// from `ns` to `d`). Unknown fields are rejected; in particular `max_retries` is refused because it is
/// ambiguous: use `max_attempts`, which counts the first call
/// (`max_attempts = max_retries + 1`).
///
/// ```
/// use polyrelay::internal::resilience::retry::RetryConfig;
/// use std::time::Duration;
///
/// let config: RetryConfig = toml::from_str(r#"
///     max_attempts = 4
///     initial_delay = "250ms"
///     budget = { enabled = false }
/// "#).unwrap();
/// config.validate().unwrap();
/// assert_eq!(config.initial_delay, Duration::from_millis(250));
/// assert_eq!(config.max_delay, Duration::from_secs(20)); // default kept
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Total attempts, **including the first call** (3 = one call and up to
    /// two retries). At least 1.
    pub max_attempts: u32,
    /// Ceiling of the delay before the first retry.
    #[serde(with = "serde_secs")]
    pub initial_delay: Duration,
    /// Growth factor of the delay ceiling per retry; at least 1.0.
    pub multiplier: f64,
    /// Upper bound of any computed delay.
    #[serde(with = "serde_secs")]
    pub max_delay: Duration,
    /// Whether a server `Retry-After` replaces the computed delay.
    pub respect_retry_after: bool,
    /// A `Retry-After` above this benches the provider instead of waiting.
    #[serde(with = "serde_secs")]
    pub max_retry_after: Duration,
    /// Timeout of one attempt.
    #[serde(with = "serde_secs")]
    pub attempt_timeout: Duration,
    /// Deadline over all attempts, backoff sleeps and fallbacks of a call.
    #[serde(with = "serde_secs")]
    pub total_timeout: Duration,
    /// Retry budget of the provider.
    pub budget: RetryBudgetConfig,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_delay: Duration::from_millis(500),
            multiplier: 2.0,
            max_delay: Duration::from_secs(20),
            respect_retry_after: true,
            max_retry_after: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            budget: RetryBudgetConfig::default(),
        }
    }
}

impl RetryConfig {
    /// Checks the settings, naming the first offending field.
    pub fn validate(&self) -> Result<(), InvalidRetryConfig> {
        let fail = |field, reason| Err(InvalidRetryConfig { field, reason });
        if self.max_attempts < 1 {
            return fail(
                "max_attempts",
                "must be at least 1 (it counts the first call)",
            );
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return fail("multiplier", "must be a finite number of at least 1.0");
        }
        if self.max_delay < self.initial_delay {
            return fail("max_delay", "must be at least initial_delay");
        }
        if self.attempt_timeout.is_zero() {
            return fail("attempt_timeout", "must be greater than zero");
        }
        if self.total_timeout.is_zero() {
            return fail("total_timeout", "must be greater than zero");
        }
        self.budget.validate()
    }
}

/// A [`RetryConfig`] setting is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid retry config: `{field}` {reason}")]
pub struct InvalidRetryConfig {
    /// The offending field, dotted for nested ones (`budget.ttl`).
    pub field: &'static str,
    /// What the field must satisfy.
    pub reason: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    // ---- configuration ----

    #[test]
    fn defaults_match_the_reference() {
        let config = RetryConfig::default();
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.initial_delay, Duration::from_millis(500));
        assert_eq!(config.multiplier, 2.0);
        assert_eq!(config.max_delay, secs(20));
        assert!(config.respect_retry_after);
        assert_eq!(config.max_retry_after, secs(60));
        assert_eq!(config.attempt_timeout, secs(10));
        assert_eq!(config.total_timeout, secs(30));
        assert!(config.budget.enabled);
        assert_eq!(config.budget.ttl, secs(10));
        assert_eq!(config.budget.min_per_sec, 10);
        assert_eq!(config.budget.retry_percent, 0.2);
        assert_eq!(config.validate(), Ok(()));
        // An empty table is the defaults.
        assert_eq!(toml::from_str::<RetryConfig>("").unwrap(), config);
    }

    #[test]
    fn config_reads_duration_strings_and_numbers() {
        let config: RetryConfig = toml::from_str(
            r#"
            max_attempts = 5
            initial_delay = "250ms"
            max_delay = "1.5s"
            max_retry_after = "2m"
            attempt_timeout = 4
            total_timeout = 12.5
            budget = { enabled = false, ttl = "3s" }
            "#,
        )
        .unwrap();
        assert_eq!(config.max_attempts, 5);
        assert_eq!(config.initial_delay, Duration::from_millis(250));
        assert_eq!(config.max_delay, Duration::from_millis(1500));
        assert_eq!(config.max_retry_after, secs(120));
        assert_eq!(config.attempt_timeout, secs(4));
        assert_eq!(config.total_timeout, Duration::from_millis(12_500));
        assert!(!config.budget.enabled);
        assert_eq!(config.budget.ttl, secs(3));
        assert_eq!(config.budget.min_per_sec, 10);
        config.validate().unwrap();

        // Serialization (seconds in a float) round-trips.
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("max_delay = 1.5"), "{text}");
        assert_eq!(toml::from_str::<RetryConfig>(&text).unwrap(), config);
    }

    #[test]
    fn config_rejects_max_retries_pointing_to_max_attempts() {
        let err = toml::from_str::<RetryConfig>("max_retries = 2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_retries"), "{err}");
        assert!(err.contains("max_attempts"), "{err}");
        assert!(toml::from_str::<RetryConfig>("budget = { percent = 0.1 }").is_err());
        assert!(toml::from_str::<RetryConfig>(r#"initial_delay = "-5s""#).is_err());
        assert!(toml::from_str::<RetryConfig>("initial_delay = -5").is_err());
    }

    #[test]
    fn validate_names_the_offending_field() {
        let field = |edit: fn(&mut RetryConfig)| {
            let mut config = RetryConfig::default();
            edit(&mut config);
            config.validate().unwrap_err().field
        };
        assert_eq!(field(|c| c.max_attempts = 0), "max_attempts");
        assert_eq!(field(|c| c.multiplier = 0.5), "multiplier");
        assert_eq!(field(|c| c.multiplier = f64::NAN), "multiplier");
        assert_eq!(
            field(|c| c.max_delay = Duration::from_millis(100)),
            "max_delay"
        );
        assert_eq!(
            field(|c| c.attempt_timeout = Duration::ZERO),
            "attempt_timeout"
        );
        assert_eq!(field(|c| c.total_timeout = Duration::ZERO), "total_timeout");
        assert_eq!(
            field(|c| c.budget.ttl = Duration::from_millis(500)),
            "budget.ttl"
        );
        assert_eq!(field(|c| c.budget.ttl = secs(61)), "budget.ttl");
        assert_eq!(
            field(|c| c.budget.retry_percent = -0.1),
            "budget.retry_percent"
        );
        assert_eq!(
            field(|c| c.budget.retry_percent = 1000.5),
            "budget.retry_percent"
        );

        let mut config = RetryConfig {
            max_attempts: 0,
            ..RetryConfig::default()
        };
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("`max_attempts`"), "{message}");
        config.max_attempts = 1;
        assert_eq!(config.validate(), Ok(()));
    }
}
