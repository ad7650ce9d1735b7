//! Dailymotion Data API: `video.search`, `video.details` and
//! `video.transcript` over public videos.
//!
//! Keyless for public reads. `/videos?search=` and `/video/{id}` with
//! `fields=` return exactly the fields normalised here (nested ones
//! flattened as `owner.screenname`). Times are Unix seconds;
//! `thumbnail_{N}_url` is N pixels high. Errors are
//! `{"error":{"code","message","type"}}` with a matching HTTP status (an
//! unknown video is a 404).
//!
//! Transcripts in two steps: `/video/{id}/subtitles` lists the tracks
//! (`language`, `url` of an SRT file on Dailymotion's static host), then
//! the chosen file. With the base URL pointed elsewhere (an emulator, a
//! relay) the file's path is asked of that base, so no request leaves it.

use serde::Deserialize;

use super::{captions, clip, utc_text};
use crate::capability::media::{VideoResult, VideoSearch};
use crate::capability::normalize::strip_html;
use crate::capability::video::{
    DetailsQuery, Thumbnail, Transcript, TranscriptQuery, VideoDetails, VideoRef, VideoSite,
};
use crate::capability::{marker, media};
use crate::error::{FailureClass, ProviderFailure};
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

/// The fields of one video: the search's and every thumbnail size.
const DETAIL_FIELDS: &str = "id,title,url,embed_url,duration,created_time,owner.screenname,\
                             description,views_total,thumbnail_url,thumbnail_120_url,\
                             thumbnail_240_url,thumbnail_360_url,thumbnail_480_url,\
                             thumbnail_720_url,thumbnail_1080_url";

crate::serves!(Dailymotion: VideoSearch, VideoDetails, VideoTranscript);

/// The id of `video` as Dailymotion writes ids (letters and digits), or
/// unsupported: not one of its videos, so nothing is sent.
fn video_id(video: &VideoRef) -> Result<&str, ProviderFailure> {
    if video.fits(VideoSite::Dailymotion) && video.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(&video.id)
    } else {
        Err(
            ProviderFailure::unsupported(format!("{:?} is not a Dailymotion video id", video.id))
                .not_sent(),
        )
    }
}

/// A non-2xx reply's failure, with Dailymotion's own message.
fn api_failure(response: &HttpResponse) -> Result<(), ProviderFailure> {
    response.check_status().map_err(|mut failure| {
        if let Ok(ErrorReply { error }) = serde_json::from_slice(&response.body) {
            failure.message = format!("Dailymotion {}: {}", error.kind, clip(&error.message));
        }
        failure
    })
}

impl Serves<marker::VideoDetails> for Dailymotion {
    fn build_request(
        &self,
        q: &DetailsQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let id = video_id(&q.video)?;
        Ok(HttpRequest::get(ctx.base_url, &format!("/video/{id}")).query("fields", DETAIL_FIELDS))
    }

    fn read_response(
        &self,
        _q: &DetailsQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<VideoDetails>, ProviderFailure> {
        api_failure(&response)?;
        let video: Video = response.json()?;
        let thumbnails = [
            (video.thumbnail_120_url.clone(), Some(120)),
            (video.thumbnail_240_url.clone(), Some(240)),
            (video.thumbnail_360_url.clone(), Some(360)),
            (video.thumbnail_480_url.clone(), Some(480)),
            (video.thumbnail_720_url.clone(), Some(720)),
            (video.thumbnail_1080_url.clone(), Some(1080)),
            (video.thumbnail_url.clone(), None),
        ]
        .into_iter()
        .filter_map(|(url, height)| {
            Some(Thumbnail {
                url: url.filter(|u| !u.is_empty())?,
                width: None,
                height,
            })
        })
        .collect();
        let result = video.into_result().ok_or_else(|| {
            ProviderFailure::malformed("Dailymotion video without `id`, `title` or `url`")
                .status(response.status)
        })?;
        Ok(Step::Done(VideoDetails::from_result(result, thumbnails)))
    }
}

impl Serves<marker::VideoTranscript> for Dailymotion {
    fn build_request(
        &self,
        q: &TranscriptQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let id = video_id(&q.video)?;
        Ok(
            HttpRequest::get(ctx.base_url, &format!("/video/{id}/subtitles"))
                .query("fields", "id,language,url"),
        )
    }

    fn read_response(
        &self,
        q: &TranscriptQuery,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Transcript>, ProviderFailure> {
        // Step 2: the caption file.
        if response.is_success() && !captions::is_json_object(&response) {
            return captions::transcript("Dailymotion", &q.video.id, &response);
        }
        // Step 1: the tracks.
        api_failure(&response)?;
        let reply: SubtitleList = response.json()?;
        let tracks: Vec<Subtitle> = reply
            .list
            .ok_or_else(|| {
                ProviderFailure::malformed("Dailymotion reply without `list`")
                    .status(response.status)
            })?
            .into_iter()
            .collect();
        let track = q
            .pick(&tracks, |s| s.language.as_deref().unwrap_or_default())
            .ok_or_else(|| {
                response.failure(
                    FailureClass::NotFound,
                    "Dailymotion has no subtitles for this video",
                )
            })?;
        // Only the chosen track's file is needed.
        let url = track
            .url
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                let index = tracks
                    .iter()
                    .position(|t| std::ptr::eq(t, track))
                    .unwrap_or_default();
                ProviderFailure::malformed("the subtitle track has no file URL")
                    .at_field(&format!("list[{index}].url"))
                    .status(response.status)
            })?;
        let file = file_request(ctx, url).ok_or_else(|| {
            ProviderFailure::malformed(format!(
                "Dailymotion subtitle `url` is not a file on its hosts: {}",
                clip(url)
            ))
            .status(response.status)
        })?;
        Ok(Step::Next(captions::noting_language(
            file,
            track.language.as_deref(),
        )))
    }
}

/// The request for a subtitle file at `url`, which must be on one of
/// Dailymotion's hosts; under the configured base URL when that is not
/// Dailymotion's own (see the module docs).
fn file_request(ctx: &CallContext<'_>, url: &str) -> Option<HttpRequest> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    let ours = host == "dmcdn.net"
        || host.ends_with(".dmcdn.net")
        || host == "dailymotion.com"
        || host.ends_with(".dailymotion.com");
    if !ours || !matches!(parsed.scheme(), "https" | "http") {
        return None;
    }
    let base = if ctx.base_url == INFO.base_url {
        format!("https://{host}")
    } else {
        ctx.base_url.to_string()
    };
    let mut request = HttpRequest::get(&base, parsed.path());
    for (name, value) in parsed.query_pairs() {
        request.query.push((
            std::borrow::Cow::Owned(name.into_owned()),
            value.into_owned(),
        ));
    }
    Some(request)
}

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
struct SubtitleList {
    list: Option<Vec<Subtitle>>,
}

#[derive(Deserialize)]
struct Subtitle {
    language: Option<String>,
    url: Option<String>,
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
    thumbnail_url: Option<String>,
    thumbnail_120_url: Option<String>,
    thumbnail_240_url: Option<String>,
    thumbnail_480_url: Option<String>,
    thumbnail_720_url: Option<String>,
    thumbnail_1080_url: Option<String>,
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
    // `GET /video/x7tgad0?fields=…`.
    Fixture {
        method: "GET",
        path: "/video/x7tgad0",
        status: 200,
        body: include_str!("fixtures/dailymotion/video.json"),
    },
    // `GET /video/x7tgad0/subtitles?fields=id,language,url`.
    Fixture {
        method: "GET",
        path: "/video/x7tgad0/subtitles",
        status: 200,
        body: include_str!("fixtures/dailymotion/subtitles.json"),
    },
    // The two files it lists, asked under the base URL (see the module docs).
    Fixture {
        method: "GET",
        path: "/static/video/451/610/35016154_subtitle_en.srt",
        status: 200,
        body: include_str!("fixtures/dailymotion/subtitle_en.srt"),
    },
    Fixture {
        method: "GET",
        path: "/static/video/451/610/35016154_subtitle_fr.srt",
        status: 200,
        body: include_str!("fixtures/dailymotion/subtitle_fr.srt"),
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

    fn details() -> Request {
        request("video.details", json!({"id": "https://dai.ly/x7tgad0"}))
    }

    fn transcript(language: Option<&str>) -> Request {
        let mut params = json!({"id": "x7tgad0"});
        if let Some(l) = language {
            params["language"] = json!(l);
        }
        request("video.transcript", params)
    }

    #[test]
    fn details_request_and_answer() {
        let req = Dailymotion.request(&details(), &ctx(&Dailymotion)).unwrap();
        assert_eq!(req.url, "https://api.dailymotion.com/video/x7tgad0");
        assert_eq!(query(&req), [("fields", DETAIL_FIELDS)]);
        let body = fixture(&Dailymotion, "/video/x7tgad0");
        let Data::VideoDetails(v) = answer(&Dailymotion, &details(), test_response(200, &[], body))
        else {
            panic!()
        };
        assert_eq!(
            (v.id.as_str(), v.title.as_str()),
            ("x7tgad0", "Apollo 11: the first steps on the Moon")
        );
        assert_eq!((v.duration_s, v.views), (Some(634), Some(48211)));
        assert_eq!(v.published_at.as_deref(), Some("2019-07-16T15:00:00Z"));
        assert_eq!(v.channel.as_deref(), Some("Euronews"));
        let sizes: Vec<_> = v.thumbnails.iter().map(|t| (t.height, t.width)).collect();
        assert_eq!(
            sizes,
            [
                (Some(120), None),
                (Some(240), None),
                (Some(360), None),
                (Some(480), None),
                (Some(720), None),
                (None, None)
            ]
        );
        assert_eq!(
            v.thumbnails[2].url,
            "https://s1.dmcdn.net/v/RJ8Mf1TbqRYo7wxuA/x360"
        );
        let missing = r#"{"error":{"code":404,"message":"Can not find the object \"x0\".","type":"not_found"}}"#;
        let f = failure(&Dailymotion, &details(), test_response(404, &[], missing));
        assert_eq!(f.class, FailureClass::NotFound);
        assert!(f.message.contains("Dailymotion not_found"), "{f}");
        assert_truncations_are_malformed(&Dailymotion, &details(), body);
    }

    #[test]
    fn other_sites_ids_are_not_sent() {
        for id in ["https://youtu.be/S9HdPi9Ikhk", "Apollo11.Highlights"] {
            let f = Dailymotion
                .request(
                    &request("video.details", json!({ "id": id })),
                    &ctx(&Dailymotion),
                )
                .unwrap_err();
            assert_eq!(
                (f.class, f.request_sent),
                (FailureClass::Unsupported, false),
                "{id}"
            );
        }
    }

    /// Runs the transcript's two steps on the fixtures, under `base`.
    fn transcript_steps(q: &Request, base: &'static str) -> (HttpRequest, Data) {
        let ctx = CallContext {
            base_url: base,
            ..ctx(&Dailymotion)
        };
        let list = Dailymotion.request(q, &ctx).unwrap();
        assert_eq!(list.url, format!("{base}/video/x7tgad0/subtitles"));
        assert_eq!(query(&list), [("fields", "id,language,url")]);
        let body = fixture(&Dailymotion, "/video/x7tgad0/subtitles");
        let Ok(Step::Next(file)) = Dailymotion.response(q, &ctx, test_response(200, &[], body))
        else {
            panic!()
        };
        let path = file
            .url
            .split_once("/static/")
            .unwrap()
            .1
            .split('#')
            .next()
            .unwrap();
        let mut reply = test_response(200, &[], fixture(&Dailymotion, &format!("/static/{path}")));
        reply.url = file.url.clone();
        let Ok(Step::Done(data)) = Dailymotion.response(q, &ctx, reply) else {
            panic!()
        };
        (file, data)
    }

    #[test]
    fn transcript_takes_the_preferred_track_in_two_steps() {
        let (file, Data::VideoTranscript(t)) =
            transcript_steps(&transcript(Some("en-GB")), "https://api.dailymotion.com")
        else {
            panic!()
        };
        assert_eq!(
            file.url,
            "https://static2.dmcdn.net/static/video/451/610/35016154_subtitle_en.srt#language=en"
        );
        assert_eq!(
            (t.video_id.as_str(), t.language.as_deref()),
            ("x7tgad0", Some("en"))
        );
        assert_eq!(t.segments.len(), 2);
        assert_eq!((t.segments[1].start_s, t.segments[1].end_s), (3.2, 6.8));
        assert_eq!(
            t.segments[1].text,
            "Neil Armstrong became\nthe first man to walk on its surface."
        );
        assert_eq!(
            t.text,
            "Fifty years ago, Apollo 11 landed on the Moon. Neil Armstrong became the first man to walk on its surface."
        );
        // No preference, or none listed: the first track. Under another base
        // URL, the file is asked of it.
        for language in [None, Some("ja")] {
            let (file, Data::VideoTranscript(t)) =
                transcript_steps(&transcript(language), "http://127.0.0.1:9/dailymotion")
            else {
                panic!()
            };
            assert_eq!(
                file.url,
                "http://127.0.0.1:9/dailymotion/static/video/451/610/35016154_subtitle_fr.srt#language=fr"
            );
            assert_eq!(t.language.as_deref(), Some("fr"));
        }
    }

    #[test]
    fn transcript_without_tracks_or_off_its_hosts() {
        let q = transcript(None);
        let none = r#"{"page":1,"limit":10,"explicit":false,"total":0,"has_more":false,"list":[]}"#;
        assert_eq!(
            failure(&Dailymotion, &q, test_response(200, &[], none)).class,
            FailureClass::NotFound
        );
        let elsewhere = r#"{"list":[{"language":"en","url":"https://evil.example/x.srt"}]}"#;
        let f = failure(&Dailymotion, &q, test_response(200, &[], elsewhere));
        assert_eq!(f.class, FailureClass::MalformedResponse);
        let refused =
            r#"{"error":{"code":403,"message":"Access forbidden","type":"access_forbidden"}}"#;
        assert_eq!(
            failure(&Dailymotion, &q, test_response(403, &[], refused)).class,
            FailureClass::Auth
        );
        assert_truncations_are_malformed(
            &Dailymotion,
            &q,
            fixture(&Dailymotion, "/video/x7tgad0/subtitles"),
        );
    }
}
