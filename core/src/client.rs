//! The public client: build once, call capabilities, read health and stats.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::Value;

use crate::analytics::{
    AnalyticsQuery, AnalyticsRow, AnalyticsStatus, AnalyticsStore, ConversationStore, MemoryStore,
    Recorder, SqliteStore,
};
use crate::answer::Envelope;
use crate::capability::{CapabilityId, Request};
use crate::catalog::Catalog;
use crate::clock::{SharedClock, SystemClock};
use crate::config::plan::ChainPlan;
use crate::config::{env_vars_utf8, ConfigSource, Plan};
use crate::engine::{Chain, Deployment, Engine, Group, ProviderSlot};
use crate::error::Result;
use crate::provider::Provider;
use crate::resilience::breaker::BreakerSnapshot;
use crate::resilience::budget::BudgetSnapshot;
use crate::resilience::cache::ResponseCache;
use crate::resilience::hedge::Hedging;
use crate::resilience::quota::QuotaSnapshot;
use crate::resilience::retry::Backoff;
use crate::state::redis::ClientRedis;
use crate::state::{InMemoryState, StateStore};
use crate::stats::StatsCounters;
use crate::stream::ChatStream;
use crate::transport::Transport;

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
    catalog: Arc<Catalog>,
    /// The per-call Prometheus series, fed by the analytics drain.
    call_metrics: Arc<crate::metrics::CallMetrics>,
    /// The assistant's conversations by id, in the analytics store.
    conversations: Arc<ConversationStore>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field(
                "providers",
                &self
                    .engine
                    .slots
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>(),
            )
            .field("state", &self.engine.state.backend())
            .finish()
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    config: ConfigSource,
    vars: Option<BTreeMap<String, String>>,
    keys: BTreeMap<String, SecretString>,
    clock: Option<SharedClock>,
    state: Option<Arc<dyn StateStore>>,
    seed: Option<u64>,
    testing: bool,
    extra: Vec<Arc<dyn Provider>>,
    analytics: Option<Arc<dyn AnalyticsStore>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Where the configuration comes from (default: the file named by
    /// `POLYRELAY_CONFIG`, if set): a [`ConfigSource`] or a parsed
    /// [`Config`](crate::config::Config). `POLYRELAY_*` variables apply over it either way.
    pub fn config(mut self, source: impl Into<ConfigSource>) -> Self {
        self.config = source.into();
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

    /// Records calls into `store` instead of the configured one.
    pub fn analytics_store(mut self, store: Arc<dyn AnalyticsStore>) -> Self {
        self.analytics = Some(store);
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

    /// Resolves configuration, keys and chains; fails with a [`Error::Config`](crate::Error::Config)
    /// naming the field when anything is wrong. Never touches the network.
    pub fn build(self) -> Result<Client> {
        let vars = self.vars.unwrap_or_else(env_vars_utf8);
        let config = self.config.load(&vars)?;
        let plan = crate::config::resolve(&config, &vars, &self.keys, &self.extra)?;
        let clock = self.clock.unwrap_or_else(SystemClock::shared);
        let seed = match (self.seed, self.testing) {
            (Some(seed), _) => seed,
            (None, true) => 0,
            (None, false) => rand::random(),
        };
        Client::wire(plan, clock, self.state, self.analytics, self.testing, seed)
    }
}

impl Client {
    /// Turns a plan into running parts: provider slots with their guards,
    /// the state store, chains, transport and cache.
    fn wire(
        plan: Plan,
        clock: SharedClock,
        state: Option<Arc<dyn StateStore>>,
        analytics: Option<Arc<dyn AnalyticsStore>>,
        testing: bool,
        seed: u64,
    ) -> Result<Client> {
        let catalog = Arc::new(Catalog::of(&plan));
        let mut limits = Vec::new();
        // Indexed like `plan.providers`; `None` for a disabled provider.
        let mut slots: Vec<Option<Arc<ProviderSlot>>> = Vec::new();
        let models = &plan.models;
        for (index, provider) in plan.providers.into_iter().enumerate() {
            if !provider.enabled {
                slots.push(None);
                continue;
            }
            let backoff = if testing {
                Backoff::no_waits()
            } else {
                Backoff::with_seed(&provider.settings.retry, seed.wrapping_add(index as u64))
            };
            limits.push(provider.limits);
            let id = provider.provider.info().id;
            let deployment = provider.deployment.map(|d| {
                let window = models.lookup(id, &d.model).and_then(|m| m.context_window);
                Deployment::new(d.name, d.model, d.tpm, d.price, window, &clock)
            });
            slots.push(Some(Arc::new(ProviderSlot::new(
                provider.provider,
                provider.base_url,
                provider.key,
                provider.key_env,
                provider.settings,
                &clock,
                backoff,
                deployment,
            )?)));
        }
        let redis = plan
            .redis
            .as_ref()
            .map(|redis| ClientRedis::new(redis, &limits, &clock))
            .transpose()?;
        let sqlite = plan
            .analytics
            .sqlite
            .as_deref()
            .map(SqliteStore::open)
            .transpose()?
            .map(Arc::new);
        // With the state in this process and an SQLite file, the quota
        // counters are kept in the file across restarts.
        let mut save_quotas: Option<crate::analytics::AfterDrain> = None;
        let state = match (state, &redis) {
            (Some(state), _) => state,
            (None, Some(redis)) => Arc::clone(&redis.state),
            (None, None) => {
                let local = InMemoryState::new(&limits, clock.clone())?;
                let local = Arc::new(match &sqlite {
                    Some(file) => local.keep_quotas_in(file.clone()),
                    None => local,
                });
                if sqlite.is_some() {
                    let weak = Arc::downgrade(&local);
                    save_quotas = Some(Box::new(move || {
                        if let Some(local) = weak.upgrade() {
                            local.save_quotas();
                        }
                    }));
                }
                local
            }
        };
        let chain_of = |chain: ChainPlan| Chain {
            slots: chain
                .providers
                .iter()
                .filter_map(|i| slots[*i].clone())
                .collect(),
            total_timeout: chain.total_timeout,
            max_wait: chain.max_wait,
            last_resort_probe: chain.last_resort_probe,
            min_fallback_time: chain.min_fallback_time,
            hedging: chain
                .hedge
                .as_ref()
                .map(|hedge| Hedging::new(hedge, clock.clone())),
            content_filtered_fallback: chain.content_filtered_fallback,
            engine_weights: chain.engine_weights,
            stream: chain.stream,
            group: None,
            probe_answered: tokio::sync::Notify::new(),
            ttl: chain.ttl,
        };
        let chains = plan.chains.into_iter().map(chain_of).collect();
        let group_names: Vec<String> = plan.groups.iter().map(|g| g.name.clone()).collect();
        let groups = plan
            .groups
            .into_iter()
            .enumerate()
            .map(|(i, group)| Group {
                context_fallback: group
                    .context_fallback
                    .as_ref()
                    .and_then(|name| group_names.iter().position(|n| n == name)),
                name: group.name.clone(),
                capability: group.capability,
                strategy: group.strategy,
                weights: group.weights,
                chain: Chain {
                    group: Some(group.name.clone()),
                    ..chain_of(group.chain)
                },
                rng: parking_lot::Mutex::new(rand::rngs::SmallRng::seed_from_u64(
                    seed.wrapping_add(i as u64),
                )),
            })
            .collect();
        let slots: Vec<Arc<ProviderSlot>> = slots.into_iter().flatten().collect();
        let transport = Transport::new(&plan.user_agent, plan.max_response_bytes)?;
        let cache = match &redis {
            Some(redis) => redis.response_cache(
                &plan.cache,
                clock.clone(),
                slots.iter().map(|s| s.id()).collect(),
            ),
            None => ResponseCache::new(&plan.cache, clock.clone()),
        };
        let call_metrics = Arc::new(crate::metrics::CallMetrics::default());
        let store: Arc<dyn AnalyticsStore> = match (analytics, sqlite) {
            (Some(store), _) => store,
            (None, Some(file)) => file,
            (None, None) if plan.analytics.redis => match &redis {
                Some(redis) => redis_analytics_store(redis, plan.analytics.retention),
                None => {
                    return Err(crate::Error::config(
                        "analytics.redis",
                        "needs a [redis] table (its url)",
                    ))
                }
            },
            (None, None) => Arc::new(MemoryStore::new()),
        };
        // Conversations are kept in the store whether calls are recorded
        // or not.
        let conversations = Arc::new(ConversationStore::new(
            Arc::clone(&store),
            clock.clone(),
            plan.analytics.retention,
        ));
        let analytics = if plan.analytics.enabled {
            let metrics = Arc::clone(&call_metrics);
            Some(Recorder::new(
                store,
                &plan.analytics,
                clock.clone(),
                save_quotas,
                Some(Box::new(move |batch| metrics.observe(batch))),
            )?)
        } else {
            None
        };
        for warning in &plan.warnings {
            tracing::warn!("{warning}");
        }
        Ok(Client {
            engine: Arc::new(Engine {
                clock,
                transport,
                user_agent: plan.user_agent,
                state,
                chains,
                groups,
                slots,
                cache,
                cache_enabled: plan.cache.enabled,
                config_warnings: plan.warnings,
                models: plan.models,
                budgets: plan.budgets,
                analytics,
            }),
            catalog,
            call_metrics,
            conversations,
        })
    }

    /// A builder with defaults: no file, keys from the environment.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: ConfigSource::Defaults,
            vars: None,
            keys: BTreeMap::new(),
            clock: None,
            state: None,
            seed: None,
            testing: false,
            extra: Vec::new(),
            analytics: None,
        }
    }

    /// Calls `capability` with loosely typed `params` (validated first:
    /// a bad parameter fails with [`Error::InvalidRequest`](crate::Error::InvalidRequest) before any
    /// network call).
    ///
    /// A `tag` parameter (a user, a route) is recorded with the call in
    /// analytics, whatever the capability.
    pub async fn call(&self, capability: &str, params: Value) -> Result<Envelope> {
        let (request, tag) = Request::parse_tagged(capability, params)?;
        self.request_tagged(request, tag.as_deref()).await
    }

    /// [`Client::call`] for code without an async runtime: runs on the
    /// runtime polyrelay manages and blocks this thread.
    pub fn call_blocking(&self, capability: &str, params: Value) -> Result<Envelope> {
        let request = Request::parse(capability, params)?;
        let client = self.clone();
        crate::runtime::block_on(async move { client.request(request).await })?
    }

    /// Calls with an already validated request.
    pub async fn request(&self, request: Request) -> Result<Envelope> {
        self.request_tagged(request, None).await
    }

    /// [`Client::request`] recorded in analytics under the caller's `tag`
    /// (a user, a route: 1 to 64 letters, digits or `_ - . : /`); an LLM
    /// call's own `tag` parameter is used when `tag` is `None`.
    pub async fn request_tagged(&self, request: Request, tag: Option<&str>) -> Result<Envelope> {
        if let Some(tag) = tag {
            crate::capability::llm::check_tag(tag).map_err(|e| crate::Error::invalid("tag", e))?;
        }
        let started = self.engine.clock.now();
        let capability = request.capability();
        let tag = self.engine.record_tag(&request, tag);
        let result = match self.engine.call(request).await {
            Ok(result) => result,
            Err(error) => {
                self.engine.record_failure(capability, started, &error, tag);
                return Err(error);
            }
        };
        let cost_usd = self.engine.call_cost(&result.answer, result.cached);
        let mut envelope = Envelope::new(
            capability,
            result.answer,
            result.cached,
            result.attempts,
            self.engine.clock.now().saturating_sub(started),
            cost_usd,
        );
        envelope.stale = result.stale;
        self.engine.record_answer(&envelope, tag);
        Ok(envelope)
    }

    /// The analytics of the calls recorded so far (by every process sharing
    /// the store), after writing this client's pending records: rows per
    /// hour or day × the query's dimensions. See [`crate::analytics`].
    pub async fn analytics(&self, query: &AnalyticsQuery) -> Result<Vec<AnalyticsRow>> {
        match &self.engine.analytics {
            Some(recorder) => recorder.query(query).await,
            None => Err(crate::Error::Usage {
                message: "analytics is off (`[analytics] enabled = false`)".to_string(),
            }),
        }
    }

    /// The conversations kept by id in the analytics store (see
    /// [`Client::save_conversation`]).
    pub(crate) fn conversation_store(&self) -> &ConversationStore {
        &self.conversations
    }

    /// Writes this client's pending analytics records to the store now.
    pub async fn flush_analytics(&self) {
        if let Some(recorder) = &self.engine.analytics {
            recorder.flush().await;
        }
    }

    /// The analytics recorder's counters: records queued, dropped, written.
    pub fn analytics_status(&self) -> AnalyticsStatus {
        match &self.engine.analytics {
            Some(recorder) => recorder.status(),
            None => AnalyticsStatus {
                store: "off",
                recorded: 0,
                dropped: 0,
                written: 0,
                write_errors: 0,
                degraded: false,
                fallback_writes: 0,
            },
        }
    }

    /// The Prometheus text (format 0.0.4, [`crate::metrics::CONTENT_TYPE`])
    /// of this client's calls, providers, breakers, quotas and Redis state,
    /// after writing its pending call records. See [`crate::metrics`].
    pub async fn metrics_text(&self) -> String {
        self.flush_analytics().await;
        let mut scrape = crate::metrics::Scrape::new(
            self.engine
                .analytics
                .is_some()
                .then_some(&*self.call_metrics),
        );
        // Providers never asked have nothing to show but zeros.
        scrape.providers = self
            .stats()
            .providers
            .into_iter()
            .filter(|(_, s)| s.counters.requests > 0 || !s.counters.outcomes.is_empty())
            .filter_map(|(name, s)| {
                let slot = self.engine.slots.iter().find(|slot| slot.name() == name)?;
                Some(crate::metrics::ProviderScrape {
                    name,
                    breakers: s
                        .breakers
                        .iter()
                        .map(|(capability, b)| (*capability, b.state.as_str()))
                        .collect(),
                    quota_remaining: s.quota.as_ref().map(|q| q.remaining),
                    counters: s.counters,
                    latency: crate::metrics::Histogram::of_requests(&slot.stats),
                })
            })
            .collect();
        let health = self.health();
        scrape.ready = health
            .capabilities
            .iter()
            .map(|(capability, h)| (*capability, h.ready.len()))
            .collect();
        scrape.redis_degraded = health.redis_degraded;
        scrape.dropped_records = self.analytics_status().dropped;
        scrape.render()
    }

    /// [`Client::metrics_text`] for code without an async runtime.
    pub fn metrics_text_blocking(&self) -> Result<String> {
        let client = self.clone();
        crate::runtime::block_on(async move { client.metrics_text().await })
    }

    /// Streams `capability`'s answer as it is written: see [`ChatStream`].
    /// Only `llm.chat` streams. `params` are those of [`Client::call`]
    /// (`"stream": true`, as in an OpenAI request body, is accepted) and
    /// are validated now: a bad parameter fails here, before any network
    /// call. The stream opens on its first `next`.
    pub fn stream(&self, capability: &str, mut params: Value) -> Result<ChatStream> {
        if capability != CapabilityId::LlmChat.as_str() {
            return Err(crate::Error::invalid(
                "capability",
                format!("`{capability}` does not stream: only llm.chat does"),
            ));
        }
        if let Value::Object(fields) = &mut params {
            if fields.get("stream") == Some(&Value::Bool(true)) {
                fields.remove("stream");
            }
        }
        self.stream_request(Request::parse(capability, params)?)
    }

    /// [`Client::stream`] with an already validated request.
    pub fn stream_request(&self, request: Request) -> Result<ChatStream> {
        match request {
            Request::LlmChat(query) => Ok(ChatStream::new(Arc::clone(&self.engine), query)),
            other => Err(crate::Error::invalid(
                "capability",
                format!(
                    "`{}` does not stream: only llm.chat does",
                    other.capability().as_str()
                ),
            )),
        }
    }

    /// How many providers a call of `request` would walk, once routed: its
    /// model group's order for this call, or its capability's chain. The
    /// decision alone, for the routing benchmark.
    pub(crate) fn route_length(&self, request: &Request) -> Result<usize> {
        let route = self.engine.route(request)?;
        Ok(route
            .order
            .map_or(route.chain.slots.len(), |order| order.len()))
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

    /// Every provider this client knows, enabled or not, with its key
    /// variable, whether a key is set and its place in each chain.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// A snapshot of every enabled provider's counters and guards.
    pub fn stats(&self) -> Stats {
        let now = self.engine.clock.now();
        let providers = self
            .engine
            .slots
            .iter()
            .map(|slot| {
                let stats = ProviderStats {
                    provider: slot.deployment.is_some().then(|| slot.id()),
                    model: slot.deployment.as_ref().map(|d| d.model.clone()),
                    key_set: slot.key.is_some(),
                    benched_for: slot.benched(now).map(|(left, _)| left),
                    counters: slot.stats.snapshot(),
                    breakers: slot
                        .breakers
                        .iter()
                        .map(|(c, b)| (c.as_str(), b.snapshot()))
                        .collect(),
                    quota: self.engine.state.quota_snapshot(slot.name()),
                };
                (slot.name(), stats)
            })
            .collect();
        Stats { providers }
    }

    /// Which capabilities and model groups can be served right now, and by
    /// whom, and what each budget has spent in its current window.
    pub fn health(&self) -> Health {
        let now = self.engine.clock.now();
        let capabilities = CapabilityId::ALL
            .iter()
            .zip(&self.engine.chains)
            .map(|(capability, chain)| {
                let health = match capability.composed_of() {
                    // Served as long as one of the providers it asks is.
                    Some(parts) => chain_health(self.engine.chain(parts), parts, now),
                    None => chain_health(chain, *capability, now),
                };
                (capability.as_str(), health)
            })
            .collect();
        let groups = self
            .engine
            .groups
            .iter()
            .map(|group| {
                let health = chain_health(&group.chain, group.capability, now);
                (
                    group.name.clone(),
                    GroupHealth {
                        capability: group.capability.as_str(),
                        strategy: group.strategy.as_str(),
                        health,
                    },
                )
            })
            .collect();
        Health {
            state_backend: self.engine.state.backend(),
            redis_degraded: self.engine.state.degraded(),
            capabilities,
            groups,
            budgets: self.engine.budget_snapshots(),
            config_warnings: self.engine.config_warnings.clone(),
        }
    }

    /// Whether the Redis this client shares state through answers a `PING`
    /// now, within `REDIS_PING_TIMEOUT` (1 s: long enough for a first
    /// connection, which [`health`](Self::health)'s `redis_degraded`, set by
    /// calls, has not seen on a fresh client); `None` when the client keeps
    /// its state in memory. For start-up checks such as `polyrelay check`:
    /// calls never wait for it, and a failed ping counts towards the Redis
    /// breaker like any failed operation.
    pub async fn ping_redis(&self) -> Option<bool> {
        self.engine.state.ping(REDIS_PING_TIMEOUT).await
    }
}

/// How long [`Client::ping_redis`] waits for Redis.
const REDIS_PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Which slots of `chain` would be asked now for `capability`, and why the
/// others would not.
fn chain_health(chain: &Chain, capability: CapabilityId, now: Duration) -> CapabilityHealth {
    let mut ready = Vec::new();
    let mut unavailable = BTreeMap::new();
    for slot in &chain.slots {
        match slot.unavailable(capability, now) {
            Some((_, reason, _)) => {
                unavailable.insert(slot.name(), reason);
            }
            None => ready.push(slot.name()),
        }
    }
    let status = if ready.is_empty() {
        "down"
    } else if unavailable.is_empty() {
        "healthy"
    } else {
        "degraded"
    };
    CapabilityHealth {
        status,
        ready,
        unavailable,
    }
}

/// Every enabled provider's and deployment's stats. Serialises as a JSON
/// object keyed by provider id or deployment name: the stats of the Python
/// package and the C ABI alike.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Stats {
    /// By provider id, and by deployment name.
    pub providers: BTreeMap<&'static str, ProviderStats>,
}

/// One provider's (or deployment's) stats.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderStats {
    /// A deployment's provider (absent for a provider).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<&'static str>,
    /// A deployment's model (absent for a provider).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
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
    /// By model group name (deployments by name).
    pub groups: BTreeMap<String, GroupHealth>,
    /// Every configured budget's spending in its current window, by name.
    pub budgets: BTreeMap<&'static str, BudgetSnapshot>,
    /// Settings that work but defeat their purpose, e.g. an attempt timeout
    /// longer than the capability's total deadline (logged once at start).
    pub config_warnings: Vec<String>,
}

/// Health of one capability (or of one group's deployments).
#[derive(Debug, Clone, Serialize)]
pub struct CapabilityHealth {
    /// `healthy` (every provider ready), `degraded` or `down`.
    pub status: &'static str,
    /// Providers (or deployments) that would be tried now.
    pub ready: Vec<&'static str>,
    /// Providers (or deployments) that would be skipped, and why.
    pub unavailable: BTreeMap<&'static str, String>,
}

/// Health of one model group: its deployments, as for a capability.
#[derive(Debug, Clone, Serialize)]
pub struct GroupHealth {
    /// The capability the group serves.
    pub capability: &'static str,
    /// How it orders its deployments.
    pub strategy: &'static str,
    /// Its deployments' readiness.
    #[serde(flatten)]
    pub health: CapabilityHealth,
}

/// The analytics store in the client's Redis, keeping hours for `retention`.
#[cfg(feature = "redis")]
fn redis_analytics_store(redis: &ClientRedis, retention: Duration) -> Arc<dyn AnalyticsStore> {
    Arc::new(crate::analytics::RedisStore::new(
        redis.backend().clone(),
        retention,
    ))
}

/// Never called: without Redis support there is no `ClientRedis`.
#[cfg(not(feature = "redis"))]
fn redis_analytics_store(_: &ClientRedis, _: Duration) -> Arc<dyn AnalyticsStore> {
    Arc::new(crate::analytics::MemoryStore::new())
}
