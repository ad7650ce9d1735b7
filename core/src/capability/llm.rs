//! `llm.chat` and `llm.embeddings`: requests and normalised answers.
//!
//! Requests are validated completely before any provider sees them, so an
//! invalid conversation fails fast with the offending field named
//! (`messages[2].role`) instead of being refused by each provider in turn.
//! A call answers whole; [`Client::stream`](crate::Client::stream) takes the
//! same parameters (and `stream: true`) and answers as the text is written.
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
//! # Tool calls
//!
//! `tools` (functions with a JSON Schema of their arguments) and
//! `tool_choice` are read once ([`tools`]) and sent in each provider's own
//! words; the model's calls come back as [`ChatReply::tool_calls`] (finish
//! reason `tool_calls`), and each is answered by a `tool` message naming
//! its id after the assistant message that made it. A provider that cannot
//! honour the request (Ollama asked to call a tool, Cohere asked for one
//! named tool) is skipped as unsupported without a request: tools are never
//! dropped silently.
//!
//! # Structured output
//!
//! `response_format` asks for JSON (`{"type": "json_object"}`) or JSON
//! matching a JSON Schema (`{"type": "json_schema", "json_schema": {name,
//! schema, strict}}`), read once ([`structured`]; a schema that does not
//! compile fails before anything is sent). Each provider is asked in its
//! own words where it has them, else told the schema in a system
//! instruction; whoever answers, the answer is parsed and checked against
//! the schema, and one that does not hold is a malformed answer, so the
//! next provider is asked. The parsed value is [`ChatReply::parsed`]. An
//! answer that calls tools is not checked: its text is not the final
//! answer.
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

pub mod models;
pub mod stream;
pub mod structured;
pub mod tools;
pub use stream::{ChatAccumulator, ChatDelta, ChatMeta, ToolCallDelta};
pub use structured::{ResponseFormat, SchemaFormat};
pub use tools::{JsonSchema, Tool, ToolCall, ToolChoice};

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
    /// The model's earlier answers, text or tool calls.
    Assistant,
    /// The result of one of the model's tool calls.
    Tool,
}

impl Role {
    /// The lower-case name used on the wire by most providers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Tool => "tool",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// The text, exactly as given; may be empty in an assistant message
    /// that calls tools.
    pub content: String,
    /// The tools an assistant message calls (empty otherwise).
    pub tool_calls: Vec<ToolCall>,
    /// The call a `tool` message answers (`None` otherwise).
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A message of text alone.
    pub fn text(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
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
pub(crate) const MAX_MODEL_LEN: u32 = 200;

/// `model`, read the same way by both LLM capabilities.
const MODEL: Param = Param::new(
    "model",
    ParamKind::String {
        max_chars: Some(MAX_MODEL_LEN),
    },
    "A model name or cross-provider alias; each provider's default when left out.",
    r#""gpt-4o-mini""#,
);

/// Longest caller tag (and budget name).
pub const MAX_TAG_LEN: usize = 64;

/// Checks a caller's tag (or a budget's name): 1 to [`MAX_TAG_LEN`]
/// letters, digits and `_ - . : /`, as they name trail entries and Redis
/// keys.
pub(crate) fn check_tag(text: &str) -> std::result::Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-.:/".contains(c);
    if text.is_empty() || text.chars().count() > MAX_TAG_LEN || !text.chars().all(allowed) {
        return Err(format!(
            "must be 1 to {MAX_TAG_LEN} letters, digits or _ - . : /, got {}",
            echo(text)
        ));
    }
    Ok(())
}

const TAG: Param = Param::new(
    "tag",
    ParamKind::String {
        max_chars: Some(MAX_TAG_LEN as u32),
    },
    "A caller tag (letters, digits, _ - . : /): budgets whose `tags` name it count the call.",
    r#""team-a""#,
);

/// Reads the `tag` parameter.
fn parse_tag(params: &mut Params) -> Result<Option<String>> {
    let Some(tag) = params.opt_str("tag")? else {
        return Ok(None);
    };
    check_tag(&tag).map_err(|e| Error::invalid("tag", e))?;
    Ok(Some(tag))
}

/// Largest `max_tokens` accepted; no model writes more in one answer.
const MAX_OUTPUT_TOKENS: u64 = 1_000_000;

/// Most inputs in one `llm.embeddings` call: Cohere's per-call limit, the
/// smallest of the providers, so every provider of the chain can serve any
/// valid request.
pub const MAX_EMBEDDING_INPUTS: usize = 96;

/// Request of `llm.chat`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ChatQuery {
    /// The conversation: optional system messages first, then user,
    /// assistant and tool turns, starting with the user and ending with
    /// the user or with the results of the model's last tool calls.
    pub messages: Vec<ChatMessage>,
    /// A model name or alias; `None` for each provider's default.
    pub model: Option<String>,
    /// Most tokens to generate; `None` for the provider's default (4096 where
    /// the provider requires a value).
    pub max_tokens: Option<u32>,
    /// Sampling temperature; `None` for the provider's default.
    pub temperature: Option<Temperature>,
    /// Functions the model may call; a provider that cannot honour them
    /// is skipped, never asked without them.
    pub tools: Vec<Tool>,
    /// Whether, and which, tool the model must call; `None` for the
    /// provider's default (auto). Only set when `tools` are.
    pub tool_choice: Option<ToolChoice>,
    /// The form the answer must take; `None` for free text.
    pub response_format: Option<ResponseFormat>,
    /// The caller's tag, for budgets; never sent to a provider.
    pub tag: Option<String>,
}

/// What a provider continuing another's interrupted answer is asked.
const CONTINUE_PROMPT: &str = "Your previous answer was cut off. Continue it exactly where it stopped, without repeating any of it and without any preamble.";

impl ChatQuery {
    /// The parameters: `messages`, `model`, `max_tokens`, `temperature`,
    /// `tools`, `tool_choice`, `response_format`, `stream`, `tag`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            Param::new(
                "messages",
                ParamKind::Messages,
                "The conversation: optional system messages, then user, assistant and tool turns, ending with the user or with tool results.",
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
                "tools",
                ParamKind::Tools,
                "Functions the model may call, each with a JSON Schema of its arguments.",
                r#"[{"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]"#,
            ),
            Param::new(
                "tool_choice",
                ParamKind::ToolChoice,
                "auto (the default), none, required, or one declared tool as {\"type\": \"function\", \"function\": {\"name\": ...}}.",
                r#""auto""#,
            ),
            Param::new(
                "response_format",
                ParamKind::ResponseFormat,
                "The form of the answer: {\"type\": \"json_object\"}, or {\"type\": \"json_schema\", \"json_schema\": {\"name\": ..., \"schema\": {...}, \"strict\": ...}}; the answer is checked and parsed into `parsed`.",
                r#"{"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object", "properties": {"name": {"type": "string"}, "population": {"type": "integer"}}, "required": ["name", "population"]}}}"#,
            ),
            Param::new(
                "stream",
                ParamKind::Boolean,
                "Only false in a call: a streamed answer is asked with Client::stream (client.llm.stream in Python).",
                "false",
            )
            .or(ParamDefault::Boolean(false)),
            TAG,
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `messages` (required), `model`, `max_tokens`,
    /// `temperature`, `tools`, `tool_choice` (naming a declared tool),
    /// `response_format` (its schema compiled), and `stream` (only
    /// `false`: streams are opened with
    /// [`Client::stream`](crate::Client::stream)).
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
        let tools = params
            .opt_value("tools")
            .map(tools::parse_tools)
            .transpose()?
            .unwrap_or_default();
        let tool_choice = match params.opt_value("tool_choice") {
            Some(value) => tools::parse_tool_choice(value, &tools)?,
            None => None,
        };
        let response_format = match params.opt_value("response_format") {
            Some(value) => structured::parse_response_format(value)?,
            None => None,
        };
        match params.opt_value("stream") {
            None | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => {
                return Err(Error::invalid(
                    "stream",
                    "must be false in a call: a streamed answer is asked with Client::stream (client.llm.stream in Python)",
                ))
            }
            Some(other) => {
                return Err(Error::invalid(
                    "stream",
                    format!("must be false, got {}", type_name(&other)),
                ))
            }
        }
        let tag = parse_tag(&mut params)?;
        params.finish()?;
        Ok(Self {
            messages,
            model,
            max_tokens,
            temperature,
            tools,
            tool_choice,
            response_format,
            tag,
        })
    }

    /// This question with `partial`, an answer cut short, to be continued:
    /// the partial answer as the assistant's turn, then the request to go
    /// on from its last character. Every provider takes this form (not all
    /// take an assistant turn last, as a prefill); `partial` empty gives
    /// the question unchanged. A continuation of a structured answer is
    /// asked without `response_format`, since a provider held to the
    /// schema would write a whole new value rather than the rest of this
    /// one; the joined text is checked against it at the end.
    pub fn continuation(&self, partial: &str) -> ChatQuery {
        let mut query = self.clone();
        if !partial.is_empty() {
            query.response_format = None;
            query
                .messages
                .push(ChatMessage::text(Role::Assistant, partial));
            query
                .messages
                .push(ChatMessage::text(Role::User, CONTINUE_PROMPT));
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

    /// The name of the tool whose call the tool message `result` answers,
    /// for providers that answer a call by the tool's name (Gemini,
    /// Ollama): the latest call with its id before it. Providers that send
    /// no call ids get ids numbered again in every answer (`call_0`, …), so
    /// an id alone may name several calls of one conversation.
    pub fn tool_name(&self, result: &ChatMessage) -> Option<&str> {
        let id = result.tool_call_id.as_deref()?;
        let before = self
            .messages
            .iter()
            .position(|m| std::ptr::eq(m, result))
            .unwrap_or(self.messages.len());
        self.messages[..before]
            .iter()
            .rev()
            .flat_map(|m| m.tool_calls.iter().rev())
            .find(|c| c.id == id)
            .map(|c| c.name.as_str())
    }

    /// `reply` with its text checked against `response_format` and parsed
    /// into [`ChatReply::parsed`]; a reply whose text does not hold is a
    /// malformed answer (the next provider is asked). Without a format, or
    /// when the model calls tools (its text is not the final answer), the
    /// reply is returned as it is.
    pub fn check_reply(
        &self,
        mut reply: ChatReply,
    ) -> std::result::Result<ChatReply, ProviderFailure> {
        if let Some(format) = &self.response_format {
            if reply.tool_calls.is_empty() {
                reply.parsed = Some(format.check(&reply.text)?);
            }
        }
        Ok(reply)
    }

    /// The system messages a provider sends, with `instruction` appended
    /// as the last of them (for a provider told the answer's form rather
    /// than asked for it in its own words).
    pub fn with_instruction(&self, instruction: String) -> ChatQuery {
        let mut query = self.clone();
        let at = query
            .messages
            .iter()
            .position(|m| m.role != Role::System)
            .unwrap_or(query.messages.len());
        query
            .messages
            .insert(at, ChatMessage::text(Role::System, instruction));
        query
    }

    /// Fails as unsupported, so that `provider` is skipped before anything
    /// is sent, when this request has a `tool_choice` that `supported`
    /// refuses.
    pub fn check_tool_choice(
        &self,
        provider: &str,
        supported: impl Fn(&ToolChoice) -> bool,
    ) -> std::result::Result<(), ProviderFailure> {
        match &self.tool_choice {
            Some(choice) if !supported(choice) => Err(ProviderFailure::unsupported(format!(
                "{provider} cannot honour tool_choice {}",
                match choice {
                    ToolChoice::Auto => "auto".to_string(),
                    ToolChoice::None => "none".to_string(),
                    ToolChoice::Required => "required".to_string(),
                    ToolChoice::Tool(name) => format!("naming {name}"),
                }
            ))
            .not_sent()),
            _ => Ok(()),
        }
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
        messages.push(parse_message(item, i)?);
    }
    check_order(&messages)?;
    Ok(messages)
}

pub(crate) fn parse_message(item: Value, i: usize) -> Result<ChatMessage> {
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
            "tool" => Role::Tool,
            other => {
                return Err(Error::invalid(
                    format!("messages[{i}].role"),
                    format!(
                        "must be system, user, assistant or tool, got {}",
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
    let tool_calls = match fields.remove("tool_calls") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) if role == Role::Assistant => {
            tools::parse_tool_calls(value, &format!("messages[{i}].tool_calls"))?
        }
        Some(_) => {
            return Err(Error::invalid(
                format!("messages[{i}].tool_calls"),
                "is only for assistant messages",
            ))
        }
    };
    let tool_call_id = match fields.remove("tool_call_id") {
        None | Some(Value::Null) if role == Role::Tool => {
            return Err(Error::invalid(
                format!("messages[{i}].tool_call_id"),
                "is required: the id of the tool call this message answers",
            ))
        }
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if role == Role::Tool && !id.trim().is_empty() => Some(id),
        Some(_) if role != Role::Tool => {
            return Err(Error::invalid(
                format!("messages[{i}].tool_call_id"),
                "is only for tool messages",
            ))
        }
        Some(other) => {
            return Err(Error::invalid(
                format!("messages[{i}].tool_call_id"),
                format!("must be a non-empty string, got {}", type_name(&other)),
            ))
        }
    };
    // An assistant message calling tools may have no text.
    let may_be_empty = !tool_calls.is_empty();
    let content = match fields.remove("content") {
        Some(Value::String(text)) if may_be_empty || !text.trim().is_empty() => text,
        None | Some(Value::Null) if may_be_empty => String::new(),
        Some(Value::String(_)) | Some(Value::Null) | None => {
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
            "is not a known field; expected role, content, tool_calls (assistant) \
             and tool_call_id (tool)",
        ));
    }
    Ok(ChatMessage {
        role,
        content,
        tool_calls,
        tool_call_id,
    })
}

/// The conversation rules every provider can represent: system messages
/// first (Anthropic, Gemini and Cohere hold them apart), then turns that
/// start with the user; an assistant message calling tools is followed by
/// one `tool` message per call, answering it by id, before anything else
/// (Anthropic and Gemini need every call answered in the next turn); the
/// conversation ends with the user or with those results, so every
/// provider answers the same question.
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
    // Ids of the last assistant message's calls not answered yet.
    let mut unanswered: Vec<&str> = Vec::new();
    for (i, m) in messages.iter().enumerate().skip(first_turn) {
        match m.role {
            Role::System => {
                return Err(Error::invalid(
                    format!("messages[{i}].role"),
                    "system messages must come before the conversation",
                ))
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or_default();
                let Some(at) = unanswered.iter().position(|u| *u == id) else {
                    return Err(Error::invalid(
                        format!("messages[{i}].tool_call_id"),
                        format!(
                            "must answer an unanswered tool call of the assistant message \
                             before it, got {}",
                            echo(id)
                        ),
                    ));
                };
                unanswered.remove(at);
            }
            Role::User | Role::Assistant => {
                if let Some(first) = unanswered.first() {
                    return Err(Error::invalid(
                        format!("messages[{i}].role"),
                        format!(
                            "must be tool: {} tool call(s) of the assistant are not answered yet, \
                             the first {}",
                            unanswered.len(),
                            echo(first)
                        ),
                    ));
                }
                unanswered = m.tool_calls.iter().map(|c| c.id.as_str()).collect();
            }
        }
    }
    let last = messages.len() - 1;
    if !unanswered.is_empty() || !matches!(messages[last].role, Role::User | Role::Tool) {
        return Err(Error::invalid(
            format!("messages[{last}].role"),
            "must be user or tool: the conversation ends with the user's turn \
             or with the results of the model's tool calls",
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
    /// The answer's text (all text parts, concatenated); may be empty when
    /// the model calls tools.
    pub text: String,
    /// The tools the model calls, in order (empty when none); answer each
    /// with a `tool` message naming its id.
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// Hidden reasoning the provider returned separately (DeepSeek
    /// `reasoning_content`, Anthropic thinking, Gemini thoughts), if any.
    pub reasoning: Option<String>,
    /// Why generation stopped, when the provider says.
    pub finish_reason: Option<FinishReason>,
    /// Token counts.
    pub usage: TokenUsage,
    /// The answer parsed as JSON, when the request asked for a
    /// `response_format` (checked against its schema); `None` otherwise,
    /// and when the model calls tools.
    #[serde(default)]
    pub parsed: Option<Value>,
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
    /// The vector space the call is pinned to: only its provider is asked,
    /// with its model, and the call never falls over to another.
    pub space: Option<VectorSpace>,
    /// The caller's tag, for budgets; never sent to a provider.
    pub tag: Option<String>,
}

/// A vector space: the provider and model that made an index's vectors.
/// Vectors compare only with vectors of their own space, so an index's
/// later calls pin it (`space` in `llm.embeddings`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct VectorSpace {
    /// The provider id.
    pub provider: String,
    /// The model, as the provider names it.
    pub model: String,
}

impl VectorSpace {
    /// Reads `provider/model`, as [`Embeddings::space`] names a space (the
    /// model may hold further `/`).
    pub fn parse(text: &str) -> Option<Self> {
        let (provider, model) = text.trim().split_once('/')?;
        let valid =
            |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        (valid(provider) && valid(model)).then(|| Self {
            provider: provider.to_string(),
            model: model.to_string(),
        })
    }
}

impl std::fmt::Display for VectorSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

impl EmbeddingsQuery {
    /// The parameters: `inputs`, `model`, `purpose`, `space`, `tag`.
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
            Param::new(
                "space",
                ParamKind::Qualified {
                    max_chars: MAX_MODEL_LEN + 64,
                },
                "Pins the call to an index's vector space (`provider/model`, as a result's `space` names it): only that provider and model are asked, never another.",
                r#""openai/text-embedding-3-small""#,
            ),
            TAG,
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `inputs` (a string or a list of strings),
    /// `model`, `purpose` (`document` or `query`), `space`
    /// (`provider/model`; `model`, when also given, must be its model).
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
        let mut model = parse_model(&mut params)?;
        let space = match params.opt_str("space")? {
            None => None,
            Some(text) => {
                let Some(space) = VectorSpace::parse(&text) else {
                    return Err(Error::invalid(
                        "space",
                        format!(
                            "must be provider/model, as a result's space names it, got {}",
                            echo(&text)
                        ),
                    ));
                };
                if model.as_ref().is_some_and(|m| *m != space.model) {
                    return Err(Error::invalid(
                        "model",
                        format!(
                            "must be {}, the pinned space's model, or be left out",
                            echo(&space.model)
                        ),
                    ));
                }
                model = Some(space.model.clone());
                Some(space)
            }
        };
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
        let tag = parse_tag(&mut params)?;
        params.finish()?;
        Ok(Self {
            inputs,
            model,
            purpose,
            space,
            tag,
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
    /// The vector space, `provider/model`: these vectors compare only with
    /// vectors of the same space; give it as `space` to pin later calls.
    pub space: String,
    /// Length of every vector.
    pub dimensions: usize,
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Token counts.
    pub usage: EmbeddingUsage,
}

impl Embeddings {
    /// Checks that there is one vector per input and that all have the same,
    /// non-zero length; anything else is a malformed reply. `provider` is
    /// the id of the provider that embedded (its space's first half).
    pub fn new(
        provider: &str,
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
            space: format!("{provider}/{model}"),
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
    fn a_tool_result_is_named_by_the_latest_call_with_its_id_before_it() {
        // Gemini and Ollama send no call ids: each answer numbers its calls
        // from `call_0` again, so one id names a call of every turn.
        let call = |name: &str| {
            json!({"id": "call_0", "type": "function",
                   "function": {"name": name, "arguments": "{}"}})
        };
        let result =
            |text: &str| json!({"role": "tool", "tool_call_id": "call_0", "content": text});
        let q = chat(json!({"messages": [
            user("Weather in Oslo, then the EUR rate?"),
            {"role": "assistant", "content": "", "tool_calls": [call("current_weather")]},
            result("12 °C"),
            {"role": "assistant", "content": "", "tool_calls": [call("fx_rates")]},
            result("11.7"),
        ]}))
        .unwrap();
        assert_eq!(q.tool_name(&q.messages[2]), Some("current_weather"));
        assert_eq!(q.tool_name(&q.messages[4]), Some("fx_rates"));
        assert_eq!(q.tool_name(&q.messages[0]), None, "not a tool result");
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
            err(json!({"messages": [{"role": "tool", "content": "x", "tool_call_id": "c"}]})),
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
        let ok = Embeddings::new(
            "p",
            "m".into(),
            vec![vec![0.1, 0.2], vec![0.3, 0.4]],
            2,
            usage,
        )
        .unwrap();
        assert_eq!(ok.dimensions, 2);
        for (vectors, inputs) in [
            (vec![vec![0.1, 0.2]], 2),
            (vec![vec![0.1], vec![0.2, 0.3]], 2),
            (vec![vec![]], 1),
        ] {
            let f = Embeddings::new("p", "m".into(), vectors, inputs, usage).unwrap_err();
            assert_eq!(f.class, FailureClass::MalformedResponse);
        }
    }

    #[test]
    fn replies_always_have_every_field() {
        let reply = ChatReply {
            id: None,
            model: "m".into(),
            text: "Hi".into(),
            tool_calls: Vec::new(),
            reasoning: None,
            finish_reason: Some(FinishReason::ContentFilter),
            usage: TokenUsage::new(Some(3), Some(4)),
            parsed: None,
        };
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(json["id"], Value::Null);
        assert_eq!(json["finish_reason"], "content_filter");
        assert_eq!(json["usage"]["total_tokens"], 7);
        assert_eq!(json["usage"]["cached_input_tokens"], Value::Null);
        assert_eq!(json["parsed"], Value::Null);
    }
}
