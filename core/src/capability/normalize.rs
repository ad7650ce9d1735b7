//! Small normalisation helpers the adapters share, so that every provider of
//! a capability turns the same kind of raw value (HTML text, a date with or
//! without a time, a number sent as a string) into the same normalised form.

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

/// Plain text from an HTML fragment: tags dropped, the common entities
/// decoded, whitespace collapsed. Block-level breaks become one space:
/// `<p>Walter <b>White</b> &amp; Jesse</p>` reads `Walter White & Jesse`.
pub fn strip_html(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find(['<', '&']) {
        text.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.starts_with('<') {
            match rest.find('>') {
                Some(end) => {
                    text.push(' ');
                    rest = &rest[end + 1..];
                }
                None => {
                    // An unterminated tag: keep the text as it is.
                    text.push_str(rest);
                    rest = "";
                }
            }
        } else {
            let (decoded, used) = decode_entity(rest);
            text.push_str(decoded.as_deref().unwrap_or("&"));
            rest = &rest[used..];
        }
    }
    text.push_str(rest);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes the entity at the start of `text` (which starts with `&`);
/// returns the decoded text (None for a bare `&`) and the bytes consumed.
fn decode_entity(text: &str) -> (Option<String>, usize) {
    let Some(end) = text
        .char_indices()
        .take(12)
        .find(|(_, c)| *c == ';')
        .map(|(i, _)| i)
    else {
        return (None, 1);
    };
    let name = &text[1..end];
    let decoded = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" | "#39" => Some('\''),
        "nbsp" => Some(' '),
        "ndash" => Some('–'),
        "mdash" => Some('—'),
        "hellip" => Some('…'),
        "lsquo" => Some('‘'),
        "rsquo" => Some('’'),
        "ldquo" => Some('“'),
        "rdquo" => Some('”'),
        "copy" => Some('©'),
        _ => name
            .strip_prefix("#x")
            .or_else(|| name.strip_prefix("#X"))
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .or_else(|| name.strip_prefix('#').and_then(|dec| dec.parse().ok()))
            .and_then(char::from_u32),
    };
    match decoded {
        Some(c) => (Some(c.to_string()), end + 1),
        None => (None, 1),
    }
}

/// The calendar part of a provider date, as ISO-8601: `YYYY-MM-DD` when the
/// day is known, else `YYYY-MM` or `YYYY`. Accepts a trailing time
/// (`2001-07-20T07:00:00Z`) and `/` separators (`2023/01/05 00:00`).
pub fn iso_date(text: &str) -> Option<String> {
    let text = text.trim();
    let head: String = text
        .chars()
        .take(10)
        .map(|c| if c == '/' { '-' } else { c })
        .collect();
    if let Ok(date) = NaiveDate::parse_from_str(&head, "%Y-%m-%d") {
        return Some(date.format("%Y-%m-%d").to_string());
    }
    let month = head.get(..7).unwrap_or("");
    if month.len() == 7
        && text.len() == 7
        && NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").is_ok()
    {
        return Some(month.to_string());
    }
    if text.len() == 4 {
        return year_of(text).map(|y| y.to_string());
    }
    None
}

/// The year a text starts with: `2008` from `2008–2013`, `2023 Jan 5` or
/// `2001-07-20`. Years before 1000 or after 9999 are not years here.
pub fn year_of(text: &str) -> Option<u16> {
    let digits = text.trim().get(..4)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: u16 = digits.parse().ok()?;
    (year >= 1000).then_some(year)
}

/// `Last, First` → `First Last` (Project Gutenberg and Europe PMC style
/// names); anything else is returned trimmed.
pub fn person_name(name: &str) -> String {
    let name = name.trim();
    match name.split_once(", ") {
        Some((last, first)) if !first.contains(',') && !first.trim().is_empty() => {
            format!("{} {}", first.trim(), last.trim())
        }
        _ => name.to_string(),
    }
}

/// Deserializes a count sent as a number, a numeric string (`"1234"`), a
/// string with thousands separators (`"1,234"`), or `"N/A"`/empty (None).
pub fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Float(f64),
        Text(String),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        None => None,
        Some(Raw::Number(n)) => Some(n),
        Some(Raw::Float(f)) if f.is_finite() && f >= 0.0 => Some(f as u64),
        Some(Raw::Float(_)) => None,
        Some(Raw::Text(text)) => text.replace(',', "").trim().parse().ok(),
    })
}

/// Deserializes a number sent as a number or a numeric string, as f64
/// (`"8.1"` → 8.1); `"N/A"` or empty is None.
pub fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        None => None,
        Some(Raw::Number(n)) => Some(n),
        Some(Raw::Text(text)) => text.trim().parse().ok(),
    }
    .filter(|n: &f64| n.is_finite()))
}

/// A non-empty, trimmed text; `None` for empty text and the `"N/A"`
/// placeholder some providers send.
pub fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty() && t != "N/A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_stripped_and_entities_decoded() {
        assert_eq!(
            strip_html("<p>Walter <b>White</b> &amp; Jesse</p>"),
            "Walter White & Jesse"
        );
        assert_eq!(
            strip_html("<p><b>Breaking Bad</b> follows&nbsp;protagonist Walter&#39;s story.</p>"),
            "Breaking Bad follows protagonist Walter's story."
        );
        assert_eq!(
            strip_html("a &#x263A; b &unknown; c & d"),
            "a ☺ b &unknown; c & d"
        );
        assert_eq!(
            strip_html("<h4>Background</h4>Text<br/>more"),
            "Background Text more"
        );
        assert_eq!(strip_html("1 < 2 and"), "1 < 2 and");
        assert_eq!(strip_html(""), "");
    }

    #[test]
    fn dates_keep_their_precision() {
        assert_eq!(
            iso_date("2001-07-20T07:00:00Z").as_deref(),
            Some("2001-07-20")
        );
        assert_eq!(iso_date("2020-06").as_deref(), Some("2020-06"));
        assert_eq!(iso_date("soon"), None);
        assert_eq!(iso_date("2023/01/05 00:00").as_deref(), Some("2023-01-05"));
        assert_eq!(iso_date("2008-01-20").as_deref(), Some("2008-01-20"));
        assert_eq!(iso_date("2020").as_deref(), Some("2020"));
        assert_eq!(iso_date("2020-13").as_deref(), None);
        assert_eq!(iso_date("2020-02-30"), None);
        assert_eq!(iso_date(""), None);
    }

    #[test]
    fn years_come_from_the_start() {
        assert_eq!(year_of("2008–2013"), Some(2008));
        assert_eq!(year_of("2023 Jan 5"), Some(2023));
        assert_eq!(year_of("N/A"), None);
        assert_eq!(year_of("0999"), None);
        assert_eq!(year_of("19"), None);
    }

    #[test]
    fn names_are_turned_round_once() {
        assert_eq!(person_name("Dickens, Charles"), "Charles Dickens");
        assert_eq!(person_name(" Frank Herbert "), "Frank Herbert");
        assert_eq!(person_name("Smith, J, Jr"), "Smith, J, Jr");
    }

    #[test]
    fn counts_and_numbers_are_read_leniently() {
        #[derive(Deserialize)]
        struct Row {
            #[serde(default, deserialize_with = "lenient_u64")]
            count: Option<u64>,
            #[serde(default, deserialize_with = "lenient_f64")]
            rating: Option<f64>,
        }
        let row = |json: &str| serde_json::from_str::<Row>(json).unwrap();
        assert_eq!(
            row(r#"{"count":"1,234,567","rating":"8.1"}"#).count,
            Some(1_234_567)
        );
        assert_eq!(row(r#"{"count":12,"rating":7}"#).rating, Some(7.0));
        assert_eq!(row(r#"{"count":"N/A","rating":"N/A"}"#).count, None);
        assert_eq!(row(r#"{"count":null}"#).rating, None);
        assert_eq!(row("{}").count, None);
        assert_eq!(non_empty(Some(" N/A ".into())), None);
        assert_eq!(non_empty(Some(" x ".into())).as_deref(), Some("x"));
    }
}
