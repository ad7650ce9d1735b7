//! NewsAPI.org `everything`: `news.search` over 150,000 sources.
//!
//! Needs a key (`NEWSAPI_API_KEY`), sent by the pipeline as the `X-Api-Key`
//! header. The free Developer plan is for development only, 100 requests
//! per day (the default quota), with articles delayed by a day.
//!
//! Errors are `{"status":"error","code":"…","message":"…"}`; the code
//! decides: `apiKeyMissing`/`apiKeyInvalid`/`apiKeyDisabled` are `Auth`,
//! `apiKeyExhausted` is `QuotaExhausted`, `rateLimited` is `QuotaExhausted`
//! when the message names the Developer plan's 24-hour allowance and
//! `RateLimited` otherwise, `parameterInvalid`/`parametersMissing` and the
//! like are `InvalidRequest`, `unexpectedError` is `Transient`. Removed
//! articles (`"[Removed]"`) are dropped.

use std::time::Duration;

use serde::Deserialize;

use super::clip;
use super::wire::{iso_utc, non_empty};
use crate::capability::news::{domain_of, NewsArticle, NewsResults};
use crate::capability::{marker, news};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Quota, Serves, Step,
};

/// NewsAPI.org (<https://newsapi.org>): news search with a key.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewsApi;

static INFO: ProviderInfo = ProviderInfo {
    id: "newsapi",
    name: "NewsAPI.org",
    auth: Auth::Key {
        env: "NEWSAPI_API_KEY",
        placement: KeyPlacement::Header {
            name: "X-Api-Key",
            prefix: "",
        },
        optional: false,
    },
    base_url: "https://newsapi.org",
    docs_url: "https://newsapi.org/docs/endpoints/everything",
    terms: "Free Developer plan: development and testing only (not production), 100 \
            requests/day, articles delayed by 24 hours.",
    commercial_use: false,
    default_rate_limit: None,
    default_quota: Some(Quota::per_day(100)),
};

/// Languages NewsAPI can filter by (its Urdu code is `ud`).
const LANGUAGES: &[&str] = &[
    "ar", "de", "en", "es", "fr", "he", "it", "nl", "no", "pt", "ru", "sv", "ur", "zh",
];

impl Provider for NewsApi {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(NewsApi: NewsSearch);

impl Serves<marker::NewsSearch> for NewsApi {
    fn build_request(
        &self,
        q: &news::NewsQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let req = HttpRequest::get(ctx.base_url, "/v2/everything").query("q", q.query.as_str());
        let req = match &q.language {
            Some(language) if LANGUAGES.contains(&language.code()) => {
                let code = if language.code() == "ur" {
                    "ud"
                } else {
                    language.code()
                };
                req.query("language", code)
            }
            Some(language) => {
                return Err(ProviderFailure::unsupported(format!(
                    "NewsAPI cannot filter by language {:?}",
                    language.code()
                ))
                .not_sent())
            }
            None => req,
        };
        Ok(req
            .query("sortBy", "publishedAt")
            .query("pageSize", q.limit.to_string()))
    }

    fn read_response(
        &self,
        q: &news::NewsQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<news::NewsResults>, ProviderFailure> {
        if let Ok(error) = serde_json::from_slice::<ErrorReply>(&response.body) {
            if error.status == "error" {
                return Err(classify(&response, &error.code, &error.message));
            }
        }
        response.check_status()?;
        let reply: Reply = response.json()?;
        let articles = reply
            .articles
            .into_iter()
            .filter(|a| a.title != "[Removed]")
            .map(|a| {
                let mut article = NewsArticle::new(a.title, a.url);
                article.published_at = a.published_at.as_deref().and_then(iso_utc);
                article.summary = non_empty(a.description);
                article.image_url = non_empty(a.url_to_image);
                article.author = non_empty(a.author);
                article.source.name = a.source.and_then(|s| non_empty(s.name));
                article.source.domain = domain_of(&article.url);
                article.language = q.language.as_ref().map(|l| l.code().to_string());
                article
            })
            .collect();
        let results = NewsResults::found(q, reply.total_results, articles)
            .map_err(|f| f.status(response.status))?;
        Ok(Step::Done(results))
    }
}

fn classify(response: &HttpResponse, code: &str, message: &str) -> ProviderFailure {
    let text = format!("NewsAPI: {}", clip(message));
    let class = match code {
        "apiKeyMissing" | "apiKeyInvalid" | "apiKeyDisabled" => FailureClass::Auth,
        "apiKeyExhausted" => FailureClass::QuotaExhausted,
        // The Developer plan's allowance is 100 requests per 24 hours,
        // 50 available every 12 hours.
        "rateLimited" if message.contains("hour") => {
            return response
                .failure(FailureClass::QuotaExhausted, text)
                .retry_after(Some(Duration::from_secs(12 * 3600)));
        }
        "rateLimited" => FailureClass::RateLimited,
        "unexpectedError" => FailureClass::Transient,
        _ => response
            .status_class()
            .unwrap_or(FailureClass::InvalidRequest),
    };
    response.failure(class, text)
}

#[derive(Deserialize)]
struct ErrorReply {
    status: String,
    code: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    total_results: Option<u64>,
    articles: Vec<Article>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Article {
    source: Option<Source>,
    author: Option<String>,
    title: String,
    description: Option<String>,
    url: String,
    url_to_image: Option<String>,
    published_at: Option<String>,
}

#[derive(Deserialize)]
struct Source {
    name: Option<String>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /v2/everything?q=climate&sortBy=publishedAt&pageSize=10`.
    Fixture {
        method: "GET",
        path: "/v2/everything",
        status: 200,
        body: include_str!("fixtures/newsapi/climate.json"),
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

    fn error(status: u16, code: &str, message: &str) -> ProviderFailure {
        let body = json!({"status": "error", "code": code, "message": message}).to_string();
        failure(&NewsApi, &climate(), test_response(status, &[], &body))
    }

    #[test]
    fn request_is_exact_and_the_key_goes_in_a_header() {
        let r = request(
            "news.search",
            json!({"query": "climate", "language": "ur", "limit": 20}),
        );
        let req = NewsApi.request(&r, &ctx(&NewsApi)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://newsapi.org/v2/everything");
        assert_eq!(
            query(&req),
            [
                ("q", "climate"),
                ("language", "ud"),
                ("sortBy", "publishedAt"),
                ("pageSize", "20")
            ]
        );
        assert!(req.headers.is_empty());
        assert!(matches!(
            NewsApi.info().auth,
            Auth::Key {
                placement: KeyPlacement::Header {
                    name: "X-Api-Key",
                    prefix: ""
                },
                ..
            }
        ));
        let r = request("news.search", json!({"query": "climate", "language": "ja"}));
        let f = NewsApi.request(&r, &ctx(&NewsApi)).unwrap_err();
        assert_eq!(f.class, FailureClass::Unsupported);
    }

    #[test]
    fn fixture_normalises_articles_without_removed_ones() {
        let body = fixture(&NewsApi, "/v2/everything");
        let Data::NewsSearch(news) = answer(&NewsApi, &climate(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(news.total, Some(11342));
        assert_eq!(news.articles.len(), 2);
        let a = &news.articles[0];
        assert_eq!(a.source.name.as_deref(), Some("BBC News"));
        assert_eq!(a.source.domain.as_deref(), Some("bbc.co.uk"));
        assert_eq!(a.author.as_deref(), Some("Justin Rowlatt"));
        assert_eq!(a.published_at.as_deref(), Some("2025-01-14T13:52:00Z"));
        assert_eq!(news.articles[1].summary, None);
        assert_eq!(news.articles[1].source.domain.as_deref(), Some("phys.org"));
    }

    #[test]
    fn error_signals_are_classified() {
        assert_eq!(
            error(
                401,
                "apiKeyInvalid",
                "Your API key is invalid or incorrect."
            )
            .class,
            FailureClass::Auth
        );
        assert_eq!(
            error(401, "apiKeyMissing", "Your API key is missing.").class,
            FailureClass::Auth
        );
        assert_eq!(
            error(
                429,
                "apiKeyExhausted",
                "Your API key has no more requests available."
            )
            .class,
            FailureClass::QuotaExhausted
        );
        let f = error(429, "rateLimited", "You have made too many requests recently. Developer accounts are limited to 100 requests over a 24 hour period (50 requests available every 12 hours). Please upgrade to a paid plan if you need more requests.");
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        assert_eq!(f.retry_after, Some(Duration::from_secs(12 * 3600)));
        assert_eq!(
            error(429, "rateLimited", "Back off.").class,
            FailureClass::RateLimited
        );
        let f = error(
            400,
            "parameterInvalid",
            "You've included a parameter in your request which is currently not supported.",
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert!(
            f.message.starts_with("NewsAPI: You've included"),
            "{}",
            f.message
        );
        assert_eq!(
            error(
                426,
                "maximumResultsReached",
                "Developer accounts are limited to a max of 100 results."
            )
            .class,
            FailureClass::InvalidRequest
        );
        assert_eq!(
            error(500, "unexpectedError", "Something went wrong.").class,
            FailureClass::Transient
        );
        let f = failure(
            &NewsApi,
            &climate(),
            test_response(
                200,
                &[],
                r#"{"status":"ok","totalResults":0,"articles":[]}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&NewsApi, "/v2/everything");
        assert_truncations_are_malformed(&NewsApi, &climate(), body);
    }
}
