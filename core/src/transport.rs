//! Sending one provider request over HTTP, with the key added last.
//!
//! This is the only place a key is exposed (`ExposeSecret`), and only into
//! the outgoing request. Transport errors are classified here and their
//! messages are built without the URL, because a query-string key would
//! otherwise appear in them.

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;
use secrecy::{ExposeSecret, SecretString};

use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{HttpRequest, HttpResponse, KeyPlacement};

/// The shared HTTP client and its limits.
#[derive(Debug)]
pub(crate) struct Transport {
    /// The process id the client was built in, and the client. A forked
    /// child cannot use the parent's pooled connections (their I/O tasks ran
    /// on threads the child does not have: a request on one would hang until
    /// its timeout), so the child builds its own client on first use.
    client: RwLock<(u32, reqwest::Client)>,
    user_agent: http::HeaderValue,
    max_body: usize,
}

/// No reqwest-level timeouts: the pipeline's attempt timeout bounds
/// connect, send and read together, on the injected clock. No reqwest-level
/// retries either: every request sent is one the retry policy decided on
/// and the quota and limiter counted; a hidden re-send would be neither.
fn build_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .retry(reqwest::retry::never())
        .build()
}

impl Transport {
    pub(crate) fn new(user_agent: &str, max_body: usize) -> Result<Self, crate::Error> {
        // reqwest is built without a default TLS crypto provider; install ring
        // once per process (a second install is a harmless no-op error).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let user_agent = http::HeaderValue::from_str(user_agent)
            .map_err(|_| crate::Error::config("user_agent", "must be printable ASCII"))?;
        let client = build_client().map_err(|e| {
            crate::Error::config("http", format!("cannot build the HTTP client: {e}"))
        })?;
        Ok(Self {
            client: RwLock::new((std::process::id(), client)),
            user_agent,
            max_body,
        })
    }

    /// This process's HTTP client (a fresh one in a forked child).
    fn client(&self) -> Result<reqwest::Client, ProviderFailure> {
        let pid = std::process::id();
        {
            // Concurrent calls share the read lock; only a fork writes.
            let current = self.client.read();
            if current.0 == pid {
                return Ok(current.1.clone());
            }
        }
        let mut current = self.client.write();
        if current.0 != pid {
            let fresh = build_client().map_err(|e| {
                ProviderFailure::new(
                    FailureClass::Transient,
                    format!("cannot build the HTTP client: {e}"),
                )
                .not_sent()
            })?;
            *current = (pid, fresh);
        }
        Ok(current.1.clone())
    }

    /// Sends `request` with `key` placed as the provider declares; reads the
    /// whole body up to the size limit. Timeouts are the caller's job.
    pub(crate) async fn send(
        &self,
        request: &HttpRequest,
        key: Option<(&SecretString, KeyPlacement)>,
        idempotency: Option<(&'static str, &str)>,
        received_at: impl FnOnce() -> chrono::DateTime<chrono::Utc>,
    ) -> Result<HttpResponse, ProviderFailure> {
        let query_key = match key {
            Some((key, KeyPlacement::Query { param })) => Some((param, key.expose_secret())),
            _ => None,
        };
        let with_query = url_with_query(request, query_key);
        let mut builder = self
            .client()?
            .request(
                request.method.clone(),
                with_query.as_deref().unwrap_or(&request.url),
            )
            .header(http::header::USER_AGENT, self.user_agent.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_ref(), value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        if let Some((header, value)) = idempotency {
            builder = builder.header(header, value);
        }
        match key {
            Some((key, KeyPlacement::Header { name, prefix })) => {
                let mut value =
                    http::HeaderValue::from_str(&format!("{prefix}{}", key.expose_secret()))
                        .map_err(|_| {
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
        let mut response = builder.send().await.map_err(classify_send_error)?;
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
                Err(e) => {
                    return Err(ProviderFailure::new(
                        FailureClass::Transient,
                        format!("connection failed while reading the body: {}", describe(&e)),
                    )
                    .status(status))
                }
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
        })
    }
}

/// The request's URL with its query pairs (and a query-placed key last),
/// form-encoded as reqwest's `query` would, in one string: reqwest then
/// parses it once instead of parsing and re-serialising per pair. `None`
/// when there is no query to add.
fn url_with_query(request: &HttpRequest, key: Option<(&str, &str)>) -> Option<String> {
    if request.query.is_empty() && key.is_none() {
        return None;
    }
    let mut url = String::with_capacity(request.url.len() + 16 * (request.query.len() + 1));
    url.push_str(&request.url);
    url.push(if request.url.contains('?') { '&' } else { '?' });
    let start = url.len();
    url::form_urlencoded::Serializer::for_suffix(url, start)
        .extend_pairs(request.query.iter().map(|(k, v)| (k.as_ref(), v.as_str())))
        .extend_pairs(key)
        .finish()
        .into()
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
        assert_eq!(
            url_with_query(&request, Some(("key", "s3cr=t"))).as_deref(),
            Some("http://127.0.0.1:9/api/search?q=caf%C3%A9+%26+co%2F2&lang=en&key=s3cr%3Dt")
        );
        assert_eq!(
            url_with_query(&request, None).as_deref(),
            Some("http://127.0.0.1:9/api/search?q=caf%C3%A9+%26+co%2F2&lang=en")
        );
    }

    #[test]
    fn a_base_url_with_its_own_query_keeps_it() {
        let bare = HttpRequest::get("http://127.0.0.1:9/api?tenant=7", "");
        assert_eq!(url_with_query(&bare, None), None, "sent as is");
        assert_eq!(bare.url, "http://127.0.0.1:9/api?tenant=7");
        let request = bare.query("q", "x");
        assert_eq!(
            url_with_query(&request, Some(("key", "k"))).as_deref(),
            Some("http://127.0.0.1:9/api?tenant=7&q=x&key=k")
        );
    }
}
