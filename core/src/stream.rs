//! Streaming `llm.chat`: [`Client::stream`](crate::Client::stream) and the
//! [`ChatStream`] it returns.
//!
//! ```text
//! ChatStream::next
//! ├ cache                 fresh hit: replayed as one text chunk, then Done
//! ├ opening               the fallback chain of a plain call (every guard,
//! │                       retry and deadline), where a try succeeds at the
//! │                       provider's first token (`StreamOpening`); a
//! │                       provider slower than `first_token_timeout` is
//! │                       passed over like one that failed
//! ├ reading               chunks as they arrive, each within `chunk_timeout`
//! │  └ failure after the first token (cut, stall, malformed or error event):
//! │      mid_stream = error     the stream ends with `StreamInterrupted`
//! │      mid_stream = continue  the chain opens again without the provider,
//! │                             asked to continue the partial answer; its
//! │                             whole tool calls are kept (merge_tool_calls)
//! └ end                   the provider's final event: Done with the whole
//!                         answer, which is cached like a plain call's
//! ```
//!
//! Dropping the stream drops the HTTP response, which closes the connection
//! and so cancels the provider's generation.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

use crate::answer::{Answer, Envelope};
use crate::capability::llm::{
    ChatAccumulator, ChatDelta, ChatQuery, ChatReply, FinishReason, ToolCall,
};
use crate::capability::{CapabilityId, Data, Request};
use crate::clock::Sleep;
use crate::config::{MidStream, StreamSettings};
use crate::engine::{BudgetHold, Engine, Exchange, ProviderSlot, StreamInFlight, WalkScope};
use crate::error::{Attempt, AttemptOutcome, Error, FailureClass, ProviderFailure, Result};
use crate::policy::{self, Facts};
use crate::provider::{CallContext, ChatStreamDecoder, HttpRequest, StreamsChat};
use crate::resilience::breaker::Outcome;
use crate::resilience::retry::RetryConfig;
use crate::transport::{redact, BodyStream, Opened};

mod read_ahead;
pub use read_ahead::ReadAhead;

/// One piece of a streamed answer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ChatChunk {
    /// Answer text to append (never empty).
    Text(String),
    /// Hidden reasoning to append (never empty): DeepSeek
    /// `reasoning_content`, Anthropic thinking, Gemini thoughts.
    Reasoning(String),
    /// The last chunk of a stream that completed.
    Done(Box<StreamEnd>),
}

impl ChatChunk {
    /// The text this chunk adds to the answer (empty for reasoning and the
    /// final chunk).
    pub fn text(&self) -> &str {
        match self {
            Self::Text(text) => text,
            _ => "",
        }
    }
}

/// What the final chunk of a completed stream says.
#[derive(Debug, Clone)]
pub struct StreamEnd {
    /// The whole answer as a plain call returns it: `data()` is
    /// [`Data::LlmChat`] with the whole text, finish reason, usage and
    /// model; `provider` wrote the last part; `attempts` is the trail of
    /// every opening, an interrupted provider's failure included.
    pub envelope: Envelope,
    /// Which provider wrote which part of the text, in order (one part
    /// unless a provider was interrupted and another continued).
    pub parts: Vec<StreamPart>,
    /// From the call to the first text; `None` for a cache hit.
    pub time_to_first_token: Option<Duration>,
}

impl StreamEnd {
    /// The envelope's JSON ([`Envelope::to_json`]) with `parts` and
    /// `time_to_first_token` (seconds, or null) added.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = self.envelope.to_json();
        if let serde_json::Value::Object(fields) = &mut json {
            fields.insert("parts".into(), serde_json::json!(self.parts));
            fields.insert(
                "time_to_first_token".into(),
                serde_json::json!(self.time_to_first_token.map(|t| t.as_secs_f64())),
            );
        }
        json
    }
}

/// A part of a streamed answer written by one provider.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamPart {
    /// The provider that wrote it.
    pub provider: &'static str,
    /// Its length in characters (Unicode scalar values).
    pub chars: usize,
}

/// A streamed `llm.chat` answer: [`ChatChunk`]s as the provider writes
/// them, ending with [`ChatChunk::Done`] or an error. Opens on the first
/// [`next`](Self::next); dropping it cancels the upstream request.
///
/// ```no_run
/// # async fn demo() -> polyrelay::Result<()> {
/// use polyrelay::ChatChunk;
/// let client = polyrelay::Client::builder().build()?;
/// let mut stream = client.stream(
///     "llm.chat",
///     serde_json::json!({"messages": [{"role": "user", "content": "Hello"}]}),
/// )?;
/// while let Some(chunk) = stream.next().await {
///     match chunk? {
///         ChatChunk::Text(text) => print!("{text}"),
///         ChatChunk::Done(end) => println!("\n({} answered)", end.envelope.provider),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
pub struct ChatStream {
    chunks: BoxStream<'static, Result<ChatChunk>>,
}

impl fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatStream").finish_non_exhaustive()
    }
}

impl ChatStream {
    pub(crate) fn new(engine: Arc<Engine>, query: ChatQuery) -> Self {
        let reading = Reading::new(engine, query);
        // Boxed: the state moves in and out of `unfold` at every chunk.
        let chunks = futures::stream::unfold(Box::new(reading), |mut reading| async move {
            let chunk = reading.next_chunk().await?;
            reading.record(&chunk);
            Some((chunk, reading))
        });
        Self {
            chunks: chunks.boxed(),
        }
    }

    /// The next chunk; `None` after [`ChatChunk::Done`] or an error.
    pub async fn next(&mut self) -> Option<Result<ChatChunk>> {
        self.chunks.next().await
    }
}

impl Stream for ChatStream {
    type Item = Result<ChatChunk>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.as_mut().poll_next(cx)
    }
}

/// Opening a stream as one try of the fallback chain: the try succeeds at
/// the provider's first text (or at its end, for an empty answer).
pub(crate) struct StreamOpening<'a> {
    /// The call as asked (its capability and cache key).
    pub request: &'a Request,
    /// What is sent: the question, or a continuation of a partial answer.
    pub query: &'a ChatQuery,
    pub first_token_timeout: Option<Duration>,
}

/// A provider's stream after its first token.
pub(crate) struct OpenStream {
    slot: Arc<ProviderSlot>,
    /// Counts the stream in flight on its slot while it is read.
    _in_flight: StreamInFlight,
    /// Its budget reservation, settled at the end with the reported
    /// usage (kept whole if the stream ends otherwise).
    budget: Option<BudgetHold>,
    /// What a deployment was sent (its model asked for); `None`: the
    /// opening's query.
    deployed: Option<ChatQuery>,
    body: BodyStream,
    decoder: ChatStreamDecoder,
    /// Decoded, not yet handed on.
    deltas: Vec<ChatDelta>,
    /// The body has ended.
    ended: bool,
    /// The stall timer, set for a moment no later than the current wait's
    /// end: kept across chunks and re-armed only when it fires early,
    /// rather than one timer (an allocation) per chunk.
    stall: Option<Sleep>,
}

impl Exchange for StreamOpening<'_> {
    type Answer = OpenStream;

    fn request(&self) -> &Request {
        self.request
    }

    fn first_request(
        &self,
        slot: &ProviderSlot,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        streams_of(slot)?.stream_request(&deployed(slot, self.query), ctx)
    }

    fn keep_budget(answer: &mut OpenStream, hold: BudgetHold) -> Option<BudgetHold> {
        answer.budget = Some(hold);
        None
    }

    fn try_timeout(&self, retry: &RetryConfig) -> (Duration, &'static str) {
        (
            self.first_token_timeout.unwrap_or(retry.attempt_timeout),
            "first token",
        )
    }

    async fn exchange<'a>(
        &'a self,
        engine: &'a Engine,
        slot: &'a Arc<ProviderSlot>,
        _ctx: &'a CallContext<'a>,
        first: &'a HttpRequest,
        idempotency: Option<(&'static str, &'a str)>,
    ) -> Result<(OpenStream, u16), ProviderFailure> {
        let streams = streams_of(slot)?;
        let opened = engine
            .transport
            .open(
                first,
                slot.base(),
                slot.key_placement(),
                idempotency,
                || engine.clock.wall(),
            )
            .await?;
        let body = match opened {
            Opened::Streaming(body) => body,
            Opened::Whole(response) => return Err(streams.stream_error(&response)),
        };
        let status = body.status;
        let deployed = match deployed(slot, self.query) {
            Cow::Owned(query) => Some(query),
            Cow::Borrowed(_) => None,
        };
        let mut open = OpenStream {
            slot: Arc::clone(slot),
            _in_flight: StreamInFlight::start(slot),
            budget: None,
            deployed,
            body,
            decoder: ChatStreamDecoder::new(streams.framing()),
            deltas: Vec::new(),
            ended: false,
            stall: None,
        };
        let mut decoded = Vec::new();
        // Up to the first text, or the end of an answer without any.
        while !decoded.iter().any(starts_answer) {
            let query = open.deployed.as_ref().unwrap_or(self.query);
            match open.body.chunk().await? {
                Some(bytes) => open.decoder.push(streams, query, &bytes, &mut decoded)?,
                None => {
                    open.decoder.end(streams, query, &mut decoded)?;
                    open.ended = true;
                    break;
                }
            }
        }
        if !decoded.iter().any(shows_something) {
            // Nothing to show: either a whole answer without text (empty,
            // or a refusal, which fails as in a plain call) or a body that
            // ended early, a failure before the first token.
            let mut answer = ChatAccumulator::new();
            decoded.iter().for_each(|d| answer.push(d));
            answer.finish()?;
        }
        open.deltas = decoded;
        Ok((open, status))
    }
}

/// A delta that ends the wait for the first token.
fn starts_answer(delta: &ChatDelta) -> bool {
    shows_something(delta) || *delta == ChatDelta::End
}

/// A delta the consumer sees.
fn shows_something(delta: &ChatDelta) -> bool {
    matches!(delta, ChatDelta::Text(_) | ChatDelta::Reasoning(_))
}

/// The tool calls of a stream continued after an interruption: those the
/// interrupted providers wrote whole (`calls`), then `later` ones. The
/// provider that continues is not told of the earlier calls (a
/// conversation may not hold calls without their results), so it may write
/// them again: a later call equal to an earlier one (the same tool, the
/// same arguments as JSON) is dropped, and one whose id an earlier call
/// has gets a fresh id. A call left half-written by an interruption is not
/// among `calls` (see [`ChatAccumulator::whole_tool_calls`]); the provider
/// that continues writes its own.
fn merge_tool_calls(mut calls: Vec<ToolCall>, later: Vec<ToolCall>) -> Vec<ToolCall> {
    for call in later {
        if calls.iter().any(|c| same_call(c, &call)) {
            continue;
        }
        let mut id = call.id;
        let mut position = calls.len();
        while calls.iter().any(|c| c.id == id) {
            id = ToolCall::id_for(position);
            position += 1;
        }
        calls.push(ToolCall { id, ..call });
    }
    calls
}

/// Whether two calls call the same tool with the same arguments.
fn same_call(a: &ToolCall, b: &ToolCall) -> bool {
    let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
    a.name == b.name
        && match (json(&a.arguments), json(&b.arguments)) {
            (Some(x), Some(y)) => x == y,
            _ => a.arguments == b.arguments,
        }
}

/// `query` as `slot` is sent it: a deployment asks for its model.
fn deployed<'q>(slot: &ProviderSlot, query: &'q ChatQuery) -> Cow<'q, ChatQuery> {
    match &slot.deployment {
        Some(d) => Cow::Owned(ChatQuery {
            model: Some(d.model.clone()),
            ..query.clone()
        }),
        None => Cow::Borrowed(query),
    }
}

fn streams_of(slot: &ProviderSlot) -> Result<&dyn StreamsChat, ProviderFailure> {
    slot.provider.streams_chat().ok_or_else(|| {
        ProviderFailure::new(FailureClass::Unsupported, "does not stream").not_sent()
    })
}

/// One stream's progress, from the first `next` to its end.
struct Reading {
    engine: Arc<Engine>,
    settings: StreamSettings,
    /// The call as asked: the cache key.
    request: Request,
    query: ChatQuery,
    started: Duration,
    phase: Phase,
    /// What the current provider has written.
    current: ChatAccumulator,
    /// Text of the parts written by providers interrupted before it.
    earlier: String,
    /// Tool calls those providers wrote whole (see [`merge_tool_calls`]).
    earlier_calls: Vec<ToolCall>,
    /// What the current provider was asked when it continues `earlier`.
    continuation: Option<ChatQuery>,
    parts: Vec<StreamPart>,
    attempts: Vec<Attempt>,
    /// Providers (by slot name: a deployment's own) interrupted in this
    /// stream: not asked to continue it.
    interrupted: Vec<&'static str>,
    time_to_first_token: Option<Duration>,
    /// Chunks ready to hand on.
    out: VecDeque<ChatChunk>,
}

enum Phase {
    Start,
    Open(Box<OpenStream>),
    Over,
}

impl Reading {
    fn new(engine: Arc<Engine>, query: ChatQuery) -> Self {
        let started = engine.clock.now();
        let settings = engine.chain(CapabilityId::LlmChat).stream;
        Self {
            engine,
            settings,
            request: Request::LlmChat(query.clone()),
            query,
            started,
            phase: Phase::Start,
            current: ChatAccumulator::new(),
            earlier: String::new(),
            earlier_calls: Vec::new(),
            continuation: None,
            parts: Vec::new(),
            attempts: Vec::new(),
            interrupted: Vec::new(),
            time_to_first_token: None,
            out: VecDeque::new(),
        }
    }

    async fn next_chunk(&mut self) -> Option<Result<ChatChunk>> {
        loop {
            if let Some(chunk) = self.out.pop_front() {
                return Some(Ok(chunk));
            }
            let phase = std::mem::replace(&mut self.phase, Phase::Over);
            match phase {
                Phase::Over => return None,
                Phase::Start => {
                    if self.replay_cached().await {
                        continue;
                    }
                    match self.open().await {
                        Ok(open) => self.phase = Phase::Open(open),
                        Err(error) => return Some(Err(error)),
                    }
                }
                Phase::Open(mut open) => {
                    let read = match self.read(&mut open).await {
                        Ok(true) => match self.finish(&open) {
                            Ok(answer) => {
                                if let Some(hold) = open.budget.take() {
                                    self.engine
                                        .settle_budgets(hold, open.slot.id(), &answer.data)
                                        .await;
                                }
                                Ok(())
                            }
                            Err(failure) => Err(failure),
                        },
                        Ok(false) => {
                            self.phase = Phase::Open(open);
                            continue;
                        }
                        Err(failure) => Err(failure),
                    };
                    if let Err(failure) = read {
                        if let Err(error) = self.interrupted(&open.slot, failure).await {
                            return Some(Err(error));
                        }
                    }
                }
            }
        }
    }

    /// Replays a fresh cached answer; whether there was one.
    async fn replay_cached(&mut self) -> bool {
        if !self.engine.cache_enabled {
            return false;
        }
        let Some(hit) = self.engine.cache.fresh(&self.request).await else {
            return false;
        };
        let Ok(answer) = hit.value else {
            return false;
        };
        let Data::LlmChat(reply) = &answer.data else {
            return false;
        };
        if let Some(reasoning) = reply.reasoning.clone().filter(|r| !r.is_empty()) {
            self.out.push_back(ChatChunk::Reasoning(reasoning));
        }
        if !reply.text.is_empty() {
            self.out.push_back(ChatChunk::Text(reply.text.clone()));
        }
        self.parts = vec![StreamPart {
            provider: answer.provider,
            chars: reply.text.chars().count(),
        }];
        let cost_usd = self.engine.call_cost(&answer, true);
        let envelope = self.envelope(Arc::clone(&answer), true, cost_usd);
        self.out.push_back(ChatChunk::Done(Box::new(StreamEnd {
            envelope,
            parts: std::mem::take(&mut self.parts),
            time_to_first_token: None,
        })));
        true
    }

    /// Opens the question (or its continuation) on the first provider of the
    /// chain that gives its first token, passing over those interrupted
    /// earlier in this stream.
    async fn open(&mut self) -> Result<Box<OpenStream>> {
        let opening = StreamOpening {
            request: &self.request,
            query: self.sent_query(),
            first_token_timeout: self.settings.first_token_timeout,
        };
        let span = tracing::info_span!("polyrelay.stream", capability = "llm.chat");
        // Boxed: the chain's future is large, and inline it would make the
        // future of every chunk's read as large. Boxed before it is
        // instrumented, so that it is copied once, into the box.
        let walked = tracing::Instrument::instrument(
            Box::pin(self.engine.walk_chain(
                &opening,
                WalkScope {
                    exclude: &self.interrupted,
                    ..WalkScope::default()
                },
            )),
            span,
        )
        .await;
        match walked {
            Ok((open, attempts)) => {
                self.attempts.extend(attempts);
                Ok(Box::new(open))
            }
            Err(error) => Err(self.with_earlier_attempts(error)),
        }
    }

    /// Hands on what `open` has decoded, or reads more. `Ok(true)`: the
    /// provider's final event came.
    async fn read(&mut self, open: &mut OpenStream) -> Result<bool, ProviderFailure> {
        if open.deltas.is_empty() {
            if open.ended {
                return Err(ProviderFailure::new(
                    FailureClass::Transient,
                    "the stream ended before the provider's final event",
                )
                .status(open.body.status));
            }
            self.read_body(open).await?;
        }
        for delta in open.deltas.drain(..) {
            self.current.push(&delta);
            let chunk = match delta {
                ChatDelta::Text(text) => ChatChunk::Text(text),
                ChatDelta::Reasoning(text) => ChatChunk::Reasoning(text),
                ChatDelta::Meta(_) | ChatDelta::ToolCall(_) => continue,
                // What follows the final event is not read.
                ChatDelta::End => return Ok(true),
            };
            if self.time_to_first_token.is_none() {
                self.time_to_first_token =
                    Some(self.engine.clock.now().saturating_sub(self.started));
            }
            self.out.push_back(chunk);
        }
        Ok(false)
    }

    /// Reads the next piece of the body into `open.deltas`, within the
    /// chunk timeout.
    async fn read_body(&mut self, open: &mut OpenStream) -> Result<(), ProviderFailure> {
        let streams = streams_of(&open.slot)?;
        let chunk_timeout = self.settings.chunk_timeout;
        let clock = &self.engine.clock;
        let status = open.body.status;
        let mut next = std::pin::pin!(open.body.chunk());
        // A chunk already there needs no timer.
        let chunk = match futures::poll!(next.as_mut()) {
            Poll::Ready(chunk) => chunk?,
            Poll::Pending => {
                // The provider's silence counts from when this read starts
                // waiting, not from its last chunk: a consumer slow to ask
                // for the next one is not a stalled provider (what came
                // meanwhile may be waiting in the connection's buffers).
                let due = clock.now().saturating_add(chunk_timeout);
                loop {
                    let stall = open.stall.get_or_insert_with(|| clock.sleep_until(due));
                    tokio::select! {
                        biased;
                        chunk = next.as_mut() => break chunk?,
                        _ = stall => {
                            open.stall = None;
                            if clock.now() >= due {
                                return Err(ProviderFailure::new(
                                    FailureClass::Transient,
                                    format!("no chunk within {:.3} s", chunk_timeout.as_secs_f64()),
                                )
                                .status(status));
                            }
                        }
                    }
                }
            }
        };
        let query = open.deployed.as_ref().unwrap_or(self.sent_query());
        match chunk {
            Some(bytes) => open
                .decoder
                .push(streams, query, &bytes, &mut open.deltas)?,
            None => {
                open.decoder.end(streams, query, &mut open.deltas)?;
                open.ended = true;
            }
        }
        Ok(())
    }

    /// The query the current provider was sent.
    fn sent_query(&self) -> &ChatQuery {
        self.continuation.as_ref().unwrap_or(&self.query)
    }

    /// The provider's final event came: the whole answer, checked against
    /// the request's `response_format`, then cached. (A continuation that
    /// ends refusing, with no text, fails; so does a whole text that is not
    /// the JSON asked for, after its first token like any failure of a
    /// stream: it ends the stream, or with `mid_stream = continue` another
    /// provider continues the text, which is checked again at its end.)
    fn finish(&mut self, open: &OpenStream) -> Result<Arc<Answer>, ProviderFailure> {
        let reply = self.current.clone().finish()?;
        let written = reply.text.chars().count();
        let tool_calls = merge_tool_calls(self.earlier_calls.clone(), reply.tool_calls);
        let finish_reason = match reply.finish_reason {
            Some(FinishReason::Stop) if !tool_calls.is_empty() => Some(FinishReason::ToolCalls),
            other => other,
        };
        let reply = ChatReply {
            text: format!("{}{}", self.earlier, reply.text),
            tool_calls,
            finish_reason,
            ..reply
        };
        let reply = self
            .query
            .check_reply(reply)
            .map_err(|f| f.status(open.body.status))?;
        self.earlier.clear();
        self.earlier_calls.clear();
        let provider = open.slot.id();
        open.slot
            .settle_tokens(&self.request, reply.usage.total_tokens);
        self.parts.push(StreamPart {
            provider,
            chars: written,
        });
        let answer = Arc::new(Answer {
            data: Data::LlmChat(reply),
            provider,
            fetched_at: open.body.received_at,
        });
        if self.engine.cache_enabled {
            let ttl = self.engine.chain(CapabilityId::LlmChat).ttl;
            self.engine
                .cache
                .store(&self.request, Ok(Arc::clone(&answer)), ttl);
        }
        // The usage came with the final event: the answering provider's
        // trail entry and stats get its cost now.
        let cost_usd = self.engine.record_spend(&open.slot, &answer.data);
        if let Some(entry) = self
            .attempts
            .iter_mut()
            .rev()
            .find(|a| a.provider == provider && a.outcome == AttemptOutcome::Answered)
        {
            entry.cost_usd = cost_usd;
        }
        // Providers interrupted earlier wrote tokens no one reported.
        let cost_usd = cost_usd.filter(|_| self.interrupted.is_empty());
        let envelope = self.envelope(Arc::clone(&answer), false, cost_usd);
        self.out.push_back(ChatChunk::Done(Box::new(StreamEnd {
            envelope,
            parts: std::mem::take(&mut self.parts),
            time_to_first_token: self.time_to_first_token,
        })));
        Ok(answer)
    }

    /// A failure after the first token: recorded against the provider,
    /// then the stream ends with [`Error::StreamInterrupted`] or, with
    /// `mid_stream = continue`, another provider continues it.
    async fn interrupted(&mut self, slot: &ProviderSlot, failure: ProviderFailure) -> Result<()> {
        let provider = slot.id();
        let failure = redact(failure, slot.key.as_ref());
        let written = self.current.text().to_string();
        let (calls, half_written) = self.current.whole_tool_calls();
        let elapsed = self.engine.clock.now().saturating_sub(self.started);
        let mut what = format!("{} characters", written.chars().count());
        if !calls.is_empty() {
            what.push_str(&format!(" and {} whole tool calls", calls.len()));
        }
        if half_written > 0 {
            what.push_str(" (a half-written tool call dropped)");
        }
        self.record_interruption(slot, &failure, &what, elapsed);
        self.earlier_calls = merge_tool_calls(std::mem::take(&mut self.earlier_calls), calls);
        self.current = ChatAccumulator::new();
        if !written.is_empty() {
            self.parts.push(StreamPart {
                provider,
                chars: written.chars().count(),
            });
        }
        self.earlier.push_str(&written);
        self.interrupted.push(slot.name());
        let reason = failure.to_string();
        if self.settings.mid_stream == MidStream::Continue {
            self.continuation = Some(self.query.continuation(&self.earlier));
            match self.open().await {
                Ok(open) => {
                    self.phase = Phase::Open(open);
                    return Ok(());
                }
                Err(error) => {
                    self.attempts = error.attempts().to_vec();
                    return Err(self.interruption(
                        provider,
                        format!("{reason}; no provider could continue: {error}"),
                    ));
                }
            }
        }
        Err(self.interruption(provider, reason))
    }

    fn interruption(&mut self, provider: &'static str, reason: String) -> Error {
        Error::StreamInterrupted {
            capability: CapabilityId::LlmChat.as_str(),
            provider,
            partial: std::mem::take(&mut self.earlier),
            reason,
            attempts: std::mem::take(&mut self.attempts),
        }
    }

    /// The provider's trail entry turns from answered into its failure
    /// (after it had `written` so much); its breaker and stats count the
    /// failure as a failed call would.
    fn record_interruption(
        &mut self,
        slot: &ProviderSlot,
        failure: &ProviderFailure,
        written: &str,
        elapsed: Duration,
    ) {
        let provider = slot.id();
        let decision = policy::after_failure(Facts::of(failure));
        if decision.breaker == Outcome::Failure {
            if let Some(Ok(permit)) = slot.breaker(CapabilityId::LlmChat).map(|b| b.try_acquire()) {
                permit.record(Outcome::Failure, elapsed);
            }
        }
        slot.stats
            .outcome(AttemptOutcome::Failed(failure.class).as_str());
        let reason = format!("interrupted after {written}: {failure}");
        match self.attempts.iter_mut().rev().find(|a| {
            a.provider == provider
                && a.deployment == slot.deployment_name()
                && a.outcome == AttemptOutcome::Answered
        }) {
            Some(entry) => {
                entry.outcome = AttemptOutcome::Failed(failure.class);
                entry.reason = Cow::Owned(reason);
                entry.status = failure.status.or(entry.status);
            }
            None => self.attempts.push(Attempt {
                provider,
                deployment: slot.deployment_name(),
                outcome: AttemptOutcome::Failed(failure.class),
                status: failure.status,
                tries: 1,
                elapsed,
                upstream: std::time::Duration::ZERO,
                reason: Cow::Owned(reason),
                retry_after: None,
                hedged: false,
                cost_usd: None,
            }),
        }
        tracing::debug!(provider, reason = %failure, "stream interrupted");
    }

    /// `error`, from an opening, with the trail of the openings before it.
    fn with_earlier_attempts(&mut self, error: Error) -> Error {
        if self.attempts.is_empty() {
            return error;
        }
        let mut attempts = std::mem::take(&mut self.attempts);
        attempts.extend(error.attempts().iter().cloned());
        error.with_attempts(attempts)
    }

    /// A stream's end (its last chunk, or its error) is recorded in
    /// analytics once, as a call is.
    fn record(&self, chunk: &Result<ChatChunk>) {
        let tag = || self.engine.record_tag(&self.request, None);
        match chunk {
            Ok(ChatChunk::Done(end)) => self.engine.record_answer(&end.envelope, tag()),
            Ok(_) => {}
            Err(error) => {
                self.engine
                    .record_failure(CapabilityId::LlmChat, self.started, error, tag())
            }
        }
    }

    fn envelope(&mut self, answer: Arc<Answer>, cached: bool, cost_usd: Option<f64>) -> Envelope {
        Envelope::new(
            CapabilityId::LlmChat,
            answer,
            cached,
            std::mem::take(&mut self.attempts),
            self.engine.clock.now().saturating_sub(self.started),
            cost_usd,
        )
    }
}
