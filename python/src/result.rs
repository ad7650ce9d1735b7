//! The answer to a call as Python sees it, and the attempts trail.

use polyrelay::{Attempt, Envelope};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::convert;

/// The answer to a call: the normalised `data` and how it was obtained.
///
/// `data` and `attempts` are converted to Python on first access, so a call
/// whose result is only partly read pays only for what it reads.
#[pyclass(module = "polyrelay", name = "Result", frozen)]
pub(crate) struct CallResult {
    envelope: Envelope,
    data: PyOnceLock<Py<PyAny>>,
    attempts: PyOnceLock<Py<PyTuple>>,
}

impl CallResult {
    pub(crate) fn new(envelope: Envelope) -> Self {
        Self {
            envelope,
            data: PyOnceLock::new(),
            attempts: PyOnceLock::new(),
        }
    }
}

#[pymethods]
impl CallResult {
    /// The normalised answer, as plain Python data.
    #[getter]
    fn data(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.data
            .get_or_try_init(py, || convert::serialize(py, self.envelope.data()))
            .map(|data| data.clone_ref(py))
    }

    /// An `llm.chat` answer as the JSON value it was asked to be (a call
    /// with `response_format`, checked against its schema): `data["parsed"]`,
    /// as plain Python data; `None` for any other answer.
    #[getter]
    fn parsed(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let data = self.data(py)?;
        match data.bind(py).cast::<PyDict>() {
            Ok(fields) => Ok(fields
                .get_item("parsed")?
                .map_or_else(|| py.None(), Bound::unbind)),
            Err(_) => Ok(py.None()),
        }
    }

    /// The capability called, e.g. `"weather.current"`.
    #[getter]
    fn capability(&self) -> &'static str {
        self.envelope.capability.as_str()
    }

    /// The provider whose answer this is.
    #[getter]
    fn provider(&self) -> &'static str {
        self.envelope.provider
    }

    /// Served from the cache rather than fetched by this call.
    #[getter]
    fn cached(&self) -> bool {
        self.envelope.cached
    }

    /// Past its freshness: served while a refresh runs, or because every
    /// provider failed (stale-if-error).
    #[getter]
    fn stale(&self) -> bool {
        self.envelope.stale
    }

    /// What each provider did during this call, in chain order (empty for a
    /// fresh cache hit).
    #[getter]
    fn attempts(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        self.attempts
            .get_or_try_init(py, || {
                attempts_to_py(py, &self.envelope.attempts).map(Bound::unbind)
            })
            .map(|attempts| attempts.clone_ref(py))
    }

    /// Seconds this call took.
    #[getter]
    fn elapsed(&self) -> f64 {
        self.envelope.elapsed.as_secs_f64()
    }

    /// What this call cost in US dollars, for `llm.chat` and
    /// `llm.embeddings`: 0.0 for an answer served from the cache or by a
    /// free model, `None` when the model's price or the usage is unknown
    /// (and for other capabilities).
    #[getter]
    fn cost_usd(&self) -> Option<f64> {
        self.envelope.cost_usd
    }

    /// When the provider produced the answer (aware UTC datetime).
    #[getter]
    fn fetched_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        utc_datetime(py, self.envelope.fetched_at.timestamp_micros())
    }

    /// Everything as plain data (JSON-compatible): capability, provider,
    /// data, cached, stale, fetched_at (ISO 8601), attempts, elapsed, and
    /// cost_usd for LLM capabilities.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        convert::serialize(py, &self.envelope)
    }

    /// An HTML summary for Jupyter: provider, flags, trail and data, every
    /// value escaped (rendered by `polyrelay._html`).
    fn _repr_html_<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let render = RESULT_HTML.import(slf.py(), "polyrelay._html", "result_html")?;
        render.call1((slf,))
    }

    fn __repr__(&self) -> String {
        format!(
            "<polyrelay.Result {} from {}{}{} in {:.1} ms>",
            self.envelope.capability,
            self.envelope.provider,
            if self.envelope.cached {
                " (cached)"
            } else {
                ""
            },
            if self.envelope.stale { " (stale)" } else { "" },
            self.envelope.elapsed.as_secs_f64() * 1000.0,
        )
    }
}

static RESULT_HTML: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

static ATTEMPT_CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The attempts trail as a tuple of `polyrelay.Attempt`.
pub(crate) fn attempts_to_py<'py>(
    py: Python<'py>,
    attempts: &[Attempt],
) -> PyResult<Bound<'py, PyTuple>> {
    let class = ATTEMPT_CLASS.import(py, "polyrelay._models", "Attempt")?;
    let items = attempts
        .iter()
        .map(|attempt| {
            let fields = PyDict::new(py);
            fields.set_item("provider", attempt.provider)?;
            fields.set_item("outcome", attempt.outcome.as_str())?;
            fields.set_item("status", attempt.status)?;
            fields.set_item("tries", attempt.tries)?;
            fields.set_item("elapsed", attempt.elapsed.as_secs_f64())?;
            fields.set_item("reason", attempt.reason.as_ref())?;
            fields.set_item("retry_after", attempt.retry_after.map(|d| d.as_secs_f64()))?;
            fields.set_item("hedged", attempt.hedged)?;
            fields.set_item("cost_usd", attempt.cost_usd)?;
            fields.set_item("deployment", attempt.deployment)?;
            class.call((), Some(&fields))
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, items)
}

static FROM_TIMESTAMP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// An aware UTC `datetime` from microseconds since the epoch.
fn utc_datetime(py: Python<'_>, micros: i64) -> PyResult<Bound<'_, PyAny>> {
    let from_timestamp = FROM_TIMESTAMP.import(py, "polyrelay._models", "utc_from_micros")?;
    from_timestamp.call1((micros,))
}
