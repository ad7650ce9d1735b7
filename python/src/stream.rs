//! Streamed chat answers: `ChatStream` (iterated by `for`) and
//! `AsyncChatStream` (iterated by `async for`), each over one core
//! [`polyrelay::ChatStream`].
//!
//! The first read has the core stream read ahead on the runtime
//! ([`ReadAhead`]), its pump's first poll (which sends the request) on
//! this thread. Python then takes what was read without leaving its
//! thread and waits only when nothing is queued: a `for` loop's thread
//! parks until the pump wakes it; an `async for` read is an asyncio
//! future that the pump's wake-up resolves through the event loop's
//! inbox.
//!
//! `close()`, Ctrl-C, a cancelled read and the stream object being
//! collected drop the read-ahead, which stops the pump; it drops the core
//! stream, and so closes the upstream request.

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use parking_lot::Mutex;
use polyrelay::{ChatChunk as CoreChunk, Error, ReadAhead, StreamEnd};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;

use crate::bridge::{self, Promise};
use crate::result::CallResult;
use crate::{convert, errors};

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

/// One stream's state, shared by its Python object and a waiting read.
struct State {
    /// The core stream until the first read.
    idle: Option<polyrelay::ChatStream>,
    /// The core stream read ahead, from the first read until it is closed.
    ahead: Option<ReadAhead>,
    /// A read waits, or its chunk is on its way to the event loop.
    reading: bool,
    /// The answer text handed to Python so far.
    text: String,
    end: Option<End>,
}

/// What an iteration hands to Python next.
enum Next {
    Chunk(CoreChunk),
    Failed(Error),
    Stop,
    /// A read is already in progress (two readers at once).
    Busy,
}

/// The next step of an iteration.
enum Step {
    Now(Next),
    /// Nothing read yet: wait.
    Wait,
}

impl State {
    /// The next item read ahead, handed over; `None` if there is none yet
    /// (then `cx`'s waker is woken when there is).
    fn poll(&mut self, cx: &mut Context<'_>) -> Option<Next> {
        // Without a read-ahead, the stream was closed.
        let polled = self
            .ahead
            .as_ref()
            .map_or(Poll::Ready(None), |ahead| ahead.poll_next(cx));
        match polled {
            Poll::Ready(Some(item)) => Some(self.hand_over(item)),
            Poll::Ready(None) => {
                self.end.get_or_insert(End::Closed);
                Some(Next::Stop)
            }
            Poll::Pending => None,
        }
    }

    /// `item` as Python will see it, noting what it ends.
    fn hand_over(&mut self, item: Item) -> Next {
        match item {
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
        }
    }

    /// Ends the stream unless it already ended; what it held, to drop
    /// (dropping the read-ahead stops its pump and wakes a waiting read).
    fn close(&mut self) -> (Option<polyrelay::ChatStream>, Option<ReadAhead>) {
        self.end.get_or_insert(End::Closed);
        (self.idle.take(), self.ahead.take())
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

type Shared = Arc<Mutex<State>>;

/// Closes the stream in `shared` (see [`State::close`]).
fn close(py: Python<'_>, shared: &Shared) {
    let held = shared.lock().close();
    py.detach(move || drop(held));
}

/// Wakes a waiting `async for` read: its asyncio future gets the next
/// item, taken on the loop's thread.
struct LoopWaker {
    promise: Mutex<Option<Promise>>,
    shared: Shared,
}

impl Wake for LoopWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(promise) = self.promise.lock().take() {
            promise.keep(Woken(Arc::clone(&self.shared)));
        }
    }
}

/// A waiting `async for` read, woken: its step is taken on the loop's
/// thread, where the chunk becomes the asyncio future's value.
struct Woken(Shared);

impl<'py> IntoPyObject<'py> for Woken {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let next = {
            let mut state = self.0.lock();
            state.reading = false;
            // A read-ahead wakes its reader only once it has an item, has
            // ended or was closed.
            state
                .poll(&mut Context::from_waker(Waker::noop()))
                .unwrap_or_else(|| {
                    Next::Failed(Error::Usage {
                        message: "a stream read was woken with nothing to read".to_string(),
                    })
                })
        };
        next_async(py, next, false)
    }
}

/// A stream's state and its Python `Result`.
struct Handle {
    shared: Shared,
    /// The Python `Result`, made on first access.
    result: PyOnceLock<Py<CallResult>>,
}

impl Handle {
    fn new(stream: polyrelay::ChatStream) -> Self {
        Self {
            shared: Arc::new(Mutex::new(State {
                idle: Some(stream),
                ahead: None,
                reading: false,
                text: String::new(),
                end: None,
            })),
            result: PyOnceLock::new(),
        }
    }

    /// The next step of a read, without waiting; the first read starts
    /// reading ahead. (The state's lock is never held while Python code
    /// runs, which could wait for it with the GIL held.)
    fn step(&self, py: Python<'_>) -> PyResult<Step> {
        let mut state = self.shared.lock();
        if state.reading {
            return Ok(Step::Now(Next::Busy));
        }
        if state.end.is_some() {
            return Ok(Step::Now(Next::Stop));
        }
        if let Some(stream) = state.idle.take() {
            let (ahead, pump) = stream.read_ahead(ReadAhead::DEFAULT_CAPACITY);
            state.ahead = Some(ahead);
            drop(state);
            if let Err(error) = bridge::start(py, pump) {
                close(py, &self.shared);
                return Err(error);
            }
            state = self.shared.lock();
        }
        // A cache hit was all read by the pump's first poll.
        let ready = state.poll(&mut Context::from_waker(Waker::noop()));
        Ok(ready.map_or(Step::Wait, Step::Now))
    }

    /// Blocks this thread (GIL released) until the next item; Ctrl-C
    /// closes the stream and raises.
    fn wait(&self, py: Python<'_>) -> PyResult<Next> {
        self.shared.lock().reading = true;
        let waker = bridge::thread_waker();
        loop {
            let woken = py.detach(|| {
                let mut cx = Context::from_waker(&waker);
                let until = Instant::now() + bridge::SIGNAL_SLICE;
                loop {
                    let mut state = self.shared.lock();
                    if let Some(next) = state.poll(&mut cx) {
                        state.reading = false;
                        return Some(next);
                    }
                    drop(state);
                    let now = Instant::now();
                    if now >= until {
                        return None;
                    }
                    std::thread::park_timeout(until - now);
                }
            });
            match woken {
                Some(next) => return Ok(next),
                None => {
                    if let Err(interrupted) = py.check_signals() {
                        self.shared.lock().reading = false;
                        close(py, &self.shared);
                        return Err(interrupted);
                    }
                }
            }
        }
    }

    /// An asyncio future of the next item, or the item if it came
    /// meanwhile.
    fn wait_async<'py>(&self, py: Python<'py>) -> PyResult<Result<Bound<'py, PyAny>, Next>> {
        let (future, promise) = Promise::new(py)?;
        let waker = Waker::from(Arc::new(LoopWaker {
            promise: Mutex::new(Some(promise)),
            shared: Arc::clone(&self.shared),
        }));
        let mut state = self.shared.lock();
        if let Some(next) = state.poll(&mut Context::from_waker(&waker)) {
            return Ok(Err(next)); // the unused future is dropped
        }
        state.reading = true;
        drop(state);
        future.call_method1(
            pyo3::intern!(py, "add_done_callback"),
            (CloseIfCancelled(Arc::clone(&self.shared)),),
        )?;
        Ok(Ok(future))
    }

    fn close(&self, py: Python<'_>) {
        close(py, &self.shared);
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

impl Drop for Handle {
    /// The stream object was collected: its read-ahead stops.
    fn drop(&mut self) {
        let held = self.shared.lock().close();
        drop(held);
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
        let next = match self.0.step(py)? {
            Step::Now(next) => next,
            Step::Wait => self.0.wait(py)?,
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

    /// Whether the last read's asyncio future was cancelled (its done
    /// callback, which closes the stream, may not have run yet).
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
        match self.0.step(py)? {
            Step::Now(Next::Busy) if self.read_cancelled(py) => {
                self.0.close(py);
                Err(PyStopAsyncIteration::new_err(()))
            }
            Step::Now(next) => next_async(py, next, true),
            Step::Wait => match self.0.wait_async(py)? {
                Ok(future) => {
                    *self.1.lock() = Some(future.clone().unbind());
                    Ok(future)
                }
                Err(next) => next_async(py, next, true),
            },
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

/// Done callback of a waiting read's asyncio future: a cancelled read
/// (a cancelled task, a timeout) closes the stream.
#[pyclass(module = "polyrelay._native", frozen)]
struct CloseIfCancelled(Shared);

#[pymethods]
impl CloseIfCancelled {
    fn __call__(&self, py: Python<'_>, future: &Bound<'_, PyAny>) {
        let cancelled = future
            .call_method0(pyo3::intern!(py, "cancelled"))
            .and_then(|c| c.is_truthy())
            .unwrap_or(false);
        if cancelled {
            close(py, &self.0);
        }
    }
}
