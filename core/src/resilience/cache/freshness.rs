//! Freshness: each stored answer's logical lifetimes (fresh, then served
//! stale while one refresh runs, or when the refresh fails), read on the
//! injected clock, and what a lookup past freshness does.

use std::collections::hash_map::Entry;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{CacheOutcome, CacheSource, CacheState, Counters, Fetched, Step};

/// How long moka keeps an entry past its last logical use, so that the small
/// drift between moka's clock and ours never evicts an entry we could still serve.
pub(super) const PHYSICAL_MARGIN: Duration = Duration::from_secs(1);

/// The logical lifetimes of one stored answer, chosen per call so that each
/// capability can have its own freshness.
///
/// Stale windows start when freshness ends: with `ttl = 10s` and
/// `stale_if_error = 60s` a value stored at `t` may be served on error until
/// `t + 70s`. A negative answer is fresh for `negative_ttl` and is never served
/// stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlPolicy {
    /// How long a value is fresh.
    pub ttl: Duration,
    /// How long past freshness it is served while a background refresh runs.
    pub stale_while_revalidate: Duration,
    /// How long past freshness it is served when a refresh fails.
    pub stale_if_error: Duration,
    /// How long a "not found" answer is fresh.
    pub negative_ttl: Duration,
}

/// One stored answer with its logical lifetimes, in the clock's monotonic time.
pub(super) struct Envelope<V> {
    pub(super) value: V,
    pub(super) negative: bool,
    pub(super) stored_at: Duration,
    pub(super) fresh_until: Duration,
    pub(super) swr_until: Duration,
    pub(super) sie_until: Duration,
    /// Monotonic nanoseconds until which no refresh may run after a failed one
    /// (zero: none). Atomic so that a failure never has to re-insert the entry,
    /// which could resurrect an entry invalidated meanwhile.
    pub(super) throttle_until: AtomicU64,
}

impl<V: Clone> Envelope<V> {
    pub(super) fn new(fetched: Fetched<V>, now: Duration, policy: TtlPolicy) -> Self {
        let (value, negative) = fetched.into_parts();
        let (fresh, swr, sie) = if negative {
            (policy.negative_ttl, Duration::ZERO, Duration::ZERO)
        } else {
            (
                policy.ttl,
                policy.stale_while_revalidate,
                policy.stale_if_error,
            )
        };
        let fresh_until = now.saturating_add(fresh);
        Self {
            value,
            negative,
            stored_at: now,
            fresh_until,
            swr_until: fresh_until.saturating_add(swr),
            sie_until: fresh_until.saturating_add(sie),
            throttle_until: AtomicU64::new(0),
        }
    }

    pub(super) fn outcome(&self, now: Duration, source: CacheSource) -> CacheOutcome<V> {
        CacheOutcome {
            value: self.value.clone(),
            negative: self.negative,
            source,
            age: now.saturating_sub(self.stored_at),
        }
    }

    pub(super) fn throttled(&self, now: Duration) -> bool {
        nanos(now) < self.throttle_until.load(Ordering::Relaxed)
    }

    pub(super) fn throttle(&self, until: Duration) {
        self.throttle_until.store(nanos(until), Ordering::Relaxed);
    }

    /// How long moka must keep the entry: until the last moment it can be served.
    pub(super) fn physical_ttl(&self) -> Duration {
        self.swr_until
            .max(self.sie_until)
            .saturating_sub(self.stored_at)
            .saturating_add(PHYSICAL_MARGIN)
    }
}

fn nanos(at: Duration) -> u64 {
    u64::try_from(at.as_nanos()).unwrap_or(u64::MAX)
}

/// Gives each moka entry its envelope's physical lifetime.
pub(super) struct EnvelopeExpiry;

impl<K, V: Clone> moka::Expiry<K, Arc<Envelope<V>>> for EnvelopeExpiry {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Arc<Envelope<V>>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.physical_ttl())
    }

    fn expire_after_update(
        &self,
        _key: &K,
        value: &Arc<Envelope<V>>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.physical_ttl())
    }
}

impl<K, V> CacheState<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Decides what a non-fresh lookup does. The entry is re-read under the
    /// flights lock: a leader stores its entry before leaving the map, so a call
    /// either joins a flight or sees that flight's result, never fetching twice.
    pub(super) fn decide(&self, key: &K) -> Step<V> {
        let mut flights = self.flights.lock();
        let now = self.clock.now();
        let entry = self.l1.get(key);
        if let Some(entry) = &entry {
            if now < entry.fresh_until {
                return Step::Serve(self.fresh_hit(entry, now));
            }
            let throttled = entry.throttled(now);
            if now < entry.swr_until {
                let in_flight = flights.contains_key(key);
                let runtime = if throttled || in_flight {
                    None
                } else {
                    tokio::runtime::Handle::try_current().ok()
                };
                // Without a runtime to refresh in the background, refresh below.
                if throttled || in_flight || runtime.is_some() {
                    Counters::bump(&self.counters.stale_hits);
                    let revalidating = in_flight || runtime.is_some();
                    let outcome = entry.outcome(now, CacheSource::Stale { revalidating });
                    return match runtime {
                        Some(runtime) => {
                            flights.insert(key.clone(), watch::Sender::new(None));
                            Step::Revalidate(outcome, Arc::clone(entry), runtime)
                        }
                        None => Step::Serve(outcome),
                    };
                }
            }
            if throttled && now < entry.sie_until {
                Counters::bump(&self.counters.stale_hits);
                return Step::Serve(entry.outcome(now, CacheSource::StaleIfError));
            }
        }
        match flights.entry(key.clone()) {
            Entry::Occupied(flight) => Step::Wait(flight.get().subscribe()),
            Entry::Vacant(slot) => {
                slot.insert(watch::Sender::new(None));
                Step::Lead(entry)
            }
        }
    }

    /// Takes a fresh answer from the shared tier, or runs `fetch` and stores its
    /// answer (in L1, then the shared tier). On failure starts the failure
    /// throttle on the newest stale entry (`previous`, or the shared tier's) and
    /// serves it if inside its `stale_if_error` window. `foreground` calls count
    /// as a hit or a miss.
    pub(super) async fn refresh<F, Fut, E>(
        &self,
        key: &K,
        ttl: TtlPolicy,
        fetch: F,
        mut previous: Option<Arc<Envelope<V>>>,
        foreground: bool,
    ) -> Result<CacheOutcome<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched<V>, E>>,
    {
        if let Some(found) = self.read_shared(key).await {
            let now = self.clock.now();
            let found = Arc::new(found);
            if now < found.fresh_until {
                Counters::bump(&self.counters.shared_hits);
                if foreground {
                    self.fresh_hit(&found, now);
                }
                let outcome = found.outcome(now, CacheSource::Hit);
                self.l1.insert(key.clone(), found);
                return Ok(outcome);
            }
            if previous
                .as_ref()
                .is_none_or(|p| found.sie_until.max(found.swr_until) > p.sie_until.max(p.swr_until))
            {
                // Kept in L1 so that a failure throttle set on it holds.
                self.l1.insert(key.clone(), Arc::clone(&found));
                previous = Some(found);
            }
        }
        if foreground {
            Counters::bump(&self.counters.misses);
        }
        let fetched = fetch().await;
        let now = self.clock.now();
        match fetched {
            Ok(fetched) => {
                let entry = Envelope::new(fetched, now, ttl);
                let outcome = entry.outcome(now, CacheSource::Miss);
                self.write_shared(key, &entry);
                self.l1.insert(key.clone(), Arc::new(entry));
                Ok(outcome)
            }
            Err(error) => match previous {
                Some(stale) => {
                    stale.throttle(now.saturating_add(self.fail_safe_throttle));
                    if now < stale.sie_until {
                        Ok(stale.outcome(now, CacheSource::StaleIfError))
                    } else {
                        Err(error)
                    }
                }
                None => Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::cache::test_fixtures::*;

    // Stale-while-revalidate.
    #[tokio::test]
    async fn stale_while_revalidate_serves_at_once_and_refreshes_once() {
        let clock = FakeClock::at_epoch();
        let cache = new_cache(&clock, CacheConfig::default());
        let ttl = policy(10, 20, 0);
        prime(&cache, ttl, "v1").await;
        clock.advance(secs(15));

        let calls = Arc::new(AtomicUsize::new(0));
        let (open, gate) = watch::channel(false);
        // The refresh cannot finish before the gate opens, so these reads
        // complete only if they do not wait for it.
        let k = key();
        let reads =
            (0..10).map(|_| cache.get_or_fetch(&k, ttl, gated_fetch(&calls, &gate, value("v2"))));
        let outcomes = futures::FutureExt::now_or_never(futures::future::join_all(reads))
            .expect("stale reads must not wait for the refresh");
        for outcome in outcomes {
            let outcome = outcome.unwrap();
            assert_eq!(&*outcome.value, "v1");
            assert_eq!(outcome.source, CacheSource::Stale { revalidating: true });
            assert!(outcome.cached() && outcome.stale());
            assert_eq!(outcome.age, secs(15));
        }
        until(|| calls.load(Ordering::SeqCst) == 1).await;
        open.send_replace(true);
        until(|| cache.state.flights.lock().is_empty()).await;

        let next = cache
            .get_or_fetch(&key(), ttl, fetch_returning(&calls, value("v3")))
            .await
            .unwrap();
        assert_eq!(&*next.value, "v2");
        assert_eq!(next.source, CacheSource::Hit);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.stats().stale_hits, 10);
    }

    #[tokio::test]
    async fn failed_background_refresh_is_throttled() {
        let clock = FakeClock::at_epoch();
        let cache = new_cache(&clock, CacheConfig::default());
        let ttl = policy(10, 60, 0);
        prime(&cache, ttl, "v1").await;
        clock.advance(secs(15));
        let calls = Arc::new(AtomicUsize::new(0));

        let stale = cache
            .get_or_fetch(&key(), ttl, fetch_returning(&calls, Err(Status(503))))
            .await
            .unwrap();
        assert_eq!(stale.source, CacheSource::Stale { revalidating: true });
        until(|| cache.state.flights.lock().is_empty()).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        clock.advance(secs(29));
        let throttled = cache
            .get_or_fetch(&key(), ttl, fetch_returning(&calls, value("v2")))
            .await
            .unwrap();
        assert_eq!(
            throttled.source,
            CacheSource::Stale {
                revalidating: false
            }
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        clock.advance(secs(1));
        let retried = cache
            .get_or_fetch(&key(), ttl, fetch_returning(&calls, value("v2")))
            .await
            .unwrap();
        assert_eq!(retried.source, CacheSource::Stale { revalidating: true });
        until(|| cache.state.flights.lock().is_empty()).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    // Stale-if-error with the failure throttle.
    #[tokio::test]
    async fn stale_if_error_serves_stale_throttles_then_propagates() {
        let clock = FakeClock::at_epoch();
        let cache = new_cache(&clock, CacheConfig::default());
        let ttl = policy(10, 0, 60);
        prime(&cache, ttl, "v1").await;
        let calls = Arc::new(AtomicUsize::new(0));
        let k = key();
        let get = |result| cache.get_or_fetch(&k, ttl, fetch_returning(&calls, result));

        clock.set(secs(30));
        let stale = get(Err(Status(503))).await.unwrap();
        assert_eq!(&*stale.value, "v1");
        assert_eq!(stale.source, CacheSource::StaleIfError);
        assert!(stale.stale());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Within fail_safe_throttle (30 s): stale, and no upstream call.
        clock.set(Duration::from_millis(59_999));
        let throttled = get(value("v2")).await.unwrap();
        assert_eq!(throttled.source, CacheSource::StaleIfError);
        assert_eq!(&*throttled.value, "v1");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Throttle over: upstream is tried again, fails, stale again.
        clock.set(secs(60));
        assert_eq!(
            get(Err(Status(503))).await.unwrap().source,
            CacheSource::StaleIfError
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // Past sie_until (10 + 60 s) the error propagates, throttle or not.
        clock.set(secs(71));
        assert_eq!(get(Err(Status(503))).await, Err(Status(503)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    // Negative caching; other errors never cached.
    #[tokio::test]
    async fn not_found_is_cached_for_negative_ttl_and_other_errors_never() {
        let clock = FakeClock::at_epoch();
        let cache = new_cache(&clock, CacheConfig::default());
        let ttl = policy(3_600, 0, 86_400);
        let calls = Arc::new(AtomicUsize::new(0));
        let not_found = || Ok(Fetched::NotFound(Arc::from("no such city")));

        let first = cache
            .get_or_fetch(&key(), ttl, fetch_returning(&calls, not_found()))
            .await
            .unwrap();
        assert!(first.negative && !first.cached());
        clock.advance(secs(59));
        let second = cache
            .get_or_fetch(&key(), ttl, fetch_returning(&calls, value("unexpected")))
            .await
            .unwrap();
        assert!(second.negative && second.cached());
        assert_eq!(&*second.value, "no such city");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.stats().negative_hits, 1);

        // negative_ttl, not ttl, bounds it; and a negative is never served stale.
        clock.advance(secs(1));
        let after = cache
            .get_or_fetch(&key(), ttl, fetch_returning(&calls, Err(Status(503))))
            .await;
        assert_eq!(after, Err(Status(503)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        for status in [500, 429, 500] {
            let other = "other".to_string();
            let result = cache
                .get_or_fetch(&other, ttl, fetch_returning(&calls, Err(Status(status))))
                .await;
            assert_eq!(result, Err(Status(status)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }
}
