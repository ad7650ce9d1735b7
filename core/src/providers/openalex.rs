//! OpenAlex: `medical.literature_search` over the open scholarly graph.
//!
//! Keyless, 100,000 requests a day. Requests carrying a `mailto` go to the
//! faster "polite pool"; it is taken from the client-wide contact. `select`
//! trims each work to the fields normalised here. Abstracts come as an
//! inverted index (word → positions) and are rebuilt. Over the limit:
//! 429; bad parameters: 400 `{"error":…,"message":…}`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::clip;
use super::pubmed::contact_email;
use crate::capability::medical::{Paper, PaperIds, PaperSearch};
use crate::capability::normalize::{iso_date, non_empty};
use crate::capability::{marker, media, medical};
use crate::error::ProviderFailure;
use crate::provider::{
    Auth, CallContext, Fixture, HttpRequest, HttpResponse, Provider, ProviderInfo, Quota, Serves,
    Step,
};

/// OpenAlex (<https://docs.openalex.org>): 250 million scholarly works with
/// citations, open-access links and identifiers; CC0.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAlex;

static INFO: ProviderInfo = ProviderInfo {
    id: "openalex",
    name: "OpenAlex",
    auth: Auth::Keyless,
    base_url: "https://api.openalex.org",
    docs_url: "https://docs.openalex.org/how-to-use-the-api/api-overview",
    terms: "Keyless, CC0 data, 100,000 requests/day. Without a contact e-mail (mailto) \
            requests share the slower common pool: set the client's contact.",
    commercial_use: true,
    default_rate_limit: Some("1/s"),
    default_quota: Some(Quota::per_day(100_000)),
};

const SELECT: &str = "id,doi,display_name,publication_year,publication_date,ids,authorships,\
                      primary_location,open_access,cited_by_count,abstract_inverted_index";

impl Provider for OpenAlex {
    fn info(&self) -> &ProviderInfo {
        &INFO
    }

    fn fixtures(&self) -> &'static [Fixture] {
        FIXTURES
    }
}

crate::serves!(OpenAlex: LiteratureSearch);

impl Serves<marker::LiteratureSearch> for OpenAlex {
    fn build_request(
        &self,
        q: &media::TextQuery,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        let req = HttpRequest::get(ctx.base_url, "/works")
            .query("search", q.query.as_str())
            .query("per-page", q.limit.to_string())
            .query("select", SELECT);
        Ok(match contact_email(ctx.user_agent) {
            Some(email) => req.query("mailto", email),
            None => req,
        })
    }

    fn read_response(
        &self,
        q: &media::TextQuery,
        _ctx: &CallContext<'_>,
        response: HttpResponse,
    ) -> Result<Step<medical::PaperSearch>, ProviderFailure> {
        response.check_status().map_err(|mut failure| {
            if let Ok(e) = serde_json::from_slice::<ErrorReply>(&response.body) {
                failure.message = format!("OpenAlex: {}", clip(&e.message.unwrap_or(e.error)));
            }
            failure
        })?;
        let reply: Reply = response.json()?;
        let results = reply
            .results
            .into_iter()
            .take(usize::from(q.limit))
            .filter_map(Work::into_paper)
            .collect();
        Ok(Step::Done(PaperSearch {
            query: q.query.clone(),
            total: reply.meta.count,
            results,
        }))
    }
}

/// The text of an inverted-index abstract: every word at its positions.
/// An entry that is not a list (a field OpenAlex might add) is no word; a
/// position that cannot be read would leave a hole, so there is no
/// abstract rather than a garbled one.
fn rebuild_abstract(index: &HashMap<String, Value>) -> Option<String> {
    let mut words: Vec<(u64, &str)> = Vec::new();
    for (word, positions) in index {
        let Some(positions) = positions.as_array() else {
            continue;
        };
        for p in positions {
            let p = p.as_u64().or_else(|| p.as_str()?.trim().parse().ok())?;
            words.push((p, word));
        }
    }
    words.sort_unstable();
    let text = words.iter().map(|(_, w)| *w).collect::<Vec<_>>().join(" ");
    (!text.trim().is_empty()).then_some(text)
}

/// The last path segment of an OpenAlex id URL (`…/W2741809807`,
/// `https://pubmed.ncbi.nlm.nih.gov/32939066`).
fn last_segment(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

#[derive(Deserialize)]
struct ErrorReply {
    error: String,
    message: Option<String>,
}

#[derive(Deserialize)]
struct Reply {
    meta: Meta,
    results: Vec<Work>,
}

#[derive(Deserialize)]
struct Meta {
    count: Option<u64>,
}

#[derive(Deserialize)]
struct Work {
    id: String,
    doi: Option<String>,
    display_name: Option<String>,
    publication_year: Option<u16>,
    publication_date: Option<String>,
    #[serde(default)]
    ids: WorkIds,
    #[serde(default)]
    authorships: Vec<Authorship>,
    primary_location: Option<Location>,
    open_access: Option<OpenAccess>,
    cited_by_count: Option<u64>,
    abstract_inverted_index: Option<HashMap<String, Value>>,
}

#[derive(Deserialize, Default)]
struct WorkIds {
    pmid: Option<String>,
    pmcid: Option<String>,
}

#[derive(Deserialize)]
struct Authorship {
    author: AuthorRef,
}

#[derive(Deserialize)]
struct AuthorRef {
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    source: Option<Source>,
    landing_page_url: Option<String>,
}

#[derive(Deserialize)]
struct Source {
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct OpenAccess {
    oa_url: Option<String>,
}

impl Work {
    fn into_paper(self) -> Option<Paper> {
        let title = non_empty(self.display_name)?;
        let mut ids = PaperIds {
            openalex: Some(last_segment(&self.id).to_string()),
            pmid: self
                .ids
                .pmid
                .as_deref()
                .map(|p| last_segment(p).to_string()),
            ..PaperIds::default()
        };
        if let Some(doi) = &self.doi {
            ids.set_doi(doi);
        }
        if let Some(pmcid) = &self.ids.pmcid {
            ids.set_pmcid(last_segment(pmcid));
        }
        let (venue, landing) = match self.primary_location {
            Some(location) => (
                location.source.and_then(|s| s.display_name),
                location.landing_page_url,
            ),
            None => (None, None),
        };
        let id = self.id;
        let url = Paper::canonical_url(&ids, || landing.unwrap_or(id));
        Some(Paper {
            title,
            authors: self
                .authorships
                .into_iter()
                .filter_map(|a| a.author.display_name)
                .collect(),
            venue,
            year: self.publication_year,
            published_at: self.publication_date.as_deref().and_then(iso_date),
            r#abstract: self
                .abstract_inverted_index
                .as_ref()
                .and_then(rebuild_abstract),
            citation_count: self.cited_by_count,
            open_access_url: self.open_access.and_then(|o| o.oa_url),
            url,
            ids,
        })
    }
}

static FIXTURES: &[Fixture] = fixtures![
    // `GET /works?search=malaria vaccine&per-page=2&select=…&mailto=…`.
    Fixture {
        method: "GET",
        path: "/works",
        status: 200,
        body: include_str!("fixtures/openalex/works.json"),
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

    fn malaria() -> Request {
        request(
            "medical.literature_search",
            json!({"query": "malaria vaccine", "limit": 2}),
        )
    }

    #[test]
    fn request_is_exact_with_the_polite_pool_contact() {
        let req = OpenAlex.request(&malaria(), &ctx(&OpenAlex)).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.url, "https://api.openalex.org/works");
        assert_eq!(
            query(&req),
            [
                ("search", "malaria vaccine"),
                ("per-page", "2"),
                ("select", SELECT),
                ("mailto", "ops@example.com")
            ]
        );
        assert!(req.headers.is_empty());
        let anonymous = CallContext {
            base_url: INFO.base_url,
            user_agent: "polyrelay/0.1",
        };
        let req = OpenAlex.request(&malaria(), &anonymous).unwrap();
        assert_eq!(req.query.len(), 3);
    }

    #[test]
    fn fixture_normalises() {
        let body = fixture(&OpenAlex, "/works");
        let Data::LiteratureSearch(s) =
            answer(&OpenAlex, &malaria(), test_response(200, &[], body))
        else {
            panic!()
        };
        assert_eq!((s.total, s.results.len()), (Some(48213), 2));
        let nejm = &s.results[0];
        assert_eq!(nejm.title, "Malaria Vaccines: A New Era");
        assert_eq!(nejm.ids.openalex.as_deref(), Some("W3185264539"));
        assert_eq!(nejm.ids.pmid.as_deref(), Some("34310955"));
        assert_eq!(nejm.ids.pmcid.as_deref(), Some("PMC8390112"));
        assert_eq!(nejm.ids.doi.as_deref(), Some("10.1056/nejme2110397"));
        assert_eq!(nejm.authors, ["Pedro L. Alonso"]);
        assert_eq!(
            nejm.venue.as_deref(),
            Some("New England Journal of Medicine")
        );
        assert_eq!(
            (nejm.year, nejm.published_at.as_deref()),
            (Some(2021), Some("2021-07-26"))
        );
        assert_eq!(
            (nejm.citation_count, nejm.r#abstract.as_ref()),
            (Some(19), None)
        );
        assert_eq!(
            nejm.open_access_url.as_deref(),
            Some("https://www.nejm.org/doi/pdf/10.1056/NEJMe2110397")
        );
        assert_eq!(nejm.url, "https://pubmed.ncbi.nlm.nih.gov/34310955/");

        let old = &s.results[1];
        assert_eq!(
            old.r#abstract.as_deref(),
            Some("Malaria vaccines remain elusive; new candidate vaccines are reviewed.")
        );
        assert_eq!((old.venue.as_ref(), old.ids.doi.as_ref()), (None, None));
        assert_eq!(old.url, "https://example.org/landing/2100837269");
    }

    #[test]
    fn error_signals_are_classified() {
        let f = failure(
            &OpenAlex,
            &malaria(),
            test_response(
                400,
                &[],
                r#"{"error":"Invalid query parameters error.","message":"per-page is not a valid parameter"}"#,
            ),
        );
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(f.message, "OpenAlex: per-page is not a valid parameter");
        let f = failure(
            &OpenAlex,
            &malaria(),
            test_response(429, &[("retry-after", "1")], ""),
        );
        assert_eq!(
            (f.class, f.retry_after),
            (
                FailureClass::RateLimited,
                Some(std::time::Duration::from_secs(1))
            )
        );
        let f = failure(&OpenAlex, &malaria(), test_response(503, &[], ""));
        assert_eq!(f.class, FailureClass::Transient);
    }

    #[test]
    fn malformed_bodies_never_panic() {
        let body = fixture(&OpenAlex, "/works");
        assert_truncations_are_malformed(&OpenAlex, &malaria(), body);
        // An unreadable position costs the abstract, not the reply.
        let bad = body.replace("\"Malaria\":[0]", "\"Malaria\":[-1]");
        let Data::LiteratureSearch(s) =
            answer(&OpenAlex, &malaria(), test_response(200, &[], &bad))
        else {
            panic!("wrong data")
        };
        assert_eq!(
            (s.results.len(), s.results[1].r#abstract.as_deref()),
            (2, None)
        );
    }
}
