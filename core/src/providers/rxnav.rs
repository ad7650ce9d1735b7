//! RxNav (NLM RxNorm API): a names-only `medical.drug_label` answer that
//! normalises a brand or generic name to RxNorm.
//!
//! Keyless, 20 requests/s per IP. Two requests: `/REST/rxcui.json?name=`
//! (`search=2`: exact, then normalised match) finds the concept id, then
//! `/REST/rxcui/{rxcui}/related.json?tty=IN MIN BN` its ingredients and
//! brand names. RxNav has no label text, so the answer carries names and
//! RxNorm ids only, and links to RxNav. An unknown name is an `idGroup`
//! without ids (`NotFound`).

use serde::Deserialize;

use crate::capability::medical::{DrugLabel, DrugLabels, DrugSections};
use crate::capability::{marker, medical};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// RxNav (<https://lhncbc.nlm.nih.gov/RxNav/APIs/RxNormAPIs.html>): RxNorm
/// drug names and ids, for name normalisation.
#[derive(Debug, Clone, Copy, Default)]
pub struct RxNav;

static INFO: ProviderInfo = ProviderInfo {
    id: "rxnav",
    name: "RxNav (RxNorm)",
    auth: Auth::Keyless,
    base_url: "https://rxnav.nlm.nih.gov",
    docs_url: "https://lhncbc.nlm.nih.gov/RxNav/APIs/RxNormAPIs.html",
    terms: "Keyless, 20 requests/s per IP (NLM terms). Names and RxNorm ids only, no label \
            text; cite RxNorm as the source.",
    commercial_use: true,
    default_rate_limit: Some("20/s"),
    default_quota: None,
};

impl Provider for RxNav {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(RxNav: DrugLabel);

impl Serves<marker::DrugLabel> for RxNav {
    fn build_request(
        &self,
        q: &medical::DrugLabelQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(HttpRequest::get(ctx.base_url, "/REST/rxcui.json")
            .query("name", q.name.as_str())
            .query("search", "2"))
    }

    fn read_response(
        &self,
        q: &medical::DrugLabelQuery,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<medical::DrugLabels>, ProviderFailure> {
        response.check_status()?;
        let reply: Reply = response.json()?;
        let malformed = |what: &str| {
            ProviderFailure::malformed(format!("RxNav reply: {what}")).status(response.status)
        };
        match (reply.id_group, reply.related_group) {
            // Step 1: the name's concept id; ask for its relatives.
            (Some(ids), None) => {
                let Some(rxcui) = ids.rxnorm_id.into_iter().next() else {
                    return Err(response.failure(
                        FailureClass::NotFound,
                        format!("RxNorm has no concept named {:?}", q.name),
                    ));
                };
                if rxcui.is_empty() || !rxcui.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(malformed("the RxCUI is not a number"));
                }
                Ok(Step::Next(
                    HttpRequest::get(ctx.base_url, &format!("/REST/rxcui/{rxcui}/related.json"))
                        .query("tty", "IN MIN BN"),
                ))
            }
            // Step 2: ingredients and brands of that concept.
            (None, Some(related)) => {
                let rxcui = related
                    .rxcui
                    .ok_or_else(|| malformed("no `rxcui` in `relatedGroup`"))?;
                let names = |ttys: &[&str]| -> Vec<&Concept> {
                    related
                        .concept_group
                        .iter()
                        .filter(|g| ttys.contains(&g.tty.as_str()))
                        .flat_map(|g| g.concept_properties.iter())
                        .collect()
                };
                let ingredients = names(&["IN", "MIN"]);
                let brands = names(&["BN"]);
                let mut rxcuis = vec![rxcui.clone()];
                for concept in ingredients.iter().chain(&brands) {
                    if !rxcuis.contains(&concept.rxcui) {
                        rxcuis.push(concept.rxcui.clone());
                    }
                }
                let generic_names: Vec<String> =
                    ingredients.iter().map(|c| c.name.clone()).collect();
                let brand_names: Vec<String> = brands.iter().map(|c| c.name.clone()).collect();
                let label = DrugLabel {
                    set_id: None,
                    title: generic_names.first().or(brand_names.first()).cloned(),
                    version: None,
                    effective_date: None,
                    brand_names,
                    generic_names,
                    manufacturer: None,
                    routes: Vec::new(),
                    rxcuis,
                    sections: DrugSections::default(),
                    source_url: format!(
                        "https://mor.nlm.nih.gov/RxNav/search?searchBy=RXCUI&searchTerm={rxcui}"
                    ),
                };
                let labels = DrugLabels::new(q, None, vec![label], "RxNav")?;
                Ok(Step::Done(labels))
            }
            _ => Err(malformed("neither `idGroup` nor `relatedGroup`")),
        }
    }
}

#[derive(Deserialize)]
struct Reply {
    #[serde(rename = "idGroup")]
    id_group: Option<IdGroup>,
    #[serde(rename = "relatedGroup")]
    related_group: Option<RelatedGroup>,
}

#[derive(Deserialize)]
struct IdGroup {
    #[serde(rename = "rxnormId", default)]
    rxnorm_id: Vec<String>,
}

#[derive(Deserialize)]
struct RelatedGroup {
    rxcui: Option<String>,
    #[serde(rename = "conceptGroup", default)]
    concept_group: Vec<ConceptGroup>,
}

#[derive(Deserialize)]
struct ConceptGroup {
    tty: String,
    #[serde(rename = "conceptProperties", default)]
    concept_properties: Vec<Concept>,
}

#[derive(Deserialize)]
struct Concept {
    rxcui: String,
    name: String,
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /REST/rxcui.json?name=atorvastatin&search=2`.
    Fixture {
        method: "GET",
        path: "/REST/rxcui.json",
        status: 200,
        body: include_str!("fixtures/rxnav/rxcui.json"),
    },
    // `GET /REST/rxcui/83367/related.json?tty=IN+MIN+BN` (brands abridged).
    Fixture {
        method: "GET",
        path: "/REST/rxcui/*",
        status: 200,
        body: include_str!("fixtures/rxnav/related.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn atorvastatin() -> Request {
        request("medical.drug_label", json!({"name": "atorvastatin"}))
    }

    #[test]
    fn first_request_is_exact_and_the_second_follows_from_its_reply() {
        let req = RxNav.request(&atorvastatin(), &ctx(&RxNav)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://rxnav.nlm.nih.gov/REST/rxcui.json");
        assert_eq!(query(&req), [("name", "atorvastatin"), ("search", "2")]);
        assert!(req.headers.is_empty());

        let step = RxNav
            .response(
                &atorvastatin(),
                &ctx(&RxNav),
                test_response(200, &[], fixture(&RxNav, "/REST/rxcui.json")),
            )
            .unwrap();
        let Step::Next(next) = step else {
            panic!("expected a follow-up, got {step:?}")
        };
        assert_eq!(next.method, Method::GET);
        assert_eq!(
            next.url,
            "https://rxnav.nlm.nih.gov/REST/rxcui/83367/related.json"
        );
        assert_eq!(query(&next), [("tty", "IN MIN BN")]);
    }

    #[test]
    fn related_fixture_normalises_to_names_and_ids() {
        let body = fixture(&RxNav, "/REST/rxcui/*");
        let Data::DrugLabel(d) = answer(&RxNav, &atorvastatin(), test_response(200, &[], body))
        else {
            panic!()
        };
        let label = &d.labels[0];
        assert_eq!(label.set_id, None);
        assert_eq!(label.title.as_deref(), Some("atorvastatin"));
        assert_eq!(label.generic_names, ["atorvastatin"]);
        assert_eq!(label.brand_names, ["Lipitor", "Atorvaliq"]);
        assert_eq!(label.rxcuis, ["83367", "153165", "1790868"]);
        assert_eq!(label.sections, DrugSections::default());
        assert!(label.source_url.ends_with("searchTerm=83367"));
        assert_eq!(d.total, None);
    }

    #[test]
    fn error_signals_are_classified() {
        let unknown = r#"{"idGroup":{"name":"nothingazol"}}"#;
        let f = failure(&RxNav, &atorvastatin(), test_response(200, &[], unknown));
        assert_eq!(f.class, FailureClass::NotFound);
        let weird = r#"{"idGroup":{"name":"x","rxnormId":["../../x"]}}"#;
        let f = failure(&RxNav, &atorvastatin(), test_response(200, &[], weird));
        assert_eq!(f.class, FailureClass::MalformedResponse);
        let f = failure(&RxNav, &atorvastatin(), test_response(429, &[], ""));
        assert_eq!(f.class, FailureClass::RateLimited);
        let f = failure(&RxNav, &atorvastatin(), test_response(503, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(
            &RxNav,
            &atorvastatin(),
            test_response(400, &[], "<html>bad</html>"),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        for path in ["/REST/rxcui.json", "/REST/rxcui/*"] {
            assert_truncations_are_malformed(&RxNav, &atorvastatin(), fixture(&RxNav, path));
        }
        let f = failure(&RxNav, &atorvastatin(), test_response(200, &[], "{}"));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }
}
