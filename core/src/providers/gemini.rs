//! Google Gemini API: `llm.chat` (`:generateContent`) and `llm.embeddings`
//! (`:batchEmbedContents`).
//!
//! Its own wire format: the model is part of the path
//! (`/v1beta/models/{model}:generateContent`), the key goes in the
//! `x-goog-api-key` header, the conversation is `contents` with roles `user`
//! and `model`, the system prompt is `systemInstruction`, limits go in
//! `generationConfig`, and usage comes as camelCase `usageMetadata`
//! (thinking tokens apart from the answer's, added to the output here as
//! OpenAI counts them).
//!
//! Tools are `functionDeclarations` (their JSON Schema as
//! `parametersJsonSchema`), chosen with `toolConfig.functionCallingConfig`
//! (`AUTO`, `ANY` with `allowedFunctionNames` for one tool, `NONE`); calls
//! are `functionCall` parts, answered by `functionResponse` parts naming
//! the tool. Gemini may give a call no id: it then gets one from its
//! position (`call_0`, …), and its result is sent back by the tool's name,
//! in the order of the calls. An answer calling tools has finish reason
//! `tool_calls` (Gemini says `STOP`).
//!
//! Errors are Google RPC statuses `{"error":{"code","message","status","details"}}`:
//! `RESOURCE_EXHAUSTED` (429) is a daily quota when its `QuotaFailure` names
//! a per-day quota (the free tier's requests per day, reset at midnight
//! Pacific time) and otherwise a rate limit whose wait is `RetryInfo.retryDelay`;
//! an invalid key is a 400 `INVALID_ARGUMENT` with reason `API_KEY_INVALID`
//! (auth, not a bad request); "exceeds the maximum number of tokens" is a
//! context-length error; `FAILED_PRECONDITION` (free tier not available in
//! the caller's region, billing required) cannot be fixed by retrying and is
//! treated like a refused key.
//!
//! Content refusals come as 200s: a prompt blocked by the safety filters has
//! no candidates and a `promptFeedback.blockReason`; an answer withheld has a
//! candidate without text whose `finishReason` is `SAFETY`,
//! `PROHIBITED_CONTENT`, `BLOCKLIST`, `SPII` or `IMAGE_SAFETY`. Both are
//! [`FailureClass::ContentFiltered`], naming the blocked categories. An
//! answer cut short by those filters keeps its text, with finish reason
//! `content_filter`, as does `RECITATION` (the answer too close to a source,
//! not a refusal of the request).

use std::time::Duration;

use chrono::{DateTime, Days, TimeZone, Utc};
use chrono_tz::America::Los_Angeles;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::clip;
use crate::capability::llm::{
    is_context_overflow, pick_model, ChatDelta, ChatMeta, ChatQuery, ChatReply, EmbeddingPurpose,
    EmbeddingUsage, Embeddings, EmbeddingsQuery, FinishReason, Role, TokenUsage, ToolCall,
    ToolCallDelta, ToolChoice,
};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, Frame, Framing, HttpRequest, HttpResponse, KeyPlacement, Provider,
    ProviderInfo, Serves, Step, StreamsChat,
};

/// Google Gemini API (<https://ai.google.dev>): Gemini chat and embedding
/// models, with a free tier.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gemini;

static INFO: ProviderInfo = ProviderInfo {
    id: "gemini",
    name: "Google Gemini",
    auth: Auth::Key {
        env: "GEMINI_API_KEY",
        placement: KeyPlacement::Header {
            name: "x-goog-api-key",
            prefix: "",
        },
        optional: false,
    },
    base_url: "https://generativelanguage.googleapis.com",
    docs_url: "https://ai.google.dev/api/generate-content",
    terms: "Free tier limited per Google Cloud project and model (requests per minute and \
            per day, shown in AI Studio; the daily count resets at midnight Pacific time); \
            free-tier prompts may be used to improve Google's products.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

/// Models used when the request names none.
const CHAT_MODEL: &str = "gemini-2.5-flash";
const EMBEDDING_MODEL: &str = "gemini-embedding-001";

impl Provider for Gemini {
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

crate::serves!(Gemini: LlmChat, LlmEmbeddings);

impl Serves<marker::LlmChat> for Gemini {
    fn build_request(
        &self,
        q: &ChatQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let model = model_id(pick_model(q.model.as_deref(), CHAT_MODEL, &[], INFO.id)?)?;
        let mut body = Map::new();
        body.insert("contents".into(), Value::Array(contents(q)));
        if !q.tools.is_empty() {
            let declarations: Vec<Value> = q
                .tools
                .iter()
                .map(|t| {
                    let mut declaration =
                        json!({"name": t.name, "parametersJsonSchema": t.parameters.to_value()});
                    if let Some(description) = &t.description {
                        declaration["description"] = json!(description);
                    }
                    declaration
                })
                .collect();
            body.insert(
                "tools".into(),
                json!([{"functionDeclarations": declarations}]),
            );
        }
        if let Some(choice) = &q.tool_choice {
            let config = match choice {
                ToolChoice::Auto => json!({"mode": "AUTO"}),
                ToolChoice::None => json!({"mode": "NONE"}),
                ToolChoice::Required => json!({"mode": "ANY"}),
                ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
            };
            body.insert(
                "toolConfig".into(),
                json!({"functionCallingConfig": config}),
            );
        }
        if let Some(system) = q.system_prompt() {
            body.insert(
                "systemInstruction".into(),
                json!({"parts": [{"text": system}]}),
            );
        }
        let mut config = Map::new();
        if let Some(t) = q.temperature {
            config.insert("temperature".into(), json!(t.get()));
        }
        if let Some(n) = q.max_tokens {
            config.insert("maxOutputTokens".into(), json!(n));
        }
        // JSON mode, held to the schema when there is one: the JSON Schema
        // itself as `responseJsonSchema` (rather than the OpenAPI subset of
        // `responseSchema`).
        if let Some(format) = &q.response_format {
            config.insert("responseMimeType".into(), json!("application/json"));
            if let Some(schema) = format.schema() {
                config.insert("responseJsonSchema".into(), schema.to_value());
            }
        }
        if !config.is_empty() {
            body.insert("generationConfig".into(), Value::Object(config));
        }
        Ok(HttpRequest::post_json(
            ctx.base_url,
            &format!("/v1beta/models/{model}:generateContent"),
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

/// Streams from `:streamGenerateContent?alt=sse`: server-sent events whose
/// data are whole `GenerateContentResponse`s, each with the next parts of
/// the answer and the usage so far; the last has the finish reason (there
/// is no end marker).
impl StreamsChat for Gemini {
    fn stream_request(
        &self,
        q: &ChatQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let mut request = <Self as Serves<marker::LlmChat>>::build_request(self, q, ctx)?;
        if let Some(model) = request.url.strip_suffix(":generateContent") {
            request.url = format!("{model}:streamGenerateContent");
        }
        Ok(request.query("alt", "sse"))
    }

    fn framing(&self) -> Framing {
        Framing::Sse
    }

    fn stream_error(&self, response: &HttpResponse) -> ProviderFailure {
        classify(response)
    }

    fn decode_frame(
        &self,
        q: &ChatQuery,
        frame: &Frame,
        out: &mut Vec<ChatDelta>,
    ) -> Result<(), ProviderFailure> {
        let chunk: StreamChunk = frame.json()?;
        if let Some(error) = chunk.error {
            return Err(rpc_failure(&error, error.code.unwrap_or(500)).status(200));
        }
        let reply = chunk.reply;
        let mut meta = ChatMeta {
            id: reply.response_id,
            model: Some(
                reply
                    .model_version
                    .unwrap_or_else(|| q.model.clone().unwrap_or_else(|| CHAT_MODEL.to_string())),
            ),
            finish_reason: None,
            usage: reply.usage_metadata.map(token_usage),
        };
        let Some(candidate) = reply.candidates.into_iter().next() else {
            if let Some(blocked) = prompt_blocked(reply.prompt_feedback) {
                return Err(blocked.status(200));
            }
            // Usage alone, between parts.
            out.push(ChatDelta::Meta(meta));
            return Ok(());
        };
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            if let Some(call) = part.function_call {
                // Whole calls; ids Gemini does not give are made by the
                // accumulator from the call's place in the whole answer.
                let name = call.name.filter(|n| !n.is_empty()).ok_or_else(|| {
                    ProviderFailure::malformed("Gemini streamed a functionCall without its name")
                        .status(200)
                })?;
                out.push(ChatDelta::ToolCall(ToolCallDelta {
                    index: None,
                    id: call.id.filter(|id| !id.is_empty()),
                    name: Some(name),
                    arguments: call.args.map_or_else(|| "{}".into(), |a| a.to_string()),
                }));
                continue;
            }
            match part.text.filter(|t| !t.is_empty()) {
                Some(text) if part.thought => out.push(ChatDelta::Reasoning(text)),
                Some(text) => out.push(ChatDelta::Text(text)),
                None => {}
            }
        }
        meta.finish_reason = candidate.finish_reason.as_deref().map(finish_reason);
        if meta.finish_reason == Some(FinishReason::Error) {
            return Err(ProviderFailure::new(FailureClass::Transient, MALFORMED_CALL).status(200));
        }
        let ended = meta.finish_reason.is_some();
        out.push(ChatDelta::Meta(meta));
        if ended {
            // A refusal without text is told apart by the accumulator
            // (finish reason `content_filter`, nothing answered).
            out.push(ChatDelta::End);
        }
        Ok(())
    }

    fn stream_fixtures(&self) -> &'static [Fixture] {
        STREAM_FIXTURES
    }
}

impl Serves<marker::LlmEmbeddings> for Gemini {
    fn build_request(
        &self,
        q: &EmbeddingsQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let model = model_id(pick_model(
            q.model.as_deref(),
            EMBEDDING_MODEL,
            &[],
            INFO.id,
        )?)?;
        let task = match q.purpose {
            EmbeddingPurpose::Document => "RETRIEVAL_DOCUMENT",
            EmbeddingPurpose::Query => "RETRIEVAL_QUERY",
        };
        let requests: Vec<Value> = q
            .inputs
            .iter()
            .map(|text| {
                json!({
                    "model": format!("models/{model}"),
                    "content": {"parts": [{"text": text}]},
                    "taskType": task,
                })
            })
            .collect();
        Ok(HttpRequest::post_json(
            ctx.base_url,
            &format!("/v1beta/models/{model}:batchEmbedContents"),
            json!({ "requests": requests }),
        ))
    }

    fn read_response(
        &self,
        q: &EmbeddingsQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Embeddings>, ProviderFailure> {
        check_status(&response)?;
        let reply: EmbedReply = response.json()?;
        let model = q.model.as_deref().unwrap_or(EMBEDDING_MODEL);
        let model = model.strip_prefix("models/").unwrap_or(model).to_string();
        let vectors = reply.embeddings.into_iter().map(|e| e.values).collect();
        Embeddings::new(
            INFO.id,
            model,
            vectors,
            q.inputs.len(),
            EmbeddingUsage { input_tokens: None },
        )
        .map(Step::Done)
        .map_err(|f| f.at_field("embeddings[].values").status(response.status))
    }
}

/// The model as a path segment: `models/` dropped, and only characters
/// Gemini model ids use, so that a name cannot change the path.
fn model_id(model: &str) -> Result<&str, ProviderFailure> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    if !model.is_empty()
        && model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        Ok(model)
    } else {
        Err(ProviderFailure::unsupported(format!("{model:?} is not a Gemini model id")).not_sent())
    }
}

/// The conversation after the system prompt as `contents`: the model's
/// calls as `functionCall` parts after its text, and the results of one
/// turn's calls as `functionResponse` parts of one user turn (a user
/// message right after them joins it), each naming its tool. A result
/// that is a JSON object is sent as it is, any other as `{"output": …}`.
fn contents(q: &ChatQuery) -> Vec<Value> {
    let mut contents: Vec<Value> = Vec::new();
    for m in q.turns() {
        let (role, parts) = match m.role {
            Role::Assistant => {
                let text = (!m.content.trim().is_empty() || m.tool_calls.is_empty())
                    .then(|| json!({"text": m.content}));
                let calls = m.tool_calls.iter().map(
                    |c| json!({"functionCall": {"name": c.name, "args": c.arguments_object()}}),
                );
                ("model", text.into_iter().chain(calls).collect::<Vec<_>>())
            }
            Role::Tool => {
                let response = match serde_json::from_str::<Value>(&m.content) {
                    Ok(object @ Value::Object(_)) => object,
                    Ok(other) => json!({"output": other}),
                    Err(_) => json!({"output": m.content}),
                };
                let name = q.tool_name(m).unwrap_or_default();
                (
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                )
            }
            Role::User | Role::System => ("user", vec![json!({"text": m.content})]),
        };
        let joins = contents.last().is_some_and(|last: &Value| {
            role == "user"
                && last["role"] == "user"
                && last["parts"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p.get("functionResponse").is_some()))
        });
        match contents.last_mut().and_then(|l| l["parts"].as_array_mut()) {
            Some(earlier) if joins => earlier.extend(parts),
            _ => contents.push(json!({"role": role, "parts": parts})),
        }
    }
    contents
}

/// A `functionCall` part as a call; its id, when Gemini gives none, is
/// made from `position`, the call's place in the answer.
fn tool_call(call: FunctionCall, position: usize) -> Result<ToolCall, ProviderFailure> {
    let Some(name) = call.name.filter(|n| !n.is_empty()) else {
        return Err(ProviderFailure::malformed(
            "Gemini answered a functionCall without its name (`candidates[0].content.parts[].functionCall.name`)",
        ));
    };
    Ok(ToolCall {
        id: call
            .id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| ToolCall::id_for(position)),
        name,
        arguments: call.args.map_or_else(|| "{}".into(), |a| a.to_string()),
    })
}

fn chat_reply(q: &ChatQuery, response: &HttpResponse) -> Result<ChatReply, ProviderFailure> {
    let reply: GenerateReply = response.json()?;
    let tokens = token_usage(reply.usage_metadata.unwrap_or_default());
    let model = reply
        .model_version
        .unwrap_or_else(|| q.model.clone().unwrap_or_else(|| CHAT_MODEL.to_string()));
    let Some(candidate) = reply.candidates.into_iter().next() else {
        // No candidate at all: the prompt itself was blocked.
        return Err(match prompt_blocked(reply.prompt_feedback) {
            Some(blocked) => blocked
                .status(response.status)
                .retry_after(response.retry_after()),
            None => ProviderFailure::malformed("Gemini answered without candidates")
                .status(response.status),
        });
    };
    let refusal = matches!(
        candidate.finish_reason.as_deref(),
        Some("SAFETY" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY")
    );
    let finish_reason = candidate.finish_reason.as_deref().map(finish_reason);
    if finish_reason == Some(FinishReason::Error) {
        return Err(response.failure(FailureClass::Transient, MALFORMED_CALL));
    }
    let (mut text, mut reasoning) = (None::<String>, String::new());
    let mut tool_calls = Vec::new();
    for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
        if let Some(call) = part.function_call {
            let call = tool_call(call, tool_calls.len()).map_err(|f| f.status(response.status))?;
            tool_calls.push(call);
            continue;
        }
        let Some(part_text) = part.text else { continue };
        if part.thought {
            reasoning.push_str(&part_text);
        } else {
            text.get_or_insert_default().push_str(&part_text);
        }
    }
    // No text part at all, neither refused, filtered (RECITATION) nor cut
    // short: nothing to answer with.
    let text = match text {
        Some(text) => text,
        None if refusal
            || !tool_calls.is_empty()
            || matches!(
                finish_reason,
                Some(FinishReason::Length | FinishReason::ContentFilter)
            ) =>
        {
            String::new()
        }
        None => {
            return Err(ProviderFailure::malformed(
                "Gemini answered without text or a call (`candidates[0].content.parts[].text`, `candidates[0].content.parts[].functionCall`)",
            )
            .status(response.status))
        }
    };
    if refusal && text.is_empty() {
        return Err(response.failure(
            FailureClass::ContentFiltered,
            format!(
                "Gemini withheld the answer ({}{})",
                candidate.finish_reason.as_deref().unwrap_or_default(),
                blocked_categories(&candidate.safety_ratings)
            ),
        ));
    }
    let finish_reason = match finish_reason {
        Some(FinishReason::Stop) if !tool_calls.is_empty() => Some(FinishReason::ToolCalls),
        other => other,
    };
    Ok(ChatReply {
        id: reply.response_id,
        model,
        text,
        tool_calls,
        reasoning: (!reasoning.is_empty()).then_some(reasoning),
        finish_reason,
        usage: tokens,
        parsed: None,
    })
}

/// The failure of a generation that went wrong.
const MALFORMED_CALL: &str = "Gemini: generation failed (MALFORMED_FUNCTION_CALL)";

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        // Refusals, and an answer too close to a source.
        "SAFETY" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" | "RECITATION" => {
            FinishReason::ContentFilter
        }
        "MALFORMED_FUNCTION_CALL" => FinishReason::Error,
        _ => FinishReason::Other,
    }
}

/// The token counts of `usageMetadata` (running totals in a stream).
fn token_usage(usage: UsageMetadata) -> TokenUsage {
    // Output counts the thoughts. A reply without `thoughtsTokenCount` had
    // none only if its total says so.
    let thoughts = usage.thoughts_token_count.or_else(|| {
        let counted = usage
            .prompt_token_count?
            .checked_add(usage.candidates_token_count?)?;
        (Some(counted) == usage.total_token_count).then_some(0)
    });
    let mut tokens = TokenUsage::new(
        usage.prompt_token_count,
        usage
            .candidates_token_count
            .zip(thoughts)
            .and_then(|(answer, thoughts)| answer.checked_add(thoughts)),
    );
    tokens.total_tokens = usage.total_token_count.or(tokens.total_tokens);
    tokens.cached_input_tokens = usage.cached_content_token_count;
    tokens.reasoning_tokens = usage.thoughts_token_count;
    tokens
}

/// A prompt the safety filters blocked (no candidates, a `blockReason`).
fn prompt_blocked(feedback: Option<PromptFeedback>) -> Option<ProviderFailure> {
    let PromptFeedback {
        block_reason: Some(block_reason),
        safety_ratings,
    } = feedback?
    else {
        return None;
    };
    Some(ProviderFailure::new(
        FailureClass::ContentFiltered,
        format!(
            "Gemini blocked the prompt ({block_reason}{})",
            blocked_categories(&safety_ratings)
        ),
    ))
}

/// `": HARM_CATEGORY_HARASSMENT, …"` for the ratings marked `blocked`, or
/// else rated `HIGH` or `MEDIUM`; empty when none is.
fn blocked_categories(ratings: &[SafetyRating]) -> String {
    let pick = |keep: &dyn Fn(&SafetyRating) -> bool| -> Vec<&str> {
        ratings
            .iter()
            .filter(|r| keep(r))
            .filter_map(|r| r.category.as_deref())
            .collect()
    };
    let mut categories = pick(&|r| r.blocked);
    if categories.is_empty() {
        categories = pick(&|r| matches!(r.probability.as_deref(), Some("HIGH" | "MEDIUM")));
    }
    if categories.is_empty() {
        String::new()
    } else {
        format!(": {}", categories.join(", "))
    }
}

/// A non-2xx response as its classified failure.
fn check_status(response: &HttpResponse) -> Result<(), ProviderFailure> {
    if response.is_success() {
        Ok(())
    } else {
        Err(classify(response))
    }
}

/// Classifies a Google RPC error.
fn classify(response: &HttpResponse) -> ProviderFailure {
    let error = response.json::<ErrorBody>().ok().map(|b| b.error);
    let Some(error) = error else {
        let class = response.status_class().unwrap_or(FailureClass::Transient);
        return response.failure(class, response.body_excerpt());
    };
    let mut failure = rpc_failure(&error, response.status).status(response.status);
    failure.retry_after = failure.retry_after.or(response.retry_after());
    if failure.class == FailureClass::QuotaExhausted {
        failure = failure.reset_at(next_pacific_midnight(response.received_at));
    }
    failure
}

/// Classifies a Google RPC error of HTTP `status` (its `code`, in a
/// stream); a daily quota is [`FailureClass::QuotaExhausted`] (the caller
/// adds when it resets).
fn rpc_failure(error: &RpcError, status: u16) -> ProviderFailure {
    let message = format!("Gemini: {}", clip(&error.message));
    let reason_is = |prefix: &str| {
        error
            .details
            .iter()
            .any(|d| d.reason.as_deref().is_some_and(|r| r.starts_with(prefix)))
    };
    if error.status == "RESOURCE_EXHAUSTED" || status == 429 {
        let daily = error.details.iter().flat_map(|d| &d.violations).any(|v| {
            v.quota_id
                .as_deref()
                .is_some_and(|id| id.contains("PerDay"))
        });
        if daily {
            return ProviderFailure::new(FailureClass::QuotaExhausted, message);
        }
        let delay = error
            .details
            .iter()
            .find_map(|d| d.retry_delay.as_deref().and_then(parse_delay));
        return ProviderFailure::new(FailureClass::RateLimited, message).retry_after(delay);
    }
    let class = match error.status.as_str() {
        _ if reason_is("API_KEY_") => FailureClass::Auth,
        "UNAUTHENTICATED" | "PERMISSION_DENIED" | "FAILED_PRECONDITION" => FailureClass::Auth,
        _ if is_context_overflow(&error.message) => FailureClass::ContextLengthExceeded,
        "INTERNAL" | "UNAVAILABLE" | "DEADLINE_EXCEEDED" => FailureClass::Transient,
        _ => match status {
            401 | 403 => FailureClass::Auth,
            408 | 500..=599 => FailureClass::Transient,
            // Including 404 (an unknown model) and 402 (Google signals quota
            // as RESOURCE_EXHAUSTED, handled above): the request's fault.
            _ => FailureClass::InvalidRequest,
        },
    };
    ProviderFailure::new(class, message)
}

/// A protobuf duration as JSON: `"37s"`, `"0.25s"`.
fn parse_delay(text: &str) -> Option<Duration> {
    let seconds: f64 = text.strip_suffix('s')?.parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// When the free tier's daily counters reset: the next midnight in
/// California.
fn next_pacific_midnight(now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tomorrow = now
        .with_timezone(&Los_Angeles)
        .date_naive()
        .checked_add_days(Days::new(1))?;
    Los_Angeles
        .from_local_datetime(&tomorrow.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
}

#[derive(Deserialize)]
struct ErrorBody {
    error: RpcError,
}

#[derive(Deserialize)]
struct RpcError {
    /// The HTTP status it stands for.
    code: Option<u16>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<RpcDetail>,
}

/// One entry of `details`: `ErrorInfo` (`reason`), `QuotaFailure`
/// (`violations`) or `RetryInfo` (`retryDelay`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RpcDetail {
    reason: Option<String>,
    #[serde(default)]
    violations: Vec<QuotaViolation>,
    retry_delay: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QuotaViolation {
    quota_id: Option<String>,
}

/// One event of a stream: a `GenerateContentResponse`, or an error.
#[derive(Deserialize)]
struct StreamChunk {
    error: Option<RpcError>,
    #[serde(flatten)]
    reply: GenerateReply,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateReply {
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: Option<UsageMetadata>,
    model_version: Option<String>,
    response_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
    #[serde(default)]
    safety_ratings: Vec<SafetyRating>,
}

/// One category's verdict: `{"category","probability","blocked"}`.
#[derive(Deserialize)]
struct SafetyRating {
    category: Option<String>,
    probability: Option<String>,
    #[serde(default)]
    blocked: bool,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    function_call: Option<FunctionCall>,
}

#[derive(Deserialize)]
struct FunctionCall {
    id: Option<String>,
    name: Option<String>,
    /// The arguments, an object.
    args: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
    #[serde(default)]
    safety_ratings: Vec<SafetyRating>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    total_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
}

#[derive(Deserialize)]
struct EmbedReply {
    embeddings: Vec<EmbeddingValues>,
}

#[derive(Deserialize)]
struct EmbeddingValues {
    values: Vec<f32>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `gemini-2.5-flash` answering "What is the capital of France?" after
    // thinking.
    Fixture {
        method: "POST",
        path: "/v1beta/models/gemini-2.5-flash:generateContent",
        status: 200,
        body: include_str!("fixtures/gemini/generate.json"),
    },
    // Two inputs (vectors shortened from 3072 dimensions).
    Fixture {
        method: "POST",
        path: "/v1beta/models/gemini-embedding-001:batchEmbedContents",
        status: 200,
        body: include_str!("fixtures/gemini/embed.json"),
    },
];

static STREAM_FIXTURES: &[Fixture] = fixtures![
    // `gemini-2.5-flash` streaming "The capital of France is Paris." in
    // three events separated by CRLF, usage so far in each.
    Fixture {
        method: "POST",
        path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        status: 200,
        body: include_str!("fixtures/gemini/generate_stream.sse"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;
    use crate::provider::stream::testing::{
        assert_cuts_fail, decode_in_pieces, decode_whole, stream_fixture,
    };
    use crate::providers::openai_compat::testing::{
        chat_query, chat_request, class_of, embeddings_request, reply_of,
    };
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn generate() -> &'static str {
        fixture(&Gemini, "/v1beta/models/gemini-2.5-flash:generateContent")
    }

    fn embed() -> &'static str {
        fixture(
            &Gemini,
            "/v1beta/models/gemini-embedding-001:batchEmbedContents",
        )
    }

    #[test]
    fn calls_are_function_parts_and_results_one_user_turn_naming_each_tool() {
        use crate::providers::openai_compat::testing::tool_round_trip_request;
        let body = Gemini
            .request(&tool_round_trip_request(), &ctx(&Gemini))
            .unwrap()
            .json_body()
            .unwrap();
        assert_eq!(
            body["contents"],
            serde_json::json!([
                {"role": "user", "parts": [{"text": "Weather in Paris and Oslo?"}]},
                {"role": "model", "parts": [
                    {"text": "Checking both."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"output": "-2 C"}}},
                    {"functionResponse": {"name": "get_weather", "response": {"temperature_c": 14}}},
                    {"text": "And which is warmer?"},
                ]},
            ])
        );
        assert_eq!(
            body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["properties"]
                ["city"]["type"],
            "string"
        );
    }

    #[test]
    fn requests_are_exact_and_carry_no_key() {
        let req = Gemini.request(&chat_request(), &ctx(&Gemini)).unwrap();
        assert_eq!(req.method, Method::POST);
        assert_eq!(
            req.url,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert!(req.query.is_empty() && req.headers.is_empty());
        assert_eq!(
            req.json_body().unwrap(),
            json!({
                "contents": [{"role": "user", "parts": [{"text": "What is the capital of France?"}]}],
                "systemInstruction": {"parts": [{"text": "Answer in one sentence."}]},
                "generationConfig": {"temperature": 0.2, "maxOutputTokens": 64},
            })
        );
        assert_eq!(
            INFO.auth,
            Auth::Key {
                env: "GEMINI_API_KEY",
                placement: KeyPlacement::Header {
                    name: "x-goog-api-key",
                    prefix: ""
                },
                optional: false,
            }
        );

        let turns = request(
            "llm.chat",
            json!({"messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Capital of France?"},
            ], "model": "models/gemini-2.5-pro"}),
        );
        let req = Gemini.request(&turns, &ctx(&Gemini)).unwrap();
        assert!(req
            .url
            .ends_with("/v1beta/models/gemini-2.5-pro:generateContent"));
        let body = req.json_body().unwrap();
        assert_eq!(body["contents"][1]["role"], "model");
        assert!(body.get("systemInstruction").is_none() && body.get("generationConfig").is_none());

        let req = Gemini
            .request(&embeddings_request(), &ctx(&Gemini))
            .unwrap();
        assert_eq!(
            req.url,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"
        );
        assert_eq!(
            req.json_body().unwrap()["requests"][1],
            json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "Paris is in France."}]}, "taskType": "RETRIEVAL_DOCUMENT"})
        );
    }

    #[test]
    fn a_model_name_cannot_change_the_path() {
        for model in ["../files", "gemini?x=1", "a/b"] {
            let r = request(
                "llm.chat",
                json!({"messages": [{"role": "user", "content": "Hi"}], "model": model}),
            );
            let f = Gemini.request(&r, &ctx(&Gemini)).unwrap_err();
            assert_eq!(f.class, FailureClass::Unsupported, "{model}");
        }
    }

    #[test]
    fn fixtures_normalise_with_thinking_tokens_in_the_output() {
        let reply = reply_of(&Gemini, generate());
        assert_eq!(reply.id.as_deref(), Some("EXdxaoKrC62fz7IPi9XBwQM"));
        assert_eq!(reply.model, "gemini-2.5-flash");
        assert_eq!(reply.text, "The capital of France is Paris.");
        assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
        assert_eq!(reply.usage.input_tokens, Some(14));
        assert_eq!(
            reply.usage.output_tokens,
            Some(37),
            "8 answer + 29 thinking"
        );
        assert_eq!(reply.usage.total_tokens, Some(51));
        assert_eq!(reply.usage.reasoning_tokens, Some(29));
        assert_eq!(reply.usage.cached_input_tokens, None);
        // A model that does not think leaves `thoughtsTokenCount` out; its
        // total shows there were none.
        let unthinking = generate()
            .replace(",\"thoughtsTokenCount\":29", "")
            .replace("\"totalTokenCount\":51", "\"totalTokenCount\":22");
        assert_eq!(reply_of(&Gemini, &unthinking).usage.output_tokens, Some(8));

        let Data::LlmEmbeddings(e) = answer(
            &Gemini,
            &embeddings_request(),
            test_response(200, &[], embed()),
        ) else {
            panic!("wrong data")
        };
        assert_eq!(
            (e.model.as_str(), e.dimensions),
            ("gemini-embedding-001", 5)
        );
        assert_eq!(e.vectors[1][4], 0.0016707245);
        assert_eq!(e.usage.input_tokens, None);
    }

    #[test]
    fn thoughts_and_finish_reasons() {
        let body = r#"{"candidates":[{"content":{"parts":[{"text":"France... capital.","thought":true},{"text":"Paris."}],"role":"model"},"finishReason":"MAX_TOKENS"}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":2,"totalTokenCount":7,"cachedContentTokenCount":4}}"#;
        let reply = reply_of(&Gemini, body);
        assert_eq!(reply.text, "Paris.");
        assert_eq!(reply.reasoning.as_deref(), Some("France... capital."));
        assert_eq!(reply.finish_reason, Some(FinishReason::Length));
        assert_eq!(reply.usage.cached_input_tokens, Some(4));
        assert_eq!(
            reply.model, "gemini-2.5-flash",
            "the requested model when unreported"
        );

        let body = generate().replace("\"STOP\"", "\"RECITATION\"");
        assert_eq!(
            reply_of(&Gemini, &body).finish_reason,
            Some(FinishReason::ContentFilter)
        );
        let body = generate().replace("\"STOP\"", "\"MALFORMED_FUNCTION_CALL\"");
        assert_eq!(
            class_of(&Gemini, 200, &[], &body).class,
            FailureClass::Transient
        );
    }

    #[test]
    fn blocked_prompts_and_withheld_answers_are_content_filtered() {
        // ai.google.dev/api/generate-content: `promptFeedback.blockReason`
        // "If set, the prompt was blocked and no candidates are returned";
        // `Candidate.finishReason` SAFETY, BLOCKLIST, PROHIBITED_CONTENT,
        // SPII: "the response was flagged" (content empty when blocked).
        let blocked = r#"{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[{"category":"HARM_CATEGORY_HARASSMENT","probability":"NEGLIGIBLE"},{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH"}]},"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9},"modelVersion":"gemini-2.5-flash"}"#;
        let f = class_of(&Gemini, 200, &[], blocked);
        assert_eq!(f.class, FailureClass::ContentFiltered);
        assert_eq!(f.status, Some(200));
        assert_eq!(
            f.message,
            "Gemini blocked the prompt (SAFETY: HARM_CATEGORY_DANGEROUS_CONTENT)"
        );
        let other = r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":12559,"totalTokenCount":12559},"modelVersion":"gemini-1.5-flash-002"}"#;
        assert_eq!(
            class_of(&Gemini, 200, &[], other).message,
            "Gemini blocked the prompt (PROHIBITED_CONTENT)"
        );

        for reason in ["SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"] {
            let withheld = format!(
                r#"{{"candidates":[{{"finishReason":"{reason}","index":0,"safetyRatings":[{{"category":"HARM_CATEGORY_SEXUALLY_EXPLICIT","probability":"MEDIUM","blocked":true}},{{"category":"HARM_CATEGORY_HATE_SPEECH","probability":"HIGH"}}]}}],"usageMetadata":{{"promptTokenCount":8,"totalTokenCount":8}}}}"#
            );
            let f = class_of(&Gemini, 200, &[], &withheld);
            assert_eq!(f.class, FailureClass::ContentFiltered, "{reason}");
            assert_eq!(
                f.message,
                format!("Gemini withheld the answer ({reason}: HARM_CATEGORY_SEXUALLY_EXPLICIT)"),
                "the blocked category, not every high one"
            );
        }
        // Text cut short by the filter is still an answer; RECITATION is
        // not a refusal of the request.
        let cut = generate().replace("\"STOP\"", "\"SAFETY\"");
        let reply = reply_of(&Gemini, &cut);
        assert_eq!(
            (reply.text.as_str(), reply.finish_reason),
            (
                "The capital of France is Paris.",
                Some(FinishReason::ContentFilter)
            )
        );
        let recited = r#"{"candidates":[{"finishReason":"RECITATION","index":0}]}"#;
        assert_eq!(
            reply_of(&Gemini, recited).finish_reason,
            Some(FinishReason::ContentFilter)
        );
    }

    #[test]
    fn a_daily_quota_is_benched_until_midnight_pacific_and_a_minute_limit_waits() {
        let body = |quota_id: &str, delay: &str| {
            json!({"error": {"code": 429, "message": "You exceeded your current quota, please check your plan and billing details.", "status": "RESOURCE_EXHAUSTED", "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": quota_id, "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"}, "quotaValue": "20"}]},
                {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
            ]}})
            .to_string()
        };
        // Received 2025-01-15T14:05:00Z = 06:05 in Los Angeles (PST).
        let f = class_of(
            &Gemini,
            429,
            &[],
            &body(
                "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                "35100s",
            ),
        );
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        assert_eq!(f.reset_at, Some("2025-01-16T08:00:00Z".parse().unwrap()));

        let f = class_of(
            &Gemini,
            429,
            &[],
            &body(
                "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "37.5s",
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_millis(37_500)));
        assert!(
            f.message.starts_with("Gemini: You exceeded"),
            "{}",
            f.message
        );
    }

    #[test]
    fn error_statuses_are_classified() {
        let rpc = |code: u16, status: &str, message: &str, details: Value| {
            let body = json!({"error": {"code": code, "message": message, "status": status, "details": details}});
            class_of(&Gemini, code, &[], &body.to_string())
        };
        let invalid_key = rpc(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]),
        );
        assert_eq!(
            invalid_key.class,
            FailureClass::Auth,
            "a 400 that is a refused key"
        );
        for (code, status, message, class) in [
            (403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.", FailureClass::Auth),
            (400, "FAILED_PRECONDITION", "User location is not supported for the API use.", FailureClass::Auth),
            (400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", FailureClass::ContextLengthExceeded),
            (400, "INVALID_ARGUMENT", "Invalid value at 'generation_config.temperature'", FailureClass::InvalidRequest),
            (404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta", FailureClass::InvalidRequest),
            (500, "INTERNAL", "An internal error has occurred.", FailureClass::Transient),
            (503, "UNAVAILABLE", "The model is overloaded. Please try again later.", FailureClass::Transient),
            (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.", FailureClass::Transient),
        ] {
            assert_eq!(rpc(code, status, message, json!([])).class, class, "{status}: {message}");
        }
        let f = class_of(&Gemini, 429, &[("retry-after", "5")], "Too Many Requests");
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(5)));
        let f = class_of(&Gemini, 502, &[], "<html>Bad Gateway</html>");
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn an_unknown_rpc_status_is_classified_by_http_status() {
        for (code, class) in [
            (401, FailureClass::Auth),
            (403, FailureClass::Auth),
            (408, FailureClass::Transient),
            (502, FailureClass::Transient),
            (402, FailureClass::InvalidRequest),
            (410, FailureClass::InvalidRequest),
            (422, FailureClass::InvalidRequest),
        ] {
            let body =
                json!({"error": {"code": code, "message": "something", "status": "UNKNOWN"}});
            assert_eq!(
                class_of(&Gemini, code, &[], &body.to_string()).class,
                class,
                "HTTP {code}"
            );
        }
        // Without a Google error body only the status speaks.
        for (code, class) in [
            (401, FailureClass::Auth),
            (402, FailureClass::QuotaExhausted),
        ] {
            assert_eq!(
                class_of(&Gemini, code, &[], "<html>error</html>").class,
                class,
                "HTTP {code}"
            );
        }
    }

    #[test]
    fn malformed_bodies_never_panic() {
        assert_truncations_are_malformed(&Gemini, &chat_request(), generate());
        assert_truncations_are_malformed(&Gemini, &embeddings_request(), embed());
        let f = class_of(&Gemini, 200, &[], "{}");
        assert_eq!(f.class, FailureClass::MalformedResponse);
        let one = request("llm.embeddings", json!({"inputs": "one"}));
        let f = failure(&Gemini, &one, test_response(200, &[], embed()));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }

    #[test]
    fn the_streaming_request_asks_for_server_sent_events() {
        let plain = Gemini.request(&chat_request(), &ctx(&Gemini)).unwrap();
        let streamed = Gemini.stream_request(&chat_query(), &ctx(&Gemini)).unwrap();
        assert_eq!(
            streamed.url,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent"
        );
        assert_eq!(query(&streamed), [("alt", "sse")]);
        assert_eq!(streamed.body, plain.body);
        assert_eq!(Gemini.framing(), Framing::Sse);
        assert!(Gemini.streams_chat().is_some());
    }

    #[test]
    fn the_recorded_stream_folds_into_the_plain_reply() {
        let body = stream_fixture(&Gemini);
        assert!(body.contains("\r\n\r\n"), "Gemini ends its events in CRLF");
        let streamed = decode_whole(&Gemini, &chat_query(), body).unwrap();
        let plain = reply_of(&Gemini, generate());
        assert_eq!(streamed.text, plain.text);
        assert_eq!(streamed.usage, plain.usage, "the last running totals");
        assert_eq!(streamed.finish_reason, Some(FinishReason::Stop));
        assert_eq!(streamed.model, "gemini-2.5-flash");
        assert_eq!(streamed.id.as_deref(), Some("mHxxaNDpOKmVz7IP0Z6BqAs"));
        assert_cuts_fail(&Gemini, &chat_query(), body);
    }

    #[test]
    fn thoughts_refusals_and_errors_in_a_stream() {
        let q = chat_query();
        let event = |data: &str| format!("data: {data}\r\n\r\n");
        let thought = event(
            r#"{"candidates":[{"content":{"parts":[{"text":"Hmm.","thought":true}],"role":"model"},"index":0}]}"#,
        );
        let done = event(
            r#"{"candidates":[{"content":{"parts":[{"text":"Paris."}],"role":"model"},"finishReason":"MAX_TOKENS","index":0}]}"#,
        );
        let reply = decode_whole(&Gemini, &q, &(thought.clone() + &done)).unwrap();
        assert_eq!(
            (
                reply.text.as_str(),
                reply.reasoning.as_deref(),
                reply.finish_reason
            ),
            ("Paris.", Some("Hmm."), Some(FinishReason::Length))
        );
        assert_eq!(reply.model, "gemini-2.5-flash", "the model asked for");

        let fail = |data: &str| {
            decode_in_pieces(&Gemini, &q, (thought.clone() + &event(data)).as_bytes(), 5)
                .unwrap_err()
        };
        let f = fail(
            r#"{"candidates":[{"content":{"parts":[],"role":"model"},"finishReason":"SAFETY","index":0,"safetyRatings":[{"category":"HARM_CATEGORY_HARASSMENT","probability":"HIGH","blocked":true}]}]}"#,
        );
        assert_eq!(f.class, FailureClass::ContentFiltered);
        let f = fail(
            r#"{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[{"category":"HARM_CATEGORY_HARASSMENT","probability":"HIGH","blocked":true}]}}"#,
        );
        assert_eq!(f.class, FailureClass::ContentFiltered);
        assert!(
            f.message.contains("HARM_CATEGORY_HARASSMENT"),
            "{}",
            f.message
        );
        let f = fail(
            r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#,
        );
        assert_eq!((f.class, f.status), (FailureClass::Transient, Some(200)));
        let f = fail(
            r#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"7s"}]}}"#,
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(std::time::Duration::from_secs(7)));
        let f = fail(r#"{"candidates":[{"finishReason":"MALFORMED_FUNCTION_CALL","index":0}]}"#);
        assert_eq!(f.class, FailureClass::Transient);
        for broken in [
            r#"{"candidates":[{"content":{"parts":[{"text":"Par"#,
            "[]",
            r#"{"candidates":7}"#,
        ] {
            assert_eq!(
                fail(broken).class,
                FailureClass::MalformedResponse,
                "{broken}"
            );
        }
        let f = Gemini.stream_error(&test_response(
            503,
            &[],
            r#"{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}"#,
        ));
        assert_eq!((f.class, f.status), (FailureClass::Transient, Some(503)));
    }
}
