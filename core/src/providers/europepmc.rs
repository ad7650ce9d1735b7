//! Europe PMC: `medical.literature_search`, and a partial
//! `medical.clinical_trials` from trial-linked literature.
//!
//! Keyless, no published limit. `/search?resultType=core&format=json`
//! returns full records (abstracts, MeSH, publication types). For trials,
//! the search is narrowed to articles that cite ClinicalTrials.gov records
//! (`ACCESSION_TYPE:nct`), and the NCT numbers are read from their
//! abstracts. That answer is partial: the title is the article's, the
//! status is `UNKNOWN`, phases come from the publication types, and a
//! status filter cannot be applied (`Unsupported`).

use serde::Deserialize;

use crate::capability::marker;
use crate::capability::media::TextQuery;
use crate::capability::medical::{Paper, PaperIds, PaperSearch, Trial, TrialQuery, TrialSearch};
use crate::capability::normalize::{iso_date, strip_html, year_of};
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Serves, Step,
};

/// Europe PMC (<https://europepmc.org/RestfulWebService>): 45 million
/// life-science abstracts and full texts, PubMed included.
#[derive(Debug, Clone, Copy, Default)]
pub struct EuropePmc;

static INFO: ProviderInfo = ProviderInfo {
    id: "europepmc",
    name: "Europe PMC",
    auth: Auth::Keyless,
    base_url: "https://www.ebi.ac.uk",
    docs_url: "https://europepmc.org/RestfulWebService",
    terms: "Keyless, no published limit. Abstracts keep their publishers' copyright. Trial \
            answers are partial (trial-linked articles: no status, sponsor or dates).",
    commercial_use: true,
    default_rate_limit: None,
    default_quota: None,
};

const SEARCH_PATH: &str = "/europepmc/webservices/rest/search";

fn search(ctx: &CallContext<'_>, query: String, page_size: u8) -> HttpRequest {
    HttpRequest::get(ctx.base_url, SEARCH_PATH)
        .query("query", query)
        .query("resultType", "core")
        .query("format", "json")
        .query("pageSize", page_size.to_string())
}

/// The trial search as a Europe PMC query: the text and condition (their
/// parentheses dropped, so they cannot unbalance the query), limited to
/// articles citing ClinicalTrials.gov records.
fn trial_query(q: &TrialQuery) -> String {
    let mut parts: Vec<String> = [&q.query, &q.condition]
        .into_iter()
        .flatten()
        .map(|text| format!("({})", text.replace(['(', ')'], " ").trim()))
        .collect();
    parts.push("ACCESSION_TYPE:nct".to_string());
    parts.join(" AND ")
}

impl Provider for EuropePmc {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(EuropePmc: LiteratureSearch, ClinicalTrials);

impl Serves<marker::LiteratureSearch> for EuropePmc {
    fn build_request(
        &self,
        q: &TextQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        Ok(search(ctx, q.query.clone(), q.limit))
    }

    fn read_response(
        &self,
        q: &TextQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<PaperSearch>, ProviderFailure> {
        let (total, articles) = read_articles(&response)?;
        Ok(Step::Done(papers(q, total, articles)))
    }
}

impl Serves<marker::ClinicalTrials> for EuropePmc {
    fn build_request(
        &self,
        q: &TrialQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        if q.status.is_some() {
            return Err(ProviderFailure::unsupported(
                "Europe PMC cannot filter trials by registry status",
            )
            .not_sent());
        }
        // Not every trial-citing abstract names its NCT number.
        Ok(search(
            ctx,
            trial_query(q),
            q.limit.saturating_mul(2).min(100),
        ))
    }

    fn read_response(
        &self,
        q: &TrialQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<TrialSearch>, ProviderFailure> {
        let (_, articles) = read_articles(&response)?;
        Ok(Step::Done(trials(q, articles)))
    }
}

/// The reply's hit count and articles, or the failure its status or body
/// signals.
fn read_articles(response: &HttpResponse) -> Result<(Option<u64>, Vec<Article>), ProviderFailure> {
    response.check_status()?;
    let reply: Reply = response.json()?;
    // No `result` list is an empty search only when `hitCount` says so.
    let articles = match reply.result_list.result {
        Some(articles) => articles,
        None if reply.hit_count == Some(0) => Vec::new(),
        None => {
            return Err(
                ProviderFailure::malformed("Europe PMC reply lacks `resultList.result`")
                    .status(response.status),
            )
        }
    };
    Ok((reply.hit_count, articles))
}

fn papers(q: &TextQuery, total: Option<u64>, articles: Vec<Article>) -> PaperSearch {
    PaperSearch {
        query: q.query.clone(),
        total,
        results: articles
            .into_iter()
            .take(usize::from(q.limit))
            .filter_map(Article::into_paper)
            .collect(),
    }
}

fn trials(q: &TrialQuery, articles: Vec<Article>) -> TrialSearch {
    let mut results: Vec<Trial> = Vec::new();
    for article in &articles {
        let Some(title) = article.title.as_deref().map(strip_html) else {
            continue;
        };
        let phases = article.phases();
        for nct_id in nct_ids(article.abstract_text.as_deref().unwrap_or_default()) {
            if results.len() < usize::from(q.limit) && !results.iter().any(|t| t.nct_id == nct_id) {
                results.push(Trial {
                    url: Trial::registry_url(&nct_id),
                    nct_id,
                    title: title.clone(),
                    status: "UNKNOWN".to_string(),
                    phases: phases.clone(),
                    conditions: Vec::new(),
                    interventions: Vec::new(),
                    sponsor: None,
                    start_date: None,
                });
            }
        }
    }
    TrialSearch {
        query: q.query.clone(),
        condition: q.condition.clone(),
        total: None,
        results,
    }
}

/// Every ClinicalTrials.gov identifier (`NCT` and exactly eight digits) in
/// `text`, in order of appearance.
fn nct_ids(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut ids: Vec<String> = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("NCT").map(|i| i + from) {
        let digits = &bytes[at + 3..bytes.len().min(at + 12)];
        let count = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        let starts_word = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        if count == 8 && starts_word {
            let id = text[at..at + 11].to_string();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        from = at + 3;
    }
    ids
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    hit_count: Option<u64>,
    result_list: ResultList,
}

#[derive(Deserialize)]
struct ResultList {
    result: Option<Vec<Article>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Article {
    id: String,
    source: String,
    pmid: Option<String>,
    pmcid: Option<String>,
    doi: Option<String>,
    title: Option<String>,
    author_string: Option<String>,
    author_list: Option<AuthorList>,
    journal_info: Option<JournalInfo>,
    journal_title: Option<String>,
    pub_year: Option<String>,
    first_publication_date: Option<String>,
    abstract_text: Option<String>,
    cited_by_count: Option<u64>,
    pub_type_list: Option<PubTypeList>,
    full_text_url_list: Option<FullTextUrlList>,
}

#[derive(Deserialize)]
struct AuthorList {
    #[serde(default)]
    author: Vec<Author>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Author {
    full_name: Option<String>,
    collective_name: Option<String>,
}

#[derive(Deserialize)]
struct JournalInfo {
    journal: Option<Journal>,
}

#[derive(Deserialize)]
struct Journal {
    title: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PubTypeList {
    #[serde(default)]
    pub_type: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FullTextUrlList {
    #[serde(default)]
    full_text_url: Vec<FullTextUrl>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FullTextUrl {
    availability_code: Option<String>,
    url: String,
}

impl Article {
    /// Trial phases from MEDLINE publication types
    /// (`Clinical Trial, Phase III` → `PHASE3`).
    fn phases(&self) -> Vec<String> {
        let mut phases = Vec::new();
        for kind in self.pub_type_list.iter().flat_map(|l| &l.pub_type) {
            let kind = kind.to_ascii_lowercase();
            let Some(roman) = kind.strip_prefix("clinical trial, phase ") else {
                continue;
            };
            let phase = match roman.trim() {
                "i" => "PHASE1",
                "ii" => "PHASE2",
                "iii" => "PHASE3",
                "iv" => "PHASE4",
                _ => continue,
            };
            if !phases.iter().any(|p| p == phase) {
                phases.push(phase.to_string());
            }
        }
        phases
    }

    fn into_paper(self) -> Option<Paper> {
        let title = strip_html(self.title.as_deref()?);
        if title.is_empty() {
            return None;
        }
        let mut ids = PaperIds {
            pmid: self.pmid.filter(|p| !p.is_empty()),
            ..PaperIds::default()
        };
        if let Some(doi) = &self.doi {
            ids.set_doi(doi);
        }
        if let Some(pmcid) = &self.pmcid {
            ids.set_pmcid(pmcid);
        }
        let authors = match self.author_list {
            Some(list) if !list.author.is_empty() => list
                .author
                .into_iter()
                .filter_map(|a| a.full_name.or(a.collective_name))
                .collect(),
            _ => self
                .author_string
                .as_deref()
                .map(|s| {
                    s.trim_end_matches('.')
                        .split(", ")
                        .map(|a| a.trim().to_string())
                        .filter(|a| !a.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        };
        let open_access_url = match &ids.pmcid {
            Some(pmcid) => Some(format!("https://pmc.ncbi.nlm.nih.gov/articles/{pmcid}/")),
            None => self
                .full_text_url_list
                .into_iter()
                .flat_map(|l| l.full_text_url)
                .find(|u| matches!(u.availability_code.as_deref(), Some("OA" | "F")))
                .map(|u| u.url),
        };
        let (source, id) = (self.source, self.id);
        let url = Paper::canonical_url(&ids, || {
            format!("https://europepmc.org/article/{source}/{id}")
        });
        Some(Paper {
            title,
            authors,
            venue: self
                .journal_info
                .and_then(|j| j.journal)
                .and_then(|j| j.title)
                .or(self.journal_title),
            year: self.pub_year.as_deref().and_then(year_of),
            published_at: self.first_publication_date.as_deref().and_then(iso_date),
            r#abstract: self
                .abstract_text
                .as_deref()
                .map(strip_html)
                .filter(|a| !a.is_empty()),
            citation_count: self.cited_by_count,
            open_access_url,
            url,
            ids,
        })
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /europepmc/webservices/rest/search?query=malaria vaccine&resultType=core&format=json&pageSize=2`
    // (records abridged: the author string names the same authors as the
    // author list, as in full records).
    Fixture {
        method: "GET",
        path: SEARCH_PATH,
        status: 200,
        body: include_str!("fixtures/europepmc/search.json"),
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
    fn requests_are_exact() {
        let r = request(
            "medical.literature_search",
            json!({"query": "malaria vaccine", "limit": 2}),
        );
        let req = EuropePmc.request(&r, &ctx(&EuropePmc)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(
            req.url,
            "https://www.ebi.ac.uk/europepmc/webservices/rest/search"
        );
        assert_eq!(
            query(&req),
            [
                ("query", "malaria vaccine"),
                ("resultType", "core"),
                ("format", "json"),
                ("pageSize", "2")
            ]
        );
        assert!(req.headers.is_empty());

        let r = request(
            "medical.clinical_trials",
            json!({"query": "R21 (vaccine", "condition": "malaria", "limit": 5}),
        );
        let req = EuropePmc.request(&r, &ctx(&EuropePmc)).unwrap();
        assert_eq!(
            query(&req)[0],
            (
                "query",
                "(R21  vaccine) AND (malaria) AND ACCESSION_TYPE:nct"
            )
        );
        assert_eq!(query(&req)[3], ("pageSize", "10"));

        let r = request(
            "medical.clinical_trials",
            json!({"condition": "malaria", "status": "recruiting"}),
        );
        let f = EuropePmc.request(&r, &ctx(&EuropePmc)).unwrap_err();
        assert_eq!(
            (f.class, f.request_sent),
            (FailureClass::Unsupported, false)
        );
    }

    #[test]
    fn papers_normalise() {
        let r = request(
            "medical.literature_search",
            json!({"query": "malaria vaccine"}),
        );
        let body = fixture(&EuropePmc, SEARCH_PATH);
        let Data::LiteratureSearch(s) = answer(&EuropePmc, &r, test_response(200, &[], body))
        else {
            panic!()
        };
        assert_eq!((s.total, s.results.len()), (Some(25841), 2));
        let r21 = &s.results[0];
        assert!(r21
            .title
            .starts_with("Safety and efficacy of the R21/Matrix-M"));
        assert_eq!(
            r21.authors,
            [
                "Datoo MS",
                "Dicko A",
                "Tinto H",
                "R21/Matrix-M Phase 3 Trial Group"
            ]
        );
        assert_eq!(r21.venue.as_deref(), Some("Lancet (London, England)"));
        assert_eq!(
            (r21.year, r21.published_at.as_deref()),
            (Some(2024), Some("2024-02-01"))
        );
        assert!(r21
            .r#abstract
            .as_deref()
            .unwrap()
            .starts_with("Background We report the phase 3"));
        assert_eq!(r21.citation_count, Some(142));
        assert_eq!(
            (r21.ids.pmid.as_deref(), r21.ids.doi.as_deref()),
            (Some("38310910"), Some("10.1016/s0140-6736(23)02511-4"))
        );
        assert_eq!(
            (r21.open_access_url.as_ref(), r21.url.as_str()),
            (None, "https://pubmed.ncbi.nlm.nih.gov/38310910/")
        );

        let editorial = &s.results[1];
        assert_eq!(editorial.authors, ["Alonso PL"]);
        assert_eq!(editorial.venue.as_deref(), Some("N Engl J Med"));
        assert_eq!(editorial.r#abstract, None);
        assert_eq!(
            editorial.open_access_url.as_deref(),
            Some("https://pmc.ncbi.nlm.nih.gov/articles/PMC8390112/")
        );
        assert_eq!(editorial.url, "https://doi.org/10.1056/nejme2110397");
    }

    #[test]
    fn trials_come_from_nct_numbers_in_abstracts() {
        let r = request("medical.clinical_trials", json!({"condition": "malaria"}));
        let body = fixture(&EuropePmc, SEARCH_PATH);
        let Data::ClinicalTrials(s) = answer(&EuropePmc, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!(
            (s.query.as_ref(), s.condition.as_deref(), s.total),
            (None, Some("malaria"), None)
        );
        let ids: Vec<&str> = s.results.iter().map(|t| t.nct_id.as_str()).collect();
        assert_eq!(ids, ["NCT04704830", "NCT03896724"]);
        let t = &s.results[0];
        assert_eq!(
            (t.status.as_str(), t.phases.as_slice()),
            ("UNKNOWN", &["PHASE3".to_string()][..])
        );
        assert!(t.title.starts_with("Safety and efficacy"));
        assert_eq!(t.url, "https://clinicaltrials.gov/study/NCT04704830");

        let r = request(
            "medical.clinical_trials",
            json!({"condition": "malaria", "limit": 1}),
        );
        let Data::ClinicalTrials(s) = answer(&EuropePmc, &r, test_response(200, &[], body)) else {
            panic!()
        };
        assert_eq!(s.results.len(), 1);
    }

    #[test]
    fn nct_numbers_are_found_exactly() {
        assert_eq!(
            nct_ids(
                "NCT01234567, xNCT11111111, NCT123456789, NCT1234567 (NCT01234567) NCT7654321é0"
            ),
            ["NCT01234567"]
        );
        assert_eq!(nct_ids("ends NCT0123"), Vec::<String>::new());
        assert_eq!(nct_ids("é NCT00000001"), ["NCT00000001"]);
    }

    #[test]
    fn error_signals_are_classified() {
        let r = request("medical.literature_search", json!({"query": "x"}));
        let f = failure(
            &EuropePmc,
            &r,
            test_response(500, &[], "<html>error</html>"),
        );
        assert_eq!(f.class, FailureClass::Transient);
        let f = failure(
            &EuropePmc,
            &r,
            test_response(429, &[("retry-after", "3")], ""),
        );
        assert_eq!(
            (f.class, f.retry_after),
            (
                FailureClass::RateLimited,
                Some(std::time::Duration::from_secs(3))
            )
        );
        let f = failure(
            &EuropePmc,
            &r,
            test_response(400, &[], r#"{"errCode":400,"errMsg":"Invalid query"}"#),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&EuropePmc, SEARCH_PATH);
        for r in [
            request("medical.literature_search", json!({"query": "x"})),
            request("medical.clinical_trials", json!({"query": "x"})),
        ] {
            assert_truncations_are_malformed(&EuropePmc, &r, body);
        }
    }
}
