//! The call pipeline, in one place.
//!
//! ```text
//! call(request)
//! └ cache                      fresh hit: return; stale-while-revalidate / stale-if-error
//!   └ total deadline           bounds every await below
//!     └ fallback chain         providers in order; for each provider:
//!        0. provider builds the request      Unsupported: skip, nothing spent
//!        1. key present?                     no: skip
//!        2. benched?                         auth refused, quota out, long Retry-After: skip
//!        for each try (retry):
//!          3. daily quota                    exhausted: skip
//!          4. rate limiter (GCRA)            not admitted: skip
//!          5. circuit breaker                open: skip with its retry_after
//!          6. attempt timeout → HTTP → provider interprets the response
//!          7. failure class decides: retry (backoff or Retry-After), bench, fall back
//! ```
//!
//! Each mechanism lives in its own module under [`crate::resilience`]; this
//! file only composes them.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use secrecy::SecretString;
use tracing::Instrument;

use crate::capability::{CapabilityId, Data, Request};
use crate::clock::SharedClock;
use crate::config::ProviderSettings;
use crate::error::{Attempt, Error, FailureClass, ProviderFailure};
use crate::provider::{Auth, CallContext, HttpRequest, Provider, Step};
use crate::resilience::breaker::{CircuitBreaker, Outcome};
use crate::resilience::cache::{Fetched, ResponseCache, TtlPolicy};
use crate::resilience::retry::{
    Backoff, GiveUpReason, IdempotencyKey, RetryBudget, RetryConfig, RetryDecision,
};
use crate::state::{Admission, StateStore};
use crate::stats::ProviderStats;
use crate::transport::{redact, BaseUrl, Transport};

/// Most requests one provider turn may chain with [`Step::Next`].
const MAX_STEPS: usize = 4;

/// A provider's answer, as cached.
#[derive(Debug)]
pub(crate) struct Answer {
    pub data: Data,
    pub provider: &'static str,
    pub fetched_at: DateTime<Utc>,
}

/// What a call produced, before it becomes the public envelope.
pub(crate) struct CallResult {
    pub answer: Arc<Answer>,
    pub cached: bool,
    pub stale: bool,
    pub attempts: Vec<Attempt>,
}

/// One provider with its settings, key and guards.
pub(crate) struct ProviderSlot {
    pub provider: Arc<dyn Provider>,
    pub base_url: String,
    /// `base_url` parsed once for the transport.
    base: Option<BaseUrl>,
    pub key: Option<SecretString>,
    pub key_env: String,
    pub settings: ProviderSettings,
    pub backoff: Backoff,
    pub budget: RetryBudget,
    /// One breaker per capability (the endpoint class).
    pub breakers: Vec<(CapabilityId, CircuitBreaker)>,
    /// Monotonic nanos until which the provider is benched (0 = not benched).
    bench_until: AtomicU64,
    bench_reason: Mutex<String>,
    pub stats: ProviderStats,
}

impl ProviderSlot {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        provider: Arc<dyn Provider>,
        base_url: String,
        key: Option<SecretString>,
        key_env: String,
        settings: ProviderSettings,
        clock: &SharedClock,
        backoff: Backoff,
    ) -> crate::Result<Self> {
        let id = provider.info().id;
        let mut breakers = Vec::new();
        for capability in provider.info().capabilities {
            let breaker = CircuitBreaker::new(settings.breaker.clone(), clock.clone())
                .map_err(|e| Error::config(format!("providers.{id}.breaker"), e.to_string()))?;
            breakers.push((*capability, breaker));
        }
        Ok(Self {
            provider,
            base: BaseUrl::new(&base_url),
            base_url,
            key,
            key_env,
            backoff,
            budget: RetryBudget::new(&settings.retry.budget, clock.clone()),
            settings,
            breakers,
            bench_until: AtomicU64::new(0),
            bench_reason: Mutex::new(String::new()),
            stats: ProviderStats::new(),
        })
    }

    pub(crate) fn id(&self) -> &'static str {
        self.provider.info().id
    }

    pub(crate) fn breaker(&self, capability: CapabilityId) -> Option<&CircuitBreaker> {
        self.breakers
            .iter()
            .find(|(c, _)| *c == capability)
            .map(|(_, b)| b)
    }

    /// The provider cannot be called without a key, and none is set.
    pub(crate) fn missing_key(&self) -> bool {
        self.key.is_none()
            && matches!(
                self.provider.info().auth,
                Auth::Key {
                    optional: false,
                    ..
                }
            )
    }

    /// Benches the provider until `now + for_`, keeping the longest bench.
    fn bench(&self, now: Duration, for_: Duration, reason: String) {
        let until = now.saturating_add(for_).as_nanos() as u64;
        let previous = self.bench_until.fetch_max(until, Ordering::AcqRel);
        if until >= previous {
            *self.bench_reason.lock() = reason;
        }
    }

    /// Remaining bench time and reason, if benched.
    pub(crate) fn benched(&self, now: Duration) -> Option<(Duration, String)> {
        let until = self.bench_until.load(Ordering::Acquire);
        let now = now.as_nanos() as u64;
        (until > now).then(|| {
            (
                Duration::from_nanos(until - now),
                self.bench_reason.lock().clone(),
            )
        })
    }
}

/// A capability's fallback chain.
pub(crate) struct Chain {
    pub slots: Vec<Arc<ProviderSlot>>,
    pub total_timeout: Duration,
    pub ttl: TtlPolicy,
}

/// Everything a call needs, shared by all clones of a client.
pub(crate) struct Engine {
    pub clock: SharedClock,
    pub transport: Transport,
    pub user_agent: String,
    pub state: Arc<dyn StateStore>,
    /// Indexed like [`CapabilityId::ALL`].
    pub chains: Vec<Chain>,
    pub slots: Vec<Arc<ProviderSlot>>,
    /// Answers, and authoritative "not found" errors (negative caching).
    pub cache: ResponseCache<Request, Result<Arc<Answer>, Arc<Error>>>,
    /// With the cache off, calls skip it entirely.
    pub cache_enabled: bool,
}

/// How one provider's turn ended.
enum Turn {
    Answered(Arc<Answer>),
    Failed,
    DeadlinePassed,
}

/// The error a fetch hands to the cache: cloneable for coalesced waiters.
#[derive(Clone)]
struct ChainError(Arc<Error>);

impl Engine {
    pub(crate) fn chain(&self, capability: CapabilityId) -> &Chain {
        let index = CapabilityId::ALL
            .iter()
            .position(|c| *c == capability)
            .unwrap_or(0);
        &self.chains[index]
    }

    /// Runs one call through cache, deadline and fallback chain.
    pub(crate) async fn call(self: &Arc<Self>, request: Request) -> Result<CallResult, Error> {
        let capability = request.capability();
        if !self.cache_enabled {
            let (answer, attempts) = self.run_chain(&request).await?;
            return Ok(CallResult {
                answer,
                cached: false,
                stale: false,
                attempts,
            });
        }
        let ttl = self.chain(capability).ttl;
        // The fetch may outlive this call (background refresh), so it owns
        // what it uses; the trail of a failed fetch is handed back through
        // `trail` so that a stale answer can still show why it is stale.
        let trail: Arc<Mutex<Vec<Attempt>>> = Arc::default();
        let fetch = {
            let engine = Arc::clone(self);
            let request = request.clone();
            let trail = Arc::clone(&trail);
            // Boxed: a miss allocates anyway, and the chain's (large) future
            // inline here would make every call's future, cached or not,
            // half again as large.
            move || {
                Box::pin(async move {
                    match engine.run_chain(&request).await {
                        Ok((answer, attempts)) => {
                            *trail.lock() = attempts;
                            Ok(Fetched::Value(Ok(answer)))
                        }
                        Err(error @ Error::NotFound { .. }) => {
                            Ok(Fetched::NotFound(Err(Arc::new(error))))
                        }
                        Err(error) => {
                            *trail.lock() = error.attempts().to_vec();
                            Err(ChainError(Arc::new(error)))
                        }
                    }
                })
            }
        };
        let outcome = self
            .cache
            .get_or_fetch(&request, ttl, fetch)
            .await
            .map_err(|e| Arc::unwrap_or_clone(e.0))?;
        let answer = outcome.value.clone().map_err(Arc::unwrap_or_clone)?;
        let attempts = if outcome.cached() && !outcome.stale() {
            Vec::new()
        } else {
            std::mem::take(&mut *trail.lock())
        };
        Ok(CallResult {
            cached: outcome.cached(),
            stale: outcome.stale(),
            answer,
            attempts,
        })
    }

    /// The fallback chain under one total deadline, in its tracing span.
    async fn run_chain(&self, request: &Request) -> Result<(Arc<Answer>, Vec<Attempt>), Error> {
        let span =
            tracing::info_span!("polyrelay.call", capability = request.capability().as_str());
        self.walk_chain(request).instrument(span).await
    }

    async fn walk_chain(&self, request: &Request) -> Result<(Arc<Answer>, Vec<Attempt>), Error> {
        let capability = request.capability();
        let chain = self.chain(capability);
        let mut now = self.clock.now();
        let deadline = now.saturating_add(chain.total_timeout);
        let mut attempts = Vec::with_capacity(chain.slots.len());
        let mut deadline_passed = false;
        for slot in &chain.slots {
            if now >= deadline {
                deadline_passed = true;
                break;
            }
            let (turn, ended) = self
                .provider_turn(slot, request, now, deadline, &mut attempts)
                .await;
            now = ended;
            match turn {
                Turn::Answered(answer) => return Ok((answer, attempts)),
                Turn::Failed => {}
                Turn::DeadlinePassed => {
                    deadline_passed = true;
                    break;
                }
            }
        }
        let name = capability.as_str();
        if deadline_passed {
            return Err(Error::Timeout {
                capability: name,
                deadline: chain.total_timeout,
                attempts,
            });
        }
        let tried: Vec<&Attempt> = attempts.iter().filter(|a| a.tries > 0).collect();
        if !tried.is_empty() && tried.iter().all(|a| a.outcome == "not_found") {
            return Err(Error::NotFound {
                capability: name,
                attempts,
            });
        }
        let retry_after = attempts.iter().filter_map(|a| a.retry_after).min();
        Err(Error::AllProvidersFailed {
            capability: name,
            attempts,
            retry_after,
        })
    }

    /// One provider's turn: guards, tries with retry, and the trail entry.
    async fn provider_turn(
        &self,
        slot: &ProviderSlot,
        request: &Request,
        started: Duration,
        deadline: Duration,
        attempts: &mut Vec<Attempt>,
    ) -> (Turn, Duration) {
        let id = slot.id();
        let ctx = CallContext {
            base_url: &slot.base_url,
            user_agent: &self.user_agent,
        };
        let mut entry = Attempt {
            provider: id,
            outcome: "success",
            status: None,
            tries: 0,
            elapsed: Duration::ZERO,
            reason: Cow::Borrowed(""),
            retry_after: None,
        };
        // Skips that cost nothing: the provider cannot serve this request,
        // has no key, or is benched.
        let first = match slot.provider.request(request, &ctx) {
            Err(failure) => Err((failure.class.as_str(), format!("skipped: {failure}"), None)),
            Ok(_) if slot.missing_key() => Err((
                "skipped_no_key",
                format!("skipped: {} is not set", slot.key_env),
                None,
            )),
            Ok(first) => match slot.benched(started) {
                Some((left, why)) => Err((
                    "skipped_benched",
                    format!("skipped: benched for {:.1} s ({why})", left.as_secs_f64()),
                    Some(left),
                )),
                None => Ok(first),
            },
        };
        let turn = match first {
            Ok(first) => {
                self.tries(slot, request, &first, started, deadline, &mut entry)
                    .await
            }
            Err((outcome, reason, retry_after)) => {
                entry.outcome = outcome;
                entry.reason = Cow::Owned(reason);
                entry.retry_after = retry_after;
                Turn::Failed
            }
        };
        let ended = self.clock.now();
        entry.elapsed = ended.saturating_sub(started);
        slot.stats.outcome(entry.outcome);
        tracing::debug!(
            provider = id,
            outcome = entry.outcome,
            tries = entry.tries,
            elapsed_ms = entry.elapsed.as_secs_f64() * 1000.0,
            reason = %entry.reason,
            "provider turn"
        );
        attempts.push(entry);
        (turn, ended)
    }

    /// The retry loop of one provider.
    #[allow(clippy::too_many_arguments)]
    async fn tries(
        &self,
        slot: &ProviderSlot,
        request: &Request,
        first: &HttpRequest,
        started: Duration,
        deadline: Duration,
        entry: &mut Attempt,
    ) -> Turn {
        let ctx = &CallContext {
            base_url: &slot.base_url,
            user_agent: &self.user_agent,
        };
        let id = slot.id();
        let retry: &RetryConfig = &slot.settings.retry;
        let capability = request.capability();
        let idempotency_key = (!first.is_idempotent())
            .then(|| slot.provider.idempotency_header())
            .flatten()
            .map(|header| {
                (
                    header,
                    IdempotencyKey::generate(&mut rand::rng()).to_string(),
                )
            });
        slot.budget.deposit();
        let mut sent_at = started;
        loop {
            // Guards: each try spends one quota unit and one limiter token,
            // asked together so a shared store answers in one round trip.
            match self.state.admit(id, 1).await {
                Admission::Admitted => {}
                Admission::QuotaExhausted {
                    reset_at,
                    retry_after,
                } => {
                    refuse(
                        entry,
                        "skipped_quota",
                        format!(
                            "skipped: daily quota used up until {}",
                            reset_at.format("%Y-%m-%d %H:%M:%S UTC")
                        ),
                        Some(retry_after),
                    );
                    return Turn::Failed;
                }
                Admission::RateLimited { retry_after } => {
                    refuse(
                        entry,
                        "skipped_rate_limit",
                        format!(
                            "skipped: client rate limit, next slot in {:.3} s",
                            retry_after.as_secs_f64()
                        ),
                        Some(retry_after),
                    );
                    return Turn::Failed;
                }
                Admission::InsufficientCapacity { burst } => {
                    refuse(
                        entry,
                        "skipped_rate_limit",
                        format!("skipped: rate limit burst {burst} is too small"),
                        None,
                    );
                    return Turn::Failed;
                }
            }
            let permit = match slot.breaker(capability).map(CircuitBreaker::try_acquire) {
                Some(Ok(permit)) => Some(permit),
                Some(Err(rejected)) => {
                    self.state.refund_quota(id, 1).await;
                    refuse(
                        entry,
                        "skipped_circuit_open",
                        format!(
                            "skipped: circuit {} for {:.1} s",
                            rejected.state.as_str().replace('_', "-"),
                            rejected.retry_after.as_secs_f64()
                        ),
                        Some(rejected.retry_after),
                    );
                    return Turn::Failed;
                }
                None => None,
            };

            entry.tries += 1;
            let attempt_deadline = sent_at.saturating_add(retry.attempt_timeout).min(deadline);
            let span =
                tracing::debug_span!("polyrelay.attempt", provider = id, attempt = entry.tries);
            // Pinned in place: `select!` then moves a reference, not the
            // (large) future.
            let exchange = std::pin::pin!(self
                .exchange(
                    slot,
                    request,
                    ctx,
                    first,
                    idempotency_key.as_ref().map(|(h, k)| (*h, k.as_str())),
                )
                .instrument(span.clone()));
            let result = tokio::select! {
                biased;
                result = exchange => result,
                _ = self.clock.sleep_until(attempt_deadline) => Err(ProviderFailure::new(
                    FailureClass::Transient,
                    if attempt_deadline == deadline {
                        "cut off by the total deadline".to_string()
                    } else {
                        format!("no response within {:.3} s", retry.attempt_timeout.as_secs_f64())
                    },
                )),
            };
            let now = self.clock.now();
            let latency = now.saturating_sub(sent_at);
            slot.stats.request(latency);
            let failure = match result {
                Ok((data, status, received_at)) => {
                    if let Some(permit) = permit {
                        permit.record(Outcome::Success, latency);
                    }
                    span.in_scope(|| {
                        tracing::debug!(
                            outcome = "success",
                            elapsed_ms = latency.as_secs_f64() * 1000.0,
                            "attempt"
                        )
                    });
                    entry.outcome = "success";
                    entry.status = status;
                    entry.reason = Cow::Borrowed("answered");
                    return Turn::Answered(Arc::new(Answer {
                        data,
                        provider: id,
                        fetched_at: received_at,
                    }));
                }
                Err(failure) => failure,
            };
            if let Some(permit) = permit {
                permit.record(failure.class.breaker_outcome(), latency);
            }
            span.in_scope(|| {
                tracing::debug!(
                    outcome = failure.class.as_str(),
                    status = failure.status,
                    elapsed_ms = latency.as_secs_f64() * 1000.0,
                    "attempt"
                )
            });
            entry.outcome = failure.class.as_str();
            entry.status = failure.status;
            entry.reason = Cow::Owned(if entry.tries > 1 {
                format!("{failure} (after {} tries)", entry.tries)
            } else {
                failure.to_string()
            });
            entry.retry_after = failure.retry_after;

            if now >= deadline {
                return Turn::DeadlinePassed;
            }
            if let Some(wait) = self.next_try(slot, &failure, first, entry.tries, now, deadline) {
                self.clock.backoff(wait).await;
                sent_at = self.clock.now();
                continue;
            }
            return Turn::Failed;
        }
    }

    /// Whether and when to try the same provider again; benches it when the
    /// failure says it will not answer for a while.
    fn next_try(
        &self,
        slot: &ProviderSlot,
        failure: &ProviderFailure,
        request: &HttpRequest,
        tries: u32,
        now: Duration,
        deadline: Duration,
    ) -> Option<Duration> {
        let retry = &slot.settings.retry;
        match failure.class {
            FailureClass::Auth => {
                slot.bench(now, slot.settings.auth_bench, "the key was refused".into());
                return None;
            }
            FailureClass::QuotaExhausted => {
                let until = failure
                    .reset_at
                    .and_then(|at| (at - self.clock.wall()).to_std().ok())
                    .or(failure.retry_after)
                    .unwrap_or(Duration::from_secs(3600));
                slot.bench(now, until, "its quota is used up".into());
                return None;
            }
            _ => {}
        }
        if failure.class == FailureClass::Transient && !failure.request_sent {
            // Nothing is listening: retrying in a second rarely helps, and the
            // next provider can answer now.
            slot.bench(
                now,
                slot.settings.unreachable_bench,
                "connection refused".into(),
            );
            return None;
        }
        let server_wait = failure.retry_after.filter(|_| retry.respect_retry_after);
        // A failure that may have reached the provider is only retried when
        // repeating it is safe.
        let repeatable = request.is_idempotent()
            || !failure.request_sent
            || slot.provider.idempotency_header().is_some();
        let decision = if failure.class.is_retryable() && repeatable {
            RetryDecision::decide(
                retry,
                &slot.backoff,
                tries,
                server_wait,
                deadline.saturating_sub(now),
            )
        } else {
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        };
        match decision {
            RetryDecision::Retry { after } if slot.budget.withdraw() => Some(after),
            RetryDecision::FailOver { bench_for } => {
                slot.bench(
                    now,
                    bench_for,
                    format!("asked to wait {:.0} s", bench_for.as_secs_f64()),
                );
                None
            }
            _ => {
                // Out of tries but the provider said when it will answer
                // again: skip it until then instead of hammering it.
                if let (FailureClass::RateLimited, Some(wait)) = (failure.class, server_wait) {
                    slot.bench(now, wait, "rate limited by the provider".into());
                }
                None
            }
        }
    }

    /// One try: the provider's request (and follow-ups) over HTTP.
    async fn exchange(
        &self,
        slot: &ProviderSlot,
        request: &Request,
        ctx: &CallContext<'_>,
        first: &HttpRequest,
        idempotency: Option<(&'static str, &str)>,
    ) -> Result<(Data, Option<u16>, DateTime<Utc>), ProviderFailure> {
        let key = match (&slot.key, slot.provider.info().auth) {
            (Some(key), Auth::Key { placement, .. }) => Some((key, placement)),
            _ => None,
        };
        self.steps(slot, request, ctx, first, key, idempotency)
            .await
            .map_err(|failure| redact(failure, slot.key.as_ref()))
    }

    async fn steps(
        &self,
        slot: &ProviderSlot,
        request: &Request,
        ctx: &CallContext<'_>,
        first: &HttpRequest,
        key: Option<(&SecretString, crate::provider::KeyPlacement)>,
        idempotency: Option<(&'static str, &str)>,
    ) -> Result<(Data, Option<u16>, DateTime<Utc>), ProviderFailure> {
        let mut follow_up: Option<HttpRequest> = None;
        for _ in 0..MAX_STEPS {
            let next = follow_up.as_ref().unwrap_or(first);
            let response = self
                .transport
                .send(next, slot.base.as_ref(), key, idempotency, || {
                    self.clock.wall()
                })
                .await?;
            let (status, received_at) = (response.status, response.received_at);
            match slot.provider.response(request, ctx, response)? {
                Step::Done(data) => {
                    if data.capability() != request.capability() {
                        return Err(ProviderFailure::malformed("answer for another capability"));
                    }
                    return Ok((data, Some(status), received_at));
                }
                Step::Next(request) => follow_up = Some(request),
            }
        }
        Err(ProviderFailure::malformed(format!(
            "more than {MAX_STEPS} chained requests"
        )))
    }
}

/// Records a guard's refusal in the trail. On a retry the provider's own
/// failure stays the outcome (it is why the call moved on); the refusal is
/// added to the reason.
fn refuse(
    entry: &mut Attempt,
    outcome: &'static str,
    reason: String,
    retry_after: Option<Duration>,
) {
    if entry.tries == 0 {
        entry.outcome = outcome;
        entry.reason = Cow::Owned(reason);
    } else {
        entry.reason = Cow::Owned(format!("{}; retry {reason}", entry.reason));
    }
    if retry_after.is_some() {
        entry.retry_after = retry_after;
    }
}
