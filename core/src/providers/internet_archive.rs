//! Internet Archive advanced search: `video.search` over the Archive's
//! moving-image collections.
//!
//! Keyless, no published limit. `/advancedsearch.php` is a Solr front end:
//! `q` is Solr syntax (the caller's text is kept in parentheses, its own
//! parentheses dropped), `fl[]` names the fields, `output=json`. Field
//! values come as a string or a list of strings depending on the item.
//! Runtimes are free text (`00:05:23`, `5:23`, `23 minutes`).
//!
//! `video.details` and `video.transcript` read an item's metadata
//! (`/metadata/{identifier}`): `metadata` (fields again a string or a list),
//! and `files`, whose `length` (seconds, or a clock) gives the duration and
//! whose `.srt` and `.vtt` files are the item's captions, fetched from
//! `/download/{identifier}/{name}`; a name's last tag before the extension
//! (`film.en.srt`) is taken as its language. An unknown identifier answers
//! `{}`.

use serde::Deserialize;

use super::{captions, clip};
use crate::capability::media::{VideoResult, VideoSearch};
use crate::capability::normalize::{iso_date, strip_html};
use crate::capability::video::{
    DetailsQuery, Thumbnail, Transcript, TranscriptQuery, VideoDetails, VideoRef, VideoSite,
};
use crate::capability::{marker, media};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Internet Archive (<https://archive.org/advancedsearch.php>): millions of
/// public films, broadcasts and home movies.
#[derive(Debug, Clone, Copy, Default)]
pub struct InternetArchive;

static INFO: ProviderInfo = ProviderInfo {
    id: "internet-archive",
    name: "Internet Archive",
    auth: Auth::Keyless,
    base_url: "https://archive.org",
    docs_url: "https://archive.org/developers/index-apis.html",
    terms: "Keyless, no published limit. Each item carries its own license (see `license`); \
            many are public domain.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

const FIELDS: [&str; 9] = [
    "identifier",
    "title",
    "description",
    "creator",
    "date",
    "publicdate",
    "downloads",
    "runtime",
    "licenseurl",
];

impl Provider for InternetArchive {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(InternetArchive: VideoSearch, VideoDetails, VideoTranscript);

/// The metadata request of `video`, or unsupported when it names another
/// site's video.
fn metadata_request(
    ctx: &CallContext<'_>,
    video: &VideoRef,
) -> Result<HttpRequest, ProviderFailure> {
    if !video.fits(VideoSite::InternetArchive) {
        return Err(ProviderFailure::unsupported("not an Internet Archive item").not_sent());
    }
    // The capability's id check leaves only letters, digits, `.`, `_`, `-`.
    Ok(HttpRequest::get(
        ctx.base_url,
        &format!("/metadata/{}", video.id),
    ))
}

/// An item's metadata reply: its identifier, its metadata and its files.
/// `{}` (an unknown identifier) and items that are not films are
/// `not_found`.
fn read_item(
    response: &HttpResponse,
) -> Result<(String, ItemMetadata, Vec<ItemFile>), ProviderFailure> {
    response.check_status()?;
    let item: Item = response.json()?;
    let metadata = item.metadata.ok_or_else(|| {
        response.failure(FailureClass::NotFound, "Internet Archive has no such item")
    })?;
    if let Some(kind) = metadata.mediatype.clone().and_then(Text::first) {
        if kind != "movies" {
            return Err(response.failure(
                FailureClass::NotFound,
                format!("Internet Archive item is not a film but {}", clip(&kind)),
            ));
        }
    }
    let identifier = metadata
        .identifier
        .clone()
        .and_then(Text::first)
        .ok_or_else(|| {
            ProviderFailure::malformed("Internet Archive item without `metadata.identifier`")
                .status(response.status)
        })?;
    Ok((identifier, metadata, item.files.unwrap_or_default()))
}

impl Serves<marker::VideoDetails> for InternetArchive {
    fn build_request(
        &self,
        q: &DetailsQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        metadata_request(ctx, &q.video)
    }

    fn read_response(
        &self,
        _q: &DetailsQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<VideoDetails>, ProviderFailure> {
        let (id, metadata, files) = read_item(&response)?;
        let title = metadata.title.and_then(Text::first).ok_or_else(|| {
            ProviderFailure::malformed("Internet Archive item without `metadata.title`")
                .status(response.status)
        })?;
        // The original's length, else any file's, else the stated runtime.
        let duration_s = files
            .iter()
            .filter(|f| f.source.as_deref() == Some("original"))
            .chain(files.iter())
            .find_map(|f| f.length.as_deref().and_then(length_seconds))
            .or_else(|| {
                metadata
                    .runtime
                    .and_then(Text::first)
                    .and_then(|r| runtime_seconds(&r))
            });
        Ok(Step::Done(VideoDetails {
            url: format!("https://archive.org/details/{id}"),
            embed_url: Some(format!("https://archive.org/embed/{id}")),
            duration_s,
            channel: metadata.creator.and_then(Text::first),
            // The item's own publication date; when it has none, the day
            // it was put on the Archive.
            published_at: published(
                metadata
                    .date
                    .and_then(Text::first)
                    .or(metadata.publicdate.and_then(Text::first)),
            ),
            // The item's image service: its size is not stated.
            thumbnails: vec![Thumbnail {
                url: format!("https://archive.org/services/img/{id}"),
                width: None,
                height: None,
            }],
            description: metadata
                .description
                .and_then(Text::first)
                .map(|d| strip_html(&d))
                .filter(|d| !d.is_empty()),
            views: None,
            title,
            id,
        }))
    }
}

impl Serves<marker::VideoTranscript> for InternetArchive {
    fn build_request(
        &self,
        q: &TranscriptQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        metadata_request(ctx, &q.video)
    }

    fn read_response(
        &self,
        q: &TranscriptQuery,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Transcript>, ProviderFailure> {
        // Step 2: the caption file.
        if response.is_success() && !captions::is_json_object(&response) {
            return captions::transcript("Internet Archive", &q.video.id, &response);
        }
        // Step 1: the item's files.
        let (id, _, files) = read_item(&response)?;
        let tracks: Vec<(String, String)> = files
            .into_iter()
            .filter_map(|f| f.name)
            .filter(|name| {
                let lower = name.to_ascii_lowercase();
                lower.ends_with(".srt") || lower.ends_with(".vtt")
            })
            .map(|name| {
                let language = file_language(&name).unwrap_or_default().to_string();
                (name, language)
            })
            .collect();
        let (name, language) = q.pick(&tracks, |(_, l)| l).ok_or_else(|| {
            response.failure(
                FailureClass::NotFound,
                "Internet Archive item has no caption file",
            )
        })?;
        let path = format!("/download/{id}/{}", captions::encode_path(name));
        Ok(Step::Next(captions::noting_language(
            HttpRequest::get(ctx.base_url, &path),
            Some(language.as_str()).filter(|l| !l.is_empty()),
        )))
    }
}

/// The language tag of a caption file's name, `en` in `film.en.srt` or
/// `film_en-US.vtt`: two or three letters, with an optional region.
fn file_language(name: &str) -> Option<&str> {
    let stem = name.rsplit_once('.')?.0;
    let tag = stem.rsplit(['.', '_']).next()?;
    let (primary, region) = match tag.split_once('-') {
        Some((p, r)) => (p, Some(r)),
        None => (tag, None),
    };
    let primary_ok =
        (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic());
    let region_ok = region
        .is_none_or(|r| (2..=4).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric()));
    (primary_ok && region_ok && tag != stem).then_some(tag)
}

/// Seconds in a file's `length`: seconds (`1421.43`) or a clock.
fn length_seconds(text: &str) -> Option<u64> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Some(s.round() as u64),
        Ok(_) => None,
        Err(_) => runtime_seconds(text),
    }
}

/// A date as the Archive writes it (RFC 3339, `2009-07-16 12:34:56`, a
/// day, a year) in the answers' form.
fn published(date: Option<String>) -> Option<String> {
    let date = date?;
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&date) {
        return Some(super::utc_text(t.with_timezone(&chrono::Utc)));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(&date, "%Y-%m-%d %H:%M:%S") {
        return Some(super::utc_text(t.and_utc()));
    }
    iso_date(&date)
}

impl Serves<marker::VideoSearch> for InternetArchive {
    fn build_request(
        &self,
        q: &media::TextQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let text = q.query.replace(['(', ')'], " ");
        let mut req = HttpRequest::get(ctx.base_url, "/advancedsearch.php")
            .query("q", format!("({}) AND mediatype:(movies)", text.trim()));
        for field in FIELDS {
            req = req.query("fl[]", field);
        }
        Ok(req
            .query("rows", q.limit.to_string())
            .query("page", "1")
            .query("output", "json"))
    }

    fn read_response(
        &self,
        q: &media::TextQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<media::VideoSearch>, ProviderFailure> {
        response.check_status()?;
        let reply: Reply = response.json()?;
        // Solr reports errors inside a 200: a bad query as code 400,
        // anything else (a plain message) as trouble on its side.
        if let Some(error) = reply.error {
            let (class, message) = match error {
                SolrError::Object {
                    msg,
                    code: Some(400..=499),
                } => (FailureClass::InvalidRequest, msg.unwrap_or_default()),
                SolrError::Object { msg, .. } => (FailureClass::Transient, msg.unwrap_or_default()),
                SolrError::Text(text) => (FailureClass::Transient, text),
            };
            return Err(response.failure(class, format!("Internet Archive: {}", clip(&message))));
        }
        let body = reply.response.ok_or_else(|| {
            ProviderFailure::malformed("Internet Archive reply has no `response`")
                .status(response.status)
        })?;
        let docs = body.docs.ok_or_else(|| {
            ProviderFailure::malformed("Internet Archive reply lacks `response.docs`")
                .status(response.status)
        })?;
        let results = docs
            .into_iter()
            .take(usize::from(q.limit))
            .filter_map(Doc::into_result)
            .collect();
        Ok(Step::Done(VideoSearch {
            query: q.query.clone(),
            total: Some(body.num_found),
            results,
        }))
    }
}

/// Seconds in a free-text runtime: `HH:MM:SS`, `MM:SS`, `N minutes`,
/// `N min`, `N seconds`. Anything else is unknown.
fn runtime_seconds(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    if text.contains(':') {
        let mut seconds = 0u64;
        for part in text.split(':') {
            let value: u64 = part.trim().parse().ok()?;
            seconds = seconds.checked_mul(60)?.checked_add(value)?;
        }
        return Some(seconds);
    }
    let (number, unit) = text.split_once(' ').unwrap_or((text.as_str(), ""));
    let number: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let factor = match unit.trim() {
        "min" | "mins" | "minute" | "minutes" => 60.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        _ => return None,
    };
    Some((number * factor).round() as u64)
}

#[derive(Deserialize)]
struct Item {
    metadata: Option<ItemMetadata>,
    files: Option<Vec<ItemFile>>,
}

#[derive(Deserialize)]
struct ItemMetadata {
    identifier: Option<Text>,
    mediatype: Option<Text>,
    title: Option<Text>,
    creator: Option<Text>,
    description: Option<Text>,
    date: Option<Text>,
    publicdate: Option<Text>,
    runtime: Option<Text>,
}

#[derive(Deserialize)]
struct ItemFile {
    name: Option<String>,
    source: Option<String>,
    length: Option<String>,
}

#[derive(Deserialize)]
struct Reply {
    response: Option<Body>,
    error: Option<SolrError>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SolrError {
    Text(String),
    Object {
        msg: Option<String>,
        code: Option<u16>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    num_found: u64,
    docs: Option<Vec<Doc>>,
}

/// A field that is a string in some items and a list in others.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Text {
    One(String),
    Many(Vec<String>),
}

impl Text {
    fn first(self) -> Option<String> {
        match self {
            Text::One(text) => Some(text),
            Text::Many(list) => list.into_iter().next(),
        }
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
    }
}

#[derive(Deserialize)]
struct Doc {
    identifier: String,
    title: Option<Text>,
    description: Option<Text>,
    creator: Option<Text>,
    date: Option<String>,
    publicdate: Option<String>,
    downloads: Option<u64>,
    runtime: Option<Text>,
    licenseurl: Option<String>,
}

impl Doc {
    fn into_result(self) -> Option<VideoResult> {
        let id = self.identifier;
        let published_at =
            self.publicdate
                .or(self.date)
                .and_then(|d| match chrono::DateTime::parse_from_rfc3339(&d) {
                    Ok(t) => Some(super::utc_text(t.with_timezone(&chrono::Utc))),
                    Err(_) => iso_date(&d),
                });
        // An item without a title is left out, not named by its identifier.
        let title = self.title.and_then(Text::first)?;
        Some(VideoResult {
            title,
            url: format!("https://archive.org/details/{id}"),
            embed_url: Some(format!("https://archive.org/embed/{id}")),
            thumbnail_url: Some(format!("https://archive.org/services/img/{id}")),
            duration_s: self
                .runtime
                .and_then(Text::first)
                .and_then(|r| runtime_seconds(&r)),
            published_at,
            channel: self.creator.and_then(Text::first),
            description: self
                .description
                .and_then(Text::first)
                .map(|d| strip_html(&d))
                .filter(|d| !d.is_empty()),
            views: self.downloads,
            license: self.licenseurl,
            id,
        })
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /advancedsearch.php?q=(apollo 11) AND mediatype:(movies)&fl[]=…&rows=2&page=1&output=json`.
    Fixture {
        method: "GET",
        path: "/advancedsearch.php",
        status: 200,
        body: include_str!("fixtures/internet-archive/search.json"),
    },
    // `GET /metadata/Apollo11Highlights` (abridged; any identifier).
    Fixture {
        method: "GET",
        path: "/metadata/*",
        status: 200,
        body: include_str!("fixtures/internet-archive/metadata.json"),
    },
    // Its two caption files.
    Fixture {
        method: "GET",
        path: "/download/Apollo11Highlights/Apollo11Highlights.en.srt",
        status: 200,
        body: include_str!("fixtures/internet-archive/transcript_en.srt"),
    },
    Fixture {
        method: "GET",
        path: "/download/Apollo11Highlights/Apollo11Highlights.fr.vtt",
        status: 200,
        body: include_str!("fixtures/internet-archive/transcript_fr.vtt"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn apollo() -> Request {
        request("video.search", json!({"query": "apollo (11)", "limit": 2}))
    }

    #[test]
    fn request_is_exact() {
        let req = InternetArchive
            .request(&apollo(), &ctx(&InternetArchive))
            .unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://archive.org/advancedsearch.php");
        let mut expected = vec![("q", "(apollo  11) AND mediatype:(movies)")];
        expected.extend(FIELDS.iter().map(|f| ("fl[]", *f)));
        expected.extend([("rows", "2"), ("page", "1"), ("output", "json")]);
        assert_eq!(query(&req), expected);
        assert!(req.headers.is_empty());
    }

    #[test]
    fn fixture_normalises() {
        let body = fixture(&InternetArchive, "/advancedsearch.php");
        let Data::VideoSearch(s) =
            answer(&InternetArchive, &apollo(), test_response(200, &[], body))
        else {
            panic!()
        };
        assert_eq!(
            (s.query.as_str(), s.total, s.results.len()),
            ("apollo (11)", Some(2741), 2)
        );
        let v = &s.results[0];
        assert_eq!(
            (v.id.as_str(), v.title.as_str()),
            ("Apollo11Highlights", "Apollo 11 Highlights")
        );
        assert_eq!(v.url, "https://archive.org/details/Apollo11Highlights");
        assert_eq!(
            v.embed_url.as_deref(),
            Some("https://archive.org/embed/Apollo11Highlights")
        );
        assert_eq!(
            v.thumbnail_url.as_deref(),
            Some("https://archive.org/services/img/Apollo11Highlights")
        );
        assert_eq!((v.duration_s, v.views), (Some(1421), Some(183564)));
        assert_eq!(v.published_at.as_deref(), Some("2009-07-16T12:34:56Z"));
        assert_eq!(v.channel.as_deref(), Some("NASA"));
        assert_eq!(
            v.description.as_deref(),
            Some("Highlights of the Apollo 11 mission, July 16–24, 1969.")
        );
        assert_eq!(
            v.license.as_deref(),
            Some("http://creativecommons.org/publicdomain/mark/1.0/")
        );
        let tv = &s.results[1];
        assert_eq!(
            (tv.title.as_str(), tv.channel.as_deref()),
            ("Apollo 11 landing (TV coverage)", Some("CBS News"))
        );
        assert_eq!(
            (tv.duration_s, tv.published_at.as_deref()),
            (Some(2820), Some("1969"))
        );
    }

    #[test]
    fn runtimes_parse() {
        assert_eq!(runtime_seconds("1:02:03"), Some(3723));
        assert_eq!(runtime_seconds("5:23"), Some(323));
        assert_eq!(runtime_seconds("23 minutes"), Some(1380));
        assert_eq!(runtime_seconds("90 sec"), Some(90));
        assert_eq!(runtime_seconds("1.5 min"), Some(90));
        assert_eq!(runtime_seconds("about an hour"), None);
        assert_eq!(runtime_seconds("99999999999999999:00:00"), None);
    }

    #[test]
    fn error_signals_are_classified() {
        let solr = r#"{"responseHeader":{"status":400,"QTime":1},"error":{"msg":"org.apache.solr.search.SyntaxError: Cannot parse 'x AND'","code":400}}"#;
        let f = failure(&InternetArchive, &apollo(), test_response(200, &[], solr));
        assert_eq!(
            (f.class, f.status),
            (FailureClass::InvalidRequest, Some(200))
        );
        assert!(f.message.contains("Cannot parse"), "{}", f.message);
        let f = failure(
            &InternetArchive,
            &apollo(),
            test_response(200, &[], r#"{"error":"search engine unavailable"}"#),
        );
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(
            &InternetArchive,
            &apollo(),
            test_response(502, &[], "<html>Bad Gateway</html>"),
        );
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(
            &InternetArchive,
            &apollo(),
            test_response(429, &[("retry-after", "10")], ""),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&InternetArchive, "/advancedsearch.php");
        assert_truncations_are_malformed(&InternetArchive, &apollo(), body);
        let f = failure(&InternetArchive, &apollo(), test_response(200, &[], "{}"));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
    fn item(capability: &str, extra: serde_json::Value) -> Request {
        let mut params = json!({"id": "https://archive.org/details/Apollo11Highlights"});
        if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        request(capability, params)
    }

    #[test]
    fn details_from_the_metadata() {
        let q = item("video.details", json!({}));
        let req = InternetArchive.request(&q, &ctx(&InternetArchive)).unwrap();
        assert_eq!(req.url, "https://archive.org/metadata/Apollo11Highlights");
        assert!(req.query.is_empty());
        let body = fixture(&InternetArchive, "/metadata/*");
        let Data::VideoDetails(v) = answer(&InternetArchive, &q, test_response(200, &[], body))
        else {
            panic!()
        };
        assert_eq!(
            (v.id.as_str(), v.title.as_str()),
            ("Apollo11Highlights", "Apollo 11 Highlights")
        );
        assert_eq!(v.url, "https://archive.org/details/Apollo11Highlights");
        // The original file's length, 1421.43 s, rounded.
        assert_eq!(v.duration_s, Some(1421));
        assert_eq!(v.channel.as_deref(), Some("NASA"));
        assert_eq!(v.published_at.as_deref(), Some("1969-07-16"));
        assert_eq!(
            v.description.as_deref(),
            Some("Highlights of the Apollo 11 mission, July 16–24, 1969.")
        );
        assert_eq!(v.thumbnails.len(), 1);
        assert_eq!(v.views, None);
        // An unknown identifier answers `{}`; a book is no film.
        assert_eq!(
            failure(&InternetArchive, &q, test_response(200, &[], "{}")).class,
            FailureClass::NotFound
        );
        let book =
            r#"{"metadata":{"identifier":"b","mediatype":"texts","title":"A book"},"files":[]}"#;
        assert_eq!(
            failure(&InternetArchive, &q, test_response(200, &[], book)).class,
            FailureClass::NotFound
        );
        // No file lengths: the stated runtime.
        let bare = r#"{"metadata":{"identifier":"f","title":["F"],"runtime":"47 minutes","publicdate":"2009-07-16 12:34:56"}}"#;
        let Data::VideoDetails(v) = answer(&InternetArchive, &q, test_response(200, &[], bare))
        else {
            panic!()
        };
        assert_eq!(
            (v.duration_s, v.published_at.as_deref()),
            (Some(2820), Some("2009-07-16T12:34:56Z"))
        );
        assert_truncations_are_malformed(&InternetArchive, &q, body);
        let other = request("video.details", json!({"id": "https://dai.ly/x7tgad0"}));
        let f = InternetArchive
            .request(&other, &ctx(&InternetArchive))
            .unwrap_err();
        assert_eq!(
            (f.class, f.request_sent),
            (FailureClass::Unsupported, false)
        );
    }

    #[test]
    fn transcript_from_the_items_caption_files() {
        for (language, file, expected_language, first) in [
            (
                json!({}),
                "Apollo11Highlights.en.srt",
                "en",
                "The Eagle has landed.",
            ),
            (
                json!({"language": "fr"}),
                "Apollo11Highlights.fr.vtt",
                "fr",
                "L'Aigle a atterri.",
            ),
        ] {
            let q = item("video.transcript", language);
            let body = fixture(&InternetArchive, "/metadata/*");
            let Ok(Step::Next(next)) =
                InternetArchive.response(&q, &ctx(&InternetArchive), test_response(200, &[], body))
            else {
                panic!()
            };
            assert_eq!(
                next.url,
                format!("https://archive.org/download/Apollo11Highlights/{file}#language={expected_language}")
            );
            let mut reply = test_response(
                200,
                &[],
                fixture(
                    &InternetArchive,
                    &format!("/download/Apollo11Highlights/{file}"),
                ),
            );
            reply.url = next.url;
            let Data::VideoTranscript(t) = answer(&InternetArchive, &q, reply) else {
                panic!()
            };
            assert_eq!(t.language.as_deref(), Some(expected_language));
            assert_eq!(t.segments[0].text, first);
            assert_eq!((t.segments[0].start_s, t.segments[0].end_s), (1.0, 4.5));
        }
        let q = item("video.transcript", json!({}));
        let none = r#"{"metadata":{"identifier":"f","title":"F"},"files":[{"name":"f.mp4"}]}"#;
        assert_eq!(
            failure(&InternetArchive, &q, test_response(200, &[], none)).class,
            FailureClass::NotFound
        );
        assert_eq!(file_language("a.en.srt"), Some("en"));
        assert_eq!(file_language("a_pt-BR.vtt"), Some("pt-BR"));
        assert_eq!(file_language("apollo.srt"), None);
        assert_eq!(file_language("en.srt"), None);
        assert_truncations_are_malformed(
            &InternetArchive,
            &q,
            fixture(&InternetArchive, "/metadata/*"),
        );
    }
}
