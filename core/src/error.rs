//! Errors as values the caller can act on.
//!
//! Two layers:
//! * [`ProviderFailure`] is one provider's failed attempt, classified by
//!   [`FailureClass`]. The class alone decides whether polyrelay retries the
//!   same provider, falls back to the next one, benches the provider, and how
//!   the circuit breaker counts it. It never leaves the core on its own: it is
//!   recorded in the attempts trail.
//! * [`Error`] is what a call returns when it cannot produce an answer. Every
//!   variant says whose fault it is (the caller's, the configuration's, or the
//!   providers') and carries the trail of attempts where there was one.
//!
//! Messages never contain secrets: providers never see keys (the pipeline adds
//! them to the outgoing request last), and failure messages are built from
//! status codes and provider bodies, never from request URLs or headers.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// How a provider failed. What polyrelay does next about each class (retry,
/// fall over, bench, breaker count) is decided in one place, the policy table
/// of `crate::policy`; the notes below summarise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureClass {
    /// Connect error, timeout, 5xx, 408, connection reset. Retried (with
    /// backoff), counted as a breaker failure, then falls back.
    Transient,
    /// 429 or a provider's own throttling signal. Retried after `Retry-After`
    /// when that is short; otherwise the provider is benched until then.
    RateLimited,
    /// Daily or monthly quota or credit exhausted (402, 403/456/418 from some
    /// providers). Never retried; the provider is benched until `reset_at`.
    QuotaExhausted,
    /// Bad or missing key. Never retried; the provider is benched for a long
    /// time (`auth_bench`), since a key does not fix itself.
    Auth,
    /// The provider rejected the parameters. Not retried; falls back, since
    /// another provider may accept the same request.
    InvalidRequest,
    /// The provider says the thing asked for does not exist. Not retried;
    /// falls back; when every provider says so the call ends in
    /// [`Error::NotFound`], which the cache remembers for `negative_ttl`.
    NotFound,
    /// The reply could not be understood (bad JSON, missing fields, too
    /// large). Counted as a breaker failure; falls back without retrying.
    MalformedResponse,
    /// The provider cannot serve this request (e.g. it needs coordinates and
    /// got a place name). Skipped without counting against it.
    Unsupported,
    /// The prompt does not fit the model's context window. Falls back (a
    /// provider with a larger window may accept it); not retried.
    ContextLengthExceeded,
    /// The provider refused the content (a content-policy or safety
    /// refusal). An answer, not a fault: never retried, and not sent to
    /// another provider unless the capability's `content_filtered_fallback`
    /// says so; the call ends in [`Error::ContentFiltered`].
    ContentFiltered,
}

impl FailureClass {
    /// Every class.
    pub const ALL: &'static [FailureClass] = &[
        Self::Transient,
        Self::RateLimited,
        Self::QuotaExhausted,
        Self::Auth,
        Self::InvalidRequest,
        Self::NotFound,
        Self::MalformedResponse,
        Self::Unsupported,
        Self::ContextLengthExceeded,
        Self::ContentFiltered,
    ];

    /// The stable snake_case name used in trails, stats and bindings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::RateLimited => "rate_limited",
            Self::QuotaExhausted => "quota_exhausted",
            Self::Auth => "auth",
            Self::InvalidRequest => "invalid_request",
            Self::NotFound => "not_found",
            Self::MalformedResponse => "malformed_response",
            Self::Unsupported => "unsupported",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::ContentFiltered => "content_filtered",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One provider's failed attempt, classified.
///
/// ```
/// use polyrelay::{FailureClass, ProviderFailure};
/// let failure = ProviderFailure::new(FailureClass::NotFound, "unknown currency XYZ").status(404);
/// assert_eq!(failure.to_string(), "not_found (HTTP 404): unknown currency XYZ");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderFailure {
    /// What kind of failure this is.
    pub class: FailureClass,
    /// The HTTP status, when a response arrived (200 for errors in bodies).
    pub status: Option<u16>,
    /// A short human description, free of secrets.
    pub message: String,
    /// How long the provider asked us to wait, from `Retry-After` or a body.
    #[serde(with = "crate::duration::serde_secs::option")]
    pub retry_after: Option<Duration>,
    /// When an exhausted quota resets, if the provider said.
    pub reset_at: Option<DateTime<Utc>>,
    /// Whether the request may have reached the provider. A failure before
    /// sending (connect error) is always safe to retry, even for a POST.
    pub request_sent: bool,
}

impl ProviderFailure {
    /// A failure of `class` with a human `message`.
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            class,
            status: None,
            message: message.into(),
            retry_after: None,
            reset_at: None,
            request_sent: true,
        }
    }

    /// A reply that could not be understood.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(FailureClass::MalformedResponse, message)
    }

    /// Names the reply's field the failure is about (`at \`data\`: …`).
    pub fn at_field(mut self, field: &str) -> Self {
        self.message = format!("at `{field}`: {}", self.message);
        self
    }

    /// The request shape is not something this provider can serve.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Unsupported, message)
    }

    /// Sets the HTTP status.
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the provider's requested wait.
    pub fn retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Sets when an exhausted quota resets.
    pub fn reset_at(mut self, reset_at: Option<DateTime<Utc>>) -> Self {
        self.reset_at = reset_at;
        self
    }

    /// Marks the failure as having happened before the request was sent.
    pub fn not_sent(mut self) -> Self {
        self.request_sent = false;
        self
    }
}

impl fmt::Display for ProviderFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.class)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Why a provider was benched: later calls skip it until the bench ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BenchCause {
    /// The provider refused the key (`auth_bench`).
    KeyRefused,
    /// The provider's quota or credit is used up, until it resets.
    QuotaUsedUp,
    /// The provider asked to wait (`Retry-After`, on a 429 or a 503) longer
    /// than `max_retry_after`, or again after the last try.
    RateLimited,
    /// Nothing listened at the provider's address (`unreachable_bench`).
    Unreachable,
}

impl BenchCause {
    /// Whether a last-resort probe may ask a provider benched for this
    /// cause: one that did not listen or asked to wait may be back before
    /// its bench ends; a refused key or a used-up quota will not. (The
    /// engine also leaves alone a provider whose `Retry-After` is longer
    /// than a whole call.)
    pub(crate) fn may_be_probed(self) -> bool {
        matches!(self, Self::RateLimited | Self::Unreachable)
    }
}

impl fmt::Display for BenchCause {
    /// Words for the trail: "benched for 4.2 s (…)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::KeyRefused => "the key was refused",
            Self::QuotaUsedUp => "its quota is used up",
            Self::RateLimited => "asked to wait by the provider",
            Self::Unreachable => "connection refused",
        })
    }
}

/// Why a provider was passed over without sending it a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// The provider needs a key and none is set.
    NoKey,
    /// An earlier call benched the provider; [`Attempt::retry_after`] says
    /// for how long.
    Benched(BenchCause),
    /// Our quota (per day or month) for the provider is used up until its reset.
    Quota,
    /// Our client-side rate limit has no slot now (or its burst is too small).
    RateLimit,
    /// The provider's circuit breaker is open (or half-open and full).
    CircuitOpen,
    /// The call's estimated tokens do not fit the context window of the
    /// model it would run on, or a model with a window no larger already
    /// refused the prompt as too long in this call.
    ContextWindow,
    /// A spending budget counting the request has not enough left for its
    /// estimate (see [`crate::resilience::budget`]).
    Budget,
}

/// What happened to one provider during a call, typed. Serialised (for
/// Python, C and logs) as the stable names of [`AttemptOutcome::as_str`]:
/// `success`, a [`FailureClass`] name, a `skipped_*` name, or `cancelled`.
/// It compares equal to that name: `attempt.outcome == "transient"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The provider answered.
    Answered,
    /// The provider (or its request) failed in this class.
    Failed(FailureClass),
    /// Passed over without a request.
    Skipped(SkipReason),
    /// Its request was cancelled because another provider answered first
    /// (a hedged call).
    Cancelled,
}

impl AttemptOutcome {
    /// The stable snake_case name used in trails, stats and bindings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "success",
            Self::Failed(class) => class.as_str(),
            Self::Skipped(SkipReason::NoKey) => "skipped_no_key",
            Self::Skipped(SkipReason::Benched(_)) => "skipped_benched",
            Self::Skipped(SkipReason::Quota) => "skipped_quota",
            Self::Skipped(SkipReason::RateLimit) => "skipped_rate_limit",
            Self::Skipped(SkipReason::CircuitOpen) => "skipped_circuit_open",
            Self::Skipped(SkipReason::ContextWindow) => "skipped_context_window",
            Self::Skipped(SkipReason::Budget) => "skipped_budget",
            Self::Cancelled => "cancelled",
        }
    }

    /// The outcome a stable name stands for (a bench reads as one caused by
    /// a `Retry-After`, the name alone does not say which).
    ///
    /// ```
    /// # use polyrelay::AttemptOutcome;
    /// let outcome = AttemptOutcome::from_name("skipped_rate_limit").unwrap();
    /// assert_eq!(outcome.as_str(), "skipped_rate_limit");
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        let skips = [
            SkipReason::NoKey,
            SkipReason::Benched(BenchCause::RateLimited),
            SkipReason::Quota,
            SkipReason::RateLimit,
            SkipReason::CircuitOpen,
            SkipReason::ContextWindow,
            SkipReason::Budget,
        ];
        [Self::Answered, Self::Cancelled]
            .into_iter()
            .chain(FailureClass::ALL.iter().copied().map(Self::Failed))
            .chain(skips.into_iter().map(Self::Skipped))
            .find(|o| o.as_str() == name)
    }

    /// The error kind this outcome points to, when it says anything about
    /// why a call failed (an answer, an unsupported request or a cancelled
    /// hedge says nothing). Exhaustive: a new outcome must say.
    pub fn error_kind(self) -> Option<ErrorKind> {
        Some(match self {
            Self::Answered | Self::Cancelled => return None,
            Self::Failed(class) => match class {
                FailureClass::Unsupported => return None,
                FailureClass::Transient
                | FailureClass::MalformedResponse
                | FailureClass::InvalidRequest => ErrorKind::ProviderError,
                FailureClass::ContextLengthExceeded => ErrorKind::ContextLengthExceeded,
                FailureClass::RateLimited => ErrorKind::RateLimited,
                FailureClass::QuotaExhausted => ErrorKind::QuotaExhausted,
                FailureClass::Auth => ErrorKind::Auth,
                FailureClass::NotFound => ErrorKind::NotFound,
                FailureClass::ContentFiltered => ErrorKind::ContentFiltered,
            },
            Self::Skipped(reason) => match reason {
                SkipReason::NoKey => ErrorKind::MissingKey,
                SkipReason::Quota
                | SkipReason::Budget
                | SkipReason::Benched(BenchCause::QuotaUsedUp) => ErrorKind::QuotaExhausted,
                SkipReason::RateLimit | SkipReason::Benched(BenchCause::RateLimited) => {
                    ErrorKind::RateLimited
                }
                SkipReason::CircuitOpen => ErrorKind::CircuitOpen,
                SkipReason::ContextWindow => ErrorKind::ContextLengthExceeded,
                SkipReason::Benched(BenchCause::KeyRefused) => ErrorKind::Auth,
                SkipReason::Benched(BenchCause::Unreachable) => ErrorKind::ProviderError,
            },
        })
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AttemptOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for AttemptOutcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for AttemptOutcome {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// What happened to one provider during a call: one entry of the trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// Provider id, e.g. `open-meteo`.
    pub provider: &'static str,
    /// The deployment of the provider that was asked, when the call named a
    /// model group (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<&'static str>,
    /// What happened; serialised as `success`, a [`FailureClass`] name, a
    /// `skipped_*` name or `cancelled`.
    pub outcome: AttemptOutcome,
    /// HTTP status of the last response, if any.
    pub status: Option<u16>,
    /// How many HTTP attempts were made on this provider (0 when skipped).
    pub tries: u32,
    /// Time spent on this provider, retries and backoff included.
    #[serde(with = "crate::duration::serde_secs")]
    pub elapsed: Duration,
    /// Time spent in HTTP exchanges with this provider (retries included,
    /// backoff and guards not): what the metrics' overhead subtracts from a
    /// call's time. Not serialised.
    #[serde(skip)]
    pub upstream: Duration,
    /// A sentence a person can act on, e.g.
    /// "skipped: OPENWEATHER_API_KEY is not set".
    pub reason: Cow<'static, str>,
    /// When the provider may be tried again, if it is benched or throttled.
    #[serde(with = "crate::duration::serde_secs::option")]
    pub retry_after: Option<Duration>,
    /// Whether the provider was asked as a hedge (the one asked before it
    /// was slow), see [`crate::resilience::hedge`].
    pub hedged: bool,
    /// What its answer cost in US dollars: set on the entry of the
    /// provider that answered an LLM call whose model and usage are priced
    /// (see [`crate::capability::llm::models`]), absent from the JSON
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl Attempt {
    /// Whether this attempt produced the answer.
    pub fn succeeded(&self) -> bool {
        self.outcome == AttemptOutcome::Answered
    }

    /// Whether the provider was skipped without an HTTP request.
    pub fn skipped(&self) -> bool {
        matches!(self.outcome, AttemptOutcome::Skipped(_))
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.deployment {
            Some(deployment) => write!(f, "{} ({deployment}): {}", self.provider, self.reason),
            None => write!(f, "{}: {}", self.provider, self.reason),
        }
    }
}

/// What kind of failure an [`Error`] is, for mapping to exceptions and C
/// status codes. For [`Error::AllProvidersFailed`] it names the common cause
/// when every provider failed the same way (all rate limited, all missing a
/// key, …), so a caller can react to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad configuration (file, environment or builder).
    Config,
    /// The caller's request is invalid; nothing was sent.
    InvalidRequest,
    /// Every provider that answered said the thing does not exist.
    NotFound,
    /// The total deadline passed before any provider answered.
    Timeout,
    /// Every provider needs a key and none is set.
    MissingKey,
    /// Every provider is rate limited (by itself or by our client-side limit).
    RateLimited,
    /// Every provider's quota is used up.
    QuotaExhausted,
    /// Every provider's circuit breaker is open.
    CircuitOpen,
    /// A provider refused the content (content policy, safety filter).
    ContentFiltered,
    /// Every provider refused its key.
    Auth,
    /// Every provider failed with an error of its own (5xx, bad reply, …).
    ProviderError,
    /// Providers failed for different reasons; see the attempts.
    AllProvidersFailed,
    /// The API was used in a way that cannot work (e.g. a blocking call
    /// from inside a callback).
    Usage,
    /// A stream failed after its first token; the error carries the
    /// partial text.
    StreamInterrupted,
    /// The prompt fits no model the call could run on: every one with a
    /// known context window is too small for the estimate, or refused the
    /// prompt as too long. Shorten the prompt (or `max_tokens`), or add a
    /// model with a larger window.
    ContextLengthExceeded,
    /// An assistant reached one of its limits (steps, tokens, cost) before
    /// the model answered; the error carries the conversation so far.
    LimitReached,
}

impl ErrorKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::InvalidRequest => "invalid_request",
            Self::NotFound => "not_found",
            Self::Timeout => "timeout",
            Self::MissingKey => "missing_key",
            Self::RateLimited => "rate_limited",
            Self::QuotaExhausted => "quota_exhausted",
            Self::CircuitOpen => "circuit_open",
            Self::ContentFiltered => "content_filtered",
            Self::Auth => "auth",
            Self::ProviderError => "provider_error",
            Self::AllProvidersFailed => "all_providers_failed",
            Self::Usage => "usage",
            Self::StreamInterrupted => "stream_interrupted",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::LimitReached => "limit_reached",
        }
    }
}

/// Why a call produced no answer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is wrong; `field` names it (`providers.open-meteo.base_url`).
    #[error("configuration error in `{field}`: {message}")]
    Config {
        /// Dotted path of the offending field or variable.
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The request is invalid; nothing was sent to any provider.
    #[error("invalid request: `{field}` {expected}")]
    InvalidRequest {
        /// The parameter at fault (or the capability name).
        field: String,
        /// What was expected instead.
        expected: String,
    },
    /// Every provider that was asked said the thing does not exist.
    #[error("{capability}: not found ({})", summary(.attempts))]
    NotFound {
        /// The capability called.
        capability: &'static str,
        /// What each provider did.
        attempts: Vec<Attempt>,
    },
    /// No provider could answer; the trail says why for each.
    #[error("{capability}: no provider could answer. {}{}", summary(.attempts), advice(.attempts, .retry_after))]
    AllProvidersFailed {
        /// The capability called.
        capability: &'static str,
        /// What each provider did.
        attempts: Vec<Attempt>,
        /// The earliest time a throttled or benched provider may answer again.
        retry_after: Option<Duration>,
        /// When used-up quotas stopped every provider: the instant the
        /// first of them resets (UTC, on the client's clock).
        reset_at: Option<DateTime<Utc>>,
    },
    /// A provider refused the content (content policy or safety filter);
    /// the request was not sent to another provider unless the capability's
    /// `content_filtered_fallback` is on.
    #[error("{capability}: {provider} refused the content: {reason}")]
    ContentFiltered {
        /// The capability called.
        capability: &'static str,
        /// The provider that refused.
        provider: &'static str,
        /// The provider's reason, as it gave it (free of secrets).
        reason: String,
        /// What each provider did.
        attempts: Vec<Attempt>,
    },
    /// The API was used in a way that cannot work.
    #[error("{message}")]
    Usage {
        /// What was wrong and what to do instead.
        message: String,
    },
    /// A stream failed after its first token and was not continued (the
    /// capability's `mid_stream` is `error`, or no provider could continue
    /// it). What was received is kept in `partial`.
    #[error("{capability}: the stream from {provider} was interrupted after {} characters: {reason}", .partial.chars().count())]
    StreamInterrupted {
        /// The capability called.
        capability: &'static str,
        /// The provider whose stream failed.
        provider: &'static str,
        /// The text received before the failure (every provider's part).
        partial: String,
        /// Why the stream failed (free of secrets).
        reason: String,
        /// What each provider did, the interrupted one included.
        attempts: Vec<Attempt>,
    },
    /// The prompt fits no model the call could run on (see
    /// [`ErrorKind::ContextLengthExceeded`]): every provider or deployment
    /// was passed over for its context window or refused the prompt as too
    /// long, and no `context_fallback` group could take it.
    #[error("{capability}: the prompt (about {estimated_tokens} tokens) fits no model's context window{}. {}", largest(.largest_window), summary(.attempts))]
    ContextLengthExceeded {
        /// The capability called.
        capability: &'static str,
        /// The call's estimated tokens: its prompt's, plus `max_tokens`
        /// when set (see [`crate::capability::llm::models::estimate_chat_tokens`]).
        estimated_tokens: u64,
        /// The largest context window among the models passed over or
        /// that refused the prompt, when any was known.
        largest_window: Option<u64>,
        /// What each provider did.
        attempts: Vec<Attempt>,
    },
    /// An [`Assistant`](crate::assistant::Assistant) reached one of its
    /// [`Limits`](crate::assistant::Limits) before the model answered in
    /// text. The conversation so far (the last tool results included) can
    /// be read back with
    /// [`Conversation::from_json`](crate::assistant::Conversation::from_json)
    /// and continued with another question. Carried as JSON so that errors
    /// stay below the assistant in the module graph.
    #[error("assistant: stopped by its {limit} limit after {spent}, before the model answered")]
    LimitReached {
        /// The limit reached: `max_steps`, `max_tokens` or `max_cost_usd`.
        limit: &'static str,
        /// What had been spent of it, e.g. `3 LLM turns`.
        spent: String,
        /// The conversation so far, as
        /// [`Conversation::to_json`](crate::assistant::Conversation::to_json) writes it.
        conversation: Box<serde_json::Value>,
        /// Every LLM turn taken, with its tool calls: a list of
        /// [`Step`](crate::assistant::Step)s as JSON.
        steps: Box<serde_json::Value>,
    },
    /// The total deadline passed.
    #[error("{capability}: no answer within the total deadline of {:.3} s. {}", .deadline.as_secs_f64(), summary(.attempts))]
    Timeout {
        /// The capability called.
        capability: &'static str,
        /// The deadline that passed (`total_timeout`).
        deadline: Duration,
        /// What each provider did before the deadline.
        attempts: Vec<Attempt>,
    },
}

fn summary(attempts: &[Attempt]) -> String {
    if attempts.is_empty() {
        return "No provider was tried.".to_string();
    }
    let parts: Vec<String> = attempts.iter().map(ToString::to_string).collect();
    format!("{}.", parts.join("; "))
}

fn largest(window: &Option<u64>) -> String {
    window.map_or_else(String::new, |w| format!(" (the largest tried holds {w})"))
}

fn advice(attempts: &[Attempt], retry_after: &Option<Duration>) -> String {
    let mut hints = Vec::new();
    let missing_keys: Vec<&str> = attempts
        .iter()
        .filter(|a| a.outcome == AttemptOutcome::Skipped(SkipReason::NoKey))
        .map(|a| a.provider)
        .collect();
    if !missing_keys.is_empty() {
        hints.push(format!(
            "Setting a key for {} would add providers to this chain.",
            missing_keys.join(", ")
        ));
    }
    if let Some(wait) = retry_after {
        hints.push(format!(
            "A provider may answer again in {:.1} s.",
            wait.as_secs_f64()
        ));
    }
    if hints.is_empty() {
        String::new()
    } else {
        format!(" {}", hints.join(" "))
    }
}

impl Error {
    /// A configuration error naming `field`.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An invalid-request error naming `field` and what was `expected`.
    pub fn invalid(field: impl Into<String>, expected: impl Into<String>) -> Self {
        Self::InvalidRequest {
            field: field.into(),
            expected: expected.into(),
        }
    }

    /// What kind of failure this is; see [`ErrorKind`].
    ///
    /// ```
    /// # use polyrelay::{Error, ErrorKind};
    /// assert_eq!(Error::invalid("lat", "must be a number").kind(), ErrorKind::InvalidRequest);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config { .. } => ErrorKind::Config,
            Self::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Usage { .. } => ErrorKind::Usage,
            Self::ContentFiltered { .. } => ErrorKind::ContentFiltered,
            Self::StreamInterrupted { .. } => ErrorKind::StreamInterrupted,
            Self::ContextLengthExceeded { .. } => ErrorKind::ContextLengthExceeded,
            Self::LimitReached { .. } => ErrorKind::LimitReached,
            Self::AllProvidersFailed { attempts, .. } => {
                // Outcomes that say nothing (unsupported, cancelled) are
                // left out.
                let mut kinds = attempts.iter().filter_map(|a| a.outcome.error_kind());
                match kinds.next() {
                    Some(first) if kinds.all(|k| k == first) => first,
                    _ => ErrorKind::AllProvidersFailed,
                }
            }
        }
    }

    /// The HTTP status and provider of the last provider that answered with
    /// an error, if any.
    pub fn provider_status(&self) -> Option<(&'static str, u16)> {
        self.attempts()
            .iter()
            .rev()
            .find_map(|a| a.status.map(|s| (a.provider, s)))
    }

    /// The attempts trail, when providers were involved.
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            Self::NotFound { attempts, .. }
            | Self::AllProvidersFailed { attempts, .. }
            | Self::ContentFiltered { attempts, .. }
            | Self::StreamInterrupted { attempts, .. }
            | Self::ContextLengthExceeded { attempts, .. }
            | Self::Timeout { attempts, .. } => attempts,
            _ => &[],
        }
    }

    /// This error with its trail replaced by `attempts` (an error without
    /// a trail is returned as is).
    pub(crate) fn with_attempts(mut self, attempts: Vec<Attempt>) -> Self {
        match &mut self {
            Self::NotFound { attempts: own, .. }
            | Self::AllProvidersFailed { attempts: own, .. }
            | Self::ContentFiltered { attempts: own, .. }
            | Self::StreamInterrupted { attempts: own, .. }
            | Self::ContextLengthExceeded { attempts: own, .. }
            | Self::Timeout { attempts: own, .. } => *own = attempts,
            _ => {}
        }
        self
    }

    /// The error of a call that no provider answered, at wall time `now`:
    /// the earliest wait any provider asked for, and, when used-up quotas
    /// stopped every provider, the instant the first resets.
    pub(crate) fn all_failed(
        capability: &'static str,
        attempts: Vec<Attempt>,
        now: DateTime<Utc>,
    ) -> Self {
        let retry_after = attempts.iter().filter_map(|a| a.retry_after).min();
        let mut error = Self::AllProvidersFailed {
            capability,
            attempts,
            retry_after,
            reset_at: None,
        };
        if error.kind() == ErrorKind::QuotaExhausted {
            if let Self::AllProvidersFailed { reset_at, .. } = &mut error {
                *reset_at = retry_after
                    .and_then(|wait| chrono::Duration::from_std(wait).ok())
                    .and_then(|wait| now.checked_add_signed(wait));
            }
        }
        error
    }

    /// How long to wait before a retry can succeed, when known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::AllProvidersFailed { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// When every provider's quota is used up ([`ErrorKind::QuotaExhausted`]):
    /// the instant the first of them resets, in UTC on the client's clock
    /// (the call's failure time plus [`Error::retry_after`]).
    pub fn reset_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::AllProvidersFailed { reset_at, .. } => *reset_at,
            _ => None,
        }
    }

    /// Whether calling again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::AllProvidersFailed { .. } | Self::Timeout { .. } | Self::StreamInterrupted { .. }
        )
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(provider: &'static str, outcome: &'static str) -> Attempt {
        let outcome = AttemptOutcome::from_name(outcome)
            .unwrap_or_else(|| panic!("no outcome named {outcome}"));
        Attempt {
            provider,
            deployment: None,
            outcome,
            status: None,
            tries: 0,
            elapsed: Duration::ZERO,
            upstream: std::time::Duration::ZERO,
            reason: Cow::Borrowed("test"),
            retry_after: None,
            hedged: false,
            cost_usd: None,
        }
    }

    fn failed(outcomes: &[&'static str]) -> Error {
        Error::all_failed(
            "weather.current",
            outcomes.iter().map(|o| attempt("p", o)).collect(),
            DateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn a_common_cause_names_the_kind_and_mixed_causes_do_not() {
        assert_eq!(
            failed(&["skipped_no_key", "skipped_no_key"]).kind(),
            ErrorKind::MissingKey
        );
        assert_eq!(
            failed(&["rate_limited", "skipped_rate_limit"]).kind(),
            ErrorKind::RateLimited
        );
        assert_eq!(
            failed(&["skipped_quota", "unsupported"]).kind(),
            ErrorKind::QuotaExhausted
        );
        assert_eq!(
            failed(&["skipped_circuit_open"]).kind(),
            ErrorKind::CircuitOpen
        );
        assert_eq!(failed(&["auth"]).kind(), ErrorKind::Auth);
        assert_eq!(
            failed(&["transient", "malformed_response"]).kind(),
            ErrorKind::ProviderError
        );
        assert_eq!(
            failed(&["transient", "skipped_no_key"]).kind(),
            ErrorKind::AllProvidersFailed
        );
        assert_eq!(failed(&[]).kind(), ErrorKind::AllProvidersFailed);
    }

    #[test]
    fn outcomes_keep_their_stable_names() {
        let names: Vec<&str> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "transient",
                "rate_limited",
                "quota_exhausted",
                "auth",
                "invalid_request",
                "not_found",
                "malformed_response",
                "unsupported",
                "context_length_exceeded",
                "content_filtered"
            ]
        );
        for class in FailureClass::ALL {
            let outcome = AttemptOutcome::Failed(*class);
            assert_eq!(AttemptOutcome::from_name(outcome.as_str()), Some(outcome));
        }
        for name in [
            "success",
            "cancelled",
            "skipped_no_key",
            "skipped_benched",
            "skipped_quota",
            "skipped_rate_limit",
            "skipped_circuit_open",
            "skipped_context_window",
        ] {
            let outcome = AttemptOutcome::from_name(name).unwrap();
            assert_eq!(outcome.as_str(), name);
            assert_eq!(serde_json::to_value(outcome).unwrap(), name);
        }
    }

    #[test]
    fn a_provider_benched_by_its_retry_after_makes_the_call_rate_limited() {
        let mut benched = attempt("p", "skipped_no_key");
        benched.outcome = AttemptOutcome::Skipped(SkipReason::Benched(BenchCause::RateLimited));
        benched.retry_after = Some(Duration::from_secs(3600));
        let error = Error::all_failed(
            "weather.current",
            vec![benched.clone(), attempt("q", "skipped_rate_limit")],
            DateTime::UNIX_EPOCH,
        );
        assert_eq!(error.kind(), ErrorKind::RateLimited);
        assert_eq!(error.retry_after(), Some(Duration::from_secs(3600)));
        assert_eq!(error.reset_at(), None, "a rate limit is not a quota reset");
        let kinds = [
            (BenchCause::KeyRefused, ErrorKind::Auth),
            (BenchCause::QuotaUsedUp, ErrorKind::QuotaExhausted),
            (BenchCause::Unreachable, ErrorKind::ProviderError),
        ];
        for (cause, kind) in kinds {
            benched.outcome = AttemptOutcome::Skipped(SkipReason::Benched(cause));
            assert_eq!(
                AttemptOutcome::Skipped(SkipReason::Benched(cause)).error_kind(),
                Some(kind)
            );
            assert_eq!(benched.outcome.as_str(), "skipped_benched");
        }
    }

    #[test]
    fn the_message_suggests_keys_and_waits() {
        let mut error = failed(&["skipped_no_key"]);
        if let Error::AllProvidersFailed { retry_after, .. } = &mut error {
            *retry_after = Some(Duration::from_millis(4200));
        }
        let text = error.to_string();
        assert!(text.contains("Setting a key for p"), "{text}");
        assert!(text.contains("4.2 s"), "{text}");
    }

    #[test]
    fn used_up_quotas_reset_when_the_first_one_does() {
        let now: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
        let mut ours = attempt("p", "skipped_quota");
        ours.retry_after = Some(Duration::from_secs(23 * 3600));
        let mut theirs = attempt("q", "skipped_benched");
        theirs.outcome = AttemptOutcome::Skipped(SkipReason::Benched(BenchCause::QuotaUsedUp));
        theirs.retry_after = Some(Duration::from_secs(3600));
        let error = Error::all_failed("weather.current", vec![ours, theirs], now);
        assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
        assert_eq!(
            error.reset_at(),
            Some("2025-01-01T01:00:00Z".parse().unwrap())
        );
    }
}
