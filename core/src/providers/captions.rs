//! Caption files, WebVTT and SRT, read into transcript cues: the one parser
//! behind every provider of `video.transcript`.
//!
//! Read tolerantly, as players do: a byte-order mark, CRLF or CR line ends,
//! the header's metadata lines, `NOTE`, `STYLE` and `REGION` blocks, cue
//! identifiers (SRT's counters), cue settings after the end time, `,` or
//! `.` before the milliseconds, hours left out. Cue text loses its markup
//! (`<v Roger>`, `<c.yellow>`, `<i>`, karaoke timestamps, SRT's `{\an8}`)
//! and its character references; its lines are kept, joined by `\n`. A
//! block whose timing line does not parse is left out, not the file.

use crate::capability::video::{Transcript, TranscriptSegment};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{HttpRequest, HttpResponse, Step};

/// The fragment a caption file's request carries its track's language in
/// (never sent: see [`HttpResponse::url`]).
const LANGUAGE_NOTE: &str = "#language=";

/// `request` for a caption file, noting the track's `language` so that the
/// file's reply can say it.
pub(crate) fn noting_language(mut request: HttpRequest, language: Option<&str>) -> HttpRequest {
    let tag: String = language
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(35)
        .collect();
    if !tag.is_empty() {
        request.url = format!("{}{LANGUAGE_NOTE}{tag}", request.url);
    }
    request
}

/// Whether a reply's body is a JSON object (a provider's list of tracks)
/// rather than a caption file, which never starts with `{`.
pub(crate) fn is_json_object(response: &HttpResponse) -> bool {
    response
        .body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// A caption file's reply read into the transcript of `video_id`. The file
/// host refusing or not finding it means no transcript here (`not_found`,
/// so the next provider is asked), not a refused key; a file that is not
/// captions is malformed; one without cues is no transcript.
pub(crate) fn transcript(
    provider: &str,
    video_id: &str,
    response: &HttpResponse,
) -> Result<Step<Transcript>, ProviderFailure> {
    if matches!(response.status, 401 | 403 | 404 | 410) {
        return Err(response.failure(
            FailureClass::NotFound,
            format!("{provider}: the caption file is not available"),
        ));
    }
    response.check_status()?;
    let captions = parse(&response.body).map_err(|why| {
        ProviderFailure::malformed(format!("{provider} caption file: {why}"))
            .status(response.status)
    })?;
    if captions.cues.is_empty() {
        return Err(response.failure(
            FailureClass::NotFound,
            format!("{provider}: the caption file has no cues"),
        ));
    }
    let noted = response
        .url
        .split_once(LANGUAGE_NOTE)
        .map(|(_, tag)| tag.to_string())
        .filter(|tag| !tag.is_empty());
    Ok(Step::Done(Transcript::new(
        video_id.to_string(),
        noted.or(captions.language),
        captions.cues,
    )))
}

/// `path` with every byte outside the unreserved set and `/`
/// percent-encoded, for file names taken from a reply.
pub(crate) fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A caption file's cues, and its language when its header names one
/// (`Language: en`, an old WebVTT convention).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Captions {
    pub(crate) language: Option<String>,
    pub(crate) cues: Vec<TranscriptSegment>,
}

/// Reads a WebVTT or SRT file. `Err` says why the text is neither (no
/// `WEBVTT` header and no cue); a WebVTT file without cues is read as
/// empty.
pub(crate) fn parse(body: &[u8]) -> Result<Captions, String> {
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut blocks = text
        .split("\n\n")
        .map(|b| b.trim_matches('\n'))
        .filter(|b| !b.is_empty())
        .peekable();
    let mut language = None;
    let webvtt = blocks.peek().is_some_and(|first| is_webvtt_header(first));
    if webvtt {
        let header = blocks.next().unwrap_or_default();
        language = header.lines().skip(1).find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name.trim().eq_ignore_ascii_case("language") && !value.trim().is_empty())
                .then(|| value.trim().to_string())
        });
    }
    let cues: Vec<TranscriptSegment> = blocks.filter_map(cue).collect();
    if cues.is_empty() && !webvtt {
        return Err("neither a WebVTT file nor SRT cues".into());
    }
    Ok(Captions { language, cues })
}

/// `WEBVTT` alone or followed by a space, a tab or a line end.
fn is_webvtt_header(block: &str) -> bool {
    block
        .strip_prefix("WEBVTT")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\n']))
}

/// One block as a cue: its timing line (after an optional identifier),
/// then its text. `NOTE`, `STYLE` and `REGION` blocks have no timing line.
fn cue(block: &str) -> Option<TranscriptSegment> {
    let mut lines = block.lines();
    let mut timing = lines.next()?;
    if !timing.contains("-->") {
        timing = lines.next()?;
    }
    let (start, rest) = timing.split_once("-->")?;
    // Cue settings follow the end time after white space.
    let end = rest.split_whitespace().next()?;
    let (start_s, end_s) = (timestamp(start.trim())?, timestamp(end)?);
    let text: Vec<String> = lines.map(plain).filter(|line| !line.is_empty()).collect();
    if text.is_empty() {
        return None;
    }
    Some(TranscriptSegment {
        start_s,
        end_s: end_s.max(start_s),
        text: text.join("\n"),
    })
}

/// Seconds in `hh:mm:ss.ttt` or `mm:ss.ttt` (`,` accepted for `.`, the
/// fraction optional).
fn timestamp(text: &str) -> Option<f64> {
    let text = text.replace(',', ".");
    let (clock, fraction) = match text.split_once('.') {
        Some((clock, fraction)) => (clock, fraction),
        None => (text.as_str(), ""),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let mut seconds = 0u64;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: u64 = part.parse().ok()?;
        // Minutes and seconds below 60; hours unbounded.
        if i > 0 && value >= 60 {
            return None;
        }
        seconds = seconds.checked_mul(60)?.checked_add(value)?;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Nanoseconds, so that one division rounds once: 1,600 is 1.6 exactly
    // as written, not 1 + 0.6 rounded twice.
    let nanos: u64 = format!("{fraction:0<9.9}").parse().ok()?;
    let total = seconds.checked_mul(1_000_000_000)?.checked_add(nanos)?;
    Some(total as f64 / 1e9)
}

/// A cue text line without markup or character references, trimmed.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find(['<', '{', '&']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (skip, replacement) = match tail.as_bytes()[0] {
            b'<' => (tail.find('>').map(|e| e + 1), None),
            // SRT's ASS overrides: `{\an8}`, `{\i1}`.
            b'{' if tail.starts_with("{\\") => (tail.find('}').map(|e| e + 1), None),
            b'&' => reference(tail),
            _ => (None, None),
        };
        match skip {
            Some(n) => {
                if let Some(r) = replacement {
                    out.push_str(r);
                }
                rest = &tail[n..];
            }
            // Not markup: the character stays.
            None => {
                out.push(char::from(tail.as_bytes()[0]));
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The character references WebVTT names, at the start of `text`: bytes to
/// skip and the text they stand for.
fn reference(text: &str) -> (Option<usize>, Option<&'static str>) {
    const NAMED: &[(&str, &str)] = &[
        ("&amp;", "&"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&apos;", "'"),
        ("&nbsp;", " "),
        ("&lrm;", ""),
        ("&rlm;", ""),
    ];
    NAMED
        .iter()
        .find(|(name, _)| text.starts_with(name))
        .map_or((None, None), |(name, value)| {
            (Some(name.len()), Some(value))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cues(text: &str) -> Vec<(f64, f64, String)> {
        parse(text.as_bytes())
            .unwrap()
            .cues
            .into_iter()
            .map(|c| (c.start_s, c.end_s, c.text))
            .collect()
    }

    fn cue(start: f64, end: f64, text: &str) -> (f64, f64, String) {
        (start, end, text.to_string())
    }

    /// The first example of the W3C WebVTT specification (§1.1), voices.
    #[test]
    fn the_specifications_voice_example() {
        let file = "WEBVTT\n\n\
            00:11.000 --> 00:13.000\n<v Roger Bingham>We are in New York City\n\n\
            00:13.000 --> 00:16.000\n<v Roger Bingham>We're actually at the Lucern Hotel, just down the street\n\n\
            00:16.000 --> 00:18.000\n<v Roger Bingham>from the American Museum of Natural History\n\n\
            00:18.000 --> 00:20.000\n<v Roger Bingham>And with me is Neil deGrasse Tyson\n\n\
            00:20.000 --> 00:22.000\n<v Roger Bingham>Astrophysicist, Director of the Hayden Planetarium\n\n\
            00:22.000 --> 00:24.000\n<v Roger Bingham>at the AMNH.\n\n\
            00:24.000 --> 00:26.000\n<v Roger Bingham>Thank you for walking down here.\n\n\
            00:27.000 --> 00:30.000\n<v Roger Bingham>And I want to do a follow-up on the last conversation we did.\n\n\
            00:30.000 --> 00:31.500 align:right size:50%\n<v Neil deGrasse Tyson>When we e-mailed—\n\n\
            00:30.500 --> 00:32.500 align:left size:50%\n<v Roger Bingham>Didn't we talk about enough in that conversation?\n\n\
            00:32.000 --> 00:35.500 align:right size:50%\n<v Neil deGrasse Tyson>No! No no no no; 'cos 'cos obviously 'cos\n\n\
            00:32.500 --> 00:33.500 align:left size:50%\n<v Roger Bingham><i>Laughs</i>\n\n\
            00:35.500 --> 00:38.000\n<v Roger Bingham>You know I'm so excited my glasses are falling off here.\n";
        let read = cues(file);
        assert_eq!(read.len(), 13);
        assert_eq!(read[0], cue(11.0, 13.0, "We are in New York City"));
        assert_eq!(read[8], cue(30.0, 31.5, "When we e-mailed—"));
        assert_eq!(read[11], cue(32.5, 33.5, "Laughs"));
        assert_eq!(read[12].0, 35.5);
    }

    /// §1.2 (comments) and §1.3 (styling, a `STYLE` block) of the
    /// specification, with CRLF line ends and a byte-order mark.
    #[test]
    fn notes_styles_identifiers_and_crlf() {
        let file = "\u{feff}WEBVTT - This file has cues.\r\n\r\n\
            NOTE\r\nThis file was written by Jill. I hope\r\nyou enjoy reading it. Some things to\r\nbear in mind:\r\n- I was lip-reading, so the cues may\r\nnot be 100% accurate\r\n\r\n\
            STYLE\r\n::cue {\r\n  background-image: linear-gradient(to bottom, dimgray, lightgray);\r\n}\r\n\r\n\
            1\r\n00:01.000 --> 00:02.000\r\nNothing is going on.\r\n\r\n\
            NOTE Another comment\r\n\r\n\
            crédit de transcription\r\n00:00:03.500 --> 00:00:05.000\r\nNever drink liquid nitrogen.\r\n";
        assert_eq!(
            cues(file),
            [
                cue(1.0, 2.0, "Nothing is going on."),
                cue(3.5, 5.0, "Never drink liquid nitrogen.")
            ]
        );
    }

    /// §1.3's class spans and §1.4's karaoke timestamps, a multi-line cue
    /// and character references.
    #[test]
    fn markup_is_removed_and_lines_kept() {
        let file = "WEBVTT\n\n\
            04:02.500 --> 04:05.000\nJ’ai commencé le basket à l'âge de 13, 14 ans\n\n\
            04:05.001 --> 04:07.800\nSur les <i.foreignphrase><lang en>playground</lang></i>, ici à Montpellier\n\n\
            00:00:00.000 --> 00:00:05.000 position:10%,line-left align:left size:35%\n\
            <c.yellow.bg_blue>Never</c> <00:00:01.000>drink <00:00:02.000>liquid\n<b>nitrogen</b> &amp; &lt;water&gt;&nbsp;please\n";
        assert_eq!(
            cues(file),
            [
                cue(
                    242.5,
                    245.0,
                    "J’ai commencé le basket à l'âge de 13, 14 ans"
                ),
                cue(245.001, 247.8, "Sur les playground, ici à Montpellier"),
                cue(0.0, 5.0, "Never drink liquid\nnitrogen & <water> please"),
            ]
        );
    }

    #[test]
    fn a_typical_srt_file() {
        let file = "1\r\n00:00:01,600 --> 00:00:04,200\r\nEnglish (US)\r\n\r\n\
            2\r\n00:00:05,900 --> 00:00:07,999\r\nThis is a subtitle in American English\r\n\r\n\
            3\r\n00:00:10,000 --> 00:00:14,000\r\n{\\an8}Adding subtitles is very easy to do\r\n<i>and fast</i>\r\n\r\n\r\n\
            4\r\n01:02:03,004 --> 01:02:04,000\r\n- Uh, 2 > 1?\r\n";
        let read = parse(file.as_bytes()).unwrap();
        assert_eq!(read.language, None);
        let read: Vec<_> = read
            .cues
            .into_iter()
            .map(|c| (c.start_s, c.end_s, c.text))
            .collect();
        assert_eq!(
            read,
            [
                cue(1.6, 4.2, "English (US)"),
                cue(5.9, 7.999, "This is a subtitle in American English"),
                cue(10.0, 14.0, "Adding subtitles is very easy to do\nand fast"),
                cue(3723.004, 3724.0, "- Uh, 2 > 1?"),
            ]
        );
    }

    #[test]
    fn header_language_and_broken_blocks() {
        let file = "WEBVTT\nKind: captions\nLanguage: en-GB\n\n\
            00:01.000 --> 00:02.000\nfirst\n\n\
            00:61.000 --> 00:62.000\nseconds out of range\n\n\
            00:03.000 --> nonsense\nbad end\n\n\
            00:04.000 --> 00:05.000\n\n\
            00:06.000 --> 00:07.000\nlast";
        let read = parse(file.as_bytes()).unwrap();
        assert_eq!(read.language.as_deref(), Some("en-GB"));
        assert_eq!(
            read.cues
                .iter()
                .map(|c| c.text.as_str())
                .collect::<Vec<_>>(),
            ["first", "last"]
        );
        assert!(parse(b"WEBVTT\n").unwrap().cues.is_empty());
        assert!(parse(b"WEBVTT\n\nNOTE nothing yet\n")
            .unwrap()
            .cues
            .is_empty());
    }

    #[test]
    fn a_noted_language_comes_back_with_the_reply() {
        let request = noting_language(
            HttpRequest::get("https://example.com", "/a.srt"),
            Some("en-US\"<x>"),
        );
        assert_eq!(request.url, "https://example.com/a.srt#language=en-USx");
        let mut response =
            crate::providers::test_response(200, &[], "1\n00:01,000 --> 00:02,000\nHi\n");
        response.url = request.url;
        let Ok(Step::Done(t)) = transcript("P", "v", &response) else {
            panic!()
        };
        assert_eq!(
            (t.language.as_deref(), t.text.as_str()),
            (Some("en-USx"), "Hi")
        );
        response.status = 403;
        assert_eq!(
            transcript("P", "v", &response).unwrap_err().class,
            FailureClass::NotFound
        );
        let empty = crate::providers::test_response(200, &[], "WEBVTT\n");
        assert_eq!(
            transcript("P", "v", &empty).unwrap_err().class,
            FailureClass::NotFound
        );
        let html = crate::providers::test_response(200, &[], "<html>busy</html>");
        assert_eq!(
            transcript("P", "v", &html).unwrap_err().class,
            FailureClass::MalformedResponse
        );
        assert_eq!(encode_path("a b/ç.srt"), "a%20b/%C3%A7.srt");
    }

    #[test]
    fn other_text_is_refused() {
        for text in [
            "",
            "null",
            "{\"list\": []}",
            "<html>busy</html>",
            "WEBVTTX\n\n00:01.000 --> 00:02.000\nx",
        ] {
            let read = parse(text.as_bytes());
            // The last is no WebVTT header, but its cue still reads as SRT.
            if text.starts_with("WEBVTTX") {
                assert_eq!(read.unwrap().cues.len(), 1);
            } else {
                assert!(read.is_err(), "{text:?}");
            }
        }
        assert_eq!(timestamp("1:02:03.5"), Some(3723.5));
        assert_eq!(timestamp("02:03"), Some(123.0));
        assert_eq!(timestamp("3"), None);
        assert_eq!(timestamp("aa:bb.ccc"), None);
        assert_eq!(timestamp("00:00.-1"), None);
    }
}
