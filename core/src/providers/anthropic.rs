//! Anthropic Messages API: `llm.chat` on Claude models.
//!
//! Its own wire format: `POST /v1/messages` with the key in `x-api-key` and
//! the `anthropic-version: 2023-06-01` header, the system prompt apart from
//! the conversation, `max_tokens` required (4096 when the request gives
//! none), temperature at most 1 (a request above is skipped as unsupported
//! rather than silently clamped). The answer is a list of content blocks
//! (`text`, `thinking`, …) with a `stop_reason`. `stop_reason: "refusal"`
//! (Claude's safety classifiers stepped in, with the category and
//! explanation in `stop_details`) is a content refusal, never an answer:
//! whatever text came before it is dropped, as Anthropic asks that the
//! refused turn not be reused.
//!
//! Tools are declared as `{name, description, input_schema}` and chosen
//! with `tool_choice` `{type: auto | any | tool | none}`; the model's calls
//! are `tool_use` content blocks (streamed as a `content_block_start` and
//! `input_json_delta` pieces), and each result goes back as a
//! `tool_result` block of the next user turn.
//!
//! A JSON Schema answer is asked with `output_config.format` (structured
//! outputs, generally available on Claude Haiku 4.5, Sonnet 4.5 and later;
//! an older model refuses it with a 400 and the next provider is asked).
//! Its schemas take a subset of JSON Schema, so the schema sent is the
//! caller's with what Anthropic refuses taken out, as Anthropic's own SDKs
//! do: numeric, length and size bounds go into the description, every
//! object gets `additionalProperties: false`, and string formats outside
//! its list are dropped; the answer is checked against the whole schema.
//! Anthropic has no plain JSON mode: `json_object` is asked for by a
//! system instruction (and the answer checked all the same).
//!
//! Errors are `{"type":"error","error":{"type":…,"message":…}}`, classified
//! by their type: `overloaded_error` (HTTP 529) and `api_error` are
//! transient, `rate_limit_error` is rate limited (with `retry-after`),
//! `billing_error` and a 400 saying "credit balance is too low" are quota,
//! `authentication_error`/`permission_error` are auth, `request_too_large`
//! and "prompt is too long" are context-length errors. Anthropic documents
//! no idempotency header, so a sent request is never repeated.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::clip;
use crate::capability::llm::{
    is_context_overflow, pick_model, ChatDelta, ChatMeta, ChatQuery, ChatReply, FinishReason,
    ResponseFormat, Role, TokenUsage, ToolCall, ToolCallDelta, ToolChoice,
};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::stream::streaming;
use crate::provider::{
    Auth, CallContext, Fixture, Frame, Framing, HttpRequest, HttpResponse, KeyPlacement, Provider,
    ProviderInfo, Serves, Step, StreamsChat,
};

/// Anthropic (<https://www.anthropic.com/api>): Claude models through the
/// Messages API.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anthropic;

static INFO: ProviderInfo = ProviderInfo {
    id: "anthropic",
    name: "Anthropic",
    auth: Auth::Key {
        env: "ANTHROPIC_API_KEY",
        placement: KeyPlacement::Header {
            name: "x-api-key",
            prefix: "",
        },
        optional: false,
    },
    base_url: "https://api.anthropic.com",
    docs_url: "https://docs.anthropic.com/en/api/messages",
    terms: "Paid API without a free tier; rate limits depend on the organization's usage \
            tier.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

/// The API version this adapter speaks.
const API_VERSION: &str = "2023-06-01";

/// Model used when the request names none.
const DEFAULT_MODEL: &str = "claude-haiku-4-5";

/// `max_tokens` is required; this is sent when the request leaves it open.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Anthropic's temperature range ends at 1.
const MAX_TEMPERATURE: f64 = 1.0;

impl Provider for Anthropic {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }

    fn streams_chat(&self) -> Option<&dyn StreamsChat> {
        Some(self)
    }
}

crate::serves!(Anthropic: LlmChat);

impl Serves<marker::LlmChat> for Anthropic {
    fn build_request(
        &self,
        q: &ChatQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let model = model_for(q)?;
        let q = match &q.response_format {
            Some(format @ ResponseFormat::JsonObject) => {
                Cow::Owned(q.with_instruction(format.instruction()))
            }
            _ => Cow::Borrowed(q),
        };
        let q = q.as_ref();
        let mut body = Map::new();
        body.insert("model".into(), json!(model));
        body.insert(
            "max_tokens".into(),
            json!(q.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
        );
        if let Some(system) = q.system_prompt() {
            body.insert("system".into(), json!(system));
        }
        body.insert("messages".into(), Value::Array(wire_messages(q)));
        if !q.tools.is_empty() {
            let tools: Vec<Value> = q
                .tools
                .iter()
                .map(|t| {
                    let mut tool = json!({"name": t.name, "input_schema": t.parameters.to_value()});
                    if let Some(description) = &t.description {
                        tool["description"] = json!(description);
                    }
                    tool
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
        }
        if let Some(choice) = &q.tool_choice {
            let choice = match choice {
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Required => json!({"type": "any"}),
                ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
            };
            body.insert("tool_choice".into(), choice);
        }
        if let Some(t) = q.temperature {
            if t.get() > MAX_TEMPERATURE {
                return Err(ProviderFailure::unsupported(format!(
                    "Anthropic accepts temperatures up to {MAX_TEMPERATURE}, not {}",
                    t.get()
                ))
                .not_sent());
            }
            body.insert("temperature".into(), json!(t.get()));
        }
        if let Some(schema) = q.response_format.as_ref().and_then(ResponseFormat::schema) {
            body.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": output_schema(schema.to_value())}}),
            );
        }
        Ok(
            HttpRequest::post_json(ctx.base_url, "/v1/messages", Value::Object(body))
                .header("anthropic-version", API_VERSION),
        )
    }

    fn read_response(
        &self,
        q: &ChatQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<ChatReply>, ProviderFailure> {
        if !response.is_success() {
            return Err(classify(&response));
        }
        reply(q, &response).map(Step::Done)
    }
}

/// Streams as named server-sent events: `message_start` (id, model, the
/// prompt's usage), `content_block_delta`s (`text_delta`,
/// `thinking_delta`), `message_delta` (stop reason, output usage),
/// `message_stop`; `ping`s between them, and an `error` event when the
/// stream fails (`overloaded_error`).
impl StreamsChat for Anthropic {
    fn stream_request(
        &self,
        q: &ChatQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        <Self as Serves<marker::LlmChat>>::build_request(self, q, ctx).map(streaming)
    }

    fn framing(&self) -> Framing {
        Framing::Sse
    }

    fn stream_error(&self, response: &HttpResponse) -> ProviderFailure {
        classify(response)
    }

    fn decode_frame(
        &self,
        _q: &ChatQuery,
        frame: &Frame,
        out: &mut Vec<ChatDelta>,
    ) -> Result<(), ProviderFailure> {
        let event: StreamEvent = frame.json()?;
        match event.kind.as_str() {
            "message_start" => {
                let message = event.message.unwrap_or_default();
                out.push(ChatDelta::Meta(ChatMeta {
                    id: message.id,
                    model: message.model,
                    finish_reason: None,
                    usage: message.usage.map(stream_usage),
                }));
            }
            "content_block_start" | "content_block_delta" => {
                let part = event.delta.or(event.content_block).unwrap_or_default();
                match part.kind.as_deref() {
                    // The call's id and name; its `input` is always `{}`
                    // here, the arguments follow as `input_json_delta`s.
                    Some("tool_use") => out.push(ChatDelta::ToolCall(ToolCallDelta {
                        index: Some(event.index.unwrap_or_default()),
                        id: part.id,
                        name: part.name,
                        arguments: String::new(),
                    })),
                    Some("input_json_delta") => out.push(ChatDelta::ToolCall(ToolCallDelta {
                        index: Some(event.index.unwrap_or_default()),
                        arguments: part.partial_json.unwrap_or_default(),
                        ..ToolCallDelta::default()
                    })),
                    _ => {}
                }
                if let Some(thinking) = part.thinking.filter(|t| !t.is_empty()) {
                    out.push(ChatDelta::Reasoning(thinking));
                }
                if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                    out.push(ChatDelta::Text(text));
                }
            }
            "message_delta" => {
                let delta = event.delta.unwrap_or_default();
                if delta.stop_reason.as_deref() == Some("refusal") {
                    return Err(refusal(delta.stop_details.as_ref()).status(200));
                }
                out.push(ChatDelta::Meta(ChatMeta {
                    finish_reason: delta.stop_reason.as_deref().map(finish_reason),
                    usage: event.usage.map(stream_usage),
                    ..ChatMeta::default()
                }));
            }
            "message_stop" => out.push(ChatDelta::End),
            "error" => {
                let error = event.error.ok_or_else(|| {
                    ProviderFailure::malformed("Anthropic sent an error event without `error`")
                        .status(200)
                })?;
                let class = error_class(&error.kind, &error.message, None);
                return Err(ProviderFailure::new(
                    class,
                    format!("Anthropic: {}", clip(&error.message)),
                )
                .status(200));
            }
            // `ping`, `content_block_stop`, and events added later.
            _ => {}
        }
        Ok(())
    }

    fn stream_fixtures(&self) -> &'static [Fixture] {
        STREAM_FIXTURES
    }
}

/// Usage as a stream reports it: running counts, the total left to the
/// accumulator (the prompt's and the answer's come in different events).
fn stream_usage(usage: Usage) -> TokenUsage {
    TokenUsage {
        total_tokens: None,
        ..token_usage(&usage)
    }
}

/// Keywords structured outputs refuse (a 400), moved into the description.
const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
];

/// String formats structured outputs take.
const SUPPORTED_FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "uri",
    "ipv4",
    "ipv6",
    "uuid",
];

/// A schema as structured outputs take it: the bounds they refuse moved
/// into the description, `minItems` above 1 likewise, every object closed
/// (`additionalProperties: false`), formats outside their list dropped.
/// Subschemas are rewritten wherever a schema may hold them.
fn output_schema(schema: Value) -> Value {
    let Value::Object(mut fields) = schema else {
        return schema;
    };
    let mut moved = Map::new();
    for key in UNSUPPORTED_KEYWORDS {
        if let Some(value) = fields.remove(*key) {
            moved.insert((*key).to_string(), value);
        }
    }
    if fields
        .get("minItems")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        if let Some(value) = fields.remove("minItems") {
            moved.insert("minItems".into(), value);
        }
    }
    if let Some(Value::String(format)) = fields.get("format") {
        if !SUPPORTED_FORMATS.contains(&format.as_str()) {
            if let Some(value) = fields.remove("format") {
                moved.insert("format".into(), value);
            }
        }
    }
    if !moved.is_empty() {
        let rule = Value::Object(moved).to_string();
        let description = match fields.get("description").and_then(Value::as_str) {
            Some(text) => format!("{text} ({rule})"),
            None => rule,
        };
        fields.insert("description".into(), description.into());
    }
    let is_object =
        fields.get("type") == Some(&json!("object")) || fields.contains_key("properties");
    if is_object {
        fields.insert("additionalProperties".into(), false.into());
    }
    for (key, value) in fields.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" | "definitions" => {
                if let Value::Object(schemas) = value {
                    for schema in schemas.values_mut() {
                        *schema = output_schema(std::mem::take(schema));
                    }
                }
            }
            "items" | "not" => *value = output_schema(std::mem::take(value)),
            "anyOf" | "allOf" | "oneOf" | "prefixItems" => {
                if let Value::Array(schemas) = value {
                    for schema in schemas.iter_mut() {
                        *schema = output_schema(std::mem::take(schema));
                    }
                }
            }
            _ => {}
        }
    }
    Value::Object(fields)
}

/// The conversation after the system prompt: text turns as they are; an
/// assistant's calls as `tool_use` blocks after its text; tool results as
/// `tool_result` blocks of one user turn, with a user message that
/// follows them joined to it (Anthropic wants the results in the user
/// turn right after the calls).
fn wire_messages(q: &ChatQuery) -> Vec<Value> {
    let mut messages: Vec<Value> = Vec::new();
    for m in q.turns() {
        let blocks = match m.role {
            Role::Tool => vec![json!({
                "type": "tool_result",
                "tool_use_id": m.tool_call_id,
                "content": m.content,
            })],
            Role::Assistant if !m.tool_calls.is_empty() => {
                let text = (!m.content.trim().is_empty())
                    .then(|| json!({"type": "text", "text": m.content}));
                text.into_iter()
                    .chain(m.tool_calls.iter().map(|c| {
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments_object()})
                    }))
                    .collect()
            }
            _ => {
                messages.push(json!({"role": m.role.as_str(), "content": m.content}));
                join_after_results(&mut messages);
                continue;
            }
        };
        let role = if m.role == Role::Tool {
            "user"
        } else {
            "assistant"
        };
        messages.push(json!({"role": role, "content": blocks}));
        join_after_results(&mut messages);
    }
    messages
}

/// Joins the last message to the one before when both are user turns
/// and the earlier holds tool results.
fn join_after_results(messages: &mut Vec<Value>) {
    let n = messages.len();
    if n < 2 || messages[n - 1]["role"] != "user" || messages[n - 2]["role"] != "user" {
        return;
    }
    let holds_results = messages[n - 2]["content"]
        .as_array()
        .is_some_and(|b| b.iter().any(|b| b["type"] == "tool_result"));
    if !holds_results {
        return;
    }
    let Some(last) = messages.pop() else { return };
    let added = match &last["content"] {
        Value::String(text) => vec![json!({"type": "text", "text": text})],
        Value::Array(blocks) => blocks.clone(),
        _ => Vec::new(),
    };
    if let Some(blocks) = messages[n - 2]["content"].as_array_mut() {
        blocks.extend(added);
    }
}

/// The model sent for `q`.
fn model_for(q: &ChatQuery) -> Result<&str, ProviderFailure> {
    pick_model(q.model.as_deref(), DEFAULT_MODEL, &[], INFO.id)
}

fn reply(q: &ChatQuery, response: &HttpResponse) -> Result<ChatReply, ProviderFailure> {
    let message: Message = response.json()?;
    if let Some(kind) = message.kind.filter(|k| k != "message") {
        return Err(
            ProviderFailure::malformed(format!("Anthropic answered a {kind:?}"))
                .status(response.status),
        );
    }
    if message.stop_reason.as_deref() == Some("refusal") {
        return Err(refusal(message.stop_details.as_ref())
            .status(response.status)
            .retry_after(response.retry_after()));
    }
    let mut text = None::<String>;
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for (i, block) in message.content.into_iter().enumerate() {
        match block {
            Block::Text { text: Some(part) } => text.get_or_insert_default().push_str(&part),
            Block::Text { text: None } => {
                return Err(ProviderFailure::malformed(format!(
                    "Anthropic answered a text block without its text (`content[{i}].text`)"
                ))
                .status(response.status))
            }
            Block::Thinking {
                thinking: Some(thinking),
            } => reasoning.push_str(&thinking),
            Block::ToolUse { id, name, input } => {
                let (Some(id), Some(name)) = (id, name) else {
                    return Err(ProviderFailure::malformed(format!(
                        "Anthropic answered a tool_use block without its id or name (`content[{i}]`)"
                    ))
                    .status(response.status));
                };
                tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: input.map_or_else(|| "{}".into(), |v| v.to_string()),
                });
            }
            _ => {}
        }
    }
    let finish_reason = message.stop_reason.as_deref().map(finish_reason);
    // No text block at all, and not cut short: nothing to answer with.
    let text = match text {
        Some(text) => text,
        None if finish_reason == Some(FinishReason::Length) || !tool_calls.is_empty() => {
            String::new()
        }
        None => return Err(ProviderFailure::malformed(
            "Anthropic answered without text or a call (`content[].text`, `content[].tool_use`)",
        )
        .status(response.status)),
    };
    let usage = token_usage(&message.usage.unwrap_or_default());
    Ok(ChatReply {
        id: message.id,
        model: message
            .model
            .or_else(|| model_for(q).ok().map(str::to_string))
            .unwrap_or_default(),
        text,
        tool_calls,
        reasoning: (!reasoning.is_empty()).then_some(reasoning),
        finish_reason,
        usage,
        parsed: None,
    })
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "model_context_window_exceeded" => FinishReason::ContextLength,
        _ => FinishReason::Other,
    }
}

fn token_usage(u: &Usage) -> TokenUsage {
    // `input_tokens` leaves out the prompt read from and written to the
    // cache: the prompt's size is known only with both of those counts.
    let input = u
        .input_tokens
        .zip(u.cache_read_input_tokens)
        .zip(u.cache_creation_input_tokens)
        .and_then(|((uncached, read), written)| uncached.checked_add(read)?.checked_add(written));
    let mut usage = TokenUsage::new(input, u.output_tokens);
    usage.cached_input_tokens = u.cache_read_input_tokens;
    usage
}

/// A `stop_reason: "refusal"` as a failure, with Anthropic's category and
/// explanation when `stop_details` gives them.
fn refusal(details: Option<&StopDetails>) -> ProviderFailure {
    let category = details.and_then(|d| d.category.as_deref());
    let explanation = details.and_then(|d| d.explanation.as_deref());
    let reason = match (category, explanation) {
        (Some(c), Some(e)) => format!(" ({c}): {}", clip(e)),
        (Some(c), None) => format!(" ({c})"),
        (None, Some(e)) => format!(": {}", clip(e)),
        (None, None) => String::new(),
    };
    ProviderFailure::new(
        FailureClass::ContentFiltered,
        format!("Anthropic: Claude refused the request{reason}"),
    )
}

/// Classifies an error response by its `error.type`, then its status.
fn classify(response: &HttpResponse) -> ProviderFailure {
    let error = response.json::<ErrorBody>().ok().map(|b| b.error);
    let (kind, message) = match &error {
        Some(e) => (e.kind.as_str(), e.message.clone()),
        None => ("", response.body_excerpt()),
    };
    let by_status = match response.status {
        // Anthropic's `request_too_large`: the prompt does not fit.
        413 => Some(FailureClass::ContextLengthExceeded),
        _ => response.status_class(),
    };
    let class = error_class(kind, &message, by_status);
    response.failure(class, format!("Anthropic: {}", clip(&message)))
}

/// The class of an error of type `kind` saying `message`, given what its
/// HTTP status says (`None` for a 2xx, an error event in a stream).
fn error_class(kind: &str, message: &str, by_status: Option<FailureClass>) -> FailureClass {
    match (kind, by_status) {
        ("rate_limit_error", _) | (_, Some(FailureClass::RateLimited)) => FailureClass::RateLimited,
        ("billing_error", _) | (_, Some(FailureClass::QuotaExhausted)) => {
            FailureClass::QuotaExhausted
        }
        ("request_too_large", _) | (_, Some(FailureClass::ContextLengthExceeded)) => {
            FailureClass::ContextLengthExceeded
        }
        ("authentication_error" | "permission_error", _) | (_, Some(FailureClass::Auth)) => {
            FailureClass::Auth
        }
        _ if message.to_ascii_lowercase().contains("credit balance") => {
            FailureClass::QuotaExhausted
        }
        _ if is_context_overflow(message) => FailureClass::ContextLengthExceeded,
        ("overloaded_error" | "api_error" | "timeout_error", _)
        | (_, Some(FailureClass::Transient)) => FailureClass::Transient,
        // Including 404/410 (`not_found_error` is an unknown model): the
        // request's fault, not a "does not exist" answer to cache.
        _ => FailureClass::InvalidRequest,
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

/// One event of a stream, by its `type`.
#[derive(Deserialize)]
struct StreamEvent {
    #[serde(rename = "type")]
    kind: String,
    /// `content_block_start`, `content_block_delta`: the block's position.
    index: Option<usize>,
    /// `message_start`.
    message: Option<StartedMessage>,
    /// `content_block_start`.
    content_block: Option<EventDelta>,
    /// `content_block_delta`, `message_delta`.
    delta: Option<EventDelta>,
    /// `message_delta`: running counts.
    usage: Option<Usage>,
    /// `error`.
    error: Option<ErrorDetail>,
}

#[derive(Deserialize, Default)]
struct StartedMessage {
    id: Option<String>,
    model: Option<String>,
    usage: Option<Usage>,
}

/// A content block's start or delta (`text`, `thinking`), or the message's
/// delta (`stop_reason`, `stop_details`).
#[derive(Deserialize, Default)]
struct EventDelta {
    /// The block's or the delta's type (`text`, `tool_use`,
    /// `input_json_delta`, …).
    #[serde(rename = "type")]
    kind: Option<String>,
    /// `tool_use`: the call's id and tool.
    id: Option<String>,
    name: Option<String>,
    /// `input_json_delta`: a piece of the arguments' JSON text.
    partial_json: Option<String>,
    text: Option<String>,
    thinking: Option<String>,
    stop_reason: Option<String>,
    stop_details: Option<StopDetails>,
}

#[derive(Deserialize)]
struct Message {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    model: Option<String>,
    content: Vec<Block>,
    stop_reason: Option<String>,
    stop_details: Option<StopDetails>,
    usage: Option<Usage>,
}

/// Why Claude stopped, for a refusal: `{"type":"refusal","category":…,
/// "explanation":…}`.
#[derive(Deserialize)]
struct StopDetails {
    category: Option<String>,
    explanation: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: Option<String>,
    },
    Thinking {
        thinking: Option<String>,
    },
    ToolUse {
        id: Option<String>,
        name: Option<String>,
        /// The arguments, an object.
        input: Option<Value>,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
struct Usage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `claude-haiku-4-5` answering "What is the capital of France?", part of
    // the system prompt read from the prompt cache.
    Fixture {
        method: "POST",
        path: "/v1/messages",
        status: 200,
        body: include_str!("fixtures/anthropic/message.json"),
    },
];

static STREAM_FIXTURES: &[Fixture] = fixtures![
    // The streaming guide's basic example: "Hello!" in named events, with
    // a `ping` between them.
    Fixture {
        method: "POST",
        path: "/v1/messages",
        status: 200,
        body: include_str!("fixtures/anthropic/message_stream.sse"),
    },
];

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::provider::stream::testing::{
        assert_cuts_fail, decode_in_pieces, decode_whole, stream_fixture,
    };
    use crate::provider::Body;
    use crate::providers::openai_compat::testing::{chat_query, chat_request, class_of, reply_of};
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn message() -> &'static str {
        fixture(&Anthropic, "/v1/messages")
    }

    fn error(
        status: u16,
        headers: &[(&'static str, &str)],
        kind: &str,
        message: &str,
    ) -> ProviderFailure {
        let body = json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"});
        class_of(&Anthropic, status, headers, &body.to_string())
    }

    #[test]
    fn request_is_exact_with_the_system_prompt_apart() {
        let req = Anthropic
            .request(&chat_request(), &ctx(&Anthropic))
            .unwrap();
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.url, "https://api.anthropic.com/v1/messages");
        assert!(req.query.is_empty());
        assert_eq!(
            req.headers,
            [(
                std::borrow::Cow::Borrowed("anthropic-version"),
                "2023-06-01".to_string()
            )]
        );
        assert_eq!(
            req.json_body().unwrap(),
            json!({
                "model": "claude-haiku-4-5",
                "max_tokens": 64,
                "system": "Answer in one sentence.",
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
                "temperature": 0.2,
            })
        );
        assert_eq!(
            INFO.auth,
            Auth::Key {
                env: "ANTHROPIC_API_KEY",
                placement: KeyPlacement::Header {
                    name: "x-api-key",
                    prefix: ""
                },
                optional: false,
            }
        );
        assert!(Anthropic.idempotency_header().is_none());
    }

    #[test]
    fn tool_calls_and_their_results_are_content_blocks_with_results_in_one_user_turn() {
        use crate::providers::openai_compat::testing::tool_round_trip_request;
        let body = Anthropic
            .request(&tool_round_trip_request(), &ctx(&Anthropic))
            .unwrap()
            .json_body()
            .unwrap();
        assert_eq!(body["system"], "Be brief.");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Weather in Paris and Oslo?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking both."},
                    {"type": "tool_use", "id": "call_p", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_o", "name": "get_weather", "input": {"city": "Oslo"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_o", "content": "-2 C"},
                    {"type": "tool_result", "tool_use_id": "call_p", "content": "{\"temperature_c\": 14}"},
                    {"type": "text", "text": "And which is warmer?"},
                ]},
            ])
        );
        assert_eq!(
            body["tools"],
            json!([{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}])
        );
        assert!(body.get("tool_choice").is_none());
    }

    #[test]
    fn max_tokens_defaults_and_hot_temperatures_are_skipped() {
        let r = request(
            "llm.chat",
            json!({"messages": [{"role": "user", "content": "Hi"}]}),
        );
        let body = Anthropic
            .request(&r, &ctx(&Anthropic))
            .unwrap()
            .json_body()
            .unwrap();
        assert_eq!(body["max_tokens"], 4096);
        assert!(body.get("system").is_none() && body.get("temperature").is_none());

        let r = request(
            "llm.chat",
            json!({"messages": [{"role": "user", "content": "Hi"}], "temperature": 1.5}),
        );
        let f = Anthropic.request(&r, &ctx(&Anthropic)).unwrap_err();
        assert_eq!(f.class, FailureClass::Unsupported);
        assert!(!f.request_sent);

        let r = request(
            "llm.chat",
            json!({"messages": [{"role": "user", "content": "Hi"}], "model": "llama-3.3-70b"}),
        );
        assert_eq!(
            Anthropic.request(&r, &ctx(&Anthropic)).unwrap_err().class,
            FailureClass::Unsupported
        );
        let weather = request("weather.current", json!({"lat": 1, "lon": 2}));
        assert_eq!(
            Anthropic
                .request(&weather, &ctx(&Anthropic))
                .unwrap_err()
                .class,
            FailureClass::Unsupported
        );
    }

    #[test]
    fn fixture_normalises_with_cached_tokens_counted_as_input() {
        let reply = reply_of(&Anthropic, message());
        assert_eq!(reply.id.as_deref(), Some("msg_01XFDUDYJgAACzvnptvVoYEL"));
        assert_eq!(reply.model, "claude-haiku-4-5-20251001");
        assert_eq!(reply.text, "The capital of France is Paris.");
        assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
        assert_eq!(reply.usage.input_tokens, Some(32));
        assert_eq!(reply.usage.cached_input_tokens, Some(20));
        assert_eq!(
            (reply.usage.output_tokens, reply.usage.total_tokens),
            (Some(10), Some(42))
        );
        assert_eq!(reply.reasoning, None);
    }

    #[test]
    fn thinking_blocks_and_stop_reasons_are_normalised() {
        let body = r#"{"id":"msg_2","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"thinking","thinking":"The user asks about France.","signature":"EqQB"},{"type":"text","text":"Paris"},{"type":"text","text":"."}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":64}}"#;
        let reply = reply_of(&Anthropic, body);
        assert_eq!(reply.text, "Paris.");
        assert_eq!(
            reply.reasoning.as_deref(),
            Some("The user asks about France.")
        );
        assert_eq!(reply.finish_reason, Some(FinishReason::Length));
        // Without the cache counts, the prompt's size is not known.
        let u = reply.usage;
        assert_eq!(
            (u.input_tokens, u.cached_input_tokens, u.output_tokens),
            (None, None, Some(64))
        );
        for (stop, expected) in [
            ("stop_sequence", FinishReason::Stop),
            ("tool_use", FinishReason::ToolCalls),
            ("model_context_window_exceeded", FinishReason::ContextLength),
            ("pause_turn", FinishReason::Other),
        ] {
            let body = message().replace("end_turn", stop);
            assert_eq!(
                reply_of(&Anthropic, &body).finish_reason,
                Some(expected),
                "{stop}"
            );
        }
    }

    #[test]
    fn a_refusal_is_content_filtered_with_its_explanation_and_no_text() {
        // Anthropic, "Handle streaming refusals" (docs.anthropic.com/en/docs/
        // test-and-evaluate/strengthen-guardrails/handle-streaming-refusals):
        // a 200 with `stop_reason: "refusal"`, possibly after some text, and
        // `stop_details` giving the category and explanation.
        let body = r#"{"id":"msg_3","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello.."}],"stop_reason":"refusal","stop_details":{"type":"refusal","category":"cyber","explanation":"This request was declined because it could enable cyber harm."},"stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":3}}"#;
        let f = class_of(&Anthropic, 200, &[], body);
        assert_eq!(f.class, FailureClass::ContentFiltered);
        assert_eq!(f.status, Some(200));
        assert_eq!(
            f.message,
            "Anthropic: Claude refused the request (cyber): This request was declined because it could enable cyber harm."
        );
        assert!(
            !f.message.contains("Hello"),
            "the partial text is not the reason"
        );
        // Older replies carry no details.
        let f = class_of(
            &Anthropic,
            200,
            &[],
            &message().replace("end_turn", "refusal"),
        );
        assert_eq!(f.class, FailureClass::ContentFiltered);
        assert_eq!(f.message, "Anthropic: Claude refused the request");
    }

    #[test]
    fn error_types_are_classified() {
        let f = error(529, &[], "overloaded_error", "Overloaded");
        assert_eq!(f.class, FailureClass::Transient);
        assert_eq!(f.message, "Anthropic: Overloaded");
        assert!(f.request_sent, "so the POST is not repeated");
        let f = error(
            429,
            &[("retry-after", "17")],
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50 requests per minute.",
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(17)));
        for (status, kind, message, class) in [
            (401, "authentication_error", "invalid x-api-key", FailureClass::Auth),
            (403, "permission_error", "Your API key does not have permission", FailureClass::Auth),
            (402, "billing_error", "Payment required", FailureClass::QuotaExhausted),
            (
                400,
                "invalid_request_error",
                "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
                FailureClass::QuotaExhausted,
            ),
            (
                400,
                "invalid_request_error",
                "prompt is too long: 208732 tokens > 200000 maximum",
                FailureClass::ContextLengthExceeded,
            ),
            (
                400,
                "invalid_request_error",
                "input length and `max_tokens` exceed context limit: 198214 + 8192 > 200000, decrease input length or `max_tokens` and try again",
                FailureClass::ContextLengthExceeded,
            ),
            (413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", FailureClass::ContextLengthExceeded),
            (400, "invalid_request_error", "messages: roles must alternate", FailureClass::InvalidRequest),
            (404, "not_found_error", "model: claude-nope", FailureClass::InvalidRequest),
            (500, "api_error", "Internal server error", FailureClass::Transient),
            (504, "timeout_error", "Request timed out", FailureClass::Transient),
        ] {
            assert_eq!(error(status, &[], kind, message).class, class, "{kind}: {message}");
        }
        let f = class_of(&Anthropic, 502, &[], "<html>502 Bad Gateway</html>");
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn without_an_error_type_the_status_decides() {
        let f = class_of(
            &Anthropic,
            429,
            &[("retry-after", "9")],
            "<html>Too Many Requests</html>",
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(9)));
        for (status, class) in [
            (402, FailureClass::QuotaExhausted),
            (413, FailureClass::ContextLengthExceeded),
            (401, FailureClass::Auth),
            (403, FailureClass::Auth),
            (408, FailureClass::Transient),
            (529, FailureClass::Transient),
            (404, FailureClass::InvalidRequest),
            (410, FailureClass::InvalidRequest),
            (422, FailureClass::InvalidRequest),
        ] {
            let f = class_of(&Anthropic, status, &[], "<html>error</html>");
            assert_eq!(f.class, class, "HTTP {status}");
            assert_eq!(f.status, Some(status));
        }
    }

    #[test]
    fn malformed_bodies_never_panic() {
        assert_truncations_are_malformed(&Anthropic, &chat_request(), message());
        let f = class_of(
            &Anthropic,
            200,
            &[],
            &message().replace("\"type\":\"message\"", "\"type\":\"error\""),
        );
        assert_eq!(f.class, FailureClass::MalformedResponse);
        // A number sent as a numeric string is read as the number (#13,
        // provider/tolerant.rs): the answer does not change.
        let drifted = message().replace("\"output_tokens\":10", "\"output_tokens\":\"10\"");
        assert_eq!(
            answer(
                &Anthropic,
                &chat_request(),
                test_response(200, &[], &drifted)
            ),
            answer(
                &Anthropic,
                &chat_request(),
                test_response(200, &[], message())
            )
        );
    }

    fn stream(events: &[(&str, &str)]) -> String {
        events
            .iter()
            .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
            .collect()
    }

    #[test]
    fn the_streaming_request_is_the_plain_one_with_the_switch() {
        let plain = Anthropic
            .request(&chat_request(), &ctx(&Anthropic))
            .unwrap();
        let mut streamed = Anthropic
            .stream_request(&chat_query(), &ctx(&Anthropic))
            .unwrap();
        let mut body = streamed.json_body().unwrap();
        assert_eq!(body["stream"], true);
        body.as_object_mut().unwrap().remove("stream");
        streamed.body = Some(Body::Json(body));
        assert_eq!(streamed, plain);
        assert_eq!(Anthropic.framing(), Framing::Sse);
        assert!(Anthropic.streams_chat().is_some());
    }

    #[test]
    fn the_recorded_stream_folds_into_the_plain_reply() {
        let body = stream_fixture(&Anthropic);
        let reply = decode_whole(&Anthropic, &chat_query(), body).unwrap();
        assert_eq!(
            reply.id.as_deref(),
            Some("msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY")
        );
        assert_eq!(reply.model, "claude-opus-4-20250514");
        assert_eq!(reply.text, "Hello!");
        assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
        // Without the cache counts the prompt's size is not known (as for
        // a plain reply); the answer's count is the last one reported.
        assert_eq!(reply.usage, TokenUsage::new(None, Some(15)));
        assert_cuts_fail(&Anthropic, &chat_query(), body);

        let with_cache = body.replace(
            r#""usage": {"input_tokens": 25, "output_tokens": 1}"#,
            r#""usage": {"input_tokens": 5, "cache_read_input_tokens": 20, "cache_creation_input_tokens": 0, "output_tokens": 1}"#,
        );
        let reply = decode_whole(&Anthropic, &chat_query(), &with_cache).unwrap();
        let u = reply.usage;
        assert_eq!(
            (
                u.input_tokens,
                u.cached_input_tokens,
                u.output_tokens,
                u.total_tokens
            ),
            (Some(25), Some(20), Some(15), Some(40))
        );
    }

    #[test]
    fn thinking_streams_as_reasoning() {
        let body = stream(&[
            (
                "message_start",
                r#"{"type":"message_start","message":{"id":"msg_2","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"France… "}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Paris."}}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":64}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ]);
        let reply = decode_whole(&Anthropic, &chat_query(), &body).unwrap();
        assert_eq!(reply.text, "Paris.");
        assert_eq!(reply.reasoning.as_deref(), Some("France… "));
        assert_eq!(reply.finish_reason, Some(FinishReason::Length));
    }

    #[test]
    fn error_events_refusals_and_bad_events_in_a_stream_are_classified() {
        let start = (
            "message_start",
            r#"{"type":"message_start","message":{"id":"m","model":"c","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}"#,
        );
        let text = (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}"#,
        );
        let fail = |event: (&str, &str)| {
            decode_in_pieces(
                &Anthropic,
                &chat_query(),
                stream(&[start, text, event]).as_bytes(),
                6,
            )
            .unwrap_err()
        };
        // The streaming guide: an overloaded API sends an `error` event
        // in place of the rest of the stream.
        let f = fail((
            "error",
            r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#,
        ));
        assert_eq!(f.class, FailureClass::Transient);
        assert_eq!(
            (f.status, f.message.as_str()),
            (Some(200), "Anthropic: Overloaded")
        );
        for (kind, class) in [
            ("rate_limit_error", FailureClass::RateLimited),
            ("api_error", FailureClass::Transient),
            ("billing_error", FailureClass::QuotaExhausted),
            ("invalid_request_error", FailureClass::InvalidRequest),
        ] {
            let data = format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"x"}}}}"#);
            assert_eq!(fail(("error", &data)).class, class, "{kind}");
        }
        let f = fail((
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"refusal","stop_details":{"type":"refusal","category":"cyber","explanation":"Declined."}},"usage":{"output_tokens":3}}"#,
        ));
        assert_eq!(f.class, FailureClass::ContentFiltered);
        assert_eq!(
            f.message,
            "Anthropic: Claude refused the request (cyber): Declined."
        );
        for broken in [
            r#"{"type":"content_block_delta","delta":{"text":"x"#,
            r#"{"index":0}"#,
            "[]",
            r#"{"type":"error"}"#,
        ] {
            let f = fail(("content_block_delta", broken));
            assert_eq!(f.class, FailureClass::MalformedResponse, "{broken}: {f}");
        }
        // A refused streaming request is classified like a plain one.
        let f = Anthropic.stream_error(&test_response(
            529,
            &[],
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ));
        assert_eq!((f.class, f.status), (FailureClass::Transient, Some(529)));
    }
}
