//! The response cache in front of the fallback pipeline.
//!
//! A fresh hit never reaches the pipeline: no quota, limiter, breaker or network.
//! Past freshness the cache can still answer from the stale value, either at once
//! while one background refresh runs (`stale_while_revalidate`) or when the
//! refresh fails (`stale_if_error`, with a `fail_safe_throttle` so a failing
//! upstream is not hammered). Concurrent misses on one key run one fetch and share
//! its result; errors are handed to every waiter but never stored. Authoritative
//! "not found" answers are stored for the short `negative_ttl`.
//!
//! Logical time (fresh, stale, throttle) lives in each entry's envelope and is read
//! from the injected [`Clock`](crate::clock::Clock), because moka's own clock
//! cannot be injected; moka's expiry and size limits only bound memory.
//!
//! An optional second tier ([`SharedCacheTier`], e.g. Redis) is shared by several
//! processes: a key missing or stale in L1 is looked up there (once per key, by the
//! caller that would otherwise fetch) before going upstream, and every fetched
//! answer is written there in the background.
//!
//! This file holds the public types and the lookup; `freshness` the entries'
//! logical lifetimes and what a lookup past freshness does, `single_flight`
//! the one fetch per key, `shared_tier` the second tier, `keys` the stable
//! keys, `config` the settings.

mod config;
mod freshness;
mod keys;
mod shared_tier;
mod single_flight;
#[cfg(test)]
mod test_fixtures;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::clock::SharedClock;

pub use config::{CacheConfig, InvalidCacheConfig};
pub use freshness::TtlPolicy;
pub use keys::stable_key;
pub use shared_tier::{SharedCacheTier, SharedCodec};

use freshness::{Envelope, EnvelopeExpiry};
use shared_tier::SharedTier;
use single_flight::FlightResult;

/// What a fetch produced: a value to cache for the policy's `ttl`, or an
/// authoritative negative answer (404, not found, empty result) to cache for
/// `negative_ttl`.
///
/// Both carry a value so that the pipeline can replay whatever it needs (for a
/// negative answer, e.g. the provider's not-found response). Failures are the
/// fetch's `Err`, which is never cached: transport errors, 5xx, 429 and auth
/// errors belong to the breaker, retry and failure throttle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched<V> {
    /// A normal answer.
    Value(V),
    /// An authoritative negative answer.
    NotFound(V),
}

impl<V> Fetched<V> {
    /// The value and whether it is a negative answer.
    fn into_parts(self) -> (V, bool) {
        match self {
            Self::Value(value) => (value, false),
            Self::NotFound(value) => (value, true),
        }
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSource {
    /// A fresh stored answer; no fetch ran.
    Hit,
    /// A stale answer inside `stale_while_revalidate`, returned at once.
    /// `revalidating` says whether a background refresh is running (it is not
    /// while the failure throttle holds after a failed refresh).
    Stale {
        /// A background refresh is in flight.
        revalidating: bool,
    },
    /// A stale answer served because the refresh failed, or because a recent
    /// failure put the key under the failure throttle.
    StaleIfError,
    /// Fetched now, by this call or by a concurrent call it waited for.
    Miss,
}

/// An answer from [`ResponseCache::get_or_fetch`] and how it was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOutcome<V> {
    /// The answer.
    pub value: V,
    /// The answer is an authoritative negative one ([`Fetched::NotFound`]).
    pub negative: bool,
    /// Where it came from.
    pub source: CacheSource,
    /// How long ago it was fetched; zero for [`CacheSource::Miss`].
    pub age: Duration,
}

impl<V> CacheOutcome<V> {
    /// The answer was served from the cache rather than fetched by this call
    /// (or the call it waited for).
    pub fn cached(&self) -> bool {
        self.source != CacheSource::Miss
    }

    /// The answer is past its freshness.
    pub fn stale(&self) -> bool {
        matches!(
            self.source,
            CacheSource::Stale { .. } | CacheSource::StaleIfError
        )
    }
}

/// Counters since the cache was built. Every call counts in exactly one of the
/// first five.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Fresh hits on normal answers.
    pub hits: u64,
    /// Fresh hits on negative answers.
    pub negative_hits: u64,
    /// Stale answers served (stale-while-revalidate, or under the failure
    /// throttle), without this call fetching.
    pub stale_hits: u64,
    /// Calls that ran the fetch themselves (including with the cache disabled).
    pub misses: u64,
    /// Calls that waited for another call's fetch and took its result.
    pub coalesced_waits: u64,
    /// Fresh answers found in the shared tier instead of fetching (the call
    /// counts as a hit, or as a stale hit when it was a background refresh).
    pub shared_hits: u64,
    /// Stored entries; moka counts them lazily, so this may briefly lag.
    pub entries: u64,
}

/// An in-process response cache with coalescing, stale-while-revalidate,
/// stale-if-error with a failure throttle, and negative caching.
///
/// Cheap to clone: clones share the same entries.
///
/// ```
/// use polyrelay::clock::FakeClock;
/// use polyrelay::internal::resilience::cache::{CacheConfig, CacheSource, Fetched, ResponseCache};
/// use std::sync::Arc;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let config = CacheConfig::default();
/// let cache = ResponseCache::<String, Arc<str>>::new(&config, FakeClock::at_epoch().shared());
/// let key = "weather.current:paris".to_string();
/// let fetch = || async { Ok::<_, String>(Fetched::Value(Arc::<str>::from("12 °C"))) };
///
/// let first = cache.get_or_fetch(&key, config.ttl_policy(), fetch).await.unwrap();
/// assert_eq!(first.source, CacheSource::Miss);
/// let second = cache.get_or_fetch(&key, config.ttl_policy(), fetch).await.unwrap();
/// assert_eq!(second.source, CacheSource::Hit);
/// assert_eq!(&*second.value, "12 °C");
/// # });
/// ```
pub struct ResponseCache<K, V> {
    state: Arc<CacheState<K, V>>,
}

impl<K, V> Clone for ResponseCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            state: Arc::clone(&self.state),
        }
    }
}

impl<K, V> fmt::Debug for ResponseCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseCache")
            .field("enabled", &self.state.enabled)
            .field("stats", &self.stats())
            .finish()
    }
}

struct CacheState<K, V> {
    l1: moka::sync::Cache<K, Arc<Envelope<V>>>,
    /// Keys with a fetch in flight. The leader publishes its result through the
    /// channel; dropping the sender without a result tells waiters to take over.
    flights: Mutex<HashMap<K, watch::Sender<Option<FlightResult<V>>>>>,
    clock: SharedClock,
    enabled: bool,
    fail_safe_throttle: Duration,
    counters: Counters,
    shared: Option<SharedTier<K, V>>,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    negative_hits: AtomicU64,
    stale_hits: AtomicU64,
    misses: AtomicU64,
    coalesced_waits: AtomicU64,
    shared_hits: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the slow path decided under the flights lock.
enum Step<V> {
    Serve(CacheOutcome<V>),
    Revalidate(CacheOutcome<V>, Arc<Envelope<V>>, tokio::runtime::Handle),
    Wait(watch::Receiver<Option<FlightResult<V>>>),
    Lead(Option<Arc<Envelope<V>>>),
}

impl<K, V> ResponseCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// An empty cache reading time from `clock`. The L1 tier is moka, bounded by
    /// `max_entries`.
    pub fn new(config: &CacheConfig, clock: SharedClock) -> Self {
        Self::build(config, clock, None)
    }

    /// An empty cache whose L1 is backed by `tier`, shared with other
    /// processes, its entries encoded by `codec`.
    pub fn with_shared_tier(
        config: &CacheConfig,
        clock: SharedClock,
        tier: Arc<dyn SharedCacheTier>,
        codec: Arc<dyn SharedCodec<K, V>>,
    ) -> Self {
        Self::build(config, clock, Some(SharedTier { tier, codec }))
    }

    fn build(config: &CacheConfig, clock: SharedClock, shared: Option<SharedTier<K, V>>) -> Self {
        let l1 = moka::sync::Cache::builder()
            .max_capacity(config.max_entries)
            .expire_after(EnvelopeExpiry)
            .build();
        Self {
            state: Arc::new(CacheState {
                l1,
                flights: Mutex::new(HashMap::new()),
                clock,
                enabled: config.enabled,
                fail_safe_throttle: config.fail_safe_throttle,
                counters: Counters::default(),
                shared,
            }),
        }
    }

    /// Answers `key` from the cache or by running `fetch`, following `ttl`.
    ///
    /// * Fresh entry: returned; `fetch` is not called.
    /// * Inside `stale_while_revalidate`: the stale value is returned at once and
    ///   `fetch` is spawned as the one background refresh for the key (none if a
    ///   refresh is already running or the failure throttle holds).
    /// * Otherwise `fetch` runs now, shared by every concurrent caller of the
    ///   key: one fetch, the same result for all (the first caller's `ttl`
    ///   applies). If it fails while an earlier value is inside
    ///   `stale_if_error`, that value is returned as
    ///   [`CacheSource::StaleIfError`] and for `fail_safe_throttle` further calls
    ///   get it without fetching; otherwise every waiter gets the error, and the
    ///   next call fetches again.
    ///
    /// If the caller running the shared fetch is dropped, a waiting caller takes
    /// over with its own `fetch`. `fetch` is `'static` because it may outlive
    /// this call as the background refresh.
    ///
    /// # Errors
    ///
    /// The fetch's error (this call's or the shared one's) when no stale value
    /// may be served instead.
    pub async fn get_or_fetch<F, Fut, E>(
        &self,
        key: &K,
        ttl: TtlPolicy,
        fetch: F,
    ) -> Result<CacheOutcome<V>, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Fetched<V>, E>> + Send + 'static,
        E: Clone + Send + Sync + 'static,
    {
        let state = &*self.state;
        if !state.enabled {
            Counters::bump(&state.counters.misses);
            return fetch().await.map(|fetched| {
                let (value, negative) = fetched.into_parts();
                CacheOutcome {
                    value,
                    negative,
                    source: CacheSource::Miss,
                    age: Duration::ZERO,
                }
            });
        }
        if let Some(entry) = state.l1.get(key) {
            let now = state.clock.now();
            if now < entry.fresh_until {
                return Ok(state.fresh_hit(&entry, now));
            }
        }
        // Boxed: the slow path (single flight, stale serving, shared tier)
        // is the larger part of this future, and callers carry and copy it
        // whole on every call, hits included; a miss fetches over HTTP, so
        // one allocation there does not show.
        Box::pin(self.slow_path(key, ttl, fetch)).await
    }

    /// A fresh answer for `key` (from L1, else the shared tier), counted as
    /// a hit; `None` otherwise. Never fetches: for callers that fetch in
    /// their own way and [`store`](Self::store) the result, such as a
    /// stream, which must be read as it arrives.
    pub async fn fresh(&self, key: &K) -> Option<CacheOutcome<V>> {
        let state = &*self.state;
        if !state.enabled {
            return None;
        }
        let now = state.clock.now();
        if let Some(entry) = state.l1.get(key) {
            if now < entry.fresh_until {
                return Some(state.fresh_hit(&entry, now));
            }
        }
        let entry = state.read_shared(key).await?;
        if now >= entry.fresh_until {
            return None;
        }
        Counters::bump(&state.counters.shared_hits);
        let outcome = state.fresh_hit(&entry, now);
        state.l1.insert(key.clone(), Arc::new(entry));
        Some(outcome)
    }

    /// Stores `value`, fetched just now, for `key` under `ttl`, in L1 and
    /// the shared tier.
    pub fn store(&self, key: &K, value: V, ttl: TtlPolicy) {
        let state = &*self.state;
        if !state.enabled {
            return;
        }
        let entry = Envelope::new(Fetched::Value(value), state.clock.now(), ttl);
        state.write_shared(key, &entry);
        state.l1.insert(key.clone(), Arc::new(entry));
    }

    /// Removes `key` from L1 (the shared tier keeps its copy until it expires).
    /// A fetch already in flight for it still stores its result.
    pub fn invalidate(&self, key: &K) {
        self.state.l1.invalidate(key);
    }

    /// Removes every L1 entry. Fetches already in flight still store their
    /// results.
    pub fn clear(&self) {
        self.state.l1.invalidate_all();
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        let counters = &self.state.counters;
        CacheStats {
            hits: counters.hits.load(Ordering::Relaxed),
            negative_hits: counters.negative_hits.load(Ordering::Relaxed),
            stale_hits: counters.stale_hits.load(Ordering::Relaxed),
            misses: counters.misses.load(Ordering::Relaxed),
            coalesced_waits: counters.coalesced_waits.load(Ordering::Relaxed),
            shared_hits: counters.shared_hits.load(Ordering::Relaxed),
            entries: self.state.l1.entry_count(),
        }
    }
}

impl<K, V> CacheState<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn fresh_hit(&self, entry: &Envelope<V>, now: Duration) -> CacheOutcome<V> {
        Counters::bump(if entry.negative {
            &self.counters.negative_hits
        } else {
            &self.counters.hits
        });
        entry.outcome(now, CacheSource::Hit)
    }
}

#[cfg(test)]
mod tests {
    use super::test_fixtures::*;
    use super::*;

    #[tokio::test]
    async fn disabled_cache_passes_every_call_through() {
        let clock = FakeClock::at_epoch();
        let config = CacheConfig {
            enabled: false,
            ..CacheConfig::default()
        };
        let cache = new_cache(&clock, config);
        let calls = Arc::new(AtomicUsize::new(0));
        for text in ["v1", "v2"] {
            let outcome = cache
                .get_or_fetch(
                    &key(),
                    policy(60, 60, 60),
                    fetch_returning(&calls, value(text)),
                )
                .await
                .unwrap();
            assert_eq!(&*outcome.value, text);
            assert!(!outcome.cached());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        cache.state.l1.run_pending_tasks();
        assert_eq!(cache.stats().entries, 0);
    }

    #[tokio::test]
    async fn a_stored_value_is_fresh_until_its_ttl_then_fetched_again() {
        let clock = FakeClock::at_epoch();
        let cache = new_cache(&clock, CacheConfig::default());
        let calls = Arc::new(AtomicUsize::new(0));
        assert!(cache.fresh(&key()).await.is_none());
        cache.store(&key(), Arc::from("streamed"), policy(60, 0, 0));
        let hit = cache.fresh(&key()).await.unwrap();
        assert_eq!(&*hit.value, "streamed");
        assert_eq!(hit.source, CacheSource::Hit);
        let got = cache
            .get_or_fetch(
                &key(),
                policy(60, 0, 0),
                fetch_returning(&calls, value("x")),
            )
            .await
            .unwrap();
        assert_eq!(&*got.value, "streamed", "a plain lookup sees it too");
        clock.advance(Duration::from_secs(61));
        assert!(cache.fresh(&key()).await.is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(cache.stats().hits, 2);
    }

    #[tokio::test]
    async fn invalidate_and_clear_force_a_fetch() {
        let clock = FakeClock::at_epoch();
        let cache = new_cache(&clock, CacheConfig::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let ttl = policy(60, 0, 0);
        let k = key();
        let get = |text| cache.get_or_fetch(&k, ttl, fetch_returning(&calls, value(text)));

        get("v1").await.unwrap();
        assert_eq!(get("x").await.unwrap().source, CacheSource::Hit);
        cache.invalidate(&key());
        assert_eq!(&*get("v2").await.unwrap().value, "v2");
        cache.clear();
        assert_eq!(&*get("v3").await.unwrap().value, "v3");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (1, 3));
    }
}
