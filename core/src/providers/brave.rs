//! Brave Search API `web/search`: `web.search` over Brave's own index.
//!
//! Needs a key (`BRAVE_API_KEY`; a card is required even for the monthly
//! free credit), sent by the pipeline as the `X-Subscription-Token` header.
//! Snippets carry `<strong>` highlights and become plain text. Brave names
//! a few languages its own way (`jp`, `zh-hans`, `pt-pt`, `nb`).
//!
//! Errors are `{"type":"ErrorResponse","error":{"code":…,"detail":…}}`.
//! Limits come in `X-RateLimit-Remaining` / `X-RateLimit-Reset` as
//! per-second and per-month pairs (`"1, 0"`): a 429 with no monthly request
//! left is `QuotaExhausted` until the monthly reset, any other 429
//! `RateLimited` until the per-second one. 401/403 are a bad or unpaid key,
//! 422 bad parameters.

use std::time::Duration;

use serde::Deserialize;

use super::clip;
use super::wire::{html_to_text, iso_utc};
use crate::capability::search::{WebResult, WebResults};
use crate::capability::{marker, search};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Serves, Step,
};

/// Brave Search API (<https://brave.com/search/api/>): independent web
/// search with a key.
#[derive(Debug, Clone, Copy, Default)]
pub struct Brave;

static INFO: ProviderInfo = ProviderInfo {
    id: "brave",
    name: "Brave Search API",
    auth: Auth::Key {
        env: "BRAVE_API_KEY",
        placement: KeyPlacement::Header {
            name: "X-Subscription-Token",
            prefix: "",
        },
        optional: false,
    },
    base_url: "https://api.search.brave.com",
    docs_url: "https://api-dashboard.search.brave.com/app/documentation/web-search/get-started",
    terms: "Paid per request with a monthly free credit (card required); results may be \
            stored only under the plan's terms.",
    commercial_use: true,
    default_rate_limit: Some("1/s"),
    default_quota: None,
};

/// Most results Brave returns per request.
const MAX_COUNT: u8 = 20;

impl Provider for Brave {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Brave: WebSearch);

impl Serves<marker::WebSearch> for Brave {
    fn build_request(
        &self,
        q: &search::WebQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let req = HttpRequest::get(ctx.base_url, "/res/v1/web/search")
            .query("q", q.query.as_str())
            .query("count", q.limit.min(MAX_COUNT).to_string());
        let req = match &q.language {
            Some(language) => req.query(
                "search_lang",
                match language.code() {
                    "ja" => "jp",
                    "zh" => "zh-hans",
                    "pt" => "pt-pt",
                    "no" => "nb",
                    code => code,
                },
            ),
            None => req,
        };
        Ok(req.header("Accept", "application/json"))
    }

    fn read_response(
        &self,
        q: &search::WebQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<search::WebResults>, ProviderFailure> {
        let detail = || {
            serde_json::from_slice::<ErrorReply>(&response.body)
                .map(|r| format!("Brave {}: {}", r.error.code, clip(&r.error.detail)))
                .unwrap_or_else(|_| response.body_excerpt())
        };
        if response.status == 429 {
            return Err(throttled(&response, detail()));
        }
        response.check_status().map_err(|mut failure| {
            failure.message = detail();
            failure
        })?;
        let reply: Reply = response.json()?;
        let results = reply
            .web
            .map(|web| web.results)
            .unwrap_or_default()
            .into_iter()
            // A hit without title, link or description is left out.
            .filter_map(|r| {
                let snippet = html_to_text(&r.description?);
                let mut result = WebResult::new(html_to_text(&r.title?), r.url?, snippet);
                result.published_at = r.page_age.as_deref().and_then(iso_utc);
                Some(result)
            })
            .collect();
        let results = WebResults::found(q, None, results).map_err(|f| f.status(response.status))?;
        Ok(Step::Done(results))
    }
}

/// A 429: the monthly quota when no monthly request is left, else the
/// per-second limit.
fn throttled(response: &HttpResponse, message: String) -> ProviderFailure {
    let pair = |name: &str| -> Vec<u64> {
        response
            .header(name)
            .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
            .unwrap_or_default()
    };
    let remaining = pair("x-ratelimit-remaining");
    let reset = pair("x-ratelimit-reset");
    if remaining.len() >= 2 && remaining.last() == Some(&0) {
        let wait = reset
            .get(remaining.len() - 1)
            .copied()
            .map(Duration::from_secs);
        return response
            .failure(FailureClass::QuotaExhausted, message)
            .retry_after(wait);
    }
    let wait = response
        .retry_after()
        .or_else(|| reset.first().copied().map(Duration::from_secs));
    response
        .failure(FailureClass::RateLimited, message)
        .retry_after(wait)
}

#[derive(Deserialize)]
struct ErrorReply {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    detail: String,
}

#[derive(Deserialize)]
struct Reply {
    web: Option<Web>,
}

#[derive(Deserialize)]
struct Web {
    results: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    title: Option<String>,
    url: Option<String>,
    description: Option<String>,
    page_age: Option<String>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /res/v1/web/search?q=rust+programming&count=10`.
    Fixture {
        method: "GET",
        path: "/res/v1/web/search",
        status: 200,
        body: include_str!("fixtures/brave/rust.json"),
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
    fn request_is_exact_and_the_key_goes_in_a_header() {
        let r = request(
            "web.search",
            json!({"query": "rust programming", "language": "ja", "limit": 50}),
        );
        let req = Brave.request(&r, &ctx(&Brave)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.search.brave.com/res/v1/web/search");
        assert_eq!(
            query(&req),
            [
                ("q", "rust programming"),
                ("count", "20"),
                ("search_lang", "jp")
            ]
        );
        assert_eq!(
            req.headers,
            [("Accept".into(), "application/json".to_string())]
        );
        assert!(matches!(
            Brave.info().auth,
            Auth::Key {
                env: "BRAVE_API_KEY",
                placement: KeyPlacement::Header {
                    name: "X-Subscription-Token",
                    prefix: ""
                },
                optional: false
            }
        ));
    }

    #[test]
    fn fixture_normalises_results() {
        let body = fixture(&Brave, "/res/v1/web/search");
        let Data::WebSearch(found) = answer(&Brave, &rust(), test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(found.results.len(), 2);
        let first = &found.results[0];
        assert_eq!(first.url, "https://www.rust-lang.org/");
        assert_eq!(
            first.snippet,
            "A language empowering everyone to build reliable and efficient software. Rust is blazingly fast and memory-efficient."
        );
        assert_eq!(first.published_at.as_deref(), Some("2025-01-09T00:00:00Z"));
        assert_eq!(
            found.results[1].title,
            "The Rust Programming Language - The Rust Book"
        );
    }

    #[test]
    fn error_signals_are_classified() {
        let r = rust();
        let body = r#"{"type":"ErrorResponse","error":{"id":"0a1b","status":429,"code":"RATE_LIMITED","detail":"Request rate limit exceeded for plan.","meta":{"plan":"Free","rate_limit":1,"rate_current":2,"quota_limit":2000,"quota_current":15,"component":"rate_limiter"}},"time":1736950000}"#;
        let f = failure(
            &Brave,
            &r,
            test_response(
                429,
                &[
                    ("x-ratelimit-remaining", "0, 1985"),
                    ("x-ratelimit-reset", "1, 1419704"),
                ],
                body,
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(1)));
        assert_eq!(
            f.message,
            "Brave RATE_LIMITED: Request rate limit exceeded for plan."
        );
        let f = failure(
            &Brave,
            &r,
            test_response(
                429,
                &[
                    ("x-ratelimit-remaining", "1, 0"),
                    ("x-ratelimit-reset", "1, 1419704"),
                ],
                body,
            ),
        );
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        assert_eq!(f.retry_after, Some(Duration::from_secs(1_419_704)));

        let body = r#"{"type":"ErrorResponse","error":{"id":"1c2d","status":401,"code":"SUBSCRIPTION_TOKEN_INVALID","detail":"The provided subscription token is invalid."},"time":1736950000}"#;
        let f = failure(&Brave, &r, test_response(401, &[], body));
        assert_eq!(f.class, FailureClass::Auth);
        let body = r#"{"type":"ErrorResponse","error":{"id":"3e4f","status":422,"code":"VALIDATION","detail":"Unable to validate request parameter(s)."},"time":1736950000}"#;
        let f = failure(&Brave, &r, test_response(422, &[], body));
        assert_eq!(f.class, FailureClass::InvalidRequest);
        let f = failure(
            &Brave,
            &r,
            test_response(200, &[], r#"{"type":"search","query":{"original":"x"}}"#),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        let f = failure(&Brave, &r, test_response(503, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&Brave, "/res/v1/web/search");
        assert_truncations_are_malformed(&Brave, &rust(), body);
    }
}
