//! Open-Meteo Geocoding: `geo.geocode` for place names from GeoNames.
//!
//! Keyless, under Open-Meteo's free non-commercial terms. It searches place
//! names only (cities, regions, landmarks), not street addresses. No match
//! is a reply without `results` (`NotFound`). Errors are Open-Meteo's
//! `{"error":true,"reason":"…"}` with HTTP 400.

use serde::Deserialize;

use super::open_meteo::check_status;
use super::wire::non_empty;
use crate::capability::geo::{country_code, GeocodeQuery, Place, Places};
use crate::capability::marker;
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Quota, Serves,
    Step,
};

/// Open-Meteo Geocoding (<https://open-meteo.com/en/docs/geocoding-api>):
/// keyless place-name search with time zones and populations.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenMeteoGeocoding;

static INFO: ProviderInfo = ProviderInfo {
    id: "open-meteo-geocoding",
    name: "Open-Meteo Geocoding",
    auth: Auth::Keyless,
    base_url: "https://geocoding-api.open-meteo.com",
    docs_url: "https://open-meteo.com/en/docs/geocoding-api",
    terms: "Free for non-commercial use only, under 600 calls/min and 10,000/day; \
            GeoNames data under CC BY 4.0 (attribution required). Place names only, \
            no street addresses.",
    commercial_use: false,
    default_rate_limit: Some("600/min"),
    default_quota: Some(Quota::per_day(10_000)),
};

impl Provider for OpenMeteoGeocoding {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(OpenMeteoGeocoding: Geocode);

impl Serves<marker::Geocode> for OpenMeteoGeocoding {
    fn build_request(
        &self,
        q: &GeocodeQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let language = q.language.as_ref().map_or("en", |l| l.code());
        let req = HttpRequest::get(ctx.base_url, "/v1/search")
            .query("name", q.query.as_str())
            .query("count", q.limit.to_string())
            .query("language", language)
            .query("format", "json");
        Ok(match &q.country_code {
            Some(country) => req.query("countryCode", country.as_str()),
            None => req,
        })
    }

    fn read_response(
        &self,
        q: &GeocodeQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Places>, ProviderFailure> {
        check_status(&response)?;
        let reply: Reply = response.json()?;
        let results = reply
            .results
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                let display_name = [
                    Some(r.name.as_str()),
                    r.admin1.as_deref(),
                    r.country.as_deref(),
                ]
                .into_iter()
                .flatten()
                .fold(Vec::<&str>::new(), |mut parts, part| {
                    if !parts.contains(&part) {
                        parts.push(part);
                    }
                    parts
                })
                .join(", ");
                let mut place = Place::new(
                    r.name.clone(),
                    display_name,
                    r.latitude,
                    r.longitude,
                    format!("geonames:{}", r.id),
                );
                place.country_code = country_code(r.country_code.as_deref());
                place.country = non_empty(r.country);
                place.admin1 = non_empty(r.admin1);
                place.postcode = r.postcodes.into_iter().next();
                place.timezone = non_empty(r.timezone);
                place.population = r.population.filter(|p| *p > 0);
                place
            })
            .collect();
        let places = Places::found(q, results).map_err(|f| f.status(response.status))?;
        Ok(Step::Done(places))
    }
}

#[derive(Deserialize)]
struct Reply {
    results: Option<Vec<Hit>>,
}

#[derive(Deserialize)]
struct Hit {
    id: u64,
    name: String,
    latitude: f64,
    longitude: f64,
    country_code: Option<String>,
    country: Option<String>,
    admin1: Option<String>,
    timezone: Option<String>,
    population: Option<u64>,
    #[serde(default)]
    postcodes: Vec<String>,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /v1/search?name=Berlin&count=5&language=en&format=json`.
    Fixture {
        method: "GET",
        path: "/v1/search",
        status: 200,
        body: include_str!("fixtures/open-meteo-geocoding/berlin.json"),
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

    #[test]
    fn request_is_exact() {
        let r = request(
            "geo.geocode",
            json!({"query": "Berlin", "limit": 3, "language": "de-DE", "country_code": "de"}),
        );
        let req = OpenMeteoGeocoding
            .request(&r, &ctx(&OpenMeteoGeocoding))
            .unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://geocoding-api.open-meteo.com/v1/search");
        assert_eq!(
            query(&req),
            [
                ("name", "Berlin"),
                ("count", "3"),
                ("language", "de"),
                ("format", "json"),
                ("countryCode", "DE"),
            ]
        );
        assert!(req.headers.is_empty());

        let r = request("geo.geocode", json!({"query": "Paris"}));
        let req = OpenMeteoGeocoding
            .request(&r, &ctx(&OpenMeteoGeocoding))
            .unwrap();
        assert_eq!(
            query(&req),
            [
                ("name", "Paris"),
                ("count", "5"),
                ("language", "en"),
                ("format", "json")
            ]
        );
    }

    #[test]
    fn fixture_normalises_places() {
        let r = request("geo.geocode", json!({"query": "Berlin", "limit": 2}));
        let body = fixture(&OpenMeteoGeocoding, "/v1/search");
        let Data::Geocode(places) = answer(&OpenMeteoGeocoding, &r, test_response(200, &[], body))
        else {
            panic!("wrong data")
        };
        assert_eq!(places.query, "Berlin");
        assert_eq!(places.results.len(), 2, "cut to the limit");
        let berlin = &places.results[0];
        assert_eq!(berlin.name, "Berlin");
        assert_eq!(berlin.display_name, "Berlin, Land Berlin, Germany");
        assert_eq!((berlin.lat, berlin.lon), (52.52437, 13.41053));
        assert_eq!(berlin.country_code.as_deref(), Some("DE"));
        assert_eq!(berlin.admin1.as_deref(), Some("Land Berlin"));
        assert_eq!(berlin.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(berlin.population, Some(3_426_354));
        assert_eq!(berlin.postcode.as_deref(), Some("10967"));
        assert_eq!(berlin.source_id, "geonames:2950159");
        assert_eq!(
            places.results[1].display_name,
            "Berlin, New Hampshire, United States"
        );
    }

    #[test]
    fn no_results_is_not_found_and_errors_are_classified() {
        let r = request("geo.geocode", json!({"query": "Xyzzyville"}));
        let f = failure(
            &OpenMeteoGeocoding,
            &r,
            test_response(200, &[], r#"{"generationtime_ms":0.4}"#),
        );
        assert_eq!(f.class, FailureClass::NotFound);

        let f = failure(
            &OpenMeteoGeocoding,
            &r,
            test_response(
                400,
                &[],
                r#"{"error":true,"reason":"Parameter count must be between 1 and 100."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(f.message, "Parameter count must be between 1 and 100.");

        let f = failure(
            &OpenMeteoGeocoding,
            &r,
            test_response(
                429,
                &[("retry-after", "60")],
                r#"{"error":true,"reason":"Minutely API request limit exceeded."}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(std::time::Duration::from_secs(60)));
        let f = failure(&OpenMeteoGeocoding, &r, test_response(503, &[], "busy"));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let r = request("geo.geocode", json!({"query": "Berlin"}));
        let body = fixture(&OpenMeteoGeocoding, "/v1/search");
        assert_truncations_are_malformed(&OpenMeteoGeocoding, &r, body);
        let bad = body.replace("52.52437", "\"north\"");
        let f = failure(&OpenMeteoGeocoding, &r, test_response(200, &[], &bad));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
