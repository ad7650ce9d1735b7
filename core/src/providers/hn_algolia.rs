//! Hacker News Search (Algolia): `news.search` over Hacker News stories,
//! newest first. Tech news, in English.
//!
//! Keyless, about 10,000 requests per hour per IP. Stories without a link
//! (Ask HN) point at their discussion page. Points become the article's
//! `score`. Another language than English is `Unsupported`. Errors are
//! `{"message":"…","status":400}`.

use serde::Deserialize;

use super::clip;
use super::wire::{html_to_text, iso_utc, non_empty};
use crate::capability::news::{domain_of, NewsArticle, NewsResults};
use crate::capability::{marker, news};
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Hacker News Search (<https://hn.algolia.com/api>): keyless search of
/// Hacker News stories.
#[derive(Debug, Clone, Copy, Default)]
pub struct HnAlgolia;

static INFO: ProviderInfo = ProviderInfo {
    id: "hn-algolia",
    name: "Hacker News Search (Algolia)",
    auth: Auth::Keyless,
    base_url: "https://hn.algolia.com",
    docs_url: "https://hn.algolia.com/api",
    terms: "Free, no key; about 10,000 requests/hour per IP. Technology news from \
            Hacker News, in English.",
    commercial_use: true,
    default_rate_limit: Some("10000/h"),
    default_quota: None,
};

impl Provider for HnAlgolia {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(HnAlgolia: NewsSearch);

impl Serves<marker::NewsSearch> for HnAlgolia {
    fn build_request(
        &self,
        q: &news::NewsQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        if !q.wants_english_or_any() {
            return Err(
                ProviderFailure::unsupported("Hacker News has English stories only").not_sent(),
            );
        }
        Ok(HttpRequest::get(ctx.base_url, "/api/v1/search_by_date")
            .query("query", q.query.as_str())
            .query("tags", "story")
            .query("hitsPerPage", q.limit.to_string()))
    }

    fn read_response(
        &self,
        q: &news::NewsQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<news::NewsResults>, ProviderFailure> {
        response.check_status().map_err(|mut failure| {
            #[derive(Deserialize)]
            struct ErrorReply {
                message: String,
            }
            if let Ok(reply) = serde_json::from_slice::<ErrorReply>(&response.body) {
                failure.message = format!("Hacker News Search: {}", clip(&reply.message));
            }
            failure
        })?;
        let reply: Reply = response.json()?;
        let articles = reply
            .hits
            .into_iter()
            .filter_map(|hit| {
                let title = non_empty(hit.title)?;
                // A text post (Ask HN) links to its discussion; a story
                // with neither link nor text is broken and left out.
                let url = match non_empty(hit.url) {
                    Some(url) => url,
                    None if hit.story_text.is_some() => {
                        format!("https://news.ycombinator.com/item?id={}", hit.object_id?)
                    }
                    None => return None,
                };
                let mut article = NewsArticle::new(title, url);
                article.source.domain = domain_of(&article.url);
                article.published_at = hit.created_at.as_deref().and_then(iso_utc);
                article.summary = hit
                    .story_text
                    .map(|html| html_to_text(&html))
                    .filter(|t| !t.is_empty());
                article.author = non_empty(hit.author);
                article.score = hit.points;
                article.language = Some("en".to_string());
                Some(article)
            })
            .collect();
        let results = NewsResults::found(q, reply.nb_hits, articles)
            .map_err(|f| f.status(response.status))?;
        Ok(Step::Done(results))
    }
}

#[derive(Deserialize)]
struct Reply {
    hits: Vec<Hit>,
    #[serde(rename = "nbHits")]
    nb_hits: Option<u64>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(rename = "objectID")]
    object_id: Option<String>,
    title: Option<String>,
    url: Option<String>,
    author: Option<String>,
    points: Option<f64>,
    created_at: Option<String>,
    story_text: Option<String>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /api/v1/search_by_date?query=rust&tags=story&hitsPerPage=10`.
    Fixture {
        method: "GET",
        path: "/api/v1/search_by_date",
        status: 200,
        body: include_str!("fixtures/hn-algolia/rust.json"),
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

    fn rust() -> Request {
        request("news.search", json!({"query": "rust"}))
    }

    #[test]
    fn request_is_exact() {
        let req = HnAlgolia.request(&rust(), &ctx(&HnAlgolia)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://hn.algolia.com/api/v1/search_by_date");
        assert_eq!(
            query(&req),
            [("query", "rust"), ("tags", "story"), ("hitsPerPage", "10")]
        );
        let r = request("news.search", json!({"query": "rust", "language": "de"}));
        let f = HnAlgolia.request(&r, &ctx(&HnAlgolia)).unwrap_err();
        assert_eq!(f.class, FailureClass::Unsupported);
        let r = request("news.search", json!({"query": "rust", "language": "en"}));
        assert!(HnAlgolia.request(&r, &ctx(&HnAlgolia)).is_ok());
    }

    #[test]
    fn fixture_normalises_stories() {
        let body = fixture(&HnAlgolia, "/api/v1/search_by_date");
        let Data::NewsSearch(news) = answer(&HnAlgolia, &rust(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(news.total, Some(25123));
        let a = &news.articles[0];
        assert_eq!(a.title, "Announcing Rust 1.84.0");
        assert_eq!(
            a.url,
            "https://blog.rust-lang.org/2025/01/09/Rust-1.84.0.html"
        );
        assert_eq!(a.source.domain.as_deref(), Some("blog.rust-lang.org"));
        assert_eq!(a.published_at.as_deref(), Some("2025-01-09T15:02:11Z"));
        assert_eq!(a.author.as_deref(), Some("steveklabnik"));
        assert_eq!(a.score, Some(312.0));
        let ask = &news.articles[1];
        assert_eq!(ask.url, "https://news.ycombinator.com/item?id=42640001");
        assert_eq!(ask.published_at.as_deref(), Some("2025-01-08T20:15:00Z"));
        assert_eq!(
            ask.summary.as_deref(),
            Some("I've been writing Rust for a year. What helped you most?")
        );
    }

    #[test]
    fn error_signals_are_classified() {
        let f = failure(
            &HnAlgolia,
            &rust(),
            test_response(
                400,
                &[],
                r#"{"message":"Invalid value for hitsPerPage","status":400}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(
            f.message,
            "Hacker News Search: Invalid value for hitsPerPage"
        );
        let f = failure(
            &HnAlgolia,
            &rust(),
            test_response(429, &[("retry-after", "60")], ""),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        let f = failure(
            &HnAlgolia,
            &rust(),
            test_response(200, &[], r#"{"hits":[],"nbHits":0}"#),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        let f = failure(&HnAlgolia, &rust(), test_response(503, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&HnAlgolia, "/api/v1/search_by_date");
        assert_truncations_are_malformed(&HnAlgolia, &rust(), body);
    }
}
