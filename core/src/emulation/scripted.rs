//! Scripted models: [`script_chat`] plays a list of turns on any built-in
//! LLM provider's chat path, in that provider's own wire format. The
//! script is read once ([`ScriptedTurn`]); each wire format is one
//! [`ChatFormat`] implementation, which says where the requests arrive,
//! how a request shows the turns the model already took, and how a turn
//! is written plainly and as a stream.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{content_type, Chunk, Emulator, Method, RecordedRequest, Reply};
use crate::provider::Framing;

/// Plays a scripted model on `provider`'s chat path, in that provider's
/// own wire format, plain and streamed: every built-in LLM provider —
/// OpenAI's chat completions (`openai`, `groq`, `mistral`, `deepseek`,
/// `openrouter`, `together`), Anthropic's Messages API (`anthropic`:
/// `text` and `tool_use` blocks; named stream events), Gemini's
/// `generateContent` and `streamGenerateContent?alt=sse` (`gemini`:
/// `text` and `functionCall` parts), Cohere's v2 chat (`cohere`:
/// `tool_calls` with the text as the `tool_plan`; `message-start` …
/// `message-end` events) and Ollama's `/api/chat` (`ollama`: arguments as
/// objects; NDJSON lines). A streamed request (`"stream": true`, Gemini's
/// `:streamGenerateContent`) is answered with the text word by word and
/// each call's arguments in pieces where the format streams them so.
///
/// `script` is a list of turns, each `{"text": "…"}` or `{"tool_calls":
/// [{"name": "…", "arguments": {…} or "raw text"}]}`, with optional
/// `"usage": {"input_tokens": n, "output_tokens": n}` (default 10 and 5).
/// A request is answered by the turn at the number of the model's turns
/// it carries (assistant messages; Gemini's `model` contents), so a new
/// conversation gets the first turn; after the answer to the first turn's
/// tool calls, the second; and so on; past the end the last turn answers
/// again, so a script ending with a tool call loops. Call ids are
/// `call_{turn}_{index}` (Anthropic: `toolu_{turn}_{index}`), unique
/// within a conversation; Gemini sends none, as it does not (the adapter
/// numbers the calls). Raw-text arguments go as they are where the format
/// carries text, and as a JSON string where it wants an object.
///
/// `model` names the model the replies claim (priced like that model);
/// for Gemini, whose path names the model, it is also the model whose
/// paths are answered (`gemini-2.5-flash` unless the caller asks for
/// another). Returns the path its requests arrive at (Gemini: a pattern
/// covering both of its paths, for `hits` and `requests_to`); an unknown
/// provider or a malformed script is an `Err` naming the problem.
pub fn script_chat(
    emulator: &Emulator,
    provider: &str,
    model: &str,
    script: &Value,
) -> Result<String, String> {
    let format = chat_format(provider)
        .ok_or_else(|| format!("`{provider}` is not a built-in LLM provider"))?;
    let framing = crate::providers::find(provider)
        .and_then(|p| p.streams_chat())
        .map(|streams| streams.framing())
        .ok_or_else(|| format!("`{provider}` does not stream chat"))?;
    let turns = Arc::new(ScriptedTurn::read_all(script)?);
    let paths = format.paths(model)?;
    let answered_at = format!("/{provider}{}", format.answered_at(model)?);
    for path in paths {
        let (format, turns, model) = (format.clone(), turns.clone(), model.to_string());
        emulator.route_with(
            Method::POST,
            &format!("/{provider}{path}"),
            move |request| {
                let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                let (list, role) = format.history();
                let number = body[list].as_array().map_or(0, |turns| {
                    turns.iter().filter(|t| t["role"] == role).count()
                });
                let answer = Answer {
                    turn: &turns[number.min(turns.len() - 1)],
                    model: &model,
                    number,
                };
                if format.is_streamed(request, &body) {
                    let body = render(&format.events(&answer), framing);
                    Reply::stream(Chunk::events(body.as_bytes(), Duration::ZERO))
                        .with_header("content-type", content_type(framing))
                } else {
                    Reply::json(&format.message(&answer))
                }
            },
        );
    }
    Ok(answered_at)
}

/// The wire format of a built-in LLM provider, by id.
fn chat_format(provider: &str) -> Option<Arc<dyn ChatFormat>> {
    if let Some(chat_path) = crate::providers::openai_chat_path(provider) {
        return Some(Arc::new(OpenAiChat { chat_path }));
    }
    Some(match provider {
        "anthropic" => Arc::new(AnthropicMessages),
        "gemini" => Arc::new(GeminiGenerate),
        "cohere" => Arc::new(CohereChat),
        "ollama" => Arc::new(OllamaChat),
        _ => return None,
    })
}

/// One provider's chat wire format, as a scripted model speaks it.
trait ChatFormat: Send + Sync {
    /// The paths (below `/{provider}`) chat requests for `model` arrive at.
    fn paths(&self, model: &str) -> Result<Vec<String>, String>;

    /// The path, or a `*` pattern covering [`paths`](Self::paths), that
    /// [`script_chat`] returns.
    fn answered_at(&self, model: &str) -> Result<String, String> {
        Ok(self.paths(model)?.swap_remove(0))
    }

    /// The field of a request listing the conversation, and the role of
    /// the model's turns in it.
    fn history(&self) -> (&'static str, &'static str) {
        ("messages", "assistant")
    }

    /// Whether `request` asks for a stream.
    fn is_streamed(&self, _request: &RecordedRequest, body: &Value) -> bool {
        body["stream"] == Value::Bool(true)
    }

    /// The turn as a plain reply.
    fn message(&self, answer: &Answer<'_>) -> Value;

    /// The turn as stream events, in order.
    fn events(&self, answer: &Answer<'_>) -> Vec<Event>;
}

/// A turn being answered: the scripted turn, the model the reply claims,
/// and the number of model turns before it (for ids).
struct Answer<'a> {
    turn: &'a ScriptedTurn,
    model: &'a str,
    number: usize,
}

impl Answer<'_> {
    /// The id of call `index` of this turn, after `prefix`.
    fn call_id(&self, prefix: &str, index: usize) -> String {
        format!("{prefix}_{}_{index}", self.number)
    }

    /// The text as a stream sends it: word by word, spaces kept.
    fn words(&self) -> impl Iterator<Item = &str> {
        self.turn.text.split_inclusive(' ')
    }

    fn has_calls(&self) -> bool {
        !self.turn.calls.is_empty()
    }

    fn total_tokens(&self) -> u64 {
        self.turn.input_tokens + self.turn.output_tokens
    }
}

/// One event of a stream: its SSE name, if the format names them, and
/// its data.
struct Event {
    name: Option<String>,
    data: String,
}

impl Event {
    fn data(data: impl ToString) -> Event {
        Event {
            name: None,
            data: data.to_string(),
        }
    }

    /// An event named after its `type` (Anthropic's and Cohere's).
    fn typed(data: Value) -> Event {
        Event {
            name: data["type"].as_str().map(str::to_string),
            data: data.to_string(),
        }
    }
}

/// `events` as one body in `framing`.
fn render(events: &[Event], framing: Framing) -> String {
    let mut body = String::new();
    for event in events {
        match framing {
            Framing::Sse => {
                if let Some(name) = &event.name {
                    body.push_str(&format!("event: {name}\n"));
                }
                body.push_str(&format!("data: {}\n\n", event.data));
            }
            Framing::Ndjson => body.push_str(&format!("{}\n", event.data)),
        }
    }
    body
}

/// `text` in two pieces (at a character boundary), as streams send a
/// call's arguments in pieces.
fn halves(text: &str) -> [&str; 2] {
    let mut middle = text.len() / 2;
    while !text.is_char_boundary(middle) {
        middle -= 1;
    }
    [&text[..middle], &text[middle..]]
}

/// OpenAI's chat completions (and the providers speaking it).
struct OpenAiChat {
    chat_path: &'static str,
}

impl OpenAiChat {
    fn tool_calls(answer: &Answer<'_>) -> Vec<Value> {
        answer
            .turn
            .calls
            .iter()
            .enumerate()
            .map(|(i, call)| {
                json!({
                    "id": answer.call_id("call", i),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                })
            })
            .collect()
    }

    fn finish_reason(answer: &Answer<'_>) -> &'static str {
        if answer.has_calls() {
            "tool_calls"
        } else {
            "stop"
        }
    }

    fn usage(answer: &Answer<'_>) -> Value {
        json!({
            "prompt_tokens": answer.turn.input_tokens,
            "completion_tokens": answer.turn.output_tokens,
            "total_tokens": answer.total_tokens(),
        })
    }
}

impl ChatFormat for OpenAiChat {
    fn paths(&self, _model: &str) -> Result<Vec<String>, String> {
        Ok(vec![self.chat_path.to_string()])
    }

    fn message(&self, answer: &Answer<'_>) -> Value {
        let mut message = json!({"role": "assistant", "content": answer.turn.text});
        if answer.has_calls() {
            message["tool_calls"] = Value::Array(Self::tool_calls(answer));
        }
        json!({
            "id": format!("chatcmpl-script-{}", answer.number),
            "object": "chat.completion",
            "created": 1_735_689_600,
            "model": answer.model,
            "choices": [{"index": 0, "message": message, "finish_reason": Self::finish_reason(answer)}],
            "usage": Self::usage(answer),
        })
    }

    /// Chunks: the text word by word, each call whole, the finish reason,
    /// then the usage alone (as OpenAI sends it with
    /// `stream_options.include_usage`), then `[DONE]`.
    fn events(&self, answer: &Answer<'_>) -> Vec<Event> {
        let chunk = |choices: Value, usage: Value| {
            Event::data(json!({
                "id": format!("chatcmpl-script-{}", answer.number),
                "object": "chat.completion.chunk",
                "created": 1_735_689_600,
                "model": answer.model,
                "choices": choices,
                "usage": usage,
            }))
        };
        let delta = |delta: Value| json!([{"index": 0, "delta": delta, "finish_reason": null}]);
        let mut events = vec![chunk(
            delta(json!({"role": "assistant", "content": ""})),
            Value::Null,
        )];
        for word in answer.words() {
            events.push(chunk(delta(json!({"content": word})), Value::Null));
        }
        for (i, mut call) in Self::tool_calls(answer).into_iter().enumerate() {
            call["index"] = json!(i);
            events.push(chunk(delta(json!({"tool_calls": [call]})), Value::Null));
        }
        events.push(chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": Self::finish_reason(answer)}]),
            Value::Null,
        ));
        events.push(chunk(json!([]), Self::usage(answer)));
        events.push(Event::data("[DONE]"));
        events
    }
}

/// Anthropic's Messages API.
struct AnthropicMessages;

impl AnthropicMessages {
    fn id(answer: &Answer<'_>) -> String {
        format!("msg_script_{}", answer.number)
    }

    fn stop_reason(answer: &Answer<'_>) -> &'static str {
        if answer.has_calls() {
            "tool_use"
        } else {
            "end_turn"
        }
    }

    /// Usage with the cache counts, without which the adapter cannot
    /// know the prompt's size.
    fn usage(answer: &Answer<'_>, output_tokens: u64) -> Value {
        json!({
            "input_tokens": answer.turn.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        })
    }

    fn tool_use(answer: &Answer<'_>, index: usize, input: Value) -> Value {
        let call = &answer.turn.calls[index];
        json!({"type": "tool_use", "id": answer.call_id("toolu", index), "name": call.name, "input": input})
    }
}

impl ChatFormat for AnthropicMessages {
    fn paths(&self, _model: &str) -> Result<Vec<String>, String> {
        Ok(vec!["/v1/messages".into()])
    }

    fn message(&self, answer: &Answer<'_>) -> Value {
        let text = (!answer.turn.text.is_empty())
            .then(|| json!({"type": "text", "text": answer.turn.text}));
        let calls = (0..answer.turn.calls.len())
            .map(|i| Self::tool_use(answer, i, answer.turn.calls[i].arguments_value()));
        json!({
            "id": Self::id(answer),
            "type": "message",
            "role": "assistant",
            "model": answer.model,
            "content": text.into_iter().chain(calls).collect::<Vec<_>>(),
            "stop_reason": Self::stop_reason(answer),
            "stop_sequence": null,
            "usage": Self::usage(answer, answer.turn.output_tokens),
        })
    }

    /// `message_start`, a text block of `text_delta`s, a `tool_use`
    /// block per call (its arguments as `input_json_delta` pieces),
    /// `message_delta` with the stop reason and the output count, then
    /// `message_stop`.
    fn events(&self, answer: &Answer<'_>) -> Vec<Event> {
        let mut events = vec![Event::typed(json!({
            "type": "message_start",
            "message": {
                "id": Self::id(answer),
                "type": "message",
                "role": "assistant",
                "model": answer.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": Self::usage(answer, 1),
            },
        }))];
        let mut index = 0;
        let mut block = |start: Value, deltas: Vec<Value>, events: &mut Vec<Event>| {
            events.push(Event::typed(
                json!({"type": "content_block_start", "index": index, "content_block": start}),
            ));
            for delta in deltas {
                events.push(Event::typed(
                    json!({"type": "content_block_delta", "index": index, "delta": delta}),
                ));
            }
            events.push(Event::typed(
                json!({"type": "content_block_stop", "index": index}),
            ));
            index += 1;
        };
        if !answer.turn.text.is_empty() {
            let deltas = answer
                .words()
                .map(|word| json!({"type": "text_delta", "text": word}))
                .collect();
            block(json!({"type": "text", "text": ""}), deltas, &mut events);
        }
        for (i, call) in answer.turn.calls.iter().enumerate() {
            let pieces = std::iter::once("")
                .chain(halves(&call.arguments))
                .map(|piece| json!({"type": "input_json_delta", "partial_json": piece}))
                .collect();
            block(Self::tool_use(answer, i, json!({})), pieces, &mut events);
        }
        events.push(Event::typed(json!({
            "type": "message_delta",
            "delta": {"stop_reason": Self::stop_reason(answer), "stop_sequence": null},
            "usage": {"output_tokens": answer.turn.output_tokens},
        })));
        events.push(Event::typed(json!({"type": "message_stop"})));
        events
    }
}

/// Gemini's `generateContent` and `streamGenerateContent?alt=sse`.
struct GeminiGenerate;

impl GeminiGenerate {
    const PLAIN: &'static str = ":generateContent";
    const STREAMED: &'static str = ":streamGenerateContent";

    /// A `GenerateContentResponse` with `parts`, finished or not.
    fn response(answer: &Answer<'_>, parts: Vec<Value>, finished: bool) -> Value {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        let usage = if finished {
            candidate["finishReason"] = json!("STOP");
            json!({
                "promptTokenCount": answer.turn.input_tokens,
                "candidatesTokenCount": answer.turn.output_tokens,
                "totalTokenCount": answer.total_tokens(),
            })
        } else {
            json!({
                "promptTokenCount": answer.turn.input_tokens,
                "totalTokenCount": answer.turn.input_tokens,
            })
        };
        json!({
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": answer.model,
            "responseId": format!("script-{}", answer.number),
        })
    }

    fn calls(answer: &Answer<'_>) -> Vec<Value> {
        answer
            .turn
            .calls
            .iter()
            .map(
                |call| json!({"functionCall": {"name": call.name, "args": call.arguments_value()}}),
            )
            .collect()
    }
}

impl ChatFormat for GeminiGenerate {
    fn paths(&self, model: &str) -> Result<Vec<String>, String> {
        let valid = !model.is_empty()
            && model
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !valid {
            return Err(format!("{model:?} is not a Gemini model id"));
        }
        Ok([Self::PLAIN, Self::STREAMED]
            .iter()
            .map(|method| format!("/v1beta/models/{model}{method}"))
            .collect())
    }

    fn answered_at(&self, model: &str) -> Result<String, String> {
        self.paths(model)?;
        Ok(format!("/v1beta/models/{model}:*"))
    }

    fn history(&self) -> (&'static str, &'static str) {
        ("contents", "model")
    }

    fn is_streamed(&self, request: &RecordedRequest, _body: &Value) -> bool {
        request.path.ends_with(Self::STREAMED)
    }

    fn message(&self, answer: &Answer<'_>) -> Value {
        let text = (!answer.turn.text.is_empty()).then(|| json!({"text": answer.turn.text}));
        let parts = text.into_iter().chain(Self::calls(answer)).collect();
        Self::response(answer, parts, true)
    }

    /// Whole responses: one per word, then the calls (Gemini streams each
    /// call whole); the last has the finish reason and the final counts.
    fn events(&self, answer: &Answer<'_>) -> Vec<Event> {
        let mut parts: Vec<Vec<Value>> = answer
            .words()
            .map(|word| vec![json!({"text": word})])
            .collect();
        if answer.has_calls() {
            parts.push(Self::calls(answer));
        }
        let last = parts.len() - 1;
        parts
            .into_iter()
            .enumerate()
            .map(|(i, parts)| Event::data(Self::response(answer, parts, i == last)))
            .collect()
    }
}

/// Cohere's v2 chat.
struct CohereChat;

impl CohereChat {
    fn id(answer: &Answer<'_>) -> String {
        format!("script-{}", answer.number)
    }

    fn finish_reason(answer: &Answer<'_>) -> &'static str {
        if answer.has_calls() {
            "TOOL_CALL"
        } else {
            "COMPLETE"
        }
    }

    fn usage(answer: &Answer<'_>) -> Value {
        let counts = json!({
            "input_tokens": answer.turn.input_tokens,
            "output_tokens": answer.turn.output_tokens,
        });
        json!({"billed_units": counts, "tokens": counts, "cached_tokens": 0})
    }

    fn tool_call(answer: &Answer<'_>, index: usize, arguments: &str) -> Value {
        json!({
            "id": answer.call_id("call", index),
            "type": "function",
            "function": {"name": answer.turn.calls[index].name, "arguments": arguments},
        })
    }
}

impl ChatFormat for CohereChat {
    fn paths(&self, _model: &str) -> Result<Vec<String>, String> {
        Ok(vec!["/v2/chat".into()])
    }

    /// A turn with calls has them as `tool_calls`, its text as the
    /// `tool_plan` (Cohere's place for it); a turn without, its text as
    /// `content`.
    fn message(&self, answer: &Answer<'_>) -> Value {
        let message = if answer.has_calls() {
            let calls: Vec<Value> = (0..answer.turn.calls.len())
                .map(|i| Self::tool_call(answer, i, &answer.turn.calls[i].arguments))
                .collect();
            let mut message = json!({"role": "assistant", "tool_calls": calls});
            if !answer.turn.text.is_empty() {
                message["tool_plan"] = json!(answer.turn.text);
            }
            message
        } else {
            json!({"role": "assistant", "content": [{"type": "text", "text": answer.turn.text}]})
        };
        json!({
            "id": Self::id(answer),
            "finish_reason": Self::finish_reason(answer),
            "message": message,
            "usage": Self::usage(answer),
        })
    }

    /// `message-start`; the text as `tool-plan-delta`s before calls, or
    /// as a `content-start` … `content-end` block; each call as
    /// `tool-call-start` (id, name), `tool-call-delta`s (its arguments in
    /// pieces) and `tool-call-end`; then `message-end` with the finish
    /// reason and the usage.
    fn events(&self, answer: &Answer<'_>) -> Vec<Event> {
        let message = |message: Value| json!({"message": message});
        let mut events = vec![Event::typed(json!({
            "id": Self::id(answer),
            "type": "message-start",
            "delta": message(json!({"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []})),
        }))];
        if answer.has_calls() {
            for word in answer.words() {
                events.push(Event::typed(json!({
                    "type": "tool-plan-delta",
                    "delta": message(json!({"tool_plan": word})),
                })));
            }
            for (i, call) in answer.turn.calls.iter().enumerate() {
                events.push(Event::typed(json!({
                    "type": "tool-call-start",
                    "index": i,
                    "delta": message(json!({"tool_calls": Self::tool_call(answer, i, "")})),
                })));
                for piece in halves(&call.arguments) {
                    events.push(Event::typed(json!({
                        "type": "tool-call-delta",
                        "index": i,
                        "delta": message(json!({"tool_calls": {"function": {"arguments": piece}}})),
                    })));
                }
                events.push(Event::typed(json!({"type": "tool-call-end", "index": i})));
            }
        } else {
            events.push(Event::typed(json!({
                "type": "content-start",
                "index": 0,
                "delta": message(json!({"content": {"type": "text", "text": ""}})),
            })));
            for word in answer.words() {
                events.push(Event::typed(json!({
                    "type": "content-delta",
                    "index": 0,
                    "delta": message(json!({"content": {"text": word}})),
                })));
            }
            events.push(Event::typed(json!({"type": "content-end", "index": 0})));
        }
        events.push(Event::typed(json!({
            "type": "message-end",
            "delta": {"finish_reason": Self::finish_reason(answer), "usage": Self::usage(answer)},
        })));
        events
    }
}

/// Ollama's native `/api/chat`.
struct OllamaChat;

impl OllamaChat {
    /// A reply object: a piece of the message, or (`done`) the last one
    /// with the done reason and the counts.
    fn line(answer: &Answer<'_>, message: Value, done: bool) -> Value {
        let mut line = json!({
            "model": answer.model,
            "created_at": "2025-01-01T00:00:00Z",
            "message": message,
            "done": done,
        });
        if done {
            line["done_reason"] = json!("stop");
            line["total_duration"] = json!(1_000_000);
            line["prompt_eval_count"] = json!(answer.turn.input_tokens);
            line["eval_count"] = json!(answer.turn.output_tokens);
        }
        line
    }

    /// The calls as recent Ollama versions send them (with an id, the
    /// arguments an object).
    fn tool_calls(answer: &Answer<'_>) -> Vec<Value> {
        answer
            .turn
            .calls
            .iter()
            .enumerate()
            .map(|(i, call)| {
                json!({
                    "id": answer.call_id("call", i),
                    "function": {"index": i, "name": call.name, "arguments": call.arguments_value()},
                })
            })
            .collect()
    }
}

impl ChatFormat for OllamaChat {
    fn paths(&self, _model: &str) -> Result<Vec<String>, String> {
        Ok(vec!["/api/chat".into()])
    }

    fn message(&self, answer: &Answer<'_>) -> Value {
        let mut message = json!({"role": "assistant", "content": answer.turn.text});
        if answer.has_calls() {
            message["tool_calls"] = Value::Array(Self::tool_calls(answer));
        }
        Self::line(answer, message, true)
    }

    /// A line per word, the calls whole in one line, then the last line.
    fn events(&self, answer: &Answer<'_>) -> Vec<Event> {
        let piece = |message: Value| Event::data(Self::line(answer, message, false));
        let mut events: Vec<Event> = answer
            .words()
            .map(|word| piece(json!({"role": "assistant", "content": word})))
            .collect();
        if answer.has_calls() {
            events.push(piece(json!({
                "role": "assistant",
                "content": "",
                "tool_calls": Self::tool_calls(answer),
            })));
        }
        events.push(Event::data(Self::line(
            answer,
            json!({"role": "assistant", "content": ""}),
            true,
        )));
        events
    }
}

/// One turn of a [`script_chat`] script.
struct ScriptedTurn {
    text: String,
    calls: Vec<ScriptedCall>,
    input_tokens: u64,
    output_tokens: u64,
}

/// One tool call of a turn.
struct ScriptedCall {
    name: String,
    /// The arguments' JSON text (or the raw text the script gave).
    arguments: String,
}

impl ScriptedCall {
    /// The arguments as a value, for formats that send an object: the
    /// JSON they hold, or the raw text as a string.
    fn arguments_value(&self) -> Value {
        serde_json::from_str(&self.arguments).unwrap_or_else(|_| json!(self.arguments))
    }
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
                    Ok(ScriptedCall {
                        name: name.to_string(),
                        arguments,
                    })
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::CapabilityId;

    #[test]
    fn every_built_in_llm_provider_can_be_scripted() {
        for provider in crate::providers::builtin() {
            let id = provider.info().id;
            let chats = provider.capabilities().contains(&CapabilityId::LlmChat);
            assert_eq!(chat_format(id).is_some(), chats, "{id}");
        }
    }

    #[test]
    fn arguments_are_split_at_a_character_boundary() {
        assert_eq!(halves(r#"{"a":"é"}"#).concat(), r#"{"a":"é"}"#);
        assert_eq!(halves("é"), ["", "é"]);
        assert_eq!(halves(""), ["", ""]);
    }
}
