//! Circuit breaker: stop calling a provider that keeps failing or slowing
//! down, so the fallback chain moves on to the next provider at once.
//!
//! # Where it sits
//!
//! One [`CircuitBreaker`] guards one (provider, endpoint class). In the call
//! pipeline it is step 4, after the key check, the daily quota and the rate
//! limiter, and it wraps the retry loop: **every attempt** takes a [`Permit`]
//! with [`CircuitBreaker::try_acquire`] and records its outcome with
//! [`Permit::record`]. A [`Rejected`] means "skip this provider": the retry
//! loop stops and the chain fails over, using [`Rejected::retry_after`]
//! (`open_until − now`) to know when the provider is worth trying again.
//!
//! # Semantics
//!
//! Parameters, defaults and state machine follow resilience4j (snake_case
//! names, see [`BreakerConfig`]), with these polyrelay decisions:
//!
//! * a failure or slow-call rate opens the breaker when it is **≥** its
//!   threshold; a call is slow when its duration is **>** the slow threshold;
//!   below the minimum number of calls both rates read −1 and nothing opens;
//! * open → half-open happens when `now >= open_until` (Polly's boundary);
//! * every state change bumps a generation, and a result that comes back from
//!   an older generation never touches the current window or state (gobreaker);
//!   it only counts in [`BreakerSnapshot::stale_results`];
//! * [`Outcome::Ignored`] (caller cancellation, most 4xx) is neither success
//!   nor failure and gives a half-open probe slot back; dropping a [`Permit`]
//!   without recording is the same as recording `Ignored`;
//! * re-opening without a successful close in between multiplies the open wait
//!   by `open_backoff_multiplier`, capped by `max_wait_duration_in_open_state`.
//!
//! Timed transitions (open → half-open with `automatic_transition_from_open_to_half_open`,
//! the half-open timeout) need no background task: they are evaluated lazily,
//! against the injected clock, by every method that reads or changes the state
//! ([`CircuitBreaker::state`], [`CircuitBreaker::try_acquire`],
//! [`CircuitBreaker::snapshot`], [`Permit::record`]). Observably the state
//! flips at the right instant without any call going through.
//!
//! # Cost
//!
//! In the closed state `try_acquire` is one atomic load and a reference-count
//! increment: no lock, no clock read. Recording an outcome takes one short
//! per-breaker mutex.
//!
//! ```
//! use polyrelay::clock::FakeClock;
//! use polyrelay::internal::resilience::breaker::{BreakerConfig, CircuitBreaker, CircuitState, Outcome};
//! use std::time::Duration;
//!
//! let clock = FakeClock::at_epoch();
//! let config = BreakerConfig {
//!     sliding_window_size: 20,
//!     minimum_number_of_calls: 10,
//!     ..BreakerConfig::default()
//! };
//! let breaker = CircuitBreaker::new(config, clock.shared()).unwrap();
//! for _ in 0..10 {
//!     let permit = breaker.try_acquire().unwrap();
//!     permit.record(Outcome::Failure, Duration::from_millis(30));
//! }
//! assert_eq!(breaker.state(), CircuitState::Open);
//! let rejected = breaker.try_acquire().unwrap_err();
//! assert_eq!(rejected.retry_after, Duration::from_secs(60));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::duration::serde_secs;

/// How the closed-state window counts calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlidingWindowType {
    /// The last `sliding_window_size` calls.
    #[default]
    CountBased,
    /// The calls of the last `sliding_window_size` seconds, in one-second
    /// buckets.
    TimeBased,
}

/// Where a half-open breaker goes once `max_wait_duration_in_half_open_state`
/// has passed without a decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateAfterHalfOpenWait {
    /// Open again (and wait, with backoff), as resilience4j does by default.
    #[default]
    Open,
    /// Give the provider the benefit of the doubt and close.
    Closed,
}

impl From<StateAfterHalfOpenWait> for CircuitState {
    fn from(state: StateAfterHalfOpenWait) -> Self {
        match state {
            StateAfterHalfOpenWait::Open => CircuitState::Open,
            StateAfterHalfOpenWait::Closed => CircuitState::Closed,
        }
    }
}

/// Largest accepted `sliding_window_size` and
/// `permitted_number_of_calls_in_half_open_state`: windows are preallocated,
/// so config must not be able to ask for gigabytes.
const MAX_WINDOW: u32 = 100_000;

/// Circuit breaker settings: resilience4j names in snake_case, resilience4j
/// defaults.
///
/// The defaults suit busy endpoints. For a low-volume provider configure
/// smaller windows, for example `sliding_window_size = 20` and
/// `minimum_number_of_calls = 10`. Polly's profile is an alternative:
/// `sliding_window_type = "time_based"`, `sliding_window_size = 30`,
/// `minimum_number_of_calls = 100`, `failure_rate_threshold = 10`,
/// `wait_duration_in_open_state = "5s"`.
///
/// Durations accept `"60s"`, `"500ms"`, `"1.5s"`, `"2m"` or a number of
/// seconds (units from `ns` to `d`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Count the last N calls (default) or the last N seconds.
    pub sliding_window_type: SlidingWindowType,
    /// N: calls for a count-based window, seconds for a time-based one.
    /// 1 to 100 000; default 100.
    pub sliding_window_size: u32,
    /// Calls needed in the window before the rates mean anything; ≥ 1,
    /// default 100. Count-based windows use `min(this, sliding_window_size)`.
    pub minimum_number_of_calls: u32,
    /// Failure percentage, in (0, 100], at or above which the breaker opens.
    /// Default 50.
    pub failure_rate_threshold: f64,
    /// Slow-call percentage, in (0, 100], at or above which the breaker
    /// opens. Default 100.
    pub slow_call_rate_threshold: f64,
    /// A call is slow when it takes strictly longer than this. Default 60 s.
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub slow_call_duration_threshold: Duration,
    /// Probe calls let through while half-open; 1 to 100 000, default 10.
    pub permitted_number_of_calls_in_half_open_state: u32,
    /// How long the breaker stays open before probing; ≥ 1 ms, default 60 s.
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub wait_duration_in_open_state: Duration,
    /// Each re-opening without a successful close in between multiplies the
    /// open wait by this (Envoy-style growing ejection). ≥ 1.0; 1.0 (default)
    /// keeps the wait constant.
    pub open_backoff_multiplier: f64,
    /// Upper bound for the grown open wait; `None` (default) means no bound
    /// other than saturation.
    #[serde(deserialize_with = "serde_secs::option::deserialize")]
    pub max_wait_duration_in_open_state: Option<Duration>,
    /// When true the breaker becomes half-open as soon as the open wait is
    /// over, without waiting for a call. Default false.
    pub automatic_transition_from_open_to_half_open: bool,
    /// How long the breaker may stay half-open without a decision; 0
    /// (default) means until the permitted calls complete.
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub max_wait_duration_in_half_open_state: Duration,
    /// Where the breaker goes when the half-open wait runs out; default open.
    pub transition_to_state_after_wait_duration: StateAfterHalfOpenWait,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            sliding_window_type: SlidingWindowType::CountBased,
            sliding_window_size: 100,
            minimum_number_of_calls: 100,
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: Duration::from_secs(60),
            permitted_number_of_calls_in_half_open_state: 10,
            wait_duration_in_open_state: Duration::from_secs(60),
            open_backoff_multiplier: 1.0,
            max_wait_duration_in_open_state: None,
            automatic_transition_from_open_to_half_open: false,
            max_wait_duration_in_half_open_state: Duration::ZERO,
            transition_to_state_after_wait_duration: StateAfterHalfOpenWait::Open,
        }
    }
}

/// A [`BreakerConfig`] value outside its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid circuit breaker setting `{field}`: {reason}")]
pub struct BreakerConfigError {
    /// The offending parameter, as spelled in config.
    pub field: &'static str,
    /// What is allowed.
    pub reason: String,
}

impl BreakerConfig {
    /// Checks every parameter against the ranges resilience4j enforces (plus
    /// an upper bound on window sizes), naming the first bad field.
    pub fn validate(&self) -> Result<(), BreakerConfigError> {
        let fail = |field, reason: String| Err(BreakerConfigError { field, reason });
        let percent = |value: f64| value > 0.0 && value <= 100.0;
        if !(1..=MAX_WINDOW).contains(&self.sliding_window_size) {
            return fail(
                "sliding_window_size",
                format!(
                    "must be 1 to {MAX_WINDOW}, got {}",
                    self.sliding_window_size
                ),
            );
        }
        if self.minimum_number_of_calls == 0 {
            return fail("minimum_number_of_calls", "must be at least 1".into());
        }
        if !percent(self.failure_rate_threshold) {
            return fail(
                "failure_rate_threshold",
                format!("must be in (0, 100], got {}", self.failure_rate_threshold),
            );
        }
        if !percent(self.slow_call_rate_threshold) {
            return fail(
                "slow_call_rate_threshold",
                format!("must be in (0, 100], got {}", self.slow_call_rate_threshold),
            );
        }
        if self.slow_call_duration_threshold.is_zero() {
            return fail(
                "slow_call_duration_threshold",
                "must be greater than 0".into(),
            );
        }
        let permitted = self.permitted_number_of_calls_in_half_open_state;
        if !(1..=MAX_WINDOW).contains(&permitted) {
            return fail(
                "permitted_number_of_calls_in_half_open_state",
                format!("must be 1 to {MAX_WINDOW}, got {permitted}"),
            );
        }
        if self.wait_duration_in_open_state < Duration::from_millis(1) {
            return fail(
                "wait_duration_in_open_state",
                format!(
                    "must be at least 1ms, got {:?}",
                    self.wait_duration_in_open_state
                ),
            );
        }
        // NaN is not finite, so it fails too.
        if !self.open_backoff_multiplier.is_finite() || self.open_backoff_multiplier < 1.0 {
            return fail(
                "open_backoff_multiplier",
                format!(
                    "must be a finite number ≥ 1.0, got {}",
                    self.open_backoff_multiplier
                ),
            );
        }
        if let Some(cap) = self.max_wait_duration_in_open_state {
            if cap < self.wait_duration_in_open_state {
                return fail(
                    "max_wait_duration_in_open_state",
                    format!(
                        "must not be shorter than wait_duration_in_open_state ({:?}), got {cap:?}",
                        self.wait_duration_in_open_state
                    ),
                );
            }
        }
        Ok(())
    }

    /// The open wait for the `attempt`-th consecutive opening (1-based).
    fn open_wait(&self, attempt: u32) -> Duration {
        let base = self.wait_duration_in_open_state;
        let grown = if attempt <= 1 || self.open_backoff_multiplier <= 1.0 {
            base
        } else {
            let exponent = i32::try_from(attempt - 1).unwrap_or(i32::MAX);
            let factor = self.open_backoff_multiplier.powi(exponent);
            // Overflow (or an infinite factor) saturates, as Polly clamps.
            Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(Duration::MAX)
        };
        match self.max_wait_duration_in_open_state {
            Some(cap) => grown.min(cap),
            None => grown,
        }
    }
}

/// The state of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Normal operation: calls go through and are measured.
    Closed,
    /// Calls are rejected until `open_until`.
    Open,
    /// A limited number of probe calls decide between closed and open.
    HalfOpen,
}

impl CircuitState {
    /// The snake_case name used in config, stats and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    fn code(self) -> u64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        }
    }

    fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            2 => CircuitState::HalfOpen,
            _ => return None,
        })
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an attempt ended, as far as the breaker is concerned. Slowness is not
/// part of it: [`Permit::record`] derives it from the duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The provider answered usefully.
    Success,
    /// Transport error, timeout, 5xx, 408 or 429.
    Failure,
    /// Neither: caller cancellation, other 4xx, local validation errors.
    /// Frees a half-open probe slot.
    Ignored,
}

/// `retry_after` reported when half-open and all probe slots are taken.
///
/// The slots free up when the probes finish, which the breaker cannot
/// predict; one second is long enough for a typical probe to complete and
/// short enough not to keep a recovering provider out of the chain.
pub const HALF_OPEN_FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The breaker refused a call; the chain should skip this provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker {state}: retry after {retry_after:?}")]
pub struct Rejected {
    /// When trying again makes sense: `open_until − now` when open,
    /// [`HALF_OPEN_FULL_RETRY_AFTER`] when half-open with no probe slot free.
    pub retry_after: Duration,
    /// The state that refused the call.
    pub state: CircuitState,
}

/// A manual transition that the state machine does not allow (closed →
/// half-open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal circuit breaker transition from {from} to {to}")]
pub struct IllegalTransition {
    /// The state the breaker was in (and stays in).
    pub from: CircuitState,
    /// The state that was asked for.
    pub to: CircuitState,
}

/// Stats for one breaker, as served by the client's stats endpoint.
///
/// Window figures (`failure_rate` … `slow_calls`) describe the current
/// window: the closed window, the probe window when half-open, and the
/// window that tripped the breaker while open. The lifetime totals count
/// every recorded outcome, including stale ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerSnapshot {
    /// Current state.
    pub state: CircuitState,
    /// Failure percentage in the window, or −1 below the minimum number of
    /// calls.
    pub failure_rate: f64,
    /// Slow-call percentage in the window, or −1 below the minimum number of
    /// calls.
    pub slow_rate: f64,
    /// Calls (successes and failures) in the window.
    pub buffered_calls: u64,
    /// Failures in the window.
    pub failed_calls: u64,
    /// Slow calls (successful or not) in the window.
    pub slow_calls: u64,
    /// Lifetime count of rejected acquisitions.
    pub not_permitted: u64,
    /// Lifetime count of successes recorded.
    pub successes: u64,
    /// Lifetime count of failures recorded.
    pub failures: u64,
    /// Lifetime count of ignored outcomes, dropped permits included.
    pub ignored: u64,
    /// Lifetime count of successes and failures that came back from an older
    /// generation and were kept out of the window.
    pub stale_results: u64,
    /// Time left until the open wait ends (seconds, in JSON); `None` unless
    /// open.
    #[serde(serialize_with = "serde_secs::option::serialize")]
    pub open_until: Option<Duration>,
    /// Bumped on every state change.
    pub generation: u64,
}

/// A per-(provider, endpoint class) circuit breaker. Cloning is cheap and
/// shares the breaker.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

/// Permission for one attempt, bound to the generation it was taken in.
///
/// Record the attempt's outcome with [`Permit::record`]. Dropping the permit
/// without recording counts as [`Outcome::Ignored`], so a cancelled call
/// never counts as a failure and never keeps a half-open slot.
#[must_use = "record the outcome; dropping the permit counts as Outcome::Ignored"]
pub struct Permit {
    /// Taken by [`Permit::record`], so that dropping the permit afterwards
    /// does not record a second outcome.
    breaker: Option<Arc<Shared>>,
    generation: u64,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Permit {
    /// The breaker generation this permit was taken in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Records how the attempt ended and how long it took. The call counts
    /// as slow when `duration` is strictly greater than
    /// `slow_call_duration_threshold`.
    pub fn record(mut self, outcome: Outcome, duration: Duration) {
        if let Some(breaker) = self.breaker.take() {
            breaker.on_result(self.generation, outcome, duration);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(breaker) = self.breaker.take() {
            breaker.on_result(self.generation, Outcome::Ignored, Duration::ZERO);
        }
    }
}

impl CircuitBreaker {
    /// A closed breaker; fails if `config` does not pass
    /// [`BreakerConfig::validate`].
    pub fn new(config: BreakerConfig, clock: SharedClock) -> Result<Self, BreakerConfigError> {
        config.validate()?;
        let now = clock.now();
        let inner = Inner {
            state: CircuitState::Closed,
            generation: 0,
            window: CallWindow::closed(&config, now),
            open_until: Duration::ZERO,
            half_open_since: Duration::ZERO,
            half_open_slots: 0,
            open_attempts: 0,
            not_permitted: 0,
            successes: 0,
            failures: 0,
            ignored: 0,
            stale_results: 0,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                clock,
                word: AtomicU64::new(pack(CircuitState::Closed, 0)),
                inner: Mutex::new(inner),
            }),
        })
    }

    /// Asks to make one attempt. Lock-free in the closed state.
    ///
    /// An open breaker whose wait is over (`now >= open_until`) becomes
    /// half-open here and this call is its first probe.
    pub fn try_acquire(&self) -> Result<Permit, Rejected> {
        let word = self.shared.word.load(Ordering::Acquire);
        let (state, generation) = unpack(word);
        match state {
            Some(CircuitState::Closed) => Ok(Permit {
                breaker: Some(Arc::clone(&self.shared)),
                generation,
            }),
            _ => self.shared.acquire_locked(),
        }
    }

    /// The current state, with timed transitions applied.
    pub fn state(&self) -> CircuitState {
        match unpack(self.shared.word.load(Ordering::Acquire)).0 {
            Some(CircuitState::Closed) => CircuitState::Closed,
            _ => self.shared.lock_refreshed().0.state,
        }
    }

    /// Window figures, lifetime totals and timing, for stats.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let (mut inner, now) = self.shared.lock_refreshed();
        inner.window.advance(now);
        let (failure_rate, slow_rate) = inner.window.rates();
        let open_until =
            (inner.state == CircuitState::Open).then(|| inner.open_until.saturating_sub(now));
        BreakerSnapshot {
            state: inner.state,
            failure_rate,
            slow_rate,
            buffered_calls: inner.window.totals.calls,
            failed_calls: inner.window.totals.failed,
            slow_calls: inner.window.totals.slow,
            not_permitted: inner.not_permitted,
            successes: inner.successes,
            failures: inner.failures,
            ignored: inner.ignored,
            stale_results: inner.stale_results,
            open_until,
            generation: inner.generation,
        }
    }

    /// Opens the breaker for the (backed-off) open wait.
    pub fn transition_to_open(&self) {
        let (mut inner, now) = self.shared.lock_refreshed();
        self.shared.enter(&mut inner, CircuitState::Open, now);
    }

    /// Starts probing at once. Not allowed from closed.
    pub fn transition_to_half_open(&self) -> Result<(), IllegalTransition> {
        let (mut inner, now) = self.shared.lock_refreshed();
        if inner.state == CircuitState::Closed {
            return Err(IllegalTransition {
                from: CircuitState::Closed,
                to: CircuitState::HalfOpen,
            });
        }
        self.shared.enter(&mut inner, CircuitState::HalfOpen, now);
        Ok(())
    }
}

const STATE_BITS: u32 = 2;
const STATE_MASK: u64 = (1 << STATE_BITS) - 1;
const GENERATION_MASK: u64 = u64::MAX >> STATE_BITS;

/// State and generation in one word, so the lock-free acquire path sees a
/// consistent pair.
fn pack(state: CircuitState, generation: u64) -> u64 {
    (generation << STATE_BITS) | state.code()
}

fn unpack(word: u64) -> (Option<CircuitState>, u64) {
    (
        CircuitState::from_code(word & STATE_MASK),
        word >> STATE_BITS,
    )
}

#[derive(Debug)]
struct Shared {
    config: BreakerConfig,
    clock: SharedClock,
    /// Mirror of `inner.state` and `inner.generation`, written under the lock.
    word: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: CircuitState,
    generation: u64,
    window: CallWindow,
    open_until: Duration,
    half_open_since: Duration,
    /// Probe slots still free while half-open.
    half_open_slots: u32,
    /// Consecutive openings since the last close; drives the open backoff.
    open_attempts: u32,
    not_permitted: u64,
    successes: u64,
    failures: u64,
    ignored: u64,
    stale_results: u64,
}

impl Shared {
    /// Locks, reads the clock and applies any timed transition that is due.
    fn lock_refreshed(&self) -> (MutexGuard<'_, Inner>, Duration) {
        let mut inner = self.inner.lock();
        let now = self.clock.now();
        self.refresh(&mut inner, now);
        (inner, now)
    }

    /// Applies the transitions that time alone triggers.
    fn refresh(&self, inner: &mut Inner, now: Duration) {
        match inner.state {
            CircuitState::Open
                if self.config.automatic_transition_from_open_to_half_open
                    && now >= inner.open_until =>
            {
                self.enter(inner, CircuitState::HalfOpen, now);
            }
            CircuitState::HalfOpen => {
                let max_wait = self.config.max_wait_duration_in_half_open_state;
                if !max_wait.is_zero() && now >= inner.half_open_since.saturating_add(max_wait) {
                    let to = self.config.transition_to_state_after_wait_duration.into();
                    self.enter(inner, to, now);
                }
            }
            _ => {}
        }
    }

    /// Moves to `to`, bumping the generation and setting up the new state.
    fn enter(&self, inner: &mut Inner, to: CircuitState, now: Duration) {
        match to {
            CircuitState::Closed => {
                inner.window = CallWindow::closed(&self.config, now);
                inner.open_attempts = 0;
            }
            CircuitState::Open => {
                inner.open_attempts = inner.open_attempts.saturating_add(1);
                let wait = self.config.open_wait(inner.open_attempts);
                inner.open_until = now.saturating_add(wait);
            }
            CircuitState::HalfOpen => {
                inner.window = CallWindow::half_open(&self.config);
                inner.half_open_slots = self.config.permitted_number_of_calls_in_half_open_state;
                inner.half_open_since = now;
            }
        }
        inner.state = to;
        inner.generation = inner.generation.wrapping_add(1) & GENERATION_MASK;
        self.word
            .store(pack(to, inner.generation), Ordering::Release);
    }

    /// The slow path of `try_acquire`: any state that needs the clock or the
    /// half-open slot count.
    fn acquire_locked(self: &Arc<Self>) -> Result<Permit, Rejected> {
        let (mut inner, now) = self.lock_refreshed();
        if inner.state == CircuitState::Open && now >= inner.open_until {
            self.enter(&mut inner, CircuitState::HalfOpen, now);
        }
        let permit = |inner: &Inner| Permit {
            breaker: Some(Arc::clone(self)),
            generation: inner.generation,
        };
        let state = inner.state;
        let retry_after = match state {
            CircuitState::Closed => return Ok(permit(&inner)),
            CircuitState::HalfOpen if inner.half_open_slots > 0 => {
                inner.half_open_slots -= 1;
                return Ok(permit(&inner));
            }
            CircuitState::HalfOpen => HALF_OPEN_FULL_RETRY_AFTER,
            CircuitState::Open => inner.open_until.saturating_sub(now),
        };
        inner.not_permitted += 1;
        Err(Rejected { retry_after, state })
    }

    fn on_result(&self, generation: u64, outcome: Outcome, duration: Duration) {
        let (mut inner, now) = self.lock_refreshed();
        match outcome {
            Outcome::Success => inner.successes += 1,
            Outcome::Failure => inner.failures += 1,
            Outcome::Ignored => inner.ignored += 1,
        }
        if generation != inner.generation {
            if outcome != Outcome::Ignored {
                inner.stale_results += 1;
            }
            return;
        }
        let failed = match outcome {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Ignored => {
                if inner.state == CircuitState::HalfOpen {
                    inner.half_open_slots = inner.half_open_slots.saturating_add(1);
                }
                return;
            }
        };
        let slow = duration > self.config.slow_call_duration_threshold;
        let state = inner.state;
        match state {
            CircuitState::Closed => {
                inner.window.record(now, failed, slow);
                if inner.window.verdict(&self.config) == Verdict::Exceeded {
                    self.enter(&mut inner, CircuitState::Open, now);
                }
            }
            CircuitState::HalfOpen => {
                inner.window.record(now, failed, slow);
                match inner.window.verdict(&self.config) {
                    Verdict::BelowMinimum => {}
                    Verdict::Exceeded => self.enter(&mut inner, CircuitState::Open, now),
                    Verdict::Healthy => self.enter(&mut inner, CircuitState::Closed, now),
                }
            }
            // No permit of the current generation is ever handed out while
            // open.
            CircuitState::Open => {}
        }
    }
}

/// What a window says about the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Too few calls to judge.
    BelowMinimum,
    /// Both rates under their thresholds.
    Healthy,
    /// A rate at or above its threshold.
    Exceeded,
}

/// Call counts; used both for window totals and for time buckets.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    calls: u64,
    failed: u64,
    slow: u64,
}

impl Tally {
    fn add(&mut self, failed: bool, slow: bool) {
        self.calls += 1;
        self.failed += u64::from(failed);
        self.slow += u64::from(slow);
    }

    fn remove(&mut self, other: Tally) {
        self.calls = self.calls.saturating_sub(other.calls);
        self.failed = self.failed.saturating_sub(other.failed);
        self.slow = self.slow.saturating_sub(other.slow);
    }
}

/// A sliding window with running totals, so reading rates is O(1).
#[derive(Debug)]
struct CallWindow {
    kind: WindowKind,
    minimum_calls: u64,
    totals: Tally,
}

#[derive(Debug)]
enum WindowKind {
    /// Ring of the last `size` calls (bit 0 failed, bit 1 slow); once full,
    /// `next` is the oldest entry.
    Count {
        ring: Vec<u8>,
        size: usize,
        next: usize,
    },
    /// One bucket per second, indexed by `second % N`; `latest` is the newest
    /// second the window has been advanced to.
    Time { buckets: Vec<Tally>, latest: u64 },
}

impl WindowKind {
    fn count(size: u32) -> Self {
        let size = size as usize;
        WindowKind::Count {
            ring: Vec::with_capacity(size),
            size,
            next: 0,
        }
    }
}

const FAILED_BIT: u8 = 1;
const SLOW_BIT: u8 = 2;

impl CallWindow {
    /// The window for the closed state.
    fn closed(config: &BreakerConfig, now: Duration) -> Self {
        let size = config.sliding_window_size;
        let (kind, minimum_calls) = match config.sliding_window_type {
            SlidingWindowType::CountBased => (
                WindowKind::count(size),
                config.minimum_number_of_calls.min(size),
            ),
            SlidingWindowType::TimeBased => (
                WindowKind::Time {
                    buckets: vec![Tally::default(); size as usize],
                    latest: now.as_secs(),
                },
                config.minimum_number_of_calls,
            ),
        };
        Self {
            kind,
            minimum_calls: u64::from(minimum_calls),
            totals: Tally::default(),
        }
    }

    /// A fresh count window of the permitted probe calls.
    fn half_open(config: &BreakerConfig) -> Self {
        let permitted = config.permitted_number_of_calls_in_half_open_state;
        Self {
            kind: WindowKind::count(permitted),
            minimum_calls: u64::from(config.minimum_number_of_calls.min(permitted)),
            totals: Tally::default(),
        }
    }

    /// Drops the time buckets that have slid out of the window by `now`.
    fn advance(&mut self, now: Duration) {
        if let WindowKind::Time { buckets, latest } = &mut self.kind {
            let second = now.as_secs();
            if second <= *latest {
                return;
            }
            let len = buckets.len() as u64;
            let steps = (second - *latest).min(len);
            for offset in 1..=steps {
                let index = ((*latest + offset) % len) as usize;
                let expired = std::mem::take(&mut buckets[index]);
                self.totals.remove(expired);
            }
            *latest = second;
        }
    }

    fn record(&mut self, now: Duration, failed: bool, slow: bool) {
        self.advance(now);
        match &mut self.kind {
            WindowKind::Count { ring, size, next } => {
                let flags = if failed { FAILED_BIT } else { 0 } | if slow { SLOW_BIT } else { 0 };
                if ring.len() < *size {
                    ring.push(flags);
                } else if let Some(oldest) = ring.get_mut(*next) {
                    self.totals.remove(Tally {
                        calls: 1,
                        failed: u64::from(*oldest & FAILED_BIT),
                        slow: u64::from((*oldest & SLOW_BIT) >> 1),
                    });
                    *oldest = flags;
                    *next = (*next + 1) % *size;
                }
            }
            WindowKind::Time { buckets, latest } => {
                let len = buckets.len() as u64;
                if let Some(bucket) = buckets.get_mut((*latest % len) as usize) {
                    bucket.add(failed, slow);
                }
            }
        }
        self.totals.add(failed, slow);
    }

    /// Failure and slow-call percentages, or −1 for both below the minimum
    /// number of calls.
    fn rates(&self) -> (f64, f64) {
        let Tally {
            calls,
            failed,
            slow,
        } = self.totals;
        if calls == 0 || calls < self.minimum_calls {
            return (-1.0, -1.0);
        }
        let percent = |part: u64| part as f64 * 100.0 / calls as f64;
        (percent(failed), percent(slow))
    }

    fn verdict(&self, config: &BreakerConfig) -> Verdict {
        let (failure_rate, slow_rate) = self.rates();
        if failure_rate < 0.0 {
            Verdict::BelowMinimum
        } else if failure_rate >= config.failure_rate_threshold
            || slow_rate >= config.slow_call_rate_threshold
        {
            Verdict::Exceeded
        } else {
            Verdict::Healthy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::sync::Barrier;
    use std::thread;

    const FAST: Duration = Duration::from_millis(20);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn millis(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// `CB(window=count:10, min=10, fr=50, slow=1s@50, half=3, open=5s)`.
    fn small() -> BreakerConfig {
        BreakerConfig {
            sliding_window_size: 10,
            minimum_number_of_calls: 10,
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 50.0,
            slow_call_duration_threshold: secs(1),
            permitted_number_of_calls_in_half_open_state: 3,
            wait_duration_in_open_state: secs(5),
            ..BreakerConfig::default()
        }
    }

    fn breaker(config: BreakerConfig) -> (CircuitBreaker, FakeClock) {
        let clock = FakeClock::at_epoch();
        let breaker = CircuitBreaker::new(config, clock.shared()).unwrap();
        (breaker, clock)
    }

    fn call(breaker: &CircuitBreaker, outcome: Outcome, duration: Duration) {
        breaker.try_acquire().unwrap().record(outcome, duration);
    }

    fn calls(breaker: &CircuitBreaker, outcome: Outcome, n: usize) {
        for _ in 0..n {
            call(breaker, outcome, FAST);
        }
    }

    /// Opens a `small()` breaker with 10 failures.
    fn open(breaker: &CircuitBreaker) {
        calls(breaker, Outcome::Failure, 10);
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    // Case 1.
    #[test]
    fn minimum_calls_gate() {
        let (breaker, _clock) = breaker(small());
        calls(&breaker, Outcome::Failure, 9);
        let snap = breaker.snapshot();
        assert_eq!(snap.state, CircuitState::Closed);
        assert_eq!(snap.failure_rate, -1.0);
        assert_eq!(snap.slow_rate, -1.0);
        assert_eq!(snap.buffered_calls, 9);
        call(&breaker, Outcome::Failure, FAST);
        let snap = breaker.snapshot();
        assert_eq!(snap.state, CircuitState::Open);
        assert_eq!(snap.failure_rate, 100.0);
    }

    // Case 2.
    #[test]
    fn threshold_is_inclusive() {
        let (at, _clock) = breaker(small());
        calls(&at, Outcome::Failure, 5);
        calls(&at, Outcome::Success, 5);
        assert_eq!(at.state(), CircuitState::Open);
        assert_eq!(at.snapshot().failure_rate, 50.0);

        let (below, _clock) = breaker(small());
        calls(&below, Outcome::Failure, 4);
        calls(&below, Outcome::Success, 6);
        assert_eq!(below.state(), CircuitState::Closed);
        assert_eq!(below.snapshot().failure_rate, 40.0);
    }

    // Case 3.
    #[test]
    fn count_window_evicts_oldest_calls() {
        // 60 % so that 5 failures + 5 successes (50 %) do not open on the way.
        let (breaker, _clock) = breaker(BreakerConfig {
            failure_rate_threshold: 60.0,
            ..small()
        });
        calls(&breaker, Outcome::Failure, 5);
        calls(&breaker, Outcome::Success, 10);
        let snap = breaker.snapshot();
        assert_eq!(snap.state, CircuitState::Closed);
        assert_eq!(snap.buffered_calls, 10);
        assert_eq!(snap.failed_calls, 0);
        assert_eq!(snap.failure_rate, 0.0);
        assert_eq!(snap.failures, 5);
    }

    // Case 4: the call sequence of resilience4j
    // `SlidingTimeWindowMetricsTest.testSlidingTimeWindowMetrics`.
    #[test]
    fn time_window_drops_expired_buckets() {
        let config = BreakerConfig {
            sliding_window_type: SlidingWindowType::TimeBased,
            sliding_window_size: 5,
            minimum_number_of_calls: 5,
            ..small()
        };
        let (breaker, clock) = breaker(config.clone());
        let step = |advance: Duration, outcome| {
            clock.advance(advance);
            call(&breaker, outcome, millis(100));
            let snap = breaker.snapshot();
            (snap.buffered_calls, snap.failed_calls)
        };
        use Outcome::{Failure as F, Success as S};
        assert_eq!(step(Duration::ZERO, F), (1, 1));
        assert_eq!(step(millis(100), S), (2, 1));
        assert_eq!(step(millis(100), S), (3, 1));
        assert_eq!(step(secs(1), S), (4, 1));
        assert_eq!(step(secs(1), S), (5, 1));
        assert_eq!(step(secs(1), F), (6, 2));
        assert_eq!(step(secs(1), S), (7, 2));
        // +5 s: second 0 (three calls, one failure) leaves the window.
        assert_eq!(step(secs(1), S), (5, 1));
        assert_eq!(step(secs(1), S), (5, 1));
        // Idle for the whole window: only the new call remains.
        assert_eq!(step(secs(5), S), (1, 0));
        assert_eq!(breaker.state(), CircuitState::Closed);
        // Eviction also happens on read, without a new call.
        clock.advance(secs(5));
        assert_eq!(breaker.snapshot().buffered_calls, 0);

        // Failures 1 s apart open only once 5 calls are inside the window.
        let (breaker, clock) = self::breaker(config);
        for _ in 0..4 {
            call(&breaker, Outcome::Failure, FAST);
            assert_eq!(breaker.state(), CircuitState::Closed);
            clock.advance(secs(1));
        }
        call(&breaker, Outcome::Failure, FAST);
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    // Case 5.
    #[test]
    fn slow_calls_open_and_exact_threshold_is_not_slow() {
        let (breaker, _clock) = breaker(small());
        for _ in 0..5 {
            call(&breaker, Outcome::Success, millis(1_500));
        }
        for _ in 0..5 {
            call(&breaker, Outcome::Success, millis(200));
        }
        let snap = breaker.snapshot();
        assert_eq!(snap.state, CircuitState::Open);
        assert_eq!(snap.failure_rate, 0.0);
        assert_eq!(snap.slow_rate, 50.0);
        assert_eq!(snap.slow_calls, 5);

        let (exact, _clock) = self::breaker(small());
        for _ in 0..10 {
            call(&exact, Outcome::Success, millis(1_000));
        }
        let snap = exact.snapshot();
        assert_eq!(snap.state, CircuitState::Closed);
        assert_eq!(snap.slow_calls, 0);
        assert_eq!(snap.slow_rate, 0.0);
        call(
            &exact,
            Outcome::Success,
            Duration::from_nanos(1_000_000_001),
        );
        assert_eq!(exact.snapshot().slow_calls, 1);
    }

    // Case 6.
    #[test]
    fn open_rejects_with_retry_after_and_counts_not_permitted() {
        let (breaker, clock) = breaker(small());
        open(&breaker);
        clock.advance(millis(1_500));
        for expected in 1..=3 {
            let rejected = breaker.try_acquire().unwrap_err();
            assert_eq!(rejected.state, CircuitState::Open);
            assert_eq!(rejected.retry_after, millis(3_500));
            assert_eq!(breaker.snapshot().not_permitted, expected);
        }
        assert_eq!(breaker.snapshot().open_until, Some(millis(3_500)));
    }

    // Case 7.
    #[test]
    fn open_to_half_open_at_exactly_open_until() {
        let (breaker, clock) = breaker(small());
        open(&breaker);
        clock.advance(millis(4_999));
        let rejected = breaker.try_acquire().unwrap_err();
        assert_eq!(rejected.retry_after, millis(1));
        assert_eq!(breaker.state(), CircuitState::Open);
        clock.advance(millis(1));
        let permit = breaker.try_acquire().unwrap();
        let snap = breaker.snapshot();
        assert_eq!(snap.state, CircuitState::HalfOpen);
        assert_eq!(snap.buffered_calls, 0);
        assert_eq!(snap.failure_rate, -1.0);
        drop(permit);

        // Automatic transition: the state flips with no call at all.
        let (auto, clock) = self::breaker(BreakerConfig {
            automatic_transition_from_open_to_half_open: true,
            ..small()
        });
        open(&auto);
        clock.advance(millis(4_999));
        assert_eq!(auto.state(), CircuitState::Open);
        clock.advance(millis(1));
        assert_eq!(auto.state(), CircuitState::HalfOpen);
        assert_eq!(auto.snapshot().not_permitted, 0);
    }

    fn half_open_breaker(config: BreakerConfig) -> (CircuitBreaker, FakeClock) {
        let (breaker, clock) = breaker(config);
        open(&breaker);
        clock.advance(secs(5));
        breaker.transition_to_half_open().unwrap();
        (breaker, clock)
    }

    // Case 8.
    #[test]
    fn half_open_permits_exactly_n() {
        let (breaker, _clock) = half_open_breaker(small());
        let held: Vec<Permit> = (0..3).map(|_| breaker.try_acquire().unwrap()).collect();
        let rejected = breaker.try_acquire().unwrap_err();
        assert_eq!(rejected.state, CircuitState::HalfOpen);
        assert_eq!(rejected.retry_after, HALF_OPEN_FULL_RETRY_AFTER);
        assert_eq!(held.len(), 3);
    }

    // Case 8, under contention.
    #[test]
    fn half_open_permits_exactly_n_under_contention() {
        let (breaker, _clock) = half_open_breaker(small());
        let start = Arc::new(Barrier::new(64));
        let racers: Vec<_> = (0..64)
            .map(|_| {
                let breaker = breaker.clone();
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    breaker.try_acquire().ok()
                })
            })
            .collect();
        let winners: Vec<Permit> = racers
            .into_iter()
            .filter_map(|racer| racer.join().unwrap())
            .collect();
        assert_eq!(winners.len(), 3);
        assert_eq!(breaker.snapshot().not_permitted, 61);
    }

    // Case 9.
    #[test]
    fn half_open_outcome_closes_or_reopens_with_backoff() {
        let (closes, _clock) = half_open_breaker(small());
        call(&closes, Outcome::Success, FAST);
        call(&closes, Outcome::Failure, FAST);
        assert_eq!(closes.state(), CircuitState::HalfOpen);
        call(&closes, Outcome::Success, FAST);
        let snap = closes.snapshot();
        assert_eq!(snap.state, CircuitState::Closed);
        assert_eq!(snap.buffered_calls, 0, "closing starts a fresh window");

        let config = BreakerConfig {
            open_backoff_multiplier: 2.0,
            max_wait_duration_in_open_state: Some(secs(15)),
            ..small()
        };
        let (reopens, clock) = breaker(config);
        open(&reopens);
        let probe_and_fail = || {
            call(&reopens, Outcome::Failure, FAST);
            call(&reopens, Outcome::Success, FAST);
            call(&reopens, Outcome::Failure, FAST);
            assert_eq!(reopens.state(), CircuitState::Open);
        };
        clock.advance(secs(5));
        probe_and_fail();
        // Second opening: 5 s × 2.
        assert_eq!(reopens.try_acquire().unwrap_err().retry_after, secs(10));
        clock.advance(millis(9_999));
        assert!(reopens.try_acquire().is_err());
        clock.advance(millis(1));
        probe_and_fail();
        // Third opening: 5 s × 4 = 20 s, capped at 15 s.
        assert_eq!(reopens.try_acquire().unwrap_err().retry_after, secs(15));
        clock.advance(secs(15));
        call(&reopens, Outcome::Success, FAST);
        call(&reopens, Outcome::Success, FAST);
        call(&reopens, Outcome::Success, FAST);
        assert_eq!(reopens.state(), CircuitState::Closed);
        // A close resets the backoff.
        open(&reopens);
        assert_eq!(reopens.try_acquire().unwrap_err().retry_after, secs(5));
    }

    // Case 10.
    #[test]
    fn ignored_outcomes_release_half_open_permits() {
        let (breaker, _clock) = half_open_breaker(small());
        let first = breaker.try_acquire().unwrap();
        let second = breaker.try_acquire().unwrap();
        let third = breaker.try_acquire().unwrap();
        assert!(breaker.try_acquire().is_err());

        first.record(Outcome::Ignored, FAST);
        let replacement = breaker.try_acquire().unwrap();
        assert!(breaker.try_acquire().is_err());

        drop(second); // caller cancellation
        let another = breaker.try_acquire().unwrap();
        assert!(breaker.try_acquire().is_err());

        let snap = breaker.snapshot();
        assert_eq!(snap.state, CircuitState::HalfOpen);
        assert_eq!(snap.buffered_calls, 0);
        assert_eq!(snap.ignored, 2);
        assert_eq!(snap.failures, 10, "ignored outcomes are not failures");

        for permit in [third, replacement, another] {
            permit.record(Outcome::Success, FAST);
        }
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    // Case 11.
    #[test]
    fn closed_to_half_open_is_illegal_and_changes_nothing() {
        let (breaker, _clock) = breaker(small());
        let generation = breaker.snapshot().generation;
        let err = breaker.transition_to_half_open().unwrap_err();
        assert_eq!(
            err,
            IllegalTransition {
                from: CircuitState::Closed,
                to: CircuitState::HalfOpen
            }
        );
        assert_eq!(breaker.state(), CircuitState::Closed);
        assert_eq!(breaker.snapshot().generation, generation);
    }

    #[test]
    fn state_and_generation_survive_packing() {
        for state in [
            CircuitState::Closed,
            CircuitState::Open,
            CircuitState::HalfOpen,
        ] {
            for generation in [0, 1, GENERATION_MASK] {
                assert_eq!(unpack(pack(state, generation)), (Some(state), generation));
            }
        }
    }

    // Case 12.
    #[test]
    fn stale_generation_never_touches_the_new_window() {
        // With min 1, a single recorded failure would open the breaker.
        let (breaker, clock) = breaker(BreakerConfig {
            minimum_number_of_calls: 1,
            permitted_number_of_calls_in_half_open_state: 1,
            ..small()
        });
        let old = breaker.try_acquire().unwrap();
        call(&breaker, Outcome::Failure, FAST);
        assert_eq!(breaker.state(), CircuitState::Open);
        clock.advance(secs(5));
        call(&breaker, Outcome::Success, FAST);
        let before = breaker.snapshot();
        assert_eq!(before.state, CircuitState::Closed);
        assert_ne!(old.generation(), before.generation);

        old.record(Outcome::Failure, FAST);
        let after = breaker.snapshot();
        assert_eq!(after.state, CircuitState::Closed);
        assert_eq!(after.generation, before.generation);
        assert_eq!(after.buffered_calls, 0);
        assert_eq!(after.failed_calls, 0);
        assert_eq!(after.stale_results, 1);
        assert_eq!(after.failures, before.failures + 1);
    }

    // Case 13.
    #[test]
    fn concurrent_accounting_is_exact() {
        const THREADS: u64 = 16;
        const OPS: u64 = 10_000;
        let clock = FakeClock::at_epoch();
        let breaker = CircuitBreaker::new(
            BreakerConfig {
                sliding_window_size: 50,
                minimum_number_of_calls: 20,
                permitted_number_of_calls_in_half_open_state: 5,
                wait_duration_in_open_state: millis(10),
                ..BreakerConfig::default()
            },
            clock.shared(),
        )
        .unwrap();
        let start = Arc::new(Barrier::new(THREADS as usize));
        let workers: Vec<_> = (0..THREADS)
            .map(|seed| {
                let breaker = breaker.clone();
                let clock = clock.clone();
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    let mut rng = SmallRng::seed_from_u64(seed);
                    let (mut granted, mut rejected) = (0u64, 0u64);
                    start.wait();
                    for _ in 0..OPS {
                        if rng.random_ratio(1, 100) {
                            clock.advance(millis(1));
                        }
                        match breaker.try_acquire() {
                            Ok(permit) => {
                                granted += 1;
                                match rng.random_range(0..4) {
                                    0 => permit.record(Outcome::Success, FAST),
                                    1 => permit.record(Outcome::Failure, FAST),
                                    2 => permit.record(Outcome::Ignored, FAST),
                                    _ => drop(permit),
                                }
                            }
                            Err(_) => rejected += 1,
                        }
                    }
                    (granted, rejected)
                })
            })
            .collect();
        let (granted, rejected) = workers
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .fold((0, 0), |(g, r), (dg, dr)| (g + dg, r + dr));
        let snap = breaker.snapshot();
        assert_eq!(granted + rejected, THREADS * OPS);
        assert_eq!(snap.successes + snap.failures + snap.ignored, granted);
        assert_eq!(snap.not_permitted, rejected);
        assert!(
            snap.generation > 0,
            "the run should have opened the breaker"
        );
    }

    #[test]
    fn half_open_wait_runs_out_to_the_configured_state() {
        for (after, expected) in [
            (StateAfterHalfOpenWait::Open, CircuitState::Open),
            (StateAfterHalfOpenWait::Closed, CircuitState::Closed),
        ] {
            let (breaker, clock) = half_open_breaker(BreakerConfig {
                max_wait_duration_in_half_open_state: secs(1),
                transition_to_state_after_wait_duration: after,
                ..small()
            });
            let late = breaker.try_acquire().unwrap();
            clock.advance(millis(999));
            assert_eq!(breaker.state(), CircuitState::HalfOpen);
            clock.advance(millis(1));
            assert_eq!(breaker.state(), expected);
            late.record(Outcome::Failure, FAST);
            assert_eq!(breaker.state(), expected, "a late probe changes nothing");
        }
    }

    #[test]
    fn snapshot_serializes_for_stats() {
        let (breaker, clock) = breaker(small());
        open(&breaker);
        clock.advance(millis(1_500));
        let json = serde_json::to_value(breaker.snapshot()).unwrap();
        assert_eq!(json["state"], "open");
        assert_eq!(json["open_until"], 3.5);
        assert_eq!(json["failures"], 10);
    }

    #[test]
    fn config_defaults_and_deserialization() {
        let config: BreakerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, BreakerConfig::default());
        assert_eq!(config.sliding_window_size, 100);
        assert_eq!(config.slow_call_duration_threshold, secs(60));
        config.validate().unwrap();

        let config: BreakerConfig = serde_json::from_str(
            r#"{
                "sliding_window_type": "time_based",
                "sliding_window_size": 30,
                "minimum_number_of_calls": 10,
                "failure_rate_threshold": 10,
                "slow_call_duration_threshold": "1.5s",
                "wait_duration_in_open_state": 5,
                "open_backoff_multiplier": 2.0,
                "max_wait_duration_in_open_state": "2m",
                "max_wait_duration_in_half_open_state": "500ms",
                "transition_to_state_after_wait_duration": "closed"
            }"#,
        )
        .unwrap();
        assert_eq!(config.sliding_window_type, SlidingWindowType::TimeBased);
        assert_eq!(config.failure_rate_threshold, 10.0);
        assert_eq!(config.slow_call_duration_threshold, millis(1_500));
        assert_eq!(config.wait_duration_in_open_state, secs(5));
        assert_eq!(config.max_wait_duration_in_open_state, Some(secs(120)));
        assert_eq!(config.max_wait_duration_in_half_open_state, millis(500));
        assert_eq!(
            config.transition_to_state_after_wait_duration,
            StateAfterHalfOpenWait::Closed
        );
        config.validate().unwrap();

        let from_toml: BreakerConfig = toml::from_str(
            "wait_duration_in_open_state = 5\nslow_call_duration_threshold = \"2.5s\"\n",
        )
        .unwrap();
        assert_eq!(from_toml.wait_duration_in_open_state, secs(5));
        assert_eq!(from_toml.slow_call_duration_threshold, millis(2_500));

        let unknown = serde_json::from_str::<BreakerConfig>(r#"{"max_retries": 3}"#);
        assert!(unknown.unwrap_err().to_string().contains("max_retries"));
        // A bare number string means seconds, like a plain number.
        let bare_number =
            serde_json::from_str::<BreakerConfig>(r#"{"wait_duration_in_open_state": "60"}"#);
        assert_eq!(bare_number.unwrap().wait_duration_in_open_state, secs(60));
        let bad_duration =
            serde_json::from_str::<BreakerConfig>(r#"{"wait_duration_in_open_state": "60x"}"#);
        assert!(bad_duration
            .unwrap_err()
            .to_string()
            .contains("unknown unit"));
    }

    #[test]
    fn config_validation_names_the_bad_field() {
        type Breakage = fn(&mut BreakerConfig);
        let cases: [(&str, Breakage); 13] = [
            ("sliding_window_size", |c| c.sliding_window_size = 0),
            ("sliding_window_size", |c| {
                c.sliding_window_size = MAX_WINDOW + 1
            }),
            ("minimum_number_of_calls", |c| c.minimum_number_of_calls = 0),
            ("failure_rate_threshold", |c| c.failure_rate_threshold = 0.0),
            ("failure_rate_threshold", |c| {
                c.failure_rate_threshold = 100.5
            }),
            ("failure_rate_threshold", |c| {
                c.failure_rate_threshold = f64::NAN
            }),
            ("slow_call_rate_threshold", |c| {
                c.slow_call_rate_threshold = -1.0
            }),
            ("slow_call_duration_threshold", |c| {
                c.slow_call_duration_threshold = Duration::ZERO
            }),
            ("permitted_number_of_calls_in_half_open_state", |c| {
                c.permitted_number_of_calls_in_half_open_state = 0
            }),
            ("wait_duration_in_open_state", |c| {
                c.wait_duration_in_open_state = Duration::from_micros(999)
            }),
            ("open_backoff_multiplier", |c| {
                c.open_backoff_multiplier = 0.5
            }),
            ("open_backoff_multiplier", |c| {
                c.open_backoff_multiplier = f64::INFINITY
            }),
            ("max_wait_duration_in_open_state", |c| {
                c.max_wait_duration_in_open_state = Some(secs(10))
            }),
        ];
        for (field, breakage) in cases {
            let mut config = BreakerConfig::default();
            breakage(&mut config);
            let err = config.validate().unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().contains(field));
            let clock = FakeClock::at_epoch();
            assert!(CircuitBreaker::new(config, clock.shared()).is_err());
        }
        let edge = BreakerConfig {
            failure_rate_threshold: 100.0,
            wait_duration_in_open_state: millis(1),
            ..Default::default()
        };
        edge.validate().unwrap();
    }

    #[test]
    fn open_wait_saturates_instead_of_overflowing() {
        let config = BreakerConfig {
            open_backoff_multiplier: 10.0,
            ..BreakerConfig::default()
        };
        assert_eq!(config.open_wait(1), secs(60));
        assert_eq!(config.open_wait(3), secs(6_000));
        assert_eq!(config.open_wait(u32::MAX), Duration::MAX);
    }
}
