//! The request log: what clients sent, and whether they waited for the answer.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::http::request::Parts;
use hyper::{HeaderMap, Method};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::route::PathPattern;

/// One request as the emulator received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The request method.
    pub method: Method,
    /// The path, as sent (not percent-decoded), without the query.
    pub path: String,
    /// The raw query string after `?`, if there was one.
    pub query: Option<String>,
    /// The query as decoded `name=value` pairs, in order (`+` and `%XX` decoded).
    pub query_pairs: Vec<(String, String)>,
    /// The request headers.
    pub headers: HeaderMap,
    /// The full request body.
    pub body: Bytes,
    /// When the request arrived, on tokio's clock (so a test with paused time sees
    /// virtual time).
    pub received_at: Instant,
    /// Which TCP connection carried it, numbered from 0 in accept order; equal
    /// numbers prove keep-alive reuse.
    pub connection: u64,
    /// The client closed the connection before the whole response was sent
    /// (while the emulator was delaying, hanging or streaming), i.e. it cancelled.
    pub closed_early: bool,
}

impl RecordedRequest {
    pub(crate) fn new(parts: Parts, body: Bytes, received_at: Instant, connection: u64) -> Self {
        let query = parts.uri.query().map(str::to_owned);
        Self {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query_pairs: query.as_deref().map(parse_query).unwrap_or_default(),
            query,
            headers: parts.headers,
            body,
            received_at,
            connection,
            closed_early: false,
        }
    }

    /// The first value of a header as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first decoded value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query_pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Splits a query string into decoded pairs (`application/x-www-form-urlencoded`).
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// Decodes `+` and `%XX`; a malformed escape is kept as it is.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `wait_for_*` gave up: fewer matching requests arrived than wanted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitTimedOut {
    /// What was awaited, e.g. `requests to /v1/forecast`.
    pub what: String,
    /// How many were wanted.
    pub wanted: usize,
    /// How many there were when the wait ended.
    pub seen: usize,
    /// How long it waited.
    pub waited: Duration,
}

impl fmt::Display for WaitTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "waited {:?} for {} {}, saw {}",
            self.waited, self.wanted, self.what, self.seen
        )
    }
}

impl std::error::Error for WaitTimedOut {}

struct Entry {
    request: RecordedRequest,
    closed_early: Arc<AtomicBool>,
}

impl Entry {
    fn snapshot(&self) -> RecordedRequest {
        RecordedRequest {
            closed_early: self.closed_early.load(Ordering::Acquire),
            ..self.request.clone()
        }
    }
}

/// Tracks whether a logged request got its whole response.
///
/// It travels with the response (into a streamed body if need be); if it is dropped
/// before [`done`](Self::done), the client went away first, and the request is
/// marked `closed_early`.
pub(crate) struct Delivery {
    log: Arc<RequestLog>,
    closed_early: Option<Arc<AtomicBool>>,
}

impl Delivery {
    /// The response was handed over completely.
    pub(crate) fn done(mut self) {
        self.closed_early = None;
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(flag) = self.closed_early.take() {
            flag.store(true, Ordering::Release);
            self.log.changed.notify_waiters();
        }
    }
}

/// Every recorded request, plus a signal for waiters whenever it changes.
pub(crate) struct RequestLog {
    entries: Mutex<Vec<Entry>>,
    changed: Notify,
    enabled: AtomicBool,
}

impl RequestLog {
    pub(crate) fn new() -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
            changed: Notify::new(),
            enabled: AtomicBool::new(true),
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub(crate) fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    /// Appends a request. Unless the returned guard is marked [`Delivery::done`],
    /// dropping it marks the request `closed_early`.
    pub(crate) fn push(self: &Arc<Self>, request: RecordedRequest) -> Delivery {
        let closed_early = Arc::new(AtomicBool::new(false));
        self.entries.lock().push(Entry {
            request,
            closed_early: Arc::clone(&closed_early),
        });
        self.changed.notify_waiters();
        Delivery {
            log: Arc::clone(self),
            closed_early: Some(closed_early),
        }
    }

    pub(crate) fn clear(&self) {
        self.entries.lock().clear();
    }

    /// Snapshots of the requests whose path matches `pattern` (`None`: all of them).
    pub(crate) fn matching(&self, pattern: Option<&PathPattern>) -> Vec<RecordedRequest> {
        self.entries
            .lock()
            .iter()
            .filter(|e| pattern.is_none_or(|p| p.matches(&e.request.path)))
            .map(Entry::snapshot)
            .collect()
    }

    pub(crate) fn count(&self, pattern: &PathPattern) -> usize {
        self.entries
            .lock()
            .iter()
            .filter(|e| pattern.matches(&e.request.path))
            .count()
    }

    /// Waits until at least `wanted` requests match `pattern` and `keep`, and returns them.
    pub(crate) async fn wait_for(
        &self,
        pattern: &PathPattern,
        keep: impl Fn(&RecordedRequest) -> bool,
        wanted: usize,
        timeout: Duration,
        what: impl FnOnce() -> String,
    ) -> Result<Vec<RecordedRequest>, WaitTimedOut> {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            // Register interest before looking, so a change in between is not missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let found: Vec<RecordedRequest> = self
                .matching(Some(pattern))
                .into_iter()
                .filter(|r| keep(r))
                .collect();
            if found.len() >= wanted {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(WaitTimedOut {
                    what: what(),
                    wanted,
                    seen: found.len(),
                    waited: started.elapsed(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_decoded_in_order() {
        assert_eq!(
            parse_query("name=New+York&lang=en&x=%C3%A9%2F&flag&&bad=%zz%4"),
            vec![
                ("name".to_owned(), "New York".to_owned()),
                ("lang".to_owned(), "en".to_owned()),
                ("x".to_owned(), "é/".to_owned()),
                ("flag".to_owned(), String::new()),
                ("bad".to_owned(), "%zz%4".to_owned()),
            ]
        );
    }
}
