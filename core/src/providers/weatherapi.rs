//! WeatherAPI.com: `weather.current` and `weather.forecast` for coordinates
//! or place names.
//!
//! Needs a free key (`WEATHERAPI_API_KEY`), read from the query string
//! (`key=`). The free plan allows about 100,000 calls a month and a 3-day
//! forecast; more days come back only on paid plans, so the answer may be
//! shorter than asked. Wind is requested in km/h and converted to m/s;
//! WeatherAPI condition codes (1000 sunny … 1282 snow with thunder) map to
//! WMO codes.
//!
//! Errors are `{"error":{"code":1006,"message":"No matching location
//! found."}}`; the code decides: 1002/2006 key missing or invalid and
//! 2008/2009 key disabled or not allowed are `Auth`, **2007 (HTTP 403) is
//! the monthly quota** (`QuotaExhausted` until the first of next month,
//! UTC), 1006 `NotFound`, 9999 `Transient`, other codes `InvalidRequest`.

use chrono::DateTime;
use serde::Deserialize;

use super::wire::{next_utc_month, non_empty};
use super::{clip, utc_text};
use crate::capability::marker;
use crate::capability::weather::{
    kmh_to_ms, Condition, CurrentQuery, CurrentWeather, Forecast, ForecastDay, ForecastQuery,
    GeoPoint, Location,
};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Quota, Serves, Step,
};

/// WeatherAPI.com (<https://www.weatherapi.com>): weather by coordinates or
/// place name with a free key.
#[derive(Debug, Clone, Copy, Default)]
pub struct WeatherApi;

static INFO: ProviderInfo = ProviderInfo {
    id: "weatherapi",
    name: "WeatherAPI.com",
    auth: Auth::Key {
        env: "WEATHERAPI_API_KEY",
        placement: KeyPlacement::Query { param: "key" },
        optional: false,
    },
    base_url: "https://api.weatherapi.com",
    docs_url: "https://www.weatherapi.com/docs/",
    terms: "Free plan: about 100,000 calls/month, 3-day forecast, attribution link \
            required.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: Some(Quota::per_month(100_000)),
};

fn place(location: &Location) -> String {
    match location {
        Location::Coordinates(at) => format!("{},{}", at.lat.to_param(), at.lon.to_param()),
        Location::Place { city } => city.clone(),
    }
}

impl Provider for WeatherApi {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(WeatherApi: WeatherCurrent, WeatherForecast);

impl Serves<marker::WeatherCurrent> for WeatherApi {
    fn build_request(
        &self,
        q: &CurrentQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(HttpRequest::get(ctx.base_url, "/v1/current.json")
            .query("q", place(&q.location))
            .query("aqi", "no"))
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
            .ok_or_else(|| malformed(&response, "no `current`"))?;
        let observed = DateTime::from_timestamp(now.last_updated_epoch, 0)
            .ok_or_else(|| malformed(&response, "impossible `last_updated_epoch`"))?;
        Ok(Step::Done(CurrentWeather {
            location,
            observed_at: utc_text(observed),
            temperature_c: now.temp_c,
            feels_like_c: now.feelslike_c,
            humidity_pct: now.humidity,
            wind_speed_ms: now.wind_kph.map(kmh_to_ms),
            wind_dir_deg: now.wind_degree,
            pressure_hpa: now.pressure_mb,
            precipitation_mm: now.precip_mm,
            cloud_cover_pct: now.cloud,
            condition: condition(&now.condition),
        }))
    }
}

impl Serves<marker::WeatherForecast> for WeatherApi {
    fn build_request(
        &self,
        q: &ForecastQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(HttpRequest::get(ctx.base_url, "/v1/forecast.json")
            .query("q", place(&q.location))
            .query("days", q.days.min(14).to_string())
            .query("aqi", "no")
            .query("alerts", "no"))
    }

    fn read_response(
        &self,
        q: &ForecastQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Forecast>, ProviderFailure> {
        let (reply, location) = read(&response)?;
        let days = reply
            .forecast
            .ok_or_else(|| malformed(&response, "no `forecast`"))?
            .forecastday;
        if days.is_empty() {
            return Err(malformed(&response, "no day in `forecast.forecastday`"));
        }
        let daily = days
            .into_iter()
            .take(usize::from(q.days))
            .map(|d| ForecastDay {
                date: d.date,
                temp_min_c: d.day.mintemp_c,
                temp_max_c: d.day.maxtemp_c,
                precipitation_mm: d.day.totalprecip_mm,
                wind_max_ms: d.day.maxwind_kph.map(kmh_to_ms),
                condition: condition(&d.day.condition),
            })
            .collect();
        Ok(Step::Done(Forecast {
            location,
            generated_at: None,
            daily,
        }))
    }
}

/// The reply of either capability, and the place it answers for.
fn read(response: &HttpResponse) -> Result<(Reply, GeoPoint), ProviderFailure> {
    if let Ok(ErrorReply { error }) = serde_json::from_slice(&response.body) {
        return Err(classify(response, &error));
    }
    response.check_status()?;
    let mut reply: Reply = response.json()?;
    let location = GeoPoint {
        lat: reply.location.lat,
        lon: reply.location.lon,
        name: non_empty(Some(std::mem::take(&mut reply.location.name))),
        country_code: None,
        timezone: non_empty(reply.location.tz_id.take()),
    };
    Ok((reply, location))
}

fn malformed(response: &HttpResponse, what: &str) -> ProviderFailure {
    ProviderFailure::malformed(format!("WeatherAPI reply: {what}")).status(response.status)
}

fn classify(response: &HttpResponse, error: &ApiError) -> ProviderFailure {
    let message = format!("WeatherAPI {}: {}", error.code, clip(&error.message));
    let class = match error.code {
        2007 => {
            return response
                .failure(FailureClass::QuotaExhausted, message)
                .reset_at(next_utc_month(response.received_at));
        }
        1002 | 2006 | 2008 | 2009 => FailureClass::Auth,
        1006 => FailureClass::NotFound,
        9999 => FailureClass::Transient,
        _ => response
            .status_class()
            .unwrap_or(FailureClass::InvalidRequest),
    };
    response.failure(class, message)
}

/// The WMO code of a WeatherAPI condition code. Sleet maps to the snow
/// code of the same intensity, as for MET Norway; a code WeatherAPI adds
/// after this table was written counts as overcast.
fn wmo_code(code: u16) -> u8 {
    match code {
        1000 => 0,
        1003 => 2,
        1006 | 1009 => 3,
        1030 | 1135 => 45,
        1147 => 48,
        1150 | 1153 => 51,
        1072 | 1168 => 56,
        1171 => 57,
        1063 | 1180 | 1183 => 61,
        1186 | 1189 => 63,
        1192 | 1195 => 65,
        1198 => 66,
        1201 => 67,
        1066 | 1069 | 1204 | 1210 | 1213 => 71,
        1207 | 1216 | 1219 => 73,
        1114 | 1117 | 1222 | 1225 => 75,
        1237 | 1261 | 1264 => 77,
        1240 => 80,
        1243 => 81,
        1246 => 82,
        1249 | 1255 => 85,
        1252 | 1258 => 86,
        1087 | 1273 | 1276 | 1279 | 1282 => 95,
        _ => 3,
    }
}

fn condition(c: &ApiCondition) -> Condition {
    Condition::from_wmo(wmo_code(c.code))
}

#[derive(Deserialize)]
struct ErrorReply {
    error: ApiError,
}

#[derive(Deserialize)]
struct ApiError {
    code: u32,
    message: String,
}

#[derive(Deserialize)]
struct Reply {
    location: ApiLocation,
    current: Option<Current>,
    forecast: Option<ApiForecast>,
}

#[derive(Deserialize)]
struct ApiLocation {
    name: String,
    lat: f64,
    lon: f64,
    tz_id: Option<String>,
}

#[derive(Deserialize)]
struct Current {
    last_updated_epoch: i64,
    temp_c: f64,
    feelslike_c: Option<f64>,
    humidity: Option<f64>,
    wind_kph: Option<f64>,
    wind_degree: Option<f64>,
    pressure_mb: Option<f64>,
    precip_mm: Option<f64>,
    cloud: Option<f64>,
    condition: ApiCondition,
}

#[derive(Deserialize)]
struct ApiCondition {
    code: u16,
}

#[derive(Deserialize)]
struct ApiForecast {
    forecastday: Vec<ApiDay>,
}

#[derive(Deserialize)]
struct ApiDay {
    date: String,
    day: DaySummary,
}

#[derive(Deserialize)]
struct DaySummary {
    maxtemp_c: f64,
    mintemp_c: f64,
    totalprecip_mm: Option<f64>,
    maxwind_kph: Option<f64>,
    condition: ApiCondition,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /v1/current.json?q=51.5072,-0.1276&aqi=no`.
    Fixture {
        method: "GET",
        path: "/v1/current.json",
        status: 200,
        body: include_str!("fixtures/weatherapi/current_london.json"),
    },
    // `GET /v1/forecast.json?q=51.5072,-0.1276&days=3&aqi=no&alerts=no`, abridged.
    Fixture {
        method: "GET",
        path: "/v1/forecast.json",
        status: 200,
        body: include_str!("fixtures/weatherapi/forecast_london.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn london(capability: &str) -> Request {
        let mut params = json!({"lat": 51.5072, "lon": -0.1276});
        if capability == "weather.forecast" {
            params["days"] = json!(3);
        }
        request(capability, params)
    }

    fn api_error(status: u16, code: u32, message: &str) -> ProviderFailure {
        let body = json!({"error": {"code": code, "message": message}}).to_string();
        failure(
            &WeatherApi,
            &london("weather.current"),
            test_response(status, &[], &body),
        )
    }

    #[test]
    fn an_unknown_code_follows_the_status() {
        assert_eq!(
            api_error(503, 503, "Service Unavailable").class,
            FailureClass::Transient
        );
        assert_eq!(
            api_error(400, 1234, "Something new").class,
            FailureClass::InvalidRequest
        );
        assert_eq!(
            api_error(200, 1234, "Something new").class,
            FailureClass::InvalidRequest
        );
    }

    #[test]
    fn requests_are_exact_and_take_place_names() {
        let req = WeatherApi
            .request(&london("weather.current"), &ctx(&WeatherApi))
            .unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.weatherapi.com/v1/current.json");
        assert_eq!(query(&req), [("q", "51.5072,-0.1276"), ("aqi", "no")]);
        assert!(req.headers.is_empty());
        let r = request("weather.forecast", json!({"city": "Paris, FR", "days": 16}));
        let req = WeatherApi.request(&r, &ctx(&WeatherApi)).unwrap();
        assert_eq!(req.url, "https://api.weatherapi.com/v1/forecast.json");
        assert_eq!(
            query(&req),
            [
                ("q", "Paris, FR"),
                ("days", "14"),
                ("aqi", "no"),
                ("alerts", "no")
            ]
        );
        assert!(matches!(
            WeatherApi.info().auth,
            Auth::Key {
                placement: KeyPlacement::Query { param: "key" },
                ..
            }
        ));
    }

    #[test]
    fn fixtures_normalise() {
        let body = fixture(&WeatherApi, "/v1/current.json");
        let r = london("weather.current");
        let Data::WeatherCurrent(w) = answer(&WeatherApi, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(w.location.name.as_deref(), Some("London"));
        assert_eq!(w.location.timezone.as_deref(), Some("Europe/London"));
        assert_eq!(w.observed_at, "2025-01-15T14:00:00Z");
        assert_eq!(w.temperature_c, 6.2);
        assert_eq!(w.feels_like_c, Some(4.0));
        assert_eq!(w.wind_speed_ms, Some(2.89)); // 10.4 km/h
        assert_eq!(w.pressure_hpa, Some(1034.0));
        assert_eq!(w.cloud_cover_pct, Some(50.0));
        assert_eq!(w.condition.code, 2);

        let body = fixture(&WeatherApi, "/v1/forecast.json");
        let r = london("weather.forecast");
        let Data::WeatherForecast(f) = answer(&WeatherApi, &r, test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(f.daily.len(), 3);
        assert_eq!(f.daily[0].date, "2025-01-15");
        assert_eq!((f.daily[0].temp_min_c, f.daily[0].temp_max_c), (1.9, 7.1));
        assert_eq!(f.daily[0].wind_max_ms, Some(4.19)); // 15.1 km/h
        assert_eq!(f.daily[1].precipitation_mm, Some(1.27));
        assert_eq!(f.daily[1].condition.text, "Slight rain");
        assert_eq!(f.daily[2].condition.text, "Depositing rime fog");
    }

    #[test]
    fn error_codes_are_classified() {
        let f = api_error(403, 2007, "API key has exceeded calls per month quota.");
        assert_eq!(f.class, FailureClass::QuotaExhausted);
        assert_eq!(f.reset_at, Some("2025-02-01T00:00:00Z".parse().unwrap()));
        assert_eq!(
            api_error(401, 2006, "API key provided is invalid").class,
            FailureClass::Auth
        );
        assert_eq!(
            api_error(401, 1002, "API key is invalid or not provided.").class,
            FailureClass::Auth
        );
        assert_eq!(
            api_error(403, 2008, "API key has been disabled.").class,
            FailureClass::Auth
        );
        let f = api_error(400, 1006, "No matching location found.");
        assert_eq!(f.class, FailureClass::NotFound);
        assert_eq!(f.message, "WeatherAPI 1006: No matching location found.");
        assert_eq!(
            api_error(400, 1003, "Parameter 'q' not provided.").class,
            FailureClass::InvalidRequest
        );
        assert_eq!(
            api_error(400, 9999, "Internal application error.").class,
            FailureClass::Transient
        );
        let f = failure(
            &WeatherApi,
            &london("weather.current"),
            test_response(502, &[], "<html/>"),
        );
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn every_documented_condition_code_maps_to_a_known_wmo_code() {
        const DOCUMENTED: &[u16] = &[
            1000, 1003, 1006, 1009, 1030, 1063, 1066, 1069, 1072, 1087, 1114, 1117, 1135, 1147,
            1150, 1153, 1168, 1171, 1180, 1183, 1186, 1189, 1192, 1195, 1198, 1201, 1204, 1207,
            1210, 1213, 1216, 1219, 1222, 1225, 1237, 1240, 1243, 1246, 1249, 1252, 1255, 1258,
            1261, 1264, 1273, 1276, 1279, 1282,
        ];
        for code in DOCUMENTED {
            let wmo = wmo_code(*code);
            assert_ne!(
                crate::capability::weather::wmo_text(wmo),
                "Unknown",
                "{code}"
            );
        }
    }

    #[test]
    fn malformed_bodies_never_panic() {
        for (capability, path) in [
            ("weather.current", "/v1/current.json"),
            ("weather.forecast", "/v1/forecast.json"),
        ] {
            assert_truncations_are_malformed(
                &WeatherApi,
                &london(capability),
                fixture(&WeatherApi, path),
            );
        }
        let no_forecast = fixture(&WeatherApi, "/v1/current.json");
        let f = failure(
            &WeatherApi,
            &london("weather.forecast"),
            test_response(200, &[], no_forecast),
        );
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
