//! Pieces of wire formats that several providers share: HTML fragments in
//! JSON strings (search snippets, dictionary definitions), words in URL
//! paths, numbers sent as strings (Binance, Kraken, Twelve Data, Alpha
//! Vantage, Nominatim), and the UTC boundaries at which quotas reset.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Deserializer};

/// Plain text of an HTML fragment: tags dropped, the common entities and
/// numeric character references decoded, whitespace collapsed.
pub(crate) fn html_to_text(html: &str) -> String {
    decode(html, true)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` with HTML entities decoded and nothing else changed, for
/// providers that escape plain text (MyMemory's `l&#39;acqua`).
pub(crate) fn unescape_html(text: &str) -> String {
    decode(text, false)
}

fn decode(html: &str, strip_tags: bool) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    let stops: &[char] = if strip_tags { &['<', '&'] } else { &['&'] };
    while let Some(start) = rest.find(stops) {
        text.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.starts_with('<') {
            match rest.find('>') {
                Some(end) => {
                    // Block-level tags separate words; inline ones
                    // (`<span class="searchmatch">`, `<b>`) do not.
                    if is_block_tag(&rest[1..end]) {
                        text.push(' ');
                    }
                    rest = &rest[end + 1..];
                }
                None => {
                    rest = "";
                }
            }
            continue;
        }
        let entity_end = rest[1..]
            .find(|c: char| c == ';' || c == '&' || c == '<' || c.is_whitespace())
            .map(|i| i + 1);
        match entity_end.filter(|&end| rest.as_bytes()[end] == b';') {
            Some(end) => {
                match decode_entity(&rest[1..end]) {
                    Some(c) => text.push(c),
                    None => text.push_str(&rest[..=end]),
                }
                rest = &rest[end + 1..];
            }
            None => {
                text.push('&');
                rest = &rest[1..];
            }
        }
    }
    text.push_str(rest);
    text
}

fn is_block_tag(tag: &str) -> bool {
    let name: String = tag
        .trim_start_matches('/')
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    matches!(
        name.as_str(),
        "br" | "p"
            | "div"
            | "li"
            | "ul"
            | "ol"
            | "dl"
            | "dt"
            | "dd"
            | "tr"
            | "td"
            | "th"
            | "table"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "blockquote"
            | "hr"
    )
}

fn decode_entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        _ => return None,
    })
}

/// Percent-encodes `text` as one URL path segment: everything but the
/// RFC 3986 unreserved characters is escaped, so a word can never add a
/// path level or a query.
pub(crate) fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A finite number from text such as `"67000.01000000"`, `" 1.5 "` or
/// `"0.52%"`.
pub(crate) fn number(text: &str) -> Option<f64> {
    let text = text.trim();
    let text = text.strip_suffix('%').unwrap_or(text).trim();
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A number read from a JSON value that is a number or a string holding
/// one (see [`number`]), for replies read field by field.
pub(crate) fn number_of(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => number(s),
        _ => None,
    }
}

/// A JSON number or a string holding one.
#[derive(Deserialize)]
#[serde(untagged)]
enum Flexible {
    Number(f64),
    Text(String),
}

/// An optional number sent as a number or as a string: `null`, an empty
/// string, or the placeholders `"None"` / `"-"` are `None`. Use with
/// `#[serde(default)]`.
pub(crate) fn flexible_f64_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    use serde::de::Error as _;
    match Option::<Flexible>::deserialize(d)? {
        None => Ok(None),
        Some(Flexible::Number(n)) => Ok(Some(n).filter(|v| v.is_finite())),
        Some(Flexible::Text(text)) if matches!(text.trim(), "" | "None" | "-" | "null") => Ok(None),
        Some(Flexible::Text(text)) => number(&text)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("not a number: {text:?}"))),
    }
}

/// The next 00:00 UTC after `at`, when daily quotas such as GNews's and
/// Twelve Data's reset.
pub(crate) fn next_utc_midnight(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(at.date_naive().succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc())
}

/// The first instant of the next month, UTC, when monthly quotas such as
/// WeatherAPI.com's reset.
pub(crate) fn next_utc_month(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (year, month) = match at.month() {
        12 => (at.year().checked_add(1)?, 1),
        m => (at.year(), m + 1),
    };
    Some(
        NaiveDate::from_ymd_opt(year, month, 1)?
            .and_hms_opt(0, 0, 0)?
            .and_utc(),
    )
}

/// An ISO-8601 time in any offset or precision (`2025-01-15T09:05:12.000-05:00`)
/// as polyrelay's one form, `2025-01-15T14:05:12Z`. A time without an
/// offset (`2025-01-15T14:05:12`, as SearXNG and Brave send) is taken as UTC.
pub(crate) fn iso_utc(text: &str) -> Option<String> {
    let text = text.trim();
    let at = match DateTime::parse_from_rfc3339(text) {
        Ok(at) => at.with_timezone(&Utc),
        Err(_) => chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()?
            .and_utc(),
    };
    Some(super::utc_text(at))
}

/// Non-empty, trimmed text, or `None`.
pub(crate) fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_fragments_become_plain_text() {
        assert_eq!(
            html_to_text(
                r#"The <span class="searchmatch">Rust</span> language &amp; its &quot;borrow&quot; checker"#
            ),
            r#"The Rust language & its "borrow" checker"#
        );
        assert_eq!(html_to_text("a<br/>b"), "a b");
        assert_eq!(
            html_to_text("<b>Rust</b>acean</p><p>next"),
            "Rustacean next"
        );
        assert_eq!(
            html_to_text("caf&#233; &#x2014; d&eacute;j&agrave;"),
            "café — d&eacute;j&agrave;"
        );
        assert_eq!(html_to_text("AT&T & co <unclosed"), "AT&T & co");
        assert_eq!(html_to_text("&#99999999; &;"), "&#99999999; &;");
        assert_eq!(html_to_text("  spaced\n\tout  "), "spaced out");
        assert_eq!(
            unescape_html("l&#39;acqua <b>  &amp; co"),
            "l'acqua <b>  & co"
        );
    }

    #[test]
    fn path_segments_cannot_escape() {
        assert_eq!(path_segment("hello"), "hello");
        assert_eq!(path_segment("ice cream"), "ice%20cream");
        assert_eq!(path_segment("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(path_segment("café"), "caf%C3%A9");
    }

    #[test]
    fn quota_boundaries() {
        let at: DateTime<Utc> = "2024-12-31T23:59:59Z".parse().unwrap();
        assert_eq!(
            next_utc_midnight(at),
            Some("2025-01-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(
            next_utc_month(at),
            Some("2025-01-01T00:00:00Z".parse().unwrap())
        );
        let at: DateTime<Utc> = "2025-02-10T00:00:00Z".parse().unwrap();
        assert_eq!(
            next_utc_midnight(at),
            Some("2025-02-11T00:00:00Z".parse().unwrap())
        );
        assert_eq!(
            next_utc_month(at),
            Some("2025-03-01T00:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn times_become_utc_seconds() {
        assert_eq!(
            iso_utc("2025-01-15T09:05:12.345-05:00").as_deref(),
            Some("2025-01-15T14:05:12Z")
        );
        assert_eq!(
            iso_utc("2025-01-15T14:05:12Z").as_deref(),
            Some("2025-01-15T14:05:12Z")
        );
        assert_eq!(
            iso_utc("2024-03-01T10:00:00").as_deref(),
            Some("2024-03-01T10:00:00Z")
        );
        assert_eq!(
            iso_utc("2024-03-01T10:00:00.25").as_deref(),
            Some("2024-03-01T10:00:00Z")
        );
        assert_eq!(iso_utc("yesterday"), None);
    }

    #[test]
    fn numbers_in_strings() {
        assert_eq!(number("67000.01000000"), Some(67000.01));
        assert_eq!(number(" 0.5120% "), Some(0.512));
        assert_eq!(number("NaN"), None);
        assert_eq!(number("abc"), None);

        #[derive(Deserialize)]
        struct Row {
            #[serde(default, deserialize_with = "flexible_f64_opt")]
            b: Option<f64>,
        }
        let row: Row = serde_json::from_str(r#"{"b":"None"}"#).unwrap();
        assert_eq!(row.b, None);
        let row: Row = serde_json::from_str(r#"{"b":"1.5"}"#).unwrap();
        assert_eq!(row.b, Some(1.5));
        let row: Row = serde_json::from_str(r#"{"b":2}"#).unwrap();
        assert_eq!(row.b, Some(2.0));
        let row: Row = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(row.b, None);
        assert!(serde_json::from_str::<Row>(r#"{"b":"y"}"#).is_err());
    }
}
