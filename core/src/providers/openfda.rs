//! openFDA drug labels: `medical.drug_label` from the FDA's Structured
//! Product Labels, with their sections.
//!
//! Keyless at 240 requests/min and 1,000/day per IP; a free key
//! (`OPENFDA_API_KEY`) raises the day to 120,000. openFDA takes the key as
//! the `api_key` query parameter or as the basic-auth user name, which would
//! need encoding, so it goes in the query. The name is matched against
//! brand and generic names (a space between terms is OR). Errors are
//! `{"error":{"code","message"}}`: 404 `NOT_FOUND` "No matches found!",
//! 429 `OVER_RATE_LIMIT`, 403 `API_KEY_INVALID`/`API_KEY_MISSING`.

use serde::Deserialize;

use super::clip;
use crate::capability::medical::{DrugLabel, DrugLabels, DrugSections};
use crate::capability::normalize::iso_date;
use crate::capability::{marker, medical};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Quota, Serves, Step,
};

/// openFDA (<https://open.fda.gov/apis/drug/label/>): FDA drug labels with
/// indications, dosage, warnings and adverse reactions.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenFda;

static INFO: ProviderInfo = ProviderInfo {
    id: "openfda",
    name: "openFDA",
    auth: Auth::Key {
        env: "OPENFDA_API_KEY",
        placement: KeyPlacement::Query { param: "api_key" },
        optional: true,
    },
    base_url: "https://api.fda.gov",
    docs_url: "https://open.fda.gov/apis/drug/label/",
    terms: "Public domain (CC0). Keyless: 240 requests/min and 1,000/day per IP; a free key \
            gives 120,000/day. Not for clinical decisions without checking the label.",
    commercial_use: true,
    default_rate_limit: Some("240/min"),
    default_quota: Some(Quota::per_day(1000)),
};

impl Provider for OpenFda {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(OpenFda: DrugLabel);

impl Serves<marker::DrugLabel> for OpenFda {
    fn build_request(
        &self,
        q: &medical::DrugLabelQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        // The name was validated: it holds no quote that could end the phrase.
        let search = format!(
            "openfda.brand_name:\"{0}\" openfda.generic_name:\"{0}\"",
            q.name
        );
        Ok(HttpRequest::get(ctx.base_url, "/drug/label.json")
            .query("search", search)
            .query("limit", q.limit.to_string()))
    }

    fn read_response(
        &self,
        q: &medical::DrugLabelQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<medical::DrugLabels>, ProviderFailure> {
        if !response.is_success() {
            let error = serde_json::from_slice::<ErrorReply>(&response.body)
                .ok()
                .map(|r| r.error);
            let class = match error.as_ref().map(|e| e.code.as_str()) {
                Some("NOT_FOUND") => FailureClass::NotFound,
                Some("OVER_RATE_LIMIT") => FailureClass::RateLimited,
                Some(code) if code.starts_with("API_KEY") => FailureClass::Auth,
                _ => response
                    .status_class()
                    .unwrap_or(FailureClass::MalformedResponse),
            };
            let message = match error {
                Some(e) => format!("openFDA {}: {}", e.code, clip(&e.message)),
                None => response.body_excerpt(),
            };
            return Err(response.failure(class, message));
        }
        let reply: Reply = response.json()?;
        let labels = reply.results.into_iter().map(Label::into_label).collect();
        let total = reply.meta.and_then(|m| m.results).map(|r| r.total);
        DrugLabels::new(q, total, labels, "openFDA")
            .map(Step::Done)
            .map_err(|f| f.status(response.status))
    }
}

#[derive(Deserialize)]
struct ErrorReply {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct Reply {
    meta: Option<Meta>,
    results: Vec<Label>,
}

#[derive(Deserialize)]
struct Meta {
    results: Option<MetaResults>,
}

#[derive(Deserialize)]
struct MetaResults {
    total: u64,
}

/// Section values are arrays of paragraphs.
type Section = Option<Vec<String>>;

#[derive(Deserialize)]
struct Label {
    set_id: String,
    version: Option<String>,
    effective_time: Option<String>,
    #[serde(default)]
    openfda: Names,
    indications_and_usage: Section,
    dosage_and_administration: Section,
    contraindications: Section,
    warnings: Section,
    warnings_and_cautions: Section,
    boxed_warning: Section,
    adverse_reactions: Section,
    drug_interactions: Section,
    pregnancy: Section,
    pregnancy_or_breast_feeding: Section,
}

#[derive(Deserialize, Default)]
struct Names {
    #[serde(default)]
    brand_name: Vec<String>,
    #[serde(default)]
    generic_name: Vec<String>,
    #[serde(default)]
    manufacturer_name: Vec<String>,
    #[serde(default)]
    route: Vec<String>,
    #[serde(default)]
    rxcui: Vec<String>,
}

/// Paragraphs joined by blank lines; `None` when there are none.
fn joined(section: Section) -> Option<String> {
    section
        .map(|paragraphs| paragraphs.join("\n\n").trim().to_string())
        .filter(|text| !text.is_empty())
}

impl Label {
    fn into_label(self) -> DrugLabel {
        let names = self.openfda;
        let title = match (names.brand_name.first(), names.generic_name.first()) {
            (Some(brand), Some(generic)) => Some(format!("{brand} ({generic})")),
            (brand, generic) => brand.or(generic).cloned(),
        };
        // `20240115` → `2024-01-15`.
        let effective_date = self.effective_time.as_deref().and_then(|t| {
            let (y, rest) = t.split_at_checked(4)?;
            let (m, d) = rest.split_at_checked(2)?;
            iso_date(&format!("{y}-{m}-{d}"))
        });
        let mut label = DrugLabel::with_set_id(self.set_id);
        label.title = title;
        label.version = self.version.and_then(|v| v.parse().ok());
        label.effective_date = effective_date;
        label.brand_names = names.brand_name;
        label.generic_names = names.generic_name;
        label.manufacturer = names.manufacturer_name.into_iter().next();
        label.routes = names.route;
        label.rxcuis = names.rxcui;
        label.sections = DrugSections {
            indications: joined(self.indications_and_usage),
            dosage: joined(self.dosage_and_administration),
            contraindications: joined(self.contraindications),
            warnings: joined(self.warnings_and_cautions).or(joined(self.warnings)),
            boxed_warning: joined(self.boxed_warning),
            adverse_reactions: joined(self.adverse_reactions),
            drug_interactions: joined(self.drug_interactions),
            pregnancy: joined(self.pregnancy).or(joined(self.pregnancy_or_breast_feeding)),
        };
        label
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /drug/label.json?search=openfda.brand_name:"ibuprofen" openfda.generic_name:"ibuprofen"&limit=2`
    // (section texts shortened).
    Fixture {
        method: "GET",
        path: "/drug/label.json",
        status: 200,
        body: include_str!("fixtures/openfda/labels.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::capability::medical::DISCLAIMER;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    #[test]
    fn request_is_exact_and_carries_no_key() {
        let r = request(
            "medical.drug_label",
            json!({"name": "ibuprofen", "limit": 2}),
        );
        let req = OpenFda.request(&r, &ctx(&OpenFda)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.fda.gov/drug/label.json");
        assert_eq!(
            query(&req),
            [
                (
                    "search",
                    r#"openfda.brand_name:"ibuprofen" openfda.generic_name:"ibuprofen""#
                ),
                ("limit", "2"),
            ]
        );
        assert!(req.headers.is_empty());
        assert_eq!(
            OpenFda.info().auth,
            Auth::Key {
                env: "OPENFDA_API_KEY",
                placement: KeyPlacement::Query { param: "api_key" },
                optional: true
            }
        );
        assert!(OpenFda.info().is_keyless());
    }

    #[test]
    fn fixture_normalises_labels_and_sections() {
        let r = request("medical.drug_label", json!({"name": "ibuprofen"}));
        let body = fixture(&OpenFda, "/drug/label.json");
        let Data::DrugLabel(d) = answer(&OpenFda, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!(
            (d.query.as_str(), d.total, d.labels.len()),
            ("ibuprofen", Some(1387), 2)
        );
        assert_eq!(d.disclaimer, DISCLAIMER);
        let advil = &d.labels[0];
        assert_eq!(
            advil.set_id.as_deref(),
            Some("e9b0f8ad-2bcc-4fa4-8d1c-1a5d5b2b4b9a")
        );
        assert_eq!(advil.title.as_deref(), Some("Advil (IBUPROFEN)"));
        assert_eq!(
            (advil.version, advil.effective_date.as_deref()),
            (Some(12), Some("2024-01-15"))
        );
        assert_eq!(
            (advil.brand_names.as_slice(), advil.generic_names.as_slice()),
            (&["Advil".to_string()][..], &["IBUPROFEN".to_string()][..])
        );
        assert_eq!(
            advil.manufacturer.as_deref(),
            Some("Haleon US Holdings LLC")
        );
        assert_eq!(
            (advil.routes.as_slice(), advil.rxcuis.len()),
            (&["ORAL".to_string()][..], 2)
        );
        let warnings = advil.sections.warnings.as_deref().unwrap();
        assert!(
            warnings.starts_with("Warnings Allergy alert")
                && warnings.contains("\n\nStomach bleeding")
        );
        assert!(advil
            .sections
            .pregnancy
            .as_deref()
            .unwrap()
            .starts_with("If pregnant"));
        assert_eq!(advil.sections.boxed_warning, None);
        assert_eq!(advil.source_url, "https://dailymed.nlm.nih.gov/dailymed/lookup.cfm?setid=e9b0f8ad-2bcc-4fa4-8d1c-1a5d5b2b4b9a");

        let generic = &d.labels[1];
        assert_eq!(generic.title.as_deref(), Some("IBUPROFEN"));
        assert!(generic.brand_names.is_empty());
        let s = &generic.sections;
        assert!(s
            .boxed_warning
            .as_deref()
            .unwrap()
            .starts_with("WARNING: RISK"));
        assert!(s
            .warnings
            .as_deref()
            .unwrap()
            .starts_with("5 WARNINGS AND PRECAUTIONS"));
        assert!(
            s.contraindications.is_some()
                && s.drug_interactions.is_some()
                && s.adverse_reactions.is_some()
        );
        assert!(s.pregnancy.as_deref().unwrap().starts_with("8.1 Pregnancy"));

        let r = request(
            "medical.drug_label",
            json!({"name": "ibuprofen", "limit": 1}),
        );
        let Data::DrugLabel(d) = answer(&OpenFda, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!(d.labels.len(), 1);
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request("medical.drug_label", json!({"name": "nothingazol"}));
        let cases = [
            (
                404,
                r#"{"error":{"code":"NOT_FOUND","message":"No matches found!"}}"#,
                FailureClass::NotFound,
            ),
            (
                429,
                r#"{"error":{"code":"OVER_RATE_LIMIT","message":"You have exceeded your rate limit. Try again later or contact us at https://api.data.gov/contact/ for assistance"}}"#,
                FailureClass::RateLimited,
            ),
            (
                403,
                r#"{"error":{"code":"API_KEY_INVALID","message":"An invalid api_key was supplied. Get one at https://api.data.gov:443"}}"#,
                FailureClass::Auth,
            ),
            (
                400,
                r#"{"error":{"code":"BAD_REQUEST","message":"Syntax error in the search parameter"}}"#,
                FailureClass::InvalidRequest,
            ),
            (
                500,
                r#"{"error":{"code":"SERVER_ERROR","message":"Check your request and try again"}}"#,
                FailureClass::Transient,
            ),
            (502, "<html>Bad Gateway</html>", FailureClass::Transient),
        ];
        for (status, body, class) in cases {
            let f = failure(
                &OpenFda,
                &r,
                test_response(status, &[("retry-after", "60")], body),
            );
            assert_eq!((f.class, f.status), (class, Some(status)), "{body}");
        }
        let f = failure(
            &OpenFda,
            &r,
            test_response(429, &[("retry-after", "60")], cases[1].1),
        );
        assert_eq!(f.retry_after, Some(std::time::Duration::from_secs(60)));
        assert!(
            f.message
                .starts_with("openFDA OVER_RATE_LIMIT: You have exceeded"),
            "{}",
            f.message
        );

        let empty = r#"{"meta":{"results":{"skip":0,"limit":5,"total":0}},"results":[]}"#;
        let f = failure(&OpenFda, &r, test_response(200, &[], empty));
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let r = request("medical.drug_label", json!({"name": "ibuprofen"}));
        let body = fixture(&OpenFda, "/drug/label.json");
        assert_truncations_are_malformed(&OpenFda, &r, body);
        let bad = body.replace("\"route\": [\"ORAL\"]", "\"route\": \"ORAL\"");
        let f = failure(&OpenFda, &r, test_response(200, &[], &bad));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
