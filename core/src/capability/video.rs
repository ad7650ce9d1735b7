//! One video: `video.details` and `video.transcript`. Requests (a video by
//! its provider's id or by a URL of that provider's site) and normalised
//! answers. `video.search` lives with the other media searches.
//!
//! An id alone says nothing about whose it is, so every provider of the
//! chain may be asked (one that does not know it answers `not_found`, and
//! the next is asked); a URL names its site, and only that site's provider
//! is asked (the others are skipped as unsupported, before any request).
//!
//! ```
//! use polyrelay::capability::Request;
//! use polyrelay::capability::video::VideoSite;
//! let Request::VideoDetails(q) = Request::parse("video.details", serde_json::json!({"id": "https://youtu.be/S9HdPi9Ikhk"})).unwrap() else { panic!() };
//! assert_eq!((q.video.id.as_str(), q.video.site), ("S9HdPi9Ikhk", Some(VideoSite::YouTube)));
//! assert!(Request::parse("video.details", serde_json::json!({"id": "https://example.com/v/1"})).is_err());
//! ```

use serde::{Deserialize, Serialize};

use super::language::Language;
use super::media::VideoResult;
use super::params::Params;
use super::query;
use super::schema::{Alternatives, Param, ParamKind, ParamTable};
use crate::echo::echo;
use crate::error::{Error, Result};

/// Longest `id` parameter, a URL or an id (Internet Archive identifiers,
/// the longest ids, have at most 100 characters; the rest is for URLs).
const MAX_ID_CHARS: u32 = 500;

/// The `id` parameter both capabilities take.
const ID: Param = Param::new(
    "id",
    ParamKind::String {
        max_chars: Some(MAX_ID_CHARS),
    },
    "The provider's video id (x7tgad0, S9HdPi9Ikhk, an Internet Archive identifier), \
     or a URL of a YouTube, Dailymotion or Internet Archive video page.",
    r#""x7tgad0""#,
)
.required();

/// A site whose video URLs `id` may be given as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoSite {
    /// youtube.com, youtu.be.
    YouTube,
    /// dailymotion.com, dai.ly.
    Dailymotion,
    /// archive.org.
    InternetArchive,
}

/// A video as asked for: its id, and its site when the caller gave a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct VideoRef {
    /// The provider's id of the video.
    pub id: String,
    /// The site the id belongs to; `None` for a bare id (any provider may
    /// know it).
    pub site: Option<VideoSite>,
}

impl VideoRef {
    /// Reads `id`: a bare id (letters, digits, `.`, `_`, `-`) or a video
    /// page URL of a known site.
    fn parse(field: &str, text: &str) -> Result<Self> {
        if text.starts_with("http://") || text.starts_with("https://") {
            return from_url(text).ok_or_else(|| {
                Error::invalid(
                    field,
                    format!(
                        "must be a video id or the URL of a YouTube, Dailymotion or Internet \
                         Archive video page, got {}",
                        echo(text)
                    ),
                )
            });
        }
        if !is_id(text) {
            return Err(Error::invalid(
                field,
                format!(
                    "must be a video id (letters, digits, '.', '_' or '-') or a video page \
                     URL, got {}",
                    echo(text)
                ),
            ));
        }
        Ok(Self {
            id: text.to_string(),
            site: None,
        })
    }

    /// Whether a provider of `site` may be asked for this video.
    pub fn fits(&self, site: VideoSite) -> bool {
        self.site.is_none_or(|s| s == site)
    }
}

fn is_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_ID_CHARS as usize
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The video a page URL of a known site names.
fn from_url(text: &str) -> Option<VideoRef> {
    let url = url::Url::parse(text).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let host = host
        .strip_prefix("www.")
        .or_else(|| host.strip_prefix("m."))
        .unwrap_or(&host);
    let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let (site, id) = match (host, segments.as_slice()) {
        ("youtube.com" | "music.youtube.com", ["watch"]) => (
            VideoSite::YouTube,
            url.query_pairs()
                .find(|(k, _)| k == "v")
                .map(|(_, v)| v.into_owned())?,
        ),
        ("youtube.com", ["shorts" | "embed" | "live" | "v", id, ..]) => {
            (VideoSite::YouTube, id.to_string())
        }
        ("youtu.be", [id, ..]) => (VideoSite::YouTube, id.to_string()),
        ("dailymotion.com", ["video", id, ..] | ["embed", "video", id, ..]) => {
            // Old page URLs append the title: `/video/x7tgad0_apollo-11`.
            let id = id.split('_').next().unwrap_or(id);
            (VideoSite::Dailymotion, id.to_string())
        }
        ("dai.ly", [id, ..]) => (VideoSite::Dailymotion, id.to_string()),
        ("archive.org", ["details" | "embed", id, ..]) => {
            (VideoSite::InternetArchive, id.to_string())
        }
        _ => return None,
    };
    is_id(&id).then_some(VideoRef {
        id,
        site: Some(site),
    })
}

/// Request of `video.details`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DetailsQuery {
    /// The video.
    pub video: VideoRef,
}

impl DetailsQuery {
    /// The parameters: `id`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[ID],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `id` (required).
    pub fn from_params(mut params: Params) -> Result<Self> {
        let text = params.str("id")?;
        params.finish()?;
        Ok(Self {
            video: VideoRef::parse("id", &text)?,
        })
    }
}

/// Request of `video.transcript`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TranscriptQuery {
    /// The video.
    pub video: VideoRef,
    /// The language preferred; the first track is taken when none matches.
    pub language: Option<Language>,
}

impl TranscriptQuery {
    /// The parameters: `id` and `language`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            ID,
            query::language_param(
                "language",
                "Preferred language (ISO 639-1); the first track when none matches.",
            ),
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `id` (required) and `language`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let text = params.str("id")?;
        let language = query::language(&mut params, "language")?;
        params.finish()?;
        Ok(Self {
            video: VideoRef::parse("id", &text)?,
            language,
        })
    }

    /// The track to take among `tracks`: one in the preferred language
    /// (an exact tag first, then one of the same primary language, `en`
    /// for `en-GB`), else the first. `None` only when there is none.
    pub fn pick<'a, T>(&self, tracks: &'a [T], language: impl Fn(&T) -> &str) -> Option<&'a T> {
        let primary = |tag: &str| {
            tag.split(['-', '_'])
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        self.language
            .as_ref()
            .and_then(|wanted| {
                let wanted = wanted.code();
                tracks
                    .iter()
                    .find(|t| language(t).eq_ignore_ascii_case(wanted))
                    .or_else(|| tracks.iter().find(|t| primary(language(t)) == wanted))
            })
            .or_else(|| tracks.first())
    }
}

/// One thumbnail image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thumbnail {
    /// Image URL.
    pub url: String,
    /// Width in pixels, when the provider says.
    pub width: Option<u32>,
    /// Height in pixels, when the provider says.
    pub height: Option<u32>,
}

/// Answer of `video.details`. Every field serialises, `null` when the
/// answering provider does not know it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoDetails {
    /// The provider's id of the video.
    pub id: String,
    /// Title.
    pub title: String,
    /// Watch page.
    pub url: String,
    /// Embeddable player URL.
    pub embed_url: Option<String>,
    /// Length, seconds.
    pub duration_s: Option<u64>,
    /// Channel, uploader or creator.
    pub channel: Option<String>,
    /// Publication time, ISO-8601 (a UTC timestamp when the provider gives
    /// a time, else a date).
    pub published_at: Option<String>,
    /// Thumbnails, smallest first when sizes are known.
    pub thumbnails: Vec<Thumbnail>,
    /// Description, plain text.
    pub description: Option<String>,
    /// View (or download) count.
    pub views: Option<u64>,
}

impl VideoDetails {
    /// The details a `video.search` result already holds, with the
    /// provider's sized `thumbnails` in place of the result's one.
    pub fn from_result(result: VideoResult, thumbnails: Vec<Thumbnail>) -> Self {
        Self {
            id: result.id,
            title: result.title,
            url: result.url,
            embed_url: result.embed_url,
            duration_s: result.duration_s,
            channel: result.channel,
            published_at: result.published_at,
            thumbnails,
            description: result.description,
            views: result.views,
        }
    }
}

/// One cue of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptSegment {
    /// Start, seconds from the video's start.
    pub start_s: f64,
    /// End, seconds from the video's start.
    pub end_s: f64,
    /// The cue's text, plain (markup removed, lines joined by `\n`).
    pub text: String,
}

/// Answer of `video.transcript`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The provider's id of the video.
    pub video_id: String,
    /// The track's language as the provider names it (`en`, `fr-FR`),
    /// when it says.
    pub language: Option<String>,
    /// The cues, in order.
    pub segments: Vec<TranscriptSegment>,
    /// The whole text: the cues' texts joined by spaces.
    pub text: String,
}

impl Transcript {
    /// A transcript of `segments`, its full text made from them.
    pub fn new(
        video_id: String,
        language: Option<String>,
        segments: Vec<TranscriptSegment>,
    ) -> Self {
        let text = segments
            .iter()
            .map(|s| s.text.replace('\n', " "))
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            video_id,
            language,
            segments,
            text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::Request;
    use serde_json::json;

    fn video(id: &str) -> VideoRef {
        match Request::parse("video.details", json!({ "id": id })).unwrap() {
            Request::VideoDetails(q) => q.video,
            other => panic!("{other:?}"),
        }
    }

    fn refused(capability: &str, params: serde_json::Value) -> String {
        match Request::parse(capability, params).unwrap_err() {
            Error::InvalidRequest { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ids_and_urls_of_each_site_are_read() {
        let site = |id: &str, site| VideoRef {
            id: id.to_string(),
            site: Some(site),
        };
        assert_eq!(
            video("x7tgad0"),
            VideoRef {
                id: "x7tgad0".into(),
                site: None
            }
        );
        assert_eq!(
            video(" Apollo11_launch-1969.1 ").id,
            "Apollo11_launch-1969.1"
        );
        for (url, id) in [
            (
                "https://www.youtube.com/watch?v=S9HdPi9Ikhk&t=42s",
                "S9HdPi9Ikhk",
            ),
            ("https://youtu.be/S9HdPi9Ikhk?si=x", "S9HdPi9Ikhk"),
            ("https://m.youtube.com/shorts/S9HdPi9Ikhk", "S9HdPi9Ikhk"),
            ("http://youtube.com/embed/S9HdPi9Ikhk", "S9HdPi9Ikhk"),
        ] {
            assert_eq!(video(url), site(id, VideoSite::YouTube), "{url}");
        }
        for url in [
            "https://www.dailymotion.com/video/x7tgad0",
            "https://www.dailymotion.com/video/x7tgad0_apollo-11-50-years",
            "https://dai.ly/x7tgad0",
            "https://www.dailymotion.com/embed/video/x7tgad0",
        ] {
            assert_eq!(video(url), site("x7tgad0", VideoSite::Dailymotion), "{url}");
        }
        assert_eq!(
            video("https://archive.org/details/Apollo11Launch1969"),
            site("Apollo11Launch1969", VideoSite::InternetArchive)
        );
        assert!(video("https://archive.org/details/x").fits(VideoSite::InternetArchive));
        assert!(!video("https://dai.ly/x7tgad0").fits(VideoSite::YouTube));
        assert!(video("x7tgad0").fits(VideoSite::YouTube));
    }

    #[test]
    fn bad_ids_are_refused_naming_the_field() {
        for bad in [
            json!({}),
            json!({"id": ""}),
            json!({"id": 42}),
            json!({"id": "a b"}),
            json!({"id": "../etc/passwd"}),
            json!({"id": "x".repeat(501)}),
            json!({"id": "https://example.com/watch?v=S9HdPi9Ikhk"}),
            json!({"id": "https://www.youtube.com/watch"}),
            json!({"id": "https://www.youtube.com/watch?v=a%2Fb"}),
            json!({"id": "ftp://archive.org/details/x"}),
        ] {
            assert_eq!(refused("video.details", bad.clone()), "id", "{bad}");
        }
        assert_eq!(
            refused(
                "video.transcript",
                json!({"id": "x7tgad0", "language": "Klingonese"})
            ),
            "language"
        );
        assert_eq!(
            refused("video.transcript", json!({"id": "x7tgad0", "lang": "en"})),
            "lang"
        );
    }

    #[test]
    fn the_preferred_language_is_picked_else_the_first() {
        let q = |language: Option<&str>| {
            let mut params = json!({"id": "x7tgad0"});
            if let Some(l) = language {
                params["language"] = json!(l);
            }
            match Request::parse("video.transcript", params).unwrap() {
                Request::VideoTranscript(q) => q,
                other => panic!("{other:?}"),
            }
        };
        let tracks = ["fr", "en-US", "EN", "de"];
        let pick = |language| q(language).pick(&tracks, |t| t).copied();
        assert_eq!(pick(Some("en")), Some("EN"));
        assert_eq!(pick(Some("de-AT")), Some("de"));
        assert_eq!(pick(Some("ja")), Some("fr"));
        assert_eq!(pick(None), Some("fr"));
        assert_eq!(q(Some("en")).pick(&["en-GB", "fr"], |t| t), Some(&"en-GB"));
        assert_eq!(q(None).pick::<&str>(&[], |t| t), None);
    }

    #[test]
    fn the_full_text_joins_the_cues() {
        let cue = |text: &str| TranscriptSegment {
            start_s: 0.0,
            end_s: 1.0,
            text: text.into(),
        };
        let t = Transcript::new("v".into(), None, vec![cue("Hello\nthere"), cue("world")]);
        assert_eq!(t.text, "Hello there world");
    }
}
