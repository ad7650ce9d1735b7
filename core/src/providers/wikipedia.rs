//! Wikipedia full-text search (MediaWiki action API, `list=search`):
//! `web.search` over encyclopedia articles.
//!
//! Keyless. Wikimedia requires an identifying User-Agent with contact
//! details (the pipeline sends the client-wide one) and asks for serial
//! requests. A language other than English searches that language's
//! Wikipedia (`de.wikipedia.org`) when the default host is in use; a
//! configured base URL is always kept. Snippets are HTML with
//! `<span class="searchmatch">` highlights and become plain text; the time
//! is the article's last edit.
//!
//! **Errors arrive inside HTTP 200 bodies** as
//! `{"error":{"code":"…","info":"…"}}`: `ratelimited` is `RateLimited`
//! (one minute unless a `Retry-After` says otherwise), `maxlag`,
//! `readonly` and `internal_api_error_*` are `Transient`, every other code
//! is `InvalidRequest`. The REST layer in front answers 429 when throttling.

use std::time::Duration;

use serde::Deserialize;

use super::clip;
use super::wire::{html_to_text, iso_utc, path_segment};
use crate::capability::search::{WebQuery, WebResult, WebResults};
use crate::capability::{marker, search};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Wikipedia (<https://www.mediawiki.org/wiki/API:Search>): keyless
/// full-text search of Wikipedia articles.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wikipedia;

static INFO: ProviderInfo = ProviderInfo {
    id: "wikipedia",
    name: "Wikipedia (MediaWiki search)",
    auth: Auth::Keyless,
    base_url: "https://en.wikipedia.org",
    docs_url: "https://www.mediawiki.org/wiki/API:Search",
    terms: "Free; requires an identifying User-Agent with contact details (Wikimedia \
            User-Agent policy) and serial, not parallel, requests. Content under CC BY-SA \
            4.0 (attribution required).",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

/// How long to wait after `ratelimited` when no `Retry-After` is sent.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// The site to search: the language's Wikipedia on the default host, else
/// the configured base URL.
fn site(ctx: &CallContext<'_>, q: &WebQuery) -> String {
    match &q.language {
        Some(language) if ctx.base_url == INFO.base_url && !language.is_english() => {
            format!("https://{}.wikipedia.org", language.code())
        }
        _ => ctx.base_url.trim_end_matches('/').to_string(),
    }
}

impl Provider for Wikipedia {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Wikipedia: WebSearch);

impl Serves<marker::WebSearch> for Wikipedia {
    fn build_request(
        &self,
        q: &search::WebQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(HttpRequest::get(&site(ctx, q), "/w/api.php")
            .query("action", "query")
            .query("list", "search")
            .query("srsearch", q.query.as_str())
            .query("srlimit", q.limit.to_string())
            .query("srprop", "snippet|timestamp")
            .query("format", "json")
            .query("formatversion", "2"))
    }

    fn read_response(
        &self,
        q: &search::WebQuery,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<search::WebResults>, ProviderFailure> {
        response.check_status()?;
        let reply: Reply = response.json()?;
        if let Some(error) = reply.error {
            return Err(classify(&response, &error));
        }
        let found = reply.query.ok_or_else(|| {
            ProviderFailure::malformed("MediaWiki reply without `query`").status(response.status)
        })?;
        let site = site(ctx, q);
        let results = found
            .search
            .into_iter()
            // A hit without title or snippet is left out, not the reply.
            .filter_map(|hit| {
                let (title, snippet) = (hit.title?, hit.snippet?);
                let url = format!("{site}/wiki/{}", path_segment(&title.replace(' ', "_")));
                let mut result = WebResult::new(title, url, html_to_text(&snippet));
                result.published_at = hit.timestamp.as_deref().and_then(iso_utc);
                Some(result)
            })
            .collect();
        let results = WebResults::found(q, None, results).map_err(|f| f.status(response.status))?;
        Ok(Step::Done(results))
    }
}

fn classify(response: &HttpResponse, error: &ApiError) -> ProviderFailure {
    let message = format!("MediaWiki {}: {}", error.code, clip(&error.info));
    match error.code.as_str() {
        "ratelimited" => response
            .failure(FailureClass::RateLimited, message)
            .retry_after(Some(response.retry_after().unwrap_or(RATE_LIMIT_WAIT))),
        "maxlag" | "readonly" => response.failure(FailureClass::Transient, message),
        code if code.starts_with("internal_api_error") => {
            response.failure(FailureClass::Transient, message)
        }
        _ => response.failure(FailureClass::InvalidRequest, message),
    }
}

#[derive(Deserialize)]
struct Reply {
    error: Option<ApiError>,
    query: Option<Found>,
}

#[derive(Deserialize)]
struct ApiError {
    code: String,
    #[serde(default)]
    info: String,
}

#[derive(Deserialize)]
struct Found {
    search: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    title: Option<String>,
    snippet: Option<String>,
    timestamp: Option<String>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /w/api.php?action=query&list=search&srsearch=rust+programming&srlimit=10&srprop=snippet|timestamp&format=json&formatversion=2`.
    Fixture {
        method: "GET",
        path: "/w/api.php",
        status: 200,
        body: include_str!("fixtures/wikipedia/rust.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn rust() -> Request {
        request("web.search", json!({"query": "rust programming"}))
    }

    #[test]
    fn request_is_exact() {
        let req = Wikipedia.request(&rust(), &ctx(&Wikipedia)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://en.wikipedia.org/w/api.php");
        assert_eq!(
            query(&req),
            [
                ("action", "query"),
                ("list", "search"),
                ("srsearch", "rust programming"),
                ("srlimit", "10"),
                ("srprop", "snippet|timestamp"),
                ("format", "json"),
                ("formatversion", "2"),
            ]
        );
        assert!(req.headers.is_empty(), "the pipeline sends the User-Agent");

        let r = request("web.search", json!({"query": "Rost", "language": "de"}));
        let req = Wikipedia.request(&r, &ctx(&Wikipedia)).unwrap();
        assert_eq!(req.url, "https://de.wikipedia.org/w/api.php");
        // A configured base (an emulator, a mirror) is kept.
        let local = CallContext {
            base_url: "http://127.0.0.1:9/wikipedia",
            user_agent: "x",
        };
        assert_eq!(
            Wikipedia.request(&r, &local).unwrap().url,
            "http://127.0.0.1:9/wikipedia/w/api.php"
        );
    }

    #[test]
    fn fixture_normalises_results() {
        let body = fixture(&Wikipedia, "/w/api.php");
        let Data::WebSearch(found) = answer(&Wikipedia, &rust(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(found.query, "rust programming");
        assert_eq!(found.answer, None);
        let first = &found.results[0];
        assert_eq!(first.title, "Rust (programming language)");
        assert_eq!(
            first.url,
            "https://en.wikipedia.org/wiki/Rust_%28programming_language%29"
        );
        assert_eq!(
            first.snippet,
            "Rust is a general-purpose programming language emphasizing performance, type safety, and concurrency. It enforces memory safety's"
        );
        assert_eq!(first.published_at.as_deref(), Some("2025-01-12T08:41:17Z"));
        assert_eq!(
            found.results[1].snippet,
            "Ferris is the unofficial mascot of the Rust programming language & its community"
        );
    }

    #[test]
    fn errors_inside_200_bodies_are_classified() {
        let r = rust();
        let body = r#"{"error":{"code":"ratelimited","info":"You've exceeded your rate limit. Please wait some time and try again.","docref":"See https://en.wikipedia.org/w/api.php for API usage."},"servedby":"mw-api-ext.eqiad.main-7d9b"}"#;
        let f = failure(&Wikipedia, &r, test_response(200, &[], body));
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.status, Some(200));
        assert_eq!(f.retry_after, Some(RATE_LIMIT_WAIT));
        assert!(
            f.message
                .starts_with("MediaWiki ratelimited: You've exceeded"),
            "{}",
            f.message
        );

        let body =
            r#"{"error":{"code":"maxlag","info":"Waiting for 10.64.48.35: 6 seconds lagged."}}"#;
        let f = failure(
            &Wikipedia,
            &r,
            test_response(200, &[("retry-after", "5")], body),
        );
        assert_eq!(f.class, FailureClass::Transient);
        assert_eq!(f.retry_after, Some(Duration::from_secs(5)));

        let body = r#"{"error":{"code":"badvalue","info":"Unrecognized value for parameter \"list\": serch."}}"#;
        let f = failure(&Wikipedia, &r, test_response(200, &[], body));
        assert_eq!(f.class, FailureClass::InvalidRequest);

        let f = failure(
            &Wikipedia,
            &r,
            test_response(429, &[("retry-after", "2")], ""),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        let f = failure(
            &Wikipedia,
            &r,
            test_response(
                200,
                &[],
                r#"{"batchcomplete":true,"query":{"searchinfo":{"totalhits":0},"search":[]}}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&Wikipedia, "/w/api.php");
        assert_truncations_are_malformed(&Wikipedia, &rust(), body);
        let f = failure(&Wikipedia, &rust(), test_response(200, &[], "{}"));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
