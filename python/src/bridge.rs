//! Running core futures for Python, on the core's one runtime
//! ([`polyrelay::internal::shared_runtime`], recreated in a forked child).
//!
//! * [`block_on`] (sync client): the GIL is released while waiting, so other
//!   Python threads run; the wait is cut into short slices between which
//!   pending signals are handled, so Ctrl-C raises `KeyboardInterrupt`
//!   promptly and cancels the Rust future (dropping its HTTP request). A
//!   future that completes on its first poll (a cache hit) never leaves the
//!   calling thread. Nothing here touches asyncio, so it also works inside a
//!   running event loop (Jupyter) without nest_asyncio.
//! * [`awaitable`] (async client): an asyncio future of the running loop,
//!   its Rust future driven by the same runtime; results reach the loop in
//!   batches through a socket it watches, so runtime threads never wait for
//!   the GIL; cancelling the asyncio future cancels the Rust future. No
//!   Python code runs on the runtime, so the caller's contextvars are kept.
//!
//! Both turn a panic into `polyrelay.Error` instead of unwinding into Python.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use futures::FutureExt;
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::{intern, IntoPyObjectExt};

use crate::errors::{self, ToPyErr};

/// How often a blocked call checks for Ctrl-C.
pub(crate) const SIGNAL_SLICE: Duration = Duration::from_millis(50);

/// Runs `future` to completion with the GIL released; `KeyboardInterrupt`
/// (or any exception raised by a signal handler) cancels it.
pub(crate) fn block_on<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    block_on_with(py, future, |_| Ok(()))
}

/// [`block_on`], calling `on_wait` (GIL held, on this thread) between the
/// slices of the wait; an error it returns cancels the future.
pub(crate) fn block_on_with<F>(
    py: Python<'_>,
    future: F,
    mut on_wait: impl FnMut(Python<'_>) -> PyResult<()>,
) -> PyResult<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = polyrelay::internal::shared_runtime().map_err(|e| errors::to_py(py, e))?;
    let mut future = Box::pin(AssertUnwindSafe(future).catch_unwind());
    let waker = thread_waker();
    // First poll on this thread: a cache hit finishes here, without the
    // cost of a hand-off to a worker thread and back.
    if let Poll::Ready(output) = poll_here(py, runtime, future.as_mut(), &waker) {
        return output.map_err(|panic| errors::panic_to_py(py, &panic));
    }
    // The runtime polls it from now on with its own waker.
    let mut task = runtime.spawn(future);
    loop {
        let polled = py.detach(|| {
            let mut cx = Context::from_waker(&waker);
            let until = Instant::now() + SIGNAL_SLICE;
            loop {
                if let Poll::Ready(joined) = Pin::new(&mut task).poll(&mut cx) {
                    return Some(joined);
                }
                let now = Instant::now();
                if now >= until {
                    return None;
                }
                std::thread::park_timeout(until - now);
            }
        });
        match polled {
            Some(Ok(output)) => return output.map_err(|panic| errors::panic_to_py(py, &panic)),
            Some(Err(join_error)) => {
                let message = if join_error.is_cancelled() {
                    "the polyrelay runtime cancelled the call".to_string()
                } else {
                    "the call was aborted".to_string()
                };
                return Err(errors::internal(py, &message));
            }
            None => {
                if let Err(stop) = py.check_signals().and_then(|()| on_wait(py)) {
                    task.abort();
                    return Err(stop);
                }
            }
        }
    }
}

/// Wakes the thread that created it.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    static THREAD_WAKER: Waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
}

pub(crate) fn thread_waker() -> Waker {
    THREAD_WAKER.with(Waker::clone)
}

/// Wraps `future` in an asyncio future of the running event loop.
///
/// The future is polled once right here (with the GIL released): a cache
/// hit is answered without leaving the thread, and a request is on the wire
/// before the runtime takes over. Its outcome then reaches the loop through
/// the loop's [`Inbox`], without the GIL; cancelling the asyncio future
/// aborts the Rust task, which drops its HTTP request.
pub(crate) fn awaitable<'py, F, T, E>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
    E: ToPyErr + Send + 'static,
{
    let runtime = polyrelay::internal::shared_runtime().map_err(|e| errors::to_py(py, e))?;
    let event_loop = GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()?;
    let asyncio_future = event_loop.call_method0(intern!(py, "create_future"))?;
    let mut future = Box::pin(async move {
        match AssertUnwindSafe(future).catch_unwind().await {
            Ok(Ok(value)) => Delivered::Value(value),
            Ok(Err(error)) => Delivered::Failed(error),
            Err(panic) => Delivered::Panicked(errors::panic_message(&panic)),
        }
    });
    if let Poll::Ready(delivered) = poll_here(py, runtime, future.as_mut(), Waker::noop()) {
        Completion::new(asyncio_future.clone().unbind(), delivered).resolve(py);
        return Ok(asyncio_future);
    }
    let delivery = Delivery::to(&event_loop)?;
    let target = asyncio_future.clone().unbind();
    // The runtime polls it from now on with its own waker (a wake-up lost by
    // the no-op waker above is made good by that first poll).
    let task = py.detach(|| {
        runtime.spawn(async move {
            let delivered = future.await;
            delivery.deliver(Completion::new(target, delivered));
        })
    });
    asyncio_future.call_method1(
        intern!(py, "add_done_callback"),
        (AbortOnDone(task.abort_handle()),),
    )?;
    Ok(asyncio_future)
}

/// Runs `future` on the runtime in the background, its first poll right
/// here (with the GIL released), so that a request it makes is on the wire
/// before the runtime takes over. A panic ends it without unwinding into
/// Python; nobody hears of it, so `future` reports its own failures.
pub(crate) fn start<F>(py: Python<'_>, future: F) -> PyResult<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let runtime = polyrelay::internal::shared_runtime().map_err(|e| errors::to_py(py, e))?;
    let mut future = Box::pin(AssertUnwindSafe(future).catch_unwind());
    if poll_here(py, runtime, future.as_mut(), Waker::noop()).is_pending() {
        // A wake-up lost by the no-op waker is made good by the runtime's
        // first poll.
        drop(runtime.spawn(future));
    }
    Ok(())
}

/// Polls `future` once on this thread, inside the runtime (so that what it
/// spawns or times goes there) and with the GIL released.
fn poll_here<F>(
    py: Python<'_>,
    runtime: &tokio::runtime::Runtime,
    future: Pin<&mut F>,
    waker: &Waker,
) -> Poll<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    py.detach(|| {
        let _entered = runtime.enter();
        future.poll(&mut Context::from_waker(waker))
    })
}

/// An asyncio future of the running event loop that any thread can resolve
/// later with [`Promise::keep`]: the value is converted on the loop's thread.
pub(crate) struct Promise {
    future: Py<PyAny>,
    delivery: Delivery,
}

impl Promise {
    /// A new pending asyncio future of the running loop, and its promise.
    pub(crate) fn new(py: Python<'_>) -> PyResult<(Bound<'_, PyAny>, Self)> {
        let event_loop = GET_RUNNING_LOOP
            .import(py, "asyncio", "get_running_loop")?
            .call0()?;
        let future = event_loop.call_method0(intern!(py, "create_future"))?;
        let delivery = Delivery::to(&event_loop)?;
        let promise = Self {
            future: future.clone().unbind(),
            delivery,
        };
        Ok((future, promise))
    }

    /// Resolves the future with `value` (its conversion may raise), unless
    /// it was cancelled meanwhile. Callable from any thread, without the GIL.
    pub(crate) fn keep<T>(self, value: T)
    where
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        let delivered = Delivered::<T, std::convert::Infallible>::Value(value);
        self.delivery
            .deliver(Completion::new(self.future, delivered));
    }
}

static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Each event loop's [`LoopInbox`] (or `None` if the loop cannot watch a
/// socket), weakly keyed by the loop: a collected loop closes its inbox.
static INBOXES: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A call's outcome on its way to the asyncio future: converted (and an
/// error turned into its exception) only on the loop's thread.
enum Delivered<T, E> {
    Value(T),
    Failed(E),
    Panicked(String),
}

impl<'py, T: IntoPyObject<'py>, E: ToPyErr> IntoPyObject<'py> for Delivered<T, E> {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Self::Value(value) => value.into_bound_py_any(py),
            Self::Failed(error) => Err(error.to_py_err(py)),
            Self::Panicked(message) => Err(errors::internal(py, &message)),
        }
    }
}

type Outcome = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// A finished call and the asyncio future waiting for it.
struct Completion {
    future: Py<PyAny>,
    outcome: Outcome,
}

impl Completion {
    fn new<T, E>(future: Py<PyAny>, delivered: Delivered<T, E>) -> Self
    where
        T: for<'a> IntoPyObject<'a> + Send + 'static,
        E: ToPyErr + Send + 'static,
    {
        Self {
            future,
            outcome: Box::new(move |py: Python<'_>| delivered.into_pyobject(py).map(Bound::unbind)),
        }
    }

    /// Sets the asyncio future's result or exception, unless it was
    /// cancelled meanwhile. Runs on the loop's thread.
    fn resolve(self, py: Python<'_>) {
        let future = self.future.bind(py);
        if future
            .call_method0(intern!(py, "done"))
            .and_then(|done| done.is_truthy())
            .unwrap_or(true)
        {
            return;
        }
        let resolved = match (self.outcome)(py) {
            Ok(value) => future.call_method1(intern!(py, "set_result"), (value,)),
            Err(error) => {
                future.call_method1(intern!(py, "set_exception"), (error.into_value(py),))
            }
        };
        if let Err(error) = resolved {
            error.write_unraisable(py, Some(future));
        }
    }
}

/// How completions reach an event loop.
enum Delivery {
    /// Through the loop's inbox: no GIL needed, one wake-up per batch.
    Inbox(Arc<Inbox>),
    /// For loops that cannot watch a file descriptor (e.g. the Windows
    /// proactor loop): `loop.call_soon_threadsafe`, from a blocking thread
    /// since it needs the GIL.
    CallSoon(Py<PyAny>),
}

impl Delivery {
    /// The delivery to `event_loop`, creating and registering its inbox on
    /// first use.
    fn to(event_loop: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = event_loop.py();
        let inboxes = INBOXES.get_or_try_init(py, || {
            py.import("weakref")?
                .call_method0("WeakKeyDictionary")
                .map(Bound::unbind)
        })?;
        let inboxes = inboxes.bind(py);
        let known = match inboxes.get_item(event_loop) {
            Ok(known) => Some(known),
            Err(error) if error.is_instance_of::<PyKeyError>(py) => None,
            // Not weakly referenceable: no inbox can be kept for it.
            Err(_) => return Self::call_soon(event_loop),
        };
        let inbox = match known {
            Some(known) => known,
            None => {
                let attached = match LoopInbox::attach(event_loop) {
                    Some(attached) => attached.into_any(),
                    None => py.None().into_bound(py),
                };
                inboxes.set_item(event_loop, &attached)?;
                attached
            }
        };
        match inbox.cast::<LoopInbox>() {
            Ok(inbox) => Ok(Self::Inbox(Arc::clone(&inbox.get().inbox))),
            Err(_) => Self::call_soon(event_loop),
        }
    }

    fn call_soon(event_loop: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = event_loop.py();
        Ok(Self::CallSoon(
            event_loop
                .getattr(intern!(py, "call_soon_threadsafe"))?
                .unbind(),
        ))
    }

    /// Hands `completion` to the loop's thread. Called on a runtime thread.
    fn deliver(self, completion: Completion) {
        match self {
            Self::Inbox(inbox) => inbox.push(completion),
            Self::CallSoon(call_soon_threadsafe) => {
                tokio::task::spawn_blocking(move || {
                    Python::attach(|py| {
                        let resolve = ResolveOne(parking_lot::Mutex::new(Some(completion)));
                        // Fails only once the loop is closed: nobody waits any more.
                        let _ = call_soon_threadsafe.call1(py, (resolve,));
                    });
                });
            }
        }
    }
}

/// Completions waiting for their loop's thread, and the socket that wakes
/// the loop when the first of a batch arrives.
struct Inbox {
    done: parking_lot::Mutex<Vec<Completion>>,
    #[cfg(unix)]
    wake: std::os::unix::net::UnixStream,
}

impl Inbox {
    fn push(&self, completion: Completion) {
        let first = {
            let mut done = self.done.lock();
            done.push(completion);
            done.len() == 1
        };
        if first {
            self.wake();
        }
    }

    #[cfg(unix)]
    fn wake(&self) {
        use std::io::Write;
        // A full socket buffer means a wake-up is already pending.
        let _ = (&self.wake).write(&[1]);
    }

    #[cfg(not(unix))]
    fn wake(&self) {}
}

/// An event loop's inbox, as Python holds it: `drain` is registered with
/// `loop.add_reader` on the waking socket.
#[pyclass(module = "polyrelay._native", frozen)]
struct LoopInbox {
    inbox: Arc<Inbox>,
    #[cfg(unix)]
    woken: std::os::unix::net::UnixStream,
}

impl LoopInbox {
    /// A new inbox watched by `event_loop`, or `None` if the loop cannot
    /// watch a socket.
    #[cfg(unix)]
    fn attach<'py>(event_loop: &Bound<'py, PyAny>) -> Option<Bound<'py, LoopInbox>> {
        use std::os::fd::AsRawFd;

        let (wake, woken) = std::os::unix::net::UnixStream::pair().ok()?;
        wake.set_nonblocking(true).ok()?;
        woken.set_nonblocking(true).ok()?;
        let fd = woken.as_raw_fd();
        let attached = Bound::new(
            event_loop.py(),
            LoopInbox {
                inbox: Arc::new(Inbox {
                    done: parking_lot::Mutex::new(Vec::new()),
                    wake,
                }),
                woken,
            },
        )
        .ok()?;
        let drain = attached.getattr("drain").ok()?;
        event_loop
            .call_method1(intern!(event_loop.py(), "add_reader"), (fd, drain))
            .ok()?;
        Some(attached)
    }

    #[cfg(not(unix))]
    fn attach<'py>(_event_loop: &Bound<'py, PyAny>) -> Option<Bound<'py, LoopInbox>> {
        None
    }
}

#[pymethods]
impl LoopInbox {
    /// Resolves every waiting completion (the loop calls it when woken).
    fn drain(&self, py: Python<'_>) {
        #[cfg(unix)]
        {
            use std::io::Read;
            let mut buffer = [0u8; 256];
            while matches!((&self.woken).read(&mut buffer), Ok(n) if n > 0) {}
        }
        let done = std::mem::take(&mut *self.inbox.done.lock());
        for completion in done {
            completion.resolve(py);
        }
    }
}

/// One completion, as a callable for `loop.call_soon_threadsafe`.
#[pyclass(module = "polyrelay._native", frozen)]
struct ResolveOne(parking_lot::Mutex<Option<Completion>>);

#[pymethods]
impl ResolveOne {
    fn __call__(&self, py: Python<'_>) {
        if let Some(completion) = self.0.lock().take() {
            completion.resolve(py);
        }
    }
}

/// Done callback of a call's asyncio future: aborts the Rust task, which
/// matters only if the future was cancelled (a finished task ignores it).
#[pyclass(module = "polyrelay._native", frozen)]
struct AbortOnDone(tokio::task::AbortHandle);

#[pymethods]
impl AbortOnDone {
    fn __call__(&self, _future: &Bound<'_, PyAny>) {
        self.0.abort();
    }
}
