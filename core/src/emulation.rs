//! An offline stand-in for every built-in provider (feature `emulator`, on by
//! default): a loopback HTTP server that answers in each provider's real wire
//! format and injects faults on command.
//!
//! ```no_run
//! # fn demo() -> std::io::Result<()> {
//! let emulator = polyrelay::emulation::start()?;
//! // Point every provider at it: provider `x` is served under `{url}/x`.
//! std::env::set_var("POLYRELAY_EMULATOR_URL", emulator.base_url());
//! # Ok(()) }
//! ```

use std::time::Duration;

use serde_json::{json, Value};

pub use polyrelay_emulator::{
    Chunk, ChunkFault, Emulator, Fault, Method, RecordedRequest, Reply, Routes,
};

use crate::provider::{Framing, Provider};

/// Serves `provider`'s fixtures under `/{id}` on `emulator`.
pub fn mount(emulator: &Emulator, provider: &dyn Provider) {
    let id = provider.info().id;
    for fixture in provider.fixtures() {
        let Ok(method) = Method::from_bytes(fixture.method.as_bytes()) else {
            continue;
        };
        emulator.route(
            method,
            &format!("/{id}{}", fixture.path),
            Reply::bytes(fixture.body.as_bytes().to_vec())
                .with_status(fixture.status)
                .with_header("content-type", "application/json"),
        );
    }
}

/// `provider`'s recorded `llm.chat` stream as a streamed reply, one event
/// per chunk, each sent `delay` after the previous; `None` for a provider
/// that does not stream. Routed by the caller, since it answers the same
/// path as the plain reply (Gemini's aside).
pub fn stream_reply(provider: &dyn Provider, delay: Duration) -> Option<Reply> {
    let streams = provider.streams_chat()?;
    let fixture = streams.stream_fixtures().first()?;
    let content_type = match streams.framing() {
        Framing::Sse => "text/event-stream",
        Framing::Ndjson => "application/x-ndjson",
    };
    Some(
        Reply::stream(Chunk::events(fixture.body.as_bytes(), delay))
            .with_status(fixture.status)
            .with_header("content-type", content_type),
    )
}

/// Plays a scripted model on `provider`'s chat path (a built-in provider
/// speaking OpenAI's chat-completions format: `openai`, `groq`, `mistral`,
/// `deepseek`, `openrouter`, `together`), plain and streamed (a request
/// with `"stream": true` is answered with server-sent events).
///
/// `script` is a list of turns, each `{"text": "…"}` or `{"tool_calls":
/// [{"name": "…", "arguments": {…} or "raw text"}]}`, with optional
/// `"usage": {"input_tokens": n, "output_tokens": n}` (default 10 and 5).
/// A request is answered by the turn at the number of assistant messages
/// it carries (a new conversation gets the first turn; after the answer
/// to the first turn's tool calls, the second; and so on), and past the
/// end by the last turn again, so a script ending with a tool call loops.
/// Call ids are `call_{turn}_{index}`, unique within a conversation.
/// `model` names the model the replies claim (priced like that model).
/// Returns the path it answers; an unknown provider or a malformed
/// script is an `Err` naming the problem.
pub fn script_chat(
    emulator: &Emulator,
    provider: &str,
    model: &str,
    script: &Value,
) -> Result<String, String> {
    let chat_path = crate::providers::openai_chat_path(provider)
        .ok_or_else(|| format!("`{provider}` does not speak the OpenAI chat-completions format"))?;
    let turns = ScriptedTurn::read_all(script)?;
    let path = format!("/{provider}{chat_path}");
    let model = model.to_string();
    emulator.route_with(Method::POST, &path, move |request| {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let assistant_turns = body["messages"].as_array().map_or(0, |messages| {
            messages.iter().filter(|m| m["role"] == "assistant").count()
        });
        let index = assistant_turns.min(turns.len() - 1);
        let turn = &turns[index];
        if body["stream"] == Value::Bool(true) {
            Reply::stream(Chunk::events(
                turn.sse(&model, assistant_turns).as_bytes(),
                Duration::ZERO,
            ))
            .with_header("content-type", "text/event-stream")
        } else {
            Reply::json(&turn.completion(&model, assistant_turns))
        }
    });
    Ok(path)
}

/// One turn of a [`script_chat`] script.
struct ScriptedTurn {
    text: String,
    /// Name and arguments (JSON text) of each call.
    calls: Vec<(String, String)>,
    input_tokens: u64,
    output_tokens: u64,
}

impl ScriptedTurn {
    fn read_all(script: &Value) -> Result<Vec<ScriptedTurn>, String> {
        let turns = script
            .as_array()
            .filter(|turns| !turns.is_empty())
            .ok_or("the script must be a non-empty list of turns")?;
        turns
            .iter()
            .enumerate()
            .map(|(i, turn)| Self::read(turn).map_err(|e| format!("script[{i}]: {e}")))
            .collect()
    }

    fn read(turn: &Value) -> Result<ScriptedTurn, String> {
        let text = match &turn["text"] {
            Value::Null => String::new(),
            Value::String(text) => text.clone(),
            _ => return Err("`text` must be a string".into()),
        };
        let calls = match &turn["tool_calls"] {
            Value::Null => Vec::new(),
            Value::Array(calls) => calls
                .iter()
                .map(|call| {
                    let name = call["name"]
                        .as_str()
                        .ok_or("each tool call needs a `name`")?;
                    let arguments = match &call["arguments"] {
                        Value::String(raw) => raw.clone(),
                        Value::Null => "{}".to_string(),
                        other => other.to_string(),
                    };
                    Ok((name.to_string(), arguments))
                })
                .collect::<Result<_, String>>()?,
            _ => return Err("`tool_calls` must be a list".into()),
        };
        if text.is_empty() && calls.is_empty() {
            return Err("a turn needs `text` or `tool_calls`".into());
        }
        let count = |field: &str, default: u64| match &turn["usage"][field] {
            Value::Null => Ok(default),
            value => value
                .as_u64()
                .ok_or_else(|| format!("`usage.{field}` must be a whole number")),
        };
        Ok(ScriptedTurn {
            text,
            calls,
            input_tokens: count("input_tokens", 10)?,
            output_tokens: count("output_tokens", 5)?,
        })
    }

    fn tool_calls(&self, turn: usize) -> Vec<Value> {
        self.calls
            .iter()
            .enumerate()
            .map(|(i, (name, arguments))| {
                json!({
                    "id": format!("call_{turn}_{i}"),
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                })
            })
            .collect()
    }

    fn finish_reason(&self) -> &'static str {
        if self.calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
    }

    fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        })
    }

    /// The turn as a chat completion.
    fn completion(&self, model: &str, turn: usize) -> Value {
        let mut message = json!({"role": "assistant", "content": self.text});
        if !self.calls.is_empty() {
            message["tool_calls"] = Value::Array(self.tool_calls(turn));
        }
        json!({
            "id": format!("chatcmpl-script-{turn}"),
            "object": "chat.completion",
            "created": 1_735_689_600,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason()}],
            "usage": self.usage(),
        })
    }

    /// The turn as chat-completion chunks: the text word by word, each
    /// call whole, the finish reason, then the usage alone (as OpenAI
    /// sends it with `stream_options.include_usage`).
    fn sse(&self, model: &str, turn: usize) -> String {
        let chunk = |choices: Value, usage: Value| {
            let chunk = json!({
                "id": format!("chatcmpl-script-{turn}"),
                "object": "chat.completion.chunk",
                "created": 1_735_689_600,
                "model": model,
                "choices": choices,
                "usage": usage,
            });
            format!("data: {chunk}\n\n")
        };
        let delta = |delta: Value| json!([{"index": 0, "delta": delta, "finish_reason": null}]);
        let mut body = chunk(
            delta(json!({"role": "assistant", "content": ""})),
            Value::Null,
        );
        for word in self.text.split_inclusive(' ') {
            body.push_str(&chunk(delta(json!({"content": word})), Value::Null));
        }
        for (i, call) in self.tool_calls(turn).into_iter().enumerate() {
            let mut call = call;
            call["index"] = json!(i);
            body.push_str(&chunk(delta(json!({"tool_calls": [call]})), Value::Null));
        }
        body.push_str(&chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": self.finish_reason()}]),
            Value::Null,
        ));
        body.push_str(&chunk(json!([]), self.usage()));
        body.push_str("data: [DONE]\n\n");
        body
    }
}

/// Serves every built-in provider on `emulator`.
pub fn mount_builtin(emulator: &Emulator) {
    for provider in crate::providers::builtin() {
        mount(emulator, *provider);
    }
}

/// Starts an emulator of every built-in provider on its own thread.
pub fn start() -> std::io::Result<Emulator> {
    let emulator = Emulator::start_background()?;
    mount_builtin(&emulator);
    Ok(emulator)
}
