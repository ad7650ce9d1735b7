//! wttr.in: `weather.current` and `weather.forecast` (3 days), for
//! coordinates or a place name.
//!
//! Keyless, with no published limits. It is a hobby service and is best used
//! as a last resort. It is the one built-in weather provider that resolves
//! place names itself. `GET /{location}?format=j1` returns WorldWeatherOnline
//! data where numbers are strings. They are parsed, and a value that does not
//! parse makes the reply malformed. WWO weather codes map to WMO codes through
//! the table in this file, and km/h become m/s.
//!
//! Error signals, as wttr.in really sends them:
//! * overload: 503 or 429 with a plain-text body (default classification);
//! * unknown location: 404 (since 2025 the body is the weather of some
//!   *other*, random place, so the body is never read), or, in older
//!   deployments, 200 with the plain text `Unknown location; please try
//!   ~lat,lon` (chubin/wttr.in#591, #1134) → `NotFound`;
//! * the same plain text also appears when wttr.in's geolocation backend is
//!   overloaded (chubin/wttr.in#1059, #1063). A pair of coordinates cannot be
//!   an unknown place, so for coordinates it is `Transient`.

use chrono::{DateTime, NaiveTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use url::form_urlencoded;

use super::utc_text;
use crate::capability::marker;
use crate::capability::weather::{
    kmh_to_ms, Condition, CurrentQuery, CurrentWeather, Forecast, ForecastDay, ForecastQuery,
    GeoPoint, Location,
};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// wttr.in (<https://wttr.in>): keyless console-weather service with a JSON
/// format; resolves place names; 3-day forecasts.
#[derive(Debug, Clone, Copy, Default)]
pub struct WttrIn;

static INFO: ProviderInfo = ProviderInfo {
    id: "wttr-in",
    name: "wttr.in",
    auth: Auth::Keyless,
    base_url: "https://wttr.in",
    docs_url: "https://github.com/chubin/wttr.in",
    terms: "Free hobby service with WorldWeatherOnline data; no published limits or terms \
            for commercial use; overload answers 503/429. Use as a last resort.",
    commercial_use: false,
    default_rate_limit: None,
    default_quota: None,
};

/// wttr.in forecasts at most this many days.
const MAX_DAYS: usize = 3;

impl Provider for WttrIn {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(WttrIn: WeatherCurrent, WeatherForecast);

impl Serves<marker::WeatherCurrent> for WttrIn {
    fn build_request(
        &self,
        q: &CurrentQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(j1_request(&q.location, ctx))
    }

    fn read_response(
        &self,
        q: &CurrentQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<CurrentWeather>, ProviderFailure> {
        let (reply, location) = read(&q.location, &response)?;
        let now = reply
            .current_condition
            .first()
            .ok_or_else(|| malformed("no `current_condition`"))?;
        let time = now
            .observation_time
            .as_deref()
            .ok_or_else(|| malformed("no `current_condition.observation_time`"))?;
        let observed = observed_at(time, response.received_at)?;
        Ok(Step::Done(CurrentWeather {
            location,
            observed_at: utc_text(observed),
            temperature_c: now
                .temp_c
                .ok_or_else(|| malformed("no `current_condition.temp_C`"))?,
            feels_like_c: now.feels_like_c,
            humidity_pct: now.humidity,
            wind_speed_ms: now.windspeed_kmph.map(kmh_to_ms),
            wind_dir_deg: now.winddir_degree,
            pressure_hpa: now.pressure,
            precipitation_mm: now.precip_mm,
            cloud_cover_pct: now.cloudcover,
            condition: condition(
                now.weather_code
                    .ok_or_else(|| malformed("no `current_condition.weatherCode`"))?,
            )?,
        }))
    }
}

impl Serves<marker::WeatherForecast> for WttrIn {
    fn build_request(
        &self,
        q: &ForecastQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(j1_request(&q.location, ctx))
    }

    fn read_response(
        &self,
        q: &ForecastQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Forecast>, ProviderFailure> {
        let (reply, location) = read(&q.location, &response)?;
        // Days stay contiguous: the first day that cannot be read ends the
        // forecast, and fails it when it is the first.
        let mut daily = Vec::new();
        for day in reply.weather.iter().take(usize::from(q.days).min(MAX_DAYS)) {
            match day.normalise() {
                Ok(day) => daily.push(day),
                Err(failure) if daily.is_empty() => return Err(failure),
                Err(_) => break,
            }
        }
        if daily.is_empty() {
            return Err(malformed("no `weather` days"));
        }
        Ok(Step::Done(Forecast {
            location,
            generated_at: None,
            daily,
        }))
    }
}

/// The `j1` JSON report for a point or a place name.
fn j1_request(location: &Location, ctx: &CallContext<'_>) -> HttpRequest {
    let path = match location {
        Location::Coordinates(c) => format!("/{},{}", c.lat.to_param(), c.lon.to_param()),
        // wttr.in reads `+` as a space, as form encoding writes it.
        Location::Place { city } => {
            let encoded: String = form_urlencoded::byte_serialize(city.as_bytes()).collect();
            format!("/{encoded}")
        }
    };
    HttpRequest::get(ctx.base_url, &path).query("format", "j1")
}

/// The report for `location`, and the area it answers for.
fn read(
    location: &Location,
    response: &HttpResponse,
) -> Result<(Reply, GeoPoint), ProviderFailure> {
    if response.status == 404 {
        return Err(response.failure(FailureClass::NotFound, "wttr.in: unknown location"));
    }
    response.check_status()?;
    let text = response.body.trim_ascii_start();
    if text.starts_with(b"Unknown location") {
        let class = match location {
            Location::Place { .. } => FailureClass::NotFound,
            Location::Coordinates(_) => FailureClass::Transient,
        };
        return Err(response.failure(class, format!("wttr.in: {}", response.body_excerpt())));
    }
    let reply: Reply = response.json()?;
    let area = reply
        .nearest_area
        .first()
        .ok_or_else(|| malformed("no `nearest_area`"))?;
    let point = GeoPoint {
        lat: area
            .latitude
            .ok_or_else(|| malformed("no `nearest_area.latitude`"))?,
        lon: area
            .longitude
            .ok_or_else(|| malformed("no `nearest_area.longitude`"))?,
        name: area.area_name.first().and_then(|n| n.value.clone()),
        country_code: None,
        timezone: None,
    };
    Ok((reply, point))
}

fn malformed(what: &str) -> ProviderFailure {
    ProviderFailure::malformed(format!("wttr.in reply: {what}")).status(200)
}

/// wttr.in gives the observation time as a UTC time of day (`01:41 PM`).
/// The observation is the latest such instant not after the reply, with an
/// hour of slack for clock skew.
fn observed_at(time: &str, received_at: DateTime<Utc>) -> Result<DateTime<Utc>, ProviderFailure> {
    let time = NaiveTime::parse_from_str(time.trim(), "%I:%M %p")
        .map_err(|_| malformed(&format!("unreadable observation_time {time:?}")))?;
    let same_day = received_at.date_naive().and_time(time).and_utc();
    Ok(if same_day > received_at + chrono::Duration::hours(1) {
        same_day - chrono::Duration::days(1)
    } else {
        same_day
    })
}

fn condition(wwo: u16) -> Result<Condition, ProviderFailure> {
    wmo_code(wwo)
        .map(Condition::from_wmo)
        .ok_or_else(|| malformed(&format!("unknown weatherCode {wwo}")))
}

/// The WMO code of a WorldWeatherOnline weather code. Sleet maps to the snow
/// code of the same intensity and ice pellets to snow grains (77), since WMO
/// 4677 as polyrelay uses it has neither.
pub(crate) fn wmo_code(wwo: u16) -> Option<u8> {
    Some(match wwo {
        113 => 0,                          // Clear/Sunny
        116 => 2,                          // Partly cloudy
        119 | 122 => 3,                    // Cloudy, Overcast
        143 | 248 => 45,                   // Mist, Fog
        260 => 48,                         // Freezing fog
        263 | 266 => 51,                   // (Patchy) light drizzle
        185 | 281 => 56,                   // (Patchy) freezing drizzle
        284 => 57,                         // Heavy freezing drizzle
        293 | 296 => 61,                   // (Patchy) light rain
        299 | 302 => 63,                   // Moderate rain (at times)
        305 | 308 => 65,                   // Heavy rain (at times)
        311 => 66,                         // Light freezing rain
        314 => 67,                         // Moderate or heavy freezing rain
        227 | 317 | 323 | 326 => 71,       // Blowing snow, light sleet, (patchy) light snow
        320 | 329 | 332 => 73,             // Moderate/heavy sleet, (patchy) moderate snow
        230 | 335 | 338 => 75,             // Blizzard, (patchy) heavy snow
        350 | 374 | 377 => 77,             // Ice pellets (showers)
        176 | 353 => 80,                   // Patchy rain nearby, light rain shower
        356 => 81,                         // Moderate or heavy rain shower
        359 => 82,                         // Torrential rain shower
        179 | 182 | 362 | 368 => 85,       // Patchy snow/sleet, light sleet/snow showers
        365 | 371 => 86,                   // Moderate or heavy sleet/snow showers
        200 | 386 | 389 | 392 | 395 => 95, // Thundery outbreaks, rain/snow with thunder
        _ => return None,
    })
}

// Every field is optional as read: what a capability needs is checked
// where it is used, naming the field, so that a value one capability does
// not use never fails the other.
#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    current_condition: Vec<CurrentCondition>,
    nearest_area: Vec<Area>,
    #[serde(default)]
    weather: Vec<Day>,
}

#[derive(Deserialize)]
struct CurrentCondition {
    #[serde(rename = "temp_C", default, deserialize_with = "opt_number")]
    temp_c: Option<f64>,
    #[serde(rename = "FeelsLikeC", default, deserialize_with = "opt_number")]
    feels_like_c: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    humidity: Option<f64>,
    #[serde(rename = "windspeedKmph", default, deserialize_with = "opt_number")]
    windspeed_kmph: Option<f64>,
    #[serde(rename = "winddirDegree", default, deserialize_with = "opt_number")]
    winddir_degree: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    pressure: Option<f64>,
    #[serde(rename = "precipMM", default, deserialize_with = "opt_number")]
    precip_mm: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    cloudcover: Option<f64>,
    #[serde(rename = "weatherCode", default, deserialize_with = "code")]
    weather_code: Option<u16>,
    #[serde(default)]
    observation_time: Option<String>,
}

#[derive(Deserialize)]
struct Area {
    #[serde(rename = "areaName", default)]
    area_name: Vec<Text>,
    #[serde(default, deserialize_with = "opt_number")]
    latitude: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    longitude: Option<f64>,
}

#[derive(Deserialize)]
struct Text {
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct Day {
    #[serde(default)]
    date: Option<String>,
    #[serde(rename = "maxtempC", default, deserialize_with = "opt_number")]
    max_temp_c: Option<f64>,
    #[serde(rename = "mintempC", default, deserialize_with = "opt_number")]
    min_temp_c: Option<f64>,
    #[serde(default)]
    hourly: Vec<Hour>,
}

impl Day {
    /// Sums the 3-hourly slots: total precipitation, maximum wind and the
    /// most severe condition (as Open-Meteo's daily code). A slot without
    /// a weather code makes the day unreadable (its condition is unknown);
    /// a slot without precipitation or wind makes that total unknown.
    fn normalise(&self) -> Result<ForecastDay, ProviderFailure> {
        let date = self
            .date
            .clone()
            .ok_or_else(|| malformed("no `weather.date`"))?;
        let mut code = None;
        for hour in &self.hourly {
            let wwo = hour
                .weather_code
                .ok_or_else(|| malformed(&format!("no `hourly.weatherCode` for {date}")))?;
            let wmo = condition(wwo)?.code;
            code = Some(code.map_or(wmo, |c: u8| c.max(wmo)));
        }
        let code = code.ok_or_else(|| malformed(&format!("no `hourly` for {date}")))?;
        let precipitation = self
            .hourly
            .iter()
            .map(|h| h.precip_mm)
            .try_fold(0.0, |sum, p| Some(sum + p?));
        let wind = self
            .hourly
            .iter()
            .map(|h| h.windspeed_kmph)
            .try_fold(f64::NEG_INFINITY, |max, w| Some(max.max(w?)));
        Ok(ForecastDay {
            temp_min_c: self
                .min_temp_c
                .ok_or_else(|| malformed(&format!("no `mintempC` for {date}")))?,
            temp_max_c: self
                .max_temp_c
                .ok_or_else(|| malformed(&format!("no `maxtempC` for {date}")))?,
            date,
            precipitation_mm: precipitation.map(|p| (p * 100.0).round() / 100.0),
            wind_max_ms: wind.map(kmh_to_ms),
            condition: Condition::from_wmo(code),
        })
    }
}

#[derive(Deserialize)]
struct Hour {
    #[serde(rename = "weatherCode", default, deserialize_with = "code")]
    weather_code: Option<u16>,
    #[serde(rename = "windspeedKmph", default, deserialize_with = "opt_number")]
    windspeed_kmph: Option<f64>,
    #[serde(rename = "precipMM", default, deserialize_with = "opt_number")]
    precip_mm: Option<f64>,
}

/// A number sent as a JSON string (`"7"`) or, occasionally, a JSON number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Lenient {
    Number(f64),
    Text(String),
}

/// `null` or an empty string is a missing value; anything else must parse.
fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<Lenient>::deserialize(d)? {
        None => Ok(None),
        Some(Lenient::Number(n)) => Ok(Some(n)),
        Some(Lenient::Text(t)) if t.trim().is_empty() => Ok(None),
        Some(Lenient::Text(t)) => t
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("not a number: {t:?}"))),
    }
}

fn code<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let Some(value) = opt_number(d)? else {
        return Ok(None);
    };
    if value.fract() == 0.0 && (0.0..=999.0).contains(&value) {
        Ok(Some(value as u16))
    } else {
        Err(D::Error::custom(format!("not a weather code: {value}")))
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // A `format=j1` reply for `/52.52,13.41` (Berlin), hourly blocks trimmed to
    // the commonly used fields.
    Fixture {
        method: "GET",
        path: "/*",
        status: 200,
        body: include_str!("fixtures/wttr-in/berlin.json"),
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

    fn berlin(capability: &str, days: u8) -> Request {
        match capability {
            "weather.current" => request(capability, json!({"lat": 52.52, "lon": 13.41})),
            _ => request(
                capability,
                json!({"lat": 52.52, "lon": 13.41, "days": days}),
            ),
        }
    }

    #[test]
    fn requests_are_exact_for_coordinates_and_places() {
        let req = WttrIn
            .request(&berlin("weather.current", 0), &ctx(&WttrIn))
            .unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://wttr.in/52.52,13.41");
        assert_eq!(query(&req), [("format", "j1")]);
        assert!(req.headers.is_empty());

        let r = request("weather.forecast", json!({"city": "São Paulo, BR"}));
        let req = WttrIn.request(&r, &ctx(&WttrIn)).unwrap();
        assert_eq!(req.url, "https://wttr.in/S%C3%A3o+Paulo%2C+BR");
        assert_eq!(query(&req), [("format", "j1")]);

        let r = request("weather.current", json!({"city": "a/b?c#d"}));
        let req = WttrIn.request(&r, &ctx(&WttrIn)).unwrap();
        assert_eq!(req.url, "https://wttr.in/a%2Fb%3Fc%23d");

        let r = request("crypto.price", json!({"assets": "BTC"}));
        let err = WttrIn.request(&r, &ctx(&WttrIn)).unwrap_err();
        assert_eq!(err.class, FailureClass::Unsupported);
    }

    #[test]
    fn fixture_normalises_current_weather() {
        let body = fixture(&WttrIn, "/*");
        let Data::WeatherCurrent(w) = answer(
            &WttrIn,
            &berlin("weather.current", 0),
            test_response(200, &[("content-type", "application/json")], body),
        ) else {
            panic!("wrong data")
        };
        assert_eq!((w.location.lat, w.location.lon), (52.517, 13.4));
        assert_eq!(w.location.name.as_deref(), Some("Berlin"));
        // observation_time is UTC; the reply arrived at 14:05 UTC.
        assert_eq!(w.observed_at, "2025-01-15T13:41:00Z");
        assert_eq!(w.temperature_c, 3.0);
        assert_eq!(w.feels_like_c, Some(0.0));
        assert_eq!(w.humidity_pct, Some(81.0));
        assert_eq!(w.wind_speed_ms, Some(3.06)); // 11 km/h
        assert_eq!(w.wind_dir_deg, Some(250.0));
        assert_eq!(w.pressure_hpa, Some(1031.0));
        assert_eq!(w.precipitation_mm, Some(0.0));
        assert_eq!(w.cloud_cover_pct, Some(100.0));
        assert_eq!(w.condition, Condition::from_wmo(3)); // WWO 122 Overcast
    }

    #[test]
    fn observation_just_before_midnight_is_yesterday() {
        let received: DateTime<Utc> = "2025-01-15T00:20:00Z".parse().unwrap();
        assert_eq!(
            utc_text(observed_at("11:50 PM", received).unwrap()),
            "2025-01-14T23:50:00Z"
        );
        assert_eq!(
            utc_text(observed_at("12:10 AM", received).unwrap()),
            "2025-01-15T00:10:00Z"
        );
    }

    #[test]
    fn fixture_normalises_the_forecast_limited_to_three_days() {
        let body = fixture(&WttrIn, "/*");
        let Data::WeatherForecast(f) = answer(
            &WttrIn,
            &berlin("weather.forecast", 7),
            test_response(200, &[], body),
        ) else {
            panic!("wrong data")
        };
        assert_eq!(f.daily.len(), 3);
        let d = &f.daily[0];
        assert_eq!(d.date, "2025-01-15");
        assert_eq!((d.temp_min_c, d.temp_max_c), (-1.0, 4.0));
        assert_eq!(d.precipitation_mm, Some(0.6));
        assert_eq!(d.wind_max_ms, Some(3.61)); // 13 km/h
        assert_eq!(d.condition.text, "Slight rain showers"); // WWO 176 is the most severe
        assert_eq!(f.daily[1].condition.code, 3);
        assert_eq!(f.daily[2].precipitation_mm, Some(3.6));
        assert_eq!(f.daily[2].wind_max_ms, Some(5.56)); // 20 km/h

        let Data::WeatherForecast(f) = answer(
            &WttrIn,
            &berlin("weather.forecast", 1),
            test_response(200, &[], body),
        ) else {
            panic!("wrong data")
        };
        assert_eq!(f.daily.len(), 1);
    }

    #[test]
    fn code_table_maps_every_wwo_code_to_a_known_wmo_code() {
        let wwo = [
            113, 116, 119, 122, 143, 176, 179, 182, 185, 200, 227, 230, 248, 260, 263, 266, 281,
            284, 293, 296, 299, 302, 305, 308, 311, 314, 317, 320, 323, 326, 329, 332, 335, 338,
            350, 353, 356, 359, 362, 365, 368, 371, 374, 377, 386, 389, 392, 395,
        ];
        for code in wwo {
            let wmo = wmo_code(code).unwrap_or_else(|| panic!("{code} unmapped"));
            assert_ne!(Condition::from_wmo(wmo).text, "Unknown", "{code}");
        }
        assert_eq!(wmo_code(308), Some(65));
        assert_eq!(wmo_code(389), Some(95));
        assert_eq!(wmo_code(999), None);
    }

    #[test]
    fn error_signals_are_classified() {
        let city = request("weather.current", json!({"city": "Xqzzyville"}));
        let coords = berlin("weather.current", 0);

        // 404 carries a random other city's weather: never read as an answer.
        let f = failure(
            &WttrIn,
            &city,
            test_response(404, &[], fixture(&WttrIn, "/*")),
        );
        assert_eq!(f.class, FailureClass::NotFound);

        let unknown = "Unknown location; please try ~52.52045,13.40732";
        let f = failure(&WttrIn, &city, test_response(200, &[], unknown));
        assert_eq!(f.class, FailureClass::NotFound);
        assert!(f.message.contains("Unknown location"), "{}", f.message);
        let f = failure(&WttrIn, &coords, test_response(200, &[], unknown));
        assert_eq!(f.class, FailureClass::Transient);

        let f = failure(
            &WttrIn,
            &coords,
            test_response(503, &[("content-type", "text/plain")], "Service overloaded"),
        );
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(
            &WttrIn,
            &coords,
            test_response(429, &[("retry-after", "30")], "Too many queries"),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(30)));
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&WttrIn, "/*");
        for r in [berlin("weather.current", 0), berlin("weather.forecast", 3)] {
            assert_truncations_are_malformed(&WttrIn, &r, body);
            for bad in [
                body.replace(r#""temp_C":"3""#, r#""temp_C":"warm""#),
                body.replace(r#""weatherCode":"122""#, r#""weatherCode":"12.5""#),
                body.replace(r#""weatherCode":"122""#, r#""weatherCode":"998""#),
                body.replace(r#""latitude":"52.517""#, r#""latitude":"N52""#),
            ] {
                let f = failure(&WttrIn, &r, test_response(200, &[], &bad));
                assert_eq!(f.class, FailureClass::MalformedResponse, "{f}");
            }
        }
        // Issue #13 tolerant readers: an empty maximum is a missing value,
        // which only the forecast needs (current weather no longer fails).
        let bad = body.replace(r#""maxtempC":"4""#, r#""maxtempC":"""#);
        let f = failure(
            &WttrIn,
            &berlin("weather.forecast", 3),
            test_response(200, &[], &bad),
        );
        assert_eq!(f.class, FailureClass::MalformedResponse, "{f}");
        assert!(f.message.contains("maxtempC"), "{f}");
        let bad = body.replace(
            r#""observation_time":"01:41 PM""#,
            r#""observation_time":"noon""#,
        );
        let f = failure(
            &WttrIn,
            &berlin("weather.current", 0),
            test_response(200, &[], &bad),
        );
        assert_eq!(f.class, FailureClass::MalformedResponse, "{f}");
    }
}
