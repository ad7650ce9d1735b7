//! `search.meta`: every available `web.search` engine asked at once under
//! the capability's one deadline, their answers merged
//! ([`crate::capability::meta_search`]).
//!
//! Each engine is asked through the normal pipeline (its quota, limiter,
//! breaker, retries and second chance), alone: a walk of the `web.search`
//! chain with every other engine excluded. An engine that cannot be asked
//! now (no key, benched, breaker open) is not asked, as a meta-search
//! engine suspends a failing engine, and the answer is whatever the others
//! found. The trail holds every engine's entry, so a partial answer says
//! which engines are missing and why. Only when no engine answers does the
//! call fail.

use std::borrow::Cow;
use std::sync::Arc;

use futures::future::join_all;

use crate::answer::Answer;
use crate::capability::meta_search::{fuse, MetaQuery, MetaResult, MetaResults, RankedList};
use crate::capability::{CapabilityId, Data, Request};
use crate::engine::{Engine, Plain, WalkScope};
use crate::error::{Attempt, AttemptOutcome, Error, FailureClass};

impl Engine {
    /// Asks the engines of `query`, merges what they found.
    pub(crate) async fn meta_search(
        &self,
        query: &MetaQuery,
    ) -> Result<(Arc<Answer>, Vec<Attempt>), Error> {
        let chain = self.chain(CapabilityId::WebSearch);
        if let Some(wanted) = &query.engines {
            if let Some(unknown) = wanted
                .iter()
                .find(|name| !chain.slots.iter().any(|s| s.name() == name.as_str()))
            {
                let known: Vec<&str> = chain.slots.iter().map(|s| s.name()).collect();
                return Err(Error::invalid(
                    "engines",
                    format!(
                        "must be web.search providers of this client ({}), got {}",
                        known.join(", "),
                        crate::echo::echo(unknown)
                    ),
                ));
            }
        }
        let engines: Vec<_> = chain
            .slots
            .iter()
            .filter(|slot| {
                query
                    .engines
                    .as_ref()
                    .is_none_or(|wanted| wanted.iter().any(|w| w == slot.name()))
            })
            .collect();
        let now = self.clock.now();
        let mut attempts = Vec::new();
        let mut asked = Vec::new();
        for slot in &engines {
            match slot.unavailable(CapabilityId::WebSearch, now) {
                Some((reason, text, retry_after)) => attempts.push(Attempt {
                    provider: slot.id(),
                    deployment: slot.deployment_name(),
                    outcome: AttemptOutcome::Skipped(reason),
                    status: None,
                    tries: 0,
                    elapsed: std::time::Duration::ZERO,
                    reason: Cow::Owned(format!("skipped: {text}")),
                    retry_after,
                    hedged: false,
                    cost_usd: None,
                }),
                None => asked.push(*slot),
            }
        }
        let request = Request::WebSearch(query.web_query());
        let all: Vec<&str> = chain.slots.iter().map(|s| s.name()).collect();
        let walks = asked.iter().map(|slot| {
            let others: Vec<&str> = all
                .iter()
                .copied()
                .filter(|name| *name != slot.name())
                .collect();
            let request = &request;
            async move {
                let plain = Plain(request);
                // A suspended engine stays suspended: no last-resort probe,
                // the others' results are the answer.
                let scope = WalkScope {
                    exclude: &others,
                    no_last_resort_probe: true,
                };
                self.walk_chain(&plain, scope).await
            }
        });
        // search.meta's own deadline bounds the whole merge: an engine still
        // walking then is cut off and counted as timed out.
        let meta = self.chain(CapabilityId::MetaSearch);
        let deadline = now.saturating_add(meta.total_timeout);
        let walks = walks.map(|walk| async move {
            tokio::select! {
                outcome = walk => Some(outcome),
                () = self.clock.sleep_until(deadline) => None,
            }
        });
        let outcomes: Vec<Result<_, Error>> = join_all(walks)
            .await
            .into_iter()
            .zip(&asked)
            .map(|(outcome, slot)| {
                outcome.unwrap_or_else(|| {
                    Err(Error::Timeout {
                        capability: CapabilityId::WebSearch.as_str(),
                        deadline: meta.total_timeout,
                        attempts: vec![Attempt {
                            provider: slot.id(),
                            deployment: None,
                            outcome: AttemptOutcome::Failed(FailureClass::Transient),
                            status: None,
                            tries: 1,
                            elapsed: meta.total_timeout,
                            reason: Cow::Owned(format!(
                                "timeout: no answer within search.meta's deadline of {:.1} s",
                                meta.total_timeout.as_secs_f64()
                            )),
                            retry_after: None,
                            hedged: false,
                            cost_usd: None,
                        }],
                    })
                })
            })
            .collect();

        let mut lists = Vec::new();
        let mut answer = None;
        let mut answered = Vec::new();
        let mut missing: Vec<String> = attempts.iter().map(|a| a.provider.to_owned()).collect();
        let mut fetched_at = None;
        for (slot, outcome) in asked.iter().zip(&outcomes) {
            match outcome {
                Ok((found, trail)) => {
                    attempts.extend(trail.iter().cloned());
                    if let Data::WebSearch(results) = &found.data {
                        if answer.is_none() {
                            answer.clone_from(&results.answer);
                        }
                        lists.push(RankedList {
                            engine: slot.name(),
                            weight: meta.engine_weights.get(slot.name()).copied().unwrap_or(1.0),
                            results: &results.results,
                        });
                        answered.push(slot.name().to_owned());
                        fetched_at = fetched_at.max(Some(found.fetched_at));
                    }
                }
                Err(error) => {
                    attempts.extend(error.attempts().iter().cloned());
                    missing.push(slot.name().to_owned());
                }
            }
        }
        if lists.is_empty() {
            let capability = CapabilityId::MetaSearch.as_str();
            // Every engine asked found nothing: an answer, not an outage.
            if !outcomes.is_empty()
                && outcomes
                    .iter()
                    .all(|o| matches!(o, Err(Error::NotFound { .. })))
            {
                return Err(Error::NotFound {
                    capability,
                    attempts,
                });
            }
            return Err(Error::all_failed(capability, attempts, self.clock.wall()));
        }
        let mut results: Vec<MetaResult> =
            fuse(&lists, crate::capability::meta_search::DEFAULT_RRF_K)
                .into_iter()
                .map(MetaResult::from)
                .collect();
        results.truncate(usize::from(query.limit));
        let data = Data::MetaSearch(MetaResults {
            query: query.query.clone(),
            answer,
            results,
            answered,
            missing,
        });
        let answer = Answer {
            data,
            provider: META_PROVIDER,
            fetched_at: fetched_at.unwrap_or_else(|| self.clock.wall()),
        };
        Ok((Arc::new(answer), attempts))
    }
}

/// What a merged answer names as its provider: several engines wrote it
/// (each result lists its own).
pub(crate) const META_PROVIDER: &str = "meta-search";
