//! Dailymotion Data API: `video.search` over public videos.
//!
//! Keyless for public reads. `/videos?search=` with `fields=` returns
//! exactly the fields normalised here (nested ones flattened as
//! `owner.screenname`). Times are Unix seconds. Errors are
//! `{"error":{"code","message","type"}}` with a matching HTTP status.

use serde::Deserialize;

use super::{clip, utc_text};
use crate::capability::media::{VideoResult, VideoSearch};
use crate::capability::normalize::strip_html;
use crate::capability::{marker, media};
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Dailymotion (<https://developers.dailymotion.com/api/>): keyless search
/// of public videos with embeddable players.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dailymotion;

static INFO: ProviderInfo = ProviderInfo {
    id: "dailymotion",
    name: "Dailymotion",
    auth: Auth::Keyless,
    base_url: "https://api.dailymotion.com",
    docs_url: "https://developers.dailymotion.com/api/platform-api/reference/",
    terms: "Keyless for public data; no published limit. Dailymotion's API terms apply; \
            embed with its player.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

const FIELDS: &str = "id,title,url,embed_url,thumbnail_360_url,duration,created_time,\
                      owner.screenname,description,views_total";

impl Provider for Dailymotion {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Dailymotion: VideoSearch);

impl Serves<marker::VideoSearch> for Dailymotion {
    fn build_request(
        &self,
        q: &media::TextQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(HttpRequest::get(ctx.base_url, "/videos")
            .query("search", q.query.as_str())
            .query("fields", FIELDS)
            .query("sort", "relevance")
            .query("limit", q.limit.to_string())
            .query("page", "1"))
    }

    fn read_response(
        &self,
        q: &media::TextQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<media::VideoSearch>, ProviderFailure> {
        response.check_status().map_err(|mut failure| {
            if let Ok(ErrorReply { error }) = serde_json::from_slice(&response.body) {
                failure.message = format!("Dailymotion {}: {}", error.kind, clip(&error.message));
            }
            failure
        })?;
        let reply: Reply = response.json()?;
        // A `null` list reads as empty: the reply itself is then broken.
        let list = reply.list.ok_or_else(|| {
            ProviderFailure::malformed("Dailymotion reply without `list`").status(response.status)
        })?;
        let results = list
            .into_iter()
            // A video without id, title or link is left out, not the reply.
            .filter_map(Video::into_result)
            .take(usize::from(q.limit))
            .collect();
        Ok(Step::Done(VideoSearch {
            query: q.query.clone(),
            total: reply.total,
            results,
        }))
    }
}

#[derive(Deserialize)]
struct ErrorReply {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct Reply {
    total: Option<u64>,
    list: Option<Vec<Video>>,
}

#[derive(Deserialize)]
struct Video {
    id: Option<String>,
    title: Option<String>,
    url: Option<String>,
    embed_url: Option<String>,
    thumbnail_360_url: Option<String>,
    duration: Option<u64>,
    created_time: Option<i64>,
    #[serde(rename = "owner.screenname")]
    owner: Option<String>,
    description: Option<String>,
    views_total: Option<u64>,
}

impl Video {
    fn into_result(self) -> Option<VideoResult> {
        Some(VideoResult {
            id: self.id?,
            title: self.title?,
            url: self.url?,
            embed_url: self.embed_url,
            thumbnail_url: self.thumbnail_360_url,
            duration_s: self.duration,
            published_at: self
                .created_time
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(utc_text),
            channel: self.owner,
            description: self
                .description
                .as_deref()
                .map(strip_html)
                .filter(|d| !d.is_empty()),
            views: self.views_total,
            license: None,
        })
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /videos?search=apollo 11&fields=…&sort=relevance&limit=2&page=1`.
    Fixture {
        method: "GET",
        path: "/videos",
        status: 200,
        body: include_str!("fixtures/dailymotion/videos.json"),
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

    fn apollo() -> Request {
        request("video.search", json!({"query": "apollo 11", "limit": 2}))
    }

    #[test]
    fn request_is_exact() {
        let req = Dailymotion.request(&apollo(), &ctx(&Dailymotion)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.dailymotion.com/videos");
        assert_eq!(
            query(&req),
            [
                ("search", "apollo 11"),
                ("fields", FIELDS),
                ("sort", "relevance"),
                ("limit", "2"),
                ("page", "1")
            ]
        );
        assert!(req.headers.is_empty());
    }

    #[test]
    fn fixture_normalises() {
        let body = fixture(&Dailymotion, "/videos");
        let Data::VideoSearch(s) = answer(&Dailymotion, &apollo(), test_response(200, &[], body))
        else {
            panic!()
        };
        assert_eq!((s.total, s.results.len()), (Some(1384), 2));
        let v = &s.results[0];
        assert_eq!(
            (v.id.as_str(), v.url.as_str()),
            ("x7tgad0", "https://www.dailymotion.com/video/x7tgad0")
        );
        assert_eq!(
            v.embed_url.as_deref(),
            Some("https://www.dailymotion.com/embed/video/x7tgad0")
        );
        assert_eq!((v.duration_s, v.views), (Some(634), Some(48211)));
        assert_eq!(v.published_at.as_deref(), Some("2019-07-16T15:00:00Z"));
        assert_eq!(v.channel.as_deref(), Some("Euronews"));
        assert_eq!(
            v.description.as_deref(),
            Some("Fifty years ago, Neil Armstrong became the first man to walk on the Moon.")
        );
        let second = &s.results[1];
        assert_eq!(
            (second.thumbnail_url.as_ref(), second.description.as_ref()),
            (None, None)
        );
    }

    #[test]
    fn error_signals_are_classified() {
        let bad = r#"{"error":{"code":400,"message":"`limit' parameter must be between 1 and 100.","type":"invalid_parameter","error_data":{"reason":"invalid_parameter"}}}"#;
        let f = failure(&Dailymotion, &apollo(), test_response(400, &[], bad));
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(
            f.message,
            "Dailymotion invalid_parameter: `limit' parameter must be between 1 and 100."
        );
        let throttled = r#"{"error":{"code":429,"message":"Rate limit exceeded","type":"rate_limit_exceeded"}}"#;
        let f = failure(
            &Dailymotion,
            &apollo(),
            test_response(429, &[("retry-after", "30")], throttled),
        );
        assert_eq!(
            (f.class, f.retry_after),
            (
                FailureClass::RateLimited,
                Some(std::time::Duration::from_secs(30))
            )
        );
        let f = failure(
            &Dailymotion,
            &apollo(),
            test_response(
                403,
                &[],
                r#"{"error":{"code":403,"message":"Access forbidden","type":"access_forbidden"}}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::Auth);
        let f = failure(&Dailymotion, &apollo(), test_response(500, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        assert_truncations_are_malformed(&Dailymotion, &apollo(), fixture(&Dailymotion, "/videos"));
    }
}
