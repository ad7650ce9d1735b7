//! Structured output in `llm.chat` end to end through the emulator: every
//! provider is asked for the answer's form in its own words (or told it in
//! a system instruction where it has none), a valid answer comes back
//! parsed, an answer that breaks its schema falls over to the next
//! provider as a malformed answer, a schema that does not compile fails
//! before anything is sent, and a streamed answer is checked at its end.

mod common;

use common::*;
use polyrelay::emulation::Chunk;
use polyrelay::{ChatChunk, Client, Error};
use serde_json::{json, Value};

const PROVIDERS: &[&str] = &[
    "openai",
    "mistral",
    "groq",
    "deepseek",
    "openrouter",
    "together",
    "anthropic",
    "gemini",
    "cohere",
    "ollama",
];

const VALID: &str = r#"{"name": "Paris", "population": 2102650}"#;
/// Valid JSON, but `population` breaks the schema.
const INVALID: &str = r#"{"name": "Paris", "population": "two million"}"#;

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "population": {"type": "integer", "minimum": 0},
        },
        "required": ["name", "population"],
    })
}

fn city_format() -> Value {
    json!({"type": "json_schema", "json_schema": {"name": "city", "schema": schema(), "strict": true}})
}

fn question(format: Value) -> Value {
    json!({
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "The capital of France and its population?"},
        ],
        "response_format": format,
    })
}

/// The emulator path of `id`'s chat (plain and streamed alike, but for
/// Gemini's streamed one).
fn path(id: &str) -> String {
    match id {
        "openai" | "mistral" | "together" | "openrouter" => {
            let api = if id == "openrouter" { "/api/v1" } else { "/v1" };
            format!("/{id}{api}/chat/completions")
        }
        "groq" => "/groq/openai/v1/chat/completions".into(),
        "deepseek" => "/deepseek/chat/completions".into(),
        "anthropic" => "/anthropic/v1/messages".into(),
        "gemini" => "/gemini/v1beta/models/gemini-2.5-flash:generateContent".into(),
        "cohere" => "/cohere/v2/chat".into(),
        "ollama" => "/ollama/api/chat".into(),
        other => panic!("{other}"),
    }
}

/// `text` as `id`'s whole answer, in its wire format.
fn reply_body(id: &str, text: &str) -> Value {
    match id {
        "anthropic" => json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 20, "output_tokens": 12},
        }),
        "gemini" => json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
            "modelVersion": "gemini-2.5-flash",
        }),
        "cohere" => json!({
            "id": "c1", "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
            "usage": {"tokens": {"input_tokens": 20, "output_tokens": 12}},
        }),
        "ollama" => json!({
            "model": "llama3.2", "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": text}, "done": true, "done_reason": "stop",
        }),
        _ => json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 12, "total_tokens": 32},
        }),
    }
}

fn answer_with(emulator: &Emulator, id: &str, text: &str) {
    let body = reply_body(id, text).to_string();
    emulator.route_with(Method::POST, &path(id), move |_| {
        Reply::bytes(body.clone().into_bytes()).with_header("content-type", "application/json")
    });
}

fn chain(emulator: &Emulator, ids: &[&str], extra: &str) -> Client {
    let toml = format!("[capabilities.\"llm.chat\"]\nchain = {ids:?}\n{extra}\n");
    client(emulator, &clock(), &toml, LLM_KEYS)
}

fn last_body(emulator: &Emulator, id: &str) -> Value {
    let sent = emulator.requests_to(&path(id));
    serde_json::from_slice(&sent.last().expect("a request was sent").body).unwrap()
}

/// The system text `id` was sent, wherever it puts it.
fn system_text(id: &str, body: &Value) -> String {
    match id {
        "anthropic" => body["system"].as_str().unwrap_or_default().to_string(),
        "gemini" => body["systemInstruction"]["parts"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        _ => body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "system")
            .map(|m| m["content"].as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// What `id` was sent for a JSON Schema answer: the provider's native field.
fn assert_asked_natively(id: &str, body: &Value) {
    let openai_shape = json!({"type": "json_schema", "json_schema": {"name": "city", "schema": schema(), "strict": true}});
    let told = system_text(id, body);
    match id {
        "openai" | "mistral" | "together" => {
            assert_eq!(body["response_format"], openai_shape, "{id}");
            assert!(!told.contains("JSON Schema"), "{id}: asked, not told");
        }
        "openrouter" => {
            assert_eq!(body["response_format"], openai_shape);
            assert_eq!(body["provider"], json!({"require_parameters": true}));
        }
        // JSON mode, the schema told: DeepSeek has no schema mode, and
        // Groq's default model takes none.
        "deepseek" | "groq" => {
            assert_eq!(
                body["response_format"],
                json!({"type": "json_object"}),
                "{id}"
            );
            assert!(told.starts_with("Answer briefly."), "{id}: {told}");
            assert!(
                told.contains(r#""required":["name","population"]"#),
                "{id}: {told}"
            );
        }
        "anthropic" => {
            let format = &body["output_config"]["format"];
            assert_eq!(format["type"], "json_schema");
            let sent = &format["schema"];
            assert_eq!(sent["additionalProperties"], false);
            assert_eq!(sent["required"], json!(["name", "population"]));
            let population = &sent["properties"]["population"];
            assert!(population.get("minimum").is_none(), "{sent}");
            assert_eq!(population["description"], r#"{"minimum":0}"#);
            assert_eq!(body["system"], "Answer briefly.");
        }
        "gemini" => {
            let config = &body["generationConfig"];
            assert_eq!(config["responseMimeType"], "application/json");
            assert_eq!(config["responseJsonSchema"], schema());
        }
        "cohere" => assert_eq!(
            body["response_format"],
            json!({"type": "json_object", "json_schema": schema()})
        ),
        "ollama" => assert_eq!(body["format"], schema()),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn every_provider_is_asked_in_its_own_words_and_the_answer_comes_back_parsed() {
    for id in PROVIDERS {
        let emulator = emulator().await;
        answer_with(&emulator, id, VALID);
        let client = chain(&emulator, &[id], "");
        let reply = client.call("llm.chat", question(city_format())).await;
        let reply = reply.unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(reply.provider, *id);
        let answer = reply.data().to_json();
        assert_eq!(
            answer["parsed"],
            json!({"name": "Paris", "population": 2102650}),
            "{id}"
        );
        assert_eq!(answer["text"], VALID, "{id}: the text as written");
        assert_asked_natively(id, &last_body(&emulator, id));
    }
}

#[tokio::test]
async fn groq_is_asked_for_the_schema_by_the_models_that_take_one() {
    let emulator = emulator().await;
    answer_with(&emulator, "groq", VALID);
    let client = chain(&emulator, &["groq"], "");
    let mut params = question(city_format());
    params["model"] = json!("openai/gpt-oss-20b");
    client.call("llm.chat", params).await.unwrap();
    let body = last_body(&emulator, "groq");
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(system_text("groq", &body), "Answer briefly.");
}

#[tokio::test]
async fn json_object_is_asked_in_each_providers_words() {
    for id in PROVIDERS {
        let emulator = emulator().await;
        answer_with(&emulator, id, r#"{"city": "Paris"}"#);
        let client = chain(&emulator, &[id], "");
        let reply = client
            .call("llm.chat", question(json!({"type": "json_object"})))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(reply.data().to_json()["parsed"], json!({"city": "Paris"}));
        let body = last_body(&emulator, id);
        let told = system_text(id, &body);
        match *id {
            // JSON mode needs the word JSON, which the question lacks: the
            // instruction is added. Anthropic has no JSON mode at all.
            "anthropic" => {
                assert!(body.get("output_config").is_none());
                assert!(told.contains("one JSON object"), "{told}");
            }
            "gemini" => {
                assert_eq!(
                    body["generationConfig"]["responseMimeType"],
                    "application/json"
                );
                assert!(body["generationConfig"].get("responseJsonSchema").is_none());
            }
            "cohere" => assert_eq!(body["response_format"], json!({"type": "json_object"})),
            "ollama" => assert_eq!(body["format"], "json"),
            _ => {
                assert_eq!(
                    body["response_format"],
                    json!({"type": "json_object"}),
                    "{id}"
                );
                assert!(told.contains("one JSON object"), "{id}: {told}");
            }
        }
    }
    // A conversation that says JSON is sent as written.
    let emulator = emulator().await;
    answer_with(&emulator, "openai", r#"{"city": "Paris"}"#);
    let client = chain(&emulator, &["openai"], "");
    let mut params = question(json!({"type": "json_object"}));
    params["messages"][1]["content"] = json!("The capital of France, as JSON?");
    client.call("llm.chat", params).await.unwrap();
    assert_eq!(
        system_text("openai", &last_body(&emulator, "openai")),
        "Answer briefly."
    );
}

#[tokio::test]
async fn an_answer_that_breaks_its_schema_falls_over_to_the_next_provider() {
    for (bad, why) in [
        (INVALID, "at `/population`"),
        ("The capital is Paris.", "the answer is not JSON"),
    ] {
        let emulator = emulator().await;
        answer_with(&emulator, "openai", bad);
        answer_with(&emulator, "anthropic", VALID);
        let client = chain(&emulator, &["openai", "anthropic"], "");
        let reply = client
            .call("llm.chat", question(city_format()))
            .await
            .unwrap();
        assert_eq!(reply.provider, "anthropic");
        let trail: Vec<(&str, &str)> = reply
            .attempts
            .iter()
            .map(|a| (a.provider, a.outcome.as_str()))
            .collect();
        assert_eq!(
            trail,
            [("openai", "malformed_response"), ("anthropic", "success")]
        );
        let reason = &reply.attempts[0].reason;
        assert!(reason.contains(why), "{reason}");
        assert!(
            !reason.contains("two million") && !reason.contains("Paris"),
            "never the answer's text: {reason}"
        );
        assert_eq!(reply.data().to_json()["parsed"]["population"], 2102650);
    }
}

#[tokio::test]
async fn an_answer_that_calls_tools_is_not_checked() {
    let emulator = emulator().await;
    let call = include_str!("../src/providers/fixtures/openai/chat_tool_calls.json");
    emulator.route_with(Method::POST, &path("openai"), move |_| {
        Reply::bytes(call.as_bytes().to_vec()).with_header("content-type", "application/json")
    });
    let client = chain(&emulator, &["openai"], "");
    let mut params = question(city_format());
    params["tools"] = json!([{"name": "get_current_weather", "parameters": {"type": "object"}}]);
    let reply = client.call("llm.chat", params).await.unwrap();
    let answer = reply.data().to_json();
    assert_eq!(answer["finish_reason"], "tool_calls");
    assert_eq!(answer["parsed"], Value::Null);
}

#[tokio::test]
async fn a_schema_that_does_not_compile_fails_before_anything_is_sent() {
    let emulator = emulator().await;
    let client = chain(&emulator, &["openai"], "");
    for (format, field) in [
        (
            json!({"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "strin"}}}),
            "response_format.json_schema.schema",
        ),
        (
            json!({"type": "json_schema", "json_schema": {"name": "city", "schema": {"$ref": "https://example.com/s.json"}}}),
            "response_format.json_schema.schema",
        ),
        (json!({"type": "yaml"}), "response_format.type"),
    ] {
        match client.call("llm.chat", question(format)).await {
            Err(Error::InvalidRequest { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{field}: {other:?}"),
        }
        assert!(client
            .stream("llm.chat", question(json!({"type": "xml"})))
            .is_err());
    }
    assert_eq!(emulator.requests().len(), 0);
}

/// `text` streamed in OpenAI's wire format, in pieces of 8 characters.
fn openai_stream(text: &str) -> String {
    let mut body = String::new();
    let chars: Vec<char> = text.chars().collect();
    for piece in chars.chunks(8) {
        let piece: String = piece.iter().collect();
        let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    let last = json!({"id": "c1", "object": "chat.completion.chunk", "model": "m",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    body.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
    body
}

fn stream_with(emulator: &Emulator, id: &str, text: &str) {
    let body = openai_stream(text);
    emulator.route_with(Method::POST, &path(id), move |_| {
        Reply::stream(Chunk::events(body.as_bytes(), std::time::Duration::ZERO))
            .with_header("content-type", "text/event-stream")
    });
}

async fn read(client: &Client) -> (String, Result<Box<polyrelay::StreamEnd>, Error>) {
    let mut stream = client.stream("llm.chat", question(city_format())).unwrap();
    let mut text = String::new();
    loop {
        match stream.next().await {
            Some(Ok(ChatChunk::Text(piece))) => text.push_str(&piece),
            Some(Ok(ChatChunk::Done(end))) => return (text, Ok(end)),
            Some(Ok(_)) => {}
            Some(Err(e)) => return (text, Err(e)),
            None => panic!("the stream ended without its end"),
        }
    }
}

#[tokio::test]
async fn a_streamed_answer_is_checked_at_its_end() {
    let emulator = emulator().await;
    stream_with(&emulator, "openai", VALID);
    let client = chain(&emulator, &["openai"], "");
    let (text, end) = read(&client).await;
    assert_eq!(text, VALID);
    let end = end.unwrap();
    assert_eq!(
        end.envelope.data().to_json()["parsed"],
        json!({"name": "Paris", "population": 2102650})
    );
    let body = last_body(&emulator, "openai");
    assert_eq!(body["stream"], true);
    assert_eq!(body["response_format"]["type"], "json_schema");
    // Cached whole: asked again, the answer is replayed with its value.
    let (_, replayed) = read(&client).await;
    let replayed = replayed.unwrap();
    assert!(replayed.envelope.cached);
    assert_eq!(
        replayed.envelope.data().to_json()["parsed"]["name"],
        "Paris"
    );
}

#[tokio::test]
async fn a_streamed_answer_that_breaks_its_schema_ends_interrupted() {
    // The text was shown as it came, so the failure is one after the first
    // token: with `mid_stream = error` the stream ends interrupted, naming
    // why, its text kept as the partial answer.
    let emulator = emulator().await;
    stream_with(&emulator, "openai", INVALID);
    stream_with(&emulator, "mistral", VALID);
    let client = chain(&emulator, &["openai", "mistral"], "");
    let (text, end) = read(&client).await;
    assert_eq!(text, INVALID);
    match end {
        Err(Error::StreamInterrupted {
            provider,
            partial,
            reason,
            attempts,
            ..
        }) => {
            assert_eq!(provider, "openai");
            assert_eq!(partial, INVALID);
            assert!(reason.contains("malformed"), "{reason}");
            assert!(reason.contains("at `/population`"), "{reason}");
            assert_eq!(attempts[0].outcome.as_str(), "malformed_response");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(emulator.hits(&path("mistral")), 0);
}

#[tokio::test]
async fn with_mid_stream_continue_the_joined_text_is_checked_again() {
    // A continuation is asked without the format (a provider held to the
    // schema would write a whole new value), and the joined text is
    // checked at its end: an answer cut short by the first provider is
    // completed by the next.
    let emulator = emulator().await;
    stream_with(&emulator, "openai", r#"{"name": "Paris", "#);
    stream_with(&emulator, "mistral", r#""population": 2102650}"#);
    let client = chain(
        &emulator,
        &["openai", "mistral"],
        "mid_stream = \"continue\"",
    );
    let (text, end) = read(&client).await;
    assert_eq!(text, r#"{"name": "Paris", "population": 2102650}"#);
    let end = end.unwrap();
    assert_eq!(end.envelope.provider, "mistral");
    assert_eq!(
        end.envelope.data().to_json()["parsed"],
        json!({"name": "Paris", "population": 2102650})
    );
    let trail: Vec<&str> = end
        .envelope
        .attempts
        .iter()
        .map(|a| a.outcome.as_str())
        .collect();
    assert_eq!(trail, ["malformed_response", "success"]);
    let continuation = last_body(&emulator, "mistral");
    assert!(
        continuation.get("response_format").is_none(),
        "{continuation}"
    );
}
