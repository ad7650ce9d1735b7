//! A stream ended early through the C API closes its HTTP request then, not
//! when the program exits: cancelled with `pr_call_cancel`, stopped by
//! `on_chunk`'s return, freed mid-way (pull), or its client shut down. The C
//! test program sees the statuses; only here is the emulator asked while the
//! program goes on.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::Duration;

use polyrelay::emulation::{ChunkFault, Emulator, Fault, Method};
use polyrelay_ffi::*;

const WAIT: Duration = Duration::from_secs(10);
const PATH: &str = "/openai/*";

/// An emulator serving openai's recorded stream, silent after its third
/// event ("Hello", "!"), and a client streaming from it.
fn stalling() -> (Emulator, *mut pr_client) {
    let emulator = polyrelay::emulation::start().expect("the emulator starts");
    let openai = polyrelay::internal::find_provider("openai").expect("openai");
    let path = openai.streams_chat().expect("it streams").stream_fixtures()[0].path;
    let reply = polyrelay::emulation::stream_reply(openai, Duration::ZERO).expect("a stream");
    emulator.route(Method::POST, &format!("/openai{path}"), reply);
    emulator.fault_always(PATH, Fault::AtChunk(3, ChunkFault::Stall));
    // Read by the client when it is made; the same value for every test.
    std::env::set_var("FFI_STREAM_TEST_OPENAI_KEY", "sk-test-ffi-stream");
    let config = CString::new(format!(
        "[providers.openai]\nbase_url = \"{}/openai\"\napi_key_env = \"FFI_STREAM_TEST_OPENAI_KEY\"\n\
         [capabilities.\"llm.chat\"]\nchain = [\"openai\"]\n",
        emulator.base_url()
    ))
    .expect("no NUL");
    let (mut client, mut error) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: valid strings and out-parameters; the error is read, then freed.
    unsafe {
        pr_client_new_from_config_text(config.as_ptr(), &mut client, &mut error);
        if !error.is_null() {
            let message = CStr::from_ptr(pr_error_message(error)).to_string_lossy();
            panic!("{message}");
        }
    }
    (emulator, client)
}

const PARAMS: &CStr = c"{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}]}";

/// Whether the emulator saw the stream's request closed before its end,
/// waiting up to `WAIT` for it when `expected`.
fn closed_early(emulator: &Emulator, expected: bool) -> bool {
    if !expected {
        return emulator.requests_to(PATH).iter().any(|r| r.closed_early);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime
        .block_on(emulator.wait_for_closed_early(PATH, 1, WAIT))
        .is_ok()
}

/// What the callbacks of one pushed stream report.
enum Event {
    Chunk(String),
    Done(pr_status),
}

struct Callbacks {
    events: Mutex<Sender<Event>>,
    /// `on_chunk` returns non-zero at this chunk (from 1); 0: never.
    stop_at: usize,
    chunks: Mutex<usize>,
}

unsafe extern "C" fn on_chunk(
    user_data: *mut c_void,
    text: *const c_char,
    len: usize,
    _kind: pr_chunk_kind,
) -> c_int {
    // SAFETY: `user_data` is the test's `Callbacks`, alive until on_done.
    let callbacks = unsafe { &*user_data.cast::<Callbacks>() };
    // SAFETY: `len` bytes at `text`, lent for this call.
    let bytes = unsafe { std::slice::from_raw_parts(text.cast::<u8>(), len) };
    let _ = callbacks
        .events
        .lock()
        .unwrap()
        .send(Event::Chunk(String::from_utf8_lossy(bytes).into_owned()));
    let mut chunks = callbacks.chunks.lock().unwrap();
    *chunks += 1;
    c_int::from(*chunks == callbacks.stop_at)
}

unsafe extern "C" fn on_done(
    user_data: *mut c_void,
    status: pr_status,
    result: *mut pr_result,
    error: *mut pr_error,
) {
    // SAFETY: as in `on_chunk`; the result and error are ours to free.
    unsafe {
        pr_result_free(result);
        pr_error_free(error);
        let callbacks = &*user_data.cast::<Callbacks>();
        let _ = callbacks.events.lock().unwrap().send(Event::Done(status));
    }
}

/// Starts a stream on `client`; its callbacks report to the receiver.
fn start(
    client: *const pr_client,
    stop_at: usize,
) -> (Box<Callbacks>, Receiver<Event>, *mut pr_call_handle) {
    let (events, received) = channel();
    let callbacks = Box::new(Callbacks {
        events: Mutex::new(events),
        stop_at,
        chunks: Mutex::new(0),
    });
    let mut handle = ptr::null_mut();
    // SAFETY: live client, valid strings, callbacks safe from any thread
    // with `callbacks`, which outlives the stream.
    let status = unsafe {
        pr_stream_start(
            client,
            c"llm.chat".as_ptr(),
            PARAMS.as_ptr(),
            Some(on_chunk),
            Some(on_done),
            ptr::from_ref(&*callbacks).cast_mut().cast(),
            &mut handle,
            ptr::null_mut(),
        )
    };
    assert_eq!(status, pr_status::PR_OK);
    (callbacks, received, handle)
}

fn next_event(events: &Receiver<Event>) -> Event {
    events
        .recv_timeout(WAIT)
        .expect("a callback within the wait")
}

/// Receives the stream's first two chunks, "Hello" and "!".
fn two_chunks(events: &Receiver<Event>) {
    for expected in ["Hello", "!"] {
        match next_event(events) {
            Event::Chunk(text) => assert_eq!(text, expected),
            Event::Done(status) => panic!("ended early: {status:?}"),
        }
    }
}

#[test]
fn a_cancelled_stream_closes_its_request_and_ends_once() {
    let (emulator, client) = stalling();
    let (_callbacks, events, handle) = start(client, 0);
    two_chunks(&events);
    assert!(!closed_early(&emulator, false), "open while streaming");
    // SAFETY: a live handle.
    assert_eq!(unsafe { pr_call_cancel(handle) }, pr_status::PR_OK);
    assert!(matches!(
        next_event(&events),
        Event::Done(pr_status::PR_ERR_CANCELLED)
    ));
    assert!(closed_early(&emulator, true), "the request was closed");
    assert!(events.recv_timeout(Duration::from_millis(100)).is_err());
    // SAFETY: freed once each.
    unsafe {
        pr_call_handle_free(handle);
        pr_client_free(client);
    }
}

#[test]
fn a_non_zero_return_from_on_chunk_closes_the_request_and_ends_once() {
    let (emulator, client) = stalling();
    let (_callbacks, events, handle) = start(client, 1);
    assert!(matches!(next_event(&events), Event::Chunk(_)));
    assert!(matches!(
        next_event(&events),
        Event::Done(pr_status::PR_ERR_CANCELLED)
    ));
    assert!(closed_early(&emulator, true), "the request was closed");
    assert!(events.recv_timeout(Duration::from_millis(100)).is_err());
    // SAFETY: freed once each.
    unsafe {
        pr_call_handle_free(handle);
        pr_client_free(client);
    }
}

#[test]
fn a_shutdown_closes_the_request_of_a_stream_in_flight() {
    let (emulator, client) = stalling();
    let (_callbacks, events, handle) = start(client, 0);
    two_chunks(&events);
    // SAFETY: a live client.
    assert_eq!(unsafe { pr_client_shutdown(client) }, pr_status::PR_OK);
    // on_done has returned when the shutdown returns.
    assert!(matches!(
        events.try_recv(),
        Ok(Event::Done(pr_status::PR_ERR_SHUTDOWN))
    ));
    assert!(closed_early(&emulator, true), "the request was closed");
    // SAFETY: freed once each.
    unsafe {
        pr_call_handle_free(handle);
        pr_client_free(client);
    }
}

#[test]
fn a_pulled_stream_freed_mid_way_closes_its_request() {
    let (emulator, client) = stalling();
    let mut stream = ptr::null_mut();
    // SAFETY: live client, valid strings and out-parameter.
    let status = unsafe {
        pr_stream_open(
            client,
            c"llm.chat".as_ptr(),
            PARAMS.as_ptr(),
            &mut stream,
            ptr::null_mut(),
        )
    };
    assert_eq!(status, pr_status::PR_OK);
    for expected in ["Hello", "!"] {
        let (mut text, mut len, mut kind) = (ptr::null(), 0, pr_chunk_kind::PR_CHUNK_REASONING);
        // SAFETY: a live stream and valid out-parameters.
        let status =
            unsafe { pr_stream_next(stream, &mut text, &mut len, &mut kind, ptr::null_mut()) };
        assert_eq!(status, pr_status::PR_OK);
        assert_eq!(kind, pr_chunk_kind::PR_CHUNK_TEXT);
        // SAFETY: the chunk's NUL-terminated text, valid until the next call.
        assert_eq!(unsafe { CStr::from_ptr(text) }.to_str(), Ok(expected));
        assert_eq!(len, expected.len());
    }
    assert!(!closed_early(&emulator, false), "open while streaming");
    // SAFETY: freed once.
    unsafe { pr_stream_free(stream) };
    assert!(closed_early(&emulator, true), "the request was closed");
    // SAFETY: freed once.
    unsafe { pr_client_free(client) };
}
