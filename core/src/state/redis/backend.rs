//! One Redis connection (standalone or cluster) behind a deadline per
//! operation and a circuit breaker, shared by the state store and the cache
//! tier.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use serde::Serialize;

use super::RedisConfig;
use crate::clock::SharedClock;
use crate::resilience::breaker::{BreakerConfig, CircuitBreaker, CircuitState, Outcome};

/// How long one connection attempt may take. Operations give up at their
/// own deadline long before; this only bounds background reconnects.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A connection to Redis shared by every polyrelay component of a client:
/// lazily connected (a dead Redis at start-up fails nothing), reconnecting
/// by itself, with a deadline on every operation and a breaker in front.
///
/// Cheap to clone.
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    connection: Connection,
    breaker: CircuitBreaker,
    clock: SharedClock,
    config: RedisConfig,
    /// The last operation failed (or was refused by the open breaker).
    failing: AtomicBool,
    /// Server time minus our wall time, in ms, learned from script replies.
    server_offset_ms: AtomicI64,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    operations: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
    short_circuited: AtomicU64,
}

/// What the Redis backend has done so far, for stats and health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedisStats {
    /// Operations that reached Redis and answered.
    pub operations: u64,
    /// Operations that failed with an error.
    pub failures: u64,
    /// Operations cut off by their deadline.
    pub timeouts: u64,
    /// Operations not attempted because the breaker was open.
    pub short_circuited: u64,
    /// State of the Redis breaker.
    pub breaker: CircuitState,
    /// Whether calls are currently served from local state.
    pub degraded: bool,
}

/// Why an operation produced no answer; the caller falls back to local state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// The breaker is open: nothing was sent.
    BreakerOpen,
    /// Redis answered with an error, or the connection failed.
    Failed,
    /// No answer within the deadline.
    TimedOut,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("cluster", &self.inner.config.is_cluster())
            .field("key_prefix", &self.inner.config.key_prefix)
            .field("stats", &self.stats())
            .finish()
    }
}

impl RedisBackend {
    /// A backend for `config`, reading time from `clock`. Never fails
    /// because Redis is unreachable: the connection is made in the
    /// background, and until it works operations fall back.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Config`] when `config` is invalid or the URL cannot be
    /// used by the Redis client.
    pub fn new(config: &RedisConfig, clock: SharedClock) -> crate::Result<Self> {
        config
            .validate()
            .map_err(|e| crate::Error::config(format!("redis.{}", e.field), e.reason))?;
        // rediss:// needs a TLS crypto provider; polyrelay uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let unusable = |e: redis::RedisError| {
            crate::Error::config(
                "redis.url",
                format!("cannot be used by the Redis client ({:?})", e.kind()),
            )
        };
        let response_timeout = config.state_timeout.max(config.cache_timeout);
        // The lazy constructors spawn their reconnect tasks on the current
        // tokio runtime; outside one, on polyrelay's own.
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle,
            Err(_) => crate::runtime::shared()?.handle().clone(),
        };
        let _entered = runtime.enter();
        let connection = if config.is_cluster() {
            let client = ClusterClientBuilder::new(config.url.clone())
                .retries(1)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(response_timeout)
                .build()
                .map_err(unusable)?;
            let cluster = ClusterConfig::new()
                .set_connection_timeout(CONNECT_TIMEOUT)
                .set_response_timeout(response_timeout);
            Connection::Cluster(client.get_pending_async_connection_with_config(cluster))
        } else {
            let url = config.url.first().map(String::as_str).unwrap_or_default();
            let client = redis::Client::open(url).map_err(unusable)?;
            // Few, quick reconnect attempts: the breaker paces retries.
            let manager = ConnectionManagerConfig::new()
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(20))
                .set_max_delay(Duration::from_millis(200))
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(response_timeout));
            Connection::Single(
                ConnectionManager::new_lazy_with_config(client, manager).map_err(unusable)?,
            )
        };
        // Start connecting now, so that the first call rarely waits for it.
        let mut warm_up = connection.clone();
        runtime.spawn(async move {
            let _: RedisResult<()> = redis::cmd("PING").query_async(&mut warm_up).await;
        });
        let breaker = CircuitBreaker::new(breaker_config(config), clock.clone())
            .map_err(|e| crate::Error::config("redis.breaker_failures", e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                connection,
                breaker,
                clock,
                config: config.clone(),
                failing: AtomicBool::new(false),
                server_offset_ms: AtomicI64::new(0),
                counters: Counters::default(),
            }),
        })
    }

    pub(crate) fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    pub(crate) fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// `prefix` + `rest`: every key polyrelay writes.
    pub(crate) fn key(&self, rest: &str) -> String {
        let prefix = &self.inner.config.key_prefix;
        let mut key = String::with_capacity(prefix.len() + rest.len());
        key.push_str(prefix);
        key.push_str(rest);
        key
    }

    /// The server's clock as we currently estimate it, in Unix ms.
    pub(crate) fn server_now_ms(&self) -> i64 {
        self.inner.clock.wall().timestamp_millis()
            + self.inner.server_offset_ms.load(Ordering::Relaxed)
    }

    /// Learns the server's clock from a reply stamped `server_ms` that
    /// arrived just now.
    pub(crate) fn observe_server_time(&self, server_ms: i64) {
        let offset = server_ms - self.inner.clock.wall().timestamp_millis();
        self.inner.server_offset_ms.store(offset, Ordering::Relaxed);
    }

    /// Whether operations currently fall back to local state.
    pub fn degraded(&self) -> bool {
        self.inner.failing.load(Ordering::Relaxed)
            || !matches!(self.inner.breaker.state(), CircuitState::Closed)
    }

    /// Counters and breaker state.
    pub fn stats(&self) -> RedisStats {
        let counters = &self.inner.counters;
        RedisStats {
            operations: counters.operations.load(Ordering::Relaxed),
            failures: counters.failures.load(Ordering::Relaxed),
            timeouts: counters.timeouts.load(Ordering::Relaxed),
            short_circuited: counters.short_circuited.load(Ordering::Relaxed),
            breaker: self.inner.breaker.state(),
            degraded: self.degraded(),
        }
    }

    /// Runs `operation` on the connection within `deadline`, behind the
    /// breaker. A refused connection (nothing was sent) is retried once
    /// within the same deadline, which lets the first call after a restart
    /// succeed on the reconnect it triggers.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        deadline: Duration,
        operation: F,
    ) -> Result<T, Unavailable>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let inner = &*self.inner;
        let Ok(permit) = inner.breaker.try_acquire() else {
            inner
                .counters
                .short_circuited
                .fetch_add(1, Ordering::Relaxed);
            inner.failing.store(true, Ordering::Relaxed);
            return Err(Unavailable::BreakerOpen);
        };
        let started = inner.clock.now();
        let attempts = async {
            match operation(inner.connection.clone()).await {
                Err(error) if error.is_connection_refusal() => {
                    operation(inner.connection.clone()).await
                }
                result => result,
            }
        };
        let result = tokio::select! {
            biased;
            result = attempts => result.map_err(|error| {
                tracing::debug!(error = %error, "redis operation failed");
                Unavailable::Failed
            }),
            () = inner.clock.sleep_until(started.saturating_add(deadline)) => {
                tracing::debug!(deadline_ms = deadline.as_millis() as u64, "redis operation timed out");
                Err(Unavailable::TimedOut)
            }
        };
        let elapsed = inner.clock.now().saturating_sub(started);
        let counter = match result {
            Ok(_) => &inner.counters.operations,
            Err(Unavailable::TimedOut) => &inner.counters.timeouts,
            Err(_) => &inner.counters.failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        permit.record(outcome, elapsed);
        let was_failing = inner.failing.swap(result.is_err(), Ordering::Relaxed);
        if was_failing != result.is_err() {
            if result.is_ok() {
                tracing::info!("redis is reachable again; shared state resumes");
            } else {
                tracing::warn!("redis is unreachable; using local state");
            }
        }
        result
    }
}

/// `breaker_failures` consecutive failures open the breaker for
/// `breaker_open`; one probe then decides.
fn breaker_config(config: &RedisConfig) -> BreakerConfig {
    BreakerConfig {
        sliding_window_size: config.breaker_failures,
        minimum_number_of_calls: config.breaker_failures,
        failure_rate_threshold: 100.0,
        permitted_number_of_calls_in_half_open_state: 1,
        wait_duration_in_open_state: config.breaker_open,
        ..BreakerConfig::default()
    }
}

/// A standalone or cluster connection; both are cheap, shareable handles.
#[derive(Clone)]
pub(crate) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}
