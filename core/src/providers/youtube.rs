//! YouTube Data API v3: `video.search` and `video.details`.
//!
//! Needs a key (`YOUTUBE_API_KEY`, sent as the `x-goog-api-key` header).
//! Two requests: `search.list` finds video ids (it has its own bucket of
//! 100 calls a day), then `videos.list` for those ids, which adds the
//! durations, view counts and licenses a search result lacks (and draws on
//! the separate 10,000-unit bucket). Titles come HTML-escaped. Errors use
//! Google's envelope: 403 `quotaExceeded` is the daily quota, which resets
//! at midnight Pacific time.
//!
//! `video.details` is one `videos.list` call (1 unit of the 10,000), which
//! this client still counts in the provider's one daily quota. Captions
//! are not offered: `captions.download` needs the owner's OAuth consent.

use serde::Deserialize;

use super::google_books::google_api_failure;
use super::utc_text;
use crate::capability::media::{VideoResult, VideoSearch};
use crate::capability::normalize::{lenient_u64, strip_html};
use crate::capability::video::{self, DetailsQuery, VideoDetails, VideoSite};
use crate::capability::{marker, media};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Quota, Serves, Step,
};

/// YouTube Data API v3 (<https://developers.google.com/youtube/v3>).
#[derive(Debug, Clone, Copy, Default)]
pub struct YouTube;

static INFO: ProviderInfo = ProviderInfo {
    id: "youtube",
    name: "YouTube Data API",
    auth: Auth::Key {
        env: "YOUTUBE_API_KEY",
        placement: KeyPlacement::Header {
            name: "x-goog-api-key",
            prefix: "",
        },
        optional: false,
    },
    base_url: "https://www.googleapis.com",
    docs_url: "https://developers.google.com/youtube/v3/docs/search/list",
    terms: "Free key; search.list is limited to 100 calls/day (reset at midnight Pacific). \
            YouTube API Services Terms apply: show YouTube branding and link to the videos.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: Some(Quota::per_day(100)),
};

impl Provider for YouTube {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(YouTube: VideoSearch, VideoDetails);

impl Serves<marker::VideoDetails> for YouTube {
    fn build_request(
        &self,
        q: &DetailsQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        // YouTube ids are 11 characters of the URL-safe base64 alphabet;
        // anything else is another site's, and costs no quota.
        let id = &q.video.id;
        let fits = q.video.fits(VideoSite::YouTube)
            && id.len() == 11
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !fits {
            return Err(
                ProviderFailure::unsupported(format!("{id:?} is not a YouTube video id"))
                    .not_sent(),
            );
        }
        Ok(HttpRequest::get(ctx.base_url, "/youtube/v3/videos")
            .query("part", "snippet,contentDetails,statistics")
            .query("id", id.as_str()))
    }

    fn read_response(
        &self,
        _q: &DetailsQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<VideoDetails>, ProviderFailure> {
        if !response.is_success() {
            return Err(google_api_failure(&response, "YouTube"));
        }
        let reply: Reply = response.json()?;
        let item = reply
            .items
            .ok_or_else(|| {
                ProviderFailure::malformed("YouTube reply lacks `items`").status(response.status)
            })?
            .into_iter()
            .next()
            // An unknown or private video is an empty list.
            .ok_or_else(|| response.failure(FailureClass::NotFound, "YouTube has no such video"))?;
        let thumbnails = item
            .snippet
            .as_ref()
            .and_then(|s| s.thumbnails.as_ref())
            .map(Thumbnails::all)
            .unwrap_or_default();
        let result = item.into_result().ok_or_else(|| {
            ProviderFailure::malformed("YouTube video without `id` or `snippet`")
                .status(response.status)
        })?;
        Ok(Step::Done(VideoDetails::from_result(result, thumbnails)))
    }
}

impl Serves<marker::VideoSearch> for YouTube {
    fn build_request(
        &self,
        q: &media::TextQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(HttpRequest::get(ctx.base_url, "/youtube/v3/search")
            .query("part", "snippet")
            .query("q", q.query.as_str())
            .query("type", "video")
            .query("maxResults", q.limit.to_string()))
    }

    fn read_response(
        &self,
        q: &media::TextQuery,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<media::VideoSearch>, ProviderFailure> {
        if !response.is_success() {
            return Err(google_api_failure(&response, "YouTube"));
        }
        let reply: Reply = response.json()?;
        let items = reply.items.ok_or_else(|| {
            ProviderFailure::malformed("YouTube reply lacks `items`").status(response.status)
        })?;
        let total = reply.page_info.and_then(|p| p.total_results);
        match reply.kind.as_str() {
            // Step 1: the ids, in relevance order; fetch their details.
            "youtube#searchListResponse" => {
                // No items on the first page while the total says there are
                // some: the list was lost, not the matches.
                if items.is_empty() && total.is_some_and(|n| n > 0) {
                    return Err(ProviderFailure::malformed(format!(
                        "YouTube search reply has empty `items` but {} totalResults",
                        total.unwrap_or_default()
                    ))
                    .status(response.status));
                }
                let ids: Vec<String> = items
                    .into_iter()
                    .filter_map(|item| match item.id {
                        ItemId::Search { video_id } => video_id,
                        ItemId::Video(_) => None,
                    })
                    .filter(|id| {
                        !id.is_empty()
                            && id
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    })
                    .collect();
                if ids.is_empty() {
                    return Ok(Step::Done(VideoSearch {
                        query: q.query.clone(),
                        total,
                        results: Vec::new(),
                    }));
                }
                Ok(Step::Next(
                    HttpRequest::get(ctx.base_url, "/youtube/v3/videos")
                        .query("part", "snippet,contentDetails,statistics,status")
                        .query("id", ids.join(",")),
                ))
            }
            // Step 2: the videos, in the order the ids were asked for.
            "youtube#videoListResponse" => {
                let results = items
                    .into_iter()
                    .take(usize::from(q.limit))
                    .filter_map(Item::into_result)
                    .collect();
                // videos.list does not repeat the search's total.
                Ok(Step::Done(VideoSearch {
                    query: q.query.clone(),
                    total: None,
                    results,
                }))
            }
            other => Err(ProviderFailure::malformed(format!(
                "YouTube reply of unexpected kind {other:?}"
            ))
            .status(response.status)),
        }
    }
}

/// Seconds in an ISO-8601 duration as YouTube writes them (`PT1H2M3S`,
/// `P1DT2H`, `P0D` for live streams).
fn iso_duration_seconds(text: &str) -> Option<u64> {
    let rest = text.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((days, time)) => (days, time),
        None => (rest, ""),
    };
    let mut seconds = 0u64;
    for (part, units) in [
        (days, &[('D', 86_400)][..]),
        (time, &[('H', 3_600), ('M', 60), ('S', 1)][..]),
    ] {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let factor = units.iter().find(|(unit, _)| *unit == c)?.1;
            let value: u64 = number.parse().ok()?;
            seconds = seconds.checked_add(value.checked_mul(factor)?)?;
            number.clear();
        }
        if !number.is_empty() {
            return None;
        }
    }
    Some(seconds)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    kind: String,
    items: Option<Vec<Item>>,
    page_info: Option<PageInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    total_results: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    id: ItemId,
    snippet: Option<Snippet>,
    content_details: Option<ContentDetails>,
    statistics: Option<Statistics>,
    status: Option<Status>,
}

/// A search result's id is an object; a video's is the id itself.
#[derive(Deserialize)]
#[serde(untagged)]
enum ItemId {
    Video(String),
    Search {
        #[serde(rename = "videoId")]
        video_id: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Snippet {
    published_at: Option<String>,
    title: String,
    description: Option<String>,
    channel_title: Option<String>,
    thumbnails: Option<Thumbnails>,
}

#[derive(Deserialize)]
struct Thumbnails {
    high: Option<Thumbnail>,
    medium: Option<Thumbnail>,
    default: Option<Thumbnail>,
    standard: Option<Thumbnail>,
    maxres: Option<Thumbnail>,
}

impl Thumbnails {
    /// Every size given, smallest first.
    fn all(&self) -> Vec<video::Thumbnail> {
        [
            &self.default,
            &self.medium,
            &self.high,
            &self.standard,
            &self.maxres,
        ]
        .into_iter()
        .flatten()
        .map(|t| video::Thumbnail {
            url: t.url.clone(),
            width: t.width,
            height: t.height,
        })
        .collect()
    }
}

#[derive(Deserialize)]
struct Thumbnail {
    url: String,
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(Deserialize)]
struct ContentDetails {
    duration: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statistics {
    #[serde(default, deserialize_with = "lenient_u64")]
    view_count: Option<u64>,
}

#[derive(Deserialize)]
struct Status {
    license: Option<String>,
}

impl Item {
    fn into_result(self) -> Option<VideoResult> {
        let ItemId::Video(id) = self.id else {
            return None;
        };
        let snippet = self.snippet?;
        Some(VideoResult {
            url: format!("https://www.youtube.com/watch?v={id}"),
            embed_url: Some(format!("https://www.youtube.com/embed/{id}")),
            thumbnail_url: snippet
                .thumbnails
                .and_then(|t| t.high.or(t.medium).or(t.default))
                .map(|t| t.url),
            duration_s: self
                .content_details
                .and_then(|c| c.duration)
                .and_then(|d| iso_duration_seconds(&d)),
            published_at: snippet
                .published_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| utc_text(t.with_timezone(&chrono::Utc))),
            channel: snippet.channel_title,
            description: snippet
                .description
                .as_deref()
                .map(strip_html)
                .filter(|d| !d.is_empty()),
            views: self.statistics.and_then(|s| s.view_count),
            license: self.status.and_then(|s| s.license),
            title: strip_html(&snippet.title),
            id,
        })
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /youtube/v3/search?part=snippet&q=apollo 11&type=video&maxResults=2`.
    Fixture {
        method: "GET",
        path: "/youtube/v3/search",
        status: 200,
        body: include_str!("fixtures/youtube/search.json"),
    },
    // `GET /youtube/v3/videos?part=snippet,contentDetails,statistics,status&id=S9HdPi9Ikhk,cwZb2mqId0A`
    // (abridged).
    Fixture {
        method: "GET",
        path: "/youtube/v3/videos",
        status: 200,
        body: include_str!("fixtures/youtube/videos.json"),
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
    fn search_request_is_exact_and_carries_no_key() {
        let req = YouTube.request(&apollo(), &ctx(&YouTube)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://www.googleapis.com/youtube/v3/search");
        assert_eq!(
            query(&req),
            [
                ("part", "snippet"),
                ("q", "apollo 11"),
                ("type", "video"),
                ("maxResults", "2")
            ]
        );
        assert!(req.headers.is_empty());
        assert_eq!(
            YouTube.info().auth,
            Auth::Key {
                env: "YOUTUBE_API_KEY",
                placement: KeyPlacement::Header {
                    name: "x-goog-api-key",
                    prefix: ""
                },
                optional: false
            }
        );
    }

    #[test]
    fn search_ids_become_the_videos_request() {
        let body = fixture(&YouTube, "/youtube/v3/search");
        let step = YouTube
            .response(&apollo(), &ctx(&YouTube), test_response(200, &[], body))
            .unwrap();
        let Step::Next(next) = step else {
            panic!("expected videos.list, got {step:?}")
        };
        assert_eq!(next.url, "https://www.googleapis.com/youtube/v3/videos");
        assert_eq!(
            query(&next),
            [
                ("part", "snippet,contentDetails,statistics,status"),
                ("id", "S9HdPi9Ikhk,cwZb2mqId0A")
            ]
        );
        let empty = r#"{"kind":"youtube#searchListResponse","pageInfo":{"totalResults":0,"resultsPerPage":0},"items":[]}"#;
        let Data::VideoSearch(s) = answer(&YouTube, &apollo(), test_response(200, &[], empty))
        else {
            panic!()
        };
        assert_eq!((s.total, s.results.len()), (Some(0), 0));
    }

    #[test]
    fn videos_normalise() {
        let body = fixture(&YouTube, "/youtube/v3/videos");
        let Data::VideoSearch(s) = answer(&YouTube, &apollo(), test_response(200, &[], body))
        else {
            panic!()
        };
        assert_eq!(s.results.len(), 2);
        let v = &s.results[0];
        assert_eq!(
            (v.id.as_str(), v.title.as_str()),
            ("S9HdPi9Ikhk", "Apollo 11 Launch & Landing")
        );
        assert_eq!(v.url, "https://www.youtube.com/watch?v=S9HdPi9Ikhk");
        assert_eq!(
            v.embed_url.as_deref(),
            Some("https://www.youtube.com/embed/S9HdPi9Ikhk")
        );
        assert_eq!(
            v.thumbnail_url.as_deref(),
            Some("https://i.ytimg.com/vi/S9HdPi9Ikhk/hqdefault.jpg")
        );
        assert_eq!((v.duration_s, v.views), (Some(3723), Some(2_457_812)));
        assert_eq!(v.published_at.as_deref(), Some("2019-07-16T13:00:10Z"));
        assert_eq!(
            (v.channel.as_deref(), v.license.as_deref()),
            (Some("NASA"), Some("creativeCommon"))
        );
        let ted = &s.results[1];
        assert_eq!(
            (ted.duration_s, ted.description.as_ref()),
            (Some(311), None)
        );
        assert!(ted
            .thumbnail_url
            .as_deref()
            .unwrap()
            .ends_with("mqdefault.jpg"));
    }

    #[test]
    fn details_are_one_videos_call() {
        let q = request(
            "video.details",
            json!({"id": "https://youtu.be/S9HdPi9Ikhk"}),
        );
        let req = YouTube.request(&q, &ctx(&YouTube)).unwrap();
        assert_eq!(req.url, "https://www.googleapis.com/youtube/v3/videos");
        assert_eq!(
            query(&req),
            [
                ("part", "snippet,contentDetails,statistics"),
                ("id", "S9HdPi9Ikhk")
            ]
        );
        let body = fixture(&YouTube, "/youtube/v3/videos");
        let Data::VideoDetails(v) = answer(&YouTube, &q, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!(
            (v.id.as_str(), v.title.as_str()),
            ("S9HdPi9Ikhk", "Apollo 11 Launch & Landing")
        );
        assert_eq!((v.duration_s, v.views), (Some(3723), Some(2_457_812)));
        assert_eq!(v.published_at.as_deref(), Some("2019-07-16T13:00:10Z"));
        assert_eq!(v.channel.as_deref(), Some("NASA"));
        let sizes: Vec<_> = v
            .thumbnails
            .iter()
            .map(|t| (t.url.as_str(), t.width, t.height))
            .collect();
        assert_eq!(
            sizes,
            [
                (
                    "https://i.ytimg.com/vi/S9HdPi9Ikhk/default.jpg",
                    Some(120),
                    Some(90)
                ),
                (
                    "https://i.ytimg.com/vi/S9HdPi9Ikhk/hqdefault.jpg",
                    Some(480),
                    Some(360)
                ),
            ]
        );
        let empty = r#"{"kind":"youtube#videoListResponse","items":[],"pageInfo":{"totalResults":0,"resultsPerPage":0}}"#;
        assert_eq!(
            failure(&YouTube, &q, test_response(200, &[], empty)).class,
            FailureClass::NotFound
        );
        assert_truncations_are_malformed(&YouTube, &q, body);
        for other in ["x7tgad0", "https://dai.ly/x7tgad0"] {
            let f = YouTube
                .request(
                    &request("video.details", json!({ "id": other })),
                    &ctx(&YouTube),
                )
                .unwrap_err();
            assert_eq!(
                (f.class, f.request_sent),
                (FailureClass::Unsupported, false),
                "{other}"
            );
        }
    }

    #[test]
    fn iso_durations_parse() {
        assert_eq!(iso_duration_seconds("PT15M51S"), Some(951));
        assert_eq!(iso_duration_seconds("P1DT2H"), Some(93_600));
        assert_eq!(iso_duration_seconds("P0D"), Some(0));
        assert_eq!(iso_duration_seconds("PT5X"), None);
        assert_eq!(iso_duration_seconds("15:51"), None);
        assert_eq!(iso_duration_seconds("PT99999999999999999999S"), None);
    }

    #[test]
    fn google_errors_are_classified() {
        let quota = r#"{"error":{"code":403,"message":"The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.","errors":[{"message":"The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.","domain":"youtube.quota","reason":"quotaExceeded"}]}}"#;
        let f = failure(&YouTube, &apollo(), test_response(403, &[], quota));
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        assert_eq!(f.reset_at, Some("2025-01-16T08:00:00Z".parse().unwrap()));
        let bad_key = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","errors":[{"message":"API key not valid. Please pass a valid API key.","domain":"global","reason":"badRequest"}],"status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(
            failure(&YouTube, &apollo(), test_response(400, &[], bad_key)).class,
            FailureClass::Auth
        );
        let disabled = r#"{"error":{"code":403,"message":"YouTube Data API v3 has not been used in project 1234 before or it is disabled.","errors":[{"message":"...","domain":"usageLimits","reason":"accessNotConfigured"}],"status":"PERMISSION_DENIED"}}"#;
        assert_eq!(
            failure(&YouTube, &apollo(), test_response(403, &[], disabled)).class,
            FailureClass::Auth
        );
        let burst = r#"{"error":{"code":403,"message":"Rate Limit Exceeded","errors":[{"reason":"rateLimitExceeded"}]}}"#;
        assert_eq!(
            failure(&YouTube, &apollo(), test_response(403, &[], burst)).class,
            FailureClass::RateLimited
        );
        assert_eq!(
            failure(&YouTube, &apollo(), test_response(500, &[], "")).class,
            FailureClass::Transient
        );
    }

    #[test]
    fn malformed_bodies_never_panic() {
        for path in ["/youtube/v3/search", "/youtube/v3/videos"] {
            assert_truncations_are_malformed(&YouTube, &apollo(), fixture(&YouTube, path));
        }
        let f = failure(
            &YouTube,
            &apollo(),
            test_response(
                200,
                &[],
                r#"{"kind":"youtube#channelListResponse","items":[]}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
