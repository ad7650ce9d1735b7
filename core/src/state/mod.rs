//! Shared state behind one trait: request quotas, rate limits and spending
//! budgets.
//!
//! The pipeline only ever asks two atomic questions per request it is about
//! to send: "may I spend one unit of this provider's quota?" and "does
//! this provider's rate limiter admit one more request now?". The embedded
//! default, [`InMemoryState`], answers from process memory. The Redis
//! implementation ([`redis::RedisState`], cargo feature `redis`) answers the
//! same questions with Lua scripts so that many processes share one budget,
//! without the pipeline changing. [`StateStore::admit`] asks both questions
//! at once, so a shared store can answer them in one round trip.
//!
//! Breakers stay per process (each reacts at once to what its own process
//! sees, without a round trip) and the response cache has its own tiers, so
//! neither is part of this trait.

pub mod inbound;
pub mod redis;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::Either;

use parking_lot::Mutex;

use crate::clock::SharedClock;
use crate::resilience::budget::{BudgetCharge, BudgetDecision, BudgetLimit};
use crate::resilience::quota::{CalendarQuota, Quota, QuotaDecision, QuotaSnapshot};
use crate::resilience::rate_limit::{RateDecision, RateLimitConfig, RateLimiter};

pub use crate::state_future::{ready, StateFuture};

/// The limits of one provider, registered with a store when a client is built.
#[derive(Debug, Clone)]
pub struct ProviderLimits {
    /// Provider id.
    pub provider: &'static str,
    /// Client-side rate limit, if any.
    pub rate_limit: Option<RateLimitConfig>,
    /// Request quota per calendar day or month, if any.
    pub quota: Option<Quota>,
    /// Calendar of the quota.
    pub timezone: chrono_tz::Tz,
}

/// What [`StateStore::admit`] decided about one request about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// One quota unit and one limiter token per unit of cost were taken.
    Admitted,
    /// The quota (day or month) is used up; nothing was taken.
    QuotaExhausted {
        /// When the window ends and the quota resets.
        reset_at: DateTime<Utc>,
        /// Time until `reset_at`.
        retry_after: Duration,
    },
    /// The rate limiter does not admit the request now; nothing was taken.
    RateLimited {
        /// When the same request would be admitted.
        retry_after: Duration,
    },
    /// The cost is larger than the limiter's burst: never admitted.
    InsufficientCapacity {
        /// The limiter's burst.
        burst: u32,
    },
}

/// Atomic operations on state that may be shared across processes.
///
/// Implementations must never fail a call: when their backend is unreachable
/// they answer from local state (see the Redis outage contract).
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Consumes `cost` units of `provider`'s quota if that many remain.
    /// Providers without a quota are always allowed.
    fn consume_quota(&self, provider: &'static str, cost: u64) -> StateFuture<'_, QuotaDecision>;

    /// Gives back units for requests that were never sent.
    fn refund_quota(&self, provider: &'static str, cost: u64) -> StateFuture<'_, ()>;

    /// Asks `provider`'s rate limiter to admit `cost` requests now.
    fn check_rate(&self, provider: &'static str, cost: u32) -> StateFuture<'_, RateDecision>;

    /// The quota counters of `provider`, if it has a quota.
    fn quota_snapshot(&self, provider: &'static str) -> Option<QuotaSnapshot>;

    /// A short name for health reports (`memory`, `redis`).
    fn backend(&self) -> &'static str;

    /// Takes each charge's units from its budget's current window: from
    /// every budget, or, when one has fewer units left than asked, from
    /// none. A store knows a budget from the first charge naming it.
    fn reserve_budgets<'a>(
        &'a self,
        charges: &'a [BudgetCharge],
    ) -> StateFuture<'a, BudgetDecision>;

    /// Adds `delta` units to `budget`'s current window: a negative delta
    /// gives a reservation back (never below zero), a positive one charges
    /// what an answer used beyond its estimate, even past the limit.
    fn adjust_budget(&self, budget: BudgetLimit, delta: i64) -> StateFuture<'_, ()>;

    /// `budget`'s counter now, in its units.
    fn budget_snapshot(&self, budget: BudgetLimit) -> QuotaSnapshot;

    /// The quota, then the rate limiter, for one request about to be
    /// sent: takes `cost` from both or from neither. A shared store overrides
    /// this to answer in one round trip; the default asks
    /// [`consume_quota`](Self::consume_quota), then
    /// [`check_rate`](Self::check_rate), and refunds the quota when the
    /// limiter says no.
    fn admit(&self, provider: &'static str, cost: u32) -> StateFuture<'_, Admission> {
        Either::Right(Box::pin(async move {
            if let QuotaDecision::Exhausted {
                reset_at,
                retry_after,
            } = self.consume_quota(provider, u64::from(cost)).await
            {
                return Admission::QuotaExhausted {
                    reset_at,
                    retry_after,
                };
            }
            let admission = Admission::from(self.check_rate(provider, cost).await);
            if admission != Admission::Admitted {
                self.refund_quota(provider, u64::from(cost)).await;
            }
            admission
        }))
    }

    /// Whether the store is answering from local state because its shared
    /// backend is unreachable (always false for in-memory state).
    fn degraded(&self) -> bool {
        false
    }

    /// Asks the shared backend to answer now (one round trip within
    /// `deadline`, through its breaker): `None` for a store without one
    /// (in-memory state), else whether it answered.
    fn ping(&self, deadline: Duration) -> StateFuture<'_, Option<bool>> {
        let _ = deadline;
        ready(None)
    }
}

impl From<RateDecision> for Admission {
    fn from(decision: RateDecision) -> Self {
        match decision {
            RateDecision::Allowed { .. } => Admission::Admitted,
            RateDecision::Limited { retry_after } => Admission::RateLimited { retry_after },
            RateDecision::InsufficientCapacity { burst } => {
                Admission::InsufficientCapacity { burst }
            }
        }
    }
}

/// Where quota counters outlive the process: the analytics SQLite file
/// (`[analytics] sqlite`), which implements it.
pub(crate) trait QuotaFile: Send + Sync {
    /// `provider`'s saved counter: its window's label (`2025-10-26`,
    /// `2025-10`) and the units used in it.
    fn load_quota(&self, provider: &str) -> Option<(String, u64)>;
    /// Saves counters, `(provider, window label, used)`, all at once.
    fn save_quotas(&self, counters: &[(&str, String, u64)]);
}

/// The embedded default: everything in this process's memory.
pub struct InMemoryState {
    /// Looked up on every call: foldhash, not SipHash (the keys are our own
    /// provider ids, so there is nothing to defend against).
    providers: HashMap<&'static str, Guards, foldhash::fast::RandomState>,
    /// Budget counters by name, made on first use; one lock makes a
    /// reservation on several budgets all or nothing.
    budgets: Mutex<HashMap<&'static str, CalendarQuota, foldhash::fast::RandomState>>,
    clock: SharedClock,
    /// The file the quota counters are kept in across restarts, if any.
    saved_to: Option<Arc<dyn QuotaFile>>,
}

struct Guards {
    limiter: Option<RateLimiter>,
    quota: Option<CalendarQuota>,
}

impl fmt::Debug for InMemoryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryState")
            .field("providers", &self.providers.len())
            .finish()
    }
}

impl InMemoryState {
    /// A store enforcing `limits`, on `clock`.
    pub fn new(limits: &[ProviderLimits], clock: SharedClock) -> crate::Result<Self> {
        let mut providers =
            HashMap::with_capacity_and_hasher(limits.len(), foldhash::fast::RandomState::default());
        for limit in limits {
            let limiter = match &limit.rate_limit {
                Some(config) => Some(RateLimiter::new(config, clock.clone()).map_err(|e| {
                    crate::Error::config(
                        format!("providers.{}.rate_limit", limit.provider),
                        e.to_string(),
                    )
                })?),
                None => None,
            };
            let quota = limit
                .quota
                .map(|quota| CalendarQuota::new(quota, limit.timezone, clock.clone()));
            providers.insert(limit.provider, Guards { limiter, quota });
        }
        Ok(Self {
            providers,
            budgets: Mutex::default(),
            clock,
            saved_to: None,
        })
    }

    /// Keeps the quota counters in `file`: the counts saved there for the
    /// current day or month are taken back now, and saved again by
    /// [`InMemoryState::save_quotas`] and when this store is dropped.
    pub(crate) fn keep_quotas_in(mut self, file: Arc<dyn QuotaFile>) -> Self {
        for (provider, guards) in &self.providers {
            if let (Some(quota), Some((label, used))) = (&guards.quota, file.load_quota(provider)) {
                quota.restore(&label, used);
            }
        }
        self.saved_to = Some(file);
        self
    }

    /// Saves every quota counter to the file given to
    /// [`InMemoryState::keep_quotas_in`], if any.
    pub(crate) fn save_quotas(&self) {
        let Some(file) = &self.saved_to else {
            return;
        };
        let counters: Vec<(&str, String, u64)> = self
            .providers
            .iter()
            .filter_map(|(provider, guards)| {
                let (label, used) = guards.quota.as_ref()?.saved();
                Some((*provider, label, used))
            })
            .collect();
        file.save_quotas(&counters);
    }
}

impl Drop for InMemoryState {
    fn drop(&mut self) {
        self.save_quotas();
    }
}

/// A budget's counter as a calendar quota of its units.
pub(crate) fn budget_counter(budget: BudgetLimit, clock: SharedClock) -> CalendarQuota {
    CalendarQuota::new(
        Quota {
            limit: budget.limit,
            period: budget.period,
        },
        budget.timezone,
        clock,
    )
}

/// Reserves `charges` on local counters, all or none.
pub(crate) fn reserve_locally(
    counters: &mut HashMap<&'static str, CalendarQuota, foldhash::fast::RandomState>,
    charges: &[BudgetCharge],
    new_counter: impl Fn(BudgetLimit) -> CalendarQuota,
) -> BudgetDecision {
    for (i, charge) in charges.iter().enumerate() {
        let counter = counters
            .entry(charge.budget.name)
            .or_insert_with(|| new_counter(charge.budget));
        if let QuotaDecision::Exhausted { reset_at, .. } = counter.try_consume(charge.units) {
            let left = counter.remaining();
            for taken in &charges[..i] {
                if let Some(counter) = counters.get(taken.budget.name) {
                    counter.refund(taken.units);
                }
            }
            return BudgetDecision::Exhausted {
                budget: charge.budget.name,
                left,
                reset_at,
            };
        }
    }
    BudgetDecision::Reserved
}

/// Adds a signed `delta` to a local counter.
pub(crate) fn adjust_locally(counter: &CalendarQuota, delta: i64) {
    if delta < 0 {
        counter.refund(delta.unsigned_abs());
    } else {
        counter.charge(delta.unsigned_abs());
    }
}

impl StateStore for InMemoryState {
    fn consume_quota(&self, provider: &'static str, cost: u64) -> StateFuture<'_, QuotaDecision> {
        let decision = match self.providers.get(provider).and_then(|g| g.quota.as_ref()) {
            Some(quota) => quota.try_consume(cost),
            None => QuotaDecision::Allowed {
                remaining: u64::MAX,
            },
        };
        ready(decision)
    }

    fn refund_quota(&self, provider: &'static str, cost: u64) -> StateFuture<'_, ()> {
        if let Some(quota) = self.providers.get(provider).and_then(|g| g.quota.as_ref()) {
            quota.refund(cost);
        }
        ready(())
    }

    fn check_rate(&self, provider: &'static str, cost: u32) -> StateFuture<'_, RateDecision> {
        let decision = match self
            .providers
            .get(provider)
            .and_then(|g| g.limiter.as_ref())
        {
            Some(limiter) => limiter.check(cost),
            None => RateDecision::Allowed { remaining: None },
        };
        ready(decision)
    }

    fn quota_snapshot(&self, provider: &'static str) -> Option<QuotaSnapshot> {
        self.providers
            .get(provider)
            .and_then(|g| g.quota.as_ref())
            .map(CalendarQuota::snapshot)
    }

    fn backend(&self) -> &'static str {
        "memory"
    }

    fn reserve_budgets<'a>(
        &'a self,
        charges: &'a [BudgetCharge],
    ) -> StateFuture<'a, BudgetDecision> {
        let clock = &self.clock;
        ready(reserve_locally(
            &mut self.budgets.lock(),
            charges,
            |budget| budget_counter(budget, clock.clone()),
        ))
    }

    fn adjust_budget(&self, budget: BudgetLimit, delta: i64) -> StateFuture<'_, ()> {
        let mut budgets = self.budgets.lock();
        let counter = budgets
            .entry(budget.name)
            .or_insert_with(|| budget_counter(budget, self.clock.clone()));
        adjust_locally(counter, delta);
        ready(())
    }

    fn budget_snapshot(&self, budget: BudgetLimit) -> QuotaSnapshot {
        let mut budgets = self.budgets.lock();
        budgets
            .entry(budget.name)
            .or_insert_with(|| budget_counter(budget, self.clock.clone()))
            .snapshot()
    }

    fn admit(&self, provider: &'static str, cost: u32) -> StateFuture<'_, Admission> {
        let Some(guards) = self.providers.get(provider) else {
            return ready(Admission::Admitted);
        };
        if let Some(quota) = &guards.quota {
            if let QuotaDecision::Exhausted {
                reset_at,
                retry_after,
            } = quota.try_consume(u64::from(cost))
            {
                return ready(Admission::QuotaExhausted {
                    reset_at,
                    retry_after,
                });
            }
        }
        let admission = guards
            .limiter
            .as_ref()
            .map_or(Admission::Admitted, |limiter| limiter.check(cost).into());
        if admission != Admission::Admitted {
            if let Some(quota) = &guards.quota {
                quota.refund(u64::from(cost));
            }
        }
        ready(admission)
    }
}
