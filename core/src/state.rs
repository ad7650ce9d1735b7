//! Shared state behind one trait: daily quotas and rate limits.
//!
//! The pipeline only ever asks two atomic questions per request it is about
//! to send: "may I spend one unit of this provider's daily quota?" and "does
//! this provider's rate limiter admit one more request now?". The embedded
//! default, [`InMemoryState`], answers from process memory. A Redis
//! implementation answers the same questions with Lua scripts so that many
//! processes share one budget, without the pipeline changing.
//!
//! Breakers stay per process (resilience.md §3.1) and the response cache has
//! its own tiers, so neither is part of this trait.

use std::collections::HashMap;
use std::fmt;

use futures::future::{BoxFuture, Either};

use crate::clock::SharedClock;
use crate::resilience::quota::{DailyQuota, QuotaDecision, QuotaSnapshot};
use crate::resilience::rate_limit::{RateDecision, RateLimitConfig, RateLimiter};

/// What a [`StateStore`] operation returns: ready at once for in-memory
/// state (no allocation on the hot path), or a boxed future for a store that
/// does I/O.
pub type StateFuture<'a, T> = Either<std::future::Ready<T>, BoxFuture<'a, T>>;

/// An answer that is already known.
pub fn ready<'a, T>(value: T) -> StateFuture<'a, T> {
    Either::Left(std::future::ready(value))
}

/// The limits of one provider, registered with a store when a client is built.
#[derive(Debug, Clone)]
pub struct ProviderLimits {
    /// Provider id.
    pub provider: &'static str,
    /// Client-side rate limit, if any.
    pub rate_limit: Option<RateLimitConfig>,
    /// Daily request quota, if any.
    pub daily_quota: Option<u64>,
    /// Calendar of the daily quota.
    pub timezone: chrono_tz::Tz,
}

/// Atomic operations on state that may be shared across processes.
///
/// Implementations must never fail a call: when their backend is unreachable
/// they answer from local state (see the Redis outage contract).
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Consumes `cost` units of `provider`'s daily quota if that many remain.
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
}

/// The embedded default: everything in this process's memory.
pub struct InMemoryState {
    providers: HashMap<&'static str, Guards>,
}

struct Guards {
    limiter: Option<RateLimiter>,
    quota: Option<DailyQuota>,
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
        let mut providers = HashMap::with_capacity(limits.len());
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
                .daily_quota
                .map(|n| DailyQuota::new(n, limit.timezone, clock.clone()));
            providers.insert(limit.provider, Guards { limiter, quota });
        }
        Ok(Self { providers })
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
            .map(DailyQuota::snapshot)
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
