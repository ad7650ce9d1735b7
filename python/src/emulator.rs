//! The offline emulator of every built-in provider, for tests: a loopback
//! HTTP server on its own threads, fault injection and the request log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use polyrelay::emulation::{
    self, ChunkFault, Fault as CoreFault, Method, RecordedRequest as CoreRequest, Reply,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::bridge;

/// A running emulator serving provider `x` under `{url}/x`.
///
/// Methods release the GIL around the emulator's own locks, so its server
/// threads can always log (which takes the GIL) without a lock-order cycle.
#[pyclass(module = "polyrelay._native", name = "Emulator", frozen)]
pub(crate) struct Emulator {
    inner: Mutex<Option<Arc<emulation::Emulator>>>,
    url: String,
}

impl Emulator {
    fn running(&self) -> PyResult<Arc<emulation::Emulator>> {
        self.inner
            .lock()
            .clone()
            .ok_or_else(|| PyValueError::new_err("the emulator is stopped"))
    }
}

#[pymethods]
impl Emulator {
    /// Starts an emulator of every built-in provider on a free port.
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        let emulator = py
            .detach(emulation::start)
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("cannot start: {e}")))?;
        Ok(Self {
            url: emulator.base_url(),
            inner: Mutex::new(Some(Arc::new(emulator))),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// Injects `fault` into the next `times` requests whose path matches
    /// `path` (exact, a prefix ending in `*`, or `*` for all).
    #[pyo3(signature = (path, fault, times = 1))]
    fn fault_next(&self, py: Python<'_>, path: &str, fault: &Fault, times: usize) -> PyResult<()> {
        let emulator = self.running()?;
        py.detach(|| emulator.fault_next(path, fault.inner.clone(), times));
        Ok(())
    }

    /// Injects `fault` into every request matching `path` until
    /// `clear_faults()`.
    fn fault_always(&self, py: Python<'_>, path: &str, fault: &Fault) -> PyResult<()> {
        let emulator = self.running()?;
        py.detach(|| emulator.fault_always(path, fault.inner.clone()));
        Ok(())
    }

    /// Serves `provider`'s recorded `llm.chat` stream as timed chunks, one
    /// event each, sent `delay` seconds apart; returns the path it answers
    /// (its plain chat reply is no longer served there).
    #[pyo3(signature = (provider, delay = 0.0))]
    fn stream(&self, py: Python<'_>, provider: &str, delay: f64) -> PyResult<String> {
        let emulator = self.running()?;
        let delay = seconds(delay)?;
        let found = polyrelay::internal::find_provider(provider)
            .ok_or_else(|| PyValueError::new_err(format!("no built-in provider `{provider}`")))?;
        let (path, reply) = found
            .streams_chat()
            .and_then(|streams| {
                let fixture = streams.stream_fixtures().first()?;
                let reply = emulation::stream_reply(found, delay)?;
                Some((format!("/{provider}{}", fixture.path), reply))
            })
            .ok_or_else(|| PyValueError::new_err(format!("`{provider}` does not stream")))?;
        let route = path.clone();
        py.detach(move || emulator.route(Method::POST, &route, reply));
        Ok(path)
    }

    /// Plays a scripted model on `provider`'s chat path (any built-in LLM
    /// provider, in its own wire format): `script` is JSON text of a list
    /// of turns (see `polyrelay::emulation::script_chat`); returns the
    /// path (for Gemini a pattern covering its plain and streamed paths).
    #[pyo3(signature = (provider, script, model = "gpt-4.1"))]
    fn script_chat(
        &self,
        py: Python<'_>,
        provider: &str,
        script: &str,
        model: &str,
    ) -> PyResult<String> {
        let emulator = self.running()?;
        let script: serde_json::Value = serde_json::from_str(script)
            .map_err(|e| PyValueError::new_err(format!("the script is not JSON: {e}")))?;
        py.detach(|| emulation::script_chat(&emulator, provider, model, &script))
            .map_err(PyValueError::new_err)
    }

    /// Removes every fault.
    fn clear_faults(&self, py: Python<'_>) -> PyResult<()> {
        let emulator = self.running()?;
        py.detach(|| emulator.clear_faults());
        Ok(())
    }

    /// Logged requests, oldest first; only those matching `path` if given.
    #[pyo3(signature = (path = None))]
    fn requests(&self, py: Python<'_>, path: Option<&str>) -> PyResult<Vec<RecordedRequest>> {
        let emulator = self.running()?;
        let requests = py.detach(|| match path {
            Some(path) => emulator.requests_to(path),
            None => emulator.requests(),
        });
        Ok(requests.into_iter().map(RecordedRequest::from).collect())
    }

    /// How many logged requests match `path`.
    fn hits(&self, py: Python<'_>, path: &str) -> PyResult<usize> {
        let emulator = self.running()?;
        Ok(py.detach(|| emulator.hits(path)))
    }

    /// Forgets every logged request.
    fn clear_log(&self, py: Python<'_>) -> PyResult<()> {
        let emulator = self.running()?;
        py.detach(|| emulator.clear_log());
        Ok(())
    }

    /// Turns the request log on (the default) or off; off, requests are
    /// only counted (`served`), so long runs (benchmarks, memory tests)
    /// neither pay for recording nor grow memory.
    fn set_logging(&self, py: Python<'_>, enabled: bool) -> PyResult<()> {
        let emulator = self.running()?;
        py.detach(|| emulator.set_logging(enabled));
        Ok(())
    }

    /// Requests received since start, logged or not.
    #[getter]
    fn served(&self) -> PyResult<u64> {
        Ok(self.running()?.served())
    }

    /// The most requests answered at the same time since start or the last
    /// `reset_peak_in_flight()`: how much concurrency clients really used.
    #[getter]
    fn peak_in_flight(&self) -> PyResult<u64> {
        Ok(self.running()?.peak_in_flight())
    }

    /// Starts measuring `peak_in_flight` afresh.
    fn reset_peak_in_flight(&self) -> PyResult<()> {
        self.running()?.reset_peak_in_flight();
        Ok(())
    }

    /// Waits (GIL released) until `count` requests matching `path` were
    /// logged; `TimeoutError` after `timeout` seconds.
    #[pyo3(signature = (path, count = 1, timeout = 5.0))]
    fn wait_for_requests(
        &self,
        py: Python<'_>,
        path: String,
        count: usize,
        timeout: f64,
    ) -> PyResult<Vec<RecordedRequest>> {
        let emulator = self.running()?;
        let timeout = seconds(timeout)?;
        let waited = bridge::block_on(py, async move {
            emulator.wait_for_requests(&path, count, timeout).await
        })?;
        collect(waited)
    }

    /// Waits (GIL released) until `count` requests matching `path` were
    /// abandoned by their client before the answer was complete (a
    /// cancelled call); `TimeoutError` after `timeout` seconds.
    #[pyo3(signature = (path, count = 1, timeout = 5.0))]
    fn wait_for_closed_early(
        &self,
        py: Python<'_>,
        path: String,
        count: usize,
        timeout: f64,
    ) -> PyResult<Vec<RecordedRequest>> {
        let emulator = self.running()?;
        let timeout = seconds(timeout)?;
        let waited = bridge::block_on(py, async move {
            emulator.wait_for_closed_early(&path, count, timeout).await
        })?;
        collect(waited)
    }

    /// Stops the server and closes its connections.
    fn stop(&self, py: Python<'_>) {
        let emulator = self.inner.lock().take();
        py.detach(move || drop(emulator));
    }

    fn __repr__(&self) -> String {
        format!("<polyrelay emulator at {}>", self.url)
    }
}

fn seconds(value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err("timeout must be a non-negative number of seconds"))
}

fn collect<E: std::fmt::Display>(
    waited: Result<Vec<CoreRequest>, E>,
) -> PyResult<Vec<RecordedRequest>> {
    waited
        .map(|requests| requests.into_iter().map(RecordedRequest::from).collect())
        .map_err(|e| pyo3::exceptions::PyTimeoutError::new_err(e.to_string()))
}

/// A misbehaviour for the emulator to inject.
#[pyclass(module = "polyrelay._native", name = "Fault", frozen)]
pub(crate) struct Fault {
    inner: CoreFault,
    description: String,
}

impl Fault {
    fn new(inner: CoreFault, description: String) -> Self {
        Self { inner, description }
    }
}

#[pymethods]
impl Fault {
    /// Answer with `status` and a JSON error body.
    #[staticmethod]
    fn status(status: u16) -> Self {
        Self::new(CoreFault::status(status), format!("status({status})"))
    }

    /// Answer with this status, body, headers and `Retry-After` (seconds).
    #[staticmethod]
    #[pyo3(signature = (status, body = None, headers = None, retry_after = None))]
    fn respond(
        status: u16,
        body: Option<Vec<u8>>,
        headers: Option<BTreeMap<String, String>>,
        retry_after: Option<f64>,
    ) -> PyResult<Self> {
        let mut reply = Reply::new(status).with_body(body.unwrap_or_default());
        for (name, value) in headers.unwrap_or_default() {
            reply = reply.with_header(name, value);
        }
        if let Some(wait) = retry_after {
            reply = reply.with_retry_after(seconds(wait)?);
        }
        Ok(Self::new(
            CoreFault::Respond(reply),
            format!("respond({status})"),
        ))
    }

    /// Wait `seconds`, then answer normally.
    #[staticmethod]
    fn latency(seconds: f64) -> PyResult<Self> {
        Ok(Self::new(
            CoreFault::Latency(self::seconds(seconds)?),
            format!("latency({seconds})"),
        ))
    }

    /// Never answer (until the client gives up).
    #[staticmethod]
    fn hang() -> Self {
        Self::new(CoreFault::Hang, "hang()".into())
    }

    /// Close the connection abruptly without answering.
    #[staticmethod]
    fn reset() -> Self {
        Self::new(CoreFault::Reset, "reset()".into())
    }

    /// Answer 200 with a body that is not valid JSON.
    #[staticmethod]
    fn malformed() -> Self {
        Self::new(CoreFault::Malformed, "malformed()".into())
    }

    /// Answer 200 with a JSON body of exactly `size` bytes.
    #[staticmethod]
    fn oversized(size: u64) -> Self {
        Self::new(CoreFault::Oversized(size), format!("oversized({size})"))
    }

    /// Answer with the normal status and headers but this body.
    #[staticmethod]
    fn replace_body(body: Vec<u8>) -> Self {
        Self::new(
            CoreFault::ReplaceBody(body.into()),
            "replace_body(...)".into(),
        )
    }

    /// Misbehave at chunk `index` (from 0) of a streamed reply: `"cut"`
    /// the connection, `"stall"` (send nothing more, never end), `"insert"`
    /// `body` before the chunk (a malformed event), or `"end_with"` `body`
    /// instead of the rest (an error event).
    #[staticmethod]
    #[pyo3(signature = (index, action, body = None))]
    fn at_chunk(index: usize, action: &str, body: Option<Vec<u8>>) -> PyResult<Self> {
        let fault = match (action, body) {
            ("cut", None) => ChunkFault::Cut,
            ("stall", None) => ChunkFault::Stall,
            ("insert", Some(body)) => ChunkFault::Insert(body.into()),
            ("end_with", Some(body)) => ChunkFault::EndWith(body.into()),
            _ => {
                return Err(PyValueError::new_err(
                    "action must be \"cut\" or \"stall\" (without a body), \
                     or \"insert\" or \"end_with\" (with one)",
                ))
            }
        };
        Ok(Self::new(
            CoreFault::AtChunk(index, fault),
            format!("at_chunk({index}, {action:?})"),
        ))
    }

    fn __repr__(&self) -> String {
        format!("Fault.{}", self.description)
    }
}

/// One request as the emulator received it.
#[pyclass(module = "polyrelay._native", name = "RecordedRequest", frozen)]
pub(crate) struct RecordedRequest {
    inner: CoreRequest,
}

impl From<CoreRequest> for RecordedRequest {
    fn from(inner: CoreRequest) -> Self {
        Self { inner }
    }
}

#[pymethods]
impl RecordedRequest {
    /// `GET`, `POST`, …
    #[getter]
    fn method(&self) -> &str {
        self.inner.method.as_str()
    }

    /// The path, without the query.
    #[getter]
    fn path(&self) -> &str {
        &self.inner.path
    }

    /// The raw query string, if any.
    #[getter]
    fn query(&self) -> Option<&str> {
        self.inner.query.as_deref()
    }

    /// The decoded query pairs, in order.
    #[getter]
    fn query_pairs(&self) -> Vec<(String, String)> {
        self.inner.query_pairs.clone()
    }

    /// Headers (lower-case names; the last value of repeated ones).
    #[getter]
    fn headers(&self) -> BTreeMap<String, String> {
        self.inner
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect()
    }

    /// The request body.
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.body)
    }

    /// Which TCP connection carried it (numbered in accept order).
    #[getter]
    fn connection(&self) -> u64 {
        self.inner.connection
    }

    /// The client closed the connection before the answer was complete.
    #[getter]
    fn closed_early(&self) -> bool {
        self.inner.closed_early
    }

    /// The first value of header `name`, if present.
    fn header(&self, name: &str) -> Option<&str> {
        self.inner.header(name)
    }

    /// The first decoded value of query parameter `name`.
    fn query_param(&self, name: &str) -> Option<&str> {
        self.inner.query_param(name)
    }

    fn __repr__(&self) -> String {
        format!(
            "<RecordedRequest {} {}{}>",
            self.inner.method,
            self.inner.path,
            if self.inner.closed_early {
                " (closed early)"
            } else {
                ""
            }
        )
    }
}
