//! DuckDuckGo Instant Answer API: `web.search` answers (an abstract, a
//! direct answer or a definition) with related topics as results.
//!
//! Keyless, but not a full web-results API: queries without an instant
//! answer come back with every field empty (`NotFound`). Terms require
//! attribution and forbid commercial use without approval. Answers are in
//! English; another language is `Unsupported`. Related topics may be nested
//! in named groups (`{"Name":…,"Topics":[…]}`); each `Result` is an HTML
//! link whose text is the title.

use serde::Deserialize;
use serde_json::Value;

use super::clip;
use super::wire::{html_to_text, non_empty};
use crate::capability::search::{WebAnswer, WebResult, WebResults};
use crate::capability::{marker, search};
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// DuckDuckGo Instant Answers (<https://duckduckgo.com/api>): keyless
/// instant answers, not full web results.
#[derive(Debug, Clone, Copy, Default)]
pub struct DuckDuckGo;

static INFO: ProviderInfo = ProviderInfo {
    id: "duckduckgo",
    name: "DuckDuckGo Instant Answers",
    auth: Auth::Keyless,
    base_url: "https://api.duckduckgo.com",
    docs_url: "https://duckduckgo.com/api",
    terms: "Free, no key; instant answers only (no full web results); attribution \
            required; commercial use only with DuckDuckGo's approval.",
    commercial_use: false,
    default_rate_limit: None,
    default_quota: None,
};

impl Provider for DuckDuckGo {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(DuckDuckGo: WebSearch);

impl Serves<marker::WebSearch> for DuckDuckGo {
    fn build_request(
        &self,
        q: &search::WebQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        if !q.language.as_ref().is_none_or(|l| l.is_english()) {
            return Err(ProviderFailure::unsupported(
                "DuckDuckGo instant answers are in English only",
            )
            .not_sent());
        }
        Ok(HttpRequest::get(ctx.base_url, "/")
            .query("q", q.query.as_str())
            .query("format", "json")
            .query("no_html", "1")
            .query("skip_disambig", "1")
            .query("no_redirect", "1"))
    }

    fn read_response(
        &self,
        q: &search::WebQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<search::WebResults>, ProviderFailure> {
        response.check_status()?;
        let reply: Reply = response.json()?;
        let answer = [
            (&reply.abstract_text, &reply.abstract_url),
            (&reply.answer_text(), &None),
            (&reply.definition, &reply.definition_url),
        ]
        .into_iter()
        .find_map(|(text, url)| {
            Some(WebAnswer {
                text: non_empty(text.clone())?,
                source_url: non_empty(url.clone()),
            })
        });
        let mut results = Vec::new();
        for topic in reply.results.iter().chain(&reply.related_topics) {
            topic.collect(&mut results);
        }
        let results =
            WebResults::found(q, answer, results).map_err(|f| f.status(response.status))?;
        Ok(Step::Done(results))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    abstract_text: Option<String>,
    #[serde(rename = "AbstractURL")]
    abstract_url: Option<String>,
    /// A string, or an object for some answer types.
    answer: Option<Value>,
    definition: Option<String>,
    #[serde(rename = "DefinitionURL")]
    definition_url: Option<String>,
    #[serde(default)]
    results: Vec<Topic>,
    #[serde(default)]
    related_topics: Vec<Topic>,
}

impl Reply {
    fn answer_text(&self) -> Option<String> {
        self.answer.as_ref()?.as_str().map(str::to_string)
    }
}

/// A topic, or a named group of topics.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Topic {
    #[serde(rename = "FirstURL")]
    first_url: Option<String>,
    text: Option<String>,
    result: Option<String>,
    #[serde(default)]
    topics: Vec<Topic>,
}

impl Topic {
    fn collect(&self, out: &mut Vec<WebResult>) {
        for topic in &self.topics {
            topic.collect(out);
        }
        // The title is the link text of `Result`: a topic without it has
        // no title and is left out (issue #13), not titled by its text.
        let (Some(url), Some(text), Some(html)) = (
            non_empty(self.first_url.clone()),
            non_empty(self.text.clone()),
            self.result.as_deref(),
        ) else {
            return;
        };
        // `<a href="…">Title</a>Description`: the link text is the title.
        let link_text = || {
            let start = html.find("<a ")?;
            let open_end = start + html[start..].find('>')? + 1;
            let close = open_end + html[open_end..].find("</a>")?;
            Some(html_to_text(&html[open_end..close]))
        };
        let title = link_text()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| clip(&text));
        let snippet = text
            .strip_prefix(title.as_str())
            .map(|rest| rest.trim_start_matches([' ', '-', '—']).trim().to_string())
            .filter(|rest| !rest.is_empty())
            .unwrap_or(text);
        out.push(WebResult::new(title, url, snippet));
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /?q=rust+programming+language&format=json&no_html=1&skip_disambig=1&no_redirect=1`.
    Fixture {
        method: "GET",
        path: "/",
        status: 200,
        body: include_str!("fixtures/duckduckgo/rust.json"),
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
        request("web.search", json!({"query": "rust programming language"}))
    }

    #[test]
    fn request_is_exact() {
        let req = DuckDuckGo.request(&rust(), &ctx(&DuckDuckGo)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.duckduckgo.com/");
        assert_eq!(
            query(&req),
            [
                ("q", "rust programming language"),
                ("format", "json"),
                ("no_html", "1"),
                ("skip_disambig", "1"),
                ("no_redirect", "1"),
            ]
        );
        let r = request("web.search", json!({"query": "rust", "language": "fr"}));
        assert_eq!(
            DuckDuckGo.request(&r, &ctx(&DuckDuckGo)).unwrap_err().class,
            FailureClass::Unsupported
        );
    }

    #[test]
    fn fixture_normalises_the_answer_and_topics() {
        let body = fixture(&DuckDuckGo, "/");
        let Data::WebSearch(found) = answer(&DuckDuckGo, &rust(), test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        let a = found.answer.unwrap();
        assert!(
            a.text.starts_with("Rust is a general-purpose"),
            "{}",
            a.text
        );
        assert_eq!(
            a.source_url.as_deref(),
            Some("https://en.wikipedia.org/wiki/Rust_(programming_language)")
        );
        let titles: Vec<&str> = found.results.iter().map(|r| r.title.as_str()).collect();
        assert_eq!(
            titles,
            ["Official site", "Cargo (package manager)", "Mozilla"]
        );
        assert_eq!(found.results[0].url, "https://www.rust-lang.org/");
        assert_eq!(
            found.results[1].snippet,
            "The Rust package manager and build tool."
        );
        assert_eq!(
            found.results[2].snippet,
            "A free software community founded in 1998."
        );
    }

    #[test]
    fn an_empty_answer_is_not_found_and_errors_are_classified() {
        let empty = r#"{"Abstract":"","AbstractText":"","AbstractURL":"","Answer":"","Definition":"","RelatedTopics":[],"Results":[],"Type":""}"#;
        let f = failure(&DuckDuckGo, &rust(), test_response(200, &[], empty));
        assert_eq!(f.class, FailureClass::NotFound);
        // A calculator-style answer object is not text: ignored.
        let object = r#"{"AbstractText":"","Answer":{"from":"calc","result":"4"},"RelatedTopics":[],"Results":[]}"#;
        let f = failure(&DuckDuckGo, &rust(), test_response(200, &[], object));
        assert_eq!(f.class, FailureClass::NotFound);
        let direct = r#"{"AbstractText":"","Answer":"4","RelatedTopics":[],"Results":[]}"#;
        let Data::WebSearch(found) = answer(&DuckDuckGo, &rust(), test_response(200, &[], direct))
        else {
            panic!("wrong data")
        };
        assert_eq!(found.answer.unwrap().text, "4");
        let f = failure(&DuckDuckGo, &rust(), test_response(429, &[], ""));
        assert_eq!(f.class, FailureClass::RateLimited);
        let f = failure(&DuckDuckGo, &rust(), test_response(500, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&DuckDuckGo, "/");
        assert_truncations_are_malformed(&DuckDuckGo, &rust(), body);
    }
}
