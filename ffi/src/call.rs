//! Calls: the blocking `pr_call`, the callback-based `pr_call_async` with its
//! cancellation handle, and the bookkeeping that lets a shutdown end every
//! call in flight exactly once.

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use parking_lot::{Condvar, Mutex};
use polyrelay::{Client, Request};
use tokio::sync::watch;

use crate::boundary::{
    free_handle, json, live, optional_out_param, out_param, report, text, Outcome,
};
use crate::client::pr_client;
use crate::error::pr_error;
use crate::result::pr_result;
use crate::status::pr_status;

thread_local! {
    /// Whether this thread is running one of our callbacks, which a shutdown
    /// must not wait for.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// The calls in flight on one client, and the signal that ends them when the
/// client shuts down.
pub(crate) struct InFlightCalls {
    state: Mutex<InFlightState>,
    idle: Condvar,
    shutdown: watch::Sender<bool>,
}

#[derive(Default)]
struct InFlightState {
    running: usize,
    shut_down: bool,
}

impl Default for InFlightCalls {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            idle: Condvar::new(),
            shutdown: watch::channel(false).0,
        }
    }
}

impl InFlightCalls {
    /// Registers a new call; refused once the client is shut down.
    pub(crate) fn enter(self: &Arc<Self>) -> Outcome<InFlightCall> {
        let mut state = self.state.lock();
        if state.shut_down {
            return Err(pr_error::shutdown());
        }
        state.running += 1;
        Ok(InFlightCall {
            calls: Arc::clone(self),
        })
    }

    /// Ends every call in flight with `PR_ERR_SHUTDOWN`, refuses new ones,
    /// and waits until the last one is done, unless this thread is inside a
    /// callback (which would then wait for itself).
    pub(crate) fn shut_down(&self) {
        let mut state = self.state.lock();
        state.shut_down = true;
        self.shutdown.send_replace(true);
        if IN_CALLBACK.with(Cell::get) {
            return;
        }
        while state.running > 0 {
            self.idle.wait(&mut state);
        }
    }
}

/// One call in flight. Dropped when the call is over: for an async call,
/// after its callback returned.
pub(crate) struct InFlightCall {
    calls: Arc<InFlightCalls>,
}

impl InFlightCall {
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.calls.shutdown.subscribe()
    }
}

impl Drop for InFlightCall {
    fn drop(&mut self) {
        let mut state = self.calls.state.lock();
        state.running -= 1;
        if state.running == 0 {
            self.calls.idle.notify_all();
        }
    }
}

/// Completes once `signal` is raised; never if its sender is gone unraised.
async fn raised(signal: Option<watch::Receiver<bool>>) {
    if let Some(mut signal) = signal {
        if signal.wait_for(|raised| *raised).await.is_ok() {
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// Runs `work` until it ends or the call is cancelled or shut down,
/// whichever comes first (`work` is then dropped, which closes its HTTP
/// requests); a panic in the core becomes `PR_ERR_PANIC`.
pub(crate) async fn settle<T>(
    work: impl Future<Output = Outcome<T>>,
    shutdown: watch::Receiver<bool>,
    cancel: Option<watch::Receiver<bool>>,
) -> Outcome<T> {
    let work = AssertUnwindSafe(work).catch_unwind();
    tokio::select! {
        biased;
        () = raised(Some(shutdown)) => Err(pr_error::shutdown()),
        () = raised(cancel) => Err(pr_error::cancelled()),
        outcome = work => outcome.unwrap_or_else(|payload| Err(pr_error::panic(payload.as_ref()))),
    }
}

/// The answer to `request`.
async fn answer(client: Client, request: Request) -> Outcome<pr_result> {
    Ok(pr_result::new(client.request(request).await?))
}

/// The capability and parameters of a call, validated.
///
/// # Safety
/// Both are NULL or NUL-terminated strings.
unsafe fn request(capability: *const c_char, params_json: *const c_char) -> Outcome<Request> {
    // SAFETY: forwarded from the caller.
    let capability = unsafe { text(capability, "capability") }?;
    // SAFETY: forwarded from the caller.
    let params = unsafe { json(params_json, "params_json") }?;
    Ok(Request::parse(capability, params)?)
}

/// Calls `capability` (`"weather.current"`, `"weather.forecast"`,
/// `"finance.fx_rates"`, `"crypto.price"`) with `params_json` (a JSON object,
/// e.g. `{"lat": 52.52, "lon": 13.41}`) and blocks until the first healthy
/// provider of its fallback chain answers or the call fails.
///
/// On success returns `PR_OK` and `*result` holds the answer (free it with
/// `pr_result_free`). On failure `*result` is NULL, the status says why and,
/// when `error` is not NULL, `*error` holds the details (free it with
/// `pr_error_free`). Bad input is reported, never a crash: NULL arguments
/// (`PR_ERR_NULL_ARGUMENT`), invalid UTF-8 (`PR_ERR_INVALID_UTF8`), invalid
/// JSON (`PR_ERR_INVALID_JSON`), an unknown capability or a bad parameter
/// (`PR_ERR_INVALID_REQUEST`).
///
/// Thread safety: safe from any number of threads at once on the same client.
/// From inside a callback it returns `PR_ERR_USAGE` at once instead of
/// deadlocking: use `pr_call_async` there.
///
/// # Safety
/// `client` is NULL or a live client; `capability` and `params_json` are NULL
/// or NUL-terminated strings; `result` is valid for one pointer write;
/// `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_call(
    client: *const pr_client,
    capability: *const c_char,
    params_json: *const c_char,
    result: *mut *mut pr_result,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(result, "result")?;
            let client = live(client, "client")?;
            let request = request(capability, params_json)?;
            let call = client.calls.enter()?;
            let engine = client.client.clone();
            let answer = polyrelay::internal::block_on(async move {
                let answer = settle(answer(engine, request), call.shutdown_signal(), None).await;
                drop(call);
                answer
            })??;
            *out = Box::into_raw(Box::new(answer));
            Ok(())
        })
    }
}

/// Receives the outcome of `pr_call_async`, exactly once per call that was
/// started: `status` is `PR_OK` with `result` set and `error` NULL, or a
/// failure (including `PR_ERR_CANCELLED` and `PR_ERR_SHUTDOWN`) with `error`
/// set and `result` NULL. The callback owns both: free them with
/// `pr_result_free` / `pr_error_free` (here or later, on any thread).
///
/// It runs on one of polyrelay's worker threads: keep it short and do not
/// block in it. Blocking polyrelay calls made from it return `PR_ERR_USAGE`;
/// `pr_call_async`, `pr_call_cancel` and `pr_client_shutdown` work.
pub type pr_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        status: pr_status,
        result: *mut pr_result,
        error: *mut pr_error,
    ),
>;

/// A call started with `pr_call_async` or `pr_stream_start`, to cancel it.
/// Freeing the handle does not cancel the call.
///
/// Thread safety: `pr_call_cancel` may be called from any number of threads
/// at once, including from callbacks; `pr_call_handle_free` must not race
/// with it.
pub struct pr_call_handle {
    cancel: watch::Sender<bool>,
}

impl pr_call_handle {
    /// The cancellation signal of a new call; its handle goes to `out` when
    /// the caller asked for one (without, the signal is never raised).
    pub(crate) fn issue(out: Option<&mut *mut pr_call_handle>) -> watch::Receiver<bool> {
        let (cancel, cancelled) = watch::channel(false);
        if let Some(out) = out {
            *out = Box::into_raw(Box::new(pr_call_handle { cancel }));
        }
        cancelled
    }
}

/// Where a call's outcome goes.
pub(crate) struct Delivery {
    pub(crate) callback:
        unsafe extern "C" fn(*mut c_void, pr_status, *mut pr_result, *mut pr_error),
    pub(crate) user_data: *mut c_void,
}

// SAFETY: `pr_call_async`'s and `pr_stream_start`'s contract: `user_data`
// may be used from the polyrelay thread that runs the callback.
unsafe impl Send for Delivery {}

impl Delivery {
    /// Runs the callback, handing over the result or the error.
    pub(crate) fn deliver(self, outcome: Outcome<pr_result>) {
        let (status, result, error) = match outcome {
            Ok(result) => (
                pr_status::PR_OK,
                Box::into_raw(Box::new(result)),
                std::ptr::null_mut(),
            ),
            Err(error) => (
                error.status,
                std::ptr::null_mut(),
                Box::into_raw(Box::new(error)),
            ),
        };
        // SAFETY: `pr_call_async`'s and `pr_stream_start`'s contract: a
        // valid function, taking ownership of `result` and `error`.
        as_callback(|| unsafe { (self.callback)(self.user_data, status, result, error) });
    }
}

/// Runs `callback`, a call into the caller's code, marked as such for this
/// thread (a shutdown from inside must not wait for it).
pub(crate) fn as_callback<R>(callback: impl FnOnce() -> R) -> R {
    IN_CALLBACK.with(|inside| inside.set(true));
    let returned = callback();
    IN_CALLBACK.with(|inside| inside.set(false));
    returned
}

/// Starts a call of `capability` with `params_json` (as `pr_call`) and
/// returns at once; `callback(user_data, ...)` receives the outcome on a
/// polyrelay thread, exactly once: success, failure, `PR_ERR_CANCELLED` after
/// `pr_call_cancel`, or `PR_ERR_SHUTDOWN` when the client is shut down or
/// freed first.
///
/// When `handle` is not NULL, `*handle` receives a handle for
/// `pr_call_cancel`, to free with `pr_call_handle_free` (it is written before
/// the callback can fire). If this function returns anything but `PR_OK`
/// (NULL arguments, invalid UTF-8 or JSON, an invalid request, a shut-down
/// client), nothing was started, `*handle` is NULL and the callback never
/// fires.
///
/// Thread safety: safe from any number of threads at once on the same
/// client, and from inside callbacks.
///
/// # Safety
/// `client` is NULL or a live client; `capability` and `params_json` are NULL
/// or NUL-terminated strings; `callback` is NULL or a function safe to call
/// from another thread with `user_data`; `handle` and `error` are NULL or
/// valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_call_async(
    client: *const pr_client,
    capability: *const c_char,
    params_json: *const c_char,
    callback: pr_callback,
    user_data: *mut c_void,
    handle: *mut *mut pr_call_handle,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let handle = optional_out_param(handle);
            let client = live(client, "client")?;
            let callback = callback.ok_or_else(|| pr_error::null_argument("callback"))?;
            let request = request(capability, params_json)?;
            let runtime = polyrelay::internal::shared_runtime()?;
            let call = client.calls.enter()?;
            let cancelled = pr_call_handle::issue(handle);
            let delivery = Delivery {
                callback,
                user_data,
            };
            let engine = client.client.clone();
            runtime.spawn(async move {
                let outcome = settle(
                    answer(engine, request),
                    call.shutdown_signal(),
                    Some(cancelled),
                )
                .await;
                delivery.deliver(outcome);
                drop(call);
            });
            Ok(())
        })
    }
}

/// Asks the call to stop: unless it has already finished, its callback
/// (`on_done` for a stream) fires with `PR_ERR_CANCELLED` shortly afterwards,
/// on a polyrelay thread; a stream's HTTP request is closed before. Never
/// waits; cancelling twice, or after the callback fired, does nothing.
/// Returns `PR_ERR_NULL_ARGUMENT` for a NULL `handle`, else `PR_OK`.
///
/// Thread safety: safe from any thread, including from callbacks.
///
/// # Safety
/// `handle` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_call_cancel(handle: *const pr_call_handle) -> pr_status {
    // SAFETY: NULL or live, as the caller promised.
    unsafe {
        report(std::ptr::null_mut(), || {
            live(handle, "handle")?.cancel.send_replace(true);
            Ok(())
        })
    }
}

/// Frees `handle` without cancelling its call (the callback still fires).
/// NULL is ignored.
///
/// Thread safety: any thread, but not concurrently with `pr_call_cancel` on
/// the same handle.
///
/// # Safety
/// `handle` is NULL or a handle from `pr_call_async` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_call_handle_free(handle: *mut pr_call_handle) {
    // SAFETY: as the caller promised.
    unsafe { free_handle(handle) }
}
