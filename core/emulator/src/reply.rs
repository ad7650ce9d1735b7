//! What the emulator answers: a status, headers and a body.

use std::fmt::Display;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{HeaderMap, Response, StatusCode};
use serde::Serialize;

use crate::log::Delivery;
use crate::oversized::OversizedBody;
use crate::streamed::{Chunk, ChunkFault, StreamedBody};

/// The body type of every response the emulator sends.
pub(crate) type ResponseBody = Either<Full<Bytes>, Either<OversizedBody, StreamedBody>>;

/// A canned HTTP response: status, headers and body.
///
/// Builders never panic. A mistake (a status outside 100..=999, an invalid header
/// name or value, a value that does not serialize) is kept inside the reply, and
/// serving it answers `500` with a JSON body naming the mistake, so a test fails
/// loudly at the first request instead of at setup.
///
/// ```
/// use polyrelay_emulator::Reply;
/// use std::time::Duration;
///
/// let reply = Reply::json(&serde_json::json!({"error": "slow down"}))
///     .with_status(429)
///     .with_retry_after(Duration::from_secs(3));
/// assert_eq!(reply.status(), 429);
/// assert_eq!(reply.headers()["retry-after"], "3");
/// ```
#[derive(Clone, Debug)]
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// A streamed body, sent chunk by chunk in place of `body`.
    chunks: Option<Arc<[Chunk]>>,
    mistake: Option<Arc<str>>,
}

impl Reply {
    /// A reply with this status and an empty body.
    pub fn new(status: u16) -> Self {
        Self {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            chunks: None,
            mistake: None,
        }
        .with_status(status)
    }

    /// `200` with `value` serialized as the JSON body and `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::new(200)
                .with_header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .with_body(body),
            Err(err) => Self::new(200).with_mistake(format!("JSON body does not serialize: {err}")),
        }
    }

    /// `200` with a UTF-8 text body and `Content-Type: text/plain; charset=utf-8`.
    pub fn text(body: impl Into<String>) -> Self {
        Self::new(200)
            .with_header(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )
            .with_body(body.into())
    }

    /// `200` with raw bytes as the body and no `Content-Type`.
    pub fn bytes(body: impl Into<Bytes>) -> Self {
        Self::new(200).with_body(body)
    }

    /// `200` streaming `chunks` one after the other (chunked transfer
    /// encoding), each after its delay; set its `Content-Type` with
    /// [`with_header`](Self::with_header). A request is logged
    /// `closed_early` when the client closes the connection before the
    /// last chunk.
    ///
    /// ```
    /// use polyrelay_emulator::{Chunk, Reply};
    /// use std::time::Duration;
    /// let sse = b"data: {\"text\":\"Hel\"}\n\ndata: {\"text\":\"lo\"}\n\ndata: [DONE]\n\n";
    /// let reply = Reply::stream(Chunk::events(sse, Duration::from_millis(20)))
    ///     .with_header("content-type", "text/event-stream");
    /// assert_eq!(reply.chunks().map(<[Chunk]>::len), Some(3));
    /// ```
    pub fn stream(chunks: impl IntoIterator<Item = Chunk>) -> Self {
        let mut reply = Self::new(200);
        reply.chunks = Some(chunks.into_iter().collect());
        reply
    }

    /// The chunks of a streamed reply.
    pub fn chunks(&self) -> Option<&[Chunk]> {
        self.chunks.as_deref()
    }

    /// Replaces the status code (any code from 100 to 999, as on the wire).
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        match StatusCode::from_u16(status) {
            Ok(code) => self.status = code,
            Err(_) => self = self.with_mistake(format!("status {status} is not in 100..=999")),
        }
        self
    }

    /// Sets a header, replacing any earlier value of the same name.
    ///
    /// Takes anything convertible into a header name and value: `&str`, `String`,
    /// the constants of [`hyper::header`], and for values also integers.
    #[must_use]
    pub fn with_header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Display,
        V: TryInto<HeaderValue>,
        V::Error: Display,
    {
        let name = match name.try_into() {
            Ok(name) => name,
            Err(err) => return self.with_mistake(format!("invalid header name: {err}")),
        };
        match value.try_into() {
            Ok(value) => {
                self.headers.insert(name, value);
                self
            }
            Err(err) => self.with_mistake(format!("invalid value for header {name}: {err}")),
        }
    }

    /// Replaces the body (a streamed reply's chunks included).
    /// `Content-Length` is computed when the reply is served.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self.chunks = None;
        self
    }

    /// Sets `Retry-After` to a delay in whole seconds (rounded up), the form
    /// `Retry-After: 3`.
    #[must_use]
    pub fn with_retry_after(self, delay: Duration) -> Self {
        let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        self.with_header(RETRY_AFTER, secs)
    }

    /// Sets `Retry-After` to an HTTP-date (IMF-fixdate, e.g.
    /// `Wed, 21 Oct 2015 07:28:00 GMT`).
    #[must_use]
    pub fn with_retry_after_at(self, at: SystemTime) -> Self {
        self.with_header(RETRY_AFTER, httpdate::fmt_http_date(at))
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The JSON error reply the emulator uses for its own answers (404, 405, 500).
    pub(crate) fn error(status: u16, error: &str, message: String) -> Self {
        Self::json(&serde_json::json!({ "error": error, "message": message })).with_status(status)
    }

    fn with_mistake(mut self, mistake: String) -> Self {
        // Keep the first mistake: later ones are often consequences of it.
        if self.mistake.is_none() {
            self.mistake = Some(mistake.into());
        }
        self
    }

    /// Builds the hyper response, or the `500` describing a setup mistake.
    pub(crate) fn to_response(&self) -> Response<ResponseBody> {
        self.to_response_with_body(self.body.clone())
    }

    /// Builds the hyper response, streamed when the reply is or a fault
    /// strikes one of its chunks (a whole body is then one chunk). The
    /// delivery guard of a streamed body goes with it; otherwise it is
    /// handed back, for the caller to mark done.
    pub(crate) fn to_delivered_response(
        &self,
        fault: Option<(usize, ChunkFault)>,
        delivery: Option<Delivery>,
    ) -> (Response<ResponseBody>, Option<Delivery>) {
        if self.chunks.is_none() && fault.is_none() || self.mistake.is_some() {
            return (self.to_response(), delivery);
        }
        let chunks = match &self.chunks {
            Some(chunks) => Arc::clone(chunks),
            None => Arc::from([Chunk::new(self.body.clone())]),
        };
        let body = StreamedBody::new(chunks, fault, delivery);
        let mut response = Response::new(Either::Right(Either::Right(body)));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        (response, None)
    }

    /// Builds the hyper response with this reply's status and headers but another body.
    pub(crate) fn to_response_with_body(&self, body: Bytes) -> Response<ResponseBody> {
        if let Some(mistake) = &self.mistake {
            tracing::error!(%mistake, "emulator reply is misconfigured");
            return Self::error(
                500,
                "emulator_misconfigured",
                format!("the emulator reply is misconfigured: {mistake}"),
            )
            .to_response();
        }
        let mut response = Response::new(Either::Left(Full::new(body)));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}
