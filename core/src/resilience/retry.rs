//! TEMPORARY stub, replaced by the retry module.
use chrono::{DateTime, Utc};
use std::time::Duration;
/// Stub.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    if let Ok(s) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = httpdate::parse_http_date(value.trim()).ok()?;
    let at: DateTime<Utc> = at.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}
/// Stub.
pub fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| *v >= 0.0 && v.is_finite())
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
}
