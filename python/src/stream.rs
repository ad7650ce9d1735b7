//! Streamed chat answers: `ChatStream` (iterated by `for`) and
//! `AsyncChatStream` (iterated by `async for`), each over one core
//! [`polyrelay::ChatStream`].
//!
//! The first read starts a *pump*: a task on the runtime that reads the
//! core stream ahead of Python into a bounded queue. Reading on the
//! runtime's own threads matters because hyper reads a response's next
//! piece only when asked: a reader on another thread (the event loop's)
//! would pay two thread crossings per chunk, and on a virtual machine a
//! crossing to a sleeping CPU costs tens of microseconds. Python takes
//! what is queued without leaving its thread and waits only when the
//! queue is empty: the pump wakes a waiting `for` loop's thread, or
//! resolves a waiting `async for` read's future through the event loop's
//! inbox.
//!
//! `close()`, Ctrl-C, a cancelled read and the stream object being
//! collected stop the pump, which drops the core stream and so closes the
//! upstream request.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::Thread;
use std::time::Instant;

use futures::FutureExt;
use parking_lot::Mutex;
use polyrelay::{ChatChunk as CoreChunk, Error, StreamEnd};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;
use tokio::sync::Notify;

use crate::bridge::{self, Promise};
use crate::result::CallResult;
use crate::{convert, errors};

/// The most chunks the pump reads ahead of Python: plenty to absorb a
/// burst, and a bound on what a consumer that stopped reading holds.
const READ_AHEAD: usize = 256;

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

/// Who waits for the pump's next item.
enum Waiter {
    /// A thread blocked in `for`.
    Thread(Thread),
    /// An `async for` read's future.
    Loop(Promise),
}

/// One stream's state.
struct State {
    /// The core stream until the first read hands it to the pump.
    idle: Option<polyrelay::ChatStream>,
    /// Read by the pump, not yet handed to Python.
    pending: VecDeque<Item>,
    /// The pump read the stream's last item.
    pumped: bool,
    /// The pump waits for room in `pending`.
    full: bool,
    /// A read is in progress: it waits, or its item is on its way.
    reading: bool,
    waiter: Option<Waiter>,
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
    /// Nothing read yet: start the pump with the core stream.
    Start(polyrelay::ChatStream),
    /// Nothing queued: wait for the pump.
    Wait,
}

impl State {
    fn new(stream: polyrelay::ChatStream) -> Self {
        Self {
            idle: Some(stream),
            pending: VecDeque::new(),
            pumped: false,
            full: false,
            reading: false,
            waiter: None,
            text: String::new(),
            end: None,
        }
    }

    /// The next step of a read (not yet in progress), without waiting;
    /// whether the pump was waiting for room and should be told there is.
    fn step(&mut self) -> (Step, bool) {
        if self.reading {
            return (Step::Now(Next::Busy), false);
        }
        if let Some(item) = self.pending.pop_front() {
            let room = std::mem::take(&mut self.full);
            return (Step::Now(self.hand_over(item)), room);
        }
        let step = if self.end.is_some() || self.pumped {
            self.end.get_or_insert(End::Closed);
            Step::Now(Next::Stop)
        } else {
            match self.idle.take() {
                Some(stream) => Step::Start(stream),
                None => Step::Wait,
            }
        };
        (step, false)
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
    /// and to wake.
    fn close(&mut self) -> (Option<polyrelay::ChatStream>, Option<Waiter>) {
        self.end.get_or_insert(End::Closed);
        self.pending.clear();
        (self.idle.take(), self.waiter.take())
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

/// A stream's state and the signals to its pump, shared by the Python
/// object and the pump.
struct Pipe {
    state: Mutex<State>,
    /// Stops the pump.
    closing: Notify,
    /// Tells the pump there is room in `pending` again.
    room: Notify,
}

impl Pipe {
    /// The next step of a read, without waiting.
    fn step(&self) -> Step {
        let (step, room) = self.state.lock().step();
        if room {
            self.room.notify_one();
        }
        step
    }

    /// Waits as `waiter` unless an item came meanwhile: then its step.
    fn wait_as(&self, waiter: Waiter) -> Option<Next> {
        let mut state = self.state.lock();
        let (step, room) = state.step();
        match step {
            Step::Wait => {
                state.reading = true;
                state.waiter = Some(waiter);
                None
            }
            step => {
                drop(state);
                if room {
                    self.room.notify_one();
                }
                Some(after_start(step))
            }
        }
    }

    /// The step of a read the pump woke; `None` for a spurious wake-up
    /// (the read still waits).
    fn woken(&self) -> Option<Next> {
        let mut state = self.state.lock();
        if state.waiter.is_some() {
            return None;
        }
        state.reading = false;
        let (step, room) = state.step();
        drop(state);
        if room {
            self.room.notify_one();
        }
        Some(after_start(step))
    }

    /// Ends the stream (unless it already ended) and stops the pump; the
    /// core stream if the pump never took it, to drop.
    fn close(self: &Arc<Self>) -> Option<polyrelay::ChatStream> {
        let (stream, waiter) = self.state.lock().close();
        // Stops the pump, now or as soon as it next looks.
        self.closing.notify_one();
        if let Some(waiter) = waiter {
            wake(waiter, self);
        }
        stream
    }
}

/// A step taken once the pump started (it can neither start again nor
/// leave a woken read waiting).
fn after_start(step: Step) -> Next {
    match step {
        Step::Now(next) => next,
        Step::Start(_) | Step::Wait => Next::Stop,
    }
}

/// Wakes `waiter`: its read takes the next step.
fn wake(waiter: Waiter, pipe: &Arc<Pipe>) {
    match waiter {
        Waiter::Thread(thread) => thread.unpark(),
        Waiter::Loop(promise) => promise.keep(Woken(Arc::clone(pipe))),
    }
}

/// A waiting `async for` read, woken: its step is taken on the loop's
/// thread, where the chunk becomes the asyncio future's value.
struct Woken(Arc<Pipe>);

impl<'py> IntoPyObject<'py> for Woken {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let next = self.0.woken().unwrap_or(Next::Stop);
        next_async(py, next, false)
    }
}

/// The pump: reads `stream` into `pipe` until its last item, or until
/// `closing` is signalled, then drops it (which closes the upstream
/// request if it was not over).
async fn pump(mut stream: polyrelay::ChatStream, pipe: Arc<Pipe>) {
    loop {
        let next = tokio::select! {
            biased;
            () = pipe.closing.notified() => return,
            next = AssertUnwindSafe(stream.next()).catch_unwind() => next,
        };
        let item = match next {
            Ok(Some(item)) => item,
            // Cannot happen: the core stream ends with `Done` or an error.
            Ok(None) => Err(Error::Usage {
                message: "the stream ended without its final chunk".to_string(),
            }),
            // A bug; reported rather than leaving the reader waiting.
            Err(panic) => Err(Error::Usage {
                message: format!("the stream failed: {}", errors::panic_message(&panic)),
            }),
        };
        let over = !matches!(item, Ok(CoreChunk::Text(_) | CoreChunk::Reasoning(_)));
        let (waiter, full) = {
            let mut state = pipe.state.lock();
            if state.end.is_some() {
                return; // closed meanwhile
            }
            state.pending.push_back(item);
            state.pumped = over;
            let waiter = state.waiter.take();
            state.full = !over && state.pending.len() >= READ_AHEAD;
            (waiter, state.full)
        };
        if let Some(waiter) = waiter {
            wake(waiter, &pipe);
        }
        if over {
            return;
        }
        if full {
            tokio::select! {
                biased;
                () = pipe.closing.notified() => return,
                () = pipe.room.notified() => {}
            }
        }
    }
}

/// A stream's pipe and its Python `Result`.
struct Handle {
    pipe: Arc<Pipe>,
    /// The Python `Result`, made on first access.
    result: PyOnceLock<Py<CallResult>>,
}

impl Handle {
    fn new(stream: polyrelay::ChatStream) -> Self {
        Self {
            pipe: Arc::new(Pipe {
                state: Mutex::new(State::new(stream)),
                closing: Notify::new(),
                room: Notify::new(),
            }),
            result: PyOnceLock::new(),
        }
    }

    /// The next step of a read, without waiting; the first read starts
    /// the pump. (The state's lock is never held while Python code runs,
    /// which could wait for it with the GIL held.)
    fn step(&self, py: Python<'_>) -> PyResult<Step> {
        match self.pipe.step() {
            Step::Start(stream) => {
                if let Err(error) = bridge::start(py, pump(stream, Arc::clone(&self.pipe))) {
                    self.pipe.close();
                    return Err(error);
                }
                // A cache hit is all queued by the pump's first poll.
                Ok(self.pipe.step())
            }
            step => Ok(step),
        }
    }

    /// Blocks this thread (GIL released) until the pump's next item;
    /// Ctrl-C closes the stream and raises.
    fn wait(&self, py: Python<'_>) -> PyResult<Next> {
        if let Some(next) = self.pipe.wait_as(Waiter::Thread(std::thread::current())) {
            return Ok(next);
        }
        loop {
            let woken = py.detach(|| {
                let until = Instant::now() + bridge::SIGNAL_SLICE;
                loop {
                    if let Some(next) = self.pipe.woken() {
                        return Some(next);
                    }
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
                        self.close(py);
                        return Err(interrupted);
                    }
                }
            }
        }
    }

    fn close(&self, py: Python<'_>) {
        let stream = self.pipe.close();
        py.detach(move || drop(stream));
    }

    fn text(&self) -> String {
        self.pipe.state.lock().text.clone()
    }

    fn closed(&self) -> bool {
        self.pipe.state.lock().end.is_some()
    }

    /// `f` of the completed stream's end, or `UsageError` saying why there
    /// is none.
    fn completed<T>(&self, py: Python<'_>, f: impl FnOnce(&StreamEnd) -> T) -> PyResult<T> {
        let why = match &self.pipe.state.lock().end {
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
    /// The stream object was collected: its pump stops.
    fn drop(&mut self) {
        drop(self.pipe.close());
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
            Step::Start(_) | Step::Wait => self.0.wait(py)?,
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
    let state = match &handle.pipe.state.lock().end {
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
            Step::Start(_) | Step::Wait => {
                let (future, promise) = Promise::new(py)?;
                if let Some(next) = self.0.pipe.wait_as(Waiter::Loop(promise)) {
                    // Queued meanwhile: the unused future is dropped.
                    return next_async(py, next, true);
                }
                future.call_method1(
                    pyo3::intern!(py, "add_done_callback"),
                    (CloseIfCancelled(Arc::clone(&self.0.pipe)),),
                )?;
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

/// Done callback of a waiting read's asyncio future: a cancelled read
/// (a cancelled task, a timeout) closes the stream.
#[pyclass(module = "polyrelay._native", frozen)]
struct CloseIfCancelled(Arc<Pipe>);

#[pymethods]
impl CloseIfCancelled {
    fn __call__(&self, py: Python<'_>, future: &Bound<'_, PyAny>) {
        let cancelled = future
            .call_method0(pyo3::intern!(py, "cancelled"))
            .and_then(|c| c.is_truthy())
            .unwrap_or(false);
        if cancelled {
            let stream = self.0.close();
            py.detach(move || drop(stream));
        }
    }
}
