//! The tokio runtime polyrelay manages for callers that have none: blocking
//! Rust code, the Python sync client, the C ABI.
//!
//! One multi-thread runtime per process, created on first use. A forked
//! child gets a fresh one: the parent's worker threads do not exist in the
//! child, so its runtime is left behind (never dropped, which would wait on
//! threads that are gone).

use std::cell::Cell;
use std::future::Future;

use tokio::runtime::Runtime;

use crate::error::{Error, Result};
use crate::per_process::PerProcess;

static SHARED: PerProcess<&'static Runtime> = PerProcess::new();

thread_local! {
    static ON_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// The process's polyrelay runtime.
pub fn shared() -> Result<&'static Runtime> {
    SHARED
        .get_or_make(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .thread_name("polyrelay")
                .enable_all()
                .on_thread_start(|| ON_WORKER.with(|w| w.set(true)))
                .build()
                .map_err(|e| e.to_string())?;
            Ok(&*Box::leak(Box::new(runtime)))
        })
        .map_err(|reason| Error::Usage {
            message: format!("cannot start the polyrelay runtime: {reason}"),
        })
}

/// Whether this thread is one of polyrelay's runtime workers (inside a
/// callback), where blocking on the runtime could deadlock.
pub fn on_worker_thread() -> bool {
    ON_WORKER.with(Cell::get)
}

/// Runs `future` to completion on the shared runtime, blocking this thread.
///
/// Works from any thread, including one inside another tokio runtime. On one
/// of polyrelay's own worker threads (inside a callback) it returns
/// [`Error::Usage`] instead of risking a deadlock.
pub fn block_on<F>(future: F) -> Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if on_worker_thread() {
        return Err(Error::Usage {
            message: "a blocking polyrelay call was made from a polyrelay worker thread \
                      (e.g. inside a callback); use the async API there"
                .to_string(),
        });
    }
    let task = shared()?.spawn(future);
    futures::executor::block_on(task).map_err(|e| Error::Usage {
        message: format!(
            "the call was {}",
            if e.is_cancelled() {
                "cancelled"
            } else {
                "aborted by a panic"
            }
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_calls_work_from_plain_and_runtime_threads() {
        assert_eq!(block_on(async { 41 + 1 }).unwrap(), 42);
        let other = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let inside = other.block_on(async { block_on(async { 7 }) });
        assert_eq!(inside.unwrap(), 7);
    }

    #[test]
    fn a_blocking_call_from_a_worker_thread_is_refused_not_deadlocked() {
        let nested = block_on(async { block_on(async { 1 }) }).unwrap();
        assert!(matches!(nested, Err(Error::Usage { .. })), "{nested:?}");
    }

    #[test]
    fn a_panicking_call_is_an_error_not_a_crash() {
        let result = block_on(async { panic!("provider bug") });
        assert!(matches!(result, Err(Error::Usage { .. })));
    }
}
