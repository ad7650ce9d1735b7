//! Deezer: `music.search` for tracks, albums and artists.
//!
//! Keyless public API, 50 requests per 5 s per IP. `/search`,
//! `/search/album` and `/search/artist` take plain text (field syntax such
//! as `artist:"x"` is unreliable, so it is not used). Deezer reports every
//! error inside an HTTP 200 as `{"error":{"type","message","code"}}`; code
//! 4 "Quota limit exceeded" is its 5-second rate window. Durations are in
//! seconds and converted to milliseconds.

use std::time::Duration;

use serde::Deserialize;

use super::clip;
use crate::capability::media::{MusicKind, MusicResult, MusicSearch};
use crate::capability::{marker, media};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Deezer (<https://developers.deezer.com/api>): keyless search of
/// Deezer's catalogue with 30-second previews.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deezer;

static INFO: ProviderInfo = ProviderInfo {
    id: "deezer",
    name: "Deezer",
    auth: Auth::Keyless,
    base_url: "https://api.deezer.com",
    docs_url: "https://developers.deezer.com/api/search",
    terms: "Keyless, 50 requests per 5 s per IP. Deezer's API terms allow non-commercial use \
            only without an agreement; credit Deezer and link back.",
    commercial_use: false,
    default_rate_limit: Some("50/5s"),
    default_quota: None,
};

impl Provider for Deezer {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Deezer: MusicSearch);

impl Serves<marker::MusicSearch> for Deezer {
    fn build_request(
        &self,
        q: &media::MusicQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let path = match q.kind {
            MusicKind::Track => "/search",
            MusicKind::Album => "/search/album",
            MusicKind::Artist => "/search/artist",
        };
        Ok(HttpRequest::get(ctx.base_url, path)
            .query("q", q.query.as_str())
            .query("limit", q.limit.to_string()))
    }

    fn read_response(
        &self,
        q: &media::MusicQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<media::MusicSearch>, ProviderFailure> {
        response.check_status()?;
        if let Ok(ErrorReply { error }) = serde_json::from_slice(&response.body) {
            return Err(error.failure(&response));
        }
        let reply: Reply = response.json()?;
        let wanted = match q.kind {
            MusicKind::Track => "track",
            MusicKind::Album => "album",
            MusicKind::Artist => "artist",
        };
        let results = reply
            .data
            .into_iter()
            .filter(|item| item.kind.as_deref() == Some(wanted))
            // An item without a title is left out, not the reply.
            .filter_map(|item| item.into_result(q.kind))
            .take(usize::from(q.limit))
            .collect();
        Ok(Step::Done(MusicSearch {
            query: q.query.clone(),
            total: reply.total,
            results,
        }))
    }
}

#[derive(Deserialize)]
struct ErrorReply {
    error: DeezerError,
}

#[derive(Deserialize)]
struct DeezerError {
    code: u32,
    #[serde(default)]
    message: String,
}

impl DeezerError {
    fn failure(&self, response: &HttpResponse) -> ProviderFailure {
        let class = match self.code {
            4 => FailureClass::RateLimited,
            700 => FailureClass::Transient,
            800 => FailureClass::NotFound,
            200 | 300 | 901 => FailureClass::Auth,
            _ => response
                .status_class()
                .unwrap_or(FailureClass::InvalidRequest),
        };
        let failure = response.failure(
            class,
            format!("Deezer error {}: {}", self.code, clip(&self.message)),
        );
        // The quota is a 5-second window.
        match (class, failure.retry_after) {
            (FailureClass::RateLimited, None) => failure.retry_after(Some(Duration::from_secs(5))),
            _ => failure,
        }
    }
}

#[derive(Deserialize)]
struct Reply {
    data: Vec<Item>,
    total: Option<u64>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<u64>,
    /// Track and album title.
    title: Option<String>,
    /// Artist name.
    name: Option<String>,
    link: Option<String>,
    duration: Option<u64>,
    preview: Option<String>,
    artist: Option<Named>,
    album: Option<Album>,
    cover_big: Option<String>,
    picture_big: Option<String>,
}

#[derive(Deserialize)]
struct Named {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Album {
    title: Option<String>,
    cover_big: Option<String>,
}

impl Item {
    fn into_result(self, kind: MusicKind) -> Option<MusicResult> {
        let title = self.title.or(self.name)?;
        let mut result = MusicResult::new(kind, title);
        result.ids.deezer = self.id;
        result.url = self.link;
        match kind {
            MusicKind::Track => {
                result.artist = self.artist.and_then(|a| a.name);
                result.duration_ms = self.duration.map(|s| s.saturating_mul(1000));
                result.preview_url = self.preview.filter(|p| !p.is_empty());
                if let Some(album) = self.album {
                    result.album = album.title;
                    result.artwork_url = album.cover_big;
                }
            }
            MusicKind::Album => {
                result.artist = self.artist.and_then(|a| a.name);
                result.artwork_url = self.cover_big;
            }
            MusicKind::Artist => result.artwork_url = self.picture_big,
        }
        Some(result)
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /search?q=one more time daft punk&limit=1`.
    Fixture {
        method: "GET",
        path: "/search",
        status: 200,
        body: include_str!("fixtures/deezer/tracks.json"),
    },
    // `GET /search/album?q=daft punk discovery&limit=1`.
    Fixture {
        method: "GET",
        path: "/search/album",
        status: 200,
        body: include_str!("fixtures/deezer/albums.json"),
    },
    // `GET /search/artist?q=daft punk&limit=1`.
    Fixture {
        method: "GET",
        path: "/search/artist",
        status: 200,
        body: include_str!("fixtures/deezer/artists.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn search(kind: &str) -> Request {
        request(
            "music.search",
            json!({"query": "daft punk", "type": kind, "limit": 3}),
        )
    }

    #[test]
    fn requests_are_exact() {
        for (kind, path) in [
            ("track", "/search"),
            ("album", "/search/album"),
            ("artist", "/search/artist"),
        ] {
            let req = Deezer.request(&search(kind), &ctx(&Deezer)).unwrap();
            assert_eq!(req.method, Method::GET);
            assert_eq!(req.url, format!("https://api.deezer.com{path}"));
            assert_eq!(query(&req), [("q", "daft punk"), ("limit", "3")]);
            assert!(req.headers.is_empty());
        }
    }

    #[test]
    fn fixtures_normalise_per_kind() {
        let Data::MusicSearch(s) = answer(
            &Deezer,
            &search("track"),
            test_response(200, &[], fixture(&Deezer, "/search")),
        ) else {
            panic!()
        };
        assert_eq!(s.total, Some(214));
        let t = &s.results[0];
        assert_eq!(
            (t.kind, t.title.as_str(), t.artist.as_deref()),
            (MusicKind::Track, "One More Time", Some("Daft Punk"))
        );
        assert_eq!(
            (t.album.as_deref(), t.duration_ms),
            (Some("Discovery"), Some(320_000))
        );
        assert!(t.preview_url.as_deref().unwrap().contains(".mp3"));
        assert!(t.artwork_url.as_deref().unwrap().contains("500x500"));
        assert_eq!(
            (t.ids.deezer, t.url.as_deref()),
            (Some(3135553), Some("https://www.deezer.com/track/3135553"))
        );
        assert_eq!((t.release_date.as_ref(), t.isrc.as_ref()), (None, None));

        let Data::MusicSearch(s) = answer(
            &Deezer,
            &search("album"),
            test_response(200, &[], fixture(&Deezer, "/search/album")),
        ) else {
            panic!()
        };
        let a = &s.results[0];
        assert_eq!(
            (a.kind, a.title.as_str(), a.artist.as_deref()),
            (MusicKind::Album, "Discovery", Some("Daft Punk"))
        );
        assert_eq!(a.ids.deezer, Some(302127));

        let Data::MusicSearch(s) = answer(
            &Deezer,
            &search("artist"),
            test_response(200, &[], fixture(&Deezer, "/search/artist")),
        ) else {
            panic!()
        };
        let a = &s.results[0];
        assert_eq!(
            (a.kind, a.title.as_str(), a.artist.as_ref()),
            (MusicKind::Artist, "Daft Punk", None)
        );
        assert!(a.artwork_url.as_deref().unwrap().contains("/artist/"));
    }

    #[test]
    fn errors_inside_200_are_classified() {
        let cases = [
            (4, "Quota limit exceeded", FailureClass::RateLimited),
            (700, "Service busy", FailureClass::Transient),
            (800, "no data", FailureClass::NotFound),
            (300, "Invalid OAuth access token.", FailureClass::Auth),
            (600, "Invalid query", FailureClass::InvalidRequest),
            (501, "Missing parameter", FailureClass::InvalidRequest),
        ];
        for (code, message, class) in cases {
            let body = format!(
                r#"{{"error":{{"type":"Exception","message":"{message}","code":{code}}}}}"#
            );
            let f = failure(&Deezer, &search("track"), test_response(200, &[], &body));
            assert_eq!((f.class, f.status), (class, Some(200)), "{code}");
            assert!(
                f.message.starts_with(&format!("Deezer error {code}: ")),
                "{}",
                f.message
            );
        }
        let quota = r#"{"error":{"type":"Exception","message":"Quota limit exceeded","code":4}}"#;
        let f = failure(&Deezer, &search("track"), test_response(200, &[], quota));
        assert_eq!(f.retry_after, Some(Duration::from_secs(5)));
        let f = failure(
            &Deezer,
            &search("track"),
            test_response(503, &[], "<html>busy</html>"),
        );
        assert_eq!(f.class, FailureClass::Transient);
        let unknown = r#"{"error":{"type":"Exception","message":"down","code":12345}}"#;
        let f = failure(&Deezer, &search("track"), test_response(503, &[], unknown));
        assert_eq!(f.class, FailureClass::Transient, "an error body on a 5xx");
    }

    #[test]
    fn malformed_bodies_never_panic() {
        for (kind, path) in [
            ("track", "/search"),
            ("album", "/search/album"),
            ("artist", "/search/artist"),
        ] {
            assert_truncations_are_malformed(&Deezer, &search(kind), fixture(&Deezer, path));
        }
        // Other kinds of items are skipped, not fatal.
        let other = r#"{"data":[{"type":"podcast","id":1,"title":"x"}],"total":1}"#;
        let Data::MusicSearch(s) =
            answer(&Deezer, &search("track"), test_response(200, &[], other))
        else {
            panic!()
        };
        assert!(s.results.is_empty());
    }
}
