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
//!
//! Conversations are one string key each, `<prefix>conv:{<id>}` (the
//! conversation's JSON, expiring after the retention from its last save),
//! and one sorted set of ids by last update, `<prefix>conv-ids`, for
//! listing. Unlike the aggregates they have no memory fallback: a
//! conversation kept in one process's memory would be missing from the
//! others, and lost with it. While Redis is unreachable, saving, loading,
//! deleting and listing fail with an error the caller sees.

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
    /// How long a conversation lives after its last save.
    retention: Duration,
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
            retention,
            fallback: MemoryStore::new(),
            fallback_writes: AtomicU64::new(0),
        }
    }

    fn hour_key(&self, hour: i64) -> String {
        self.backend.key(&format!("a:{{{hour}}}"))
    }

    /// The key of conversation `id` (checked: no `{`, `}` or space).
    fn conversation_key(&self, id: &str) -> String {
        self.backend.key(&format!("conv:{{{id}}}"))
    }

    /// The sorted set of conversation ids by last update (Unix ms).
    fn conversation_index(&self) -> String {
        self.backend.key("conv-ids")
    }

    /// Runs `pipe` within the deadline; "redis unreachable" when it fails.
    async fn query<T: redis::FromRedisValue>(&self, pipe: redis::Pipeline) -> Result<T, String> {
        self.backend
            .run(DEADLINE, |mut connection| {
                let pipe = pipe.clone();
                async move { pipe.query_async::<T>(&mut connection).await }
            })
            .await
            .map_err(|_| "redis is unreachable".to_string())
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

    fn save_conversation<'a>(
        &'a self,
        id: &'a str,
        updated_ms: i64,
        body: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let ttl_ms = u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX);
            let mut pipe = redis::pipe();
            pipe.cmd("SET")
                .arg(self.conversation_key(id))
                .arg(body)
                .arg("PX")
                .arg(ttl_ms)
                .ignore();
            pipe.zadd(self.conversation_index(), id, updated_ms)
                .ignore();
            self.query::<()>(pipe).await
        })
    }

    fn load_conversation<'a>(
        &'a self,
        id: &'a str,
        since_ms: i64,
    ) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.get(self.conversation_key(id));
            pipe.zscore(self.conversation_index(), id);
            let (body, updated): (Option<String>, Option<i64>) = self.query(pipe).await?;
            // The key expires by itself; the score says the same on the
            // client's clock.
            Ok(body.filter(|_| updated.is_none_or(|at| at >= since_ms)))
        })
    }

    fn delete_conversation<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.del(self.conversation_key(id));
            pipe.zrem(self.conversation_index(), id).ignore();
            let (deleted,): (u64,) = self.query(pipe).await?;
            Ok(deleted > 0)
        })
    }

    fn conversation_ids(
        &self,
        limit: usize,
        since_ms: i64,
    ) -> BoxFuture<'_, Result<Vec<String>, String>> {
        Box::pin(async move {
            let index = self.conversation_index();
            let mut pipe = redis::pipe();
            // Ids whose conversations expired leave the index first.
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(&index)
                .arg("-inf")
                .arg(format!("({since_ms}"))
                .ignore();
            let last = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
            pipe.zrevrange(&index, 0, last);
            let (ids,): (Vec<String>,) = self.query(pipe).await?;
            Ok(ids)
        })
    }

    fn prune_conversations(&self, before_ms: i64) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            // The keys expire by themselves; the index is trimmed here, or
            // by the next listing if Redis does not answer now (so an
            // outage does not fail the hourly pruning of the rest).
            let mut pipe = redis::pipe();
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(self.conversation_index())
                .arg("-inf")
                .arg(format!("({before_ms}"))
                .ignore();
            let _ = self.query::<()>(pipe).await;
            Ok(())
        })
    }

    fn degraded(&self) -> bool {
        self.backend.degraded() || !self.fallback.is_empty()
    }

    fn fallback_writes(&self) -> u64 {
        self.fallback_writes.load(Ordering::Relaxed)
    }
}
