//! Sending one provider request over HTTP, with the key added last.
//!
//! This is the only place a key is exposed (`ExposeSecret`), and only into
//! the outgoing request. Transport errors are classified here and their
//! messages are built without the URL, because a query-string key would
//! otherwise appear in them.

use bytes::{Bytes, BytesMut};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{FailureClass, ProviderFailure};
use crate::per_process::PerProcess;
use crate::provider::{HttpRequest, HttpResponse, KeyPlacement};

/// The shared HTTP client and its limits.
#[derive(Debug)]
pub(crate) struct Transport {
    /// This process's client: a forked child cannot use the parent's
    /// pooled connections, so it gets its own.
    client: PerProcess<reqwest::Client>,
    user_agent: http::HeaderValue,
    max_body: usize,
}

/// No reqwest-level timeouts: the pipeline's attempt timeout bounds
/// connect, send and read together, on the injected clock. No reqwest-level
/// retries either: every request sent is one the retry policy decided on
/// and the quota and limiter counted; a hidden re-send would be neither.
fn build_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .retry(reqwest::retry::never())
        .build()
        .map_err(|e| e.to_string())
}

impl Transport {
    pub(crate) fn new(user_agent: &str, max_body: usize) -> Result<Self, crate::Error> {
        // reqwest is built without a default TLS crypto provider; install ring
        // once per process (a second install is a harmless no-op error).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let user_agent = http::HeaderValue::from_str(user_agent)
            .map_err(|_| crate::Error::config("user_agent", "must be printable ASCII"))?;
        let client = PerProcess::new();
        // Built now, so that a client that cannot work fails at start-up.
        client.get_or_make(build_client).map_err(|reason| {
            crate::Error::config("http", format!("cannot build the HTTP client: {reason}"))
        })?;
        Ok(Self {
            client,
            user_agent,
            max_body,
        })
    }

    /// This process's HTTP client (a fresh one in a forked child).
    fn client(&self) -> Result<reqwest::Client, ProviderFailure> {
        self.client.get_or_make(build_client).map_err(|reason| {
            ProviderFailure::new(
                FailureClass::Transient,
                format!("cannot build the HTTP client: {reason}"),
            )
            .not_sent()
        })
    }

    /// Sends `request` with `key` placed as the provider declares; reads the
    /// whole body up to the size limit. Timeouts are the caller's job.
    pub(crate) async fn send(
        &self,
        request: &HttpRequest,
        base: Option<&BaseUrl>,
        key: Option<(&SecretString, KeyPlacement)>,
        idempotency: Option<(&'static str, &str)>,
        received_at: impl FnOnce() -> chrono::DateTime<chrono::Utc>,
    ) -> Result<HttpResponse, ProviderFailure> {
        let response = self.start(request, base, key, idempotency).await?;
        self.read_whole(response, request, received_at).await
    }

    /// Sends a streaming request: a 2xx response's body is left to be read
    /// as it arrives; any other is read whole, to be classified.
    pub(crate) async fn open(
        &self,
        request: &HttpRequest,
        base: Option<&BaseUrl>,
        key: Option<(&SecretString, KeyPlacement)>,
        idempotency: Option<(&'static str, &str)>,
        received_at: impl FnOnce() -> chrono::DateTime<chrono::Utc>,
    ) -> Result<Opened, ProviderFailure> {
        let response = self.start(request, base, key, idempotency).await?;
        if response.status().is_success() {
            Ok(Opened::Streaming(BodyStream {
                status: response.status().as_u16(),
                response,
                received_at: received_at(),
            }))
        } else {
            Ok(Opened::Whole(
                self.read_whole(response, request, received_at).await?,
            ))
        }
    }

    /// Sends `request` and waits for the response head.
    async fn start(
        &self,
        request: &HttpRequest,
        base: Option<&BaseUrl>,
        key: Option<(&SecretString, KeyPlacement)>,
        idempotency: Option<(&'static str, &str)>,
    ) -> Result<reqwest::Response, ProviderFailure> {
        let query_key = match key {
            Some((key, KeyPlacement::Query { param })) => Some((param, key.expose_secret())),
            _ => None,
        };
        let mut builder = self
            .client()?
            .request(
                request.method.clone(),
                url_with_query(request, base, query_key)?,
            )
            .header(http::header::USER_AGENT, self.user_agent.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_ref(), value);
        }
        if let Some(body) = &request.body {
            let bytes = body.to_bytes().map_err(|e| {
                ProviderFailure::new(
                    FailureClass::InvalidRequest,
                    format!("cannot serialize the request body: {e}"),
                )
                .not_sent()
            })?;
            // As reqwest's `json` does: the type unless the provider set one.
            if !request
                .headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            {
                builder = builder.header(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
            }
            builder = builder.body(bytes);
        }
        if let Some((header, value)) = idempotency {
            builder = builder.header(header, value);
        }
        match key {
            Some((key, KeyPlacement::Header { name, prefix })) => {
                // Plain pushes: `format!` costs several times more on this
                // per-call path.
                let key = key.expose_secret();
                let mut text = String::with_capacity(prefix.len() + key.len());
                text.push_str(prefix);
                text.push_str(key);
                let mut value = http::HeaderValue::from_str(&text).map_err(|_| {
                    ProviderFailure::new(
                        FailureClass::Auth,
                        "the key contains characters not allowed in a header",
                    )
                    .not_sent()
                })?;
                value.set_sensitive(true);
                builder = builder.header(name, value);
            }
            Some((_, KeyPlacement::Query { .. })) | None => {}
        }
        builder.send().await.map_err(classify_send_error)
    }

    /// Reads `response`'s whole body, up to the size limit.
    async fn read_whole(
        &self,
        mut response: reqwest::Response,
        request: &HttpRequest,
        received_at: impl FnOnce() -> chrono::DateTime<chrono::Utc>,
    ) -> Result<HttpResponse, ProviderFailure> {
        let status = response.status().as_u16();
        let headers = std::mem::take(response.headers_mut());
        if let Some(len) = response.content_length() {
            if len > self.max_body as u64 {
                return Err(too_large(status, self.max_body));
            }
        }
        // Most bodies arrive in one chunk: keep it as is, copy only when a
        // second one comes.
        let mut first: Option<Bytes> = None;
        let mut rest = BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let have = first.as_ref().map_or(0, Bytes::len) + rest.len();
                    if have + chunk.len() > self.max_body {
                        return Err(too_large(status, self.max_body));
                    }
                    match &first {
                        None => first = Some(chunk),
                        Some(head) => {
                            if rest.is_empty() {
                                rest.extend_from_slice(head);
                            }
                            rest.extend_from_slice(&chunk);
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(body_failure(&e, status)),
            }
        }
        let body = if rest.is_empty() {
            first.unwrap_or_default()
        } else {
            rest.freeze()
        };
        Ok(HttpResponse {
            status,
            headers,
            body,
            received_at: received_at(),
            url: request.url.clone(),
        })
    }
}

/// What a streaming request got back.
pub(crate) enum Opened {
    /// A 2xx response, its body still to be read.
    Streaming(BodyStream),
    /// Any other response, read whole.
    Whole(HttpResponse),
}

/// The body of a 2xx streamed response, read as it arrives. Dropping it
/// closes the connection, which cancels the provider's generation.
pub(crate) struct BodyStream {
    response: reqwest::Response,
    pub status: u16,
    /// Wall time at which the response head arrived.
    pub received_at: chrono::DateTime<chrono::Utc>,
}

impl BodyStream {
    /// The next piece of the body; `None` once it has ended.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, ProviderFailure> {
        self.response
            .chunk()
            .await
            .map_err(|e| body_failure(&e, self.status))
    }
}

fn body_failure(error: &reqwest::Error, status: u16) -> ProviderFailure {
    ProviderFailure::new(
        FailureClass::Transient,
        format!(
            "connection failed while reading the body: {}",
            describe(error)
        ),
    )
    .status(status)
}

/// A provider's base URL, parsed once: parsing the scheme and host is most
/// of the cost of parsing a URL, and every request of the provider repeats
/// them.
#[derive(Debug)]
pub(crate) struct BaseUrl {
    /// As configured, without a trailing `/`: what requests start with.
    prefix: String,
    parsed: url::Url,
}

impl BaseUrl {
    /// `None` when `base` does not parse or carries a query or fragment
    /// (requests under it are then parsed whole).
    pub(crate) fn new(base: &str) -> Option<Self> {
        let parsed = url::Url::parse(base).ok()?;
        if parsed.query().is_some() || parsed.fragment().is_some() || parsed.cannot_be_a_base() {
            return None;
        }
        Some(Self {
            prefix: base.trim_end_matches('/').to_string(),
            parsed,
        })
    }

    /// `full` parsed by extending the parsed base with its path, when `full`
    /// is this base plus a path (no query or fragment).
    fn join(&self, full: &str) -> Option<url::Url> {
        let rest = full.strip_prefix(&self.prefix)?;
        if !(rest.is_empty() || rest.starts_with('/')) || rest.contains(['?', '#']) {
            return None;
        }
        let base_path = self.parsed.path().trim_end_matches('/');
        let mut path = String::with_capacity(base_path.len() + rest.len());
        path.push_str(base_path);
        path.push_str(rest);
        let mut url = self.parsed.clone();
        url.set_path(&path);
        Some(url)
    }
}

/// The request's URL with its query pairs (and a query-placed key last),
/// form-encoded as reqwest's `query` would, handed to reqwest as a parsed
/// `Url`. Under the provider's `base`, only the path is parsed.
fn url_with_query(
    request: &HttpRequest,
    base: Option<&BaseUrl>,
    key: Option<(&str, &str)>,
) -> Result<url::Url, ProviderFailure> {
    let mut url = match base.and_then(|base| base.join(&request.url)) {
        Some(url) => url,
        None => url::Url::parse(&request.url).map_err(|e| {
            // The parse error names what is wrong, never the URL itself.
            ProviderFailure::new(
                FailureClass::InvalidRequest,
                format!("the request URL is invalid: {e}"),
            )
            .not_sent()
        })?,
    };
    if !request.query.is_empty() || key.is_some() {
        url.query_pairs_mut()
            .extend_pairs(request.query.iter().map(|(k, v)| (k.as_ref(), v.as_str())))
            .extend_pairs(key);
    }
    Ok(url)
}

fn too_large(status: u16, max: usize) -> ProviderFailure {
    ProviderFailure::malformed(format!("response body larger than the {max} byte limit"))
        .status(status)
}

fn classify_send_error(error: reqwest::Error) -> ProviderFailure {
    let failure = ProviderFailure::new(FailureClass::Transient, describe(&error));
    if error.is_connect() {
        failure.not_sent()
    } else {
        failure
    }
}

/// A description of a transport error that never includes the URL.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_connect() {
        "connection refused or unreachable"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_body() || error.is_decode() {
        "broken response body"
    } else if error.is_request() {
        "connection failed"
    } else {
        "HTTP error"
    };
    // The source chain (hyper/io errors) carries the useful detail and no URL.
    let mut detail = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(err) = source {
        detail = err.to_string();
        source = err.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

/// Removes the key from a failure message: some providers echo the key they
/// refused ("invalid API key sk-…") in their error bodies.
pub(crate) fn redact(mut failure: ProviderFailure, key: Option<&SecretString>) -> ProviderFailure {
    if let Some(key) = key {
        let key = key.expose_secret();
        if key.len() >= 4 && failure.message.contains(key) {
            failure.message = failure.message.replace(key, "[redacted]");
        }
    }
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_form_encoded_with_the_key_last() {
        let request = HttpRequest::get("http://127.0.0.1:9/api", "/search")
            .query("q", "café & co/2")
            .query("lang", "en");
        let url = |key| url_with_query(&request, None, key).map(String::from);
        assert_eq!(
            url(Some(("key", "s3cr=t"))).as_deref(),
            Ok("http://127.0.0.1:9/api/search?q=caf%C3%A9+%26+co%2F2&lang=en&key=s3cr%3Dt")
        );
        assert_eq!(
            url(None).as_deref(),
            Ok("http://127.0.0.1:9/api/search?q=caf%C3%A9+%26+co%2F2&lang=en")
        );
    }

    #[test]
    fn a_base_url_with_its_own_query_keeps_it() {
        let bare = HttpRequest::get("http://127.0.0.1:9/api?tenant=7", "");
        assert_eq!(
            url_with_query(&bare, None, None)
                .map(String::from)
                .as_deref(),
            Ok("http://127.0.0.1:9/api?tenant=7"),
            "sent as is"
        );
        let request = bare.query("q", "x");
        assert_eq!(
            url_with_query(&request, None, Some(("key", "k")))
                .map(String::from)
                .as_deref(),
            Ok("http://127.0.0.1:9/api?tenant=7&q=x&key=k")
        );
    }

    #[test]
    fn a_url_under_a_parsed_base_equals_the_whole_url_parsed() {
        let bases = [
            "http://127.0.0.1:9/api",
            "http://127.0.0.1:9/api/",
            "https://api.open-meteo.com",
            "https://API.Example.com:443/v1/",
            "http://user:pw@host.test/x%20y",
            "http://[::1]:8080",
        ];
        let paths = [
            "",
            "/",
            "/search",
            "/a b/ü/%41",
            "/a/../b/./c",
            "/%2e%2e/x",
            "/back\\slash",
            "//double",
        ];
        for base_text in bases {
            let base = BaseUrl::new(base_text).expect("a plain base");
            for path in paths {
                let request = HttpRequest::get(base_text, path).query("q", "x y");
                let fast = url_with_query(&request, Some(&base), None).map(String::from);
                let whole = url_with_query(&request, None, None).map(String::from);
                assert_eq!(fast, whole, "{base_text} + {path}");
            }
        }
    }

    #[test]
    fn urls_outside_the_base_are_parsed_whole() {
        let base = BaseUrl::new("http://127.0.0.1:9/api").unwrap();
        assert!(base.join("http://127.0.0.1:9/apix").is_none());
        assert!(base.join("http://127.0.0.1:9/api/x?y=1").is_none());
        assert!(base.join("https://other.test/api").is_none());
        let follow_up = HttpRequest::get("https://other.test/page", "");
        assert_eq!(
            url_with_query(&follow_up, Some(&base), None)
                .map(String::from)
                .as_deref(),
            Ok("https://other.test/page")
        );
        assert!(BaseUrl::new("http://127.0.0.1:9/api?tenant=7").is_none());
        assert!(BaseUrl::new("not a url").is_none());
    }
}
