//! `news.search`: news articles matching a query, newest or most relevant
//! first. Fields a provider does not send are `null`, so the answer has the
//! same keys whichever provider gave it; times are ISO-8601 UTC.

use serde::{Deserialize, Serialize};

use super::language::Language;
use super::params::Params;
use super::query;
use super::schema::{Alternatives, ParamTable};
use crate::echo::echo;
use crate::error::{FailureClass, ProviderFailure, Result};

/// Request of `news.search`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct NewsQuery {
    /// Search terms.
    pub query: String,
    /// Only articles in this language.
    pub language: Option<Language>,
    /// Most articles wanted (1 to 100; default 10).
    pub limit: u8,
}

impl NewsQuery {
    /// The parameters: `query`, `language`, `limit`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            query::text(500, "What to search for.", r#""climate""#).required(),
            query::language_param("language", "Only articles in this language."),
            query::limit(10, 100),
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

    /// Whether a provider that only has English articles can answer.
    pub fn wants_english_or_any(&self) -> bool {
        self.language.as_ref().is_none_or(Language::is_english)
    }
}

/// Where an article was published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewsSource {
    /// Publication name.
    pub name: Option<String>,
    /// Web domain (`bbc.co.uk`).
    pub domain: Option<String>,
    /// Country of the publication, as the provider names it.
    pub country: Option<String>,
}

/// One article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewsArticle {
    /// Headline.
    pub title: String,
    /// Link to the article.
    pub url: String,
    /// Publication (or first-seen) time, ISO-8601 UTC.
    pub published_at: Option<String>,
    /// The publication.
    pub source: NewsSource,
    /// Plain-text summary.
    pub summary: Option<String>,
    /// Picture.
    pub image_url: Option<String>,
    /// ISO 639-1 language code.
    pub language: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// Popularity score (Hacker News points).
    pub score: Option<f64>,
}

impl NewsArticle {
    /// An article with only its title and link; callers fill in the rest.
    pub fn new(title: String, url: String) -> Self {
        Self {
            title,
            url,
            published_at: None,
            source: NewsSource {
                name: None,
                domain: None,
                country: None,
            },
            summary: None,
            image_url: None,
            language: None,
            author: None,
            score: None,
        }
    }
}

/// The host of a URL without `www.`, as a source domain.
pub fn domain_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    Some(host.strip_prefix("www.").unwrap_or(host).to_string())
}

/// Answer of `news.search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewsResults {
    /// The query as asked.
    pub query: String,
    /// How many articles match in all, when the provider says.
    pub total: Option<u64>,
    /// The articles, at most the requested number.
    pub articles: Vec<NewsArticle>,
}

impl NewsResults {
    /// The answer for `query`, cut to its limit; no article at all is
    /// `NotFound`, so the next provider gets a chance.
    pub fn found(
        query: &NewsQuery,
        total: Option<u64>,
        mut articles: Vec<NewsArticle>,
    ) -> std::result::Result<Self, ProviderFailure> {
        if articles.is_empty() {
            return Err(ProviderFailure::new(
                FailureClass::NotFound,
                format!("no article matches {}", echo(&query.query)),
            ));
        }
        articles.truncate(usize::from(query.limit));
        Ok(Self {
            query: query.query.clone(),
            total,
            articles,
        })
    }
}
