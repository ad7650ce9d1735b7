//! What polyrelay adds to a streamed chat answer: to the time to its first
//! token, and to each chunk after it.
//!
//! Run: `cargo bench -p polyrelay --bench streaming` (add `-- --quick` for a
//! short run, `--chunks N` for another answer length). One process, one
//! upstream on loopback: the emulator on its own runtime, playing OpenAI's
//! `/v1/chat/completions` with answers of `--chunks` content chunks (200 by
//! default), each a write of its own, as OpenAI frames them (a first chunk
//! with the role, the content chunks, one with the finish reason, the usage
//! chunk when asked, `data: [DONE]`). Raw reqwest (the same POST, its
//! server-sent events split and each chunk's JSON read into a struct) and
//! `Client::stream("llm.chat", ..)` with the built-in `openai` provider
//! pointed at the upstream (cache off, every guard on) alternate.
//!
//! The readers run in a task on the client runtime's worker threads, as a
//! server's handlers do; `-- --main-thread` runs them on the main thread
//! inside `block_on` instead, as a `#[tokio::main]` program's `main` does
//! (there every chunk crosses from hyper's connection task on a worker to
//! the reader, and the times are mostly thread wake-ups).
//!
//! For profilers: `-- --only raw|polyrelay [--answers N]` reads just N
//! answers (default 1 000) on one side at concurrency 1, without warming
//! up, e.g. to count instructions per chunk under `valgrind --tool=callgrind`
//! (see BENCHMARKS.md).
//!
//! `-- --serve [--chunks N]` only serves that upstream: it prints its base
//! URL (OpenAI's API is under `{url}/openai/v1`) and serves until standard
//! input closes. `python/bench/streaming.py` runs it that way, so the Python
//! contenders read the same upstream.

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use polyrelay::config::Config;
use polyrelay::emulation::{Chunk, Emulator, Method, RecordedRequest, Reply};
use polyrelay::{ChatChunk, Client};
use serde::Deserialize;
use serde_json::{json, Value};

/// Counts heap allocations, to report them per chunk for each side.
struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers to the system allocator; only adds a counter.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Where the upstream serves OpenAI's chat completions.
const CHAT_PATH: &str = "/openai/v1/chat/completions";
const MODEL: &str = "gpt-4o-mini-2024-07-18";
const API_KEY: &str = "sk-bench-not-a-real-key";

/// One `chat.completion.chunk` event, its fields in OpenAI's order; with
/// `usage: null` on every chunk when the request asked for the usage chunk,
/// as OpenAI does.
fn event(choices: &str, usage: Option<&str>) -> Chunk {
    let usage = usage.map(|u| format!(",\"usage\":{u}")).unwrap_or_default();
    Chunk::new(format!(
        "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\
         \"model\":\"{MODEL}\",\"system_fingerprint\":\"fp_bench\",\"choices\":[{choices}]{usage}}}\n\n"
    ))
}

/// The text of content chunk `i`; they differ, as tokens do (LiteLLM
/// takes a run of equal chunks for a model stuck in a loop and fails).
fn token(i: usize) -> String {
    format!("t{i} ")
}

fn usage(chunks: usize) -> Value {
    json!({"prompt_tokens": 14, "completion_tokens": chunks, "total_tokens": 14 + chunks})
}

/// A streamed answer of `chunks` content chunks.
fn streamed_answer(chunks: usize, with_usage: bool) -> Reply {
    let null = with_usage.then_some("null");
    let choice = |delta: &str, finish: &str| {
        format!("{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}")
    };
    let mut events = vec![event(
        &choice(r#"{"role":"assistant","content":""}"#, "null"),
        null,
    )];
    events.extend((0..chunks).map(|i| {
        event(
            &choice(&format!(r#"{{"content":"{}"}}"#, token(i)), "null"),
            null,
        )
    }));
    events.push(event(&choice("{}", r#""stop""#), null));
    if with_usage {
        events.push(event("", Some(&usage(chunks).to_string())));
    }
    events.push(Chunk::new("data: [DONE]\n\n"));
    Reply::stream(events).with_header("content-type", "text/event-stream")
}

/// The same answer in one piece, for a request that does not stream.
fn whole_answer(chunks: usize) -> Reply {
    Reply::json(&json!({
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": (0..chunks).map(token).collect::<String>(), "refusal": null},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": usage(chunks),
    }))
}

/// Serves OpenAI's chat completions at [`CHAT_PATH`]: streamed when the
/// request says `"stream": true`, with the usage chunk when it asks for it.
fn serve_chat(emulator: &Emulator, chunks: usize) {
    let replies = [
        whole_answer(chunks),
        streamed_answer(chunks, false),
        streamed_answer(chunks, true),
    ];
    emulator.set_logging(false);
    emulator.route_with(Method::POST, CHAT_PATH, move |request: &RecordedRequest| {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let stream = body["stream"].as_bool().unwrap_or(false);
        let with_usage = body["stream_options"]["include_usage"]
            .as_bool()
            .unwrap_or(false);
        replies[usize::from(stream) + usize::from(stream && with_usage)].clone()
    });
}

/// What one streamed answer took, as its reader saw it.
#[derive(Clone, Copy, Debug)]
struct Timing {
    /// From the start of the request to the first content chunk in hand.
    first_token: Duration,
    /// From the start of the request to the end of the stream.
    total: Duration,
    /// Content chunks read.
    chunks: usize,
}

impl Timing {
    /// The time per content chunk after the first token.
    fn per_chunk(&self) -> Duration {
        (self.total - self.first_token) / self.chunks.max(1) as u32
    }
}

/// The fields of a `chat.completion.chunk` the raw reader needs.
#[derive(Deserialize)]
struct RawChunk {
    choices: Vec<RawChoice>,
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct RawChoice {
    delta: RawDelta,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct RawDelta {
    content: Option<String>,
}

#[derive(Deserialize)]
struct RawUsage {
    total_tokens: u64,
}

/// The baseline: one streamed chat completion read with reqwest alone,
/// splitting the server-sent events by hand and reading each chunk's JSON;
/// the text is collected, as a caller wanting the whole answer would.
async fn raw_stream(client: &reqwest::Client, url: &str, body: &[u8]) -> Timing {
    let started = Instant::now();
    let mut response = client
        .post(url)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {API_KEY}"))
        .body(body.to_vec())
        .send()
        .await
        .expect("raw send");
    assert_eq!(response.status(), 200, "raw status");
    let mut pending: Vec<u8> = Vec::new();
    let mut text = String::new();
    let (mut first_token, mut chunks, mut finished, mut usage) = (None, 0, false, 0);
    while let Some(bytes) = response.chunk().await.expect("raw chunk") {
        pending.extend_from_slice(&bytes);
        let mut start = 0;
        while let Some(end) = pending[start..].windows(2).position(|w| w == b"\n\n") {
            let event = &pending[start..start + end];
            start += end + 2;
            for line in event.split(|&b| b == b'\n') {
                let Some(data) = line.strip_prefix(b"data: ") else {
                    continue;
                };
                if data == b"[DONE]" {
                    continue;
                }
                let chunk: RawChunk = serde_json::from_slice(data).expect("raw chunk JSON");
                if let Some(choice) = chunk.choices.into_iter().next() {
                    finished |= choice.finish_reason.is_some();
                    if let Some(content) = choice.delta.content.filter(|c| !c.is_empty()) {
                        first_token.get_or_insert_with(|| started.elapsed());
                        chunks += 1;
                        text.push_str(&content);
                    }
                }
                if let Some(u) = chunk.usage {
                    usage = u.total_tokens;
                }
            }
        }
        pending.drain(..start);
    }
    let total = started.elapsed();
    assert!(finished && usage > 0, "raw: the stream did not finish");
    std::hint::black_box(text);
    Timing {
        first_token: first_token.expect("raw: no token"),
        total,
        chunks,
    }
}

/// The same answer through `Client::stream`.
async fn relay_stream(client: &Client, params: Value) -> Timing {
    let started = Instant::now();
    let mut stream = client.stream("llm.chat", params).expect("polyrelay stream");
    let (mut first_token, mut chunks, mut total) = (None, 0, None);
    while let Some(item) = stream.next().await {
        match item.expect("polyrelay chunk") {
            ChatChunk::Text(text) => {
                first_token.get_or_insert_with(|| started.elapsed());
                chunks += 1;
                std::hint::black_box(text);
            }
            ChatChunk::Done(end) => {
                total = Some(started.elapsed());
                std::hint::black_box(end);
            }
            _ => {}
        }
    }
    Timing {
        first_token: first_token.expect("polyrelay: no token"),
        total: total.expect("polyrelay: the stream did not finish"),
        chunks,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Content chunks per second read by 64 concurrent tasks for `secs`.
async fn throughput<F, Fut>(make: F, secs: f64) -> f64
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Timing> + Send,
{
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let make = make.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    n += make().await.chunks;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn arg_after(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).cloned()
}

/// `--serve`: the upstream alone, until standard input closes.
fn serve(chunks: usize) {
    let emulator = Emulator::start_background().expect("emulator");
    serve_chat(&emulator, chunks);
    println!("{}", emulator.base_url());
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
}

fn main() {
    let chunks: usize = arg_after("--chunks")
        .map(|n| n.parse().expect("--chunks N"))
        .unwrap_or(200);
    if std::env::args().any(|a| a == "--serve") {
        serve(chunks);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::args().any(|a| a == "--main-thread") {
        runtime.block_on(bench(chunks));
    } else {
        // The readers run as a task on the runtime's workers, as a server's
        // handlers do. In `block_on` the reader is on the main thread while
        // hyper's connection task runs on a worker, so every chunk crosses
        // threads, and the times measured are mostly this VM's thread
        // wake-ups (12–50 µs per chunk against 2.3 µs on a worker).
        let task = runtime.spawn(bench(chunks));
        runtime.block_on(task).expect("the benchmark task");
    }
}

async fn bench(chunks: usize) {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, per_round, slice_pairs) = if quick { (4, 50, 8) } else { (10, 200, 40) };
    const SLICE_SECS: f64 = 0.25;

    let emulator = Emulator::start_background().expect("emulator");
    serve_chat(&emulator, chunks);
    let url = emulator.url(CHAT_PATH);

    let messages = json!([{"role": "user", "content": "Count to two hundred."}]);
    let relay = Client::builder()
        .config(
            Config::from_toml_str(
                r#"
[cache]
enabled = false
[capabilities."llm.chat"]
chain = ["openai"]
[providers.openai]
rate_limit = "1000000/s"
daily_quota = 1000000000
"#,
            )
            .expect("bench config"),
        )
        .env_vars([("POLYRELAY_EMULATOR_URL".to_string(), emulator.base_url())])
        .api_key("openai", API_KEY)
        .build()
        .expect("bench client");
    let params = json!({ "messages": messages });
    // The body polyrelay's openai provider sends.
    let raw_body = serde_json::to_vec(&json!({
        "model": "gpt-4o-mini",
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    }))
    .expect("raw body");
    let raw = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("reqwest");

    let raw_call = {
        let (raw, url, body) = (raw.clone(), url.clone(), raw_body.clone());
        move || {
            let (raw, url, body) = (raw.clone(), url.clone(), body.clone());
            async move { raw_stream(&raw, &url, &body).await }
        }
    };
    let relay_call = {
        let (relay, params) = (relay.clone(), params.clone());
        move || {
            let (relay, params) = (relay.clone(), params.clone());
            // The parameters are made before the clock starts, as the raw
            // side's body is.
            async move { relay_stream(&relay, params).await }
        }
    };

    if let Some(side) = arg_after("--only") {
        let answers: usize = arg_after("--answers")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000);
        let mut runs = Vec::new();
        let allocated_before = allocations();
        for _ in 0..answers {
            runs.push(match side.as_str() {
                "raw" => raw_call().await,
                "polyrelay" => relay_call().await,
                other => panic!("--only raw|polyrelay, not {other}"),
            });
        }
        let mut first: Vec<Duration> = runs.iter().map(|t| t.first_token).collect();
        let mut per_chunk: Vec<Duration> = runs.iter().map(Timing::per_chunk).collect();
        first.sort();
        per_chunk.sort();
        println!(
            "{side}: {answers} answers, {} chunks; time to first token p50 {:.1} µs, per chunk p50 {:.3} µs; {} heap allocations (client and server)",
            runs.iter().map(|t| t.chunks).sum::<usize>(),
            micros(percentile(&first, 0.5)),
            micros(percentile(&per_chunk, 0.5)),
            allocations() - allocated_before,
        );
        return;
    }

    // Warm up connections and code paths; check both read the whole answer.
    for _ in 0..50 {
        assert_eq!(raw_call().await.chunks, chunks, "raw: chunks read");
        assert_eq!(relay_call().await.chunks, chunks, "polyrelay: chunks read");
    }

    // Allocations per answer (the emulator's own count in both).
    let count = 200u64;
    let before = allocations();
    for _ in 0..count {
        raw_call().await;
    }
    let raw_allocs = (allocations() - before) as f64 / count as f64;
    let before = allocations();
    for _ in 0..count {
        relay_call().await;
    }
    let relay_allocs = (allocations() - before) as f64 / count as f64;

    // Concurrency 1, alternating one answer each, the side that goes first
    // alternating too: on this VM an answer's time depends on what ran just
    // before it (thread wake-ups), and a fixed order biased one side.
    let (mut raw_runs, mut relay_runs) = (Vec::new(), Vec::new());
    for i in 0..rounds * per_round {
        if i % 2 == 0 {
            raw_runs.push(raw_call().await);
            relay_runs.push(relay_call().await);
        } else {
            relay_runs.push(relay_call().await);
            raw_runs.push(raw_call().await);
        }
    }
    // The added time of each pair of neighbours, whose median is steadier
    // than the difference of the two sides' medians when the times of both
    // jump between levels from run to run.
    let paired = |of: fn(&Timing) -> Duration| {
        let mut added: Vec<f64> = raw_runs
            .iter()
            .zip(&relay_runs)
            .map(|(raw, relay)| micros(of(relay)) - micros(of(raw)))
            .collect();
        added.sort_by(f64::total_cmp);
        added[added.len() / 2]
    };
    let ttft_added = paired(|t| t.first_token);
    let chunk_added = paired(Timing::per_chunk);
    let sorted = |runs: &[Timing], of: fn(&Timing) -> Duration| {
        let mut v: Vec<Duration> = runs.iter().map(of).collect();
        v.sort();
        v
    };
    let raw_ttft = sorted(&raw_runs, |t| t.first_token);
    let relay_ttft = sorted(&relay_runs, |t| t.first_token);
    let raw_per_chunk = sorted(&raw_runs, Timing::per_chunk);
    let relay_per_chunk = sorted(&relay_runs, Timing::per_chunk);
    let raw_total = sorted(&raw_runs, |t| t.total);
    let relay_total = sorted(&relay_runs, |t| t.total);

    // Concurrency 64: chunks per second in alternating short slices (see
    // overhead.rs: this VM's rate drifts, so only neighbours compare well).
    let (mut raw_rates, mut relay_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..slice_pairs {
        let (raw_rate, relay_rate) = if pair % 2 == 0 {
            let raw_rate = throughput(raw_call.clone(), SLICE_SECS).await;
            (raw_rate, throughput(relay_call.clone(), SLICE_SECS).await)
        } else {
            let relay_rate = throughput(relay_call.clone(), SLICE_SECS).await;
            (throughput(raw_call.clone(), SLICE_SECS).await, relay_rate)
        };
        raw_rates.push(raw_rate);
        relay_rates.push(relay_rate);
        ratios.push(relay_rate / raw_rate);
    }
    let quantile = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q).round() as usize]
    };
    let raw_rate = quantile(&mut raw_rates, 0.5);
    let relay_rate = quantile(&mut relay_rates, 0.5);
    let ratio = quantile(&mut ratios, 0.5);
    let (ratio_q1, ratio_q3) = (quantile(&mut ratios, 0.25), quantile(&mut ratios, 0.75));

    let p = |v: &[Duration], q| micros(percentile(v, q));
    let verdict = |met: bool| if met { "PASS" } else { "MISS" };
    let reader = if std::env::args().any(|a| a == "--main-thread") {
        "the main thread (block_on)"
    } else {
        "a task on a worker"
    };
    println!(
        "polyrelay streaming benchmark: {chunks} content chunks per answer, {} answers per side at concurrency 1, read by {reader}\n",
        raw_runs.len()
    );
    println!("| measure | raw reqwest | polyrelay | added / ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| time to first token p50 | {:.1} µs | {:.1} µs | {ttft_added:+.1} µs (pairs' median) | ≤ 50 µs: {} |",
        p(&raw_ttft, 0.5),
        p(&relay_ttft, 0.5),
        verdict(ttft_added <= 50.0)
    );
    println!(
        "| time to first token p99 | {:.1} µs | {:.1} µs | {:+.1} µs | |",
        p(&raw_ttft, 0.99),
        p(&relay_ttft, 0.99),
        p(&relay_ttft, 0.99) - p(&raw_ttft, 0.99)
    );
    println!(
        "| per chunk after the first, p50 | {:.3} µs | {:.3} µs | {chunk_added:+.3} µs (pairs' median) | ≤ 2 µs: {} |",
        p(&raw_per_chunk, 0.5),
        p(&relay_per_chunk, 0.5),
        verdict(chunk_added <= 2.0)
    );
    println!(
        "| whole answer p50 | {:.1} µs | {:.1} µs | {:+.1} µs | |",
        p(&raw_total, 0.5),
        p(&relay_total, 0.5),
        p(&relay_total, 0.5) - p(&raw_total, 0.5)
    );
    println!(
        "| chunks/s, concurrency 64 | {raw_rate:.0} | {relay_rate:.0} | {ratio:.3}× (quartiles {ratio_q1:.3}–{ratio_q3:.3}) | |"
    );
    println!(
        "| heap allocations per chunk, client + server | {:.2} | {:.2} | {:+.2} | |",
        raw_allocs / chunks as f64,
        relay_allocs / chunks as f64,
        (relay_allocs - raw_allocs) / chunks as f64
    );
}
