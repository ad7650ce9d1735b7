//! Inbound rate limiting for servers built on polyrelay: one GCRA budget per
//! key (a user id, a client address), in this process's memory or shared
//! through Redis by the same admit script as provider limits.
//!
//! Keys are never stored as given: each is replaced by a SHA-256 digest
//! (domain-separated by the limiter's name), so neither process memory
//! growth per key nor a Redis key name depends on, or shows, what the
//! caller passed. While Redis is unreachable, each process limits on its
//! own (the same rate, locally), like the provider limits do.
//!
//! ```
//! use polyrelay::clock::FakeClock;
//! use polyrelay::internal::state::inbound::InboundLimiter;
//!
//! let clock = FakeClock::at_epoch();
//! let limiter = InboundLimiter::new("api", "2/s".parse().unwrap(), None, clock.shared()).unwrap();
//! assert!(limiter.check_local("user-1").allowed);
//! assert!(limiter.check_local("user-1").allowed);
//! assert!(!limiter.check_local("user-1").allowed);
//! assert!(limiter.check_local("user-2").allowed);
//! ```

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::resilience::rate_limit::{Rate, RateDecision, RateLimitConfig, RateLimiter};

/// What one check decided, in the terms of HTTP rate-limit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundDecision {
    /// Whether the request may proceed (its unit was taken).
    pub allowed: bool,
    /// How long until a refused request would be allowed; zero when allowed.
    pub retry_after: Duration,
    /// Requests that could still go through at once after this one.
    pub remaining: u32,
    /// How long until the key's budget is full again.
    pub reset_after: Duration,
    /// The burst: requests allowed back to back from a full budget.
    pub limit: u32,
}

/// One key's limiter and when it was last used.
#[derive(Debug)]
struct Entry {
    limiter: RateLimiter,
    last_used: Duration,
}

#[derive(Debug, Default)]
struct Local {
    entries: HashMap<[u8; 16], Entry>,
    /// Prune idle entries once the map grows past this size.
    prune_at: usize,
}

/// Smallest map size that triggers pruning.
const MIN_PRUNE_AT: usize = 1024;

/// Per-key GCRA for inbound requests; see the module documentation.
#[derive(Debug)]
pub struct InboundLimiter {
    name: String,
    config: RateLimitConfig,
    interval: Duration,
    clock: SharedClock,
    local: Mutex<Local>,
    #[cfg(feature = "redis")]
    shared: Option<Shared>,
}

#[cfg(feature = "redis")]
#[derive(Debug)]
struct Shared {
    backend: super::redis::RedisBackend,
    scripts: super::redis::scripts::Scripts,
}

impl InboundLimiter {
    /// A limiter named `name` (lowercase letters, digits, `-` and `_`, up to
    /// 32: it names the Redis keys) allowing `rate` per key with a burst of
    /// `burst` (default: the rate's requests), shared through `redis` when
    /// given, reading time from `clock`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Config`] naming `name`, `rate` or `burst`.
    pub fn new(
        name: &str,
        rate: Rate,
        burst: Option<u32>,
        clock: SharedClock,
    ) -> crate::Result<Self> {
        let valid_name = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(crate::Error::config(
                "name",
                "must be 1 to 32 lowercase letters, digits, `-` or `_`",
            ));
        }
        let config = RateLimitConfig { rate, burst };
        config
            .validate()
            .map_err(|e| crate::Error::config(e.field, e.reason))?;
        let interval_ns = rate.per.as_nanos().div_ceil(u128::from(rate.requests));
        let interval = Duration::from_nanos(u64::try_from(interval_ns).unwrap_or(u64::MAX));
        Ok(Self {
            name: name.to_owned(),
            config,
            interval,
            clock,
            local: Mutex::new(Local {
                entries: HashMap::new(),
                prune_at: MIN_PRUNE_AT,
            }),
            #[cfg(feature = "redis")]
            shared: None,
        })
    }

    /// Shares the budgets through `backend` (the same connection, deadline
    /// and breaker as the rest of polyrelay's Redis state).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Config`] when burst × interval is too long for the
    /// shared script's arithmetic (100 years).
    #[cfg(feature = "redis")]
    pub fn with_redis(mut self, backend: super::redis::RedisBackend) -> crate::Result<Self> {
        if self.tolerance() > Duration::from_secs(100 * 365 * 86_400) {
            return Err(crate::Error::config(
                "burst",
                "burst × interval must be under 100 years for the shared limiter",
            ));
        }
        self.shared = Some(Shared {
            backend,
            scripts: super::redis::scripts::Scripts::new(super::redis::scripts::TimeSource::Server),
        });
        Ok(self)
    }

    /// Whether budgets are shared through Redis.
    pub fn is_shared(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.shared.is_some();
        #[cfg(not(feature = "redis"))]
        false
    }

    /// Whether the shared limiter currently falls back to local budgets
    /// (Redis unreachable); `false` for a local limiter.
    pub fn degraded(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.shared.as_ref().is_some_and(|s| s.backend.degraded());
        #[cfg(not(feature = "redis"))]
        false
    }

    /// The burst: requests allowed back to back from a full budget.
    pub fn limit(&self) -> u32 {
        self.config.effective_burst()
    }

    /// The sustained rate.
    pub fn rate(&self) -> Rate {
        self.config.rate
    }

    fn tolerance(&self) -> Duration {
        self.interval.saturating_mul(self.limit())
    }

    /// The digest a key is known by: never the key itself.
    fn digest(&self, key: &str) -> [u8; 16] {
        let mut hasher = Sha256::new();
        hasher.update(b"polyrelay-inbound\0");
        hasher.update(self.name.as_bytes());
        hasher.update(b"\0");
        hasher.update(key.as_bytes());
        let full = hasher.finalize();
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&full[..16]);
        digest
    }

    /// Takes one unit of `key`'s budget if it conforms now, from this
    /// process's memory only.
    pub fn check_local(&self, key: &str) -> InboundDecision {
        let digest = self.digest(key);
        let now = self.clock.now();
        let mut local = self.local.lock();
        if local.entries.len() >= local.prune_at {
            // An entry idle for a whole tolerance is back to a full budget:
            // dropping it changes no decision.
            let tolerance = self.tolerance();
            local
                .entries
                .retain(|_, entry| now.saturating_sub(entry.last_used) < tolerance);
            local.prune_at = (local.entries.len() * 2).max(MIN_PRUNE_AT);
        }
        let entry = match local.entries.entry(digest) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(vacant) => {
                let Ok(limiter) = RateLimiter::new(&self.config, self.clock.clone()) else {
                    // Validated in `new`; never reached.
                    return self.allowed(0);
                };
                vacant.insert(Entry {
                    limiter,
                    last_used: now,
                })
            }
        };
        entry.last_used = now;
        match entry.limiter.check(1) {
            RateDecision::Allowed { remaining } => self.allowed(remaining.unwrap_or(0)),
            RateDecision::Limited { retry_after } => self.refused(retry_after),
            RateDecision::InsufficientCapacity { .. } => self.refused(self.tolerance()),
        }
    }

    /// Takes one unit of `key`'s budget if it conforms now: through Redis
    /// when shared (falling back to local budgets while it is unreachable),
    /// else from memory.
    pub async fn check(&self, key: &str) -> InboundDecision {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            if let Some(decision) = self.check_shared(shared, key).await {
                return decision;
            }
        }
        self.check_local(key)
    }

    #[cfg(feature = "redis")]
    async fn check_shared(&self, shared: &Shared, key: &str) -> Option<InboundDecision> {
        // One hash-tagged key; the admit script's quota key is unused
        // (limit 0), so it is the same key, keeping one slot in a cluster.
        let redis_key = shared.backend.key(&format!(
            "in:{}:{{{}}}",
            self.name,
            hex::encode(self.digest(key))
        ));
        let interval_us = u64::try_from(self.interval.as_micros().max(1)).unwrap_or(u64::MAX);
        let burst = self.limit();
        let deadline = shared.backend.config().state_timeout;
        let values: Vec<i64> = shared
            .backend
            .run(deadline, |mut connection| {
                let mut invocation = shared.scripts.admit.key(&redis_key);
                invocation
                    .key(&redis_key)
                    .arg(1)
                    .arg(0)
                    .arg(0)
                    .arg(0)
                    .arg(0)
                    .arg(interval_us)
                    .arg(burst);
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await
            .ok()?;
        let field = |i: usize| values.get(i).copied().unwrap_or_default();
        let millis = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        let remaining = u32::try_from(field(4).max(0)).unwrap_or(u32::MAX);
        Some(if field(0) == 0 {
            InboundDecision {
                allowed: true,
                retry_after: Duration::ZERO,
                remaining,
                reset_after: millis(field(6)),
                limit: burst,
            }
        } else {
            InboundDecision {
                allowed: false,
                retry_after: millis(field(5).max(0)),
                remaining: 0,
                reset_after: millis(field(6)),
                limit: burst,
            }
        })
    }

    fn allowed(&self, remaining: u32) -> InboundDecision {
        let used = self.limit().saturating_sub(remaining);
        InboundDecision {
            allowed: true,
            retry_after: Duration::ZERO,
            remaining,
            reset_after: self.interval.saturating_mul(used),
            limit: self.limit(),
        }
    }

    fn refused(&self, retry_after: Duration) -> InboundDecision {
        let full_after = self.interval.saturating_mul(self.limit().saturating_sub(1));
        InboundDecision {
            allowed: false,
            retry_after,
            remaining: 0,
            reset_after: retry_after.saturating_add(full_after),
            limit: self.limit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    fn limiter(clock: &FakeClock, rate: &str, burst: Option<u32>) -> InboundLimiter {
        InboundLimiter::new("test", rate.parse().unwrap(), burst, clock.shared()).unwrap()
    }

    #[test]
    fn each_key_has_its_own_budget_and_refusals_say_when() {
        let clock = FakeClock::at_epoch();
        let limiter = limiter(&clock, "3/min", None);
        for left in [2, 1, 0] {
            let decision = limiter.check_local("alice");
            assert!(decision.allowed);
            assert_eq!(decision.remaining, left);
            assert_eq!(decision.limit, 3);
        }
        let refused = limiter.check_local("alice");
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(20));
        assert_eq!(refused.reset_after, Duration::from_secs(60));
        assert!(limiter.check_local("bob").allowed);
        clock.advance(Duration::from_secs(20));
        assert!(limiter.check_local("alice").allowed);
        assert!(!limiter.check_local("alice").allowed);
    }

    #[test]
    fn idle_keys_are_pruned_without_changing_decisions() {
        let clock = FakeClock::at_epoch();
        let limiter = limiter(&clock, "1/s", None);
        for i in 0..MIN_PRUNE_AT - 1 {
            assert!(limiter.check_local(&format!("client-{i}")).allowed);
        }
        assert!(!limiter.check_local("client-0").allowed);
        assert!(limiter.check_local("one-more").allowed);
        assert_eq!(limiter.local.lock().entries.len(), MIN_PRUNE_AT);
        // Every entry has been idle for over a tolerance (1 s): the next
        // check finds the map full and drops them all.
        clock.advance(Duration::from_secs(2));
        assert!(limiter.check_local("fresh").allowed);
        assert_eq!(limiter.local.lock().entries.len(), 1);
        assert!(limiter.check_local("client-0").allowed);
    }

    #[test]
    fn bad_names_and_rates_are_refused() {
        let clock = FakeClock::at_epoch();
        let rate: Rate = "1/s".parse().unwrap();
        for name in ["", "Has Space", "x{y}", &"a".repeat(33)] {
            assert!(InboundLimiter::new(name, rate, None, clock.shared()).is_err());
        }
        assert!(InboundLimiter::new("ok", rate, Some(0), clock.shared()).is_err());
        let zero = Rate {
            requests: 0,
            per: Duration::from_secs(1),
        };
        assert!(InboundLimiter::new("ok", zero, None, clock.shared()).is_err());
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn redis_shares_budgets_between_limiters_and_hides_keys() {
        use crate::clock::SystemClock;
        use crate::state::redis::{RedisBackend, RedisConfig};

        let server = super::super::redis::test_server::RedisServer::start();
        let shared = |clock: SharedClock| {
            let backend =
                RedisBackend::new(&RedisConfig::new(&server.url()), clock.clone()).unwrap();
            InboundLimiter::new("login", "2/min".parse().unwrap(), None, clock)
                .unwrap()
                .with_redis(backend)
                .unwrap()
        };
        let first = shared(SystemClock::shared());
        let second = shared(SystemClock::shared());
        assert!(first.is_shared());
        assert!(first.check("203.0.113.7").await.allowed);
        let decision = second.check("203.0.113.7").await;
        assert!(decision.allowed);
        assert_eq!(decision.remaining, 0);
        let refused = first.check("203.0.113.7").await;
        assert!(!refused.allowed);
        assert!(refused.retry_after > Duration::from_secs(25));
        assert!(refused.retry_after <= Duration::from_secs(30));
        assert!(!first.degraded());
        let keys = server.keys("polyrelay:*");
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert!(keys[0].starts_with("polyrelay:in:login:{"), "{keys:?}");
        assert!(!keys[0].contains("203.0.113.7"));
        assert!(server.pttl(&keys[0]) > 0);
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn unreachable_redis_falls_back_to_local_budgets() {
        use crate::clock::SystemClock;
        use crate::state::redis::{RedisBackend, RedisConfig};

        let clock = FakeClock::at_epoch();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The backend on the system clock: its deadline must really pass.
        let url = format!("redis://127.0.0.1:{port}");
        let backend = RedisBackend::new(&RedisConfig::new(&url), SystemClock::shared()).unwrap();
        let limiter = limiter(&clock, "1/min", None).with_redis(backend).unwrap();
        assert!(limiter.check("10.0.0.1").await.allowed);
        assert!(limiter.degraded());
        assert!(!limiter.check("10.0.0.1").await.allowed);
    }
}
