//! Gutendex: `books.search` over Project Gutenberg's public-domain books.
//!
//! Keyless, no published limit. `/books/?search=` matches author names and
//! title words; pages hold 32 books and there is no page-size parameter, so
//! the answer is cut to the request's limit. Authors come as `Last, First`
//! and are turned round; every book can be read free (`text/html` format).

use serde::Deserialize;

use crate::capability::media::{language_code, BookIds, BookResult, BookSearch};
use crate::capability::normalize::person_name;
use crate::capability::{marker, media};
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Gutendex (<https://gutendex.com>): keyless JSON search of Project
/// Gutenberg's 70,000+ free ebooks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gutendex;

static INFO: ProviderInfo = ProviderInfo {
    id: "gutendex",
    name: "Gutendex (Project Gutenberg)",
    auth: Auth::Keyless,
    base_url: "https://gutendex.com",
    docs_url: "https://gutendex.com",
    terms: "Keyless, no published limit; public-domain books only. Project Gutenberg asks \
            that bulk downloads use its mirrors.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

impl Provider for Gutendex {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Gutendex: BooksSearch);

impl Serves<marker::BooksSearch> for Gutendex {
    fn build_request(
        &self,
        q: &media::TextQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        // `/books` without the slash answers with a redirect.
        Ok(HttpRequest::get(ctx.base_url, "/books/").query("search", q.query.as_str()))
    }

    fn read_response(
        &self,
        q: &media::TextQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<media::BookSearch>, ProviderFailure> {
        response.check_status()?;
        let reply: Reply = response.json()?;
        let results = reply
            .results
            .into_iter()
            // A book without id or title is left out, not the reply.
            .filter_map(Book::into_result)
            .take(usize::from(q.limit))
            .collect();
        Ok(Step::Done(BookSearch {
            query: q.query.clone(),
            total: reply.count,
            results,
        }))
    }
}

#[derive(Deserialize)]
struct Reply {
    count: Option<u64>,
    results: Vec<Book>,
}

#[derive(Deserialize)]
struct Book {
    id: Option<u64>,
    title: Option<String>,
    #[serde(default)]
    authors: Vec<Person>,
    #[serde(default)]
    summaries: Vec<String>,
    #[serde(default)]
    languages: Vec<String>,
    /// URLs by MIME type; an entry that is not text is ignored (issue #13).
    #[serde(default)]
    formats: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Person {
    name: Option<String>,
}

impl Book {
    /// The URL of the first format whose MIME type starts with `mime`
    /// (`text/html` also comes as `text/html; charset=utf-8`).
    fn format(&self, mime: &str) -> Option<String> {
        self.formats
            .iter()
            .filter(|(kind, _)| kind.starts_with(mime))
            .find_map(|(_, url)| url.as_str().map(str::to_string))
    }

    fn into_result(self) -> Option<BookResult> {
        let (free_read_url, cover_url) = (self.format("text/html"), self.format("image/jpeg"));
        let (id, title) = (self.id?, self.title?);
        Some(BookResult {
            free_read_url,
            cover_url,
            title,
            authors: self
                .authors
                .iter()
                .filter_map(|a| Some(person_name(a.name.as_deref()?)))
                .collect(),
            first_published_year: None,
            isbn13: Vec::new(),
            isbn10: Vec::new(),
            languages: self.languages.iter().map(|l| language_code(l)).collect(),
            description: self.summaries.into_iter().next(),
            edition_count: None,
            ids: BookIds {
                gutenberg: Some(id),
                ..BookIds::default()
            },
            url: format!("https://www.gutenberg.org/ebooks/{id}"),
        })
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /books/?search=dickens great` (one of one result).
    Fixture {
        method: "GET",
        path: "/books/",
        status: 200,
        body: include_str!("fixtures/gutendex/search.json"),
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

    #[test]
    fn request_is_exact() {
        let r = request(
            "books.search",
            json!({"query": "dickens great", "limit": 1}),
        );
        let req = Gutendex.request(&r, &ctx(&Gutendex)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://gutendex.com/books/");
        assert_eq!(query(&req), [("search", "dickens great")]);
        assert!(req.headers.is_empty());
    }

    #[test]
    fn fixture_normalises() {
        let r = request("books.search", json!({"query": "dickens great"}));
        let body = fixture(&Gutendex, "/books/");
        let Data::BooksSearch(s) = answer(&Gutendex, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!(s.total, Some(1));
        let b = &s.results[0];
        assert_eq!(b.title, "Great Expectations");
        assert_eq!(b.authors, ["Charles Dickens"]);
        assert_eq!(b.languages, ["en"]);
        assert_eq!(
            b.free_read_url.as_deref(),
            Some("https://www.gutenberg.org/ebooks/1400.html.images")
        );
        assert_eq!(
            b.cover_url.as_deref(),
            Some("https://www.gutenberg.org/cache/epub/1400/pg1400.cover.medium.jpg")
        );
        assert!(b.description.as_deref().unwrap().contains("Pip"));
        assert_eq!(
            (b.ids.gutenberg, b.url.as_str()),
            (Some(1400), "https://www.gutenberg.org/ebooks/1400")
        );
        assert!(b.isbn13.is_empty() && b.first_published_year.is_none());

        let r = request("books.search", json!({"query": "x", "limit": 1}));
        let empty = r#"{"count":0,"next":null,"previous":null,"results":[]}"#;
        let Data::BooksSearch(s) = answer(&Gutendex, &r, test_response(200, &[], empty)) else {
            panic!()
        };
        assert!(s.results.is_empty());
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request("books.search", json!({"query": "x"}));
        let f = failure(
            &Gutendex,
            &r,
            test_response(502, &[], "<html>Bad Gateway</html>"),
        );
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(
            &Gutendex,
            &r,
            test_response(404, &[], r#"{"detail":"Invalid page."}"#),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        let f = failure(&Gutendex, &r, test_response(429, &[], ""));
        assert_eq!(f.class, FailureClass::RateLimited);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let r = request("books.search", json!({"query": "x"}));
        assert_truncations_are_malformed(&Gutendex, &r, fixture(&Gutendex, "/books/"));
    }
}
