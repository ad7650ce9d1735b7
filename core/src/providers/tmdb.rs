//! TMDB (The Movie Database): `entertainment.movie_search` and
//! `tv.show_search`, by text or by IMDb id.
//!
//! Needs the free "API Read Access Token" (`TMDB_ACCESS_TOKEN`), sent by
//! the pipeline as `Authorization: Bearer …`. Text searches use
//! `/3/search/movie` and `/3/search/tv` (20 results a page, filtered by
//! year server-side); IMDb ids are mapped to TMDB's own through
//! `/3/find/{imdb_id}?external_source=imdb_id`. Genre ids are resolved to
//! names. Errors are `{"status_code":…,"status_message":…}`: 401 with code
//! 7 (invalid key) or 32 (unverified e-mail), 404 code 34, 429 code 25
//! over the soft cap of about 40 requests/s.

use serde::Deserialize;

use super::clip;
use crate::capability::marker;
use crate::capability::media::{
    tmdb_genre, Rating, TitleIds, TitleKind, TitleLookup, TitleQuery, TitleResult, TitleSearch,
};
use crate::capability::normalize::{iso_date, non_empty, year_of};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Serves, Step,
};

/// TMDB (<https://developer.themoviedb.org>): films and series with
/// ratings, genres and posters; free for non-commercial use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tmdb;

static INFO: ProviderInfo = ProviderInfo {
    id: "tmdb",
    name: "TMDB",
    auth: Auth::Key {
        env: "TMDB_ACCESS_TOKEN",
        placement: KeyPlacement::Header {
            name: "Authorization",
            prefix: "Bearer ",
        },
        optional: false,
    },
    base_url: "https://api.themoviedb.org",
    docs_url: "https://developer.themoviedb.org/reference/search-movie",
    terms: "Free API Read Access Token for non-commercial use; attribution to TMDB required. \
            Soft cap of about 40 requests/s.",
    commercial_use: false,
    default_rate_limit: Some("40/s"),
    default_quota: None,
};

/// The poster of a `poster_path`, at a 500 px width.
fn poster(path: Option<String>) -> Option<String> {
    path.map(|p| format!("https://image.tmdb.org/t/p/w500{p}"))
}

impl Provider for Tmdb {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Tmdb: MovieSearch, TvShowSearch);

impl Serves<marker::MovieSearch> for Tmdb {
    fn build_request(
        &self,
        q: &TitleQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(title_request(q, TitleKind::Movie, ctx))
    }

    fn read_response(
        &self,
        q: &TitleQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<TitleSearch>, ProviderFailure> {
        read_titles(q, TitleKind::Movie, &response).map(Step::Done)
    }
}

impl Serves<marker::TvShowSearch> for Tmdb {
    fn build_request(
        &self,
        q: &TitleQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(title_request(q, TitleKind::Tv, ctx))
    }

    fn read_response(
        &self,
        q: &TitleQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<TitleSearch>, ProviderFailure> {
        read_titles(q, TitleKind::Tv, &response).map(Step::Done)
    }
}

/// The request of a title search or id lookup for `kind`.
fn title_request(q: &TitleQuery, kind: TitleKind, ctx: &CallContext<'_>) -> HttpRequest {
    match &q.lookup {
        TitleLookup::Text(text) => {
            let (path, year_param) = match kind {
                TitleKind::Movie => ("/3/search/movie", "primary_release_year"),
                TitleKind::Tv => ("/3/search/tv", "first_air_date_year"),
            };
            let req = HttpRequest::get(ctx.base_url, path)
                .query("query", text.as_str())
                .query("include_adult", "false")
                .query("language", "en-US")
                .query("page", "1");
            match q.year {
                Some(year) => req.query(year_param, year.to_string()),
                None => req,
            }
        }
        TitleLookup::Imdb(id) => HttpRequest::get(ctx.base_url, &format!("/3/find/{id}"))
            .query("external_source", "imdb_id")
            .query("language", "en-US"),
    }
}

/// The titles of `kind` in a reply, or the failure its status signals.
fn read_titles(
    q: &TitleQuery,
    kind: TitleKind,
    response: &HttpResponse,
) -> Result<TitleSearch, ProviderFailure> {
    if !response.is_success() {
        let status: Option<ErrorReply> = serde_json::from_slice(&response.body).ok();
        let class = match (response.status, status.as_ref().map(|s| s.status_code)) {
            (_, Some(25)) | (429, _) => FailureClass::RateLimited,
            (_, Some(7 | 10 | 32)) => FailureClass::Auth,
            _ => response
                .status_class()
                .unwrap_or(FailureClass::MalformedResponse),
        };
        let message = match status {
            Some(s) => format!("TMDB {}: {}", s.status_code, clip(&s.status_message)),
            None => response.body_excerpt(),
        };
        return Err(response.failure(class, message));
    }
    let (total, items) = match q.lookup {
        TitleLookup::Text(_) => {
            let page: Page = response.json()?;
            let results = page.results.ok_or_else(|| {
                ProviderFailure::malformed("TMDB reply lacks `results`").status(response.status)
            })?;
            (page.total_results, results)
        }
        TitleLookup::Imdb(_) => {
            let found: Found = response.json()?;
            let items = match kind {
                TitleKind::Movie => found.movie_results,
                TitleKind::Tv => found.tv_results,
            };
            if items.is_empty() {
                return Err(response.failure(
                    FailureClass::NotFound,
                    format!("TMDB has no title for {}", q.label()),
                ));
            }
            (None, items)
        }
    };
    // A film without `title` (a series without `name`) is left out.
    let results = items
        .into_iter()
        .filter_map(|i| i.into_result(kind))
        .collect();
    Ok(TitleSearch::new(q, total, results))
}

#[derive(Deserialize)]
struct ErrorReply {
    status_code: u32,
    status_message: String,
}

#[derive(Deserialize)]
struct Page {
    results: Option<Vec<Item>>,
    total_results: Option<u64>,
}

#[derive(Deserialize)]
struct Found {
    #[serde(default)]
    movie_results: Vec<Item>,
    #[serde(default)]
    tv_results: Vec<Item>,
}

/// A film (`title`, `release_date`) or a series (`name`, `first_air_date`).
#[derive(Deserialize)]
struct Item {
    id: u64,
    title: Option<String>,
    name: Option<String>,
    #[serde(alias = "first_air_date")]
    release_date: Option<String>,
    overview: Option<String>,
    poster_path: Option<String>,
    genre_ids: Option<Vec<u32>>,
    vote_average: Option<f64>,
    vote_count: Option<u64>,
}

impl Item {
    /// `None` when the item lacks a required fact: its title or its genres
    /// (TMDB always lists `genre_ids`, empty when it has none).
    fn into_result(self, kind: TitleKind) -> Option<TitleResult> {
        let title = match kind {
            TitleKind::Movie => self.title.or(self.name),
            TitleKind::Tv => self.name.or(self.title),
        }
        .filter(|t| !t.trim().is_empty())?;
        let genre_ids = self.genre_ids?;
        let date = self.release_date.as_deref();
        let page = match kind {
            TitleKind::Movie => "movie",
            TitleKind::Tv => "tv",
        };
        Some(TitleResult {
            kind,
            year: date.and_then(year_of),
            release_date: date.and_then(iso_date),
            title,
            overview: non_empty(self.overview),
            genres: genre_ids
                .iter()
                .filter_map(|id| tmdb_genre(*id))
                .map(str::to_string)
                .collect(),
            status: None,
            network: None,
            rating: Rating::out_of_ten(self.vote_average, self.vote_count),
            poster_url: poster(self.poster_path),
            ids: TitleIds {
                tmdb: Some(self.id),
                ..TitleIds::default()
            },
            url: Some(format!("https://www.themoviedb.org/{page}/{}", self.id)),
        })
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /3/search/movie?query=spirited away` (abridged to two results).
    Fixture {
        method: "GET",
        path: "/3/search/movie",
        status: 200,
        body: include_str!("fixtures/tmdb/search_movie.json"),
    },
    // `GET /3/search/tv?query=breaking bad` (abridged to one result).
    Fixture {
        method: "GET",
        path: "/3/search/tv",
        status: 200,
        body: include_str!("fixtures/tmdb/search_tv.json"),
    },
    // `GET /3/find/tt0088247?external_source=imdb_id`.
    Fixture {
        method: "GET",
        path: "/3/find/*",
        status: 200,
        body: include_str!("fixtures/tmdb/find.json"),
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
    fn requests_are_exact_and_carry_no_key() {
        let r = request(
            "entertainment.movie_search",
            json!({"query": "spirited away", "year": 2001}),
        );
        let req = Tmdb.request(&r, &ctx(&Tmdb)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.themoviedb.org/3/search/movie");
        assert_eq!(
            query(&req),
            [
                ("query", "spirited away"),
                ("include_adult", "false"),
                ("language", "en-US"),
                ("page", "1"),
                ("primary_release_year", "2001"),
            ]
        );
        assert!(req.headers.is_empty());

        let r = request(
            "tv.show_search",
            json!({"query": "breaking bad", "year": 2008}),
        );
        let req = Tmdb.request(&r, &ctx(&Tmdb)).unwrap();
        assert_eq!(req.url, "https://api.themoviedb.org/3/search/tv");
        assert_eq!(query(&req)[4], ("first_air_date_year", "2008"));

        let r = request(
            "entertainment.movie_search",
            json!({"imdb_id": "tt0088247"}),
        );
        let req = Tmdb.request(&r, &ctx(&Tmdb)).unwrap();
        assert_eq!(req.url, "https://api.themoviedb.org/3/find/tt0088247");
        assert_eq!(
            query(&req),
            [("external_source", "imdb_id"), ("language", "en-US")]
        );

        assert_eq!(
            Tmdb.info().auth,
            Auth::Key {
                env: "TMDB_ACCESS_TOKEN",
                placement: KeyPlacement::Header {
                    name: "Authorization",
                    prefix: "Bearer "
                },
                optional: false,
            }
        );
        assert!(!Tmdb.info().is_keyless());
    }

    #[test]
    fn movie_search_normalises() {
        let r = request(
            "entertainment.movie_search",
            json!({"query": "spirited away"}),
        );
        let body = fixture(&Tmdb, "/3/search/movie");
        let Data::MovieSearch(s) = answer(&Tmdb, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!(s.total, Some(2));
        let m = &s.results[0];
        assert_eq!(
            (m.kind, m.title.as_str(), m.year),
            (TitleKind::Movie, "Spirited Away", Some(2001))
        );
        assert_eq!(m.release_date.as_deref(), Some("2001-07-20"));
        assert_eq!(m.genres, ["Animation", "Family", "Fantasy"]);
        let rating = m.rating.as_ref().unwrap();
        assert_eq!(
            (rating.value, rating.scale, rating.votes),
            (8.536, 10, Some(16912))
        );
        assert_eq!(
            m.poster_url.as_deref(),
            Some("https://image.tmdb.org/t/p/w500/39wmItIWsg5sZMyRUHLkWBcuVCM.jpg")
        );
        assert_eq!(m.ids.tmdb, Some(129));
        assert_eq!(
            m.url.as_deref(),
            Some("https://www.themoviedb.org/movie/129")
        );
        // Empty dates, overviews and zero-vote ratings mean "unknown".
        let making_of = &s.results[1];
        assert_eq!(
            (making_of.year, making_of.release_date.as_ref()),
            (None, None)
        );
        assert_eq!(
            (making_of.overview.as_ref(), making_of.rating.as_ref()),
            (None, None)
        );
    }

    #[test]
    fn tv_search_and_find_normalise() {
        let r = request("tv.show_search", json!({"query": "breaking bad"}));
        let body = fixture(&Tmdb, "/3/search/tv");
        let Data::TvShowSearch(s) = answer(&Tmdb, &r, test_response(200, &[], body)) else {
            panic!()
        };
        let show = &s.results[0];
        assert_eq!(
            (show.kind, show.title.as_str()),
            (TitleKind::Tv, "Breaking Bad")
        );
        assert_eq!(show.release_date.as_deref(), Some("2008-01-20"));
        assert_eq!(show.genres, ["Drama", "Crime"]);
        assert_eq!(
            show.url.as_deref(),
            Some("https://www.themoviedb.org/tv/1396")
        );

        let r = request(
            "entertainment.movie_search",
            json!({"imdb_id": "tt0088247"}),
        );
        let body = fixture(&Tmdb, "/3/find/*");
        let Data::MovieSearch(s) = answer(&Tmdb, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!((s.query.as_str(), s.results.len()), ("tt0088247", 1));
        assert_eq!(
            (s.results[0].title.as_str(), s.results[0].ids.tmdb),
            ("The Terminator", Some(218))
        );
        assert_eq!(
            s.results[0].genres,
            ["Action", "Thriller", "Science Fiction"]
        );

        // The same id asked for as a series: TMDB found no series.
        let r = request("tv.show_search", json!({"imdb_id": "tt0088247"}));
        let f = failure(&Tmdb, &r, test_response(200, &[], body));
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request("entertainment.movie_search", json!({"query": "x"}));
        let cases = [
            (
                401,
                r#"{"status_code":7,"status_message":"Invalid API key: You must be granted a valid key.","success":false}"#,
                FailureClass::Auth,
            ),
            (
                401,
                r#"{"status_code":32,"status_message":"Email not verified: Your email address has not been verified.","success":false}"#,
                FailureClass::Auth,
            ),
            (
                429,
                r#"{"status_code":25,"status_message":"Your request count (41) is over the allowed limit of 40.","success":false}"#,
                FailureClass::RateLimited,
            ),
            (
                404,
                r#"{"status_code":34,"status_message":"The resource you requested could not be found.","success":false}"#,
                FailureClass::NotFound,
            ),
            (
                422,
                r#"{"status_code":22,"status_message":"Invalid page: Pages start at 1 and max at 500.","success":false}"#,
                FailureClass::InvalidRequest,
            ),
            (503, "<html>busy</html>", FailureClass::Transient),
        ];
        for (status, body, class) in cases {
            let f = failure(
                &Tmdb,
                &r,
                test_response(status, &[("retry-after", "2")], body),
            );
            assert_eq!(f.class, class, "{status} {body}");
            assert_eq!(f.status, Some(status));
        }
        let f = failure(
            &Tmdb,
            &r,
            test_response(429, &[("retry-after", "2")], cases[2].1),
        );
        assert_eq!(f.retry_after, Some(std::time::Duration::from_secs(2)));
        assert!(
            f.message.starts_with("TMDB 25: Your request count"),
            "{}",
            f.message
        );
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let r = request("entertainment.movie_search", json!({"query": "x"}));
        assert_truncations_are_malformed(&Tmdb, &r, fixture(&Tmdb, "/3/search/movie"));
        let r = request(
            "entertainment.movie_search",
            json!({"imdb_id": "tt0088247"}),
        );
        let body = fixture(&Tmdb, "/3/find/*");
        let cuts = [1, body.len() / 2, body.len() - 1];
        for cut in cuts {
            let f = failure(&Tmdb, &r, test_response(200, &[], &body[..cut]));
            assert_eq!(f.class, FailureClass::MalformedResponse);
        }
    }
}
