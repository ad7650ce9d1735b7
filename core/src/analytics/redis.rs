//! Hourly buckets in Redis (`[analytics] redis = true`), shared by every
//! process using the `[redis]` server.
//!
//! One hash per hour, `<prefix>a:{<hour>}`, whose fields are
//! `<capability>|<provider>|<tag>|<sum>` (`calls`, `cached`, `stale`, `in`,
//! `out`, `cost`, `o:<outcome>`, `l:<latency bucket>`). A batch is one
//! pipeline of `HINCRBY` / `HINCRBYFLOAT` and a `PEXPIRE` per hour, so the
//! hours expire by themselves after the retention. Redis is an accelerator,
//! never a single point of failure: a batch it does not take is kept in
//! memory (and counted), and handed to Redis with a later batch once it
//! answers again; reads add what memory holds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;

use super::{AnalyticsStore, BucketKey, BucketTotals, MemoryStore};
use crate::state::redis::RedisBackend;

/// Deadline of one batch or read: off the hot path, so longer than the
/// state's, yet bounded.
const DEADLINE: Duration = Duration::from_secs(2);

/// Hourly buckets in Redis, with memory as the fallback.
#[derive(Debug)]
pub(crate) struct RedisStore {
    backend: RedisBackend,
    /// How long an hour's hash lives after its last write.
    ttl: Duration,
    /// Batches Redis did not take yet.
    fallback: MemoryStore,
    /// Batches that went to memory because Redis was unreachable.
    fallback_writes: AtomicU64,
}

impl RedisStore {
    pub(crate) fn new(backend: RedisBackend, retention: Duration) -> Self {
        Self {
            backend,
            ttl: retention + Duration::from_secs(3600),
            fallback: MemoryStore::new(),
            fallback_writes: AtomicU64::new(0),
        }
    }

    fn hour_key(&self, hour: i64) -> String {
        self.backend.key(&format!("a:{{{hour}}}"))
    }

    async fn push(&self, buckets: &[(BucketKey, BucketTotals)]) -> bool {
        let mut pipe = redis::pipe();
        let mut hours = Vec::new();
        for (k, t) in buckets {
            let key = self.hour_key(k.hour);
            let field = |sum: &str| format!("{}|{}|{}|{sum}", k.capability, k.provider, k.tag);
            let counts = [
                ("calls", t.calls),
                ("cached", t.cached),
                ("stale", t.stale),
                ("in", t.input_tokens),
                ("out", t.output_tokens),
            ];
            for (sum, n) in counts.into_iter().filter(|(_, n)| *n > 0) {
                pipe.hincr(&key, field(sum), n).ignore();
            }
            if t.cost_usd != 0.0 {
                pipe.cmd("HINCRBYFLOAT")
                    .arg(&key)
                    .arg(field("cost"))
                    .arg(t.cost_usd)
                    .ignore();
            }
            for (outcome, n) in &t.outcomes {
                pipe.hincr(&key, field(&format!("o:{outcome}")), *n)
                    .ignore();
            }
            for (bucket, n) in &t.latency {
                pipe.hincr(&key, field(&format!("l:{bucket}")), *n).ignore();
            }
            if !hours.contains(&key) {
                hours.push(key);
            }
        }
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        for key in &hours {
            pipe.pexpire(key, ttl_ms as i64).ignore();
        }
        self.backend
            .run(DEADLINE, |mut connection| {
                let pipe = pipe.clone();
                async move { pipe.query_async::<()>(&mut connection).await }
            })
            .await
            .is_ok()
    }

    async fn fetch(&self, from: i64, to: i64) -> Option<Vec<(BucketKey, BucketTotals)>> {
        let keys: Vec<(i64, String)> = (from..=to).map(|h| (h, self.hour_key(h))).collect();
        let mut pipe = redis::pipe();
        for (_, key) in &keys {
            pipe.hgetall(key);
        }
        let hashes: Vec<HashMap<String, String>> = self
            .backend
            .run(DEADLINE, |mut connection| {
                let pipe = pipe.clone();
                async move { pipe.query_async(&mut connection).await }
            })
            .await
            .ok()?;
        let mut found: HashMap<BucketKey, BucketTotals> = HashMap::new();
        for ((hour, _), hash) in keys.iter().zip(hashes) {
            for (field, value) in hash {
                let mut parts = field.splitn(4, '|');
                let (Some(capability), Some(provider), Some(tag), Some(sum)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let key = BucketKey {
                    hour: *hour,
                    capability: capability.to_string(),
                    provider: provider.to_string(),
                    tag: tag.to_string(),
                };
                let totals = found.entry(key).or_default();
                let count = || value.parse::<u64>().unwrap_or(0);
                match sum {
                    "calls" => totals.calls = count(),
                    "cached" => totals.cached = count(),
                    "stale" => totals.stale = count(),
                    "in" => totals.input_tokens = count(),
                    "out" => totals.output_tokens = count(),
                    "cost" => totals.cost_usd = value.parse().unwrap_or(0.0),
                    other => {
                        if let Some(outcome) = other.strip_prefix("o:") {
                            totals.outcomes.insert(outcome.to_string(), count());
                        } else if let Some(bucket) =
                            other.strip_prefix("l:").and_then(|b| b.parse().ok())
                        {
                            totals.latency.insert(bucket, count());
                        }
                    }
                }
            }
        }
        Some(found.into_iter().collect())
    }
}

impl AnalyticsStore for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn write<'a>(
        &'a self,
        buckets: &'a [(BucketKey, BucketTotals)],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            // What an outage left in memory goes first, with this batch.
            let mut batch = self.fallback.take();
            batch.extend(buckets.iter().cloned());
            if self.push(&batch).await {
                return Ok(());
            }
            self.fallback_writes.fetch_add(1, Ordering::Relaxed);
            match self.fallback.add(&batch) {
                0 => Ok(()),
                refused => Err(format!(
                    "redis unreachable and {refused} buckets over the memory bound"
                )),
            }
        })
    }

    fn read(
        &self,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Vec<(BucketKey, BucketTotals)>, String>> {
        Box::pin(async move {
            let mut buckets = self.fetch(from, to).await.unwrap_or_default();
            buckets.extend(self.fallback.range(from, to));
            Ok(buckets)
        })
    }

    fn prune(&self, hour: i64) -> BoxFuture<'_, Result<(), String>> {
        // Redis expires the hours itself; memory is pruned here.
        self.fallback.forget_before(hour);
        Box::pin(async { Ok(()) })
    }

    fn degraded(&self) -> bool {
        self.backend.degraded() || !self.fallback.is_empty()
    }

    fn fallback_writes(&self) -> u64 {
        self.fallback_writes.load(Ordering::Relaxed)
    }
}
