//! Tool calls in `llm.chat` end to end through the emulator, for every
//! provider that takes tools: the request carries the tools in the
//! provider's own shape, the model's call comes back normalised, and the
//! conversation that answers it (assistant call, tool result) is sent in
//! the provider's shape and answered, plain and streamed. A provider that
//! cannot honour a request's `tool_choice` is skipped before anything is
//! sent.

mod common;

use common::*;
use polyrelay::emulation::{Chunk, Reply};
use polyrelay::internal::builtin_providers;
use polyrelay::provider::{Framing, Provider};
use polyrelay::{ChatChunk, Client, Data, Envelope, Error};
use serde_json::{json, Value};

/// What a tool result carries, and so how the emulator tells the second
/// request of a round trip from the first.
const RESULT: &str = r#"{"temperature_c": 14, "sky": "clear"}"#;

/// A provider's replies asking for a tool, plain and streamed: the
/// provider's published tool-call example where it has one (see
/// `fixtures/SOURCES.md`); the OpenAI-compatible family shares OpenAI's.
struct ToolReplies {
    id: &'static str,
    plain: &'static str,
    stream: &'static str,
    /// The call the replies make: name and arguments.
    name: &'static str,
    arguments: Value,
    /// The plain reply's call id (made from its position where the
    /// provider gives none).
    call_id: &'static str,
}

const OPENAI_PLAIN: &str = include_str!("../src/providers/fixtures/openai/chat_tool_calls.json");
const OPENAI_STREAM: &str =
    include_str!("../src/providers/fixtures/openai/chat_tool_calls_stream.sse");

fn openai_family(id: &'static str) -> ToolReplies {
    ToolReplies {
        id,
        plain: OPENAI_PLAIN,
        stream: OPENAI_STREAM,
        name: "get_current_weather",
        arguments: json!({"location": "Boston, MA"}),
        call_id: "call_abc123",
    }
}

fn replies() -> Vec<ToolReplies> {
    let mut all: Vec<ToolReplies> = [
        "openai",
        "groq",
        "mistral",
        "deepseek",
        "openrouter",
        "together",
    ]
    .into_iter()
    .map(openai_family)
    .collect();
    all.extend([
        ToolReplies {
            id: "anthropic",
            plain: include_str!("../src/providers/fixtures/anthropic/message_tool_use.json"),
            stream: include_str!("../src/providers/fixtures/anthropic/message_tool_use_stream.sse"),
            name: "get_weather",
            arguments: json!({"location": "San Francisco, CA", "unit": "celsius"}),
            call_id: "toolu_01A09q90qw90lq917835lq9",
        },
        ToolReplies {
            id: "gemini",
            plain: include_str!("../src/providers/fixtures/gemini/generate_function_call.json"),
            stream: include_str!(
                "../src/providers/fixtures/gemini/generate_function_call_stream.sse"
            ),
            name: "get_current_weather",
            arguments: json!({"location": "Boston, MA"}),
            call_id: "call_0",
        },
        ToolReplies {
            id: "cohere",
            plain: include_str!("../src/providers/fixtures/cohere/chat_tool_calls.json"),
            stream: include_str!("../src/providers/fixtures/cohere/chat_tool_calls_stream.sse"),
            name: "get_weather",
            arguments: json!({"location": "Toronto"}),
            call_id: "get_weather_1byjy32y4hvq",
        },
        ToolReplies {
            id: "ollama",
            plain: include_str!("../src/providers/fixtures/ollama/chat_tool_calls.json"),
            stream: include_str!("../src/providers/fixtures/ollama/chat_tool_calls_stream.ndjson"),
            name: "get_current_weather",
            arguments: json!({"format": "celsius", "location": "Paris, FR"}),
            call_id: "call_0",
        },
    ]);
    all
}

fn provider(id: &str) -> &'static dyn Provider {
    builtin_providers()
        .iter()
        .copied()
        .find(|p| p.info().id == id)
        .unwrap()
}

/// The emulator paths of `id`'s plain and streamed chat.
fn paths(id: &str) -> (String, String) {
    let p = provider(id);
    let plain = p
        .fixtures()
        .iter()
        .find(|f| f.method == "POST" && !f.path.contains("embed"))
        .unwrap()
        .path;
    let streamed = p.streams_chat().unwrap().stream_fixtures()[0].path;
    (format!("/{id}{plain}"), format!("/{id}{streamed}"))
}

/// Serves `r`'s provider: a request carrying a tool result is answered by
/// the provider's plain text reply, any other by the call.
fn serve(emulator: &Emulator, r: &ToolReplies) {
    let p = provider(r.id);
    let (plain_path, stream_path) = paths(r.id);
    let text = p
        .fixtures()
        .iter()
        .find(|f| format!("/{}{}", r.id, f.path) == plain_path)
        .unwrap()
        .body;
    let streams = p.streams_chat().unwrap();
    let text_stream = streams.stream_fixtures()[0].body;
    let content_type = match streams.framing() {
        Framing::Sse => "text/event-stream",
        Framing::Ndjson => "application/x-ndjson",
    };
    let answers = |req: &polyrelay::emulation::RecordedRequest| {
        String::from_utf8_lossy(&req.body).contains("temperature_c")
    };
    let (call, stream) = (r.plain, r.stream);
    let streamed = move |req: &polyrelay::emulation::RecordedRequest| {
        let body = if answers(req) { text_stream } else { stream };
        Reply::stream(Chunk::events(body.as_bytes(), std::time::Duration::ZERO))
            .with_header("content-type", content_type)
    };
    let plain = move |req: &polyrelay::emulation::RecordedRequest| {
        if String::from_utf8_lossy(&req.body).contains("\"stream\":true")
            || String::from_utf8_lossy(&req.body).contains("\"stream\": true")
        {
            return streamed(req);
        }
        let body = if answers(req) { text } else { call };
        Reply::bytes(body.as_bytes().to_vec()).with_header("content-type", "application/json")
    };
    if plain_path == stream_path {
        emulator.route_with(Method::POST, &plain_path, plain);
    } else {
        emulator.route_with(Method::POST, &plain_path, plain);
        emulator.route_with(Method::POST, &stream_path, streamed);
    }
}

fn client_of(emulator: &Emulator, id: &str) -> Client {
    let toml = format!("[capabilities.\"llm.chat\"]\nchain = [\"{id}\"]\n");
    client(emulator, &clock(), &toml, LLM_KEYS)
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather of a place",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    }})
}

fn question() -> Value {
    json!({
        "messages": [{"role": "user", "content": "What is the weather like in Boston?"}],
        "tools": [weather_tool()],
    })
}

/// The conversation answering `call`: the question, the assistant's call
/// as the answer gave it, and its result.
fn answering(call: &Value) -> Value {
    json!({
        "messages": [
            {"role": "user", "content": "What is the weather like in Boston?"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": RESULT},
        ],
        "tools": [weather_tool()],
    })
}

fn json_of(reply: &Envelope) -> Value {
    reply.data().to_json()
}

fn last_body(emulator: &Emulator, path: &str) -> Value {
    let sent = emulator.requests_to(path);
    serde_json::from_slice(&sent.last().expect("a request was sent").body).unwrap()
}

/// The tools, the assistant's call and the tool result as `id` sends them.
fn assert_wire_shape(id: &str, first: &Value, second: &Value, call_id: &str, name: &str) {
    let tool_result = RESULT;
    match id {
        "anthropic" => {
            assert_eq!(first["tools"][0]["name"], "get_weather");
            assert_eq!(first["tools"][0]["input_schema"]["type"], "object");
            let messages = second["messages"].as_array().unwrap();
            assert_eq!(messages.len(), 3, "{second}");
            assert_eq!(messages[1]["role"], "assistant");
            let call = &messages[1]["content"][0];
            assert_eq!(
                (&call["type"], &call["id"], &call["name"]),
                (&json!("tool_use"), &json!(call_id), &json!(name))
            );
            assert!(call["input"].is_object());
            assert_eq!(
                messages[2],
                json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": tool_result}]})
            );
        }
        "gemini" => {
            let declaration = &first["tools"][0]["functionDeclarations"][0];
            assert_eq!(declaration["name"], "get_weather");
            assert_eq!(declaration["parametersJsonSchema"]["type"], "object");
            let contents = second["contents"].as_array().unwrap();
            assert_eq!(contents[1]["role"], "model");
            assert_eq!(contents[1]["parts"][0]["functionCall"]["name"], name);
            assert_eq!(
                contents[2],
                json!({"role": "user", "parts": [{"functionResponse": {"name": name, "response": {"temperature_c": 14, "sky": "clear"}}}]})
            );
        }
        "cohere" => {
            assert_eq!(first["tools"][0]["function"]["name"], "get_weather");
            let messages = second["messages"].as_array().unwrap();
            assert_eq!(messages[1]["tool_calls"][0]["id"], call_id);
            assert_eq!(messages[1]["tool_calls"][0]["function"]["name"], name);
            assert_eq!(
                messages[2],
                json!({"role": "tool", "tool_call_id": call_id, "content": tool_result})
            );
        }
        "ollama" => {
            assert_eq!(first["tools"][0]["function"]["name"], "get_weather");
            let messages = second["messages"].as_array().unwrap();
            assert_eq!(messages[1]["tool_calls"][0]["function"]["name"], name);
            assert!(messages[1]["tool_calls"][0]["function"]["arguments"].is_object());
            assert_eq!(
                messages[2],
                json!({"role": "tool", "content": tool_result, "tool_name": name})
            );
        }
        _ => {
            assert_eq!(first["tools"][0], weather_tool(), "{id}");
            let messages = second["messages"].as_array().unwrap();
            assert_eq!(messages[1]["content"], Value::Null, "{id}");
            assert_eq!(messages[1]["tool_calls"][0]["id"], call_id);
            assert_eq!(messages[1]["tool_calls"][0]["type"], "function");
            assert!(messages[1]["tool_calls"][0]["function"]["arguments"].is_string());
            assert_eq!(
                messages[2],
                json!({"role": "tool", "tool_call_id": call_id, "content": tool_result})
            );
        }
    }
}

#[tokio::test]
async fn every_provider_makes_a_tool_call_round_trip() {
    for r in replies() {
        let emulator = emulator().await;
        serve(&emulator, &r);
        let client = client_of(&emulator, r.id);
        let (path, _) = paths(r.id);

        let reply = client.call("llm.chat", question()).await.unwrap();
        assert_eq!(reply.provider, r.id);
        let answer = json_of(&reply);
        assert_eq!(answer["finish_reason"], "tool_calls", "{}: {answer}", r.id);
        let call = answer["tool_calls"][0].clone();
        assert_eq!(call["name"], r.name, "{}", r.id);
        let arguments: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(arguments, r.arguments, "{}", r.id);
        assert_eq!(call["id"], r.call_id, "{}", r.id);
        let first = last_body(&emulator, &path);

        // The call answered: the text reply, the conversation sent in the
        // provider's shape.
        let reply = client.call("llm.chat", answering(&call)).await.unwrap();
        let answer = json_of(&reply);
        assert!(!answer["text"].as_str().unwrap().is_empty(), "{}", r.id);
        assert_eq!(answer["tool_calls"], json!([]), "{}", r.id);
        assert_eq!(emulator.requests_to(&path).len(), 2, "{}", r.id);
        let second = last_body(&emulator, &path);
        assert_wire_shape(r.id, &first, &second, r.call_id, r.name);
    }
}

#[tokio::test]
async fn every_provider_streams_a_tool_call_assembled_whole() {
    for r in replies() {
        let emulator = emulator().await;
        serve(&emulator, &r);
        let client = client_of(&emulator, r.id);

        let mut stream = client.stream("llm.chat", question()).unwrap();
        let mut texts = String::new();
        let end = loop {
            match stream.next().await {
                Some(Ok(ChatChunk::Text(text))) => texts.push_str(&text),
                Some(Ok(ChatChunk::Reasoning(_))) => {}
                Some(Ok(ChatChunk::Done(end))) => break end,
                other => panic!("{}: {other:?}", r.id),
            }
        };
        let answer = json_of(&end.envelope);
        assert_eq!(answer["text"], texts, "{}", r.id);
        assert_eq!(answer["finish_reason"], "tool_calls", "{}: {answer}", r.id);
        let calls = answer["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "{}: {answer}", r.id);
        assert_eq!(calls[0]["name"], r.name, "{}", r.id);
        let arguments: Value =
            serde_json::from_str(calls[0]["arguments"].as_str().unwrap()).unwrap();
        let expected = match r.id {
            // The streaming guide's call asks for fahrenheit.
            "anthropic" => json!({"location": "San Francisco, CA", "unit": "fahrenheit"}),
            _ => r.arguments.clone(),
        };
        assert_eq!(arguments, expected, "{}", r.id);

        // Answering it, streamed: the provider's recorded text stream.
        let call = calls[0].clone();
        let mut stream = client.stream("llm.chat", answering(&call)).unwrap();
        let end = loop {
            match stream.next().await {
                Some(Ok(ChatChunk::Done(end))) => break end,
                Some(Ok(_)) => {}
                other => panic!("{}: {other:?}", r.id),
            }
        };
        let answer = json_of(&end.envelope);
        assert!(!answer["text"].as_str().unwrap().is_empty(), "{}", r.id);
        assert_eq!(answer["tool_calls"], json!([]), "{}", r.id);
    }
}

#[tokio::test]
async fn a_provider_that_cannot_honour_tool_choice_is_skipped_unasked() {
    let emulator = emulator().await;
    for r in replies() {
        serve(&emulator, &r);
    }
    // Ollama takes no tool_choice, Cohere cannot be made to call one named
    // tool: both are passed over without a request, and the next answers.
    let toml = "[capabilities.\"llm.chat\"]\nchain = [\"ollama\", \"cohere\", \"anthropic\"]\n";
    let client = client(&emulator, &clock(), toml, LLM_KEYS);
    let mut params = question();
    params["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    let reply = client.call("llm.chat", params).await.unwrap();
    assert_eq!(reply.provider, "anthropic");
    let trail: Vec<(&str, &str)> = reply
        .attempts
        .iter()
        .map(|a| (a.provider, a.outcome.as_str()))
        .collect();
    assert_eq!(
        trail,
        [
            ("ollama", "unsupported"),
            ("cohere", "unsupported"),
            ("anthropic", "success"),
        ]
    );
    assert_eq!(emulator.hits(&paths("ollama").0), 0);
    assert_eq!(emulator.hits(&paths("cohere").0), 0);
    let sent = last_body(&emulator, &paths("anthropic").0);
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );

    // `required` still skips Ollama; Cohere honours it.
    let mut params = question();
    params["tool_choice"] = json!("required");
    let reply = client.call("llm.chat", params).await.unwrap();
    assert_eq!(reply.provider, "cohere");
    assert_eq!(
        last_body(&emulator, &paths("cohere").0)["tool_choice"],
        "REQUIRED"
    );
    assert_eq!(emulator.hits(&paths("ollama").0), 0);

    // `none` is honoured by Ollama by sending no tools.
    let mut params = question();
    params["tool_choice"] = json!("none");
    let reply = client.call("llm.chat", params).await.unwrap();
    assert_eq!(reply.provider, "ollama");
    assert!(last_body(&emulator, &paths("ollama").0)
        .get("tools")
        .is_none());
}

#[tokio::test]
async fn invalid_tools_fail_naming_the_field_before_anything_is_sent() {
    let emulator = emulator().await;
    let client = client(&emulator, &clock(), "", LLM_KEYS);
    let user = json!({"role": "user", "content": "Hi"});
    for (params, field) in [
        (
            json!({"messages": [user], "tools": [weather_tool(), {"type": "function", "function": {"name": "bad name"}}]}),
            "tools[1].function.name",
        ),
        (
            json!({"messages": [user], "tools": [weather_tool()], "tool_choice": {"type": "function", "function": {"name": "other"}}}),
            "tool_choice.function.name",
        ),
        (
            json!({"messages": [user, {"role": "tool", "tool_call_id": "x", "content": "1"}]}),
            "messages[1].tool_call_id",
        ),
        (
            json!({"messages": [user, {"role": "assistant", "tool_calls": [{"id": "a", "name": "f", "arguments": {}}]}]}),
            "messages[1].role",
        ),
    ] {
        match client.call("llm.chat", params).await {
            Err(Error::InvalidRequest { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert_eq!(emulator.requests().len(), 0);
}

#[test]
fn the_answer_keeps_its_calls_through_the_data_type() {
    let data = Data::from_json(
        polyrelay::CapabilityId::LlmChat,
        json!({"id": null, "model": "m", "text": "", "reasoning": null, "finish_reason": "tool_calls",
               "usage": {"input_tokens": null, "output_tokens": null, "total_tokens": null, "cached_input_tokens": null, "reasoning_tokens": null},
               "tool_calls": [{"id": "call_0", "name": "f", "arguments": "{}"}]}),
    );
    let data = data.unwrap();
    assert_eq!(data.to_json()["tool_calls"][0]["name"], "f");
}

#[tokio::test]
async fn tool_choice_is_sent_in_each_providers_words() {
    let named = json!({"type": "function", "function": {"name": "get_weather"}});
    for r in replies() {
        let emulator = emulator().await;
        serve(&emulator, &r);
        let client = client_of(&emulator, r.id);
        let (path, _) = paths(r.id);
        let mut sent = Vec::new();
        for choice in [
            json!("auto"),
            json!("none"),
            json!("required"),
            named.clone(),
        ] {
            let mut params = question();
            params["tool_choice"] = choice;
            match client.call("llm.chat", params).await {
                Ok(_) => sent.push(Some(last_body(&emulator, &path))),
                Err(_) => sent.push(None),
            }
        }
        let words: Vec<Option<Value>> = sent
            .into_iter()
            .map(|body| {
                body.map(|b| match r.id {
                    "gemini" => b["toolConfig"]["functionCallingConfig"].clone(),
                    "ollama" => json!(b.get("tools").is_some()),
                    _ => b["tool_choice"].clone(),
                })
            })
            .collect();
        let expected = match r.id {
            "anthropic" => vec![
                Some(json!({"type": "auto"})),
                Some(json!({"type": "none"})),
                Some(json!({"type": "any"})),
                Some(json!({"type": "tool", "name": "get_weather"})),
            ],
            "gemini" => vec![
                Some(json!({"mode": "AUTO"})),
                Some(json!({"mode": "NONE"})),
                Some(json!({"mode": "ANY"})),
                Some(json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]})),
            ],
            // Auto is Cohere's default; one named tool it cannot force.
            "cohere" => vec![
                Some(Value::Null),
                Some(json!("NONE")),
                Some(json!("REQUIRED")),
                None,
            ],
            // Tools sent for auto, none honoured by sending none, the
            // others skipped unasked.
            "ollama" => vec![Some(json!(true)), Some(json!(false)), None, None],
            _ => vec![
                Some(json!("auto")),
                Some(json!("none")),
                Some(json!("required")),
                Some(named.clone()),
            ],
        };
        assert_eq!(words, expected, "{}", r.id);
    }
}
