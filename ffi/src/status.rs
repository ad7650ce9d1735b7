//! Status codes: the one place where an error kind becomes a number.

use std::ffi::{c_char, CStr};

use polyrelay::auth::AuthError;
use polyrelay::ErrorKind;

/// What a call returned. `PR_OK` is 0; every other value but
/// `PR_STREAM_DONE` names a kind of failure. The numbers are fixed and never
/// reused: 1 to 99 mirror the core's error kinds (1 to 19 those of calls, 20
/// to 39 those of tokens), 100 to 199 are failures of the C interface itself,
/// 200 and up are outcomes that are not failures.
///
/// Thread safety: a plain value.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum pr_status {
    /// Success.
    PR_OK = 0,
    /// Bad configuration (text, file or environment); the message names the field.
    PR_ERR_CONFIG = 1,
    /// The request is invalid (unknown capability, bad parameter); nothing was sent.
    PR_ERR_INVALID_REQUEST = 2,
    /// Every provider that answered said the thing does not exist.
    PR_ERR_NOT_FOUND = 3,
    /// The total deadline passed before any provider answered.
    PR_ERR_TIMEOUT = 4,
    /// Every provider needs a key and none is set.
    PR_ERR_MISSING_KEY = 5,
    /// Every provider is rate limited; see `pr_error_retry_after`.
    PR_ERR_RATE_LIMITED = 6,
    /// Every provider's daily quota is used up.
    PR_ERR_QUOTA_EXHAUSTED = 7,
    /// Every provider's circuit breaker is open.
    PR_ERR_CIRCUIT_OPEN = 8,
    /// Every provider refused its key.
    PR_ERR_AUTH = 9,
    /// Every provider failed with an error of its own (5xx, bad reply, ...).
    PR_ERR_PROVIDER_ERROR = 10,
    /// Providers failed for different reasons; see `pr_error_attempts_json`.
    PR_ERR_ALL_PROVIDERS_FAILED = 11,
    /// The API was used in a way that cannot work, e.g. a blocking call from
    /// inside a callback (which would otherwise deadlock).
    PR_ERR_USAGE = 12,
    /// A provider refused the content (content policy or safety filter);
    /// the message carries its reason.
    PR_ERR_CONTENT_FILTERED = 13,
    /// A stream failed after its first chunk (cut, stalled, or an error
    /// event) and no provider continued it; `pr_error_partial_text` holds
    /// the text received before.
    PR_ERR_STREAM_INTERRUPTED = 14,
    /// The prompt fits no model the call could run on: each was passed
    /// over for its context window or refused the prompt as too long;
    /// shorten the prompt (or `max_tokens`).
    PR_ERR_CONTEXT_LENGTH_EXCEEDED = 15,
    /// An assistant reached one of its limits (steps, tokens, cost) before
    /// the model answered.
    PR_ERR_LIMIT_REACHED = 16,
    /// Not a token at all: wrong number of segments, bad base64url, a header
    /// that is not a JSON object, or too long.
    PR_ERR_AUTH_MALFORMED = 20,
    /// The token's `exp` is past (beyond the leeway).
    PR_ERR_AUTH_EXPIRED = 21,
    /// The token's `nbf` or `iat` is in the future (beyond the leeway).
    PR_ERR_AUTH_NOT_YET_VALID = 22,
    /// The token's signature does not verify with the selected key.
    PR_ERR_AUTH_BAD_SIGNATURE = 23,
    /// The token's `alg` is missing, unknown (`none` included) or not the
    /// algorithm pinned to its key.
    PR_ERR_AUTH_BAD_ALGORITHM = 24,
    /// A claim (or the `typ`/`crit` header) is missing, mistyped or wrong;
    /// `pr_error_claim` names it.
    PR_ERR_AUTH_BAD_CLAIM = 25,
    /// No key has the token's `kid`.
    PR_ERR_AUTH_UNKNOWN_KEY = 26,
    /// The token or its login was revoked.
    PR_ERR_AUTH_REVOKED = 27,
    /// A refresh token was presented a second time; its whole login is now
    /// revoked.
    PR_ERR_AUTH_REUSED = 28,
    /// The token store could not answer and auth fails closed.
    PR_ERR_AUTH_UNAVAILABLE = 29,
    /// A required pointer argument was NULL; the message names it.
    PR_ERR_NULL_ARGUMENT = 100,
    /// A string argument was not valid UTF-8; the message names it.
    PR_ERR_INVALID_UTF8 = 101,
    /// A JSON argument did not parse; the message says where.
    PR_ERR_INVALID_JSON = 102,
    /// polyrelay panicked (a bug); the call was abandoned safely.
    PR_ERR_PANIC = 103,
    /// The call was cancelled with `pr_call_cancel`.
    PR_ERR_CANCELLED = 104,
    /// The client was shut down (`pr_client_shutdown` or `pr_client_free`).
    PR_ERR_SHUTDOWN = 105,
    /// Not a failure: `pr_stream_next` has no more chunks, the stream
    /// completed and `pr_stream_result` holds its answer.
    PR_STREAM_DONE = 200,
}

impl pr_status {
    /// Every status, in numeric order.
    fn all() -> [Self; 34] {
        use pr_status::*;
        [
            PR_OK,
            PR_ERR_CONFIG,
            PR_ERR_INVALID_REQUEST,
            PR_ERR_NOT_FOUND,
            PR_ERR_TIMEOUT,
            PR_ERR_MISSING_KEY,
            PR_ERR_RATE_LIMITED,
            PR_ERR_QUOTA_EXHAUSTED,
            PR_ERR_CIRCUIT_OPEN,
            PR_ERR_AUTH,
            PR_ERR_PROVIDER_ERROR,
            PR_ERR_ALL_PROVIDERS_FAILED,
            PR_ERR_USAGE,
            PR_ERR_CONTENT_FILTERED,
            PR_ERR_STREAM_INTERRUPTED,
            PR_ERR_CONTEXT_LENGTH_EXCEEDED,
            PR_ERR_LIMIT_REACHED,
            PR_ERR_AUTH_MALFORMED,
            PR_ERR_AUTH_EXPIRED,
            PR_ERR_AUTH_NOT_YET_VALID,
            PR_ERR_AUTH_BAD_SIGNATURE,
            PR_ERR_AUTH_BAD_ALGORITHM,
            PR_ERR_AUTH_BAD_CLAIM,
            PR_ERR_AUTH_UNKNOWN_KEY,
            PR_ERR_AUTH_REVOKED,
            PR_ERR_AUTH_REUSED,
            PR_ERR_AUTH_UNAVAILABLE,
            PR_ERR_NULL_ARGUMENT,
            PR_ERR_INVALID_UTF8,
            PR_ERR_INVALID_JSON,
            PR_ERR_PANIC,
            PR_ERR_CANCELLED,
            PR_ERR_SHUTDOWN,
            PR_STREAM_DONE,
        ]
    }

    /// The stable snake_case name (`rate_limited`); the core's kind name for
    /// the kinds that mirror one.
    pub(crate) fn name(self) -> &'static CStr {
        use pr_status::*;
        match self {
            PR_OK => c"ok",
            PR_ERR_CONFIG => c"config",
            PR_ERR_INVALID_REQUEST => c"invalid_request",
            PR_ERR_NOT_FOUND => c"not_found",
            PR_ERR_TIMEOUT => c"timeout",
            PR_ERR_MISSING_KEY => c"missing_key",
            PR_ERR_RATE_LIMITED => c"rate_limited",
            PR_ERR_QUOTA_EXHAUSTED => c"quota_exhausted",
            PR_ERR_CIRCUIT_OPEN => c"circuit_open",
            PR_ERR_AUTH => c"auth",
            PR_ERR_PROVIDER_ERROR => c"provider_error",
            PR_ERR_ALL_PROVIDERS_FAILED => c"all_providers_failed",
            PR_ERR_USAGE => c"usage",
            PR_ERR_CONTENT_FILTERED => c"content_filtered",
            PR_ERR_STREAM_INTERRUPTED => c"stream_interrupted",
            PR_ERR_CONTEXT_LENGTH_EXCEEDED => c"context_length_exceeded",
            PR_ERR_LIMIT_REACHED => c"limit_reached",
            PR_ERR_AUTH_MALFORMED => c"malformed",
            PR_ERR_AUTH_EXPIRED => c"expired",
            PR_ERR_AUTH_NOT_YET_VALID => c"not_yet_valid",
            PR_ERR_AUTH_BAD_SIGNATURE => c"bad_signature",
            PR_ERR_AUTH_BAD_ALGORITHM => c"bad_algorithm",
            PR_ERR_AUTH_BAD_CLAIM => c"bad_claim",
            PR_ERR_AUTH_UNKNOWN_KEY => c"unknown_key",
            PR_ERR_AUTH_REVOKED => c"revoked",
            PR_ERR_AUTH_REUSED => c"reused",
            PR_ERR_AUTH_UNAVAILABLE => c"unavailable",
            PR_ERR_NULL_ARGUMENT => c"null_argument",
            PR_ERR_INVALID_UTF8 => c"invalid_utf8",
            PR_ERR_INVALID_JSON => c"invalid_json",
            PR_ERR_PANIC => c"panic",
            PR_ERR_CANCELLED => c"cancelled",
            PR_ERR_SHUTDOWN => c"shutdown",
            PR_STREAM_DONE => c"stream_done",
        }
    }
}

impl From<ErrorKind> for pr_status {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Config => Self::PR_ERR_CONFIG,
            ErrorKind::InvalidRequest => Self::PR_ERR_INVALID_REQUEST,
            ErrorKind::NotFound => Self::PR_ERR_NOT_FOUND,
            ErrorKind::Timeout => Self::PR_ERR_TIMEOUT,
            ErrorKind::MissingKey => Self::PR_ERR_MISSING_KEY,
            ErrorKind::RateLimited => Self::PR_ERR_RATE_LIMITED,
            ErrorKind::QuotaExhausted => Self::PR_ERR_QUOTA_EXHAUSTED,
            ErrorKind::CircuitOpen => Self::PR_ERR_CIRCUIT_OPEN,
            ErrorKind::Auth => Self::PR_ERR_AUTH,
            ErrorKind::ProviderError => Self::PR_ERR_PROVIDER_ERROR,
            ErrorKind::AllProvidersFailed => Self::PR_ERR_ALL_PROVIDERS_FAILED,
            ErrorKind::Usage => Self::PR_ERR_USAGE,
            ErrorKind::ContentFiltered => Self::PR_ERR_CONTENT_FILTERED,
            ErrorKind::StreamInterrupted => Self::PR_ERR_STREAM_INTERRUPTED,
            ErrorKind::ContextLengthExceeded => Self::PR_ERR_CONTEXT_LENGTH_EXCEEDED,
            ErrorKind::LimitReached => Self::PR_ERR_LIMIT_REACHED,
            // A kind added to the core later, before it has a number here.
            _ => Self::PR_ERR_ALL_PROVIDERS_FAILED,
        }
    }
}

impl From<AuthError> for pr_status {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Malformed => Self::PR_ERR_AUTH_MALFORMED,
            AuthError::Expired => Self::PR_ERR_AUTH_EXPIRED,
            AuthError::NotYetValid => Self::PR_ERR_AUTH_NOT_YET_VALID,
            AuthError::BadSignature => Self::PR_ERR_AUTH_BAD_SIGNATURE,
            AuthError::BadAlgorithm => Self::PR_ERR_AUTH_BAD_ALGORITHM,
            AuthError::BadClaim(_) => Self::PR_ERR_AUTH_BAD_CLAIM,
            AuthError::UnknownKey => Self::PR_ERR_AUTH_UNKNOWN_KEY,
            AuthError::Revoked => Self::PR_ERR_AUTH_REVOKED,
            AuthError::Reused => Self::PR_ERR_AUTH_REUSED,
            AuthError::Unavailable => Self::PR_ERR_AUTH_UNAVAILABLE,
            AuthError::Config(_) => Self::PR_ERR_CONFIG,
        }
    }
}

/// The stable snake_case name of `status` (`"rate_limited"`), or `"unknown"`
/// for a value that is not a `pr_status`. The string is static: never free it.
///
/// Thread safety: safe from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn pr_status_name(status: i32) -> *const c_char {
    crate::boundary::guard(c"unknown".as_ptr(), || {
        pr_status::all()
            .into_iter()
            .find(|known| *known as i32 == status)
            .map_or(c"unknown", pr_status::name)
            .as_ptr()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [ErrorKind; 16] = [
        ErrorKind::Config,
        ErrorKind::InvalidRequest,
        ErrorKind::NotFound,
        ErrorKind::Timeout,
        ErrorKind::MissingKey,
        ErrorKind::RateLimited,
        ErrorKind::QuotaExhausted,
        ErrorKind::CircuitOpen,
        ErrorKind::Auth,
        ErrorKind::ProviderError,
        ErrorKind::AllProvidersFailed,
        ErrorKind::Usage,
        ErrorKind::ContentFiltered,
        ErrorKind::StreamInterrupted,
        ErrorKind::ContextLengthExceeded,
        ErrorKind::LimitReached,
    ];

    #[test]
    fn each_core_kind_has_its_own_status_named_like_the_kind() {
        let mut seen = Vec::new();
        for kind in KINDS {
            let status = pr_status::from(kind);
            assert!(
                (1..100).contains(&(status as i32)),
                "{kind:?} -> {status:?}"
            );
            assert!(!seen.contains(&status), "{kind:?} shares {status:?}");
            seen.push(status);
            assert_eq!(status.name().to_str().unwrap(), kind.as_str());
        }
    }

    const AUTH_ERRORS: [AuthError; 11] = [
        AuthError::Malformed,
        AuthError::Expired,
        AuthError::NotYetValid,
        AuthError::BadSignature,
        AuthError::BadAlgorithm,
        AuthError::BadClaim("aud"),
        AuthError::UnknownKey,
        AuthError::Revoked,
        AuthError::Reused,
        AuthError::Unavailable,
        AuthError::Config("reason"),
    ];

    #[test]
    fn each_token_error_has_its_own_status_named_like_the_error() {
        let mut seen = Vec::new();
        for error in AUTH_ERRORS {
            let status = pr_status::from(error);
            assert!(
                (1..100).contains(&(status as i32)),
                "{error:?} -> {status:?}"
            );
            assert!(!seen.contains(&status), "{error:?} shares {status:?}");
            seen.push(status);
            assert_eq!(status.name().to_str().unwrap(), error.as_str());
        }
        // Configuration is configuration, whichever part of the core refused it.
        assert_eq!(
            pr_status::from(AuthError::Config("x")),
            pr_status::from(ErrorKind::Config)
        );
        for kind in KINDS.into_iter().filter(|k| *k != ErrorKind::Config) {
            assert!(!seen.contains(&pr_status::from(kind)), "{kind:?}");
        }
    }

    #[test]
    fn every_status_has_a_distinct_name_and_unknown_values_are_named_unknown() {
        let all = pr_status::all();
        for (i, status) in all.iter().enumerate() {
            assert!(all[..i]
                .iter()
                .all(|s| s != status && s.name() != status.name()));
            assert!(
                all[..i].iter().all(|s| (*s as i32) < *status as i32),
                "numeric order"
            );
            // SAFETY: a static NUL-terminated string.
            let by_number = unsafe { CStr::from_ptr(pr_status_name(*status as i32)) };
            assert_eq!(by_number, status.name());
        }
        for number in [-1, 17, 19, 30, 99, 106, 199, 201, 9999] {
            // SAFETY: a static NUL-terminated string.
            let unknown = unsafe { CStr::from_ptr(pr_status_name(number)) };
            assert_eq!(unknown, c"unknown");
        }
    }
}
