//! The Guardian Open Platform `search`: `news.search` over everything the
//! Guardian has published since 1999, in English.
//!
//! Needs a free developer key (`GUARDIAN_API_KEY`). The Content API reads
//! it only from the query string (`api-key=`), so that is where the
//! pipeline puts it. The developer key allows 1 call per second and 500
//! per day (the defaults), for non-commercial use.
//!
//! Replies are wrapped in `{"response":{…}}`; errors too:
//! `{"response":{"status":"error","message":"…"}}` with 400 (bad
//! parameters) or 404. A bad key is 401/403 `{"message":"Unauthorized"}`,
//! and going over either limit is 429 `{"message":"API rate limit
//! exceeded"}` (`RateLimited`). The summary (`trailText`) is HTML.

use serde::Deserialize;

use super::clip;
use super::wire::{html_to_text, iso_utc, non_empty};
use crate::capability::news::{NewsArticle, NewsResults};
use crate::capability::{marker, news};
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Quota, Serves, Step,
};

/// The Guardian Open Platform (<https://open-platform.theguardian.com>):
/// Guardian articles with a free developer key.
#[derive(Debug, Clone, Copy, Default)]
pub struct Guardian;

static INFO: ProviderInfo = ProviderInfo {
    id: "guardian",
    name: "The Guardian Open Platform",
    auth: Auth::Key {
        env: "GUARDIAN_API_KEY",
        // The Content API accepts the key only as a query parameter.
        placement: KeyPlacement::Query { param: "api-key" },
        optional: false,
    },
    base_url: "https://content.guardianapis.com",
    docs_url: "https://open-platform.theguardian.com/documentation/search",
    terms: "Free developer key: non-commercial use, up to 1 call/s and 500 calls/day; \
            attribution to the Guardian required.",
    commercial_use: false,
    default_rate_limit: Some("1/s"),
    default_quota: Some(Quota::per_day(500)),
};

impl Provider for Guardian {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Guardian: NewsSearch);

impl Serves<marker::NewsSearch> for Guardian {
    fn build_request(
        &self,
        q: &news::NewsQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        if !q.wants_english_or_any() {
            return Err(
                ProviderFailure::unsupported("The Guardian publishes in English only").not_sent(),
            );
        }
        Ok(HttpRequest::get(ctx.base_url, "/search")
            .query("q", q.query.as_str())
            .query("page-size", q.limit.min(50).to_string())
            .query("order-by", "newest")
            .query("show-fields", "trailText,thumbnail,byline"))
    }

    fn read_response(
        &self,
        q: &news::NewsQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<news::NewsResults>, ProviderFailure> {
        response.check_status().map_err(|mut failure| {
            if let Some(message) = error_message(&response.body) {
                failure.message = format!("The Guardian: {}", clip(&message));
            }
            failure
        })?;
        let reply: Reply = response.json()?;
        let body = reply.response;
        if body.status != "ok" {
            return Err(response.failure(
                crate::error::FailureClass::InvalidRequest,
                format!(
                    "The Guardian: {}",
                    clip(body.message.as_deref().unwrap_or("status is not ok"))
                ),
            ));
        }
        let articles = body
            .results
            .into_iter()
            .map(|r| {
                let mut article = NewsArticle::new(r.web_title, r.web_url);
                article.published_at = r.web_publication_date.as_deref().and_then(iso_utc);
                article.source.name = Some("The Guardian".to_string());
                article.source.domain = Some("theguardian.com".to_string());
                article.source.country = Some("United Kingdom".to_string());
                article.language = Some("en".to_string());
                if let Some(fields) = r.fields {
                    article.summary = fields
                        .trail_text
                        .map(|html| html_to_text(&html))
                        .filter(|t| !t.is_empty());
                    article.image_url = non_empty(fields.thumbnail);
                    article.author = non_empty(fields.byline);
                }
                article
            })
            .collect();
        let results =
            NewsResults::found(q, body.total, articles).map_err(|f| f.status(response.status))?;
        Ok(Step::Done(results))
    }
}

/// The message of `{"response":{"message":…}}` or `{"message":…}`.
fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorReply {
        message: Option<String>,
        response: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        message: Option<String>,
    }
    let reply: ErrorReply = serde_json::from_slice(body).ok()?;
    reply.response.and_then(|r| r.message).or(reply.message)
}

#[derive(Deserialize)]
struct Reply {
    response: Body,
}

#[derive(Deserialize)]
struct Body {
    status: String,
    message: Option<String>,
    total: Option<u64>,
    #[serde(default)]
    results: Vec<Item>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    web_title: String,
    web_url: String,
    web_publication_date: Option<String>,
    fields: Option<Fields>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    trail_text: Option<String>,
    thumbnail: Option<String>,
    byline: Option<String>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /search?q=climate&page-size=10&order-by=newest&show-fields=trailText,thumbnail,byline`.
    Fixture {
        method: "GET",
        path: "/search",
        status: 200,
        body: include_str!("fixtures/guardian/climate.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::error::FailureClass;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn climate() -> Request {
        request("news.search", json!({"query": "climate"}))
    }

    #[test]
    fn request_is_exact_and_the_key_is_declared_for_the_query() {
        let req = Guardian.request(&climate(), &ctx(&Guardian)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://content.guardianapis.com/search");
        assert_eq!(
            query(&req),
            [
                ("q", "climate"),
                ("page-size", "10"),
                ("order-by", "newest"),
                ("show-fields", "trailText,thumbnail,byline"),
            ]
        );
        assert!(req.headers.is_empty());
        assert!(matches!(
            Guardian.info().auth,
            Auth::Key {
                placement: KeyPlacement::Query { param: "api-key" },
                ..
            }
        ));
        let r = request("news.search", json!({"query": "climat", "language": "fr"}));
        assert_eq!(
            Guardian.request(&r, &ctx(&Guardian)).unwrap_err().class,
            FailureClass::Unsupported
        );
    }

    #[test]
    fn fixture_normalises_articles() {
        let body = fixture(&Guardian, "/search");
        let Data::NewsSearch(news) = answer(&Guardian, &climate(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(news.total, Some(61754));
        let a = &news.articles[0];
        assert_eq!(
            a.title,
            "2024 was first year to breach 1.5C of global heating"
        );
        assert_eq!(a.published_at.as_deref(), Some("2025-01-15T14:00:34Z"));
        assert_eq!(a.author.as_deref(), Some("Damian Carrington"));
        assert_eq!(
            a.image_url.as_deref(),
            Some("https://media.guim.co.uk/climate/500.jpg")
        );
        assert_eq!(
            a.summary.as_deref(),
            Some("Scientists say the record heat is ‘a wake-up call’ & a warning")
        );
        assert_eq!(a.source.domain.as_deref(), Some("theguardian.com"));
    }

    #[test]
    fn error_signals_are_classified() {
        let r = climate();
        let f = failure(
            &Guardian,
            &r,
            test_response(
                400,
                &[],
                r#"{"response":{"status":"error","message":"page-size must be an integer between 0 and 200"}}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(
            f.message,
            "The Guardian: page-size must be an integer between 0 and 200"
        );
        let f = failure(
            &Guardian,
            &r,
            test_response(401, &[], r#"{"message":"Unauthorized"}"#),
        );
        assert_eq!(f.class, FailureClass::Auth);
        let f = failure(
            &Guardian,
            &r,
            test_response(
                429,
                &[("retry-after", "1")],
                r#"{"message":"API rate limit exceeded"}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        let f = failure(
            &Guardian,
            &r,
            test_response(
                200,
                &[],
                r#"{"response":{"status":"ok","total":0,"results":[]}}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        let f = failure(&Guardian, &r, test_response(504, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&Guardian, "/search");
        assert_truncations_are_malformed(&Guardian, &climate(), body);
    }
}
