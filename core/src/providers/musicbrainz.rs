//! MusicBrainz WS/2: `music.search` for recordings, release groups
//! (albums) and artists.
//!
//! Keyless with strict etiquette: at most one request per second per IP,
//! and a meaningful User-Agent with contact details (the pipeline sends the
//! client-wide one; library defaults get blocked). Over the rate MusicBrainz
//! answers 503, which is throttling here, not an outage. Queries use Lucene
//! syntax, so the caller's text is escaped. Lengths are already in ms.

use std::time::Duration;

use serde::Deserialize;

use super::clip;
use crate::capability::media::{MusicKind, MusicResult, MusicSearch};
use crate::capability::normalize::iso_date;
use crate::capability::{marker, media};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// MusicBrainz (<https://musicbrainz.org/doc/MusicBrainz_API>): the open
/// music encyclopedia; ids (MBIDs) are the music world's common keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct MusicBrainz;

static INFO: ProviderInfo = ProviderInfo {
    id: "musicbrainz",
    name: "MusicBrainz",
    auth: Auth::Keyless,
    base_url: "https://musicbrainz.org",
    docs_url: "https://musicbrainz.org/doc/MusicBrainz_API/Search",
    terms: "Keyless, 1 request/s per IP and an identifying User-Agent with contact details \
            (set the client's contact). Core data is CC0.",
    commercial_use: true,
    default_rate_limit: Some("1/s"),
    default_quota: None,
};

/// `text` with Lucene's special characters escaped, so it is searched as
/// words and never parsed as query syntax.
fn lucene_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "+-&|!(){}[]^\"~*?:\\/".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

impl Provider for MusicBrainz {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(MusicBrainz: MusicSearch);

impl Serves<marker::MusicSearch> for MusicBrainz {
    fn build_request(
        &self,
        q: &media::MusicQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let entity = match q.kind {
            MusicKind::Track => "recording",
            MusicKind::Album => "release-group",
            MusicKind::Artist => "artist",
        };
        Ok(HttpRequest::get(ctx.base_url, &format!("/ws/2/{entity}"))
            .query("query", lucene_escape(&q.query))
            .query("fmt", "json")
            .query("limit", q.limit.to_string()))
    }

    fn read_response(
        &self,
        q: &media::MusicQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<media::MusicSearch>, ProviderFailure> {
        let error = serde_json::from_slice::<ErrorReply>(&response.body)
            .ok()
            .map(|e| format!("MusicBrainz: {}", clip(&e.error)));
        if response.status == 503 {
            let message = error.unwrap_or_else(|| {
                "MusicBrainz throttled the request (503): at most 1 request/s".to_string()
            });
            let failure = response.failure(FailureClass::RateLimited, message);
            let wait = failure.retry_after.or(Some(Duration::from_secs(1)));
            return Err(failure.retry_after(wait));
        }
        response.check_status().map_err(|mut failure| {
            if let Some(message) = &error {
                failure.message.clone_from(message);
            }
            failure
        })?;
        let reply: Reply = response.json()?;
        let (items, field) = match q.kind {
            MusicKind::Track => (reply.recordings, "recordings"),
            MusicKind::Album => (reply.release_groups, "release-groups"),
            MusicKind::Artist => (reply.artists, "artists"),
        };
        let items = items.ok_or_else(|| {
            ProviderFailure::malformed(format!("MusicBrainz reply lacks `{field}`"))
                .status(response.status)
        })?;
        // An entity without its title (name) is left out.
        let results = items
            .into_iter()
            .filter_map(|item| item.into_result(q.kind))
            .take(usize::from(q.limit))
            .collect();
        Ok(Step::Done(MusicSearch {
            query: q.query.clone(),
            total: reply.count,
            results,
        }))
    }
}

#[derive(Deserialize)]
struct ErrorReply {
    error: String,
}

#[derive(Deserialize)]
struct Reply {
    count: Option<u64>,
    recordings: Option<Vec<Entity>>,
    #[serde(rename = "release-groups")]
    release_groups: Option<Vec<Entity>>,
    artists: Option<Vec<Entity>>,
}

/// A recording, release group or artist.
#[derive(Deserialize)]
struct Entity {
    id: String,
    title: Option<String>,
    name: Option<String>,
    length: Option<u64>,
    #[serde(rename = "first-release-date")]
    first_release_date: Option<String>,
    #[serde(rename = "artist-credit", default)]
    artist_credit: Vec<Credit>,
    #[serde(default)]
    releases: Vec<Release>,
    #[serde(default)]
    isrcs: Vec<String>,
}

#[derive(Deserialize)]
struct Credit {
    name: String,
    joinphrase: Option<String>,
}

#[derive(Deserialize)]
struct Release {
    title: String,
    date: Option<String>,
}

impl Entity {
    fn into_result(self, kind: MusicKind) -> Option<MusicResult> {
        let title = self.title.or(self.name).filter(|t| !t.trim().is_empty())?;
        let mut result = MusicResult::new(kind, title);
        let page = match kind {
            MusicKind::Track => "recording",
            MusicKind::Album => "release-group",
            MusicKind::Artist => "artist",
        };
        result.url = Some(format!("https://musicbrainz.org/{page}/{}", self.id));
        result.ids.mbid = Some(self.id);
        if kind == MusicKind::Artist {
            return Some(result);
        }
        // "Daft Punk feat. Romanthony": names joined by their join phrases;
        // no artist rather than a wrong one when a join phrase is missing.
        let last = self.artist_credit.len().saturating_sub(1);
        let artist: Option<String> = self
            .artist_credit
            .iter()
            .enumerate()
            .map(|(i, c)| match c.joinphrase.as_deref() {
                Some(join) => Some(format!("{}{join}", c.name)),
                None if i == last => Some(c.name.clone()),
                None => None,
            })
            .collect();
        result.artist = artist.filter(|a| !a.is_empty());
        let first_release = self.releases.into_iter().next();
        result.release_date = self
            .first_release_date
            .or_else(|| first_release.as_ref().and_then(|r| r.date.clone()))
            .as_deref()
            .and_then(iso_date);
        if kind == MusicKind::Track {
            result.album = first_release.map(|r| r.title);
            result.duration_ms = self.length;
            result.isrc = self.isrcs.into_iter().next();
        }
        Some(result)
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /ws/2/recording?query=one more time&fmt=json&limit=1`.
    Fixture {
        method: "GET",
        path: "/ws/2/recording",
        status: 200,
        body: include_str!("fixtures/musicbrainz/recordings.json"),
    },
    // `GET /ws/2/release-group?query=discovery&fmt=json&limit=1`.
    Fixture {
        method: "GET",
        path: "/ws/2/release-group",
        status: 200,
        body: include_str!("fixtures/musicbrainz/release_groups.json"),
    },
    // `GET /ws/2/artist?query=daft punk&fmt=json&limit=1`.
    Fixture {
        method: "GET",
        path: "/ws/2/artist",
        status: 200,
        body: include_str!("fixtures/musicbrainz/artists.json"),
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
            json!({"query": "one more time", "type": kind, "limit": 5}),
        )
    }

    #[test]
    fn requests_are_exact_and_escape_lucene_syntax() {
        for (kind, path) in [
            ("track", "recording"),
            ("album", "release-group"),
            ("artist", "artist"),
        ] {
            let req = MusicBrainz
                .request(&search(kind), &ctx(&MusicBrainz))
                .unwrap();
            assert_eq!(req.method, Method::GET);
            assert_eq!(req.url, format!("https://musicbrainz.org/ws/2/{path}"));
            assert_eq!(
                query(&req),
                [("query", "one more time"), ("fmt", "json"), ("limit", "5")]
            );
            assert!(req.headers.is_empty(), "the pipeline sends the User-Agent");
        }
        let r = request("music.search", json!({"query": "AC/DC: \"T.N.T\" (live)"}));
        let req = MusicBrainz.request(&r, &ctx(&MusicBrainz)).unwrap();
        assert_eq!(query(&req)[0].1, r#"AC\/DC\: \"T.N.T\" \(live\)"#);
    }

    #[test]
    fn fixtures_normalise_per_kind() {
        let Data::MusicSearch(s) = answer(
            &MusicBrainz,
            &search("track"),
            test_response(200, &[], fixture(&MusicBrainz, "/ws/2/recording")),
        ) else {
            panic!()
        };
        assert_eq!(s.total, Some(1893));
        let t = &s.results[0];
        assert_eq!(
            (t.kind, t.title.as_str()),
            (MusicKind::Track, "One More Time")
        );
        assert_eq!(t.artist.as_deref(), Some("Daft Punk feat. Romanthony"));
        assert_eq!(
            (t.album.as_deref(), t.duration_ms),
            (Some("Discovery"), Some(320357))
        );
        assert_eq!(
            (t.release_date.as_deref(), t.isrc.as_deref()),
            (Some("2000-11-13"), Some("GBDUW0000059"))
        );
        assert_eq!(
            t.ids.mbid.as_deref(),
            Some("5b2c8a31-c8e2-4c1e-9f2a-1f6c0a6c3b8e")
        );
        assert_eq!(
            t.url.as_deref(),
            Some("https://musicbrainz.org/recording/5b2c8a31-c8e2-4c1e-9f2a-1f6c0a6c3b8e")
        );

        let Data::MusicSearch(s) = answer(
            &MusicBrainz,
            &search("album"),
            test_response(200, &[], fixture(&MusicBrainz, "/ws/2/release-group")),
        ) else {
            panic!()
        };
        let a = &s.results[0];
        assert_eq!(
            (a.kind, a.title.as_str(), a.artist.as_deref()),
            (MusicKind::Album, "Discovery", Some("Daft Punk"))
        );
        assert_eq!(
            (a.release_date.as_deref(), a.album.as_ref(), a.duration_ms),
            (Some("2001-03-07"), None, None)
        );

        let Data::MusicSearch(s) = answer(
            &MusicBrainz,
            &search("artist"),
            test_response(200, &[], fixture(&MusicBrainz, "/ws/2/artist")),
        ) else {
            panic!()
        };
        let a = &s.results[0];
        assert_eq!(
            (a.kind, a.title.as_str(), a.artist.as_ref()),
            (MusicKind::Artist, "Daft Punk", None)
        );
        assert_eq!(
            a.url.as_deref(),
            Some("https://musicbrainz.org/artist/056e4f3e-d505-4dad-8ec1-d04f521cbb56")
        );
    }

    #[test]
    fn error_signals_are_classified() {
        let f = failure(
            &MusicBrainz,
            &search("track"),
            test_response(
                503,
                &[],
                r#"{"error":"Your requests are exceeding the allowable rate limit. Please see http://wiki.musicbrainz.org/XMLWebService for more information."}"#,
            ),
        );
        assert_eq!(
            (f.class, f.retry_after),
            (FailureClass::RateLimited, Some(Duration::from_secs(1)))
        );
        assert!(
            f.message
                .starts_with("MusicBrainz: Your requests are exceeding"),
            "{}",
            f.message
        );
        let f = failure(
            &MusicBrainz,
            &search("track"),
            test_response(503, &[("retry-after", "4")], ""),
        );
        assert_eq!(f.retry_after, Some(Duration::from_secs(4)));
        let f = failure(
            &MusicBrainz,
            &search("track"),
            test_response(400, &[], r#"{"error":"Invalid search query"}"#),
        );
        assert_eq!(
            (f.class, f.message.as_str()),
            (
                FailureClass::InvalidRequest,
                "MusicBrainz: Invalid search query"
            )
        );
        let f = failure(
            &MusicBrainz,
            &search("track"),
            test_response(403, &[], "<html>blocked user agent</html>"),
        );
        assert_eq!(f.class, FailureClass::Auth);
        let f = failure(&MusicBrainz, &search("track"), test_response(500, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        for (kind, body) in [
            ("track", fixture(&MusicBrainz, "/ws/2/recording")),
            ("album", fixture(&MusicBrainz, "/ws/2/release-group")),
            ("artist", fixture(&MusicBrainz, "/ws/2/artist")),
        ] {
            assert_truncations_are_malformed(&MusicBrainz, &search(kind), body);
        }
        let f = failure(
            &MusicBrainz,
            &search("artist"),
            test_response(200, &[], fixture(&MusicBrainz, "/ws/2/recording")),
        );
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
