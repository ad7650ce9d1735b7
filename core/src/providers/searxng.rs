//! SearXNG: `web.search` through your own metasearch instance.
//!
//! Keyless and self-hosted: there is no public default, so the provider
//! stays out of the way (`Unsupported`, nothing sent) until
//! `providers.searxng.base_url` (or `POLYRELAY_SEARXNG_BASE_URL`) names an
//! instance. The instance must allow the JSON format (`search.formats` in
//! its `settings.yml`); otherwise it answers 403, classified as `Auth`
//! because, like a refused key, it does not fix itself until the instance's
//! configuration changes. Its bot limiter answers 429.
//!
//! Answers come as strings or, in newer versions, `{"answer": …, "url": …}`
//! objects; without one, the first infobox stands in.

use serde::Deserialize;

use super::clip;
use super::wire::{html_to_text, iso_utc, non_empty};
use crate::capability::search::{WebAnswer, WebResult, WebResults};
use crate::capability::{marker, search};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// SearXNG (<https://docs.searxng.org>): keyless metasearch on an instance
/// you run or trust.
#[derive(Debug, Clone, Copy, Default)]
pub struct Searxng;

static INFO: ProviderInfo = ProviderInfo {
    id: "searxng",
    name: "SearXNG",
    auth: Auth::Keyless,
    // A placeholder that never resolves (RFC 6761): set your instance.
    base_url: "https://searxng.invalid",
    docs_url: "https://docs.searxng.org/dev/search_api.html",
    terms: "Self-hosted, AGPL; no key. Needs `providers.searxng.base_url` pointing at an \
            instance with the JSON format enabled; public instances usually disable it.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

impl Provider for Searxng {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Searxng: WebSearch);

impl Serves<marker::WebSearch> for Searxng {
    fn build_request(
        &self,
        q: &search::WebQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        if ctx.base_url == INFO.base_url {
            return Err(ProviderFailure::unsupported(
                "SearXNG is self-hosted: set providers.searxng.base_url (or \
                 POLYRELAY_SEARXNG_BASE_URL) to your instance",
            )
            .not_sent());
        }
        let req = HttpRequest::get(ctx.base_url, "/search")
            .query("q", q.query.as_str())
            .query("format", "json")
            .query("pageno", "1");
        Ok(match &q.language {
            Some(language) => req.query("language", language.code()),
            None => req,
        })
    }

    fn read_response(
        &self,
        q: &search::WebQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<search::WebResults>, ProviderFailure> {
        if response.status == 403 {
            return Err(response.failure(
                FailureClass::Auth,
                "SearXNG refused format=json (403): enable `json` in `search.formats` of the \
                 instance's settings.yml",
            ));
        }
        response.check_status()?;
        let reply: Reply = response.json()?;
        let answer = reply
            .answers
            .into_iter()
            .find_map(|answer| match answer {
                AnswerItem::Text(text) => non_empty(Some(text)).map(|text| WebAnswer {
                    text,
                    source_url: None,
                }),
                AnswerItem::Object { answer, url } => non_empty(answer).map(|text| WebAnswer {
                    text,
                    source_url: non_empty(url),
                }),
            })
            .or_else(|| {
                reply.infoboxes.into_iter().find_map(|infobox| {
                    let text = infobox.content.map(|html| html_to_text(&html));
                    Some(WebAnswer {
                        text: non_empty(text)?,
                        source_url: infobox.urls.into_iter().find_map(|u| non_empty(u.url)),
                    })
                })
            });
        // A `null` list reads as empty: the reply itself is then broken.
        let hits = reply.results.ok_or_else(|| {
            ProviderFailure::malformed("SearXNG reply without `results`").status(response.status)
        })?;
        // A hit without title, link or excerpt is left out, not the reply.
        let results = hits
            .into_iter()
            .filter_map(|r| {
                let snippet = html_to_text(&r.content?);
                let mut result = WebResult::new(clip(&r.title?), r.url?, snippet);
                result.score = r.score;
                result.published_at = r.published_date.as_deref().and_then(iso_utc);
                result.engine = non_empty(r.engine);
                Some(result)
            })
            .collect();
        let results =
            WebResults::found(q, answer, results).map_err(|f| f.status(response.status))?;
        Ok(Step::Done(results))
    }
}

#[derive(Deserialize)]
struct Reply {
    results: Option<Vec<Hit>>,
    #[serde(default)]
    answers: Vec<AnswerItem>,
    #[serde(default)]
    infoboxes: Vec<Infobox>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AnswerItem {
    Text(String),
    Object {
        answer: Option<String>,
        url: Option<String>,
    },
}

#[derive(Deserialize)]
struct Infobox {
    content: Option<String>,
    #[serde(default)]
    urls: Vec<InfoboxUrl>,
}

#[derive(Deserialize)]
struct InfoboxUrl {
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Hit {
    url: Option<String>,
    title: Option<String>,
    content: Option<String>,
    engine: Option<String>,
    score: Option<f64>,
    published_date: Option<String>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /search?q=rust+programming&format=json&pageno=1`.
    Fixture {
        method: "GET",
        path: "/search",
        status: 200,
        body: include_str!("fixtures/searxng/rust.json"),
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

    fn instance() -> CallContext<'static> {
        CallContext {
            base_url: "https://search.example.org",
            user_agent: "polyrelay-test/0.1",
        }
    }

    #[test]
    fn request_is_exact_and_needs_an_instance() {
        let f = Searxng.request(&rust(), &ctx(&Searxng)).unwrap_err();
        assert_eq!(f.class, FailureClass::Unsupported);
        assert!(!f.request_sent);
        assert!(
            f.message.contains("providers.searxng.base_url"),
            "{}",
            f.message
        );

        let r = request(
            "web.search",
            json!({"query": "rust programming", "language": "de"}),
        );
        let req = Searxng.request(&r, &instance()).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://search.example.org/search");
        assert_eq!(
            query(&req),
            [
                ("q", "rust programming"),
                ("format", "json"),
                ("pageno", "1"),
                ("language", "de"),
            ]
        );
    }

    #[test]
    fn fixture_normalises_results_and_the_infobox_answer() {
        let body = fixture(&Searxng, "/search");
        let Data::WebSearch(found) = answer(&Searxng, &rust(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        let a = found.answer.unwrap();
        assert_eq!(a.text, "Rust is a general-purpose programming language.");
        assert_eq!(
            a.source_url.as_deref(),
            Some("https://en.wikipedia.org/wiki/Rust_(programming_language)")
        );
        let first = &found.results[0];
        assert_eq!(first.title, "Rust Programming Language");
        assert_eq!(first.score, Some(9.0));
        assert_eq!(first.engine.as_deref(), Some("duckduckgo"));
        assert_eq!(first.published_at, None);
        assert_eq!(
            found.results[1].published_at.as_deref(),
            Some("2024-11-28T00:00:00Z")
        );
    }

    #[test]
    fn answers_come_as_strings_or_objects() {
        let strings = r#"{"results":[],"answers":["42"]}"#;
        let Data::WebSearch(found) = answer(&Searxng, &rust(), test_response(200, &[], strings))
        else {
            panic!("wrong data")
        };
        assert_eq!(found.answer.unwrap().text, "42");
        let objects = r#"{"results":[],"answers":[{"answer":"1 EUR = 1.03 USD","url":"https://ecb.europa.eu"}]}"#;
        let Data::WebSearch(found) = answer(&Searxng, &rust(), test_response(200, &[], objects))
        else {
            panic!("wrong data")
        };
        assert_eq!(
            found.answer.unwrap().source_url.as_deref(),
            Some("https://ecb.europa.eu")
        );
    }

    #[test]
    fn error_signals_are_classified() {
        let f = failure(
            &Searxng,
            &rust(),
            test_response(403, &[], "<html>Forbidden</html>"),
        );
        assert_eq!(f.class, FailureClass::Auth);
        assert!(f.message.contains("search.formats"), "{}", f.message);
        let f = failure(
            &Searxng,
            &rust(),
            test_response(429, &[], "Too Many Requests"),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        let f = failure(
            &Searxng,
            &rust(),
            test_response(200, &[], r#"{"results":[],"answers":[]}"#),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        let f = failure(&Searxng, &rust(), test_response(502, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&Searxng, "/search");
        assert_truncations_are_malformed(&Searxng, &rust(), body);
    }
}
