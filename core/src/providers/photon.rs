//! Photon (komoot's public demo server): `geo.geocode` over OpenStreetMap
//! data, search-as-you-type style.
//!
//! Keyless, for reasonable use only (extensive use is throttled or banned,
//! with no availability guarantee). Replies are GeoJSON: coordinates are
//! `[lon, lat]` and `extent` is `[min_lon, max_lat, max_lon, min_lat]`.
//! Photon speaks only a few languages (`de`, `en`, `fr`, `it`); for others
//! names come in the local language. It has no country filter, so with
//! `country_code` it is asked for more results, which are filtered here.
//! Errors are `{"message":"…"}` with HTTP 400.

use serde::Deserialize;

use super::wire::non_empty;
use super::{clip, readable_items};
use crate::capability::geo::{bbox, country_code, GeocodeQuery, Place, Places};
use crate::capability::marker;
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Photon (<https://photon.komoot.io>): keyless OpenStreetMap geocoding
/// for fair use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Photon;

static INFO: ProviderInfo = ProviderInfo {
    id: "photon",
    name: "Photon (komoot)",
    auth: Auth::Keyless,
    base_url: "https://photon.komoot.io",
    docs_url: "https://photon.komoot.io",
    terms: "Free public demo server for reasonable use; extensive use is throttled or \
            banned and there is no availability guarantee. Data © OpenStreetMap \
            contributors (ODbL, attribution required).",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

/// Languages Photon can answer in.
const LANGUAGES: &[&str] = &["de", "en", "fr", "it"];
/// Results asked for when filtering by country here.
const FILTER_POOL: u8 = 50;

impl Provider for Photon {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Photon: Geocode);

impl Serves<marker::Geocode> for Photon {
    fn build_request(
        &self,
        q: &GeocodeQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let limit = if q.country_code.is_some() {
            FILTER_POOL
        } else {
            q.limit
        };
        let req = HttpRequest::get(ctx.base_url, "/api")
            .query("q", q.query.as_str())
            .query("limit", limit.to_string());
        Ok(
            match q
                .language
                .as_ref()
                .filter(|l| LANGUAGES.contains(&l.code()))
            {
                Some(language) => req.query("lang", language.code()),
                None => req,
            },
        )
    }

    fn read_response(
        &self,
        q: &GeocodeQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Places>, ProviderFailure> {
        response.check_status().map_err(|mut failure| {
            #[derive(Deserialize)]
            struct ErrorReply {
                message: String,
            }
            if let Ok(reply) = serde_json::from_slice::<ErrorReply>(&response.body) {
                failure.message = format!("Photon: {}", clip(&reply.message));
            }
            failure
        })?;
        let reply: Reply = response.json()?;
        let places = readable_items(
            "Photon",
            reply.features.into_iter().map(Feature::into_place),
        )
        .map_err(|f| f.status(response.status))?;
        let places = places
            .into_iter()
            .filter(|p| {
                q.country_code
                    .as_ref()
                    .is_none_or(|c| p.country_code.as_deref() == Some(c.as_str()))
            })
            .collect();
        let places = Places::found(q, places).map_err(|f| f.status(response.status))?;
        Ok(Step::Done(places))
    }
}

#[derive(Deserialize)]
struct Reply {
    features: Vec<Feature>,
}

#[derive(Deserialize)]
struct Feature {
    geometry: Geometry,
    properties: Properties,
}

#[derive(Deserialize)]
struct Geometry {
    coordinates: Vec<f64>,
}

#[derive(Deserialize)]
struct Properties {
    osm_type: Option<String>,
    osm_id: Option<u64>,
    osm_value: Option<String>,
    name: Option<String>,
    housenumber: Option<String>,
    street: Option<String>,
    postcode: Option<String>,
    city: Option<String>,
    state: Option<String>,
    country: Option<String>,
    countrycode: Option<String>,
    #[serde(default)]
    extent: Vec<f64>,
}

impl Feature {
    /// The place, or why the feature is not one (no point, no name, no
    /// OSM id).
    fn into_place(self) -> Result<Place, String> {
        let [lon, lat, ..] = self.geometry.coordinates[..] else {
            return Err("a feature without `geometry.coordinates`".into());
        };
        let p = self.properties;
        // The OSM id is the place's id: a feature without one is no place.
        let (Some(kind), Some(id)) = (p.osm_type.as_deref(), p.osm_id) else {
            return Err("a feature without `osm_type` and `osm_id`".into());
        };
        let source_id = format!("osm:{}{id}", kind.to_ascii_uppercase());
        let street_line = match (&p.street, &p.housenumber) {
            (Some(street), Some(number)) => Some(format!("{street} {number}")),
            (Some(street), None) => Some(street.clone()),
            _ => None,
        };
        let name = non_empty(p.name.clone())
            .or_else(|| street_line.clone())
            .or_else(|| p.city.clone())
            .ok_or("a feature without `name`, `street` or `city`")?;
        let mut parts: Vec<String> = Vec::new();
        for part in [
            Some(name.clone()),
            street_line,
            p.city.clone(),
            p.state.clone(),
            p.country.clone(),
        ]
        .into_iter()
        .flatten()
        {
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
        let mut place = Place::new(name, parts.join(", "), lat, lon, source_id);
        place.country_code = country_code(p.countrycode.as_deref());
        place.country = p.country;
        place.admin1 = p.state;
        place.locality = p.city;
        place.postcode = p.postcode;
        place.street = p.street;
        place.housenumber = p.housenumber;
        if let [west, north, east, south] = p.extent[..] {
            place.bbox = Some(bbox(west, south, east, north));
        }
        place.kind = p.osm_value;
        Ok(place)
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /api?q=berlin`.
    Fixture {
        method: "GET",
        path: "/api",
        status: 200,
        body: include_str!("fixtures/photon/berlin.json"),
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
        let r = request("geo.geocode", json!({"query": "Berlin", "language": "fr"}));
        let req = Photon.request(&r, &ctx(&Photon)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://photon.komoot.io/api");
        assert_eq!(
            query(&req),
            [("q", "Berlin"), ("limit", "5"), ("lang", "fr")]
        );
        assert!(req.headers.is_empty());

        // Unsupported language: omitted; a country filter widens the pool.
        let r = request(
            "geo.geocode",
            json!({"query": "Berlin", "language": "ja", "country_code": "us"}),
        );
        let req = Photon.request(&r, &ctx(&Photon)).unwrap();
        assert_eq!(query(&req), [("q", "Berlin"), ("limit", "50")]);
    }

    #[test]
    fn fixture_normalises_geojson() {
        let r = request("geo.geocode", json!({"query": "Berlin"}));
        let body = fixture(&Photon, "/api");
        let Data::Geocode(places) = answer(&Photon, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(places.results.len(), 2);
        let berlin = &places.results[0];
        assert_eq!((berlin.lat, berlin.lon), (52.5170365, 13.3888599));
        assert_eq!(berlin.display_name, "Berlin, Germany");
        assert_eq!(berlin.bbox, None);
        assert_eq!(berlin.kind.as_deref(), Some("city"));
        assert_eq!(berlin.source_id, "osm:N240109189");
        let stadium = &places.results[1];
        assert_eq!(
            stadium.display_name,
            "Berlin Olympic Stadium, Olympischer Platz 3, Berlin, Germany"
        );
        assert_eq!(
            stadium.bbox,
            Some([13.23727, 52.5135972, 13.241757, 52.5157151])
        );
        assert_eq!(stadium.street.as_deref(), Some("Olympischer Platz"));
        assert_eq!(stadium.housenumber.as_deref(), Some("3"));
        assert_eq!(stadium.admin1.as_deref(), Some("Berlin"));
        assert_eq!(stadium.kind.as_deref(), Some("stadium"));
        assert_eq!(stadium.confidence, None);
    }

    #[test]
    fn the_country_filter_applies_here() {
        let r = request(
            "geo.geocode",
            json!({"query": "Berlin", "country_code": "DE"}),
        );
        let body = fixture(&Photon, "/api");
        let Data::Geocode(places) = answer(&Photon, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        assert_eq!(places.results.len(), 2);
        assert!(places
            .results
            .iter()
            .all(|p| p.country_code.as_deref() == Some("DE")));
        let r = request(
            "geo.geocode",
            json!({"query": "Berlin", "country_code": "US"}),
        );
        let f = failure(&Photon, &r, test_response(200, &[], body));
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request("geo.geocode", json!({"query": "Berlin"}));
        let f = failure(
            &Photon,
            &r,
            test_response(
                400,
                &[],
                r#"{"message":"missing search term 'q': /?q=berlin"}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert!(f.message.starts_with("Photon: missing"), "{}", f.message);
        let f = failure(&Photon, &r, test_response(429, &[], "Too Many Requests"));
        assert_eq!(f.class, FailureClass::RateLimited);
        let f = failure(&Photon, &r, test_response(502, &[], "<html>502</html>"));
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(
            &Photon,
            &r,
            test_response(200, &[], r#"{"features":[],"type":"FeatureCollection"}"#),
        );
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let r = request("geo.geocode", json!({"query": "Berlin"}));
        let body = fixture(&Photon, "/api");
        assert_truncations_are_malformed(&Photon, &r, body);
    }
}
