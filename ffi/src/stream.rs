//! Streamed `llm.chat` answers, in two styles over the core's `ChatStream`:
//! push (`pr_stream_start`: a callback per chunk on a polyrelay thread, then
//! the final callback exactly once) and pull, for callers without threads
//! (`pr_stream_open`, then the blocking `pr_stream_next` until
//! `PR_STREAM_DONE`).

use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;

use polyrelay::{ChatChunk, ChatStream, ReadAhead};

use crate::boundary::{
    free_handle, json, live, optional_out_param, out_param, report, text, Outcome,
};
use crate::call::{as_callback, settle, Delivery, InFlightCalls};
use crate::call::{pr_call_handle, pr_callback};
use crate::client::pr_client;
use crate::error::pr_error;
use crate::result::pr_result;
use crate::status::pr_status;

/// What a chunk of a streamed answer holds.
///
/// Thread safety: a plain value.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum pr_chunk_kind {
    /// Answer text, to append to what came before.
    PR_CHUNK_TEXT = 0,
    /// Hidden reasoning some models write before answering (DeepSeek's
    /// `reasoning_content`, Anthropic's thinking, Gemini's thoughts): not
    /// part of the answer text.
    PR_CHUNK_REASONING = 1,
}

/// Receives each chunk of a stream started with `pr_stream_start`, in
/// order and one at a time, on a polyrelay thread (not always the same one),
/// before `on_done`. `text` holds `len` bytes of UTF-8 followed by a NUL
/// (never empty); it is lent for the duration of the call only: copy what
/// you keep.
///
/// Return 0 to go on; any other value cancels the stream: its HTTP request
/// is closed and `on_done` fires with `PR_ERR_CANCELLED`, as after
/// `pr_call_cancel`. Keep it short and do not block in it; as in any
/// callback, blocking polyrelay calls return `PR_ERR_USAGE`.
pub type pr_chunk_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        text: *const c_char,
        len: usize,
        kind: pr_chunk_kind,
    ) -> c_int,
>;

/// A chunk's text as C reads it: its bytes, then a NUL (which keeps a NUL
/// inside the text readable through the length).
fn nul_terminated(text: String) -> Vec<u8> {
    let mut bytes = text.into_bytes();
    bytes.push(0);
    bytes
}

/// The chunks of a stream for which the caller is not told something else:
/// text and reasoning (the final chunk, and any kind a later core adds,
/// are not).
fn shown(chunk: ChatChunk) -> Option<(String, pr_chunk_kind)> {
    match chunk {
        ChatChunk::Text(text) => Some((text, pr_chunk_kind::PR_CHUNK_TEXT)),
        ChatChunk::Reasoning(text) => Some((text, pr_chunk_kind::PR_CHUNK_REASONING)),
        _ => None,
    }
}

/// A stream the core ended without its final chunk or an error.
fn ended_early() -> pr_error {
    pr_error::new(
        pr_status::PR_ERR_PANIC,
        "the stream ended without its final chunk (a bug in polyrelay, please report it)",
    )
}

/// Validates the call and makes its stream; nothing is sent yet.
///
/// # Safety
/// `capability` and `params_json` are NULL or NUL-terminated strings.
unsafe fn stream_of(
    client: &pr_client,
    capability: *const c_char,
    params_json: *const c_char,
) -> Outcome<ChatStream> {
    // SAFETY: forwarded from the caller.
    let capability = unsafe { text(capability, "capability") }?;
    // SAFETY: forwarded from the caller.
    let params = unsafe { json(params_json, "params_json") }?;
    Ok(client.client.stream(capability, params)?)
}

/// Where a pushed stream's chunks go.
struct ChunkDelivery {
    on_chunk: unsafe extern "C" fn(*mut c_void, *const c_char, usize, pr_chunk_kind) -> c_int,
    user_data: *mut c_void,
}

// SAFETY: `pr_stream_start`'s contract: `user_data` may be used from the
// polyrelay threads that run the callbacks.
unsafe impl Send for ChunkDelivery {}

impl ChunkDelivery {
    /// Hands `text` to `on_chunk`; whether the caller wants more.
    fn deliver(&self, text: String, kind: pr_chunk_kind) -> bool {
        let text = nul_terminated(text);
        let len = text.len() - 1;
        // SAFETY: `pr_stream_start`'s contract: a valid function; `text`
        // lives until it returns.
        as_callback(|| unsafe { (self.on_chunk)(self.user_data, text.as_ptr().cast(), len, kind) })
            == 0
    }
}

/// Reads `stream` to its end, handing each chunk to `chunks`.
async fn push(mut stream: ChatStream, chunks: ChunkDelivery) -> Outcome<pr_result> {
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk? {
            ChatChunk::Done(end) => return Ok(pr_result::streamed(*end)),
            chunk => shown(chunk),
        };
        if let Some((text, kind)) = chunk {
            if !chunks.deliver(text, kind) {
                return Err(pr_error::new(
                    pr_status::PR_ERR_CANCELLED,
                    "the stream was cancelled by its chunk callback",
                ));
            }
        }
    }
    Err(ended_early())
}

/// Starts streaming `capability` (only `"llm.chat"` streams) with
/// `params_json` (as `pr_call`; `"stream": true` is accepted) and returns
/// at once. On a polyrelay thread, `on_chunk(user_data, ...)` then receives
/// each chunk as the provider writes it, and `on_done(user_data, ...)` fires
/// exactly once at the end: `PR_OK` with the whole answer as a result
/// (`pr_result_data_json` holds the joined text, as a plain call's would;
/// `pr_result_stream_parts_json` and `pr_result_time_to_first_token` say how
/// it was written), a failure (`PR_ERR_STREAM_INTERRUPTED` after a failure
/// mid-stream, with `pr_error_partial_text`), `PR_ERR_CANCELLED` after
/// `pr_call_cancel` or a non-zero return from `on_chunk`, or
/// `PR_ERR_SHUTDOWN` when the client is shut down or freed first. Every
/// `on_chunk` call returns before `on_done` fires; when a stream ends early
/// (cancelled, shut down, failed), its HTTP request is closed before.
///
/// A fresh answer in the cache is replayed: one text chunk with the whole
/// text, then `on_done` with `pr_result_cached` true.
///
/// When `handle` is not NULL, `*handle` receives a handle for
/// `pr_call_cancel`, to free with `pr_call_handle_free`. If this function
/// returns anything but `PR_OK` (NULL arguments, invalid UTF-8 or JSON, a
/// capability that does not stream, an invalid request, a shut-down client),
/// nothing was sent, `*handle` is NULL and neither callback ever fires.
///
/// Thread safety: safe from any number of threads at once on the same
/// client, and from inside callbacks.
///
/// # Safety
/// `client` is NULL or a live client; `capability` and `params_json` are NULL
/// or NUL-terminated strings; `on_chunk` and `on_done` are NULL or functions
/// safe to call from another thread with `user_data`; `handle` and `error`
/// are NULL or valid for one pointer write.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // the C signature: one argument per thing
pub unsafe extern "C" fn pr_stream_start(
    client: *const pr_client,
    capability: *const c_char,
    params_json: *const c_char,
    on_chunk: pr_chunk_callback,
    on_done: pr_callback,
    user_data: *mut c_void,
    handle: *mut *mut pr_call_handle,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let handle = optional_out_param(handle);
            let client = live(client, "client")?;
            let on_chunk = on_chunk.ok_or_else(|| pr_error::null_argument("on_chunk"))?;
            let on_done = on_done.ok_or_else(|| pr_error::null_argument("on_done"))?;
            let stream = stream_of(client, capability, params_json)?;
            let runtime = polyrelay::internal::shared_runtime()?;
            let call = client.calls.enter()?;
            let cancelled = pr_call_handle::issue(handle);
            let chunks = ChunkDelivery {
                on_chunk,
                user_data,
            };
            let done = Delivery {
                callback: on_done,
                user_data,
            };
            runtime.spawn(async move {
                // Ended early, `push` and so the stream are dropped here,
                // which closes its HTTP request before `on_done` fires.
                let outcome = settle(
                    push(stream, chunks),
                    call.shutdown_signal(),
                    Some(cancelled),
                )
                .await;
                done.deliver(outcome);
                drop(call);
            });
            Ok(())
        })
    }
}

/// A streamed answer read chunk by chunk with `pr_stream_next`, for callers
/// that want no callbacks or threads. Made by `pr_stream_open`, freed with
/// `pr_stream_free`. It may outlive its client: once the client is shut down
/// or freed, `pr_stream_next` returns `PR_ERR_SHUTDOWN`.
///
/// Thread safety: any thread, one at a time: its functions must not run
/// concurrently on the same stream.
pub struct pr_stream {
    calls: Arc<InFlightCalls>,
    state: StreamState,
    /// The text of the last chunk handed out, NUL-terminated.
    chunk: Vec<u8>,
}

enum StreamState {
    /// Not read yet: the request goes out on the first read.
    Idle(ChatStream),
    /// Read ahead on the runtime (see [`ReadAhead`]): a read takes what was
    /// read without leaving its thread, and blocks only when nothing was.
    Reading(ReadAhead),
    /// Completed (`PR_STREAM_DONE`).
    Done(pr_result),
    /// Ended by this error, returned again by every later read.
    Failed(pr_error),
    /// Between two states, only while `next` runs.
    Moving,
}

impl pr_stream {
    /// The next chunk's text (in `self.chunk`) and kind, `None` at the end.
    fn next(&mut self) -> Outcome<Option<pr_chunk_kind>> {
        loop {
            match &self.state {
                StreamState::Done(_) => return Ok(None),
                StreamState::Failed(error) => return Err(error.clone()),
                StreamState::Idle(_) | StreamState::Reading(_) | StreamState::Moving => {}
            }
            match self.read()? {
                Some(Ok(ChatChunk::Done(end))) => {
                    self.state = StreamState::Done(pr_result::streamed(*end));
                    return Ok(None);
                }
                Some(Ok(chunk)) => {
                    if let Some((text, kind)) = shown(chunk) {
                        self.chunk = nul_terminated(text);
                        return Ok(Some(kind));
                    }
                }
                Some(Err(error)) => return Err(self.fail(error.into())),
                // The read-ahead ended without the final chunk: its pump
                // was stopped by a shutdown, or (a bug) the stream ended.
                None => {
                    let why = self.calls.enter().err().unwrap_or_else(ended_early);
                    return Err(self.fail(why));
                }
            }
        }
    }

    /// The next item read ahead, waiting for it if there is none yet; the
    /// first read starts reading ahead. On a polyrelay thread (inside a
    /// callback), where waiting would block the runtime, `PR_ERR_USAGE`,
    /// and the stream stays as it was.
    fn read(&mut self) -> Outcome<Option<polyrelay::Result<ChatChunk>>> {
        if polyrelay::internal::on_worker_thread() {
            return Err(pr_error::new(
                pr_status::PR_ERR_USAGE,
                "pr_stream_next was called on a polyrelay thread (inside a callback), \
                 where it could block the runtime: read the stream from another thread",
            ));
        }
        // Counted as a call in flight while it waits, so that a shutdown
        // waits for it; the shutdown stops the pump, whose end wakes it.
        let call = self.calls.enter().map_err(|shutdown| self.fail(shutdown))?;
        if let StreamState::Idle(_) = self.state {
            let StreamState::Idle(stream) = std::mem::replace(&mut self.state, StreamState::Moving)
            else {
                return Ok(None);
            };
            let (ahead, pump) = stream.read_ahead(ReadAhead::DEFAULT_CAPACITY);
            self.state = StreamState::Reading(ahead);
            // The pump is a call in flight too: a shutdown stops it.
            let pumping = self.calls.enter().map_err(|shutdown| self.fail(shutdown))?;
            let runtime =
                polyrelay::internal::shared_runtime().map_err(|error| self.fail(error.into()))?;
            runtime.spawn(async move {
                let pump = async {
                    pump.await;
                    Ok(())
                };
                let _ = settle(pump, pumping.shutdown_signal(), None).await;
                drop(pumping);
            });
        }
        let StreamState::Reading(ahead) = &self.state else {
            return Ok(None);
        };
        // Parks this thread until the pump wakes it, if nothing was read.
        let item = futures::executor::block_on(std::future::poll_fn(|cx| ahead.poll_next(cx)));
        drop(call);
        Ok(item)
    }

    /// Ends the stream with `error` (dropping it closes its HTTP request).
    fn fail(&mut self, error: pr_error) -> pr_error {
        self.state = StreamState::Failed(error.clone());
        error
    }
}

/// Prepares a stream of `capability` (only `"llm.chat"` streams) with
/// `params_json` (as `pr_call`; `"stream": true` is accepted), to read with
/// `pr_stream_next`. Validates at once and sends nothing: the request goes
/// out on the first `pr_stream_next`.
///
/// On success `*stream` holds the stream (free it with `pr_stream_free`).
/// On failure it is NULL and the status says why: NULL arguments, invalid
/// UTF-8 or JSON, `PR_ERR_INVALID_REQUEST` for a capability that does not
/// stream or a bad parameter, `PR_ERR_SHUTDOWN` for a shut-down client.
///
/// Thread safety: safe from any number of threads at once on the same
/// client, and from inside callbacks.
///
/// # Safety
/// `client` is NULL or a live client; `capability` and `params_json` are NULL
/// or NUL-terminated strings; `stream` is valid for one pointer write;
/// `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_stream_open(
    client: *const pr_client,
    capability: *const c_char,
    params_json: *const c_char,
    stream: *mut *mut pr_stream,
    error: *mut *mut pr_error,
) -> pr_status {
    // SAFETY: the pointers are valid as the caller promised.
    unsafe {
        report(error, || {
            let out = out_param(stream, "stream")?;
            let client = live(client, "client")?;
            let chat = stream_of(client, capability, params_json)?;
            // Refused once shut down, like a call.
            drop(client.calls.enter()?);
            *out = Box::into_raw(Box::new(pr_stream {
                calls: Arc::clone(&client.calls),
                state: StreamState::Idle(chat),
                chunk: Vec::new(),
            }));
            Ok(())
        })
    }
}

/// Blocks until the next chunk of `stream` arrives, or its end.
///
/// - `PR_OK`: `*text` points to the chunk's `*len` bytes of UTF-8 followed
///   by a NUL (never empty), valid until the next `pr_stream_next` or
///   `pr_stream_free` on this stream; `*kind` says whether it is answer text
///   or reasoning.
/// - `PR_STREAM_DONE`: the stream completed; `pr_stream_result` holds the
///   whole answer. `*text` is NULL and `*len` 0.
/// - anything else: the stream failed (`PR_ERR_STREAM_INTERRUPTED` mid-stream,
///   with `pr_error_partial_text`; the errors of a plain call before the
///   first chunk; `PR_ERR_SHUTDOWN`); `*text` is NULL and `*len` 0, and its
///   HTTP request is closed.
///
/// Once a stream has ended, every later call returns the same status again
/// (with a copy of the error). So `while (pr_stream_next(...) == PR_OK)`
/// reads a whole stream. From inside a polyrelay callback it returns
/// `PR_ERR_USAGE` instead of blocking (the stream stays as it was).
///
/// Thread safety: any thread, but not concurrently with another function on
/// the same stream. `pr_client_shutdown` from another thread ends a blocked
/// call with `PR_ERR_SHUTDOWN`.
///
/// # Safety
/// `stream` is NULL or a live stream; `text`, `len` and `kind` are NULL or
/// valid for one write each; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_stream_next(
    stream: *mut pr_stream,
    text: *mut *const c_char,
    len: *mut usize,
    kind: *mut pr_chunk_kind,
    error: *mut *mut pr_error,
) -> pr_status {
    let mut done = false;
    // SAFETY: the pointers are valid as the caller promised.
    let status = unsafe {
        report(error, || {
            let text = text
                .as_mut()
                .ok_or_else(|| pr_error::null_argument("text"))?;
            *text = std::ptr::null();
            let len = len.as_mut().ok_or_else(|| pr_error::null_argument("len"))?;
            *len = 0;
            let kind = kind
                .as_mut()
                .ok_or_else(|| pr_error::null_argument("kind"))?;
            let stream = stream
                .as_mut()
                .ok_or_else(|| pr_error::null_argument("stream"))?;
            match stream.next()? {
                Some(chunk_kind) => {
                    *text = stream.chunk.as_ptr().cast();
                    *len = stream.chunk.len() - 1;
                    *kind = chunk_kind;
                }
                None => done = true,
            }
            Ok(())
        })
    };
    match status {
        pr_status::PR_OK if done => pr_status::PR_STREAM_DONE,
        status => status,
    }
}

/// The whole answer of a completed stream (after `pr_stream_next` returned
/// `PR_STREAM_DONE`): the same accessors as a plain call's result, plus
/// `pr_result_stream_parts_json` and `pr_result_time_to_first_token`. Owned
/// by the stream and valid until `pr_stream_free`: do not free it. NULL
/// before the end, after a failure, and for a NULL `stream`.
///
/// Thread safety: any thread, but not concurrently with `pr_stream_next` or
/// `pr_stream_free` on the same stream.
///
/// # Safety
/// `stream` is NULL or a live stream.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_stream_result(stream: *const pr_stream) -> *const pr_result {
    // SAFETY: NULL or live, as the caller promised.
    match unsafe { stream.as_ref() }.map(|s| &s.state) {
        Some(StreamState::Done(result)) => result,
        _ => std::ptr::null(),
    }
}

/// Frees `stream`; one not yet at its end has its HTTP request closed,
/// which stops the provider's generation. NULL is ignored.
///
/// Thread safety: any thread, but it must be the last use of the stream.
///
/// # Safety
/// `stream` is NULL or a stream from `pr_stream_open` not yet freed; it is
/// invalid afterwards, as are the chunk text and result read from it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pr_stream_free(stream: *mut pr_stream) {
    // SAFETY: as the caller promised.
    unsafe { free_handle(stream) }
}
