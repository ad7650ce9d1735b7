//! Configuration: defaults that work with no file and no keys, a TOML file,
//! and `POLYRELAY_*` environment variables, in that order of precedence.
//!
//! ```toml
//! timezone = "Europe/Paris"          # calendar of daily and monthly quotas
//! user_agent = "my-app/1.0"
//! contact = "ops@example.com"        # sent where providers ask for it
//! commercial = false                 # true drops providers whose free terms forbid it
//! total_timeout = "30s"
//!
//! [cache]
//! stale_if_error = "1d"
//!
//! [defaults.retry]                   # applies to every provider
//! max_attempts = 3
//!
//! [capabilities."weather.current"]
//! chain = ["met-norway", "open-meteo"]
//! cache_ttl = "10m"
//!
//! [redis]                          # share quotas, limits and cache across processes
//! url = "redis://127.0.0.1:6379"     # see config::RedisConfig
//!
//! [models."openai/gpt-4o-mini"]    # prices and limits over the shipped table
//! input_per_mtok = 0.15              # see capability::llm::models
//!
//! [providers.open-meteo]
//! base_url = "http://127.0.0.1:8080/open-meteo"
//! rate_limit = "600/min"
//! daily_quota = 10000
//! breaker = { sliding_window_size = 20, minimum_number_of_calls = 10 }
//!
//! [deployments.gpt-eu]               # a provider with a model, key and limits of its own
//! provider = "openai"
//! model = "gpt-4o-mini"
//! api_key_env = "OPENAI_KEY_EU"
//! tpm = 200000                       # tokens per minute
//!
//! [groups.fast]                      # model = "fast" asks these deployments
//! deployments = ["gpt-eu", "groq-llama"]
//! strategy = "weighted"              # ordered | weighted | least_busy | lowest_latency | cost
//! weights = { gpt-eu = 3, groq-llama = 1 }
//! context_fallback = "long"          # a group for prompts too long for these
//!
//! [budgets.team-a]                   # see resilience::budget
//! usd = 5.0                          # or tokens = 100000
//! period = "month"                   # or "day"
//! tags = ["team-a"]                  # and/or providers, deployments, groups
//! ```
//!
//! Per-provider tables are deep-merged over `[defaults]`, so a provider can
//! change one retry setting and keep the rest. Unknown keys, bad durations,
//! unknown providers and unknown `POLYRELAY_*` variables are errors naming
//! the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::capability::llm::models::ModelInfo;
use crate::capability::CapabilityId;
use crate::echo::{bound_message, echo, echo_key, type_name};
use crate::error::{Error, Result};

// The types of the configuration's sections, named here for users.
pub use crate::analytics::AnalyticsConfig;
pub use crate::custom::{CustomAuth, CustomProviderSpec, ErrorRule};
pub use crate::resilience::breaker::{BreakerConfig, SlidingWindowType, StateAfterHalfOpenWait};
pub use crate::resilience::budget::BudgetSettings;
pub use crate::resilience::cache::CacheConfig;
pub use crate::resilience::hedge::{HedgeConfig, HedgeDelay};
pub use crate::resilience::rate_limit::RateLimitConfig;
pub use crate::resilience::retry::{RetryBudgetConfig, RetryConfig};
pub use crate::routing::{Price, Strategy};
pub use crate::state::redis::RedisConfig;

pub(crate) mod plan;

pub(crate) use plan::{resolve, Plan};

/// Where a client's configuration comes from. Whatever the source,
/// `POLYRELAY_*` variables are applied over it.
#[derive(Clone, Default)]
pub enum ConfigSource {
    /// The file named by `POLYRELAY_CONFIG` if that variable is set, the
    /// defaults otherwise.
    #[default]
    Defaults,
    /// A TOML file.
    File(PathBuf),
    /// TOML text.
    Toml(String),
    /// A JSON value with the file's structure (a Python dict, a C string of JSON).
    Json(Value),
    /// A configuration already parsed.
    Parsed(Box<Config>),
}

impl ConfigSource {
    /// Reads the source and applies the `POLYRELAY_*` overrides in `vars`.
    pub fn load(self, vars: &BTreeMap<String, String>) -> Result<Config> {
        let mut config = match self {
            Self::Defaults => return Config::from_vars(vars.clone()),
            Self::File(path) => Config::from_file(path)?,
            Self::Toml(text) => Config::from_toml_str(&text)?,
            Self::Json(value) => Config::from_json(value)?,
            Self::Parsed(config) => *config,
        };
        config.apply_env(vars)?;
        Ok(config)
    }
}

/// Only the kind of source and a file's path: the text or value may hold a
/// Redis password.
impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Defaults => f.write_str("Defaults"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Toml(_) => f.write_str("Toml(..)"),
            Self::Json(_) => f.write_str("Json(..)"),
            Self::Parsed(_) => f.write_str("Parsed(..)"),
        }
    }
}

impl From<Config> for ConfigSource {
    fn from(config: Config) -> Self {
        Self::Parsed(Box::new(config))
    }
}

/// The whole configuration, before it is resolved against the provider
/// registry by [`crate::Client`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// IANA time zone whose calendar daily and monthly quotas follow (default `UTC`).
    pub timezone: Option<String>,
    /// User-Agent product token (default `polyrelay/<version>`).
    pub user_agent: Option<String>,
    /// Contact (e-mail or URL) appended to the User-Agent; several providers
    /// (MET Norway, Nominatim, NWS, …) require one.
    pub contact: Option<String>,
    /// Drop providers whose free terms forbid commercial use.
    pub commercial: bool,
    /// Point every provider at this emulator: provider `x` uses `{url}/x`.
    pub emulator_url: Option<String>,
    /// One deadline over a whole call (default: `defaults.retry.total_timeout`).
    #[serde(with = "crate::duration::serde_secs::option")]
    pub total_timeout: Option<Duration>,
    /// Largest response body accepted, in bytes (default 8 MiB).
    pub max_response_bytes: Option<usize>,
    /// Response cache.
    pub cache: CacheConfig,
    /// Shared state on Redis; absent: everything stays in this process.
    pub redis: Option<RedisConfig>,
    /// Call analytics: where calls are recorded and for how long.
    pub analytics: AnalyticsConfig,
    /// Settings applied to every provider before its own table.
    pub defaults: Map<String, Value>,
    /// Per-capability settings, by capability name.
    pub capabilities: BTreeMap<String, CapabilitySettings>,
    /// Per-provider settings, by provider id.
    pub providers: BTreeMap<String, Map<String, Value>>,
    /// Providers declared here rather than built in, by id.
    pub custom_providers: BTreeMap<String, CustomProviderSpec>,
    /// LLM prices and limits by `provider/model`, over the shipped table
    /// field by field (see [`crate::capability::llm::models`]): the fields
    /// of [`ModelInfo`](crate::capability::llm::models::ModelInfo).
    pub models: BTreeMap<String, Map<String, Value>>,
    /// Deployments, by name: a provider with a model id and, optionally,
    /// its own key variable, base URL, limits and any other provider
    /// setting (merged over `[defaults]` and the provider's table); see
    /// [`DeploymentSpec`].
    pub deployments: BTreeMap<String, Map<String, Value>>,
    /// Model groups, by the name a call's `model` gives.
    pub groups: BTreeMap<String, GroupSettings>,
    /// Spending budgets of LLM calls, by name (see
    /// [`crate::resilience::budget`]).
    pub budgets: BTreeMap<String, BudgetSettings>,
}

/// What makes a deployment besides provider settings: `[deployments.X]`
/// holds these keys and any key of a provider's table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// The provider's id.
    pub provider: String,
    /// The model id sent to the provider.
    pub model: String,
    /// Tokens per minute: a call weighs its estimated tokens (its prompt's
    /// characters / 4 and 4 a message, plus `max_tokens` or 256), settled
    /// with what the reply reports. Held in this process (not shared
    /// through Redis).
    #[serde(default)]
    pub tpm: Option<u64>,
    /// Its price, for the `cost` strategy (default: the model table's).
    #[serde(default)]
    pub price: Option<Price>,
}

/// Keys of `[deployments.X]` that are the deployment's own, not provider settings.
const DEPLOYMENT_KEYS: &[&str] = &["provider", "model", "tpm", "price"];

/// A model group: deployments a call reaches by naming the group as its
/// `model`, in the order its strategy picks for each call.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupSettings {
    /// Deployment names.
    pub deployments: Vec<String>,
    /// How each call orders them (default `ordered`).
    pub strategy: Strategy,
    /// `weighted` only: each deployment's weight (default 1).
    pub weights: BTreeMap<String, f64>,
    /// The capability the group serves: `llm.chat` (default) or
    /// `llm.embeddings`.
    pub capability: Option<String>,
    /// The group a call goes on to when its prompt fits none of this
    /// group's deployments (each passed over for its context window, or
    /// refusing the prompt as too long); a group of the same capability.
    pub context_fallback: Option<String>,
}

impl GroupSettings {
    /// The capability the group serves.
    pub fn capability(&self) -> Result<CapabilityId> {
        match self.capability.as_deref() {
            None => Ok(CapabilityId::LlmChat),
            Some(name) => match name.parse() {
                Ok(c @ (CapabilityId::LlmChat | CapabilityId::LlmEmbeddings)) => Ok(c),
                _ => Err(Error::config(
                    "capability",
                    format!("must be llm.chat or llm.embeddings, got {}", echo(name)),
                )),
            },
        }
    }
}

/// Settings of one capability.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapabilitySettings {
    /// Provider ids in fallback order (default: keyless first).
    pub chain: Option<Vec<String>>,
    /// How long answers stay fresh.
    #[serde(with = "crate::duration::serde_secs::option")]
    pub cache_ttl: Option<Duration>,
    /// Total deadline for this capability's calls.
    #[serde(with = "crate::duration::serde_secs::option")]
    pub total_timeout: Option<Duration>,
    /// Longest a call may wait, in all, for a provider that said when it can
    /// answer again (rate-limit slot, `Retry-After`, bench, breaker
    /// half-open time) once every provider has been tried. Default: as long
    /// as the deadline allows; `"0s"` fails at once instead.
    #[serde(with = "crate::duration::serde_secs::option")]
    pub max_wait: Option<Duration>,
    /// Whether a call that finds no provider it can ask probes one held
    /// back by something that may be over (an open breaker, an unreachable
    /// host, a `Retry-After` no longer than the deadline), the one back
    /// soonest first (default true).
    pub last_resort_probe: Option<bool>,
    /// Time kept for the next provider: an attempt on a provider that is
    /// not the last one available ends this long before the deadline
    /// (default 1 s, at most half the time left).
    #[serde(with = "crate::duration::serde_secs::option")]
    pub min_fallback_time: Option<Duration>,
    /// Hedged requests (off when absent): see [`crate::resilience::hedge`].
    pub hedge: Option<HedgeConfig>,
    /// Whether a content-policy refusal is sent on to the next provider
    /// (default false: a refused prompt is not shopped around).
    pub content_filtered_fallback: bool,
    /// Streams only: longest wait for a provider's first token once its
    /// request is sent; a provider that is slower is passed over like one
    /// that failed (default: the provider's attempt timeout).
    #[serde(with = "crate::duration::serde_secs::option")]
    pub first_token_timeout: Option<Duration>,
    /// Streams only: longest silence between two chunks once a stream has
    /// started, counted while the consumer waits for the next one (time
    /// it spends between chunks does not count); a longer stall interrupts
    /// the stream (default 30 s).
    #[serde(with = "crate::duration::serde_secs::option")]
    pub chunk_timeout: Option<Duration>,
    /// Streams only: what a failure after the first token does.
    pub mid_stream: MidStream,
    /// `search.meta` only: each engine's weight in the merged ranking
    /// (default 1), by provider id, e.g. `{ brave = 2.0 }`.
    pub engine_weights: BTreeMap<String, f64>,
}

/// How a capability's streams are read (its `[capabilities.X]` settings).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamSettings {
    /// `None`: the provider's attempt timeout.
    pub first_token_timeout: Option<Duration>,
    pub chunk_timeout: Duration,
    pub mid_stream: MidStream,
}

/// What a stream does when its provider fails after the first token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MidStream {
    /// The stream ends with [`Error::StreamInterrupted`](crate::Error),
    /// which carries the partial text and the trail.
    #[default]
    Error,
    /// The next provider is asked to continue from the partial answer; the
    /// consumer keeps receiving text, and the final chunk says which
    /// provider wrote which part.
    Continue,
}

/// Settings of one provider, after `[defaults]` and its own table are merged.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    /// `false` removes the provider from every chain.
    pub enabled: bool,
    /// Base URL override.
    pub base_url: Option<String>,
    /// Environment variable holding the key, instead of the provider's own.
    pub api_key_env: Option<String>,
    /// Client-side rate limit (`"10/s"`); `"off"` disables the default one.
    pub rate_limit: Option<RateLimitSetting>,
    /// Request quota per local calendar day; 0 disables the provider's
    /// default quota. A provider has one quota: this or `monthly_quota`.
    pub daily_quota: Option<u64>,
    /// Request quota per local calendar month (a free tier counted per
    /// month, such as CoinPaprika's); 0 disables the default quota.
    pub monthly_quota: Option<u64>,
    /// Retry and timeout settings.
    pub retry: RetryConfig,
    /// Circuit breaker settings.
    pub breaker: BreakerConfig,
    /// How long a provider that refused the connection (nothing listening,
    /// e.g. a local Ollama that is not running) stays benched (default 30 s).
    #[serde(with = "crate::duration::serde_secs")]
    pub unreachable_bench: Duration,
    /// How long a provider whose key was refused stays benched (default 1 h).
    #[serde(with = "crate::duration::serde_secs")]
    pub auth_bench: Duration,
    /// Shortest time between two last-resort probes of the provider
    /// (default 1 s).
    #[serde(with = "crate::duration::serde_secs")]
    pub probe_interval: Duration,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            base_url: None,
            api_key_env: None,
            rate_limit: None,
            daily_quota: None,
            monthly_quota: None,
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
            unreachable_bench: Duration::from_secs(30),
            auth_bench: Duration::from_secs(3600),
            probe_interval: Duration::from_secs(1),
        }
    }
}

/// A rate limit: `"10/s"`, `{ rate = "10/s", burst = 20 }`, or `"off"`.
#[derive(Debug, Clone)]
pub enum RateLimitSetting {
    /// `"off"` (or `false`): no client-side limit, not even the provider's default.
    Off,
    /// A limit.
    Limit(RateLimitConfig),
}

impl<'de> Deserialize<'de> for RateLimitSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        match Value::deserialize(d)? {
            Value::Bool(false) => Ok(Self::Off),
            Value::String(s) if s == "off" => Ok(Self::Off),
            Value::String(s) => s
                .parse()
                .map(|rate| Self::Limit(RateLimitConfig { rate, burst: None }))
                .map_err(D::Error::custom),
            table @ Value::Object(_) => serde_json::from_value(table)
                .map(Self::Limit)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "rate_limit must be like \"10/s\", a table {{ rate, burst }}, or \"off\"; got {}",
                type_name(&other)
            ))),
        }
    }
}

impl Config {
    /// Parses TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let value: toml::Value = toml::from_str(text).map_err(|e| {
            // toml quotes the offending line, which may be huge.
            let message = e.to_string().lines().collect::<Vec<_>>().join(" ");
            Error::config("toml", bound_message(&message))
        })?;
        let json = serde_json::to_value(value).map_err(|e| Error::config("toml", e.to_string()))?;
        Self::from_json(json)
    }

    /// Reads a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                "config file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            Error::Config { field, message } => {
                Error::config(field, format!("{message} (in {})", path.display()))
            }
            other => other,
        })
    }

    /// Builds from a JSON-like value (a Python dict, a C string of JSON).
    pub fn from_json(value: Value) -> Result<Self> {
        let config: Config = serde_json::from_value(value)
            .map_err(|e| Error::config("config", bound_message(&e.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration a process gets from its environment: the file named
    /// by `POLYRELAY_CONFIG` (if set), then every `POLYRELAY_*` override.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(crate::config::env_vars_utf8())
    }

    /// Like [`Config::from_env`], from explicit variables (tests, embedding).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        let mut config = match vars.get("POLYRELAY_CONFIG") {
            Some(path) if !path.is_empty() => Self::from_file(path)?,
            _ => Self::default(),
        };
        config.apply_env(&vars)?;
        Ok(config)
    }

    /// Applies `POLYRELAY_*` overrides from `vars`; other variables are ignored.
    pub fn apply_env(&mut self, vars: &BTreeMap<String, String>) -> Result<()> {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("POLYRELAY_") else {
                continue;
            };
            let bad = |msg: String| Error::config(echo_key(name), msg);
            match rest {
                "CONFIG" => {}
                "TIMEZONE" => self.timezone = Some(value.clone()),
                "USER_AGENT" => self.user_agent = Some(value.clone()),
                "CONTACT" => self.contact = Some(value.clone()),
                "EMULATOR_URL" => self.emulator_url = Some(value.clone()),
                "COMMERCIAL" => self.commercial = parse_bool(value).map_err(bad)?,
                "CACHE" => self.cache.enabled = parse_bool(value).map_err(bad)?,
                "REDIS_URL" => match RedisConfig::new(value).url {
                    url if url.is_empty() => self.redis = None,
                    url => self.redis.get_or_insert_with(RedisConfig::default).url = url,
                },
                "TOTAL_TIMEOUT" => {
                    self.total_timeout = Some(crate::duration::parse(value).map_err(bad)?)
                }
                _ => {
                    if let Some(cap) = rest.strip_prefix("CHAIN_") {
                        let capability = CapabilityId::ALL
                            .iter()
                            .find(|c| env_name(c.as_str()) == cap)
                            .ok_or_else(|| bad(format!("no capability is named {}", echo(cap))))?;
                        self.capabilities
                            .entry(capability.as_str().to_string())
                            .or_default()
                            .chain = Some(value.split(',').map(|s| s.trim().to_string()).collect());
                    } else {
                        self.apply_provider_env(rest, value).map_err(bad)?;
                    }
                }
            }
        }
        self.validate()
    }

    fn apply_provider_env(&mut self, rest: &str, value: &str) -> std::result::Result<(), String> {
        const SETTINGS: &[(&str, &str)] = &[
            ("_BASE_URL", "base_url"),
            ("_RATE_LIMIT", "rate_limit"),
            ("_DAILY_QUOTA", "daily_quota"),
            ("_MONTHLY_QUOTA", "monthly_quota"),
            ("_ENABLED", "enabled"),
            ("_API_KEY_ENV", "api_key_env"),
        ];
        for (suffix, key) in SETTINGS {
            if let Some(provider) = rest.strip_suffix(suffix) {
                let id = crate::providers::builtin()
                    .iter()
                    .map(|p| p.info().id)
                    .find(|id| env_name(id) == provider)
                    .ok_or_else(|| format!("no provider is named {}", echo(provider)))?;
                let parsed = match *key {
                    "daily_quota" | "monthly_quota" => Value::from(
                        value
                            .trim()
                            .parse::<u64>()
                            .map_err(|_| format!("expected a whole number, got {}", echo(value)))?,
                    ),
                    "enabled" => Value::Bool(parse_bool(value)?),
                    _ => Value::String(value.to_string()),
                };
                self.providers
                    .entry(id.to_string())
                    .or_default()
                    .insert(key.to_string(), parsed);
                return Ok(());
            }
        }
        Err(
            "unknown polyrelay variable; see the configuration docs for the supported ones"
                .to_string(),
        )
    }

    /// Checks everything that can be checked without the provider registry:
    /// names, time zone, URLs, every provider table. Chains and provider ids
    /// are checked against the registry when a client is built.
    pub fn validate(&self) -> Result<()> {
        if let Some(tz) = &self.timezone {
            tz.parse::<chrono_tz::Tz>().map_err(|_| {
                Error::config("timezone", format!("unknown IANA time zone {}", echo(tz)))
            })?;
        }
        if let Some(url) = &self.emulator_url {
            check_url("emulator_url", url)?;
        }
        if self.max_response_bytes == Some(0) {
            return Err(Error::config("max_response_bytes", "must be at least 1"));
        }
        self.cache
            .validate()
            .map_err(|e| field_error("cache", e.field, e.reason))?;
        if let Some(redis) = &self.redis {
            redis
                .validate()
                .map_err(|e| field_error("redis", e.field, e.reason))?;
        }
        for (name, settings) in &self.capabilities {
            name.parse::<CapabilityId>().map_err(|_| {
                Error::config(
                    format!("capabilities.{}", echo_key(name)),
                    "no capability has this name",
                )
            })?;
            if let Some(hedge) = &settings.hedge {
                hedge
                    .validate()
                    .map_err(|e| Error::config(format!("capabilities.{name}.hedge"), e))?;
            }
        }
        self.provider_settings_for("defaults", None)?;
        for id in self.providers.keys() {
            self.provider_settings(id)?;
        }
        self.model_overrides()?;
        for name in self.deployments.keys() {
            self.deployment(name)?;
        }
        for (name, group) in &self.groups {
            self.validate_group(name, group)?;
        }
        let deployments: Vec<&str> = self.deployments.keys().map(String::as_str).collect();
        let groups: Vec<&str> = self.groups.keys().map(String::as_str).collect();
        for (name, budget) in &self.budgets {
            budget.validate(name, &deployments, &groups)?;
        }
        Ok(())
    }

    /// Deployment `name`'s own keys and its settings (`[defaults]`, then its
    /// provider's table, then its own).
    pub fn deployment(&self, name: &str) -> Result<(DeploymentSpec, ProviderSettings)> {
        let field = format!("deployments.{}", echo_key(name));
        let table = self
            .deployments
            .get(name)
            .ok_or_else(|| Error::config(&field, "no deployment has this name"))?;
        let (own, settings): (Map<String, Value>, Map<String, Value>) = table
            .clone()
            .into_iter()
            .partition(|(key, _)| DEPLOYMENT_KEYS.contains(&key.as_str()));
        let spec: DeploymentSpec = serde_json::from_value(Value::Object(own))
            .map_err(|e| Error::config(&field, bound_message(&e.to_string())))?;
        if spec.model.trim().is_empty() || spec.model.chars().any(char::is_control) {
            return Err(Error::config(
                format!("{field}.model"),
                "must be a model id",
            ));
        }
        if spec.tpm == Some(0) {
            return Err(Error::config(
                format!("{field}.tpm"),
                "must be at least 1 token per minute (leave it out for no limit)",
            ));
        }
        if let Some(price) = &spec.price {
            price
                .validate()
                .map_err(|(f, reason)| field_error(&format!("{field}.price"), f, reason))?;
        }
        let mut own = self
            .providers
            .get(&spec.provider)
            .cloned()
            .unwrap_or_default();
        merge_maps(&mut own, settings);
        let settings = self.provider_settings_for(&field, Some(&own))?;
        Ok((spec, settings))
    }

    /// Checks what a group says of itself and of its deployments' names
    /// (what needs the provider registry is checked when a client is built).
    fn validate_group(&self, name: &str, group: &GroupSettings) -> Result<()> {
        let field = format!("groups.{}", echo_key(name));
        if name.is_empty()
            || name.chars().count() > crate::capability::llm::MAX_MODEL_LEN as usize
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::config(
                field,
                "a group's name is what a call's model gives: no spaces, at most 200 characters",
            ));
        }
        group.capability().map_err(|e| match e {
            Error::Config { field: f, message } => Error::config(format!("{field}.{f}"), message),
            other => other,
        })?;
        if group.deployments.is_empty() {
            return Err(Error::config(
                format!("{field}.deployments"),
                "must name at least one deployment",
            ));
        }
        for (i, deployment) in group.deployments.iter().enumerate() {
            if !self.deployments.contains_key(deployment) {
                return Err(Error::config(
                    format!("{field}.deployments"),
                    format!(
                        "unknown deployment {}; declared: {}",
                        echo(deployment),
                        self.deployments
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if group.deployments[..i].contains(deployment) {
                return Err(Error::config(
                    format!("{field}.deployments"),
                    format!("names {} twice", echo(deployment)),
                ));
            }
        }
        if !group.weights.is_empty() && group.strategy != Strategy::Weighted {
            return Err(Error::config(
                format!("{field}.weights"),
                format!(
                    "only apply with strategy = \"weighted\", not {}",
                    group.strategy.as_str()
                ),
            ));
        }
        if let Some(fallback) = &group.context_fallback {
            self.validate_context_fallback(name, group, fallback)?;
        }
        for (deployment, weight) in &group.weights {
            if !group.deployments.contains(deployment) {
                return Err(Error::config(
                    format!("{field}.weights.{}", echo_key(deployment)),
                    "is not one of the group's deployments",
                ));
            }
            if !(weight.is_finite() && *weight > 0.0) {
                return Err(Error::config(
                    format!("{field}.weights.{}", echo_key(deployment)),
                    "must be a number above 0",
                ));
            }
        }
        Ok(())
    }

    /// Checks group `name`'s `context_fallback`: another group of the same
    /// capability, and no chain of fallbacks that comes back to `name`.
    fn validate_context_fallback(
        &self,
        name: &str,
        group: &GroupSettings,
        fallback: &str,
    ) -> Result<()> {
        let field = format!("groups.{}.context_fallback", echo_key(name));
        let Some(next) = self.groups.get(fallback) else {
            return Err(Error::config(
                field,
                format!(
                    "unknown group {}; declared: {}",
                    echo(fallback),
                    self.groups.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        if fallback == name {
            return Err(Error::config(field, "names the group itself"));
        }
        if next.capability().ok() != group.capability().ok() {
            return Err(Error::config(
                field,
                format!("group {} serves another capability", echo(fallback)),
            ));
        }
        let mut seen = vec![name];
        let mut at = fallback;
        while let Some(next) = self
            .groups
            .get(at)
            .and_then(|g| g.context_fallback.as_deref())
        {
            seen.push(at);
            if seen.contains(&next) {
                return Err(Error::config(
                    field,
                    format!(
                        "context fallbacks form a cycle: {} → {}",
                        seen.iter().map(|g| echo(g)).collect::<Vec<_>>().join(" → "),
                        echo(next)
                    ),
                ));
            }
            at = next;
        }
        Ok(())
    }

    /// The `[models]` entries as (provider, model, what they set), each
    /// key `provider/model`; an error names the entry and its field.
    pub(crate) fn model_overrides(&self) -> Result<Vec<(&str, &str, ModelInfo)>> {
        self.models
            .iter()
            .map(|(key, fields)| {
                let field = format!("models.{}", echo_key(key));
                let (provider, model) = key
                    .split_once('/')
                    .filter(|(p, m)| !p.is_empty() && !m.is_empty())
                    .ok_or_else(|| {
                        Error::config(
                            &field,
                            "must be named provider/model, e.g. openai/gpt-4o-mini",
                        )
                    })?;
                let info = ModelInfo::from_value(Value::Object(fields.clone()))
                    .map_err(|e| Error::config(&field, bound_message(&e)))?;
                Ok((provider, model, info))
            })
            .collect()
    }

    /// The merged settings of provider `id` (`[defaults]` then its table).
    pub fn provider_settings(&self, id: &str) -> Result<ProviderSettings> {
        self.provider_settings_for(
            &format!("providers.{}", echo_key(id)),
            self.providers.get(id),
        )
    }

    fn provider_settings_for(
        &self,
        field: &str,
        own: Option<&Map<String, Value>>,
    ) -> Result<ProviderSettings> {
        let mut merged = Value::Object(self.defaults.clone());
        if let Some(own) = own {
            merge(&mut merged, Value::Object(own.clone()));
        }
        let settings: ProviderSettings = serde_json::from_value(merged)
            .map_err(|e| Error::config(field, bound_message(&e.to_string())))?;
        if let Some(url) = &settings.base_url {
            check_url(&format!("{field}.base_url"), url)?;
        }
        settings
            .retry
            .validate()
            .map_err(|e| field_error(&format!("{field}.retry"), e.field, e.reason))?;
        settings
            .breaker
            .validate()
            .map_err(|e| field_error(&format!("{field}.breaker"), e.field, e.reason))?;
        if let Some(RateLimitSetting::Limit(limit)) = &settings.rate_limit {
            limit
                .validate()
                .map_err(|e| field_error(&format!("{field}.rate_limit"), e.field, e.reason))?;
        }
        Ok(settings)
    }

    /// The calendar time zone of daily quotas.
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.timezone
            .as_deref()
            .and_then(|tz| tz.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    }

    /// The User-Agent sent to every provider.
    pub fn user_agent(&self) -> String {
        let product = self.user_agent.clone().unwrap_or_else(|| {
            format!(
                "polyrelay/{} (+https://github.com/polyrelay/polyrelay)",
                env!("CARGO_PKG_VERSION")
            )
        });
        match &self.contact {
            Some(contact) => format!("{product} {contact}"),
            None => product,
        }
    }
}

fn field_error(prefix: &str, field: &str, reason: impl std::fmt::Display) -> Error {
    Error::config(format!("{prefix}.{field}"), reason.to_string())
}

fn check_url(field: &str, url: &str) -> Result<()> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(Error::config(
            field,
            format!("must be an http(s) URL, got {}", echo(url)),
        )),
    }
}

/// The process environment, skipping variables that are not UTF-8 (which
/// `std::env::vars` would panic on); none of polyrelay's can be.
pub fn env_vars_utf8() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// `weather.current` → `WEATHER_CURRENT`, `open-meteo` → `OPEN_METEO`.
pub fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn parse_bool(value: &str) -> std::result::Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("expected true or false, got {}", echo(other))),
    }
}

fn merge_maps(base: &mut Map<String, Value>, over: Map<String, Value>) {
    let mut merged = Value::Object(std::mem::take(base));
    merge(&mut merged, Value::Object(over));
    if let Value::Object(map) = merged {
        *base = map;
    }
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) if slot.is_object() && value.is_object() => merge(slot, value),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}
