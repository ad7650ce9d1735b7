//! The optional second tier shared by several processes (Redis): how
//! entries are written there and read back on this process's clock.

use std::hash::Hash;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::freshness::Envelope;
use super::CacheState;

/// A second cache tier shared by several processes (Redis).
///
/// On an L1 miss (or a stale L1 entry) the caller that would fetch first reads
/// the key here, so reads are coalesced per key; a fresh entry fills L1 and no
/// fetch runs, a stale one can still be served on error. A fetched answer goes
/// to L1 and then, in the background, here with the physical TTL of its stale
/// windows. Entries carry their own freshness and a schema version, so an
/// entry that does not decode is a miss. Keys come from [`SharedCodec::key`]
/// ([`stable_key`](super::stable_key) strings), so they hold no secrets. Implementations bound
/// their own latency and never fail: an error is a miss.
pub trait SharedCacheTier: Send + Sync {
    /// The stored bytes for `key`, or `None` on a miss or any failure.
    fn get(&self, key: &str) -> BoxFuture<'_, Option<Vec<u8>>>;
    /// Stores `value` under `key` for `ttl`; failures are logged, not returned.
    fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'_, ()>;
}

/// How a [`ResponseCache`](super::ResponseCache)'s keys and values are stored in a [`SharedCacheTier`].
pub trait SharedCodec<K, V>: Send + Sync {
    /// The tier key of `key`: a [`stable_key`](super::stable_key), never holding a secret.
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
#[derive(Serialize, Deserialize)]
struct SharedHeader {
    schema: u32,
    negative: bool,
    stored_at: i64,
    fresh_until: i64,
    swr_until: i64,
    sie_until: i64,
}

/// The shared tier of one cache and how its entries are encoded.
pub(super) struct SharedTier<K, V> {
    pub(super) tier: Arc<dyn SharedCacheTier>,
    pub(super) codec: Arc<dyn SharedCodec<K, V>>,
}

impl<K, V> CacheState<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The shared tier's entry for `key`, converted to this process's clock;
    /// `None` on a miss, a failure, or an entry that does not decode.
    pub(super) async fn read_shared(&self, key: &K) -> Option<Envelope<V>> {
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
    pub(super) fn write_shared(&self, key: &K, entry: &Envelope<V>) {
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use parking_lot::Mutex;
    use serde_json::json;

    use super::*;
    use crate::resilience::cache::freshness::PHYSICAL_MARGIN;
    use crate::resilience::cache::stable_key;
    use crate::resilience::cache::test_fixtures::*;

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
