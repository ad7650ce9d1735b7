//! `Client.batch` / `Client.abatch`: many calls of one capability, run by
//! the core's [`polyrelay::Client::batch`] on the shared runtime, with the
//! results handed back to Python in input order.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use polyrelay::{Envelope, Error, Request};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::client::Client;
use crate::errors;
use crate::result::CallResult;

/// How many calls of a batch have finished, readable while it runs (for a
/// progress display).
#[pyclass(module = "polyrelay._native", name = "BatchProgress", frozen)]
#[derive(Default)]
pub(crate) struct BatchProgress {
    completed: Arc<AtomicUsize>,
}

#[pymethods]
impl BatchProgress {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Calls finished so far (answered, failed or refused as invalid).
    #[getter]
    fn completed(&self) -> usize {
        self.completed.load(Ordering::Relaxed)
    }

    fn __repr__(&self) -> String {
        format!(
            "<polyrelay._native.BatchProgress completed={}>",
            self.completed()
        )
    }
}

/// One item of a batch once it is done.
enum Item {
    Answered(Envelope),
    Failed(Error),
    /// Refused before anything was sent (its parameters are invalid).
    Invalid(PyErr),
}

/// A validated batch, ready to run.
pub(crate) struct Batch {
    /// Items already decided (invalid parameters), by position.
    items: Vec<Option<Item>>,
    /// The valid requests and their positions in the input.
    requests: Vec<Request>,
    positions: Vec<usize>,
    concurrency: NonZeroUsize,
    /// Raise the first failure (cancelling the rest) rather than return it in place.
    fail_fast: bool,
    completed: Arc<AtomicUsize>,
}

impl Batch {
    /// Validates every item's parameters. With `return_exceptions`, an
    /// invalid item becomes its `InvalidRequestError` in place; otherwise
    /// the first one is raised and nothing is sent.
    pub(crate) fn prepare(
        py: Python<'_>,
        capability: &str,
        params: Vec<Option<Bound<'_, PyDict>>>,
        concurrency: usize,
        return_exceptions: bool,
        progress: Option<&BatchProgress>,
    ) -> PyResult<Self> {
        let concurrency = NonZeroUsize::new(concurrency).ok_or_else(|| {
            errors::to_py(py, Error::invalid("concurrency", "must be at least 1"))
        })?;
        let completed = progress.map_or_else(Arc::default, |p| Arc::clone(&p.completed));
        let mut batch = Self {
            items: Vec::with_capacity(params.len()),
            requests: Vec::with_capacity(params.len()),
            positions: Vec::with_capacity(params.len()),
            concurrency,
            fail_fast: !return_exceptions,
            completed,
        };
        for (position, params) in params.iter().enumerate() {
            match Client::request(py, capability, params.as_ref()) {
                Ok(request) => {
                    batch.requests.push(request);
                    batch.positions.push(position);
                    batch.items.push(None);
                }
                Err(invalid) if return_exceptions => {
                    batch.items.push(Some(Item::Invalid(invalid)));
                    batch.completed.fetch_add(1, Ordering::Relaxed);
                }
                Err(invalid) => return Err(invalid),
            }
        }
        Ok(batch)
    }

    /// Runs the calls; fails with the first error in fail-fast mode (the
    /// calls still running are then cancelled).
    pub(crate) async fn run(self, client: polyrelay::Client) -> Result<Finished, Error> {
        let Self {
            mut items,
            requests,
            positions,
            concurrency,
            fail_fast,
            completed,
        } = self;
        let mut finished = client.batch(requests, concurrency);
        while let Some((index, outcome)) = finished.next().await {
            let item = match outcome {
                Ok(envelope) => Item::Answered(envelope),
                Err(error) if fail_fast => return Err(error),
                Err(error) => Item::Failed(error),
            };
            if let Some(slot) = positions.get(index).and_then(|&p| items.get_mut(p)) {
                *slot = Some(item);
            }
            completed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Finished(items))
    }
}

/// A finished batch: becomes a list of `Result`s and (with
/// `return_exceptions`) exceptions, in input order.
pub(crate) struct Finished(Vec<Option<Item>>);

impl<'py> IntoPyObject<'py> for Finished {
    type Target = PyList;
    type Output = Bound<'py, PyList>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .0
            .into_iter()
            .map(|item| -> PyResult<Py<PyAny>> {
                Ok(match item {
                    Some(Item::Answered(envelope)) => {
                        Py::new(py, CallResult::new(envelope))?.into_any()
                    }
                    Some(Item::Failed(error)) => errors::to_py(py, error).into_value(py).into_any(),
                    Some(Item::Invalid(error)) => error.into_value(py).into_any(),
                    // Every request yields exactly once, so every slot is filled.
                    None => errors::internal(py, "a batch item was never answered")
                        .into_value(py)
                        .into_any(),
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }
}
