//! `Client::stream` end to end on the emulator, in every provider's wire
//! format: fallback before the first token in every failure class,
//! `mid_stream = error` and `continue` after chunk N, a consumer leaving
//! closes the upstream request, and a completed stream is replayed from the
//! cache while an interrupted one is not stored. A stream read ahead
//! (`ReadAhead`) stops at its bound, wakes a waiting consumer with the end
//! when closed or when its pump is dropped, and closes the upstream request
//! when dropped.

mod common;

use std::time::Duration;

use common::*;
use polyrelay::capability::llm::ChatQuery;
use polyrelay::capability::{Data, Request};
use polyrelay::clock::FakeClock;
use polyrelay::config::Config;
use polyrelay::emulation::{self, ChunkFault};
use polyrelay::internal::builtin_providers;
use polyrelay::provider::{CallContext, Provider};
use polyrelay::{
    AttemptOutcome, ChatChunk, ChatStream, Client, Error, ErrorKind, FailureClass, SkipReason,
    StreamEnd,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(5);

fn question() -> Value {
    json!({"messages": [{"role": "user", "content": "What is the capital of France?"}]})
}

fn streaming_providers() -> Vec<&'static dyn Provider> {
    builtin_providers()
        .iter()
        .copied()
        .filter(|p| p.streams_chat().is_some())
        .collect()
}

fn provider(id: &str) -> &'static dyn Provider {
    builtin_providers()
        .iter()
        .copied()
        .find(|p| p.info().id == id)
        .unwrap()
}

/// The provider that takes over from `id` in these tests.
fn partner(id: &str) -> &'static str {
    if id == "ollama" {
        "openai"
    } else {
        "ollama"
    }
}

/// The emulator path of `id`'s streaming request.
fn stream_path(id: &str) -> String {
    let streams = provider(id).streams_chat().unwrap();
    format!("/{id}{}", streams.stream_fixtures()[0].path)
}

/// Serves `id`'s recorded stream, each event `delay` after the previous.
fn serve(emulator: &Emulator, id: &str, delay: Duration) {
    let reply = emulation::stream_reply(provider(id), delay).unwrap();
    emulator.route(Method::POST, &stream_path(id), reply);
}

/// The text of `id`'s recorded stream, as a plain reading gives it.
fn recorded_text(id: &str) -> String {
    let streams = provider(id).streams_chat().unwrap();
    let body = streams.stream_fixtures()[0].body.as_bytes();
    let query = match Request::parse("llm.chat", question()) {
        Ok(Request::LlmChat(q)) => q,
        other => panic!("{other:?}"),
    };
    let mut decoder = polyrelay::provider::ChatStreamDecoder::new(streams.framing());
    let mut deltas = Vec::new();
    decoder.push(streams, &query, body, &mut deltas).unwrap();
    decoder.end(streams, &query, &mut deltas).unwrap();
    let mut answer = polyrelay::capability::llm::ChatAccumulator::new();
    deltas.iter().for_each(|d| answer.push(d));
    answer.finish().unwrap().text
}

/// A client whose `llm.chat` chain is `chain`, on a fake clock, with
/// `extra` configuration for the capability.
fn client(emulator: &Emulator, chain: &[&str], extra: &str) -> Client {
    let clock = common::clock();
    builder(emulator, &clock, &config(chain, extra), LLM_KEYS)
        .build()
        .unwrap()
}

/// The same on the system clock, for timeouts that must fire by themselves.
fn client_on_system_clock(emulator: &Emulator, chain: &[&str], extra: &str) -> Client {
    let mut env: Vec<(String, String)> =
        vec![("POLYRELAY_EMULATOR_URL".into(), emulator.base_url())];
    env.extend(LLM_KEYS.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Client::builder()
        .config(Config::from_toml_str(&config(chain, extra)).unwrap())
        .env_vars(env)
        .testing(true)
        .build()
        .unwrap()
}

fn config(chain: &[&str], extra: &str) -> String {
    format!("[capabilities.\"llm.chat\"]\nchain = {chain:?}\n{extra}\n")
}

/// What a consumer saw: the text chunks, then how the stream ended.
struct Seen {
    texts: Vec<String>,
    end: Result<Box<StreamEnd>, Error>,
}

impl Seen {
    fn text(&self) -> String {
        self.texts.concat()
    }

    fn end(&self) -> &StreamEnd {
        match &self.end {
            Ok(end) => end,
            Err(e) => panic!("the stream failed: {e}"),
        }
    }

    /// Why the stream was interrupted, and the partial text it carries.
    fn interruption(&self) -> (&str, &str) {
        match self.error() {
            Error::StreamInterrupted {
                reason, partial, ..
            } => (reason, partial),
            other => panic!("{other:?}"),
        }
    }

    fn error(&self) -> &Error {
        match &self.end {
            Ok(_) => panic!("the stream completed"),
            Err(e) => e,
        }
    }
}

async fn read_all(mut stream: ChatStream) -> Seen {
    let mut texts = Vec::new();
    loop {
        match stream.next().await {
            Some(Ok(ChatChunk::Text(text))) => {
                assert!(!text.is_empty(), "an empty text chunk");
                texts.push(text);
            }
            Some(Ok(ChatChunk::Reasoning(_))) => {}
            Some(Ok(ChatChunk::Done(end))) => {
                assert!(stream.next().await.is_none(), "nothing after Done");
                return Seen {
                    texts,
                    end: Ok(end),
                };
            }
            Some(Ok(other)) => panic!("unexpected chunk {other:?}"),
            Some(Err(error)) => {
                assert!(stream.next().await.is_none(), "nothing after an error");
                return Seen {
                    texts,
                    end: Err(error),
                };
            }
            None => panic!("the stream ended without Done or an error"),
        }
    }
}

async fn stream(client: &Client) -> Seen {
    read_all(client.stream("llm.chat", question()).unwrap()).await
}

fn reply_text(end: &StreamEnd) -> &str {
    match end.envelope.data() {
        Data::LlmChat(reply) => &reply.text,
        other => panic!("{other:?}"),
    }
}

fn outcome_of(attempts: &[polyrelay::Attempt], id: &str) -> AttemptOutcome {
    attempts
        .iter()
        .rev()
        .find(|a| a.provider == id)
        .unwrap_or_else(|| panic!("{id} not in the trail {attempts:?}"))
        .outcome
}

/// An error event in `id`'s wire format, saying it is overloaded.
fn error_event(id: &str) -> &'static [u8] {
    match id {
        "anthropic" => b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        "gemini" => b"data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\n\n",
        "cohere" => b"event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"ERROR\"}}\n\n",
        "ollama" => b"{\"error\":\"server busy, please try again\"}\n",
        _ => b"data: {\"error\":{\"message\":\"The server is overloaded.\",\"type\":\"server_error\",\"code\":null}}\n\n",
    }
}

/// A frame no reader can make sense of.
fn malformed_event(id: &str) -> &'static [u8] {
    if id == "ollama" {
        b"{\"model\":\n"
    } else {
        b"data: {\"broken\":\n\n"
    }
}

#[tokio::test]
async fn every_format_streams_its_text_and_ends_with_the_whole_answer() {
    let providers = streaming_providers();
    assert_eq!(providers.len(), 10);
    for p in providers {
        let id = p.info().id;
        let emulator = Emulator::start().await.unwrap();
        serve(&emulator, id, Duration::ZERO);
        let seen = stream(&client(&emulator, &[id], "")).await;
        let end = seen.end();
        let expected = recorded_text(id);
        assert!(!expected.is_empty(), "{id}");
        assert_eq!(seen.text(), expected, "{id}");
        assert_eq!(reply_text(end), expected, "{id}");
        assert_eq!(end.envelope.provider, id);
        assert!(!end.envelope.cached);
        assert_eq!(
            end.parts,
            vec![polyrelay::StreamPart {
                provider: id,
                chars: expected.chars().count()
            }]
        );
        assert!(end.time_to_first_token.is_some());
        let json = end.to_json();
        assert_eq!(json["data"]["text"], json!(expected), "{id}");
        assert_eq!(json["parts"][0]["provider"], json!(id));
        assert!(json["time_to_first_token"].as_f64().is_some());
        assert_eq!(
            outcome_of(&end.envelope.attempts, id),
            AttemptOutcome::Answered
        );
        // The request was the provider's streaming one.
        let sent = emulator.requests_to(&stream_path(id));
        assert_eq!(sent.len(), 1, "{id}");
        if let Some(query) = &sent[0].query {
            assert!(query.contains("alt=sse"), "{id}: {query}");
        } else {
            let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
            assert_eq!(body["stream"], json!(true), "{id}");
        }
    }
}

/// Every way a provider can fail before its first token, set up on the
/// emulator for `id`; the call must pass over it invisibly.
#[derive(Debug, Clone, Copy)]
enum EarlyFailure {
    Status(u16),
    ErrorEvent,
    Malformed,
    CutBeforeText,
}

#[tokio::test]
async fn a_failure_before_the_first_token_is_passed_over_invisibly_in_every_format() {
    let failures = [
        EarlyFailure::Status(500),
        EarlyFailure::Status(429),
        EarlyFailure::Status(401),
        EarlyFailure::ErrorEvent,
        EarlyFailure::Malformed,
        EarlyFailure::CutBeforeText,
    ];
    for p in streaming_providers() {
        let id = p.info().id;
        let other = partner(id);
        for failure in failures {
            let emulator = Emulator::start().await.unwrap();
            serve(&emulator, id, Duration::ZERO);
            serve(&emulator, other, Duration::ZERO);
            let path = stream_path(id);
            let fault = match failure {
                EarlyFailure::Status(status) => Fault::status(status),
                EarlyFailure::ErrorEvent => {
                    Fault::AtChunk(0, ChunkFault::EndWith(error_event(id).into()))
                }
                EarlyFailure::Malformed => {
                    Fault::AtChunk(0, ChunkFault::Insert(malformed_event(id).into()))
                }
                EarlyFailure::CutBeforeText => Fault::AtChunk(0, ChunkFault::Cut),
            };
            emulator.fault_always(&path, fault);
            let seen = stream(&client(&emulator, &[id, other], "")).await;
            let end = seen.end();
            assert_eq!(seen.text(), recorded_text(other), "{id} {failure:?}");
            assert_eq!(end.envelope.provider, other, "{id} {failure:?}");
            assert_eq!(end.parts.len(), 1);
            let attempts = &end.envelope.attempts;
            assert!(
                matches!(outcome_of(attempts, id), AttemptOutcome::Failed(_)),
                "{id} {failure:?}: {attempts:?}"
            );
            assert!(emulator.hits(&path) >= 1);
        }
    }
}

#[tokio::test]
async fn a_connect_error_and_a_missing_key_are_passed_over() {
    let emulator = Emulator::start().await.unwrap();
    serve(&emulator, "ollama", Duration::ZERO);
    let toml = config(&["openai", "anthropic", "ollama"], "")
        + "[providers.openai]\nbase_url = \"http://127.0.0.1:9\"\n";
    let mut env: Vec<(String, String)> =
        vec![("POLYRELAY_EMULATOR_URL".into(), emulator.base_url())];
    env.push(("OPENAI_API_KEY".into(), "sk-test".into()));
    let client = Client::builder()
        .config(Config::from_toml_str(&toml).unwrap())
        .env_vars(env)
        .clock(common::clock().shared())
        .build()
        .unwrap();
    let seen = stream(&client).await;
    let attempts = &seen.end().envelope.attempts;
    assert_eq!(
        outcome_of(attempts, "openai"),
        AttemptOutcome::Failed(FailureClass::Transient)
    );
    assert_eq!(
        outcome_of(attempts, "anthropic"),
        AttemptOutcome::Skipped(SkipReason::NoKey)
    );
    assert_eq!(seen.end().envelope.provider, "ollama");
}

#[tokio::test]
async fn a_provider_without_a_first_token_in_time_is_passed_over() {
    let emulator = Emulator::start().await.unwrap();
    // Every event of the first provider comes ten seconds late.
    serve(&emulator, "openai", Duration::from_secs(10));
    serve(&emulator, "ollama", Duration::ZERO);
    let client = client_on_system_clock(
        &emulator,
        &["openai", "ollama"],
        "first_token_timeout = \"200ms\"",
    );
    let started = std::time::Instant::now();
    let seen = stream(&client).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let end = seen.end();
    assert_eq!(end.envelope.provider, "ollama");
    let openai = end
        .envelope
        .attempts
        .iter()
        .find(|a| a.provider == "openai")
        .unwrap();
    assert!(
        openai.reason.contains("no first token within 0.200 s"),
        "{}",
        openai.reason
    );
    // The slow request was abandoned, its connection closed.
    emulator
        .wait_for_closed_early(&stream_path("openai"), 1, WAIT)
        .await
        .unwrap();
}

#[tokio::test]
async fn after_the_first_token_a_failure_ends_the_stream_with_its_partial_text() {
    for p in streaming_providers() {
        let id = p.info().id;
        for fault in [
            ChunkFault::Cut,
            ChunkFault::EndWith(error_event(id).into()),
            ChunkFault::Insert(malformed_event(id).into()),
        ] {
            let emulator = Emulator::start().await.unwrap();
            serve(&emulator, id, Duration::ZERO);
            serve(&emulator, partner(id), Duration::ZERO);
            let chunk = first_text_chunk(id) + 1;
            emulator.fault_always(&stream_path(id), Fault::AtChunk(chunk, fault.clone()));
            let client = client(&emulator, &[id, partner(id)], "");
            let seen = stream(&client).await;
            let error = seen.error();
            assert_eq!(error.kind(), ErrorKind::StreamInterrupted, "{id} {fault:?}");
            let Error::StreamInterrupted {
                provider,
                partial,
                attempts,
                ..
            } = error
            else {
                panic!("{error:?}")
            };
            assert_eq!(*provider, id);
            assert!(!partial.is_empty(), "{id} {fault:?}");
            assert_eq!(*partial, seen.text(), "{id} {fault:?}: the text handed on");
            assert!(recorded_text(id).starts_with(partial.as_str()));
            assert!(
                matches!(outcome_of(attempts, id), AttemptOutcome::Failed(_)),
                "{attempts:?}"
            );
            assert!(attempts
                .iter()
                .any(|a| a.reason.starts_with("interrupted after")));
            // The default is not to continue elsewhere.
            assert_eq!(emulator.hits(&stream_path(partner(id))), 0);
            // An interrupted answer is not cached: the next stream asks again.
            emulator.clear_faults();
            let again = stream(&client).await;
            let end = again.end();
            assert!(!end.envelope.cached, "{id} {fault:?}");
            // (Answered by the partner when the provider's own rate limit
            // holds it back on this frozen clock.)
            assert_eq!(again.text(), recorded_text(end.envelope.provider));
        }
    }
}

/// The index of the emulator chunk (one event each) carrying `id`'s first
/// text: the fault goes after it.
fn first_text_chunk(id: &str) -> usize {
    let streams = provider(id).streams_chat().unwrap();
    let body = streams.stream_fixtures()[0].body;
    let query = match Request::parse("llm.chat", question()) {
        Ok(Request::LlmChat(q)) => q,
        other => panic!("{other:?}"),
    };
    let chunks = polyrelay::emulation::Chunk::events(body.as_bytes(), Duration::ZERO);
    let mut decoder = polyrelay::provider::ChatStreamDecoder::new(streams.framing());
    for (i, chunk) in chunks.iter().enumerate() {
        let mut deltas = Vec::new();
        decoder
            .push(streams, &query, &chunk.bytes, &mut deltas)
            .unwrap();
        if deltas
            .iter()
            .any(|d| matches!(d, polyrelay::capability::llm::ChatDelta::Text(_)))
        {
            return i;
        }
    }
    panic!("{id}'s recording has no text")
}

#[tokio::test]
async fn a_stall_after_the_first_token_is_cut_by_the_chunk_timeout() {
    let emulator = Emulator::start().await.unwrap();
    serve(&emulator, "anthropic", Duration::ZERO);
    let chunk = first_text_chunk("anthropic") + 1;
    emulator.fault_always(
        &stream_path("anthropic"),
        Fault::AtChunk(chunk, ChunkFault::Stall),
    );
    let client = client_on_system_clock(&emulator, &["anthropic"], "chunk_timeout = \"200ms\"");
    let seen = stream(&client).await;
    let (reason, partial) = seen.interruption();
    assert!(reason.contains("no chunk within 0.200 s"), "{reason}");
    assert_eq!(partial, seen.text());
    emulator
        .wait_for_closed_early(&stream_path("anthropic"), 1, WAIT)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_consumer_slower_than_the_chunk_timeout_is_not_taken_for_a_stalled_provider() {
    // The provider writes an event every 20 ms; between chunks the consumer
    // spends a minute (on the fake clock) against a chunk timeout of 5 s.
    let emulator = Emulator::start().await.unwrap();
    serve(&emulator, "openai", Duration::from_millis(20));
    let clock = FakeClock::at_epoch();
    let toml = config(&["openai"], "chunk_timeout = \"5s\"");
    let client = builder(&emulator, &clock, &toml, LLM_KEYS).build().unwrap();
    let mut stream = client.stream("llm.chat", question()).unwrap();
    let mut texts = Vec::new();
    let end = loop {
        match stream.next().await.expect("a chunk or the end") {
            Ok(ChatChunk::Text(text)) => {
                texts.push(text);
                clock.advance(Duration::from_secs(60));
            }
            Ok(ChatChunk::Done(end)) => break end,
            Ok(_) => {}
            Err(error) => panic!("a slow consumer failed the stream: {error}"),
        }
    };
    assert!(texts.len() > 1, "{texts:?}");
    assert_eq!(texts.concat(), recorded_text("openai"));
    assert_eq!(reply_text(&end), texts.concat());
}

#[tokio::test]
async fn with_mid_stream_continue_the_next_provider_continues_the_answer() {
    for p in streaming_providers() {
        let id = p.info().id;
        let other = partner(id);
        let emulator = Emulator::start().await.unwrap();
        serve(&emulator, id, Duration::ZERO);
        serve(&emulator, other, Duration::ZERO);
        let chunk = first_text_chunk(id) + 1;
        emulator.fault_always(&stream_path(id), Fault::AtChunk(chunk, ChunkFault::Cut));
        let client = client(&emulator, &[id, other], "mid_stream = \"continue\"");
        let seen = stream(&client).await;
        let end = seen.end();
        let partial: String = recorded_text(id);
        let first_part = end.parts[0].clone();
        assert_eq!(first_part.provider, id);
        let written_first: String = seen.text().chars().take(first_part.chars).collect();
        assert!(partial.starts_with(&written_first), "{id}");
        assert_eq!(
            end.parts,
            vec![
                first_part.clone(),
                polyrelay::StreamPart {
                    provider: other,
                    chars: recorded_text(other).chars().count()
                }
            ],
            "{id}"
        );
        assert_eq!(seen.text(), written_first.clone() + &recorded_text(other));
        assert_eq!(reply_text(end), seen.text());
        assert_eq!(end.envelope.provider, other);
        assert!(matches!(
            outcome_of(&end.envelope.attempts, id),
            AttemptOutcome::Failed(FailureClass::Transient)
        ));
        // The second provider was asked to continue the partial answer.
        let sent = emulator.requests_to(&stream_path(other));
        assert_eq!(sent.len(), 1);
        let body = String::from_utf8_lossy(&sent[0].body).to_string();
        assert!(body.contains(&written_first), "{id}: {body}");
        assert!(
            body.contains("Continue it exactly where it stopped"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn with_mid_stream_continue_and_no_one_left_the_stream_is_interrupted() {
    let emulator = Emulator::start().await.unwrap();
    serve(&emulator, "openai", Duration::ZERO);
    let chunk = first_text_chunk("openai") + 1;
    emulator.fault_always(
        &stream_path("openai"),
        Fault::AtChunk(chunk, ChunkFault::Cut),
    );
    let client = client(&emulator, &["openai"], "mid_stream = \"continue\"");
    let seen = stream(&client).await;
    let (reason, partial) = seen.interruption();
    assert!(reason.contains("no provider could continue"), "{reason}");
    assert_eq!(partial, seen.text());
}

/// Serves `id`'s recorded stream up to its first text at once, and the
/// events after it an hour apart.
fn serve_silent_after_the_first_text(emulator: &Emulator, id: &str) {
    let first = first_text_chunk(id);
    let chunks: Vec<_> = emulation::Chunk::events(
        provider(id).streams_chat().unwrap().stream_fixtures()[0]
            .body
            .as_bytes(),
        Duration::from_secs(3600),
    )
    .into_iter()
    .enumerate()
    .map(|(i, mut c)| {
        if i <= first {
            c.delay = Duration::ZERO;
        }
        c
    })
    .collect();
    emulator.route(
        Method::POST,
        &stream_path(id),
        emulation::Reply::stream(chunks),
    );
}

#[tokio::test]
async fn a_consumer_dropping_the_stream_closes_the_upstream_request() {
    for p in streaming_providers() {
        let id = p.info().id;
        let emulator = Emulator::start().await.unwrap();
        serve_silent_after_the_first_text(&emulator, id);
        let client = client(&emulator, &[id], "");
        let mut stream = client.stream("llm.chat", question()).unwrap();
        match stream.next().await {
            Some(Ok(ChatChunk::Text(_) | ChatChunk::Reasoning(_))) => {}
            other => panic!("{id}: {other:?}"),
        }
        drop(stream);
        emulator
            .wait_for_closed_early(&stream_path(id), 1, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
    }
}

#[tokio::test]
async fn a_completed_stream_is_cached_and_replayed_as_a_stream() {
    let emulator = Emulator::start().await.unwrap();
    serve(&emulator, "anthropic", Duration::ZERO);
    let client = client(&emulator, &["anthropic"], "");
    let first = stream(&client).await;
    assert!(!first.end().envelope.cached);
    let again = stream(&client).await;
    let end = again.end();
    assert!(end.envelope.cached);
    assert_eq!(again.text(), first.text());
    assert_eq!(reply_text(end), first.text());
    assert_eq!(end.parts, first.end().parts);
    assert!(end.envelope.attempts.is_empty());
    assert_eq!(emulator.hits(&stream_path("anthropic")), 1);
    // A plain call with the same question is answered from it too.
    let plain = client.call("llm.chat", question()).await.unwrap();
    assert!(plain.cached);
    assert_eq!(emulator.requests().len(), 1);
    // `"stream": true`, as in an OpenAI body, is the same question.
    let mut params = question();
    params["stream"] = json!(true);
    let seen = read_all(client.stream("llm.chat", params).unwrap()).await;
    assert!(seen.end().envelope.cached);
}

#[tokio::test]
async fn bad_input_fails_before_any_request() {
    let emulator = Emulator::start().await.unwrap();
    serve(&emulator, "openai", Duration::ZERO);
    let client = client(&emulator, &["openai"], "");
    let bad = client.stream("llm.chat", json!({"messages": []}));
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidRequest);
    let other = client.stream("weather.current", berlin());
    let error = other.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert!(error.to_string().contains("only llm.chat"), "{error}");
    let plain = client
        .call(
            "llm.chat",
            json!({"messages": question()["messages"], "stream": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(plain.kind(), ErrorKind::InvalidRequest);
    assert!(emulator.requests().is_empty());
}

#[tokio::test]
async fn opening_spends_quota_and_respects_an_open_breaker() {
    let emulator = Emulator::start().await.unwrap();
    serve(&emulator, "openai", Duration::ZERO);
    serve(&emulator, "ollama", Duration::ZERO);
    let toml = config(&["openai", "ollama"], "")
        + "[cache]\nenabled = false\n[providers.openai]\ndaily_quota = 1\n";
    let clock = common::clock();
    let client = builder(&emulator, &clock, &toml, LLM_KEYS).build().unwrap();
    assert_eq!(stream(&client).await.end().envelope.provider, "openai");
    let second = stream(&client).await;
    let end = second.end();
    assert_eq!(end.envelope.provider, "ollama");
    assert_eq!(
        outcome_of(&end.envelope.attempts, "openai"),
        AttemptOutcome::Skipped(SkipReason::Quota)
    );
    assert_eq!(emulator.hits(&stream_path("openai")), 1);
}

#[tokio::test]
async fn a_key_echoed_in_an_error_event_never_reaches_the_error() {
    let emulator = Emulator::start().await.unwrap();
    serve(&emulator, "openai", Duration::ZERO);
    let chunk = first_text_chunk("openai") + 1;
    let event = b"data: {\"error\":{\"message\":\"Incorrect API key provided: sk-test-openai-0123456789\",\"type\":\"server_error\"}}\n\n";
    emulator.fault_always(
        &stream_path("openai"),
        Fault::AtChunk(chunk, ChunkFault::EndWith(event.as_slice().into())),
    );
    let seen = stream(&client(&emulator, &["openai"], "")).await;
    let error = seen.error();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("sk-test-openai-0123456789"), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
}

/// The continuation sent to a provider keeps the question and adds the
/// partial answer; an empty partial answer changes nothing.
#[test]
fn a_continuation_carries_the_partial_answer() {
    let query: ChatQuery = match Request::parse("llm.chat", question()) {
        Ok(Request::LlmChat(q)) => q,
        other => panic!("{other:?}"),
    };
    assert_eq!(query.continuation(""), query);
    let next = query.continuation("The capital of");
    assert_eq!(next.messages.len(), 3);
    assert_eq!(next.messages[1].content, "The capital of");
    let ctx = CallContext {
        base_url: "http://127.0.0.1:9",
        user_agent: "t",
    };
    // Every provider accepts it as a conversation.
    for p in streaming_providers() {
        let streams = p.streams_chat().unwrap();
        assert!(
            streams.stream_request(&next, &ctx).is_ok(),
            "{}",
            p.info().id
        );
    }
}

/// An OpenAI-format stream event of completion `id` whose choice says
/// `delta` (and `finish`, when set).
fn openai_event(id: &str, delta: Value, finish: Option<&str>) -> String {
    let event = json!({
        "id": id, "object": "chat.completion.chunk", "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    format!("data: {event}\n\n")
}

#[tokio::test]
async fn a_continued_stream_keeps_the_tool_calls_written_whole_before_the_cut() {
    let emulator = Emulator::start().await.unwrap();
    // Groq writes some text, one whole call and half of a second, then the
    // connection ends without the final event.
    let call = |index: usize, id: Option<&str>, arguments: &str| {
        let mut piece = json!({"index": index, "function": {"arguments": arguments}});
        if let Some(id) = id {
            piece["id"] = json!(id);
            piece["type"] = json!("function");
            piece["function"]["name"] = json!("get_weather");
        }
        json!({"tool_calls": [piece]})
    };
    let cut = [
        openai_event(
            "a",
            json!({"role": "assistant", "content": "Let me look that up. "}),
            None,
        ),
        openai_event("a", call(0, Some("call_a0"), ""), None),
        openai_event("a", call(0, None, "{\"location\": \"Paris\"}"), None),
        openai_event("a", call(1, Some("call_a1"), "{\"location\": \"Ber"), None),
    ];
    emulator.route(
        Method::POST,
        &stream_path("groq"),
        Reply::stream(
            cut.iter()
                .map(|e| polyrelay::emulation::Chunk::new(e.clone())),
        )
        .with_header("content-type", "text/event-stream"),
    );
    // OpenAI, asked to continue, is not told of the calls: it writes the
    // first again (its own id, other spacing) and the second whole.
    let whole = [
        openai_event(
            "b",
            call(0, Some("call_b0"), "{\"location\":\"Paris\"}"),
            None,
        ),
        openai_event(
            "b",
            call(1, Some("call_b1"), "{\"location\":\"Berlin\"}"),
            None,
        ),
        openai_event("b", json!({}), Some("tool_calls")),
        "data: [DONE]\n\n".to_string(),
    ];
    emulator.route(
        Method::POST,
        &stream_path("openai"),
        Reply::stream(
            whole
                .iter()
                .map(|e| polyrelay::emulation::Chunk::new(e.clone())),
        )
        .with_header("content-type", "text/event-stream"),
    );
    let client = client(&emulator, &["groq", "openai"], "mid_stream = \"continue\"");
    let question = json!({
        "messages": [{"role": "user", "content": "Weather in Paris and Berlin?"}],
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        }}],
    });

    let seen = read_all(client.stream("llm.chat", question).unwrap()).await;

    let end = seen.end();
    assert_eq!(seen.text(), "Let me look that up. ");
    let reply = match end.envelope.data() {
        Data::LlmChat(reply) => reply,
        other => panic!("{other:?}"),
    };
    let calls: Vec<(&str, &str, &str)> = reply
        .tool_calls
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("call_a0", "get_weather", "{\"location\": \"Paris\"}"),
            ("call_b1", "get_weather", "{\"location\":\"Berlin\"}"),
        ]
    );
    assert_eq!(
        reply.finish_reason,
        Some(polyrelay::capability::llm::FinishReason::ToolCalls)
    );
    assert_eq!(end.envelope.provider, "openai");
    let groq = &end.envelope.attempts[0];
    assert_eq!(groq.outcome.as_str(), "transient");
    assert!(
        groq.reason.starts_with(
            "interrupted after 21 characters and 1 whole tool calls (a half-written tool call dropped): "
        ),
        "{}",
        groq.reason
    );
    // OpenAI was asked to continue the text.
    let sent = emulator.requests_to(&stream_path("openai"));
    assert!(String::from_utf8_lossy(&sent[0].body).contains("Let me look that up. "));
}

/// Takes the next item of `ahead`, waiting for it.
async fn next_ahead(ahead: &polyrelay::ReadAhead) -> Option<polyrelay::Result<ChatChunk>> {
    std::future::poll_fn(|cx| ahead.poll_next(cx)).await
}

#[tokio::test]
async fn a_stream_read_ahead_queues_up_to_its_capacity_then_waits_for_its_consumer() {
    let emulator = Emulator::start().await.unwrap();
    let words: Vec<String> = (0..50).map(|i| format!("w{i} ")).collect();
    polyrelay::emulation::script_chat(
        &emulator,
        "openai",
        "gpt-4.1",
        &json!([{"text": words.concat()}]),
    )
    .unwrap();
    let client = client(&emulator, &["openai"], "");
    let (ahead, pump) = client.stream("llm.chat", question()).unwrap().read_ahead(8);
    tokio::spawn(pump);
    let deadline = tokio::time::Instant::now() + WAIT;
    while ahead.buffered() < 8 {
        assert!(tokio::time::Instant::now() < deadline, "nothing read ahead");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The whole answer came at once: only the bound stops the pump.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(ahead.buffered(), 8);
    let mut texts = Vec::new();
    let end = loop {
        match next_ahead(&ahead).await {
            Some(Ok(ChatChunk::Text(text))) => texts.push(text),
            Some(Ok(ChatChunk::Done(end))) => break end,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(texts, words);
    assert_eq!(reply_text(&end), words.concat());
    assert!(next_ahead(&ahead).await.is_none());
}

#[tokio::test]
async fn dropping_a_read_ahead_closes_the_upstream_while_the_provider_is_silent() {
    let emulator = Emulator::start().await.unwrap();
    let id = "openai";
    serve_silent_after_the_first_text(&emulator, id);
    let client = client(&emulator, &[id], "");
    let (ahead, pump) = client.stream("llm.chat", question()).unwrap().read_ahead(8);
    tokio::spawn(pump);
    assert!(matches!(
        next_ahead(&ahead).await,
        Some(Ok(ChatChunk::Text(_)))
    ));
    drop(ahead);
    emulator
        .wait_for_closed_early(&stream_path(id), 1, WAIT)
        .await
        .unwrap();
}

/// A read-ahead of a provider silent for an hour, once its request is
/// out: the read-ahead, its pump's task, and a consumer waiting for the
/// first item (`true` once it finds the end).
async fn waiting_on_a_silent_provider(
    emulator: &Emulator,
) -> (
    std::sync::Arc<polyrelay::ReadAhead>,
    tokio::task::JoinHandle<()>,
    tokio::task::JoinHandle<bool>,
) {
    serve(emulator, "openai", Duration::from_secs(3600));
    let client = client(emulator, &["openai"], "");
    let (ahead, pump) = client.stream("llm.chat", question()).unwrap().read_ahead(8);
    let pumping = tokio::spawn(pump);
    let ahead = std::sync::Arc::new(ahead);
    let waiting = tokio::spawn({
        let ahead = std::sync::Arc::clone(&ahead);
        async move { next_ahead(&ahead).await.is_none() }
    });
    emulator
        .wait_for_requests(&stream_path("openai"), 1, WAIT)
        .await
        .unwrap();
    (ahead, pumping, waiting)
}

#[tokio::test]
async fn closing_a_read_ahead_wakes_its_waiting_consumer_with_the_end() {
    let emulator = Emulator::start().await.unwrap();
    let (ahead, _pumping, waiting) = waiting_on_a_silent_provider(&emulator).await;
    ahead.close();
    assert!(tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap());
    emulator
        .wait_for_closed_early(&stream_path("openai"), 1, WAIT)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_read_ahead_whose_pump_is_dropped_ends_for_its_consumer() {
    let emulator = Emulator::start().await.unwrap();
    let (_ahead, pumping, waiting) = waiting_on_a_silent_provider(&emulator).await;
    pumping.abort();
    assert!(tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap());
}
