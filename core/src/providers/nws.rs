//! US National Weather Service (api.weather.gov): `weather.current` and
//! `weather.forecast` for the United States and its territories.
//!
//! Keyless; NWS requires an identifying User-Agent (the pipeline sends the
//! client-wide one) and refuses others with 403, classified as `Auth` for
//! the same reason as at MET Norway. It needs coordinates, and answers in
//! several steps ([`Step::Next`]), each built from the previous reply:
//!
//! * `GET /points/{lat},{lon}` gives the forecast office and grid cell;
//! * forecast: `GET /gridpoints/{office}/{x},{y}/forecast`, day and night
//!   periods with °F temperatures and wind strings like `"5 to 10 mph"`;
//! * current: `GET /gridpoints/{office}/{x},{y}/stations`, then
//!   `GET /stations/{id}/observations/latest` of the nearest station, in SI
//!   units with WMO unit codes (`wmoUnit:km_h-1`, `wmoUnit:Pa`).
//!
//! A point outside NWS coverage is 404 `InvalidPoint` (`NotFound`). Errors
//! are `application/problem+json` (`title`, `detail`).
//!
//! Normalisation: °F → °C and mph/km/h/kt → m/s, rounded to 2 decimals; a
//! day's maximum is its daytime period and its minimum the following night
//! (a forecast that starts at night drops that first night); conditions
//! come from the icon codes (`ovc`, `tsra_hi`, `rain_showers,40`), mapped
//! to WMO codes, the most severe of day and night; cloud cover is the
//! largest cloud layer at the okta midpoint (FEW 19 %, SCT 44 %, BKN 75 %,
//! OVC 100 %). NWS gives no precipitation amounts in the forecast.

use chrono::DateTime;
use serde::Deserialize;

use super::clip;
use super::wire::{iso_utc, path_segment};
use crate::capability::marker;
use crate::capability::weather::{
    kmh_to_ms, Condition, CurrentQuery, CurrentWeather, Forecast, ForecastDay, ForecastQuery,
    GeoPoint, Location,
};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// US National Weather Service (<https://www.weather.gov/documentation/services-web-api>):
/// keyless official US forecasts and observations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nws;

static INFO: ProviderInfo = ProviderInfo {
    id: "nws",
    name: "US National Weather Service",
    auth: Auth::Keyless,
    base_url: "https://api.weather.gov",
    docs_url: "https://www.weather.gov/documentation/services-web-api",
    terms: "Public domain US government data, no key; requires an identifying User-Agent; \
            rate limit undisclosed (back off on 429). United States and territories only.",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

/// Media type of NWS's GeoJSON replies.
const GEO_JSON: &str = "application/geo+json";

fn get(ctx: &CallContext<'_>, path: &str) -> HttpRequest {
    HttpRequest::get(ctx.base_url, path).header("Accept", GEO_JSON)
}

impl Provider for Nws {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Nws: WeatherCurrent, WeatherForecast);

impl Serves<marker::WeatherCurrent> for Nws {
    fn build_request(
        &self,
        q: &CurrentQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        points_request(ctx, &q.location)
    }

    fn read_response(
        &self,
        q: &CurrentQuery,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<CurrentWeather>, ProviderFailure> {
        let (p, location) = match read_step(ctx, &q.location, &response, "stations")? {
            Step::Next(next) => return Ok(Step::Next(next)),
            Step::Done(last) => last,
        };
        let observed_at = p
            .timestamp
            .as_deref()
            .and_then(iso_utc)
            .ok_or_else(|| malformed(&response, "no observation `timestamp`"))?;
        let temperature_c = p
            .temperature
            .as_ref()
            .and_then(Measure::celsius)
            .ok_or_else(|| {
                malformed(
                    &response,
                    "no `temperature.value` in a known `temperature.unitCode` \
                     in the latest observation",
                )
            })?;
        let feels_like = [&p.heat_index, &p.wind_chill]
            .into_iter()
            .find_map(|m| m.as_ref().and_then(Measure::celsius));
        // Sea-level pressure only: the station's barometric pressure
        // is another quantity.
        let pressure = p.sea_level_pressure.as_ref().and_then(Measure::hpa);
        let icon = p
            .icon
            .as_deref()
            .ok_or_else(|| malformed(&response, "no `icon` in the latest observation"))?;
        let code = icon_code(icon)
            .ok_or_else(|| malformed(&response, &format!("unknown `icon` condition {icon:?}")))?;
        Ok(Step::Done(CurrentWeather {
            location,
            observed_at,
            temperature_c,
            feels_like_c: feels_like,
            humidity_pct: p.relative_humidity.as_ref().and_then(|m| m.value),
            wind_speed_ms: p.wind_speed.as_ref().and_then(Measure::metres_per_second),
            wind_dir_deg: p.wind_direction.as_ref().and_then(|m| m.value),
            pressure_hpa: pressure,
            precipitation_mm: p.precipitation_last_hour.as_ref().and_then(|m| m.value),
            cloud_cover_pct: p
                .cloud_layers
                .iter()
                .filter_map(CloudLayer::percent)
                .reduce(f64::max),
            condition: Condition::from_wmo(code),
        }))
    }
}

impl Serves<marker::WeatherForecast> for Nws {
    fn build_request(
        &self,
        q: &ForecastQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        points_request(ctx, &q.location)
    }

    fn read_response(
        &self,
        q: &ForecastQuery,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Forecast>, ProviderFailure> {
        let (p, location) = match read_step(ctx, &q.location, &response, "forecast")? {
            Step::Next(next) => return Ok(Step::Next(next)),
            Step::Done(last) => last,
        };
        let periods = p
            .periods
            .ok_or_else(|| malformed(&response, "no `periods`"))?;
        let daily =
            daily(&periods, usize::from(q.days)).map_err(|why| malformed(&response, &why))?;
        Ok(Step::Done(Forecast {
            location,
            generated_at: p.generated_at.as_deref().and_then(iso_utc),
            daily,
        }))
    }
}

/// The first request of either capability: the point's grid cell.
fn points_request(
    ctx: &CallContext<'_>,
    location: &Location,
) -> Result<HttpRequest, ProviderFailure> {
    let at = location.coordinates().map_err(ProviderFailure::not_sent)?;
    Ok(get(
        ctx,
        &format!("/points/{},{}", at.lat.to_param(), at.lon.to_param()),
    ))
}

/// A reply that lacks `what`.
fn malformed(response: &HttpResponse, what: &str) -> ProviderFailure {
    ProviderFailure::malformed(format!("NWS reply: {what}")).status(response.status)
}

/// The steps both capabilities share: a points reply leads to the grid
/// cell's `grid_tail` (`forecast` or `stations`), a list of stations to the
/// nearest one's latest observation. Any other reply is the last: its
/// properties and the place they describe.
fn read_step(
    ctx: &CallContext<'_>,
    location: &Location,
    response: &HttpResponse,
    grid_tail: &str,
) -> Result<Step<(Properties, GeoPoint)>, ProviderFailure> {
    let at = location.coordinates()?;
    check_status(response)?;
    let reply: Reply = response.json()?;
    // Which step this is shows in the reply's shape.
    if let Some(stations) = reply.features {
        let id = stations
            .into_iter()
            .find_map(|s| s.properties.station_identifier)
            .ok_or_else(|| response.failure(FailureClass::NotFound, "NWS lists no station here"))?;
        let path = format!("/stations/{}/observations/latest", path_segment(&id));
        return Ok(Step::Next(get(ctx, &path)));
    }
    let p = reply
        .properties
        .ok_or_else(|| malformed(response, "neither `properties` nor `features`"))?;
    // A points reply: it names the grid cell, and its parts are required.
    let points = p.grid_id.is_some()
        || p.grid_x.is_some()
        || p.grid_y.is_some()
        || p.forecast_office.is_some()
        || p.observation_stations.is_some();
    if points {
        let office = p
            .grid_id
            .as_deref()
            .ok_or_else(|| malformed(response, "no `gridId` in the point"))?;
        let x = p
            .grid_x
            .ok_or_else(|| malformed(response, "no `gridX` in the point"))?;
        let y = p
            .grid_y
            .ok_or_else(|| malformed(response, "no `gridY` in the point"))?;
        let path = format!("/gridpoints/{}/{x},{y}/{grid_tail}", path_segment(office));
        return Ok(Step::Next(get(ctx, &path)));
    }
    let location = GeoPoint {
        lat: at.lat.get(),
        lon: at.lon.get(),
        name: None,
        country_code: Some("US".to_string()),
        timezone: p.time_zone.clone(),
    };
    Ok(Step::Done((p, location)))
}

/// NWS status rules: 403 refuses the User-Agent; problem documents give the
/// message.
fn check_status(response: &HttpResponse) -> Result<(), ProviderFailure> {
    if response.status == 403 {
        return Err(response.failure(
            FailureClass::Auth,
            "NWS refused the request (403): it requires an identifying User-Agent with \
             contact details; set the client's User-Agent and contact",
        ));
    }
    response.check_status().map_err(|mut failure| {
        #[derive(Deserialize)]
        struct Problem {
            title: Option<String>,
            detail: Option<String>,
        }
        if let Ok(p) = serde_json::from_slice::<Problem>(&response.body) {
            let text: Vec<String> = [p.title, p.detail].into_iter().flatten().collect();
            if !text.is_empty() {
                failure.message = format!("NWS: {}", clip(&text.join(": ")));
            }
        }
        failure
    })
}

/// Groups day/night periods into at most `limit` days (see the module
/// docs). A day whose periods lack a temperature or a known icon is left
/// out; when no day is left, the error says why the first was.
fn daily(periods: &[Period], limit: usize) -> Result<Vec<ForecastDay>, String> {
    let mut days = Vec::new();
    let mut first_broken = None;
    let mut iter = periods.iter().skip_while(|p| !p.is_daytime).peekable();
    for _ in 0..limit {
        let Some(day) = iter.next() else {
            break;
        };
        let Some(night) = iter.next_if(|p| !p.is_daytime) else {
            break;
        };
        match day_of(day, night) {
            Ok(d) => days.push(d),
            Err(why) => {
                first_broken.get_or_insert(why);
            }
        }
    }
    if days.is_empty() {
        return Err(match first_broken {
            Some(why) => format!("no complete day in `periods`: {why}"),
            None => "no complete day in `periods`".into(),
        });
    }
    Ok(days)
}

/// The day of a daytime and the following night period.
fn day_of(day: &Period, night: &Period) -> Result<ForecastDay, String> {
    let start = DateTime::parse_from_rfc3339(&day.start_time)
        .map_err(|_| format!("unreadable `startTime` {:?}", day.start_time))?;
    let (max, min) = (day.celsius(), night.celsius());
    let (Some(max), Some(min)) = (max, min) else {
        return Err(format!(
            "no `temperature` in the periods of {}",
            day.start_time
        ));
    };
    // The day's strongest wind is unknown when a period's wind is.
    let wind = [day, night]
        .iter()
        .map(|p| p.wind_speed.as_deref().and_then(wind_ms))
        .try_fold(f64::NEG_INFINITY, |top, w| Some(top.max(w?)));
    let code = [day, night]
        .iter()
        .map(|p| p.icon.as_deref().and_then(icon_code))
        .try_fold(0, |top, c| Some(top.max(c?)))
        .ok_or_else(|| format!("no known `icon` in the periods of {}", day.start_time))?;
    Ok(ForecastDay {
        date: start.date_naive().format("%Y-%m-%d").to_string(),
        temp_min_c: min,
        temp_max_c: max,
        precipitation_mm: None,
        wind_max_ms: wind,
        condition: Condition::from_wmo(code),
    })
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn fahrenheit_to_celsius(f: f64) -> f64 {
    round2((f - 32.0) * 5.0 / 9.0)
}

/// The strongest wind in an NWS wind string (`"5 to 10 mph"`, `"20 km/h"`), m/s.
fn wind_ms(text: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    let top = lower
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter_map(|n| n.parse::<f64>().ok())
        .reduce(f64::max)?;
    Some(if lower.contains("km/h") {
        kmh_to_ms(top)
    } else if lower.contains("kt") {
        round2(top * 0.514_444)
    } else {
        round2(top * 0.447_04)
    })
}

/// The most severe WMO code among an icon URL's conditions
/// (`…/icons/land/night/rain_showers,30/tsra_hi,30?size=medium`).
fn icon_code(url: &str) -> Option<u8> {
    let path = url.split('?').next()?;
    let rest = path
        .split_once("/day/")
        .or_else(|| path.split_once("/night/"))?
        .1;
    rest.split('/')
        .filter_map(|part| part.split(',').next())
        .filter_map(wmo_code)
        .max()
}

/// The WMO code of an NWS icon condition. Obscurations (haze, smoke, dust)
/// have no code of their own in the WMO subset polyrelay uses and map to fog.
fn wmo_code(condition: &str) -> Option<u8> {
    Some(match condition {
        "skc" | "wind_skc" => 0,
        "few" | "wind_few" | "hot" | "cold" => 1,
        "sct" | "wind_sct" => 2,
        "bkn" | "wind_bkn" | "ovc" | "wind_ovc" => 3,
        "fog" | "haze" | "smoke" | "dust" => 45,
        "rain" => 63,
        "rain_showers" | "rain_showers_hi" => 80,
        "fzra" => 67,
        "rain_fzra" | "snow_fzra" => 66,
        "rain_snow" => 71,
        "snow" => 73,
        "blizzard" => 75,
        "sleet" | "rain_sleet" | "snow_sleet" => 77,
        "hurricane" | "tropical_storm" => 65,
        "tsra" | "tsra_sct" | "tsra_hi" | "tornado" => 95,
        _ => return None,
    })
}

#[derive(Deserialize)]
struct Reply {
    properties: Option<Properties>,
    features: Option<Vec<Station>>,
}

/// The `properties` of points, forecast and observation replies.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Properties {
    // Points.
    grid_id: Option<String>,
    grid_x: Option<i64>,
    grid_y: Option<i64>,
    forecast_office: Option<String>,
    observation_stations: Option<String>,
    time_zone: Option<String>,
    // Forecast.
    generated_at: Option<String>,
    periods: Option<Vec<Period>>,
    // Observation.
    timestamp: Option<String>,
    icon: Option<String>,
    temperature: Option<Measure>,
    wind_direction: Option<Measure>,
    wind_speed: Option<Measure>,
    sea_level_pressure: Option<Measure>,
    relative_humidity: Option<Measure>,
    wind_chill: Option<Measure>,
    heat_index: Option<Measure>,
    precipitation_last_hour: Option<Measure>,
    #[serde(default)]
    cloud_layers: Vec<CloudLayer>,
}

#[derive(Deserialize)]
struct Station {
    properties: StationProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StationProperties {
    station_identifier: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Period {
    start_time: String,
    is_daytime: bool,
    temperature: Option<f64>,
    temperature_unit: Option<String>,
    wind_speed: Option<String>,
    icon: Option<String>,
}

impl Period {
    fn celsius(&self) -> Option<f64> {
        let t = self.temperature?;
        Some(match self.temperature_unit.as_deref() {
            Some("C") => t,
            _ => fahrenheit_to_celsius(t),
        })
    }
}

/// A quantity with a WMO unit code; `value` is `null` when missing.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Measure {
    unit_code: Option<String>,
    value: Option<f64>,
}

impl Measure {
    /// The unit code; a value without one is unknown.
    fn unit(&self) -> Option<&str> {
        self.unit_code.as_deref()
    }

    fn celsius(&self) -> Option<f64> {
        let v = self.value?;
        match self.unit()? {
            u if u.ends_with("degF") => Some(fahrenheit_to_celsius(v)),
            u if u.ends_with("degC") => Some(round2(v)),
            _ => None,
        }
    }

    fn metres_per_second(&self) -> Option<f64> {
        let v = self.value?;
        match self.unit()? {
            u if u.ends_with("km_h-1") => Some(kmh_to_ms(v)),
            u if u.ends_with("m_s-1") => Some(round2(v)),
            u if u.ends_with("kn") || u.ends_with("kt") => Some(round2(v * 0.514_444)),
            u if u.ends_with("mi_h-1") || u.ends_with("mph") => Some(round2(v * 0.447_04)),
            _ => None,
        }
    }

    fn hpa(&self) -> Option<f64> {
        let v = self.value?;
        match self.unit()? {
            u if u.ends_with("hPa") => Some(v),
            u if u.ends_with("Pa") => Some(round2(v / 100.0)),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct CloudLayer {
    amount: Option<String>,
}

impl CloudLayer {
    fn percent(&self) -> Option<f64> {
        Some(match self.amount.as_deref()? {
            "SKC" | "CLR" => 0.0,
            "FEW" => 19.0,
            "SCT" => 44.0,
            "BKN" => 75.0,
            "OVC" | "VV" => 100.0,
            _ => return None,
        })
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /points/39.0469,-95.6775` (Topeka, Kansas), abridged.
    Fixture {
        method: "GET",
        path: "/points/*",
        status: 200,
        body: include_str!("fixtures/nws/points.json"),
    },
    // `GET /gridpoints/TOP/31,80/forecast`, abridged to three days.
    Fixture {
        method: "GET",
        path: "/gridpoints/TOP/31,80/forecast",
        status: 200,
        body: include_str!("fixtures/nws/forecast.json"),
    },
    // `GET /gridpoints/TOP/31,80/stations`, abridged to the nearest station.
    Fixture {
        method: "GET",
        path: "/gridpoints/TOP/31,80/stations",
        status: 200,
        body: include_str!("fixtures/nws/stations.json"),
    },
    // `GET /stations/KTOP/observations/latest`, abridged.
    Fixture {
        method: "GET",
        path: "/stations/KTOP/observations/latest",
        status: 200,
        body: include_str!("fixtures/nws/observation.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn topeka(capability: &str) -> Request {
        let mut params = json!({"lat": 39.0469, "lon": -95.6775});
        if capability == "weather.forecast" {
            params["days"] = json!(7);
        }
        request(capability, params)
    }

    fn next(request: &Request, body: &str) -> HttpRequest {
        match Nws.response(request, &ctx(&Nws), test_response(200, &[], body)) {
            Ok(Step::Next(req)) => req,
            other => panic!("expected a follow-up request, got {other:?}"),
        }
    }

    #[test]
    fn the_first_request_asks_for_the_point() {
        let req = Nws
            .request(&topeka("weather.forecast"), &ctx(&Nws))
            .unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.weather.gov/points/39.0469,-95.6775");
        assert!(req.query.is_empty());
        assert_eq!(
            req.headers,
            [("Accept".into(), "application/geo+json".to_string())]
        );
        let r = request("weather.current", json!({"city": "Topeka"}));
        let f = Nws.request(&r, &ctx(&Nws)).unwrap_err();
        assert_eq!(f.class, FailureClass::Unsupported);
        assert!(!f.request_sent);
    }

    #[test]
    fn the_forecast_takes_two_steps() {
        let r = topeka("weather.forecast");
        let follow = next(&r, fixture(&Nws, "/points/*"));
        assert_eq!(
            follow.url,
            "https://api.weather.gov/gridpoints/TOP/31,80/forecast"
        );
        assert_eq!(
            follow.headers,
            [("Accept".into(), "application/geo+json".to_string())]
        );

        let body = fixture(&Nws, "/gridpoints/TOP/31,80/forecast");
        let Data::WeatherForecast(f) = answer(&Nws, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(f.generated_at.as_deref(), Some("2025-01-15T13:41:16Z"));
        assert_eq!((f.location.lat, f.location.lon), (39.0469, -95.6775));
        assert_eq!(f.daily.len(), 3);
        let today = &f.daily[0];
        assert_eq!(today.date, "2025-01-15");
        assert_eq!((today.temp_max_c, today.temp_min_c), (5.0, -5.0)); // 41 °F, 23 °F
        assert_eq!(today.wind_max_ms, Some(4.47)); // 10 mph
        assert_eq!(today.condition.code, 2, "few by day, scattered by night");
        let thursday = &f.daily[1];
        assert_eq!((thursday.temp_max_c, thursday.temp_min_c), (10.0, -1.11));
        assert_eq!(thursday.wind_max_ms, Some(8.94)); // 20 mph
        assert_eq!(thursday.condition.text, "Thunderstorm");
        assert_eq!(f.daily[2].condition.code, 3);

        let r = request(
            "weather.forecast",
            json!({"lat": 39.0469, "lon": -95.6775, "days": 2}),
        );
        let Data::WeatherForecast(f) = answer(&Nws, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(f.daily.len(), 2);
    }

    #[test]
    fn current_weather_takes_three_steps() {
        let r = topeka("weather.current");
        let follow = next(&r, fixture(&Nws, "/points/*"));
        assert_eq!(
            follow.url,
            "https://api.weather.gov/gridpoints/TOP/31,80/stations"
        );
        let follow = next(&r, fixture(&Nws, "/gridpoints/TOP/31,80/stations"));
        assert_eq!(
            follow.url,
            "https://api.weather.gov/stations/KTOP/observations/latest"
        );

        let body = fixture(&Nws, "/stations/KTOP/observations/latest");
        let Data::WeatherCurrent(w) = answer(&Nws, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(w.observed_at, "2025-01-15T13:52:00Z");
        assert_eq!(w.temperature_c, -6.1);
        assert_eq!(w.feels_like_c, Some(-10.49));
        assert_eq!(w.humidity_pct, Some(67.52));
        assert_eq!(w.wind_speed_ms, Some(2.6)); // 9.36 km/h
        assert_eq!(w.wind_dir_deg, Some(200.0));
        assert_eq!(w.pressure_hpa, Some(1026.2)); // 102620 Pa at sea level
        assert_eq!(w.precipitation_mm, None);
        assert_eq!(w.cloud_cover_pct, Some(19.0));
        assert_eq!(w.condition.text, "Mainly clear");
        assert_eq!(w.location.country_code.as_deref(), Some("US"));
    }

    #[test]
    fn a_forecast_starting_at_night_drops_that_night() {
        // Issue #13 tolerant readers: the periods carry icons, since a day's
        // condition is required (no longer silently "clear sky").
        let body = r#"{"properties":{"periods":[
            {"startTime":"2025-01-15T18:00:00-06:00","isDaytime":false,"temperature":20,"temperatureUnit":"F","icon":"https://api.weather.gov/icons/land/night/skc"},
            {"startTime":"2025-01-16T06:00:00-06:00","isDaytime":true,"temperature":59,"temperatureUnit":"F","windSpeed":"20 km/h","icon":"https://api.weather.gov/icons/land/day/few"},
            {"startTime":"2025-01-16T18:00:00-06:00","isDaytime":false,"temperature":-1,"temperatureUnit":"C","icon":"https://api.weather.gov/icons/land/night/skc"},
            {"startTime":"2025-01-17T06:00:00-06:00","isDaytime":true,"temperature":60,"temperatureUnit":"F","icon":"https://api.weather.gov/icons/land/day/few"}]}}"#;
        let r = topeka("weather.forecast");
        let Data::WeatherForecast(f) = answer(&Nws, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(f.daily.len(), 1, "the last day has no night yet");
        assert_eq!(f.daily[0].date, "2025-01-16");
        assert_eq!((f.daily[0].temp_max_c, f.daily[0].temp_min_c), (15.0, -1.0));
        // Issue #13 tolerant readers: the night has no wind, so the day's
        // strongest wind is unknown (a maximum over part of it would not be).
        assert_eq!(f.daily[0].wind_max_ms, None);
    }

    #[test]
    fn icons_map_to_the_most_severe_wmo_code() {
        assert_eq!(
            icon_code(
                "https://api.weather.gov/icons/land/night/rain_showers,30/tsra_hi,30?size=medium"
            ),
            Some(95)
        );
        assert_eq!(
            icon_code("https://api.weather.gov/icons/land/day/ovc?size=small"),
            Some(3)
        );
        assert_eq!(
            icon_code("https://api.weather.gov/icons/land/day/snow,60"),
            Some(73)
        );
        assert_eq!(
            icon_code("https://api.weather.gov/icons/land/day/unknown"),
            None
        );
        assert_eq!(icon_code("garbage"), None);
        assert_eq!(wind_ms("15 kt"), Some(7.72));
        assert_eq!(wind_ms("calm"), None);
    }

    #[test]
    fn every_icon_condition_maps_to_a_known_wmo_code() {
        const ICONS: &[&str] = &[
            "skc",
            "few",
            "sct",
            "bkn",
            "ovc",
            "wind_skc",
            "wind_few",
            "wind_sct",
            "wind_bkn",
            "wind_ovc",
            "snow",
            "rain_snow",
            "rain_sleet",
            "snow_sleet",
            "fzra",
            "rain_fzra",
            "snow_fzra",
            "sleet",
            "rain",
            "rain_showers",
            "rain_showers_hi",
            "tsra",
            "tsra_sct",
            "tsra_hi",
            "tornado",
            "hurricane",
            "tropical_storm",
            "dust",
            "smoke",
            "haze",
            "hot",
            "cold",
            "blizzard",
            "fog",
        ];
        for icon in ICONS {
            let wmo = wmo_code(icon).unwrap_or_else(|| panic!("{icon} unmapped"));
            assert_ne!(
                crate::capability::weather::wmo_text(wmo),
                "Unknown",
                "{icon}"
            );
        }
    }

    #[test]
    fn error_signals_are_classified() {
        let r = topeka("weather.current");
        let f = failure(
            &Nws,
            &r,
            test_response(
                404,
                &[],
                r#"{"correlationId":"1f2b","title":"Data Unavailable For Requested Point","type":"https://api.weather.gov/problems/InvalidPoint","status":404,"detail":"Unable to provide data for requested point 51.5,-0.12","instance":"https://api.weather.gov/requests/1f2b"}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::NotFound);
        assert!(
            f.message
                .starts_with("NWS: Data Unavailable For Requested Point"),
            "{}",
            f.message
        );
        let f = failure(&Nws, &r, test_response(403, &[], "Access denied"));
        assert_eq!(f.class, FailureClass::Auth);
        let f = failure(
            &Nws,
            &r,
            test_response(
                500,
                &[],
                r#"{"title":"Unexpected Problem","status":500,"detail":"An unexpected problem has occurred."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(&Nws, &r, test_response(429, &[("retry-after", "5")], ""));
        assert_eq!(f.class, FailureClass::RateLimited);
        let f = failure(
            &Nws,
            &r,
            test_response(200, &[], r#"{"type":"FeatureCollection","features":[]}"#),
        );
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        for (capability, path) in [
            ("weather.forecast", "/gridpoints/TOP/31,80/forecast"),
            ("weather.current", "/stations/KTOP/observations/latest"),
            ("weather.current", "/points/*"),
        ] {
            let r = topeka(capability);
            assert_truncations_are_malformed(&Nws, &r, fixture(&Nws, path));
        }
        let no_temperature = r#"{"properties":{"timestamp":"2025-01-15T13:52:00+00:00","temperature":{"unitCode":"wmoUnit:degC","value":null}}}"#;
        let f = failure(
            &Nws,
            &topeka("weather.current"),
            test_response(200, &[], no_temperature),
        );
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
