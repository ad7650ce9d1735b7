//! Nominatim (the OpenStreetMap Foundation's public instance): `geo.geocode`
//! for addresses and places worldwide.
//!
//! Keyless, under a strict usage policy: at most 1 request per second for
//! the whole application (the default rate limit), an identifying
//! User-Agent (the pipeline sends the client-wide one with its contact), no
//! bulk geocoding, and visible attribution. A refused User-Agent is 403,
//! classified as [`FailureClass::Auth`] for the same reason as at MET
//! Norway: it does not fix itself until the configuration changes.
//!
//! `format=jsonv2` replies with an array whose `lat`, `lon` and
//! `boundingbox` (`[min_lat, max_lat, min_lon, max_lon]`) are strings; they
//! are parsed into numbers and the box is reordered. Errors are
//! `{"error":{"code":400,"message":"…"}}`.

use serde::Deserialize;

use super::wire::{flexible_f64_opt, non_empty, number};
use super::{clip, readable_items};
use crate::capability::geo::{bbox, country_code, GeocodeQuery, Place, Places};
use crate::capability::marker;
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Nominatim (<https://nominatim.org>): keyless OpenStreetMap geocoding of
/// addresses and places, at most one request per second.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nominatim;

static INFO: ProviderInfo = ProviderInfo {
    id: "nominatim",
    name: "Nominatim (OpenStreetMap)",
    auth: Auth::Keyless,
    base_url: "https://nominatim.openstreetmap.org",
    docs_url: "https://nominatim.org/release-docs/latest/api/Search/",
    terms: "OSMF usage policy: absolute maximum 1 request/s for the whole application, an \
            identifying User-Agent, no bulk or systematic geocoding, results cached, \
            attribution \"© OpenStreetMap contributors\" (ODbL). Heavy use is banned.",
    commercial_use: false,
    default_rate_limit: Some("1/s"),
    default_quota: None,
};

impl Provider for Nominatim {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(Nominatim: Geocode);

impl Serves<marker::Geocode> for Nominatim {
    fn build_request(
        &self,
        q: &GeocodeQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let mut req = HttpRequest::get(ctx.base_url, "/search")
            .query("q", q.query.as_str())
            .query("format", "jsonv2")
            .query("addressdetails", "1")
            .query("limit", q.limit.to_string());
        if let Some(language) = &q.language {
            req = req.query("accept-language", language.code());
        }
        if let Some(country) = &q.country_code {
            req = req.query("countrycodes", country.as_str().to_ascii_lowercase());
        }
        Ok(req)
    }

    fn read_response(
        &self,
        q: &GeocodeQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<Places>, ProviderFailure> {
        if response.status == 403 {
            return Err(response.failure(
                FailureClass::Auth,
                "Nominatim refused the request (403): its policy requires an identifying \
                 User-Agent with contact details and at most 1 request/s; set the client's \
                 User-Agent and contact",
            ));
        }
        response.check_status().map_err(|mut failure| {
            if let Some(message) = error_message(&response.body) {
                failure.message = format!("Nominatim: {}", clip(&message));
            }
            failure
        })?;
        let hits: Vec<Hit> = response.json()?;
        let places = readable_items("Nominatim", hits.into_iter().map(Hit::into_place))
            .map_err(|f| f.status(response.status))?;
        let places = Places::found(q, places).map_err(|f| f.status(response.status))?;
        Ok(Step::Done(places))
    }
}

fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorReply {
        error: ErrorBody,
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        message: String,
    }
    serde_json::from_slice::<ErrorReply>(body)
        .ok()
        .map(|r| r.error.message)
}

#[derive(Deserialize)]
struct Hit {
    osm_type: Option<String>,
    osm_id: Option<u64>,
    #[serde(default, deserialize_with = "flexible_f64_opt")]
    lat: Option<f64>,
    #[serde(default, deserialize_with = "flexible_f64_opt")]
    lon: Option<f64>,
    #[serde(default)]
    name: Option<String>,
    display_name: String,
    addresstype: Option<String>,
    importance: Option<f64>,
    #[serde(default)]
    boundingbox: Vec<String>,
    #[serde(default)]
    address: Address,
}

#[derive(Deserialize, Default)]
struct Address {
    house_number: Option<String>,
    road: Option<String>,
    city: Option<String>,
    town: Option<String>,
    village: Option<String>,
    hamlet: Option<String>,
    municipality: Option<String>,
    state: Option<String>,
    postcode: Option<String>,
    country: Option<String>,
    country_code: Option<String>,
}

impl Hit {
    /// The place, or why the result is not one (no coordinates, no OSM id).
    fn into_place(self) -> Result<Place, String> {
        let (Some(lat), Some(lon)) = (self.lat, self.lon) else {
            return Err("a result without `lat` and `lon`".into());
        };
        let name = non_empty(self.name).unwrap_or_else(|| {
            self.display_name
                .split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        });
        // OSM ids: `N` node, `W` way, `R` relation.
        let initial = self.osm_type.as_deref().and_then(|t| t.chars().next());
        // The OSM id is the place's id: a result without one is no place.
        let (Some(kind), Some(id)) = (initial, self.osm_id) else {
            return Err("a result without `osm_type` and `osm_id`".into());
        };
        let source_id = format!("osm:{}{id}", kind.to_ascii_uppercase());
        let mut place = Place::new(name, self.display_name, lat, lon, source_id);
        let a = self.address;
        place.country_code = country_code(a.country_code.as_deref());
        place.country = a.country;
        place.admin1 = a.state;
        place.locality = a
            .city
            .or(a.town)
            .or(a.village)
            .or(a.hamlet)
            .or(a.municipality);
        place.postcode = a.postcode;
        place.street = a.road;
        place.housenumber = a.house_number;
        if let [min_lat, max_lat, min_lon, max_lon] = self.boundingbox.as_slice() {
            if let (Some(a), Some(b), Some(c), Some(d)) = (
                number(min_lat),
                number(max_lat),
                number(min_lon),
                number(max_lon),
            ) {
                place.bbox = Some(bbox(c, a, d, b));
            }
        }
        place.kind = self.addresstype;
        place.confidence = self.importance.map(|i| i.clamp(0.0, 1.0));
        Ok(place)
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /search?q=Pariser+Platz+1+Berlin&format=jsonv2&addressdetails=1&limit=5`.
    Fixture {
        method: "GET",
        path: "/search",
        status: 200,
        body: include_str!("fixtures/nominatim/brandenburg_gate.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    #[test]
    fn request_is_exact() {
        let r = request(
            "geo.geocode",
            json!({"query": "Pariser Platz 1, Berlin", "limit": 2, "language": "de", "country_code": "DE"}),
        );
        let req = Nominatim.request(&r, &ctx(&Nominatim)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://nominatim.openstreetmap.org/search");
        assert_eq!(
            query(&req),
            [
                ("q", "Pariser Platz 1, Berlin"),
                ("format", "jsonv2"),
                ("addressdetails", "1"),
                ("limit", "2"),
                ("accept-language", "de"),
                ("countrycodes", "de"),
            ]
        );
        // The User-Agent is added by the pipeline, never by the provider.
        assert!(req.headers.is_empty());
    }

    #[test]
    fn fixture_normalises_string_coordinates_and_the_box() {
        let r = request("geo.geocode", json!({"query": "Pariser Platz 1, Berlin"}));
        let body = fixture(&Nominatim, "/search");
        let Data::Geocode(places) = answer(&Nominatim, &r, test_response(200, &[], body)) else {
            panic!("wrong data")
        };
        let gate = &places.results[0];
        assert_eq!(gate.name, "Brandenburger Tor");
        assert_eq!((gate.lat, gate.lon), (52.5162699, 13.3777034));
        assert_eq!(gate.country_code.as_deref(), Some("DE"));
        assert_eq!(gate.country.as_deref(), Some("Deutschland"));
        assert_eq!(gate.locality.as_deref(), Some("Berlin"));
        assert_eq!(gate.street.as_deref(), Some("Pariser Platz"));
        assert_eq!(gate.housenumber.as_deref(), Some("1"));
        assert_eq!(gate.postcode.as_deref(), Some("10117"));
        assert_eq!(
            gate.bbox,
            Some([13.3775466, 52.5161167, 13.3778653, 52.5164286])
        );
        assert_eq!(gate.kind.as_deref(), Some("tourism"));
        assert_eq!(gate.confidence, Some(0.6223987432234089));
        assert_eq!(gate.source_id, "osm:W518071791");
        // An unnamed address takes its first display component as name.
        assert_eq!(places.results[1].name, "Pariser Platz 1");
        assert_eq!(places.results[1].source_id, "osm:N3856100103");
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request("geo.geocode", json!({"query": "x"}));
        let f = failure(&Nominatim, &r, test_response(200, &[], "[]"));
        assert_eq!(f.class, FailureClass::NotFound);
        let f = failure(
            &Nominatim,
            &r,
            test_response(403, &[], "<html>Access blocked</html>"),
        );
        assert_eq!(f.class, FailureClass::Auth);
        assert!(f.message.contains("User-Agent"), "{}", f.message);
        let f = failure(
            &Nominatim,
            &r,
            test_response(
                400,
                &[],
                r#"{"error":{"code":400,"message":"Parameter 'limit' must be a number."}}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(f.message, "Nominatim: Parameter 'limit' must be a number.");
        let f = failure(
            &Nominatim,
            &r,
            test_response(429, &[("retry-after", "1")], ""),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, Some(std::time::Duration::from_secs(1)));
        let f = failure(&Nominatim, &r, test_response(503, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let r = request("geo.geocode", json!({"query": "Berlin"}));
        let body = fixture(&Nominatim, "/search");
        let bad = body.replace("\"52.5162699\"", "\"north\"");
        let f = failure(&Nominatim, &r, test_response(200, &[], &bad));
        assert_eq!(f.class, FailureClass::MalformedResponse);
        assert_cuts_of_a_list_are_malformed(&Nominatim, &r, body);
    }
}
