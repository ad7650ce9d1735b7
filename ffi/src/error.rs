//! The error object: a status plus everything a caller may want to show or
//! act on, readable through accessors and freed with `pr_error_free`.

use std::any::Any;
use std::ffi::{c_char, CString};
use std::ptr;

use crate::boundary::{c_string, free_handle, guard};
use crate::status::pr_status;

/// Why a call failed. Created by polyrelay and handed to you through a
/// `pr_error **error` out-parameter or a callback; owned by you and freed
/// with `pr_error_free`.
///
/// Thread safety: immutable. Its accessors may be called from any number of
/// threads at once; `pr_error_free` must not race with them.
#[derive(Clone)]
pub struct pr_error {
    pub(crate) status: pr_status,
    message: CString,
    provider: Option<CString>,
    http_status: Option<u16>,
    retry_after: Option<f64>,
    reset_at: Option<f64>,
    attempts: CString,
    claim: Option<CString>,
    partial: Option<CString>,
}

impl pr_error {
    /// An error of the C interface itself, with no provider involved.
    pub(crate) fn new(status: pr_status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: c_string(message.into()),
            provider: None,
            http_status: None,
            retry_after: None,
            reset_at: None,
            attempts: c_string("[]".to_string()),
            claim: None,
            partial: None,
        }
    }

    /// `argument` was NULL.
    pub(crate) fn null_argument(argument: &str) -> Self {
        Self::new(
            pr_status::PR_ERR_NULL_ARGUMENT,
            format!("`{argument}` must not be NULL"),
        )
    }

    /// The call was cancelled with `pr_call_cancel`.
    pub(crate) fn cancelled() -> Self {
        Self::new(pr_status::PR_ERR_CANCELLED, "the call was cancelled")
    }

    /// The client was shut down.
    pub(crate) fn shutdown() -> Self {
        Self::new(
            pr_status::PR_ERR_SHUTDOWN,
            "the client was shut down (pr_client_shutdown or pr_client_free)",
        )
    }

    /// polyrelay panicked; `payload` is what `catch_unwind` caught.
    pub(crate) fn panic(payload: &(dyn Any + Send)) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Self::new(
            pr_status::PR_ERR_PANIC,
            format!("polyrelay panicked (a bug, please report it): {what}"),
        )
    }
}

impl From<polyrelay::Error> for pr_error {
    fn from(error: polyrelay::Error) -> Self {
        let answered = error.provider_status();
        Self {
            status: error.kind().into(),
            message: c_string(error.to_string()),
            provider: answered.map(|(provider, _)| c_string(provider.to_string())),
            http_status: answered.map(|(_, status)| status),
            retry_after: error.retry_after().map(|wait| wait.as_secs_f64()),
            reset_at: error
                .reset_at()
                .map(|at| at.timestamp_millis() as f64 / 1000.0),
            attempts: c_string(
                serde_json::to_string(error.attempts()).unwrap_or_else(|_| "[]".to_string()),
            ),
            claim: None,
            partial: match &error {
                polyrelay::Error::StreamInterrupted { partial, .. } => {
                    Some(c_string(partial.clone()))
                }
                _ => None,
            },
        }
    }
}

impl From<polyrelay::auth::AuthError> for pr_error {
    fn from(error: polyrelay::auth::AuthError) -> Self {
        Self {
            claim: error.claim().map(|name| c_string(name.to_string())),
            ..Self::new(error.into(), error.to_string())
        }
    }
}

/// Reads `error` behind the panic guard, or returns `absent` for NULL.
///
/// # Safety
/// `error` is NULL or a live `pr_error`.
unsafe fn read<R>(error: *const pr_error, absent: R, read: impl FnOnce(&pr_error) -> R) -> R {
    // SAFETY: the caller passes NULL or a live error, which nothing mutates.
    match unsafe { error.as_ref() } {
        Some(error) => guard(absent, || read(error)),
        None => absent,
    }
}

/// The status this error stands for (never `PR_OK`); `PR_ERR_NULL_ARGUMENT`
/// for a NULL `error`.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `error` is NULL or a live error from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_error_status(error: *const pr_error) -> pr_status {
    // SAFETY: forwarded from the caller.
    unsafe { read(error, pr_status::PR_ERR_NULL_ARGUMENT, |e| e.status) }
}

/// The stable snake_case name of the error's kind (`"rate_limited"`,
/// `"null_argument"`, ...), the same as `pr_status_name(pr_error_status(error))`.
/// Static: never free it. NULL for a NULL `error`.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `error` is NULL or a live error from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_error_kind(error: *const pr_error) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe { read(error, ptr::null(), |e| e.status.name().as_ptr()) }
}

/// A sentence a person can act on, e.g. which key to set or which argument
/// was NULL. Valid until `pr_error_free(error)`; do not free it. NULL for a
/// NULL `error`.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `error` is NULL or a live error from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_error_message(error: *const pr_error) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe { read(error, ptr::null(), |e| e.message.as_ptr()) }
}

/// The provider whose HTTP error status this error reports (the last one
/// that answered with an error), or NULL when no provider answered. Valid
/// until `pr_error_free(error)`; do not free it.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `error` is NULL or a live error from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_error_provider(error: *const pr_error) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe {
        read(error, ptr::null(), |e| {
            e.provider.as_ref().map_or(ptr::null(), |p| p.as_ptr())
        })
    }
}

/// The HTTP status of that provider's answer (e.g. 503), or 0 when no
/// provider answered or `error` is NULL.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `error` is NULL or a live error from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_error_http_status(error: *const pr_error) -> u16 {
    // SAFETY: forwarded from the caller.
    unsafe { read(error, 0, |e| e.http_status.unwrap_or(0)) }
}

/// Seconds after which a throttled or benched provider may answer again, or
/// a negative number when unknown (and for a NULL `error`).
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `error` is NULL or a live error from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_error_retry_after(error: *const pr_error) -> f64 {
    // SAFETY: forwarded from the caller.
    unsafe { read(error, -1.0, |e| e.retry_after.unwrap_or(-1.0)) }
}

/// When every provider's quota is used up (`PR_ERR_QUOTA_EXHAUSTED`): the
/// instant the first of them resets, in seconds since the Unix epoch (UTC,
/// on the client's clock). A negative number when unknown, for other errors
/// and for a NULL `error`.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `error` is NULL or a live error from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_error_reset_at(error: *const pr_error) -> f64 {
    // SAFETY: forwarded from the caller.
    unsafe { read(error, -1.0, |e| e.reset_at.unwrap_or(-1.0)) }
}

/// What each provider did, as a JSON array of objects `{provider, outcome,
/// status, tries, elapsed, reason, retry_after, hedged}` (and `deployment` when
/// the call named a model group); `"[]"` when no provider
/// was involved. Valid until `pr_error_free(error)`; do not free it. NULL for
/// a NULL `error`.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `error` is NULL or a live error from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_error_attempts_json(error: *const pr_error) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe { read(error, ptr::null(), |e| e.attempts.as_ptr()) }
}

/// The claim a `PR_ERR_AUTH_BAD_CLAIM` error is about (`"aud"`, `"exp"`,
/// `"typ"`, ...), or NULL for any other error and for a NULL `error`. Valid
/// until `pr_error_free(error)`; do not free it.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `error` is NULL or a live error from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_error_claim(error: *const pr_error) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe {
        read(error, ptr::null(), |e| {
            e.claim.as_ref().map_or(ptr::null(), |c| c.as_ptr())
        })
    }
}

/// The text a `PR_ERR_STREAM_INTERRUPTED` stream delivered before it failed
/// (every chunk's text joined, reasoning excluded; a NUL inside becomes
/// U+FFFD), or NULL for any other error and for a NULL `error`. Valid until
/// `pr_error_free(error)`; do not free it.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `error` is NULL or a live error from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_error_partial_text(error: *const pr_error) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe {
        read(error, ptr::null(), |e| {
            e.partial.as_ref().map_or(ptr::null(), |p| p.as_ptr())
        })
    }
}

/// Frees `error`. NULL is ignored.
///
/// Thread safety: any thread, but not concurrently with any other use of
/// the same error.
///
/// # Safety
/// `error` is NULL or an error from polyrelay not yet freed; it is invalid
/// afterwards, as are the strings read from it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_error_free(error: *mut pr_error) {
    // SAFETY: as the caller promised.
    unsafe { free_handle(error) }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::ffi::CStr;
    use std::time::Duration;

    use polyrelay::Attempt;
    use polyrelay::{AttemptOutcome, FailureClass};

    use super::*;

    fn text(read: *const c_char) -> &'static str {
        // SAFETY: the accessors return NUL-terminated strings that the tests
        // read before freeing their error.
        unsafe { CStr::from_ptr(read) }.to_str().unwrap()
    }

    #[test]
    fn a_core_error_keeps_its_kind_provider_status_wait_and_attempts() {
        let core = polyrelay::Error::AllProvidersFailed {
            capability: "weather.current",
            attempts: vec![Attempt {
                provider: "open-meteo",
                deployment: None,
                outcome: AttemptOutcome::Failed(FailureClass::RateLimited),
                status: Some(429),
                tries: 1,
                elapsed: Duration::from_millis(5),
                upstream: std::time::Duration::ZERO,
                reason: Cow::Borrowed("rate limited (HTTP 429)"),
                retry_after: Some(Duration::from_secs(30)),
                hedged: false,
                cost_usd: None,
            }],
            retry_after: Some(Duration::from_millis(1500)),
            reset_at: None,
        };
        let message = core.to_string();
        let error = Box::into_raw(Box::new(pr_error::from(core)));
        // SAFETY: `error` is live until freed at the end.
        unsafe {
            assert_eq!(pr_error_status(error), pr_status::PR_ERR_RATE_LIMITED);
            assert_eq!(text(pr_error_kind(error)), "rate_limited");
            assert_eq!(text(pr_error_message(error)), message);
            assert_eq!(text(pr_error_provider(error)), "open-meteo");
            assert_eq!(pr_error_http_status(error), 429);
            assert_eq!(pr_error_retry_after(error), 1.5);
            assert!(pr_error_reset_at(error) < 0.0);
            let attempts: serde_json::Value =
                serde_json::from_str(text(pr_error_attempts_json(error))).unwrap();
            assert_eq!(attempts[0]["provider"], "open-meteo");
            assert_eq!(attempts[0]["status"], 429);
            pr_error_free(error);
        }
    }

    #[test]
    fn an_interrupted_stream_keeps_its_partial_text_and_other_errors_have_none() {
        let core = polyrelay::Error::StreamInterrupted {
            capability: "llm.chat",
            provider: "openai",
            partial: "Hello!".to_string(),
            reason: "the connection was cut".to_string(),
            attempts: Vec::new(),
        };
        let interrupted = Box::into_raw(Box::new(pr_error::from(core)));
        let other = Box::into_raw(Box::new(pr_error::cancelled()));
        // SAFETY: both errors are live until freed at the end.
        unsafe {
            assert_eq!(
                pr_error_status(interrupted),
                pr_status::PR_ERR_STREAM_INTERRUPTED
            );
            assert_eq!(text(pr_error_kind(interrupted)), "stream_interrupted");
            assert_eq!(text(pr_error_partial_text(interrupted)), "Hello!");
            assert!(text(pr_error_message(interrupted)).contains("the connection was cut"));
            assert!(pr_error_partial_text(other).is_null());
            assert!(pr_error_partial_text(ptr::null()).is_null());
            pr_error_free(interrupted);
            pr_error_free(other);
        }
    }

    #[test]
    fn a_used_up_quota_says_when_it_resets_in_seconds_since_the_epoch() {
        let core = polyrelay::Error::AllProvidersFailed {
            capability: "weather.current",
            attempts: vec![Attempt {
                provider: "open-meteo",
                deployment: None,
                outcome: AttemptOutcome::Skipped(polyrelay::SkipReason::Quota),
                status: None,
                tries: 0,
                elapsed: Duration::ZERO,
                upstream: std::time::Duration::ZERO,
                reason: Cow::Borrowed("skipped: daily quota used up"),
                retry_after: Some(Duration::from_secs(60)),
                hedged: false,
                cost_usd: None,
            }],
            retry_after: Some(Duration::from_secs(60)),
            reset_at: "2025-01-01T00:01:00.5Z".parse().ok(),
        };
        let error = Box::into_raw(Box::new(pr_error::from(core)));
        // SAFETY: `error` is live until freed at the end.
        unsafe {
            assert_eq!(pr_error_status(error), pr_status::PR_ERR_QUOTA_EXHAUSTED);
            assert_eq!(pr_error_reset_at(error), 1_735_689_660.5);
            assert!(pr_error_reset_at(ptr::null()) < 0.0);
            pr_error_free(error);
        }
    }

    #[test]
    fn a_token_error_keeps_its_status_and_names_its_claim_but_nothing_else() {
        use polyrelay::auth::AuthError;
        let error = Box::into_raw(Box::new(pr_error::from(AuthError::BadClaim("aud"))));
        let reused = Box::into_raw(Box::new(pr_error::from(AuthError::Reused)));
        // SAFETY: both errors are live until freed at the end.
        unsafe {
            assert_eq!(pr_error_status(error), pr_status::PR_ERR_AUTH_BAD_CLAIM);
            assert_eq!(text(pr_error_kind(error)), "bad_claim");
            assert_eq!(text(pr_error_message(error)), "bad claim: aud");
            assert_eq!(text(pr_error_claim(error)), "aud");
            assert_eq!(pr_error_status(reused), pr_status::PR_ERR_AUTH_REUSED);
            assert!(pr_error_claim(reused).is_null());
            assert!(pr_error_provider(reused).is_null());
            assert!(pr_error_claim(ptr::null()).is_null());
            pr_error_free(error);
            pr_error_free(reused);
        }
    }

    #[test]
    fn an_error_of_the_interface_has_no_provider_and_no_attempts() {
        let error = Box::into_raw(Box::new(pr_error::null_argument("client")));
        // SAFETY: `error` is live until freed at the end.
        unsafe {
            assert_eq!(pr_error_status(error), pr_status::PR_ERR_NULL_ARGUMENT);
            assert!(pr_error_provider(error).is_null());
            assert_eq!(pr_error_http_status(error), 0);
            assert!(pr_error_retry_after(error) < 0.0);
            assert_eq!(text(pr_error_attempts_json(error)), "[]");
            pr_error_free(error);
        }
    }
}
