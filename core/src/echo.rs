//! How a caller's value is quoted back in an error message: bounded, on
//! one line, so a huge or hostile value cannot make a huge or forged message.
//! Used by every module that validates input (capabilities, configuration,
//! durations, limits).

use serde_json::Value;

/// Longest caller value an error message shows whole, in characters.
const ECHO_MAX_CHARS: usize = 40;

/// A caller's value as error messages show it: quoted and escaped like
/// `{:?}` (so the message stays one line), whole up to
/// [`ECHO_MAX_CHARS`] characters, else its first characters and its length,
/// `"aaaa…" (100000 characters)`, so a huge value cannot make a huge message.
pub(crate) fn echo(value: &str) -> String {
    // Counts stop early: a 100 kB value costs no more than a short one.
    match value.char_indices().nth(ECHO_MAX_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!(
            "{:?} ({} characters)",
            format!("{}…", &value[..cut]),
            value.chars().count()
        ),
    }
}

/// Longest name (a parameter, a configuration key or variable) used whole
/// as an error's field; real ones such as
/// `POLYRELAY_FINANCIAL_MODELING_PREP_API_KEY_ENV` pass 40 characters.
const KEY_MAX_CHARS: usize = 100;

/// A caller's name used as an error's field: as given when at most
/// [`KEY_MAX_CHARS`] characters and printable (the usual case, so `field`
/// stays matchable), else [`echo`]ed.
pub(crate) fn echo_key(key: &str) -> String {
    if key.chars().nth(KEY_MAX_CHARS).is_none() && !key.chars().any(char::is_control) {
        key.to_string()
    } else {
        echo(key)
    }
}

/// A caller's number as error messages show it: as written when short,
/// else in exact scientific notation (`1e300` rather than 301 digits).
pub(crate) fn echo_number(value: f64) -> String {
    let plain = value.to_string();
    if plain.len() <= ECHO_MAX_CHARS {
        plain
    } else {
        format!("{value:e}")
    }
}

/// Longest message of another library (serde, toml) kept whole.
const FOREIGN_MAX_CHARS: usize = 300;

/// A message of another library, which may quote a caller's value whole
/// (serde's `invalid type: string "…"`): its first [`FOREIGN_MAX_CHARS`]
/// characters and its length when longer, control characters escaped.
pub(crate) fn bound_message(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(FOREIGN_MAX_CHARS) {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    if text.chars().nth(FOREIGN_MAX_CHARS).is_some() {
        out.push_str(&format!("… ({} characters)", text.chars().count()));
    }
    out
}

/// How a JSON value is described in error messages ("a number").
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_echoed_whole_and_quoted() {
        assert_eq!(echo("dollars"), "\"dollars\"");
        assert_eq!(echo(""), "\"\"");
        let forty = "a".repeat(40);
        assert_eq!(echo(&forty), format!("\"{forty}\""));
    }

    #[test]
    fn long_values_are_cut_with_their_length() {
        let forty_one = "a".repeat(41);
        assert_eq!(
            echo(&forty_one),
            format!("\"{}…\" (41 characters)", "a".repeat(40))
        );
        let huge = "a".repeat(100_000);
        assert_eq!(
            echo(&huge),
            format!("\"{}…\" (100000 characters)", "a".repeat(40))
        );
    }

    #[test]
    fn characters_are_counted_and_never_split() {
        // Two-byte and four-byte characters: 40 of them fit, whatever their bytes.
        let forty = "é".repeat(40);
        assert_eq!(echo(&forty), format!("\"{forty}\""));
        let long = "𝄞".repeat(50_000);
        assert_eq!(
            echo(&long),
            format!("\"{}…\" (50000 characters)", "𝄞".repeat(40))
        );
        // A cut right after a multibyte character near the limit.
        let mixed = format!("{}ü{}", "a".repeat(39), "b".repeat(10));
        assert_eq!(
            echo(&mixed),
            format!("\"{}ü…\" (50 characters)", "a".repeat(39))
        );
    }

    #[test]
    fn control_characters_are_escaped_onto_one_line() {
        assert_eq!(echo("a\nb\t\u{0}"), "\"a\\nb\\t\\0\"");
        let long = "x\r\n".repeat(30);
        let shown = echo(&long);
        assert!(!shown.contains(['\n', '\r']), "{shown}");
        assert!(shown.ends_with("(90 characters)"), "{shown}");
    }

    #[test]
    fn keys_stay_plain_unless_long_or_unprintable() {
        assert_eq!(echo_key("bsae"), "bsae");
        assert_eq!(echo_key("a\nb"), "\"a\\nb\"");
        let hundred = "K".repeat(100);
        assert_eq!(echo_key(&hundred), hundred);
        assert_eq!(
            echo_key(&"k".repeat(101)),
            format!("\"{}…\" (101 characters)", "k".repeat(40))
        );
    }

    #[test]
    fn foreign_messages_are_cut_onto_one_line() {
        assert_eq!(bound_message("expected u64"), "expected u64");
        assert_eq!(bound_message("a\nb"), "a\\nb");
        let long = format!("invalid type: string \"{}\"", "ж".repeat(1000));
        let cut = bound_message(&long);
        assert_eq!(
            cut.chars().count(),
            300 + "… (1023 characters)".chars().count()
        );
        assert!(cut.ends_with("ж… (1023 characters)"), "{cut}");
    }

    #[test]
    fn numbers_stay_short() {
        assert_eq!(echo_number(91.5), "91.5");
        assert_eq!(echo_number(-200.0), "-200");
        assert_eq!(echo_number(1e300), "1e300");
        assert_eq!(echo_number(-1.5e308), "-1.5e308");
    }
}
