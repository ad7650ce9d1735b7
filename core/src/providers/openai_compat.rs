//! The OpenAI chat-completions and embeddings wire format, written once for
//! every provider that speaks it.
//!
//! Each such provider (OpenAI, Mistral, Groq, DeepSeek, OpenRouter, Together)
//! is one `static` in its own file: an `OpenAiCompatible` if it only chats,
//! an `OpenAiCompatible<EmbeddingsEndpoint>` if it also embeds, so what it
//! serves is in its type. It holds its [`ProviderInfo`], paths, default
//! models, model aliases and fixtures, plus the two ways providers differ in
//! meaning:
//!
//! * the name of the output limit: OpenAI's reasoning models refuse
//!   `max_tokens` and want `max_completion_tokens`;
//! * what HTTP 403 means: a refused key everywhere, but at OpenRouter the
//!   input was flagged by moderation (a content refusal).
//!
//! Everything else is understood here for all of them, since recognising one
//! provider's signal costs the others nothing:
//!
//! * leading blank keep-alive lines before the JSON (DeepSeek under load);
//! * 402 for exhausted credit (OpenRouter, DeepSeek) → quota exhausted;
//! * 429 with code `insufficient_quota` (OpenAI's exhausted billing) → quota
//!   exhausted; any other 429 → rate limited, with `Retry-After`/`retry-after-ms`;
//! * a context-window error in any wording (`context_length_exceeded`,
//!   Mistral's "too large for model with … maximum context length", …) →
//!   [`FailureClass::ContextLengthExceeded`];
//! * 404 (no such model here) → invalid request, so the next provider is
//!   tried without counting against this one;
//! * errors in a 200 body (OpenRouter, once the model has started) and
//!   `finish_reason: "error"` → classified by their code, never an answer;
//! * content refusals → [`FailureClass::ContentFiltered`], with the
//!   provider's reason: error code `content_policy_violation` (OpenAI) or
//!   `content_filter` / inner code `ResponsibleAIPolicyViolation` (Azure
//!   OpenAI and servers copying it), DeepSeek's 400 "Content Exists Risk",
//!   and a 200 whose choice has no content but `finish_reason:
//!   "content_filter"` or a `refusal` (an answer cut short by the filter
//!   keeps its text and finish reason `content_filter`);
//! * error bodies as `{"error": {…}}` (code a string or a number) or
//!   Mistral's flat `{"object": "error", "message": …}`;
//! * `reasoning_content` (DeepSeek) or `reasoning` (OpenRouter, Groq), and
//!   cached prompt tokens as `prompt_tokens_details.cached_tokens` or
//!   DeepSeek's `prompt_cache_hit_tokens`;
//! * tool calls: `tools` and `tool_choice` as OpenAI takes them, assistant
//!   `tool_calls` and `tool` messages with their `tool_call_id` in the
//!   conversation, `message.tool_calls` in the answer, and in a stream
//!   `delta.tool_calls` fragments (`index`, then `id` and name once,
//!   arguments in pieces);
//! * `response_format` as OpenAI takes it, where the provider honours it
//!   for the model ([`StructuredOutput`]); otherwise JSON mode with the
//!   schema told in a system instruction (the answer is checked against
//!   the schema either way). JSON mode needs the word "JSON" in the
//!   conversation at OpenAI, DeepSeek and Mistral, so the instruction is
//!   added whenever the conversation does not say it. OpenRouter is asked
//!   to route only to upstreams that take every parameter sent
//!   (`provider.require_parameters`), so none drops the format.
//!
//! None of these providers documents de-duplication of chat requests by an
//! idempotency header, so a sent request is never repeated: a failure falls
//! back to the next provider.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::Deserialize;
use serde_json::{json, Value};

use super::clip;
use crate::capability::llm::{
    is_context_overflow, pick_model, ChatDelta, ChatMessage, ChatMeta, ChatQuery, ChatReply,
    EmbeddingUsage, Embeddings, EmbeddingsQuery, FinishReason, JsonSchema, ResponseFormat, Role,
    TokenUsage, Tool, ToolCall, ToolCallDelta, ToolChoice,
};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::stream;
use crate::provider::{
    CallContext, Dispatch, Fixture, Frame, Framing, HttpRequest, HttpResponse, Provider,
    ProviderInfo, Serves, Step, StreamsChat,
};

/// A provider speaking the OpenAI chat-completions API and, when `E` is
/// [`EmbeddingsEndpoint`], its embeddings API. The built-in ones are statics
/// in their own files; an application can declare another (a vLLM or LM
/// Studio server, a gateway) the same way and add it to the client.
#[derive(Debug)]
pub struct OpenAiCompatible<E = NoEmbeddings> {
    /// What the provider declares about itself.
    pub info: &'static ProviderInfo,
    /// Path of chat completions relative to the base URL
    /// (`/v1/chat/completions`, Groq `/openai/v1/chat/completions`).
    pub chat_path: &'static str,
    /// Model used when the request names none.
    pub chat_model: &'static str,
    /// The embeddings endpoint ([`EmbeddingsEndpoint`]), or
    /// [`NoEmbeddings`] for a provider that only chats.
    pub embeddings: E,
    /// Body field of the output limit: `max_tokens`, or
    /// `max_completion_tokens` at OpenAI.
    pub max_tokens_field: &'static str,
    /// This provider's ids for the cross-provider
    /// [`MODEL_ALIASES`](crate::capability::llm::MODEL_ALIASES).
    pub model_aliases: &'static [(&'static str, &'static str)],
    /// What HTTP 403 means: [`FailureClass::Auth`], or
    /// [`FailureClass::ContentFiltered`] where it flags the input.
    pub forbidden: FailureClass,
    /// Canned replies in the provider's wire format.
    pub fixtures: &'static [Fixture],
    /// Whether a streaming request asks for usage with
    /// `stream_options.include_usage`. Mistral refuses the field (HTTP 422,
    /// "Extra inputs are not permitted") and, like Together, sends usage in
    /// its last chunk anyway.
    pub stream_usage_option: bool,
    /// A recorded stream in the provider's wire format
    /// ([`StreamsChat::stream_fixtures`]).
    pub stream_fixtures: &'static [Fixture],
    /// Which `response_format` the provider honours.
    pub structured_output: StructuredOutput,
    /// Whether the request asks the provider to route only to upstreams
    /// that take every parameter sent (OpenRouter's
    /// `provider.require_parameters`), when it carries a `response_format`:
    /// by default OpenRouter may route to one that ignores it.
    pub require_parameters: bool,
}

/// Which `response_format` an OpenAI-compatible provider honours.
#[derive(Debug, Clone, Copy)]
pub enum StructuredOutput {
    /// `json_schema` and `json_object`, whatever the model (OpenAI,
    /// Mistral, Together, OpenRouter).
    Schema,
    /// `json_schema` only on the models whose ids start with one of these
    /// (Groq's list); other models get JSON mode, the schema told in a
    /// system instruction.
    SchemaOn(&'static [&'static str]),
    /// JSON mode only (DeepSeek): a schema is told in a system instruction.
    ObjectOnly,
}

/// The `embeddings` of an [`OpenAiCompatible`] provider that only chats.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEmbeddings;

/// Where and with which default model a provider embeds.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddingsEndpoint {
    /// Path relative to the base URL (`/v1/embeddings`).
    pub path: &'static str,
    /// Model used when the request names none.
    pub model: &'static str,
}

impl<E: Send + Sync + 'static> Provider for OpenAiCompatible<E>
where
    Self: Dispatch,
{
    fn info(&self) -> &ProviderInfo {
        self.info
    }

    fn fixtures(&self) -> &'static [Fixture] {
        self.fixtures
    }

    fn streams_chat(&self) -> Option<&dyn StreamsChat> {
        Some(self)
    }
}

crate::serves!(OpenAiCompatible<NoEmbeddings>: LlmChat);
crate::serves!(OpenAiCompatible<EmbeddingsEndpoint>: LlmChat, LlmEmbeddings);

impl<E> Serves<marker::LlmChat> for OpenAiCompatible<E> {
    fn build_request(
        &self,
        q: &ChatQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        self.chat_request(q, ctx, false)
    }

    fn read_response(
        &self,
        q: &ChatQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<ChatReply>, ProviderFailure> {
        self.check_status(&response)?;
        self.chat_reply(q, &response).map(Step::Done)
    }
}

impl<E: Send + Sync> StreamsChat for OpenAiCompatible<E> {
    fn stream_request(
        &self,
        q: &ChatQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        self.chat_request(q, ctx, true)
    }

    fn framing(&self) -> Framing {
        Framing::Sse
    }

    fn stream_error(&self, response: &HttpResponse) -> ProviderFailure {
        stream::refusal(response, self.check_status(response))
    }

    fn decode_frame(
        &self,
        q: &ChatQuery,
        frame: &Frame,
        out: &mut Vec<ChatDelta>,
    ) -> Result<(), ProviderFailure> {
        if frame.data.trim() == "[DONE]" {
            out.push(ChatDelta::End);
            return Ok(());
        }
        let chunk: StreamChunk = frame.json()?;
        if let Some(error) = chunk.error {
            return Err(self.in_body_failure(&error, None));
        }
        let mut meta = ChatMeta {
            id: chunk.id,
            model: chunk.model,
            finish_reason: None,
            usage: chunk
                .usage
                .map(|usage| *usage)
                .or(chunk.x_groq.and_then(|x| x.usage))
                .map(token_usage),
        };
        if let Some(choice) = chunk.choices.into_iter().next() {
            let finish_reason = choice.finish_reason.as_deref().map(finish_reason);
            if finish_reason == Some(FinishReason::Error) || choice.error.is_some() {
                let error = choice.error.unwrap_or_default();
                return Err(self.in_body_failure(&error, None));
            }
            let delta = choice.delta.unwrap_or_default();
            if let Some(refusal) = delta.refusal.filter(|r| !r.is_empty()) {
                return Err(ProviderFailure::new(
                    FailureClass::ContentFiltered,
                    format!("{}: the model refused: {}", self.info.name, clip(&refusal)),
                )
                .status(200));
            }
            if let Some(reasoning) = delta
                .reasoning_content
                .or(delta.reasoning)
                .filter(|r| !r.is_empty())
            {
                out.push(ChatDelta::Reasoning(reasoning));
            }
            if let Some(text) = delta.content.map(Content::into_text) {
                if !text.is_empty() {
                    out.push(ChatDelta::Text(text));
                }
            }
            for (i, call) in delta.tool_calls.into_iter().enumerate() {
                let function = call.function.unwrap_or_default();
                out.push(ChatDelta::ToolCall(ToolCallDelta {
                    index: Some(call.index.unwrap_or(i)),
                    id: call.id.filter(|id| !id.is_empty()),
                    name: function.name.filter(|n| !n.is_empty()),
                    arguments: function.arguments.unwrap_or_default(),
                }));
            }
            meta.finish_reason = finish_reason;
        }
        if meta.model.is_none() {
            meta.model = pick_model(q.model.as_deref(), self.chat_model, self.model_aliases, "")
                .ok()
                .map(str::to_string);
        }
        out.push(ChatDelta::Meta(meta));
        Ok(())
    }

    fn stream_fixtures(&self) -> &'static [Fixture] {
        self.stream_fixtures
    }
}

impl<E> OpenAiCompatible<E> {
    /// The chat request for `q`, streaming or not.
    fn chat_request(
        &self,
        q: &ChatQuery,
        ctx: &CallContext<'_>,
        stream: bool,
    ) -> Result<HttpRequest, ProviderFailure> {
        let model = pick_model(
            q.model.as_deref(),
            self.chat_model,
            self.model_aliases,
            self.info.id,
        )?;
        let (format, instructed) = match &q.response_format {
            Some(format) => self.wire_format(format, model, q),
            None => (None, None),
        };
        let sent = instructed.as_ref().unwrap_or(q);
        let body = ChatBody {
            max_tokens: q.max_tokens.map(|n| (self.max_tokens_field, n)),
            messages: &sent.messages,
            model,
            require_parameters: self.require_parameters,
            response_format: format,
            stream,
            include_usage: stream && self.stream_usage_option,
            temperature: q.temperature.map(|t| t.get()),
            tool_choice: q.tool_choice.as_ref(),
            tools: &q.tools,
        };
        HttpRequest::post_serialized(ctx.base_url, self.chat_path, &body, body.size_hint())
    }
}

/// The body of a chat request, serialized straight from the query: no
/// `Value` tree built, serialized and dropped on every call (which cost
/// more than the rest of the request). Keys are written in sorted order,
/// as a `serde_json::Map` writes them, so the bytes sent are those a
/// `Value` body gave.
struct ChatBody<'a> {
    /// The output limit's field (sorting before `messages` for both names
    /// in use, `max_tokens` and `max_completion_tokens`) and value.
    max_tokens: Option<(&'static str, u32)>,
    messages: &'a [ChatMessage],
    model: &'a str,
    /// `provider.require_parameters`, sent with a `response_format`.
    require_parameters: bool,
    response_format: Option<Value>,
    stream: bool,
    /// `stream_options.include_usage`.
    include_usage: bool,
    temperature: Option<f64>,
    tool_choice: Option<&'a ToolChoice>,
    tools: &'a [Tool],
}

impl ChatBody<'_> {
    /// About the body's length, so that its buffer is rarely regrown.
    fn size_hint(&self) -> usize {
        let texts: usize = self.messages.iter().map(|m| m.content.len() + 48).sum();
        let schemas: usize = self
            .tools
            .iter()
            .map(|t| t.parameters.as_str().len() + 96)
            .sum();
        160 + texts + schemas
    }
}

impl Serialize for ChatBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut body = s.serialize_map(None)?;
        if let Some((field, n)) = self.max_tokens {
            body.serialize_entry(field, &n)?;
        }
        body.serialize_entry("messages", &WireMessages(self.messages))?;
        body.serialize_entry("model", self.model)?;
        if let Some(format) = &self.response_format {
            if self.require_parameters {
                body.serialize_entry("provider", &TrueFlag("require_parameters"))?;
            }
            body.serialize_entry("response_format", format)?;
        }
        body.serialize_entry("stream", &self.stream)?;
        if self.include_usage {
            body.serialize_entry("stream_options", &TrueFlag("include_usage"))?;
        }
        if let Some(t) = self.temperature {
            body.serialize_entry("temperature", &t)?;
        }
        if let Some(choice) = self.tool_choice {
            body.serialize_entry("tool_choice", &WireToolChoice(choice))?;
        }
        if !self.tools.is_empty() {
            body.serialize_entry("tools", &WireTools(self.tools))?;
        }
        body.end()
    }
}

/// `{"<name>": true}`.
struct TrueFlag(&'static str);

impl Serialize for TrueFlag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut flag = s.serialize_map(Some(1))?;
        flag.serialize_entry(self.0, &true)?;
        flag.end()
    }
}

impl<E> OpenAiCompatible<E> {
    /// The `response_format` sent for `format` to `model`, and the query
    /// with a system instruction added when the provider is told rather
    /// than asked (a schema it cannot take), or JSON mode needs the word
    /// "JSON" that the conversation does not say.
    fn wire_format(
        &self,
        format: &ResponseFormat,
        model: &str,
        q: &ChatQuery,
    ) -> (Option<Value>, Option<ChatQuery>) {
        let takes_schema = match self.structured_output {
            StructuredOutput::Schema => true,
            StructuredOutput::SchemaOn(prefixes) => prefixes.iter().any(|p| model.starts_with(p)),
            StructuredOutput::ObjectOnly => false,
        };
        if takes_schema && format.schema().is_some() {
            return (serde_json::to_value(format).ok(), None);
        }
        let says_json = q
            .messages
            .iter()
            .any(|m| m.content.to_ascii_lowercase().contains("json"));
        let told = format.schema().is_some() || !says_json;
        (
            Some(json!({"type": "json_object"})),
            told.then(|| q.with_instruction(format.instruction())),
        )
    }
}

impl Serves<marker::LlmEmbeddings> for OpenAiCompatible<EmbeddingsEndpoint> {
    fn build_request(
        &self,
        q: &EmbeddingsQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let endpoint = &self.embeddings;
        let model = pick_model(q.model.as_deref(), endpoint.model, &[], self.info.id)?;
        Ok(HttpRequest::post_json(
            ctx.base_url,
            endpoint.path,
            json!({"model": model, "input": q.inputs}),
        ))
    }

    fn read_response(
        &self,
        q: &EmbeddingsQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Embeddings>, ProviderFailure> {
        self.check_status(&response)?;
        let mut reply: EmbeddingList = response.json()?;
        reply.data.sort_by_key(|item| item.index);
        let vectors = reply.data.into_iter().map(|item| item.embedding).collect();
        let usage = EmbeddingUsage {
            input_tokens: reply.usage.and_then(|u| u.prompt_tokens),
        };
        let embeddings = Embeddings::new(self.info.id, reply.model, vectors, q.inputs.len(), usage)
            .map_err(|f| f.at_field("data[].embedding").status(response.status))?;
        Ok(Step::Done(embeddings))
    }
}

impl<E> OpenAiCompatible<E> {
    /// A non-2xx response as its classified failure.
    fn check_status(&self, response: &HttpResponse) -> Result<(), ProviderFailure> {
        if response.is_success() {
            return Ok(());
        }
        let error = response
            .json::<ErrorBody>()
            .ok()
            .and_then(ErrorBody::detail);
        Err(self.failure(response.status, error.as_ref(), response))
    }

    fn chat_reply(
        &self,
        q: &ChatQuery,
        response: &HttpResponse,
    ) -> Result<ChatReply, ProviderFailure> {
        let reply: Completion = response.json()?;
        if let Some(error) = reply.error {
            return Err(self.in_body_failure(&error, Some(response)));
        }
        let Some(choice) = reply.choices.into_iter().next() else {
            return Err(ProviderFailure::malformed(format!(
                "{} answered without choices",
                self.info.name
            ))
            .status(response.status));
        };
        let finish_reason = choice.finish_reason.as_deref().map(finish_reason);
        if finish_reason == Some(FinishReason::Error) || choice.error.is_some() {
            let error = choice.error.unwrap_or_default();
            return Err(self.in_body_failure(&error, Some(response)));
        }
        let message = choice.message.unwrap_or_default();
        let content = message.content.map(Content::into_text);
        let text = content.clone().unwrap_or_default();
        let tool_calls = read_tool_calls(
            message.tool_calls,
            self.info.name,
            "choices[0].message.tool_calls",
        )
        .map_err(|f| f.status(response.status))?;
        if text.is_empty() && tool_calls.is_empty() {
            // Nothing to answer with: the filter (or the model, for safety)
            // refused. Text cut short by the filter is still an answer.
            let refusal = message.refusal.filter(|r| !r.is_empty());
            if let Some(refusal) = refusal {
                return Err(response.failure(
                    FailureClass::ContentFiltered,
                    format!("{}: the model refused: {}", self.info.name, clip(&refusal)),
                ));
            }
            if finish_reason == Some(FinishReason::ContentFilter) {
                let categories = filtered_categories(choice.content_filter_results.as_ref());
                return Err(response.failure(
                    FailureClass::ContentFiltered,
                    format!(
                        "{}: the answer was withheld by the content filter{categories}",
                        self.info.name
                    ),
                ));
            }
            // No text at all (not even an empty one, which a length-capped
            // reasoning model may send): nothing to answer with.
            if content.is_none() {
                return Err(ProviderFailure::malformed(format!(
                    "{} answered without text or tool calls (`choices[0].message.content`, `choices[0].message.tool_calls`)",
                    self.info.name
                ))
                .status(response.status));
            }
        }
        let tokens = token_usage(reply.usage.unwrap_or_default());
        Ok(ChatReply {
            id: reply.id,
            model: match reply.model {
                Some(model) => model,
                None => pick_model(q.model.as_deref(), self.chat_model, self.model_aliases, "")
                    .map(str::to_string)
                    .unwrap_or_default(),
            },
            text,
            tool_calls,
            reasoning: message
                .reasoning_content
                .or(message.reasoning)
                .filter(|r| !r.is_empty()),
            finish_reason,
            usage: tokens,
            parsed: None,
        })
    }

    /// Classifies an error by its HTTP status and what its body says.
    fn failure(
        &self,
        status: u16,
        error: Option<&ErrorDetail>,
        response: &HttpResponse,
    ) -> ProviderFailure {
        let message = error.map_or_else(|| response.body_excerpt(), ErrorDetail::text);
        let class = self.error_class(status, error, &message);
        response.failure(class, format!("{}: {}", self.info.name, clip(&message)))
    }

    /// An error inside a 2xx body (OpenRouter once the model has started,
    /// a `finish_reason: "error"`, an error chunk of a stream), classified
    /// by its code; `response` adds its `Retry-After` when there is one.
    fn in_body_failure(
        &self,
        error: &ErrorDetail,
        response: Option<&HttpResponse>,
    ) -> ProviderFailure {
        let message = error.text();
        let class = self.error_class(error.status_code(), Some(error), &message);
        let message = format!("{}: {}", self.info.name, clip(&message));
        match response {
            Some(response) => response.failure(class, message),
            None => ProviderFailure::new(class, message).status(200),
        }
    }

    /// The class of an error of HTTP `status` (or the code standing for
    /// one) whose text is `message`.
    fn error_class(&self, status: u16, error: Option<&ErrorDetail>, message: &str) -> FailureClass {
        let code = error.map(ErrorDetail::code_text).unwrap_or_default();
        let refused = error.is_some_and(ErrorDetail::is_content_refusal);
        match status {
            429 if code == "insufficient_quota" => FailureClass::QuotaExhausted,
            429 => FailureClass::RateLimited,
            _ if refused => FailureClass::ContentFiltered,
            _ if code == "context_length_exceeded" || is_context_overflow(message) => {
                FailureClass::ContextLengthExceeded
            }
            402 => FailureClass::QuotaExhausted,
            401 => FailureClass::Auth,
            403 => self.forbidden,
            408 | 500..=599 => FailureClass::Transient,
            400..=499 => FailureClass::InvalidRequest,
            _ => FailureClass::Transient,
        }
    }
}

/// `tools` as OpenAI takes them (`{"type": "function", "function": {name,
/// description, parameters}}`), as Cohere and Ollama do too.
pub(crate) fn wire_tools(tools: &[Tool]) -> Value {
    // Cannot fail: every key is a string.
    serde_json::to_value(WireTools(tools)).unwrap_or_default()
}

/// An assistant's call as OpenAI takes it back, its arguments as text (as
/// Cohere does too).
pub(crate) fn wire_call(call: &ToolCall) -> Value {
    // Cannot fail: every key is a string.
    serde_json::to_value(WireCall(call)).unwrap_or_default()
}

/// The conversation as the family takes it ([`WireMessage`]).
struct WireMessages<'a>(&'a [ChatMessage]);

impl Serialize for WireMessages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(WireMessage))
    }
}

/// A conversation message as the family takes it: an assistant's calls
/// under `tool_calls` (its content `null` when it has no text), a tool
/// result with the `tool_call_id` it answers. Keys in sorted order (see
/// [`ChatBody`]).
struct WireMessage<'a>(&'a ChatMessage);

impl Serialize for WireMessage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut message = s.serialize_map(None)?;
        if m.content.is_empty() && !m.tool_calls.is_empty() {
            message.serialize_entry("content", &())?;
        } else {
            message.serialize_entry("content", &m.content)?;
        }
        message.serialize_entry("role", m.role.as_str())?;
        if m.role == Role::Tool {
            message.serialize_entry("tool_call_id", &m.tool_call_id)?;
        }
        if !m.tool_calls.is_empty() {
            message.serialize_entry("tool_calls", &WireCalls(&m.tool_calls))?;
        }
        message.end()
    }
}

struct WireCalls<'a>(&'a [ToolCall]);

impl Serialize for WireCalls<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(WireCall))
    }
}

/// `{"function": {"arguments", "name"}, "id", "type": "function"}`.
struct WireCall<'a>(&'a ToolCall);

impl Serialize for WireCall<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let call = self.0;
        let mut wire = s.serialize_map(Some(3))?;
        wire.serialize_entry(
            "function",
            &NamedFunction {
                arguments: Some(&call.arguments),
                description: None,
                name: &call.name,
                parameters: None,
            },
        )?;
        wire.serialize_entry("id", &call.id)?;
        wire.serialize_entry("type", "function")?;
        wire.end()
    }
}

/// A `function` object of a tool, a call or a tool choice, its keys
/// sorted; absent fields are left out.
struct NamedFunction<'a> {
    arguments: Option<&'a str>,
    description: Option<&'a str>,
    name: &'a str,
    parameters: Option<&'a JsonSchema>,
}

impl Serialize for NamedFunction<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut function = s.serialize_map(None)?;
        if let Some(arguments) = self.arguments {
            function.serialize_entry("arguments", arguments)?;
        }
        if let Some(description) = self.description {
            function.serialize_entry("description", description)?;
        }
        function.serialize_entry("name", self.name)?;
        if let Some(parameters) = self.parameters {
            function.serialize_entry("parameters", parameters)?;
        }
        function.end()
    }
}

/// `{"type": "function", "function": {…}}` around a [`NamedFunction`].
fn serialize_function<S: Serializer>(s: S, function: NamedFunction<'_>) -> Result<S::Ok, S::Error> {
    let mut wire = s.serialize_map(Some(2))?;
    wire.serialize_entry("function", &function)?;
    wire.serialize_entry("type", "function")?;
    wire.end()
}

struct WireTools<'a>(&'a [Tool]);

impl Serialize for WireTools<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(WireTool))
    }
}

struct WireTool<'a>(&'a Tool);

impl Serialize for WireTool<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let tool = self.0;
        serialize_function(
            s,
            NamedFunction {
                arguments: None,
                description: tool.description.as_deref(),
                name: &tool.name,
                parameters: Some(&tool.parameters),
            },
        )
    }
}

/// `tool_choice` as the family takes it.
struct WireToolChoice<'a>(&'a ToolChoice);

impl Serialize for WireToolChoice<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            ToolChoice::Auto => s.serialize_str("auto"),
            ToolChoice::None => s.serialize_str("none"),
            ToolChoice::Required => s.serialize_str("required"),
            ToolChoice::Tool(name) => serialize_function(
                s,
                NamedFunction {
                    arguments: None,
                    description: None,
                    name,
                    parameters: None,
                },
            ),
        }
    }
}

/// The calls of an answer's `tool_calls` (at `at`, for the message) as
/// OpenAI and Cohere send them; a call without its function's name is
/// malformed, a missing id is made from its position.
pub(crate) fn read_tool_calls(
    calls: Vec<WireToolCall>,
    name: &str,
    at: &str,
) -> Result<Vec<ToolCall>, ProviderFailure> {
    calls
        .into_iter()
        .enumerate()
        .map(|(i, call)| {
            let function = call.function.unwrap_or_default();
            let Some(tool) = function.name.filter(|n| !n.is_empty()) else {
                return Err(ProviderFailure::malformed(format!(
                    "{name} answered a tool call without its name (`{at}[{i}].function.name`)"
                )));
            };
            Ok(ToolCall {
                id: call
                    .id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| ToolCall::id_for(i)),
                name: tool,
                arguments: function
                    .arguments
                    .filter(|a| !a.trim().is_empty())
                    .unwrap_or_else(|| "{}".into()),
            })
        })
        .collect()
}

/// A finish reason as every provider of the family spells it.
fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "model_length" => FinishReason::ContextLength,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        "error" => FinishReason::Error,
        _ => FinishReason::Other,
    }
}

/// The token counts of a `usage` object.
fn token_usage(usage: Usage) -> TokenUsage {
    let mut tokens = TokenUsage::new(usage.prompt_tokens, usage.completion_tokens);
    tokens.total_tokens = usage.total_tokens.or(tokens.total_tokens);
    tokens.cached_input_tokens = usage
        .prompt_tokens_details
        .and_then(|d| d.cached_tokens)
        .or(usage.prompt_cache_hit_tokens);
    tokens.reasoning_tokens = usage
        .completion_tokens_details
        .and_then(|d| d.reasoning_tokens);
    tokens
}

/// An error body: `{"error": {…}}`, `{"error": "text"}`, or Mistral's flat
/// `{"object": "error", "message": …, "type": …, "code": …}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorField>,
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Detail(ErrorDetail),
    Text(String),
}

impl ErrorBody {
    fn detail(self) -> Option<ErrorDetail> {
        match self.error {
            Some(ErrorField::Detail(detail)) => Some(detail),
            Some(ErrorField::Text(message)) => Some(ErrorDetail {
                message: Some(message),
                ..ErrorDetail::default()
            }),
            None if self.message.is_some() => Some(ErrorDetail {
                message: self.message,
                kind: self.kind,
                code: self.code,
                ..ErrorDetail::default()
            }),
            None => None,
        }
    }
}

#[derive(Deserialize, Default)]
struct ErrorDetail {
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    /// A string (`"context_length_exceeded"`) or, at OpenRouter, a status.
    code: Option<Value>,
    /// OpenRouter: the upstream provider's own error under `raw`, or a
    /// moderation flag's `reasons` (its `flagged_input` echoes the prompt
    /// and is never read).
    metadata: Option<Value>,
    /// Azure OpenAI: `code` (`ResponsibleAIPolicyViolation`) and the
    /// filtered categories under `content_filter_result`.
    innererror: Option<Value>,
}

impl ErrorDetail {
    /// The message, with OpenRouter's relayed upstream error or moderation
    /// reasons, or Azure's filtered categories, appended.
    fn text(&self) -> String {
        let mut text = self.message.clone().unwrap_or_default();
        if let Some(raw) = self.metadata.as_ref().and_then(|m| m.get("raw")) {
            let raw = raw.as_str().map_or_else(|| raw.to_string(), str::to_string);
            text = format!("{text} ({raw})");
        }
        let reasons: Vec<&str> = self
            .metadata
            .as_ref()
            .and_then(|m| m.get("reasons"))
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !reasons.is_empty() {
            text = format!("{text} (flagged: {})", reasons.join(", "));
        }
        let inner = self.innererror.as_ref();
        text.push_str(&filtered_categories(
            inner.and_then(|i| i.get("content_filter_result")),
        ));
        text
    }

    /// Whether this error is a content-policy refusal: OpenAI's
    /// `content_policy_violation`, Azure's `content_filter` (inner code
    /// `ResponsibleAIPolicyViolation`), or DeepSeek's "Content Exists Risk"
    /// (its only signal is the message; the code is `invalid_request_error`).
    fn is_content_refusal(&self) -> bool {
        let code = self.code_text();
        let inner = self
            .innererror
            .as_ref()
            .and_then(|i| i.get("code"))
            .and_then(Value::as_str);
        matches!(code.as_str(), "content_policy_violation" | "content_filter")
            || inner == Some("ResponsibleAIPolicyViolation")
            || self
                .message
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case("Content Exists Risk"))
    }

    /// The code or type as text, for matching.
    fn code_text(&self) -> String {
        match &self.code {
            Some(Value::String(code)) => code.clone(),
            _ => self.kind.clone().unwrap_or_default(),
        }
    }

    /// The HTTP status an error inside a 200 body stands for: its numeric
    /// code, or 502 (the model failed upstream) when it has none.
    fn status_code(&self) -> u16 {
        self.code
            .as_ref()
            .and_then(Value::as_u64)
            .filter(|c| (400..600).contains(c))
            .map_or(502, |c| c as u16)
    }
}

/// `" (filtered: hate, violence)"` for the categories an Azure-style
/// `content_filter_result(s)` object marks `filtered`; empty when none is.
fn filtered_categories(results: Option<&Value>) -> String {
    let Some(Value::Object(results)) = results else {
        return String::new();
    };
    let filtered: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.get("filtered").and_then(Value::as_bool) == Some(true))
        .map(|(category, _)| category.as_str())
        .collect();
    if filtered.is_empty() {
        String::new()
    } else {
        format!(" (filtered: {})", filtered.join(", "))
    }
}

#[derive(Deserialize)]
struct Completion {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
    error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<Message>,
    finish_reason: Option<String>,
    error: Option<ErrorDetail>,
    /// Azure OpenAI: per-category verdicts on the answer.
    content_filter_results: Option<Value>,
}

#[derive(Deserialize, Default)]
struct Message {
    content: Option<Content>,
    reasoning_content: Option<String>,
    reasoning: Option<String>,
    /// OpenAI: the model's refusal, for safety reasons, in place of content.
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

/// A tool call of an answer, or a fragment of one in a stream's delta
/// (Cohere's too).
#[derive(Deserialize, Default)]
pub(crate) struct WireToolCall {
    /// Streams: which call the fragment belongs to.
    pub(crate) index: Option<usize>,
    pub(crate) id: Option<String>,
    pub(crate) function: Option<WireFunction>,
}

#[derive(Deserialize, Default)]
pub(crate) struct WireFunction {
    pub(crate) name: Option<String>,
    /// The arguments' JSON text, or a piece of it.
    pub(crate) arguments: Option<String>,
}

/// A message's content: text, or (Mistral's reasoning models) typed chunks.
enum Content {
    Text(String),
    Chunks(Vec<Chunk>),
}

/// By hand rather than `#[serde(untagged)]`, which buffers every value to
/// try each variant in turn: content is read once per streamed chunk, and
/// the buffering was a measurable part of a chunk's cost.
impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl<'de> serde::de::Visitor<'de> for ContentVisitor {
            type Value = Content;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("text or a list of content parts")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Content, E> {
                Ok(Content::Text(text.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Content, E> {
                Ok(Content::Text(text))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Content, A::Error> {
                let mut chunks = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
                while let Some(chunk) = seq.next_element()? {
                    chunks.push(chunk);
                }
                Ok(Content::Chunks(chunks))
            }
        }
        deserializer.deserialize_any(ContentVisitor)
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

impl Content {
    fn into_text(self) -> String {
        match self {
            Self::Text(text) => text,
            Self::Chunks(chunks) => chunks
                .into_iter()
                .filter(|c| c.kind == "text")
                .filter_map(|c| c.text)
                .collect(),
        }
    }
}

/// One chunk of a stream (`chat.completion.chunk`).
#[derive(Deserialize)]
struct StreamChunk {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    /// With `stream_options.include_usage`, in a last chunk without
    /// choices; Mistral and Together send it in the last chunk anyway.
    /// (Boxed, like the other rare fields: the chunk is moved through
    /// several layers of deserialization on every event, so it is kept small.)
    usage: Option<Box<Usage>>,
    /// Groq's own place for the usage of the last chunk.
    x_groq: Option<Box<XGroq>>,
    error: Option<Box<ErrorDetail>>,
}

#[derive(Deserialize)]
struct XGroq {
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    delta: Option<Message>,
    finish_reason: Option<String>,
    error: Option<ErrorDetail>,
}

#[derive(Deserialize, Default)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    total_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek.
    prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct EmbeddingList {
    data: Vec<EmbeddingItem>,
    model: String,
    usage: Option<EmbeddingTokens>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct EmbeddingTokens {
    prompt_tokens: Option<u64>,
}

/// Shared pieces of the LLM providers' tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::{answer, failure, request, Data, Request};

    /// A two-turn conversation with every optional field set.
    pub(crate) fn chat_request() -> Request {
        request(
            "llm.chat",
            json!({
                "messages": [
                    {"role": "system", "content": "Answer in one sentence."},
                    {"role": "user", "content": "What is the capital of France?"},
                ],
                "max_tokens": 64,
                "temperature": 0.2,
            }),
        )
    }

    /// A conversation answering two parallel tool calls, then asking on:
    /// system, user, the assistant's text and two calls, their two results
    /// (in the other order), a user message.
    pub(crate) fn tool_round_trip_request() -> Request {
        request(
            "llm.chat",
            json!({
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Weather in Paris and Oslo?"},
                    {"role": "assistant", "content": "Checking both.", "tool_calls": [
                        {"id": "call_p", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_o", "name": "get_weather", "arguments": {"city": "Oslo"}},
                    ]},
                    {"role": "tool", "tool_call_id": "call_o", "content": "-2 C"},
                    {"role": "tool", "tool_call_id": "call_p", "content": "{\"temperature_c\": 14}"},
                    {"role": "user", "content": "And which is warmer?"},
                ],
                "tools": [{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            }),
        )
    }

    /// The query of [`chat_request`].
    pub(crate) fn chat_query() -> ChatQuery {
        match chat_request() {
            Request::LlmChat(q) => q,
            other => panic!("not a chat request: {other:?}"),
        }
    }

    /// The two-text embeddings request the fixtures answer.
    pub(crate) fn embeddings_request() -> Request {
        request(
            "llm.embeddings",
            json!({"inputs": ["The capital of France is Paris.", "Paris is in France."]}),
        )
    }

    /// The chat reply of a provider's 200 body.
    pub(crate) fn reply_of(provider: &dyn Provider, body: &str) -> ChatReply {
        match answer(provider, &chat_request(), test_response(200, &[], body)) {
            Data::LlmChat(reply) => reply,
            other => panic!("not a chat reply: {other:?}"),
        }
    }

    /// The failure of a chat error response.
    pub(crate) fn class_of(
        provider: &dyn Provider,
        status: u16,
        headers: &[(&'static str, &str)],
        body: &str,
    ) -> ProviderFailure {
        failure(
            provider,
            &chat_request(),
            test_response(status, headers, body),
        )
    }

    /// The signals every OpenAI-compatible provider shares.
    pub(crate) fn assert_common_error_signals(provider: &dyn Provider) {
        let f = class_of(
            provider,
            429,
            &[("retry-after", "7")],
            r#"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(7)));
        assert!(f.message.contains("Rate limit reached"), "{}", f.message);

        let f = class_of(
            provider,
            400,
            &[],
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 8227 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        );
        assert_eq!(f.class, FailureClass::ContextLengthExceeded);
        assert_eq!(f.status, Some(400));

        for (status, class) in [
            (401, FailureClass::Auth),
            (402, FailureClass::QuotaExhausted),
            (404, FailureClass::InvalidRequest),
            (422, FailureClass::InvalidRequest),
            (500, FailureClass::Transient),
            (503, FailureClass::Transient),
        ] {
            let f = class_of(
                provider,
                status,
                &[],
                r#"{"error":{"message":"something","type":"x","code":null}}"#,
            );
            assert_eq!(f.class, class, "HTTP {status}");
            assert!(f.request_sent, "a POST that reached the provider");
        }
        let f = class_of(provider, 502, &[], "<html>Bad Gateway</html>");
        assert_eq!(f.class, FailureClass::Transient);
        assert!(f.message.contains("Bad Gateway"), "{}", f.message);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Method;
    use serde_json::json;

    use super::testing::*;
    use super::*;
    use crate::capability::llm::FinishReason;
    use crate::capability::CapabilityId;
    use crate::provider::stream::testing::{assert_cuts_fail, decode_in_pieces, decode_whole};
    use crate::provider::Body;
    use crate::providers::test_response;
    use crate::providers::testing::{assert_truncations_are_malformed, ctx, failure, request};
    use crate::providers::{
        deepseek::DEEPSEEK, groq::GROQ, mistral::MISTRAL, openai::OPENAI, openrouter::OPENROUTER,
        together::TOGETHER,
    };

    /// Runs `$body` with `$provider` bound to each built-in provider in
    /// turn: they are of two types (with and without embeddings), which no
    /// one array holds.
    macro_rules! for_each_builtin {
        ($provider:ident => $body:block) => {{
            {
                let $provider = &OPENAI;
                $body
            }
            {
                let $provider = &MISTRAL;
                $body
            }
            {
                let $provider = &GROQ;
                $body
            }
            {
                let $provider = &DEEPSEEK;
                $body
            }
            {
                let $provider = &OPENROUTER;
                $body
            }
            {
                let $provider = &TOGETHER;
                $body
            }
        }};
    }

    #[test]
    fn every_compatible_provider_builds_the_same_body_and_never_sends_a_key() {
        for_each_builtin!(provider => {
            let req = provider.request(&chat_request(), &ctx(provider)).unwrap();
            assert_eq!(req.method, Method::POST, "{}", provider.info.id);
            assert!(req.query.is_empty() && req.headers.is_empty());
            let body = req.json_body().unwrap();
            assert_eq!(body["model"], provider.chat_model);
            assert_eq!(body["stream"], false);
            assert_eq!(body[provider.max_tokens_field], 64);
            assert_eq!(body["temperature"], 0.2);
            assert_eq!(
                body["messages"],
                json!([
                    {"role": "system", "content": "Answer in one sentence."},
                    {"role": "user", "content": "What is the capital of France?"},
                ])
            );
            assert!(
                !provider.info.is_keyless(),
                "{} needs a key",
                provider.info.id
            );
            assert!(
                provider.idempotency_header().is_none(),
                "no chat API de-duplicates by an idempotency header"
            );
        });
        let minimal = request(
            "llm.chat",
            json!({"messages": [{"role": "user", "content": "Hi"}]}),
        );
        let body = OPENAI
            .request(&minimal, &ctx(&OPENAI))
            .unwrap()
            .json_body()
            .unwrap();
        assert_eq!(
            body,
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": false})
        );
    }

    #[test]
    fn bodies_are_written_straight_as_the_json_a_value_tree_gave() {
        let everything = request(
            "llm.chat",
            json!({
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Weather in Paris?"},
                    {"role": "assistant", "content": "", "tool_calls": [
                        {"id": "call_p", "name": "get_weather", "arguments": {"city": "Paris"}},
                    ]},
                    {"role": "tool", "tool_call_id": "call_p", "content": "14 C"},
                    {"role": "user", "content": "Warm?"},
                ],
                "tools": [{"name": "get_weather", "description": "Weather now",
                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "response_format": {"type": "json_schema", "json_schema": {"name": "warm",
                    "schema": {"type": "object", "properties": {"warm": {"type": "boolean"}}}}},
                "max_tokens": 5,
                "temperature": 0.5,
            }),
        );
        let crate::Request::LlmChat(query) = &everything else {
            panic!("a chat request")
        };
        let sent = |req: HttpRequest| match req.body {
            Some(Body::Serialized(bytes)) => bytes,
            other => panic!("not serialized: {other:?}"),
        };
        let plain = sent(OPENROUTER.request(&everything, &ctx(&OPENROUTER)).unwrap());
        let streamed = sent(OPENROUTER.stream_request(query, &ctx(&OPENROUTER)).unwrap());
        for bytes in [&plain, &streamed] {
            // The same bytes a `Value` (keys sorted, no spaces) serializes to.
            let value: Value = serde_json::from_slice(bytes).unwrap();
            assert_eq!(serde_json::to_vec(&value).unwrap(), bytes.to_vec());
        }
        let mut value: Value = serde_json::from_slice(&plain).unwrap();
        let format = value.as_object_mut().unwrap().remove("response_format");
        assert_eq!(
            format,
            serde_json::to_value(query.response_format.as_ref().unwrap()).ok()
        );
        let weather = json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"});
        assert_eq!(
            value,
            json!({
                "model": OPENROUTER.chat_model,
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Weather in Paris?"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_p", "type": "function", "function": weather},
                    ]},
                    {"role": "tool", "tool_call_id": "call_p", "content": "14 C"},
                    {"role": "user", "content": "Warm?"},
                ],
                "tools": [{"type": "function", "function": {"name": "get_weather",
                    "description": "Weather now",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "provider": {"require_parameters": true},
                "max_tokens": 5,
                "temperature": 0.5,
                "stream": false,
            })
        );
        let streamed: Value = serde_json::from_slice(&streamed).unwrap();
        assert_eq!(streamed["stream"], true);
        assert_eq!(streamed["stream_options"], json!({"include_usage": true}));
    }

    #[test]
    fn aliases_resolve_per_provider_and_skip_providers_without_the_model() {
        let aliased = request(
            "llm.chat",
            json!({"messages": [{"role": "user", "content": "Hi"}], "model": "llama-3.3-70b"}),
        );
        let model = |p: &dyn Provider| {
            p.request(&aliased, &ctx(p))
                .map(|r| r.json_body().unwrap()["model"].clone())
        };
        assert_eq!(model(&GROQ).unwrap(), "llama-3.3-70b-versatile");
        assert_eq!(
            model(&TOGETHER).unwrap(),
            "meta-llama/Llama-3.3-70B-Instruct-Turbo"
        );
        assert_eq!(
            model(&OPENROUTER).unwrap(),
            "meta-llama/llama-3.3-70b-instruct"
        );
        let skipped = model(&OPENAI).unwrap_err();
        assert_eq!(skipped.class, FailureClass::Unsupported);
        assert!(!skipped.request_sent);

        let exact = request(
            "llm.chat",
            json!({"messages": [{"role": "user", "content": "Hi"}], "model": "my-org/finetune"}),
        );
        let body = DEEPSEEK
            .request(&exact, &ctx(&DEEPSEEK))
            .unwrap()
            .json_body()
            .unwrap();
        assert_eq!(body["model"], "my-org/finetune");
    }

    #[test]
    fn providers_without_embeddings_do_not_serve_them() {
        for provider in [&GROQ, &DEEPSEEK, &OPENROUTER] {
            let f = provider
                .request(&embeddings_request(), &ctx(provider))
                .unwrap_err();
            assert_eq!(f.class, FailureClass::Unsupported);
            assert_eq!(provider.capabilities(), [CapabilityId::LlmChat]);
        }
        for provider in [&OPENAI, &MISTRAL, &TOGETHER] {
            assert_eq!(
                provider.capabilities(),
                [CapabilityId::LlmChat, CapabilityId::LlmEmbeddings]
            );
        }
        let weather = request("weather.current", json!({"lat": 1, "lon": 2}));
        assert_eq!(
            OPENAI.request(&weather, &ctx(&OPENAI)).unwrap_err().class,
            FailureClass::Unsupported
        );
    }

    #[test]
    fn errors_inside_a_200_body_are_failures() {
        // OpenRouter: the model failed after the request was accepted.
        let f = class_of(
            &OPENROUTER,
            200,
            &[],
            r#"{"error":{"code":502,"message":"Provider returned error","metadata":{"provider_name":"DeepInfra","raw":"upstream connect error"}}}"#,
        );
        assert_eq!(f.class, FailureClass::Transient);
        assert_eq!(f.status, Some(200));
        assert!(
            f.message.contains("upstream connect error"),
            "{}",
            f.message
        );

        let f = class_of(
            &OPENROUTER,
            200,
            &[],
            r#"{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min."}}"#,
        );
        assert_eq!(f.class, FailureClass::RateLimited);

        let f = class_of(
            &OPENROUTER,
            200,
            &[],
            r#"{"id":"gen-1","model":"m","choices":[{"index":0,"finish_reason":"error","message":{"role":"assistant","content":""},"error":{"code":500,"message":"model crashed"}}]}"#,
        );
        assert_eq!(f.class, FailureClass::Transient);
        assert!(f.message.contains("model crashed"), "{}", f.message);

        // Mistral's finish reason `error`, without detail.
        let f = class_of(
            &MISTRAL,
            200,
            &[],
            r#"{"id":"x","model":"mistral-small-latest","choices":[{"index":0,"message":{"role":"assistant","content":"Par"},"finish_reason":"error"}]}"#,
        );
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn finish_reasons_and_content_chunks_are_normalised() {
        let body = |finish: &str| {
            format!(
                r#"{{"id":"x","model":"m","choices":[{{"index":0,"message":{{"role":"assistant","content":"Paris"}},"finish_reason":{finish}}}],"usage":{{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}}}"#
            )
        };
        for (finish, expected) in [
            ("\"stop\"", Some(FinishReason::Stop)),
            ("\"length\"", Some(FinishReason::Length)),
            ("\"model_length\"", Some(FinishReason::ContextLength)),
            ("\"tool_calls\"", Some(FinishReason::ToolCalls)),
            ("\"content_filter\"", Some(FinishReason::ContentFilter)),
            ("\"something_new\"", Some(FinishReason::Other)),
            ("null", None),
        ] {
            assert_eq!(
                reply_of(&MISTRAL, &body(finish)).finish_reason,
                expected,
                "{finish}"
            );
        }
        let chunks = r#"{"id":"x","model":"magistral-small-latest","choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"hmm"}]},{"type":"text","text":"Paris."}]},"finish_reason":"stop"}]}"#;
        let reply = reply_of(&MISTRAL, chunks);
        assert_eq!(reply.text, "Paris.");
        assert_eq!(reply.usage.total_tokens, None, "no usage reported");
    }

    #[test]
    fn content_refusals_are_content_filtered_with_the_reason() {
        // OpenAI: "Your request was rejected as a result of our safety
        // system", code `content_policy_violation` (seen as 400 and 403).
        let openai = r#"{"error":{"message":"Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}"#;
        // Azure OpenAI content filtering (learn.microsoft.com, "Content
        // filtering"): 400, code `content_filter`, inner code
        // `ResponsibleAIPolicyViolation` with the filtered categories.
        let azure = r#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":false,"severity":"safe"},"violence":{"filtered":true,"severity":"medium"}}}}}"#;
        // DeepSeek's moderation (deepseek-ai/DeepSeek-V2#30 and
        // awesome-deepseek-integration#13): a 400 whose only signal is the
        // message.
        let deepseek = r#"{"error":{"message":"Content Exists Risk","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}"#;
        for_each_builtin!(provider => {
            for (body, status, reason) in [
                (openai, 400, "rejected as a result of our safety system"),
                (openai, 403, "rejected as a result of our safety system"),
                (
                    azure,
                    400,
                    "content management policy. (filtered: violence)",
                ),
                (deepseek, 400, "Content Exists Risk"),
            ] {
                let f = class_of(provider, status, &[], body);
                assert_eq!(
                    f.class,
                    FailureClass::ContentFiltered,
                    "{}: {reason}",
                    provider.info.id
                );
                assert_eq!(f.status, Some(status));
                assert!(f.message.contains(reason), "{}", f.message);
                assert!(f.message.starts_with(provider.info.name), "{}", f.message);
            }
        });
        // Not every 400 is a refusal.
        let f = class_of(
            &DEEPSEEK,
            400,
            &[],
            r#"{"error":{"message":"Invalid max_tokens value","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}"#,
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
    }

    #[test]
    fn a_200_without_content_for_the_filter_is_a_refusal_and_a_cut_answer_is_kept() {
        // Azure OpenAI: a filtered completion is a 200 with no content and
        // `finish_reason: "content_filter"` (or, rarely, partial content).
        let withheld = r#"{"id":"x","model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":"content_filter","message":{"role":"assistant","content":null},"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":true,"severity":"high"}}}],"usage":{"prompt_tokens":9,"completion_tokens":0,"total_tokens":9}}"#;
        for_each_builtin!(provider => {
            let f = class_of(provider, 200, &[], withheld);
            assert_eq!(
                f.class,
                FailureClass::ContentFiltered,
                "{}",
                provider.info.id
            );
            assert_eq!(f.status, Some(200));
            assert_eq!(
                f.message,
                format!(
                    "{}: the answer was withheld by the content filter (filtered: self_harm)",
                    provider.info.name
                )
            );
        });
        let empty = withheld.replace("\"content\":null", "\"content\":\"\"");
        assert_eq!(
            class_of(&MISTRAL, 200, &[], &empty).class,
            FailureClass::ContentFiltered
        );
        let cut = withheld.replace("\"content\":null", "\"content\":\"Paris is\"");
        let reply = reply_of(&OPENAI, &cut);
        assert_eq!(
            (reply.text.as_str(), reply.finish_reason),
            ("Paris is", Some(FinishReason::ContentFilter))
        );

        // OpenAI: a model refusing for safety reasons puts its words in
        // `message.refusal` instead of `content` (OpenAI docs, "Structured
        // Outputs: Refusals").
        let refusal = r#"{"id":"x","model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":null,"refusal":"I'm sorry, I cannot assist with that request."}}]}"#;
        let f = class_of(&OPENAI, 200, &[], refusal);
        assert_eq!(f.class, FailureClass::ContentFiltered);
        assert_eq!(
            f.message,
            "OpenAI: the model refused: I'm sorry, I cannot assist with that request."
        );
        // A null refusal beside an answer changes nothing.
        let answered = refusal.replace(
            "\"content\":null,\"refusal\":\"I'm sorry, I cannot assist with that request.\"",
            "\"content\":\"Paris.\",\"refusal\":null",
        );
        assert_eq!(reply_of(&OPENAI, &answered).text, "Paris.");
    }

    #[test]
    fn flat_and_text_error_bodies_are_read() {
        let f = class_of(
            &MISTRAL,
            400,
            &[],
            r#"{"object":"error","message":"Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length","type":"invalid_request_invalid_args","param":null,"code":"3051"}"#,
        );
        assert_eq!(f.class, FailureClass::ContextLengthExceeded);
        let f = class_of(
            &TOGETHER,
            401,
            &[],
            r#"{"error":"Invalid API key provided"}"#,
        );
        assert_eq!(f.class, FailureClass::Auth);
        assert_eq!(f.message, "Together AI: Invalid API key provided");
        let f = class_of(&GROQ, 429, &[("retry-after-ms", "1500")], "");
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn garbage_never_panics() {
        for_each_builtin!(provider => {
            let chat = provider
                .fixtures
                .iter()
                .find(|f| f.path == provider.chat_path)
                .unwrap()
                .body;
            assert_truncations_are_malformed(provider, &chat_request(), chat);
            let mut wrong: Value = serde_json::from_str(chat).unwrap();
            wrong["choices"].as_array_mut().unwrap().insert(0, 7.into());
            let wrong = wrong.to_string();
            let f = failure(provider, &chat_request(), test_response(200, &[], &wrong));
            assert_eq!(
                f.class,
                FailureClass::MalformedResponse,
                "{}",
                provider.info.id
            );
            let f = failure(provider, &chat_request(), test_response(200, &[], "{}"));
            assert_eq!(f.class, FailureClass::MalformedResponse);
        });
        for provider in [&OPENAI, &MISTRAL, &TOGETHER] {
            let body = provider
                .fixtures
                .iter()
                .find(|f| f.path == provider.embeddings.path)
                .unwrap()
                .body;
            assert_truncations_are_malformed(provider, &embeddings_request(), body);
            let one = request("llm.embeddings", json!({"inputs": "only one"}));
            let f = failure(provider, &one, test_response(200, &[], body));
            assert_eq!(
                f.class,
                FailureClass::MalformedResponse,
                "2 vectors for 1 input"
            );
        }
    }

    #[test]
    fn streaming_requests_add_the_switch_and_ask_for_usage_where_accepted() {
        for_each_builtin!(provider => {
            let plain = provider.request(&chat_request(), &ctx(provider)).unwrap();
            let streamed = provider.stream_request(&chat_query(), &ctx(provider)).unwrap();
            assert_eq!((&streamed.method, &streamed.url), (&plain.method, &plain.url));
            let mut body = streamed.json_body().unwrap();
            assert_eq!(body["stream"], true, "{}", provider.info.id);
            let options = body.as_object_mut().unwrap().remove("stream_options");
            assert_eq!(
                options,
                provider
                    .stream_usage_option
                    .then(|| json!({"include_usage": true})),
                "{}",
                provider.info.id
            );
            body["stream"] = json!(false);
            assert_eq!(body, plain.json_body().unwrap(), "otherwise the plain request");
            assert_eq!(provider.framing(), Framing::Sse);
            assert!(provider.streams_chat().is_some());
        });
        assert!(
            !MISTRAL.stream_usage_option,
            "Mistral refuses stream_options with a 422"
        );
    }

    #[test]
    fn every_recorded_stream_folds_into_the_plain_reply() {
        for_each_builtin!(provider => {
            let body = crate::provider::stream::testing::stream_fixture(provider);
            let reply = decode_whole(provider, &chat_query(), body)
                .unwrap_or_else(|f| panic!("{}: {f}", provider.info.id));
            assert_eq!(reply.finish_reason, Some(FinishReason::Stop), "{}", provider.info.id);
            let expected = match provider.info.id {
                "openai" => (
                    "Hello! How can I assist you today?",
                    "gpt-4o-mini-2024-07-18",
                    TokenUsage {
                        cached_input_tokens: Some(0),
                        reasoning_tokens: Some(0),
                        ..TokenUsage::new(Some(19), Some(10))
                    },
                ),
                "mistral" => (
                    "Paris, la Ville Lumière.",
                    "mistral-small-latest",
                    TokenUsage::new(Some(15), Some(8)),
                ),
                "groq" => (
                    "The capital of France is Paris.",
                    "llama-3.3-70b-versatile",
                    TokenUsage::new(Some(48), Some(8)),
                ),
                "deepseek" => (
                    "Paris.",
                    "deepseek-reasoner",
                    TokenUsage {
                        cached_input_tokens: Some(0),
                        reasoning_tokens: Some(10),
                        ..TokenUsage::new(Some(15), Some(12))
                    },
                ),
                "openrouter" => (
                    "The capital of France is Paris.",
                    "openai/gpt-4o-mini",
                    TokenUsage::new(Some(14), Some(8)),
                ),
                "together" => (
                    "The capital of France is Paris.",
                    "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                    TokenUsage::new(Some(49), Some(8)),
                ),
                other => panic!("no expectation for {other}"),
            };
            assert_eq!(
                (reply.text.as_str(), reply.model.as_str(), reply.usage),
                expected,
                "{}",
                provider.info.id
            );
            assert!(reply.id.is_some());
            assert_eq!(
                reply.reasoning.as_deref(),
                (provider.info.id == "deepseek").then_some("The user asks for France’s capital.")
            );
            assert_cuts_fail(provider, &chat_query(), body);
        });
    }

    #[test]
    fn error_chunks_and_bad_events_in_a_stream_are_classified() {
        let decode = |provider: &dyn StreamsChat, data: &str| {
            let body = format!("data: {data}\n\ndata: [DONE]\n\n");
            decode_in_pieces(provider, &chat_query(), body.as_bytes(), 3).unwrap_err()
        };
        for_each_builtin!(provider => {
            let f = decode(provider, r#"{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min."}}"#);
            assert_eq!(f.class, FailureClass::RateLimited, "{}", provider.info.id);
            assert_eq!(f.status, Some(200));
            let f = decode(provider, r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#);
            assert_eq!(f.class, FailureClass::Transient);
            assert!(f.message.contains("server had an error"), "{}", f.message);
            // OpenRouter: the upstream failed once the answer had started.
            let f = decode(provider, r#"{"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"m","error":{"code":"server_error","message":"Provider disconnected"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}"#);
            assert_eq!(f.class, FailureClass::Transient);
            let f = decode(provider, r#"{"id":"x","choices":[{"index":0,"delta":{"content":null,"refusal":"I'm sorry, I cannot help with that."},"finish_reason":null}]}"#);
            assert_eq!(f.class, FailureClass::ContentFiltered);
            for broken in [r#"{"id":"x","choices":[{"index":0,"delta":{"content":"Par"#, "[1]", "null", "<html>"] {
                let f = decode(provider, broken);
                assert_eq!(f.class, FailureClass::MalformedResponse, "{broken}: {f}");
            }
            // A filtered answer with no text is a refusal, as for a plain call.
            let body = "data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"content_filter\"}]}\n\ndata: [DONE]\n\n";
            let f = decode_in_pieces(provider, &chat_query(), body.as_bytes(), 4).unwrap_err();
            assert_eq!(f.class, FailureClass::ContentFiltered);
            // A refused streaming request is classified like a plain one.
            let f = provider.stream_error(&test_response(429, &[("retry-after", "2")], r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#));
            assert_eq!(f.class, FailureClass::RateLimited);
            assert_eq!(f.retry_after, Some(Duration::from_secs(2)));
        });
    }
}
