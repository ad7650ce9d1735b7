//! The answer to a call, readable through accessors and freed with
//! `pr_result_free`.

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::OnceLock;
use std::time::Duration;

use polyrelay::{Envelope, StreamEnd, StreamPart};

use crate::boundary::{c_string, free_handle, guard};

/// A successful answer: the normalised data and how it was obtained.
/// Created by polyrelay and handed to you through `pr_call`'s out-parameter
/// or a callback (owned by you and freed with `pr_result_free`), or lent by
/// `pr_stream_result` (owned by the stream).
///
/// Thread safety: its accessors may be called from any number of threads at
/// once (JSON texts are built on first use, once); `pr_result_free` must not
/// race with them.
pub struct pr_result {
    envelope: Envelope,
    provider: CString,
    data: OnceLock<CString>,
    attempts: OnceLock<CString>,
    /// What only a streamed answer has.
    stream: Option<Streamed>,
}

/// How a streamed answer was written.
struct Streamed {
    parts: Vec<StreamPart>,
    time_to_first_token: Option<Duration>,
    parts_json: OnceLock<CString>,
}

impl pr_result {
    /// Wraps a core answer.
    pub(crate) fn new(envelope: Envelope) -> Self {
        Self {
            provider: c_string(envelope.provider.to_string()),
            envelope,
            data: OnceLock::new(),
            attempts: OnceLock::new(),
            stream: None,
        }
    }

    /// Wraps the end of a completed stream.
    pub(crate) fn streamed(end: StreamEnd) -> Self {
        Self {
            stream: Some(Streamed {
                parts: end.parts,
                time_to_first_token: end.time_to_first_token,
                parts_json: OnceLock::new(),
            }),
            ..Self::new(end.envelope)
        }
    }
}

/// Reads `result` behind the panic guard, or returns `absent` for NULL.
///
/// # Safety
/// `result` is NULL or a live `pr_result`.
unsafe fn read<R>(result: *const pr_result, absent: R, read: impl FnOnce(&pr_result) -> R) -> R {
    // SAFETY: the caller passes NULL or a live result; accessors only share it.
    match unsafe { result.as_ref() } {
        Some(result) => guard(absent, || read(result)),
        None => absent,
    }
}

/// The answer, normalised to the capability's schema, as JSON (e.g. for
/// `weather.current`: `{"temperature_c": 3.4, "condition": {...}, ...}`).
/// Valid until `pr_result_free(result)`; do not free it. NULL for a NULL
/// `result`.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `result` is NULL or a live result from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_result_data_json(result: *const pr_result) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe {
        read(result, ptr::null(), |r| {
            r.data
                .get_or_init(|| c_string(r.envelope.data().to_json().to_string()))
                .as_ptr()
        })
    }
}

/// The id of the provider whose answer this is (`"open-meteo"`). Valid until
/// `pr_result_free(result)`; do not free it. NULL for a NULL `result`.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `result` is NULL or a live result from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_result_provider(result: *const pr_result) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe { read(result, ptr::null(), |r| r.provider.as_ptr()) }
}

/// Whether the answer came from the cache rather than from a provider during
/// this call. False for a NULL `result`.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `result` is NULL or a live result from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_result_cached(result: *const pr_result) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { read(result, false, |r| r.envelope.cached) }
}

/// Whether the answer is past its freshness (served stale while revalidating,
/// or because every provider failed). False for a NULL `result`.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `result` is NULL or a live result from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_result_stale(result: *const pr_result) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { read(result, false, |r| r.envelope.stale) }
}

/// What each provider did during this call, as a JSON array (see
/// `pr_error_attempts_json`); `"[]"` for a fresh cache hit. Valid until
/// `pr_result_free(result)`; do not free it. NULL for a NULL `result`.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `result` is NULL or a live result from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_result_attempts_json(result: *const pr_result) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe {
        read(result, ptr::null(), |r| {
            r.attempts
                .get_or_init(|| {
                    c_string(
                        serde_json::to_string(&r.envelope.attempts)
                            .unwrap_or_else(|_| "[]".to_string()),
                    )
                })
                .as_ptr()
        })
    }
}

/// Seconds the call took, retries and fallbacks included; negative for a
/// NULL `result`.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `result` is NULL or a live result from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_result_elapsed(result: *const pr_result) -> f64 {
    // SAFETY: forwarded from the caller.
    unsafe { read(result, -1.0, |r| r.envelope.elapsed.as_secs_f64()) }
}

/// What this call cost in US dollars (`llm.chat` and `llm.embeddings`):
/// the answer's usage at its model's price, 0 for an answer served from the
/// cache or by a free model. Negative when unknown: a model or usage
/// without a known price, another capability, and a NULL `result`.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `result` is NULL or a live result from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_result_cost_usd(result: *const pr_result) -> f64 {
    // SAFETY: forwarded from the caller.
    unsafe { read(result, -1.0, |r| r.envelope.cost_usd.unwrap_or(-1.0)) }
}

/// For a streamed answer: which provider wrote which part of the text, in
/// order, as a JSON array `[{"provider": "openai", "chars": 34}]` (more than
/// one part when a provider was interrupted and another continued; `chars`
/// counts Unicode characters). NULL for an answer that was not streamed and
/// for a NULL `result`. Valid until the result is freed; do not free it.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `result` is NULL or a live result from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_result_stream_parts_json(result: *const pr_result) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe {
        read(result, ptr::null(), |r| {
            r.stream.as_ref().map_or(ptr::null(), |s| {
                s.parts_json
                    .get_or_init(|| {
                        c_string(
                            serde_json::to_string(&s.parts).unwrap_or_else(|_| "[]".to_string()),
                        )
                    })
                    .as_ptr()
            })
        })
    }
}

/// For a streamed answer: seconds from the start of the stream to its first
/// chunk. Negative when unknown: an answer replayed from the cache, one that
/// was not streamed, and a NULL `result`.
///
/// Thread safety: safe from any thread, concurrently with the other accessors.
///
/// # Safety
/// `result` is NULL or a live result from polyrelay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_result_time_to_first_token(result: *const pr_result) -> f64 {
    // SAFETY: forwarded from the caller.
    unsafe {
        read(result, -1.0, |r| {
            r.stream
                .as_ref()
                .and_then(|s| s.time_to_first_token)
                .map_or(-1.0, |t| t.as_secs_f64())
        })
    }
}

/// Frees `result`. NULL is ignored.
///
/// Thread safety: any thread, but not concurrently with any other use of
/// the same result.
///
/// # Safety
/// `result` is NULL or a result from polyrelay not yet freed; it is invalid
/// afterwards, as are the strings read from it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_result_free(result: *mut pr_result) {
    // SAFETY: as the caller promised.
    unsafe { free_handle(result) }
}
