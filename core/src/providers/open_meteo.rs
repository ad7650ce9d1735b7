//! Open-Meteo forecast API: `weather.current` and `weather.forecast`.
//!
//! Keyless and free for non-commercial use. It needs coordinates (a place
//! name is `Unsupported`; the pipeline can fall back to a provider that
//! resolves names). Wind is requested in the API's default km/h and converted
//! to m/s. With `timezone=auto`, times are local: the current observation time
//! is turned into UTC with `utc_offset_seconds`, and daily dates stay local.
//! Errors come as `{"error":true,"reason":"…"}` with HTTP 400 (bad
//! parameters) or 429 (limits exceeded); the reason becomes the message.

use chrono::{NaiveDateTime, TimeDelta};
use serde::Deserialize;

use super::{clip, utc_text};
use crate::capability::marker;
use crate::capability::weather::{
    kmh_to_ms, Condition, CurrentQuery, CurrentWeather, Forecast, ForecastDay, ForecastQuery,
    GeoPoint, Location,
};
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Quota, Serves,
    Step,
};

/// Open-Meteo (<https://open-meteo.com>): keyless weather from national
/// weather-service models, free for non-commercial use.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenMeteo;

static INFO: ProviderInfo = ProviderInfo {
    id: "open-meteo",
    name: "Open-Meteo",
    auth: Auth::Keyless,
    base_url: "https://api.open-meteo.com",
    docs_url: "https://open-meteo.com/en/docs",
    terms: "Free for non-commercial use only, under 600 calls/min, 5,000/hour, 10,000/day \
            and 300,000/month; data under CC BY 4.0 (attribution required). Commercial use \
            needs the paid customer API.",
    commercial_use: false,
    default_rate_limit: Some("600/min"),
    default_quota: Some(Quota::per_day(10_000)),
};

const CURRENT_FIELDS: &str = "temperature_2m,relative_humidity_2m,apparent_temperature,\
    precipitation,weather_code,cloud_cover,pressure_msl,wind_speed_10m,wind_direction_10m";
const DAILY_FIELDS: &str =
    "weather_code,temperature_2m_max,temperature_2m_min,precipitation_sum,wind_speed_10m_max";

impl Provider for OpenMeteo {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(OpenMeteo: WeatherCurrent, WeatherForecast);

impl Serves<marker::WeatherCurrent> for OpenMeteo {
    fn build_request(
        &self,
        q: &CurrentQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(forecast_request(&q.location, ctx)?
            .query("current", CURRENT_FIELDS)
            .query("timezone", "auto"))
    }

    fn read_response(
        &self,
        _q: &CurrentQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<CurrentWeather>, ProviderFailure> {
        let (reply, location) = read(&response)?;
        let now = reply
            .current
            .ok_or_else(|| malformed(&response, "no `current` block"))?;
        let local = NaiveDateTime::parse_from_str(&now.time, "%Y-%m-%dT%H:%M")
            .map_err(|_| malformed(&response, "unreadable `current.time`"))?;
        let offset = reply
            .utc_offset_seconds
            .ok_or_else(|| malformed(&response, "no `utc_offset_seconds`"))?;
        let observed = TimeDelta::try_seconds(offset)
            .and_then(|offset| local.checked_sub_signed(offset))
            .ok_or_else(|| malformed(&response, "impossible `utc_offset_seconds`"))?;
        Ok(Step::Done(CurrentWeather {
            location,
            observed_at: utc_text(observed.and_utc()),
            temperature_c: now.temperature_2m,
            feels_like_c: now.apparent_temperature,
            humidity_pct: now.relative_humidity_2m,
            wind_speed_ms: now.wind_speed_10m.map(kmh_to_ms),
            wind_dir_deg: now.wind_direction_10m,
            pressure_hpa: now.pressure_msl,
            precipitation_mm: now.precipitation,
            cloud_cover_pct: now.cloud_cover,
            condition: Condition::from_wmo(now.weather_code),
        }))
    }
}

impl Serves<marker::WeatherForecast> for OpenMeteo {
    fn build_request(
        &self,
        q: &ForecastQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(forecast_request(&q.location, ctx)?
            .query("daily", DAILY_FIELDS)
            .query("timezone", "auto")
            .query("forecast_days", q.days.to_string()))
    }

    fn read_response(
        &self,
        q: &ForecastQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Forecast>, ProviderFailure> {
        let (reply, location) = read(&response)?;
        let daily = reply
            .daily
            .ok_or_else(|| malformed(&response, "no `daily` block"))?;
        let days = daily
            .days(usize::from(q.days))
            .map_err(|why| malformed(&response, &why))?;
        Ok(Step::Done(Forecast {
            location,
            generated_at: None,
            daily: days,
        }))
    }
}

/// `/v1/forecast` at the location's coordinates (a place name is
/// unsupported).
fn forecast_request(
    location: &Location,
    ctx: &CallContext<'_>,
) -> Result<HttpRequest, ProviderFailure> {
    let at = location.coordinates()?;
    Ok(HttpRequest::get(ctx.base_url, "/v1/forecast")
        .query("latitude", at.lat.to_param())
        .query("longitude", at.lon.to_param()))
}

/// The reply of either capability, and the point it answers for.
fn read(response: &HttpResponse) -> Result<(Reply, GeoPoint), ProviderFailure> {
    check_status(response)?;
    let mut reply: Reply = response.json()?;
    let location = GeoPoint {
        lat: reply.latitude,
        lon: reply.longitude,
        name: None,
        country_code: None,
        timezone: reply.timezone.take(),
    };
    Ok((reply, location))
}

fn malformed(response: &HttpResponse, what: &str) -> ProviderFailure {
    ProviderFailure::malformed(format!("Open-Meteo reply: {what}")).status(response.status)
}

/// The status check of every Open-Meteo API (forecast, geocoding): errors
/// are `{"error":true,"reason":"…"}`, and the reason says what was wrong.
pub(crate) fn check_status(response: &HttpResponse) -> Result<(), ProviderFailure> {
    #[derive(Deserialize)]
    struct ErrorReply {
        reason: Option<String>,
    }
    response.check_status().map_err(|mut failure| {
        if let Ok(ErrorReply {
            reason: Some(reason),
        }) = serde_json::from_slice(&response.body)
        {
            failure.message = clip(&reason);
        }
        failure
    })
}

#[derive(Deserialize)]
struct Reply {
    latitude: f64,
    longitude: f64,
    /// Needed for `current` only (its time is local).
    utc_offset_seconds: Option<i64>,
    timezone: Option<String>,
    current: Option<Current>,
    daily: Option<Daily>,
}

#[derive(Deserialize)]
struct Current {
    time: String,
    temperature_2m: f64,
    relative_humidity_2m: Option<f64>,
    apparent_temperature: Option<f64>,
    precipitation: Option<f64>,
    weather_code: u8,
    cloud_cover: Option<f64>,
    pressure_msl: Option<f64>,
    wind_speed_10m: Option<f64>,
    wind_direction_10m: Option<f64>,
}

/// Parallel arrays, one element per day; `null` where a model has no value.
#[derive(Deserialize)]
struct Daily {
    time: Vec<String>,
    weather_code: Vec<Option<u8>>,
    temperature_2m_max: Vec<Option<f64>>,
    temperature_2m_min: Vec<Option<f64>>,
    #[serde(default)]
    precipitation_sum: Vec<Option<f64>>,
    #[serde(default)]
    wind_speed_10m_max: Vec<Option<f64>>,
}

impl Daily {
    /// Up to `limit` days, stopping at the first day without temperatures or
    /// a weather code (the end of the model's range), so days stay contiguous.
    /// No first day is an error that names the array without its value.
    fn days(&self, limit: usize) -> Result<Vec<ForecastDay>, String> {
        let at = |v: &[Option<f64>], i: usize| v.get(i).copied().flatten();
        let missing = [
            ("time", self.time.is_empty()),
            (
                "weather_code",
                self.weather_code.first().copied().flatten().is_none(),
            ),
            (
                "temperature_2m_max",
                at(&self.temperature_2m_max, 0).is_none(),
            ),
            (
                "temperature_2m_min",
                at(&self.temperature_2m_min, 0).is_none(),
            ),
        ]
        .into_iter()
        .find_map(|(name, missing)| missing.then_some(name));
        if let Some(name) = missing {
            return Err(format!(
                "no complete day in `daily`: no `daily.{name}` for the first day"
            ));
        }
        let days = self
            .time
            .iter()
            .enumerate()
            .take(limit)
            .map_while(|(i, date)| {
                Some(ForecastDay {
                    date: date.clone(),
                    temp_min_c: at(&self.temperature_2m_min, i)?,
                    temp_max_c: at(&self.temperature_2m_max, i)?,
                    precipitation_mm: at(&self.precipitation_sum, i),
                    wind_max_ms: at(&self.wind_speed_10m_max, i).map(kmh_to_ms),
                    condition: Condition::from_wmo(self.weather_code.get(i).copied().flatten()?),
                })
            })
            .collect::<Vec<_>>();
        if days.is_empty() {
            return Err("no complete day in `daily`".into());
        }
        Ok(days)
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // A reply for Berlin (52.52, 13.41) with both `current` and 7 `daily` days,
    // so it serves either capability.
    Fixture {
        method: "GET",
        path: "/v1/forecast",
        status: 200,
        body: include_str!("fixtures/open-meteo/berlin.json"),
    },
];

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::error::FailureClass;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn ok(body: &str) -> HttpResponse {
        test_response(200, &[("content-type", "application/json")], body)
    }

    #[test]
    fn current_request_is_exact() {
        let r = request("weather.current", json!({"lat": 52.52, "lon": 13.41}));
        let req = OpenMeteo.request(&r, &ctx(&OpenMeteo)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.open-meteo.com/v1/forecast");
        assert_eq!(
            query(&req),
            [
                ("latitude", "52.52"),
                ("longitude", "13.41"),
                ("current", "temperature_2m,relative_humidity_2m,apparent_temperature,precipitation,weather_code,cloud_cover,pressure_msl,wind_speed_10m,wind_direction_10m"),
                ("timezone", "auto"),
            ]
        );
        assert!(req.headers.is_empty());
        assert!(req.body.is_none());
    }

    #[test]
    fn forecast_request_is_exact_and_uses_the_configured_base() {
        let r = request(
            "weather.forecast",
            json!({"lat": -33.86785, "lon": 151.20732, "days": 7}),
        );
        let ctx = CallContext {
            base_url: "http://127.0.0.1:9/open-meteo/",
            user_agent: "x",
        };
        let req = OpenMeteo.request(&r, &ctx).unwrap();
        assert_eq!(req.url, "http://127.0.0.1:9/open-meteo/v1/forecast");
        assert_eq!(
            query(&req),
            [
                ("latitude", "-33.8679"),
                ("longitude", "151.2073"),
                ("daily", "weather_code,temperature_2m_max,temperature_2m_min,precipitation_sum,wind_speed_10m_max"),
                ("timezone", "auto"),
                ("forecast_days", "7"),
            ]
        );
    }

    #[test]
    fn place_names_and_other_capabilities_are_unsupported() {
        let r = request("weather.current", json!({"city": "Berlin"}));
        let err = OpenMeteo.request(&r, &ctx(&OpenMeteo)).unwrap_err();
        assert_eq!(err.class, FailureClass::Unsupported);
        let r = request("finance.fx_rates", json!({}));
        let err = OpenMeteo.request(&r, &ctx(&OpenMeteo)).unwrap_err();
        assert_eq!(err.class, FailureClass::Unsupported);
    }

    #[test]
    fn fixture_normalises_current_weather() {
        let r = request("weather.current", json!({"lat": 52.52, "lon": 13.41}));
        let Data::WeatherCurrent(w) =
            answer(&OpenMeteo, &r, ok(fixture(&OpenMeteo, "/v1/forecast")))
        else {
            panic!("wrong data")
        };
        assert_eq!(w.location.lat, 52.52);
        assert_eq!(w.location.lon, 13.419998);
        assert_eq!(w.location.timezone.as_deref(), Some("Europe/Berlin"));
        // 14:45 in Berlin (UTC+1) is 13:45 UTC.
        assert_eq!(w.observed_at, "2025-01-15T13:45:00Z");
        assert_eq!(w.temperature_c, 3.4);
        assert_eq!(w.feels_like_c, Some(-0.6));
        assert_eq!(w.humidity_pct, Some(81.0));
        assert_eq!(w.wind_speed_ms, Some(3.11)); // 11.2 km/h
        assert_eq!(w.wind_dir_deg, Some(256.0));
        assert_eq!(w.pressure_hpa, Some(1031.2));
        assert_eq!(w.precipitation_mm, Some(0.0));
        assert_eq!(w.cloud_cover_pct, Some(100.0));
        assert_eq!(w.condition, Condition::from_wmo(3));
        assert_eq!(w.condition.text, "Overcast");
    }

    #[test]
    fn fixture_normalises_the_forecast_to_the_requested_days() {
        let body = fixture(&OpenMeteo, "/v1/forecast");
        let r = request(
            "weather.forecast",
            json!({"lat": 52.52, "lon": 13.41, "days": 3}),
        );
        let Data::WeatherForecast(f) = answer(&OpenMeteo, &r, ok(body)) else {
            panic!("wrong data")
        };
        assert_eq!(f.daily.len(), 3);
        let d = &f.daily[0];
        assert_eq!(d.date, "2025-01-15");
        assert_eq!((d.temp_min_c, d.temp_max_c), (-0.8, 4.1));
        assert_eq!(d.precipitation_mm, Some(0.0));
        assert_eq!(d.wind_max_ms, Some(4.0)); // 14.4 km/h
        assert_eq!(f.daily[1].condition.code, 45);
        assert_eq!(f.daily[1].condition.text, "Fog");

        let r = request(
            "weather.forecast",
            json!({"lat": 52.52, "lon": 13.41, "days": 16}),
        );
        let Data::WeatherForecast(f) = answer(&OpenMeteo, &r, ok(body)) else {
            panic!("wrong data")
        };
        assert_eq!(f.daily.len(), 7);
        assert_eq!(f.daily[5].condition.text, "Slight rain");
        assert_eq!(f.daily[5].precipitation_mm, Some(2.4));
        assert_eq!(f.daily[5].wind_max_ms, Some(5.19)); // 18.7 km/h
    }

    #[test]
    fn a_day_without_values_ends_the_forecast() {
        let body = r#"{"latitude":1,"longitude":2,"daily":{"time":["2025-01-15","2025-01-16"],
            "weather_code":[1,null],"temperature_2m_max":[3,4],"temperature_2m_min":[1,2]}}"#;
        let r = request("weather.forecast", json!({"lat": 1, "lon": 2}));
        let Data::WeatherForecast(f) = answer(&OpenMeteo, &r, ok(body)) else {
            panic!("wrong data")
        };
        assert_eq!(f.daily.len(), 1);
        assert_eq!(f.daily[0].precipitation_mm, None);
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request("weather.current", json!({"lat": 52.52, "lon": 13.41}));
        let f = failure(
            &OpenMeteo,
            &r,
            test_response(
                400,
                &[],
                r#"{"error":true,"reason":"Cannot initialize WeatherVariable from invalid String value tempeture_2m for key hourly"}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(f.status, Some(400));
        assert!(f.message.contains("tempeture_2m"), "{}", f.message);

        let f = failure(
            &OpenMeteo,
            &r,
            test_response(
                429,
                &[("retry-after", "30")],
                r#"{"error":true,"reason":"Minutely API request limit exceeded. Please try again in one minute."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(30)));
        assert!(f.message.starts_with("Minutely"), "{}", f.message);

        let f = failure(
            &OpenMeteo,
            &r,
            test_response(502, &[], "<html>Bad Gateway</html>"),
        );
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&OpenMeteo, "/v1/forecast");
        for r in [
            request("weather.current", json!({"lat": 52.52, "lon": 13.41})),
            request("weather.forecast", json!({"lat": 52.52, "lon": 13.41})),
        ] {
            assert_truncations_are_malformed(&OpenMeteo, &r, body);
            let f = failure(&OpenMeteo, &r, ok(r#"{"latitude":1,"longitude":2}"#));
            assert_eq!(f.class, FailureClass::MalformedResponse);
        }
        let r = request("weather.current", json!({"lat": 1, "lon": 2}));
        let bad_time = r#"{"latitude":1,"longitude":2,"current":{"time":"yesterday","temperature_2m":1,"weather_code":0}}"#;
        let f = failure(&OpenMeteo, &r, ok(bad_time));
        assert_eq!(f.class, FailureClass::MalformedResponse);
        let bad_offset = r#"{"latitude":1,"longitude":2,"utc_offset_seconds":9223372036854775807,
            "current":{"time":"2025-01-15T14:45","temperature_2m":1,"weather_code":0}}"#;
        let f = failure(&OpenMeteo, &r, ok(bad_offset));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
