//! Streaming `llm.chat`: what a provider implements beside
//! `Serves<marker::LlmChat>` to stream ([`StreamsChat`]), and the decoder
//! that turns a streamed body's bytes into [`ChatDelta`]s
//! ([`ChatStreamDecoder`]).
//!
//! A provider still never sends anything: it describes the streaming
//! request, names its framing (server-sent events or NDJSON) and reads one
//! frame at a time. An error the provider reports inside the stream
//! (Anthropic's `overloaded_error` event, an OpenAI-style `{"error":…}`
//! chunk, Ollama's `{"error":…}` line) is a failure of its class; a frame
//! that cannot be read is `malformed_response`; a body that ends before the
//! provider's final frame is caught by
//! [`ChatAccumulator::finish`](crate::capability::llm::ChatAccumulator::finish).

use std::borrow::Cow;

use serde::de::DeserializeOwned;

use super::ndjson::LineDecoder;
use super::sse::{SseDecoder, SseEvent};
use super::{tolerant, Body, CallContext, Fixture, HttpRequest, HttpResponse};
use crate::capability::llm::{ChatDelta, ChatQuery};
use crate::error::ProviderFailure;

/// How a provider frames its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events (`text/event-stream`): one frame per event.
    Sse,
    /// Newline-delimited JSON: one frame per non-blank line.
    Ndjson,
}

/// One frame of a stream, as [`StreamsChat::decode_frame`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The SSE event type (`message` when the event names none); empty for
    /// NDJSON.
    pub event: Cow<'static, str>,
    /// The event's data, or the NDJSON line.
    pub data: String,
}

impl Frame {
    /// The data as JSON of type `T`, read as tolerantly as
    /// [`HttpResponse::json`] reads a body; what does not fit is a
    /// malformed response naming the field.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderFailure> {
        tolerant::read(self.data.as_bytes()).map_err(|e| {
            ProviderFailure::malformed(format!("unexpected stream event: {e}")).status(200)
        })
    }
}

impl From<SseEvent> for Frame {
    fn from(event: SseEvent) -> Self {
        Self {
            event: event.event,
            data: event.data,
        }
    }
}

/// Streaming `llm.chat`, implemented by a provider beside its
/// `Serves<marker::LlmChat>` and found through
/// [`Provider::streams_chat`](super::Provider::streams_chat).
pub trait StreamsChat: Send + Sync {
    /// The streaming request for `query` (the plain request with the
    /// provider's streaming switch). Fails as the plain request would.
    fn stream_request(
        &self,
        query: &ChatQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure>;

    /// How the response body is framed.
    fn framing(&self) -> Framing;

    /// A non-2xx response to the streaming request, its body read whole,
    /// as its classified failure (the same classification as a plain call).
    fn stream_error(&self, response: &HttpResponse) -> ProviderFailure;

    /// Reads one frame of a 2xx stream, appending what it says to `out`.
    /// An error event is a failure of its class; a frame that cannot be
    /// read is malformed.
    fn decode_frame(
        &self,
        query: &ChatQuery,
        frame: &Frame,
        out: &mut Vec<ChatDelta>,
    ) -> Result<(), ProviderFailure>;

    /// A recorded stream in the provider's wire format, for the emulator
    /// and the tests (empty without the `emulator` feature, like
    /// [`Provider::fixtures`](super::Provider::fixtures)). Kept apart from
    /// those because it answers the same path as the plain reply.
    fn stream_fixtures(&self) -> &'static [Fixture];
}

/// Turns a streamed body, chunk by chunk, into [`ChatDelta`]s: the
/// provider's framing, then its [`StreamsChat::decode_frame`].
#[derive(Debug)]
pub struct ChatStreamDecoder {
    framing: FrameDecoder,
}

#[derive(Debug)]
enum FrameDecoder {
    Sse(SseDecoder, Vec<SseEvent>),
    Ndjson(LineDecoder, Vec<String>),
}

impl ChatStreamDecoder {
    /// A decoder at the start of a body framed as `framing`.
    pub fn new(framing: Framing) -> Self {
        Self {
            framing: match framing {
                Framing::Sse => FrameDecoder::Sse(SseDecoder::new(), Vec::new()),
                Framing::Ndjson => FrameDecoder::Ndjson(LineDecoder::new(), Vec::new()),
            },
        }
    }

    /// Decodes one chunk of the body (split anywhere), appending the deltas
    /// of the frames it completes to `out`. Stops at the first failure.
    pub fn push(
        &mut self,
        streams: &dyn StreamsChat,
        query: &ChatQuery,
        bytes: &[u8],
        out: &mut Vec<ChatDelta>,
    ) -> Result<(), ProviderFailure> {
        match &mut self.framing {
            FrameDecoder::Sse(decoder, events) => {
                decoder.push(bytes, events);
                decode_all(streams, query, events.drain(..).map(Frame::from), out)
            }
            FrameDecoder::Ndjson(decoder, lines) => {
                decoder.push(bytes, lines);
                decode_all(streams, query, lines.drain(..).map(ndjson_frame), out)
            }
        }
    }

    /// The body ended: decodes what is left (an NDJSON last line without
    /// its newline; an unfinished SSE event is discarded).
    pub fn end(
        &mut self,
        streams: &dyn StreamsChat,
        query: &ChatQuery,
        out: &mut Vec<ChatDelta>,
    ) -> Result<(), ProviderFailure> {
        match &mut self.framing {
            FrameDecoder::Sse(..) => Ok(()),
            FrameDecoder::Ndjson(decoder, lines) => {
                decoder.end(lines);
                decode_all(streams, query, lines.drain(..).map(ndjson_frame), out)
            }
        }
    }
}

/// The failure of a non-2xx streaming response as the provider's status
/// check `checked` classified it; a status the check lets pass is a
/// transient failure quoting the body.
pub(crate) fn refusal(
    response: &HttpResponse,
    checked: Result<(), ProviderFailure>,
) -> ProviderFailure {
    checked.err().unwrap_or_else(|| {
        response.failure(
            crate::error::FailureClass::Transient,
            response.body_excerpt(),
        )
    })
}

/// `request` with `"stream": true` in its JSON body: the switch of every
/// provider whose streaming request is otherwise the plain one.
pub(crate) fn streaming(mut request: HttpRequest) -> HttpRequest {
    if let Some(Body::Json(serde_json::Value::Object(body))) = &mut request.body {
        body.insert("stream".into(), serde_json::Value::Bool(true));
    }
    request
}

fn ndjson_frame(data: String) -> Frame {
    Frame {
        event: Cow::Borrowed(""),
        data,
    }
}

fn decode_all(
    streams: &dyn StreamsChat,
    query: &ChatQuery,
    frames: impl Iterator<Item = Frame>,
    out: &mut Vec<ChatDelta>,
) -> Result<(), ProviderFailure> {
    for frame in frames {
        streams.decode_frame(query, &frame, out)?;
    }
    Ok(())
}

/// Shared pieces of the providers' stream tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::capability::llm::{ChatAccumulator, ChatReply};
    use crate::error::FailureClass;

    /// The reply `body` folds into when fed `piece` bytes at a time, or
    /// the first failure (a cut stream's included).
    pub(crate) fn decode_in_pieces(
        streams: &dyn StreamsChat,
        query: &ChatQuery,
        body: &[u8],
        piece: usize,
    ) -> Result<ChatReply, ProviderFailure> {
        let mut decoder = ChatStreamDecoder::new(streams.framing());
        let mut answer = ChatAccumulator::new();
        let mut deltas = Vec::new();
        for chunk in body.chunks(piece.max(1)) {
            decoder.push(streams, query, chunk, &mut deltas)?;
            for delta in deltas.drain(..) {
                assert!(
                    !matches!(&delta, ChatDelta::Text(t) | ChatDelta::Reasoning(t) if t.is_empty()),
                    "empty text delta"
                );
                answer.push(&delta);
            }
        }
        decoder.end(streams, query, &mut deltas)?;
        deltas.iter().for_each(|d| answer.push(d));
        answer.finish()
    }

    /// The reply of the whole `body`, checked to be the same whatever the
    /// size of the reads (1 to 13 bytes, so splits fall inside CRLFs and
    /// UTF-8 sequences).
    pub(crate) fn decode_whole(
        streams: &dyn StreamsChat,
        query: &ChatQuery,
        body: &str,
    ) -> Result<ChatReply, ProviderFailure> {
        let whole = decode_in_pieces(streams, query, body.as_bytes(), body.len());
        for piece in 1..=13 {
            assert_eq!(
                decode_in_pieces(streams, query, body.as_bytes(), piece),
                whole,
                "read {piece} bytes at a time"
            );
        }
        whole
    }

    /// The stream fixture of `streams`.
    pub(crate) fn stream_fixture(streams: &dyn StreamsChat) -> &'static str {
        streams
            .stream_fixtures()
            .first()
            .expect("a stream fixture")
            .body
    }

    /// Every cut of `body` before its final frame fails, and never as
    /// anything but a cut (transient) or a malformed frame.
    pub(crate) fn assert_cuts_fail(streams: &dyn StreamsChat, query: &ChatQuery, body: &str) {
        let body = body.trim_end().as_bytes();
        // Cutting only the last frame's terminator leaves it undispatched
        // (SSE) or complete (NDJSON): cuts start before the last byte.
        for cut in (0..body.len() - 1).step_by(7) {
            let f = decode_in_pieces(streams, query, &body[..cut], 5).unwrap_err();
            assert!(
                matches!(
                    f.class,
                    FailureClass::Transient | FailureClass::MalformedResponse
                ),
                "cut at {cut}: {f}"
            );
        }
    }
}
