//! MET Norway Locationforecast 2.0 (the data behind yr.no): `weather.current`
//! and `weather.forecast`.
//!
//! Keyless, but MET requires an identifying `User-Agent` with contact
//! details. The pipeline sets the client-wide one; this provider never sets
//! its own. Coordinates go out with at most 4 decimals ([`Degrees::to_param`]);
//! more is refused with 403.
//!
//! **403 is classified as [`FailureClass::Auth`].** At MET a 403 means the
//! User-Agent was refused (missing, blank, generic or blocked). The
//! User-Agent is MET's credential. Like a bad key, it does not fix itself
//! between calls, and MET treats clients that keep sending a refused
//! User-Agent as abusive. `Auth` benches the provider until the configuration
//! changes. `InvalidRequest` would send the same refused request on every
//! call. The message says what to fix.
//!
//! The compact format is an hourly time series for about 2.5 days, then
//! 6-hourly. `weather.current` is its first entry. The forecast is built from
//! it like this:
//! * days are local calendar days, approximated from the longitude as
//!   UTC + round(lon / 15) hours, since MET gives no time zone;
//! * min/max come from the instant temperatures of the day's entries (for
//!   6-hourly days, 4 samples, so the extremes are somewhat understated);
//! * precipitation is the sum of the `next_1_hours` amounts where they exist,
//!   else of the `next_6_hours` amounts, never counting an hour twice;
//! * the wind is the maximum instant speed;
//! * the condition is the most severe WMO code of the day, as Open-Meteo does;
//! * days after the first with fewer than 4 entries are dropped (the series'
//!   ragged end), as are days without any symbol.
//!
//! [`Degrees::to_param`]: crate::capability::weather::Degrees::to_param

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Deserialize;

use super::utc_text;
use crate::capability::marker;
use crate::capability::weather::{
    Condition, CurrentQuery, CurrentWeather, Forecast, ForecastDay, ForecastQuery, GeoPoint,
    Location,
};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// MET Norway (<https://api.met.no>): keyless forecasts for any point on
/// Earth, free under CC BY 4.0 with an identifying User-Agent.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetNorway;

static INFO: ProviderInfo = ProviderInfo {
    id: "met-norway",
    name: "MET Norway Locationforecast",
    auth: Auth::Keyless,
    base_url: "https://api.met.no",
    docs_url: "https://api.met.no/weatherapi/locationforecast/2.0/documentation",
    terms: "Free, commercial use included (NLOD 2.0 / CC BY 4.0, attribution required). \
            Requires an identifying User-Agent with contact details; at most 20 requests/s \
            per application; clients must cache (Expires / If-Modified-Since).",
    commercial_use: true,
    default_rate_limit: Some("20/s"),
    default_quota: None,
};

impl Provider for MetNorway {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(MetNorway: WeatherCurrent, WeatherForecast);

impl Serves<marker::WeatherCurrent> for MetNorway {
    fn build_request(
        &self,
        q: &CurrentQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        compact_request(&q.location, ctx)
    }

    fn read_response(
        &self,
        _q: &CurrentQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<CurrentWeather>, ProviderFailure> {
        let (reply, location) = read(&response)?;
        let malformed = |what: &str| malformed(&response, what);
        let first = reply
            .properties
            .timeseries
            .first()
            .ok_or_else(|| malformed("empty `timeseries`"))?;
        let now = &first.data.instant.details;
        // The condition now is the next hour's: a longer period's
        // symbol would be another answer.
        let symbol = EntryData::symbol_of(&first.data.next_1_hours)
            .ok_or_else(|| malformed("no `next_1_hours.summary.symbol_code` in the first entry"))?;
        Ok(Step::Done(CurrentWeather {
            location,
            observed_at: utc_text(first.time),
            temperature_c: now
                .air_temperature
                .ok_or_else(|| malformed("no `air_temperature` in the first entry"))?,
            feels_like_c: None,
            humidity_pct: now.relative_humidity,
            wind_speed_ms: now.wind_speed,
            wind_dir_deg: now.wind_from_direction,
            pressure_hpa: now.air_pressure_at_sea_level,
            precipitation_mm: first
                .data
                .next_1_hours
                .as_ref()
                .and_then(|p| p.details.as_ref())
                .and_then(|d| d.precipitation_amount),
            cloud_cover_pct: now.cloud_area_fraction,
            condition: Condition::from_wmo(
                wmo_code(symbol)
                    .ok_or_else(|| malformed(&format!("unknown symbol_code {symbol:?}")))?,
            ),
        }))
    }
}

impl Serves<marker::WeatherForecast> for MetNorway {
    fn build_request(
        &self,
        q: &ForecastQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        compact_request(&q.location, ctx)
    }

    fn read_response(
        &self,
        q: &ForecastQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Forecast>, ProviderFailure> {
        let (reply, location) = read(&response)?;
        // The requested longitude: validated, unlike the reply's.
        let lon = q.location.coordinates()?.lon.get();
        let daily = daily(&reply.properties.timeseries, lon, usize::from(q.days))
            .map_err(|symbol| malformed(&response, &format!("unknown symbol_code {symbol:?}")))?;
        if daily.is_empty() {
            return Err(malformed(&response, "no complete day in `timeseries`"));
        }
        Ok(Step::Done(Forecast {
            location,
            generated_at: reply.properties.meta.updated_at,
            daily,
        }))
    }
}

/// The compact forecast at the location's coordinates (a place name is
/// unsupported).
fn compact_request(
    location: &Location,
    ctx: &CallContext<'_>,
) -> Result<HttpRequest, ProviderFailure> {
    let at = location.coordinates()?;
    Ok(
        HttpRequest::get(ctx.base_url, "/weatherapi/locationforecast/2.0/compact")
            .query("lat", at.lat.to_param())
            .query("lon", at.lon.to_param()),
    )
}

/// The reply of either capability, and the point it answers for.
fn read(response: &HttpResponse) -> Result<(Reply, GeoPoint), ProviderFailure> {
    if response.status == 403 {
        return Err(response.failure(
            FailureClass::Auth,
            "MET Norway refused the User-Agent (403): it requires one that identifies \
             the application and gives contact details; set the client's User-Agent \
             and contact",
        ));
    }
    response.check_status()?;
    let reply: Reply = response.json()?;
    let [lon, lat, ..] = reply.geometry.coordinates[..] else {
        return Err(malformed(response, "no coordinates in `geometry`"));
    };
    let location = GeoPoint {
        lat,
        lon,
        name: None,
        country_code: None,
        timezone: None,
    };
    Ok((reply, location))
}

fn malformed(response: &HttpResponse, what: &str) -> ProviderFailure {
    ProviderFailure::malformed(format!("MET Norway reply: {what}")).status(response.status)
}

/// One local day being summed up.
struct DayTotals {
    date: NaiveDate,
    samples: u32,
    /// Temperatures; `None` once an entry of the day had none (the day's
    /// extremes are then unknown and the day is left out).
    min_max: Option<(f64, f64)>,
    precipitation: Option<f64>,
    /// An hour of the day has no amount: its total is unknown.
    precipitation_unknown: bool,
    /// `None` once an entry of the day has no wind.
    wind_max: Option<f64>,
    code: Option<u8>,
}

/// Aggregates the series into at most `limit` days (see the module docs);
/// an unknown symbol is returned as the error.
fn daily(series: &[Entry], lon: f64, limit: usize) -> Result<Vec<ForecastDay>, String> {
    let offset = TimeDelta::hours((lon / 15.0).round() as i64);
    let mut days: Vec<DayTotals> = Vec::new();
    let mut precipitation_until: Option<DateTime<Utc>> = None;
    for (i, entry) in series.iter().enumerate() {
        let details = &entry.data.instant.details;
        let Some(local) = entry.time.checked_add_signed(offset) else {
            continue;
        };
        let date = local.date_naive();
        let first = match days.last() {
            Some(day) => day.date != date,
            None => true,
        };
        if first {
            days.push(DayTotals {
                date,
                samples: 0,
                min_max: details.air_temperature.map(|t| (t, t)),
                precipitation: None,
                precipitation_unknown: false,
                wind_max: details.wind_speed,
                code: None,
            });
        }
        let Some(day) = days.last_mut() else {
            continue;
        };
        day.samples += 1;
        day.min_max = match (day.min_max, details.air_temperature) {
            (Some((min, max)), Some(t)) => Some((min.min(t), max.max(t))),
            _ => None,
        };
        day.wind_max = match (day.wind_max, details.wind_speed) {
            (Some(top), Some(w)) => Some(top.max(w)),
            _ => None,
        };
        if let Some(symbol) = entry.data.symbol() {
            let code = wmo_code(symbol).ok_or_else(|| symbol.to_string())?;
            day.code = Some(day.code.map_or(code, |c| c.max(code)));
        }
        if precipitation_until.is_none_or(|until| until <= entry.time) {
            let amount =
                |period: &Option<Period>| period.as_ref()?.details.as_ref()?.precipitation_amount;
            // Where the series is hourly, each hour's amount is needed: a
            // 6-hour amount instead would count some hours twice.
            let gap = series.get(i + 1).map(|next| next.time - entry.time);
            let hourly = gap.is_some_and(|gap| gap < TimeDelta::hours(6));
            let period = match amount(&entry.data.next_1_hours) {
                Some(a) => Some((Some(a), 1)),
                None if hourly => Some((None, 1)),
                None => match amount(&entry.data.next_6_hours) {
                    Some(a) => Some((Some(a), 6)),
                    // The last entry often has no periods at all.
                    None => gap.map(|_| (None, 6)),
                },
            };
            if let Some((amount, hours)) = period {
                match amount {
                    Some(a) => day.precipitation = Some(day.precipitation.unwrap_or(0.0) + a),
                    None => day.precipitation_unknown = true,
                }
                precipitation_until = entry.time.checked_add_signed(TimeDelta::hours(hours));
            }
        }
    }
    // Days are counted before broken ones are left out, so that a broken
    // day is missing rather than replaced by a later one.
    Ok(days
        .into_iter()
        .enumerate()
        .filter(|(i, day)| *i == 0 || day.samples >= 4)
        .take(limit)
        .filter_map(|(_, day)| {
            let (min, max) = day.min_max?;
            Some(ForecastDay {
                date: day.date.format("%Y-%m-%d").to_string(),
                temp_min_c: min,
                temp_max_c: max,
                precipitation_mm: day
                    .precipitation
                    .filter(|_| !day.precipitation_unknown)
                    .map(|p| (p * 100.0).round() / 100.0),
                wind_max_ms: day.wind_max,
                condition: Condition::from_wmo(day.code?),
            })
        })
        .collect())
}

/// The WMO code of a MET `symbol_code`, ignoring the `_day` / `_night` /
/// `_polartwilight` variant. WMO 4677 as polyrelay uses it has no sleet code,
/// so sleet maps to the snow code of the same intensity; MET gives no hail,
/// so every thunder symbol is 95. Two symbols are misspelt by MET itself
/// (`lightss…`) and are listed as sent.
pub(crate) fn wmo_code(symbol: &str) -> Option<u8> {
    let base = ["_day", "_night", "_polartwilight"]
        .iter()
        .find_map(|suffix| symbol.strip_suffix(suffix))
        .unwrap_or(symbol);
    Some(match base {
        "clearsky" => 0,
        "fair" => 1,
        "partlycloudy" => 2,
        "cloudy" => 3,
        "fog" => 45,
        "lightrain" => 61,
        "rain" => 63,
        "heavyrain" => 65,
        "lightsleet" | "lightsnow" => 71,
        "sleet" | "snow" => 73,
        "heavysleet" | "heavysnow" => 75,
        "lightrainshowers" => 80,
        "rainshowers" => 81,
        "heavyrainshowers" => 82,
        "lightsleetshowers" | "sleetshowers" | "lightsnowshowers" | "snowshowers" => 85,
        "heavysleetshowers" | "heavysnowshowers" => 86,
        "lightrainandthunder"
        | "rainandthunder"
        | "heavyrainandthunder"
        | "lightrainshowersandthunder"
        | "rainshowersandthunder"
        | "heavyrainshowersandthunder"
        | "lightsleetandthunder"
        | "sleetandthunder"
        | "heavysleetandthunder"
        | "lightssleetshowersandthunder"
        | "sleetshowersandthunder"
        | "heavysleetshowersandthunder"
        | "lightsnowandthunder"
        | "snowandthunder"
        | "heavysnowandthunder"
        | "lightssnowshowersandthunder"
        | "snowshowersandthunder"
        | "heavysnowshowersandthunder" => 95,
        _ => return None,
    })
}

#[derive(Deserialize)]
struct Reply {
    geometry: Geometry,
    properties: Properties,
}

#[derive(Deserialize)]
struct Geometry {
    /// `[lon, lat, altitude]`.
    coordinates: Vec<f64>,
}

#[derive(Deserialize)]
struct Properties {
    meta: Meta,
    timeseries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Meta {
    updated_at: Option<String>,
}

#[derive(Deserialize)]
struct Entry {
    time: DateTime<Utc>,
    data: EntryData,
}

#[derive(Deserialize)]
struct EntryData {
    instant: Instant,
    next_1_hours: Option<Period>,
    next_6_hours: Option<Period>,
    next_12_hours: Option<Period>,
}

impl EntryData {
    /// The symbol of the shortest period ahead that has one.
    fn symbol(&self) -> Option<&str> {
        [&self.next_1_hours, &self.next_6_hours, &self.next_12_hours]
            .into_iter()
            .find_map(Self::symbol_of)
    }

    /// The symbol of one period.
    fn symbol_of(period: &Option<Period>) -> Option<&str> {
        period.as_ref()?.summary.as_ref()?.symbol_code.as_deref()
    }
}

#[derive(Deserialize)]
struct Instant {
    details: InstantDetails,
}

#[derive(Deserialize)]
struct InstantDetails {
    air_pressure_at_sea_level: Option<f64>,
    air_temperature: Option<f64>,
    cloud_area_fraction: Option<f64>,
    relative_humidity: Option<f64>,
    wind_from_direction: Option<f64>,
    wind_speed: Option<f64>,
}

#[derive(Deserialize)]
struct Period {
    summary: Option<Summary>,
    details: Option<PeriodDetails>,
}

#[derive(Deserialize)]
struct Summary {
    symbol_code: Option<String>,
}

#[derive(Deserialize)]
struct PeriodDetails {
    precipitation_amount: Option<f64>,
}

static FIXTURES: &[Fixture] = fixtures![
    // A trimmed compact reply for Oslo (59.9139, 10.7522): 9 hourly entries,
    // then 6-hourly ones, ending with a bare entry as the real series does.
    Fixture {
        method: "GET",
        path: "/weatherapi/locationforecast/2.0/compact",
        status: 200,
        body: include_str!("fixtures/met-norway/oslo.json"),
    },
];

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn oslo(capability: &str) -> Request {
        match capability {
            "weather.current" => request(capability, json!({"lat": 59.913868, "lon": 10.752245})),
            _ => request(
                capability,
                json!({"lat": 59.913868, "lon": 10.752245, "days": 10}),
            ),
        }
    }

    #[test]
    fn request_is_exact_with_four_decimals_and_no_user_agent_override() {
        let r = request(
            "weather.current",
            json!({"lat": 59.913868, "lon": 10.752245}),
        );
        let req = MetNorway.request(&r, &ctx(&MetNorway)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(
            req.url,
            "https://api.met.no/weatherapi/locationforecast/2.0/compact"
        );
        assert_eq!(query(&req), [("lat", "59.9139"), ("lon", "10.7522")]);
        assert!(req.headers.is_empty(), "{:?}", req.headers);

        let r = request("weather.forecast", json!({"lat": -33.9, "lon": 18.4232}));
        let req = MetNorway.request(&r, &ctx(&MetNorway)).unwrap();
        assert_eq!(query(&req), [("lat", "-33.9"), ("lon", "18.4232")]);

        let r = request("weather.current", json!({"city": "Oslo"}));
        let err = MetNorway.request(&r, &ctx(&MetNorway)).unwrap_err();
        assert_eq!(err.class, FailureClass::Unsupported);
    }

    #[test]
    fn fixture_normalises_current_weather() {
        let r = request("weather.current", json!({"lat": 59.9139, "lon": 10.7522}));
        let body = fixture(&MetNorway, "/weatherapi/locationforecast/2.0/compact");
        let Data::WeatherCurrent(w) = answer(&MetNorway, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!((w.location.lat, w.location.lon), (59.9139, 10.7522));
        assert_eq!(w.observed_at, "2025-01-15T14:00:00Z");
        assert_eq!(w.temperature_c, 1.2);
        assert_eq!(w.feels_like_c, None);
        assert_eq!(w.humidity_pct, Some(78.5));
        assert_eq!(w.wind_speed_ms, Some(3.4)); // already m/s
        assert_eq!(w.wind_dir_deg, Some(215.3));
        assert_eq!(w.pressure_hpa, Some(1021.3));
        assert_eq!(w.precipitation_mm, Some(0.0));
        assert_eq!(w.cloud_cover_pct, Some(100.0));
        assert_eq!(w.condition, Condition::from_wmo(3)); // "cloudy"
    }

    #[test]
    fn fixture_aggregates_local_days() {
        let body = fixture(&MetNorway, "/weatherapi/locationforecast/2.0/compact");
        let Data::WeatherForecast(f) = answer(
            &MetNorway,
            &oslo("weather.forecast"),
            test_response(203, &[], body),
        ) else {
            panic!("wrong data")
        };
        assert_eq!(f.generated_at.as_deref(), Some("2025-01-15T13:34:52Z"));
        // 10 days asked; the ragged last day (one entry) is dropped.
        let dates: Vec<&str> = f.daily.iter().map(|d| d.date.as_str()).collect();
        assert_eq!(dates, ["2025-01-15", "2025-01-16", "2025-01-17"]);

        let today = &f.daily[0];
        assert_eq!((today.temp_min_c, today.temp_max_c), (-1.1, 1.2));
        assert_eq!(today.precipitation_mm, Some(1.9)); // hourly amounts only
        assert_eq!(today.wind_max_ms, Some(4.4));
        assert_eq!(today.condition.text, "Moderate snow fall"); // "snow" beats "lightsnow"

        // 2025-01-16T00:00Z is 01:00 local (lon 10.75 → UTC+1): it belongs to the 16th.
        let d = &f.daily[1];
        assert_eq!((d.temp_min_c, d.temp_max_c), (-3.2, -0.4));
        assert_eq!(d.precipitation_mm, Some(0.0));
        assert_eq!(d.wind_max_ms, Some(2.8));
        assert_eq!(d.condition.code, 2);

        let d = &f.daily[2];
        assert_eq!((d.temp_min_c, d.temp_max_c), (-4.6, 0.8));
        assert_eq!(d.precipitation_mm, Some(2.5)); // 6-hourly amounts
        assert_eq!(d.condition.text, "Moderate rain");

        let r = request(
            "weather.forecast",
            json!({"lat": 59.9, "lon": 10.75, "days": 2}),
        );
        let Data::WeatherForecast(f) = answer(&MetNorway, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(f.daily.len(), 2);
    }

    #[test]
    fn symbol_table_covers_every_met_symbol() {
        assert_eq!(wmo_code("clearsky_day"), Some(0));
        assert_eq!(wmo_code("clearsky_polartwilight"), Some(0));
        assert_eq!(wmo_code("fair_night"), Some(1));
        assert_eq!(wmo_code("cloudy"), Some(3));
        assert_eq!(wmo_code("heavyrainshowers_day"), Some(82));
        assert_eq!(wmo_code("lightssnowshowersandthunder_night"), Some(95));
        assert_eq!(wmo_code("sleet"), Some(73));
        assert_eq!(wmo_code("sunny"), None);
        assert_eq!(wmo_code("cloudy_evening"), None);
        let all = "clearsky cloudy fair fog heavyrain heavyrainandthunder heavyrainshowers \
            heavyrainshowersandthunder heavysleet heavysleetandthunder heavysleetshowers \
            heavysleetshowersandthunder heavysnow heavysnowandthunder heavysnowshowers \
            heavysnowshowersandthunder lightrain lightrainandthunder lightrainshowers \
            lightrainshowersandthunder lightsleet lightsleetandthunder lightsleetshowers \
            lightsnow lightsnowandthunder lightsnowshowers lightssleetshowersandthunder \
            lightssnowshowersandthunder partlycloudy rain rainandthunder rainshowers \
            rainshowersandthunder sleet sleetandthunder sleetshowers sleetshowersandthunder \
            snow snowandthunder snowshowers snowshowersandthunder";
        for symbol in all.split_whitespace() {
            let code = wmo_code(symbol).unwrap_or_else(|| panic!("{symbol} unmapped"));
            assert_ne!(Condition::from_wmo(code).text, "Unknown", "{symbol}");
        }
        assert_eq!(all.split_whitespace().count(), 41);
    }

    #[test]
    fn error_signals_are_classified() {
        let r = oslo("weather.current");
        let f = failure(&MetNorway, &r, test_response(403, &[], "403 Forbidden"));
        assert_eq!(f.class, FailureClass::Auth);
        assert!(f.message.contains("User-Agent"), "{}", f.message);

        let f = failure(
            &MetNorway,
            &r,
            test_response(429, &[("retry-after", "30")], "Too Many Requests"),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(30)));

        let f = failure(&MetNorway, &r, test_response(400, &[], "Bad Request"));
        assert_eq!(f.class, FailureClass::InvalidRequest);
        let f = failure(
            &MetNorway,
            &r,
            test_response(503, &[], "Service Unavailable"),
        );
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&MetNorway, "/weatherapi/locationforecast/2.0/compact");
        for capability in ["weather.current", "weather.forecast"] {
            let r = oslo(capability);
            assert_truncations_are_malformed(&MetNorway, &r, body);
            for bad in [
                body.replace("\"cloudy\"", "\"sunny\""),
                body.replace("[10.7522,59.9139,14]", "[]"),
                r#"{"type":"Feature","geometry":{"coordinates":[1,2]},"properties":{"meta":{},"timeseries":[]}}"#.to_string(),
            ] {
                let f = failure(&MetNorway, &r, test_response(200, &[], &bad));
                assert_eq!(f.class, FailureClass::MalformedResponse, "{capability}: {f}");
            }
        }
    }
}
