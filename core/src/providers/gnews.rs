//! GNews `search`: `news.search` over 80,000 sources in 41 languages.
//!
//! Needs a free key (`GNEWS_API_KEY`), sent by the pipeline as the
//! `X-Api-Key` header. The free plan allows 100 requests per day (the
//! default quota) and 1 per second, up to 10 articles each.
//!
//! Errors are `{"errors":["…"]}` or `{"errors":{"q":"…"}}`. **403 means the
//! daily quota is used up** (it resets at 00:00 UTC): `QuotaExhausted` with
//! that reset time. 429 is too many requests per second, 401 a bad key,
//! 400 bad parameters.

use serde::Deserialize;
use serde_json::Value;

use super::clip;
use super::wire::{iso_utc, next_utc_midnight, non_empty};
use crate::capability::news::{domain_of, NewsArticle, NewsResults};
use crate::capability::{marker, news};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Quota, Serves, Step,
};

/// GNews (<https://gnews.io>): worldwide news search with a free key.
#[derive(Debug, Clone, Copy, Default)]
pub struct GNews;

static INFO: ProviderInfo = ProviderInfo {
    id: "gnews",
    name: "GNews",
    auth: Auth::Key {
        env: "GNEWS_API_KEY",
        placement: KeyPlacement::Header {
            name: "X-Api-Key",
            prefix: "",
        },
        optional: false,
    },
    base_url: "https://gnews.io",
    docs_url: "https://docs.gnews.io/endpoints/search-endpoint",
    terms: "Free plan: 100 requests/day (reset at 00:00 UTC), 1 request/s, at most 10 \
            articles per request; for development and non-commercial use.",
    commercial_use: false,
    default_rate_limit: Some("1/s"),
    default_quota: Some(Quota::per_day(100)),
};

impl Provider for GNews {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(GNews: NewsSearch);

impl Serves<marker::NewsSearch> for GNews {
    fn build_request(
        &self,
        q: &news::NewsQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let req = HttpRequest::get(ctx.base_url, "/api/v4/search").query("q", q.query.as_str());
        let req = match &q.language {
            Some(language) => req.query("lang", language.code()),
            None => req,
        };
        Ok(req
            .query("max", q.limit.to_string())
            .query("sortby", "publishedAt"))
    }

    fn read_response(
        &self,
        q: &news::NewsQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<news::NewsResults>, ProviderFailure> {
        let message = || {
            error_text(&response.body)
                .map(|text| format!("GNews: {}", clip(&text)))
                .unwrap_or_else(|| response.body_excerpt())
        };
        if response.status == 403 {
            return Err(response
                .failure(FailureClass::QuotaExhausted, message())
                .reset_at(next_utc_midnight(response.received_at)));
        }
        response.check_status().map_err(|mut failure| {
            failure.message = message();
            failure
        })?;
        let reply: Reply = response.json()?;
        let articles = reply
            .articles
            .into_iter()
            .map(|a| {
                let mut article = NewsArticle::new(a.title, a.url);
                article.published_at = a.published_at.as_deref().and_then(iso_utc);
                article.summary = non_empty(a.description);
                article.image_url = non_empty(a.image);
                article.language =
                    non_empty(a.lang).or_else(|| q.language.as_ref().map(|l| l.code().to_string()));
                if let Some(source) = a.source {
                    article.source.domain = source.url.as_deref().and_then(domain_of);
                    article.source.name = non_empty(source.name);
                    article.source.country = non_empty(source.country);
                }
                if article.source.domain.is_none() {
                    article.source.domain = domain_of(&article.url);
                }
                article
            })
            .collect();
        let results = NewsResults::found(q, reply.total_articles, articles)
            .map_err(|f| f.status(response.status))?;
        Ok(Step::Done(results))
    }
}

/// The text of `{"errors":["…"]}` or `{"errors":{"field":"…"}}`.
fn error_text(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let texts: Vec<String> = match value.get("errors")? {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Value::Object(fields) => fields
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|t| format!("{k}: {t}")))
            .collect(),
        Value::String(text) => vec![text.clone()],
        _ => return None,
    };
    (!texts.is_empty()).then(|| texts.join("; "))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    total_articles: Option<u64>,
    articles: Vec<Article>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Article {
    title: String,
    description: Option<String>,
    url: String,
    image: Option<String>,
    published_at: Option<String>,
    lang: Option<String>,
    source: Option<Source>,
}

#[derive(Deserialize)]
struct Source {
    name: Option<String>,
    url: Option<String>,
    country: Option<String>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /api/v4/search?q=...&max=10&sortby=publishedAt`.
    Fixture {
        method: "GET",
        path: "/api/v4/search",
        status: 200,
        body: include_str!("fixtures/gnews/search.json"),
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
    fn request_is_exact_and_the_key_goes_in_a_header() {
        let r = request(
            "news.search",
            json!({"query": "climate", "language": "en-GB", "limit": 5}),
        );
        let req = GNews.request(&r, &ctx(&GNews)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://gnews.io/api/v4/search");
        assert_eq!(
            query(&req),
            [
                ("q", "climate"),
                ("lang", "en"),
                ("max", "5"),
                ("sortby", "publishedAt")
            ]
        );
        assert!(req.headers.is_empty());
        assert!(matches!(
            GNews.info().auth,
            Auth::Key {
                env: "GNEWS_API_KEY",
                placement: KeyPlacement::Header {
                    name: "X-Api-Key",
                    prefix: ""
                },
                optional: false
            }
        ));
    }

    #[test]
    fn fixture_normalises_articles() {
        let body = fixture(&GNews, "/api/v4/search");
        let Data::NewsSearch(news) = answer(&GNews, &climate(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(news.total, Some(54904));
        assert_eq!(news.articles.len(), 1);
        let a = &news.articles[0];
        assert_eq!(
            a.title,
            "Google's Pixel 7 and 7 Pro’s design gets revealed even more with fresh crisp renders"
        );
        assert_eq!(a.source.name.as_deref(), Some("PhoneArena"));
        assert_eq!(a.source.domain.as_deref(), Some("phonearena.com"));
        assert_eq!(a.published_at.as_deref(), Some("2022-09-28T08:14:24Z"));
        assert_eq!(a.language, None, "the documented article has no `lang`");
        assert!(a
            .summary
            .as_deref()
            .unwrap()
            .starts_with("Now we have a complete image"));
        assert!(a.image_url.is_some());
    }

    #[test]
    fn an_article_s_language_and_missing_image_are_read() {
        // Articles now also carry `id`, `lang` and the source's `id` and
        // `country`; a missing image is `null`.
        let body = json!({"totalArticles": 1, "articles": [{
            "id": "5f1e2c7d9a0b",
            "title": "What the record year means for the 1.5C goal",
            "description": "Scientists say one year above 1.5C does not yet break the Paris target.",
            "content": "...",
            "url": "https://www.reuters.com/sustainability/climate-record-2025-01-15/",
            "image": null,
            "publishedAt": "2025-01-15T12:10:44Z",
            "lang": "en",
            "source": {"id": "b1f0c5", "name": "Reuters", "url": "https://www.reuters.com", "country": "gb"}
        }]})
        .to_string();
        let Data::NewsSearch(news) = answer(&GNews, &climate(), test_response(200, &[], &body))
        else {
            panic!("wrong data")
        };
        let a = &news.articles[0];
        assert_eq!(
            (a.image_url.as_deref(), a.language.as_deref()),
            (None, Some("en"))
        );
        assert_eq!(a.source.domain.as_deref(), Some("reuters.com"));
    }

    #[test]
    fn error_signals_are_classified() {
        let r = climate();
        let f = failure(
            &GNews,
            &r,
            test_response(
                403,
                &[],
                r#"{"errors":["You have reached your request limit for today, the next reset will be tomorrow at midnight UTC. If you need more requests, you can upgrade your subscription here: https://gnews.io/#pricing"]}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        assert_eq!(f.reset_at, Some("2025-01-16T00:00:00Z".parse().unwrap()));
        assert!(
            f.message.starts_with("GNews: You have reached"),
            "{}",
            f.message
        );
        let f = failure(
            &GNews,
            &r,
            test_response(
                429,
                &[("retry-after", "1")],
                r#"{"errors":["Too many requests"]}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(std::time::Duration::from_secs(1)));
        let f = failure(
            &GNews,
            &r,
            test_response(401, &[], r#"{"errors":["Your API key is invalid."]}"#),
        );
        assert_eq!(f.class, FailureClass::Auth);
        let f = failure(
            &GNews,
            &r,
            test_response(400, &[], r#"{"errors":{"q":"The query is required."}}"#),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(f.message, "GNews: q: The query is required.");
        let f = failure(&GNews, &r, test_response(503, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(
            &GNews,
            &r,
            test_response(200, &[], r#"{"totalArticles":0,"articles":[]}"#),
        );
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&GNews, "/api/v4/search");
        assert_truncations_are_malformed(&GNews, &climate(), body);
    }
}
