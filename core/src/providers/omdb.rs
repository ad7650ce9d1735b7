//! OMDb: `entertainment.movie_search` and `tv.show_search` (IMDb data), by
//! text (`s=`) or by IMDb id (`i=`).
//!
//! Needs a key (`OMDB_API_KEY`), which OMDb only accepts as the `apikey`
//! query parameter; the free key allows 1,000 requests a day. OMDb reports
//! most errors inside HTTP 200 as `{"Response":"False","Error":"…"}`:
//! "Movie not found!" is an empty search (or `NotFound` for an id), "Too
//! many results." a query too vague, "Incorrect IMDb ID." `NotFound`.
//! HTTP 401 "Request limit reached!" is the daily quota, not a bad key;
//! 401 "Invalid API key!" is.

use chrono::NaiveDate;
use serde::Deserialize;

use super::clip;
use crate::capability::marker;
use crate::capability::media::{
    Rating, TitleIds, TitleKind, TitleLookup, TitleQuery, TitleResult, TitleSearch,
};
use crate::capability::normalize::{lenient_f64, lenient_u64, non_empty, year_of};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Quota, Serves, Step,
};

/// OMDb (<https://www.omdbapi.com>): IMDb titles, ratings and plots.
#[derive(Debug, Clone, Copy, Default)]
pub struct Omdb;

static INFO: ProviderInfo = ProviderInfo {
    id: "omdb",
    name: "OMDb",
    auth: Auth::Key {
        env: "OMDB_API_KEY",
        placement: KeyPlacement::Query { param: "apikey" },
        optional: false,
    },
    base_url: "https://www.omdbapi.com",
    docs_url: "https://www.omdbapi.com",
    terms: "Free key with 1,000 requests/day; data licensed CC BY-NC 4.0 (non-commercial). \
            The key can only be sent in the query string.",
    commercial_use: false,
    default_rate_limit: None,
    default_quota: Some(Quota::per_day(1000)),
};

impl Provider for Omdb {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Omdb: MovieSearch, TvShowSearch);

impl Serves<marker::MovieSearch> for Omdb {
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

impl Serves<marker::TvShowSearch> for Omdb {
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

/// OMDb's `type` for a kind of title.
fn omdb_type(kind: TitleKind) -> &'static str {
    match kind {
        TitleKind::Movie => "movie",
        TitleKind::Tv => "series",
    }
}

/// The request of a title search or id lookup for `kind`.
fn title_request(q: &TitleQuery, kind: TitleKind, ctx: &CallContext<'_>) -> HttpRequest {
    let kind = omdb_type(kind);
    match &q.lookup {
        TitleLookup::Text(text) => {
            let req = HttpRequest::get(ctx.base_url, "/")
                .query("s", text.as_str())
                .query("type", kind);
            let req = match q.year {
                Some(year) => req.query("y", year.to_string()),
                None => req,
            };
            req.query("page", "1")
        }
        TitleLookup::Imdb(id) => HttpRequest::get(ctx.base_url, "/")
            .query("i", id.as_str())
            .query("type", kind)
            .query("plot", "short"),
    }
}

/// The titles of `kind` in a reply, or the failure its `Error` or status
/// signals.
fn read_titles(
    q: &TitleQuery,
    kind: TitleKind,
    response: &HttpResponse,
) -> Result<TitleSearch, ProviderFailure> {
    let reply: Option<Reply> = serde_json::from_slice(&response.body).ok();
    if let Some(error) = reply.as_ref().and_then(|r| r.error.as_deref()) {
        if let Some(empty) = empty_search(q, error) {
            return Ok(empty);
        }
        let class = classify(error, &q.lookup);
        return Err(response.failure(class, format!("OMDb: {}", clip(error))));
    }
    response.check_status()?;
    let reply: Reply = response.json()?;
    let wanted = omdb_type(kind);
    match reply.search {
        Some(items) => {
            let results = items
                .into_iter()
                .filter(|t| t.kind.as_deref() == Some(wanted))
                .map(|t| t.into_result(kind))
                .collect();
            Ok(TitleSearch::new(q, reply.total_results, results))
        }
        // A text search always answers with `Search` (or an `Error`).
        None if matches!(q.lookup, TitleLookup::Text(_)) => Err(ProviderFailure::malformed(
            "OMDb search reply lacks `Search`",
        )
        .status(response.status)),
        // An id lookup answers with the title itself.
        None => {
            let title: Title = response.json()?;
            Ok(TitleSearch::new(q, None, vec![title.into_result(kind)]))
        }
    }
}

/// "Movie not found!" / "Series not found!" on a text search: an empty
/// answer, not a failure.
fn empty_search(q: &TitleQuery, error: &str) -> Option<TitleSearch> {
    let not_found = error.to_ascii_lowercase().contains("not found");
    (not_found && matches!(q.lookup, TitleLookup::Text(_)))
        .then(|| TitleSearch::new(q, Some(0), Vec::new()))
}

/// The class of an OMDb `Error` text, whatever the HTTP status.
fn classify(error: &str, lookup: &TitleLookup) -> FailureClass {
    let error = error.to_ascii_lowercase();
    if error.contains("limit reached") {
        FailureClass::QuotaExhausted
    } else if error.contains("api key") {
        FailureClass::Auth
    } else if error.contains("not found") || error.contains("incorrect imdb id") {
        match lookup {
            TitleLookup::Imdb(_) => FailureClass::NotFound,
            TitleLookup::Text(_) => FailureClass::InvalidRequest,
        }
    } else if error.contains("too many results") || error.contains("something went wrong") {
        FailureClass::InvalidRequest
    } else {
        FailureClass::MalformedResponse
    }
}

#[derive(Deserialize)]
struct Reply {
    #[serde(rename = "Error")]
    error: Option<String>,
    #[serde(rename = "Search")]
    search: Option<Vec<Title>>,
    #[serde(rename = "totalResults", default, deserialize_with = "lenient_u64")]
    total_results: Option<u64>,
}

/// A search hit, or the full record of an id lookup (which adds the
/// release date, genres, plot and rating).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Title {
    title: String,
    year: Option<String>,
    #[serde(rename = "imdbID")]
    imdb_id: String,
    #[serde(rename = "Type")]
    kind: Option<String>,
    poster: Option<String>,
    released: Option<String>,
    genre: Option<String>,
    plot: Option<String>,
    #[serde(rename = "imdbRating", default, deserialize_with = "lenient_f64")]
    imdb_rating: Option<f64>,
    #[serde(rename = "imdbVotes", default, deserialize_with = "lenient_u64")]
    imdb_votes: Option<u64>,
}

impl Title {
    fn into_result(self, kind: TitleKind) -> TitleResult {
        let release_date = self
            .released
            .as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d, "%d %b %Y").ok())
            .map(|d| d.format("%Y-%m-%d").to_string());
        TitleResult {
            kind,
            title: self.title,
            year: self.year.as_deref().and_then(year_of),
            release_date,
            overview: non_empty(self.plot),
            genres: non_empty(self.genre)
                .map(|g| g.split(", ").map(str::to_string).collect())
                .unwrap_or_default(),
            status: None,
            network: None,
            rating: Rating::out_of_ten(self.imdb_rating, self.imdb_votes),
            poster_url: non_empty(self.poster),
            url: Some(format!("https://www.imdb.com/title/{}/", self.imdb_id)),
            ids: TitleIds {
                imdb: Some(self.imdb_id),
                ..TitleIds::default()
            },
        }
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /?s=terminator&type=movie&page=1` (abridged), with one series hit
    // as a `type`-less search would return.
    Fixture {
        method: "GET",
        path: "/",
        status: 200,
        body: include_str!("fixtures/omdb/search.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    /// `GET /?i=tt0088247&type=movie&plot=short`.
    const BY_ID: &str = r#"{"Title":"The Terminator","Year":"1984","Rated":"R","Released":"26 Oct 1984","Runtime":"107 min","Genre":"Action, Sci-Fi","Director":"James Cameron","Writer":"James Cameron, Gale Anne Hurd, William Wisher","Actors":"Arnold Schwarzenegger, Linda Hamilton, Michael Biehn","Plot":"A human soldier is sent from 2029 to 1984 to stop an almost indestructible cyborg killing machine.","Language":"English, Spanish","Country":"United Kingdom, United States","Awards":"5 wins & 6 nominations","Poster":"https://m.media-amazon.com/images/M/MV5BYTViNzMxZjEtZGEwNy00MDNiLWIzNGQtZDY2MjQ1OWViZjFmXkEyXkFqcGdeQXVyNzkwMjQ5NzM@._V1_SX300.jpg","Ratings":[{"Source":"Internet Movie Database","Value":"8.1/10"},{"Source":"Rotten Tomatoes","Value":"100%"}],"Metascore":"84","imdbRating":"8.1","imdbVotes":"935,411","imdbID":"tt0088247","Type":"movie","DVD":"N/A","BoxOffice":"$38,400,000","Production":"N/A","Website":"N/A","Response":"True"}"#;

    #[test]
    fn requests_are_exact_and_carry_no_key() {
        let r = request(
            "entertainment.movie_search",
            json!({"query": "terminator", "year": 1984}),
        );
        let req = Omdb.request(&r, &ctx(&Omdb)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://www.omdbapi.com/");
        assert_eq!(
            query(&req),
            [
                ("s", "terminator"),
                ("type", "movie"),
                ("y", "1984"),
                ("page", "1")
            ]
        );
        assert!(req.headers.is_empty());

        let r = request("tv.show_search", json!({"imdb_id": "tt0903747"}));
        let req = Omdb.request(&r, &ctx(&Omdb)).unwrap();
        assert_eq!(
            query(&req),
            [("i", "tt0903747"), ("type", "series"), ("plot", "short")]
        );
        assert!(req.query.iter().all(|(k, _)| k != "apikey"));
        assert_eq!(
            Omdb.info().auth,
            Auth::Key {
                env: "OMDB_API_KEY",
                placement: KeyPlacement::Query { param: "apikey" },
                optional: false
            }
        );
    }

    #[test]
    fn search_fixture_normalises_and_keeps_the_asked_kind() {
        let r = request("entertainment.movie_search", json!({"query": "terminator"}));
        let body = fixture(&Omdb, "/");
        let Data::MovieSearch(s) = answer(&Omdb, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!(s.total, Some(3));
        assert_eq!(s.results.len(), 2);
        let t = &s.results[0];
        assert_eq!(
            (t.title.as_str(), t.year, t.ids.imdb.as_deref()),
            ("The Terminator", Some(1984), Some("tt0088247"))
        );
        assert_eq!(
            t.url.as_deref(),
            Some("https://www.imdb.com/title/tt0088247/")
        );
        assert!(t.poster_url.as_deref().unwrap().ends_with("SX300.jpg"));

        let r = request("tv.show_search", json!({"query": "terminator"}));
        let Data::TvShowSearch(s) = answer(&Omdb, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!(s.results.len(), 1);
        let show = &s.results[0];
        assert_eq!(
            (show.kind, show.year, show.poster_url.as_ref()),
            (TitleKind::Tv, Some(2008), None)
        );
    }

    #[test]
    fn id_lookup_normalises_the_full_record() {
        let r = request(
            "entertainment.movie_search",
            json!({"imdb_id": "tt0088247"}),
        );
        let Data::MovieSearch(s) = answer(&Omdb, &r, test_response(200, &[], BY_ID)) else {
            panic!()
        };
        let t = &s.results[0];
        assert_eq!(t.release_date.as_deref(), Some("1984-10-26"));
        assert_eq!(t.genres, ["Action", "Sci-Fi"]);
        assert!(t
            .overview
            .as_deref()
            .unwrap()
            .starts_with("A human soldier"));
        let rating = t.rating.as_ref().unwrap();
        assert_eq!((rating.value, rating.votes), (8.1, Some(935_411)));
    }

    #[test]
    fn errors_inside_200_and_401_are_classified() {
        let text = request("entertainment.movie_search", json!({"query": "zzqx"}));
        let by_id = request(
            "entertainment.movie_search",
            json!({"imdb_id": "tt9999999"}),
        );

        let Data::MovieSearch(s) = answer(
            &Omdb,
            &text,
            test_response(
                200,
                &[],
                r#"{"Response":"False","Error":"Movie not found!"}"#,
            ),
        ) else {
            panic!()
        };
        assert!(s.results.is_empty());

        let cases = [
            (
                &by_id,
                200,
                r#"{"Response":"False","Error":"Incorrect IMDb ID."}"#,
                FailureClass::NotFound,
            ),
            (
                &by_id,
                200,
                r#"{"Response":"False","Error":"Movie not found!"}"#,
                FailureClass::NotFound,
            ),
            (
                &text,
                200,
                r#"{"Response":"False","Error":"Too many results."}"#,
                FailureClass::InvalidRequest,
            ),
            (
                &text,
                200,
                r#"{"Response":"False","Error":"Error getting data."}"#,
                FailureClass::MalformedResponse,
            ),
            (
                &text,
                401,
                r#"{"Response":"False","Error":"Request limit reached!"}"#,
                FailureClass::QuotaExhausted,
            ),
            (
                &text,
                401,
                r#"{"Response":"False","Error":"Invalid API key!"}"#,
                FailureClass::Auth,
            ),
            (
                &text,
                401,
                r#"{"Response":"False","Error":"No API key provided."}"#,
                FailureClass::Auth,
            ),
            (
                &text,
                503,
                "<html>Service Unavailable</html>",
                FailureClass::Transient,
            ),
            (&text, 429, "", FailureClass::RateLimited),
        ];
        for (r, status, body, class) in cases {
            let f = failure(&Omdb, r, test_response(status, &[], body));
            assert_eq!(f.class, class, "{status} {body}");
            assert_eq!(f.status, Some(status));
        }
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let r = request("entertainment.movie_search", json!({"query": "x"}));
        assert_truncations_are_malformed(&Omdb, &r, fixture(&Omdb, "/"));
        let r = request(
            "entertainment.movie_search",
            json!({"imdb_id": "tt0088247"}),
        );
        assert_truncations_are_malformed(&Omdb, &r, BY_ID);
        let f = failure(&Omdb, &r, test_response(200, &[], "{}"));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
