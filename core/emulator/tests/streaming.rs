//! Streamed replies and faults at a chunk, read by a real reqwest client on
//! loopback.

use std::time::Duration;

use polyrelay_emulator::{Bytes, Chunk, ChunkFault, Emulator, Fault, Method, Reply};

const WAIT: Duration = Duration::from_secs(5);
const PATH: &str = "/v1/chat/completions";

fn events() -> Vec<&'static str> {
    vec![
        "data: {\"text\":\"Hel\"}\n\n",
        "data: {\"text\":\"lo\"}\n\n",
        "data: {\"text\":\"!\"}\n\n",
        "data: [DONE]\n\n",
    ]
}

fn stream_reply(delay: Duration) -> Reply {
    Reply::stream(events().into_iter().map(|e| Chunk::after(delay, e)))
        .with_header("content-type", "text/event-stream")
}

async fn emulator(reply: Reply) -> Emulator {
    let emulator = Emulator::start().await.unwrap();
    emulator.route(Method::POST, PATH, reply);
    emulator
}

async fn open(emulator: &Emulator) -> reqwest::Response {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .post(emulator.url(PATH))
        .body("{\"stream\":true}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Everything the body delivers, and whether it ended with an error.
async fn read_all(mut response: reqwest::Response) -> (String, bool) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return (String::from_utf8(body).unwrap(), false),
            Err(_) => return (String::from_utf8(body).unwrap(), true),
        }
    }
}

async fn closed_early(emulator: &Emulator) -> bool {
    emulator.requests_to(PATH)[0].closed_early
}

#[tokio::test(start_paused = true)]
async fn a_streamed_reply_arrives_chunk_by_chunk_after_its_delays() {
    let emulator = emulator(stream_reply(Duration::from_millis(50))).await;
    let started = tokio::time::Instant::now();
    let mut response = open(&emulator).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert!(
        response.content_length().is_none(),
        "chunked, not sized in advance"
    );
    let mut arrivals = Vec::new();
    let mut body = String::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        arrivals.push(started.elapsed());
        body.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(body, events().concat());
    assert_eq!(arrivals.len(), 4, "one read per delayed chunk");
    for (i, at) in arrivals.iter().enumerate() {
        assert!(
            *at >= Duration::from_millis(50) * (i as u32 + 1),
            "chunk {i} at {at:?}"
        );
    }
    assert!(!closed_early(&emulator).await, "read to the end");
}

#[tokio::test]
async fn a_cut_at_chunk_n_ends_the_body_in_an_error_after_the_earlier_chunks() {
    let emulator = emulator(stream_reply(Duration::ZERO)).await;
    emulator.fault_next(PATH, Fault::AtChunk(2, ChunkFault::Cut), 1);
    let (body, failed) = read_all(open(&emulator).await).await;
    assert_eq!(body, events()[..2].concat());
    assert!(failed, "a cut is an error, not the end of the body");
    assert!(
        !closed_early(&emulator).await,
        "the emulator cut, not the client"
    );

    // The next request streams whole again.
    let (body, failed) = read_all(open(&emulator).await).await;
    assert_eq!((body, failed), (events().concat(), false));
}

#[tokio::test]
async fn inserted_and_ending_events_change_the_body_not_its_end() {
    let emulator = emulator(stream_reply(Duration::ZERO)).await;
    let malformed = Bytes::from_static(b"data: {\"text\":\n\n");
    emulator.fault_next(PATH, Fault::AtChunk(1, ChunkFault::Insert(malformed)), 1);
    let (body, failed) = read_all(open(&emulator).await).await;
    let mut expected = events();
    expected.insert(1, "data: {\"text\":\n\n");
    assert_eq!((body, failed), (expected.concat(), false));

    let error = Bytes::from_static(
        b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    );
    emulator.fault_next(
        PATH,
        Fault::AtChunk(2, ChunkFault::EndWith(error.clone())),
        1,
    );
    let (body, failed) = read_all(open(&emulator).await).await;
    assert_eq!(
        body,
        events()[..2].concat() + std::str::from_utf8(&error).unwrap()
    );
    assert!(!failed);
    assert_eq!(
        emulator
            .requests_to(PATH)
            .iter()
            .filter(|r| r.closed_early)
            .count(),
        0
    );
}

#[tokio::test]
async fn a_stall_holds_the_stream_until_the_client_gives_up() {
    let emulator = emulator(stream_reply(Duration::ZERO)).await;
    emulator.fault_next(PATH, Fault::AtChunk(1, ChunkFault::Stall), 1);
    let mut response = open(&emulator).await;
    let first = response.chunk().await.unwrap().unwrap();
    assert_eq!(first, events()[0]);
    // Had the body gone on to its end, the request would be delivered:
    // `closed_early` after the client leaves proves the stall.
    drop(response);
    let seen = emulator.wait_for_closed_early(PATH, 1, WAIT).await.unwrap();
    assert_eq!(seen.len(), 1);
}

#[tokio::test]
async fn a_client_that_drops_a_stream_midway_is_seen_closing_early() {
    // Long delays: the client leaves while the emulator waits to send.
    let emulator = emulator(stream_reply(Duration::from_secs(3600))).await;
    emulator.fault_next(
        PATH,
        Fault::AtChunk(0, ChunkFault::Insert(Bytes::from_static(b": open\n\n"))),
        1,
    );
    let mut response = open(&emulator).await;
    assert_eq!(response.chunk().await.unwrap().unwrap(), ": open\n\n");
    drop(response);
    emulator.wait_for_closed_early(PATH, 1, WAIT).await.unwrap();
}

#[tokio::test]
async fn a_reply_that_is_not_streamed_is_one_chunk() {
    let emulator = emulator(Reply::json(&serde_json::json!({"a": 1}))).await;
    emulator.fault_next(PATH, Fault::AtChunk(0, ChunkFault::Cut), 1);
    let (body, failed) = read_all(open(&emulator).await).await;
    assert_eq!((body.as_str(), failed), ("", true));
    emulator.fault_next(
        PATH,
        Fault::AtChunk(1, ChunkFault::EndWith(Bytes::from_static(b"!"))),
        1,
    );
    let (body, failed) = read_all(open(&emulator).await).await;
    assert_eq!((body.as_str(), failed), ("{\"a\":1}!", false));
}

#[test]
fn recorded_streams_are_cut_into_their_events() {
    let sse = "data: a\n\n: keep-alive\n\nevent: x\ndata: b\r\n\r\ndata: [DONE]\n\n";
    let chunks = Chunk::events(sse.as_bytes(), Duration::ZERO);
    let texts: Vec<&[u8]> = chunks.iter().map(|c| c.bytes.as_ref()).collect();
    assert_eq!(
        texts,
        [
            &b"data: a\n\n"[..],
            b": keep-alive\n\n",
            b"event: x\ndata: b\r\n\r\n",
            b"data: [DONE]\n\n"
        ]
    );
    let ndjson = "{\"a\":1}\n{\"b\":2}\n{\"c\":3}";
    let chunks = Chunk::events(ndjson.as_bytes(), Duration::from_millis(1));
    assert_eq!(
        chunks.len(),
        3,
        "a last line without its newline is a chunk"
    );
    assert_eq!(
        chunks.iter().map(|c| c.bytes.len()).sum::<usize>(),
        ndjson.len()
    );
}
