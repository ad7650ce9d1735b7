//! The provider model: what every provider implements, in one file.
//!
//! A provider is declarative. It describes itself ([`Provider`]: its
//! [`ProviderInfo`] and canned replies) and, for each capability it serves,
//! implements [`Serves`]: it turns that capability's validated query into an
//! [`HttpRequest`], and the [`HttpResponse`] into that capability's answer or
//! a classified [`ProviderFailure`]. The [`serves!`](crate::serves) line
//! lists the capabilities once; the compiler checks that each has its
//! `Serves` implementation and that each answer has its capability's type.
//! A provider never sends anything, sleeps, retries or sees a key: the
//! pipeline does all of that, the same way for every provider.
//!
//! A provider that needs two round trips (geocode, then forecast) answers the
//! first response with [`Step::Next`].
//!
//! ```
//! use polyrelay::capability::{finance::{FxQuery, FxRates}, marker};
//! use polyrelay::provider::{
//!     Auth, CallContext, Dispatch, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
//! };
//! use polyrelay::ProviderFailure;
//!
//! struct FixedRates;
//!
//! static INFO: ProviderInfo = ProviderInfo {
//!     id: "fixed-rates",
//!     name: "Fixed rates",
//!     auth: Auth::Keyless,
//!     base_url: "https://rates.example",
//!     docs_url: "https://rates.example/docs",
//!     terms: "",
//!     commercial_use: true,
//!     default_rate_limit: None,
//!     default_quota: None,
//! };
//!
//! impl Provider for FixedRates {
//!     fn info(&self) -> &ProviderInfo {
//!         &INFO
//!     }
//! }
//!
//! polyrelay::serves!(FixedRates: FxRates);
//!
//! impl Serves<marker::FxRates> for FixedRates {
//!     fn build_request(&self, q: &FxQuery, ctx: &CallContext<'_>) -> Result<HttpRequest, ProviderFailure> {
//!         Ok(HttpRequest::get(ctx.base_url, "/latest").query("base", q.base.as_str()))
//!     }
//!
//!     fn read_response(
//!         &self,
//!         q: &FxQuery,
//!         _ctx: &CallContext<'_>,
//!         response: HttpResponse,
//!     ) -> Result<Step<FxRates>, ProviderFailure> {
//!         response.check_status()?;
//!         let rates = response.json()?;
//!         Ok(Step::Done(FxRates { base: q.base.as_str().to_string(), date: String::new(), rates, source: None }))
//!     }
//! }
//!
//! assert_eq!(FixedRates.capabilities(), [polyrelay::CapabilityId::FxRates]);
//! ```

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::capability::{Capability, CapabilityId, Data, Request};
use crate::error::{FailureClass, ProviderFailure};

pub(crate) mod ndjson;
pub(crate) mod retry_after;
pub(crate) mod sse;
pub(crate) mod stream;
mod tolerant;

pub use crate::resilience::quota::{Quota, QuotaPeriod};
pub use stream::{ChatStreamDecoder, Frame, Framing, StreamsChat};

/// How a provider authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Auth {
    /// No key at all.
    Keyless,
    /// An API key read from `env` (or the config file).
    Key {
        /// Environment variable holding the key, e.g. `COINGECKO_API_KEY`.
        env: &'static str,
        /// Where the key goes in the request.
        placement: KeyPlacement,
        /// Whether the provider also works without a key (at lower limits).
        optional: bool,
    },
}

/// Where a key is sent. Headers are preferred wherever the provider accepts
/// one, because query strings end up in proxy and server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "in", rename_all = "snake_case")]
pub enum KeyPlacement {
    /// `name: {prefix}{key}`, e.g. `Authorization: Bearer …`.
    Header {
        /// Header name.
        name: &'static str,
        /// Text before the key (`"Bearer "` or empty).
        prefix: &'static str,
    },
    /// `?{param}={key}`.
    Query {
        /// Query parameter name.
        param: &'static str,
    },
}

/// What a provider declares about itself.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderInfo {
    /// Stable id, lower-case with dashes (`open-meteo`).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Authentication.
    pub auth: Auth,
    /// Default base URL; config can override it.
    pub base_url: &'static str,
    /// Documentation URL.
    pub docs_url: &'static str,
    /// Terms worth knowing (attribution, non-commercial, …).
    pub terms: &'static str,
    /// Whether the free terms allow commercial use.
    pub commercial_use: bool,
    /// Documented free-tier rate, as a rate string (`"600/min"`), if any.
    pub default_rate_limit: Option<&'static str>,
    /// Documented free-tier request quota, per calendar day
    /// ([`Quota::per_day`]) or month ([`Quota::per_month`]), if any.
    pub default_quota: Option<Quota>,
}

impl ProviderInfo {
    /// Whether this provider can be called without any key.
    pub fn is_keyless(&self) -> bool {
        match self.auth {
            Auth::Keyless => true,
            Auth::Key { optional, .. } => optional,
        }
    }
}

/// What the provider may know about the call besides the request.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    /// The base URL to use (the default, or the configured override).
    pub base_url: &'a str,
    /// The SDK-wide User-Agent, already including the contact when set.
    pub user_agent: &'a str,
}

/// One provider: what it declares about itself. What it serves is its
/// [`Serves`] implementations, listed once by [`serves!`](crate::serves),
/// which writes the [`Dispatch`] the engine calls.
pub trait Provider: Dispatch + Send + Sync + 'static {
    /// What the provider declares about itself.
    fn info(&self) -> &ProviderInfo;

    /// Canned replies in the provider's real wire format, paths relative to
    /// the base URL. The emulator serves them under `/{id}`; tests use them
    /// to check normalisation. The built-in providers declare theirs only
    /// with the `emulator` feature (or in tests); a plain build has none.
    fn fixtures(&self) -> &'static [Fixture] {
        &[]
    }

    /// The header that carries an idempotency key, for providers that
    /// de-duplicate POSTs by one (`Idempotency-Key`). Only then is a POST
    /// retried after it may have been sent.
    fn idempotency_header(&self) -> Option<&'static str> {
        None
    }

    /// How this provider streams `llm.chat`, if it does: the engine finds
    /// a provider's [`StreamsChat`] here without knowing its type.
    fn streams_chat(&self) -> Option<&dyn StreamsChat> {
        None
    }
}

/// Serving capability `C`: its validated query in, its answer out.
pub trait Serves<C: Capability> {
    /// The first HTTP request for `query`. A query this provider cannot
    /// serve (a parameter it lacks) is [`FailureClass::Unsupported`].
    fn build_request(
        &self,
        query: &C::Query,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure>;

    /// Interprets a response: the answer, a follow-up request, or a
    /// classified failure. Called for every status; start with
    /// [`HttpResponse::check_status`] unless the provider has its own rules.
    fn read_response(
        &self,
        query: &C::Query,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<C::Data>, ProviderFailure>;
}

/// A provider's [`Serves`] implementations behind one capability-erased
/// face, the one the engine calls. Written by [`serves!`](crate::serves),
/// which routes each [`Request`] variant to its `Serves` implementation, so
/// an answer is always of its request's capability.
pub trait Dispatch {
    /// The capabilities served, in the order `serves!` lists them.
    fn capabilities(&self) -> &'static [CapabilityId];

    /// [`Serves::build_request`] of the request's capability.
    fn request(
        &self,
        request: &Request,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure>;

    /// [`Serves::read_response`] of the request's capability.
    fn response(
        &self,
        request: &Request,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step, ProviderFailure>;
}

/// Declares the capabilities a provider serves, each of which it implements
/// [`Serves`](crate::provider::Serves) for: `serves!(MyProvider: FxRates,
/// CryptoPrice);` with the variant names of
/// [`CapabilityId`](crate::CapabilityId). See the example of
/// [`provider`](crate::provider).
#[macro_export]
macro_rules! serves {
    ($provider:ty: $($capability:ident),+ $(,)?) => {
        impl $crate::provider::Dispatch for $provider {
            fn capabilities(&self) -> &'static [$crate::CapabilityId] {
                &[$($crate::CapabilityId::$capability),+]
            }

            fn request(
                &self,
                request: &$crate::capability::Request,
                ctx: &$crate::provider::CallContext<'_>,
            ) -> ::std::result::Result<$crate::provider::HttpRequest, $crate::ProviderFailure> {
                match request {
                    $($crate::capability::Request::$capability(query) => {
                        <Self as $crate::provider::Serves<$crate::capability::marker::$capability>>::build_request(self, query, ctx)
                    })+
                    #[allow(unreachable_patterns)]
                    other => Err($crate::provider::not_served(self, other)),
                }
            }

            fn response(
                &self,
                request: &$crate::capability::Request,
                ctx: &$crate::provider::CallContext<'_>,
                response: $crate::provider::HttpResponse,
            ) -> ::std::result::Result<$crate::provider::Step, $crate::ProviderFailure> {
                match request {
                    $($crate::capability::Request::$capability(query) => {
                        <Self as $crate::provider::Serves<$crate::capability::marker::$capability>>::read_response(self, query, ctx, response)
                            .map(|step| step.map($crate::capability::Data::$capability))
                    })+
                    #[allow(unreachable_patterns)]
                    other => Err($crate::provider::not_served(self, other)),
                }
            }
        }
    };
}

/// The failure for a request of a capability the provider does not serve.
#[doc(hidden)]
pub fn not_served(provider: &dyn Provider, request: &Request) -> ProviderFailure {
    ProviderFailure::unsupported(format!(
        "{} does not serve {}",
        provider.info().id,
        request.capability()
    ))
    .not_sent()
}

/// The built-in providers are `&'static` singletons; this lets them sit in
/// the same `Arc<dyn Provider>` registry as providers added at run time.
impl<P: Provider + ?Sized> Provider for &'static P {
    fn info(&self) -> &ProviderInfo {
        (**self).info()
    }

    fn fixtures(&self) -> &'static [Fixture] {
        (**self).fixtures()
    }

    fn idempotency_header(&self) -> Option<&'static str> {
        (**self).idempotency_header()
    }

    fn streams_chat(&self) -> Option<&dyn StreamsChat> {
        (**self).streams_chat()
    }
}

impl<P: Dispatch + ?Sized> Dispatch for &'static P {
    fn capabilities(&self) -> &'static [CapabilityId] {
        (**self).capabilities()
    }

    fn request(
        &self,
        request: &Request,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        (**self).request(request, ctx)
    }

    fn response(
        &self,
        request: &Request,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step, ProviderFailure> {
        (**self).response(request, ctx, response)
    }
}

/// A canned reply in a provider's real wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixture {
    /// HTTP method.
    pub method: &'static str,
    /// Path relative to the provider's base URL (`/v1/forecast`); a trailing
    /// `*` matches any suffix.
    pub path: &'static str,
    /// Status code.
    pub status: u16,
    /// Response body.
    pub body: &'static str,
}

/// What a response leads to: `T` is the capability's answer ([`Data`] once
/// erased by [`Dispatch`]).
#[derive(Debug)]
pub enum Step<T = Data> {
    /// The normalised answer.
    Done(T),
    /// Another request is needed (multi-step providers).
    Next(HttpRequest),
}

impl<T> Step<T> {
    /// The same step with its answer mapped by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Step<U> {
        match self {
            Step::Done(answer) => Step::Done(f(answer)),
            Step::Next(request) => Step::Next(request),
        }
    }
}

/// An HTTP request as a provider describes it, without credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL without the query string.
    pub url: String,
    /// Query pairs, in order.
    pub query: Vec<(Cow<'static, str>, String)>,
    /// Extra headers (User-Agent is added by the pipeline).
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// JSON body, if any.
    pub body: Option<Body>,
}

/// The JSON body of an [`HttpRequest`].
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A JSON value, serialized when sent.
    Json(serde_json::Value),
    /// JSON already serialized: a provider writing its body straight from
    /// the query, without building a [`serde_json::Value`] tree first (on
    /// every chat call, that tree cost more than the rest of the request).
    Serialized(Bytes),
}

impl Body {
    /// The body as a JSON value (a serialized one parsed back; `None` if
    /// it is not JSON), for tests and for code amending a body.
    pub fn to_value(&self) -> Option<serde_json::Value> {
        match self {
            Body::Json(value) => Some(value.clone()),
            Body::Serialized(bytes) => serde_json::from_slice(bytes).ok(),
        }
    }

    /// The bytes sent.
    pub(crate) fn to_bytes(&self) -> Result<Bytes, serde_json::Error> {
        match self {
            Body::Json(value) => serde_json::to_vec(value).map(Bytes::from),
            Body::Serialized(bytes) => Ok(bytes.clone()),
        }
    }
}

impl HttpRequest {
    /// A GET of `base` + `path`.
    pub fn get(base: &str, path: &str) -> Self {
        Self::new(Method::GET, base, path)
    }

    /// A POST of `base` + `path` with a JSON body.
    pub fn post_json(base: &str, path: &str, body: serde_json::Value) -> Self {
        let mut req = Self::new(Method::POST, base, path);
        req.body = Some(Body::Json(body));
        req
    }

    /// A POST of `base` + `path` with `body` serialized as JSON now,
    /// straight from its `Serialize` implementation (no
    /// [`serde_json::Value`] built on the way).
    pub fn post_serialized(
        base: &str,
        path: &str,
        body: &impl Serialize,
        size_hint: usize,
    ) -> Result<Self, ProviderFailure> {
        let mut bytes = Vec::with_capacity(size_hint);
        serde_json::to_writer(&mut bytes, body).map_err(|e| {
            ProviderFailure::new(
                FailureClass::InvalidRequest,
                format!("cannot serialize the request body: {e}"),
            )
            .not_sent()
        })?;
        let mut req = Self::new(Method::POST, base, path);
        req.body = Some(Body::Serialized(Bytes::from(bytes)));
        Ok(req)
    }

    /// The JSON body as a value (see [`Body::to_value`]).
    pub fn json_body(&self) -> Option<serde_json::Value> {
        self.body.as_ref().and_then(Body::to_value)
    }

    fn new(method: Method, base: &str, path: &str) -> Self {
        let base = base.trim_end_matches('/');
        // Plain pushes: `format!` costs several times more on this per-call path.
        let mut url = String::with_capacity(base.len() + path.len() + 1);
        url.push_str(base);
        if !path.is_empty() && !path.starts_with('/') {
            url.push('/');
        }
        url.push_str(path);
        Self {
            method,
            url,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((Cow::Borrowed(name), value.into()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((Cow::Borrowed(name), value.into()));
        self
    }

    /// Whether repeating the request is safe (RFC 9110 §9.2.2).
    pub fn is_idempotent(&self) -> bool {
        !matches!(self.method, Method::POST | Method::PATCH)
    }
}

/// A provider's response, fully read.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes (bounded by the configured maximum size).
    pub body: Bytes,
    /// Wall time at which it arrived, for `Retry-After` dates.
    pub received_at: DateTime<Utc>,
    /// The URL asked, as the provider wrote it in its [`HttpRequest`]
    /// (without the query string). A fragment stays in it and is never
    /// sent, so a provider may note there what it chose for a follow-up
    /// (the language of a caption file it asks for).
    pub url: String,
}

impl HttpResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON of type `T`, read tolerantly (numbers as numeric
    /// strings, ids as numbers, `null` lists as empty; see
    /// `provider/tolerant.rs`); what still does not fit is a malformed
    /// response naming the field. Leading blank lines (DeepSeek's
    /// keep-alive) are tolerated.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderFailure> {
        let start = self
            .body
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(self.body.len());
        tolerant::read(&self.body[start..]).map_err(|e| {
            ProviderFailure::malformed(format!("unexpected response body: {e}")).status(self.status)
        })
    }

    /// A part of the body already parsed (one entry of a map keyed by
    /// data, one item of a list) as `T`, read as tolerantly as [`json`]
    /// reads the whole body.
    ///
    /// [`json`]: HttpResponse::json
    pub fn json_part<T: DeserializeOwned>(
        &self,
        part: &serde_json::Value,
    ) -> Result<T, ProviderFailure> {
        tolerant::from_value(part).map_err(|e| {
            ProviderFailure::malformed(format!("unexpected response body: {e}")).status(self.status)
        })
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The server's requested wait: `retry-after-ms`, then `Retry-After`
    /// (seconds or any HTTP-date form). Garbage is ignored.
    pub fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after-ms")
            .and_then(retry_after::parse_retry_after_ms)
            .or_else(|| {
                self.header("retry-after")
                    .and_then(|v| retry_after::parse_retry_after(v, self.received_at))
            })
    }

    /// A short, secret-free excerpt of the body for error messages.
    pub fn body_excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(200)]);
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The default classification of a non-2xx status; `Ok` for 2xx.
    ///
    /// 408 and 5xx are transient, 429 is rate limited (with `Retry-After`),
    /// 401/403 are auth, 402 is quota (credits), 404/410 not found, other
    /// 4xx invalid request.
    pub fn check_status(&self) -> Result<(), ProviderFailure> {
        match self.status_class() {
            None => Ok(()),
            Some(class) => Err(self.failure(class, self.body_excerpt())),
        }
    }

    /// The class [`HttpResponse::check_status`] gives this status; `None`
    /// for 2xx. For providers whose error bodies carry codes: an unknown
    /// code still says what the status says (a 503 is transient whatever
    /// the body).
    pub fn status_class(&self) -> Option<FailureClass> {
        if self.is_success() {
            return None;
        }
        Some(match self.status {
            408 | 500..=599 => FailureClass::Transient,
            429 => FailureClass::RateLimited,
            401 | 403 => FailureClass::Auth,
            402 => FailureClass::QuotaExhausted,
            404 | 410 => FailureClass::NotFound,
            400..=499 => FailureClass::InvalidRequest,
            _ => FailureClass::MalformedResponse,
        })
    }

    /// A failure of `class` carrying this response's status and `Retry-After`.
    pub fn failure(&self, class: FailureClass, message: impl Into<String>) -> ProviderFailure {
        ProviderFailure::new(class, message)
            .status(self.status)
            .retry_after(self.retry_after())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&'static str, &str)], body: &str) -> HttpResponse {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, v.parse().unwrap());
        }
        HttpResponse {
            status,
            headers: map,
            body: Bytes::copy_from_slice(body.as_bytes()),
            received_at: "2015-10-21T07:27:30Z".parse().unwrap(),
            url: "https://example.com/".into(),
        }
    }

    #[test]
    fn default_classification_by_status() {
        let class = |s| response(s, &[], "").check_status().unwrap_err().class;
        assert_eq!(class(503), FailureClass::Transient);
        assert_eq!(class(408), FailureClass::Transient);
        assert_eq!(class(429), FailureClass::RateLimited);
        assert_eq!(class(401), FailureClass::Auth);
        assert_eq!(class(402), FailureClass::QuotaExhausted);
        assert_eq!(class(404), FailureClass::NotFound);
        assert_eq!(class(422), FailureClass::InvalidRequest);
        assert!(response(204, &[], "").check_status().is_ok());
    }

    #[test]
    fn retry_after_in_every_form() {
        let r = response(429, &[("retry-after", "3")], "");
        assert_eq!(
            r.check_status().unwrap_err().retry_after,
            Some(Duration::from_secs(3))
        );
        let r = response(429, &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")], "");
        assert_eq!(r.retry_after(), Some(Duration::from_secs(30)));
        let r = response(429, &[("retry-after-ms", "1500"), ("retry-after", "9")], "");
        assert_eq!(r.retry_after(), Some(Duration::from_millis(1500)));
        let r = response(429, &[("retry-after", "soon")], "");
        assert_eq!(r.retry_after(), None);
    }

    #[test]
    fn json_tolerates_leading_blank_lines_and_flags_garbage() {
        let r = response(200, &[], "\n\n  {\"a\": 1}");
        let v: serde_json::Value = r.json().unwrap();
        assert_eq!(v["a"], 1);
        let r = response(200, &[], "{\"a\": ");
        assert_eq!(
            r.json::<serde_json::Value>().unwrap_err().class,
            FailureClass::MalformedResponse
        );
    }

    #[test]
    fn urls_join_cleanly() {
        assert_eq!(
            HttpRequest::get("http://h/x/", "/v1/a").url,
            "http://h/x/v1/a"
        );
        assert_eq!(HttpRequest::get("http://h", "v1").url, "http://h/v1");
        assert!(!HttpRequest::post_json("http://h", "/", serde_json::json!({})).is_idempotent());
    }
}
