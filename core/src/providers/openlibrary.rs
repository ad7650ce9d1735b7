//! Open Library: `books.search` over the Internet Archive's catalogue of
//! works.
//!
//! Keyless. `/search.json` returns a huge document per work unless
//! `fields=` names what is wanted, so it always does. Open Library asks for
//! an identifying User-Agent with contact details (the pipeline sends the
//! client-wide one) and about one request per second. Languages come as
//! MARC codes (`eng`) and are mapped to ISO 639-1 (`en`).

use serde::Deserialize;

use crate::capability::media::{language_code, BookIds, BookResult, BookSearch};
use crate::capability::{marker, media};
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Open Library (<https://openlibrary.org/developers/api>): keyless book
/// search with editions, ISBNs, covers and public-domain scans.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenLibrary;

static INFO: ProviderInfo = ProviderInfo {
    id: "openlibrary",
    name: "Open Library",
    auth: Auth::Keyless,
    base_url: "https://openlibrary.org",
    docs_url: "https://openlibrary.org/dev/docs/api/search",
    terms: "Keyless; send an identifying User-Agent with contact details and keep to about \
            1 request/s. Catalogue data is public (CC0).",
    commercial_use: true,
    default_rate_limit: Some("1/s"),
    default_quota: None,
};

const FIELDS: &str =
    "key,title,author_name,first_publish_year,cover_i,isbn,edition_count,language,ia,ebook_access";

impl Provider for OpenLibrary {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(OpenLibrary: BooksSearch);

impl Serves<marker::BooksSearch> for OpenLibrary {
    fn build_request(
        &self,
        q: &media::TextQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(HttpRequest::get(ctx.base_url, "/search.json")
            .query("q", q.query.as_str())
            .query("fields", FIELDS)
            .query("limit", q.limit.to_string()))
    }

    fn read_response(
        &self,
        q: &media::TextQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<media::BookSearch>, ProviderFailure> {
        response.check_status()?;
        let reply: Reply = response.json()?;
        let docs = reply.docs.ok_or_else(|| {
            ProviderFailure::malformed("Open Library reply lacks `docs`").status(response.status)
        })?;
        let mut results: Vec<BookResult> = docs.into_iter().map(Doc::into_result).collect();
        results.truncate(usize::from(q.limit));
        Ok(Step::Done(BookSearch {
            query: q.query.clone(),
            total: Some(reply.num_found),
            results,
        }))
    }
}

#[derive(Deserialize)]
struct Reply {
    #[serde(rename = "numFound")]
    num_found: u64,
    docs: Option<Vec<Doc>>,
}

#[derive(Deserialize)]
struct Doc {
    key: String,
    title: String,
    #[serde(default)]
    author_name: Vec<String>,
    first_publish_year: Option<u16>,
    cover_i: Option<i64>,
    #[serde(default)]
    isbn: Vec<String>,
    edition_count: Option<u32>,
    #[serde(default)]
    language: Vec<String>,
    #[serde(default)]
    ia: Vec<String>,
    ebook_access: Option<String>,
}

impl Doc {
    fn into_result(self) -> BookResult {
        let free_read_url = match (self.ebook_access.as_deref(), self.ia.first()) {
            (Some("public"), Some(ia)) => Some(format!("https://archive.org/details/{ia}")),
            _ => None,
        };
        let mut book = BookResult {
            title: self.title,
            authors: self.author_name,
            first_published_year: self.first_publish_year,
            isbn13: Vec::new(),
            isbn10: Vec::new(),
            languages: self.language.iter().map(|l| language_code(l)).collect(),
            description: None,
            // Open Library uses -1 for "no cover".
            cover_url: self
                .cover_i
                .filter(|id| *id > 0)
                .map(|id| format!("https://covers.openlibrary.org/b/id/{id}-M.jpg")),
            edition_count: self.edition_count,
            free_read_url,
            ids: BookIds {
                openlibrary: Some(self.key.trim_start_matches("/works/").to_string()),
                ..BookIds::default()
            },
            url: format!("https://openlibrary.org{}", self.key),
        };
        for isbn in &self.isbn {
            book.add_isbn(isbn);
        }
        book
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /search.json?q=dune&fields=…&limit=2`.
    Fixture {
        method: "GET",
        path: "/search.json",
        status: 200,
        body: include_str!("fixtures/openlibrary/search.json"),
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
        let r = request("books.search", json!({"query": "dune", "limit": 2}));
        let req = OpenLibrary.request(&r, &ctx(&OpenLibrary)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://openlibrary.org/search.json");
        assert_eq!(
            query(&req),
            [("q", "dune"), ("fields", FIELDS), ("limit", "2")]
        );
        assert!(req.headers.is_empty());
        let r = request("music.search", json!({"query": "x"}));
        assert_eq!(
            OpenLibrary
                .request(&r, &ctx(&OpenLibrary))
                .unwrap_err()
                .class,
            FailureClass::Unsupported
        );
    }

    #[test]
    fn fixture_normalises() {
        let r = request("books.search", json!({"query": "dune"}));
        let body = fixture(&OpenLibrary, "/search.json");
        let Data::BooksSearch(s) = answer(&OpenLibrary, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!(
            (s.query.as_str(), s.total, s.results.len()),
            ("dune", Some(1189), 2)
        );
        let dune = &s.results[0];
        assert_eq!(
            (dune.title.as_str(), dune.first_published_year),
            ("Dune", Some(1965))
        );
        assert_eq!(dune.authors, ["Frank Herbert"]);
        assert_eq!(
            dune.isbn13,
            ["9780441013593", "9780340960196", "9780593099322"]
        );
        assert_eq!(dune.isbn10, ["0441013597", "0340960191"]);
        assert_eq!(dune.languages, ["en", "es", "fr", "de"]);
        assert_eq!(
            dune.cover_url.as_deref(),
            Some("https://covers.openlibrary.org/b/id/11481354-M.jpg")
        );
        assert_eq!(
            (dune.edition_count, dune.free_read_url.as_ref()),
            (Some(144), None)
        );
        assert_eq!(dune.ids.openlibrary.as_deref(), Some("OL893415W"));
        assert_eq!(dune.url, "https://openlibrary.org/works/OL893415W");
        let wells = &s.results[1];
        assert_eq!(wells.cover_url, None);
        assert_eq!(
            wells.free_read_url.as_deref(),
            Some("https://archive.org/details/timemachine00welluoft")
        );
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request("books.search", json!({"query": "dune"}));
        let f = failure(
            &OpenLibrary,
            &r,
            test_response(503, &[], "<html>Open Library is down</html>"),
        );
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(
            &OpenLibrary,
            &r,
            test_response(429, &[("retry-after", "5")], ""),
        );
        assert_eq!(
            (f.class, f.retry_after),
            (
                FailureClass::RateLimited,
                Some(std::time::Duration::from_secs(5))
            )
        );
        let f = failure(
            &OpenLibrary,
            &r,
            test_response(422, &[], r#"{"detail":"bad limit"}"#),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let r = request("books.search", json!({"query": "dune"}));
        let body = fixture(&OpenLibrary, "/search.json");
        assert_truncations_are_malformed(&OpenLibrary, &r, body);
        // A number sent as a numeric string is read as the number (#13,
        // provider/tolerant.rs): the answer does not change.
        let drifted = body.replace(
            "\"first_publish_year\": 1965",
            "\"first_publish_year\": \"1965\"",
        );
        assert_eq!(
            answer(&OpenLibrary, &r, test_response(200, &[], &drifted)),
            answer(&OpenLibrary, &r, test_response(200, &[], body))
        );
    }
}
