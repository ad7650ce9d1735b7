//! `weather.current` and `weather.forecast`: requests and normalised answers.

use serde::{Deserialize, Serialize};

use super::params::Params;
use super::schema::{Alternatives, Param, ParamDefault, ParamKind, ParamTable};
use crate::echo::echo_number;
use crate::error::{Error, Result};

/// A latitude or longitude, kept at 4 decimals (about 11 m).
///
/// Four decimals is what MET Norway accepts at most, and a fixed precision
/// lets equal places share one cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Degrees(i32);

impl Degrees {
    const SCALE: f64 = 10_000.0;

    fn from_f64(value: f64) -> Self {
        Self((value * Self::SCALE).round() as i32)
    }

    /// The value in degrees.
    pub fn get(self) -> f64 {
        f64::from(self.0) / Self::SCALE
    }

    /// Formats with at most 4 decimals and no trailing zeros (`52.52`).
    /// Integer digits written by hand: exact, and far cheaper than float
    /// (or even `format!`) formatting on a path taken by every call.
    pub fn to_param(self) -> String {
        // At most "-180.0000", written right to left.
        let mut buf = [0u8; 12];
        let mut at = buf.len();
        let abs = self.0.unsigned_abs();
        let (mut whole, mut frac, mut digits) = (abs / 10_000, abs % 10_000, 4);
        if frac == 0 {
            digits = 0;
        }
        while digits > 0 && frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        for _ in 0..digits {
            at -= 1;
            buf[at] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        if digits > 0 {
            at -= 1;
            buf[at] = b'.';
        }
        loop {
            at -= 1;
            buf[at] = b'0' + (whole % 10) as u8;
            whole /= 10;
            if whole == 0 {
                break;
            }
        }
        if self.0 < 0 {
            at -= 1;
            buf[at] = b'-';
        }
        String::from_utf8(buf[at..].to_vec()).unwrap_or_default()
    }
}

impl Serialize for Degrees {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_f64(self.get())
    }
}

impl<'de> Deserialize<'de> for Degrees {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        f64::deserialize(d).map(Self::from_f64)
    }
}

/// A point on Earth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Coordinates {
    /// Latitude, −90 to 90.
    pub lat: Degrees,
    /// Longitude, −180 to 180.
    pub lon: Degrees,
}

impl Coordinates {
    /// Validated coordinates.
    pub fn new(lat: f64, lon: f64) -> Result<Self> {
        if !(-90.0..=90.0).contains(&lat) {
            return Err(Error::invalid(
                "lat",
                format!("must be between -90 and 90, got {}", echo_number(lat)),
            ));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(Error::invalid(
                "lon",
                format!("must be between -180 and 180, got {}", echo_number(lon)),
            ));
        }
        Ok(Self {
            lat: Degrees::from_f64(lat),
            lon: Degrees::from_f64(lon),
        })
    }
}

/// Where to ask about: coordinates, or a place name for providers that can
/// resolve one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Location {
    /// A point.
    Coordinates(Coordinates),
    /// A place name such as `"Berlin"` or `"Paris, FR"`.
    Place {
        /// The place name.
        city: String,
    },
}

impl Location {
    /// Reads `lat` + `lon`, or `city`, from parameters.
    pub(crate) fn from_params(params: &mut Params) -> Result<Self> {
        let lat = params.opt_f64("lat")?;
        let lon = params.opt_f64("lon")?;
        let city = params.opt_str("city")?;
        match (lat, lon, city) {
            (Some(lat), Some(lon), None) => Ok(Self::Coordinates(Coordinates::new(lat, lon)?)),
            (None, None, Some(city)) => Ok(Self::Place { city }),
            (Some(_), None, _) => Err(Error::invalid("lon", "is required when lat is given")),
            (None, Some(_), _) => Err(Error::invalid("lat", "is required when lon is given")),
            (Some(_), Some(_), Some(_)) => Err(Error::invalid(
                "city",
                "cannot be combined with lat/lon; give one or the other",
            )),
            (None, None, None) => Err(Error::invalid(
                "lat",
                "is required: give lat and lon, or city",
            )),
        }
    }

    /// The coordinates, or an `Unsupported` failure for providers that need them.
    pub fn coordinates(&self) -> std::result::Result<Coordinates, crate::error::ProviderFailure> {
        match self {
            Self::Coordinates(c) => Ok(*c),
            Self::Place { .. } => Err(crate::error::ProviderFailure::unsupported(
                "needs lat/lon, not a place name",
            )),
        }
    }
}

/// `lat`, `lon`, `city`: the parameters of a [`Location`].
const LOCATION: [Param; 3] = [
    Param::new(
        "lat",
        ParamKind::Number {
            min: -90.0,
            max: 90.0,
        },
        "Latitude in degrees, with lon; or give city instead.",
        "52.52",
    ),
    Param::new(
        "lon",
        ParamKind::Number {
            min: -180.0,
            max: 180.0,
        },
        "Longitude in degrees, with lat.",
        "13.41",
    ),
    Param::new(
        "city",
        ParamKind::String {
            max_chars: Some(200),
        },
        "A place name (\"Berlin\", \"Paris, FR\") instead of lat/lon, for providers that resolve names.",
        r#""Berlin""#,
    ),
];

/// A place is given as `lat` and `lon`, or as `city`.
const ONE_PLACE: Alternatives = Alternatives::ExactlyOne(&[&["lat", "lon"], &["city"]]);

/// Request of `weather.current`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CurrentQuery {
    /// Where.
    pub location: Location,
}

impl CurrentQuery {
    /// The parameters: `lat` + `lon`, or `city`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &LOCATION,
        alternatives: ONE_PLACE,
    };

    /// Validates parameters: `lat` + `lon`, or `city`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let location = Location::from_params(&mut params)?;
        params.finish()?;
        Ok(Self { location })
    }
}

/// Request of `weather.forecast`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ForecastQuery {
    /// Where.
    pub location: Location,
    /// Number of days, today included (1 to 16; default 3).
    pub days: u8,
}

impl ForecastQuery {
    /// The parameters: `lat` + `lon` or `city`, and optional `days`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            LOCATION[0],
            LOCATION[1],
            LOCATION[2],
            Param::new(
                "days",
                ParamKind::Integer { min: 1, max: 16 },
                "Number of days, today included.",
                "7",
            )
            .or(ParamDefault::Integer(3)),
        ],
        alternatives: ONE_PLACE,
    };

    /// Validates parameters: `lat` + `lon` or `city`, and optional `days`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let location = Location::from_params(&mut params)?;
        let days = params.u8("days")?;
        params.finish()?;
        Ok(Self { location, days })
    }
}

/// A resolved place, as reported by the provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Place name, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// ISO 3166-1 alpha-2 country code, upper case, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub country_code: Option<String>,
    /// IANA time zone, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timezone: Option<String>,
}

/// A weather condition as a WMO 4677 code and its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// WMO weather interpretation code (0 clear sky … 99 thunderstorm with hail).
    pub code: u8,
    /// English text for the code (a static string: no allocation per answer).
    pub text: std::borrow::Cow<'static, str>,
}

impl Condition {
    /// The condition for a WMO code, with the standard text.
    pub fn from_wmo(code: u8) -> Self {
        Self {
            code,
            text: std::borrow::Cow::Borrowed(wmo_text(code)),
        }
    }
}

/// English text of a WMO weather interpretation code (as used by Open-Meteo).
pub fn wmo_text(code: u8) -> &'static str {
    match code {
        0 => "Clear sky",
        1 => "Mainly clear",
        2 => "Partly cloudy",
        3 => "Overcast",
        45 => "Fog",
        48 => "Depositing rime fog",
        51 => "Light drizzle",
        53 => "Moderate drizzle",
        55 => "Dense drizzle",
        56 => "Light freezing drizzle",
        57 => "Dense freezing drizzle",
        61 => "Slight rain",
        63 => "Moderate rain",
        65 => "Heavy rain",
        66 => "Light freezing rain",
        67 => "Heavy freezing rain",
        71 => "Slight snow fall",
        73 => "Moderate snow fall",
        75 => "Heavy snow fall",
        77 => "Snow grains",
        80 => "Slight rain showers",
        81 => "Moderate rain showers",
        82 => "Violent rain showers",
        85 => "Slight snow showers",
        86 => "Heavy snow showers",
        95 => "Thunderstorm",
        96 => "Thunderstorm with slight hail",
        99 => "Thunderstorm with heavy hail",
        _ => "Unknown",
    }
}

/// Answer of `weather.current`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentWeather {
    /// Where the observation applies.
    pub location: GeoPoint,
    /// Observation time, ISO-8601.
    pub observed_at: String,
    /// Air temperature, °C.
    pub temperature_c: f64,
    /// Apparent temperature, °C.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub feels_like_c: Option<f64>,
    /// Relative humidity, %.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub humidity_pct: Option<f64>,
    /// Wind speed, m/s.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub wind_speed_ms: Option<f64>,
    /// Wind direction, degrees.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub wind_dir_deg: Option<f64>,
    /// Sea-level pressure, hPa.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pressure_hpa: Option<f64>,
    /// Precipitation, mm.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub precipitation_mm: Option<f64>,
    /// Cloud cover, %.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cloud_cover_pct: Option<f64>,
    /// The condition.
    pub condition: Condition,
}

/// One day of a forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastDay {
    /// Local date, `YYYY-MM-DD`.
    pub date: String,
    /// Minimum temperature, °C.
    pub temp_min_c: f64,
    /// Maximum temperature, °C.
    pub temp_max_c: f64,
    /// Total precipitation, mm.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub precipitation_mm: Option<f64>,
    /// Maximum wind speed, m/s.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub wind_max_ms: Option<f64>,
    /// The day's dominant condition.
    pub condition: Condition,
}

/// Answer of `weather.forecast`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Where the forecast applies.
    pub location: GeoPoint,
    /// When the provider produced it, ISO-8601, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub generated_at: Option<String>,
    /// One entry per day, today first.
    pub daily: Vec<ForecastDay>,
}

/// km/h → m/s, rounded to 2 decimals.
pub fn kmh_to_ms(kmh: f64) -> f64 {
    (kmh / 3.6 * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degrees_format_without_trailing_zeros() {
        let p = |v: f64| Degrees::from_f64(v).to_param();
        assert_eq!(p(52.52), "52.52");
        assert_eq!(p(13.0), "13");
        assert_eq!(p(-0.05), "-0.05");
        assert_eq!(p(-122.41942), "-122.4194");
        assert_eq!(p(0.00005), "0.0001");
        assert_eq!(p(0.0), "0");
        assert_eq!(p(-180.0), "-180");
        assert_eq!(p(100.0001), "100.0001");
        assert_eq!(p(-0.0001), "-0.0001");
    }

    #[test]
    fn degrees_format_like_the_standard_formatter_over_the_whole_range() {
        for raw in (-1_800_000i32..=1_800_000)
            .step_by(7)
            .chain([-1, 1, 10, 100, 1000])
        {
            let (abs, sign) = (raw.unsigned_abs(), if raw < 0 { "-" } else { "" });
            let fractional = format!("{:04}", abs % 10_000);
            let fractional = fractional.trim_end_matches('0');
            let expected = if fractional.is_empty() {
                format!("{sign}{}", abs / 10_000)
            } else {
                format!("{sign}{}.{fractional}", abs / 10_000)
            };
            assert_eq!(Degrees(raw).to_param(), expected, "{raw}");
        }
    }
}
