//! `web.search`: web pages matching a query, with a direct answer when the
//! provider has one. Snippets are plain text (providers' HTML highlighting
//! is removed); fields a provider does not send are `null`.

use serde::{Deserialize, Serialize};

use super::language::Language;
use super::params::Params;
use super::query;
use super::schema::{Alternatives, ParamTable};
use crate::echo::echo;
use crate::error::{FailureClass, ProviderFailure, Result};

/// Request of `web.search`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct WebQuery {
    /// Search terms.
    pub query: String,
    /// Preferred language of the results.
    pub language: Option<Language>,
    /// Most results wanted (1 to 50; default 10).
    pub limit: u8,
}

impl WebQuery {
    /// The parameters: `query`, `language`, `limit`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            query::text(400, "What to search for.", r#""rust programming""#).required(),
            query::language_param("language", "Preferred language of the results."),
            query::limit(10, 50),
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `query`, and optional `language`, `limit`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let query = params.str("query")?;
        let language = query::language(&mut params, "language")?;
        let limit = params.u8("limit")?;
        params.finish()?;
        Ok(Self {
            query,
            language,
            limit,
        })
    }
}

/// A direct answer (an encyclopedia abstract, an instant answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebAnswer {
    /// The answer text.
    pub text: String,
    /// Where it comes from.
    pub source_url: Option<String>,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebResult {
    /// Page title.
    pub title: String,
    /// Page address.
    pub url: String,
    /// Plain-text excerpt.
    pub snippet: String,
    /// Relevance score, in the provider's own scale.
    pub score: Option<f64>,
    /// Publication or last-edit time, ISO-8601, when known.
    pub published_at: Option<String>,
    /// The engine that found it (SearXNG), when known.
    pub engine: Option<String>,
}

impl WebResult {
    /// A result with only title, link and snippet; callers fill in the rest.
    pub fn new(title: String, url: String, snippet: String) -> Self {
        Self {
            title,
            url,
            snippet,
            score: None,
            published_at: None,
            engine: None,
        }
    }
}

/// Answer of `web.search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebResults {
    /// The query as asked.
    pub query: String,
    /// A direct answer, when the provider has one.
    pub answer: Option<WebAnswer>,
    /// The results, at most the requested number.
    pub results: Vec<WebResult>,
}

impl WebResults {
    /// The answer for `query`, cut to its limit; neither a result nor an
    /// answer is `NotFound`, so the next provider gets a chance.
    pub fn found(
        query: &WebQuery,
        answer: Option<WebAnswer>,
        mut results: Vec<WebResult>,
    ) -> std::result::Result<Self, ProviderFailure> {
        if results.is_empty() && answer.is_none() {
            return Err(ProviderFailure::new(
                FailureClass::NotFound,
                format!("nothing matches {}", echo(&query.query)),
            ));
        }
        results.truncate(usize::from(query.limit));
        Ok(Self {
            query: query.query.clone(),
            answer,
            results,
        })
    }
}
