//! Retry policy building blocks: configuration, full-jitter backoff,
//! `Retry-After` parsing, the per-failure retry decision, the retry budget and
//! idempotency keys.
//!
//! The retry *loop* lives in the call pipeline; this module only answers the
//! questions the loop asks, and knows nothing about HTTP types:
//!
//! 1. before each original request: [`RetryBudget::deposit`];
//! 2. after a retryable failure (connect error, timeout, 5xx, 408, 429):
//!    parse the server hint with [`parse_retry_after`] /
//!    [`parse_retry_after_ms`], then call [`RetryDecision::decide`];
//! 3. on [`RetryDecision::Retry`]: [`RetryBudget::withdraw`]; if the budget
//!    refuses, end this provider's turn, otherwise wait `after` through the
//!    injected clock and try again;
//! 4. on [`RetryDecision::FailOver`]: mark the provider rate-limited for
//!    `bench_for` and move to the next provider at once;
//! 5. on [`RetryDecision::GiveUp`]: end this provider's turn.
//!
//! Semantics follow section 4.1 of the resilience reference: `max_attempts`
//! counts the first call, the backoff is full jitter, a parsed `Retry-After`
//! replaces the computed delay, and no retry is scheduled to start at or after
//! the total deadline.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::duration::serde_secs;

/// Retry settings for one provider (section 4.1 of the resilience reference).
///
/// Durations accept `"500ms"`, `"1.5s"`, `"2m"` or a number of seconds (see
/// [`crate::duration`]). Unknown fields are rejected; in particular `max_retries` is refused because it is
/// ambiguous: use `max_attempts`, which counts the first call
/// (`max_attempts = max_retries + 1`).
///
/// ```
/// use polyrelay::resilience::retry::RetryConfig;
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

/// Retry budget settings, with tower `TpsBudget` / Finagle `RetryBudget`
/// semantics: retries may be at most `retry_percent` of the original requests
/// seen over the last `ttl`, plus a reserve of `min_per_sec` retries per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryBudgetConfig {
    /// `false` lets every retry through (only `max_attempts` and the deadline
    /// limit them).
    pub enabled: bool,
    /// How long a deposit counts; between 1 s and 60 s.
    #[serde(with = "serde_secs")]
    pub ttl: Duration,
    /// Retries per second always allowed, even without traffic.
    pub min_per_sec: u32,
    /// Retries allowed per original request (0.2 = one retry per five
    /// requests); between 0 and 1000.
    pub retry_percent: f64,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: Duration::from_secs(10),
            min_per_sec: 10,
            retry_percent: 0.2,
        }
    }
}

impl RetryBudgetConfig {
    fn validate(&self) -> Result<(), InvalidRetryConfig> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&self.ttl) {
            return Err(InvalidRetryConfig {
                field: "budget.ttl",
                reason: "must be between 1s and 60s",
            });
        }
        if !(0.0..=1000.0).contains(&self.retry_percent) {
            return Err(InvalidRetryConfig {
                field: "budget.retry_percent",
                reason: "must be between 0 and 1000",
            });
        }
        Ok(())
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
/// use polyrelay::resilience::retry::{Backoff, RetryConfig};
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

/// Parses a `Retry-After` value (RFC 9110 §10.2.3) into a delay from `now`.
///
/// Accepts delay-seconds (a non-negative decimal integer; huge values
/// saturate) and the three HTTP-date forms recipients must accept (§5.6.7):
/// IMF-fixdate `Wed, 21 Oct 2015 07:28:00 GMT`, RFC 850
/// `Wednesday, 21-Oct-15 07:28:00 GMT` (two-digit years resolved within 50
/// years of `now`, as §5.6.7 requires) and asctime `Wed Oct 21 07:28:00 2015`
/// (day space-padded or not). A date in the past gives `Some(0)`. Parsing is
/// robust where it costs nothing: names are case-insensitive and a day name
/// that disagrees with the date is tolerated (it is redundant). Anything else
/// (`soon`, `-5`, `1.5`, empty) is `None`: treat the header as absent and use
/// the computed backoff.
///
/// ```
/// use polyrelay::resilience::retry::parse_retry_after;
/// use std::time::Duration;
///
/// let now = "2015-10-21T07:27:30Z".parse().unwrap();
/// assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(30)));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if value.starts_with(|c: char| c.is_ascii_digit()) {
        if !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // All digits: parsing can only fail by overflow.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(value, now)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Parses a `retry-after-ms` value (sent by several LLM providers): a
/// non-negative number of milliseconds, fraction allowed (`"1500"`,
/// `"20.5"`). Signs, exponents, `inf`/`NaN` and other text are `None`.
/// Where both headers are present, prefer this one: it is more precise.
pub fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    let millis: f64 = value.parse().ok()?;
    Some(Duration::try_from_secs_f64(millis / 1_000.0).unwrap_or(Duration::MAX))
}

/// Parses the three HTTP-date forms of RFC 9110 §5.6.7.
fn parse_http_date(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut parts = value.split_ascii_whitespace();
    let day_name = parts.next()?;
    let (day, month, year, time) = if let Some(day_name) = day_name.strip_suffix(',') {
        if !is_day_name(day_name) {
            return None;
        }
        let day_field = parts.next()?;
        let date = match day_field.split_once('-') {
            // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
            Some((day, rest)) => {
                let (month, year) = rest.split_once('-')?;
                let year = two_digit_year(number(year, 2, 2)?, now);
                (
                    number(day, 1, 2)?,
                    month_number(month)?,
                    year,
                    parts.next()?,
                )
            }
            // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
            None => {
                let month = month_number(parts.next()?)?;
                let year = number(parts.next()?, 4, 4)?;
                (number(day_field, 1, 2)?, month, year, parts.next()?)
            }
        };
        if parts.next() != Some("GMT") {
            return None;
        }
        date
    } else {
        // asctime: `Sun Nov  6 08:49:37 1994`
        if !is_day_name(day_name) {
            return None;
        }
        let month = month_number(parts.next()?)?;
        let day = number(parts.next()?, 1, 2)?;
        let time = parts.next()?;
        (day, month, number(parts.next()?, 4, 4)?, time)
    };
    if parts.next().is_some() {
        return None;
    }
    let mut clock = time.split(':');
    let hour = number(clock.next()?, 2, 2)?;
    let minute = number(clock.next()?, 2, 2)?;
    // RFC 9110 allows second 60 (a leap second); chrono does not.
    let second = number(clock.next()?, 2, 2)?.min(59);
    if clock.next().is_some() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some(date.and_hms_opt(hour, minute, second)?.and_utc())
}

/// RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in
/// the future means the most recent past year with those digits.
fn two_digit_year(two_digits: u32, now: DateTime<Utc>) -> u32 {
    let current = u32::try_from(now.year()).unwrap_or(0);
    let year = current - current % 100 + two_digits;
    if year > current + 50 {
        year.saturating_sub(100)
    } else if year + 50 <= current {
        year + 100
    } else {
        year
    }
}

/// A decimal number of `min..=max` ASCII digits (no sign, no spaces).
fn number(text: &str, min: usize, max: usize) -> Option<u32> {
    if !(min..=max).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let index = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))?;
    u32::try_from(index + 1).ok()
}

fn is_day_name(name: &str) -> bool {
    const DAYS: [&str; 14] = [
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
        "Sun",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    DAYS.iter().any(|day| day.eq_ignore_ascii_case(name))
}

/// What to do after an attempt failed with a retryable outcome.
///
/// The pipeline classifies the outcome first (never retry a 4xx other than
/// 408/429, nor a non-idempotent request whose body was sent without an
/// [`IdempotencyKey`]); this type decides the rest.
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
    /// use polyrelay::resilience::retry::{Backoff, GiveUpReason, RetryConfig, RetryDecision};
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

/// Number of time slots the budget's ttl is divided into (as tower).
const BUDGET_SLOTS: usize = 10;
/// Tokens one retry costs; a deposit earns `retry_percent × RETRY_COST`, so
/// fractional percentages stay exact in integer arithmetic.
const RETRY_COST: i64 = 1_000;

/// A per-provider retry budget with tower `TpsBudget` semantics on the
/// injected clock.
///
/// Each original request [`deposit`](RetryBudget::deposit)s; each retry must
/// [`withdraw`](RetryBudget::withdraw). A deposit counts for at most `ttl`
/// (the ttl is split into 10 slots; a deposit expires between 0.9 × ttl and
/// ttl after it was made), so retries stay within `retry_percent` of recent
/// traffic, plus a reserve of `min_per_sec × ttl` retries per ttl that lets
/// quiet clients retry at all.
///
/// `deposit` is lock-free unless it is the first operation in a new slot
/// (at most once per ttl/10); `withdraw` (the rare retry path) takes a short
/// lock so that concurrent withdrawals can never overdraw the budget.
///
/// ```
/// use polyrelay::clock::FakeClock;
/// use polyrelay::resilience::retry::{RetryBudget, RetryBudgetConfig};
/// use std::time::Duration;
///
/// let clock = FakeClock::at_epoch();
/// let config = RetryBudgetConfig {
///     ttl: Duration::from_secs(1),
///     min_per_sec: 0,
///     retry_percent: 0.5,
///     ..Default::default()
/// };
/// let budget = RetryBudget::new(&config, clock.shared());
/// budget.deposit();
/// budget.deposit();
/// assert!(budget.withdraw());
/// assert!(!budget.withdraw());
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    /// `None` when the budget is disabled.
    window: Option<BudgetWindow>,
}

#[derive(Debug)]
struct BudgetWindow {
    clock: SharedClock,
    slot_nanos: u128,
    reserve: i64,
    deposit_amount: i64,
    /// Absolute number of the slot `current` belongs to (monotonic time / slot).
    current_slot: AtomicU64,
    /// Net tokens of the current slot.
    current: AtomicI64,
    /// Net tokens of past slots, by slot number modulo [`BUDGET_SLOTS`].
    past: Mutex<[i64; BUDGET_SLOTS]>,
}

impl RetryBudget {
    /// A budget for `config` on `clock`; unlimited when `config.enabled` is
    /// false. Out-of-range values are clamped ([`RetryConfig::validate`]
    /// reports them).
    pub fn new(config: &RetryBudgetConfig, clock: SharedClock) -> Self {
        if !config.enabled {
            return Self::unlimited();
        }
        let ttl = config
            .ttl
            .clamp(Duration::from_secs(1), Duration::from_secs(60));
        let percent = if config.retry_percent.is_nan() {
            0.0
        } else {
            config.retry_percent.clamp(0.0, 1_000.0)
        };
        let ttl_millis = i64::try_from(ttl.as_millis()).unwrap_or(60_000);
        let slot_nanos = ttl.as_nanos() / BUDGET_SLOTS as u128;
        let now_slot = u64::try_from(clock.now().as_nanos() / slot_nanos).unwrap_or(u64::MAX);
        Self {
            window: Some(BudgetWindow {
                clock,
                slot_nanos,
                // min_per_sec retries per second of ttl, RETRY_COST tokens each.
                reserve: i64::from(config.min_per_sec).saturating_mul(ttl_millis),
                // Bounded by the clamp: at most 1_000_000.
                deposit_amount: (percent * RETRY_COST as f64).round() as i64,
                current_slot: AtomicU64::new(now_slot),
                current: AtomicI64::new(0),
                past: Mutex::new([0; BUDGET_SLOTS]),
            }),
        }
    }

    /// A budget that allows every retry.
    pub fn unlimited() -> Self {
        Self { window: None }
    }

    /// Records one original (non-retry) request.
    pub fn deposit(&self) {
        if let Some(window) = &self.window {
            let slot = window.now_slot();
            if slot > window.current_slot.load(Ordering::Acquire) {
                window.rotate(&mut window.past.lock(), slot);
            }
            window
                .current
                .fetch_add(window.deposit_amount, Ordering::AcqRel);
        }
    }

    /// Takes the budget for one retry; `false` means do not retry.
    pub fn withdraw(&self) -> bool {
        let Some(window) = &self.window else {
            return true;
        };
        let slot = window.now_slot();
        let mut past = window.past.lock();
        window.rotate(&mut past, slot);
        // Deposits only add, and every withdrawal holds the lock, so the
        // balance cannot drop between this check and the subtraction.
        let balance = past
            .iter()
            .fold(window.reserve, |sum, slot| sum.saturating_add(*slot))
            .saturating_add(window.current.load(Ordering::Acquire));
        if balance < RETRY_COST {
            return false;
        }
        window.current.fetch_sub(RETRY_COST, Ordering::AcqRel);
        true
    }
}

impl BudgetWindow {
    fn now_slot(&self) -> u64 {
        u64::try_from(self.clock.now().as_nanos() / self.slot_nanos).unwrap_or(u64::MAX)
    }

    /// Moves the window to `now_slot`: files the current slot's tokens and
    /// clears every slot that is now older than the ttl. Call with the lock.
    fn rotate(&self, past: &mut [i64; BUDGET_SLOTS], now_slot: u64) {
        let last = self.current_slot.load(Ordering::Acquire);
        if now_slot <= last {
            return;
        }
        let finished = self.current.swap(0, Ordering::AcqRel);
        let elapsed = now_slot - last;
        if elapsed >= BUDGET_SLOTS as u64 {
            *past = [0; BUDGET_SLOTS];
        } else {
            past[(last % BUDGET_SLOTS as u64) as usize] = finished;
            for step in 1..=elapsed {
                past[((last + step) % BUDGET_SLOTS as u64) as usize] = 0;
            }
        }
        self.current_slot.store(now_slot, Ordering::Release);
    }
}

/// The `Idempotency-Key` of a non-idempotent call (IETF
/// draft-ietf-httpapi-idempotency-key-header): a random UUIDv4.
///
/// Policy: generate **one key per logical call per provider**. Send the same
/// key on every retry (and hedge) to that provider, so the provider can
/// de-duplicate a request whose response was lost; generate a **new key for
/// the next fallback provider**, since keys are meaningless across providers
/// and must not collide with unrelated calls. Without a key, a POST or PATCH
/// whose body was sent is never retried.
///
/// ```
/// use polyrelay::resilience::retry::{IdempotencyKey, RandomSource};
///
/// let random = RandomSource::with_seed(1);
/// let key = IdempotencyKey::generate(&mut random.rng());
/// assert_eq!(key.to_string().len(), 36);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(Uuid);

impl IdempotencyKey {
    /// The request header that carries the key.
    pub const HEADER: &'static str = "Idempotency-Key";

    /// A new random key (version 4, RFC 9562 variant) drawn from `rng`.
    pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> Self {
        Self(uuid::Builder::from_random_bytes(rng.random()).into_uuid())
    }

    /// The key as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for IdempotencyKey {
    /// Lower-case hyphenated form, the header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, FakeClock};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn budget(ttl: Duration, min_per_sec: u32, retry_percent: f64) -> (FakeClock, RetryBudget) {
        let clock = FakeClock::at_epoch();
        let config = RetryBudgetConfig {
            enabled: true,
            ttl,
            min_per_sec,
            retry_percent,
        };
        let budget = RetryBudget::new(&config, clock.shared());
        (clock, budget)
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

    // ---- backoff (acceptance case 15) ----

    #[test]
    fn case_15_full_jitter_stays_within_the_capped_exponential_bound() {
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
    fn case_15_full_jitter_mean_at_retry_3() {
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

    // ---- Retry-After (acceptance cases 16 and 17) ----

    #[tokio::test]
    async fn case_16_retry_after_seconds_replaces_the_backoff() {
        let clock = FakeClock::new(at("2015-10-21T07:27:30Z"));
        clock.auto_advance(true);
        let config = RetryConfig::default();
        let backoff = Backoff::with_seed(&config, 16);
        let hint = parse_retry_after("3", clock.wall());
        assert_eq!(hint, Some(secs(3)));

        let decision = RetryDecision::decide(&config, &backoff, 1, hint, secs(30));
        assert_eq!(decision, RetryDecision::Retry { after: secs(3) });
        let RetryDecision::Retry { after } = decision else {
            unreachable!()
        };
        clock.backoff(after).await;
        assert_eq!(clock.now(), secs(3), "next attempt exactly at +3 s");

        // With the header ignored the jittered backoff applies instead.
        let ignore = RetryConfig {
            respect_retry_after: false,
            ..RetryConfig::default()
        };
        match RetryDecision::decide(&ignore, &backoff, 1, hint, secs(30)) {
            RetryDecision::Retry { after } => assert!(after <= Duration::from_millis(500)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn case_17_retry_after_http_dates_in_all_three_forms() {
        let now = at("2015-10-21T07:27:30Z");
        for value in [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28:00 2015",
            " wed, 21 OCT 2015 07:28:00 GMT ",
        ] {
            assert_eq!(parse_retry_after(value, now), Some(secs(30)), "{value:?}");
        }
        // asctime pads a one-digit day with a space; unpadded and zero-padded
        // days are accepted too.
        let now = at("1994-11-06T08:49:07Z");
        for value in [
            "Sun Nov  6 08:49:37 1994",
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov 06 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(value, now), Some(secs(30)), "{value:?}");
        }
    }

    #[test]
    fn case_17_past_dates_clamp_to_zero() {
        let now = at("2015-10-21T07:27:30Z");
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Thu Jan  1 00:00:00 1970", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn case_17_garbage_is_ignored_and_the_backoff_used() {
        let now = at("2015-10-21T07:27:30Z");
        for value in [
            "soon",
            "-5",
            "",
            "   ",
            "+5",
            "1.5",
            "3s",
            "0x10",
            "Wed, 21 Oct 2015 07:28:00",
            "Wed, 21 Oct 2015 07:28:00 UTC",
            "Wed, 21 Oct 2015 07:28:00 GMT extra",
            "Wed, 31 Feb 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 24:28:00 GMT",
            "Wed, 21 Oct 15 07:28:00 GMT",
            "Someday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28 2015",
        ] {
            assert_eq!(parse_retry_after(value, now), None, "{value:?}");
        }
        let config = RetryConfig::default();
        let backoff = Backoff::with_seed(&config, 17);
        for value in ["soon", "-5"] {
            let hint = parse_retry_after(value, now);
            match RetryDecision::decide(&config, &backoff, 2, hint, secs(30)) {
                RetryDecision::Retry { after } => assert!(after <= secs(1), "{after:?}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn rfc_850_two_digit_years_stay_within_fifty_years() {
        let now = at("2026-01-01T00:00:00Z");
        // 2076 is exactly 50 years ahead: taken as-is (a fixed 1970 pivot
        // would read 1976 and return 0).
        let ahead = parse_retry_after("Wednesday, 01-Jan-76 00:00:00 GMT", now).unwrap();
        assert_eq!(ahead, (at("2076-01-01T00:00:00Z") - now).to_std().unwrap());
        // 2077 would be more than 50 years ahead: it means 1977, in the past.
        assert_eq!(
            parse_retry_after("Saturday, 01-Jan-77 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        let late = at("2095-06-01T00:00:00Z");
        let date = parse_retry_after("Monday, 01-Jan-01 00:00:00 GMT", late).unwrap();
        assert_eq!(date, (at("2101-01-01T00:00:00Z") - late).to_std().unwrap());
    }

    #[test]
    fn delay_seconds_edge_values() {
        let now = at("2015-10-21T07:27:30Z");
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(" 120 ", now), Some(secs(120)));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(secs(u64::MAX))
        );
    }

    #[test]
    fn retry_after_ms_accepts_fractional_milliseconds() {
        assert_eq!(
            parse_retry_after_ms("1500"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after_ms("20.5"),
            Some(Duration::from_micros(20_500))
        );
        assert_eq!(parse_retry_after_ms(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after_ms(".5"), Some(Duration::from_micros(500)));
        assert_eq!(parse_retry_after_ms(&"9".repeat(400)), Some(Duration::MAX));
        for bad in [
            "", ".", "-1", "+1", "1e3", "inf", "NaN", "1.2.3", "soon", "1 500",
        ] {
            assert_eq!(parse_retry_after_ms(bad), None, "{bad:?}");
        }
    }

    // ---- decisions (acceptance cases 14 and 18, the deadline rule) ----

    #[test]
    fn case_14_max_attempts_counts_the_first_call() {
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
    fn case_18_retry_after_above_the_cap_fails_over() {
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

    // ---- retry budget (acceptance case 19) ----

    #[test]
    fn case_19_two_deposits_at_half_percent_allow_exactly_one_retry() {
        let (_clock, budget) = budget(secs(1), 0, 0.5);
        budget.deposit();
        budget.deposit();
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
    }

    #[test]
    fn case_19_deposits_expire_after_the_ttl() {
        // tower `tps_leaky`
        let (clock, budget) = budget(secs(1), 0, 1.0);
        budget.deposit();
        clock.advance(secs(3));
        assert!(!budget.withdraw());
    }

    #[test]
    fn case_19_min_per_sec_is_a_reserve_without_deposits() {
        // tower `tps_reserve`
        let (clock, budget) = budget(secs(1), 5, 1.0);
        assert_eq!((0..10).filter(|_| budget.withdraw()).count(), 5);
        // The reserve spent is itself forgotten after the ttl.
        clock.advance(secs(1));
        assert_eq!((0..10).filter(|_| budget.withdraw()).count(), 5);
    }

    #[test]
    fn budget_slots_slide_over_the_ttl() {
        // tower `tps_slots`
        let ms = Duration::from_millis;
        let (clock, budget) = budget(secs(1), 0, 0.5);
        budget.deposit();
        budget.deposit();
        clock.advance(ms(901));
        assert!(budget.withdraw(), "deposits 901 ms old still count");

        clock.advance(ms(2001));
        budget.deposit();
        clock.advance(ms(301));
        budget.deposit();
        clock.advance(ms(801));
        budget.deposit();
        // The first of the three has expired; the other two make one retry.
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
    }

    #[test]
    fn budget_with_zero_percent_earns_nothing_from_deposits() {
        let (_clock, budget) = budget(secs(1), 0, 0.0);
        (0..100).for_each(|_| budget.deposit());
        assert!(!budget.withdraw());
    }

    #[test]
    fn disabled_budget_allows_every_retry() {
        let config = RetryBudgetConfig {
            enabled: false,
            ..RetryBudgetConfig::default()
        };
        let budget = RetryBudget::new(&config, FakeClock::at_epoch().shared());
        assert!((0..1_000).all(|_| budget.withdraw()));
    }

    #[test]
    fn concurrent_withdrawals_never_overdraw() {
        let (_clock, budget) = budget(secs(1), 5, 0.2);
        (0..50).for_each(|_| budget.deposit()); // +10 retries
        let budget = Arc::new(budget);
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let budget = Arc::clone(&budget);
                std::thread::spawn(move || (0..10).filter(|_| budget.withdraw()).count())
            })
            .collect();
        let granted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(granted, 15);
    }

    // ---- idempotency keys ----

    #[test]
    fn idempotency_keys_are_random_v4_uuids_reproducible_by_seed() {
        let keys = |seed| {
            let random = RandomSource::with_seed(seed);
            (0..3)
                .map(|_| IdempotencyKey::generate(&mut random.rng()))
                .collect::<Vec<_>>()
        };
        let first = keys(21);
        assert_eq!(first, keys(21));
        assert_ne!(first, keys(22));
        assert_ne!(first[0], first[1], "a new key for the next provider");
        for key in &first {
            assert_eq!(key.as_uuid().get_version(), Some(uuid::Version::Random));
            assert_eq!(key.as_uuid().get_variant(), uuid::Variant::RFC4122);
            let text = key.to_string();
            assert_eq!(text.len(), 36);
            assert_eq!(text, text.to_lowercase());
            assert_eq!(Uuid::parse_str(&text).unwrap(), key.as_uuid());
        }
    }
}
