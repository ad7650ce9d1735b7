//! Redis as the shared (L2) tier of the response cache.

use std::time::Duration;

use futures::future::BoxFuture;

use super::backend::RedisBackend;
use crate::resilience::cache::SharedCacheTier;

/// The response cache's second tier on Redis: `GET` under the cache deadline
/// and `SET … PX` in the background, both behind the backend's breaker, so a
/// slow or dead Redis only turns into misses.
///
/// Keys are `<prefix>c:` followed by the cache's hashed
/// [`stable_key`](crate::resilience::cache::stable_key); values are the
/// cache's envelopes.
#[derive(Debug, Clone)]
pub struct RedisCacheTier {
    backend: RedisBackend,
}

impl RedisCacheTier {
    /// A tier on `backend`'s connection.
    pub fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }
}

impl SharedCacheTier for RedisCacheTier {
    fn get(&self, key: &str) -> BoxFuture<'_, Option<Vec<u8>>> {
        let key = self.backend.key(&format!("c:{key}"));
        Box::pin(async move {
            let deadline = self.backend.config().cache_timeout;
            self.backend
                .run(deadline, |mut connection| {
                    let command = redis::cmd("GET").arg(&key).clone();
                    async move { command.query_async(&mut connection).await }
                })
                .await
                .ok()
                .flatten()
        })
    }

    fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'_, ()> {
        let key = self.backend.key(&format!("c:{key}"));
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        Box::pin(async move {
            let deadline = self.backend.config().state_timeout;
            let stored: Result<(), _> = self
                .backend
                .run(deadline, |mut connection| {
                    let command = redis::cmd("SET")
                        .arg(&key)
                        .arg(&value)
                        .arg("PX")
                        .arg(ttl_ms)
                        .clone();
                    async move { command.query_async(&mut connection).await }
                })
                .await;
            if stored.is_err() {
                tracing::debug!("shared cache write skipped: redis unavailable");
            }
        })
    }
}
