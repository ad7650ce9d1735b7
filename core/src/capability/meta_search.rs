//! Merging the result lists of several search engines into one, as a
//! meta-search engine does: the same page found by two engines is one
//! result naming both, and results are ranked by reciprocal-rank fusion.
//!
//! Two addresses are the same page when they differ only in what does not
//! change the page: the scheme (`http`/`https`), the case of the host, a
//! leading `www.`, a default port, a trailing slash, a fragment, tracking
//! parameters (`utm_*`, `gclid`, `fbclid`, ...) and the order of the other
//! query parameters. [`normalize_url`] gives the key two such addresses
//! share.
//!
//! Reciprocal-rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009) scores
//! a result by `Σ weight / (k + rank)` over the engines that returned it,
//! rank counted from 1. It needs no comparable scores across engines (they
//! have none), rewards agreement between engines, and with `k = 60` a
//! result found by two engines at rank 10 outranks one found by a single
//! engine at rank 1.
//!
//! ```
//! use polyrelay::capability::meta_search::normalize_url;
//! assert_eq!(
//!     normalize_url("HTTPS://www.Example.com:443/docs/?utm_source=x&b=2&a=1#intro"),
//!     normalize_url("http://example.com/docs?a=1&b=2"),
//! );
//! ```
//!
//! The capabilities `search.meta` ([`MetaQuery`], [`MetaResults`]) and
//! `news.meta` ([`NewsMetaResults`]) ask every available `web.search` (or
//! `news.search`) provider at once and merge their answers this way; the
//! engine's part is in `crate::meta_search`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use url::Url;

use super::language::Language;
use super::news::{NewsArticle, NewsQuery};
use super::params::Params;
use super::query;
use super::schema::{Alternatives, Param, ParamKind, ParamTable};
use super::search::{WebAnswer, WebResult};
use crate::error::Result;

/// Request of `search.meta` and `news.meta`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct MetaQuery {
    /// Search terms.
    pub query: String,
    /// Preferred language of the results.
    pub language: Option<Language>,
    /// Most merged results wanted (1 to 50; default 10).
    pub limit: u8,
    /// The engines (`web.search` or `news.search` providers) to ask; every
    /// configured one when absent.
    pub engines: Option<Vec<String>>,
}

impl MetaQuery {
    /// The parameters: `query`, `language`, `limit`, `engines`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            query::text(400, "What to search for.", r#""rust programming""#).required(),
            query::language_param("language", "Preferred language of the results."),
            query::limit(10, 50),
            Param::new(
                "engines",
                ParamKind::StringList,
                "The providers to ask (default: every configured one).",
                r#"["brave", "searxng"]"#,
            ),
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `query`, and optional `language`, `limit`,
    /// `engines`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let query = params.str("query")?;
        let language = query::language(&mut params, "language")?;
        let limit = params.u8("limit")?;
        let engines = params.opt_str_list("engines")?.map(|mut names| {
            names.sort();
            names.dedup();
            names
        });
        params.finish()?;
        Ok(Self {
            query,
            language,
            limit,
            engines,
        })
    }

    /// What each web engine is asked: the same search, as many results as
    /// the merged list may keep.
    pub(crate) fn web_query(&self) -> super::search::WebQuery {
        super::search::WebQuery {
            query: self.query.clone(),
            language: self.language.clone(),
            limit: self.limit,
        }
    }

    /// What each news engine is asked.
    pub(crate) fn news_query(&self) -> NewsQuery {
        NewsQuery {
            query: self.query.clone(),
            language: self.language.clone(),
            limit: self.limit,
        }
    }
}

/// One merged result of `search.meta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaResult {
    /// Page title.
    pub title: String,
    /// Page address, cleaned of tracking parameters and fragment.
    pub url: String,
    /// Plain-text excerpt.
    pub snippet: String,
    /// Publication or last-edit time, ISO-8601, when an engine knew it.
    pub published_at: Option<String>,
    /// The engines that returned it.
    pub engines: Vec<String>,
    /// Its reciprocal-rank fusion score (higher is better).
    pub score: f64,
}

/// Answer of `search.meta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaResults {
    /// The query as asked.
    pub query: String,
    /// A direct answer, from the first engine (in configured order) that
    /// had one.
    pub answer: Option<WebAnswer>,
    /// The merged results, best first, at most the requested number.
    pub results: Vec<MetaResult>,
    /// The engines whose results were merged.
    pub answered: Vec<String>,
    /// The engines asked (or skipped) without results: the trail says why.
    pub missing: Vec<String>,
}

/// One merged article of `news.meta`: the article as the best-ranked engine
/// returned it (its `score` now the reciprocal-rank fusion score), and the
/// engines that returned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaArticle {
    /// The article, its missing fields filled in from other engines' copies.
    #[serde(flatten)]
    pub article: NewsArticle,
    /// The engines that returned it.
    pub engines: Vec<String>,
}

/// Answer of `news.meta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewsMetaResults {
    /// The query as asked.
    pub query: String,
    /// The merged articles, best first, at most the requested number.
    pub articles: Vec<MetaArticle>,
    /// The engines whose articles were merged.
    pub answered: Vec<String>,
    /// The engines asked (or skipped) without results: the trail says why.
    pub missing: Vec<String>,
}

impl Mergeable for NewsArticle {
    fn url(&self) -> &str {
        &self.url
    }

    fn set_url(&mut self, url: String) {
        self.url = url;
    }

    fn fill_from(&mut self, other: &Self) {
        let fill = |mine: &mut Option<String>, theirs: &Option<String>| {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        };
        fill(&mut self.published_at, &other.published_at);
        fill(&mut self.summary, &other.summary);
        fill(&mut self.image_url, &other.image_url);
        fill(&mut self.language, &other.language);
        fill(&mut self.author, &other.author);
        fill(&mut self.source.name, &other.source.name);
        fill(&mut self.source.domain, &other.source.domain);
        fill(&mut self.source.country, &other.source.country);
    }
}

impl From<Fused<NewsArticle>> for MetaArticle {
    fn from(fused: Fused<NewsArticle>) -> Self {
        let mut article = fused.item;
        article.score = Some(fused.score);
        Self {
            article,
            engines: fused.engines.into_iter().map(str::to_owned).collect(),
        }
    }
}

impl Mergeable for WebResult {
    fn url(&self) -> &str {
        &self.url
    }

    fn set_url(&mut self, url: String) {
        self.url = url;
    }

    fn fill_from(&mut self, other: &Self) {
        if self.title.trim().is_empty() {
            self.title.clone_from(&other.title);
        }
        if self.snippet.trim().is_empty() {
            self.snippet.clone_from(&other.snippet);
        }
        if self.published_at.is_none() {
            self.published_at.clone_from(&other.published_at);
        }
    }
}

impl From<Fused<WebResult>> for MetaResult {
    fn from(fused: Fused<WebResult>) -> Self {
        Self {
            title: fused.item.title,
            url: fused.item.url,
            snippet: fused.item.snippet,
            published_at: fused.item.published_at,
            engines: fused.engines.into_iter().map(str::to_owned).collect(),
            score: fused.score,
        }
    }
}

/// The usual constant of reciprocal-rank fusion.
pub const DEFAULT_RRF_K: f64 = 60.0;

/// Query parameters that only track where a visitor came from.
const TRACKING_PARAMS: &[&str] = &[
    "_ga", "_gl", "dclid", "fbclid", "gbraid", "gclid", "gclsrc", "igshid", "mc_cid", "mc_eid",
    "msclkid", "ref_src", "twclid", "wbraid", "yclid", "zanpid",
];

fn is_tracking(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("utm_") || TRACKING_PARAMS.contains(&name.as_str())
}

/// The address `raw` without what only tracks the visitor: tracking
/// parameters and the fragment. Everything else (scheme, `www.`, path,
/// parameter order) is kept: this is an address to show and follow.
///
/// Returns `None` for text that is not an absolute `http` or `https`
/// address.
pub fn clean_url(raw: &str) -> Option<Url> {
    let mut url = Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_fragment(None);
    if url.query_pairs().any(|(name, _)| is_tracking(&name)) {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| !is_tracking(name))
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    } else if url.query() == Some("") {
        url.set_query(None);
    }
    Some(url)
}

/// The key under which two addresses of the same page meet: the cleaned
/// address ([`clean_url`]) without its scheme, its host without `www.`,
/// its path without a trailing slash, its parameters sorted. Text that is
/// not an `http(s)` address is its own key (trimmed).
pub fn normalize_url(raw: &str) -> String {
    let Some(url) = clean_url(raw) else {
        return raw.trim().to_owned();
    };
    let host = url.host_str().unwrap_or_default();
    let host = host.strip_prefix("www.").unwrap_or(host);
    let mut key = String::with_capacity(raw.len());
    key.push_str(host);
    if let Some(port) = url.port() {
        key.push(':');
        key.push_str(&port.to_string());
    }
    key.push_str(url.path().trim_end_matches('/'));
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    if !params.is_empty() {
        params.sort();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        key.push('?');
        key.push_str(&query);
    }
    key
}

/// A search result that fusion can merge.
pub trait Mergeable: Clone {
    /// The page's address.
    fn url(&self) -> &str;
    /// Sets the address shown for the merged result.
    fn set_url(&mut self, url: String);
    /// Fills fields this result lacks from `other`, a lower-ranked copy of
    /// the same page.
    fn fill_from(&mut self, other: &Self);
}

/// One engine's results, best first.
#[derive(Debug, Clone, Copy)]
pub struct RankedList<'a, T> {
    /// The engine's name, listed on every result it returned.
    pub engine: &'static str,
    /// Its weight in the fusion (1 unless configured).
    pub weight: f64,
    /// Its results, best first.
    pub results: &'a [T],
}

/// A merged result.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused<T> {
    /// The result as the best-ranked engine returned it, with its address
    /// cleaned and its missing fields filled in from the other engines'.
    pub item: T,
    /// The engines that returned it, in the order of the lists given.
    pub engines: Vec<&'static str>,
    /// Its reciprocal-rank fusion score.
    pub score: f64,
}

/// Merges `lists` into one ranking: duplicates (by [`normalize_url`]) become
/// one result listing every engine that found it, ordered by
/// reciprocal-rank fusion with constant `k`. Ties keep the better best rank,
/// then the order of `lists`. An engine repeating a page counts it once, at
/// its first rank.
pub fn fuse<T: Mergeable>(lists: &[RankedList<'_, T>], k: f64) -> Vec<Fused<T>> {
    struct Entry<T> {
        fused: Fused<T>,
        best_rank: usize,
        https: bool,
        /// Which list, then which position, first found it.
        first_seen: (usize, usize),
    }
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut entries: Vec<Entry<T>> = Vec::new();
    for (list_index, list) in lists.iter().enumerate() {
        for (position, result) in list.results.iter().enumerate() {
            let rank = position + 1;
            let key = normalize_url(result.url());
            let gain = list.weight / (k + rank as f64);
            let https = result.url().trim_start().starts_with("https:");
            match by_key.get(&key) {
                Some(&i) => {
                    let entry = &mut entries[i];
                    if entry.fused.engines.contains(&list.engine) {
                        continue;
                    }
                    entry.fused.engines.push(list.engine);
                    entry.fused.score += gain;
                    if rank < entry.best_rank {
                        // The better-ranked copy leads; the other fills in.
                        let mut better = result.clone();
                        better.fill_from(&entry.fused.item);
                        entry.fused.item = better;
                        entry.best_rank = rank;
                    } else {
                        entry.fused.item.fill_from(result);
                    }
                    entry.https |= https;
                }
                None => {
                    by_key.insert(key, entries.len());
                    entries.push(Entry {
                        fused: Fused {
                            item: result.clone(),
                            engines: vec![list.engine],
                            score: gain,
                        },
                        best_rank: rank,
                        https,
                        first_seen: (list_index, position),
                    });
                }
            }
        }
    }
    entries.sort_by(|a, b| {
        b.fused
            .score
            .total_cmp(&a.fused.score)
            .then(a.best_rank.cmp(&b.best_rank))
            .then(a.first_seen.cmp(&b.first_seen))
    });
    entries
        .into_iter()
        .map(|mut entry| {
            if let Some(mut url) = clean_url(entry.fused.item.url()) {
                // Any engine's https address of the page beats an http one.
                if entry.https && url.scheme() == "http" {
                    let _ = url.set_scheme("https");
                }
                entry.fused.item.set_url(url.into());
            }
            entry.fused
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Hit {
        url: String,
        snippet: String,
    }

    impl Mergeable for Hit {
        fn url(&self) -> &str {
            &self.url
        }
        fn set_url(&mut self, url: String) {
            self.url = url;
        }
        fn fill_from(&mut self, other: &Self) {
            if self.snippet.is_empty() {
                self.snippet.clone_from(&other.snippet);
            }
        }
    }

    fn hits(urls: &[&str]) -> Vec<Hit> {
        urls.iter()
            .map(|u| Hit {
                url: (*u).to_owned(),
                snippet: format!("about {u}"),
            })
            .collect()
    }

    fn list<'a>(engine: &'static str, results: &'a [Hit]) -> RankedList<'a, Hit> {
        RankedList {
            engine,
            weight: 1.0,
            results,
        }
    }

    #[test]
    fn addresses_of_one_page_share_a_key() {
        let same = [
            "https://example.com/docs",
            "http://example.com/docs",
            "https://www.example.com/docs/",
            "HTTPS://EXAMPLE.COM:443/docs#section-2",
            "https://example.com/docs?utm_source=news&utm_medium=email",
            "https://example.com/docs?fbclid=abc&gclid=def&_ga=1",
            "  https://example.com/docs  ",
        ];
        for url in same {
            assert_eq!(normalize_url(url), "example.com/docs", "{url}");
        }
        assert_eq!(
            normalize_url("https://example.com/a?b=2&a=1&utm_campaign=x"),
            normalize_url("https://example.com/a?a=1&b=2")
        );
        assert_eq!(normalize_url("https://www.example.com/"), "example.com");
    }

    #[test]
    fn addresses_of_different_pages_keep_different_keys() {
        let different = [
            "https://example.com/docs",
            "https://example.com/Docs",
            "https://example.com/docs?page=2",
            "https://docs.example.com/docs",
            "https://example.com:8443/docs",
            "https://example.org/docs",
            "https://wwwexample.com/docs",
        ];
        let keys: std::collections::HashSet<_> =
            different.iter().map(|u| normalize_url(u)).collect();
        assert_eq!(keys.len(), different.len(), "{keys:?}");
    }

    #[test]
    fn text_that_is_not_a_web_address_is_its_own_key() {
        assert_eq!(normalize_url(" not a url "), "not a url");
        assert_eq!(normalize_url("ftp://example.com/x"), "ftp://example.com/x");
        assert_eq!(clean_url("mailto:someone@example.com"), None);
    }

    #[test]
    fn cleaning_keeps_the_scheme_and_host_and_drops_tracking() {
        let url = clean_url("http://www.example.com/a/?utm_source=x&z=1&q=rust#top").unwrap();
        assert_eq!(url.as_str(), "http://www.example.com/a/?z=1&q=rust");
        let url = clean_url("https://example.com/b?utm_medium=mail").unwrap();
        assert_eq!(url.as_str(), "https://example.com/b");
    }

    #[test]
    fn fusion_merges_duplicates_and_rewards_agreement() {
        let a = hits(&[
            "https://one.example/",
            "https://two.example/page",
            "https://three.example/",
        ]);
        let b = hits(&[
            "http://www.two.example/page/?utm_source=b",
            "https://four.example/",
        ]);
        let fused = fuse(&[list("alpha", &a), list("beta", &b)], DEFAULT_RRF_K);
        let urls: Vec<_> = fused.iter().map(|f| f.item.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                // beta's copy leads (its rank 1), on alpha's https.
                "https://www.two.example/page/",
                "https://one.example/",
                "https://four.example/",
                "https://three.example/",
            ]
        );
        assert_eq!(fused[0].engines, ["alpha", "beta"]);
        let expected = 1.0 / 62.0 + 1.0 / 61.0;
        assert!((fused[0].score - expected).abs() < 1e-12);
        // one (alpha #1) and four (beta #2): 1/61 > 1/62.
        assert_eq!(fused[1].engines, ["alpha"]);
    }

    #[test]
    fn two_engines_at_rank_ten_outrank_one_engine_at_rank_one() {
        let mut a = hits(&["https://solo.example/"]);
        let mut b = Vec::new();
        for i in 0..9 {
            a.push(Hit {
                url: format!("https://a{i}.example/"),
                snippet: String::new(),
            });
            b.push(Hit {
                url: format!("https://b{i}.example/"),
                snippet: String::new(),
            });
        }
        a.push(hits(&["https://shared.example/"])[0].clone());
        b.push(hits(&["https://shared.example/"])[0].clone());
        let fused = fuse(&[list("a", &a), list("b", &b)], DEFAULT_RRF_K);
        assert_eq!(fused[0].item.url, "https://shared.example/");
        assert_eq!(fused[1].item.url, "https://solo.example/");
    }

    #[test]
    fn weights_scale_an_engines_votes() {
        let a = hits(&["https://a.example/"]);
        let b = hits(&["https://b.example/"]);
        let mut lists = [list("a", &a), list("b", &b)];
        assert_eq!(
            fuse(&lists, DEFAULT_RRF_K)[0].item.url,
            "https://a.example/"
        );
        lists[1].weight = 2.0;
        assert_eq!(
            fuse(&lists, DEFAULT_RRF_K)[0].item.url,
            "https://b.example/"
        );
    }

    #[test]
    fn the_best_ranked_copy_leads_and_the_others_fill_in() {
        let a = vec![
            hits(&["https://x.example/"])[0].clone(),
            Hit {
                url: "https://page.example/".into(),
                snippet: String::new(),
            },
        ];
        let b = vec![Hit {
            url: "http://page.example".into(),
            snippet: "from b".into(),
        }];
        let fused = fuse(&[list("a", &a), list("b", &b)], DEFAULT_RRF_K);
        let page = fused.iter().find(|f| f.item.url.contains("page")).unwrap();
        // b ranked it first: its copy leads, and an https address from a wins.
        assert_eq!(page.item.snippet, "from b");
        assert_eq!(page.item.url, "https://page.example/");
        // (b's "http://page.example" parses with the root path "/".)
        assert_eq!(page.engines, ["a", "b"]);
    }

    #[test]
    fn an_engine_repeating_a_page_counts_once() {
        let a = hits(&["https://dup.example/", "https://dup.example/#again"]);
        let fused = fuse(&[list("a", &a)], DEFAULT_RRF_K);
        assert_eq!(fused.len(), 1);
        assert_eq!(fused[0].engines, ["a"]);
        assert!((fused[0].score - 1.0 / 61.0).abs() < 1e-12);
    }

    #[test]
    fn ties_keep_the_engines_order() {
        let a = hits(&["https://a.example/"]);
        let b = hits(&["https://b.example/"]);
        let fused = fuse(&[list("a", &a), list("b", &b)], DEFAULT_RRF_K);
        assert_eq!(fused[0].item.url, "https://a.example/");
        assert!(fuse::<Hit>(&[], DEFAULT_RRF_K).is_empty());
    }
}
