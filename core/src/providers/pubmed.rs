//! PubMed (NCBI E-utilities): `medical.literature_search`.
//!
//! Keyless at 3 requests/s per IP; a free key (`NCBI_API_KEY`, which
//! E-utilities only take as the `api_key` query parameter) allows 10/s.
//! Two requests per search: `esearch` (matching PMIDs by relevance), then
//! `esummary` for those ids, which the follow-up request carries itself.
//! NCBI asks every caller to identify itself with `tool` and `email`; they
//! come from the client-wide User-Agent and contact. Over the limit NCBI
//! answers 429 `{"error":"API rate limit exceeded",…}`, and a refused key
//! `{"error":"API key invalid",…}`; a bad query is
//! `{"esearchresult":{"ERROR":"…"}}` inside a 200.

use std::collections::HashMap;

use serde::Deserialize;

use super::clip;
use crate::capability::medical::{Paper, PaperIds, PaperSearch};
use crate::capability::normalize::{iso_date, lenient_u64, year_of};
use crate::capability::{marker, media, medical};
use crate::error::{FailureClass, ProviderFailure};
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, KeyPlacement, Provider, ProviderInfo,
    Serves, Step,
};

/// PubMed (<https://www.ncbi.nlm.nih.gov/books/NBK25500/>): 37 million
/// biomedical citations from MEDLINE and life-science journals.
#[derive(Debug, Clone, Copy, Default)]
pub struct PubMed;

static INFO: ProviderInfo = ProviderInfo {
    id: "pubmed",
    name: "PubMed (NCBI E-utilities)",
    auth: Auth::Key {
        env: "NCBI_API_KEY",
        placement: KeyPlacement::Query { param: "api_key" },
        optional: true,
    },
    base_url: "https://eutils.ncbi.nlm.nih.gov",
    docs_url: "https://www.ncbi.nlm.nih.gov/books/NBK25497/",
    terms: "Keyless at 3 requests/s (10/s with a free key); each search makes two requests. \
            Send tool and email (set the client's contact). Abstracts may be copyrighted.",
    commercial_use: true,
    // 3 requests/s, and every search is two requests.
    default_rate_limit: Some("3/2s"),
    default_quota: None,
};

/// The e-mail address in a User-Agent's contact part, for providers that
/// want one as a parameter (NCBI `email`, OpenAlex `mailto`).
pub(crate) fn contact_email(user_agent: &str) -> Option<&str> {
    user_agent.split_whitespace().find_map(|token| {
        let token = token.trim_matches(|c: char| "()<>[];,+".contains(c));
        let token = token.strip_prefix("mailto:").unwrap_or(token);
        let (local, domain) = token.split_once('@')?;
        let plausible = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "@.-_+".contains(c));
        plausible.then_some(token)
    })
}

/// The product name of a User-Agent (`polyrelay` in `polyrelay/0.1 (…)`),
/// as NCBI's `tool`: letters, digits, `-`, `_` and `.` only.
fn tool_name(user_agent: &str) -> String {
    let product = user_agent.split(['/', ' ']).next().unwrap_or_default();
    let tool: String = product
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect();
    if tool.is_empty() {
        "polyrelay".to_string()
    } else {
        tool
    }
}

/// A request to the E-utility `utility` (`esearch`, `esummary`) on PubMed.
fn eutils(ctx: &CallContext<'_>, utility: &str) -> HttpRequest {
    HttpRequest::get(ctx.base_url, &format!("/entrez/eutils/{utility}.fcgi")).query("db", "pubmed")
}

/// Adds NCBI's `tool` and (when a contact is set) `email` parameters.
fn identified(req: HttpRequest, ctx: &CallContext<'_>) -> HttpRequest {
    let req = req.query("tool", tool_name(ctx.user_agent));
    match contact_email(ctx.user_agent) {
        Some(email) => req.query("email", email),
        None => req,
    }
}

impl Provider for PubMed {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(PubMed: LiteratureSearch);

impl Serves<marker::LiteratureSearch> for PubMed {
    fn build_request(
        &self,
        q: &media::TextQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let req = eutils(ctx, "esearch")
            .query("term", q.query.as_str())
            .query("retmode", "json")
            .query("retmax", q.limit.to_string())
            .query("sort", "relevance");
        Ok(identified(req, ctx))
    }

    fn read_response(
        &self,
        q: &media::TextQuery,
        ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<medical::PaperSearch>, ProviderFailure> {
        let reply: Option<Reply> = serde_json::from_slice(&response.body).ok();
        if let Some(error) = reply.as_ref().and_then(|r| r.error.as_deref()) {
            let lower = error.to_ascii_lowercase();
            let class = if response.status == 429 || lower.contains("rate limit") {
                FailureClass::RateLimited
            } else if lower.contains("api key") {
                FailureClass::Auth
            } else if response.is_success() {
                // A 200 with a top-level error: NCBI's search backend failed.
                FailureClass::Transient
            } else {
                response
                    .status_class()
                    .unwrap_or(FailureClass::MalformedResponse)
            };
            return Err(response.failure(class, format!("PubMed: {}", clip(error))));
        }
        response.check_status()?;
        let reply: Reply = response.json()?;
        match reply {
            Reply {
                esearchresult: Some(search),
                ..
            } => {
                if let Some(error) = search.error {
                    return Err(response.failure(
                        FailureClass::InvalidRequest,
                        format!("PubMed: {}", clip(&error)),
                    ));
                }
                let idlist = search.idlist.ok_or_else(|| {
                    ProviderFailure::malformed("PubMed esearch reply lacks `idlist`")
                        .status(response.status)
                })?;
                if idlist.is_empty() {
                    // A first page with no ids while `count` says there are
                    // some: the list was lost, not the matches.
                    if search.count.is_some_and(|n| n > 0) {
                        return Err(ProviderFailure::malformed(format!(
                            "PubMed esearch reply has an empty `idlist` but a count of {}",
                            search.count.unwrap_or_default()
                        ))
                        .status(response.status));
                    }
                    return Ok(Step::Done(PaperSearch {
                        query: q.query.clone(),
                        total: search.count,
                        results: Vec::new(),
                    }));
                }
                if !idlist
                    .iter()
                    .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
                {
                    return Err(ProviderFailure::malformed("PubMed: a PMID is not a number")
                        .status(response.status));
                }
                let req = eutils(ctx, "esummary")
                    .query("id", idlist.join(","))
                    .query("retmode", "json");
                Ok(Step::Next(identified(req, ctx)))
            }
            Reply {
                result: Some(result),
                ..
            } => {
                let uids = result.uids.ok_or_else(|| {
                    ProviderFailure::malformed("PubMed esummary reply lacks `uids`")
                        .status(response.status)
                })?;
                // A summary that is null or unreadable loses that paper only.
                let results = uids
                    .iter()
                    .filter_map(|uid| result.docs.get(uid))
                    .filter_map(|doc| response.json_part::<Summary>(doc).ok())
                    .filter(|doc| doc.error.is_none())
                    .filter_map(|doc| doc.to_paper())
                    .collect();
                // esummary does not repeat esearch's count, and the
                // follow-up's response is all this step sees.
                Ok(Step::Done(PaperSearch {
                    query: q.query.clone(),
                    total: None,
                    results,
                }))
            }
            Reply {
                esummaryresult: Some(errors),
                ..
            } => Err(response.failure(
                FailureClass::Transient,
                format!("PubMed: {}", clip(&errors.join("; "))),
            )),
            _ => Err(ProviderFailure::malformed(
                "PubMed reply has neither `esearchresult` nor `result`",
            )
            .status(response.status)),
        }
    }
}

#[derive(Deserialize)]
struct Reply {
    error: Option<String>,
    esearchresult: Option<SearchResult>,
    result: Option<SummaryResult>,
    esummaryresult: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct SearchResult {
    #[serde(default, deserialize_with = "lenient_u64")]
    count: Option<u64>,
    idlist: Option<Vec<String>>,
    #[serde(rename = "ERROR")]
    error: Option<String>,
}

#[derive(Deserialize)]
struct SummaryResult {
    uids: Option<Vec<String>>,
    /// Read one by one, so that one broken summary loses one paper.
    #[serde(flatten)]
    docs: HashMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Summary {
    uid: String,
    title: Option<String>,
    pubdate: Option<String>,
    sortpubdate: Option<String>,
    source: Option<String>,
    fulljournalname: Option<String>,
    /// Required: a paper without its author list is left out.
    authors: Vec<Author>,
    #[serde(default)]
    articleids: Option<Vec<ArticleId>>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Author {
    name: Option<String>,
}

#[derive(Deserialize)]
struct ArticleId {
    idtype: Option<String>,
    value: Option<String>,
}

impl Summary {
    fn to_paper(&self) -> Option<Paper> {
        let title = self.title.as_deref()?.trim();
        if title.is_empty() {
            return None;
        }
        let mut ids = PaperIds {
            pmid: Some(self.uid.clone()),
            ..PaperIds::default()
        };
        for id in self.articleids.iter().flatten() {
            let (Some(idtype), Some(value)) = (&id.idtype, &id.value) else {
                continue;
            };
            match idtype.as_str() {
                "doi" => ids.set_doi(value),
                "pmc" => ids.set_pmcid(value),
                _ => {}
            }
        }
        let open_access_url = ids
            .pmcid
            .as_ref()
            .map(|pmcid| format!("https://pmc.ncbi.nlm.nih.gov/articles/{pmcid}/"));
        let url = Paper::canonical_url(&ids, String::new);
        Some(Paper {
            title: title.to_string(),
            authors: self.authors.iter().filter_map(|a| a.name.clone()).collect(),
            venue: self
                .fulljournalname
                .clone()
                .or_else(|| self.source.clone())
                .filter(|v| !v.is_empty()),
            year: self.pubdate.as_deref().and_then(year_of),
            published_at: self.sortpubdate.as_deref().and_then(iso_date),
            r#abstract: None,
            citation_count: None,
            open_access_url,
            url,
            ids,
        })
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /entrez/eutils/esearch.fcgi?db=pubmed&term=malaria vaccine&retmode=json&retmax=2&sort=relevance`.
    Fixture {
        method: "GET",
        path: "/entrez/eutils/esearch.fcgi",
        status: 200,
        body: include_str!("fixtures/pubmed/esearch.json"),
    },
    // `GET /entrez/eutils/esummary.fcgi?db=pubmed&id=36038614,34310955&retmode=json`
    // (fields abridged).
    Fixture {
        method: "GET",
        path: "/entrez/eutils/esummary.fcgi",
        status: 200,
        body: include_str!("fixtures/pubmed/esummary.json"),
    },
];

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::providers::test_response;
    use crate::providers::testing::*;

    fn malaria() -> Request {
        request(
            "medical.literature_search",
            json!({"query": "malaria vaccine", "limit": 2}),
        )
    }

    #[test]
    fn contact_and_tool_come_from_the_user_agent() {
        assert_eq!(
            contact_email("polyrelay-test/0.1 (ops@example.com)"),
            Some("ops@example.com")
        );
        assert_eq!(contact_email("app/1 mailto:me@lab.org"), Some("me@lab.org"));
        assert_eq!(
            contact_email("app/1 (+https://x.org) <a.b+c@d.co.uk>"),
            Some("a.b+c@d.co.uk")
        );
        assert_eq!(
            contact_email("polyrelay/0.1 (+https://github.com/polyrelay/polyrelay)"),
            None
        );
        assert_eq!(contact_email("app/1 @handle x@y"), None);
        assert_eq!(tool_name("my-app/1.0 (ops@example.com)"), "my-app");
        assert_eq!(tool_name("(weird)"), "weird");
        assert_eq!(tool_name(""), "polyrelay");
    }

    #[test]
    fn esearch_request_is_exact_and_carries_no_key() {
        let req = PubMed.request(&malaria(), &ctx(&PubMed)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(
            req.url,
            "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esearch.fcgi"
        );
        assert_eq!(
            query(&req),
            [
                ("db", "pubmed"),
                ("term", "malaria vaccine"),
                ("retmode", "json"),
                ("retmax", "2"),
                ("sort", "relevance"),
                ("tool", "polyrelay-test"),
                ("email", "ops@example.com"),
            ]
        );
        assert!(req.headers.is_empty());
        assert_eq!(
            PubMed.info().auth,
            Auth::Key {
                env: "NCBI_API_KEY",
                placement: KeyPlacement::Query { param: "api_key" },
                optional: true
            }
        );

        let anonymous = CallContext {
            base_url: INFO.base_url,
            user_agent: "polyrelay/0.1 (+https://x)",
        };
        let req = PubMed.request(&malaria(), &anonymous).unwrap();
        assert!(query(&req).iter().all(|(k, _)| *k != "email"));
    }

    #[test]
    fn esearch_ids_become_the_esummary_request() {
        let body = fixture(&PubMed, "/entrez/eutils/esearch.fcgi");
        let step = PubMed
            .response(&malaria(), &ctx(&PubMed), test_response(200, &[], body))
            .unwrap();
        let Step::Next(next) = step else {
            panic!("expected esummary, got {step:?}")
        };
        assert_eq!(
            next.url,
            "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esummary.fcgi"
        );
        assert_eq!(
            query(&next),
            [
                ("db", "pubmed"),
                ("id", "36038614,34310955"),
                ("retmode", "json"),
                ("tool", "polyrelay-test"),
                ("email", "ops@example.com"),
            ]
        );
    }

    #[test]
    fn esummary_normalises_in_relevance_order() {
        let body = fixture(&PubMed, "/entrez/eutils/esummary.fcgi");
        let Data::LiteratureSearch(s) = answer(&PubMed, &malaria(), test_response(200, &[], body))
        else {
            panic!()
        };
        assert_eq!(
            (s.query.as_str(), s.total, s.results.len()),
            ("malaria vaccine", None, 2)
        );
        let r21 = &s.results[0];
        assert!(r21
            .title
            .starts_with("Efficacy and immunogenicity of R21/Matrix-M"));
        assert_eq!(r21.authors, ["Datoo MS", "Natama HM", "Somé A"]);
        assert_eq!(
            r21.venue.as_deref(),
            Some("The Lancet. Infectious diseases")
        );
        assert_eq!(
            (r21.year, r21.published_at.as_deref()),
            (Some(2022), Some("2022-09-01"))
        );
        assert_eq!(r21.ids.pmid.as_deref(), Some("36038614"));
        assert_eq!(
            r21.ids.doi.as_deref(),
            Some("10.1016/s1473-3099(22)00442-x")
        );
        assert_eq!(
            (r21.ids.pmcid.as_ref(), r21.open_access_url.as_ref()),
            (None, None)
        );
        assert_eq!(r21.url, "https://pubmed.ncbi.nlm.nih.gov/36038614/");
        let nejm = &s.results[1];
        assert_eq!(nejm.ids.pmcid.as_deref(), Some("PMC8390112"));
        assert_eq!(
            nejm.open_access_url.as_deref(),
            Some("https://pmc.ncbi.nlm.nih.gov/articles/PMC8390112/")
        );
        assert_eq!(nejm.year, Some(2021));
    }

    #[test]
    fn an_empty_search_answers_without_a_second_request() {
        let empty = r#"{"header":{"type":"esearch","version":"0.3"},"esearchresult":{"count":"0","retmax":"0","retstart":"0","idlist":[],"translationset":[],"querytranslation":"","errorlist":{"phrasesnotfound":["zzqxv"],"fieldsnotfound":[]}}}"#;
        let Data::LiteratureSearch(s) = answer(&PubMed, &malaria(), test_response(200, &[], empty))
        else {
            panic!()
        };
        assert_eq!((s.total, s.results.len()), (Some(0), 0));
    }

    #[test]
    fn error_signals_are_classified() {
        let cases = [
            (
                429,
                r#"{"error":"API rate limit exceeded","api-key":"203.0.113.7","count":"4","limit":"3"}"#,
                FailureClass::RateLimited,
            ),
            (
                200,
                r#"{"esearchresult":{"ERROR":"Invalid query: unmatched parenthesis"}}"#,
                FailureClass::InvalidRequest,
            ),
            (
                200,
                r#"{"error":"Search Backend failed: read timeout"}"#,
                FailureClass::Transient,
            ),
            (
                200,
                r#"{"esummaryresult":["Invalid uid 99999999999 at position=0"]}"#,
                FailureClass::Transient,
            ),
            (
                500,
                "<html>Internal Server Error</html>",
                FailureClass::Transient,
            ),
            (
                400,
                r#"{"error":"Invalid db name specified: pubmedx"}"#,
                FailureClass::InvalidRequest,
            ),
            (
                400,
                r#"{"error":"API key invalid","api-key":"0123","type":"invalid","status":"unknown"}"#,
                FailureClass::Auth,
            ),
        ];
        for (status, body, class) in cases {
            let f = failure(
                &PubMed,
                &malaria(),
                test_response(status, &[("retry-after", "1")], body),
            );
            assert_eq!((f.class, f.status), (class, Some(status)), "{body}");
        }
        let f = failure(
            &PubMed,
            &malaria(),
            test_response(429, &[("retry-after", "1")], cases[0].1),
        );
        assert_eq!(f.retry_after, Some(std::time::Duration::from_secs(1)));
        let bad_id = r#"{"esearchresult":{"count":"1","idlist":["1,2&db=x"]}}"#;
        let f = failure(&PubMed, &malaria(), test_response(200, &[], bad_id));
        assert_eq!(f.class, FailureClass::MalformedResponse);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        for path in [
            "/entrez/eutils/esearch.fcgi",
            "/entrez/eutils/esummary.fcgi",
        ] {
            assert_truncations_are_malformed(&PubMed, &malaria(), fixture(&PubMed, path));
        }
        let f = failure(&PubMed, &malaria(), test_response(200, &[], "{}"));
        assert_eq!(f.class, FailureClass::MalformedResponse);
        // Issue #13 tolerant readers: an unreadable summary now loses that
        // paper only; a reply without its `uids` list is still malformed.
        let bad = r#"{"result":{"uids":["1"],"1":{"uid":1}}}"#;
        let s = answer(&PubMed, &malaria(), test_response(200, &[], bad));
        let Data::LiteratureSearch(s) = s else {
            panic!("a literature search")
        };
        assert!(s.results.is_empty());
        let bad = r#"{"result":{"1":{"uid":"1","title":"T","authors":[]}}}"#;
        let f = failure(&PubMed, &malaria(), test_response(200, &[], bad));
        assert_eq!(f.class, FailureClass::MalformedResponse);
        assert!(f.message.contains("uids"), "{}", f.message);
    }
}
