//! The default analytics store: this process's hourly buckets, bounded by
//! the retention and by a number of buckets, and its assistant
//! conversations, bounded by the retention and by a number of
//! conversations.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::Mutex;

use super::{AnalyticsStore, BucketKey, BucketTotals};

/// Buckets kept at most (hour × capability × provider × tag): a caller
/// inventing a new tag on every call must not grow memory without bound.
const MAX_BUCKETS: usize = 100_000;

/// Conversations kept at most: past it, saving one forgets the least
/// recently updated (a memory store is this process's alone; a service
/// with more users wants the SQLite file or Redis).
pub const MAX_MEMORY_CONVERSATIONS: usize = 10_000;

/// Hourly buckets and conversations in this process's memory; lost when
/// it exits.
#[derive(Debug, Default)]
pub struct MemoryStore {
    buckets: Mutex<HashMap<BucketKey, BucketTotals>>,
    /// By id: last update (Unix ms) and JSON text.
    conversations: Mutex<HashMap<String, (i64, Arc<str>)>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Buckets held now.
    pub fn len(&self) -> usize {
        self.buckets.lock().len()
    }

    /// No bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Conversations held now (expired ones included until pruned).
    pub fn conversation_count(&self) -> usize {
        self.conversations.lock().len()
    }

    /// Adds `buckets`; those that would pass the bound are left out and
    /// counted.
    pub(crate) fn add(&self, buckets: &[(BucketKey, BucketTotals)]) -> usize {
        let mut held = self.buckets.lock();
        let mut refused = 0;
        for (key, totals) in buckets {
            if let Some(sum) = held.get_mut(key) {
                sum.merge(totals);
            } else if held.len() < MAX_BUCKETS {
                held.insert(key.clone(), totals.clone());
            } else {
                refused += 1;
            }
        }
        refused
    }

    pub(crate) fn range(&self, from: i64, to: i64) -> Vec<(BucketKey, BucketTotals)> {
        self.buckets
            .lock()
            .iter()
            .filter(|(k, _)| (from..=to).contains(&k.hour))
            .map(|(k, t)| (k.clone(), t.clone()))
            .collect()
    }

    pub(crate) fn forget_before(&self, hour: i64) {
        self.buckets.lock().retain(|k, _| k.hour >= hour);
    }

    /// Takes every bucket out.
    #[cfg(feature = "redis")]
    pub(crate) fn take(&self) -> Vec<(BucketKey, BucketTotals)> {
        self.buckets.lock().drain().collect()
    }
}

impl AnalyticsStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn write<'a>(
        &'a self,
        buckets: &'a [(BucketKey, BucketTotals)],
    ) -> BoxFuture<'a, Result<(), String>> {
        let refused = self.add(buckets);
        Box::pin(async move {
            if refused == 0 {
                Ok(())
            } else {
                Err(format!(
                    "{refused} buckets left out: the memory store holds {MAX_BUCKETS} at most"
                ))
            }
        })
    }

    fn read(
        &self,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Vec<(BucketKey, BucketTotals)>, String>> {
        let buckets = self.range(from, to);
        Box::pin(async move { Ok(buckets) })
    }

    fn prune(&self, hour: i64) -> BoxFuture<'_, Result<(), String>> {
        self.forget_before(hour);
        Box::pin(async { Ok(()) })
    }

    fn save_conversation<'a>(
        &'a self,
        id: &'a str,
        updated_ms: i64,
        body: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        let mut held = self.conversations.lock();
        if held.len() >= MAX_MEMORY_CONVERSATIONS && !held.contains_key(id) {
            let oldest = held
                .iter()
                .min_by_key(|(id, (updated, _))| (*updated, id.as_str()))
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                held.remove(&oldest);
            }
        }
        held.insert(id.to_string(), (updated_ms, Arc::from(body)));
        Box::pin(async { Ok(()) })
    }

    fn load_conversation<'a>(
        &'a self,
        id: &'a str,
        since_ms: i64,
    ) -> BoxFuture<'a, Result<Option<String>, String>> {
        let found = self
            .conversations
            .lock()
            .get(id)
            .filter(|(updated, _)| *updated >= since_ms)
            .map(|(_, body)| body.to_string());
        Box::pin(async move { Ok(found) })
    }

    fn delete_conversation<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        let removed = self.conversations.lock().remove(id).is_some();
        Box::pin(async move { Ok(removed) })
    }

    fn conversation_ids(
        &self,
        limit: usize,
        since_ms: i64,
    ) -> BoxFuture<'_, Result<Vec<String>, String>> {
        let mut found: Vec<(i64, String)> = self
            .conversations
            .lock()
            .iter()
            .filter(|(_, (updated, _))| *updated >= since_ms)
            .map(|(id, (updated, _))| (*updated, id.clone()))
            .collect();
        // Most recent first; ties by id, descending (as Redis's sorted
        // set orders them).
        found.sort_by(|a, b| b.cmp(a));
        let ids = found.into_iter().take(limit).map(|(_, id)| id).collect();
        Box::pin(async move { Ok(ids) })
    }

    fn prune_conversations(&self, before_ms: i64) -> BoxFuture<'_, Result<(), String>> {
        self.conversations
            .lock()
            .retain(|_, (updated, _)| *updated >= before_ms);
        Box::pin(async { Ok(()) })
    }
}
