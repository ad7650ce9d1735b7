//! Cohere API v2: `llm.chat` (`/v2/chat`) and `llm.embeddings`
//! (`/v2/embed`).
//!
//! Its own wire format: the answer's content is a list of typed parts,
//! finish reasons are upper case (`COMPLETE`, `MAX_TOKENS`, …), usage is
//! split into `tokens` (what the model processed, the counts reported) and
//! `billed_units` (what is charged, fewer), the reply does not name the
//! model, and embeddings need an `input_type` (`search_document` or
//! `search_query`) and come grouped by type (`embeddings.float`). The key
//! (`COHERE_API_KEY`) goes in `Authorization: Bearer`.
//!
//! Tools are declared as OpenAI declares them; `tool_choice` is
//! `REQUIRED` or `NONE` (auto is the default; Cohere cannot be made to
//! call one particular tool, so such a request skips it as unsupported).
//! The model's calls are `message.tool_calls` with its `tool_plan` (the
//! model's reasoning before the calls, kept as the answer's `reasoning`; an
//! assistant message's text is sent back as the plan), results go back as
//! `tool` messages with their `tool_call_id`, and a stream sends each call
//! as `tool-call-start` (id, name) and `tool-call-delta`s (arguments).
//!
//! Errors are `{"id":…,"message":…}`. Quirks: 498 is an invalid token
//! (auth); 499 a request the server saw closed (transient); a trial key's
//! monthly cap ("limited to 1000 API calls / month") comes as a 429 like the
//! per-minute limit, and is quota, not a rate limit. Trial keys are free but
//! not for production or commercial use.
//!
//! Content refusals: v2 documents no signal of its own (`safety_mode` only
//! steers the model's words); v1's `finish_reason: "ERROR_TOXIC"` (the reply
//! was deemed toxic) is recognised as a content refusal should it appear.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::clip;
use super::openai_compat::{read_tool_calls, wire_call, wire_tools, WireToolCall};
use crate::capability::llm::{
    is_context_overflow, pick_model, ChatDelta, ChatMeta, ChatQuery, ChatReply, EmbeddingPurpose,
    EmbeddingUsage, Embeddings, EmbeddingsQuery, FinishReason, Role, TokenUsage, ToolCallDelta,
    ToolChoice,
};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::stream::{self, streaming};
use crate::provider::{
    Auth, CallContext, Fixture, Frame, Framing, HttpRequest, HttpResponse, KeyPlacement, Provider,
    ProviderInfo, Quota, Serves, Step, StreamsChat,
};

/// Cohere (<https://cohere.com>): Command chat models and Embed models.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cohere;

static INFO: ProviderInfo = ProviderInfo {
    id: "cohere",
    name: "Cohere",
    auth: Auth::Key {
        env: "COHERE_API_KEY",
        placement: KeyPlacement::Header {
            name: "Authorization",
            prefix: "Bearer ",
        },
        optional: false,
    },
    base_url: "https://api.cohere.com",
    docs_url: "https://docs.cohere.com/reference/chat",
    terms: "Free trial key: 20 chat requests/min and 1,000 calls/month in all, for \
            evaluation only (no production or commercial use); production keys are paid.",
    commercial_use: false,
    default_rate_limit: Some("20/min"),
    default_quota: Some(Quota::per_month(1_000)),
};

/// Models used when the request names none.
const CHAT_MODEL: &str = "command-r-08-2024";
const EMBEDDING_MODEL: &str = "embed-v4.0";

impl Provider for Cohere {
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

crate::serves!(Cohere: LlmChat, LlmEmbeddings);

impl Serves<marker::LlmChat> for Cohere {
    fn build_request(
        &self,
        q: &ChatQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let model = pick_model(q.model.as_deref(), CHAT_MODEL, &[], INFO.id)?;
        q.check_tool_choice(INFO.name, |c| !matches!(c, ToolChoice::Tool(_)))?;
        let messages: Vec<Value> = q.messages.iter().map(wire_message).collect();
        let mut body = Map::new();
        body.insert("model".into(), json!(model));
        body.insert("messages".into(), Value::Array(messages));
        if !q.tools.is_empty() {
            body.insert("tools".into(), wire_tools(&q.tools));
        }
        match q.tool_choice {
            Some(ToolChoice::Required) => {
                body.insert("tool_choice".into(), json!("REQUIRED"));
            }
            Some(ToolChoice::None) => {
                body.insert("tool_choice".into(), json!("NONE"));
            }
            _ => {}
        }
        if let Some(n) = q.max_tokens {
            body.insert("max_tokens".into(), json!(n));
        }
        if let Some(t) = q.temperature {
            body.insert("temperature".into(), json!(t.get()));
        }
        // JSON mode, held to the schema when there is one: v2 names it
        // `json_schema` (the SDK's `JsonResponseFormatV2`; v1 said `schema`).
        if let Some(format) = &q.response_format {
            let mut wire = json!({"type": "json_object"});
            if let Some(schema) = format.schema() {
                wire["json_schema"] = schema.to_value();
            }
            body.insert("response_format".into(), wire);
        }
        body.insert("stream".into(), json!(false));
        Ok(HttpRequest::post_json(
            ctx.base_url,
            "/v2/chat",
            Value::Object(body),
        ))
    }

    fn read_response(
        &self,
        q: &ChatQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<ChatReply>, ProviderFailure> {
        check_status(&response)?;
        chat_reply(q, &response).map(Step::Done)
    }
}

/// Streams v2 chat events as server-sent events, each named by its `type`:
/// `message-start` (the id), `content-delta`s (text, or a reasoning
/// model's `thinking`), `tool-plan-delta`s (reasoning before tool calls),
/// `tool-call-start` and `tool-call-delta`s, `message-end` (finish
/// reason and usage); citation events are skipped.
impl StreamsChat for Cohere {
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
        stream::refusal(response, check_status(response))
    }

    fn decode_frame(
        &self,
        q: &ChatQuery,
        frame: &Frame,
        out: &mut Vec<ChatDelta>,
    ) -> Result<(), ProviderFailure> {
        let event: StreamEvent = frame.json()?;
        let delta = event.delta.unwrap_or_default();
        match event.kind.as_deref() {
            Some("message-start") => out.push(ChatDelta::Meta(ChatMeta {
                id: event.id,
                // Cohere's replies do not name the model.
                model: pick_model(q.model.as_deref(), CHAT_MODEL, &[], INFO.id)
                    .ok()
                    .map(str::to_string),
                ..ChatMeta::default()
            })),
            Some("content-start" | "content-delta") => {
                let content = delta.message.and_then(|m| m.content).unwrap_or_default();
                if let Some(thinking) = content.thinking.filter(|t| !t.is_empty()) {
                    out.push(ChatDelta::Reasoning(thinking));
                }
                if let Some(text) = content.text.filter(|t| !t.is_empty()) {
                    out.push(ChatDelta::Text(text));
                }
            }
            Some("tool-plan-delta") => {
                if let Some(plan) = delta.message.and_then(|m| m.tool_plan) {
                    if !plan.is_empty() {
                        out.push(ChatDelta::Reasoning(plan));
                    }
                }
            }
            Some("tool-call-start" | "tool-call-delta") => {
                let call = delta.message.and_then(|m| m.tool_calls).unwrap_or_default();
                let function = call.function.unwrap_or_default();
                out.push(ChatDelta::ToolCall(ToolCallDelta {
                    index: Some(event.index.unwrap_or_default()),
                    id: call.id.filter(|id| !id.is_empty()),
                    name: function.name.filter(|n| !n.is_empty()),
                    arguments: function.arguments.unwrap_or_default(),
                }));
            }
            Some("message-end") => {
                let finish_reason = delta
                    .finish_reason
                    .as_deref()
                    .map(finish_reason)
                    .transpose()
                    .map_err(|f| f.status(200))?;
                out.push(ChatDelta::Meta(ChatMeta {
                    finish_reason,
                    usage: delta.usage.map(token_usage),
                    ..ChatMeta::default()
                }));
                out.push(ChatDelta::End);
            }
            Some(_) => {}
            // No type: Cohere's error body (`{"message": …}`) in the stream.
            None => {
                let message = event.message.ok_or_else(|| {
                    ProviderFailure::malformed("Cohere sent an event without `type`").status(200)
                })?;
                return Err(ProviderFailure::new(
                    FailureClass::Transient,
                    format!("Cohere: {}", clip(&message)),
                )
                .status(200));
            }
        }
        Ok(())
    }

    fn stream_fixtures(&self) -> &'static [Fixture] {
        STREAM_FIXTURES
    }
}

impl Serves<marker::LlmEmbeddings> for Cohere {
    fn build_request(
        &self,
        q: &EmbeddingsQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let model = pick_model(q.model.as_deref(), EMBEDDING_MODEL, &[], INFO.id)?;
        let input_type = match q.purpose {
            EmbeddingPurpose::Document => "search_document",
            EmbeddingPurpose::Query => "search_query",
        };
        Ok(HttpRequest::post_json(
            ctx.base_url,
            "/v2/embed",
            json!({
                "model": model,
                "texts": q.inputs,
                "input_type": input_type,
                "embedding_types": ["float"],
            }),
        ))
    }

    fn read_response(
        &self,
        q: &EmbeddingsQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Embeddings>, ProviderFailure> {
        check_status(&response)?;
        let reply: EmbedResponse = response.json()?;
        let usage = EmbeddingUsage {
            input_tokens: reply
                .meta
                .and_then(|m| m.billed_units)
                .and_then(|b| b.input_tokens)
                .map(count),
        };
        let model = q
            .model
            .clone()
            .unwrap_or_else(|| EMBEDDING_MODEL.to_string());
        Embeddings::new(
            INFO.id,
            model,
            reply.embeddings.float,
            q.inputs.len(),
            usage,
        )
        .map(Step::Done)
        .map_err(|f| f.at_field("embeddings.float").status(response.status))
    }
}

/// A conversation message as v2 takes it: an assistant's calls with its
/// text as their `tool_plan`, a tool result with its `tool_call_id`.
fn wire_message(m: &crate::capability::llm::ChatMessage) -> Value {
    if m.role == Role::Assistant && !m.tool_calls.is_empty() {
        let calls: Vec<Value> = m.tool_calls.iter().map(wire_call).collect();
        let mut message = json!({"role": "assistant", "tool_calls": calls});
        if !m.content.trim().is_empty() {
            message["tool_plan"] = json!(m.content);
        }
        return message;
    }
    let mut message = json!({"role": m.role.as_str(), "content": m.content});
    if m.role == Role::Tool {
        message["tool_call_id"] = json!(m.tool_call_id);
    }
    message
}

fn chat_reply(q: &ChatQuery, response: &HttpResponse) -> Result<ChatReply, ProviderFailure> {
    let reply: ChatResponse = response.json()?;
    let finish_reason = reply
        .finish_reason
        .as_deref()
        .map(finish_reason)
        .transpose()
        .map_err(|f| {
            f.status(response.status)
                .retry_after(response.retry_after())
        })?;
    let (mut text, mut reasoning) = (None::<String>, String::new());
    let tool_calls = read_tool_calls(reply.message.tool_calls, INFO.name, "message.tool_calls")
        .map_err(|f| f.status(response.status))?;
    for part in reply.message.content {
        match part {
            Part::Text { text: Some(t) } => text.get_or_insert_default().push_str(&t),
            Part::Thinking {
                thinking: Some(thinking),
            } => reasoning.push_str(&thinking),
            _ => {}
        }
    }
    if let Some(plan) = reply.message.tool_plan.filter(|p| !p.is_empty()) {
        reasoning.push_str(&plan);
    }
    // No text part at all, and not cut short: nothing to answer with.
    let text = match text {
        Some(text) => text,
        None if finish_reason == Some(FinishReason::Length) || !tool_calls.is_empty() => {
            String::new()
        }
        None => {
            return Err(ProviderFailure::malformed(
                "Cohere answered without text or tool calls (`message.content[].text`, `message.tool_calls`)",
            )
            .status(response.status))
        }
    };
    let counts = token_usage(reply.usage.unwrap_or_default());
    Ok(ChatReply {
        id: reply.id,
        model: pick_model(q.model.as_deref(), CHAT_MODEL, &[], INFO.id)
            .map(str::to_string)
            .unwrap_or_default(),
        text,
        tool_calls,
        reasoning: (!reasoning.is_empty()).then_some(reasoning),
        finish_reason,
        usage: counts,
        parsed: None,
    })
}

/// A finish reason; one saying generation failed is that failure.
fn finish_reason(reason: &str) -> Result<FinishReason, ProviderFailure> {
    Ok(match reason {
        "COMPLETE" | "STOP_SEQUENCE" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "TOOL_CALL" => FinishReason::ToolCalls,
        "ERROR_TOXIC" => {
            return Err(ProviderFailure::new(
                FailureClass::ContentFiltered,
                "Cohere: the reply was deemed toxic (ERROR_TOXIC)",
            ))
        }
        "ERROR" | "TIMEOUT" => {
            return Err(ProviderFailure::new(
                FailureClass::Transient,
                format!("Cohere: generation ended with {reason}"),
            ))
        }
        _ => FinishReason::Other,
    })
}

fn token_usage(usage: Usage) -> TokenUsage {
    let tokens = usage.tokens.unwrap_or_default();
    let mut counts = TokenUsage::new(
        tokens.input_tokens.map(count),
        tokens.output_tokens.map(count),
    );
    counts.cached_input_tokens = usage.cached_tokens.map(count);
    counts
}

/// Cohere's token counts are JSON numbers that may carry a fraction (`5.0`).
fn count(value: f64) -> u64 {
    value.max(0.0).round() as u64
}

/// A non-2xx response as its failure, classified by status and message.
fn check_status(response: &HttpResponse) -> Result<(), ProviderFailure> {
    if response.is_success() {
        return Ok(());
    }
    let message = response
        .json::<ErrorBody>()
        .ok()
        .and_then(|b| b.message)
        .unwrap_or_else(|| response.body_excerpt());
    let monthly = {
        let lower = message.to_ascii_lowercase();
        lower.contains("/ month") || lower.contains("per month")
    };
    let by_status = match response.status {
        // Cohere's own codes: 498 is an invalid token, 499 a cancelled request.
        498 => Some(FailureClass::Auth),
        499 => Some(FailureClass::Transient),
        _ => response.status_class(),
    };
    let class = match by_status {
        Some(FailureClass::RateLimited) if monthly => FailureClass::QuotaExhausted,
        Some(
            class @ (FailureClass::RateLimited | FailureClass::Auth | FailureClass::QuotaExhausted),
        ) => class,
        _ if is_context_overflow(&message) => FailureClass::ContextLengthExceeded,
        Some(FailureClass::Transient) => FailureClass::Transient,
        // Including 404/410 (an unknown model): the request's fault, not a
        // "does not exist" answer to cache.
        _ => FailureClass::InvalidRequest,
    };
    Err(response.failure(class, format!("Cohere: {}", clip(&message))))
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

/// One event of a stream.
#[derive(Deserialize)]
struct StreamEvent {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<String>,
    /// Tool call events: which call of the answer.
    index: Option<usize>,
    delta: Option<EventDelta>,
    /// An error body's text.
    message: Option<String>,
}

#[derive(Deserialize, Default)]
struct EventDelta {
    message: Option<DeltaMessage>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct DeltaMessage {
    /// An object in content events; a list in `message-start`.
    #[serde(default, deserialize_with = "object_only")]
    content: Option<DeltaContent>,
    /// `tool-plan-delta`: a piece of the plan.
    tool_plan: Option<String>,
    /// `tool-call-start`, `tool-call-delta`: one call (an object; a list
    /// in `message-start`).
    #[serde(default, deserialize_with = "object_only")]
    tool_calls: Option<WireToolCall>,
}

#[derive(Deserialize, Default)]
struct DeltaContent {
    text: Option<String>,
    thinking: Option<String>,
}

/// A field that is an object in its own events; the empty list
/// `message-start` has in its place is none.
fn object_only<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    match Option::<Value>::deserialize(d)? {
        Some(value @ Value::Object(_)) => {
            serde_json::from_value(value).map_err(serde::de::Error::custom)
        }
        _ => Ok(None),
    }
}

#[derive(Deserialize)]
struct ChatResponse {
    id: Option<String>,
    finish_reason: Option<String>,
    message: AssistantMessage,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct AssistantMessage {
    #[serde(default)]
    content: Vec<Part>,
    /// With tool calls: the model's plan, in place of content.
    tool_plan: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Part {
    Text {
        text: Option<String>,
    },
    Thinking {
        thinking: Option<String>,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
struct Usage {
    tokens: Option<Tokens>,
    cached_tokens: Option<f64>,
}

#[derive(Deserialize, Default)]
struct Tokens {
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
}

#[derive(Deserialize)]
struct EmbedResponse {
    embeddings: EmbeddingsByType,
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct EmbeddingsByType {
    float: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct Meta {
    billed_units: Option<BilledInput>,
}

#[derive(Deserialize)]
struct BilledInput {
    input_tokens: Option<f64>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `command-r-08-2024` answering "What is the capital of France?".
    Fixture {
        method: "POST",
        path: "/v2/chat",
        status: 200,
        body: include_str!("fixtures/cohere/chat.json"),
    },
    // Two inputs (vectors shortened from 1536 dimensions).
    Fixture {
        method: "POST",
        path: "/v2/embed",
        status: 200,
        body: include_str!("fixtures/cohere/embed.json"),
    },
];

static STREAM_FIXTURES: &[Fixture] = fixtures![
    // `command-r-08-2024` streaming "The capital of France is Paris.".
    Fixture {
        method: "POST",
        path: "/v2/chat",
        status: 200,
        body: include_str!("fixtures/cohere/chat_stream.sse"),
    },
];

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Method;

    use super::*;
    use crate::provider::stream::testing::{
        assert_cuts_fail, decode_in_pieces, decode_whole, stream_fixture,
    };
    use crate::provider::Body;
    use crate::providers::openai_compat::testing::{
        chat_query, chat_request, class_of, embeddings_request, reply_of,
    };
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn chat() -> &'static str {
        fixture(&Cohere, "/v2/chat")
    }

    fn embed() -> &'static str {
        fixture(&Cohere, "/v2/embed")
    }

    #[test]
    fn requests_are_exact_and_carry_no_key() {
        let req = Cohere.request(&chat_request(), &ctx(&Cohere)).unwrap();
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.url, "https://api.cohere.com/v2/chat");
        assert!(req.query.is_empty() && req.headers.is_empty());
        assert_eq!(
            req.json_body().unwrap(),
            json!({
                "model": "command-r-08-2024",
                "messages": [
                    {"role": "system", "content": "Answer in one sentence."},
                    {"role": "user", "content": "What is the capital of France?"},
                ],
                "max_tokens": 64,
                "temperature": 0.2,
                "stream": false,
            })
        );
        let query = request(
            "llm.embeddings",
            json!({"inputs": ["capital of France"], "purpose": "query"}),
        );
        let req = Cohere.request(&query, &ctx(&Cohere)).unwrap();
        assert_eq!(req.url, "https://api.cohere.com/v2/embed");
        assert_eq!(
            req.json_body().unwrap(),
            json!({"model": "embed-v4.0", "texts": ["capital of France"], "input_type": "search_query", "embedding_types": ["float"]})
        );
        assert_eq!(
            INFO.auth,
            Auth::Key {
                env: "COHERE_API_KEY",
                placement: KeyPlacement::Header {
                    name: "Authorization",
                    prefix: "Bearer "
                },
                optional: false,
            }
        );
        assert!(
            !INFO.commercial_use,
            "trial keys are not for commercial use"
        );
    }

    #[test]
    fn fixtures_normalise() {
        let reply = reply_of(&Cohere, chat());
        assert_eq!(
            reply.id.as_deref(),
            Some("c14c80c3-18eb-4519-9460-6c92edd8cfb4")
        );
        assert_eq!(reply.model, "command-r-08-2024");
        assert_eq!(reply.text, "The capital of France is Paris.");
        assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
        assert_eq!(
            (
                reply.usage.input_tokens,
                reply.usage.output_tokens,
                reply.usage.total_tokens
            ),
            (Some(210), Some(8), Some(218)),
            "tokens the model processed, not the billed ones"
        );
        assert_eq!(reply.usage.cached_input_tokens, Some(0));

        let Data::LlmEmbeddings(e) = answer(
            &Cohere,
            &embeddings_request(),
            test_response(200, &[], embed()),
        ) else {
            panic!("wrong data")
        };
        assert_eq!((e.model.as_str(), e.dimensions), ("embed-v4.0", 5));
        assert_eq!(e.vectors[0][4], 0.00013196468);
        assert_eq!(e.usage.input_tokens, Some(13));
    }

    #[test]
    fn finish_reasons_and_thinking_are_normalised() {
        for (finish, expected) in [
            ("STOP_SEQUENCE", FinishReason::Stop),
            ("MAX_TOKENS", FinishReason::Length),
            ("TOOL_CALL", FinishReason::ToolCalls),
        ] {
            assert_eq!(
                reply_of(&Cohere, &chat().replace("COMPLETE", finish)).finish_reason,
                Some(expected)
            );
        }
        for finish in ["ERROR", "TIMEOUT"] {
            let f = class_of(&Cohere, 200, &[], &chat().replace("COMPLETE", finish));
            assert_eq!(f.class, FailureClass::Transient, "{finish}");
        }
        // Cohere v1 chat reference: `ERROR_TOXIC`, "the model generated a
        // reply that was deemed toxic".
        let f = class_of(
            &Cohere,
            200,
            &[],
            &chat().replace("COMPLETE", "ERROR_TOXIC"),
        );
        assert_eq!(f.class, FailureClass::ContentFiltered);
        assert_eq!(
            f.message,
            "Cohere: the reply was deemed toxic (ERROR_TOXIC)"
        );
        let body = r#"{"id":"x","finish_reason":"COMPLETE","message":{"role":"assistant","content":[{"type":"thinking","thinking":"France → Paris"},{"type":"text","text":"Paris."}]},"usage":{"billed_units":{"input_tokens":3.0,"output_tokens":2.0}}}"#;
        let reply = reply_of(&Cohere, body);
        assert_eq!(reply.reasoning.as_deref(), Some("France → Paris"));
        assert_eq!(reply.text, "Paris.");
        // Billed units are not the counts the model processed.
        assert_eq!(
            (reply.usage.input_tokens, reply.usage.output_tokens),
            (None, None)
        );
    }

    #[test]
    fn error_signals_are_classified() {
        let err = |status: u16, message: &str| {
            class_of(
                &Cohere,
                status,
                &[],
                &json!({"id": "4f6c8f1b", "message": message}).to_string(),
            )
        };
        let f = err(429, "You are using a Trial key, which is limited to 1000 API calls / month. You can continue to use the Trial key for free or upgrade to a Production key with higher rate limits at 'https://dashboard.cohere.com/api-keys'.");
        assert_eq!(f.class, FailureClass::QuotaExhausted, "the monthly cap");
        let f = class_of(
            &Cohere,
            429,
            &[("retry-after", "30")],
            r#"{"id":"x","message":"You are using a Trial key, which is limited to 20 API calls / minute."}"#,
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(30)));
        assert_eq!(err(498, "invalid api token").class, FailureClass::Auth);
        assert_eq!(err(401, "no api key supplied").class, FailureClass::Auth);
        assert_eq!(err(499, "request cancelled").class, FailureClass::Transient);
        assert_eq!(
            err(503, "service unavailable").class,
            FailureClass::Transient
        );
        assert_eq!(
            err(422, "invalid request: temperature").class,
            FailureClass::InvalidRequest
        );
        assert_eq!(
            err(404, "model 'command-x' not found").class,
            FailureClass::InvalidRequest
        );
        let f = err(400, "too many tokens: size limit exceeded by 1138 tokens. Try using shorter or fewer inputs, or setting prompt_truncation='AUTO'.");
        assert_eq!(f.class, FailureClass::ContextLengthExceeded);
        assert_eq!(f.message, "Cohere: too many tokens: size limit exceeded by 1138 tokens. Try using shorter or fewer inputs, or setting prompt_truncation='AUTO'.");
    }

    #[test]
    fn other_statuses_keep_their_generic_class() {
        for (status, class) in [
            (402, FailureClass::QuotaExhausted),
            (403, FailureClass::Auth),
            (408, FailureClass::Transient),
            (410, FailureClass::InvalidRequest),
        ] {
            let body = json!({"id": "4f6c8f1b", "message": "something"}).to_string();
            assert_eq!(
                class_of(&Cohere, status, &[], &body).class,
                class,
                "HTTP {status}"
            );
        }
        let f = class_of(
            &Cohere,
            502,
            &[("retry-after", "4")],
            "<html>Bad Gateway</html>",
        );
        assert_eq!(f.class, FailureClass::Transient);
        assert_eq!(f.retry_after, Some(Duration::from_secs(4)));
    }

    #[test]
    fn malformed_bodies_never_panic() {
        assert_truncations_are_malformed(&Cohere, &chat_request(), chat());
        assert_truncations_are_malformed(&Cohere, &embeddings_request(), embed());
        let one = request("llm.embeddings", json!({"inputs": "one"}));
        let f = failure(&Cohere, &one, test_response(200, &[], embed()));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }

    #[test]
    fn the_recorded_stream_folds_into_the_plain_reply() {
        let mut streamed = Cohere.stream_request(&chat_query(), &ctx(&Cohere)).unwrap();
        let mut body = streamed.json_body().unwrap();
        assert_eq!(body["stream"], true);
        body["stream"] = json!(false);
        streamed.body = Some(Body::Json(body));
        assert_eq!(
            streamed,
            Cohere.request(&chat_request(), &ctx(&Cohere)).unwrap()
        );
        assert_eq!(Cohere.framing(), Framing::Sse);
        assert!(Cohere.streams_chat().is_some());

        let body = stream_fixture(&Cohere);
        let reply = decode_whole(&Cohere, &chat_query(), body).unwrap();
        let plain = reply_of(&Cohere, chat());
        assert_eq!(
            reply.id.as_deref(),
            Some("29f14a5a-11de-4cae-9800-25e4747408ea")
        );
        assert_eq!(
            (reply.text, reply.model, reply.finish_reason, reply.usage),
            (plain.text, plain.model, plain.finish_reason, plain.usage)
        );
        assert_cuts_fail(&Cohere, &chat_query(), body);
    }

    #[test]
    fn thinking_failures_and_bad_events_in_a_stream() {
        let q = chat_query();
        let event = |data: &str| format!("data: {data}\n\n");
        let start = event(
            r#"{"id":"x","type":"message-start","delta":{"message":{"role":"assistant","content":[]}}}"#,
        );
        let thinking = event(
            r#"{"type":"content-delta","index":0,"delta":{"message":{"content":{"thinking":"Hmm."}}}}"#,
        );
        let end = event(
            r#"{"type":"message-end","delta":{"finish_reason":"MAX_TOKENS","usage":{"tokens":{"input_tokens":5.0,"output_tokens":64}}}}"#,
        );
        let reply = decode_whole(&Cohere, &q, &(start.clone() + &thinking + &end)).unwrap();
        assert_eq!(
            (reply.text.as_str(), reply.reasoning.as_deref()),
            ("", Some("Hmm."))
        );
        assert_eq!(reply.finish_reason, Some(FinishReason::Length));
        assert_eq!(reply.usage, TokenUsage::new(Some(5), Some(64)));

        let fail = |data: &str| {
            decode_in_pieces(&Cohere, &q, (start.clone() + &event(data)).as_bytes(), 4).unwrap_err()
        };
        let f = fail(r#"{"type":"message-end","delta":{"finish_reason":"ERROR"}}"#);
        assert_eq!((f.class, f.status), (FailureClass::Transient, Some(200)));
        let f = fail(r#"{"type":"message-end","delta":{"finish_reason":"ERROR_TOXIC"}}"#);
        assert_eq!(f.class, FailureClass::ContentFiltered);
        let f = fail(
            r#"{"id":"e","message":"internal server error, this has been reported to our developers"}"#,
        );
        assert_eq!(f.class, FailureClass::Transient);
        for broken in [r#"{"type":"content-delta","delta":{"mess"#, "[]", "{}"] {
            assert_eq!(
                fail(broken).class,
                FailureClass::MalformedResponse,
                "{broken}"
            );
        }
        let f = Cohere.stream_error(&test_response(429, &[], r#"{"id":"e","message":"You are using a Trial key, which is limited to 1000 API calls / month."}"#));
        assert_eq!(f.class, FailureClass::QuotaExhausted);
    }
}
