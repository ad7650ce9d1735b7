//! The public client: build once, call capabilities, read health and stats.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::ser::SerializeStruct;
use serde::Serialize;
use serde_json::Value;

use crate::answer::Answer;
use crate::capability::{CapabilityId, Data, Request};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{env_vars_utf8, Config, RateLimitSetting};
use crate::custom::CustomProvider;
use crate::echo::{echo, echo_key};
use crate::engine::{Chain, Engine, ProviderSlot};
use crate::error::{Attempt, Error, Result};
use crate::provider::{Auth, Provider};
use crate::resilience::breaker::{BreakerSnapshot, CircuitState};
use crate::resilience::cache::{ResponseCache, TtlPolicy};
use crate::resilience::hedge::Hedging;
use crate::resilience::quota::QuotaSnapshot;
use crate::resilience::rate_limit::{Rate, RateLimitConfig};
use crate::resilience::retry::Backoff;
use crate::state::redis::ClientRedis;
use crate::state::{InMemoryState, ProviderLimits, StateStore};
use crate::stats::StatsCounters;
use crate::transport::Transport;

/// Time kept for the next provider of a chain when `min_fallback_time` is
/// not set (at most half the time left; see [`crate::config::CapabilitySettings`]).
const DEFAULT_MIN_FALLBACK_TIME: Duration = Duration::from_secs(1);

/// One resilient client over every configured provider. Cheap to clone;
/// clones share providers, breakers, limits and cache.
///
/// ```no_run
/// # async fn demo() -> polyrelay::Result<()> {
/// let client = polyrelay::Client::builder().build()?;
/// let reply = client.call("weather.current", serde_json::json!({"lat": 52.52, "lon": 13.41})).await?;
/// println!("{} answered: {}", reply.provider, reply.data().to_json());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    engine: Arc<Engine>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field(
                "providers",
                &self.engine.slots.iter().map(|s| s.id()).collect::<Vec<_>>(),
            )
            .field("state", &self.engine.state.backend())
            .finish()
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    config: Option<Config>,
    vars: Option<BTreeMap<String, String>>,
    keys: BTreeMap<String, SecretString>,
    clock: Option<SharedClock>,
    state: Option<Arc<dyn StateStore>>,
    seed: Option<u64>,
    testing: bool,
    extra: Vec<Arc<dyn Provider>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config.is_some())
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Uses `config` instead of reading `POLYRELAY_CONFIG`.
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Reads configuration overrides and keys from `vars` instead of the
    /// process environment (tests, embedding).
    pub fn env_vars(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.vars = Some(vars.into_iter().collect());
        self
    }

    /// Sets `provider`'s key directly.
    pub fn api_key(mut self, provider: &str, key: impl Into<String>) -> Self {
        self.keys
            .insert(provider.to_string(), SecretString::from(key.into()));
        self
    }

    /// Injects a clock (tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Uses another state store (Redis) for quotas and rate limits.
    pub fn state(mut self, state: Arc<dyn StateStore>) -> Self {
        self.state = Some(state);
        self
    }

    /// Adds a provider of your own (after the built-in ones in default chains).
    pub fn provider(mut self, provider: Arc<dyn Provider>) -> Self {
        self.extra.push(provider);
        self
    }

    /// Seeds the retry jitter, for reproducible runs.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Testing mode: retries never wait (zero backoff, and a `Retry-After`
    /// short enough to retry after is retried at once) and jitter is seeded,
    /// so test suites against the emulator are fast and repeatable. Retry
    /// decisions, breakers, limits and the cache behave as in production.
    pub fn testing(mut self, on: bool) -> Self {
        self.testing = on;
        self
    }

    /// Resolves configuration, keys and chains; fails with a [`Error::Config`]
    /// naming the field when anything is wrong. Never touches the network.
    pub fn build(self) -> Result<Client> {
        let vars = self.vars.unwrap_or_else(env_vars_utf8);
        let config = match self.config {
            Some(mut config) => {
                config.apply_env(&vars)?;
                config
            }
            None => Config::from_vars(vars.clone())?,
        };
        let clock = self.clock.unwrap_or_else(SystemClock::shared);
        let seed = match (self.seed, self.testing) {
            (Some(seed), _) => seed,
            (None, true) => 0,
            (None, false) => rand::random(),
        };
        let timezone = config.time_zone();
        let user_agent = config.user_agent();

        let mut registry: Vec<Arc<dyn Provider>> = crate::providers::builtin()
            .iter()
            .map(|p| Arc::new(*p) as Arc<dyn Provider>)
            .chain(self.extra)
            .collect();
        for (id, spec) in &config.custom_providers {
            registry.push(Arc::new(CustomProvider::new(id, spec.clone())?));
        }
        check_registry(&config, &registry)?;
        let mut slots: Vec<Arc<ProviderSlot>> = Vec::new();
        let mut limits = Vec::new();
        for (index, provider) in registry.into_iter().enumerate() {
            let info = provider.info();
            let settings = config.provider_settings(info.id)?;
            if !settings.enabled || (config.commercial && !info.commercial_use) {
                continue;
            }
            let key_env = match (&settings.api_key_env, info.auth) {
                (Some(env), _) => env.clone(),
                (None, Auth::Key { env, .. }) => env.to_string(),
                (None, Auth::Keyless) => String::new(),
            };
            let key = self.keys.get(info.id).cloned().or_else(|| {
                vars.get(&key_env)
                    .filter(|v| !key_env.is_empty() && !v.trim().is_empty())
                    .map(|v| SecretString::from(v.trim().to_string()))
            });
            let base_url = match (&settings.base_url, &config.emulator_url) {
                (Some(url), _) => url.clone(),
                (None, Some(emulator)) => format!("{}/{}", emulator.trim_end_matches('/'), info.id),
                (None, None) => info.base_url.to_string(),
            };
            let rate_limit = match &settings.rate_limit {
                Some(RateLimitSetting::Off) => None,
                Some(RateLimitSetting::Limit(limit)) => Some(*limit),
                None => info
                    .default_rate_limit
                    .map(|rate| {
                        rate.parse::<Rate>()
                            .map(|rate| RateLimitConfig { rate, burst: None })
                            .map_err(|e| {
                                Error::config(
                                    format!("providers.{}.rate_limit", info.id),
                                    e.to_string(),
                                )
                            })
                    })
                    .transpose()?,
            };
            let daily_quota = match settings.daily_quota {
                Some(0) => None,
                Some(n) => Some(n),
                None => info.default_daily_quota,
            };
            let backoff = if self.testing {
                Backoff::no_waits()
            } else {
                Backoff::with_seed(&settings.retry, seed.wrapping_add(index as u64))
            };
            limits.push(ProviderLimits {
                provider: info.id,
                rate_limit,
                daily_quota,
                timezone,
            });
            slots.push(Arc::new(ProviderSlot::new(
                provider, base_url, key, key_env, settings, &clock, backoff,
            )?));
        }

        let redis = config
            .redis
            .as_ref()
            .map(|redis| ClientRedis::new(redis, &limits, &clock))
            .transpose()?;
        let state = match (self.state, &redis) {
            (Some(state), _) => state,
            (None, Some(redis)) => Arc::clone(&redis.state),
            (None, None) => Arc::new(InMemoryState::new(&limits, clock.clone())?),
        };
        let default_total = config
            .total_timeout
            .unwrap_or(config.provider_settings("-")?.retry.total_timeout);
        let base_ttl = config.cache.ttl_policy();
        let mut chains = Vec::new();
        for capability in CapabilityId::ALL {
            let settings = config.capabilities.get(capability.as_str());
            let order: Vec<Arc<ProviderSlot>> = match settings.and_then(|s| s.chain.as_ref()) {
                Some(ids) => ids
                    .iter()
                    .filter_map(|id| slots.iter().find(|s| s.id() == id).cloned())
                    .collect(),
                None => {
                    let mut serving: Vec<Arc<ProviderSlot>> = slots
                        .iter()
                        .filter(|s| s.provider.info().capabilities.contains(capability))
                        .cloned()
                        .collect();
                    // Keyless first, so a fresh install with no keys works.
                    serving.sort_by_key(|s| !s.provider.info().is_keyless());
                    serving
                }
            };
            let total_timeout = settings
                .and_then(|s| s.total_timeout)
                .unwrap_or(default_total);
            chains.push(Chain {
                slots: order,
                total_timeout,
                max_wait: settings.and_then(|s| s.max_wait).unwrap_or(Duration::MAX),
                last_resort_probe: settings.and_then(|s| s.last_resort_probe).unwrap_or(true),
                min_fallback_time: settings
                    .and_then(|s| s.min_fallback_time)
                    .unwrap_or(DEFAULT_MIN_FALLBACK_TIME),
                hedging: settings
                    .and_then(|s| s.hedge.as_ref())
                    .map(|hedge| Hedging::new(hedge, clock.clone())),
                content_filtered_fallback: settings.is_some_and(|s| s.content_filtered_fallback),
                probe_answered: tokio::sync::Notify::new(),
                ttl: TtlPolicy {
                    ttl: settings
                        .and_then(|s| s.cache_ttl)
                        .unwrap_or_else(|| capability.default_ttl()),
                    ..base_ttl
                },
            });
        }
        let transport = Transport::new(
            &user_agent,
            config.max_response_bytes.unwrap_or(8 * 1024 * 1024),
        )?;
        let cache = match &redis {
            Some(redis) => redis.response_cache(
                &config.cache,
                clock.clone(),
                slots.iter().map(|s| s.id()).collect(),
            ),
            None => ResponseCache::new(&config.cache, clock.clone()),
        };
        let config_warnings = timeout_warnings(&chains);
        for warning in &config_warnings {
            tracing::warn!("{warning}");
        }
        Ok(Client {
            engine: Arc::new(Engine {
                clock,
                transport,
                user_agent,
                state,
                chains,
                slots,
                cache,
                cache_enabled: config.cache.enabled,
                config_warnings,
            }),
        })
    }
}

/// Attempt timeouts that cannot fit inside their capability's deadline:
/// every attempt would be cut off by the deadline rather than end on its
/// own timeout, and a provider that hangs leaves no time for the next one
/// but the fallback reserve.
fn timeout_warnings(chains: &[Chain]) -> Vec<String> {
    let mut warnings = Vec::new();
    for (capability, chain) in CapabilityId::ALL.iter().zip(chains) {
        for slot in &chain.slots {
            let attempt = slot.settings.retry.attempt_timeout;
            if attempt > chain.total_timeout {
                warnings.push(format!(
                    "providers.{}.retry.attempt_timeout ({:.1} s) is longer than the total deadline of {capability} ({:.1} s): its attempts end at the deadline, less min_fallback_time when another provider is left",
                    slot.id(),
                    attempt.as_secs_f64(),
                    chain.total_timeout.as_secs_f64(),
                ));
            }
        }
    }
    warnings
}

/// Chains and provider tables may only name known providers serving the
/// capability; ids must be unique.
fn check_registry(config: &Config, registry: &[Arc<dyn Provider>]) -> Result<()> {
    let known = || {
        registry
            .iter()
            .map(|p| p.info().id)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let find = |id: &str| registry.iter().find(|p| p.info().id == id);
    for (i, provider) in registry.iter().enumerate() {
        let id = provider.info().id;
        if registry[..i].iter().any(|p| p.info().id == id) {
            return Err(Error::config(
                format!("providers.{id}"),
                "two providers have this id",
            ));
        }
    }
    for id in config.providers.keys() {
        if find(id).is_none() {
            return Err(Error::config(
                format!("providers.{}", echo_key(id)),
                format!("unknown provider; known: {}", known()),
            ));
        }
    }
    for (name, settings) in &config.capabilities {
        let field = format!("capabilities.{}.chain", echo_key(name));
        let capability: CapabilityId = name.parse().map_err(|_| {
            Error::config(
                format!("capabilities.{}", echo_key(name)),
                "no capability has this name",
            )
        })?;
        for id in settings.chain.iter().flatten() {
            let provider = find(id).ok_or_else(|| {
                Error::config(
                    &field,
                    format!("unknown provider {}; known: {}", echo(id), known()),
                )
            })?;
            if !provider.info().capabilities.contains(&capability) {
                return Err(Error::config(
                    &field,
                    format!("provider {} does not serve {name}", echo(id)),
                ));
            }
        }
    }
    Ok(())
}

impl Client {
    /// A builder with defaults: no file, keys from the environment.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: None,
            vars: None,
            keys: BTreeMap::new(),
            clock: None,
            state: None,
            seed: None,
            testing: false,
            extra: Vec::new(),
        }
    }

    /// Calls `capability` with loosely typed `params` (validated first:
    /// a bad parameter fails with [`Error::InvalidRequest`] before any
    /// network call).
    pub async fn call(&self, capability: &str, params: Value) -> Result<Envelope> {
        self.request(Request::parse(capability, params)?).await
    }

    /// [`Client::call`] for code without an async runtime: runs on the
    /// runtime polyrelay manages ([`crate::runtime`]) and blocks this thread.
    pub fn call_blocking(&self, capability: &str, params: Value) -> Result<Envelope> {
        let request = Request::parse(capability, params)?;
        let client = self.clone();
        crate::runtime::block_on(async move { client.request(request).await })?
    }

    /// Calls with an already validated request.
    pub async fn request(&self, request: Request) -> Result<Envelope> {
        let started = self.engine.clock.now();
        let capability = request.capability();
        let result = self.engine.call(request).await?;
        Ok(Envelope {
            capability,
            provider: result.answer.provider,
            cached: result.cached,
            stale: result.stale,
            fetched_at: result.answer.fetched_at,
            attempts: result.attempts,
            elapsed: self.engine.clock.now().saturating_sub(started),
            answer: result.answer,
        })
    }

    /// Provider ids of `capability`'s chain, in fallback order.
    pub fn chain(&self, capability: CapabilityId) -> Vec<&'static str> {
        self.engine
            .chain(capability)
            .slots
            .iter()
            .map(|s| s.id())
            .collect()
    }

    /// A snapshot of every enabled provider's counters and guards.
    pub fn stats(&self) -> Vec<ProviderStats> {
        let now = self.engine.clock.now();
        self.engine
            .slots
            .iter()
            .map(|slot| ProviderStats {
                provider: slot.id(),
                key_set: slot.key.is_some(),
                benched_for: slot.benched(now).map(|(left, _)| left),
                counters: slot.stats.snapshot(),
                breakers: slot
                    .breakers
                    .iter()
                    .map(|(c, b)| (c.as_str(), b.snapshot()))
                    .collect(),
                quota: self.engine.state.quota_snapshot(slot.id()),
            })
            .collect()
    }

    /// Which capabilities can be served right now, and by whom.
    pub fn health(&self) -> Health {
        let now = self.engine.clock.now();
        let capabilities = CapabilityId::ALL
            .iter()
            .zip(&self.engine.chains)
            .map(|(capability, chain)| {
                let mut ready = Vec::new();
                let mut unavailable = BTreeMap::new();
                for slot in &chain.slots {
                    let reason = if slot.missing_key() {
                        Some(format!("{} is not set", slot.key_env))
                    } else if let Some((left, why)) = slot.benched(now) {
                        Some(format!("benched for {:.1} s ({why})", left.as_secs_f64()))
                    } else {
                        slot.breaker(*capability).and_then(|b| {
                            let snap = b.snapshot();
                            matches!(snap.state, CircuitState::Open | CircuitState::ForcedOpen)
                                .then(|| format!("circuit {}", snap.state.as_str()))
                        })
                    };
                    match reason {
                        Some(reason) => {
                            unavailable.insert(slot.id(), reason);
                        }
                        None => ready.push(slot.id()),
                    }
                }
                let status = if ready.is_empty() {
                    "down"
                } else if unavailable.is_empty() {
                    "healthy"
                } else {
                    "degraded"
                };
                (
                    capability.as_str(),
                    CapabilityHealth {
                        status,
                        ready,
                        unavailable,
                    },
                )
            })
            .collect();
        Health {
            state_backend: self.engine.state.backend(),
            redis_degraded: self.engine.state.degraded(),
            capabilities,
            config_warnings: self.engine.config_warnings.clone(),
        }
    }
}

/// The answer to a call, with how it was obtained.
#[derive(Clone)]
pub struct Envelope {
    /// The capability called.
    pub capability: CapabilityId,
    /// The provider whose answer this is.
    pub provider: &'static str,
    /// Served from the cache rather than fetched by this call.
    pub cached: bool,
    /// Past its freshness (stale-while-revalidate or stale-if-error).
    pub stale: bool,
    /// When the provider produced it.
    pub fetched_at: DateTime<Utc>,
    /// What each provider did during this call (empty for a fresh cache hit).
    pub attempts: Vec<Attempt>,
    /// Time this call took.
    pub elapsed: Duration,
    answer: Arc<Answer>,
}

impl Envelope {
    /// The normalised answer.
    pub fn data(&self) -> &Data {
        &self.answer.data
    }

    /// The whole envelope as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("capability", &self.capability)
            .field("provider", &self.provider)
            .field("cached", &self.cached)
            .field("stale", &self.stale)
            .field("attempts", &self.attempts)
            .field("elapsed", &self.elapsed)
            .field("data", self.data())
            .finish()
    }
}

impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Envelope", 8)?;
        st.serialize_field("capability", &self.capability)?;
        st.serialize_field("provider", self.provider)?;
        st.serialize_field("data", self.data())?;
        st.serialize_field("cached", &self.cached)?;
        st.serialize_field("stale", &self.stale)?;
        st.serialize_field("fetched_at", &self.fetched_at)?;
        st.serialize_field("attempts", &self.attempts)?;
        st.serialize_field("elapsed", &self.elapsed.as_secs_f64())?;
        st.end()
    }
}

/// One provider's stats.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderStats {
    /// Provider id.
    pub provider: &'static str,
    /// Whether a key is configured (never the key).
    pub key_set: bool,
    /// Remaining bench time, if benched.
    #[serde(with = "crate::duration::serde_secs::option")]
    pub benched_for: Option<Duration>,
    /// Requests, outcomes and latency.
    #[serde(flatten)]
    pub counters: StatsCounters,
    /// Breaker per capability.
    pub breakers: BTreeMap<&'static str, BreakerSnapshot>,
    /// Daily quota, if any.
    pub quota: Option<QuotaSnapshot>,
}

/// Health of every capability.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Where quotas and limits live (`memory` or `redis`).
    pub state_backend: &'static str,
    /// Redis is unreachable (or its breaker is open): quotas, limits and the
    /// cache run on this process's local state until it answers again.
    pub redis_degraded: bool,
    /// By capability name.
    pub capabilities: BTreeMap<&'static str, CapabilityHealth>,
    /// Settings that work but defeat their purpose, e.g. an attempt timeout
    /// longer than the capability's total deadline (logged once at start).
    pub config_warnings: Vec<String>,
}

/// Health of one capability.
#[derive(Debug, Clone, Serialize)]
pub struct CapabilityHealth {
    /// `healthy` (every provider ready), `degraded` or `down`.
    pub status: &'static str,
    /// Providers that would be tried now.
    pub ready: Vec<&'static str>,
    /// Providers that would be skipped, and why.
    pub unavailable: BTreeMap<&'static str, String>,
}
