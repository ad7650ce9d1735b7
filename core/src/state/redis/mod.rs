//! Shared state on Redis: daily quotas, rate limits, a second cache tier and
//! auth token state ([`RedisTokenStore`], which alone fails closed) shared
//! by every process that points at the same Redis (standalone or
//! Cluster), without making Redis a single point of failure.
//!
//! ```toml
//! [redis]
//! url = "redis://127.0.0.1:6379/0"     # or rediss://…, or a list of cluster seeds
//! key_prefix = "myapp:"                # keys are <prefix>q:{provider}:…, <prefix>rl:{provider}, <prefix>c:…
//! state_timeout = "100ms"              # deadline of each quota/limiter operation
//! cache_timeout = "50ms"               # deadline of each cache read
//! quota_fallback = "local_share"       # while Redis is down: local_share | local_full | deny
//! local_share_fraction = 0.5
//! ```
//!
//! `POLYRELAY_REDIS_URL` sets `url` (a comma-separated list means cluster
//! seeds).
//!
//! # How state is kept
//!
//! * **One round trip per request.** The daily quota and the GCRA limiter of
//!   a provider are checked together by one Lua script (`EVALSHA`, loaded
//!   again by redis-rs after a `SCRIPT FLUSH`). It reads the time from Redis
//!   `TIME`, so client clocks never matter, uses integer arithmetic
//!   (microseconds for the limiter, milliseconds for the day), checks before
//!   it increments, and gives every key it writes a TTL in the same script;
//!   a key found without one is healed. Both keys carry the provider as a
//!   hash tag (`{provider}`) so the script works on Redis Cluster.
//! * **Limiter.** GCRA with the reply `[allowed, remaining, retry_after_ms,
//!   reset_after_ms]` of redis-cell, except that the limit is the burst
//!   (redis-cell reports `burst + 1`). The theoretical arrival time is stored
//!   with `PX ceil(tat − now)`, so an idle key disappears exactly when it
//!   would have no effect.
//! * **Daily quota.** The key is `q:{provider}:requests:<local date>`, the
//!   date being the server's `TIME` in the configured zone. The client learns
//!   the server's clock offset from every reply and names the day from it;
//!   the script refuses a day window that does not contain its own `TIME`
//!   (near midnight, or on the very first call of a skewed client), and the
//!   client retries once with the day of the server's time. A counter lives
//!   until the end of its day plus `quota_grace` (`PEXPIREAT`).
//! * **Cache.** [`RedisCacheTier`] is the L2 behind the in-process moka L1 of
//!   [`ResponseCache`]: entries are
//!   envelopes with a schema version (an undecodable entry is a miss), keys
//!   are hashed [`stable_key`](crate::resilience::cache::stable_key)s, reads
//!   are coalesced per key and writes are asynchronous. There is no
//!   invalidation broadcast: the client exposes no invalidation, and L2
//!   entries expire with their stale-if-error window.
//!
//! # When Redis is down or slow
//!
//! Every operation has its own deadline and goes through one circuit breaker
//! (`breaker_failures` consecutive failures open it for `breaker_open`), so a
//! dead Redis costs one deadline per call for a few calls and then nothing.
//! Meanwhile calls go on with local state: a process-local GCRA limiter and
//! day counter, with the limits scaled by `local_share_fraction`
//! (`local_share`), kept whole (`local_full`), or the quota refusing
//! (`deny`). [`Client::health`](crate::Client::health) reports
//! `redis_degraded`. When Redis answers again the shared state is used at
//! once, and the quota units spent locally today are added to the shared
//! counter with one `INCRBY`. No Redis error ever reaches a caller.
//!
//! Near midnight a request may count in either day (the race between naming
//! the day and running the script); an operation that times out after Redis
//! ran it is counted both there and locally. Both err on the side of
//! spending quota, never of exceeding it.

mod answer_codec;
#[cfg(feature = "redis")]
mod backend;
#[cfg(feature = "redis")]
mod cache_tier;
#[cfg(feature = "redis")]
pub(crate) mod scripts;
#[cfg(feature = "redis")]
mod store;
#[cfg(all(test, feature = "redis"))]
#[path = "../../../tests/common/redis_server.rs"]
pub(crate) mod test_server;
#[cfg(feature = "redis")]
mod token_store;

#[cfg(feature = "redis")]
pub use backend::{RedisBackend, RedisStats};
#[cfg(feature = "redis")]
pub use cache_tier::RedisCacheTier;
#[cfg(feature = "redis")]
pub use store::RedisState;
#[cfg(feature = "redis")]
pub use token_store::RedisTokenStore;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::answer::Answer;
use crate::capability::Request;
use crate::clock::SharedClock;
use crate::duration::serde_secs;
use crate::resilience::cache::{CacheConfig, ResponseCache, SharedCacheTier};
use crate::state::{ProviderLimits, StateStore};

/// What the daily quota does while Redis is unreachable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaFallback {
    /// A local counter with `ceil(limit × local_share_fraction)` per day:
    /// several processes together stay near the limit.
    #[default]
    LocalShare,
    /// A local counter with the whole limit: never under-serves, may
    /// over-spend by the number of processes.
    LocalFull,
    /// Refuse quota-guarded requests until Redis is back.
    Deny,
}

/// The `[redis]` table: where the shared state lives and how to behave when
/// it is unreachable.
///
/// ```
/// use polyrelay::internal::state::redis::{QuotaFallback, RedisConfig};
/// use std::time::Duration;
///
/// let config: RedisConfig = toml::from_str(r#"
///     url = ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]
///     state_timeout = "80ms"
///     quota_fallback = "deny"
/// "#).unwrap();
/// assert!(config.is_cluster());
/// assert_eq!(config.state_timeout, Duration::from_millis(80));
/// assert_eq!(config.quota_fallback, QuotaFallback::Deny);
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`, `rediss://…` for TLS, or
    /// several cluster seed URLs (a list, or one comma-separated string).
    #[serde(deserialize_with = "deserialize_urls")]
    pub url: Vec<String>,
    /// Use the Redis Cluster client even with a single seed URL.
    pub cluster: bool,
    /// Prefix of every key polyrelay writes (no `{` or `}`: those are hash tags).
    pub key_prefix: String,
    /// Deadline of each quota or limiter operation (default 100 ms).
    #[serde(with = "serde_secs")]
    pub state_timeout: Duration,
    /// Deadline of each cache read (default 50 ms).
    #[serde(with = "serde_secs")]
    pub cache_timeout: Duration,
    /// The daily quota while Redis is unreachable (default `local_share`).
    pub quota_fallback: QuotaFallback,
    /// Share of each limit one process may use on its own while Redis is
    /// unreachable, in (0, 1] (default 0.5). Also scales the local rate
    /// limiter, except under `local_full`.
    pub local_share_fraction: f64,
    /// How long a day's quota counter outlives its day (default 1 h).
    #[serde(with = "serde_secs")]
    pub quota_grace: Duration,
    /// Consecutive failed operations that open the Redis breaker (default 5).
    pub breaker_failures: u32,
    /// How long the open breaker keeps every operation local (default 5 s).
    #[serde(with = "serde_secs")]
    pub breaker_open: Duration,
    /// Share cached answers through Redis (default true).
    pub cache: bool,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: Vec::new(),
            cluster: false,
            key_prefix: "polyrelay:".to_string(),
            state_timeout: Duration::from_millis(100),
            cache_timeout: Duration::from_millis(50),
            quota_fallback: QuotaFallback::LocalShare,
            local_share_fraction: 0.5,
            quota_grace: Duration::from_secs(3600),
            breaker_failures: 5,
            breaker_open: Duration::from_secs(5),
            cache: true,
        }
    }
}

/// A [`RedisConfig`] field with an unusable value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redis.{field}: {reason}")]
pub struct InvalidRedisConfig {
    /// The field, named as in the configuration file.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Longest deadline accepted for one Redis operation: longer ones would
/// defeat the point of degrading to local state.
const MAX_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

impl RedisConfig {
    /// A configuration for `url` (comma-separated seeds mean a cluster), with
    /// defaults for everything else.
    pub fn new(url: &str) -> Self {
        Self {
            url: split_urls(url),
            ..Self::default()
        }
    }

    /// Whether to use the cluster client.
    pub fn is_cluster(&self) -> bool {
        self.cluster || self.url.len() > 1
    }

    /// Checks every field, naming the first bad one.
    ///
    /// # Errors
    ///
    /// [`InvalidRedisConfig`] for a missing or non-Redis URL, a prefix with
    /// braces, a zero or over-10 s deadline, a fraction outside (0, 1], or a
    /// zero breaker setting.
    pub fn validate(&self) -> Result<(), InvalidRedisConfig> {
        let invalid = |field, reason: String| Err(InvalidRedisConfig { field, reason });
        if self.url.is_empty() {
            return invalid("url", "required (redis://host:port)".into());
        }
        for url in &self.url {
            match url::Url::parse(url) {
                Ok(parsed)
                    if matches!(parsed.scheme(), "redis" | "rediss") && parsed.host().is_some() => {
                }
                // Never echo the URL: it may hold a password.
                _ => {
                    return invalid(
                        "url",
                        "must be redis://host:port or rediss://host:port".into(),
                    )
                }
            }
        }
        if self.key_prefix.contains(['{', '}']) {
            return invalid("key_prefix", "must not contain `{` or `}`".into());
        }
        for (field, value) in [
            ("state_timeout", self.state_timeout),
            ("cache_timeout", self.cache_timeout),
        ] {
            if value.is_zero() || value > MAX_OPERATION_TIMEOUT {
                return invalid(field, format!("must be in (0, 10s], got {value:?}"));
            }
        }
        let fraction = self.local_share_fraction;
        if !(fraction > 0.0 && fraction <= 1.0) {
            return invalid(
                "local_share_fraction",
                format!("must be in (0, 1], got {fraction}"),
            );
        }
        if self.breaker_failures == 0 {
            return invalid("breaker_failures", "must be at least 1".into());
        }
        if self.breaker_open < Duration::from_millis(1) {
            return invalid("breaker_open", "must be at least 1ms".into());
        }
        Ok(())
    }
}

/// What a client shares through Redis when its configuration has a
/// `[redis]` table: quotas and limits, and (with `cache = true`) the second
/// tier of its response cache, on one connection.
pub(crate) struct ClientRedis {
    pub(crate) state: Arc<dyn StateStore>,
    cache_tier: Option<Arc<dyn SharedCacheTier>>,
    #[cfg(feature = "redis")]
    backend: RedisBackend,
}

/// The response cache of a client.
pub(crate) type AnswerCache = ResponseCache<Request, Result<Arc<Answer>, Arc<crate::Error>>>;

impl ClientRedis {
    /// Connects lazily (never fails because Redis is down).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Config`] for an unusable configuration, or when this
    /// build has no Redis support.
    #[cfg(feature = "redis")]
    pub(crate) fn new(
        config: &RedisConfig,
        limits: &[ProviderLimits],
        clock: &SharedClock,
    ) -> crate::Result<Self> {
        let backend = RedisBackend::new(config, clock.clone())?;
        let cache_tier = config
            .cache
            .then(|| Arc::new(RedisCacheTier::new(backend.clone())) as Arc<dyn SharedCacheTier>);
        Ok(Self {
            state: Arc::new(RedisState::new(backend.clone(), limits)?),
            cache_tier,
            backend,
        })
    }

    /// The connection, for the other stores that live in this Redis
    /// (analytics).
    #[cfg(feature = "redis")]
    pub(crate) fn backend(&self) -> &RedisBackend {
        &self.backend
    }

    /// This build has no Redis support: a `[redis]` table is an error.
    #[cfg(not(feature = "redis"))]
    pub(crate) fn new(
        _config: &RedisConfig,
        _limits: &[ProviderLimits],
        _clock: &SharedClock,
    ) -> crate::Result<Self> {
        Err(crate::Error::config(
            "redis",
            "this build of polyrelay has no Redis support (cargo feature `redis`)",
        ))
    }

    /// A response cache whose second tier is Redis (when enabled), for a
    /// client serving `providers`.
    pub(crate) fn response_cache(
        &self,
        config: &CacheConfig,
        clock: SharedClock,
        providers: Vec<&'static str>,
    ) -> AnswerCache {
        match &self.cache_tier {
            Some(tier) => {
                let codec = Arc::new(answer_codec::AnswerCodec::new(providers));
                ResponseCache::with_shared_tier(config, clock, Arc::clone(tier), codec)
            }
            None => ResponseCache::new(config, clock),
        }
    }
}

fn split_urls(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_string)
        .collect()
}

fn deserialize_urls<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Urls {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Urls::deserialize(deserializer)? {
        Urls::One(text) => split_urls(&text),
        Urls::Many(list) => list.iter().flat_map(|url| split_urls(url)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_url_a_list_or_comma_separated_seeds() {
        let one: RedisConfig = toml::from_str(r#"url = "redis://127.0.0.1:6379/2""#).unwrap();
        assert_eq!(one.url, ["redis://127.0.0.1:6379/2"]);
        assert!(!one.is_cluster());
        assert_eq!(one.state_timeout, Duration::from_millis(100));
        assert_eq!(one.cache_timeout, Duration::from_millis(50));
        assert_eq!(one.quota_fallback, QuotaFallback::LocalShare);
        assert_eq!(one.local_share_fraction, 0.5);
        one.validate().unwrap();

        let seeds = RedisConfig::new("redis://a:7000, redis://b:7001");
        assert_eq!(seeds.url, ["redis://a:7000", "redis://b:7001"]);
        assert!(seeds.is_cluster());
        let forced: RedisConfig =
            toml::from_str("url = \"rediss://a:7000\"\ncluster = true").unwrap();
        assert!(forced.is_cluster());
        forced.validate().unwrap();
    }

    #[test]
    fn validation_names_the_field_and_never_echoes_the_url() {
        let field = |toml: &str| {
            toml::from_str::<RedisConfig>(toml)
                .unwrap()
                .validate()
                .unwrap_err()
        };
        assert_eq!(field("").field, "url");
        let error = field(r#"url = "http://user:hunter2@host:1""#);
        assert_eq!(error.field, "url");
        assert!(!error.to_string().contains("hunter2"));
        let base = "url = \"redis://h:1\"\n";
        assert_eq!(
            field(&format!("{base}key_prefix = \"a{{b}}\"")).field,
            "key_prefix"
        );
        assert_eq!(
            field(&format!("{base}state_timeout = 0")).field,
            "state_timeout"
        );
        assert_eq!(
            field(&format!("{base}cache_timeout = \"11s\"")).field,
            "cache_timeout"
        );
        assert_eq!(
            field(&format!("{base}local_share_fraction = 0")).field,
            "local_share_fraction"
        );
        assert_eq!(
            field(&format!("{base}local_share_fraction = 1.5")).field,
            "local_share_fraction"
        );
        assert_eq!(
            field(&format!("{base}breaker_failures = 0")).field,
            "breaker_failures"
        );
        assert!(
            toml::from_str::<RedisConfig>("url = \"redis://h:1\"\nquota_fallback = \"maybe\"")
                .is_err()
        );
        assert!(toml::from_str::<RedisConfig>("urls = \"redis://h:1\"").is_err());
    }

    #[test]
    fn polyrelay_redis_url_sets_the_table_and_errors_name_the_field() {
        let vars = |url: &str| [("POLYRELAY_REDIS_URL".to_string(), url.to_string())];
        let config = crate::config::Config::from_vars(vars("redis://127.0.0.1:6390/1")).unwrap();
        let redis = config.redis.unwrap();
        assert_eq!(redis.url, ["redis://127.0.0.1:6390/1"]);
        assert_eq!(redis.key_prefix, "polyrelay:");
        let seeds = crate::config::Config::from_vars(vars("redis://a:1,redis://b:2")).unwrap();
        assert!(seeds.redis.unwrap().is_cluster());
        assert!(crate::config::Config::from_vars(vars(""))
            .unwrap()
            .redis
            .is_none());
        match crate::config::Config::from_vars(vars("http://a:1")) {
            Err(crate::Error::Config { field, .. }) => assert_eq!(field, "redis.url"),
            other => panic!("{other:?}"),
        }
        let table = crate::config::Config::from_toml_str(
            "[redis]\nurl = \"redis://h:1\"\nquota_fallback = \"local_full\"",
        )
        .unwrap();
        assert_eq!(
            table.redis.unwrap().quota_fallback,
            QuotaFallback::LocalFull
        );
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn without_the_feature_a_redis_table_is_a_config_error() {
        let config =
            crate::config::Config::from_toml_str("[redis]\nurl = \"redis://h:1\"").unwrap();
        match crate::Client::builder().config(config).env_vars([]).build() {
            Err(crate::Error::Config { field, .. }) => assert_eq!(field, "redis"),
            other => panic!("{other:?}"),
        }
    }
}
