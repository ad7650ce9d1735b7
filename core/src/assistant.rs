//! The assistant (`assistant.ask`): an LLM tool-calling loop in which
//! polyrelay's own capabilities are the tools.
//!
//! ```text
//! Assistant::ask(question, conversation)
//! └ loop, one step per LLM turn
//!   ├ limits        max_steps, max_tokens, max_cost_usd, checked before every
//!   │               turn after the first: reached → Error::LimitReached
//!   │               carrying the conversation so far and the steps
//!   ├ llm.chat      Client::request with the conversation and the tools (or
//!   │               Client::stream for ask_stream): fallback, quotas, cache
//!   ├ text answer   the end: AssistantReply { text, conversation, steps }
//!   └ tool calls    each through Client::request, concurrently; its answer's
//!                   data JSON (or the error as a short message) goes back as
//!                   a `tool` message; an unknown tool or invalid arguments
//!                   get an error message without any network call
//! ```
//!
//! A tool is named after its capability with `_` for `.`
//! (`weather.current` → `weather_current`: the providers accept letters,
//! digits, `_` and `-` only) and its parameters are the capability's
//! published JSON Schema ([`CapabilityId::parameter_schema`]), so the tools
//! follow the capabilities without a table of their own.
//!
//! ```no_run
//! # async fn demo() -> polyrelay::Result<()> {
//! use polyrelay::assistant::Assistant;
//! let client = polyrelay::Client::builder().build()?;
//! let assistant = Assistant::new(&client);
//! let reply = assistant.ask("Weather in Oslo, and 1 EUR in NOK?", None).await?;
//! println!("{}", reply.text);
//! // Later, maybe in another process: the conversation is JSON.
//! let saved = reply.conversation.to_json();
//! let conversation = polyrelay::assistant::Conversation::from_json(saved)?;
//! let next = assistant.ask("And tomorrow?", Some(conversation)).await?;
//! // Or kept by id in the analytics store, loaded and saved by the ask.
//! let first = assistant.ask_saved("Weather in Oslo?", "user-42").await?;
//! let again = assistant.ask_saved("And in Bergen?", "user-42").await?;
//! assert_eq!(client.conversation_ids(10).await?, ["user-42"]);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::analytics::check_conversation_id;
use crate::answer::Envelope;
use crate::capability::llm::{parse_message, ChatMessage, Role, TokenUsage, ToolCall};
use crate::capability::{CapabilityId, Data, Request};
use crate::client::Client;
use crate::echo::echo;
use crate::error::{Attempt, Error, ErrorKind, Result};
use crate::stream::{ChatChunk, ChatStream};

/// The capabilities an [`Assistant`] offers as tools unless told otherwise:
/// weather, FX, crypto, quotes, geocoding, news, meta-search, translation,
/// dictionary, books, movies, TV, music, video, drug labels, literature and
/// clinical trials.
pub const DEFAULT_TOOLS: &[CapabilityId] = &[
    CapabilityId::WeatherCurrent,
    CapabilityId::WeatherForecast,
    CapabilityId::FxRates,
    CapabilityId::CryptoPrice,
    CapabilityId::StockQuote,
    CapabilityId::Geocode,
    CapabilityId::NewsSearch,
    CapabilityId::MetaSearch,
    CapabilityId::TranslateText,
    CapabilityId::DictionaryDefine,
    CapabilityId::BooksSearch,
    CapabilityId::MovieSearch,
    CapabilityId::TvShowSearch,
    CapabilityId::MusicSearch,
    CapabilityId::VideoSearch,
    CapabilityId::DrugLabel,
    CapabilityId::LiteratureSearch,
    CapabilityId::ClinicalTrials,
];

/// LLM turns one [`Assistant::ask`] may take by default.
pub const DEFAULT_MAX_STEPS: u32 = 8;

/// The system prompt of an [`Assistant`] unless told otherwise.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant. Use the tools for facts \
     that change (weather, prices, rates, news, search) instead of guessing, and answer \
     briefly from their results. A tool result starting with `error:` means the tool \
     failed; say so if it matters.";

/// How far one [`Assistant::ask`] may go. Counted per call, not per
/// conversation; each is checked before every LLM turn after the first, so
/// an answer already written is never thrown away.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Most LLM turns (at least 1).
    pub max_steps: u32,
    /// Most tokens (input and output, of every turn) before another turn.
    pub max_tokens: Option<u64>,
    /// Most US dollars (the engine's price of every turn) before another
    /// turn. A turn whose model is unpriced counts as free (its step's
    /// `cost_usd` is `None`).
    pub max_cost_usd: Option<f64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_steps: DEFAULT_MAX_STEPS,
            max_tokens: None,
            max_cost_usd: None,
        }
    }
}

/// Which [`Limits`] field stopped an assistant ([`Error::LimitReached`]
/// names it by [`Limit::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Limit {
    /// [`Limits::max_steps`].
    #[serde(rename = "max_steps")]
    Steps,
    /// [`Limits::max_tokens`].
    #[serde(rename = "max_tokens")]
    Tokens,
    /// [`Limits::max_cost_usd`].
    #[serde(rename = "max_cost_usd")]
    CostUsd,
}

impl Limit {
    /// The setting's name: `max_steps`, `max_tokens` or `max_cost_usd`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Steps => "max_steps",
            Self::Tokens => "max_tokens",
            Self::CostUsd => "max_cost_usd",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A conversation with an assistant: the user's questions, the model's
/// answers and tool calls, and the tools' results (the system prompt is
/// the [`Assistant`]'s, not kept here). Serialises as
/// `{"messages": [...]}`, each message in the OpenAI chat shape, and reads
/// back with [`Conversation::from_json`] (or serde) to be continued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    /// The messages, oldest first.
    pub messages: Vec<ChatMessage>,
}

impl Conversation {
    /// An empty conversation.
    pub fn new() -> Self {
        Self::default()
    }

    /// The conversation as JSON: `{"messages": [{"role", "content",
    /// "tool_calls"?, "tool_call_id"?}, ...]}`.
    pub fn to_json(&self) -> Value {
        json!({"messages": self.messages.iter().map(message_json).collect::<Vec<_>>()})
    }

    /// Reads a conversation from the JSON of [`Conversation::to_json`]
    /// (or a bare list of messages); a malformed one is an
    /// [`Error::InvalidRequest`] naming the field.
    pub fn from_json(value: Value) -> Result<Self> {
        let items = match value {
            Value::Object(mut fields) => match fields.remove("messages") {
                Some(Value::Array(items)) => items,
                _ => {
                    return Err(Error::invalid(
                        "conversation.messages",
                        "must be a list of messages",
                    ))
                }
            },
            Value::Array(items) => items,
            _ => {
                return Err(Error::invalid(
                    "conversation",
                    "must be {\"messages\": [...]} as an assistant reply gives it",
                ))
            }
        };
        let messages = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                parse_message(item, i).map_err(|e| match e {
                    Error::InvalidRequest { field, expected } => Error::InvalidRequest {
                        field: format!("conversation.{field}"),
                        expected,
                    },
                    other => other,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(i) = messages.iter().position(|m| m.role == Role::System) {
            return Err(Error::invalid(
                format!("conversation.messages[{i}].role"),
                "must not be system: the assistant adds its own system prompt",
            ));
        }
        Ok(Self { messages })
    }
}

impl Serialize for Conversation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Conversation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Self::from_json(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A message in the OpenAI chat shape (the shape `llm.chat` reads).
fn message_json(message: &ChatMessage) -> Value {
    let mut json = json!({"role": message.role.as_str(), "content": message.content});
    if !message.tool_calls.is_empty() {
        json["tool_calls"] = message
            .tool_calls
            .iter()
            .map(|call| {
                json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                })
            })
            .collect();
    }
    if let Some(id) = &message.tool_call_id {
        json["tool_call_id"] = json!(id);
    }
    json
}

/// One capability offered to the model as a tool.
#[derive(Debug, Clone)]
pub struct AssistantTool {
    /// The capability it calls.
    pub capability: CapabilityId,
    /// Its name for the model: the capability's with `_` for `.`.
    pub name: String,
    /// Its declaration in the `tools` shape of `llm.chat`, parameters from
    /// the capability's published JSON Schema.
    pub declaration: Value,
}

impl AssistantTool {
    /// `capability` as a tool.
    pub fn of(capability: CapabilityId) -> Self {
        let name = capability.as_str().replace('.', "_");
        let mut parameters = capability.parameter_schema();
        if let Value::Object(fields) = &mut parameters {
            // The document's own headers, not part of a function's arguments
            // (and refused by some providers' schema subsets).
            fields.remove("$schema");
            fields.remove("title");
        }
        let declaration = json!({
            "type": "function",
            "function": {
                "name": name,
                "description": format!("polyrelay capability {}", capability.as_str()),
                "parameters": parameters,
            },
        });
        Self {
            capability,
            name,
            declaration,
        }
    }
}

/// What one tool call did: one entry of a [`Step`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolRun {
    /// The model's id for the call.
    pub id: String,
    /// The tool the model named.
    pub name: String,
    /// The capability called; `None` when the model named no offered tool.
    pub capability: Option<CapabilityId>,
    /// The arguments as the model wrote them.
    pub arguments: String,
    /// The provider that answered; `None` when the call failed or was
    /// never sent (unknown tool, invalid arguments).
    pub provider: Option<&'static str>,
    /// Served from the cache.
    pub cached: bool,
    /// What each provider did (the call's trail; empty when never sent).
    pub attempts: Vec<Attempt>,
    /// Why it failed, as the model was told it; `None` on success.
    pub error: Option<String>,
    /// The failure's kind (`invalid_request` for an unknown tool or
    /// invalid arguments); `None` on success.
    pub error_kind: Option<ErrorKind>,
}

/// One LLM turn of an [`Assistant::ask`], and the tool calls it made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The LLM provider that answered.
    pub provider: &'static str,
    /// The model that answered, as the provider names it.
    pub model: String,
    /// The LLM call's trail (fallbacks included).
    pub attempts: Vec<Attempt>,
    /// Served from the cache.
    pub cached: bool,
    /// The turn's tokens.
    pub usage: TokenUsage,
    /// The turn's price (`None`: unpriced model).
    pub cost_usd: Option<f64>,
    /// The tools the model called in this turn, in order (empty for the
    /// final answer).
    pub tools: Vec<ToolRun>,
}

/// The answer of [`Assistant::ask`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssistantReply {
    /// The model's final answer.
    pub text: String,
    /// The conversation, this question and answer included: pass it to
    /// the next [`Assistant::ask`] to continue.
    pub conversation: Conversation,
    /// Every LLM turn of this call, in order.
    pub steps: Vec<Step>,
    /// Tokens of every turn of this call.
    pub total_tokens: u64,
    /// Price of every turn of this call, unpriced turns counting as free.
    pub cost_usd: f64,
}

impl AssistantReply {
    /// The reply as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What an [`AssistantStream`] yields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AssistantEvent {
    /// A tool call finished (its result went back to the model).
    Tool(Box<ToolRun>),
    /// Answer text to append (never empty).
    Text(String),
    /// The last event: the whole reply, as [`Assistant::ask`] returns it.
    Done(Box<AssistantReply>),
}

impl AssistantEvent {
    /// The event as JSON: `{"type": "tool", "tool": {...}}`,
    /// `{"type": "text", "text": "..."}` or `{"type": "done", "reply": {...}}`.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Tool(run) => json!({"type": "tool", "tool": **run}),
            Self::Text(text) => json!({"type": "text", "text": text}),
            Self::Done(reply) => json!({"type": "done", "reply": **reply}),
        }
    }
}

/// The events of [`Assistant::ask_stream`]: tool progress, then the final
/// answer's text as it is written, then [`AssistantEvent::Done`]; or an
/// error (a limit reached: [`Error::LimitReached`]). Dropping it cancels
/// the turn in flight.
pub struct AssistantStream {
    events: BoxStream<'static, Result<AssistantEvent>>,
}

impl fmt::Debug for AssistantStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AssistantStream")
    }
}

impl Stream for AssistantStream {
    type Item = Result<AssistantEvent>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.events.poll_next_unpin(cx)
    }
}

impl AssistantStream {
    /// The next event; `None` after [`AssistantEvent::Done`] or an error.
    pub async fn next(&mut self) -> Option<Result<AssistantEvent>> {
        self.events.next().await
    }
}

/// An LLM that answers with polyrelay's capabilities as tools. Cheap to
/// clone; built on a [`Client`], whose chains, quotas and cache every LLM
/// turn and tool call go through.
#[derive(Debug, Clone)]
pub struct Assistant {
    client: Client,
    tools: Arc<[AssistantTool]>,
    limits: Limits,
    system: String,
    model: Option<String>,
}

impl Assistant {
    /// An assistant on `client` with [`DEFAULT_TOOLS`], default [`Limits`]
    /// and [`DEFAULT_SYSTEM_PROMPT`].
    pub fn new(client: &Client) -> Self {
        Self {
            client: client.clone(),
            tools: DEFAULT_TOOLS
                .iter()
                .copied()
                .map(AssistantTool::of)
                .collect(),
            limits: Limits::default(),
            system: DEFAULT_SYSTEM_PROMPT.to_string(),
            model: None,
        }
    }

    /// Offers these capabilities as tools instead, each named by its
    /// capability name (`weather.current`) or tool name
    /// (`weather_current`). At least one; the LLM capabilities cannot be
    /// tools.
    pub fn with_tools<S: AsRef<str>>(mut self, names: &[S]) -> Result<Self> {
        if names.is_empty() {
            return Err(Error::invalid("tools", "must name at least one capability"));
        }
        let mut tools: Vec<AssistantTool> = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let name = name.as_ref();
            let capability = CapabilityId::ALL
                .iter()
                .copied()
                .find(|c| c.as_str() == name || c.as_str().replace('.', "_") == name)
                .filter(|c| !matches!(c, CapabilityId::LlmChat | CapabilityId::LlmEmbeddings))
                .ok_or_else(|| {
                    Error::invalid(
                        format!("tools[{i}]"),
                        format!(
                            "must name a capability other than llm.*, e.g. weather.current, got {}",
                            echo(name)
                        ),
                    )
                })?;
            if !tools.iter().any(|t| t.capability == capability) {
                tools.push(AssistantTool::of(capability));
            }
        }
        self.tools = tools.into();
        Ok(self)
    }

    /// Uses these limits; `max_steps` must be at least 1 and
    /// `max_cost_usd` a non-negative number.
    pub fn with_limits(mut self, limits: Limits) -> Result<Self> {
        if limits.max_steps == 0 {
            return Err(Error::invalid("max_steps", "must be at least 1"));
        }
        if limits
            .max_cost_usd
            .is_some_and(|cost| !cost.is_finite() || cost < 0.0)
        {
            return Err(Error::invalid(
                "max_cost_usd",
                "must be a non-negative number",
            ));
        }
        self.limits = limits;
        Ok(self)
    }

    /// An assistant on `client` configured by JSON options, the form the
    /// bindings pass: `tools` (list of capability or tool names),
    /// `max_steps`, `max_tokens`, `max_cost_usd`, `system`, `model`; a
    /// missing or null option keeps its default, anything else wrong is an
    /// [`Error::InvalidRequest`] naming it.
    pub fn from_options(client: &Client, options: &Value) -> Result<Self> {
        let empty = serde_json::Map::new();
        let fields = match options {
            Value::Null => &empty,
            Value::Object(fields) => fields,
            _ => return Err(Error::invalid("options", "must be an object")),
        };
        let known = [
            "tools",
            "max_steps",
            "max_tokens",
            "max_cost_usd",
            "system",
            "model",
        ];
        if let Some(unknown) = fields.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Error::invalid(
                crate::echo::echo_key(unknown),
                format!("is not an assistant option; expected {}", known.join(", ")),
            ));
        }
        let field = |name: &str| fields.get(name).filter(|v| !v.is_null());
        let whole = |name: &str| -> Result<Option<u64>> {
            field(name)
                .map(|v| {
                    v.as_u64()
                        .ok_or_else(|| Error::invalid(name, "must be a whole number"))
                })
                .transpose()
        };
        let text = |name: &str| -> Result<Option<String>> {
            field(name)
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| Error::invalid(name, "must be a string"))
                })
                .transpose()
        };
        let mut assistant = Self::new(client);
        if let Some(tools) = field("tools") {
            let names = tools
                .as_array()
                .and_then(|items| items.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
                .ok_or_else(|| Error::invalid("tools", "must be a list of capability names"))?;
            assistant = assistant.with_tools(&names)?;
        }
        let max_steps = match whole("max_steps")? {
            None => DEFAULT_MAX_STEPS,
            Some(steps) => {
                u32::try_from(steps).map_err(|_| Error::invalid("max_steps", "is too large"))?
            }
        };
        let max_cost_usd = field("max_cost_usd")
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| Error::invalid("max_cost_usd", "must be a number"))
            })
            .transpose()?;
        assistant = assistant.with_limits(Limits {
            max_steps,
            max_tokens: whole("max_tokens")?,
            max_cost_usd,
        })?;
        if let Some(system) = text("system")? {
            assistant = assistant.with_system_prompt(system);
        }
        if let Some(model) = text("model")? {
            assistant = assistant.with_model(model);
        }
        Ok(assistant)
    }

    /// Uses this system prompt instead of [`DEFAULT_SYSTEM_PROMPT`].
    pub fn with_system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system = prompt.into();
        self
    }

    /// Asks for this model (an `llm.chat` `model`) on every turn.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// The tools offered.
    pub fn tools(&self) -> &[AssistantTool] {
        &self.tools
    }

    /// The limits of each call.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Answers `question`, continuing `conversation` if given: LLM turns
    /// and tool calls until the model answers in text. A limit reached
    /// fails with [`Error::LimitReached`] carrying the conversation so far;
    /// an LLM call that fails fails the whole call with its error.
    pub async fn ask(
        &self,
        question: &str,
        conversation: Option<Conversation>,
    ) -> Result<AssistantReply> {
        let mut run = Run::start(self.clone(), question, conversation)?;
        loop {
            let request = run.next_turn()?;
            let envelope = self.client.request(request).await?;
            let calls = run.record_turn(&envelope)?;
            if calls.is_empty() {
                return Ok(run.finish());
            }
            run.run_tools(calls).await;
        }
    }

    /// [`Assistant::ask`] continuing the conversation kept under
    /// `conversation_id` in the analytics store (a new one when none is),
    /// which is saved with this question and answer once the model has
    /// answered (see [`Client::save_conversation`]). A call that fails
    /// (a limit reached, every LLM provider down) saves nothing, so the
    /// stored conversation never holds half a turn; nor does one whose
    /// save fails, which fails with the store's error (the answer is not
    /// returned: the caller would otherwise continue a conversation the
    /// store lacks). The id and question are checked before any I/O.
    pub async fn ask_saved(&self, question: &str, conversation_id: &str) -> Result<AssistantReply> {
        check_question(question)?;
        check_conversation_id(conversation_id)?;
        let conversation = self.client.conversation(conversation_id).await?;
        let reply = self.ask(question, conversation).await?;
        self.client
            .save_conversation(conversation_id, &reply.conversation)
            .await?;
        Ok(reply)
    }

    /// [`Assistant::ask_stream`] continuing the conversation kept under
    /// `conversation_id`, as [`Assistant::ask_saved`] does: it is loaded on
    /// the first `next`, and saved when the answer is complete, just
    /// before [`AssistantEvent::Done`] (a failed save ends the stream with
    /// its error instead). A stream that fails or is dropped before `Done`
    /// saves nothing. The id and question are checked now.
    pub fn ask_stream_saved(
        &self,
        question: &str,
        conversation_id: &str,
    ) -> Result<AssistantStream> {
        check_question(question)?;
        check_conversation_id(conversation_id)?;
        let assistant = self.clone();
        let question = question.to_string();
        let id: Arc<str> = Arc::from(conversation_id);
        let opened = async move {
            let conversation = assistant.client.conversation(&id).await?;
            let stream = assistant.ask_stream(&question, conversation)?;
            Ok::<_, Error>((stream, assistant.client, id))
        };
        let events = futures::stream::once(opened).flat_map(|opened| match opened {
            Err(error) => futures::stream::once(async { Err(error) }).boxed(),
            Ok((stream, client, id)) => stream
                .then(move |event| {
                    let client = client.clone();
                    let id = Arc::clone(&id);
                    async move {
                        if let Ok(AssistantEvent::Done(reply)) = &event {
                            client.save_conversation(&id, &reply.conversation).await?;
                        }
                        event
                    }
                })
                .boxed(),
        });
        Ok(AssistantStream {
            events: events.boxed(),
        })
    }

    /// [`Assistant::ask`] as events: each tool call once the calls of its
    /// turn have run (they run concurrently), then
    /// the final answer's text as the model writes it (every LLM turn is
    /// streamed with [`Client::stream`]; a turn that calls tools writes
    /// little or no text), then [`AssistantEvent::Done`]. The question is
    /// checked now; nothing is sent before the first `next`.
    pub fn ask_stream(
        &self,
        question: &str,
        conversation: Option<Conversation>,
    ) -> Result<AssistantStream> {
        let run = Run::start(self.clone(), question, conversation)?;
        let state = StreamState {
            run: Some(run),
            stream: None,
            queue: VecDeque::new(),
        };
        let events = futures::stream::unfold(state, |mut state| async move {
            let item = state.advance().await?;
            Some((item, state))
        });
        Ok(AssistantStream {
            events: events.boxed(),
        })
    }

    /// `llm.chat` of `conversation` with the system prompt and the tools.
    fn chat_request(&self, conversation: &Conversation) -> Result<Request> {
        let mut messages = vec![json!({"role": "system", "content": self.system})];
        messages.extend(conversation.messages.iter().map(message_json));
        let mut params = json!({
            "messages": messages,
            "tools": self.tools.iter().map(|t| t.declaration.clone()).collect::<Vec<_>>(),
        });
        if let Some(model) = &self.model {
            params["model"] = json!(model);
        }
        Request::parse(CapabilityId::LlmChat.as_str(), params)
    }

    /// Runs one tool call: never fails, a failure is the result the model
    /// reads.
    async fn run_tool(&self, call: ToolCall) -> (ToolRun, String) {
        let mut run = ToolRun {
            id: call.id.clone(),
            name: call.name.clone(),
            capability: None,
            arguments: call.arguments.clone(),
            provider: None,
            cached: false,
            attempts: Vec::new(),
            error: None,
            error_kind: None,
        };
        let failed = |mut run: ToolRun, message: String, kind: ErrorKind| {
            let content = format!("error: {message}");
            run.error = Some(message);
            run.error_kind = Some(kind);
            (run, content)
        };
        let Some(tool) = self.tools.iter().find(|t| t.name == call.name) else {
            let known: Vec<&str> = self.tools.iter().map(|t| t.name.as_str()).collect();
            return failed(
                run,
                format!(
                    "unknown tool {}; the tools are {}",
                    echo(&call.name),
                    known.join(", ")
                ),
                ErrorKind::InvalidRequest,
            );
        };
        run.capability = Some(tool.capability);
        let request = match serde_json::from_str::<Value>(&call.arguments) {
            Ok(arguments @ Value::Object(_)) => tool.capability.parse(arguments),
            _ => Err(Error::invalid(
                "arguments",
                "must be a JSON object of the tool's parameters",
            )),
        };
        let request = match request {
            Ok(request) => request,
            Err(error) => {
                let kind = error.kind();
                return failed(run, error.to_string(), kind);
            }
        };
        match self.client.request(request).await {
            Ok(envelope) => {
                run.provider = Some(envelope.provider);
                run.cached = envelope.cached;
                run.attempts = envelope.attempts.clone();
                (run, envelope.data().to_json().to_string())
            }
            Err(error) => {
                run.attempts = error.attempts().to_vec();
                let kind = error.kind();
                failed(run, error.to_string(), kind)
            }
        }
    }
}

/// A question must say something.
fn check_question(question: &str) -> Result<()> {
    if question.trim().is_empty() {
        return Err(Error::invalid("question", "must not be empty"));
    }
    Ok(())
}

/// The assistant's conversations kept by id in the analytics store
/// (`[analytics]`: memory by default, the SQLite file, or Redis), beside
/// the call aggregates and under the same retention: a conversation not
/// updated for `retention` is no longer found, and is deleted with the old
/// hours. Ids are the caller's (a user, a session): 1 to
/// [`MAX_CONVERSATION_ID_CHARS`](crate::analytics::MAX_CONVERSATION_ID_CHARS) ASCII letters, digits or `_ - . :`,
/// checked before any I/O ([`Error::InvalidRequest`] on
/// `conversation_id`). A store that cannot be reached (Redis down) fails
/// with [`Error::Usage`] naming the store: conversations have no fallback,
/// so none is silently lost or kept where other processes cannot see it.
impl Client {
    /// Saves `conversation` under `id`, replacing what was there, stamped
    /// with the time of the save. Two processes saving the same id at once:
    /// the last write wins (each save is whole, never a mix of both).
    pub async fn save_conversation(&self, id: &str, conversation: &Conversation) -> Result<()> {
        let body = conversation.to_json().to_string();
        self.conversation_store().save(id, &body).await
    }

    /// The conversation saved under `id`; `None` when none is (never
    /// saved, deleted, or older than the retention).
    pub async fn conversation(&self, id: &str) -> Result<Option<Conversation>> {
        let Some(body) = self.conversation_store().load(id).await? else {
            return Ok(None);
        };
        let unreadable = |reason: String| Error::Usage {
            message: format!("the conversation stored under that id is unreadable: {reason}"),
        };
        let value: Value = serde_json::from_str(&body).map_err(|e| unreadable(e.to_string()))?;
        Conversation::from_json(value)
            .map(Some)
            .map_err(|e| unreadable(e.to_string()))
    }

    /// Deletes the conversation saved under `id`; whether there was one.
    pub async fn delete_conversation(&self, id: &str) -> Result<bool> {
        self.conversation_store().delete(id).await
    }

    /// The ids of the saved conversations, most recently updated first,
    /// `limit` (at least 1) at most.
    pub async fn conversation_ids(&self, limit: usize) -> Result<Vec<String>> {
        self.conversation_store().ids(limit).await
    }
}

/// One [`Assistant::ask`] in progress: the conversation, the steps so far
/// and what they spent.
struct Run {
    assistant: Assistant,
    conversation: Conversation,
    steps: Vec<Step>,
    total_tokens: u64,
    cost_usd: f64,
}

impl Run {
    /// Adds `question` to `conversation` (or a new one).
    fn start(
        assistant: Assistant,
        question: &str,
        conversation: Option<Conversation>,
    ) -> Result<Self> {
        check_question(question)?;
        let mut conversation = conversation.unwrap_or_default();
        conversation
            .messages
            .push(ChatMessage::text(Role::User, question));
        // The whole conversation is checked now, before anything is sent.
        assistant.chat_request(&conversation)?;
        Ok(Self {
            assistant,
            conversation,
            steps: Vec::new(),
            total_tokens: 0,
            cost_usd: 0.0,
        })
    }

    /// The next turn's request, or the limit that forbids it.
    fn next_turn(&self) -> Result<Request> {
        let limits = self.assistant.limits;
        if !self.steps.is_empty() {
            let reached = if self.steps.len() >= limits.max_steps as usize {
                Some((Limit::Steps, format!("{} LLM turns", self.steps.len())))
            } else if limits
                .max_tokens
                .is_some_and(|max| self.total_tokens >= max)
            {
                Some((Limit::Tokens, format!("{} tokens", self.total_tokens)))
            } else if limits.max_cost_usd.is_some_and(|max| self.cost_usd >= max) {
                Some((Limit::CostUsd, format!("{:.6} USD", self.cost_usd)))
            } else {
                None
            };
            if let Some((limit, spent)) = reached {
                return Err(Error::LimitReached {
                    limit: limit.as_str(),
                    spent,
                    conversation: Box::new(self.conversation.to_json()),
                    steps: Box::new(serde_json::to_value(&self.steps).unwrap_or(Value::Null)),
                });
            }
        }
        self.assistant.chat_request(&self.conversation)
    }

    /// Records an LLM turn's answer; returns the tools it calls.
    fn record_turn(&mut self, envelope: &Envelope) -> Result<Vec<ToolCall>> {
        let Data::LlmChat(reply) = envelope.data() else {
            return Err(Error::Usage {
                message: "the assistant's chat call returned another capability's answer".into(),
            });
        };
        let usage = reply.usage;
        let tokens = usage.total_tokens.unwrap_or_else(|| {
            usage
                .input_tokens
                .unwrap_or(0)
                .saturating_add(usage.output_tokens.unwrap_or(0))
        });
        self.total_tokens = self.total_tokens.saturating_add(tokens);
        self.cost_usd += envelope.cost_usd.unwrap_or(0.0);
        // Arguments that are no JSON object cannot be sent back to any
        // provider: the conversation keeps `{}` for them (the step keeps
        // what the model wrote, and the tool result tells it the call was
        // invalid).
        let kept_calls = reply
            .tool_calls
            .iter()
            .map(
                |call| match serde_json::from_str::<Value>(&call.arguments) {
                    Ok(Value::Object(_)) => call.clone(),
                    _ => ToolCall {
                        arguments: "{}".into(),
                        ..call.clone()
                    },
                },
            )
            .collect();
        self.conversation.messages.push(ChatMessage {
            role: Role::Assistant,
            content: reply.text.clone(),
            tool_calls: kept_calls,
            tool_call_id: None,
        });
        self.steps.push(Step {
            provider: envelope.provider,
            model: reply.model.clone(),
            attempts: envelope.attempts.clone(),
            cached: envelope.cached,
            usage,
            cost_usd: envelope.cost_usd,
            tools: Vec::new(),
        });
        Ok(reply.tool_calls.clone())
    }

    /// Runs `calls` concurrently and adds their results to the
    /// conversation and to the last step; returns the runs.
    async fn run_tools(&mut self, calls: Vec<ToolCall>) -> Vec<ToolRun> {
        let assistant = &self.assistant;
        let results =
            futures::future::join_all(calls.into_iter().map(|call| assistant.run_tool(call))).await;
        let mut runs = Vec::with_capacity(results.len());
        for (run, content) in results {
            let mut message = ChatMessage::text(Role::Tool, content);
            message.tool_call_id = Some(run.id.clone());
            self.conversation.messages.push(message);
            runs.push(run);
        }
        if let Some(step) = self.steps.last_mut() {
            step.tools = runs.clone();
        }
        runs
    }

    /// The reply, once the last turn answered in text.
    fn finish(self) -> AssistantReply {
        let text = self
            .conversation
            .messages
            .last()
            .map(|m| m.content.clone())
            .unwrap_or_default();
        AssistantReply {
            text,
            conversation: self.conversation,
            steps: self.steps,
            total_tokens: self.total_tokens,
            cost_usd: self.cost_usd,
        }
    }
}

/// Where an [`AssistantStream`] is: the run, the turn being streamed and
/// the events waiting to be handed out.
struct StreamState {
    /// `None` once the stream has ended.
    run: Option<Run>,
    stream: Option<ChatStream>,
    queue: VecDeque<Result<AssistantEvent>>,
}

impl StreamState {
    /// The next event, or `None` at the end.
    async fn advance(&mut self) -> Option<Result<AssistantEvent>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            let run = self.run.as_mut()?;
            let Some(stream) = self.stream.as_mut() else {
                let opened = run
                    .next_turn()
                    .and_then(|request| run.assistant.client.stream_request(request));
                match opened {
                    Ok(stream) => self.stream = Some(stream),
                    Err(error) => return self.end(error),
                }
                continue;
            };
            match stream.next().await {
                Some(Ok(ChatChunk::Text(text))) => return Some(Ok(AssistantEvent::Text(text))),
                Some(Ok(ChatChunk::Done(end))) => {
                    self.stream = None;
                    let calls = match run.record_turn(&end.envelope) {
                        Ok(calls) => calls,
                        Err(error) => return self.end(error),
                    };
                    if calls.is_empty() {
                        let run = self.run.take()?;
                        return Some(Ok(AssistantEvent::Done(Box::new(run.finish()))));
                    }
                    for tool in run.run_tools(calls).await {
                        self.queue
                            .push_back(Ok(AssistantEvent::Tool(Box::new(tool))));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return self.end(error),
                None => {
                    return self.end(Error::Usage {
                        message: "the chat stream ended without its final chunk".into(),
                    })
                }
            }
        }
    }

    /// Ends the stream with `error`.
    fn end(&mut self, error: Error) -> Option<Result<AssistantEvent>> {
        self.run = None;
        self.stream = None;
        Some(Err(error))
    }
}
