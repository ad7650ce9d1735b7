//! Plain Python values ↔ JSON values, the form the core takes parameters in
//! and gives answers, health and stats in.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::errors;

/// A JSON value as plain Python: dict, list, str, int, float, bool, None.
pub(crate) fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(fields) => {
            let dict = PyDict::new(py);
            for (key, item) in fields {
                dict.set_item(key, to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// Anything serialisable as plain Python data.
pub(crate) fn serialize<T: Serialize + ?Sized>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    let json = serde_json::to_value(value)
        .map_err(|e| errors::internal(py, &format!("cannot serialise: {e}")))?;
    Ok(to_py(py, &json)?.unbind())
}

/// Call parameters (keyword arguments) as a JSON object. A value Python
/// cannot express as JSON fails with `InvalidRequestError` naming the field.
pub(crate) fn params(py: Python<'_>, params: &Bound<'_, PyDict>) -> PyResult<Value> {
    let mut fields = Map::with_capacity(params.len());
    for (key, value) in params.iter() {
        let key: String = key.extract()?;
        let value = from_py(py, &value, &key)?;
        fields.insert(key, value);
    }
    Ok(Value::Object(fields))
}

/// [`params`] of an optional dict: `null` when the caller gave none (the
/// core then says what a capability requires).
pub(crate) fn optional_params(
    py: Python<'_>,
    params: Option<&Bound<'_, PyDict>>,
) -> PyResult<Value> {
    params.map_or(Ok(Value::Null), |params| self::params(py, params))
}

/// A Python value as JSON; `path` names it in errors (`symbols[1]`).
pub(crate) fn from_py(py: Python<'_>, value: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    if value.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: Python's bool is an int.
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(i) = value.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = value.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(errors::to_py(
            py,
            polyrelay::Error::invalid(path, "is too large an integer"),
        ));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| errors::to_py(py, polyrelay::Error::invalid(path, "must be finite")));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut fields = Map::with_capacity(dict.len());
        for (key, item) in dict.iter() {
            let key: String = key
                .extract()
                .map_err(|cause| errors::invalid_param(py, path, "must have string keys", cause))?;
            let item = from_py(py, &item, &format!("{path}.{key}"))?;
            fields.insert(key, item);
        }
        return Ok(Value::Object(fields));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in value.try_iter()?.enumerate() {
            items.push(from_py(py, &item?, &format!("{path}[{i}]"))?);
        }
        return Ok(Value::Array(items));
    }
    // Dates and times (e.g. `date=` of fx rates) travel as ISO 8601.
    if value.hasattr("isoformat")? {
        if let Ok(text) = value
            .call_method0("isoformat")
            .and_then(|t| t.extract::<String>())
        {
            return Ok(Value::String(text));
        }
    }
    let type_name = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_string());
    Err(errors::invalid_param(
        py,
        path,
        &format!("must be a string, number, boolean, list or dict, got {type_name}"),
        pyo3::exceptions::PyTypeError::new_err(format!("{type_name} is not JSON-like")),
    ))
}

/// A JSON value an awaitable resolves to, as plain Python data.
pub(crate) struct Json(pub(crate) Value);

impl<'py> IntoPyObject<'py> for Json {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.0)
    }
}
