//! Core errors as the exceptions of `polyrelay/exceptions.py`: the one place
//! where an [`ErrorKind`] picks a Python class.
//!
//! Messages are the core's, which never contain keys (see
//! `polyrelay::Error`). The exception classes are Python classes, so a
//! `PyErr` can only be built with the GIL held: async calls carry the core
//! error to the event loop and convert it there.

use std::any::Any;

use polyrelay::auth::AuthError;
use polyrelay::{Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};

use crate::{convert, result};

static EXCEPTIONS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The Python class name for each kind.
fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Config => "ConfigError",
        ErrorKind::InvalidRequest => "InvalidRequestError",
        ErrorKind::NotFound => "NotFoundError",
        ErrorKind::Timeout => "TimeoutError",
        ErrorKind::MissingKey => "MissingKeyError",
        ErrorKind::RateLimited => "RateLimitedError",
        ErrorKind::QuotaExhausted => "QuotaExhaustedError",
        ErrorKind::CircuitOpen => "CircuitOpenError",
        ErrorKind::Auth => "AuthError",
        ErrorKind::ProviderError => "ProviderError",
        ErrorKind::AllProvidersFailed => "AllProvidersFailedError",
        ErrorKind::Usage => "UsageError",
        ErrorKind::ContentFiltered => "ContentFilteredError",
        ErrorKind::StreamInterrupted => "StreamInterruptedError",
        ErrorKind::ContextLengthExceeded => "ContextLengthExceededError",
        ErrorKind::LimitReached => "LimitReachedError",
        // A kind added to the core later, before it has its own class.
        _ => "Error",
    }
}

/// The exception for a core error.
pub(crate) fn to_py(py: Python<'_>, error: Error) -> PyErr {
    build(py, &error).unwrap_or_else(|failed| failed)
}

/// An error the bridge can raise in Python once it holds the GIL.
pub(crate) trait ToPyErr {
    /// The exception for this error.
    fn to_py_err(self, py: Python<'_>) -> PyErr;
}

impl ToPyErr for std::convert::Infallible {
    fn to_py_err(self, _py: Python<'_>) -> PyErr {
        match self {}
    }
}

impl ToPyErr for Error {
    fn to_py_err(self, py: Python<'_>) -> PyErr {
        to_py(py, self)
    }
}

impl ToPyErr for AuthError {
    fn to_py_err(self, py: Python<'_>) -> PyErr {
        auth_to_py(py, self)
    }
}

/// The Python class name for each auth error.
fn auth_class_name(error: AuthError) -> &'static str {
    match error {
        AuthError::Malformed => "MalformedTokenError",
        AuthError::Expired => "TokenExpiredError",
        AuthError::NotYetValid => "TokenNotYetValidError",
        AuthError::BadSignature => "BadSignatureError",
        AuthError::BadAlgorithm => "BadAlgorithmError",
        AuthError::BadClaim(_) => "BadClaimError",
        AuthError::UnknownKey => "UnknownKeyError",
        AuthError::Revoked => "TokenRevokedError",
        AuthError::Reused => "TokenReusedError",
        AuthError::Unavailable => "AuthUnavailableError",
        AuthError::Config(_) => "ConfigError",
    }
}

/// The exception for an auth error. Its message is the core's, which never
/// contains a token or key material.
pub(crate) fn auth_to_py(py: Python<'_>, error: AuthError) -> PyErr {
    let build = || {
        let details = PyDict::new(py);
        details.set_item("kind", error.as_str())?;
        match error {
            AuthError::BadClaim(claim) => details.set_item("claim", claim)?,
            AuthError::Config(_) => details.set_item("field", "auth")?,
            _ => {}
        }
        instantiate(py, auth_class_name(error), &error.to_string(), &details)
    };
    build().unwrap_or_else(|failed| failed)
}

/// `AuthUnavailableError` with a message of the binding's own (a closed
/// issuer), not one of the core's.
pub(crate) fn auth_unavailable(py: Python<'_>, message: &str) -> PyErr {
    let build = || {
        let details = PyDict::new(py);
        details.set_item("kind", AuthError::Unavailable.as_str())?;
        instantiate(py, "AuthUnavailableError", message, &details)
    };
    build().unwrap_or_else(|failed| failed)
}

fn build(py: Python<'_>, error: &Error) -> PyResult<PyErr> {
    let kind = error.kind();
    let details = PyDict::new(py);
    details.set_item("kind", kind.as_str())?;
    let attempts = error.attempts();
    if !attempts.is_empty() {
        details.set_item("attempts", result::attempts_to_py(py, attempts)?)?;
    }
    if let Some(wait) = error.retry_after() {
        details.set_item("retry_after", wait.as_secs_f64())?;
    }
    if let Some(at) = error.reset_at() {
        details.set_item("reset_at", at.timestamp_millis() as f64 / 1000.0)?;
    }
    match error {
        Error::Config { field, .. } => details.set_item("field", field)?,
        Error::InvalidRequest { field, expected } => {
            details.set_item("field", field)?;
            details.set_item("expected", expected)?;
        }
        Error::NotFound { capability, .. } | Error::AllProvidersFailed { capability, .. } => {
            details.set_item("capability", capability)?;
        }
        Error::ContentFiltered {
            capability,
            provider,
            reason,
            ..
        } => {
            details.set_item("capability", capability)?;
            details.set_item("provider", provider)?;
            details.set_item("reason", reason)?;
        }
        Error::StreamInterrupted {
            capability,
            provider,
            partial,
            ..
        } => {
            details.set_item("capability", capability)?;
            details.set_item("provider", provider)?;
            details.set_item("partial_text", partial)?;
        }
        Error::ContextLengthExceeded {
            capability,
            estimated_tokens,
            largest_window,
            ..
        } => {
            details.set_item("capability", capability)?;
            details.set_item("estimated_tokens", estimated_tokens)?;
            details.set_item("largest_window", largest_window)?;
        }
        Error::LimitReached {
            limit,
            conversation,
            steps,
            ..
        } => {
            details.set_item("limit", limit)?;
            details.set_item("conversation", convert::to_py(py, conversation)?)?;
            details.set_item("steps", convert::to_py(py, steps)?)?;
        }
        Error::Timeout {
            capability,
            deadline,
            ..
        } => {
            details.set_item("capability", capability)?;
            details.set_item("deadline", deadline.as_secs_f64())?;
        }
        _ => {}
    }
    if kind == ErrorKind::ProviderError {
        if let Some((provider, status)) = error.provider_status() {
            details.set_item("provider", provider)?;
            details.set_item("status", status)?;
        }
    }
    instantiate(py, class_name(kind), &error.to_string(), &details)
}

fn instantiate(
    py: Python<'_>,
    class: &str,
    message: &str,
    details: &Bound<'_, PyDict>,
) -> PyResult<PyErr> {
    let module = EXCEPTIONS.get_or_try_init(py, || {
        PyModule::import(py, "polyrelay.exceptions").map(Bound::unbind)
    })?;
    let exception = module
        .bind(py)
        .getattr(class)?
        .call((message,), Some(details))?;
    Ok(PyErr::from_value(exception))
}

/// `polyrelay.Error` of kind `internal`: a bug in polyrelay, reported as an
/// exception instead of taking the interpreter down.
pub(crate) fn internal(py: Python<'_>, message: &str) -> PyErr {
    let build = || {
        let details = PyDict::new(py);
        details.set_item("kind", "internal")?;
        instantiate(
            py,
            "Error",
            &format!("internal error in polyrelay (please report it): {message}"),
            &details,
        )
    };
    build().unwrap_or_else(|failed| failed)
}

/// The text of a panic payload.
pub(crate) fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// A panic as `polyrelay.Error`.
pub(crate) fn panic_to_py(py: Python<'_>, panic: &Box<dyn Any + Send>) -> PyErr {
    internal(py, &format!("panic: {}", panic_message(panic)))
}

/// `InvalidRequestError` for a parameter Python could not hand over, with
/// the Python error as its cause.
pub(crate) fn invalid_param(py: Python<'_>, field: &str, expected: &str, cause: PyErr) -> PyErr {
    let error = to_py(py, Error::invalid(field, expected));
    error.set_cause(py, Some(cause));
    error
}
