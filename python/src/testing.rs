//! Hooks for the Python test suite, compiled only with the cargo feature
//! `testing` (the build of `tests/run.sh`), never into a release wheel.

use std::borrow::Cow;
use std::time::Duration;

use polyrelay::AttemptOutcome;
use polyrelay::{Attempt, Error};
use pyo3::prelude::*;

use crate::bridge;
use crate::errors::to_py;

/// Adds the hooks to the extension module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_sample_error, m)?)?;
    m.add_function(wrap_pyfunction!(_panic, m)?)?;
    Ok(())
}

/// Raises the exception a core error of `kind` maps to, built from a
/// representative core error. Lets tests check the mapping for kinds the
/// built-in providers cannot produce yet (no built-in provider needs a key).
#[pyfunction]
fn _sample_error(py: Python<'_>, kind: &str) -> PyResult<()> {
    Err(sample(py, kind))
}

/// Panics inside a blocking call (`asynchronous=False`) or returns an
/// awaitable whose Rust future panics; proves a panic surfaces as
/// `polyrelay.Error` and never takes the interpreter down.
#[pyfunction]
#[pyo3(signature = (asynchronous = false))]
fn _panic(py: Python<'_>, asynchronous: bool) -> PyResult<Py<PyAny>> {
    let boom = async {
        if std::hint::black_box(true) {
            panic!("deliberate panic for a test");
        }
        Ok::<(), Error>(())
    };
    if asynchronous {
        bridge::awaitable(py, boom).map(Bound::unbind)
    } else {
        bridge::block_on(py, boom)?.map_err(|e| to_py(py, e))?;
        Ok(py.None())
    }
}

/// The exception for a representative core error of `kind` (for tests of
/// this mapping).
fn sample(py: Python<'_>, kind: &str) -> PyErr {
    let attempt = |provider: &'static str, outcome: &'static str, reason: &'static str| Attempt {
        provider,
        deployment: None,
        outcome: AttemptOutcome::from_name(outcome).unwrap_or(AttemptOutcome::Answered),
        status: None,
        tries: 0,
        elapsed: Duration::ZERO,
        upstream: std::time::Duration::ZERO,
        reason: Cow::Borrowed(reason),
        retry_after: None,
        hedged: false,
        cost_usd: None,
    };
    let failed = |attempts: Vec<Attempt>| Error::AllProvidersFailed {
        capability: "weather.current",
        attempts,
        retry_after: None,
        reset_at: None,
    };
    let error = match kind {
        "missing_key" => failed(vec![attempt(
            "openweathermap",
            "skipped_no_key",
            "skipped: OPENWEATHER_API_KEY is not set",
        )]),
        "auth" => failed(vec![attempt("openweathermap", "auth", "auth (HTTP 401)")]),
        "usage" => Error::Usage {
            message: "a sample usage error".to_string(),
        },
        other => {
            return to_py(
                py,
                Error::invalid(
                    "kind",
                    format!("must be missing_key, auth or usage, got {other:?}"),
                ),
            )
        }
    };
    to_py(py, error)
}
