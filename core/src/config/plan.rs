//! What a client will be, decided before anything runs.
//!
//! [`resolve`] takes the loaded configuration, the variables keys are read
//! from, the builder's keys and providers, and decides everything: which
//! providers exist and are enabled, their settings, base URLs, keys and
//! limits, each capability's chain and deadlines, the cache and Redis
//! settings, and the warnings worth logging. It is pure (no clock, runtime or
//! network), so every decision is unit-tested here; `ClientBuilder::build`
//! only turns the [`Plan`] into running parts.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::{CapabilitySettings, Config, ProviderSettings, RateLimitSetting, StreamSettings};
use crate::capability::llm::models::ModelTable;
use crate::capability::CapabilityId;
use crate::custom::CustomProvider;
use crate::echo::{echo, echo_key};
use crate::error::{Error, Result};
use crate::intern::intern;
use crate::provider::{Auth, Provider, Quota};
use crate::resilience::budget::Budget;
use crate::resilience::cache::{CacheConfig, TtlPolicy};
use crate::resilience::hedge::HedgeConfig;
use crate::resilience::rate_limit::{Rate, RateLimitConfig};
use crate::routing::{Price, Strategy};
use crate::state::redis::RedisConfig;
use crate::state::ProviderLimits;

/// Time kept for the next provider of a chain when `min_fallback_time` is
/// not set (at most half the time left; see [`super::CapabilitySettings`]).
const DEFAULT_MIN_FALLBACK_TIME: Duration = Duration::from_secs(1);

/// A stream silent for this long has stalled: generation runs at tens of
/// tokens per second, and providers send keep-alives well within it.
const DEFAULT_CHUNK_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest response body accepted when `max_response_bytes` is not set.
const DEFAULT_MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Everything a client is made of, decided.
pub(crate) struct Plan {
    /// Every provider known, enabled or not, in registry order: built-in,
    /// added to the builder, declared in the configuration.
    pub providers: Vec<ProviderPlan>,
    /// Indexed like [`CapabilityId::ALL`].
    pub chains: Vec<ChainPlan>,
    /// Model groups; their chains index deployments in `providers`.
    pub groups: Vec<GroupPlan>,
    pub user_agent: String,
    pub max_response_bytes: usize,
    pub cache: CacheConfig,
    pub redis: Option<RedisConfig>,
    pub analytics: crate::analytics::AnalyticsConfig,
    /// LLM prices and limits: the shipped table with `[models]` over it.
    pub models: ModelTable,
    /// Spending budgets, in name order.
    pub budgets: Vec<Budget>,
    /// Settings that work but defeat their purpose.
    pub warnings: Vec<String>,
}

/// One provider, or one deployment of a provider, as the client will use it.
pub(crate) struct ProviderPlan {
    pub provider: Arc<dyn Provider>,
    /// Set for a deployment: its name, model, token limit and price.
    pub deployment: Option<DeploymentPlan>,
    /// In the chains: enabled, and allowed by `commercial`.
    pub enabled: bool,
    pub settings: ProviderSettings,
    pub base_url: String,
    /// The variable its key is read from; empty when it takes none.
    pub key_env: String,
    pub key: Option<SecretString>,
    pub limits: ProviderLimits,
}

impl ProviderPlan {
    pub(crate) fn id(&self) -> &'static str {
        self.provider.info().id
    }
}

/// What makes a deployment more than its provider.
#[derive(Debug, Clone)]
pub(crate) struct DeploymentPlan {
    pub name: &'static str,
    pub model: String,
    pub tpm: Option<u64>,
    pub price: Option<Price>,
}

/// A model group, as the client will use it.
#[derive(Debug)]
pub(crate) struct GroupPlan {
    pub name: String,
    pub capability: CapabilityId,
    pub strategy: Strategy,
    /// One per deployment, in configured order (1 when not configured).
    pub weights: Vec<f64>,
    /// The group a call goes on to when its prompt fits no deployment.
    pub context_fallback: Option<String>,
    /// Its deployments (indices into [`Plan::providers`], enabled ones only)
    /// and the capability's deadlines, waits and cache settings.
    pub chain: ChainPlan,
}

impl fmt::Debug for ProviderPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderPlan")
            .field("id", &self.id())
            .field("deployment", &self.deployment)
            .field("enabled", &self.enabled)
            .field("base_url", &self.base_url)
            .field("key_env", &self.key_env)
            .field("key_set", &self.key.is_some())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// One capability's chain and how its calls may wait.
#[derive(Debug)]
pub(crate) struct ChainPlan {
    /// Indices into [`Plan::providers`], in fallback order; enabled ones only.
    pub providers: Vec<usize>,
    pub total_timeout: Duration,
    pub max_wait: Duration,
    pub last_resort_probe: bool,
    pub min_fallback_time: Duration,
    pub hedge: Option<HedgeConfig>,
    pub content_filtered_fallback: bool,
    /// Weights of the providers whose answers a composed capability merges.
    pub engine_weights: BTreeMap<String, f64>,
    pub stream: StreamSettings,
    pub ttl: TtlPolicy,
}

/// Decides everything about a client from `config` (already loaded, with
/// its `POLYRELAY_*` overrides applied), the variables keys are read from,
/// keys given to the builder (which win) and providers added to it. Fails
/// with a [`Error::Config`] naming the field.
pub(crate) fn resolve(
    config: &Config,
    vars: &BTreeMap<String, String>,
    keys: &BTreeMap<String, SecretString>,
    extra: &[Arc<dyn Provider>],
) -> Result<Plan> {
    let mut registry: Vec<Arc<dyn Provider>> = crate::providers::builtin()
        .iter()
        .map(|p| Arc::new(*p) as Arc<dyn Provider>)
        .chain(extra.iter().cloned())
        .collect();
    for (id, spec) in &config.custom_providers {
        registry.push(Arc::new(CustomProvider::new(id, spec.clone())?));
    }
    check_registry(config, &registry)?;
    let mut providers = registry
        .iter()
        .map(|provider| {
            let settings = config.provider_settings(provider.info().id)?;
            let key = keys.get(provider.info().id);
            provider_plan(config, vars, key, provider, settings, None)
        })
        .collect::<Result<Vec<_>>>()?;
    for name in config.deployments.keys() {
        let (spec, settings) = config.deployment(name)?;
        let Some(provider) = registry.iter().find(|p| p.info().id == spec.provider) else {
            continue; // refused by check_registry
        };
        let name = intern(name);
        // A deployment reading its provider's own variable takes a key given
        // to the builder for the provider too.
        let own_env = config.deployments[name].contains_key("api_key_env");
        let key = keys
            .get(name)
            .or_else(|| keys.get(provider.info().id).filter(|_| !own_env));
        let deployment = DeploymentPlan {
            name,
            model: spec.model,
            tpm: spec.tpm,
            price: spec.price,
        };
        providers.push(provider_plan(
            config,
            vars,
            key,
            provider,
            settings,
            Some(deployment),
        )?);
    }
    let default_total = config
        .total_timeout
        .unwrap_or(config.provider_settings("-")?.retry.total_timeout);
    let base_ttl = config.cache.ttl_policy();
    let chains = CapabilityId::ALL
        .iter()
        .map(|capability| {
            let settings = config.capabilities.get(capability.as_str());
            let enabled = |i: &usize| providers[*i].enabled;
            let order: Vec<usize> = match settings.and_then(|s| s.chain.as_ref()) {
                Some(ids) => ids
                    .iter()
                    .filter_map(|id| {
                        providers
                            .iter()
                            .position(|p| p.deployment.is_none() && p.id() == id)
                    })
                    .filter(enabled)
                    .collect(),
                None => {
                    let mut serving: Vec<usize> = (0..providers.len())
                        .filter(enabled)
                        .filter(|i| providers[*i].deployment.is_none())
                        .filter(|i| providers[*i].provider.capabilities().contains(capability))
                        .collect();
                    // Keyless first, so a fresh install with no keys works.
                    serving.sort_by_key(|i| !providers[*i].provider.info().is_keyless());
                    serving
                }
            };
            chain_plan(*capability, settings, order, default_total, base_ttl)
        })
        .collect::<Vec<_>>();
    let groups = config
        .groups
        .iter()
        .map(|(name, group)| {
            let capability = group.capability()?;
            let members: Vec<usize> = group
                .deployments
                .iter()
                .filter_map(|d| {
                    providers
                        .iter()
                        .position(|p| p.deployment.as_ref().is_some_and(|p| p.name == d))
                })
                .filter(|i| providers[*i].enabled)
                .collect();
            let weights = members
                .iter()
                .map(|i| {
                    let name = providers[*i].deployment.as_ref().map_or("", |d| d.name);
                    group.weights.get(name).copied().unwrap_or(1.0)
                })
                .collect();
            let settings = config.capabilities.get(capability.as_str());
            Ok(GroupPlan {
                name: name.clone(),
                capability,
                strategy: group.strategy,
                weights,
                context_fallback: group.context_fallback.clone(),
                chain: chain_plan(capability, settings, members, default_total, base_ttl),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let warnings = timeout_warnings(&providers, &chains);
    let mut budgets = Vec::with_capacity(config.budgets.len());
    for (name, settings) in &config.budgets {
        if let Some(unknown) = settings
            .providers
            .iter()
            .find(|id| !registry.iter().any(|p| p.info().id == id.as_str()))
        {
            return Err(Error::config(
                format!("budgets.{}.providers", echo_key(name)),
                format!("no provider is named {}", echo(unknown)),
            ));
        }
        budgets.push(Budget::new(intern(name), settings, config.time_zone()));
    }
    Ok(Plan {
        providers,
        chains,
        groups,
        user_agent: config.user_agent(),
        max_response_bytes: config
            .max_response_bytes
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
        cache: config.cache.clone(),
        redis: config.redis.clone(),
        analytics: {
            config.analytics.validate()?;
            config.analytics.clone()
        },
        models: model_table(config)?,
        budgets,
        warnings,
    })
}

/// The shipped model table with the configuration's `[models]` over it
/// (their providers already checked against the registry).
fn model_table(config: &Config) -> Result<ModelTable> {
    let mut table = ModelTable::shipped().clone();
    for (provider, model, info) in config.model_overrides()? {
        table.insert(provider, model, info);
    }
    Ok(table)
}

/// One provider (or deployment of `provider`) with `settings`, its key from
/// the builder (`given`) or its variable, its base URL and limits.
fn provider_plan(
    config: &Config,
    vars: &BTreeMap<String, String>,
    given: Option<&SecretString>,
    provider: &Arc<dyn Provider>,
    settings: ProviderSettings,
    deployment: Option<DeploymentPlan>,
) -> Result<ProviderPlan> {
    let info = provider.info();
    let name = deployment.as_ref().map_or(info.id, |d| d.name);
    let field = match &deployment {
        Some(d) => format!("deployments.{}", d.name),
        None => format!("providers.{}", info.id),
    };
    let enabled = settings.enabled && (!config.commercial || info.commercial_use);
    let key_env = match (&settings.api_key_env, info.auth) {
        (Some(env), _) => env.clone(),
        (None, Auth::Key { env, .. }) => env.to_string(),
        (None, Auth::Keyless) => String::new(),
    };
    let key = given.cloned().or_else(|| {
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
                    .map_err(|e| Error::config(format!("{field}.rate_limit"), e.to_string()))
            })
            .transpose()?,
    };
    let quota = match (settings.daily_quota, settings.monthly_quota) {
        (Some(day), Some(month)) if day > 0 && month > 0 => {
            return Err(Error::config(
                format!("{field}.monthly_quota"),
                "a provider has one quota: set daily_quota or monthly_quota, not both",
            ));
        }
        (Some(n), _) if n > 0 => Some(Quota::per_day(n)),
        (_, Some(n)) if n > 0 => Some(Quota::per_month(n)),
        (Some(_), _) | (_, Some(_)) => None,
        (None, None) => info.default_quota,
    };
    Ok(ProviderPlan {
        enabled,
        settings,
        base_url,
        key_env,
        key,
        limits: ProviderLimits {
            provider: name,
            rate_limit,
            quota,
            timezone: config.time_zone(),
        },
        provider: Arc::clone(provider),
        deployment,
    })
}

/// A chain over `providers` with `capability`'s settings.
fn chain_plan(
    capability: CapabilityId,
    settings: Option<&CapabilitySettings>,
    providers: Vec<usize>,
    default_total: Duration,
    base_ttl: TtlPolicy,
) -> ChainPlan {
    ChainPlan {
        providers,
        total_timeout: settings
            .and_then(|s| s.total_timeout)
            .unwrap_or(default_total),
        max_wait: settings.and_then(|s| s.max_wait).unwrap_or(Duration::MAX),
        last_resort_probe: settings.and_then(|s| s.last_resort_probe).unwrap_or(true),
        min_fallback_time: settings
            .and_then(|s| s.min_fallback_time)
            .unwrap_or(DEFAULT_MIN_FALLBACK_TIME),
        hedge: settings.and_then(|s| s.hedge.clone()),
        content_filtered_fallback: settings.is_some_and(|s| s.content_filtered_fallback),
        engine_weights: settings
            .map(|s| s.engine_weights.clone())
            .unwrap_or_default(),
        stream: StreamSettings {
            first_token_timeout: settings.and_then(|s| s.first_token_timeout),
            chunk_timeout: settings
                .and_then(|s| s.chunk_timeout)
                .unwrap_or(DEFAULT_CHUNK_TIMEOUT),
            mid_stream: settings.map(|s| s.mid_stream).unwrap_or_default(),
        },
        ttl: TtlPolicy {
            ttl: settings
                .and_then(|s| s.cache_ttl)
                .unwrap_or_else(|| capability.default_ttl()),
            ..base_ttl
        },
    }
}

/// Attempt timeouts that cannot fit inside their capability's deadline:
/// every attempt would be cut off by the deadline rather than end on its
/// own timeout, and a provider that hangs leaves no time for the next one
/// but the fallback reserve.
fn timeout_warnings(providers: &[ProviderPlan], chains: &[ChainPlan]) -> Vec<String> {
    let mut warnings = Vec::new();
    for (capability, chain) in CapabilityId::ALL.iter().zip(chains) {
        for provider in chain.providers.iter().map(|i| &providers[*i]) {
            let attempt = provider.settings.retry.attempt_timeout;
            if attempt > chain.total_timeout {
                warnings.push(format!(
                    "providers.{}.retry.attempt_timeout ({:.1} s) is longer than the total deadline of {capability} ({:.1} s): its attempts end at the deadline, less min_fallback_time when another provider is left",
                    provider.id(),
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
    for (provider, model, _) in config.model_overrides()? {
        if find(provider).is_none() {
            return Err(Error::config(
                format!("models.{}", echo_key(&format!("{provider}/{model}"))),
                format!("unknown provider {}; known: {}", echo(provider), known()),
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
        if !settings.engine_weights.is_empty() {
            let field = format!("capabilities.{}.engine_weights", echo_key(name));
            let Some(parts) = capability.composed_of() else {
                return Err(Error::config(
                    field,
                    "only a capability that merges several providers' answers (search.meta, news.meta) weighs them",
                ));
            };
            for (id, weight) in &settings.engine_weights {
                if !find(id).is_some_and(|p| p.capabilities().contains(&parts)) {
                    return Err(Error::config(
                        &field,
                        format!("{} is not a {} provider", echo(id), parts.as_str()),
                    ));
                }
                if !(weight.is_finite() && *weight > 0.0) {
                    return Err(Error::config(
                        format!("{field}.{}", echo_key(id)),
                        "must be a number above 0",
                    ));
                }
            }
        }
        for id in settings.chain.iter().flatten() {
            let provider = find(id).ok_or_else(|| {
                Error::config(
                    &field,
                    format!("unknown provider {}; known: {}", echo(id), known()),
                )
            })?;
            if !provider.capabilities().contains(&capability) {
                return Err(Error::config(
                    &field,
                    format!("provider {} does not serve {name}", echo(id)),
                ));
            }
        }
    }
    for (name, table) in &config.deployments {
        let field = format!("deployments.{}", echo_key(name));
        // Its name keys its limits, quota and stats beside the providers'.
        if find(name).is_some() {
            return Err(Error::config(
                field,
                "a provider has this id: a deployment needs a name of its own",
            ));
        }
        let provider = table.get("provider").and_then(|p| p.as_str()).unwrap_or("");
        if find(provider).is_none() {
            return Err(Error::config(
                format!("{field}.provider"),
                format!("unknown provider {}; known: {}", echo(provider), known()),
            ));
        }
    }
    for (name, group) in &config.groups {
        let capability = group.capability()?;
        for deployment in &group.deployments {
            let provider = config
                .deployments
                .get(deployment)
                .and_then(|t| t.get("provider"))
                .and_then(|p| p.as_str())
                .and_then(find);
            if provider.is_some_and(|p| !p.capabilities().contains(&capability)) {
                return Err(Error::config(
                    format!("groups.{}.deployments", echo_key(name)),
                    format!(
                        "deployment {}'s provider does not serve {}",
                        echo(deployment),
                        capability.as_str()
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    /// Environment pairs as a variable map (also for the catalog's tests).
    pub(crate) fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn plan_of(toml: &str, env: &[(&str, &str)]) -> Result<Plan> {
        let config = Config::from_toml_str(toml)?;
        resolve(&config, &vars(env), &BTreeMap::new(), &[])
    }

    fn provider<'p>(plan: &'p Plan, id: &str) -> &'p ProviderPlan {
        plan.providers
            .iter()
            .find(|p| p.id() == id)
            .unwrap_or_else(|| panic!("{id} is in the plan"))
    }

    fn chain(plan: &Plan, capability: CapabilityId) -> Vec<&'static str> {
        let index = CapabilityId::ALL
            .iter()
            .position(|c| *c == capability)
            .unwrap();
        plan.chains[index]
            .providers
            .iter()
            .map(|i| plan.providers[*i].id())
            .collect()
    }

    #[test]
    fn defaults_enable_every_builtin_with_keyless_providers_first() {
        let plan = plan_of("", &[]).unwrap();
        assert_eq!(plan.providers.len(), crate::providers::builtin().len());
        assert!(plan.providers.iter().all(|p| p.enabled && p.key.is_none()));
        for (capability, chain_plan) in CapabilityId::ALL.iter().zip(&plan.chains) {
            let keyless: Vec<bool> = chain_plan
                .providers
                .iter()
                .map(|i| plan.providers[*i].provider.info().is_keyless())
                .collect();
            assert!(
                keyless.windows(2).all(|w| w[0] || !w[1]),
                "{capability}: keyless first"
            );
            assert_eq!(
                chain_plan.providers.is_empty(),
                capability.composed_of().is_some(),
                "{capability}"
            );
            assert_eq!(chain_plan.total_timeout, Duration::from_secs(30));
            assert_eq!(chain_plan.max_wait, Duration::MAX);
            assert_eq!(chain_plan.min_fallback_time, DEFAULT_MIN_FALLBACK_TIME);
            assert!(chain_plan.last_resort_probe);
            assert_eq!(chain_plan.ttl.ttl, capability.default_ttl());
        }
        assert_eq!(chain(&plan, CapabilityId::WeatherCurrent)[0], "open-meteo");
        let openai = provider(&plan, "openai");
        assert_eq!(openai.key_env, "OPENAI_API_KEY");
        assert_eq!(openai.base_url, openai.provider.info().base_url);
        assert_eq!(provider(&plan, "open-meteo").key_env, "");
        // Declared limits become the client's.
        assert_eq!(
            provider(&plan, "alpha-vantage").limits.quota,
            Some(Quota::per_day(25))
        );
        assert_eq!(
            provider(&plan, "coinpaprika").limits.quota,
            Some(Quota::per_month(20_000)),
            "a free tier counted per month is held to its month"
        );
        let binance = provider(&plan, "binance").limits.rate_limit.unwrap();
        assert_eq!(binance.rate.requests, 1200);
        assert_eq!(binance.rate.per, Duration::from_secs(60));
        assert_eq!(plan.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
        assert!(plan.cache.enabled && plan.redis.is_none() && plan.warnings.is_empty());
    }

    #[test]
    fn keys_come_from_the_builder_first_then_the_providers_variable() {
        let env = [
            ("OPENAI_API_KEY", "  from-env  "),
            ("MY_COINGECKO", "renamed"),
            ("COINGECKO_API_KEY", "ignored: api_key_env renames it"),
            ("MISTRAL_API_KEY", "   "),
        ];
        let config =
            Config::from_toml_str("[providers.coingecko]\napi_key_env = \"MY_COINGECKO\"\n")
                .unwrap();
        let keys = [("anthropic".to_string(), SecretString::from("given"))]
            .into_iter()
            .collect();
        let plan = resolve(&config, &vars(&env), &keys, &[]).unwrap();
        let key = |id: &str| {
            provider(&plan, id)
                .key
                .as_ref()
                .map(|k| k.expose_secret().to_string())
        };
        assert_eq!(key("openai").as_deref(), Some("from-env"), "trimmed");
        assert_eq!(key("coingecko").as_deref(), Some("renamed"));
        assert_eq!(provider(&plan, "coingecko").key_env, "MY_COINGECKO");
        assert_eq!(key("mistral"), None, "a blank variable is no key");
        assert_eq!(key("anthropic").as_deref(), Some("given"));
        assert!(!format!("{:?}", provider(&plan, "openai")).contains("from-env"));
    }

    #[test]
    fn chains_follow_the_configuration_and_leave_out_disabled_providers() {
        let plan = plan_of(
            r#"
            [capabilities."weather.current"]
            chain = ["wttr-in", "met-norway", "open-meteo"]
            total_timeout = "5s"
            max_wait = "0s"
            cache_ttl = "1m"
            last_resort_probe = false
            [providers.met-norway]
            enabled = false
            "#,
            &[],
        )
        .unwrap();
        assert_eq!(
            chain(&plan, CapabilityId::WeatherCurrent),
            ["wttr-in", "open-meteo"]
        );
        assert!(!provider(&plan, "met-norway").enabled);
        assert!(!chain(&plan, CapabilityId::WeatherForecast).contains(&"met-norway"));
        let current = &plan.chains[CapabilityId::ALL
            .iter()
            .position(|c| *c == CapabilityId::WeatherCurrent)
            .unwrap()];
        assert_eq!(current.total_timeout, Duration::from_secs(5));
        assert_eq!(current.max_wait, Duration::ZERO);
        assert_eq!(current.ttl.ttl, Duration::from_secs(60));
        assert!(!current.last_resort_probe);
    }

    #[test]
    fn commercial_use_leaves_out_providers_whose_terms_forbid_it() {
        let plan = plan_of("commercial = true", &[]).unwrap();
        assert!(!provider(&plan, "wttr-in").enabled);
        assert!(provider(&plan, "met-norway").enabled);
        for chain_plan in &plan.chains {
            assert!(chain_plan
                .providers
                .iter()
                .all(|i| plan.providers[*i].provider.info().commercial_use));
        }
    }

    #[test]
    fn base_urls_limits_and_warnings_follow_the_settings() {
        let plan = plan_of(
            r#"
            emulator_url = "http://127.0.0.1:9000/"
            max_response_bytes = 1024
            [providers.open-meteo]
            base_url = "http://127.0.0.1:8080/om"
            rate_limit = "off"
            daily_quota = 10
            retry = { attempt_timeout = "40s" }
            [providers.alpha-vantage]
            daily_quota = 0
            [providers.coinpaprika]
            daily_quota = 500
            [providers.gnews]
            monthly_quota = 3000
            [providers.weatherapi]
            monthly_quota = 0
            "#,
            &[],
        )
        .unwrap();
        let open_meteo = provider(&plan, "open-meteo");
        assert_eq!(open_meteo.base_url, "http://127.0.0.1:8080/om");
        assert_eq!(open_meteo.limits.rate_limit, None);
        assert_eq!(open_meteo.limits.quota, Some(Quota::per_day(10)));
        assert_eq!(
            provider(&plan, "met-norway").base_url,
            "http://127.0.0.1:9000/met-norway"
        );
        assert_eq!(provider(&plan, "alpha-vantage").limits.quota, None);
        // A quota set replaces the default, whatever the default's period.
        let quota = |id| provider(&plan, id).limits.quota;
        assert_eq!(quota("coinpaprika"), Some(Quota::per_day(500)));
        assert_eq!(quota("gnews"), Some(Quota::per_month(3000)));
        assert_eq!(quota("weatherapi"), None);
        assert_eq!(plan.max_response_bytes, 1024);
        // open-meteo serves two capabilities, each with a 30 s deadline.
        assert_eq!(plan.warnings.len(), 2, "{:?}", plan.warnings);
        assert!(plan.warnings[0].starts_with("providers.open-meteo.retry.attempt_timeout (40.0 s)"));
    }

    #[test]
    fn a_provider_has_one_quota() {
        let toml = "[providers.gnews]\ndaily_quota = 10\nmonthly_quota = 100\n";
        match plan_of(toml, &[]) {
            Err(Error::Config { field, message }) => {
                assert_eq!(field, "providers.gnews.monthly_quota");
                assert!(message.contains("not both"), "{message}");
            }
            other => panic!("not a config error: {:?}", other.map(|_| ())),
        }
        // 0 turns one off: the other stands.
        let toml = "[providers.gnews]\ndaily_quota = 0\nmonthly_quota = 100\n";
        let plan = plan_of(toml, &[]).unwrap();
        assert_eq!(
            provider(&plan, "gnews").limits.quota,
            Some(Quota::per_month(100))
        );
    }

    #[test]
    fn chains_may_only_name_known_providers_serving_the_capability() {
        let error = |toml: &str| match plan_of(toml, &[]) {
            Err(Error::Config { field, message }) => format!("{field}: {message}"),
            other => panic!("not a config error: {:?}", other.map(|_| ())),
        };
        assert!(
            error("[capabilities.\"weather.current\"]\nchain = [\"nope\"]\n")
                .starts_with("capabilities.weather.current.chain: unknown provider")
        );
        assert!(
            error("[capabilities.\"weather.current\"]\nchain = [\"openai\"]\n")
                .contains("does not serve weather.current")
        );
        assert!(error("[providers.nope]\nenabled = true\n")
            .starts_with("providers.nope: unknown provider"));
    }

    #[test]
    fn deployments_take_their_own_key_url_and_limits_under_their_name() {
        let config = Config::from_toml_str(
            r#"
            [providers.openai]
            rate_limit = "60/min"
            [deployments.gpt-eu]
            provider = "openai"
            model = "gpt-4o-mini"
            api_key_env = "OPENAI_KEY_EU"
            base_url = "https://eu.example/v1"
            daily_quota = 100
            tpm = 5000
            [deployments.gpt-us]
            provider = "openai"
            model = "gpt-4.1"
            [groups.fast]
            deployments = ["gpt-us", "gpt-eu"]
            strategy = "weighted"
            weights = { gpt-eu = 3 }
            "#,
        )
        .unwrap();
        let env = [("OPENAI_KEY_EU", "eu-key"), ("OPENAI_API_KEY", "env-key")];
        let keys = [("openai".to_string(), SecretString::from("given"))]
            .into_iter()
            .collect();
        let plan = resolve(&config, &vars(&env), &keys, &[]).unwrap();
        let deployment = |name: &str| {
            plan.providers
                .iter()
                .find(|p| p.deployment.as_ref().is_some_and(|d| d.name == name))
                .unwrap()
        };
        let key = |p: &ProviderPlan| p.key.as_ref().map(|k| k.expose_secret().to_string());
        let eu = deployment("gpt-eu");
        assert_eq!(key(eu).as_deref(), Some("eu-key"));
        assert_eq!(eu.key_env, "OPENAI_KEY_EU");
        assert_eq!(eu.base_url, "https://eu.example/v1");
        assert_eq!(eu.limits.provider, "gpt-eu");
        assert_eq!(eu.limits.quota, Some(Quota::per_day(100)));
        assert_eq!(
            eu.limits.rate_limit.unwrap().rate,
            "60/min".parse().unwrap(),
            "the provider's table is merged under the deployment's"
        );
        assert_eq!(eu.deployment.as_ref().unwrap().tpm, Some(5000));
        assert!(!format!("{eu:?}").contains("eu-key"));
        // It reads the provider's own variable, so the builder's key wins.
        let us = deployment("gpt-us");
        assert_eq!(key(us).as_deref(), Some("given"));
        assert_eq!(us.base_url, us.provider.info().base_url);
        assert_eq!(us.limits.quota, None);
        // Deployments are in no capability's chain; the group lists them.
        assert_eq!(
            chain(&plan, CapabilityId::LlmChat)
                .iter()
                .filter(|id| **id == "openai")
                .count(),
            1
        );
        let group = &plan.groups[0];
        assert_eq!(group.name, "fast");
        assert_eq!(group.weights, [1.0, 3.0]);
        let names: Vec<&str> = group
            .chain
            .providers
            .iter()
            .filter_map(|i| plan.providers[*i].deployment.as_ref().map(|d| d.name))
            .collect();
        assert_eq!(names, ["gpt-us", "gpt-eu"]);
    }
}
