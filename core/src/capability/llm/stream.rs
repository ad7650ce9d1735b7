//! A streamed `llm.chat` answer: the pieces a provider's stream yields
//! ([`ChatDelta`]) and the fold of those pieces into the [`ChatReply`] a
//! plain call would have returned ([`ChatAccumulator`]), so that a completed
//! stream can be cached like a plain answer.
//!
//! ```
//! use polyrelay::capability::llm::{ChatAccumulator, ChatDelta, ChatMeta, FinishReason};
//! let mut answer = ChatAccumulator::new();
//! answer.push(&ChatDelta::Meta(ChatMeta { model: Some("m".into()), ..ChatMeta::default() }));
//! answer.push(&ChatDelta::Text("Par".into()));
//! answer.push(&ChatDelta::Text("is.".into()));
//! answer.push(&ChatDelta::Meta(ChatMeta { finish_reason: Some(FinishReason::Stop), ..ChatMeta::default() }));
//! assert_eq!(answer.text(), "Paris.");
//! assert!(ChatAccumulator::new().finish().is_err(), "no end: a cut stream");
//! answer.push(&ChatDelta::End);
//! assert_eq!(answer.finish().unwrap().text, "Paris.");
//! ```

use std::collections::BTreeMap;

use super::{ChatReply, FinishReason, TokenUsage, ToolCall};
use crate::error::{FailureClass, ProviderFailure};

/// One piece of a streamed chat answer, in the order the provider sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatDelta {
    /// Answer text to append (never empty).
    Text(String),
    /// Hidden reasoning to append (never empty): DeepSeek
    /// `reasoning_content`, Anthropic thinking, Gemini thoughts.
    Reasoning(String),
    /// What the provider said about the whole answer in this frame; each
    /// field it names replaces the earlier value.
    Meta(ChatMeta),
    /// A piece of a tool call; the pieces of one call share its `index`.
    ToolCall(ToolCallDelta),
    /// The provider said the answer is complete. A stream whose body ends
    /// without it was cut.
    End,
}

/// A piece of one tool call of a streamed answer: providers send a call's
/// id and name once and its arguments in fragments (OpenAI, Anthropic,
/// Cohere) or a whole call at once (Gemini, Ollama).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolCallDelta {
    /// Which call of the answer the piece belongs to, as the provider
    /// counts; `None` for a whole call, placed after those before it.
    pub index: Option<usize>,
    /// The call's id, when this piece says it.
    pub id: Option<String>,
    /// The tool's name, when this piece says it.
    pub name: Option<String>,
    /// A fragment of the arguments' JSON text to append.
    pub arguments: String,
}

/// Facts about a whole streamed answer, as far as one frame tells them
/// (`None`: not said in this frame).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatMeta {
    /// The provider's id for this completion.
    pub id: Option<String>,
    /// The model that answers, as the provider names it.
    pub model: Option<String>,
    /// Why generation stopped.
    pub finish_reason: Option<FinishReason>,
    /// Token counts so far; each count given replaces the earlier one
    /// (providers report running totals, and Anthropic gives the prompt's
    /// at the start and the answer's at the end).
    pub usage: Option<TokenUsage>,
}

/// Folds a stream's [`ChatDelta`]s into the [`ChatReply`] the plain call
/// would have returned.
#[derive(Debug, Clone, Default)]
pub struct ChatAccumulator {
    id: Option<String>,
    model: Option<String>,
    text: String,
    reasoning: String,
    finish_reason: Option<FinishReason>,
    usage: Option<TokenUsage>,
    /// Tool calls being assembled, by index.
    tool_calls: BTreeMap<usize, ToolCallDelta>,
    ended: bool,
}

impl ChatAccumulator {
    /// Nothing received yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one delta.
    pub fn push(&mut self, delta: &ChatDelta) {
        match delta {
            ChatDelta::Text(text) => self.text.push_str(text),
            ChatDelta::Reasoning(text) => self.reasoning.push_str(text),
            ChatDelta::Meta(meta) => {
                replace(&mut self.id, &meta.id);
                replace(&mut self.model, &meta.model);
                if meta.finish_reason.is_some() {
                    self.finish_reason = meta.finish_reason;
                }
                if let Some(new) = meta.usage {
                    let usage = self.usage.get_or_insert(TokenUsage::new(None, None));
                    let counts = [
                        (&mut usage.input_tokens, new.input_tokens),
                        (&mut usage.output_tokens, new.output_tokens),
                        (&mut usage.total_tokens, new.total_tokens),
                        (&mut usage.cached_input_tokens, new.cached_input_tokens),
                        (&mut usage.reasoning_tokens, new.reasoning_tokens),
                    ];
                    for (count, given) in counts {
                        if given.is_some() {
                            *count = given;
                        }
                    }
                }
            }
            ChatDelta::ToolCall(piece) => {
                let next = self
                    .tool_calls
                    .keys()
                    .next_back()
                    .map_or(0, |last| last + 1);
                let call = self
                    .tool_calls
                    .entry(piece.index.unwrap_or(next))
                    .or_default();
                if piece.id.is_some() {
                    call.id.clone_from(&piece.id);
                }
                if piece.name.is_some() {
                    call.name.clone_from(&piece.name);
                }
                call.arguments.push_str(&piece.arguments);
            }
            ChatDelta::End => self.ended = true,
        }
    }

    /// The answer's text so far (the partial text of an interrupted stream).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the provider said the answer is complete.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The tool calls written whole so far (of an interrupted stream):
    /// those with a name whose arguments are JSON text complete in itself
    /// (or none, read as `{}`), and how many others were left half-written
    /// (only the last can be, as providers write calls one after another).
    /// A half-written call cannot be continued by another provider: its id
    /// and fragments are this provider's.
    pub fn whole_tool_calls(&self) -> (Vec<ToolCall>, usize) {
        let mut whole = Vec::new();
        let mut half = 0;
        for (position, call) in self.tool_calls.values().enumerate() {
            let arguments = if call.arguments.trim().is_empty() {
                "{}"
            } else {
                call.arguments.as_str()
            };
            match &call.name {
                Some(name) if serde_json::from_str::<serde::de::IgnoredAny>(arguments).is_ok() => {
                    whole.push(ToolCall {
                        id: call
                            .id
                            .clone()
                            .unwrap_or_else(|| ToolCall::id_for(position)),
                        name: name.clone(),
                        arguments: arguments.to_string(),
                    })
                }
                _ => half += 1,
            }
        }
        (whole, half)
    }

    /// The whole answer. A stream that never ended is a transient failure
    /// (the connection was cut); an answer with no text whose finish reason
    /// is `content_filter` is a content refusal, as for a plain call; a
    /// tool call whose name never came is a malformed answer (one without
    /// an id gets [`ToolCall::id_for`] its position, one without arguments
    /// the empty object `{}`).
    pub fn finish(self) -> Result<ChatReply, ProviderFailure> {
        if !self.ended {
            return Err(ProviderFailure::new(
                FailureClass::Transient,
                "the stream ended before the provider's final event",
            )
            .status(200));
        }
        let mut tool_calls = Vec::with_capacity(self.tool_calls.len());
        for (position, call) in self.tool_calls.into_values().enumerate() {
            let Some(name) = call.name else {
                return Err(ProviderFailure::malformed(format!(
                    "the stream's tool call {position} came without its name"
                ))
                .status(200));
            };
            let id = call.id.unwrap_or_else(|| ToolCall::id_for(position));
            let arguments = if call.arguments.trim().is_empty() {
                "{}".to_string()
            } else {
                call.arguments
            };
            tool_calls.push(ToolCall {
                id,
                name,
                arguments,
            });
        }
        if self.text.is_empty()
            && tool_calls.is_empty()
            && self.finish_reason == Some(FinishReason::ContentFilter)
        {
            return Err(ProviderFailure::new(
                FailureClass::ContentFiltered,
                "the answer was withheld by the content filter",
            )
            .status(200));
        }
        // Gemini and Ollama say `stop` when the model calls tools.
        let finish_reason = match self.finish_reason {
            Some(FinishReason::Stop) if !tool_calls.is_empty() => Some(FinishReason::ToolCalls),
            other => other,
        };
        let mut usage = self.usage.unwrap_or(TokenUsage::new(None, None));
        if usage.total_tokens.is_none() {
            usage.total_tokens =
                TokenUsage::new(usage.input_tokens, usage.output_tokens).total_tokens;
        }
        Ok(ChatReply {
            id: self.id,
            model: self.model.unwrap_or_default(),
            text: self.text,
            tool_calls,
            reasoning: (!self.reasoning.is_empty()).then_some(self.reasoning),
            finish_reason,
            usage,
            parsed: None,
        })
    }
}

/// `slot` takes `given` when `given` says something. Most providers repeat
/// the same id and model in every chunk: those are not copied again.
fn replace(slot: &mut Option<String>, given: &Option<String>) {
    if let Some(given) = given {
        if slot.as_deref() != Some(given.as_str()) {
            *slot = Some(given.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_tool_calls_leave_out_a_half_written_one() {
        let mut answer = ChatAccumulator::new();
        let piece = |index, id: Option<&str>, name: Option<&str>, arguments: &str| {
            ChatDelta::ToolCall(ToolCallDelta {
                index,
                id: id.map(str::to_string),
                name: name.map(str::to_string),
                arguments: arguments.into(),
            })
        };
        answer.push(&piece(Some(0), Some("a"), Some("f"), "{\"x\":"));
        answer.push(&piece(Some(0), None, None, " 1}"));
        // A whole call at once, without id or arguments (Gemini, Ollama).
        answer.push(&piece(None, None, Some("g"), ""));
        answer.push(&piece(Some(2), Some("c"), Some("h"), "{\"y\": [1, "));
        let (whole, half) = answer.whole_tool_calls();
        let whole: Vec<(&str, &str, &str)> = whole
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
            .collect();
        assert_eq!(whole, [("a", "f", "{\"x\": 1}"), ("call_1", "g", "{}")]);
        assert_eq!(half, 1);
        // A call whose name never came is not whole either.
        answer.push(&piece(Some(3), Some("d"), None, "{}"));
        assert_eq!(answer.whole_tool_calls().1, 2);
    }

    fn meta(f: impl FnOnce(&mut ChatMeta)) -> ChatDelta {
        let mut meta = ChatMeta::default();
        f(&mut meta);
        ChatDelta::Meta(meta)
    }

    #[test]
    fn deltas_fold_into_the_plain_reply_with_usage_merged_count_by_count() {
        let mut acc = ChatAccumulator::new();
        for delta in [
            meta(|m| {
                m.id = Some("msg_1".into());
                m.model = Some("claude".into());
                m.usage = Some(TokenUsage {
                    input_tokens: Some(25),
                    output_tokens: Some(1),
                    ..TokenUsage::new(None, None)
                });
            }),
            ChatDelta::Reasoning("think".into()),
            ChatDelta::Text("Hello".into()),
            ChatDelta::Text("!".into()),
            meta(|m| {
                m.finish_reason = Some(FinishReason::Stop);
                m.usage = Some(TokenUsage::new(None, Some(15)));
            }),
            ChatDelta::End,
        ] {
            acc.push(&delta);
        }
        assert!(acc.is_ended());
        let reply = acc.finish().unwrap();
        assert_eq!(
            reply,
            ChatReply {
                id: Some("msg_1".into()),
                model: "claude".into(),
                text: "Hello!".into(),
                tool_calls: Vec::new(),
                reasoning: Some("think".into()),
                finish_reason: Some(FinishReason::Stop),
                usage: TokenUsage::new(Some(25), Some(15)),
                parsed: None,
            }
        );
    }

    #[test]
    fn a_stream_without_its_end_is_a_visible_failure_keeping_its_text() {
        let mut acc = ChatAccumulator::new();
        acc.push(&ChatDelta::Text("Par".into()));
        assert_eq!(acc.text(), "Par");
        assert!(!acc.is_ended());
        let f = acc.finish().unwrap_err();
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn nothing_but_a_content_filter_is_a_refusal_and_a_cut_answer_is_kept() {
        let mut acc = ChatAccumulator::new();
        acc.push(&meta(|m| {
            m.finish_reason = Some(FinishReason::ContentFilter)
        }));
        acc.push(&ChatDelta::End);
        assert_eq!(
            acc.clone().finish().unwrap_err().class,
            FailureClass::ContentFiltered
        );
        acc.push(&ChatDelta::Text("Paris is".into()));
        let reply = acc.finish().unwrap();
        assert_eq!(reply.finish_reason, Some(FinishReason::ContentFilter));
        assert_eq!(reply.usage, TokenUsage::new(None, None));
    }

    #[test]
    fn tool_call_pieces_assemble_into_whole_calls_in_index_order() {
        let piece = |index, id: Option<&str>, name: Option<&str>, arguments: &str| {
            ChatDelta::ToolCall(ToolCallDelta {
                index: Some(index),
                id: id.map(str::to_string),
                name: name.map(str::to_string),
                arguments: arguments.to_string(),
            })
        };
        let mut acc = ChatAccumulator::new();
        for delta in [
            piece(1, Some("call_b"), Some("now"), ""),
            piece(0, Some("call_a"), Some("get_weather"), ""),
            piece(0, None, None, "{\"city\":"),
            piece(0, None, None, "\"Paris\"}"),
            meta(|m| m.finish_reason = Some(FinishReason::ToolCalls)),
            ChatDelta::End,
        ] {
            acc.push(&delta);
        }
        let reply = acc.clone().finish().unwrap();
        assert_eq!(reply.text, "");
        assert_eq!(
            reply.tool_calls,
            [
                ToolCall {
                    id: "call_a".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Paris"}"#.into(),
                },
                ToolCall {
                    id: "call_b".into(),
                    name: "now".into(),
                    arguments: "{}".into(),
                },
            ]
        );
        // Whole calls go after the others; a missing id is its position.
        let mut whole = acc.clone();
        whole.push(&ChatDelta::ToolCall(ToolCallDelta {
            index: None,
            id: None,
            name: Some("later".into()),
            arguments: "{\"n\":1}".into(),
        }));
        let calls = whole.finish().unwrap().tool_calls;
        assert_eq!(
            calls[2],
            ToolCall {
                id: "call_2".into(),
                name: "later".into(),
                arguments: r#"{"n":1}"#.into(),
            }
        );
        // A call whose name never came cannot be answered.
        acc.push(&piece(2, Some("call_c"), None, "{}"));
        let f = acc.finish().unwrap_err();
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }

    #[test]
    fn a_reported_total_is_kept() {
        let mut acc = ChatAccumulator::new();
        acc.push(&meta(|m| {
            m.usage = Some(TokenUsage {
                total_tokens: Some(50),
                ..TokenUsage::new(Some(3), Some(4))
            })
        }));
        acc.push(&ChatDelta::End);
        assert_eq!(acc.finish().unwrap().usage.total_tokens, Some(50));
    }
}
