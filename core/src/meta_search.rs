//! `search.meta` and `news.meta`: every available engine of `web.search`
//! (or `news.search`) asked at once under the composed capability's one
//! deadline, their answers merged ([`crate::capability::meta_search`]).
//!
//! Each engine is asked through the normal pipeline (its quota, limiter,
//! breaker, retries and second chance), alone: a walk of its capability's
//! chain with every other engine excluded. An engine that cannot be asked
//! now (no key, benched, breaker open) is not asked, as a meta-search
//! engine suspends a failing engine, and the answer is whatever the others
//! found. The trail holds every engine's entry, so a partial answer says
//! which engines are missing and why. Only when no engine answers does the
//! call fail.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;

use crate::answer::Answer;
use crate::capability::meta_search::{
    fuse, Fused, Mergeable, MetaQuery, MetaResults, NewsMetaResults, RankedList, DEFAULT_RRF_K,
};
use crate::capability::{CapabilityId, Data, Request};
use crate::engine::{Engine, Plain, WalkScope};
use crate::error::{Attempt, AttemptOutcome, Error, FailureClass};

/// What a composed call's engines answered.
struct Answers {
    /// The answering engines, their weights in the merge and their
    /// answers, in chain order.
    answers: Vec<(&'static str, f64, Arc<Answer>)>,
    /// Every engine's trail entries.
    attempts: Vec<Attempt>,
    /// The engines without an answer.
    missing: Vec<String>,
    /// The newest answer's time.
    fetched_at: Option<DateTime<Utc>>,
}

impl Engine {
    /// `search.meta` or `news.meta`: asks the engines, merges their answers.
    pub(crate) async fn meta_search(
        &self,
        request: &Request,
    ) -> Result<(Arc<Answer>, Vec<Attempt>), Error> {
        let (query, part) = match request {
            Request::MetaSearch(q) => (q, Request::WebSearch(q.web_query())),
            Request::NewsMeta(q) => (q, Request::NewsSearch(q.news_query())),
            _ => unreachable_composed(request)?,
        };
        let capability = request.capability();
        let found = self.ask_engines(capability, query, &part).await?;
        let limit = usize::from(query.limit);
        let answered = found
            .answers
            .iter()
            .map(|(e, ..)| (*e).to_owned())
            .collect();
        let data = match capability {
            CapabilityId::NewsMeta => Data::NewsMeta(NewsMetaResults {
                query: query.query.clone(),
                articles: merge(&found, limit, |data| match data {
                    Data::NewsSearch(news) => Some(&news.articles),
                    _ => None,
                }),
                answered,
                missing: found.missing,
            }),
            _ => Data::MetaSearch(MetaResults {
                query: query.query.clone(),
                // The first engine (in chain order) with a direct answer.
                answer: found.answers.iter().find_map(|(.., a)| match &a.data {
                    Data::WebSearch(web) => web.answer.clone(),
                    _ => None,
                }),
                results: merge(&found, limit, |data| match data {
                    Data::WebSearch(web) => Some(&web.results),
                    _ => None,
                }),
                answered,
                missing: found.missing,
            }),
        };
        let answer = Answer {
            data,
            provider: META_PROVIDER,
            fetched_at: found.fetched_at.unwrap_or_else(|| self.clock.wall()),
        };
        Ok((Arc::new(answer), found.attempts))
    }

    /// Asks `part` of every engine of `capability` (those `query` names, or
    /// all) at once; fails when none answers.
    async fn ask_engines(
        &self,
        capability: CapabilityId,
        query: &MetaQuery,
        part: &Request,
    ) -> Result<Answers, Error> {
        let parts = part.capability();
        let chain = self.chain(parts);
        if let Some(wanted) = &query.engines {
            if let Some(unknown) = wanted
                .iter()
                .find(|name| !chain.slots.iter().any(|s| s.name() == name.as_str()))
            {
                let known: Vec<&str> = chain.slots.iter().map(|s| s.name()).collect();
                return Err(Error::invalid(
                    "engines",
                    format!(
                        "must be {} providers of this client ({}), got {}",
                        parts.as_str(),
                        known.join(", "),
                        crate::echo::echo(unknown)
                    ),
                ));
            }
        }
        let now = self.clock.now();
        let mut attempts = Vec::new();
        let mut asked = Vec::new();
        let wanted = |name: &str| {
            query
                .engines
                .as_ref()
                .is_none_or(|wanted| wanted.iter().any(|w| w == name))
        };
        for slot in chain.slots.iter().filter(|slot| wanted(slot.name())) {
            match slot.unavailable(parts, now) {
                Some((reason, text, retry_after)) => attempts.push(Attempt {
                    provider: slot.id(),
                    deployment: slot.deployment_name(),
                    outcome: AttemptOutcome::Skipped(reason),
                    status: None,
                    tries: 0,
                    elapsed: Duration::ZERO,
                    upstream: std::time::Duration::ZERO,
                    reason: Cow::Owned(format!("skipped: {text}")),
                    retry_after,
                    hedged: false,
                    cost_usd: None,
                }),
                None => asked.push(slot),
            }
        }
        let all: Vec<&str> = chain.slots.iter().map(|s| s.name()).collect();
        // The composed capability's own deadline bounds the whole merge: an
        // engine still walking then is cut off and counted as timed out.
        let own = self.chain(capability);
        let deadline = now.saturating_add(own.total_timeout);
        let walks = asked.iter().map(|slot| {
            let others: Vec<&str> = all
                .iter()
                .copied()
                .filter(|name| *name != slot.name())
                .collect();
            async move {
                // A suspended engine stays suspended: no last-resort probe,
                // the others' results are the answer.
                let scope = WalkScope {
                    exclude: &others,
                    no_last_resort_probe: true,
                };
                let plain = Plain(part);
                tokio::select! {
                    outcome = self.walk_chain(&plain, scope) => outcome,
                    () = self.clock.sleep_until(deadline) => Err(cut_off(slot.id(), capability, own.total_timeout)),
                }
            }
        });
        let outcomes = join_all(walks).await;

        let mut found = Answers {
            answers: Vec::new(),
            missing: attempts.iter().map(|a| a.provider.to_owned()).collect(),
            attempts,
            fetched_at: None,
        };
        let mut all_not_found = !outcomes.is_empty();
        for (slot, outcome) in asked.iter().zip(outcomes) {
            match outcome {
                Ok((answer, trail)) => {
                    found.attempts.extend(trail);
                    found.fetched_at = found.fetched_at.max(Some(answer.fetched_at));
                    let weight = own.engine_weights.get(slot.name()).copied();
                    found
                        .answers
                        .push((slot.name(), weight.unwrap_or(1.0), answer));
                    all_not_found = false;
                }
                Err(error) => {
                    all_not_found &= matches!(error, Error::NotFound { .. });
                    found.attempts.extend(error.attempts().iter().cloned());
                    found.missing.push(slot.name().to_owned());
                }
            }
        }
        if found.answers.is_empty() {
            let name = capability.as_str();
            // Every engine asked found nothing: an answer, not an outage.
            if all_not_found {
                return Err(Error::NotFound {
                    capability: name,
                    attempts: found.attempts,
                });
            }
            return Err(Error::all_failed(name, found.attempts, self.clock.wall()));
        }
        Ok(found)
    }
}

/// The engines' lists that `pick` finds in their answers, fused into one
/// ranking of at most `limit` results.
fn merge<T, R>(found: &Answers, limit: usize, pick: impl Fn(&Data) -> Option<&Vec<T>>) -> Vec<R>
where
    T: Mergeable,
    R: From<Fused<T>>,
{
    let ranked: Vec<RankedList<'_, T>> = found
        .answers
        .iter()
        .filter_map(|(engine, weight, answer)| {
            Some(RankedList {
                engine,
                weight: *weight,
                results: pick(&answer.data)?,
            })
        })
        .collect();
    let mut fused = fuse(&ranked, DEFAULT_RRF_K);
    fused.truncate(limit);
    fused.into_iter().map(R::from).collect()
}

/// The error of an engine still busy at the composed call's deadline.
fn cut_off(provider: &'static str, capability: CapabilityId, deadline: Duration) -> Error {
    Error::Timeout {
        capability: capability.as_str(),
        deadline,
        attempts: vec![Attempt {
            provider,
            deployment: None,
            outcome: AttemptOutcome::Failed(FailureClass::Transient),
            status: None,
            tries: 1,
            elapsed: deadline,
            upstream: std::time::Duration::ZERO,
            reason: Cow::Owned(format!(
                "timeout: no answer within {}'s deadline of {:.1} s",
                capability.as_str(),
                deadline.as_secs_f64()
            )),
            retry_after: None,
            hedged: false,
            cost_usd: None,
        }],
    }
}

/// Only composed requests reach [`Engine::meta_search`].
fn unreachable_composed<T>(request: &Request) -> Result<T, Error> {
    Err(Error::invalid(
        "capability",
        format!("{} is not a merged search", request.capability()),
    ))
}

/// What a merged answer names as its provider: several engines wrote it
/// (each result lists its own).
pub(crate) const META_PROVIDER: &str = "meta-search";
