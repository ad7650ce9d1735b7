//! Google Books: `books.search` over Google's volume catalogue. Also home
//! of the Google API error envelope, shared with YouTube.
//!
//! Works without a key on a shared low quota; a key
//! (`GOOGLE_BOOKS_API_KEY`, sent as the `x-goog-api-key` header, which
//! every Google API accepts) gives 1,000 requests a day per project.
//! Errors are Google's envelope `{"error":{"code","message","errors":[{
//! "reason"}],"status"}}`: per-day quotas reset at midnight Pacific time.

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use chrono_tz::America::Los_Angeles;
use serde::Deserialize;

use super::clip;
use crate::capability::media::{language_code, BookIds, BookResult, BookSearch};
use crate::capability::normalize::{non_empty, year_of};
use crate::capability::{marker, media};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Quota, Serves, Step,
};

/// Google Books (<https://developers.google.com/books>): book search with
/// ISBNs, descriptions and previews; keyless at a low shared quota.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoogleBooks;

static INFO: ProviderInfo = ProviderInfo {
    id: "google-books",
    name: "Google Books",
    auth: Auth::Key {
        env: "GOOGLE_BOOKS_API_KEY",
        placement: KeyPlacement::Header {
            name: "x-goog-api-key",
            prefix: "",
        },
        optional: true,
    },
    base_url: "https://www.googleapis.com",
    docs_url: "https://developers.google.com/books/docs/v1/using",
    terms: "Works keyless on a shared low quota; a free key gives about 1,000 requests/day \
            per project. Google APIs Terms of Service apply; link back to Google Books.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: Some(Quota::per_day(1000)),
};

impl Provider for GoogleBooks {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(GoogleBooks: BooksSearch);

impl Serves<marker::BooksSearch> for GoogleBooks {
    fn build_request(
        &self,
        q: &media::TextQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(HttpRequest::get(ctx.base_url, "/books/v1/volumes")
            .query("q", q.query.as_str())
            .query("maxResults", q.limit.min(40).to_string())
            .query("printType", "books"))
    }

    fn read_response(
        &self,
        q: &media::TextQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<media::BookSearch>, ProviderFailure> {
        if !response.is_success() {
            return Err(google_api_failure(&response, "Google Books"));
        }
        let reply: Reply = response.json()?;
        // No `items` is an empty search only when `totalItems` says so.
        let items = match reply.items {
            Some(items) => items,
            None if reply.total_items == 0 => Vec::new(),
            None => {
                return Err(ProviderFailure::malformed(format!(
                    "Google Books reply lacks `items` but reports {} totalItems",
                    reply.total_items
                ))
                .status(response.status))
            }
        };
        let results = items
            .into_iter()
            .take(usize::from(q.limit))
            .map(Volume::into_result)
            .collect();
        Ok(Step::Done(BookSearch {
            query: q.query.clone(),
            total: Some(reply.total_items),
            results,
        }))
    }
}

/// Classifies a non-2xx reply of any Google API by its error envelope:
/// per-day quotas are `QuotaExhausted` until midnight Pacific time,
/// per-minute ones `RateLimited`, bad or disabled keys `Auth`.
pub(crate) fn google_api_failure(response: &HttpResponse, service: &str) -> ProviderFailure {
    #[derive(Deserialize)]
    struct Envelope {
        error: Body,
    }
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        message: String,
        status: Option<String>,
        #[serde(default)]
        errors: Vec<Reason>,
    }
    #[derive(Deserialize)]
    struct Reason {
        reason: Option<String>,
    }
    let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(&response.body) else {
        let class = response
            .status_class()
            .unwrap_or(FailureClass::MalformedResponse);
        return response.failure(class, response.body_excerpt());
    };
    let reason = error.errors.iter().find_map(|e| e.reason.as_deref());
    let message = error.message.to_ascii_lowercase();
    let class = match reason {
        Some("quotaExceeded" | "dailyLimitExceeded" | "dailyLimitExceededUnreg") => {
            FailureClass::QuotaExhausted
        }
        _ if message.contains("per day") => FailureClass::QuotaExhausted,
        Some("rateLimitExceeded" | "userRateLimitExceeded") => FailureClass::RateLimited,
        Some(
            "keyInvalid" | "keyExpired" | "accessNotConfigured" | "ipRefererBlocked" | "forbidden",
        ) => FailureClass::Auth,
        _ if message.contains("api key") => FailureClass::Auth,
        _ if error.status.as_deref() == Some("PERMISSION_DENIED") => FailureClass::Auth,
        _ => response
            .status_class()
            .unwrap_or(FailureClass::MalformedResponse),
    };
    let reset_at = (class == FailureClass::QuotaExhausted)
        .then(|| next_pacific_midnight(response.received_at))
        .flatten();
    response
        .failure(class, format!("{service}: {}", clip(&error.message)))
        .reset_at(reset_at)
}

/// The next midnight in Pacific time (when Google's daily quotas reset).
fn next_pacific_midnight(now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tomorrow = now
        .with_timezone(&Los_Angeles)
        .date_naive()
        .checked_add_days(Days::new(1))?;
    Los_Angeles
        .from_local_datetime(&tomorrow.and_time(NaiveTime::MIN))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    total_items: u64,
    items: Option<Vec<Volume>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    id: String,
    volume_info: VolumeInfo,
    access_info: Option<AccessInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeInfo {
    title: String,
    subtitle: Option<String>,
    #[serde(default)]
    authors: Vec<String>,
    published_date: Option<String>,
    description: Option<String>,
    #[serde(default)]
    industry_identifiers: Vec<Identifier>,
    image_links: Option<ImageLinks>,
    language: Option<String>,
    canonical_volume_link: Option<String>,
    info_link: Option<String>,
}

#[derive(Deserialize)]
struct Identifier {
    #[serde(rename = "type")]
    kind: String,
    identifier: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageLinks {
    thumbnail: Option<String>,
    small_thumbnail: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccessInfo {
    #[serde(default)]
    public_domain: bool,
    web_reader_link: Option<String>,
}

/// Google still hands out `http://` image and reader links; the same URLs
/// work over HTTPS.
fn https(url: String) -> String {
    match url.strip_prefix("http://") {
        Some(rest) => format!("https://{rest}"),
        None => url,
    }
}

impl Volume {
    fn into_result(self) -> BookResult {
        let info = self.volume_info;
        let title = match non_empty(info.subtitle) {
            Some(subtitle) => format!("{}: {subtitle}", info.title),
            None => info.title,
        };
        let free_read_url = self
            .access_info
            .filter(|a| a.public_domain)
            .and_then(|a| a.web_reader_link)
            .map(https);
        let mut book = BookResult {
            title,
            authors: info.authors,
            first_published_year: info.published_date.as_deref().and_then(year_of),
            isbn13: Vec::new(),
            isbn10: Vec::new(),
            languages: info.language.iter().map(|l| language_code(l)).collect(),
            description: non_empty(info.description),
            cover_url: info
                .image_links
                .and_then(|i| i.thumbnail.or(i.small_thumbnail))
                .map(https),
            edition_count: None,
            free_read_url,
            url: info
                .canonical_volume_link
                .or(info.info_link)
                .map(https)
                .unwrap_or_else(|| format!("https://books.google.com/books?id={}", self.id)),
            ids: BookIds {
                google_books: Some(self.id),
                ..BookIds::default()
            },
        };
        for id in info
            .industry_identifiers
            .iter()
            .filter(|i| i.kind.starts_with("ISBN"))
        {
            book.add_isbn(&id.identifier);
        }
        book
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /books/v1/volumes?q=dune&maxResults=2&printType=books`.
    Fixture {
        method: "GET",
        path: "/books/v1/volumes",
        status: 200,
        body: include_str!("fixtures/google-books/search.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    #[test]
    fn request_is_exact_and_carries_no_key() {
        let r = request("books.search", json!({"query": "dune", "limit": 50}));
        let req = GoogleBooks.request(&r, &ctx(&GoogleBooks)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://www.googleapis.com/books/v1/volumes");
        assert_eq!(
            query(&req),
            [("q", "dune"), ("maxResults", "40"), ("printType", "books")]
        );
        assert!(req.headers.is_empty());
        assert_eq!(
            GoogleBooks.info().auth,
            Auth::Key {
                env: "GOOGLE_BOOKS_API_KEY",
                placement: KeyPlacement::Header {
                    name: "x-goog-api-key",
                    prefix: ""
                },
                optional: true
            }
        );
        assert!(GoogleBooks.info().is_keyless());
    }

    #[test]
    fn fixture_normalises() {
        let r = request("books.search", json!({"query": "dune"}));
        let body = fixture(&GoogleBooks, "/books/v1/volumes");
        let Data::BooksSearch(s) = answer(&GoogleBooks, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!((s.total, s.results.len()), (Some(1000), 2));
        let dune = &s.results[0];
        assert_eq!(
            (dune.title.as_str(), dune.first_published_year),
            ("Dune", Some(2005))
        );
        assert_eq!(
            (dune.isbn13.as_slice(), dune.isbn10.as_slice()),
            (
                &["9781101146477".to_string()][..],
                &["1101146478".to_string()][..]
            )
        );
        assert_eq!(dune.languages, ["en"]);
        assert!(dune
            .cover_url
            .as_deref()
            .unwrap()
            .starts_with("https://books.google.com/books/content?id=B1hSG45JCX4C"));
        assert_eq!(
            dune.url,
            "https://books.google.com/books/about/Dune.html?hl=&id=B1hSG45JCX4C"
        );
        assert_eq!(
            (
                dune.ids.google_books.as_deref(),
                dune.free_read_url.as_ref()
            ),
            (Some("B1hSG45JCX4C"), None)
        );
        let wells = &s.results[1];
        assert_eq!(wells.title, "The Time Machine: An Invention");
        assert!(wells.isbn13.is_empty() && wells.isbn10.is_empty());
        assert_eq!(
            wells.free_read_url.as_deref(),
            Some("https://play.google.com/books/reader?id=yrMNAAAAYAAJ&hl=&source=gbs_api")
        );
        assert!(wells
            .url
            .starts_with("https://books.google.com/books?id=yrMNAAAAYAAJ"));

        let empty = r#"{"kind":"books#volumes","totalItems":0}"#;
        let Data::BooksSearch(s) = answer(&GoogleBooks, &r, test_response(200, &[], empty)) else {
            panic!()
        };
        assert!(s.results.is_empty());
    }

    #[test]
    fn google_error_envelopes_are_classified() {
        let r = request("books.search", json!({"query": "dune"}));
        let daily = r#"{"error":{"code":429,"message":"Quota exceeded for quota metric 'Queries' and limit 'Queries per day' of service 'books.googleapis.com' for consumer 'project_number:1234'.","errors":[{"message":"Quota exceeded for quota metric 'Queries' and limit 'Queries per day' of service 'books.googleapis.com' for consumer 'project_number:1234'.","domain":"global","reason":"rateLimitExceeded"}],"status":"RESOURCE_EXHAUSTED"}}"#;
        let f = failure(&GoogleBooks, &r, test_response(429, &[], daily));
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        // 2025-01-15T14:05Z is 06:05 in Los Angeles: the quota resets at 08:00Z next day.
        assert_eq!(f.reset_at, Some("2025-01-16T08:00:00Z".parse().unwrap()));
        assert!(
            f.message.starts_with("Google Books: Quota exceeded"),
            "{}",
            f.message
        );

        let per_minute = r#"{"error":{"code":429,"message":"Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'.","errors":[{"reason":"rateLimitExceeded"}],"status":"RESOURCE_EXHAUSTED"}}"#;
        let f = failure(
            &GoogleBooks,
            &r,
            test_response(429, &[("retry-after", "30")], per_minute),
        );
        assert_eq!((f.class, f.reset_at), (FailureClass::RateLimited, None));
        assert_eq!(f.retry_after, Some(std::time::Duration::from_secs(30)));

        let bad_key = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","errors":[{"message":"API key not valid. Please pass a valid API key.","domain":"global","reason":"badRequest"}],"status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(
            failure(&GoogleBooks, &r, test_response(400, &[], bad_key)).class,
            FailureClass::Auth
        );

        let bad_query = r#"{"error":{"code":400,"message":"Missing query.","errors":[{"message":"Missing query.","domain":"global","reason":"queryRequired","locationType":"parameter","location":"q"}]}}"#;
        assert_eq!(
            failure(&GoogleBooks, &r, test_response(400, &[], bad_query)).class,
            FailureClass::InvalidRequest
        );
        assert_eq!(
            failure(&GoogleBooks, &r, test_response(503, &[], "<html/>")).class,
            FailureClass::Transient
        );
        assert_eq!(
            failure(&GoogleBooks, &r, test_response(403, &[], "")).class,
            FailureClass::Auth
        );
    }

    #[test]
    fn midnight_pacific_follows_daylight_saving() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            next_pacific_midnight(at("2025-07-01T12:00:00Z")),
            Some(at("2025-07-02T07:00:00Z"))
        );
        assert_eq!(
            next_pacific_midnight(at("2025-01-01T07:59:00Z")),
            Some(at("2025-01-01T08:00:00Z"))
        );
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let r = request("books.search", json!({"query": "dune"}));
        assert_truncations_are_malformed(
            &GoogleBooks,
            &r,
            fixture(&GoogleBooks, "/books/v1/volumes"),
        );
    }
}
