//! The response cache in front of the fallback pipeline (reference section 7.1).
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

use std::any::Any;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::duration::serde_secs;

/// Longest duration [`CacheConfig::validate`] accepts for any of its fields.
const MAX_CONFIG_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// How long moka keeps an entry past its last logical use, so that the small
/// drift between moka's clock and ours never evicts an entry we could still serve.
const PHYSICAL_MARGIN: Duration = Duration::from_secs(1);

/// Cache settings, as read from the configuration file.
///
/// ```
/// use polyrelay::resilience::cache::CacheConfig;
/// use std::time::Duration;
///
/// let config: CacheConfig = toml::from_str(r#"
///     ttl = "2m"
///     stale_while_revalidate = "30s"
///     negative_ttl = 30
/// "#).unwrap();
/// assert_eq!(config.ttl, Duration::from_secs(120));
/// assert_eq!(config.negative_ttl, Duration::from_secs(30));
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// When false every call goes to the pipeline and nothing is stored.
    pub enabled: bool,
    /// How long a stored value is fresh (served without any upstream call).
    /// Capabilities may override it through [`TtlPolicy`].
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub ttl: Duration,
    /// How long past freshness a value is served at once while one background
    /// refresh runs (RFC 5861). Zero turns it off.
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub stale_while_revalidate: Duration,
    /// How long past freshness a value may still be served when the refresh
    /// fails (RFC 5861; the fail-safe of `FusionCache`).
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub stale_if_error: Duration,
    /// How long an authoritative "not found" answer is stored.
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub negative_ttl: Duration,
    /// After a failed refresh, how long the stale value is served without
    /// calling upstream again.
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub fail_safe_throttle: Duration,
    /// Upper bound on the number of stored entries.
    pub max_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: Duration::from_secs(60),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::from_secs(86_400),
            negative_ttl: Duration::from_secs(60),
            fail_safe_throttle: Duration::from_secs(30),
            max_entries: 10_000,
        }
    }
}

/// A [`CacheConfig`] field with an unusable value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cache.{field}: {reason}")]
pub struct InvalidCacheConfig {
    /// The offending field, named as in the configuration file.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl CacheConfig {
    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`InvalidCacheConfig`] naming the first bad field: a zero `ttl`, a
    /// duration over 365 days, or a zero `max_entries`.
    pub fn validate(&self) -> Result<(), InvalidCacheConfig> {
        if self.ttl.is_zero() {
            return Err(InvalidCacheConfig {
                field: "ttl",
                reason: "must be greater than zero",
            });
        }
        let durations = [
            ("ttl", self.ttl),
            ("stale_while_revalidate", self.stale_while_revalidate),
            ("stale_if_error", self.stale_if_error),
            ("negative_ttl", self.negative_ttl),
            ("fail_safe_throttle", self.fail_safe_throttle),
        ];
        if let Some((field, _)) = durations
            .iter()
            .find(|(_, value)| *value > MAX_CONFIG_DURATION)
        {
            return Err(InvalidCacheConfig {
                field,
                reason: "must be at most 365 days",
            });
        }
        if self.max_entries == 0 {
            return Err(InvalidCacheConfig {
                field: "max_entries",
                reason: "must be at least 1",
            });
        }
        Ok(())
    }

    /// The logical lifetimes these settings give every entry, for callers with
    /// no per-capability override.
    #[must_use]
    pub fn ttl_policy(&self) -> TtlPolicy {
        TtlPolicy {
            ttl: self.ttl,
            stale_while_revalidate: self.stale_while_revalidate,
            stale_if_error: self.stale_if_error,
            negative_ttl: self.negative_ttl,
        }
    }
}

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

/// A second cache tier shared by several processes (Redis).
///
/// On an L1 miss (or a stale L1 entry) the caller that would fetch first reads
/// the key here, so reads are coalesced per key; a fresh entry fills L1 and no
/// fetch runs, a stale one can still be served on error. A fetched answer goes
/// to L1 and then, in the background, here with the physical TTL of its stale
/// windows. Entries carry their own freshness and a schema version, so an
/// entry that does not decode is a miss. Keys come from [`SharedCodec::key`]
/// ([`stable_key`] strings), so they hold no secrets. Implementations bound
/// their own latency and never fail: an error is a miss.
pub trait SharedCacheTier: Send + Sync {
    /// The stored bytes for `key`, or `None` on a miss or any failure.
    fn get(&self, key: &str) -> BoxFuture<'_, Option<Vec<u8>>>;
    /// Stores `value` under `key` for `ttl`; failures are logged, not returned.
    fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'_, ()>;
}

/// How a [`ResponseCache`]'s keys and values are stored in a [`SharedCacheTier`].
pub trait SharedCodec<K, V>: Send + Sync {
    /// The tier key of `key`: a [`stable_key`], never holding a secret.
    fn key(&self, key: &K) -> String;
    /// The stored form of `value`; `None` keeps it out of the tier.
    fn encode(&self, value: &V) -> Option<Vec<u8>>;
    /// `value` read back for `key`; `None` (e.g. written by another version)
    /// counts as a miss.
    fn decode(&self, key: &K, bytes: &[u8]) -> Option<V>;
}

/// Version of the envelope written to the shared tier; entries of another
/// version are misses.
const SHARED_SCHEMA: u32 = 1;

/// The envelope header in the shared tier, followed by `\n` and the value.
/// Times are Unix milliseconds, so every process reads them alike.
#[derive(serde::Serialize, Deserialize)]
struct SharedHeader {
    schema: u32,
    negative: bool,
    stored_at: i64,
    fresh_until: i64,
    swr_until: i64,
    sie_until: i64,
}

/// The shared tier of one cache and how its entries are encoded.
struct SharedTier<K, V> {
    tier: Arc<dyn SharedCacheTier>,
    codec: Arc<dyn SharedCodec<K, V>>,
}

/// An in-process response cache with coalescing, stale-while-revalidate,
/// stale-if-error with a failure throttle, and negative caching.
///
/// Cheap to clone: clones share the same entries.
///
/// ```
/// use polyrelay::clock::FakeClock;
/// use polyrelay::resilience::cache::{CacheConfig, CacheSource, Fetched, ResponseCache};
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

/// A flight's result. The error is type-erased because the error type is chosen
/// per call; waiters whose error type differs from the leader's fetch for
/// themselves.
type FlightResult<V> = Result<CacheOutcome<V>, Arc<dyn Any + Send + Sync>>;

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

/// One stored answer with its logical lifetimes, in the clock's monotonic time.
struct Envelope<V> {
    value: V,
    negative: bool,
    stored_at: Duration,
    fresh_until: Duration,
    swr_until: Duration,
    sie_until: Duration,
    /// Monotonic nanoseconds until which no refresh may run after a failed one
    /// (zero: none). Atomic so that a failure never has to re-insert the entry,
    /// which could resurrect an entry invalidated meanwhile.
    throttle_until: AtomicU64,
}

impl<V: Clone> Envelope<V> {
    fn new(fetched: Fetched<V>, now: Duration, policy: TtlPolicy) -> Self {
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

    fn outcome(&self, now: Duration, source: CacheSource) -> CacheOutcome<V> {
        CacheOutcome {
            value: self.value.clone(),
            negative: self.negative,
            source,
            age: now.saturating_sub(self.stored_at),
        }
    }

    fn throttled(&self, now: Duration) -> bool {
        nanos(now) < self.throttle_until.load(Ordering::Relaxed)
    }

    fn throttle(&self, until: Duration) {
        self.throttle_until.store(nanos(until), Ordering::Relaxed);
    }

    /// How long moka must keep the entry: until the last moment it can be served.
    fn physical_ttl(&self) -> Duration {
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
struct EnvelopeExpiry;

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
        self.slow_path(key, ttl, fetch).await
    }

    async fn slow_path<F, Fut, E>(
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
        let state = &self.state;
        loop {
            match state.decide(key) {
                Step::Serve(outcome) => return Ok(outcome),
                Step::Revalidate(outcome, previous, runtime) => {
                    let lead = FlightLead {
                        state: Arc::clone(state),
                        key: Some(key.clone()),
                    };
                    let key = key.clone();
                    runtime.spawn(async move {
                        let result = lead
                            .state
                            .refresh(&key, ttl, fetch, Some(previous), false)
                            .await;
                        if result.is_err() {
                            tracing::debug!("background cache refresh failed");
                        }
                        lead.finish(result);
                    });
                    return Ok(outcome);
                }
                Step::Wait(mut done) => {
                    let published = done
                        .wait_for(Option::is_some)
                        .await
                        .ok()
                        .and_then(|result| result.clone());
                    let result = match published {
                        Some(Ok(outcome)) => Ok(outcome),
                        Some(Err(error)) => {
                            let Some(error) = error.downcast_ref::<E>() else {
                                // The leader's error type differs from ours;
                                // its flight is over, so fetch for ourselves.
                                continue;
                            };
                            Err(error.clone())
                        }
                        // The leader was dropped before finishing: take over.
                        None => continue,
                    };
                    Counters::bump(&state.counters.coalesced_waits);
                    return result;
                }
                Step::Lead(previous) => {
                    let lead = FlightLead {
                        state: Arc::clone(state),
                        key: Some(key.clone()),
                    };
                    let result = state.refresh(key, ttl, fetch, previous, true).await;
                    lead.finish(result.clone());
                    return result;
                }
            }
        }
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

    /// Decides what a non-fresh lookup does. The entry is re-read under the
    /// flights lock: a leader stores its entry before leaving the map, so a call
    /// either joins a flight or sees that flight's result, never fetching twice.
    fn decide(&self, key: &K) -> Step<V> {
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
    async fn refresh<F, Fut, E>(
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

    /// The shared tier's entry for `key`, converted to this process's clock;
    /// `None` on a miss, a failure, or an entry that does not decode.
    async fn read_shared(&self, key: &K) -> Option<Envelope<V>> {
        let shared = self.shared.as_ref()?;
        let bytes = shared.tier.get(&shared.codec.key(key)).await?;
        let newline = bytes.iter().position(|b| *b == b'\n')?;
        let header: SharedHeader = serde_json::from_slice(&bytes[..newline]).ok()?;
        if header.schema != SHARED_SCHEMA {
            return None;
        }
        let value = shared.codec.decode(key, &bytes[newline + 1..])?;
        let (now, wall) = (self.clock.now(), self.clock.wall().timestamp_millis());
        let local = |at: i64| match u64::try_from(at.saturating_sub(wall)) {
            Ok(ahead) => now.saturating_add(Duration::from_millis(ahead)),
            Err(_) => now.saturating_sub(Duration::from_millis(wall.abs_diff(at))),
        };
        Some(Envelope {
            value,
            negative: header.negative,
            stored_at: local(header.stored_at),
            fresh_until: local(header.fresh_until),
            swr_until: local(header.swr_until),
            sie_until: local(header.sie_until),
            throttle_until: AtomicU64::new(0),
        })
    }

    /// Writes `entry`, stored just now, to the shared tier in the background.
    fn write_shared(&self, key: &K, entry: &Envelope<V>) {
        let Some(shared) = &self.shared else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(value) = shared.codec.encode(&entry.value) else {
            return;
        };
        let (now, wall) = (self.clock.now(), self.clock.wall().timestamp_millis());
        let unix = |at: Duration| {
            let ahead = i64::try_from(at.saturating_sub(now).as_millis()).unwrap_or(i64::MAX);
            wall.saturating_add(ahead)
        };
        let header = SharedHeader {
            schema: SHARED_SCHEMA,
            negative: entry.negative,
            stored_at: wall,
            fresh_until: unix(entry.fresh_until),
            swr_until: unix(entry.swr_until),
            sie_until: unix(entry.sie_until),
        };
        let Ok(mut bytes) = serde_json::to_vec(&header) else {
            return;
        };
        bytes.push(b'\n');
        bytes.extend_from_slice(&value);
        let (tier, name, ttl) = (
            Arc::clone(&shared.tier),
            shared.codec.key(key),
            entry.physical_ttl(),
        );
        runtime.spawn(async move { tier.put(&name, bytes, ttl).await });
    }
}

/// The right to run the one fetch of a key. Finishing publishes the result to
/// the waiters; dropping it unfinished (the leader was cancelled or panicked)
/// closes the channel, and each waiter retries, one of them taking over.
struct FlightLead<K, V>
where
    K: Hash + Eq,
{
    state: Arc<CacheState<K, V>>,
    key: Option<K>,
}

impl<K: Hash + Eq, V> FlightLead<K, V> {
    fn finish<E: Send + Sync + 'static>(mut self, result: Result<CacheOutcome<V>, E>) {
        if let Some(done) = self.leave() {
            let result = result.map_err(|error| Arc::new(error) as Arc<dyn Any + Send + Sync>);
            done.send_replace(Some(result));
        }
    }

    fn leave(&mut self) -> Option<watch::Sender<Option<FlightResult<V>>>> {
        let key = self.key.take()?;
        self.state.flights.lock().remove(&key)
    }
}

impl<K: Hash + Eq, V> Drop for FlightLead<K, V> {
    fn drop(&mut self) {
        drop(self.leave());
    }
}

/// The cache key of a request: `v1:{namespace}:{sha256 hex}` over a canonical
/// form of `canonical_json`, in which object keys are sorted recursively and
/// integral floats are written as integers, so reordered parameters and `1.0`
/// versus `1` give the same key.
///
/// The caller builds `canonical_json` (reference section 7.1): defaults
/// materialised, strings normalised, and only allow-listed headers. Keys never
/// contain secrets because requests hold none: auth is applied later by the
/// pipeline, and the hash keeps even the parameters out of key names seen by
/// Redis `KEYS`/`MONITOR`. `namespace` (e.g. `provider:endpoint:method`) stays
/// readable and must not hold secrets either.
///
/// ```
/// use polyrelay::resilience::cache::stable_key;
/// use serde_json::json;
///
/// let a = stable_key("open-meteo:forecast:GET", &json!({"lat": 48.85, "lon": 2.35}));
/// let b = stable_key("open-meteo:forecast:GET", &json!({"lon": 2.35, "lat": 48.85}));
/// assert_eq!(a, b);
/// assert!(a.starts_with("v1:open-meteo:forecast:GET:"));
/// ```
#[must_use]
pub fn stable_key(namespace: &str, canonical_json: &serde_json::Value) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hasher = Sha256::new();
    hash_canonical(&mut hasher, canonical_json);
    let digest = hasher.finalize();
    let mut key = String::with_capacity(4 + namespace.len() + 2 * digest.len());
    key.push_str("v1:");
    key.push_str(namespace);
    key.push(':');
    for byte in digest {
        key.push(char::from(HEX[usize::from(byte >> 4)]));
        key.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    key
}

/// Feeds an unambiguous encoding of `value` to `hasher`: a type tag, then
/// length-prefixed contents, object entries in key order.
fn hash_canonical(hasher: &mut Sha256, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Null => hasher.update(b"n"),
        Value::Bool(true) => hasher.update(b"t"),
        Value::Bool(false) => hasher.update(b"f"),
        Value::Number(number) => {
            // Terminated rather than length-prefixed: number text holds no ';'.
            hasher.update(b"d");
            let integral = number
                .as_f64()
                .filter(|float| number.is_f64() && float.fract() == 0.0 && float.abs() < 9.0e15);
            let mut text = HashWriter(hasher);
            // The cast is exact: the value is integral and below 2^53.
            // Writing into a hasher cannot fail.
            let _ = match integral {
                Some(float) => write!(text, "{}", float as i64),
                None => write!(text, "{number}"),
            };
            hasher.update(b";");
        }
        Value::String(text) => {
            hasher.update(b"s");
            hash_bytes(hasher, text.as_bytes());
        }
        Value::Array(items) => {
            hasher.update(b"a");
            hasher.update((items.len() as u64).to_le_bytes());
            for item in items {
                hash_canonical(hasher, item);
            }
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            hasher.update(b"o");
            hasher.update((entries.len() as u64).to_le_bytes());
            for (name, item) in entries {
                hash_bytes(hasher, name.as_bytes());
                hash_canonical(hasher, item);
            }
        }
    }
}

/// Formats straight into the hasher, so hashing a number allocates nothing.
struct HashWriter<'a>(&'a mut Sha256);

impl fmt::Write for HashWriter<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.update(text.as_bytes());
        Ok(())
    }
}

fn hash_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use serde_json::json;
    use std::sync::atomic::AtomicUsize;

    type TestCache = ResponseCache<String, Arc<str>>;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Status(u16);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn new_cache(clock: &FakeClock, config: CacheConfig) -> TestCache {
        ResponseCache::new(&config, clock.shared())
    }

    fn policy(ttl: u64, swr: u64, sie: u64) -> TtlPolicy {
        TtlPolicy {
            ttl: secs(ttl),
            stale_while_revalidate: secs(swr),
            stale_if_error: secs(sie),
            negative_ttl: secs(60),
        }
    }

    fn key() -> String {
        "k".to_string()
    }

    /// A fetch that counts its calls, then returns `result`.
    fn fetch_returning(
        calls: &Arc<AtomicUsize>,
        result: Result<Fetched<Arc<str>>, Status>,
    ) -> impl FnOnce() -> BoxFuture<'static, Result<Fetched<Arc<str>>, Status>> + Send + 'static
    {
        let calls = Arc::clone(calls);
        move || {
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                result
            })
        }
    }

    fn value(text: &str) -> Result<Fetched<Arc<str>>, Status> {
        Ok(Fetched::Value(Arc::from(text)))
    }

    /// A fetch that counts its call, then waits for `gate` before returning `result`.
    fn gated_fetch(
        calls: &Arc<AtomicUsize>,
        gate: &watch::Receiver<bool>,
        result: Result<Fetched<Arc<str>>, Status>,
    ) -> impl FnOnce() -> BoxFuture<'static, Result<Fetched<Arc<str>>, Status>> + Send + 'static
    {
        let calls = Arc::clone(calls);
        let mut gate = gate.clone();
        move || {
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let _ = gate.wait_for(|open| *open).await;
                result
            })
        }
    }

    fn waiters(cache: &TestCache, key: &String) -> usize {
        cache
            .state
            .flights
            .lock()
            .get(key)
            .map_or(0, watch::Sender::receiver_count)
    }

    /// Yields until `done` holds; the real-time bound is only reached on failure.
    async fn until(mut done: impl FnMut() -> bool) {
        let wait = async {
            while !done() {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(secs(10), wait)
            .await
            .expect("condition never became true");
    }

    async fn prime(cache: &TestCache, ttl: TtlPolicy, text: &str) {
        let calls = Arc::new(AtomicUsize::new(0));
        let outcome = cache
            .get_or_fetch(&key(), ttl, fetch_returning(&calls, value(text)))
            .await
            .unwrap();
        assert_eq!(outcome.source, CacheSource::Miss);
    }

    // Acceptance 28: coalescing, value case.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hundred_concurrent_cold_gets_run_one_fetch_and_share_its_value() {
        let clock = FakeClock::at_epoch();
        let cache = new_cache(&clock, CacheConfig::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let (open, gate) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let cache = cache.clone();
            let fetch = gated_fetch(&calls, &gate, value("v1"));
            tasks.spawn(async move { cache.get_or_fetch(&key(), policy(60, 0, 0), fetch).await });
        }
        until(|| waiters(&cache, &key()) == 99).await;
        open.send_replace(true);
        let results: Vec<_> = tasks.join_all().await;

        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(results.len(), 100);
        let first = results[0].as_ref().unwrap().value.clone();
        for result in &results {
            let outcome = result.as_ref().unwrap();
            assert!(Arc::ptr_eq(&outcome.value, &first));
            assert_eq!(outcome.source, CacheSource::Miss);
        }
        let stats = cache.stats();
        assert_eq!((stats.misses, stats.coalesced_waits), (1, 99));
    }

    // Acceptance 28: coalescing, error case; errors are not cached.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hundred_concurrent_cold_gets_share_one_error_which_is_not_cached() {
        let clock = FakeClock::at_epoch();
        let cache = new_cache(&clock, CacheConfig::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let (open, gate) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let cache = cache.clone();
            let fetch = gated_fetch(&calls, &gate, Err(Status(503)));
            tasks.spawn(async move { cache.get_or_fetch(&key(), policy(60, 0, 0), fetch).await });
        }
        until(|| waiters(&cache, &key()) == 99).await;
        open.send_replace(true);
        let results = tasks.join_all().await;

        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(|r| r == &Err(Status(503))));
        assert_eq!(results.len(), 100);

        let next = cache
            .get_or_fetch(
                &key(),
                policy(60, 0, 0),
                fetch_returning(&calls, value("v2")),
            )
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(&*next.value, "v2");
    }

    // Acceptance 29: stale-while-revalidate.
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

    // Acceptance 30: stale-if-error with the failure throttle.
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

    // Acceptance 31: negative caching; other errors never cached.
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

    // Acceptance 32: key hygiene.
    #[test]
    fn stable_key_ignores_key_order_and_reveals_no_input() {
        let a =
            json!({"q": "paris", "units": {"temp": "c", "wind": "kmh"}, "n": 1, "list": [1, "x"]});
        let b = json!({"list": [1, "x"], "units": {"wind": "kmh", "temp": "c"}, "n": 1.0, "q": "paris"});
        let key_a = stable_key("owm:weather:GET", &a);
        assert_eq!(key_a, stable_key("owm:weather:GET", &b));

        let hash = key_a.strip_prefix("v1:owm:weather:GET:").unwrap();
        assert_eq!(hash.len(), 64);
        assert!(hash
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        for input in ["paris", "units", "temp", "kmh", "list", "\"q\""] {
            assert!(!hash.contains(input), "{input} leaked into {key_a}");
        }

        let different = [
            json!({"q": "pariS", "units": {"temp": "c", "wind": "kmh"}, "n": 1, "list": [1, "x"]}),
            json!({"q": "paris", "units": {"temp": "c", "wind": "kmh"}, "n": 1, "list": ["x", 1]}),
            json!({"q": "paris", "units": {"temp": "c", "wind": "kmh"}, "n": 1.5, "list": [1, "x"]}),
            json!({"q": ["paris"], "units": {"temp": "c", "wind": "kmh"}, "n": 1, "list": [1, "x"]}),
        ];
        for other in &different {
            assert_ne!(stable_key("owm:weather:GET", other), key_a);
        }
        assert_ne!(stable_key("owm:weather:POST", &a), key_a);
        // Length prefixes keep nested boundaries apart.
        assert_ne!(
            stable_key("ns", &json!(["ab", "c"])),
            stable_key("ns", &json!(["a", "bc"]))
        );
    }

    #[tokio::test]
    async fn waiters_take_over_when_the_leader_is_dropped() {
        let clock = FakeClock::at_epoch();
        let cache = new_cache(&clock, CacheConfig::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let (_never_open, gate) = watch::channel(false);
        let leader = {
            let cache = cache.clone();
            let fetch = gated_fetch(&calls, &gate, value("never"));
            tokio::spawn(async move { cache.get_or_fetch(&key(), policy(60, 0, 0), fetch).await })
        };
        until(|| calls.load(Ordering::SeqCst) == 1).await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let cache = cache.clone();
            let fetch = fetch_returning(&calls, value("v2"));
            tasks.spawn(async move { cache.get_or_fetch(&key(), policy(60, 0, 0), fetch).await });
        }
        until(|| waiters(&cache, &key()) == 5).await;

        leader.abort();
        // Real time, only spent if the waiters hang.
        let results = tokio::time::timeout(secs(5), tasks.join_all())
            .await
            .expect("waiters must not hang when the leader is dropped");
        assert!(results
            .iter()
            .all(|r| r.as_ref().map(|o| &*o.value) == Ok("v2")));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // The first waiter to wake leads the new fetch; the others wait for it
        // or, if it already finished, hit its entry.
        let stats = cache.stats();
        assert_eq!(stats.misses, 2);
        assert_eq!(stats.coalesced_waits + stats.hits, 4);
    }

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

    #[test]
    fn config_reads_durations_in_every_form_and_rejects_unknown_fields() {
        let config: CacheConfig = toml::from_str(
            r#"
            ttl = "500ms"
            stale_while_revalidate = "2m"
            stale_if_error = "1d"
            negative_ttl = 30
            fail_safe_throttle = "1h"
            max_entries = 5
            "#,
        )
        .unwrap();
        assert_eq!(config.ttl, Duration::from_millis(500));
        assert_eq!(config.stale_while_revalidate, secs(120));
        assert_eq!(config.stale_if_error, secs(86_400));
        assert_eq!(config.negative_ttl, secs(30));
        assert_eq!(config.fail_safe_throttle, secs(3_600));
        assert!(config.enabled);

        let defaults: CacheConfig = toml::from_str("").unwrap();
        assert_eq!(defaults, CacheConfig::default());
        assert_eq!(defaults.ttl_policy().ttl, secs(60));

        assert!(toml::from_str::<CacheConfig>("tll = \"1s\"").is_err());
        for bad in ["ttl = \"10 parsecs\"", "ttl = -1", "ttl = \"\""] {
            assert!(toml::from_str::<CacheConfig>(bad).is_err(), "{bad}");
        }
        // Decimals are accepted, as everywhere else in the config.
        let decimal: CacheConfig = toml::from_str("ttl = \"1.5s\"").unwrap();
        assert_eq!(decimal.ttl, Duration::from_millis(1500));
    }

    #[test]
    fn validate_names_the_bad_field() {
        assert_eq!(CacheConfig::default().validate(), Ok(()));
        let field = |config: CacheConfig| config.validate().unwrap_err().field;
        let base = CacheConfig::default;
        assert_eq!(
            field(CacheConfig {
                ttl: Duration::ZERO,
                ..base()
            }),
            "ttl"
        );
        assert_eq!(
            field(CacheConfig {
                stale_if_error: secs(400 * 86_400),
                ..base()
            }),
            "stale_if_error"
        );
        assert_eq!(
            field(CacheConfig {
                max_entries: 0,
                ..base()
            }),
            "max_entries"
        );
        let error = CacheConfig {
            negative_ttl: secs(u64::MAX),
            ..base()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cache.negative_ttl: must be at most 365 days"
        );
    }

    /// A shared tier in memory, counting reads; reads wait for `gate`.
    #[derive(Default)]
    struct MemoryTier {
        entries: Mutex<HashMap<String, (Vec<u8>, Duration)>>,
        reads: AtomicUsize,
        gate: Option<watch::Receiver<bool>>,
    }

    impl SharedCacheTier for MemoryTier {
        fn get(&self, key: &str) -> BoxFuture<'_, Option<Vec<u8>>> {
            let key = key.to_string();
            Box::pin(async move {
                self.reads.fetch_add(1, Ordering::SeqCst);
                if let Some(mut gate) = self.gate.clone() {
                    let _ = gate.wait_for(|open| *open).await;
                }
                self.entries
                    .lock()
                    .get(&key)
                    .map(|(bytes, _)| bytes.clone())
            })
        }

        fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'_, ()> {
            self.entries.lock().insert(key.to_string(), (value, ttl));
            Box::pin(async {})
        }
    }

    struct TextCodec;

    impl SharedCodec<String, Arc<str>> for TextCodec {
        fn key(&self, key: &String) -> String {
            stable_key("test", &json!(key))
        }
        fn encode(&self, value: &Arc<str>) -> Option<Vec<u8>> {
            Some(value.as_bytes().to_vec())
        }
        fn decode(&self, _: &String, bytes: &[u8]) -> Option<Arc<str>> {
            std::str::from_utf8(bytes).ok().map(Arc::from)
        }
    }

    /// The cache of another "process": its own L1 on the shared `tier`.
    fn process(clock: &FakeClock, tier: &Arc<MemoryTier>) -> TestCache {
        ResponseCache::with_shared_tier(
            &CacheConfig::default(),
            clock.shared(),
            Arc::clone(tier) as Arc<dyn SharedCacheTier>,
            Arc::new(TextCodec),
        )
    }

    async fn written(tier: &MemoryTier, entries: usize) {
        until(|| tier.entries.lock().len() == entries).await;
    }

    #[tokio::test]
    async fn an_answer_fetched_by_one_process_is_served_to_another_from_the_shared_tier() {
        let clock = FakeClock::at_epoch();
        let tier = Arc::new(MemoryTier::default());
        let (a, b) = (process(&clock, &tier), process(&clock, &tier));
        let calls = Arc::new(AtomicUsize::new(0));
        let ttl = policy(60, 0, 600);
        let k = key();
        let get = |cache: &TestCache, result| {
            let fetch = fetch_returning(&calls, result);
            let cache = cache.clone();
            let k = k.clone();
            async move { cache.get_or_fetch(&k, ttl, fetch).await.unwrap() }
        };
        get(&a, value("v1")).await;
        written(&tier, 1).await;
        let (name, (bytes, physical)) = tier
            .entries
            .lock()
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap();
        assert_eq!(name, stable_key("test", &json!("k")));
        assert_eq!(physical, secs(660) + PHYSICAL_MARGIN);
        assert!(bytes.starts_with(b"{\"schema\":1,"));

        clock.advance(secs(20));
        let from_b = get(&b, value("v2")).await;
        assert_eq!(
            (&*from_b.value, from_b.source, from_b.age),
            ("v1", CacheSource::Hit, secs(20))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(get(&b, value("v2")).await.source, CacheSource::Hit);
        assert_eq!(
            tier.reads.load(Ordering::SeqCst),
            2,
            "the second read came from L1"
        );
        let stats = b.stats();
        assert_eq!((stats.hits, stats.shared_hits, stats.misses), (2, 1, 0));

        // Freshness travels with the entry: past it, B fetches.
        clock.advance(secs(41));
        let refreshed = get(&b, value("v3")).await;
        assert_eq!(
            (&*refreshed.value, refreshed.source),
            ("v3", CacheSource::Miss)
        );
    }

    #[tokio::test]
    async fn undecodable_entries_and_other_schema_versions_are_misses() {
        let clock = FakeClock::at_epoch();
        let tier = Arc::new(MemoryTier::default());
        let name = stable_key("test", &json!("k"));
        let header = |schema: u32| {
            format!(
                "{{\"schema\":{schema},\"negative\":false,\"stored_at\":0,\
                 \"fresh_until\":9999999999999,\"swr_until\":9999999999999,\
                 \"sie_until\":9999999999999}}\n"
            )
        };
        let mut not_utf8 = header(1).into_bytes();
        not_utf8.push(0xff);
        for stored in [
            b"garbage".to_vec(),
            format!("{}v0", header(2)).into_bytes(),
            not_utf8,
        ] {
            tier.entries.lock().insert(name.clone(), (stored, secs(60)));
            let cache = process(&clock, &tier);
            let calls = Arc::new(AtomicUsize::new(0));
            let outcome = cache
                .get_or_fetch(
                    &key(),
                    policy(60, 0, 0),
                    fetch_returning(&calls, value("v1")),
                )
                .await
                .unwrap();
            assert_eq!(
                (outcome.source, calls.load(Ordering::SeqCst)),
                (CacheSource::Miss, 1)
            );
        }
        // The same envelope, well formed, is a hit.
        tier.entries
            .lock()
            .insert(name, (format!("{}v0", header(1)).into_bytes(), secs(60)));
        let calls = Arc::new(AtomicUsize::new(0));
        let outcome = process(&clock, &tier)
            .get_or_fetch(
                &key(),
                policy(60, 0, 0),
                fetch_returning(&calls, value("v1")),
            )
            .await
            .unwrap();
        assert_eq!((&*outcome.value, outcome.source), ("v0", CacheSource::Hit));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_read_the_shared_tier_once() {
        let clock = FakeClock::at_epoch();
        let writer_tier = Arc::new(MemoryTier::default());
        let calls = Arc::new(AtomicUsize::new(0));
        process(&clock, &writer_tier)
            .get_or_fetch(
                &key(),
                policy(60, 0, 0),
                fetch_returning(&calls, value("v1")),
            )
            .await
            .unwrap();
        written(&writer_tier, 1).await;

        let (open, gate) = watch::channel(false);
        let tier = Arc::new(MemoryTier {
            entries: Mutex::new(writer_tier.entries.lock().clone()),
            gate: Some(gate),
            ..MemoryTier::default()
        });
        let cache = process(&clock, &tier);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let cache = cache.clone();
            let fetch = fetch_returning(&calls, value("v2"));
            tasks.spawn(async move { cache.get_or_fetch(&key(), policy(60, 0, 0), fetch).await });
        }
        until(|| waiters(&cache, &key()) == 49).await;
        open.send_replace(true);
        let results = tasks.join_all().await;
        assert!(results
            .iter()
            .all(|r| r.as_ref().map(|o| &*o.value) == Ok("v1")));
        assert_eq!(tier.reads.load(Ordering::SeqCst), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "only the writer fetched");
    }

    #[tokio::test]
    async fn a_stale_shared_entry_is_served_on_error_under_the_failure_throttle() {
        let clock = FakeClock::at_epoch();
        let tier = Arc::new(MemoryTier::default());
        let (a, b) = (process(&clock, &tier), process(&clock, &tier));
        let calls = Arc::new(AtomicUsize::new(0));
        let ttl = policy(10, 0, 60);
        a.get_or_fetch(&key(), ttl, fetch_returning(&calls, value("v1")))
            .await
            .unwrap();
        written(&tier, 1).await;

        clock.advance(secs(30));
        let stale = b
            .get_or_fetch(&key(), ttl, fetch_returning(&calls, Err(Status(503))))
            .await
            .unwrap();
        assert_eq!(
            (&*stale.value, stale.source),
            ("v1", CacheSource::StaleIfError)
        );
        clock.advance(secs(10));
        let throttled = b
            .get_or_fetch(&key(), ttl, fetch_returning(&calls, value("v2")))
            .await
            .unwrap();
        assert_eq!(throttled.source, CacheSource::StaleIfError);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "no upstream call under the throttle"
        );

        // A negative answer travels too; errors never do.
        let missing = "missing".to_string();
        let not_found = Ok(Fetched::NotFound(Arc::from("gone")));
        a.get_or_fetch(&missing, ttl, fetch_returning(&calls, not_found))
            .await
            .unwrap();
        written(&tier, 2).await;
        let from_b = b
            .get_or_fetch(&missing, ttl, fetch_returning(&calls, value("found")))
            .await
            .unwrap();
        assert!(from_b.negative && from_b.cached());
        let failing = "failing".to_string();
        let _ = a
            .get_or_fetch(&failing, ttl, fetch_returning(&calls, Err(Status(500))))
            .await;
        tokio::task::yield_now().await;
        assert_eq!(tier.entries.lock().len(), 2);
    }
}
