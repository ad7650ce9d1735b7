//! DailyMed (NLM): `medical.drug_label` from the label index.
//!
//! Keyless, no published limit. `/services/v2/spls.json?drug_name=` lists
//! labels (set id, title, version, publication date) without their
//! sections, so sections are left empty; the labeler comes from the
//! bracketed end of the title (`… [Merck Sharp & Dohme LLC]`). Numbers in
//! `metadata` come as numbers or strings depending on the field.

use chrono::NaiveDate;
use serde::Deserialize;

use crate::capability::medical::{DrugLabel, DrugLabels};
use crate::capability::normalize::lenient_u64;
use crate::capability::{marker, medical};
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// DailyMed (<https://dailymed.nlm.nih.gov>): the National Library of
/// Medicine's index of current drug labels.
#[derive(Debug, Clone, Copy, Default)]
pub struct DailyMed;

static INFO: ProviderInfo = ProviderInfo {
    id: "dailymed",
    name: "DailyMed",
    auth: Auth::Keyless,
    base_url: "https://dailymed.nlm.nih.gov",
    docs_url: "https://dailymed.nlm.nih.gov/dailymed/app-support-web-services.cfm",
    terms: "Keyless public service of the US National Library of Medicine; no published \
            limit. Search returns label metadata only (no sections).",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

impl Provider for DailyMed {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(DailyMed: DrugLabel);

impl Serves<marker::DrugLabel> for DailyMed {
    fn build_request(
        &self,
        q: &medical::DrugLabelQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(
            HttpRequest::get(ctx.base_url, "/dailymed/services/v2/spls.json")
                .query("drug_name", q.name.as_str())
                .query("pagesize", q.limit.to_string())
                .query("page", "1"),
        )
    }

    fn read_response(
        &self,
        q: &medical::DrugLabelQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<medical::DrugLabels>, ProviderFailure> {
        response.check_status()?;
        let reply: Reply = response.json()?;
        let labels = reply.data.into_iter().map(Spl::into_label).collect();
        let total = reply.metadata.and_then(|m| m.total_elements);
        DrugLabels::new(q, total, labels, "DailyMed")
            .map(Step::Done)
            .map_err(|f| f.status(response.status))
    }
}

#[derive(Deserialize)]
struct Reply {
    data: Vec<Spl>,
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default, deserialize_with = "lenient_u64")]
    total_elements: Option<u64>,
}

#[derive(Deserialize)]
struct Spl {
    setid: String,
    title: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    spl_version: Option<u64>,
    published_date: Option<String>,
}

impl Spl {
    fn into_label(self) -> DrugLabel {
        let manufacturer = self.title.as_deref().and_then(|t| {
            let inner = t.trim().strip_suffix(']')?;
            let start = inner.rfind('[')?;
            Some(inner[start + 1..].trim().to_string()).filter(|m| !m.is_empty())
        });
        let mut label = DrugLabel::with_set_id(self.setid);
        label.title = self.title;
        label.version = self.spl_version.and_then(|v| u32::try_from(v).ok());
        // `Jan 10, 2025` → `2025-01-10`.
        label.effective_date = self
            .published_date
            .as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d.trim(), "%b %d, %Y").ok())
            .map(|d| d.format("%Y-%m-%d").to_string());
        label.manufacturer = manufacturer;
        label
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /dailymed/services/v2/spls.json?drug_name=simvastatin&pagesize=2&page=1`.
    Fixture {
        method: "GET",
        path: "/dailymed/services/v2/spls.json",
        status: 200,
        body: include_str!("fixtures/dailymed/spls.json"),
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
            "medical.drug_label",
            json!({"name": "simvastatin", "limit": 2}),
        );
        let req = DailyMed.request(&r, &ctx(&DailyMed)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(
            req.url,
            "https://dailymed.nlm.nih.gov/dailymed/services/v2/spls.json"
        );
        assert_eq!(
            query(&req),
            [
                ("drug_name", "simvastatin"),
                ("pagesize", "2"),
                ("page", "1")
            ]
        );
        assert!(req.headers.is_empty());
    }

    #[test]
    fn fixture_normalises() {
        let r = request("medical.drug_label", json!({"name": "simvastatin"}));
        let body = fixture(&DailyMed, "/dailymed/services/v2/spls.json");
        let Data::DrugLabel(d) = answer(&DailyMed, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!((d.total, d.labels.len()), (Some(171), 2));
        let first = &d.labels[0];
        assert_eq!(
            first.set_id.as_deref(),
            Some("0be2e371-1f05-48d7-8f2e-f2024f3305f3")
        );
        assert_eq!(
            (first.version, first.effective_date.as_deref()),
            (Some(3), Some("2025-01-10"))
        );
        assert_eq!(
            first.manufacturer.as_deref(),
            Some("Aphena Pharma Solutions - Tennessee, LLC")
        );
        assert!(first
            .title
            .as_deref()
            .unwrap()
            .starts_with("SIMVASTATIN tablet"));
        assert!(first
            .source_url
            .ends_with("setid=0be2e371-1f05-48d7-8f2e-f2024f3305f3"));
        assert_eq!(first.sections, Default::default());
        assert_eq!(d.labels[1].manufacturer.as_deref(), Some("Organon LLC"));
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request("medical.drug_label", json!({"name": "nothingazol"}));
        let empty = r#"{"data":[],"metadata":{"total_elements":0,"current_page":1}}"#;
        let f = failure(&DailyMed, &r, test_response(200, &[], empty));
        assert_eq!((f.class, f.status), (FailureClass::NotFound, Some(200)));
        let f = failure(&DailyMed, &r, test_response(500, &[], "<html>error</html>"));
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(&DailyMed, &r, test_response(415, &[], ""));
        assert_eq!(f.class, FailureClass::InvalidRequest);
        let f = failure(
            &DailyMed,
            &r,
            test_response(429, &[("retry-after", "1")], ""),
        );
        assert_eq!(f.class, FailureClass::RateLimited);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let r = request("medical.drug_label", json!({"name": "simvastatin"}));
        assert_truncations_are_malformed(
            &DailyMed,
            &r,
            fixture(&DailyMed, "/dailymed/services/v2/spls.json"),
        );
    }
}
