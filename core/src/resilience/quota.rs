//! Request quotas that reset at the start of a local calendar day or month.
//!
//! Providers grant N requests per calendar day (most) or per calendar month
//! (CoinPaprika, Cohere's trial keys) in some time zone. A window is
//! `[start(period holding d), start(next period))` in that zone, computed as
//! UTC instants: a day is not always 24 hours long and does not always start
//! at 00:00 (DST changes at midnight, skipped days), and months differ in
//! length. A monthly quota is held to its month, not divided into days: a
//! quiet week leaves its requests for the rest of the month, as the provider
//! counts them.
//!
//! [`QuotaWindow`] and [`quota_key`] are pure, so a shared (Redis) quota can
//! key and expire its counters on exactly the same boundaries as the
//! in-process [`CalendarQuota`].
//!
//! ```
//! use polyrelay::clock::FakeClock;
//! use polyrelay::internal::resilience::quota::{CalendarQuota, Quota, QuotaDecision};
//! use std::time::Duration;
//!
//! // 23:59:59 in Paris (UTC+2 in June).
//! let clock = FakeClock::new("2025-06-15T21:59:59Z".parse().unwrap());
//! let quota = CalendarQuota::new(Quota::per_day(1), chrono_tz::Europe::Paris, clock.shared());
//! assert_eq!(quota.try_consume(1), QuotaDecision::Allowed { remaining: 0 });
//! assert_eq!(
//!     quota.try_consume(1),
//!     QuotaDecision::Exhausted {
//!         reset_at: "2025-06-15T22:00:00Z".parse().unwrap(),
//!         retry_after: Duration::from_secs(1),
//!     }
//! );
//! ```

use std::fmt;
use std::time::Duration;

use chrono::{
    DateTime, Datelike, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
};
use chrono_tz::Tz;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;

/// How long a quota's window lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaPeriod {
    /// A local calendar day.
    Day,
    /// A local calendar month.
    Month,
}

impl QuotaPeriod {
    /// The first date of the period holding `date`.
    fn first_date(self, date: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => date,
            Self::Month => date.with_day(1).unwrap_or(date),
        }
    }

    /// The first date of the period after the one starting on `first`.
    fn next_first(self, first: NaiveDate) -> Option<NaiveDate> {
        match self {
            Self::Day => first.succ_opt(),
            Self::Month => first.checked_add_months(Months::new(1)),
        }
    }

    /// `day` or `month`, as in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

impl fmt::Display for QuotaPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request quota: `limit` requests per calendar `period`.
///
/// ```
/// use polyrelay::internal::resilience::quota::{Quota, QuotaPeriod};
///
/// // CoinPaprika's free plan: 20,000 calls a month.
/// const FREE_PLAN: Quota = Quota::per_month(20_000);
/// assert_eq!(FREE_PLAN.period, QuotaPeriod::Month);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quota {
    /// Requests allowed per window.
    pub limit: u64,
    /// How long a window lasts.
    pub period: QuotaPeriod,
}

impl Quota {
    /// `limit` requests per local calendar day.
    pub const fn per_day(limit: u64) -> Self {
        Self {
            limit,
            period: QuotaPeriod::Day,
        }
    }

    /// `limit` requests per local calendar month.
    pub const fn per_month(limit: u64) -> Self {
        Self {
            limit,
            period: QuotaPeriod::Month,
        }
    }

    /// The limit when the period is `period`.
    pub fn limit_per(&self, period: QuotaPeriod) -> Option<u64> {
        (self.period == period).then_some(self.limit)
    }
}

/// One local calendar day or month as a half-open UTC interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuotaWindow {
    /// A day or a month.
    pub period: QuotaPeriod,
    /// The window's first local date (the 1st, for a month).
    pub date: NaiveDate,
    /// The first instant of `date` in the zone.
    pub start: DateTime<Utc>,
    /// The first instant of the next window: when a counter resets.
    pub end: DateTime<Utc>,
}

impl QuotaWindow {
    /// The window of `period` holding local date `date` in `tz`.
    pub fn for_date(date: NaiveDate, tz: Tz, period: QuotaPeriod) -> Self {
        let first = period.first_date(date);
        let end = period
            .next_first(first)
            .map_or(DateTime::<Utc>::MAX_UTC, |next| start_of_day(next, tz));
        Self {
            period,
            date: first,
            start: start_of_day(first, tz),
            end,
        }
    }

    /// The window holding `instant`: the local date it falls on in `tz`.
    pub fn containing(instant: DateTime<Utc>, tz: Tz, period: QuotaPeriod) -> Self {
        Self::for_date(local_time(instant, tz).date(), tz, period)
    }

    /// How long the window lasts: 24 h on most days, 23 h or 25 h on DST
    /// days; 28 to 31 days (give or take that hour) for a month.
    pub fn length(&self) -> Duration {
        (self.end - self.start).to_std().unwrap_or_default()
    }

    /// The window's name in keys: the local date of a day (`2025-10-26`),
    /// the year and month of a month (`2025-10`), so the two never collide.
    pub fn label(&self) -> String {
        match self.period {
            QuotaPeriod::Day => self.date.format("%Y-%m-%d").to_string(),
            QuotaPeriod::Month => self.date.format("%Y-%m").to_string(),
        }
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

/// The Redis key of a provider's quota counter:
/// `q:{<provider>}:<name>:<window>`, with the window's [label](QuotaWindow::label).
///
/// The braces are a Redis Cluster hash tag: all of a provider's keys share a
/// slot, so one script can touch several of them.
///
/// ```
/// use chrono::NaiveDate;
/// use polyrelay::internal::resilience::quota::{quota_key, QuotaPeriod, QuotaWindow};
///
/// let date = NaiveDate::from_ymd_opt(2025, 10, 26).unwrap();
/// let day = QuotaWindow::for_date(date, chrono_tz::UTC, QuotaPeriod::Day);
/// assert_eq!(quota_key("gnews", "requests", &day), "q:{gnews}:requests:2025-10-26");
/// let month = QuotaWindow::for_date(date, chrono_tz::UTC, QuotaPeriod::Month);
/// assert_eq!(quota_key("coinpaprika", "requests", &month), "q:{coinpaprika}:requests:2025-10");
/// ```
pub fn quota_key(provider: &str, name: &str, window: &QuotaWindow) -> String {
    format!("q:{{{provider}}}:{name}:{}", window.label())
}

/// The outcome of [`CalendarQuota::try_consume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaDecision {
    /// The units were taken; `remaining` are left in the window.
    Allowed {
        /// Units left in the current window.
        remaining: u64,
    },
    /// Not enough left in the window; nothing was taken.
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
    /// Units allowed per window.
    pub limit: u64,
    /// How long a window lasts (`day` or `month`).
    pub period: QuotaPeriod,
    /// Units taken in the current window.
    pub used: u64,
    /// Units left in the current window.
    pub remaining: u64,
    /// The IANA zone whose calendar the quota follows.
    pub timezone: &'static str,
    /// The first local date of the current window.
    pub date: NaiveDate,
    /// When the current window ends.
    pub reset_at: DateTime<Utc>,
}

/// A process-local quota per calendar day or month.
///
/// Counts units per window and refuses a request that would go over the
/// limit *before* counting it, so rejected calls never burn quota. The
/// counter resets at the start of the next window; windows only move
/// forward, so a wall clock stepping back never restores spent quota.
#[derive(Debug)]
pub struct CalendarQuota {
    limit: u64,
    period: QuotaPeriod,
    tz: Tz,
    clock: SharedClock,
    counter: Mutex<WindowCounter>,
}

#[derive(Debug)]
struct WindowCounter {
    window: QuotaWindow,
    used: u64,
}

impl WindowCounter {
    fn roll_over(&mut self, now: DateTime<Utc>, tz: Tz) {
        if now >= self.window.end {
            self.window = QuotaWindow::containing(now, tz, self.window.period);
            self.used = 0;
        }
    }
}

impl CalendarQuota {
    /// `quota` in `tz`'s calendar, with nothing used yet.
    pub fn new(quota: Quota, tz: Tz, clock: SharedClock) -> Self {
        let window = QuotaWindow::containing(clock.wall(), tz, quota.period);
        Self {
            limit: quota.limit,
            period: quota.period,
            tz,
            clock,
            counter: Mutex::new(WindowCounter { window, used: 0 }),
        }
    }

    /// Takes `cost` units if that many are left in the window; otherwise
    /// takes nothing and says when the quota resets. A cost of 0 is a peek.
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
    /// arrives after the window rolled over credits the new one.
    pub fn refund(&self, cost: u64) {
        let now = self.clock.wall();
        let mut counter = self.counter.lock();
        counter.roll_over(now, self.tz);
        counter.used = counter.used.saturating_sub(cost);
    }

    /// Adds `units` to the current window even past the limit: what was
    /// spent beyond an estimate (a budget's settlement).
    pub fn charge(&self, units: u64) {
        let now = self.clock.wall();
        let mut counter = self.counter.lock();
        counter.roll_over(now, self.tz);
        counter.used = counter.used.saturating_add(units);
    }

    /// The current window's label ([`QuotaWindow::label`]) and the units
    /// used in it: what is saved to keep the count across restarts.
    pub(crate) fn saved(&self) -> (String, u64) {
        let now = self.clock.wall();
        let mut counter = self.counter.lock();
        counter.roll_over(now, self.tz);
        (counter.window.label(), counter.used)
    }

    /// Takes back `used` units saved for the window labelled `label`, when
    /// that is still the current window (a saved count of an earlier day
    /// or month has reset since).
    pub(crate) fn restore(&self, label: &str, used: u64) {
        let now = self.clock.wall();
        let mut counter = self.counter.lock();
        counter.roll_over(now, self.tz);
        if counter.window.label() == label {
            counter.used = counter.used.max(used);
        }
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
            period: self.period,
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
            let window = QuotaWindow::for_date(day, tz, QuotaPeriod::Day);
            assert_eq!(window.start, utc(start), "{tz} {day}");
            assert_eq!(window.length(), hours * HOUR, "{tz} {day}");
            for instant in [window.start, window.end - chrono::Duration::milliseconds(1)] {
                assert_eq!(
                    QuotaWindow::containing(instant, tz, QuotaPeriod::Day),
                    window,
                    "{tz} {instant}"
                );
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
                let window = QuotaWindow::for_date(day, tz, QuotaPeriod::Day);
                let next = QuotaWindow::for_date(day.succ_opt().unwrap(), tz, QuotaPeriod::Day);
                assert_eq!(window.end, next.start, "{tz} {day}");
                assert!(window.start <= window.end, "{tz} {day}");
                if window.start < window.end {
                    assert_eq!(
                        QuotaWindow::containing(window.start, tz, QuotaPeriod::Day),
                        window,
                        "{tz} {day}"
                    );
                }
            }
        }
        let apia = chrono_tz::Pacific::Apia;
        assert_eq!(
            QuotaWindow::for_date(date(2011, 12, 30), apia, QuotaPeriod::Day).length(),
            Duration::ZERO
        );
        let juneau = chrono_tz::America::Juneau;
        assert_eq!(
            QuotaWindow::for_date(date(1867, 10, 19), juneau, QuotaPeriod::Day).length(),
            48 * HOUR
        );
    }

    /// Havana falls back from 01:00 to 00:00 on
    /// 2025-11-02, so local midnight happens twice; the quota resets once.
    #[test]
    fn ambiguous_midnight_resets_once() {
        let clock = FakeClock::new(utc("2025-11-01T12:00:00Z"));
        let quota = CalendarQuota::new(Quota::per_day(1_000), Havana, clock.shared());
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
        let quota = CalendarQuota::new(Quota::per_day(3), Paris, clock.shared());
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
        let quota = CalendarQuota::new(Quota::per_day(100), Tz::UTC, clock.shared());
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
        let quota = CalendarQuota::new(Quota::per_day(2), Tz::UTC, clock.shared());
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
        let quota = CalendarQuota::new(Quota::per_day(10), Paris, clock.shared());
        quota.try_consume(4);
        let json = serde_json::to_value(quota.snapshot()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "limit": 10,
                "period": "day",
                "used": 4,
                "remaining": 6,
                "timezone": "Europe/Paris",
                "date": "2025-10-26",
                "reset_at": "2025-10-26T23:00:00Z",
            })
        );
    }

    #[test]
    fn key_names_the_local_day_or_month_with_a_hash_tag() {
        let instant = utc("2025-10-25T22:30:00Z");
        let window = QuotaWindow::containing(instant, Paris, QuotaPeriod::Day);
        assert_eq!(
            quota_key("openweather", "daily", &window),
            "q:{openweather}:daily:2025-10-26"
        );
        let window = QuotaWindow::containing(instant, Paris, QuotaPeriod::Month);
        assert_eq!(
            quota_key("coinpaprika", "requests", &window),
            "q:{coinpaprika}:requests:2025-10"
        );
    }

    /// Months start at local midnight of the 1st, whatever their length,
    /// DST included (Paris leaves summer time on 2025-10-26).
    #[test]
    fn month_windows_follow_the_local_calendar() {
        let rows = [
            (
                Paris,
                date(2025, 10, 26),
                "2025-09-30T22:00:00Z",
                "2025-10-31T23:00:00Z",
            ),
            (
                Paris,
                date(2025, 2, 1),
                "2025-01-31T23:00:00Z",
                "2025-02-28T23:00:00Z",
            ),
            (
                Tz::UTC,
                date(2024, 2, 29),
                "2024-02-01T00:00:00Z",
                "2024-03-01T00:00:00Z",
            ),
            (
                Tz::UTC,
                date(2025, 12, 31),
                "2025-12-01T00:00:00Z",
                "2026-01-01T00:00:00Z",
            ),
            (
                Santiago,
                date(2025, 9, 7),
                "2025-09-01T04:00:00Z",
                "2025-10-01T03:00:00Z",
            ),
        ];
        for (tz, day, start, end) in rows {
            let window = QuotaWindow::for_date(day, tz, QuotaPeriod::Month);
            assert_eq!(
                (window.start, window.end),
                (utc(start), utc(end)),
                "{tz} {day}"
            );
            assert_eq!(window.date.day(), 1, "{tz} {day}");
            let last = window.end - chrono::Duration::milliseconds(1);
            for instant in [window.start, last] {
                assert_eq!(
                    QuotaWindow::containing(instant, tz, QuotaPeriod::Month),
                    window
                );
            }
            let next = QuotaWindow::containing(window.end, tz, QuotaPeriod::Month);
            assert_eq!(next.start, window.end, "{tz} {day}: months are gapless");
        }
    }

    /// A monthly quota is the month's, not a day's share of it: spent on
    /// the first day, it stays spent until the 1st of the next month.
    #[test]
    fn monthly_quota_resets_on_the_first_of_the_next_month() {
        let clock = FakeClock::new(utc("2026-02-01T00:00:00Z"));
        let quota = CalendarQuota::new(Quota::per_month(3), Tz::UTC, clock.shared());
        for remaining in [2, 1, 0] {
            assert_eq!(quota.try_consume(1), QuotaDecision::Allowed { remaining });
        }
        clock.advance(27 * 24 * HOUR + 23 * HOUR);
        assert_eq!(
            quota.try_consume(1),
            QuotaDecision::Exhausted {
                reset_at: utc("2026-03-01T00:00:00Z"),
                retry_after: HOUR,
            }
        );
        clock.advance(HOUR);
        assert_eq!(
            quota.try_consume(1),
            QuotaDecision::Allowed { remaining: 2 }
        );
        let snapshot = quota.snapshot();
        assert_eq!(
            (snapshot.period, snapshot.date),
            (QuotaPeriod::Month, date(2026, 3, 1))
        );
    }
}
