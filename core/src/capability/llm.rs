//! `llm.chat` and `llm.embeddings`: requests and normalised answers.
//!
//! Requests are validated completely before any provider sees them, so an
//! invalid conversation fails fast with the offending field named
//! (`messages[2].role`) instead of being refused by each provider in turn.
//! Only non-streaming calls exist today; `stream` is accepted as `false` so
//! the request shape stays the same when streaming arrives.
//!
//! # Which model answers
//!
//! A fallback must answer the same question, so the optional `model` is read
//! the same way by every provider (see [`pick_model`]):
//!
//! * **no `model`**: each provider runs its own default, a fast general
//!   model named in its documentation (`gpt-4o-mini`, `llama-3.3-70b-versatile`,
//!   `claude-haiku-4-5`, …). Same messages, a provider-appropriate model.
//! * **a cross-provider alias** from [`MODEL_ALIASES`] (`"llama-3.3-70b"`):
//!   every provider that hosts that model runs its own id for it
//!   (`llama-3.3-70b-versatile` at Groq, `meta-llama/Llama-3.3-70B-Instruct-Turbo`
//!   at Together, …); the others are skipped as unsupported without a request.
//! * **any other name** is sent unchanged to every provider of the chain. One
//!   that does not have the model refuses it (an invalid request, not
//!   retried) and the next one is tried; pin the chain in the configuration
//!   to avoid those round trips.
//!
//! Embedding vectors of different models live in different spaces: name a
//! `model` (or pin the chain) for anything you store and compare later.
//!
//! ```
//! use polyrelay::capability::Request;
//! use serde_json::json;
//! let chat = Request::parse("llm.chat", json!({
//!     "messages": [{"role": "system", "content": "Answer briefly."},
//!                  {"role": "user", "content": "Capital of France?"}],
//!     "temperature": 0.2,
//!     "max_tokens": 50,
//! }));
//! assert!(chat.is_ok());
//! let empty = Request::parse("llm.chat", json!({"messages": []}));
//! assert!(empty.unwrap_err().to_string().contains("messages"));
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod stream;
pub use stream::{ChatAccumulator, ChatDelta, ChatMeta};

use super::params::Params;
use super::schema::{Alternatives, Param, ParamDefault, ParamKind, ParamTable};
use crate::echo::{echo, echo_key, echo_number, type_name};
use crate::error::{Error, ProviderFailure, Result};

/// Who speaks in a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model; only at the start of a conversation.
    System,
    /// The person asking.
    User,
    /// The model's earlier answers.
    Assistant,
}

impl Role {
    /// The lower-case name used on the wire by most providers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// The text, exactly as given.
    pub content: String,
}

/// A sampling temperature from 0 to 2, kept in hundredths so that requests
/// stay exact cache keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Temperature(u16);

impl Temperature {
    /// The highest temperature accepted (OpenAI's range; providers with a
    /// narrower one skip requests above it).
    pub const MAX: f64 = 2.0;

    /// Validates a temperature.
    pub fn new(value: f64) -> Result<Self> {
        if !(0.0..=Self::MAX).contains(&value) {
            return Err(Error::invalid(
                "temperature",
                format!(
                    "must be between 0 and {}, got {}",
                    Self::MAX,
                    echo_number(value)
                ),
            ));
        }
        Ok(Self((value * 100.0).round() as u16))
    }

    /// The value.
    pub fn get(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl Serialize for Temperature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_f64(self.get())
    }
}

/// Longest model name accepted.
const MAX_MODEL_LEN: u32 = 200;

/// `model`, read the same way by both LLM capabilities.
const MODEL: Param = Param::new(
    "model",
    ParamKind::String {
        max_chars: Some(MAX_MODEL_LEN),
    },
    "A model name or cross-provider alias; each provider's default when left out.",
    r#""gpt-4o-mini""#,
);

/// Largest `max_tokens` accepted; no model writes more in one answer.
const MAX_OUTPUT_TOKENS: u64 = 1_000_000;

/// Most inputs in one `llm.embeddings` call: Cohere's per-call limit, the
/// smallest of the providers, so every provider of the chain can serve any
/// valid request.
pub const MAX_EMBEDDING_INPUTS: usize = 96;

/// Request of `llm.chat`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ChatQuery {
    /// The conversation: optional system messages first, then user and
    /// assistant turns starting and ending with the user.
    pub messages: Vec<ChatMessage>,
    /// A model name or alias; `None` for each provider's default.
    pub model: Option<String>,
    /// Most tokens to generate; `None` for the provider's default (4096 where
    /// the provider requires a value).
    pub max_tokens: Option<u32>,
    /// Sampling temperature; `None` for the provider's default.
    pub temperature: Option<Temperature>,
}

/// What a provider continuing another's interrupted answer is asked.
const CONTINUE_PROMPT: &str = "Your previous answer was cut off. Continue it exactly where it stopped, without repeating any of it and without any preamble.";

impl ChatQuery {
    /// The parameters: `messages`, `model`, `max_tokens`, `temperature`, `stream`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            Param::new(
                "messages",
                ParamKind::Messages,
                "The conversation: optional system messages, then user and assistant turns ending with the user.",
                r#"[{"role": "user", "content": "Hello"}]"#,
            )
            .required(),
            MODEL,
            Param::new(
                "max_tokens",
                ParamKind::Integer {
                    min: 1,
                    max: MAX_OUTPUT_TOKENS,
                },
                "Most tokens to generate; the provider's default when left out.",
                "256",
            ),
            Param::new(
                "temperature",
                ParamKind::Number {
                    min: 0.0,
                    max: Temperature::MAX,
                },
                "Sampling temperature; the provider's default when left out.",
                "0.7",
            ),
            Param::new(
                "stream",
                ParamKind::Boolean,
                "Streaming is not supported yet: only false is accepted.",
                "false",
            )
            .or(ParamDefault::Boolean(false)),
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `messages` (required), `model`, `max_tokens`,
    /// `temperature`, and `stream` (only `false` for now).
    pub fn from_params(mut params: Params) -> Result<Self> {
        let messages = match params.opt_value("messages") {
            Some(value) => parse_messages(value)?,
            None => return Err(params.missing("messages")),
        };
        let model = parse_model(&mut params)?;
        let max_tokens = params
            .opt_u64("max_tokens")?
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let temperature = params
            .opt_f64("temperature")?
            .map(Temperature::new)
            .transpose()?;
        match params.opt_value("stream") {
            None | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => {
                return Err(Error::invalid(
                    "stream",
                    "is not supported yet: omit it or pass false",
                ))
            }
            Some(other) => {
                return Err(Error::invalid(
                    "stream",
                    format!("must be false, got {}", type_name(&other)),
                ))
            }
        }
        params.finish()?;
        Ok(Self {
            messages,
            model,
            max_tokens,
            temperature,
        })
    }

    /// This question with `partial`, an answer cut short, to be continued:
    /// the partial answer as the assistant's turn, then the request to go
    /// on from its last character. Every provider takes this form (not all
    /// take an assistant turn last, as a prefill); `partial` empty gives
    /// the question unchanged.
    pub fn continuation(&self, partial: &str) -> ChatQuery {
        let mut query = self.clone();
        if !partial.is_empty() {
            query.messages.push(ChatMessage {
                role: Role::Assistant,
                content: partial.to_string(),
            });
            query.messages.push(ChatMessage {
                role: Role::User,
                content: CONTINUE_PROMPT.to_string(),
            });
        }
        query
    }

    /// The leading system messages joined by a blank line, for providers
    /// that take one system prompt apart from the conversation.
    pub fn system_prompt(&self) -> Option<String> {
        let system: Vec<&str> = self
            .messages
            .iter()
            .take_while(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        (!system.is_empty()).then(|| system.join("\n\n"))
    }

    /// The conversation after the system messages.
    pub fn turns(&self) -> &[ChatMessage] {
        let start = self
            .messages
            .iter()
            .position(|m| m.role != Role::System)
            .unwrap_or(self.messages.len());
        &self.messages[start..]
    }
}

fn parse_messages(value: Value) -> Result<Vec<ChatMessage>> {
    let items = match value {
        Value::Array(items) if !items.is_empty() => items,
        Value::Array(_) => {
            return Err(Error::invalid(
                "messages",
                "must contain at least one message",
            ))
        }
        other => {
            return Err(Error::invalid(
                "messages",
                format!(
                    "must be a list of {{role, content}} objects, got {}",
                    type_name(&other)
                ),
            ))
        }
    };
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(mut fields) = item else {
            return Err(Error::invalid(
                format!("messages[{i}]"),
                format!(
                    "must be a {{role, content}} object, got {}",
                    type_name(&item)
                ),
            ));
        };
        let role = match fields.remove("role") {
            Some(Value::String(role)) => match role.trim() {
                "system" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => {
                    return Err(Error::invalid(
                        format!("messages[{i}].role"),
                        format!(
                            "must be system, user or assistant, got {} \
                             (tool messages are not supported yet)",
                            echo(other)
                        ),
                    ))
                }
            },
            Some(other) => {
                return Err(Error::invalid(
                    format!("messages[{i}].role"),
                    format!("must be a string, got {}", type_name(&other)),
                ))
            }
            None => return Err(Error::invalid(format!("messages[{i}].role"), "is required")),
        };
        let content = match fields.remove("content") {
            Some(Value::String(text)) if !text.trim().is_empty() => text,
            Some(Value::String(_)) | None => {
                return Err(Error::invalid(
                    format!("messages[{i}].content"),
                    "is required and must not be empty",
                ))
            }
            Some(other) => {
                return Err(Error::invalid(
                    format!("messages[{i}].content"),
                    format!("must be a string, got {}", type_name(&other)),
                ))
            }
        };
        if let Some(unknown) = fields.keys().next() {
            return Err(Error::invalid(
                format!("messages[{i}].{}", echo_key(unknown)),
                "is not a known field; expected role and content",
            ));
        }
        messages.push(ChatMessage { role, content });
    }
    check_order(&messages)?;
    Ok(messages)
}

/// The conversation rules every provider can represent: system messages
/// first (Anthropic, Gemini and Cohere hold them apart), then turns that
/// start and end with the user, so every provider answers the same question.
fn check_order(messages: &[ChatMessage]) -> Result<()> {
    let first_turn = messages.iter().position(|m| m.role != Role::System);
    let Some(first_turn) = first_turn else {
        return Err(Error::invalid(
            "messages",
            "must contain a user message after the system messages",
        ));
    };
    if messages[first_turn].role != Role::User {
        return Err(Error::invalid(
            format!("messages[{first_turn}].role"),
            "must be user: the conversation starts with a user message",
        ));
    }
    if let Some(i) = messages[first_turn..]
        .iter()
        .position(|m| m.role == Role::System)
    {
        return Err(Error::invalid(
            format!("messages[{}].role", first_turn + i),
            "system messages must come before the conversation",
        ));
    }
    let last = messages.len() - 1;
    if messages[last].role != Role::User {
        return Err(Error::invalid(
            format!("messages[{last}].role"),
            "must be user: the conversation ends with the user's turn",
        ));
    }
    Ok(())
}

fn parse_model(params: &mut Params) -> Result<Option<String>> {
    let Some(model) = params.opt_str("model")? else {
        return Ok(None);
    };
    if model.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(
            "model",
            format!("must be a model name without spaces, got {}", echo(&model)),
        ));
    }
    Ok(Some(model))
}

/// Cross-provider names of models that several providers host. A request
/// naming one runs on each provider that hosts it, under that provider's own
/// id; see the module docs.
pub const MODEL_ALIASES: &[&str] = &["llama-3.3-70b", "llama-3.1-8b", "gpt-4o-mini"];

/// The model id `provider` runs for `requested`: its `default` when nothing
/// is asked, its entry in `aliases` for a name in [`MODEL_ALIASES`] (or
/// [`FailureClass::Unsupported`](crate::error::FailureClass::Unsupported)
/// when it has none), any other name unchanged.
///
/// ```
/// use polyrelay::capability::llm::pick_model;
/// let aliases = &[("llama-3.3-70b", "llama-3.3-70b-versatile")];
/// assert_eq!(pick_model(None, "llama-3.3-70b-versatile", aliases, "groq").unwrap(), "llama-3.3-70b-versatile");
/// assert_eq!(pick_model(Some("llama-3.3-70b"), "x", aliases, "groq").unwrap(), "llama-3.3-70b-versatile");
/// assert_eq!(pick_model(Some("my-finetune"), "x", aliases, "groq").unwrap(), "my-finetune");
/// assert!(pick_model(Some("gpt-4o-mini"), "x", aliases, "groq").is_err());
/// ```
pub fn pick_model<'a>(
    requested: Option<&'a str>,
    default: &'a str,
    aliases: &'a [(&'static str, &'static str)],
    provider: &str,
) -> std::result::Result<&'a str, ProviderFailure> {
    let Some(requested) = requested else {
        return Ok(default);
    };
    if !MODEL_ALIASES.contains(&requested) {
        return Ok(requested);
    }
    aliases
        .iter()
        .find(|(alias, _)| *alias == requested)
        .map(|(_, id)| *id)
        .ok_or_else(|| {
            ProviderFailure::unsupported(format!("{provider} does not host {requested}")).not_sent()
        })
}

/// Whether a provider's error text says the prompt does not fit the model's
/// context window, in any of the providers' wordings ("maximum context
/// length is 8192 tokens", "prompt is too long", "exceeds the maximum number
/// of tokens allowed", …) and not a tokens-per-minute limit.
pub fn is_context_overflow(text: &str) -> bool {
    const OVERFLOW: &[&str] = &[
        "context_length_exceeded",
        "context length",
        "context window",
        "context limit",
        "context size",
        "exceed_context_size",
        "prompt is too long",
        "exceeds the maximum number of tokens",
        "too many tokens",
        "tokens + `max_new_tokens` must be",
    ];
    const THROTTLING: &[&str] = &["rate limit", "per minute", "per min", "(tpm)", "quota"];
    let text = text.to_ascii_lowercase();
    OVERFLOW.iter().any(|p| text.contains(p)) && !THROTTLING.iter().any(|p| text.contains(p))
}

/// Why generation stopped, the same way for every provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished its answer (or hit a stop sequence).
    Stop,
    /// `max_tokens` was reached.
    Length,
    /// The model asked to call a tool.
    ToolCalls,
    /// A filter cut the answer short; the text before it is kept. A refusal
    /// with no answer at all is not a reply: the call fails with
    /// [`crate::Error::ContentFiltered`].
    ContentFilter,
    /// The context window filled up while generating.
    ContextLength,
    /// Generation failed. A provider answering this is treated as failed and
    /// the next one is tried; the variant exists for streaming.
    Error,
    /// Anything else the provider reported.
    Other,
}

/// Token counts of one chat call, as far as the provider reports them
/// (`None`: not reported, never a guessed 0). `output_tokens` includes any
/// reasoning tokens, as OpenAI counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: Option<u64>,
    /// Generated tokens, reasoning included.
    pub output_tokens: Option<u64>,
    /// `input_tokens + output_tokens`, or the provider's own total.
    pub total_tokens: Option<u64>,
    /// Prompt tokens served from the provider's prompt cache, when reported.
    pub cached_input_tokens: Option<u64>,
    /// Generated tokens spent on hidden reasoning, when reported.
    pub reasoning_tokens: Option<u64>,
}

impl TokenUsage {
    /// Usage with the total computed (when both counts are known) and
    /// nothing else known.
    pub fn new(input_tokens: Option<u64>, output_tokens: Option<u64>) -> Self {
        Self {
            input_tokens,
            output_tokens,
            total_tokens: input_tokens
                .zip(output_tokens)
                .map(|(i, o)| i.saturating_add(o)),
            cached_input_tokens: None,
            reasoning_tokens: None,
        }
    }
}

/// Answer of `llm.chat`. Every field is present whichever provider answers;
/// what a provider does not report is `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatReply {
    /// The provider's id for this completion, when it gives one.
    pub id: Option<String>,
    /// The model that answered, as the provider names it; the model asked
    /// for when the reply does not say.
    pub model: String,
    /// The answer's text (all text parts, concatenated).
    pub text: String,
    /// Hidden reasoning the provider returned separately (DeepSeek
    /// `reasoning_content`, Anthropic thinking, Gemini thoughts), if any.
    pub reasoning: Option<String>,
    /// Why generation stopped, when the provider says.
    pub finish_reason: Option<FinishReason>,
    /// Token counts.
    pub usage: TokenUsage,
}

/// What the embedded texts will be used for; Cohere and Gemini embed
/// differently for each, the others ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingPurpose {
    /// Texts to store and search in (the default).
    Document,
    /// A search query to compare against stored documents.
    Query,
}

/// Request of `llm.embeddings`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct EmbeddingsQuery {
    /// The texts, exactly as given (1 to [`MAX_EMBEDDING_INPUTS`]).
    pub inputs: Vec<String>,
    /// A model name; `None` for each provider's default.
    pub model: Option<String>,
    /// What the vectors are for.
    pub purpose: EmbeddingPurpose,
}

impl EmbeddingsQuery {
    /// The parameters: `inputs`, `model`, `purpose`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            Param::new(
                "inputs",
                ParamKind::TextList {
                    max_items: MAX_EMBEDDING_INPUTS as u32,
                    max_chars: None,
                },
                "The texts to embed, each sent exactly as given.",
                r#"["The quick brown fox"]"#,
            )
            .required(),
            MODEL,
            Param::new(
                "purpose",
                ParamKind::Choice {
                    values: &["document", "query"],
                },
                "What the vectors are for: documents to store, or a query to compare with them.",
                r#""query""#,
            )
            .or(ParamDefault::Text("document")),
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `inputs` (a string or a list of strings),
    /// `model`, `purpose` (`document` or `query`).
    pub fn from_params(mut params: Params) -> Result<Self> {
        let inputs = match params.opt_value("inputs") {
            None => return Err(params.missing("inputs")),
            Some(Value::String(text)) => vec![text],
            Some(Value::Array(items)) => {
                let mut inputs = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(text) => inputs.push(text),
                        other => {
                            return Err(Error::invalid(
                                format!("inputs[{i}]"),
                                format!("must be a string, got {}", type_name(&other)),
                            ))
                        }
                    }
                }
                inputs
            }
            Some(other) => {
                return Err(Error::invalid(
                    "inputs",
                    format!(
                        "must be a text or a list of texts, got {}",
                        type_name(&other)
                    ),
                ))
            }
        };
        if inputs.is_empty() || inputs.len() > MAX_EMBEDDING_INPUTS {
            return Err(Error::invalid(
                "inputs",
                format!(
                    "must hold 1 to {MAX_EMBEDDING_INPUTS} texts, got {}",
                    inputs.len()
                ),
            ));
        }
        if let Some(i) = inputs.iter().position(|t| t.trim().is_empty()) {
            return Err(Error::invalid(format!("inputs[{i}]"), "must not be empty"));
        }
        let model = parse_model(&mut params)?;
        let purpose = match params.str("purpose")?.as_str() {
            "document" => EmbeddingPurpose::Document,
            "query" => EmbeddingPurpose::Query,
            other => {
                return Err(Error::invalid(
                    "purpose",
                    format!("must be document or query, got {}", echo(other)),
                ))
            }
        };
        params.finish()?;
        Ok(Self {
            inputs,
            model,
            purpose,
        })
    }
}

/// Token counts of one embeddings call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingUsage {
    /// Tokens embedded, when the provider reports them (Gemini does not).
    pub input_tokens: Option<u64>,
}

/// Answer of `llm.embeddings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embeddings {
    /// The model that embedded, as the provider names it.
    pub model: String,
    /// Length of every vector.
    pub dimensions: usize,
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Token counts.
    pub usage: EmbeddingUsage,
}

impl Embeddings {
    /// Checks that there is one vector per input and that all have the same,
    /// non-zero length; anything else is a malformed reply.
    pub fn new(
        model: String,
        vectors: Vec<Vec<f32>>,
        inputs: usize,
        usage: EmbeddingUsage,
    ) -> std::result::Result<Self, ProviderFailure> {
        if vectors.len() != inputs {
            return Err(ProviderFailure::malformed(format!(
                "{} vectors for {inputs} inputs",
                vectors.len()
            )));
        }
        let dimensions = vectors.first().map_or(0, Vec::len);
        if dimensions == 0 || vectors.iter().any(|v| v.len() != dimensions) {
            return Err(ProviderFailure::malformed(
                "vectors are empty or of different lengths",
            ));
        }
        Ok(Self {
            model,
            dimensions,
            vectors,
            usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::capability::Request;
    use crate::error::FailureClass;

    fn chat(params: Value) -> Result<ChatQuery> {
        ChatQuery::from_params(Params::new(params, &ChatQuery::PARAMS)?)
    }

    fn field_of(err: Error) -> String {
        match err {
            Error::InvalidRequest { field, .. } => field,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": text})
    }

    #[test]
    fn a_valid_chat_request_keeps_everything_as_given() {
        let q = chat(json!({
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "system", "content": "Answer in French."},
                user("  Hi  "),
                {"role": "assistant", "content": "Bonjour"},
                user("Capital?"),
            ],
            "model": "llama-3.3-70b",
            "max_tokens": 64,
            "temperature": 0.7,
            "stream": false,
        }))
        .unwrap();
        assert_eq!(q.messages.len(), 5);
        assert_eq!(q.messages[2].content, "  Hi  ", "content is not trimmed");
        assert_eq!(q.model.as_deref(), Some("llama-3.3-70b"));
        assert_eq!(q.max_tokens, Some(64));
        assert_eq!(q.temperature.map(Temperature::get), Some(0.7));
        assert_eq!(
            q.system_prompt().as_deref(),
            Some("Be brief.\n\nAnswer in French.")
        );
        assert_eq!(q.turns().len(), 3);
        assert_eq!(q.turns()[0].role, Role::User);

        let q = chat(json!({"messages": [user("Hi")]})).unwrap();
        assert_eq!(q.system_prompt(), None);
        assert_eq!((q.model, q.max_tokens, q.temperature), (None, None, None));
    }

    #[test]
    fn chat_validation_names_the_field_before_anything_is_sent() {
        let err = |params: Value| field_of(chat(params).unwrap_err());
        assert_eq!(err(json!({})), "messages");
        assert_eq!(err(json!({"messages": []})), "messages");
        assert_eq!(err(json!({"messages": "hi"})), "messages");
        assert_eq!(err(json!({"messages": ["hi"]})), "messages[0]");
        assert_eq!(
            err(json!({"messages": [{"role": "tool", "content": "x"}]})),
            "messages[0].role"
        );
        assert_eq!(
            err(json!({"messages": [{"role": "user"}]})),
            "messages[0].content"
        );
        assert_eq!(
            err(json!({"messages": [{"role": "user", "content": " \n"}]})),
            "messages[0].content"
        );
        assert_eq!(
            err(json!({"messages": [{"role": "user", "content": 3}]})),
            "messages[0].content"
        );
        assert_eq!(
            err(json!({"messages": [{"role": "user", "content": "x", "name": "bob"}]})),
            "messages[0].name"
        );
        // Order rules.
        assert_eq!(
            err(json!({"messages": [{"role": "system", "content": "x"}]})),
            "messages"
        );
        assert_eq!(
            err(json!({"messages": [{"role": "assistant", "content": "x"}, user("y")]})),
            "messages[0].role"
        );
        assert_eq!(
            err(json!({"messages": [user("x"), {"role": "system", "content": "y"}, user("z")]})),
            "messages[1].role"
        );
        assert_eq!(
            err(json!({"messages": [user("x"), {"role": "assistant", "content": "y"}]})),
            "messages[1].role"
        );
        // Scalars.
        let ok = json!([user("x")]);
        assert_eq!(
            err(json!({"messages": ok, "temperature": 2.5})),
            "temperature"
        );
        assert_eq!(
            err(json!({"messages": ok, "temperature": -0.1})),
            "temperature"
        );
        assert_eq!(err(json!({"messages": ok, "max_tokens": 0})), "max_tokens");
        assert_eq!(err(json!({"messages": ok, "max_tokens": -5})), "max_tokens");
        assert_eq!(
            err(json!({"messages": ok, "max_tokens": 2_000_000})),
            "max_tokens"
        );
        assert_eq!(err(json!({"messages": ok, "model": "gpt 4"})), "model");
        assert_eq!(err(json!({"messages": ok, "model": ""})), "model");
        assert_eq!(err(json!({"messages": ok, "stream": true})), "stream");
        assert_eq!(err(json!({"messages": ok, "top_k": 3})), "top_k");
    }

    #[test]
    fn equal_temperatures_make_equal_cache_keys() {
        let a = Request::parse(
            "llm.chat",
            json!({"messages": [user("x")], "temperature": 0.3}),
        );
        let b = Request::parse(
            "llm.chat",
            json!({"messages": [user("x")], "temperature": "0.300001"}),
        );
        assert_eq!(a.unwrap(), b.unwrap());
        assert_eq!(Temperature::new(2.0).unwrap().get(), 2.0);
        assert_eq!(
            serde_json::to_value(Temperature::new(0.7).unwrap()).unwrap(),
            json!(0.7)
        );
    }

    #[test]
    fn embeddings_validation_keeps_texts_exact() {
        let q = |params: Value| {
            EmbeddingsQuery::from_params(Params::new(params, &EmbeddingsQuery::PARAMS).unwrap())
        };
        let one = q(json!({"inputs": "Hello, world "})).unwrap();
        assert_eq!(
            one.inputs,
            ["Hello, world "],
            "not split at commas, not trimmed"
        );
        assert_eq!(one.purpose, EmbeddingPurpose::Document);
        let two = q(json!({"inputs": ["a", "b"], "purpose": "query", "model": "m"})).unwrap();
        assert_eq!(two.inputs, ["a", "b"]);
        assert_eq!(two.purpose, EmbeddingPurpose::Query);
        assert_eq!(two.model.as_deref(), Some("m"));

        let err = |params: Value| field_of(q(params).unwrap_err());
        assert_eq!(err(json!({})), "inputs");
        assert_eq!(err(json!({"inputs": []})), "inputs");
        assert_eq!(err(json!({"inputs": 3})), "inputs");
        assert_eq!(err(json!({"inputs": ["a", ""]})), "inputs[1]");
        assert_eq!(err(json!({"inputs": ["a", 2]})), "inputs[1]");
        let many: Vec<String> = (0..=MAX_EMBEDDING_INPUTS).map(|i| i.to_string()).collect();
        assert_eq!(err(json!({"inputs": many})), "inputs");
        assert_eq!(err(json!({"inputs": "a", "purpose": "search"})), "purpose");
        assert_eq!(err(json!({"inputs": "a", "dimensions": 3})), "dimensions");
    }

    #[test]
    fn models_are_picked_the_same_way_by_every_provider() {
        let aliases: &[(&str, &str)] = &[("llama-3.1-8b", "llama-3.1-8b-instant")];
        assert_eq!(pick_model(None, "d", aliases, "p").unwrap(), "d");
        assert_eq!(
            pick_model(Some("llama-3.1-8b"), "d", aliases, "p").unwrap(),
            "llama-3.1-8b-instant"
        );
        assert_eq!(
            pick_model(Some("exact-id"), "d", aliases, "p").unwrap(),
            "exact-id"
        );
        let f = pick_model(Some("llama-3.3-70b"), "d", aliases, "p").unwrap_err();
        assert_eq!(f.class, FailureClass::Unsupported);
        assert!(!f.request_sent);
        assert!(f.message.contains("llama-3.3-70b"), "{}", f.message);
    }

    #[test]
    fn context_overflow_is_recognised_in_every_wording() {
        for text in [
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 8227 tokens.",
            "prompt is too long: 208732 tokens > 200000 maximum",
            "input length and `max_tokens` exceed context limit: 198214 + 8192 > 200000",
            "Prompt contains 40000 tokens, too large for model with 32768 maximum context length",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            "request (351 tokens) exceeds the available context size (256 tokens), try increasing it",
            "too many tokens: total number of tokens in the prompt cannot exceed 4081",
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8193. Given: 9000 `inputs` tokens and 64 `max_new_tokens`",
        ] {
            assert!(is_context_overflow(text), "{text}");
        }
        for text in [
            "Rate limit reached for model in organization on tokens per min (TPM): Limit 6000",
            "Request too large for model `llama3-70b-8192` on tokens per minute (TPM): Limit 6000",
            "Invalid API key",
            "You exceeded your current quota",
        ] {
            assert!(!is_context_overflow(text), "{text}");
        }
    }

    #[test]
    fn embeddings_must_match_the_inputs() {
        let usage = EmbeddingUsage { input_tokens: None };
        let ok =
            Embeddings::new("m".into(), vec![vec![0.1, 0.2], vec![0.3, 0.4]], 2, usage).unwrap();
        assert_eq!(ok.dimensions, 2);
        for (vectors, inputs) in [
            (vec![vec![0.1, 0.2]], 2),
            (vec![vec![0.1], vec![0.2, 0.3]], 2),
            (vec![vec![]], 1),
        ] {
            let f = Embeddings::new("m".into(), vectors, inputs, usage).unwrap_err();
            assert_eq!(f.class, FailureClass::MalformedResponse);
        }
    }

    #[test]
    fn replies_always_have_every_field() {
        let reply = ChatReply {
            id: None,
            model: "m".into(),
            text: "Hi".into(),
            reasoning: None,
            finish_reason: Some(FinishReason::ContentFilter),
            usage: TokenUsage::new(Some(3), Some(4)),
        };
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(json["id"], Value::Null);
        assert_eq!(json["finish_reason"], "content_filter");
        assert_eq!(json["usage"]["total_tokens"], 7);
        assert_eq!(json["usage"]["cached_input_tokens"], Value::Null);
    }
}
