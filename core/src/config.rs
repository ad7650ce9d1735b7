//! Configuration.

/// Durations in config files and JSON: `"500ms"`, `"10s"`, `"1.5s"`, `"2m"`,
/// `"1h"`, `"1d"`, or a number of seconds. Serialised as seconds (float).
pub mod duration_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Parses a human duration.
    ///
    /// ```
    /// use polyrelay::config::duration_serde::parse;
    /// use std::time::Duration;
    /// assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
    /// assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
    /// assert!(parse("soon").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let value: f64 = number.parse().map_err(|_| {
            format!("expected a duration such as \"500ms\", \"10s\" or \"2m\", got {text:?}")
        })?;
        let seconds = match unit.trim() {
            "ms" => value / 1000.0,
            "" | "s" => value,
            "m" | "min" => value * 60.0,
            "h" => value * 3600.0,
            "d" => value * 86_400.0,
            other => {
                return Err(format!(
                    "unknown duration unit {other:?} in {text:?}; use ms, s, m, h or d"
                ))
            }
        };
        Duration::try_from_secs_f64(seconds).map_err(|_| format!("duration out of range: {text:?}"))
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(f64),
        Text(String),
    }

    fn from_raw(raw: Raw) -> Result<Duration, String> {
        match raw {
            Raw::Seconds(s) => Duration::try_from_secs_f64(s)
                .map_err(|_| format!("expected a non-negative number of seconds, got {s}")),
            Raw::Text(t) => parse(&t),
        }
    }

    /// Serialises as seconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    /// Deserialises from a number of seconds or a duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        from_raw(Raw::deserialize(d)?).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<Duration>`.
    pub mod option {
        use super::*;

        /// Serialises as seconds or null.
        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_f64(d.as_secs_f64()),
                None => s.serialize_none(),
            }
        }

        /// Deserialises from null, a number of seconds or a duration string.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<Raw>::deserialize(d)?
                .map(from_raw)
                .transpose()
                .map_err(serde::de::Error::custom)
        }
    }
}
