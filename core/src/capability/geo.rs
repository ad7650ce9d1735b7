//! `geo.geocode`: place names and addresses to coordinates.
//!
//! Every provider answers with the same [`Place`] fields: coordinates are
//! always numbers (Nominatim sends strings), country codes are upper-case
//! ISO 3166-1 alpha-2 (Nominatim sends lower case), bounding boxes are
//! `[min_lon, min_lat, max_lon, max_lat]` whatever order the provider uses.
//! Fields a provider does not know are `null`, so the answer has the same
//! keys whichever provider gave it.

use serde::{Deserialize, Serialize};

use super::language::Language;
use super::params::Params;
use super::query;
use super::schema::{Alternatives, Param, ParamKind, ParamTable};
use crate::echo::echo;
use crate::error::{Error, FailureClass, ProviderFailure, Result};

/// An ISO 3166-1 alpha-2 country code, upper case (`DE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CountryCode(String);

impl CountryCode {
    /// Validates and upper-cases a two-letter code.
    pub fn parse(field: &str, code: &str) -> Result<Self> {
        let code = code.trim();
        if code.len() == 2 && code.chars().all(|c| c.is_ascii_alphabetic()) {
            Ok(Self(code.to_ascii_uppercase()))
        } else {
            Err(Error::invalid(
                field,
                format!(
                    "must be a two-letter ISO 3166-1 country code such as DE, got {}",
                    echo(code)
                ),
            ))
        }
    }

    /// The upper-case code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Upper-cases a provider's country code, dropping anything that is not two
/// letters.
pub fn country_code(code: Option<&str>) -> Option<String> {
    code.and_then(|c| CountryCode::parse("country_code", c).ok())
        .map(|c| c.0)
}

/// Request of `geo.geocode`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct GeocodeQuery {
    /// A place name or address (`"Berlin"`, `"10 Downing Street, London"`).
    pub query: String,
    /// Most results wanted (1 to 20; default 5).
    pub limit: u8,
    /// Language of the names in the answer, when the provider can choose.
    pub language: Option<Language>,
    /// Only places in this country.
    pub country_code: Option<CountryCode>,
}

impl GeocodeQuery {
    /// The parameters: `query`, `limit`, `language`, `country_code`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            query::text(300, "A place name or address.", r#""Berlin""#).required(),
            query::limit(5, 20),
            query::language_param(
                "language",
                "Language of the names in the answer, when the provider can choose.",
            ),
            Param::new(
                "country_code",
                ParamKind::String { max_chars: None },
                "Only places in this country, an ISO 3166-1 alpha-2 code.",
                r#""DE""#,
            ),
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `query`, and optional `limit`, `language`,
    /// `country_code`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let query = params.str("query")?;
        let limit = params.u8("limit")?;
        let language = query::language(&mut params, "language")?;
        let country_code = params
            .opt_str("country_code")?
            .map(|c| CountryCode::parse("country_code", &c))
            .transpose()?;
        params.finish()?;
        Ok(Self {
            query,
            limit,
            language,
            country_code,
        })
    }
}

/// One place found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// Short name (`Berlin`).
    pub name: String,
    /// Full human-readable name (`Berlin, Germany`).
    pub display_name: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// ISO 3166-1 alpha-2 country code, upper case.
    pub country_code: Option<String>,
    /// Country name, in the provider's language.
    pub country: Option<String>,
    /// First-level administrative area (state, region).
    pub admin1: Option<String>,
    /// City, town or village.
    pub locality: Option<String>,
    /// Postal code.
    pub postcode: Option<String>,
    /// Street.
    pub street: Option<String>,
    /// House number.
    pub housenumber: Option<String>,
    /// Bounding box `[min_lon, min_lat, max_lon, max_lat]`.
    pub bbox: Option<[f64; 4]>,
    /// What kind of place (`city`, `road`, `shop`, …), OSM-style.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Relevance 0 to 1, when the provider rates it.
    pub confidence: Option<f64>,
    /// IANA time zone.
    pub timezone: Option<String>,
    /// Population.
    pub population: Option<u64>,
    /// The provider's id for the place (`geonames:2950159`, `osm:N240109189`).
    pub source_id: String,
}

impl Place {
    /// A place with only its names, coordinates and id; callers fill in the rest.
    pub fn new(name: String, display_name: String, lat: f64, lon: f64, source_id: String) -> Self {
        Self {
            name,
            display_name,
            lat,
            lon,
            country_code: None,
            country: None,
            admin1: None,
            locality: None,
            postcode: None,
            street: None,
            housenumber: None,
            bbox: None,
            kind: None,
            confidence: None,
            timezone: None,
            population: None,
            source_id,
        }
    }
}

/// Builds a bounding box from two corners in any order.
pub fn bbox(lon_a: f64, lat_a: f64, lon_b: f64, lat_b: f64) -> [f64; 4] {
    [
        lon_a.min(lon_b),
        lat_a.min(lat_b),
        lon_a.max(lon_b),
        lat_a.max(lat_b),
    ]
}

/// Answer of `geo.geocode`: the best matches first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Places {
    /// The query as asked.
    pub query: String,
    /// The places, at most the requested number.
    pub results: Vec<Place>,
}

impl Places {
    /// The answer for `query`, cut to its limit; no place at all is
    /// `NotFound`, so the next provider gets a chance.
    pub fn found(
        query: &GeocodeQuery,
        mut results: Vec<Place>,
    ) -> std::result::Result<Self, ProviderFailure> {
        if results.is_empty() {
            return Err(ProviderFailure::new(
                FailureClass::NotFound,
                format!("no place matches {}", echo(&query.query)),
            ));
        }
        results.truncate(usize::from(query.limit));
        Ok(Self {
            query: query.query.clone(),
            results,
        })
    }
}
