//! Local request-rate limiting: GCRA through `governor`, driven by the injected
//! clock.
//!
//! A provider's limit is written as a [`Rate`] (`requests` per `period`) plus
//! a `burst`. The [`RateLimiter`] admits a request when the GCRA says it
//! conforms, and otherwise says how long to wait, so the fallback chain can
//! skip the provider without spending a request on it.
//!
//! ```
//! use polyrelay::clock::FakeClock;
//! use polyrelay::internal::resilience::rate_limit::{RateDecision, RateLimitConfig, RateLimiter};
//! use std::time::Duration;
//!
//! let config = RateLimitConfig { rate: "2/s".parse().unwrap(), burst: None };
//! let clock = FakeClock::at_epoch();
//! let limiter = RateLimiter::new(&config, clock.shared()).unwrap();
//! assert_eq!(limiter.check(1), RateDecision::Allowed { remaining: Some(1) });
//! assert_eq!(limiter.check(1), RateDecision::Allowed { remaining: Some(0) });
//! assert_eq!(
//!     limiter.check(1),
//!     RateDecision::Limited { retry_after: Duration::from_millis(500) }
//! );
//! ```

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{InsufficientCapacity, Quota};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::clock::SharedClock;
use crate::echo::echo;

/// A rate limit as written in the configuration: a rate and an optional burst.
///
/// ```toml
/// [rate_limit]
/// rate = "600/min"   # or "10/s", "5000/h", "1/5s", or { requests = 10, per = "1s" }
/// burst = 20         # optional; defaults to the rate's `requests`
/// ```
///
/// Whether a provider has a rate limit at all is the caller's choice: store an
/// `Option<RateLimitConfig>`, where `None` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// The sustained rate. Required: there is no sensible default rate.
    pub rate: Rate,
    /// How many requests may go out back to back after an idle period.
    /// `None` means `rate.requests`.
    #[serde(default)]
    pub burst: Option<u32>,
}

impl RateLimitConfig {
    /// Checks the values, naming the offending field in the error.
    pub fn validate(&self) -> Result<(), InvalidRateLimit> {
        self.quota().map(drop)
    }

    /// The burst in effect: `burst`, or `rate.requests` when unset.
    pub fn effective_burst(&self) -> u32 {
        self.burst.unwrap_or(self.rate.requests)
    }

    /// The governor quota: one cell every `per / requests`, `burst` cells deep.
    fn quota(&self) -> Result<Quota, InvalidRateLimit> {
        let invalid = |field, reason: &str| InvalidRateLimit {
            field,
            reason: reason.to_owned(),
        };
        if self.rate.requests == 0 {
            return Err(invalid("rate", "requests must be at least 1"));
        }
        // Round the emission interval up, so the limiter never runs faster
        // than the provider's rate.
        let interval = self
            .rate
            .per
            .as_nanos()
            .div_ceil(u128::from(self.rate.requests));
        let interval = Duration::from_nanos(u64::try_from(interval).unwrap_or(u64::MAX));
        let Some(quota) = Quota::with_period(interval) else {
            return Err(invalid("rate", "the period must be longer than zero"));
        };
        let burst = NonZeroU32::new(self.effective_burst())
            .ok_or_else(|| invalid("burst", "must be at least 1"))?;
        Ok(quota.allow_burst(burst))
    }
}

/// A rate limit configuration that cannot be used, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rate limit `{field}`: {reason}")]
pub struct InvalidRateLimit {
    /// The configuration field at fault (`rate` or `burst`).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// `requests` per `per`, e.g. 10 per second.
///
/// Parsed from `"<requests>/<period>"`, where the period is an optional whole
/// number and a unit: `ms`, `s`, `min` (or `m`), `h`, `d`, or their long forms
/// (`sec`, `second(s)`, `minute(s)`, `hour(s)`, `day(s)`). Examples: `"10/s"`,
/// `"600/min"`, `"5000/h"`, `"1/5s"`. In a configuration file it may also be a
/// table `{ requests = 10, per = "1s" }`.
///
/// ```
/// use polyrelay::internal::resilience::rate_limit::Rate;
/// use std::time::Duration;
///
/// let rate: Rate = "1/5s".parse().unwrap();
/// assert_eq!(rate, Rate { requests: 1, per: Duration::from_secs(5) });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many requests are allowed per period.
    pub requests: u32,
    /// The period.
    pub per: Duration,
}

/// A rate or period string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rate {}: {reason}", echo(.input))]
pub struct InvalidRate {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for Rate {
    type Err = InvalidRate;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidRate {
            input: input.to_owned(),
            reason,
        };
        let (requests, per) = input
            .split_once('/')
            .ok_or_else(|| invalid("expected `<requests>/<period>`, e.g. `10/s`"))?;
        let requests = requests
            .trim()
            .parse()
            .map_err(|_| invalid("requests must be a whole number below 2^32"))?;
        let per = parse_period(per).map_err(invalid)?;
        Ok(Rate { requests, per })
    }
}

/// Parses `[<count>]<unit>`, e.g. `s`, `5s`, `10 min`.
fn parse_period(text: &str) -> Result<Duration, &'static str> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (count, unit) = text.split_at(digits);
    let count: u32 = if count.is_empty() {
        1
    } else {
        count
            .parse()
            .map_err(|_| "the period count must be a whole number below 2^32")?
    };
    let unit = match unit.trim() {
        "ms" => Duration::from_millis(1),
        "s" | "sec" | "second" | "seconds" => Duration::from_secs(1),
        "m" | "min" | "minute" | "minutes" => Duration::from_secs(60),
        "h" | "hour" | "hours" => Duration::from_secs(3_600),
        "d" | "day" | "days" => Duration::from_secs(86_400),
        _ => return Err("the period unit must be one of ms, s, min, h, d"),
    };
    unit.checked_mul(count).ok_or("the period is too long")
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RateVisitor;

        /// The table form of a rate.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RateTable {
            requests: u32,
            per: String,
        }

        impl<'de> Visitor<'de> for RateVisitor {
            type Value = Rate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a rate such as "10/s" or { requests = 10, per = "1s" }"#)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Rate, E> {
                text.parse().map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Rate, A::Error> {
                let table = RateTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let per = parse_period(&table.per).map_err(|reason| {
                    de::Error::custom(format_args!("invalid `per` {}: {reason}", echo(&table.per)))
                })?;
                Ok(Rate {
                    requests: table.requests,
                    per,
                })
            }
        }

        deserializer.deserialize_any(RateVisitor)
    }
}

/// The outcome of [`RateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// The request may go out now; its cost has been taken.
    Allowed {
        /// Requests of cost 1 that could still go out at once; `None` when
        /// not known (a zero-cost check).
        remaining: Option<u32>,
    },
    /// Not now: the same check would succeed after `retry_after`. Nothing was
    /// taken.
    Limited {
        /// How long until the request conforms.
        retry_after: Duration,
    },
    /// The cost is larger than the burst, so it can never be admitted.
    InsufficientCapacity {
        /// The limiter's burst.
        burst: u32,
    },
}

/// governor's view of our injected clock: monotonic time as a [`Duration`],
/// which governor already knows as a `clock::Reference`.
#[derive(Debug, Clone)]
struct GovernorClock(SharedClock);

impl governor::clock::Clock for GovernorClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.now()
    }
}

/// A process-local GCRA rate limiter (governor's direct limiter: one atomic,
/// lock-free, safe to share between threads).
///
/// `check` never waits: it admits or says how long to wait, and a rejected
/// check takes nothing.
#[derive(Debug)]
pub struct RateLimiter {
    limiter:
        governor::RateLimiter<NotKeyed, InMemoryState, GovernorClock, StateInformationMiddleware>,
}

impl RateLimiter {
    /// A limiter for `config`, starting with a full burst, reading time from
    /// `clock`.
    pub fn new(config: &RateLimitConfig, clock: SharedClock) -> Result<Self, InvalidRateLimit> {
        let limiter =
            governor::RateLimiter::direct_with_clock(config.quota()?, GovernorClock(clock))
                .with_middleware::<StateInformationMiddleware>();
        Ok(Self { limiter })
    }

    /// Takes `cost` units if they conform now; otherwise takes nothing.
    ///
    /// A cost of 0 is always allowed and takes nothing.
    pub fn check(&self, cost: u32) -> RateDecision {
        let Some(cost) = NonZeroU32::new(cost) else {
            return RateDecision::Allowed { remaining: None };
        };
        match self.limiter.check_n(cost) {
            Ok(Ok(state)) => RateDecision::Allowed {
                remaining: Some(state.remaining_burst_capacity()),
            },
            Ok(Err(not_until)) => RateDecision::Limited {
                retry_after: not_until.wait_time_from(self.limiter.clock().0.now()),
            },
            Err(InsufficientCapacity(burst)) => RateDecision::InsufficientCapacity { burst },
        }
    }
}

/// A tokens-per-minute limit: GCRA where a request weighs its tokens,
/// charged from an estimate before it is sent and settled afterwards with
/// the tokens its reply reports.
///
/// Its own small GCRA rather than governor's: settling must be able to
/// charge past the burst (a reply that used more than its estimate puts the
/// limit in debt, and later calls wait it off) and to credit back what an
/// estimate overcharged, where governor can only admit or refuse.
#[derive(Debug)]
pub(crate) struct TokenRate {
    /// Time one token takes to come back, in nanoseconds.
    per_token: u64,
    /// A minute: the most tokens' worth of time that may be ahead of now.
    window: u64,
    /// GCRA's theoretical arrival time, monotonic nanoseconds.
    tat: std::sync::atomic::AtomicU64,
    clock: SharedClock,
}

impl TokenRate {
    /// A limit of `tpm` tokens per minute (at least 1), starting full.
    pub(crate) fn new(tpm: u64, clock: SharedClock) -> Self {
        const MINUTE: u64 = 60_000_000_000;
        let per_token = (MINUTE / tpm.max(1)).max(1);
        Self {
            per_token,
            window: per_token.saturating_mul(tpm.max(1)),
            tat: std::sync::atomic::AtomicU64::new(0),
            clock,
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.clock.now().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Takes `tokens` if they fit in the last minute's budget now;
    /// otherwise takes nothing and says when they would.
    pub(crate) fn check(&self, tokens: u64) -> RateDecision {
        let cost = tokens.saturating_mul(self.per_token);
        if cost > self.window {
            let burst = u32::try_from(self.window / self.per_token).unwrap_or(u32::MAX);
            return RateDecision::InsufficientCapacity { burst };
        }
        let now = self.now();
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let new_tat = tat.max(now).saturating_add(cost);
            let ahead = new_tat - now;
            if ahead > self.window {
                return RateDecision::Limited {
                    retry_after: Duration::from_nanos(ahead - self.window),
                };
            }
            match self
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return RateDecision::Allowed { remaining: None },
                Err(current) => tat = current,
            }
        }
    }

    /// Settles a request charged `estimated` tokens that used `used`:
    /// charges the difference, or credits it back (never to more than a
    /// full minute's budget).
    pub(crate) fn settle(&self, estimated: u64, used: u64) {
        let now = self.now();
        let more = used
            .saturating_sub(estimated)
            .saturating_mul(self.per_token);
        let less = estimated
            .saturating_sub(used)
            .saturating_mul(self.per_token);
        let _ = self
            .tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                let tat = tat.max(now);
                Some(tat.saturating_add(more).saturating_sub(less).max(now))
            });
    }
}

/// A fair line for one limiter's slots: calls that wait for a slot take
/// them in the order they started waiting, and a call that did not wait
/// does not jump the line while anyone is in it.
///
/// Without it, a call woken at its slot loses it, again and again, to calls
/// that just arrived: under demand above the limit some calls starved for
/// the whole of their deadline in the chaos soak while the others went
/// through. tokio's mutex hands its lock out in FIFO order, which is the
/// line.
#[derive(Debug, Default)]
pub(crate) struct SlotLine {
    turn: tokio::sync::Mutex<()>,
    /// Calls in the line, the one at its head included.
    waiting: AtomicUsize,
}

/// A call's place at the head of a [`SlotLine`]; dropping it lets the next
/// call in line go.
#[derive(Debug)]
pub(crate) struct FirstInLine<'a> {
    _turn: tokio::sync::MutexGuard<'a, ()>,
    _counted: InLine<'a>,
}

/// Counts a call in the line for as long as it is in it, whether it leaves
/// at the head or gives up waiting (its future dropped).
#[derive(Debug)]
struct InLine<'a>(&'a SlotLine);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SlotLine {
    /// Calls in the line: when not zero, a call that has not waited must
    /// join it rather than take a slot.
    pub(crate) fn len(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Joins the line and completes once this call is at its head.
    pub(crate) async fn first_in_line(&self) -> FirstInLine<'_> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let counted = InLine(self);
        FirstInLine {
            _turn: self.turn.lock().await,
            _counted: counted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    fn limiter(rate: &str, burst: Option<u32>) -> (FakeClock, RateLimiter) {
        let clock = FakeClock::at_epoch();
        let config = RateLimitConfig {
            rate: rate.parse().unwrap(),
            burst,
        };
        let limiter = RateLimiter::new(&config, clock.shared()).unwrap();
        (clock, limiter)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn allowed(decision: RateDecision) -> bool {
        matches!(decision, RateDecision::Allowed { .. })
    }

    #[test]
    fn parses_rate_strings() {
        let cases = [
            ("10/s", 10, Duration::from_secs(1)),
            ("600/min", 600, Duration::from_secs(60)),
            ("5000/h", 5000, Duration::from_secs(3600)),
            ("1/5s", 1, Duration::from_secs(5)),
            ("3 / 10 minutes", 3, Duration::from_secs(600)),
            ("100/d", 100, Duration::from_secs(86_400)),
            ("7/250ms", 7, ms(250)),
        ];
        for (text, requests, per) in cases {
            assert_eq!(text.parse::<Rate>(), Ok(Rate { requests, per }), "{text}");
        }
        for bad in ["10", "x/s", "10/", "10/fortnight", "-1/s", "1/99999999999s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn deserializes_string_and_table_forms() {
        let config: RateLimitConfig = toml::from_str(r#"rate = "600/min""#).unwrap();
        assert_eq!(config.effective_burst(), 600);
        let config: RateLimitConfig =
            toml::from_str(r#"rate = { requests = 10, per = "1s" }"#).unwrap();
        assert_eq!(config.rate, "10/s".parse().unwrap());
        let config: RateLimitConfig = toml::from_str("rate = \"1/5s\"\nburst = 3").unwrap();
        assert_eq!(config.burst, Some(3));

        let unknown = toml::from_str::<RateLimitConfig>("rate = \"1/s\"\nburst_size = 3");
        assert!(unknown.unwrap_err().to_string().contains("burst_size"));
        let bad_unit = toml::from_str::<RateLimitConfig>(r#"rate = "1/week""#);
        assert!(bad_unit.unwrap_err().to_string().contains("1/week"));
        let bad_per = toml::from_str::<RateLimitConfig>(r#"rate = { requests = 1, per = "x" }"#);
        assert!(bad_per.unwrap_err().to_string().contains("per"));
        assert!(toml::from_str::<RateLimitConfig>("burst = 3").is_err());
    }

    #[test]
    fn validate_names_the_field() {
        let config = |rate: &str, burst| RateLimitConfig {
            rate: rate.parse().unwrap(),
            burst,
        };
        assert_eq!(config("0/s", None).validate().unwrap_err().field, "rate");
        assert_eq!(config("1/0s", None).validate().unwrap_err().field, "rate");
        assert_eq!(config("2/1ms", None).validate(), Ok(()));
        assert_eq!(
            config("5/s", Some(0)).validate().unwrap_err().field,
            "burst"
        );
        assert!(RateLimiter::new(&config("5/s", Some(0)), FakeClock::at_epoch().shared()).is_err());
    }

    /// First vector (governor `rejects_too_many`).
    #[test]
    fn per_second_2_vector() {
        let (clock, limiter) = limiter("2/s", None);
        assert!(allowed(limiter.check(1)), "0 ms");
        clock.set(ms(1));
        assert!(allowed(limiter.check(1)), "1 ms");
        clock.set(ms(2));
        assert_eq!(
            limiter.check(1),
            RateDecision::Limited {
                retry_after: ms(498)
            }
        );
        clock.set(ms(1002));
        assert!(allowed(limiter.check(1)), "1002 ms");
        clock.set(ms(1003));
        assert!(allowed(limiter.check(1)), "1003 ms");
        clock.set(ms(1004));
        assert!(!allowed(limiter.check(1)), "1004 ms");
    }

    /// The cell rejected at 2 ms is back at 500 ms, not 1 s.
    #[test]
    fn per_second_2_allows_again_at_500_ms() {
        let (clock, limiter) = limiter("2/s", None);
        assert!(allowed(limiter.check(1)));
        clock.set(ms(1));
        assert!(allowed(limiter.check(1)));
        clock.set(ms(2));
        assert!(!allowed(limiter.check(1)));
        clock.set(ms(499));
        assert_eq!(
            limiter.check(1),
            RateDecision::Limited { retry_after: ms(1) }
        );
        clock.set(ms(500));
        assert_eq!(
            limiter.check(1),
            RateDecision::Allowed { remaining: Some(0) }
        );
    }

    /// Second vector (governor issues #107 and #249).
    #[test]
    fn per_second_5_after_idle_allows_exactly_5() {
        let (clock, limiter) = limiter("5/s", None);
        for _ in 0..5 {
            assert!(allowed(limiter.check(1)));
        }
        assert!(!allowed(limiter.check(1)));
        clock.advance(Duration::from_secs(2));
        for expected_remaining in (0..5).rev() {
            assert_eq!(
                limiter.check(1),
                RateDecision::Allowed {
                    remaining: Some(expected_remaining)
                }
            );
        }
        assert!(!allowed(limiter.check(1)));
    }

    /// Third vector (governor `all_capacity_check_rejects_excess`).
    #[test]
    fn cost_above_burst_is_never_admitted() {
        let (clock, limiter) = limiter("5/s", None);
        for cost in [15, 7, 6] {
            assert_eq!(
                limiter.check(cost),
                RateDecision::InsufficientCapacity { burst: 5 }
            );
        }
        clock.advance(Duration::from_secs(3600));
        assert_eq!(
            limiter.check(6),
            RateDecision::InsufficientCapacity { burst: 5 }
        );
        assert_eq!(
            limiter.check(5),
            RateDecision::Allowed { remaining: Some(0) }
        );
    }

    #[test]
    fn burst_overrides_requests_and_cost_is_weighted() {
        let (clock, limiter) = limiter("1/s", Some(3));
        assert_eq!(
            limiter.check(2),
            RateDecision::Allowed { remaining: Some(1) }
        );
        assert_eq!(
            limiter.check(2),
            RateDecision::Limited {
                retry_after: Duration::from_secs(1)
            }
        );
        assert_eq!(limiter.check(0), RateDecision::Allowed { remaining: None });
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            limiter.check(2),
            RateDecision::Allowed { remaining: Some(0) }
        );
    }

    #[test]
    fn uneven_rates_never_run_faster_than_configured() {
        let (clock, limiter) = limiter("3/s", Some(1));
        assert!(allowed(limiter.check(1)));
        assert_eq!(
            limiter.check(1),
            RateDecision::Limited {
                retry_after: Duration::from_nanos(333_333_334)
            }
        );
        clock.advance(Duration::from_nanos(333_333_333));
        assert!(!allowed(limiter.check(1)));
    }

    /// governor `correct_wait_time`: advancing by `retry_after` always admits.
    #[test]
    fn waiting_retry_after_always_admits() {
        let (clock, limiter) = limiter("5/s", None);
        let mut admitted = 0;
        for _ in 0..20 {
            clock.advance(ms(1));
            match limiter.check(1) {
                RateDecision::Allowed { .. } => admitted += 1,
                RateDecision::Limited { retry_after } => {
                    assert!(retry_after > Duration::ZERO);
                    clock.advance(retry_after);
                    assert!(allowed(limiter.check(1)));
                    admitted += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(admitted, 20);
    }

    /// governor `actual_threadsafety`: with time frozen, concurrent checks never
    /// admit more than the burst.
    #[test]
    fn concurrent_admissions_never_exceed_burst() {
        let (clock, limiter) = limiter("20/s", None);
        let admitted = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        if allowed(limiter.check(1)) {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.into_inner(), 20);
        clock.advance(ms(49));
        assert!(!allowed(limiter.check(1)));
        clock.advance(ms(1));
        assert!(allowed(limiter.check(1)));
    }

    #[tokio::test]
    async fn the_slot_line_serves_calls_in_the_order_they_joined() {
        use std::sync::Arc;

        let line = Arc::new(SlotLine::default());
        let head = line.first_in_line().await;
        assert_eq!(line.len(), 1);
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let mut calls = Vec::new();
        for n in 0..5 {
            let (in_line, order) = (Arc::clone(&line), Arc::clone(&order));
            calls.push(tokio::spawn(async move {
                let _place = in_line.first_in_line().await;
                order.lock().push(n);
            }));
            // Each call is in the line before the next joins.
            while line.len() < n + 2 {
                tokio::task::yield_now().await;
            }
        }
        // A call that gives up waiting leaves the line.
        let gave_up = tokio::time::timeout(Duration::from_millis(1), line.first_in_line()).await;
        assert!(gave_up.is_err());
        assert_eq!(line.len(), 6);
        drop(head);
        for call in calls {
            call.await.unwrap();
        }
        assert_eq!(*order.lock(), vec![0, 1, 2, 3, 4]);
        assert_eq!(line.len(), 0);
    }

    #[test]
    fn a_token_rate_weighs_requests_by_their_tokens() {
        let clock = FakeClock::at_epoch();
        let tpm = TokenRate::new(6_000, clock.shared());
        // A minute's budget at once, then a token per 10 ms.
        assert!(allowed(tpm.check(5_000)));
        assert!(allowed(tpm.check(1_000)));
        assert_eq!(
            tpm.check(100),
            RateDecision::Limited {
                retry_after: ms(1_000)
            }
        );
        clock.set(ms(1_000));
        assert!(allowed(tpm.check(100)));
        assert_eq!(
            tpm.check(6_001),
            RateDecision::InsufficientCapacity { burst: 6_000 }
        );
    }

    #[test]
    fn a_token_rate_settles_with_the_tokens_used() {
        let clock = FakeClock::at_epoch();
        let tpm = TokenRate::new(6_000, clock.shared());
        assert!(allowed(tpm.check(6_000)));
        // Estimated 6 000, used 1 000: 5 000 come back.
        tpm.settle(6_000, 1_000);
        assert!(allowed(tpm.check(5_000)));
        assert!(!allowed(tpm.check(1)));
        // Estimated 10, used 610: in debt by 600 tokens, 6 s to wait them off.
        tpm.settle(10, 610);
        assert_eq!(
            tpm.check(1),
            RateDecision::Limited {
                retry_after: ms(6_010)
            }
        );
        // A credit never makes more than a full minute's budget.
        clock.set(Duration::from_secs(600));
        tpm.settle(6_000, 0);
        assert!(allowed(tpm.check(6_000)));
        assert!(!allowed(tpm.check(1)));
    }
}
