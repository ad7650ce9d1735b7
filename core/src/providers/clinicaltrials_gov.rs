//! ClinicalTrials.gov API v2: `medical.clinical_trials`.
//!
//! Keyless, about 50 requests a minute per IP. `/api/v2/studies` searches
//! by free text (`query.term`) and condition (`query.cond`), filters by
//! overall status, and with `fields=` returns only the pieces normalised
//! here. Error bodies are `text/plain` (400 "Parameter … has incorrect
//! format", 404 "NCT number … not found").

use serde::Deserialize;

use super::clip;
use crate::capability::medical::{Trial, TrialSearch};
use crate::capability::normalize::iso_date;
use crate::capability::{marker, medical};
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// ClinicalTrials.gov (<https://clinicaltrials.gov/data-api/api>): the US
/// registry of more than 500,000 clinical studies worldwide.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClinicalTrialsGov;

static INFO: ProviderInfo = ProviderInfo {
    id: "clinicaltrials-gov",
    name: "ClinicalTrials.gov",
    auth: Auth::Keyless,
    base_url: "https://clinicaltrials.gov",
    docs_url: "https://clinicaltrials.gov/data-api/api",
    terms: "Keyless public registry of the US National Library of Medicine; about 50 \
            requests/min per IP.",
    commercial_use: true,
    default_rate_limit: Some("50/min"),
    default_quota: None,
};

const FIELDS: &str =
    "NCTId,BriefTitle,OverallStatus,Phase,Condition,InterventionName,LeadSponsorName,StartDate";

impl Provider for ClinicalTrialsGov {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(ClinicalTrialsGov: ClinicalTrials);

impl Serves<marker::ClinicalTrials> for ClinicalTrialsGov {
    fn build_request(
        &self,
        q: &medical::TrialQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let mut req = HttpRequest::get(ctx.base_url, "/api/v2/studies");
        if let Some(text) = &q.query {
            req = req.query("query.term", text.as_str());
        }
        if let Some(condition) = &q.condition {
            req = req.query("query.cond", condition.as_str());
        }
        if let Some(status) = &q.status {
            req = req.query("filter.overallStatus", status.as_str());
        }
        Ok(req
            .query("pageSize", q.limit.to_string())
            .query("countTotal", "true")
            .query("fields", FIELDS)
            .query("format", "json"))
    }

    fn read_response(
        &self,
        q: &medical::TrialQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<medical::TrialSearch>, ProviderFailure> {
        response.check_status().map_err(|mut failure| {
            let text = String::from_utf8_lossy(&response.body);
            if !text.trim().is_empty() && !text.trim_start().starts_with('<') {
                failure.message = format!("ClinicalTrials.gov: {}", clip(&text));
            }
            failure
        })?;
        let reply: Reply = response.json()?;
        let studies = reply.studies.ok_or_else(|| {
            ProviderFailure::malformed("ClinicalTrials.gov reply lacks `studies`")
                .status(response.status)
        })?;
        // A study without its status is left out, not given a made-up one.
        let results = studies
            .into_iter()
            .filter_map(|s| s.protocol_section.into_trial())
            .take(usize::from(q.limit))
            .collect();
        Ok(Step::Done(TrialSearch {
            query: q.query.clone(),
            condition: q.condition.clone(),
            total: reply.total_count,
            results,
        }))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    total_count: Option<u64>,
    studies: Option<Vec<Study>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Study {
    protocol_section: Protocol,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Protocol {
    identification_module: Identification,
    status_module: Option<Status>,
    conditions_module: Option<Conditions>,
    design_module: Option<Design>,
    arms_interventions_module: Option<Arms>,
    sponsor_collaborators_module: Option<Sponsors>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identification {
    nct_id: String,
    brief_title: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    overall_status: Option<String>,
    start_date_struct: Option<DateStruct>,
}

#[derive(Deserialize)]
struct DateStruct {
    date: String,
}

#[derive(Deserialize)]
struct Conditions {
    #[serde(default)]
    conditions: Vec<String>,
}

#[derive(Deserialize)]
struct Design {
    #[serde(default)]
    phases: Vec<String>,
}

#[derive(Deserialize)]
struct Arms {
    #[serde(default)]
    interventions: Vec<Named>,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sponsors {
    lead_sponsor: Option<Named>,
}

impl Protocol {
    fn into_trial(self) -> Option<Trial> {
        let id = self.identification_module;
        let status = self.status_module;
        let overall_status = status.as_ref().and_then(|s| s.overall_status.clone())?;
        Some(Trial {
            url: Trial::registry_url(&id.nct_id),
            nct_id: id.nct_id,
            title: id.brief_title,
            status: overall_status,
            phases: self.design_module.map(|d| d.phases).unwrap_or_default(),
            conditions: self
                .conditions_module
                .map(|c| c.conditions)
                .unwrap_or_default(),
            interventions: self
                .arms_interventions_module
                .map(|a| a.interventions.into_iter().map(|i| i.name).collect())
                .unwrap_or_default(),
            sponsor: self
                .sponsor_collaborators_module
                .and_then(|s| s.lead_sponsor)
                .map(|s| s.name),
            start_date: status
                .and_then(|s| s.start_date_struct)
                .and_then(|d| iso_date(&d.date)),
        })
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /api/v2/studies?query.cond=malaria&pageSize=2&countTotal=true&fields=…&format=json`.
    Fixture {
        method: "GET",
        path: "/api/v2/studies",
        status: 200,
        body: include_str!("fixtures/clinicaltrials-gov/studies.json"),
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
            "medical.clinical_trials",
            json!({"query": "R21", "condition": "malaria", "status": "recruiting", "limit": 2}),
        );
        let req = ClinicalTrialsGov
            .request(&r, &ctx(&ClinicalTrialsGov))
            .unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://clinicaltrials.gov/api/v2/studies");
        assert_eq!(
            query(&req),
            [
                ("query.term", "R21"),
                ("query.cond", "malaria"),
                ("filter.overallStatus", "RECRUITING"),
                ("pageSize", "2"),
                ("countTotal", "true"),
                ("fields", FIELDS),
                ("format", "json"),
            ]
        );
        assert!(req.headers.is_empty());
        let r = request("medical.clinical_trials", json!({"condition": "malaria"}));
        let req = ClinicalTrialsGov
            .request(&r, &ctx(&ClinicalTrialsGov))
            .unwrap();
        assert_eq!(
            query(&req)[..2],
            [("query.cond", "malaria"), ("pageSize", "10")]
        );
    }

    #[test]
    fn fixture_normalises() {
        let r = request("medical.clinical_trials", json!({"condition": "malaria"}));
        let body = fixture(&ClinicalTrialsGov, "/api/v2/studies");
        let Data::ClinicalTrials(s) = answer(&ClinicalTrialsGov, &r, test_response(200, &[], body))
        else {
            panic!()
        };
        assert_eq!(
            (s.condition.as_deref(), s.total, s.results.len()),
            (Some("malaria"), Some(3051), 2)
        );
        let r21 = &s.results[0];
        assert_eq!(r21.nct_id, "NCT04704830");
        assert!(r21.title.starts_with("Efficacy and Safety of R21/Matrix-M"));
        assert_eq!(r21.status, "ACTIVE_NOT_RECRUITING");
        assert_eq!(r21.phases, ["PHASE3"]);
        assert_eq!(r21.conditions, ["Malaria", "Malaria,Falciparum"]);
        assert_eq!(r21.interventions, ["R21/Matrix-M", "Rabies vaccine"]);
        assert_eq!(r21.sponsor.as_deref(), Some("University of Oxford"));
        assert_eq!(r21.start_date.as_deref(), Some("2021-04-30"));
        assert_eq!(r21.url, "https://clinicaltrials.gov/study/NCT04704830");
        let smc = &s.results[1];
        assert_eq!(
            (smc.start_date.as_deref(), smc.phases.len()),
            (Some("2024-06"), 2)
        );
        assert!(smc.interventions.is_empty());
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request("medical.clinical_trials", json!({"query": "x"}));
        let f = failure(
            &ClinicalTrialsGov,
            &r,
            test_response(
                400,
                &[("content-type", "text/plain")],
                "Parameter `filter.overallStatus` has incorrect format",
            ),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(
            f.message,
            "ClinicalTrials.gov: Parameter `filter.overallStatus` has incorrect format"
        );
        let f = failure(
            &ClinicalTrialsGov,
            &r,
            test_response(429, &[("retry-after", "60")], "Too Many Requests"),
        );
        assert_eq!(
            (f.class, f.retry_after),
            (
                FailureClass::RateLimited,
                Some(std::time::Duration::from_secs(60))
            )
        );
        let f = failure(
            &ClinicalTrialsGov,
            &r,
            test_response(503, &[], "<html>maintenance</html>"),
        );
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(
            &ClinicalTrialsGov,
            &r,
            test_response(404, &[], "NCT number NCT99999999 not found"),
        );
        assert_eq!(f.class, FailureClass::NotFound);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let r = request("medical.clinical_trials", json!({"query": "x"}));
        assert_truncations_are_malformed(
            &ClinicalTrialsGov,
            &r,
            fixture(&ClinicalTrialsGov, "/api/v2/studies"),
        );
    }
}
