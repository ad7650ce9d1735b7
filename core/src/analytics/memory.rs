//! The default analytics store: this process's hourly buckets, bounded by
//! the retention and by a number of buckets.

use std::collections::HashMap;

use futures::future::BoxFuture;
use parking_lot::Mutex;

use super::{AnalyticsStore, BucketKey, BucketTotals};

/// Buckets kept at most (hour × capability × provider × tag): a caller
/// inventing a new tag on every call must not grow memory without bound.
const MAX_BUCKETS: usize = 100_000;

/// Hourly buckets in this process's memory; lost when it exits.
#[derive(Debug, Default)]
pub struct MemoryStore {
    buckets: Mutex<HashMap<BucketKey, BucketTotals>>,
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
}
