//! `polyrelay._native`: the Python binding of polyrelay, kept thin.
//!
//! Everything a call does lives in the core crate; this module only converts
//! values at the boundary, runs core futures on the core's one runtime
//! ([`bridge`]), maps core errors to the exceptions defined in
//! `polyrelay/exceptions.py` ([`errors`]), and forwards `tracing` events to
//! Python `logging` ([`logs`]). The pure-Python package `polyrelay` wraps it.

mod assistant;
mod auth;
mod batch;
mod bridge;
mod client;
mod clock;
mod convert;
mod emulator;
mod errors;
mod limits;
mod logs;
mod parameters;
mod result;
mod stream;
#[cfg(feature = "testing")]
mod testing;

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Every capability the core serves: `name` and default cache `ttl` (s).
#[pyfunction]
fn capabilities(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    polyrelay::CapabilityId::ALL
        .iter()
        .map(|capability| {
            let entry = PyDict::new(py);
            entry.set_item("name", capability.as_str())?;
            entry.set_item("ttl", capability.default_ttl().as_secs_f64())?;
            Ok(entry)
        })
        .collect()
}

/// The core's catalog of the built-in providers under the default
/// configuration, keys read from the environment.
#[pyfunction]
fn builtin_providers(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let catalog = polyrelay::Catalog::builtin().map_err(|e| errors::to_py(py, e))?;
    convert::serialize(py, &catalog)
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<client::Client>()?;
    m.add_class::<result::CallResult>()?;
    m.add_class::<stream::PyChatChunk>()?;
    m.add_class::<stream::ChatStream>()?;
    m.add_class::<stream::AsyncChatStream>()?;
    m.add_class::<batch::BatchProgress>()?;
    m.add_class::<assistant::AssistantStream>()?;
    m.add_class::<emulator::Emulator>()?;
    m.add_class::<emulator::Fault>()?;
    m.add_class::<emulator::RecordedRequest>()?;
    m.add_class::<clock::FakeClock>()?;
    m.add_class::<auth::Key>()?;
    m.add_class::<auth::Keyset>()?;
    m.add_class::<auth::Claims>()?;
    m.add_class::<auth::TokenPair>()?;
    m.add_class::<auth::Verifier>()?;
    m.add_class::<auth::TokenIssuer>()?;
    m.add_class::<limits::InboundLimiter>()?;
    m.add_function(wrap_pyfunction!(capabilities, m)?)?;
    m.add_function(wrap_pyfunction!(builtin_providers, m)?)?;
    m.add_function(wrap_pyfunction!(parameters::parameter_schema, m)?)?;
    m.add_function(wrap_pyfunction!(logs::sync_log_level, m)?)?;
    #[cfg(feature = "testing")]
    testing::register(m)?;
    logs::install();
    Ok(())
}
