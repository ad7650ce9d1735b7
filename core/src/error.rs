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

use crate::resilience::breaker::Outcome;

/// How a provider failed. See the policy table on each variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
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
}

impl FailureClass {
    /// Whether the same provider may be tried again within this call.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Transient | Self::RateLimited)
    }

    /// How the circuit breaker counts this failure: only signs of an
    /// unhealthy provider count; caller-shaped errors are ignored.
    pub fn breaker_outcome(self) -> Outcome {
        match self {
            Self::Transient | Self::RateLimited | Self::MalformedResponse => Outcome::Failure,
            _ => Outcome::Ignored,
        }
    }

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
/// use polyrelay::error::{FailureClass, ProviderFailure};
/// let failure = ProviderFailure::new(FailureClass::NotFound, "unknown currency XYZ").status(404);
/// assert!(!failure.class.is_retryable());
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
    #[serde(with = "crate::config::duration_serde::option")]
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

/// What happened to one provider during a call: one entry of the trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// Provider id, e.g. `open-meteo`.
    pub provider: &'static str,
    /// Outcome class: `success`, a [`FailureClass`] name, or a `skipped_*` name.
    pub outcome: &'static str,
    /// HTTP status of the last response, if any.
    pub status: Option<u16>,
    /// How many HTTP attempts were made on this provider (0 when skipped).
    pub tries: u32,
    /// Time spent on this provider, retries and backoff included.
    #[serde(with = "crate::config::duration_serde")]
    pub elapsed: Duration,
    /// A sentence a person can act on, e.g.
    /// "skipped: OPENWEATHER_API_KEY is not set".
    pub reason: Cow<'static, str>,
    /// When the provider may be tried again, if it is benched or throttled.
    #[serde(with = "crate::config::duration_serde::option")]
    pub retry_after: Option<Duration>,
}

impl Attempt {
    /// Whether this attempt produced the answer.
    pub fn succeeded(&self) -> bool {
        self.outcome == "success"
    }

    /// Whether the provider was skipped without an HTTP request.
    pub fn skipped(&self) -> bool {
        self.outcome.starts_with("skipped")
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.provider, self.reason)
    }
}

/// What kind of failure an [`Error`] is, for mapping to exceptions and C
/// status codes. For [`Error::AllProvidersFailed`] it names the common cause
/// when every provider failed the same way (all rate limited, all missing a
/// key, …), so a caller can react to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// Every provider refused its key.
    Auth,
    /// Every provider failed with an error of its own (5xx, bad reply, …).
    ProviderError,
    /// Providers failed for different reasons; see the attempts.
    AllProvidersFailed,
    /// The API was used in a way that cannot work (e.g. a blocking call
    /// from inside a callback).
    Usage,
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
            Self::Auth => "auth",
            Self::ProviderError => "provider_error",
            Self::AllProvidersFailed => "all_providers_failed",
            Self::Usage => "usage",
        }
    }

    /// The kind a single attempt's outcome points to.
    fn of_outcome(outcome: &str) -> Self {
        match outcome {
            "skipped_no_key" => Self::MissingKey,
            "rate_limited" | "skipped_rate_limit" => Self::RateLimited,
            "quota_exhausted" | "skipped_quota" => Self::QuotaExhausted,
            "skipped_circuit_open" => Self::CircuitOpen,
            "auth" => Self::Auth,
            "transient" | "malformed_response" | "invalid_request" | "context_length_exceeded" => {
                Self::ProviderError
            }
            _ => Self::AllProvidersFailed,
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
    },
    /// The API was used in a way that cannot work.
    #[error("{message}")]
    Usage {
        /// What was wrong and what to do instead.
        message: String,
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

fn advice(attempts: &[Attempt], retry_after: &Option<Duration>) -> String {
    let mut hints = Vec::new();
    let missing_keys: Vec<&str> = attempts
        .iter()
        .filter(|a| a.outcome == "skipped_no_key")
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
            Self::AllProvidersFailed { attempts, .. } => {
                // Unsupported providers say nothing about the others.
                let mut kinds = attempts
                    .iter()
                    .filter(|a| a.outcome != "unsupported")
                    .map(|a| ErrorKind::of_outcome(a.outcome));
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
            | Self::Timeout { attempts, .. } => attempts,
            _ => &[],
        }
    }

    /// How long to wait before a retry can succeed, when known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::AllProvidersFailed { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether calling again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::AllProvidersFailed { .. } | Self::Timeout { .. })
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(provider: &'static str, outcome: &'static str) -> Attempt {
        Attempt {
            provider,
            outcome,
            status: None,
            tries: 0,
            elapsed: Duration::ZERO,
            reason: Cow::Borrowed("test"),
            retry_after: None,
        }
    }

    fn failed(outcomes: &[&'static str]) -> Error {
        Error::AllProvidersFailed {
            capability: "weather.current",
            attempts: outcomes.iter().map(|o| attempt("p", o)).collect(),
            retry_after: None,
        }
    }

    #[test]
    fn a_common_cause_names_the_kind_and_mixed_causes_do_not() {
        assert_eq!(failed(&["skipped_no_key", "skipped_no_key"]).kind(), ErrorKind::MissingKey);
        assert_eq!(failed(&["rate_limited", "skipped_rate_limit"]).kind(), ErrorKind::RateLimited);
        assert_eq!(failed(&["skipped_quota", "unsupported"]).kind(), ErrorKind::QuotaExhausted);
        assert_eq!(failed(&["skipped_circuit_open"]).kind(), ErrorKind::CircuitOpen);
        assert_eq!(failed(&["auth"]).kind(), ErrorKind::Auth);
        assert_eq!(failed(&["transient", "malformed_response"]).kind(), ErrorKind::ProviderError);
        assert_eq!(failed(&["transient", "skipped_no_key"]).kind(), ErrorKind::AllProvidersFailed);
        assert_eq!(failed(&[]).kind(), ErrorKind::AllProvidersFailed);
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
}
