//! Single flight: concurrent misses on one key run one fetch and share its
//! result; a waiter takes over when the caller running the fetch is dropped.

use std::any::Any;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use tokio::sync::watch;

use super::{CacheOutcome, CacheState, Counters, Fetched, ResponseCache, Step, TtlPolicy};

/// A flight's result. The error is type-erased because the error type is chosen
/// per call; waiters whose error type differs from the leader's fetch for
/// themselves.
pub(super) type FlightResult<V> = Result<CacheOutcome<V>, Arc<dyn Any + Send + Sync>>;

impl<K, V> ResponseCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A lookup that found no fresh entry: serves a stale one, joins the
    /// key's flight, or leads it.
    pub(super) async fn slow_path<F, Fut, E>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::cache::test_fixtures::*;

    // Coalescing, value case.
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

    // Coalescing, error case; errors are not cached.
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
}
