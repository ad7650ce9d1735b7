//! Streamed chat answers: `ChatStream` (iterated by `for`) and
//! `AsyncChatStream` (iterated by `async for`), each over one core
//! [`polyrelay::ChatStream`].
//!
//! A read takes the core stream out of the shared state for its duration
//! ([`Lease`]) and brings back every chunk that is ready by then, so a
//! burst of chunks costs one crossing into the runtime; the chunks are
//! handed to Python one by one. A read that is abandoned (Ctrl-C, a
//! cancelled task) drops the core stream, which closes the upstream
//! request; so do `close()` and the stream object being collected.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::FutureExt;
use parking_lot::Mutex;
use polyrelay::{ChatChunk as CoreChunk, Error, StreamEnd};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;
use tokio::sync::Notify;

use crate::result::CallResult;
use crate::{bridge, convert, errors};

/// The most chunks one read brings back: enough to amortise a crossing,
/// few enough that a fast stream is still handed on in pieces.
const MOST_PER_READ: usize = 64;

type Item = polyrelay::Result<CoreChunk>;

/// How a stream ended.
enum End {
    /// Completed: the final chunk's facts.
    Completed(Box<StreamEnd>),
    /// Raised an error (already handed to Python).
    Failed,
    /// Closed before its end: by `close()`, Ctrl-C or a cancelled read.
    Closed,
}

/// One stream's state, shared by its Python object and a read in flight.
struct Shared {
    /// The core stream while no read holds it.
    idle: Option<polyrelay::ChatStream>,
    /// A read holds the core stream.
    reading: bool,
    /// Read, not yet handed to Python.
    pending: VecDeque<Item>,
    /// The answer text handed to Python so far.
    text: String,
    end: Option<End>,
}

/// What an iteration hands to Python next.
enum Next {
    Chunk(CoreChunk),
    Failed(Error),
    Stop,
    /// A read is already in flight (two readers at once).
    Busy,
}

/// The next step of an iteration.
enum Step {
    Now(Next),
    /// Nothing is ready: read the core stream.
    Read(polyrelay::ChatStream),
}

impl Shared {
    /// The next item to hand to Python, or the core stream to read.
    fn step(&mut self) -> Step {
        if let Some(item) = self.pending.pop_front() {
            return Step::Now(match item {
                Ok(CoreChunk::Done(end)) => {
                    self.end = Some(End::Completed(end));
                    Next::Stop
                }
                Ok(chunk) => {
                    self.text.push_str(chunk.text());
                    Next::Chunk(chunk)
                }
                Err(error) => {
                    self.end = Some(End::Failed);
                    Next::Failed(error)
                }
            });
        }
        if self.end.is_some() {
            return Step::Now(Next::Stop);
        }
        if self.reading {
            return Step::Now(Next::Busy);
        }
        match self.idle.take() {
            Some(stream) => {
                self.reading = true;
                Step::Read(stream)
            }
            None => {
                self.end = Some(End::Closed);
                Step::Now(Next::Stop)
            }
        }
    }

    /// Ends the stream unless it already ended; what it held, to drop.
    fn close(&mut self) -> Option<polyrelay::ChatStream> {
        if self.end.is_none() {
            self.end = Some(End::Closed);
        }
        self.pending.clear();
        self.idle.take()
    }
}

fn usage(py: Python<'_>, message: &str) -> PyErr {
    errors::to_py(
        py,
        Error::Usage {
            message: message.to_string(),
        },
    )
}

/// The state of one stream and the signal that stops a read in flight.
struct Handle {
    shared: Arc<Mutex<Shared>>,
    closing: Arc<Notify>,
    /// The Python `Result`, made on first access.
    result: PyOnceLock<Py<CallResult>>,
}

impl Handle {
    fn new(stream: polyrelay::ChatStream) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                idle: Some(stream),
                reading: false,
                pending: VecDeque::new(),
                text: String::new(),
                end: None,
            })),
            closing: Arc::new(Notify::new()),
            result: PyOnceLock::new(),
        }
    }

    /// The next step. (The state's lock is never held while Python code
    /// runs, which could wait for it with the GIL held.)
    fn step(&self) -> Step {
        self.shared.lock().step()
    }

    fn lease(&self, stream: polyrelay::ChatStream) -> Lease {
        Lease {
            shared: Arc::clone(&self.shared),
            stream: Some(stream),
            items: Vec::new(),
            returned: false,
        }
    }

    fn close(&self, py: Python<'_>) {
        let stream = self.shared.lock().close();
        // Stops a read in flight, now or as soon as it starts waiting.
        self.closing.notify_one();
        py.detach(move || drop(stream));
    }

    fn text(&self) -> String {
        self.shared.lock().text.clone()
    }

    fn closed(&self) -> bool {
        self.shared.lock().end.is_some()
    }

    /// `f` of the completed stream's end, or `UsageError` saying why there
    /// is none.
    fn completed<T>(&self, py: Python<'_>, f: impl FnOnce(&StreamEnd) -> T) -> PyResult<T> {
        let why = match &self.shared.lock().end {
            Some(End::Completed(end)) => return Ok(f(end)),
            Some(End::Failed) => "the stream failed: it has no result",
            Some(End::Closed) => "the stream was closed before its end: it has no result",
            None => "the stream has not completed yet: read it to the end first",
        };
        Err(usage(py, why))
    }

    fn result(&self, py: Python<'_>) -> PyResult<Py<CallResult>> {
        if let Some(result) = self.result.get(py) {
            return Ok(result.clone_ref(py));
        }
        let envelope = self.completed(py, |end| end.envelope.clone())?;
        let result = self
            .result
            .get_or_try_init(py, || Py::new(py, CallResult::new(envelope)))?;
        Ok(result.clone_ref(py))
    }

    fn parts(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let parts = self.completed(py, |end| end.parts.clone())?;
        convert::serialize(py, &parts)
    }

    fn time_to_first_token(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.completed(py, |end| end.time_to_first_token.map(|d| d.as_secs_f64()))
    }
}

/// A read in flight: holds the core stream and brings back what it read.
/// Dropped before it was returned (the read was abandoned), it closes the
/// stream.
struct Lease {
    shared: Arc<Mutex<Shared>>,
    /// `None` once the stream ended or was closed during the read.
    stream: Option<polyrelay::ChatStream>,
    items: Vec<Item>,
    returned: bool,
}

impl Lease {
    /// Reads the next item, waiting for it unless `closing` is signalled,
    /// then every item already there.
    async fn read(mut self, closing: Arc<Notify>) -> Self {
        let over = match self.stream.as_mut() {
            Some(stream) => read_into(stream, &mut self.items, &closing).await,
            None => true,
        };
        if over {
            self.stream = None;
        }
        self
    }

    /// Puts the stream and what was read back into the shared state (a
    /// stream closed meanwhile is dropped), then takes the next step.
    fn give_back(mut self) -> Next {
        self.returned = true;
        let stream = self.stream.take();
        let items = std::mem::take(&mut self.items);
        let mut shared = self.shared.lock();
        shared.reading = false;
        let mut leftover = None;
        if shared.end.is_none() {
            shared.pending.extend(items);
            shared.idle = stream;
        } else {
            leftover = stream;
        }
        let next = match shared.step() {
            Step::Now(next) => next,
            // Cannot happen: a read that keeps the stream brings an item
            // back. Ending the stream beats leaving it unread.
            Step::Read(stream) => {
                shared.reading = false;
                shared.end = Some(End::Closed);
                leftover = Some(stream);
                Next::Stop
            }
        };
        drop(shared);
        drop(leftover);
        next
    }
}

/// Reads `stream` into `items` (see [`Lease::read`]); whether the stream
/// is over: ended, or closed by `closing`.
async fn read_into(
    stream: &mut polyrelay::ChatStream,
    items: &mut Vec<Item>,
    closing: &Notify,
) -> bool {
    let mut next = tokio::select! {
        biased;
        () = closing.notified() => return true,
        item = stream.next() => item,
    };
    loop {
        let Some(item) = next else {
            return true;
        };
        let last = !matches!(item, Ok(CoreChunk::Text(_) | CoreChunk::Reasoning(_)));
        items.push(item);
        if last {
            return true;
        }
        if items.len() >= MOST_PER_READ {
            return false;
        }
        next = match stream.next().now_or_never() {
            Some(item) => item,
            None => return false,
        };
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.returned {
            let mut shared = self.shared.lock();
            shared.reading = false;
            shared.close();
        }
    }
}

/// A piece of a streamed answer: `text` to append to the answer, or hidden
/// `reasoning`.
#[pyclass(module = "polyrelay", name = "ChatChunk", frozen)]
pub(crate) struct PyChatChunk {
    content: Py<PyString>,
    reasoning: bool,
}

impl PyChatChunk {
    /// The Python chunk for a text or reasoning chunk.
    fn new(py: Python<'_>, chunk: CoreChunk) -> Self {
        let (content, reasoning) = match chunk {
            CoreChunk::Reasoning(text) => (text, true),
            CoreChunk::Text(text) => (text, false),
            _ => (String::new(), false),
        };
        Self {
            content: PyString::new(py, &content).unbind(),
            reasoning,
        }
    }

    fn empty(py: Python<'_>) -> Py<PyString> {
        pyo3::intern!(py, "").clone().unbind()
    }
}

#[pymethods]
impl PyChatChunk {
    /// The answer text this chunk adds (empty for reasoning).
    #[getter]
    fn text(&self, py: Python<'_>) -> Py<PyString> {
        if self.reasoning {
            Self::empty(py)
        } else {
            self.content.clone_ref(py)
        }
    }

    /// The hidden reasoning this chunk adds (empty for answer text).
    #[getter]
    fn reasoning(&self, py: Python<'_>) -> Py<PyString> {
        if self.reasoning {
            self.content.clone_ref(py)
        } else {
            Self::empty(py)
        }
    }

    /// `"text"` or `"reasoning"`.
    #[getter]
    fn kind(&self) -> &'static str {
        if self.reasoning {
            "reasoning"
        } else {
            "text"
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "ChatChunk({}={})",
            self.kind(),
            self.content.bind(py).repr()?
        ))
    }
}

/// What a `for` loop sees.
fn next_sync(py: Python<'_>, next: Next) -> PyResult<Option<PyChatChunk>> {
    match next {
        Next::Chunk(chunk) => Ok(Some(PyChatChunk::new(py, chunk))),
        Next::Failed(error) => Err(errors::to_py(py, error)),
        Next::Stop => Ok(None),
        Next::Busy => Err(usage(py, BUSY)),
    }
}

const BUSY: &str = "this stream is already being read";

/// A streamed chat answer, read with `for`: each item a `ChatChunk`; at
/// the end, `result` is the whole answer. Reading blocks with the GIL
/// released; Ctrl-C, `close()` or collecting the stream closes the
/// upstream request.
#[pyclass(module = "polyrelay", name = "ChatStream", frozen)]
pub(crate) struct ChatStream(Handle);

impl ChatStream {
    pub(crate) fn new(stream: polyrelay::ChatStream) -> Self {
        Self(Handle::new(stream))
    }
}

#[pymethods]
impl ChatStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyChatChunk>> {
        let next = match self.0.step() {
            Step::Now(next) => next,
            Step::Read(stream) => {
                let read = self.0.lease(stream).read(Arc::clone(&self.0.closing));
                match bridge::block_on(py, read) {
                    Ok(lease) => lease.give_back(),
                    Err(interrupted) => {
                        // Ctrl-C dropped the read, and with it the stream
                        // (maybe a little later, on the runtime).
                        self.0.close(py);
                        return Err(interrupted);
                    }
                }
            }
        };
        next_sync(py, next)
    }

    /// Closes the upstream request; the iteration ends. Harmless once the
    /// stream ended.
    fn close(&self, py: Python<'_>) {
        self.0.close(py);
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) {
        self.0.close(py);
    }

    /// The answer text read so far (all of it once the stream completed).
    #[getter]
    fn text(&self) -> String {
        self.0.text()
    }

    /// The stream is over: completed, failed or closed.
    #[getter]
    fn closed(&self) -> bool {
        self.0.closed()
    }

    /// The whole answer, as a plain call returns it (`UsageError` before
    /// the stream completed).
    #[getter]
    fn result(&self, py: Python<'_>) -> PyResult<Py<CallResult>> {
        self.0.result(py)
    }

    /// Which provider wrote which part: `[{"provider", "chars"}]`.
    #[getter]
    fn parts(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.0.parts(py)
    }

    /// Seconds from the call to the first text (`None` for a cache hit).
    #[getter]
    fn time_to_first_token(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.0.time_to_first_token(py)
    }

    fn __repr__(&self) -> String {
        repr("ChatStream", &self.0)
    }
}

fn repr(class: &str, handle: &Handle) -> String {
    let state = match &handle.shared.lock().end {
        None => "open",
        Some(End::Completed(_)) => "completed",
        Some(End::Failed) => "failed",
        Some(End::Closed) => "closed",
    };
    format!("<polyrelay.{class} ({state})>")
}

/// An awaitable already resolved to its value.
#[pyclass(module = "polyrelay._native", frozen)]
pub(crate) struct Ready(Py<PyAny>);

impl Ready {
    fn of(value: Bound<'_, PyAny>) -> PyResult<Bound<'_, PyAny>> {
        let py = value.py();
        Ok(Bound::new(py, Ready(value.unbind()))?.into_any())
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<()> {
        Err(PyStopIteration::new_err((self.0.clone_ref(py),)))
    }
}

/// What an `async for` loop sees: an awaitable of the next chunk.
fn next_async(py: Python<'_>, next: Next, ready: bool) -> PyResult<Bound<'_, PyAny>> {
    match next {
        Next::Chunk(chunk) => {
            let chunk = Bound::new(py, PyChatChunk::new(py, chunk))?.into_any();
            if ready {
                Ready::of(chunk)
            } else {
                Ok(chunk)
            }
        }
        Next::Failed(error) => Err(errors::to_py(py, error)),
        Next::Stop => Err(PyStopAsyncIteration::new_err(())),
        Next::Busy => Err(usage(py, BUSY)),
    }
}

/// A finished read on its way to the event loop: given back there.
struct Arrived(Lease);

impl<'py> IntoPyObject<'py> for Arrived {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // The asyncio future's value: the chunk itself.
        next_async(py, self.0.give_back(), false)
    }
}

/// A streamed chat answer, read with `async for`: each item a `ChatChunk`;
/// at the end, `result` is the whole answer. Reading never blocks the
/// event loop; cancelling a read, `aclose()` or collecting the stream
/// closes the upstream request. Awaiting it gives the stream itself.
#[pyclass(module = "polyrelay", name = "AsyncChatStream", frozen)]
pub(crate) struct AsyncChatStream(Handle, Mutex<Option<Py<PyAny>>>);

impl AsyncChatStream {
    pub(crate) fn new(stream: polyrelay::ChatStream) -> Self {
        Self(Handle::new(stream), Mutex::new(None))
    }

    /// Whether the last read's asyncio future was cancelled (its Rust
    /// task, aborted, closes the stream when it is dropped, maybe later).
    fn read_cancelled(&self, py: Python<'_>) -> bool {
        let last = self.1.lock().as_ref().map(|f| f.clone_ref(py));
        last.is_some_and(|future| {
            future
                .call_method0(py, pyo3::intern!(py, "cancelled"))
                .and_then(|c| c.is_truthy(py))
                .unwrap_or(false)
        })
    }
}

#[pymethods]
impl AsyncChatStream {
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0.step() {
            Step::Now(Next::Busy) if self.read_cancelled(py) => {
                self.0.close(py);
                Err(PyStopAsyncIteration::new_err(()))
            }
            Step::Now(next) => next_async(py, next, true),
            Step::Read(stream) => {
                let read = self.0.lease(stream).read(Arc::clone(&self.0.closing));
                let future =
                    bridge::awaitable(py, read.map(|lease| Ok::<_, Never>(Arrived(lease))))?;
                *self.1.lock() = Some(future.clone().unbind());
                Ok(future)
            }
        }
    }

    /// `await client.llm.stream(...)` gives the stream itself.
    fn __await__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, PyAny>> {
        Ready::of(slf.into_any())
    }

    /// Closes the upstream request; the iteration ends. Harmless once the
    /// stream ended.
    fn close(&self, py: Python<'_>) {
        self.0.close(py);
    }

    /// Same as `close()`, awaitable.
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.0.close(py);
        Ready::of(py.None().into_bound(py))
    }

    fn __aenter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, PyAny>> {
        Ready::of(slf.into_any())
    }

    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.0.close(py);
        Ready::of(py.None().into_bound(py))
    }

    /// The answer text read so far (all of it once the stream completed).
    #[getter]
    fn text(&self) -> String {
        self.0.text()
    }

    /// The stream is over: completed, failed or closed.
    #[getter]
    fn closed(&self) -> bool {
        self.0.closed()
    }

    /// The whole answer, as a plain call returns it (`UsageError` before
    /// the stream completed).
    #[getter]
    fn result(&self, py: Python<'_>) -> PyResult<Py<CallResult>> {
        self.0.result(py)
    }

    /// Which provider wrote which part: `[{"provider", "chars"}]`.
    #[getter]
    fn parts(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.0.parts(py)
    }

    /// Seconds from the call to the first text (`None` for a cache hit).
    #[getter]
    fn time_to_first_token(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.0.time_to_first_token(py)
    }

    fn __repr__(&self) -> String {
        repr("AsyncChatStream", &self.0)
    }
}

/// The error of a read, which cannot fail (its failures are items).
enum Never {}

impl errors::ToPyErr for Never {
    fn to_py_err(self, _py: Python<'_>) -> PyErr {
        match self {}
    }
}
