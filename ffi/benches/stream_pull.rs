//! C streams at concurrency 1: pulled (`pr_stream_next` on the calling
//! thread) against pushed (`pr_stream_start`, `on_chunk` on polyrelay's
//! threads, the baseline: nothing crosses threads per chunk), in one run
//! against one loopback upstream playing OpenAI's streamed chat, every
//! answer `--chunks` words (200 by default) written at once.
//!
//! `cargo bench -p polyrelay-ffi --bench stream_pull [-- --answers N --chunks N]`

use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::time::{Duration, Instant};

use polyrelay_ffi::*;
use serde_json::json;

fn arg_after(name: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).and_then(|n| n.parse().ok())
}

const PARAMS: &str = r#"{"messages": [{"role": "user", "content": "Count."}]}"#;

/// One contender's answers: the time to each first chunk, the chunks, the
/// whole run's time.
struct Run {
    first: Vec<Duration>,
    chunks: usize,
    took: Duration,
}

impl Run {
    fn first_p50(&mut self) -> f64 {
        self.first.sort();
        self.first[self.first.len() / 2].as_secs_f64() * 1e6
    }

    fn rate(&self) -> f64 {
        self.chunks as f64 / self.took.as_secs_f64()
    }
}

fn check(status: pr_status, what: &str) {
    assert!(status == pr_status::PR_OK, "{what}: {status:?}");
}

/// One answer pulled: (its first chunk's time, its chunks).
fn pull(client: *const pr_client, params: &CString) -> (Duration, usize) {
    let started = Instant::now();
    let (mut stream, mut first, mut chunks) = (ptr::null_mut(), Duration::ZERO, 0);
    let llm = c"llm.chat";
    // SAFETY: live client, valid strings and out-parameters.
    unsafe {
        check(
            pr_stream_open(
                client,
                llm.as_ptr(),
                params.as_ptr(),
                &mut stream,
                ptr::null_mut(),
            ),
            "open",
        );
        let (mut text, mut len, mut kind) = (ptr::null(), 0, pr_chunk_kind::PR_CHUNK_TEXT);
        let status = loop {
            let status = pr_stream_next(stream, &mut text, &mut len, &mut kind, ptr::null_mut());
            if status != pr_status::PR_OK {
                break status;
            }
            if chunks == 0 {
                first = started.elapsed();
            }
            chunks += 1;
        };
        assert!(status == pr_status::PR_STREAM_DONE, "next: {status:?}");
        pr_stream_free(stream);
    }
    (first, chunks)
}

/// What a pushed answer's callbacks report.
struct Pushed {
    started: Instant,
    first: Option<Duration>,
    chunks: usize,
    done: SyncSender<(Duration, usize)>,
}

unsafe extern "C" fn on_chunk(
    data: *mut c_void,
    _: *const c_char,
    _: usize,
    _: pr_chunk_kind,
) -> c_int {
    // SAFETY: `data` is the `Pushed` of this answer, alive until `on_done`.
    let pushed = unsafe { &mut *data.cast::<Pushed>() };
    pushed.first.get_or_insert_with(|| pushed.started.elapsed());
    pushed.chunks += 1;
    0
}

unsafe extern "C" fn on_done(
    data: *mut c_void,
    status: pr_status,
    result: *mut pr_result,
    error: *mut pr_error,
) {
    assert!(status == pr_status::PR_OK, "push: {status:?}");
    // SAFETY: `data` came from `Box::into_raw` in `push`; the result and
    // error are ours to free.
    let pushed = unsafe { Box::from_raw(data.cast::<Pushed>()) };
    unsafe {
        pr_result_free(result);
        pr_error_free(error);
    }
    let _ = pushed
        .done
        .send((pushed.first.unwrap_or_default(), pushed.chunks));
}

/// One answer pushed.
fn push(client: *const pr_client, params: &CString) -> (Duration, usize) {
    let (done, finished) = sync_channel(1);
    let pushed = Box::into_raw(Box::new(Pushed {
        started: Instant::now(),
        first: None,
        chunks: 0,
        done,
    }));
    let llm = c"llm.chat";
    // SAFETY: live client, valid strings; `pushed` lives until `on_done`.
    unsafe {
        check(
            pr_stream_start(
                client,
                llm.as_ptr(),
                params.as_ptr(),
                Some(on_chunk),
                Some(on_done),
                pushed.cast(),
                ptr::null_mut(),
                ptr::null_mut(),
            ),
            "start",
        );
    }
    finished.recv().expect("on_done fires")
}

fn run(answers: usize, one: impl Fn() -> (Duration, usize)) -> Run {
    for _ in 0..answers / 10 {
        one();
    }
    let started = Instant::now();
    let mut run = Run {
        first: Vec::new(),
        chunks: 0,
        took: Duration::ZERO,
    };
    for _ in 0..answers {
        let (first, chunks) = one();
        run.first.push(first);
        run.chunks += chunks;
    }
    run.took = started.elapsed();
    run
}

fn main() {
    let answers = arg_after("--answers").unwrap_or(1000);
    let chunks = arg_after("--chunks").unwrap_or(200);
    let emulator = polyrelay::emulation::Emulator::start_background().expect("emulator");
    let words: String = (0..chunks).map(|i| format!("w{i} ")).collect();
    polyrelay::emulation::script_chat(
        &emulator,
        "openai",
        "gpt-4o-mini",
        &json!([{"text": words}]),
    )
    .expect("scripted");
    std::env::set_var("STREAM_PULL_BENCH_KEY", "sk-bench-not-a-real-key");
    let config = CString::new(format!(
        "[cache]\nenabled = false\n[providers.openai]\nbase_url = \"{}/openai\"\n\
         api_key_env = \"STREAM_PULL_BENCH_KEY\"\nrate_limit = \"1000000/s\"\n\
         [capabilities.\"llm.chat\"]\nchain = [\"openai\"]\n",
        emulator.base_url()
    ))
    .expect("no NUL");
    let mut client = ptr::null_mut();
    // SAFETY: a valid string and out-parameter.
    unsafe {
        check(
            pr_client_new_from_config_text(config.as_ptr(), &mut client, ptr::null_mut()),
            "client",
        );
    }
    let params = CString::new(PARAMS).expect("no NUL");
    let client_ref = client as *const pr_client;
    // Interleaved halves, so that the machine's drift hits both alike.
    let (mut pulled, mut pushed) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        pushed.push(run(answers / 2, || push(client_ref, &params)));
        pulled.push(run(answers / 2, || pull(client_ref, &params)));
    }
    let merge = |runs: Vec<Run>| {
        runs.into_iter().fold(
            Run {
                first: Vec::new(),
                chunks: 0,
                took: Duration::ZERO,
            },
            |mut all, r| {
                all.first.extend(r.first);
                all.chunks += r.chunks;
                all.took += r.took;
                all
            },
        )
    };
    let (mut pulled, mut pushed) = (merge(pulled), merge(pushed));
    println!("C streams at concurrency 1: {answers} answers each, {chunks} chunks per answer");
    println!("| style | chunks/s | time to first chunk p50 | chunks/s vs push |");
    println!("|---|---|---|---|");
    println!(
        "| push (`pr_stream_start`) | {:.0} | {:.0} µs | 1.00× |",
        pushed.rate(),
        pushed.first_p50()
    );
    println!(
        "| pull (`pr_stream_next`) | {:.0} | {:.0} µs | {:.2}× |",
        pulled.rate(),
        pulled.first_p50(),
        pulled.rate() / pushed.rate()
    );
    // SAFETY: the client is ours; nothing uses it any more.
    unsafe { pr_client_free(client) };
}
