//! Call analytics: every finished call recorded off the hot path, kept as
//! hourly aggregates, queried by hour or day.
//!
//! ```text
//! call ends ─ CallRecord ─ try_send ─▶ bounded queue ─▶ drain task ─▶ store
//!             (≤ 1 µs; a full queue drops the record and counts it)   (batches:
//!              every 256 records or 200 ms, and before each query)
//! ```
//!
//! A [`CallRecord`] holds no parameter, key or answer: time, capability,
//! provider, outcome class, latency, cached/stale, tokens, cost and the
//! caller's tag. The drain task folds each batch into [`BucketTotals`] per
//! hour × capability × provider × tag ([`BucketKey`]) and hands them to the
//! store: [`MemoryStore`] (default), [`SqliteStore`] (`[analytics] sqlite`,
//! shared by the processes of one machine) or the Redis store
//! (`[analytics] redis = true`, shared by every process). Latency is kept as
//! the log-scale histogram of [`crate::stats`], so p50/p95 are exact to the
//! histogram's ~12 % buckets whatever the number of calls.
//!
//! The store also keeps the assistant's conversations by id (see
//! `conversations.rs` and [`crate::Client::save_conversation`]), pruned
//! with the old hours.

mod conversations;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod sqlite;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Notify};

use crate::clock::SharedClock;
use crate::duration::serde_secs;
use crate::error::{Error, Result};

pub(crate) use conversations::ConversationStore;
pub use conversations::{check_conversation_id, MAX_CONVERSATION_ID_CHARS};
pub use memory::{MemoryStore, MAX_MEMORY_CONVERSATIONS};
#[cfg(feature = "redis")]
pub(crate) use redis::RedisStore;
pub use sqlite::SqliteStore;

/// Outcome class of an answered call.
pub const SUCCESS: &str = "success";

/// Seconds in a bucket: aggregates are kept per hour.
const HOUR_SECS: i64 = 3600;

/// Most records one store write takes.
const BATCH: usize = 1024;

/// Records queued before the drain task is woken: waking it for each one
/// would cost every call a cross-thread wake-up.
const WAKE_AT: usize = 256;

/// Longest a record waits in the queue when fewer than [`WAKE_AT`] are
/// queued (a query writes pending records first anyway). Real time: a
/// write cadence, not logic a test needs to move.
const DRAIN_EVERY: Duration = Duration::from_millis(200);

/// The `[analytics]` table.
///
/// ```toml
/// [analytics]
/// sqlite = "/var/lib/app/polyrelay.sqlite"  # else in memory (or Redis)
/// redis = false          # true: aggregates in the [redis] server
/// retention = "30d"      # older hours (and conversations) are pruned
/// queue = 65536          # records waiting for the store; more are dropped
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// Record calls at all (default true).
    pub enabled: bool,
    /// An SQLite file for the aggregates, and for the daily and monthly
    /// quota counters of this process (kept across restarts).
    pub sqlite: Option<std::path::PathBuf>,
    /// Keep the aggregates in the `[redis]` server, shared by every process
    /// (memory is used while Redis is unreachable).
    pub redis: bool,
    /// How long hourly aggregates are kept, and the assistant's
    /// conversations after their last save.
    #[serde(deserialize_with = "serde_secs::deserialize")]
    pub retention: Duration,
    /// Records waiting for the store at most; a call finding the queue full
    /// drops its record (counted in [`AnalyticsStatus::dropped`]).
    pub queue: usize,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sqlite: None,
            redis: false,
            retention: Duration::from_secs(30 * 24 * 3600),
            queue: 65_536,
        }
    }
}

impl AnalyticsConfig {
    /// Checks the values; errors name the field.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.queue == 0 {
            return Err(Error::config("analytics.queue", "must be at least 1"));
        }
        if self.retention < Duration::from_secs(HOUR_SECS as u64) {
            return Err(Error::config("analytics.retention", "must be at least 1h"));
        }
        if self.sqlite.is_some() && self.redis {
            return Err(Error::config(
                "analytics",
                "set `sqlite` or `redis = true`, not both",
            ));
        }
        Ok(())
    }
}

/// One finished call, as recorded. Holds no parameter, key or answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// When the call ended.
    pub at: DateTime<Utc>,
    /// The capability called.
    pub capability: &'static str,
    /// The provider that answered (for a composed call, `meta`); `None`
    /// when none did.
    pub provider: Option<&'static str>,
    /// [`SUCCESS`], or the error kind's name (`timeout`, `rate_limited`, …).
    pub outcome: &'static str,
    /// From the call to its answer or error.
    pub latency: Duration,
    /// Of which spent in HTTP exchanges with providers (the attempts'
    /// [`crate::Attempt::upstream`]); the rest is polyrelay's overhead.
    pub upstream: Duration,
    /// Served from the cache.
    pub cached: bool,
    /// Served stale (past its freshness).
    pub stale: bool,
    /// Prompt tokens reported (LLM answers not from the cache).
    pub input_tokens: u64,
    /// Generated tokens reported.
    pub output_tokens: u64,
    /// What the answer cost, in US dollars (0 when unknown or cached).
    pub cost_usd: f64,
    /// The caller's tag, when given.
    pub tag: Option<Arc<str>>,
}

/// Which aggregate a record adds to: its hour, capability, provider
/// (empty: none answered) and tag (empty: none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketKey {
    /// Hours since the Unix epoch (UTC).
    pub hour: i64,
    /// Capability name.
    pub capability: String,
    /// Answering provider, or empty.
    pub provider: String,
    /// Caller tag, or empty.
    pub tag: String,
}

/// The sums of one bucket's calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketTotals {
    /// Calls.
    pub calls: u64,
    /// Calls by outcome class ([`SUCCESS`] or an error kind).
    pub outcomes: BTreeMap<String, u64>,
    /// Calls served from the cache.
    pub cached: u64,
    /// Calls served stale.
    pub stale: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// US dollars.
    pub cost_usd: f64,
    /// Latency histogram: count by bucket index of the log-scale
    /// histogram (8 buckets per power of two of microseconds).
    pub latency: BTreeMap<u16, u64>,
}

impl BucketTotals {
    fn add(&mut self, record: &CallRecord) {
        self.calls += 1;
        match self.outcomes.get_mut(record.outcome) {
            Some(n) => *n += 1,
            None => {
                self.outcomes.insert(record.outcome.to_string(), 1);
            }
        }
        self.cached += u64::from(record.cached);
        self.stale += u64::from(record.stale);
        self.input_tokens += record.input_tokens;
        self.output_tokens += record.output_tokens;
        self.cost_usd += record.cost_usd;
        let bucket = crate::stats::bucket_of(record.latency) as u16;
        *self.latency.entry(bucket).or_default() += 1;
    }

    /// Adds `other`'s sums to these.
    pub fn merge(&mut self, other: &BucketTotals) {
        self.calls += other.calls;
        for (class, n) in &other.outcomes {
            *self.outcomes.entry(class.clone()).or_default() += n;
        }
        self.cached += other.cached;
        self.stale += other.stale;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_usd += other.cost_usd;
        for (bucket, n) in &other.latency {
            *self.latency.entry(*bucket).or_default() += n;
        }
    }

    /// The `p`th latency percentile (0 < p ≤ 1) in milliseconds: the upper
    /// bound of the histogram bucket holding it.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        let total: u64 = self.latency.values().sum();
        if total == 0 {
            return None;
        }
        let rank = ((p * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, n) in &self.latency {
            seen += n;
            if seen >= rank {
                return Some(crate::stats::bucket_upper_ms(usize::from(*bucket)));
            }
        }
        None
    }
}

/// The hourly buckets of a batch of records.
///
/// Keyed by borrowed names while folding, so that the owned key is made
/// once per bucket rather than once per record: the drain shares the
/// callers' cores, and at full load its cost per call shows in their rate.
pub(crate) fn fold(records: &[CallRecord]) -> Vec<(BucketKey, BucketTotals)> {
    let mut buckets: HashMap<(i64, &str, &str, &str), BucketTotals, foldhash::fast::RandomState> =
        HashMap::default();
    for record in records {
        let key = (
            record.at.timestamp().div_euclid(HOUR_SECS),
            record.capability,
            record.provider.unwrap_or_default(),
            record.tag.as_deref().unwrap_or_default(),
        );
        buckets.entry(key).or_default().add(record);
    }
    buckets
        .into_iter()
        .map(|((hour, capability, provider, tag), totals)| {
            let key = BucketKey {
                hour,
                capability: capability.to_string(),
                provider: provider.to_string(),
                tag: tag.to_string(),
            };
            (key, totals)
        })
        .collect()
}

/// Where aggregates are kept. Writes add to what is there (several
/// processes may write one store); reads return the buckets of an hour range.
pub trait AnalyticsStore: Send + Sync + fmt::Debug + 'static {
    /// `memory`, `sqlite`, `redis`, …
    fn kind(&self) -> &'static str;

    /// Adds `buckets` to the stored sums.
    fn write<'a>(
        &'a self,
        buckets: &'a [(BucketKey, BucketTotals)],
    ) -> BoxFuture<'a, std::result::Result<(), String>>;

    /// The buckets of hours `from..=to`.
    fn read(
        &self,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, std::result::Result<Vec<(BucketKey, BucketTotals)>, String>>;

    /// Forgets the buckets of hours before `hour`.
    fn prune(&self, hour: i64) -> BoxFuture<'_, std::result::Result<(), String>>;

    /// Forgets the conversations last updated before `before_ms` (Unix
    /// ms). Nothing to do for a store that keeps none (the default).
    fn prune_conversations(
        &self,
        before_ms: i64,
    ) -> BoxFuture<'_, std::result::Result<(), String>> {
        let _ = before_ms;
        Box::pin(async { Ok(()) })
    }

    /// Keeps `body` (a conversation's JSON text) under `id`, updated at
    /// `updated_ms` (Unix ms), replacing what was there. `id` is checked
    /// ([`check_conversation_id`]). Stores that keep no conversations
    /// (the default of this method) fail.
    fn save_conversation<'a>(
        &'a self,
        id: &'a str,
        updated_ms: i64,
        body: &'a str,
    ) -> BoxFuture<'a, std::result::Result<(), String>> {
        let _ = (id, updated_ms, body);
        Box::pin(async move { Err(no_conversations(self.kind())) })
    }

    /// The body saved under `id`, unless absent or updated before
    /// `since_ms`.
    fn load_conversation<'a>(
        &'a self,
        id: &'a str,
        since_ms: i64,
    ) -> BoxFuture<'a, std::result::Result<Option<String>, String>> {
        let _ = (id, since_ms);
        Box::pin(async move { Err(no_conversations(self.kind())) })
    }

    /// Forgets the conversation saved under `id`; whether there was one.
    fn delete_conversation<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, std::result::Result<bool, String>> {
        let _ = id;
        Box::pin(async move { Err(no_conversations(self.kind())) })
    }

    /// The ids of the conversations updated since `since_ms`, most
    /// recently updated first, `limit` at most.
    fn conversation_ids(
        &self,
        limit: usize,
        since_ms: i64,
    ) -> BoxFuture<'_, std::result::Result<Vec<String>, String>> {
        let _ = (limit, since_ms);
        Box::pin(async move { Err(no_conversations(self.kind())) })
    }

    /// The store is running on a fallback (Redis unreachable: memory).
    fn degraded(&self) -> bool {
        false
    }

    /// Batches written to the fallback instead (Redis unreachable).
    fn fallback_writes(&self) -> u64 {
        0
    }
}

/// Why a store that keeps no conversations fails their methods.
fn no_conversations(kind: &str) -> String {
    format!("the {kind} analytics store keeps no conversations")
}

/// Per hour or per day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// UTC hours.
    #[default]
    Hour,
    /// UTC days.
    Day,
}

/// What rows are grouped by, besides the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    /// The capability called.
    Capability,
    /// The provider that answered.
    Provider,
    /// The caller's tag.
    Tag,
}

/// An analytics query: rows per period × the `group_by` dimensions, over
/// the calls the filters keep.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// Per hour (default) or per day.
    pub by: Period,
    /// Dimensions each row is split by.
    pub group_by: Vec<Dimension>,
    /// Only this capability's calls.
    pub capability: Option<String>,
    /// Only calls this provider answered (`none`: calls none answered).
    pub provider: Option<String>,
    /// Only calls with this tag.
    pub tag: Option<String>,
    /// From this time on (its hour included); default: the retention.
    pub since: Option<DateTime<Utc>>,
    /// Up to this time (its hour included); default: now.
    pub until: Option<DateTime<Utc>>,
}

impl AnalyticsQuery {
    /// Parses a JSON query (`{"by": "day", "group_by": ["provider"], ...}`);
    /// errors name the field.
    pub fn from_json(value: serde_json::Value) -> Result<Self> {
        serde_json::from_value(value).map_err(|e| Error::invalid("analytics query", e.to_string()))
    }

    fn keeps(&self, key: &BucketKey) -> bool {
        let provider = if key.provider.is_empty() {
            NO_PROVIDER
        } else {
            &key.provider
        };
        self.capability
            .as_ref()
            .is_none_or(|c| *c == key.capability)
            && self.provider.as_ref().is_none_or(|p| p == provider)
            && self.tag.as_ref().is_none_or(|t| *t == key.tag)
    }
}

/// How a call no provider answered shows in a `provider` filter.
pub const NO_PROVIDER: &str = "none";

/// Calls of one error class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorCount {
    /// The error kind's name.
    pub class: String,
    /// Calls that ended so.
    pub calls: u64,
}

/// One row of an analytics answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyticsRow {
    /// Start of the hour or day (UTC).
    pub period: DateTime<Utc>,
    /// The capability, when grouped by it.
    pub capability: Option<String>,
    /// The answering provider, when grouped by it (null: none answered).
    pub provider: Option<String>,
    /// The tag, when grouped by it (null: untagged).
    pub tag: Option<String>,
    /// Calls.
    pub calls: u64,
    /// Calls answered.
    pub successes: u64,
    /// `successes / calls`.
    pub success_rate: f64,
    /// Calls served from the cache.
    pub cached: u64,
    /// `cached / calls`.
    pub cache_hit_ratio: f64,
    /// Calls served stale.
    pub stale: u64,
    /// Median latency (ms), to the histogram's precision.
    pub latency_ms_p50: Option<f64>,
    /// 95th percentile latency (ms).
    pub latency_ms_p95: Option<f64>,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// US dollars.
    pub cost_usd: f64,
    /// The most frequent error classes, most frequent first (at most 5).
    pub top_errors: Vec<ErrorCount>,
}

/// Rows of `buckets` for `query`, in period then group order.
pub(crate) fn rows(
    query: &AnalyticsQuery,
    buckets: Vec<(BucketKey, BucketTotals)>,
) -> Vec<AnalyticsRow> {
    type Group = (i64, Option<String>, Option<String>, Option<String>);
    let grouped = |d: Dimension| query.group_by.contains(&d);
    let mut groups: BTreeMap<Group, BucketTotals> = BTreeMap::new();
    for (key, totals) in buckets {
        if !query.keeps(&key) {
            continue;
        }
        let period = match query.by {
            Period::Hour => key.hour * HOUR_SECS,
            Period::Day => key.hour.div_euclid(24) * 24 * HOUR_SECS,
        };
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        let group = (
            period,
            grouped(Dimension::Capability).then_some(key.capability),
            grouped(Dimension::Provider)
                .then(|| non_empty(key.provider))
                .flatten(),
            grouped(Dimension::Tag)
                .then(|| non_empty(key.tag))
                .flatten(),
        );
        groups.entry(group).or_default().merge(&totals);
    }
    groups
        .into_iter()
        .map(|((period, capability, provider, tag), t)| {
            let successes = t.outcomes.get(SUCCESS).copied().unwrap_or(0);
            let ratio = |n: u64| {
                if t.calls == 0 {
                    0.0
                } else {
                    n as f64 / t.calls as f64
                }
            };
            let mut top_errors: Vec<ErrorCount> = t
                .outcomes
                .iter()
                .filter(|(class, _)| class.as_str() != SUCCESS)
                .map(|(class, calls)| ErrorCount {
                    class: class.clone(),
                    calls: *calls,
                })
                .collect();
            top_errors.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.class.cmp(&b.class)));
            top_errors.truncate(5);
            AnalyticsRow {
                period: Utc.timestamp_opt(period, 0).single().unwrap_or_default(),
                capability,
                provider,
                tag,
                calls: t.calls,
                successes,
                success_rate: ratio(successes),
                cached: t.cached,
                cache_hit_ratio: ratio(t.cached),
                stale: t.stale,
                latency_ms_p50: t.percentile_ms(0.50),
                latency_ms_p95: t.percentile_ms(0.95),
                input_tokens: t.input_tokens,
                output_tokens: t.output_tokens,
                cost_usd: t.cost_usd,
                top_errors,
            }
        })
        .collect()
}

/// The recorder's counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyticsStatus {
    /// `memory`, `sqlite` or `redis`; `off` when disabled.
    pub store: &'static str,
    /// Records queued.
    pub recorded: u64,
    /// Records dropped because the queue was full.
    pub dropped: u64,
    /// Records the store took.
    pub written: u64,
    /// Batches the store failed to take (their records are lost).
    pub write_errors: u64,
    /// The store runs on its fallback (Redis unreachable).
    pub degraded: bool,
    /// Batches kept in memory because Redis was unreachable (handed to
    /// Redis with a later batch).
    pub fallback_writes: u64,
}

/// The hot-path end of analytics: a bounded queue and the task draining it.
pub(crate) struct Recorder {
    sender: mpsc::Sender<CallRecord>,
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<dyn AnalyticsStore>,
    clock: SharedClock,
    retention: Duration,
    recorded: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    write_errors: AtomicU64,
    wake: Notify,
    closed: AtomicBool,
    drain: tokio::sync::Mutex<Drain>,
    /// Shown each drained batch before the store (the per-call metrics).
    on_batch: Option<OnBatch>,
    /// Run after each drain (saving the quota counters to the same file).
    after_drain: Option<AfterDrain>,
}

/// What runs after each drain.
pub(crate) type AfterDrain = Box<dyn Fn() + Send + Sync>;

/// What each drained batch of records is shown to, off the hot path.
pub(crate) type OnBatch = Box<dyn Fn(&[CallRecord]) + Send + Sync>;

struct Drain {
    receiver: mpsc::Receiver<CallRecord>,
    batch: Vec<CallRecord>,
    /// The hour up to which old buckets were last pruned.
    pruned_before: i64,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("store", &self.shared.store.kind())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder into `store`, its drain task spawned on polyrelay's runtime.
    pub(crate) fn new(
        store: Arc<dyn AnalyticsStore>,
        config: &AnalyticsConfig,
        clock: SharedClock,
        after_drain: Option<AfterDrain>,
        on_batch: Option<OnBatch>,
    ) -> Result<Self> {
        let (sender, receiver) = mpsc::channel(config.queue);
        let shared = Arc::new(Shared {
            store,
            clock,
            retention: config.retention,
            recorded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            drain: tokio::sync::Mutex::new(Drain {
                receiver,
                batch: Vec::with_capacity(BATCH),
                pruned_before: i64::MIN,
            }),
            on_batch,
            after_drain,
        });
        let task = Arc::clone(&shared);
        crate::runtime::shared()?.spawn(async move {
            loop {
                let _ = tokio::time::timeout(DRAIN_EVERY, task.wake.notified()).await;
                task.drain().await;
                if task.closed.load(Ordering::Acquire) {
                    break;
                }
            }
        });
        Ok(Self { sender, shared })
    }

    /// Queues `record`: never blocks; a full queue drops it and counts it.
    pub(crate) fn record(&self, record: CallRecord) {
        match self.sender.try_send(record) {
            Ok(()) => {
                self.shared.recorded.fetch_add(1, Ordering::Relaxed);
                let max = self.sender.max_capacity();
                if max - self.sender.capacity() >= WAKE_AT.min(max / 2).max(1) {
                    self.shared.wake.notify_one();
                }
            }
            Err(_) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Writes every queued record to the store now.
    pub(crate) async fn flush(&self) {
        self.shared.drain().await;
    }

    /// The rows of `query`, after a flush.
    pub(crate) async fn query(&self, query: &AnalyticsQuery) -> Result<Vec<AnalyticsRow>> {
        self.flush().await;
        let now = self.shared.clock.wall();
        let oldest = self.shared.cutoff(now);
        let from = query.since.map_or(oldest, |s| hour_of(s).max(oldest));
        let to = query.until.map_or(hour_of(now), hour_of);
        if from > to {
            return Ok(Vec::new());
        }
        let buckets = self
            .shared
            .store
            .read(from, to)
            .await
            .map_err(|reason| Error::Usage {
                message: format!("the analytics store could not be read: {reason}"),
            })?;
        Ok(rows(query, buckets))
    }

    pub(crate) fn status(&self) -> AnalyticsStatus {
        let s = &self.shared;
        AnalyticsStatus {
            store: s.store.kind(),
            recorded: s.recorded.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            written: s.written.load(Ordering::Relaxed),
            write_errors: s.write_errors.load(Ordering::Relaxed),
            degraded: s.store.degraded(),
            fallback_writes: s.store.fallback_writes(),
        }
    }
}

/// The drain task ends once it has written what is left.
impl Drop for Recorder {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

fn hour_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(HOUR_SECS)
}

impl Shared {
    /// The first hour retention keeps at `now`.
    fn cutoff(&self, now: DateTime<Utc>) -> i64 {
        hour_of(now) - (self.retention.as_secs() as i64).div_euclid(HOUR_SECS) + 1
    }

    /// Writes what the queue holds, a batch at a time; prunes once an hour.
    async fn drain(&self) {
        let mut drain = self.drain.lock().await;
        let drain = &mut *drain;
        loop {
            drain.batch.clear();
            while drain.batch.len() < BATCH {
                match drain.receiver.try_recv() {
                    Ok(record) => drain.batch.push(record),
                    Err(_) => break,
                }
            }
            if drain.batch.is_empty() {
                break;
            }
            if let Some(on_batch) = &self.on_batch {
                on_batch(&drain.batch);
            }
            let buckets = fold(&drain.batch);
            match self.store.write(&buckets).await {
                Ok(()) => {
                    self.written
                        .fetch_add(drain.batch.len() as u64, Ordering::Relaxed);
                }
                Err(reason) => {
                    self.write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(store = self.store.kind(), %reason, "analytics batch lost");
                }
            }
        }
        if let Some(after) = &self.after_drain {
            after();
        }
        let now = self.clock.wall();
        let cutoff = self.cutoff(now);
        if cutoff > drain.pruned_before {
            let pruned = match self.store.prune(cutoff).await {
                Ok(()) => {
                    let before_ms = conversations::cutoff_ms(now, self.retention);
                    self.store.prune_conversations(before_ms).await
                }
                failed => failed,
            };
            if let Err(reason) = pruned {
                tracing::warn!(store = self.store.kind(), %reason, "analytics pruning failed");
            } else {
                drain.pruned_before = cutoff;
            }
        }
    }
}
