//! Full-jitter exponential backoff and the shared random source it draws from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::RetryConfig;

/// A seedable source of random numbers that many threads can share.
///
/// Every call to [`RandomSource::rng`] returns a fresh small RNG seeded from
/// the source's seed and an atomic draw counter. This is lock-free (one
/// `fetch_add` and a few multiplications per call), so concurrent retries never
/// queue on a mutex, and with a fixed seed the n-th draw is the same whichever
/// thread makes it, which keeps seeded tests reproducible.
#[derive(Debug)]
pub struct RandomSource {
    seed: u64,
    draws: AtomicU64,
}

impl RandomSource {
    /// A source seeded from the operating system's entropy (production).
    pub fn from_entropy() -> Self {
        Self::with_seed(rand::random())
    }

    /// A reproducible source (tests, simulations).
    pub fn with_seed(seed: u64) -> Self {
        Self {
            seed,
            draws: AtomicU64::new(0),
        }
    }

    /// An independent RNG for one draw or one call.
    pub fn rng(&self) -> SmallRng {
        // An odd multiplier spreads consecutive draw numbers over the seed
        // space; `seed_from_u64` then mixes them with SplitMix64.
        let draw = self.draws.fetch_add(1, Ordering::Relaxed);
        SmallRng::seed_from_u64(self.seed ^ draw.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

/// Full-jitter exponential backoff (AWS, gRPC A6): the delay before retry `k`
/// (k ≥ 1) is uniform in `[0, min(max_delay, initial_delay · multiplier^(k−1))]`.
///
/// Shareable across threads (`&self` everywhere, no lock; see
/// [`RandomSource`]).
///
/// ```
/// use polyrelay::internal::resilience::retry::{Backoff, RetryConfig};
/// use std::time::Duration;
///
/// let backoff = Backoff::with_seed(&RetryConfig::default(), 42);
/// assert_eq!(backoff.ceiling(3), Duration::from_secs(2));
/// assert!(backoff.delay(3) <= Duration::from_secs(2));
/// assert_eq!(backoff.ceiling(1_000), Duration::from_secs(20)); // capped, no overflow
/// ```
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    multiplier: f64,
    max: Duration,
    random: RandomSource,
    skip_waits: bool,
}

impl Backoff {
    /// Backoff for `config`, randomised from OS entropy.
    pub fn new(config: &RetryConfig) -> Self {
        Self::with_random(config, RandomSource::from_entropy())
    }

    /// Backoff for `config` with a reproducible jitter sequence.
    pub fn with_seed(config: &RetryConfig, seed: u64) -> Self {
        Self::with_random(config, RandomSource::with_seed(seed))
    }

    /// Testing mode: every wait is zero, including a server `Retry-After`
    /// (as stamina's testing mode). Decisions are otherwise unchanged.
    pub fn no_waits() -> Self {
        Self {
            initial: Duration::ZERO,
            multiplier: 1.0,
            max: Duration::ZERO,
            random: RandomSource::with_seed(0),
            skip_waits: true,
        }
    }

    fn with_random(config: &RetryConfig, random: RandomSource) -> Self {
        Self {
            initial: config.initial_delay,
            multiplier: config.multiplier,
            max: config.max_delay,
            random,
            skip_waits: false,
        }
    }

    /// The upper bound of the delay before retry `retry` (1-based; 0 is read
    /// as 1): `min(max_delay, initial_delay · multiplier^(retry−1))`. Saturates
    /// at `max_delay` instead of overflowing.
    pub fn ceiling(&self, retry: u32) -> Duration {
        if self.initial.is_zero() {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        Duration::try_from_secs_f64(secs).map_or(self.max, |delay| delay.min(self.max))
    }

    /// A random delay before retry `retry`, uniform in `[0, ceiling(retry)]`.
    pub fn delay(&self, retry: u32) -> Duration {
        if self.skip_waits {
            return Duration::ZERO;
        }
        let ceiling = u64::try_from(self.ceiling(retry).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.random.rng().random_range(0..=ceiling))
    }

    /// Whether this is the [`Backoff::no_waits`] testing mode.
    pub fn skips_waits(&self) -> bool {
        self.skip_waits
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::resilience::retry::{GiveUpReason, RetryDecision};

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    // ---- backoff ----

    #[test]
    fn full_jitter_stays_within_the_capped_exponential_bound() {
        let backoff = Backoff::with_seed(&RetryConfig::default(), 15);
        for retry in 1..=12u32 {
            let bound = (0.5 * 2f64.powi(retry as i32 - 1)).min(20.0);
            assert_eq!(backoff.ceiling(retry).as_secs_f64(), bound);
            let mut largest = Duration::ZERO;
            for _ in 0..1_000 {
                let delay = backoff.delay(retry);
                assert!(delay.as_secs_f64() <= bound, "retry {retry}: {delay:?}");
                largest = largest.max(delay);
            }
            // Jitter spans the whole range rather than sitting at the bound.
            assert!(largest.as_secs_f64() > 0.9 * bound, "retry {retry}");
        }
    }

    #[test]
    fn full_jitter_mean_at_retry_3() {
        let backoff = Backoff::with_seed(&RetryConfig::default(), 15);
        let samples: Vec<f64> = (0..10_000)
            .map(|_| backoff.delay(3).as_secs_f64())
            .collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let max = samples.iter().cloned().fold(0.0, f64::max);
        assert!((mean - 1.0).abs() <= 0.05, "mean {mean}");
        assert!(max <= 2.0, "max {max}");
    }

    #[test]
    fn backoff_never_overflows_for_large_retries() {
        let backoff = Backoff::with_seed(&RetryConfig::default(), 1);
        for retry in [0, 1, 40, 64, 1_100, u32::MAX] {
            assert!(backoff.ceiling(retry) <= secs(20));
            assert!(backoff.delay(retry) <= secs(20));
        }
        assert_eq!(backoff.ceiling(0), Duration::from_millis(500));
        assert_eq!(backoff.ceiling(u32::MAX), secs(20));
        let zero_initial = RetryConfig {
            initial_delay: Duration::ZERO,
            ..RetryConfig::default()
        };
        assert_eq!(
            Backoff::with_seed(&zero_initial, 1).ceiling(u32::MAX),
            Duration::ZERO
        );
    }

    #[test]
    fn seeded_backoff_is_reproducible() {
        let config = RetryConfig::default();
        let sequence = |seed| {
            let backoff = Backoff::with_seed(&config, seed);
            (1..=20)
                .map(|k| backoff.delay(k % 6 + 1))
                .collect::<Vec<_>>()
        };
        assert_eq!(sequence(9), sequence(9));
        assert_ne!(sequence(9), sequence(10));
    }

    #[test]
    fn backoff_is_shareable_across_threads() {
        let backoff = Arc::new(Backoff::with_seed(&RetryConfig::default(), 3));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let backoff = Arc::clone(&backoff);
                std::thread::spawn(move || {
                    (0..1_000).all(|_| backoff.delay(2) <= Duration::from_secs(1))
                })
            })
            .collect();
        for handle in handles {
            assert!(handle.join().unwrap());
        }
    }

    #[test]
    fn no_waits_mode_zeroes_every_wait_but_keeps_decisions() {
        let config = RetryConfig::default();
        let backoff = Backoff::no_waits();
        assert!((1..=10).all(|k| backoff.delay(k) == Duration::ZERO));
        let left = secs(30);
        let decide = |attempt, hint| RetryDecision::decide(&config, &backoff, attempt, hint, left);
        assert_eq!(
            decide(1, Some(secs(3))),
            RetryDecision::Retry {
                after: Duration::ZERO
            }
        );
        assert_eq!(
            decide(2, None),
            RetryDecision::Retry {
                after: Duration::ZERO
            }
        );
        assert_eq!(
            decide(3, None),
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
        assert_eq!(
            decide(1, Some(secs(3600))),
            RetryDecision::FailOver {
                bench_for: secs(3600)
            }
        );
    }
}
