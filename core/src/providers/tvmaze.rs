//! TVmaze: `tv.show_search`, by text or by IMDb id.
//!
//! Keyless. Text searches use `/search/shows?q=` (fuzzy, at most 10
//! shows, each wrapped as `{"score":…,"show":{…}}`); IMDb ids use
//! `/lookup/shows?imdb=`, which redirects to the show (404 when TVmaze does
//! not know the id). Summaries are HTML and are stripped. At least 20 calls
//! per 10 s per IP are allowed, then 429. Data is CC BY-SA.

use serde::Deserialize;

use crate::capability::media::{
    Rating, TitleIds, TitleKind, TitleLookup, TitleResult, TitleSearch,
};
use crate::capability::normalize::{iso_date, strip_html, year_of};
use crate::capability::{marker, media};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// TVmaze (<https://www.tvmaze.com/api>): keyless TV show search with
/// networks, status, ratings and IMDb/TheTVDB cross-references.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tvmaze;

static INFO: ProviderInfo = ProviderInfo {
    id: "tvmaze",
    name: "TVmaze",
    auth: Auth::Keyless,
    base_url: "https://api.tvmaze.com",
    docs_url: "https://www.tvmaze.com/api",
    terms: "Keyless; at least 20 calls per 10 s per IP. Data is licensed CC BY-SA: credit \
            TVmaze and share alike.",
    commercial_use: true,
    default_rate_limit: Some("20/10s"),
    default_quota: None,
};

impl Provider for Tvmaze {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Tvmaze: TvShowSearch);

impl Serves<marker::TvShowSearch> for Tvmaze {
    fn build_request(
        &self,
        q: &media::TitleQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(match &q.lookup {
            TitleLookup::Text(text) => {
                HttpRequest::get(ctx.base_url, "/search/shows").query("q", text.as_str())
            }
            TitleLookup::Imdb(id) => {
                HttpRequest::get(ctx.base_url, "/lookup/shows").query("imdb", id.as_str())
            }
        })
    }

    fn read_response(
        &self,
        q: &media::TitleQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<media::TitleSearch>, ProviderFailure> {
        if response.status == 404 {
            return Err(response.failure(
                FailureClass::NotFound,
                format!("TVmaze has no show for {}", q.label()),
            ));
        }
        response.check_status()?;
        // A search leaves out a show without its name or genres; a lookup
        // of that show fails, naming the field.
        let results = match q.lookup {
            TitleLookup::Text(_) => response
                .json::<Vec<Hit>>()?
                .into_iter()
                .filter_map(|hit| hit.show.into_result().ok())
                .collect(),
            TitleLookup::Imdb(_) => {
                vec![response.json::<Show>()?.into_result().map_err(|field| {
                    ProviderFailure::malformed(format!("TVmaze show lacks `{field}`"))
                        .status(response.status)
                })?]
            }
        };
        Ok(Step::Done(TitleSearch::new(q, None, results)))
    }
}

#[derive(Deserialize)]
struct Hit {
    show: Show,
}

#[derive(Deserialize)]
struct Show {
    id: u64,
    url: Option<String>,
    name: Option<String>,
    /// Required: TVmaze always lists them, empty when there are none.
    genres: Option<Vec<String>>,
    status: Option<String>,
    premiered: Option<String>,
    rating: Option<ShowRating>,
    network: Option<Named>,
    #[serde(rename = "webChannel")]
    web_channel: Option<Named>,
    externals: Option<Externals>,
    image: Option<Image>,
    summary: Option<String>,
}

#[derive(Deserialize)]
struct ShowRating {
    average: Option<f64>,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
struct Externals {
    imdb: Option<String>,
}

#[derive(Deserialize)]
struct Image {
    medium: Option<String>,
    original: Option<String>,
}

impl Show {
    /// The show, or the name of the required field it lacks.
    fn into_result(self) -> Result<TitleResult, &'static str> {
        let title = self.name.filter(|n| !n.trim().is_empty()).ok_or("name")?;
        let genres = self.genres.ok_or("genres")?;
        let premiered = self.premiered.as_deref();
        Ok(TitleResult {
            kind: TitleKind::Tv,
            title,
            year: premiered.and_then(year_of),
            release_date: premiered.and_then(iso_date),
            overview: self
                .summary
                .as_deref()
                .map(strip_html)
                .filter(|s| !s.is_empty()),
            genres,
            status: self.status,
            network: self.network.or(self.web_channel).map(|n| n.name),
            rating: Rating::out_of_ten(self.rating.and_then(|r| r.average), None),
            poster_url: self.image.and_then(|i| i.original.or(i.medium)),
            ids: TitleIds {
                tvmaze: Some(self.id),
                imdb: self.externals.and_then(|e| e.imdb),
                ..TitleIds::default()
            },
            url: self.url,
        })
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /search/shows?q=breaking bad` (first two hits).
    Fixture {
        method: "GET",
        path: "/search/shows",
        status: 200,
        body: include_str!("fixtures/tvmaze/search.json"),
    },
    // `GET /lookup/shows?imdb=tt0903747`, after its redirect to `/shows/169`.
    Fixture {
        method: "GET",
        path: "/lookup/shows",
        status: 200,
        body: include_str!("fixtures/tvmaze/lookup.json"),
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
    fn requests_are_exact() {
        let r = request("tv.show_search", json!({"query": "breaking bad"}));
        let req = Tvmaze.request(&r, &ctx(&Tvmaze)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.tvmaze.com/search/shows");
        assert_eq!(query(&req), [("q", "breaking bad")]);
        assert!(req.headers.is_empty());

        let r = request("tv.show_search", json!({"imdb_id": "tt0903747"}));
        let req = Tvmaze.request(&r, &ctx(&Tvmaze)).unwrap();
        assert_eq!(req.url, "https://api.tvmaze.com/lookup/shows");
        assert_eq!(query(&req), [("imdb", "tt0903747")]);

        let r = request("entertainment.movie_search", json!({"query": "x"}));
        assert_eq!(
            Tvmaze.request(&r, &ctx(&Tvmaze)).unwrap_err().class,
            FailureClass::Unsupported
        );
    }

    #[test]
    fn search_fixture_normalises() {
        let r = request("tv.show_search", json!({"query": "breaking bad"}));
        let body = fixture(&Tvmaze, "/search/shows");
        let Data::TvShowSearch(s) = answer(&Tvmaze, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!((s.query.as_str(), s.total), ("breaking bad", None));
        assert_eq!(s.results.len(), 2);
        let bb = &s.results[0];
        assert_eq!(
            (bb.kind, bb.title.as_str()),
            (TitleKind::Tv, "Breaking Bad")
        );
        assert_eq!(
            (bb.year, bb.release_date.as_deref()),
            (Some(2008), Some("2008-01-20"))
        );
        assert_eq!(bb.genres, ["Drama", "Crime", "Thriller"]);
        assert_eq!(
            (bb.status.as_deref(), bb.network.as_deref()),
            (Some("Ended"), Some("AMC"))
        );
        assert_eq!(
            bb.rating.as_ref().map(|r| (r.value, r.scale, r.votes)),
            Some((9.2, 10, None))
        );
        assert_eq!(
            (bb.ids.tvmaze, bb.ids.imdb.as_deref()),
            (Some(169), Some("tt0903747"))
        );
        assert!(bb
            .overview
            .as_deref()
            .unwrap()
            .starts_with("Breaking Bad follows protagonist"));
        assert!(bb
            .poster_url
            .as_deref()
            .unwrap()
            .contains("original_untouched"));
        let doc = &s.results[1];
        assert_eq!(
            (
                doc.network.as_deref(),
                doc.rating.as_ref(),
                doc.overview.as_ref()
            ),
            (Some("YouTube"), None, None)
        );
        assert_eq!(
            (doc.poster_url.as_ref(), doc.ids.imdb.as_ref()),
            (None, None)
        );

        let r = request(
            "tv.show_search",
            json!({"query": "breaking bad", "year": 2018}),
        );
        let Data::TvShowSearch(s) = answer(&Tvmaze, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!(s.results.len(), 1);
        assert_eq!(s.results[0].ids.tvmaze, Some(36788));
    }

    #[test]
    fn lookup_fixture_normalises_and_unknown_ids_are_not_found() {
        let r = request("tv.show_search", json!({"imdb_id": "tt0903747"}));
        let body = fixture(&Tvmaze, "/lookup/shows");
        let Data::TvShowSearch(s) = answer(&Tvmaze, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!(s.query, "tt0903747");
        assert_eq!(s.results.len(), 1);
        assert_eq!(s.results[0].ids.tvmaze, Some(169));

        let f = failure(&Tvmaze, &r, test_response(404, &[], ""));
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request("tv.show_search", json!({"query": "x"}));
        let f = failure(
            &Tvmaze,
            &r,
            test_response(
                429,
                &[("retry-after", "10")],
                r#"{"name":"Too Many Requests","message":"Rate limit exceeded","code":0,"status":429}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(std::time::Duration::from_secs(10)));
        let f = failure(&Tvmaze, &r, test_response(500, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(&Tvmaze, &r, test_response(400, &[], ""));
        assert_eq!(f.class, FailureClass::InvalidRequest);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let r = request("tv.show_search", json!({"query": "x"}));
        let body = fixture(&Tvmaze, "/search/shows");
        let cuts = [1, body.len() / 2, body.len() - 1];
        for cut in cuts {
            let f = failure(&Tvmaze, &r, test_response(200, &[], &body[..cut]));
            assert_eq!(f.class, FailureClass::MalformedResponse);
        }
        for garbage in [
            "null",
            "{}",
            "\"text\"",
            "<html>busy</html>",
            r#"[{"show":{"id":"x"}}]"#,
        ] {
            let f = failure(&Tvmaze, &r, test_response(200, &[], garbage));
            assert_eq!(f.class, FailureClass::MalformedResponse, "{garbage}");
        }
        let r = request("tv.show_search", json!({"imdb_id": "tt0903747"}));
        assert_truncations_are_malformed(&Tvmaze, &r, fixture(&Tvmaze, "/lookup/shows"));
    }
}
