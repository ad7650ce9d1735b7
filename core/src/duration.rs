//! Human-readable durations, the one format used by config files,
//! environment variables and JSON output.
//!
//! Text is a non-negative number with an optional unit: `ns`, `us` (or `µs`),
//! `ms`, `s`, `m` (or `min`), `h` or `d`; decimals are allowed (`"1.5s"`,
//! `".25h"`) and no unit means seconds (`"60"`). A JSON or TOML number is a
//! number of seconds. Negative, NaN, too large and unknown units are errors
//! that say what is wrong.
//!
//! [`serde_secs`] plugs the format into serde and serializes as seconds in a
//! float, which is what stats consumers and Python expect and what it reads
//! back.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::echo::{echo, echo_number};

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// Fraction digits kept: 18 are finer than a nanosecond for every unit, and
/// the digits times the largest unit still fit in a `u128`.
const MAX_FRACTION_DIGITS: usize = 18;
/// Text units.
const UNITS: [(&str, u128); 7] = [
    ("d", 86_400 * NANOS_PER_SEC),
    ("h", 3_600 * NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("s", NANOS_PER_SEC),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Parses a duration such as `"500ms"`, `"1.5s"`, `"2m"` or `"10"`
/// (seconds); whitespace around the number and the unit is allowed.
///
/// The error names the text and what is wrong with it.
///
/// ```
/// use polyrelay::internal::duration::parse;
/// use std::time::Duration;
///
/// assert_eq!(parse(" 250 us "), Ok(Duration::from_micros(250)));
/// let err = parse("10x").unwrap_err();
/// assert!(err.contains("unknown unit"), "{err}");
/// ```
pub fn parse(text: &str) -> Result<Duration, String> {
    let fail = |reason: &str| format!("invalid duration {}: {reason}", echo(text));
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    if number.is_empty() {
        return Err(fail(if trimmed.starts_with('-') {
            "a duration cannot be negative"
        } else {
            "expected a non-negative number, optionally followed by a unit (e.g. \"500ms\", \"2m\")"
        }));
    }
    let unit_nanos = match unit.trim_start() {
        "" => NANOS_PER_SEC,
        "µs" => 1_000,
        "min" => 60 * NANOS_PER_SEC,
        unit => UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|&(_, nanos)| nanos)
            .ok_or_else(|| fail("unknown unit (use ns, us, ms, s, m, h or d)"))?,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') {
        return Err(fail("more than one decimal point"));
    }
    if whole.is_empty() && fraction.is_empty() {
        return Err(fail("a decimal point needs at least one digit"));
    }
    let too_large = || fail("too large");
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let fraction = &fraction[..fraction.len().min(MAX_FRACTION_DIGITS)];
    let fraction_nanos = if fraction.is_empty() {
        0
    } else {
        let digits: u128 = fraction.parse().map_err(|_| too_large())?;
        let scale = 10u128.pow(u32::try_from(fraction.len()).map_err(|_| too_large())?);
        digits * unit_nanos / scale
    };
    let nanos = whole
        .checked_mul(unit_nanos)
        .and_then(|n| n.checked_add(fraction_nanos))
        .ok_or_else(too_large)?;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).map_err(|_| too_large())?;
    // Always below 10^9.
    let subsec = u32::try_from(nanos % NANOS_PER_SEC).map_err(|_| too_large())?;
    Ok(Duration::new(secs, subsec))
}

/// A number of seconds from JSON or TOML as a duration.
fn from_secs_f64(secs: f64) -> Result<Duration, String> {
    let reason = if secs.is_nan() {
        "not a number"
    } else if secs < 0.0 {
        "a duration cannot be negative"
    } else {
        match Duration::try_from_secs_f64(secs) {
            Ok(duration) => return Ok(duration),
            Err(_) => "too large",
        }
    };
    Err(format!(
        "invalid duration {} (seconds): {reason}",
        echo_number(secs)
    ))
}

/// Serde adapters for [`Duration`] fields: deserialize from text accepted by
/// [`parse`] or a number of seconds, serialize as seconds in a float.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use std::time::Duration;
///
/// #[derive(Serialize, Deserialize)]
/// struct Settings {
///     #[serde(with = "polyrelay::internal::duration::serde_secs")]
///     wait: Duration,
///     #[serde(default, with = "polyrelay::internal::duration::serde_secs::option")]
///     cap: Option<Duration>,
/// }
/// let s: Settings = serde_json::from_str(r#"{"wait": "1.5s"}"#).unwrap();
/// assert_eq!(s.wait, Duration::from_millis(1500));
/// assert_eq!(s.cap, None);
/// assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"wait":1.5,"cap":null}"#);
/// ```
pub mod serde_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::Seconds;

    /// Serializes as seconds in a float.
    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(duration.as_secs_f64())
    }

    /// Deserializes text accepted by [`super::parse`] or a non-negative
    /// number of seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        Seconds::deserialize(deserializer).map(|seconds| seconds.0)
    }

    /// The same for `Option<Duration>`: `null` is `None`; pair it with
    /// `#[serde(default)]` so a missing field (and TOML, which has no null)
    /// reads as `None`.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        use super::super::Seconds;

        /// Serializes `Some` as seconds in a float and `None` as `null`.
        pub fn serialize<S: Serializer>(
            duration: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match duration {
                Some(duration) => serializer.serialize_some(&duration.as_secs_f64()),
                None => serializer.serialize_none(),
            }
        }

        /// Deserializes `null` as `None`, anything else as in
        /// [`super::deserialize`].
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            Option::<Seconds>::deserialize(deserializer).map(|value| value.map(|s| s.0))
        }
    }
}

/// A duration as written in config, wrapped so `Option` can reuse it.
struct Seconds(Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecondsVisitor).map(Seconds)
    }
}

struct SecondsVisitor;

impl Visitor<'_> for SecondsVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a duration such as "500ms", "1.5s", "2m" or a number of seconds"#)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, secs: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(secs))
    }

    fn visit_i64<E: de::Error>(self, secs: i64) -> Result<Duration, E> {
        u64::try_from(secs).map(Duration::from_secs).map_err(|_| {
            E::custom(format!(
                "invalid duration {secs} (seconds): a duration cannot be negative"
            ))
        })
    }

    fn visit_f64<E: de::Error>(self, secs: f64) -> Result<Duration, E> {
        from_secs_f64(secs).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_every_unit_with_decimals() {
        for (text, expected) in [
            ("500ms", ms(500)),
            ("10s", secs(10)),
            ("60s", secs(60)),
            ("1.5s", ms(1500)),
            ("2m", secs(120)),
            ("2min", secs(120)),
            ("1.25m", secs(75)),
            ("1h", secs(3600)),
            ("1d", secs(86_400)),
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            (" 3 s ", secs(3)),
            (" 10 s ", secs(10)),
            (".25s", ms(250)),
            (".5s", ms(500)),
            ("5.s", secs(5)),
            ("0.1s", ms(100)),
            ("0.001s", ms(1)),
            ("0.1234567891s", Duration::from_nanos(123_456_789)),
            ("0", Duration::ZERO),
        ] {
            assert_eq!(parse(text), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn a_bare_number_string_means_seconds() {
        assert_eq!(parse("10"), Ok(secs(10)));
        assert_eq!(parse("60"), Ok(secs(60)));
        assert_eq!(parse("1.5"), Ok(ms(1500)));
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for (text, reason) in [
            ("", "expected a non-negative number"),
            ("s", "expected a non-negative number"),
            ("abc", "expected a non-negative number"),
            ("+5s", "expected a non-negative number"),
            ("NaN", "expected a non-negative number"),
            ("-1s", "cannot be negative"),
            ("-5s", "cannot be negative"),
            (".", "needs at least one digit"),
            (".s", "needs at least one digit"),
            ("1.5.2s", "more than one decimal point"),
            ("10x", "unknown unit"),
            ("5x", "unknown unit"),
            ("1e3s", "unknown unit"),
            ("10 parsecs", "unknown unit"),
            ("99999999999999999999999h", "too large"),
            ("99999999999999999999999d", "too large"),
            ("99999999999999999999d", "too large"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(reason), "{text:?}: {err}");
            assert!(err.contains(&format!("{text:?}")), "{text:?}: {err}");
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Probe {
        #[serde(with = "serde_secs")]
        wait: Duration,
        #[serde(default, with = "serde_secs::option")]
        cap: Option<Duration>,
    }

    fn read(json: &str) -> Result<Probe, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn serde_reads_numbers_as_seconds_and_text() {
        assert_eq!(read(r#"{"wait": 3}"#).unwrap().wait, secs(3));
        assert_eq!(read(r#"{"wait": 60}"#).unwrap().wait, secs(60));
        assert_eq!(read(r#"{"wait": 0.25}"#).unwrap().wait, ms(250));
        assert_eq!(read(r#"{"wait": 1.5}"#).unwrap().wait, ms(1500));
        assert_eq!(read(r#"{"wait": "1.5s"}"#).unwrap().wait, ms(1500));
        assert_eq!(read(r#"{"wait": "60"}"#).unwrap().wait, secs(60));
        for (json, reason) in [
            (r#"{"wait": -1}"#, "cannot be negative"),
            (r#"{"wait": -0.5}"#, "cannot be negative"),
            (r#"{"wait": 1e300}"#, "too large"),
            (r#"{"wait": "soon"}"#, "invalid duration \"soon\""),
            (r#"{"wait": true}"#, "a duration such as"),
        ] {
            let err = read(json).unwrap_err().to_string();
            assert!(err.contains(reason), "{json}: {err}");
        }
    }

    #[test]
    fn serde_reads_toml_numbers_and_rejects_nan() {
        #[derive(Debug, Deserialize)]
        struct Toml {
            #[serde(with = "serde_secs")]
            wait: Duration,
        }
        let read = |text: &str| toml::from_str::<Toml>(text).map(|t| t.wait);
        assert_eq!(read("wait = 5").unwrap(), secs(5));
        assert_eq!(read("wait = 2.5").unwrap(), ms(2500));
        assert_eq!(read("wait = \"2m\"").unwrap(), secs(120));
        for (text, reason) in [
            ("wait = nan", "not a number"),
            ("wait = inf", "too large"),
            ("wait = -5", "cannot be negative"),
        ] {
            let err = read(text).unwrap_err().to_string();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn serde_option_and_float_seconds_round_trip() {
        assert_eq!(read(r#"{"wait": "1s"}"#).unwrap().cap, None);
        assert_eq!(read(r#"{"wait": "1s", "cap": null}"#).unwrap().cap, None);
        let probe = read(r#"{"wait": "1s", "cap": "2m"}"#).unwrap();
        assert_eq!(probe.cap, Some(secs(120)));
        let json = serde_json::to_string(&probe).unwrap();
        assert_eq!(json, r#"{"wait":1.0,"cap":120.0}"#);
        assert_eq!(read(&json).unwrap(), probe);
        let precise = Probe {
            wait: Duration::from_micros(1_234_567),
            cap: Some(ms(100)),
        };
        assert_eq!(
            read(&serde_json::to_string(&precise).unwrap()).unwrap(),
            precise
        );
    }
}
