//! What follows one retryable failure: retry after a wait, give up on this
//! provider, or fail over at once when the server asks for too long a wait.

use std::time::Duration;

use super::{Backoff, RetryConfig};

/// What to do after an attempt failed with a retryable outcome.
///
/// The pipeline classifies the outcome first (never retry a 4xx other than
/// 408/429, nor a non-idempotent request whose body was sent without an
/// [`IdempotencyKey`](super::IdempotencyKey)); this type decides the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Retry this provider after waiting `after` (server hint or jittered
    /// backoff).
    Retry {
        /// How long to wait before the next attempt.
        after: Duration,
    },
    /// Stop retrying this provider.
    GiveUp(GiveUpReason),
    /// The server asked for a wait above `max_retry_after`: do not retry this
    /// provider; treat it as rate-limited for `bench_for` (add it to the
    /// current time with `saturating_add`) and move to the next provider now.
    FailOver {
        /// How long later calls should skip this provider.
        bench_for: Duration,
    },
}

/// Why [`RetryDecision::GiveUp`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The attempt that failed was attempt number `max_attempts`.
    AttemptsExhausted,
    /// The wait would end at or after the total deadline, so the retry could
    /// not start in time. Time may still remain for another provider.
    DeadlineTooClose,
}

impl RetryDecision {
    /// Decides after attempt `attempt` (1-based: the one that just failed).
    ///
    /// * `retry_after`: the parsed server hint, if any; when
    ///   `respect_retry_after` is on it **replaces** the backoff, and a value
    ///   above `max_retry_after` gives [`RetryDecision::FailOver`] (even on the
    ///   last attempt, so the provider still gets benched);
    /// * `remaining`: time left before the total deadline; a retry is only
    ///   scheduled if its wait ends strictly before it.
    ///
    /// ```
    /// use polyrelay::internal::resilience::retry::{Backoff, GiveUpReason, RetryConfig, RetryDecision};
    /// use std::time::Duration;
    ///
    /// let config = RetryConfig::default();
    /// let backoff = Backoff::with_seed(&config, 7);
    /// let left = Duration::from_secs(25);
    /// assert_eq!(
    ///     RetryDecision::decide(&config, &backoff, 1, Some(Duration::from_secs(3)), left),
    ///     RetryDecision::Retry { after: Duration::from_secs(3) },
    /// );
    /// assert_eq!(
    ///     RetryDecision::decide(&config, &backoff, 3, None, left),
    ///     RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted),
    /// );
    /// ```
    pub fn decide(
        config: &RetryConfig,
        backoff: &Backoff,
        attempt: u32,
        retry_after: Option<Duration>,
        remaining: Duration,
    ) -> Self {
        let server_delay = retry_after.filter(|_| config.respect_retry_after);
        if let Some(delay) = server_delay.filter(|delay| *delay > config.max_retry_after) {
            return Self::FailOver { bench_for: delay };
        }
        if attempt >= config.max_attempts {
            return Self::GiveUp(GiveUpReason::AttemptsExhausted);
        }
        let after = match server_delay {
            Some(_) if backoff.skips_waits() => Duration::ZERO,
            Some(delay) => delay,
            None => backoff.delay(attempt.max(1)),
        };
        if after >= remaining {
            return Self::GiveUp(GiveUpReason::DeadlineTooClose);
        }
        Self::Retry { after }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::provider::retry_after::parse_retry_after;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    // ---- decisions ----

    #[test]
    fn max_attempts_counts_the_first_call() {
        let config = RetryConfig::default();
        let backoff = Backoff::with_seed(&config, 14);
        // A loop against an upstream that always fails retryably.
        let mut calls = 0;
        let decision = loop {
            calls += 1;
            match RetryDecision::decide(&config, &backoff, calls, None, secs(30)) {
                RetryDecision::Retry { .. } => continue,
                other => break other,
            }
        };
        assert_eq!(calls, 3);
        assert_eq!(
            decision,
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );

        let once = RetryConfig {
            max_attempts: 1,
            ..RetryConfig::default()
        };
        assert_eq!(
            RetryDecision::decide(&once, &backoff, 1, None, secs(30)),
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
    }

    #[test]
    fn retry_after_above_the_cap_fails_over() {
        let config = RetryConfig::default();
        let backoff = Backoff::with_seed(&config, 18);
        let hint = parse_retry_after("3600", at("2015-10-21T07:27:30Z"));
        let left = secs(30);
        for attempt in 1..=3 {
            assert_eq!(
                RetryDecision::decide(&config, &backoff, attempt, hint, left),
                RetryDecision::FailOver {
                    bench_for: secs(3600)
                },
                "attempt {attempt}"
            );
        }
        // Exactly at the cap the server's wait is honoured.
        assert_eq!(
            RetryDecision::decide(&config, &backoff, 1, Some(secs(60)), secs(120)),
            RetryDecision::Retry { after: secs(60) }
        );
    }

    #[test]
    fn no_retry_is_scheduled_at_or_after_the_deadline() {
        let config = RetryConfig::default();
        let backoff = Backoff::with_seed(&config, 20);
        let decide = |hint, left| RetryDecision::decide(&config, &backoff, 1, hint, left);
        let too_close = RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose);
        assert_eq!(decide(Some(secs(3)), secs(3)), too_close);
        assert_eq!(
            decide(Some(secs(3)), Duration::from_millis(2_999)),
            too_close
        );
        assert_eq!(
            decide(Some(secs(3)), Duration::from_millis(3_001)),
            RetryDecision::Retry { after: secs(3) }
        );
        assert_eq!(decide(None, Duration::ZERO), too_close);

        // Jittered delays in [0, 0.5 s] against 0.25 s left: both outcomes
        // occur, and every scheduled retry starts before the deadline.
        let left = Duration::from_millis(250);
        let (mut retries, mut give_ups) = (0, 0);
        for _ in 0..1_000 {
            match decide(None, left) {
                RetryDecision::Retry { after } => {
                    assert!(after < left);
                    retries += 1;
                }
                decision => {
                    assert_eq!(decision, too_close);
                    give_ups += 1;
                }
            }
        }
        assert!(retries > 0 && give_ups > 0, "{retries} / {give_ups}");
    }
}
