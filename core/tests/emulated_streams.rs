//! Every streaming provider's recorded stream, served by the emulator as
//! timed chunks and read by reqwest chunk by chunk, decodes to the reply of
//! the whole recording; faults at a chunk and a client leaving are seen.

use std::time::Duration;

use polyrelay::capability::llm::{ChatAccumulator, ChatQuery, ChatReply};
use polyrelay::capability::Request;
use polyrelay::emulation::{self, ChunkFault, Emulator, Fault, Method};
use polyrelay::internal::builtin_providers;
use polyrelay::provider::{CallContext, ChatStreamDecoder, Provider, StreamsChat};
use polyrelay::ProviderFailure;

const WAIT: Duration = Duration::from_secs(5);

fn query() -> ChatQuery {
    let params = serde_json::json!({"messages": [{"role": "user", "content": "What is the capital of France?"}]});
    match Request::parse("llm.chat", params) {
        Ok(Request::LlmChat(q)) => q,
        other => panic!("{other:?}"),
    }
}

fn streaming() -> Vec<(&'static dyn Provider, &'static dyn StreamsChat)> {
    builtin_providers()
        .iter()
        .filter_map(|p| p.streams_chat().map(|s| (*p, s)))
        .collect()
}

/// Serves `provider`'s stream on a fresh emulator; the path it answers.
async fn serve(provider: &dyn Provider, delay: Duration) -> (Emulator, String) {
    let emulator = Emulator::start().await.unwrap();
    let streams = provider.streams_chat().unwrap();
    let path = format!(
        "/{}{}",
        provider.info().id,
        streams.stream_fixtures()[0].path
    );
    let reply = emulation::stream_reply(provider, delay).unwrap();
    emulator.route(Method::POST, &path, reply);
    (emulator, path)
}

/// Opens the provider's streaming request against `emulator`.
async fn open(
    provider: &dyn Provider,
    streams: &dyn StreamsChat,
    emulator: &Emulator,
) -> reqwest::Response {
    let base = emulator.url(&format!("/{}", provider.info().id));
    let ctx = CallContext {
        base_url: &base,
        user_agent: "polyrelay-test",
    };
    let request = streams.stream_request(&query(), &ctx).unwrap();
    // The crypto provider polyrelay's own client installs; unused on
    // plain HTTP, but reqwest is built with rustls.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .post(&request.url)
        .query(&request.query)
        .json(&request.json_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", provider.info().id);
    response
}

/// Reads the body as it arrives; the reply, or why there is none.
async fn read(
    streams: &dyn StreamsChat,
    mut response: reqwest::Response,
) -> Result<ChatReply, ProviderFailure> {
    let mut decoder = ChatStreamDecoder::new(streams.framing());
    let mut answer = ChatAccumulator::new();
    let mut deltas = Vec::new();
    let q = query();
    while let Ok(Some(chunk)) = response.chunk().await {
        decoder.push(streams, &q, &chunk, &mut deltas)?;
        deltas.drain(..).for_each(|d| answer.push(&d));
    }
    decoder.end(streams, &q, &mut deltas)?;
    deltas.iter().for_each(|d| answer.push(d));
    answer.finish()
}

fn whole(streams: &dyn StreamsChat) -> ChatReply {
    let body = streams.stream_fixtures()[0].body.as_bytes();
    let mut decoder = ChatStreamDecoder::new(streams.framing());
    let mut answer = ChatAccumulator::new();
    let mut deltas = Vec::new();
    decoder.push(streams, &query(), body, &mut deltas).unwrap();
    decoder.end(streams, &query(), &mut deltas).unwrap();
    deltas.iter().for_each(|d| answer.push(d));
    answer.finish().unwrap()
}

#[tokio::test]
async fn every_format_streams_through_the_emulator_to_the_recorded_reply() {
    let providers = streaming();
    assert_eq!(
        providers.len(),
        10,
        "six OpenAI-compatible, Anthropic, Gemini, Cohere, Ollama"
    );
    for (provider, streams) in providers {
        let (emulator, _) = serve(provider, Duration::ZERO).await;
        let reply = read(streams, open(provider, streams, &emulator).await).await;
        assert_eq!(reply, Ok(whole(streams)), "{}", provider.info().id);
    }
}

#[tokio::test]
async fn a_cut_or_an_error_event_at_chunk_n_is_a_failure_of_its_class() {
    for (provider, streams) in streaming() {
        let id = provider.info().id;
        let (emulator, path) = serve(provider, Duration::ZERO).await;
        emulator.fault_next(&path, Fault::AtChunk(2, ChunkFault::Cut), 1);
        let f = read(streams, open(provider, streams, &emulator).await)
            .await
            .unwrap_err();
        assert_eq!(f.class, polyrelay::FailureClass::Transient, "{id}: {f}");

        let malformed: &[u8] = if provider.info().id == "ollama" {
            b"{\"model\":\n"
        } else {
            b"data: {\"broken\":\n\n"
        };
        emulator.fault_next(
            &path,
            Fault::AtChunk(1, ChunkFault::Insert(malformed.into())),
            1,
        );
        let f = read(streams, open(provider, streams, &emulator).await)
            .await
            .unwrap_err();
        assert_eq!(
            f.class,
            polyrelay::FailureClass::MalformedResponse,
            "{id}: {f}"
        );
    }
}

#[tokio::test]
async fn a_consumer_dropping_the_stream_is_seen_closing_early() {
    for (provider, streams) in streaming() {
        let (emulator, path) = serve(provider, Duration::from_secs(3600)).await;
        emulator.fault_next(
            &path,
            Fault::AtChunk(0, ChunkFault::Insert(b"\n".as_slice().into())),
            1,
        );
        let mut response = open(provider, streams, &emulator).await;
        assert!(response.chunk().await.unwrap().is_some());
        drop(response);
        emulator
            .wait_for_closed_early(&path, 1, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", provider.info().id));
    }
}
