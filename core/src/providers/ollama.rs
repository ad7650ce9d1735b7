//! Ollama: `llm.chat` and `llm.embeddings` on models running on your own
//! machine; the only keyless LLM provider, so it leads both default chains.
//!
//! This adapter speaks Ollama's native API (`/api/chat`, `/api/embed`), not
//! its OpenAI-compatible `/v1`, for one reason that matters to a fallback
//! chain: only the native API takes `"truncate": false`. Without it, a prompt
//! longer than the model's context window is silently cut (front first, the
//! system prompt included) and the model answers a different question with
//! a 200; with it, Ollama refuses ("exceeds the available context size"),
//! which is classified as a context-length error so the chain falls back to
//! a provider with a larger window. Older Ollama versions ignore the field.
//! The native API is also Ollama's primary, stable one (the compatibility
//! layer is documented as experimental) and reports `done_reason` and token
//! counts directly.
//!
//! Tools are declared as OpenAI declares them; the model's calls come as
//! `message.tool_calls` with their arguments as an object (and, from
//! recent versions, an id; without one a call gets one from its position),
//! whole even in a stream, and results go back as `tool` messages naming
//! the tool (`tool_name`). Ollama takes no `tool_choice`: `none` is
//! honoured by sending no tools, `required` or one named tool cannot be,
//! and such a request skips Ollama as unsupported.
//!
//! Errors are `{"error":"…"}`: 404 means the model is not pulled (an invalid
//! request here: the next provider is tried, and the message says
//! `ollama pull`), 429 and 401 come from Ollama's hosted models, 5xx are
//! transient. When Ollama is not running the connection is refused, which
//! is always safe to retry and then falls back.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::clip;
use super::openai_compat::wire_tools;
use crate::capability::llm::{
    is_context_overflow, pick_model, ChatDelta, ChatMeta, ChatQuery, ChatReply, EmbeddingUsage,
    Embeddings, EmbeddingsQuery, FinishReason, JsonSchema, Role, TokenUsage, ToolCall,
    ToolCallDelta, ToolChoice,
};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::stream::{self, streaming};
use crate::provider::{
    Auth, CallContext, Fixture, Frame, Framing, HttpRequest, HttpResponse, Provider, ProviderInfo,
    Serves, Step, StreamsChat,
};

/// Ollama (<https://ollama.com>): open-weight models served locally,
/// keyless.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ollama;

static INFO: ProviderInfo = ProviderInfo {
    id: "ollama",
    name: "Ollama",
    auth: Auth::Keyless,
    base_url: "http://localhost:11434",
    docs_url: "https://docs.ollama.com/api",
    terms: "Runs on your own machine: no key and no quota. Pull the models first \
            (`ollama pull llama3.2`, `ollama pull nomic-embed-text`); each model's own \
            licence applies.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

/// Models used when the request names none.
const CHAT_MODEL: &str = "llama3.2";
const EMBEDDING_MODEL: &str = "nomic-embed-text";

/// Ollama's tags for the cross-provider aliases.
const MODEL_ALIASES: &[(&str, &str)] = &[
    ("llama-3.3-70b", "llama3.3"),
    ("llama-3.1-8b", "llama3.1:8b"),
];

impl Provider for Ollama {
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

crate::serves!(Ollama: LlmChat, LlmEmbeddings);

impl Serves<marker::LlmChat> for Ollama {
    fn build_request(
        &self,
        q: &ChatQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let model = pick_model(q.model.as_deref(), CHAT_MODEL, MODEL_ALIASES, INFO.id)?;
        q.check_tool_choice(INFO.name, |c| {
            matches!(c, ToolChoice::Auto | ToolChoice::None)
        })?;
        let messages: Vec<Value> = q.messages.iter().map(|m| wire_message(q, m)).collect();
        let mut body = Map::new();
        body.insert("model".into(), json!(model));
        body.insert("messages".into(), Value::Array(messages));
        if !q.tools.is_empty() && q.tool_choice != Some(ToolChoice::None) {
            body.insert("tools".into(), wire_tools(&q.tools));
        }
        // `format`: "json", or the JSON Schema the answer is held to.
        if let Some(format) = &q.response_format {
            let format = format.schema().map_or(json!("json"), JsonSchema::to_value);
            body.insert("format".into(), format);
        }
        body.insert("stream".into(), json!(false));
        body.insert("truncate".into(), json!(false));
        let mut options = Map::new();
        if let Some(t) = q.temperature {
            options.insert("temperature".into(), json!(t.get()));
        }
        if let Some(n) = q.max_tokens {
            options.insert("num_predict".into(), json!(n));
        }
        if !options.is_empty() {
            body.insert("options".into(), Value::Object(options));
        }
        Ok(HttpRequest::post_json(
            ctx.base_url,
            "/api/chat",
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

/// Streams newline-delimited JSON: one `/api/chat` reply per line, each
/// with the next piece of the message, the last with `"done": true`, the
/// done reason and the counts; `{"error": …}` in place of a line when
/// generation fails.
impl StreamsChat for Ollama {
    fn stream_request(
        &self,
        q: &ChatQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        <Self as Serves<marker::LlmChat>>::build_request(self, q, ctx).map(streaming)
    }

    fn framing(&self) -> Framing {
        Framing::Ndjson
    }

    fn stream_error(&self, response: &HttpResponse) -> ProviderFailure {
        stream::refusal(response, check_status(response))
    }

    fn decode_frame(
        &self,
        _q: &ChatQuery,
        frame: &Frame,
        out: &mut Vec<ChatDelta>,
    ) -> Result<(), ProviderFailure> {
        let line: StreamLine = frame.json()?;
        if let Some(error) = line.error {
            // Generation failed after the 200: the server's fault, or a
            // prompt that turned out too long.
            let class = if is_context_overflow(&error) {
                FailureClass::ContextLengthExceeded
            } else {
                FailureClass::Transient
            };
            return Err(
                ProviderFailure::new(class, format!("Ollama: {}", clip(&error))).status(200),
            );
        }
        let (Some(message), Some(done)) = (line.message, line.done) else {
            return Err(ProviderFailure::malformed(
                "Ollama sent a stream line without `message` and `done`",
            )
            .status(200));
        };
        if let Some(thinking) = message.thinking.filter(|t| !t.is_empty()) {
            out.push(ChatDelta::Reasoning(thinking));
        }
        if let Some(text) = message.content.filter(|t| !t.is_empty()) {
            out.push(ChatDelta::Text(text));
        }
        // Whole calls; ids Ollama does not give are made by the accumulator
        // from the call's place in the whole answer.
        for call in message.tool_calls {
            let function = call.function.unwrap_or_default();
            let name = function.name.filter(|n| !n.is_empty()).ok_or_else(|| {
                ProviderFailure::malformed("Ollama streamed a tool call without its name")
                    .status(200)
            })?;
            out.push(ChatDelta::ToolCall(ToolCallDelta {
                index: None,
                id: call.id.filter(|id| !id.is_empty()),
                name: Some(name),
                arguments: function
                    .arguments
                    .map_or_else(|| "{}".into(), |a| a.to_string()),
            }));
        }
        let mut meta = ChatMeta {
            model: line.model,
            ..ChatMeta::default()
        };
        if done {
            meta.finish_reason = line.done_reason.as_deref().map(finish_reason);
            meta.usage = Some(TokenUsage::new(line.prompt_eval_count, line.eval_count));
        }
        out.push(ChatDelta::Meta(meta));
        if done {
            out.push(ChatDelta::End);
        }
        Ok(())
    }

    fn stream_fixtures(&self) -> &'static [Fixture] {
        STREAM_FIXTURES
    }
}

impl Serves<marker::LlmEmbeddings> for Ollama {
    fn build_request(
        &self,
        q: &EmbeddingsQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let model = pick_model(q.model.as_deref(), EMBEDDING_MODEL, &[], INFO.id)?;
        Ok(HttpRequest::post_json(
            ctx.base_url,
            "/api/embed",
            json!({"model": model, "input": q.inputs, "truncate": false}),
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
            input_tokens: reply.prompt_eval_count,
        };
        Embeddings::new(
            INFO.id,
            reply.model,
            reply.embeddings,
            q.inputs.len(),
            usage,
        )
        .map(Step::Done)
        .map_err(|f| f.at_field("embeddings").status(response.status))
    }
}

/// An `{"error": …}` body, whatever the status, or a non-2xx response as its
/// classified failure.
fn check_status(response: &HttpResponse) -> Result<(), ProviderFailure> {
    // An error can also arrive with a 200 once generation has started.
    if let Ok(ErrorBody { error }) = response.json::<ErrorBody>() {
        return Err(classify(response, &error));
    }
    if !response.is_success() {
        return Err(classify(response, &response.body_excerpt()));
    }
    Ok(())
}

/// A conversation message as Ollama takes it: an assistant's calls with
/// their arguments as objects, a tool result naming its tool.
fn wire_message(q: &ChatQuery, m: &crate::capability::llm::ChatMessage) -> Value {
    let mut message = json!({"role": m.role.as_str(), "content": m.content});
    if !m.tool_calls.is_empty() {
        let calls: Vec<Value> = m
            .tool_calls
            .iter()
            .map(|c| json!({"function": {"name": c.name, "arguments": c.arguments_object()}}))
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    if m.role == Role::Tool {
        message["tool_name"] = json!(q.tool_name(m));
    }
    message
}

/// The calls of a message; one without its function's name is malformed.
fn tool_calls(calls: Vec<WireToolCall>) -> Result<Vec<ToolCall>, ProviderFailure> {
    calls
        .into_iter()
        .enumerate()
        .map(|(i, call)| {
            let function = call.function.unwrap_or_default();
            let Some(name) = function.name.filter(|n| !n.is_empty()) else {
                return Err(ProviderFailure::malformed(format!(
                    "Ollama answered a tool call without its name (`message.tool_calls[{i}].function.name`)"
                )));
            };
            Ok(ToolCall {
                id: call
                    .id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| ToolCall::id_for(i)),
                name,
                arguments: function
                    .arguments
                    .map_or_else(|| "{}".into(), |a| a.to_string()),
            })
        })
        .collect()
}

fn chat_reply(q: &ChatQuery, response: &HttpResponse) -> Result<ChatReply, ProviderFailure> {
    let reply: ChatResponse = response.json()?;
    if !reply.done {
        return Err(
            ProviderFailure::malformed("Ollama sent an unfinished answer").status(response.status),
        );
    }
    let tool_calls = tool_calls(reply.message.tool_calls).map_err(|f| f.status(response.status))?;
    let text = match reply.message.content {
        Some(text) => text,
        None if !tool_calls.is_empty() => String::new(),
        None => {
            return Err(ProviderFailure::malformed(
                "Ollama answered without text (`message.content`)",
            )
            .status(response.status))
        }
    };
    // Ollama says `stop` when the model calls tools.
    let finish_reason = match reply.done_reason.as_deref().map(finish_reason) {
        Some(FinishReason::Stop) if !tool_calls.is_empty() => Some(FinishReason::ToolCalls),
        other => other,
    };
    Ok(ChatReply {
        id: None,
        model: reply.model.unwrap_or_else(|| {
            pick_model(q.model.as_deref(), CHAT_MODEL, MODEL_ALIASES, INFO.id)
                .map(str::to_string)
                .unwrap_or_default()
        }),
        text,
        tool_calls,
        reasoning: reply.message.thinking.filter(|t| !t.is_empty()),
        finish_reason,
        // Ollama leaves `prompt_eval_count` out when the whole prompt came
        // from its cache: the prompt's size is then not reported.
        usage: TokenUsage::new(reply.prompt_eval_count, reply.eval_count),
        parsed: None,
    })
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        _ => FinishReason::Other,
    }
}

/// Classifies Ollama's `{"error": …}` by its text and status.
fn classify(response: &HttpResponse, error: &str) -> ProviderFailure {
    let class = match response.status {
        _ if is_context_overflow(error) => FailureClass::ContextLengthExceeded,
        429 => FailureClass::RateLimited,
        401 | 403 => FailureClass::Auth,
        404 => FailureClass::InvalidRequest,
        400..=499 => FailureClass::InvalidRequest,
        _ => FailureClass::Transient,
    };
    let hint = if response.status == 404 {
        " (pull it with `ollama pull`)"
    } else {
        ""
    };
    response.failure(class, format!("Ollama: {}{hint}", clip(error)))
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

#[derive(Deserialize)]
struct ChatResponse {
    model: Option<String>,
    message: ChatMessage,
    done: bool,
    done_reason: Option<String>,
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
}

/// One line of a stream: a piece of the reply, or an error.
#[derive(Deserialize)]
struct StreamLine {
    error: Option<String>,
    model: Option<String>,
    message: Option<ChatMessage>,
    done: Option<bool>,
    done_reason: Option<String>,
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
}

#[derive(Deserialize)]
struct ChatMessage {
    /// May be left out beside tool calls.
    content: Option<String>,
    thinking: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize, Default)]
struct WireToolCall {
    id: Option<String>,
    function: Option<WireFunction>,
}

#[derive(Deserialize, Default)]
struct WireFunction {
    name: Option<String>,
    /// An object.
    arguments: Option<Value>,
}

#[derive(Deserialize)]
struct EmbedResponse {
    model: String,
    embeddings: Vec<Vec<f32>>,
    prompt_eval_count: Option<u64>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `llama3.2` answering "why is the sky blue?" without streaming (durations in ns).
    Fixture {
        method: "POST",
        path: "/api/chat",
        status: 200,
        body: include_str!("fixtures/ollama/chat.json"),
    },
    // `all-minilm` embedding two inputs (vectors shortened to 10 dimensions).
    Fixture {
        method: "POST",
        path: "/api/embed",
        status: 200,
        body: include_str!("fixtures/ollama/embed.json"),
    },
];

static STREAM_FIXTURES: &[Fixture] = fixtures![
    // The API documentation's streaming chat example: `llama3.2` answering
    // "why is the sky blue?" (shortened to its first words).
    Fixture {
        method: "POST",
        path: "/api/chat",
        status: 200,
        body: include_str!("fixtures/ollama/chat_stream.ndjson"),
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

    #[test]
    fn requests_are_exact_and_refuse_silent_truncation() {
        let req = Ollama.request(&chat_request(), &ctx(&Ollama)).unwrap();
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.url, "http://localhost:11434/api/chat");
        assert!(req.query.is_empty() && req.headers.is_empty());
        assert_eq!(
            req.json_body().unwrap(),
            json!({
                "model": "llama3.2",
                "messages": [
                    {"role": "system", "content": "Answer in one sentence."},
                    {"role": "user", "content": "What is the capital of France?"},
                ],
                "stream": false,
                "truncate": false,
                "options": {"temperature": 0.2, "num_predict": 64},
            })
        );
        let req = Ollama
            .request(&embeddings_request(), &ctx(&Ollama))
            .unwrap();
        assert_eq!(req.url, "http://localhost:11434/api/embed");
        assert_eq!(
            req.json_body().unwrap(),
            json!({"model": "nomic-embed-text", "input": ["The capital of France is Paris.", "Paris is in France."], "truncate": false})
        );
        assert_eq!(INFO.auth, Auth::Keyless);

        let aliased = request(
            "llm.chat",
            json!({"messages": [{"role": "user", "content": "Hi"}], "model": "llama-3.3-70b"}),
        );
        let body = Ollama
            .request(&aliased, &ctx(&Ollama))
            .unwrap()
            .json_body()
            .unwrap();
        assert_eq!(body["model"], "llama3.3");
        assert!(body.get("options").is_none());
    }

    #[test]
    fn fixtures_normalise() {
        let reply = reply_of(&Ollama, fixture(&Ollama, "/api/chat"));
        assert_eq!(reply.id, None);
        assert_eq!(reply.model, "llama3.2");
        assert_eq!(reply.text, "Hello! How are you today?");
        assert_eq!(reply.finish_reason, None, "this example has no done_reason");
        assert_eq!(
            (
                reply.usage.input_tokens,
                reply.usage.output_tokens,
                reply.usage.total_tokens
            ),
            (Some(26), Some(298), Some(324))
        );

        let Data::LlmEmbeddings(e) = answer(
            &Ollama,
            &embeddings_request(),
            test_response(200, &[], fixture(&Ollama, "/api/embed")),
        ) else {
            panic!("wrong data")
        };
        assert_eq!((e.model.as_str(), e.dimensions), ("all-minilm", 10));
        assert_eq!(e.vectors[1][1], 0.06042469);
        assert_eq!(
            e.usage.input_tokens, None,
            "this example reports no prompt_eval_count"
        );
    }

    #[test]
    fn thinking_and_length_are_normalised() {
        let body = r#"{"model":"qwen3","created_at":"2025-01-15T14:05:00Z","message":{"role":"assistant","content":"Paris","thinking":"The user wants the capital."},"done_reason":"length","done":true,"eval_count":64}"#;
        let reply = reply_of(&Ollama, body);
        assert_eq!(
            reply.reasoning.as_deref(),
            Some("The user wants the capital.")
        );
        assert_eq!(reply.finish_reason, Some(FinishReason::Length));
        assert_eq!(
            reply.usage.input_tokens, None,
            "prompt fully cached: its size is not reported"
        );
        let chat = fixture(&Ollama, "/api/chat");
        let unfinished = chat.replace("\"done\": true", "\"done\": false");
        assert_ne!(unfinished, chat);
        assert_eq!(
            class_of(&Ollama, 200, &[], &unfinished).class,
            FailureClass::MalformedResponse
        );
    }

    #[test]
    fn error_signals_are_classified() {
        let f = class_of(
            &Ollama,
            404,
            &[],
            r#"{"error":"model \"llama3.2\" not found, try pulling it first"}"#,
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert!(f.message.contains("ollama pull"), "{}", f.message);
        let f = class_of(
            &Ollama,
            400,
            &[],
            r#"{"error":"{\"error\":{\"code\":400,\"message\":\"request (351 tokens) exceeds the available context size (256 tokens), try increasing it\",\"type\":\"exceed_context_size_error\",\"n_prompt_tokens\":351,\"n_ctx\":256}}"}"#,
        );
        assert_eq!(f.class, FailureClass::ContextLengthExceeded);
        let f = class_of(
            &Ollama,
            500,
            &[],
            r#"{"error":"the input length exceeds the context length"}"#,
        );
        assert_eq!(f.class, FailureClass::ContextLengthExceeded);
        let f = class_of(
            &Ollama,
            429,
            &[("retry-after", "4")],
            r#"{"error":"too many concurrent requests"}"#,
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(4)));
        assert_eq!(
            class_of(&Ollama, 401, &[], r#"{"error":"unauthorized"}"#).class,
            FailureClass::Auth
        );
        assert_eq!(
            class_of(&Ollama, 400, &[], r#"{"error":"invalid options"}"#).class,
            FailureClass::InvalidRequest
        );
        assert_eq!(
            class_of(
                &Ollama,
                500,
                &[],
                r#"{"error":"llama runner process has terminated: exit status 2"}"#
            )
            .class,
            FailureClass::Transient
        );
        assert_eq!(
            class_of(&Ollama, 502, &[], "Bad Gateway").class,
            FailureClass::Transient
        );
        // An error after the answer started, with the status already 200.
        let f = class_of(
            &Ollama,
            200,
            &[],
            r#"{"error":"an error was encountered while running the model: unexpected EOF"}"#,
        );
        assert_eq!((f.class, f.status), (FailureClass::Transient, Some(200)));
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let embed = fixture(&Ollama, "/api/embed");
        assert_truncations_are_malformed(&Ollama, &chat_request(), fixture(&Ollama, "/api/chat"));
        assert_truncations_are_malformed(&Ollama, &embeddings_request(), embed);
        let one = request("llm.embeddings", json!({"inputs": "one"}));
        let f = failure(&Ollama, &one, test_response(200, &[], embed));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }

    #[test]
    fn the_recorded_stream_folds_into_the_plain_reply() {
        let mut streamed = Ollama.stream_request(&chat_query(), &ctx(&Ollama)).unwrap();
        let mut body = streamed.json_body().unwrap();
        assert_eq!(body["stream"], true);
        body["stream"] = json!(false);
        streamed.body = Some(Body::Json(body));
        assert_eq!(
            streamed,
            Ollama.request(&chat_request(), &ctx(&Ollama)).unwrap()
        );
        assert_eq!(Ollama.framing(), Framing::Ndjson);
        assert!(Ollama.streams_chat().is_some());

        let body = stream_fixture(&Ollama);
        let reply = decode_whole(&Ollama, &chat_query(), body).unwrap();
        assert_eq!(reply.text, "The sky is blue.");
        assert_eq!(reply.model, "llama3.2");
        assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
        assert_eq!(reply.usage, TokenUsage::new(Some(26), Some(282)));
        assert_eq!(reply.id, None);
        // The last line without its newline is still read.
        assert_eq!(
            decode_whole(&Ollama, &chat_query(), body.trim_end()).unwrap(),
            reply
        );
        assert_cuts_fail(&Ollama, &chat_query(), body);
    }

    #[test]
    fn error_lines_and_bad_lines_in_a_stream() {
        let q = chat_query();
        let first = "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"The\",\"thinking\":\"sky?\"},\"done\":false}\n";
        let fail = |line: &str| {
            decode_in_pieces(&Ollama, &q, format!("{first}{line}\n").as_bytes(), 3).unwrap_err()
        };
        let f =
            fail(r#"{"error":"an error was encountered while running the model: unexpected EOF"}"#);
        assert_eq!((f.class, f.status), (FailureClass::Transient, Some(200)));
        assert!(
            f.message.starts_with("Ollama: an error was encountered"),
            "{}",
            f.message
        );
        let f = fail(
            r#"{"error":"request (351 tokens) exceeds the available context size (256 tokens), try increasing it"}"#,
        );
        assert_eq!(f.class, FailureClass::ContextLengthExceeded);
        for broken in [
            r#"{"model":"llama3.2","message":{"role""#,
            "{}",
            "[]",
            r#"{"done":true}"#,
        ] {
            assert_eq!(
                fail(broken).class,
                FailureClass::MalformedResponse,
                "{broken}"
            );
        }
        let f = Ollama.stream_error(&test_response(
            404,
            &[],
            r#"{"error":"model \"llama3.2\" not found, try pulling it first"}"#,
        ));
        assert_eq!(f.class, FailureClass::InvalidRequest);
    }
}
