//! Daily quotas that reset at local midnight.
//!
//! Many providers grant N requests per calendar day in some time zone (UTC,
//! US Pacific, ...). A day is the window `[start_of_day(d), start_of_day(d+1))`
//! in that zone, computed as UTC instants: it is not always 24 hours long and
//! does not always start at 00:00 (DST changes at midnight, skipped days).
//!
//! [`DayWindow`] and [`quota_key`] are pure, so a shared (Redis) quota can key
//! and expire its counters on exactly the same boundaries as the in-process
//! [`DailyQuota`].
//!
//! ```
//! use polyrelay::clock::FakeClock;
//! use polyrelay::internal::resilience::quota::{DailyQuota, QuotaDecision};
//! use std::time::Duration;
//!
//! // 23:59:59 in Paris (UTC+2 in June).
//! let clock = FakeClock::new("2025-06-15T21:59:59Z".parse().unwrap());
//! let quota = DailyQuota::new(1, chrono_tz::Europe::Paris, clock.shared());
//! assert_eq!(quota.try_consume(1), QuotaDecision::Allowed { remaining: 0 });
//! assert_eq!(
//!     quota.try_consume(1),
//!     QuotaDecision::Exhausted {
//!         reset_at: "2025-06-15T22:00:00Z".parse().unwrap(),
//!         retry_after: Duration::from_secs(1),
//!     }
//! );
//! ```

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use parking_lot::Mutex;
use serde::{de, Deserialize, Deserializer, Serialize};

use crate::clock::SharedClock;
use crate::echo::echo;

/// A daily quota as written in the configuration.
///
/// ```toml
/// [quota]
/// daily_limit = 1000
/// timezone = "America/Los_Angeles"   # IANA name; optional, UTC when absent
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Requests allowed per local calendar day.
    pub daily_limit: u64,
    /// The zone whose midnight resets the quota; `None` means UTC.
    #[serde(default, deserialize_with = "deserialize_timezone")]
    pub timezone: Option<Tz>,
}

impl QuotaConfig {
    /// Checks the values, naming the offending field in the error.
    pub fn validate(&self) -> Result<(), InvalidQuota> {
        if self.daily_limit == 0 {
            return Err(InvalidQuota {
                field: "daily_limit",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }

    /// The zone in effect: `timezone`, or UTC.
    pub fn zone(&self) -> Tz {
        self.timezone.unwrap_or(Tz::UTC)
    }
}

fn deserialize_timezone<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Tz>, D::Error> {
    let name = String::deserialize(deserializer)?;
    name.parse().map(Some).map_err(|_| {
        de::Error::custom(format_args!(
            "invalid quota `timezone`: {} is not an IANA time zone name",
            echo(&name)
        ))
    })
}

/// A quota configuration that cannot be used, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid quota `{field}`: {reason}")]
pub struct InvalidQuota {
    /// The configuration field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// One local calendar day as a half-open UTC interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DayWindow {
    /// The local calendar date.
    pub date: NaiveDate,
    /// The first instant of `date` in the zone.
    pub start: DateTime<Utc>,
    /// The first instant of the next date: when a daily counter resets.
    pub end: DateTime<Utc>,
}

impl DayWindow {
    /// The window of local date `date` in `tz`.
    pub fn for_date(date: NaiveDate, tz: Tz) -> Self {
        let end = date
            .succ_opt()
            .map_or(DateTime::<Utc>::MAX_UTC, |next| start_of_day(next, tz));
        Self {
            date,
            start: start_of_day(date, tz),
            end,
        }
    }

    /// The window holding `instant`: the local date it falls on in `tz`.
    pub fn containing(instant: DateTime<Utc>, tz: Tz) -> Self {
        Self::for_date(local_time(instant, tz).date(), tz)
    }

    /// How long the day lasts: 24 h on most days, 23 h or 25 h on DST days.
    pub fn length(&self) -> Duration {
        (self.end - self.start).to_std().unwrap_or_default()
    }
}

/// The first instant of local date `date` in `tz`.
///
/// Usually local midnight. When midnight does not exist (a DST change at
/// 00:00), it is the first instant after the gap; when midnight occurs twice,
/// it is the earlier one.
pub fn start_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    if let Some(start) = tz.from_local_datetime(&midnight).earliest() {
        return start.with_timezone(&Utc);
    }
    // Midnight fell into a gap: find the transition that skipped it, the
    // first instant whose local time is at or after midnight. Offsets are
    // under a day, so it lies within a day of midnight read as UTC, and tzdb
    // transitions fall on whole seconds.
    let target = midnight.and_utc().timestamp();
    let reached = |secs: i64| {
        DateTime::from_timestamp(secs, 0).map_or(secs > target, |t| local_time(t, tz) >= midnight)
    };
    let (mut before, mut after) = (target - 86_400, target + 86_400);
    while after - before > 1 {
        let mid = before + (after - before) / 2;
        if reached(mid) {
            after = mid;
        } else {
            before = mid;
        }
    }
    DateTime::from_timestamp(after, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Local wall time of `instant` in `tz` (the UTC time itself at the very ends
/// of chrono's range, where the local time is not representable).
fn local_time(instant: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    let utc = instant.naive_utc();
    utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix())
        .unwrap_or(utc)
}

/// The Redis key of a provider's daily counter:
/// `q:{<provider>}:<name>:<YYYY-MM-DD>`, with the local date of the window.
///
/// The braces are a Redis Cluster hash tag: all of a provider's keys share a
/// slot, so one script can touch several of them.
///
/// ```
/// use chrono::NaiveDate;
/// use polyrelay::internal::resilience::quota::quota_key;
///
/// let date = NaiveDate::from_ymd_opt(2025, 10, 26).unwrap();
/// assert_eq!(quota_key("gnews", "requests", date), "q:{gnews}:requests:2025-10-26");
/// ```
pub fn quota_key(provider: &str, name: &str, date: NaiveDate) -> String {
    format!("q:{{{provider}}}:{name}:{}", date.format("%Y-%m-%d"))
}

/// The outcome of [`DailyQuota::try_consume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaDecision {
    /// The units were taken; `remaining` are left today.
    Allowed {
        /// Units left in the current window.
        remaining: u64,
    },
    /// Not enough left today; nothing was taken.
    Exhausted {
        /// When the window ends and the counter resets.
        reset_at: DateTime<Utc>,
        /// Time from now until `reset_at`.
        retry_after: Duration,
    },
}

/// A point-in-time view of a quota, for telemetry and status endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaSnapshot {
    /// Units allowed per day.
    pub limit: u64,
    /// Units taken in the current window.
    pub used: u64,
    /// Units left in the current window.
    pub remaining: u64,
    /// The IANA zone whose days the quota follows.
    pub timezone: &'static str,
    /// The local date of the current window.
    pub date: NaiveDate,
    /// When the current window ends.
    pub reset_at: DateTime<Utc>,
}

/// A process-local daily quota.
///
/// Counts units per local day and refuses a request that would go over the
/// limit *before* counting it, so rejected calls never burn quota. The
/// counter resets at the start of the next local day; windows only move
/// forward, so a wall clock stepping back never restores spent quota.
#[derive(Debug)]
pub struct DailyQuota {
    limit: u64,
    tz: Tz,
    clock: SharedClock,
    counter: Mutex<DayCounter>,
}

#[derive(Debug)]
struct DayCounter {
    window: DayWindow,
    used: u64,
}

impl DayCounter {
    fn roll_over(&mut self, now: DateTime<Utc>, tz: Tz) {
        if now >= self.window.end {
            self.window = DayWindow::containing(now, tz);
            self.used = 0;
        }
    }
}

impl DailyQuota {
    /// A quota of `limit` units per local day in `tz`, with nothing used yet.
    pub fn new(limit: u64, tz: Tz, clock: SharedClock) -> Self {
        let window = DayWindow::containing(clock.wall(), tz);
        Self {
            limit,
            tz,
            clock,
            counter: Mutex::new(DayCounter { window, used: 0 }),
        }
    }

    /// Takes `cost` units if that many are left today; otherwise takes
    /// nothing and says when the quota resets. A cost of 0 is a peek.
    pub fn try_consume(&self, cost: u64) -> QuotaDecision {
        let now = self.clock.wall();
        let mut counter = self.counter.lock();
        counter.roll_over(now, self.tz);
        let left = self.limit.saturating_sub(counter.used);
        if cost > left {
            let reset_at = counter.window.end;
            return QuotaDecision::Exhausted {
                reset_at,
                retry_after: (reset_at - now).to_std().unwrap_or_default(),
            };
        }
        counter.used += cost;
        QuotaDecision::Allowed {
            remaining: left - cost,
        }
    }

    /// Gives back `cost` units for requests that were never sent (e.g. a
    /// connect failure). It applies to the current window: a refund that
    /// arrives after the day rolled over credits the new day.
    pub fn refund(&self, cost: u64) {
        let now = self.clock.wall();
        let mut counter = self.counter.lock();
        counter.roll_over(now, self.tz);
        counter.used = counter.used.saturating_sub(cost);
    }

    /// Units left in the current window.
    pub fn remaining(&self) -> u64 {
        self.snapshot().remaining
    }

    /// The quota's state now.
    pub fn snapshot(&self) -> QuotaSnapshot {
        let now = self.clock.wall();
        let mut counter = self.counter.lock();
        counter.roll_over(now, self.tz);
        QuotaSnapshot {
            limit: self.limit,
            used: counter.used,
            remaining: self.limit.saturating_sub(counter.used),
            timezone: self.tz.name(),
            date: counter.window.date,
            reset_at: counter.window.end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FakeClock};
    use chrono_tz::America::{Havana, Santiago};
    use chrono_tz::Europe::Paris;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    /// DST days in zones that move at midnight, and at other hours, both ways.
    #[test]
    fn dst_days_start_at_the_first_valid_instant() {
        let rows = [
            (Santiago, date(2025, 9, 7), "2025-09-07T04:00:00Z", 23),
            (Havana, date(2025, 3, 9), "2025-03-09T05:00:00Z", 23),
            (Havana, date(2025, 11, 2), "2025-11-02T04:00:00Z", 25),
            (Paris, date(2025, 3, 30), "2025-03-29T23:00:00Z", 23),
            (Paris, date(2025, 10, 26), "2025-10-25T22:00:00Z", 25),
            (Paris, date(2025, 6, 15), "2025-06-14T22:00:00Z", 24),
        ];
        for (tz, day, start, hours) in rows {
            let window = DayWindow::for_date(day, tz);
            assert_eq!(window.start, utc(start), "{tz} {day}");
            assert_eq!(window.length(), hours * HOUR, "{tz} {day}");
            for instant in [window.start, window.end - chrono::Duration::milliseconds(1)] {
                assert_eq!(DayWindow::containing(instant, tz), window, "{tz} {instant}");
            }
        }
    }

    /// No panic and a gapless partition of time, for every
    /// zone over a whole year and on historical oddities (a skipped day in Apia,
    /// a repeated day in Alaska, a zone with seconds in its offset).
    #[test]
    fn every_zone_partitions_time_into_days() {
        let mut days: Vec<NaiveDate> = date(2025, 1, 1).iter_days().take(366).collect();
        days.extend([date(2011, 12, 30), date(1867, 10, 19), date(1911, 3, 10)]);
        for tz in chrono_tz::TZ_VARIANTS {
            for &day in &days {
                let window = DayWindow::for_date(day, tz);
                let next = DayWindow::for_date(day.succ_opt().unwrap(), tz);
                assert_eq!(window.end, next.start, "{tz} {day}");
                assert!(window.start <= window.end, "{tz} {day}");
                if window.start < window.end {
                    assert_eq!(
                        DayWindow::containing(window.start, tz),
                        window,
                        "{tz} {day}"
                    );
                }
            }
        }
        let apia = chrono_tz::Pacific::Apia;
        assert_eq!(
            DayWindow::for_date(date(2011, 12, 30), apia).length(),
            Duration::ZERO
        );
        let juneau = chrono_tz::America::Juneau;
        assert_eq!(
            DayWindow::for_date(date(1867, 10, 19), juneau).length(),
            48 * HOUR
        );
    }

    /// Havana falls back from 01:00 to 00:00 on
    /// 2025-11-02, so local midnight happens twice; the quota resets once.
    #[test]
    fn ambiguous_midnight_resets_once() {
        let clock = FakeClock::new(utc("2025-11-01T12:00:00Z"));
        let quota = DailyQuota::new(1_000, Havana, clock.shared());
        let mut resets = Vec::new();
        let mut used_before = 0;
        for _ in 0..48 {
            assert!(matches!(
                quota.try_consume(1),
                QuotaDecision::Allowed { .. }
            ));
            let used = quota.snapshot().used;
            if used <= used_before {
                resets.push(clock.wall());
            }
            used_before = used;
            clock.advance(HOUR);
        }
        assert_eq!(
            resets,
            [utc("2025-11-02T04:00:00Z"), utc("2025-11-03T05:00:00Z")]
        );
    }

    #[test]
    fn quota_resets_at_local_midnight() {
        // 23:59:59.000 in Paris (CET, UTC+1) on 2025-12-01.
        let clock = FakeClock::new(utc("2025-12-01T22:59:59Z"));
        let quota = DailyQuota::new(3, Paris, clock.shared());
        for remaining in [2, 1, 0] {
            assert_eq!(quota.try_consume(1), QuotaDecision::Allowed { remaining });
        }
        assert_eq!(
            quota.try_consume(1),
            QuotaDecision::Exhausted {
                reset_at: utc("2025-12-01T23:00:00Z"),
                retry_after: Duration::from_secs(1),
            }
        );
        assert_eq!(quota.snapshot().used, 3, "a rejected call burns nothing");
        clock.advance(Duration::from_millis(999));
        assert!(matches!(
            quota.try_consume(1),
            QuotaDecision::Exhausted { .. }
        ));
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            quota.try_consume(1),
            QuotaDecision::Allowed { remaining: 2 }
        );
        assert_eq!(quota.snapshot().date, date(2025, 12, 2));
    }

    /// In process: exact counting under contention.
    #[test]
    fn concurrent_consumes_stop_exactly_at_the_limit() {
        let clock = FakeClock::at_epoch();
        let quota = DailyQuota::new(100, Tz::UTC, clock.shared());
        let admitted = std::sync::atomic::AtomicU64::new(0);
        let start = std::sync::Barrier::new(8);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    start.wait();
                    for _ in 0..25 {
                        if let QuotaDecision::Allowed { .. } = quota.try_consume(1) {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.into_inner(), 100);
        assert_eq!(quota.snapshot().used, 100);
        assert_eq!(quota.remaining(), 0);
    }

    #[test]
    fn refund_gives_back_unsent_requests() {
        let clock = FakeClock::at_epoch();
        let quota = DailyQuota::new(2, Tz::UTC, clock.shared());
        assert_eq!(
            quota.try_consume(2),
            QuotaDecision::Allowed { remaining: 0 }
        );
        quota.refund(1);
        assert_eq!(quota.remaining(), 1);
        quota.refund(5);
        assert_eq!(quota.remaining(), 2, "a refund never goes below zero used");
        assert_eq!(
            quota.try_consume(0),
            QuotaDecision::Allowed { remaining: 2 }
        );
        assert!(matches!(
            quota.try_consume(3),
            QuotaDecision::Exhausted { .. }
        ));
    }

    #[test]
    fn snapshot_serializes_window_and_reset() {
        let clock = FakeClock::new(utc("2025-10-26T10:00:00Z"));
        let quota = DailyQuota::new(10, Paris, clock.shared());
        quota.try_consume(4);
        let json = serde_json::to_value(quota.snapshot()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "limit": 10,
                "used": 4,
                "remaining": 6,
                "timezone": "Europe/Paris",
                "date": "2025-10-26",
                "reset_at": "2025-10-26T23:00:00Z",
            })
        );
    }

    #[test]
    fn config_parses_timezone_and_names_bad_fields() {
        let config: QuotaConfig =
            toml::from_str("daily_limit = 100\ntimezone = \"America/Los_Angeles\"").unwrap();
        assert_eq!(config.zone(), chrono_tz::America::Los_Angeles);
        assert_eq!(config.validate(), Ok(()));
        let config: QuotaConfig = toml::from_str("daily_limit = 100").unwrap();
        assert_eq!(config.zone(), Tz::UTC);

        let bad = toml::from_str::<QuotaConfig>("daily_limit = 1\ntimezone = \"Europe/Pariss\"");
        let message = bad.unwrap_err().to_string();
        assert!(
            message.contains("`timezone`") && message.contains("Europe/Pariss"),
            "{message}"
        );
        let unknown = toml::from_str::<QuotaConfig>("daily_limit = 1\nlimit = 2");
        assert!(unknown.unwrap_err().to_string().contains("limit"));
        let zero: QuotaConfig = toml::from_str("daily_limit = 0").unwrap();
        assert_eq!(zero.validate().unwrap_err().field, "daily_limit");
    }

    #[test]
    fn key_uses_the_local_date_and_a_hash_tag() {
        let instant = utc("2025-10-25T22:30:00Z");
        let window = DayWindow::containing(instant, Paris);
        assert_eq!(
            quota_key("openweather", "daily", window.date),
            "q:{openweather}:daily:2025-10-26"
        );
    }
}
