//! What the cache's tests share: a test cache, fetches that count their
//! calls, and a way to wait for a condition without sleeping.

pub(super) use std::sync::atomic::{AtomicUsize, Ordering};
pub(super) use std::sync::Arc;
pub(super) use std::time::Duration;

pub(super) use futures::future::BoxFuture;
pub(super) use tokio::sync::watch;

pub(super) use super::{CacheConfig, CacheSource, Fetched, ResponseCache, TtlPolicy};
pub(super) use crate::clock::FakeClock;

pub(super) type TestCache = ResponseCache<String, Arc<str>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Status(pub(super) u16);

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn new_cache(clock: &FakeClock, config: CacheConfig) -> TestCache {
    ResponseCache::new(&config, clock.shared())
}

pub(super) fn policy(ttl: u64, swr: u64, sie: u64) -> TtlPolicy {
    TtlPolicy {
        ttl: secs(ttl),
        stale_while_revalidate: secs(swr),
        stale_if_error: secs(sie),
        negative_ttl: secs(60),
    }
}

pub(super) fn key() -> String {
    "k".to_string()
}

/// A fetch that counts its calls, then returns `result`.
pub(super) fn fetch_returning(
    calls: &Arc<AtomicUsize>,
    result: Result<Fetched<Arc<str>>, Status>,
) -> impl FnOnce() -> BoxFuture<'static, Result<Fetched<Arc<str>>, Status>> + Send + 'static {
    let calls = Arc::clone(calls);
    move || {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            result
        })
    }
}

pub(super) fn value(text: &str) -> Result<Fetched<Arc<str>>, Status> {
    Ok(Fetched::Value(Arc::from(text)))
}

/// A fetch that counts its call, then waits for `gate` before returning `result`.
pub(super) fn gated_fetch(
    calls: &Arc<AtomicUsize>,
    gate: &watch::Receiver<bool>,
    result: Result<Fetched<Arc<str>>, Status>,
) -> impl FnOnce() -> BoxFuture<'static, Result<Fetched<Arc<str>>, Status>> + Send + 'static {
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

pub(super) fn waiters(cache: &TestCache, key: &String) -> usize {
    cache
        .state
        .flights
        .lock()
        .get(key)
        .map_or(0, watch::Sender::receiver_count)
}

/// Yields until `done` holds; the real-time bound is only reached on failure.
pub(super) async fn until(mut done: impl FnMut() -> bool) {
    let wait = async {
        while !done() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(secs(10), wait)
        .await
        .expect("condition never became true");
}

pub(super) async fn prime(cache: &TestCache, ttl: TtlPolicy, text: &str) {
    let calls = Arc::new(AtomicUsize::new(0));
    let outcome = cache
        .get_or_fetch(&key(), ttl, fetch_returning(&calls, value(text)))
        .await
        .unwrap();
    assert_eq!(outcome.source, CacheSource::Miss);
}
