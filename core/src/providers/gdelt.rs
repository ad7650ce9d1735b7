//! GDELT DOC 2.0 API: `news.search` over worldwide online news of the last
//! three months, in 65 languages.
//!
//! Keyless. GDELT asks for at most one request every 5 seconds (the default
//! rate limit). A language filter becomes the query operator
//! `sourcelang:<english name>`. Articles carry the time GDELT first saw
//! them (`seendate`, `20250115T141500Z`), their language and source country
//! as English names; the language is mapped back to its ISO 639-1 code.
//!
//! **Errors arrive as plain text, usually with HTTP 200**, instead of JSON:
//! "Please limit requests to one every 5 seconds…" is `RateLimited` (wait
//! 5 s); any other text is GDELT explaining what is wrong with the query
//! ("The specified phrase is too short.") and is `InvalidRequest`. No match
//! is an empty object `{}` (`NotFound`).

use std::time::Duration;

use chrono::NaiveDateTime;
use serde::Deserialize;

use super::wire::non_empty;
use super::{clip, utc_text};
use crate::capability::language::Language;
use crate::capability::news::{NewsArticle, NewsResults};
use crate::capability::{marker, news};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// GDELT (<https://www.gdeltproject.org>): keyless search of worldwide
/// news coverage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gdelt;

static INFO: ProviderInfo = ProviderInfo {
    id: "gdelt",
    name: "GDELT DOC 2.0",
    auth: Auth::Keyless,
    base_url: "https://api.gdeltproject.org",
    docs_url: "https://blog.gdeltproject.org/gdelt-doc-2-0-api-debuts/",
    terms: "Free and open, no key; at most one request every 5 seconds; rolling \
            three-month window; cite GDELT as the source.",
    commercial_use: true,
    default_rate_limit: Some("1/5s"),
    default_quota: None,
};

/// How long GDELT asks clients to wait between requests.
const THROTTLE_WAIT: Duration = Duration::from_secs(5);

impl Provider for Gdelt {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Gdelt: NewsSearch);

impl Serves<marker::NewsSearch> for Gdelt {
    fn build_request(
        &self,
        q: &news::NewsQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let query = match &q.language {
            None => q.query.clone(),
            Some(language) => {
                let name = language.name().ok_or_else(|| {
                    ProviderFailure::unsupported(format!(
                        "GDELT cannot filter by language {:?}",
                        language.code()
                    ))
                    .not_sent()
                })?;
                format!("{} sourcelang:{}", q.query, name.to_ascii_lowercase())
            }
        };
        Ok(HttpRequest::get(ctx.base_url, "/api/v2/doc/doc")
            .query("query", query)
            .query("mode", "artlist")
            .query("format", "json")
            .query("maxrecords", q.limit.to_string())
            .query("sort", "DateDesc"))
    }

    fn read_response(
        &self,
        q: &news::NewsQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<news::NewsResults>, ProviderFailure> {
        if let Some(text) = plain_text(&response.body) {
            let throttled = text.to_ascii_lowercase().contains("limit requests");
            if throttled || response.status == 429 {
                return Err(response
                    .failure(FailureClass::RateLimited, format!("GDELT: {}", clip(&text)))
                    .retry_after(Some(response.retry_after().unwrap_or(THROTTLE_WAIT))));
            }
            if response.is_success() {
                return Err(response.failure(
                    FailureClass::InvalidRequest,
                    format!("GDELT: {}", clip(&text)),
                ));
            }
        }
        response.check_status()?;
        let reply: Reply = response.json()?;
        let articles = reply
            .articles
            .unwrap_or_default()
            .into_iter()
            .map(|a| {
                let mut article = NewsArticle::new(a.title, a.url);
                article.published_at = a
                    .seendate
                    .and_then(|d| NaiveDateTime::parse_from_str(&d, "%Y%m%dT%H%M%SZ").ok())
                    .map(|d| utc_text(d.and_utc()));
                article.source.domain = non_empty(a.domain);
                article.source.country = non_empty(a.sourcecountry);
                article.image_url = non_empty(a.socialimage);
                article.language = a
                    .language
                    .and_then(|name| Language::parse("language", &name).ok())
                    .map(|l| l.code().to_string());
                article
            })
            .collect();
        let results =
            NewsResults::found(q, None, articles).map_err(|f| f.status(response.status))?;
        Ok(Step::Done(results))
    }
}

/// The body as text when it is GDELT's plain-text message rather than JSON
/// (an HTML page, a JSON literal or nothing stay for the JSON parser to
/// reject).
fn plain_text(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let first = text.chars().next()?;
    let markup = matches!(first, '{' | '[' | '"' | '<');
    // `null`, `true` or a bare number are JSON, not a message.
    (!markup && serde_json::from_str::<serde::de::IgnoredAny>(text).is_err())
        .then(|| text.to_string())
}

#[derive(Deserialize)]
struct Reply {
    /// Missing when nothing matches (`{}`).
    articles: Option<Vec<Article>>,
}

#[derive(Deserialize)]
struct Article {
    url: String,
    title: String,
    seendate: Option<String>,
    socialimage: Option<String>,
    domain: Option<String>,
    language: Option<String>,
    sourcecountry: Option<String>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /api/v2/doc/doc?query=climate&mode=artlist&format=json&maxrecords=10&sort=DateDesc`.
    Fixture {
        method: "GET",
        path: "/api/v2/doc/doc",
        status: 200,
        body: include_str!("fixtures/gdelt/climate.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn climate() -> Request {
        request("news.search", json!({"query": "climate"}))
    }

    #[test]
    fn request_is_exact() {
        let req = Gdelt.request(&climate(), &ctx(&Gdelt)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.gdeltproject.org/api/v2/doc/doc");
        assert_eq!(
            query(&req),
            [
                ("query", "climate"),
                ("mode", "artlist"),
                ("format", "json"),
                ("maxrecords", "10"),
                ("sort", "DateDesc"),
            ]
        );
        let r = request(
            "news.search",
            json!({"query": "climat", "language": "fr", "limit": 3}),
        );
        let req = Gdelt.request(&r, &ctx(&Gdelt)).unwrap();
        assert_eq!(query(&req)[0], ("query", "climat sourcelang:french"));
        assert_eq!(query(&req)[3], ("maxrecords", "3"));
        let r = request("news.search", json!({"query": "x", "language": "yo"}));
        let f = Gdelt.request(&r, &ctx(&Gdelt)).unwrap_err();
        assert_eq!(f.class, FailureClass::Unsupported);
    }

    #[test]
    fn fixture_normalises_articles() {
        let body = fixture(&Gdelt, "/api/v2/doc/doc");
        let Data::NewsSearch(news) = answer(&Gdelt, &climate(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(news.query, "climate");
        assert_eq!(news.total, None);
        assert_eq!(news.articles.len(), 2);
        let a = &news.articles[0];
        assert_eq!(
            a.title,
            "2024 was the first year to breach 1.5C of global heating"
        );
        assert_eq!(a.published_at.as_deref(), Some("2025-01-15T14:15:00Z"));
        assert_eq!(a.source.domain.as_deref(), Some("theguardian.com"));
        assert_eq!(a.source.country.as_deref(), Some("United Kingdom"));
        assert_eq!(a.language.as_deref(), Some("en"));
        assert_eq!(
            a.image_url.as_deref(),
            Some("https://i.guim.co.uk/img/media/climate.jpg")
        );
        assert_eq!(news.articles[1].language.as_deref(), Some("fr"));
        assert_eq!(news.articles[1].image_url, None, "empty strings are absent");
    }

    #[test]
    fn plain_text_errors_inside_200_are_classified() {
        let f = failure(
            &Gdelt,
            &climate(),
            test_response(200, &[("content-type", "text/html")], "Please limit requests to one every 5 seconds or contact kalev.leetaru5@gmail.com for larger queries."),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.status, Some(200));
        assert_eq!(f.retry_after, Some(THROTTLE_WAIT));
        let f = failure(
            &Gdelt,
            &climate(),
            test_response(
                429,
                &[("retry-after", "30")],
                "Please limit requests to one every 5 seconds.",
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(30)));
        let f = failure(
            &Gdelt,
            &climate(),
            test_response(200, &[], "The specified phrase is too short."),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(f.message, "GDELT: The specified phrase is too short.");
        let f = failure(&Gdelt, &climate(), test_response(200, &[], "{}"));
        assert_eq!(f.class, FailureClass::NotFound);
        let f = failure(&Gdelt, &climate(), test_response(502, &[], "Bad gateway"));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&Gdelt, "/api/v2/doc/doc");
        assert_truncations_are_malformed(&Gdelt, &climate(), body);
    }
}
