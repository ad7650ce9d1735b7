//! Medical capabilities: `medical.drug_label`, `medical.literature_search`
//! and `medical.clinical_trials`. Requests and normalised answers.
//!
//! As for media, every answer serialises every field (`null` when unknown),
//! so its shape never depends on the provider that answered.

use serde::{Deserialize, Serialize};

use super::media::{read_text, MAX_QUERY_CHARS};
use super::params::Params;
use super::query;
use super::schema::{Alternatives, Param, ParamKind, ParamTable};
use crate::echo::echo;
use crate::error::{Error, FailureClass, ProviderFailure, Result};

/// Sent with every drug label answer: polyrelay relays public data and
/// gives no medical advice.
pub const DISCLAIMER: &str = "For information only, not medical advice. Drug labels change; \
                              check the current official label and ask a health professional.";

/// Request of `medical.drug_label`.
///
/// ```
/// use polyrelay::capability::Request;
/// assert!(Request::parse("medical.drug_label", serde_json::json!({"name": "ibuprofen"})).is_ok());
/// assert!(Request::parse("medical.drug_label", serde_json::json!({"name": "x\"y"})).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DrugLabelQuery {
    /// Brand or generic drug name.
    pub name: String,
    /// Most labels to return (1 to 25, default 5).
    pub limit: u8,
}

impl DrugLabelQuery {
    /// The parameters: `name` and `limit`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            Param::new(
                "name",
                ParamKind::String {
                    max_chars: Some(100),
                },
                "A brand or generic drug name: letters, digits, spaces and -.,'/()+.",
                r#""ibuprofen""#,
            )
            .required(),
            query::limit(5, 25),
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `name` (required; letters, digits, spaces and
    /// `-.,'/()+`) and `limit`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let name = read_text(&mut params, "name")?.ok_or_else(|| params.missing("name"))?;
        if !name
            .chars()
            .all(|c| c.is_alphanumeric() || " -.,'/()+".contains(c))
        {
            return Err(Error::invalid(
                "name",
                format!(
                    "must be a drug name of letters, digits, spaces and -.,'/()+, got {}",
                    echo(&name)
                ),
            ));
        }
        let limit = params.u8("limit")?;
        params.finish()?;
        Ok(Self { name, limit })
    }
}

/// The label sections polyrelay normalises, as plain text (several
/// paragraphs joined by blank lines). `None` when the label or the provider
/// does not have the section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrugSections {
    /// Indications and usage.
    pub indications: Option<String>,
    /// Dosage and administration.
    pub dosage: Option<String>,
    /// Contraindications.
    pub contraindications: Option<String>,
    /// Warnings (or warnings and precautions).
    pub warnings: Option<String>,
    /// Boxed warning.
    pub boxed_warning: Option<String>,
    /// Adverse reactions.
    pub adverse_reactions: Option<String>,
    /// Drug interactions.
    pub drug_interactions: Option<String>,
    /// Pregnancy (or pregnancy and breast-feeding).
    pub pregnancy: Option<String>,
}

/// One drug label (a Structured Product Label), or for name-only sources
/// the drug's names and RxNorm ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrugLabel {
    /// SPL set id, shared by every version of the label; `None` for
    /// sources without labels (RxNav).
    pub set_id: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Label version.
    pub version: Option<u32>,
    /// Effective or publication date, `YYYY-MM-DD`.
    pub effective_date: Option<String>,
    /// Brand names.
    pub brand_names: Vec<String>,
    /// Generic (ingredient) names.
    pub generic_names: Vec<String>,
    /// Labeler.
    pub manufacturer: Option<String>,
    /// Routes of administration (`ORAL`).
    pub routes: Vec<String>,
    /// RxNorm concept ids.
    pub rxcuis: Vec<String>,
    /// Label sections.
    pub sections: DrugSections,
    /// Where to read the label: its DailyMed page, or RxNav's for names.
    pub source_url: String,
}

impl DrugLabel {
    /// A label known only by its set id, pointing at its DailyMed page.
    pub fn with_set_id(set_id: String) -> Self {
        let source_url = dailymed_url(&set_id);
        Self {
            set_id: Some(set_id),
            title: None,
            version: None,
            effective_date: None,
            brand_names: Vec::new(),
            generic_names: Vec::new(),
            manufacturer: None,
            routes: Vec::new(),
            rxcuis: Vec::new(),
            sections: DrugSections::default(),
            source_url,
        }
    }
}

/// The DailyMed page of a label, the same whichever provider found it.
pub fn dailymed_url(set_id: &str) -> String {
    format!("https://dailymed.nlm.nih.gov/dailymed/lookup.cfm?setid={set_id}")
}

/// Answer of `medical.drug_label`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrugLabels {
    /// The name asked for.
    pub query: String,
    /// Labels the provider reports for the name, when it says.
    pub total: Option<u64>,
    /// The labels, most relevant or most recent first.
    pub labels: Vec<DrugLabel>,
    /// [`DISCLAIMER`].
    pub disclaimer: String,
}

impl DrugLabels {
    /// The answer for `query`, cut to its limit. A drug lookup that finds
    /// nothing is `NotFound`, so the next provider, which may know the
    /// name, is asked.
    pub fn new(
        query: &DrugLabelQuery,
        total: Option<u64>,
        mut labels: Vec<DrugLabel>,
        provider: &str,
    ) -> std::result::Result<Self, ProviderFailure> {
        if labels.is_empty() {
            return Err(ProviderFailure::new(
                FailureClass::NotFound,
                format!("{provider} has no label for {}", echo(&query.name)),
            ));
        }
        labels.truncate(usize::from(query.limit));
        Ok(Self {
            query: query.name.clone(),
            total,
            labels,
            disclaimer: DISCLAIMER.to_string(),
        })
    }
}

/// A paper's ids.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PaperIds {
    /// PubMed id.
    pub pmid: Option<String>,
    /// PubMed Central id (`PMC1234567`).
    pub pmcid: Option<String>,
    /// DOI without the resolver prefix (`10.1038/…`), lower case.
    pub doi: Option<String>,
    /// OpenAlex work id (`W2741809807`).
    pub openalex: Option<String>,
}

impl PaperIds {
    /// Normalises a DOI: no `https://doi.org/` or `doi:` prefix, lower case
    /// (DOIs are case-insensitive).
    pub fn set_doi(&mut self, doi: &str) {
        let doi = doi.trim();
        let doi = [
            "https://doi.org/",
            "http://doi.org/",
            "http://dx.doi.org/",
            "doi:",
        ]
        .iter()
        .find_map(|prefix| {
            doi.get(..prefix.len())
                .filter(|head| head.eq_ignore_ascii_case(prefix))
                .map(|_| &doi[prefix.len()..])
        })
        .unwrap_or(doi)
        .trim();
        if doi.starts_with("10.") {
            self.doi = Some(doi.to_ascii_lowercase());
        }
    }

    /// Normalises a PMC id to `PMC` + digits.
    pub fn set_pmcid(&mut self, pmcid: &str) {
        let digits = pmcid
            .trim()
            .trim_start_matches("PMC")
            .trim_start_matches("pmc");
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            self.pmcid = Some(format!("PMC{digits}"));
        }
    }
}

/// One paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paper {
    /// Ids.
    pub ids: PaperIds,
    /// Title.
    pub title: String,
    /// Authors, as the provider writes them.
    pub authors: Vec<String>,
    /// Journal or other venue.
    pub venue: Option<String>,
    /// Publication year.
    pub year: Option<u16>,
    /// Publication date, ISO-8601 (`YYYY-MM-DD` or less precise).
    pub published_at: Option<String>,
    /// Abstract, plain text.
    pub r#abstract: Option<String>,
    /// Citations counted by the provider.
    pub citation_count: Option<u64>,
    /// A free full text.
    pub open_access_url: Option<String>,
    /// The paper's page (PubMed for papers with a PMID, so every provider
    /// links the same place).
    pub url: String,
}

impl Paper {
    /// The canonical page of a paper: PubMed when it has a PMID, else its
    /// DOI, else `fallback`.
    pub fn canonical_url(ids: &PaperIds, fallback: impl FnOnce() -> String) -> String {
        match (&ids.pmid, &ids.doi) {
            (Some(pmid), _) => format!("https://pubmed.ncbi.nlm.nih.gov/{pmid}/"),
            (None, Some(doi)) => format!("https://doi.org/{doi}"),
            (None, None) => fallback(),
        }
    }
}

/// Answer of `medical.literature_search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperSearch {
    /// The text asked for.
    pub query: String,
    /// Matches the provider reports for the whole search, when it says.
    pub total: Option<u64>,
    /// The papers, most relevant first.
    pub results: Vec<Paper>,
}

/// ClinicalTrials.gov's overall statuses, lower case; trial answers use
/// them upper case.
const TRIAL_STATUSES: &[&str] = &[
    "recruiting",
    "not_yet_recruiting",
    "active_not_recruiting",
    "enrolling_by_invitation",
    "completed",
    "suspended",
    "terminated",
    "withdrawn",
    "unknown",
];

/// Request of `medical.clinical_trials`.
///
/// ```
/// use polyrelay::capability::Request;
/// let r = Request::parse("medical.clinical_trials", serde_json::json!({"condition": "malaria", "status": "recruiting"}));
/// assert!(r.is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TrialQuery {
    /// Free text (drug, sponsor, title words…).
    pub query: Option<String>,
    /// Condition or disease.
    pub condition: Option<String>,
    /// Only trials with this overall status (`RECRUITING`, …).
    pub status: Option<String>,
    /// Most trials to return (1 to 50, default 10).
    pub limit: u8,
}

impl TrialQuery {
    /// The parameters: `query` and/or `condition`, `status` and `limit`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            query::text(
                MAX_QUERY_CHARS,
                "Free text: drug, sponsor, title words.",
                r#""vaccine""#,
            ),
            Param::new(
                "condition",
                ParamKind::String {
                    max_chars: Some(MAX_QUERY_CHARS),
                },
                "A condition or disease.",
                r#""malaria""#,
            ),
            Param::new(
                "status",
                ParamKind::Choice {
                    values: TRIAL_STATUSES,
                },
                "Only trials with this overall status (case, spaces and dashes do not matter).",
                r#""recruiting""#,
            ),
            query::limit(10, 50),
        ],
        alternatives: Alternatives::AtLeastOne(&[&["query"], &["condition"]]),
    };

    /// Validates parameters: `query` and/or `condition` (one is required),
    /// `status` (e.g. `recruiting`, `completed`) and `limit`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let query = read_text(&mut params, "query")?;
        let condition = read_text(&mut params, "condition")?;
        let status = match params.opt_str("status")? {
            None => None,
            Some(text) => {
                let lower = text.to_ascii_lowercase().replace([' ', '-'], "_");
                if !TRIAL_STATUSES.contains(&lower.as_str()) {
                    return Err(Error::invalid(
                        "status",
                        format!(
                            "must be one of {}, got {}",
                            TRIAL_STATUSES.join(", "),
                            echo(&text)
                        ),
                    ));
                }
                Some(lower.to_ascii_uppercase())
            }
        };
        let limit = params.u8("limit")?;
        params.finish()?;
        if query.is_none() && condition.is_none() {
            return Err(Error::invalid(
                "query",
                "is required: give query, condition or both",
            ));
        }
        Ok(Self {
            query,
            condition,
            status,
            limit,
        })
    }
}

/// One registered trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// ClinicalTrials.gov identifier (`NCT04437511`).
    pub nct_id: String,
    /// Title.
    pub title: String,
    /// Overall status as ClinicalTrials.gov names it (`RECRUITING`,
    /// `COMPLETED`, …; `UNKNOWN` when the source does not say).
    pub status: String,
    /// Phases (`PHASE2`, `PHASE3`, `EARLY_PHASE1`, `NA`).
    pub phases: Vec<String>,
    /// Conditions studied.
    pub conditions: Vec<String>,
    /// Interventions (drugs, devices, procedures…).
    pub interventions: Vec<String>,
    /// Lead sponsor.
    pub sponsor: Option<String>,
    /// Start date, ISO-8601 (`YYYY-MM-DD` or `YYYY-MM`).
    pub start_date: Option<String>,
    /// The trial's ClinicalTrials.gov page.
    pub url: String,
}

impl Trial {
    /// The ClinicalTrials.gov page of a trial.
    pub fn registry_url(nct_id: &str) -> String {
        format!("https://clinicaltrials.gov/study/{nct_id}")
    }
}

/// Answer of `medical.clinical_trials`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialSearch {
    /// The free text asked for.
    pub query: Option<String>,
    /// The condition asked for.
    pub condition: Option<String>,
    /// Matches the provider reports for the whole search, when it says.
    pub total: Option<u64>,
    /// The trials.
    pub results: Vec<Trial>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::Request;
    use serde_json::json;

    fn field_of(err: Error) -> String {
        match err {
            Error::InvalidRequest { field, .. } => field,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    #[test]
    fn drug_label_queries_validate() {
        let Request::DrugLabel(q) = Request::parse(
            "medical.drug_label",
            json!({"name": "Advil 200", "limit": 2}),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((q.name.as_str(), q.limit), ("Advil 200", 2));
        let err = |p| field_of(Request::parse("medical.drug_label", p).unwrap_err());
        assert_eq!(err(json!({})), "name");
        assert_eq!(err(json!({"name": "a:b"})), "name");
        assert_eq!(err(json!({"name": "a", "limit": 26})), "limit");
        assert_eq!(err(json!({"name": "a", "query": "b"})), "query");
    }

    #[test]
    fn trial_queries_validate_and_normalise_status() {
        let Request::ClinicalTrials(q) = Request::parse(
            "medical.clinical_trials",
            json!({"query": "donanemab", "status": "active not-recruiting"}),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(q.status.as_deref(), Some("ACTIVE_NOT_RECRUITING"));
        let err = |p| field_of(Request::parse("medical.clinical_trials", p).unwrap_err());
        assert_eq!(err(json!({})), "query");
        assert_eq!(err(json!({"condition": "x", "status": "open"})), "status");
    }

    #[test]
    fn literature_queries_use_text_search() {
        let Request::LiteratureSearch(q) = Request::parse(
            "medical.literature_search",
            json!({"query": "malaria", "limit": 20}),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((q.query.as_str(), q.limit), ("malaria", 20));
    }

    #[test]
    fn ids_normalise() {
        let mut ids = PaperIds::default();
        ids.set_doi("https://doi.org/10.1038/S41586-020-2649-2");
        assert_eq!(ids.doi.as_deref(), Some("10.1038/s41586-020-2649-2"));
        ids.set_doi("doi: 10.1/X");
        assert_eq!(ids.doi.as_deref(), Some("10.1/x"));
        ids.set_pmcid("1234567");
        assert_eq!(ids.pmcid.as_deref(), Some("PMC1234567"));
        ids.set_pmcid("PMC7654321");
        assert_eq!(ids.pmcid.as_deref(), Some("PMC7654321"));
        assert_eq!(
            Paper::canonical_url(&ids, || "x".into()),
            "https://doi.org/10.1/x"
        );
    }

    #[test]
    fn an_empty_label_list_is_not_found() {
        let Request::DrugLabel(q) =
            Request::parse("medical.drug_label", json!({"name": "nothing"})).unwrap()
        else {
            panic!()
        };
        let f = DrugLabels::new(&q, Some(0), vec![], "openfda").unwrap_err();
        assert_eq!(f.class, FailureClass::NotFound);
        let labels =
            DrugLabels::new(&q, None, vec![DrugLabel::with_set_id("s".into())], "x").unwrap();
        assert_eq!(labels.disclaimer, DISCLAIMER);
        assert!(labels.labels[0].source_url.ends_with("setid=s"));
    }
}
