//! OpenWeatherMap 2.5: `weather.current` (`/data/2.5/weather`) and
//! `weather.forecast` (`/data/2.5/forecast`, 5 days in 3-hour steps) for
//! coordinates or place names.
//!
//! Needs a free key (`OPENWEATHER_API_KEY`), read from the query string
//! (`appid=`); new keys take up to a couple of hours to activate. The free
//! plan allows 60 calls/min and 1,000,000 a month. Units are metric (°C,
//! m/s). Weather condition ids (200 thunderstorm … 804 overcast) map to
//! WMO codes.
//!
//! The forecast is aggregated into local days (the reply's `city.timezone`
//! offset): min/max of the 3-hour minima and maxima, the sum of rain and
//! snow, the strongest wind, the most severe condition; days after the
//! first with fewer than four steps (the ragged end) are dropped. At most
//! five days are available.
//!
//! Errors are `{"cod":401,"message":"Invalid API key…"}` (`cod` is a number
//! or a string): 401 is `Auth`, 404 "city not found" `NotFound`, 429 the
//! per-minute limit (`RateLimited`), 400 bad parameters.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta};
use serde::Deserialize;

use super::wire::non_empty;
use super::{clip, utc_text};
use crate::capability::geo::country_code;
use crate::capability::marker;
use crate::capability::weather::{
    Condition, CurrentQuery, CurrentWeather, Forecast, ForecastDay, ForecastQuery, GeoPoint,
    Location,
};
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Quota, Serves, Step,
};

/// OpenWeatherMap (<https://openweathermap.org/api>): current weather and
/// a 5-day forecast with a free key.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenWeatherMap;

static INFO: ProviderInfo = ProviderInfo {
    id: "openweathermap",
    name: "OpenWeatherMap",
    auth: Auth::Key {
        env: "OPENWEATHER_API_KEY",
        placement: KeyPlacement::Query { param: "appid" },
        optional: false,
    },
    base_url: "https://api.openweathermap.org",
    docs_url: "https://openweathermap.org/current",
    terms: "Free plan: 60 calls/min and 1,000,000 calls/month; data under CC BY-SA 4.0 \
            (attribution required).",
    commercial_use: true,
    default_rate_limit: Some("60/min"),
    default_quota: Some(Quota::per_month(1_000_000)),
};

/// 3-hour steps in a day; fewer make an incomplete day.
const FULL_DAY: usize = 4;

fn with_location(req: HttpRequest, location: &Location) -> HttpRequest {
    match location {
        Location::Coordinates(at) => req
            .query("lat", at.lat.to_param())
            .query("lon", at.lon.to_param()),
        Location::Place { city } => req.query("q", city.as_str()),
    }
}

impl Provider for OpenWeatherMap {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(OpenWeatherMap: WeatherCurrent, WeatherForecast);

impl Serves<marker::WeatherCurrent> for OpenWeatherMap {
    fn build_request(
        &self,
        q: &CurrentQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(metric(ctx, "/data/2.5/weather", &q.location))
    }

    fn read_response(
        &self,
        _q: &CurrentQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<CurrentWeather>, ProviderFailure> {
        check_status(&response)?;
        let now: Current = response.json()?;
        let observed = DateTime::from_timestamp(now.dt, 0)
            .ok_or_else(|| malformed(&response, "impossible `dt`"))?;
        let code = now
            .weather
            .iter()
            .map(|w| wmo_code(w.id))
            .max()
            .ok_or_else(|| malformed(&response, "no `weather` condition"))?;
        let precipitation = [&now.rain, &now.snow]
            .into_iter()
            .filter_map(|p| p.as_ref().and_then(|p| p.one_hour))
            .reduce(|a, b| a + b);
        Ok(Step::Done(CurrentWeather {
            location: GeoPoint {
                lat: now.coord.lat,
                lon: now.coord.lon,
                name: non_empty(now.name),
                country_code: country_code(now.sys.and_then(|s| s.country).as_deref()),
                timezone: None,
            },
            observed_at: utc_text(observed),
            temperature_c: now.main.temp,
            feels_like_c: now.main.feels_like,
            humidity_pct: now.main.humidity,
            wind_speed_ms: now.wind.as_ref().and_then(|w| w.speed),
            wind_dir_deg: now.wind.as_ref().and_then(|w| w.deg),
            pressure_hpa: now.main.sea_level.or(now.main.pressure),
            precipitation_mm: precipitation,
            cloud_cover_pct: now.clouds.and_then(|c| c.all),
            condition: Condition::from_wmo(code),
        }))
    }
}

impl Serves<marker::WeatherForecast> for OpenWeatherMap {
    fn build_request(
        &self,
        q: &ForecastQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(metric(ctx, "/data/2.5/forecast", &q.location))
    }

    fn read_response(
        &self,
        q: &ForecastQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Forecast>, ProviderFailure> {
        check_status(&response)?;
        let reply: ForecastReply = response.json()?;
        let offset = TimeDelta::try_seconds(reply.city.timezone)
            .ok_or_else(|| malformed(&response, "impossible `city.timezone`"))?;
        let daily = daily(&reply.list, offset, usize::from(q.days));
        if daily.is_empty() {
            return Err(malformed(&response, "no complete day in `list`"));
        }
        Ok(Step::Done(Forecast {
            location: GeoPoint {
                lat: reply.city.coord.lat,
                lon: reply.city.coord.lon,
                name: non_empty(reply.city.name),
                country_code: country_code(reply.city.country.as_deref()),
                timezone: None,
            },
            generated_at: None,
            daily,
        }))
    }
}

/// `path` for the location, in metric units.
fn metric(ctx: &CallContext<'_>, path: &str, location: &Location) -> HttpRequest {
    with_location(HttpRequest::get(ctx.base_url, path), location).query("units", "metric")
}

/// Errors are `{"cod": …, "message": "…"}`; the message says what was wrong.
fn check_status(response: &HttpResponse) -> Result<(), ProviderFailure> {
    response.check_status().map_err(|mut failure| {
        #[derive(Deserialize)]
        struct ErrorReply {
            message: String,
        }
        if let Ok(reply) = serde_json::from_slice::<ErrorReply>(&response.body) {
            failure.message = format!("OpenWeatherMap: {}", clip(&reply.message));
        }
        failure
    })
}

fn malformed(response: &HttpResponse, what: &str) -> ProviderFailure {
    ProviderFailure::malformed(format!("OpenWeatherMap reply: {what}")).status(response.status)
}

/// Aggregates 3-hour steps into local days (see the module docs).
fn daily(steps: &[Step3h], offset: TimeDelta, limit: usize) -> Vec<ForecastDay> {
    let mut days: BTreeMap<String, Vec<&Step3h>> = BTreeMap::new();
    for step in steps {
        let Some(local) =
            DateTime::from_timestamp(step.dt, 0).and_then(|t| t.checked_add_signed(offset))
        else {
            continue;
        };
        days.entry(local.format("%Y-%m-%d").to_string())
            .or_default()
            .push(step);
    }
    days.into_iter()
        .enumerate()
        .filter(|(i, (_, steps))| *i == 0 || steps.len() >= FULL_DAY)
        // Counted before a day without a condition is left out, so that it
        // is missing rather than replaced by a later one.
        .take(limit)
        .filter_map(|(_, (date, steps))| {
            let min = steps
                .iter()
                .map(|s| s.main.temp_min.unwrap_or(s.main.temp))
                .reduce(f64::min)?;
            let max = steps
                .iter()
                .map(|s| s.main.temp_max.unwrap_or(s.main.temp))
                .reduce(f64::max)?;
            let precipitation: f64 = steps
                .iter()
                .flat_map(|s| [&s.rain, &s.snow])
                .filter_map(|p| p.as_ref().and_then(|p| p.three_hours))
                .sum();
            Some(ForecastDay {
                date,
                temp_min_c: min,
                temp_max_c: max,
                precipitation_mm: Some((precipitation * 100.0).round() / 100.0),
                // The day's strongest wind is unknown when a step's wind is.
                wind_max_ms: steps
                    .iter()
                    .map(|s| s.wind.as_ref().and_then(|w| w.speed))
                    .try_fold(f64::NEG_INFINITY, |top, w| Some(top.max(w?))),
                condition: Condition::from_wmo(
                    steps
                        .iter()
                        .flat_map(|s| &s.weather)
                        .map(|w| wmo_code(w.id))
                        .max()?,
                ),
            })
        })
        .collect()
}

/// The WMO code of an OpenWeatherMap condition id. Sleet maps to the snow
/// code of the same intensity (as for MET Norway) and the 7xx obscurations
/// (mist, haze, dust, smoke) to fog.
fn wmo_code(id: u16) -> u8 {
    match id {
        200..=299 => 95,
        300 | 310 => 51,
        302 | 312 | 314 => 55,
        300..=399 => 53,
        500 => 61,
        501 => 63,
        502..=504 => 65,
        511 => 66,
        520 => 80,
        521 => 81,
        522..=531 => 82,
        600 | 611 | 612 | 615 => 71,
        601 | 613 | 616 => 73,
        602 => 75,
        620 => 85,
        621 | 622 => 86,
        600..=699 => 71,
        700..=799 => 45,
        800 => 0,
        801 => 1,
        802 => 2,
        _ => 3,
    }
}

#[derive(Deserialize)]
struct Coord {
    lat: f64,
    lon: f64,
}

#[derive(Deserialize)]
struct Weather {
    id: u16,
}

#[derive(Deserialize)]
struct Main {
    temp: f64,
    feels_like: Option<f64>,
    temp_min: Option<f64>,
    temp_max: Option<f64>,
    pressure: Option<f64>,
    sea_level: Option<f64>,
    humidity: Option<f64>,
}

#[derive(Deserialize)]
struct Wind {
    speed: Option<f64>,
    deg: Option<f64>,
}

#[derive(Deserialize)]
struct Clouds {
    all: Option<f64>,
}

#[derive(Deserialize)]
struct Precipitation {
    #[serde(rename = "1h")]
    one_hour: Option<f64>,
    #[serde(rename = "3h")]
    three_hours: Option<f64>,
}

#[derive(Deserialize)]
struct Sys {
    country: Option<String>,
}

#[derive(Deserialize)]
struct Current {
    coord: Coord,
    #[serde(default)]
    weather: Vec<Weather>,
    main: Main,
    wind: Option<Wind>,
    clouds: Option<Clouds>,
    rain: Option<Precipitation>,
    snow: Option<Precipitation>,
    dt: i64,
    sys: Option<Sys>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct ForecastReply {
    list: Vec<Step3h>,
    city: City,
}

#[derive(Deserialize)]
struct Step3h {
    dt: i64,
    main: Main,
    #[serde(default)]
    weather: Vec<Weather>,
    wind: Option<Wind>,
    rain: Option<Precipitation>,
    snow: Option<Precipitation>,
}

#[derive(Deserialize)]
struct City {
    name: Option<String>,
    coord: Coord,
    country: Option<String>,
    #[serde(default)]
    timezone: i64,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /data/2.5/weather?lat=44.34&lon=10.99&units=metric` (Zocca, Italy).
    Fixture {
        method: "GET",
        path: "/data/2.5/weather",
        status: 200,
        body: include_str!("fixtures/openweathermap/current_zocca.json"),
    },
    // `GET /data/2.5/forecast?lat=52.52&lon=13.41&units=metric`, abridged to
    // the 3-hour steps of two local days (Berlin, UTC+1).
    Fixture {
        method: "GET",
        path: "/data/2.5/forecast",
        status: 200,
        body: include_str!("fixtures/openweathermap/forecast_berlin.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::error::FailureClass;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn berlin(capability: &str) -> Request {
        request(capability, json!({"lat": 52.52, "lon": 13.41}))
    }

    #[test]
    fn requests_are_exact_and_take_place_names() {
        let req = OpenWeatherMap
            .request(&berlin("weather.current"), &ctx(&OpenWeatherMap))
            .unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.openweathermap.org/data/2.5/weather");
        assert_eq!(
            query(&req),
            [("lat", "52.52"), ("lon", "13.41"), ("units", "metric")]
        );
        assert!(req.headers.is_empty());
        let r = request("weather.forecast", json!({"city": "Berlin,DE"}));
        let req = OpenWeatherMap.request(&r, &ctx(&OpenWeatherMap)).unwrap();
        assert_eq!(req.url, "https://api.openweathermap.org/data/2.5/forecast");
        assert_eq!(query(&req), [("q", "Berlin,DE"), ("units", "metric")]);
        assert!(matches!(
            OpenWeatherMap.info().auth,
            Auth::Key {
                env: "OPENWEATHER_API_KEY",
                placement: KeyPlacement::Query { param: "appid" },
                optional: false
            }
        ));
    }

    #[test]
    fn current_fixture_normalises() {
        let body = fixture(&OpenWeatherMap, "/data/2.5/weather");
        let zocca = request("weather.current", json!({"lat": 44.34, "lon": 10.99}));
        let Data::WeatherCurrent(w) =
            answer(&OpenWeatherMap, &zocca, test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(w.location.name.as_deref(), Some("Zocca"));
        assert_eq!(w.location.country_code.as_deref(), Some("IT"));
        assert_eq!(w.observed_at, "2022-08-30T14:43:12Z");
        assert_eq!(w.temperature_c, 25.33);
        assert_eq!(w.feels_like_c, Some(25.59));
        assert_eq!(w.wind_speed_ms, Some(0.62));
        assert_eq!(w.wind_dir_deg, Some(349.0));
        assert_eq!(w.pressure_hpa, Some(1015.0));
        assert_eq!(w.precipitation_mm, Some(3.16));
        assert_eq!(w.condition.text, "Moderate rain");
    }

    #[test]
    fn forecast_fixture_aggregates_local_days() {
        let body = fixture(&OpenWeatherMap, "/data/2.5/forecast");
        let r = request(
            "weather.forecast",
            json!({"lat": 52.52, "lon": 13.41, "days": 5}),
        );
        let Data::WeatherForecast(f) = answer(&OpenWeatherMap, &r, test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(f.daily.len(), 2, "the lone step of Jan 17 is a ragged end");
        let today = &f.daily[0];
        assert_eq!(today.date, "2025-01-15");
        assert_eq!((today.temp_min_c, today.temp_max_c), (0.9, 3.1));
        assert_eq!(today.condition.code, 3);
        let tomorrow = &f.daily[1];
        // Local days: 21:00 UTC on the 16th is 22:00 in Berlin, still the 16th.
        assert_eq!(tomorrow.date, "2025-01-16");
        assert_eq!((tomorrow.temp_min_c, tomorrow.temp_max_c), (-0.9, 3.7));
        assert_eq!(tomorrow.precipitation_mm, Some(1.71));
        assert_eq!(tomorrow.wind_max_ms, Some(5.6));
        assert_eq!(tomorrow.condition.text, "Slight snow fall");
    }

    #[test]
    fn error_signals_are_classified() {
        let r = berlin("weather.current");
        let f = failure(
            &OpenWeatherMap,
            &r,
            test_response(
                401,
                &[],
                r#"{"cod":401, "message": "Invalid API key. Please see https://openweathermap.org/faq#error401 for more info."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::Auth);
        assert!(
            f.message.starts_with("OpenWeatherMap: Invalid API key"),
            "{}",
            f.message
        );
        let f = failure(
            &OpenWeatherMap,
            &r,
            test_response(404, &[], r#"{"cod":"404","message":"city not found"}"#),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        let f = failure(
            &OpenWeatherMap,
            &r,
            test_response(
                429,
                &[("retry-after", "60")],
                r#"{"cod":429,"message":"Your account is temporary blocked due to exceeding of requests limitation of your subscription type."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        let f = failure(&OpenWeatherMap, &r, test_response(500, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn every_documented_condition_id_maps_to_a_known_wmo_code() {
        const DOCUMENTED: &[u16] = &[
            200, 201, 202, 210, 211, 212, 221, 230, 231, 232, 300, 301, 302, 310, 311, 312, 313,
            314, 321, 500, 501, 502, 503, 504, 511, 520, 521, 522, 531, 600, 601, 602, 611, 612,
            613, 615, 616, 620, 621, 622, 701, 711, 721, 731, 741, 751, 761, 762, 771, 781, 800,
            801, 802, 803, 804,
        ];
        for id in DOCUMENTED {
            let wmo = wmo_code(*id);
            assert_ne!(crate::capability::weather::wmo_text(wmo), "Unknown", "{id}");
        }
    }

    #[test]
    fn malformed_bodies_never_panic() {
        for (capability, path) in [
            ("weather.current", "/data/2.5/weather"),
            ("weather.forecast", "/data/2.5/forecast"),
        ] {
            assert_truncations_are_malformed(
                &OpenWeatherMap,
                &berlin(capability),
                fixture(&OpenWeatherMap, path),
            );
        }
        assert_eq!(wmo_code(211), 95);
        assert_eq!(wmo_code(313), 53);
        assert_eq!(wmo_code(771), 45);
        assert_eq!(wmo_code(999), 3);
    }
}
