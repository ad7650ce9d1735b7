//! The core's parameter schemas, for the typed helpers and their test.

use polyrelay::CapabilityId;
use pyo3::prelude::*;

use crate::{convert, errors};

/// The JSON Schema of `capability`'s parameters, or every capability's by
/// name when `capability` is `None`.
#[pyfunction]
#[pyo3(signature = (capability=None))]
pub(crate) fn parameter_schema(py: Python<'_>, capability: Option<&str>) -> PyResult<Py<PyAny>> {
    let schema = match capability {
        None => CapabilityId::parameter_schemas(),
        Some(name) => name
            .parse::<CapabilityId>()
            .map_err(|e| errors::to_py(py, e))?
            .parameter_schema(),
    };
    Ok(convert::to_py(py, &schema)?.unbind())
}
