//! Running core futures for Python, on the core's one runtime
//! ([`polyrelay::runtime::shared`], recreated in a forked child).
//!
//! * [`block_on`] (sync client): the GIL is released while waiting, so other
//!   Python threads run; the wait is cut into short slices between which
//!   pending signals are handled, so Ctrl-C raises `KeyboardInterrupt`
//!   promptly and cancels the Rust future (dropping its HTTP request). A
//!   future that completes on its first poll (a cache hit) never leaves the
//!   calling thread. Nothing here touches asyncio, so it also works inside a
//!   running event loop (Jupyter) without nest_asyncio.
//! * [`awaitable`] (async client): an asyncio future driven by the same
//!   runtime through pyo3-async-runtimes; cancelling it cancels the Rust
//!   future, and the caller's contextvars are kept.
//!
//! Both turn a panic into `polyrelay.Error` instead of unwinding into Python.

use std::any::Any;
use std::cell::OnceCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use futures::FutureExt;
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use pyo3_async_runtimes::generic::{self, ContextExt};
use pyo3_async_runtimes::TaskLocals;

use crate::errors::{self, ToPyErr};

/// How often a blocked call checks for Ctrl-C.
const SIGNAL_SLICE: Duration = Duration::from_millis(50);

/// Runs `future` to completion with the GIL released; `KeyboardInterrupt`
/// (or any exception raised by a signal handler) cancels it.
pub(crate) fn block_on<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = polyrelay::runtime::shared().map_err(|e| errors::to_py(py, e))?;
    let mut future = Box::pin(AssertUnwindSafe(future).catch_unwind());
    let waker = thread_waker();
    // First poll on this thread: a cache hit finishes here, without the
    // cost of a hand-off to a worker thread and back.
    let first = py.detach(|| {
        let _entered = runtime.enter();
        future.as_mut().poll(&mut Context::from_waker(&waker))
    });
    if let Poll::Ready(output) = first {
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
                if let Err(interrupted) = py.check_signals() {
                    task.abort();
                    return Err(interrupted);
                }
            }
        }
    }
}

/// Wraps `future` in an asyncio awaitable bound to the running event loop.
pub(crate) fn awaitable<'py, F, T, E>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
    E: ToPyErr + Send + 'static,
{
    // Make sure the runtime exists before handing work to it.
    polyrelay::runtime::shared().map_err(|e| errors::to_py(py, e))?;
    let future = async move {
        Ok(match AssertUnwindSafe(future).catch_unwind().await {
            Ok(Ok(value)) => Delivered::Value(value),
            Ok(Err(error)) => Delivered::Failed(error),
            Err(panic) => Delivered::Panicked(errors::panic_message(&panic)),
        })
    };
    generic::future_into_py::<SharedRuntime, _, _>(py, future)
}

/// A call's outcome on its way to the asyncio future: converted (and an
/// error turned into its exception) only once the GIL is held.
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

fn thread_waker() -> Waker {
    THREAD_WAKER.with(Waker::clone)
}

/// pyo3-async-runtimes' view of polyrelay's runtime.
struct SharedRuntime;

tokio::task_local! {
    static TASK_LOCALS: OnceCell<TaskLocals>;
}

/// A task spawned on the shared runtime.
struct Spawned(Option<tokio::task::JoinHandle<()>>);

impl Future for Spawned {
    type Output = Result<(), TaskFailed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.0.as_mut() {
            Some(handle) => Pin::new(handle).poll(cx).map_err(TaskFailed),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// Why a spawned task did not finish normally.
struct TaskFailed(tokio::task::JoinError);

impl generic::JoinError for TaskFailed {
    fn is_panic(&self) -> bool {
        self.0.is_panic()
    }

    fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.0.into_panic()
    }
}

impl generic::Runtime for SharedRuntime {
    type JoinError = TaskFailed;
    type JoinHandle = Spawned;

    fn spawn<F>(fut: F) -> Spawned
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // `awaitable` checked that the runtime exists; the `None` arm is
        // only reachable if it could not be created at all.
        Spawned(polyrelay::runtime::shared().ok().map(|rt| rt.spawn(fut)))
    }

    fn spawn_blocking<F>(f: F) -> Spawned
    where
        F: FnOnce() + Send + 'static,
    {
        Spawned(
            polyrelay::runtime::shared()
                .ok()
                .map(|rt| rt.spawn_blocking(f)),
        )
    }
}

impl ContextExt for SharedRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS
            .try_with(|cell| cell.get().cloned())
            .unwrap_or_default()
    }
}
