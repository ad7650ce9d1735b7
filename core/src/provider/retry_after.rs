//! Reading a server's requested wait: `Retry-After` (seconds or any of the
//! three HTTP-date forms) and `retry-after-ms`.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// Parses a `Retry-After` value (RFC 9110 §10.2.3) into a delay from `now`.
///
/// Accepts delay-seconds (a non-negative decimal integer; huge values
/// saturate) and the three HTTP-date forms recipients must accept (§5.6.7):
/// IMF-fixdate `Wed, 21 Oct 2015 07:28:00 GMT`, RFC 850
/// `Wednesday, 21-Oct-15 07:28:00 GMT` (two-digit years resolved within 50
/// years of `now`, as §5.6.7 requires) and asctime `Wed Oct 21 07:28:00 2015`
/// (day space-padded or not). A date in the past gives `Some(0)`. Parsing is
/// robust where it costs nothing: names are case-insensitive and a day name
/// that disagrees with the date is tolerated (it is redundant). Anything else
/// (`soon`, `-5`, `1.5`, empty) is `None`: treat the header as absent and use
/// the computed backoff.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if value.starts_with(|c: char| c.is_ascii_digit()) {
        if !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // All digits: parsing can only fail by overflow.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(value, now)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Parses a `retry-after-ms` value (sent by several LLM providers): a
/// non-negative number of milliseconds, fraction allowed (`"1500"`,
/// `"20.5"`). Signs, exponents, `inf`/`NaN` and other text are `None`.
/// Where both headers are present, prefer this one: it is more precise.
pub(crate) fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    let millis: f64 = value.parse().ok()?;
    Some(Duration::try_from_secs_f64(millis / 1_000.0).unwrap_or(Duration::MAX))
}

/// Parses the three HTTP-date forms of RFC 9110 §5.6.7.
fn parse_http_date(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut parts = value.split_ascii_whitespace();
    let day_name = parts.next()?;
    let (day, month, year, time) = if let Some(day_name) = day_name.strip_suffix(',') {
        if !is_day_name(day_name) {
            return None;
        }
        let day_field = parts.next()?;
        let date = match day_field.split_once('-') {
            // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
            Some((day, rest)) => {
                let (month, year) = rest.split_once('-')?;
                let year = two_digit_year(number(year, 2, 2)?, now);
                (
                    number(day, 1, 2)?,
                    month_number(month)?,
                    year,
                    parts.next()?,
                )
            }
            // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
            None => {
                let month = month_number(parts.next()?)?;
                let year = number(parts.next()?, 4, 4)?;
                (number(day_field, 1, 2)?, month, year, parts.next()?)
            }
        };
        if parts.next() != Some("GMT") {
            return None;
        }
        date
    } else {
        // asctime: `Sun Nov  6 08:49:37 1994`
        if !is_day_name(day_name) {
            return None;
        }
        let month = month_number(parts.next()?)?;
        let day = number(parts.next()?, 1, 2)?;
        let time = parts.next()?;
        (day, month, number(parts.next()?, 4, 4)?, time)
    };
    if parts.next().is_some() {
        return None;
    }
    let mut clock = time.split(':');
    let hour = number(clock.next()?, 2, 2)?;
    let minute = number(clock.next()?, 2, 2)?;
    // RFC 9110 allows second 60 (a leap second); chrono does not.
    let second = number(clock.next()?, 2, 2)?.min(59);
    if clock.next().is_some() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some(date.and_hms_opt(hour, minute, second)?.and_utc())
}

/// RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in
/// the future means the most recent past year with those digits.
fn two_digit_year(two_digits: u32, now: DateTime<Utc>) -> u32 {
    let current = u32::try_from(now.year()).unwrap_or(0);
    let year = current - current % 100 + two_digits;
    if year > current + 50 {
        year.saturating_sub(100)
    } else if year + 50 <= current {
        year + 100
    } else {
        year
    }
}

/// A decimal number of `min..=max` ASCII digits (no sign, no spaces).
fn number(text: &str, min: usize, max: usize) -> Option<u32> {
    if !(min..=max).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let index = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))?;
    u32::try_from(index + 1).ok()
}

fn is_day_name(name: &str) -> bool {
    const DAYS: [&str; 14] = [
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
        "Sun",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    DAYS.iter().any(|day| day.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FakeClock};
    use crate::resilience::retry::{Backoff, RetryConfig, RetryDecision};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    // ---- Retry-After ----

    #[tokio::test]
    async fn retry_after_seconds_replaces_the_backoff() {
        let clock = FakeClock::new(at("2015-10-21T07:27:30Z"));
        clock.auto_advance(true);
        let config = RetryConfig::default();
        let backoff = Backoff::with_seed(&config, 16);
        let hint = parse_retry_after("3", clock.wall());
        assert_eq!(hint, Some(secs(3)));

        let decision = RetryDecision::decide(&config, &backoff, 1, hint, secs(30));
        assert_eq!(decision, RetryDecision::Retry { after: secs(3) });
        let RetryDecision::Retry { after } = decision else {
            unreachable!()
        };
        clock.backoff(after).await;
        assert_eq!(clock.now(), secs(3), "next attempt exactly at +3 s");

        // With the header ignored the jittered backoff applies instead.
        let ignore = RetryConfig {
            respect_retry_after: false,
            ..RetryConfig::default()
        };
        match RetryDecision::decide(&ignore, &backoff, 1, hint, secs(30)) {
            RetryDecision::Retry { after } => assert!(after <= Duration::from_millis(500)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_http_dates_in_all_three_forms() {
        let now = at("2015-10-21T07:27:30Z");
        for value in [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28:00 2015",
            " wed, 21 OCT 2015 07:28:00 GMT ",
        ] {
            assert_eq!(parse_retry_after(value, now), Some(secs(30)), "{value:?}");
        }
        // asctime pads a one-digit day with a space; unpadded and zero-padded
        // days are accepted too.
        let now = at("1994-11-06T08:49:07Z");
        for value in [
            "Sun Nov  6 08:49:37 1994",
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov 06 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(value, now), Some(secs(30)), "{value:?}");
        }
    }

    #[test]
    fn past_dates_clamp_to_zero() {
        let now = at("2015-10-21T07:27:30Z");
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Thu Jan  1 00:00:00 1970", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_is_ignored_and_the_backoff_used() {
        let now = at("2015-10-21T07:27:30Z");
        for value in [
            "soon",
            "-5",
            "",
            "   ",
            "+5",
            "1.5",
            "3s",
            "0x10",
            "Wed, 21 Oct 2015 07:28:00",
            "Wed, 21 Oct 2015 07:28:00 UTC",
            "Wed, 21 Oct 2015 07:28:00 GMT extra",
            "Wed, 31 Feb 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 24:28:00 GMT",
            "Wed, 21 Oct 15 07:28:00 GMT",
            "Someday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28 2015",
        ] {
            assert_eq!(parse_retry_after(value, now), None, "{value:?}");
        }
        let config = RetryConfig::default();
        let backoff = Backoff::with_seed(&config, 17);
        for value in ["soon", "-5"] {
            let hint = parse_retry_after(value, now);
            match RetryDecision::decide(&config, &backoff, 2, hint, secs(30)) {
                RetryDecision::Retry { after } => assert!(after <= secs(1), "{after:?}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn rfc_850_two_digit_years_stay_within_fifty_years() {
        let now = at("2026-01-01T00:00:00Z");
        // 2076 is exactly 50 years ahead: taken as-is (a fixed 1970 pivot
        // would read 1976 and return 0).
        let ahead = parse_retry_after("Wednesday, 01-Jan-76 00:00:00 GMT", now).unwrap();
        assert_eq!(ahead, (at("2076-01-01T00:00:00Z") - now).to_std().unwrap());
        // 2077 would be more than 50 years ahead: it means 1977, in the past.
        assert_eq!(
            parse_retry_after("Saturday, 01-Jan-77 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        let late = at("2095-06-01T00:00:00Z");
        let date = parse_retry_after("Monday, 01-Jan-01 00:00:00 GMT", late).unwrap();
        assert_eq!(date, (at("2101-01-01T00:00:00Z") - late).to_std().unwrap());
    }

    #[test]
    fn delay_seconds_edge_values() {
        let now = at("2015-10-21T07:27:30Z");
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(" 120 ", now), Some(secs(120)));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(secs(u64::MAX))
        );
    }

    #[test]
    fn retry_after_ms_accepts_fractional_milliseconds() {
        assert_eq!(
            parse_retry_after_ms("1500"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after_ms("20.5"),
            Some(Duration::from_micros(20_500))
        );
        assert_eq!(parse_retry_after_ms(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after_ms(".5"), Some(Duration::from_micros(500)));
        assert_eq!(parse_retry_after_ms(&"9".repeat(400)), Some(Duration::MAX));
        for bad in [
            "", ".", "-1", "+1", "1e3", "inf", "NaN", "1.2.3", "soon", "1 500",
        ] {
            assert_eq!(parse_retry_after_ms(bad), None, "{bad:?}");
        }
    }
}
