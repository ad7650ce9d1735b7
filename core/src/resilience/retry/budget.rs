//! The retry budget: retries at most a share of recent original requests,
//! plus a small reserve.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::InvalidRetryConfig;
use crate::clock::SharedClock;
use crate::duration::serde_secs;

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
    pub(super) fn validate(&self) -> Result<(), InvalidRetryConfig> {
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
/// use polyrelay::internal::resilience::retry::{RetryBudget, RetryBudgetConfig};
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
    /// false. Out-of-range values are clamped ([`RetryConfig::validate`](super::RetryConfig::validate)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::FakeClock;

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

    // ---- retry budget ----

    #[test]
    fn two_deposits_at_half_percent_allow_exactly_one_retry() {
        let (_clock, budget) = budget(secs(1), 0, 0.5);
        budget.deposit();
        budget.deposit();
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
    }

    #[test]
    fn deposits_expire_after_the_ttl() {
        // tower `tps_leaky`
        let (clock, budget) = budget(secs(1), 0, 1.0);
        budget.deposit();
        clock.advance(secs(3));
        assert!(!budget.withdraw());
    }

    #[test]
    fn min_per_sec_is_a_reserve_without_deposits() {
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
}
