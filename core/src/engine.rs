//! The call pipeline, in one place.
//!
//! ```text
//! call(request)
//! └ cache                      fresh hit: return; stale-while-revalidate / stale-if-error
//!   └ total deadline           bounds every await below
//!     └ fallback chain         passes over the providers, in order, until one answers:
//!        for each provider that can be asked now (a turn):
//!          -. context window                   estimate over its model's window, or a
//!                                              window no larger refused the prompt: skip
//!          0. provider builds the request      Unsupported (or the call is pinned to
//!                                              another provider): skip, nothing spent
//!          1. key present?                     no: skip
//!          2. benched?                         auth refused, quota out, long Retry-After: skip
//!          for each try (retry):
//!            3. quota (per day or month)       exhausted: skip (an open breaker is
//!                                              refused first, spending nothing)
//!            4. rate limiter (GCRA)            not admitted, or others in line: skip
//!               (and a deployment's tokens per minute)
//!            4b. budgets (LLM calls)           the estimate does not fit: skip; the
//!                                              reservation is settled with the usage
//!                                              the answer reports
//!            5. circuit breaker                open: skip with its retry_after
//!            6. attempt timeout → HTTP → provider interprets the response
//!               (capped to leave min_fallback_time when another provider is left)
//!            7. the policy table decides: retry (backoff or Retry-After), bench, fall back
//!          hedging (opt-in): a slow provider's next one is asked too; first answer wins
//!        no answer: second pass — wait for the earliest moment a provider said it
//!        can answer again (limiter slot, Retry-After, bench, breaker half-open) and
//!        ask it (waits for a rate-limit slot are first come, first served);
//!        last resort — probe a provider held back by a reason that may already
//!        be over (open breaker, unreachable, Retry-After within the deadline),
//!        the one back soonest first, one probe per provider per probe_interval,
//!        other calls waiting on it; repeat while the deadline (and max_wait) allows
//!     a group whose deployments the prompt fits none of: its context_fallback
//!     group, walked the same way under the same deadline
//! ```
//!
//! Each mechanism lives in its own module under [`crate::resilience`], and
//! what follows a failure in [`crate::policy`]; this file only composes them.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use secrecy::SecretString;
use tracing::Instrument;

use crate::answer::Answer;
use crate::capability::llm::models::ModelTable;
use crate::capability::{CapabilityId, Data, Request};
use crate::clock::SharedClock;
use crate::config::{ProviderSettings, StreamSettings};
use crate::error::{
    Attempt, AttemptOutcome, BenchCause, Error, ErrorKind, FailureClass, ProviderFailure,
    SkipReason,
};
use crate::policy::{self, Facts};
use crate::provider::{Auth, CallContext, HttpRequest, KeyPlacement, Provider, Step};
use crate::resilience::breaker::{CircuitBreaker, CircuitState, Outcome};
use crate::resilience::budget::{
    Budget, BudgetCharge, BudgetDecision, BudgetSnapshot, BudgetUnit, Spender,
};
use crate::resilience::cache::{Fetched, ResponseCache, TtlPolicy};
use crate::resilience::hedge::{Hedging, RecentLatencies};
use crate::resilience::probe::{LastResortProbe, ProbeGuard, ProbeTurn};
use crate::resilience::rate_limit::{RateDecision, SlotLine, TokenRate};
use crate::resilience::retry::{Backoff, IdempotencyKey, RetryBudget, RetryConfig, RetryDecision};
use crate::routing::{self, Candidate, LatencyAverage, Price, Strategy, TokenEstimate};
use crate::state::{Admission, StateStore};
use crate::stats::ProviderStats;
use crate::transport::{redact, BaseUrl, Transport};

/// Most requests one provider turn may chain with [`Step::Next`].
const MAX_STEPS: usize = 4;

/// A provider ready again within this long is waited for before a
/// last-resort probe is sent; a later one is not (the probe may find a
/// recovered provider now, and costs at most one request per provider per
/// `probe_interval`).
const WAIT_BEFORE_PROBE: Duration = Duration::from_millis(100);

/// How long calls wait for another call's last-resort probe before a
/// second provider may be probed too: most answers take a fraction of this,
/// and a hung provider must not hold every call for its attempt timeout.
const PROBE_PATIENCE: Duration = Duration::from_millis(250);

/// When a half-open breaker has no trial slot free, the provider is asked
/// again this soon rather than after the breaker's generic one second (the
/// trials in flight usually end within milliseconds), but later than
/// [`WAIT_BEFORE_PROBE`], so that the call probes another provider first
/// when it can (trials against a hung provider hold their slots for a whole
/// attempt timeout).
const HALF_OPEN_RECHECK: Duration = Duration::from_millis(150);

/// Shortest wait of a second pass: a provider that says "now" again and
/// again (a contended limiter slot) must not spin the call.
const MIN_WAIT: Duration = Duration::from_millis(1);

/// What a call produced, before it becomes the public envelope.
pub(crate) struct CallResult {
    pub answer: Arc<Answer>,
    pub cached: bool,
    pub stale: bool,
    pub attempts: Vec<Attempt>,
}

/// What makes a slot a deployment of its provider.
pub(crate) struct Deployment {
    pub name: &'static str,
    /// The model id its requests ask for.
    pub model: String,
    /// Its tokens-per-minute limit.
    tokens: Option<TokenRate>,
    price: Option<Price>,
    /// Its model's context window (configured, else the model table's),
    /// when known.
    pub context_window: Option<u64>,
}

impl Deployment {
    pub(crate) fn new(
        name: &'static str,
        model: String,
        tpm: Option<u64>,
        price: Option<Price>,
        context_window: Option<u64>,
        clock: &SharedClock,
    ) -> Self {
        Self {
            name,
            model,
            tokens: tpm.map(|tpm| TokenRate::new(tpm, clock.clone())),
            price,
            context_window,
        }
    }
}

/// One provider (or one deployment of a provider) with its settings, key
/// and guards.
pub(crate) struct ProviderSlot {
    pub provider: Arc<dyn Provider>,
    /// Set when the slot is a deployment.
    pub deployment: Option<Deployment>,
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
    /// One last-resort probe arbiter per breaker.
    probes: Vec<(CapabilityId, LastResortProbe)>,
    /// Monotonic nanos until which the provider is benched (0 = not benched).
    bench_until: AtomicU64,
    bench_cause: Mutex<BenchCause>,
    pub stats: ProviderStats,
    /// Latencies for percentile hedge delays.
    recent: RecentLatencies,
    /// Calls waiting for a rate-limit slot, in order.
    line: SlotLine,
    /// Requests sent and not yet answered (the `least_busy` strategy).
    in_flight: AtomicU32,
    /// Recent request latency (the `lowest_latency` strategy).
    latency: LatencyAverage,
}

/// Counts a request in flight on a slot for as long as it lives, whether
/// it ends or its future is dropped.
struct InFlight<'a>(&'a AtomicU32);

impl<'a> InFlight<'a> {
    fn start(count: &'a AtomicU32) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream being read past its first token: still a request in flight on
/// its slot until it is dropped.
pub(crate) struct StreamInFlight(Arc<ProviderSlot>);

impl StreamInFlight {
    pub(crate) fn start(slot: &Arc<ProviderSlot>) -> Self {
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(slot))
    }
}

impl Drop for StreamInFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
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
        deployment: Option<Deployment>,
    ) -> crate::Result<Self> {
        let id = provider.info().id;
        let field = match &deployment {
            Some(d) => format!("deployments.{}.breaker", d.name),
            None => format!("providers.{id}.breaker"),
        };
        let mut breakers = Vec::new();
        let mut probes = Vec::new();
        for capability in provider.capabilities() {
            let breaker = CircuitBreaker::new(settings.breaker.clone(), clock.clone())
                .map_err(|e| Error::config(&field, e.to_string()))?;
            breakers.push((*capability, breaker));
            probes.push((*capability, LastResortProbe::new(settings.probe_interval)));
        }
        Ok(Self {
            provider,
            deployment,
            base: BaseUrl::new(&base_url),
            base_url,
            key,
            key_env,
            backoff,
            budget: RetryBudget::new(&settings.retry.budget, clock.clone()),
            settings,
            breakers,
            probes,
            bench_until: AtomicU64::new(0),
            bench_cause: Mutex::new(BenchCause::Unreachable),
            stats: ProviderStats::new(),
            recent: RecentLatencies::new(),
            line: SlotLine::default(),
            in_flight: AtomicU32::new(0),
            latency: LatencyAverage::default(),
        })
    }

    /// The provider's id.
    pub(crate) fn id(&self) -> &'static str {
        self.provider.info().id
    }

    /// What the slot's limits, quota and stats are kept under: the
    /// deployment's name, or the provider's id.
    pub(crate) fn name(&self) -> &'static str {
        self.deployment.as_ref().map_or(self.id(), |d| d.name)
    }

    pub(crate) fn deployment_name(&self) -> Option<&'static str> {
        self.deployment.as_ref().map(|d| d.name)
    }

    /// `request` as this slot sends it: a deployment asks for its model.
    pub(crate) fn deployed<'r>(&self, request: &'r Request) -> Cow<'r, Request> {
        match &self.deployment {
            Some(d) => Cow::Owned(request.with_model(&d.model)),
            None => Cow::Borrowed(request),
        }
    }

    /// The model `request` runs on at this slot, when the engine can tell:
    /// a deployment's, or the model a call names (a cross-provider alias
    /// and a provider's default are its own business).
    fn model_for<'r>(&'r self, request: &'r Request) -> Option<&'r str> {
        match &self.deployment {
            Some(d) => Some(&d.model),
            None => request
                .model()
                .filter(|m| !crate::capability::llm::MODEL_ALIASES.contains(m)),
        }
    }

    /// The context window of the model `request` runs on at this slot,
    /// when known (`models` for a call naming a model).
    fn context_window(&self, request: &Request, models: &ModelTable) -> Option<u64> {
        match &self.deployment {
            Some(d) => d.context_window,
            None => {
                models
                    .lookup(self.id(), self.model_for(request)?)?
                    .context_window
            }
        }
    }

    /// Settles a request's tokens-per-minute charge (its estimate) with the
    /// tokens its reply reports.
    pub(crate) fn settle_tokens(&self, request: &Request, used: Option<u64>) {
        let tokens = self.deployment.as_ref().and_then(|d| d.tokens.as_ref());
        if let (Some(tokens), Some(used)) = (tokens, used) {
            tokens.settle(TokenEstimate::of(request).total(), used);
        }
    }

    pub(crate) fn breaker(&self, capability: CapabilityId) -> Option<&CircuitBreaker> {
        self.breakers
            .iter()
            .find(|(c, _)| *c == capability)
            .map(|(_, b)| b)
    }

    fn probe(&self, capability: CapabilityId) -> Option<&LastResortProbe> {
        self.probes
            .iter()
            .find(|(c, _)| *c == capability)
            .map(|(_, p)| p)
    }

    /// The key and where the provider wants it, when it takes one.
    pub(crate) fn key_placement(&self) -> Option<(&SecretString, KeyPlacement)> {
        match (&self.key, self.provider.info().auth) {
            (Some(key), Auth::Key { placement, .. }) => Some((key, placement)),
            _ => None,
        }
    }

    /// The provider's base URL, parsed once (`None` when it does not parse
    /// as a plain base).
    pub(crate) fn base(&self) -> Option<&BaseUrl> {
        self.base.as_ref()
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
    fn bench(&self, now: Duration, for_: Duration, cause: BenchCause) {
        let until = now.saturating_add(for_).as_nanos() as u64;
        let previous = self.bench_until.fetch_max(until, Ordering::AcqRel);
        if until >= previous {
            *self.bench_cause.lock() = cause;
        }
    }

    /// Ends a bench that a last-resort probe has just proved wrong (never a
    /// bench for a refused key or a used-up quota).
    fn end_bench(&self) {
        if self.bench_cause.lock().may_be_probed() {
            self.bench_until.store(0, Ordering::Release);
        }
    }

    /// Remaining bench time and its cause, if benched.
    pub(crate) fn benched(&self, now: Duration) -> Option<(Duration, BenchCause)> {
        let until = self.bench_until.load(Ordering::Acquire);
        let now = now.as_nanos() as u64;
        (until > now).then(|| (Duration::from_nanos(until - now), *self.bench_cause.lock()))
    }

    /// Why the provider would not be asked now, if it would not: no key,
    /// benched, or its breaker open; with when it may be asked again.
    pub(crate) fn unavailable(
        &self,
        capability: CapabilityId,
        now: Duration,
    ) -> Option<(SkipReason, String, Option<Duration>)> {
        if self.missing_key() {
            return Some((
                SkipReason::NoKey,
                format!("{} is not set", self.key_env),
                None,
            ));
        }
        if let Some((left, why)) = self.benched(now) {
            return Some((
                SkipReason::Benched(why),
                format!("benched for {:.1} s ({why})", left.as_secs_f64()),
                Some(left),
            ));
        }
        // Open with its wait over, the breaker lets the next call through
        // as a trial: available.
        let breaker = self.breaker(capability)?.snapshot();
        match breaker.open_until {
            Some(left) if breaker.state == CircuitState::Open && !left.is_zero() => Some((
                SkipReason::CircuitOpen,
                "circuit open".to_owned(),
                Some(left),
            )),
            _ => None,
        }
    }

    /// Whether asking the provider now would likely send a request: a key,
    /// no bench, a breaker that is not open. Cheap (no lock when closed).
    fn looks_available(&self, capability: CapabilityId, now: Duration) -> bool {
        !self.missing_key()
            && self.benched(now).is_none()
            && !self
                .breaker(capability)
                .is_some_and(|b| b.state() == CircuitState::Open)
    }
}

/// A capability's fallback chain and how it may wait, probe and hedge.
pub(crate) struct Chain {
    pub slots: Vec<Arc<ProviderSlot>>,
    pub total_timeout: Duration,
    pub ttl: TtlPolicy,
    /// Longest a call waits in all for providers to be ready again.
    pub max_wait: Duration,
    pub last_resort_probe: bool,
    pub min_fallback_time: Duration,
    pub hedging: Option<Hedging>,
    pub content_filtered_fallback: bool,
    /// A composed capability's weights of the providers whose answers it
    /// merges (`search.meta`), by provider id.
    pub engine_weights: BTreeMap<String, f64>,
    /// How streams of this capability are read.
    pub stream: StreamSettings,
    /// The model group whose deployments these are, for budgets' scopes.
    pub group: Option<String>,
    /// Wakes calls of this chain that are waiting when a last-resort probe
    /// gets an answer: the provider it found may be the one they need.
    pub probe_answered: tokio::sync::Notify,
}

/// A model group: its deployments as a chain, ordered per call by its
/// strategy.
pub(crate) struct Group {
    /// What a call's `model` gives to reach it.
    pub name: String,
    pub capability: CapabilityId,
    pub strategy: Strategy,
    /// One per deployment of `chain`.
    pub weights: Vec<f64>,
    pub chain: Chain,
    /// Seeded from the client's seed, so that `weighted` orders repeat.
    pub rng: Mutex<rand::rngs::SmallRng>,
    /// The group (an index into [`Engine::groups`]) a call goes on to when
    /// its prompt fits none of this group's deployments.
    pub context_fallback: Option<usize>,
}

impl Group {
    /// The order in which a call of `request` asks the deployments
    /// (`models` prices deployments without a configured price).
    pub(crate) fn order(&self, request: &Request, models: &ModelTable) -> Vec<usize> {
        if self.strategy == Strategy::Ordered {
            return (0..self.chain.slots.len()).collect();
        }
        let tokens = match self.strategy {
            Strategy::Cost => TokenEstimate::of(request),
            _ => TokenEstimate::default(),
        };
        let candidates: Vec<Candidate> = self
            .chain
            .slots
            .iter()
            .zip(&self.weights)
            .map(|(slot, weight)| Candidate {
                weight: *weight,
                in_flight: slot.in_flight.load(Ordering::Relaxed),
                latency: slot.latency.get(),
                cost: slot.deployment.as_ref().and_then(|d| {
                    routing::price_of(models, slot.id(), &d.model, d.price)
                        .map(|p| p.cost_usd(tokens))
                }),
            })
            .collect();
        match self.strategy {
            Strategy::Weighted => routing::order(self.strategy, &candidates, &mut *self.rng.lock()),
            _ => routing::order(self.strategy, &candidates, &mut rand::rng()),
        }
    }
}

/// Which providers of its chain a call may ask, and how.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WalkScope<'e> {
    /// Providers (or deployments) by name that are not asked.
    pub exclude: &'e [&'e str],
    /// No provider is probed as a last resort, whatever the chain allows.
    pub no_last_resort_probe: bool,
}

/// Which chain a call walks, and in which order.
pub(crate) struct Route<'a> {
    pub chain: &'a Chain,
    /// For a group: indices into `chain.slots` in the order to ask them.
    pub order: Option<Vec<usize>>,
    /// For a group: the group itself (its `context_fallback` is where a
    /// prompt too long for it goes on).
    pub group: Option<&'a Group>,
}

/// Everything a call needs, shared by all clones of a client.
pub(crate) struct Engine {
    pub clock: SharedClock,
    pub transport: Transport,
    pub user_agent: String,
    pub state: Arc<dyn StateStore>,
    /// Indexed like [`CapabilityId::ALL`].
    pub chains: Vec<Chain>,
    /// Model groups; a handful, looked up by a call's `model`.
    pub groups: Vec<Group>,
    pub slots: Vec<Arc<ProviderSlot>>,
    /// Answers, and authoritative "not found" errors (negative caching).
    pub cache: ResponseCache<Request, Result<Arc<Answer>, Arc<Error>>>,
    /// With the cache off, calls skip it entirely.
    pub cache_enabled: bool,
    /// See [`crate::Health::config_warnings`].
    pub config_warnings: Vec<String>,
    /// LLM prices, for the cost of answers.
    pub models: ModelTable,
    /// Spending budgets of LLM calls.
    pub budgets: Vec<Budget>,
    /// Where finished calls are recorded; `None` with analytics off.
    pub analytics: Option<crate::analytics::Recorder>,
}

/// What a request reserved on its budgets, to settle once its usage is
/// known: given back when it fails or is never sent, kept when it is
/// dropped in flight (a stream cut short, a hedge cancelled: tokens may
/// have been spent that no one reported).
#[must_use]
pub(crate) struct BudgetHold {
    /// Indices into [`Engine::budgets`], with the units reserved on each.
    charges: Vec<(usize, u64)>,
    /// The price the reservation of a dollar budget went by.
    price: Option<Price>,
}

/// Why a request's budgets refused it.
struct BudgetRefusal {
    text: String,
    retry_after: Option<Duration>,
}

/// How one provider's turn ended.
enum Turn<A> {
    Answered(A),
    /// Failed or skipped; the chain goes on.
    Failed,
    /// The provider refused the content (in these words) and the chain
    /// must not go on.
    Refused(String),
    DeadlinePassed,
}

/// One provider's turn: how it ended, its trail entry, and when asking it
/// again within this call could make sense.
struct TurnEnd<A> {
    turn: Turn<A>,
    entry: Attempt,
    again_at: Option<Duration>,
    line: LineWait,
}

/// A turn's dealings with the provider's rate-limit line.
#[derive(Default)]
struct LineWait {
    /// The turn ended at the rate limiter: the next one waits in line.
    at_limiter: bool,
    /// Time spent in line.
    waited: Duration,
}

/// How a turn is to be run.
struct TurnPlan {
    /// When the turn starts (monotonic).
    started: Duration,
    /// The call's total deadline.
    deadline: Duration,
    /// Where this turn must stop so that the next provider still has
    /// `min_fallback_time`; `deadline` for the last available provider.
    stop_at: Duration,
    /// Set when this turn is a last-resort probe.
    probe: Option<ProbeGuard>,
    hedged: bool,
    /// Most tries in this turn (1 for a probe or a provider's second
    /// chance).
    max_tries: u32,
    /// Wait in the provider's rate-limit line for a slot, until at most
    /// `wait_until`.
    in_line: bool,
    wait_until: Duration,
    /// Another provider may still be asked in this call (now, later or by
    /// a last-resort probe).
    others_left: bool,
}

/// The error a fetch hands to the cache: cloneable for coalesced waiters.
#[derive(Clone)]
struct ChainError(Arc<Error>);

/// One call's walk over its chain: the trail and, per provider, when it may
/// be asked (again).
struct Walk<'a> {
    chain: &'a Chain,
    /// A group's order for this call: position `i` of the walk is
    /// `chain.slots[order[i]]`; `None`: the chain's own order.
    order: Option<Vec<usize>>,
    capability: CapabilityId,
    deadline: Duration,
    /// Whether a provider may be probed as a last resort (the chain's
    /// setting, unless the call asks for none).
    last_resort_probe: bool,
    /// Indexed by position in the walk (see [`Walk::slot`]).
    slots: Vec<SlotWalk>,
    attempts: Vec<Attempt>,
    waited: Duration,
    /// Per position, the context window of the model the call runs on
    /// there, when known; empty when no window is known (nothing to
    /// check).
    windows: Vec<Option<u64>>,
    /// The tokens the call needs a window to hold
    /// ([`routing::context_need`]); 0 when `windows` is empty.
    need: u64,
    /// The largest known window that refused the prompt as too long in
    /// this call (in this group or one it fell back from), and its model
    /// as `provider/model`: no window as small fits either.
    refused: Option<(u64, String)>,
    /// The model the call names, when `windows` is not empty (for the
    /// trail).
    named_model: Option<String>,
}

/// Where one provider stands in a call.
#[derive(Clone, Default)]
struct SlotWalk {
    /// `Some(t)`: may be asked at `t`; `None`: done for this call.
    ready: Option<Duration>,
    /// Its entry in the trail, once it has one.
    entry: Option<usize>,
    /// What the call waited for before asking it again.
    note: Option<String>,
    /// It failed once in this call and has had (or been given) its second
    /// chance.
    second_chance: bool,
    /// Its next turn waits in its rate-limit line.
    in_line: bool,
    /// When a request to it last failed in this call: this call does not
    /// probe it again within a probe interval (other calls may).
    failed_at: Option<Duration>,
}

impl<'a> Walk<'a> {
    /// The walk of a call of `request` over `route`, started at `started`;
    /// `models` gives the context windows of models a call names, and
    /// `refused` the largest window that already refused the prompt.
    fn new(
        route: Route<'a>,
        request: &Request,
        models: &ModelTable,
        started: Duration,
        refused: Option<(u64, String)>,
    ) -> Self {
        let Route { chain, order, .. } = route;
        let n = chain.slots.len();
        let capability = request.capability();
        let slot = |i: usize| match &order {
            Some(order) => &chain.slots[order[i]],
            None => &chain.slots[i],
        };
        // Only LLM calls have windows; most chains know none for a call
        // that names no model, and then the prompt is not even counted.
        let mut windows = Vec::new();
        if matches!(
            capability,
            CapabilityId::LlmChat | CapabilityId::LlmEmbeddings
        ) {
            windows = (0..n)
                .map(|i| slot(i).context_window(request, models))
                .collect();
            if windows.iter().all(Option::is_none) {
                windows.clear();
            }
        }
        let need = match windows.is_empty() {
            true => 0,
            false => routing::context_need(request).unwrap_or(0),
        };
        Self {
            named_model: match windows.is_empty() {
                true => None,
                false => request.model().map(str::to_string),
            },
            windows,
            need,
            refused,
            chain,
            order,
            capability,
            deadline: started.saturating_add(chain.total_timeout),
            last_resort_probe: chain.last_resort_probe,
            slots: vec![
                SlotWalk {
                    ready: Some(started),
                    ..SlotWalk::default()
                };
                n
            ],
            attempts: Vec::with_capacity(n),
            waited: Duration::ZERO,
        }
    }

    /// The provider at position `i` of this call's order.
    fn slot(&self, i: usize) -> &'a Arc<ProviderSlot> {
        let chain: &'a Chain = self.chain;
        match &self.order {
            Some(order) => &chain.slots[order[i]],
            None => &chain.slots[i],
        }
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn ready_now(&self, i: usize, now: Duration) -> bool {
        self.slots[i].ready.is_some_and(|at| at <= now)
    }

    /// Provider `i`'s context window, when known.
    fn window(&self, i: usize) -> Option<u64> {
        self.windows.get(i).copied().flatten()
    }

    /// Whether the call may fit provider `i`'s context window: its window
    /// is unknown, or holds the estimate and is larger than every window
    /// that refused the prompt in this call.
    ///
    /// The estimate (a quarter of the characters) is close for English
    /// prose and low for code and most other scripts, so a provider is
    /// passed over only when the estimate alone is over its window; a
    /// prompt that passes and still does not fit gets the provider's own
    /// `context_length_exceeded`, which is authoritative.
    fn fits(&self, i: usize) -> bool {
        self.window(i).is_none_or(|window| {
            window >= self.need
                && self
                    .refused
                    .as_ref()
                    .is_none_or(|(refused, _)| window > *refused)
        })
    }

    /// Why provider `i` is passed over for its context window (the trail's
    /// words), or `None` when the call may fit it.
    fn misfit(&self, i: usize, request: &Request) -> Option<String> {
        if self.fits(i) {
            return None;
        }
        let window = self.window(i)?;
        let slot = self.slot(i);
        Some(match &self.refused {
            Some((refused, model)) if window <= *refused => format!(
                "skipped: its context window of {window} tokens is no larger than {refused} of {model}, which refused the prompt as too long"
            ),
            _ => format!(
                "skipped: estimated {} tokens > context window {window} of {}/{}",
                self.need,
                slot.id(),
                slot.model_for(request).unwrap_or("?")
            ),
        })
    }

    /// Whether another provider than `i` may still be asked in this call
    /// and looks able to answer.
    fn others_available(&self, i: usize, now: Duration) -> bool {
        (0..self.len()).any(|j| {
            j != i
                && self.slots[j].ready.is_some_and(|at| at < self.deadline)
                && self.fits(j)
                && self.slot(j).looks_available(self.capability, now)
        })
    }

    /// How much longer this call may wait in all (`max_wait` less what it
    /// has waited).
    fn wait_left(&self) -> Duration {
        self.chain.max_wait.saturating_sub(self.waited)
    }

    /// Whether another provider than `i` may still be asked in this call:
    /// now, after a wait, or by a last-resort probe.
    fn others_left(&self, i: usize, now: Duration) -> bool {
        (0..self.len()).any(|j| {
            j != i
                && self.fits(j)
                && (self.slots[j].ready.is_some_and(|at| at < self.deadline)
                    || (self.last_resort_probe && probe_candidate(self, j, now).is_some()))
        })
    }

    /// Where provider `i`'s turn must stop: early enough for the next
    /// provider to have `min_fallback_time` (at most half the time left),
    /// unless no other provider is left.
    fn stop_at(&self, i: usize, now: Duration) -> Duration {
        let left = self.deadline.saturating_sub(now);
        let reserve = self.chain.min_fallback_time.min(left / 2);
        if reserve.is_zero() || !self.others_available(i, now) {
            self.deadline
        } else {
            self.deadline - reserve
        }
    }

    /// Adds a turn's trail entry; a provider asked again keeps one entry,
    /// with its tries and time added up and what was waited for.
    ///
    /// A provider that failed as an unhealthy one does (transient, throttled
    /// without a wait, malformed reply) may be asked once more in this call,
    /// after a backoff pause and with a single try: providers flap, and the
    /// one that failed a moment ago may be the one that can answer now.
    fn record<A>(&mut self, i: usize, end: &mut TurnEnd<A>, now: Duration) {
        let slot = self.slot(i);
        let state = &mut self.slots[i];
        let unhealthy = matches!(
            end.entry.outcome,
            AttemptOutcome::Failed(
                FailureClass::Transient
                    | FailureClass::RateLimited
                    | FailureClass::MalformedResponse
            )
        );
        state.in_line = end.line.at_limiter;
        if end.entry.outcome == AttemptOutcome::Failed(FailureClass::ContextLengthExceeded) {
            if let Some(window) = self.windows.get(i).copied().flatten() {
                if self
                    .refused
                    .as_ref()
                    .is_none_or(|(refused, _)| window > *refused)
                {
                    let model = match &slot.deployment {
                        Some(d) => d.model.as_str(),
                        None => self.named_model.as_deref().unwrap_or("?"),
                    };
                    self.refused = Some((window, format!("{}/{model}", slot.id())));
                }
            }
        }
        if end.entry.tries > 0 && !matches!(end.turn, Turn::Answered(_)) {
            state.failed_at = Some(now);
        }
        self.waited += end.line.waited;
        let again_at = match end.again_at {
            None if unhealthy && !state.second_chance => {
                state.second_chance = true;
                Some(now.saturating_add(slot.backoff.delay(1)))
            }
            again_at => again_at,
        };
        state.ready = again_at.filter(|at| *at < self.deadline);
        let mut entry = end.entry.clone();
        if !end.line.waited.is_zero() {
            entry.reason = Cow::Owned(format!(
                "waited {:.0} ms in line for its rate-limit slot; {}",
                end.line.waited.as_secs_f64() * 1000.0,
                entry.reason
            ));
        }
        if let Some(note) = state.note.take() {
            entry.reason = Cow::Owned(format!("{note}; {}", entry.reason));
        }
        match state.entry {
            Some(k) if entry.tries == 0 && self.attempts[k].tries > 0 => {
                // Skipped when asked again (e.g. its breaker opened on the
                // failure): the failure stays the outcome, as on a retry
                // refused by a guard.
                let old = &mut self.attempts[k];
                old.reason = Cow::Owned(format!("{}; then {}", old.reason, entry.reason));
                old.retry_after = entry.retry_after.or(old.retry_after);
            }
            Some(k) => {
                let old = &self.attempts[k];
                entry.tries += old.tries;
                entry.elapsed += old.elapsed;
                entry.upstream += old.upstream;
                entry.hedged |= old.hedged;
                self.attempts[k] = entry;
            }
            None => {
                state.entry = Some(self.attempts.len());
                self.attempts.push(entry);
            }
        }
    }

    fn last_entry(&self, i: usize) -> Option<&Attempt> {
        self.slots[i].entry.map(|k| &self.attempts[k])
    }

    /// The error of a call of `request` that ends without an answer, at
    /// wall time `now`; the trail moves into it.
    fn failure(&mut self, deadline_passed: bool, now: DateTime<Utc>, request: &Request) -> Error {
        let capability = self.capability.as_str();
        if deadline_passed {
            return Error::Timeout {
                capability,
                deadline: self.chain.total_timeout,
                attempts: std::mem::take(&mut self.attempts),
            };
        }
        if too_long_for_all(&self.attempts) {
            let largest_window = (0..self.len())
                .filter(|i| {
                    self.last_entry(*i).is_some_and(|a| {
                        a.outcome.error_kind() == Some(ErrorKind::ContextLengthExceeded)
                    })
                })
                .filter_map(|i| self.window(i))
                .max();
            return Error::ContextLengthExceeded {
                capability,
                estimated_tokens: routing::context_need(request).unwrap_or(0),
                largest_window,
                attempts: std::mem::take(&mut self.attempts),
            };
        }
        let attempts = std::mem::take(&mut self.attempts);
        let tried: Vec<&Attempt> = attempts.iter().filter(|a| a.tries > 0).collect();
        if !tried.is_empty()
            && tried
                .iter()
                .all(|a| a.outcome == AttemptOutcome::Failed(FailureClass::NotFound))
        {
            return Error::NotFound {
                capability,
                attempts,
            };
        }
        Error::all_failed(capability, attempts, now)
    }
}

/// Whether a trail says the prompt fits no model: every entry that says
/// why the call failed is a provider passed over for its context window or
/// one that refused the prompt as too long.
fn too_long_for_all(attempts: &[Attempt]) -> bool {
    let mut kinds = attempts.iter().filter_map(|a| a.outcome.error_kind());
    kinds.next() == Some(ErrorKind::ContextLengthExceeded)
        && kinds.all(|k| k == ErrorKind::ContextLengthExceeded)
}

/// What a call does once a pass over the chain found no answer.
enum NextChance {
    /// Wait until this moment, then ask provider `i` again.
    At {
        i: usize,
        at: Duration,
        what: String,
    },
    /// Probe provider `i` now; `why` starts its trail entry.
    Probe {
        i: usize,
        guard: ProbeGuard,
        why: &'static str,
    },
    /// Wait for another call's probe to end, or until `until`, whichever
    /// comes first.
    AwaitProbe {
        wait: crate::resilience::probe::ProbeWait,
        until: Duration,
    },
}

/// A provider a last-resort probe may ask.
struct ProbeCandidate {
    i: usize,
    /// How long until it would be back on its own: candidates are probed
    /// soonest first.
    back_in: Duration,
    why: &'static str,
}

impl Engine {
    pub(crate) fn chain(&self, capability: CapabilityId) -> &Chain {
        let index = CapabilityId::ALL
            .iter()
            .position(|c| *c == capability)
            .unwrap_or(0);
        &self.chains[index]
    }

    /// Counts an LLM answer's tokens and cost in `slot`'s stats; its cost
    /// in US dollars, when known.
    pub(crate) fn record_spend(&self, slot: &ProviderSlot, data: &Data) -> Option<f64> {
        let spend = self.models.spend(slot.id(), data)?;
        slot.stats.spend(&spend);
        spend.cost_usd
    }

    /// What this call cost: nothing for an answer served from the cache
    /// (nothing was spent on it), else its provider's price of it; `None`
    /// when not known (and for answers that are not an LLM's).
    pub(crate) fn call_cost(&self, answer: &Answer, cached: bool) -> Option<f64> {
        let spend = self.models.spend(answer.provider, &answer.data)?;
        if cached {
            Some(0.0)
        } else {
            spend.cost_usd
        }
    }

    /// Reserves the estimate of `request`, about to be sent to `slot`
    /// (a deployment of `group`, if any), on every budget that counts it,
    /// all or none. `Ok(None)`: no budget counts it.
    async fn reserve_budgets(
        &self,
        slot: &ProviderSlot,
        group: Option<&str>,
        request: &Request,
    ) -> Result<Option<BudgetHold>, BudgetRefusal> {
        if self.budgets.is_empty()
            || !matches!(
                request.capability(),
                CapabilityId::LlmChat | CapabilityId::LlmEmbeddings
            )
        {
            return Ok(None);
        }
        let spender = Spender {
            provider: slot.id(),
            deployment: slot.deployment_name(),
            group,
            tag: request.tag(),
        };
        let model = slot
            .deployment
            .as_ref()
            .map(|d| d.model.as_str())
            .or(request.model());
        let price = model.and_then(|model| {
            routing::price_of(
                &self.models,
                slot.id(),
                model,
                slot.deployment.as_ref().and_then(|d| d.price),
            )
        });
        let tokens = TokenEstimate::of(request);
        let mut charges = Vec::new();
        let mut held = Vec::new();
        for (i, budget) in self.budgets.iter().enumerate() {
            if !budget.counts(&spender) {
                continue;
            }
            let Some(units) = budget.estimate(tokens, price) else {
                return Err(BudgetRefusal {
                    text: format!(
                        "skipped: budget {} is in dollars and {}/{} has no price (set [models.\"{}/{}\"] or the deployment's price)",
                        budget.limit.name,
                        slot.id(),
                        model.unwrap_or("<its default model>"),
                        slot.id(),
                        model.unwrap_or("MODEL"),
                    ),
                    retry_after: None,
                });
            };
            charges.push(BudgetCharge {
                budget: budget.limit,
                units,
            });
            held.push((i, units));
        }
        if charges.is_empty() {
            return Ok(None);
        }
        match self.state.reserve_budgets(&charges).await {
            BudgetDecision::Reserved => Ok(Some(BudgetHold {
                charges: held,
                price,
            })),
            BudgetDecision::Exhausted {
                budget,
                left,
                reset_at,
            } => {
                let wanted = charges
                    .iter()
                    .find(|c| c.budget.name == budget)
                    .map_or(0, |c| c.units);
                let usd = self
                    .budgets
                    .iter()
                    .any(|b| b.limit.name == budget && b.unit == BudgetUnit::Usd);
                let amount = |units: u64| {
                    if usd {
                        format!("${:.6}", units as f64 / 1e6)
                    } else {
                        format!("{units} tokens")
                    }
                };
                let retry_after = (reset_at - self.clock.wall()).to_std().unwrap_or_default();
                Err(BudgetRefusal {
                    text: format!(
                        "skipped: budget {budget} has {} left, the request is estimated at {}, until {}",
                        amount(left),
                        amount(wanted),
                        reset_at.format("%Y-%m-%d %H:%M:%S UTC")
                    ),
                    retry_after: Some(retry_after),
                })
            }
        }
    }

    /// Settles a reservation with what the answer `data` of `provider`
    /// reports: the difference is given back or charged (past the limit if
    /// need be); a budget whose usage the answer does not report keeps the
    /// estimate.
    pub(crate) async fn settle_budgets(&self, hold: BudgetHold, provider: &str, data: &Data) {
        let spend = self.models.spend(provider, data);
        for (i, reserved) in hold.charges {
            let Some(budget) = self.budgets.get(i) else {
                continue;
            };
            let Some(actual) = spend
                .as_ref()
                .and_then(|spend| budget.actual(spend, hold.price))
            else {
                continue;
            };
            let delta = i64::try_from(actual)
                .unwrap_or(i64::MAX)
                .saturating_sub(i64::try_from(reserved).unwrap_or(i64::MAX));
            self.state.adjust_budget(budget.limit, delta).await;
        }
    }

    /// Gives a reservation back: its request failed or was never sent.
    async fn release_budgets(&self, hold: Option<BudgetHold>) {
        let Some(hold) = hold else {
            return;
        };
        for (i, reserved) in hold.charges {
            if let Some(budget) = self.budgets.get(i) {
                let delta = -i64::try_from(reserved).unwrap_or(i64::MAX);
                self.state.adjust_budget(budget.limit, delta).await;
            }
        }
    }

    /// Every budget's state now, by name.
    pub(crate) fn budget_snapshots(
        &self,
    ) -> std::collections::BTreeMap<&'static str, BudgetSnapshot> {
        self.budgets
            .iter()
            .map(|budget| {
                let counter = self.state.budget_snapshot(budget.limit);
                (budget.limit.name, budget.snapshot(&counter))
            })
            .collect()
    }

    /// The chain a call of `request` walks: its `model`'s group, in the
    /// order the group's strategy picks for this call, or its capability's
    /// chain.
    pub(crate) fn route(&self, request: &Request) -> Result<Route<'_>, Error> {
        let capability = request.capability();
        // A linear scan: groups are few, and most calls name none.
        let group = match request.model() {
            Some(model) if !self.groups.is_empty() => self.groups.iter().find(|g| g.name == model),
            _ => None,
        };
        match group {
            None => Ok(Route {
                chain: self.chain(capability),
                order: None,
                group: None,
            }),
            Some(group) if group.capability != capability => Err(Error::invalid(
                "model",
                format!(
                    "{} is a group of {}, not of {}",
                    crate::echo::echo(&group.name),
                    group.capability.as_str(),
                    capability.as_str()
                ),
            )),
            Some(group) => Ok(self.group_route(group, request)),
        }
    }

    /// Group `group`'s route for a call of `request`.
    fn group_route<'a>(&'a self, group: &'a Group, request: &Request) -> Route<'a> {
        Route {
            chain: &group.chain,
            order: Some(group.order(request, &self.models)),
            group: Some(group),
        }
    }

    /// Runs one call through cache, deadline and fallback chain, in its
    /// `polyrelay.call` span (the root of the call's attempts; a cache hit
    /// has none). Its fields are names and classes only, never a parameter,
    /// URL or key: the span is exported as is by the `otel` feature.
    pub(crate) async fn call(self: &Arc<Self>, request: Request) -> Result<CallResult, Error> {
        use tracing::field::Empty;
        let span = tracing::info_span!(
            "polyrelay.call",
            capability = request.capability().as_str(),
            outcome = Empty,
            cached = Empty,
            stale = Empty,
            provider = Empty,
            error.type = Empty,
            otel.status_code = Empty,
        );
        // Pinned in place and polled inside the span, rather than moved
        // into `Instrumented`: the call's future is several KB and each
        // move copies it whole (two copies a call, cache hits included).
        let mut call = std::pin::pin!(self.call_in_span(request));
        let result = std::future::poll_fn(|cx| {
            span.in_scope(|| std::future::Future::poll(call.as_mut(), cx))
        })
        .await;
        match &result {
            Ok(result) => {
                span.record("outcome", "success");
                span.record("cached", result.cached);
                span.record("stale", result.stale);
                span.record("provider", result.answer.provider);
            }
            Err(error) => {
                let kind = error.kind().as_str();
                span.record("outcome", kind);
                span.record("error.type", kind);
                span.record("otel.status_code", "error");
            }
        }
        result
    }

    /// [`Engine::call`] inside its span.
    async fn call_in_span(self: &Arc<Self>, request: Request) -> Result<CallResult, Error> {
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

    /// The fallback chain under one total deadline: in the caller's
    /// `polyrelay.call` span, or, as a background cache refresh (spawned,
    /// outside any call), in a `polyrelay.refresh` span of its own.
    async fn run_chain(&self, request: &Request) -> Result<(Arc<Answer>, Vec<Attempt>), Error> {
        let span = if tracing::Span::current().is_none() {
            tracing::info_span!(
                "polyrelay.refresh",
                capability = request.capability().as_str()
            )
        } else {
            tracing::Span::current()
        };
        if request.capability().composed_of().is_some() {
            return self.meta_search(request).instrument(span).await;
        }
        self.walk_chain(&Plain(request), WalkScope::default())
            .instrument(span)
            .await
    }

    /// The fallback chain under one total deadline: the first answer of
    /// exchange `x`, with the trail, over the providers `scope` allows.
    ///
    /// A group call whose prompt fits none of the group's deployments (each
    /// passed over for its context window or refusing the prompt as too
    /// long) goes on to the group's `context_fallback` group, under the
    /// same deadline, and so on; the trail holds every group's entries.
    pub(crate) async fn walk_chain<X: Exchange>(
        &self,
        x: &X,
        scope: WalkScope<'_>,
    ) -> Result<(X::Answer, Vec<Attempt>), Error> {
        let mut route = self.route(x.request())?;
        let started = self.clock.now();
        let mut trail: Vec<Attempt> = Vec::new();
        // The largest window of the groups walked so far.
        let mut largest: Option<u64> = None;
        let mut from: Option<&str> = None;
        let mut refused = None;
        let mut hops = 0;
        loop {
            let group = route.group;
            let mut error = match self
                .walk_route(x, route, scope, started, from, &mut refused)
                .await
            {
                Ok((answer, attempts)) => {
                    trail.extend(attempts);
                    return Ok((answer, trail));
                }
                Err(error) => error,
            };
            trail.extend_from_slice(error.attempts());
            if let Error::ContextLengthExceeded { largest_window, .. } = &mut error {
                *largest_window = (*largest_window).max(largest);
                largest = *largest_window;
            }
            // Configuration refuses cycles; the hops are bounded all the same.
            hops += 1;
            let fallback = group
                .and_then(|g| g.context_fallback.map(|k| (g, &self.groups[k])))
                .filter(|_| {
                    matches!(error, Error::ContextLengthExceeded { .. })
                        && hops <= self.groups.len()
                });
            match fallback {
                Some((group, next)) => {
                    from = Some(&group.name);
                    route = self.group_route(next, x.request());
                }
                None => return Err(error.with_attempts(trail)),
            }
        }
    }

    /// One walk of a call over `route`, under the deadline of a call
    /// started at `started`; `from` names the group whose context fallback
    /// this route is.
    async fn walk_route<X: Exchange>(
        &self,
        x: &X,
        route: Route<'_>,
        scope: WalkScope<'_>,
        started: Duration,
        from: Option<&str>,
        refused: &mut Option<(u64, String)>,
    ) -> Result<(X::Answer, Vec<Attempt>), Error> {
        let chain = route.chain;
        let mut walk = Walk::new(route, x.request(), &self.models, started, refused.take());
        walk.last_resort_probe &= !scope.no_last_resort_probe;
        for i in 0..walk.len() {
            if scope.exclude.contains(&walk.slot(i).name()) {
                walk.slots[i].ready = None;
            }
            if let Some(group) = from {
                walk.slots[i].note = Some(format!("context fallback from group {group}"));
            }
        }
        if let Some(hedging) = &chain.hedging {
            hedging.deposit();
        }
        let result = async {
            let mut probe = None;
            // Probe answers up to here have been looked at.
            let mut looked = started;
            loop {
                match self.pass(x, &mut walk, probe.take()).await {
                    Turn::Answered(answer) => {
                        return Ok((answer, std::mem::take(&mut walk.attempts)))
                    }
                    Turn::DeadlinePassed => {
                        return Err(walk.failure(true, self.clock.wall(), x.request()))
                    }
                    Turn::Refused(reason) => return Err(content_filtered(&mut walk, reason)),
                    Turn::Failed => {}
                }
                // Registered before looking, so that a probe answering from
                // here on wakes this call.
                let mut probe_answered = std::pin::pin!(chain.probe_answered.notified());
                probe_answered.as_mut().enable();
                let now = self.clock.now();
                // A provider that answered another call's probe (or closed its
                // breaker) while this call was busy with its own turns.
                let since = std::mem::replace(&mut looked, now);
                if self.found_by_probes(&mut walk, since, now, false) {
                    continue;
                }
                match self.next_chance(&walk, now) {
                    None => return Err(walk.failure(false, self.clock.wall(), x.request())),
                    Some(NextChance::At { i, at, what }) => {
                        let wait = at.saturating_sub(now).max(MIN_WAIT);
                        let woken = tokio::select! {
                            _ = self.clock.backoff(wait) => false,
                            _ = probe_answered => true,
                        };
                        let ended = self.clock.now();
                        walk.waited += ended.saturating_sub(now);
                        if woken {
                            self.found_by_probes(&mut walk, now, ended, true);
                            looked = ended;
                            continue;
                        }
                        walk.slots[i].note = Some(format!(
                            "waited {:.0} ms for {what}",
                            wait.as_secs_f64() * 1000.0
                        ));
                        walk.slots[i].ready = Some(ended);
                    }
                    Some(NextChance::Probe { i, guard, why }) => {
                        walk.slots[i].note = Some(why.into());
                        walk.slots[i].ready = Some(now);
                        probe = Some((i, guard));
                    }
                    Some(NextChance::AwaitProbe { wait, until }) => {
                        let (answered, woken) = tokio::select! {
                            answered = wait.ended() => (answered, false),
                            _ = self.clock.sleep_until(until.min(walk.deadline)) => (false, false),
                            _ = probe_answered => (false, true),
                        };
                        let ended = self.clock.now();
                        walk.waited += ended.saturating_sub(now);
                        if ended >= walk.deadline {
                            return Err(walk.failure(true, self.clock.wall(), x.request()));
                        }
                        // The probe awaited (`answered`) recorded its answer
                        // after `now`, like any other that woke the call.
                        if answered || woken {
                            self.found_by_probes(&mut walk, now, ended, true);
                            looked = ended;
                        }
                    }
                }
            }
        }
        .await;
        // What the walk learnt of windows goes on to a fallback group.
        *refused = walk.refused.take();
        result
    }

    /// Every provider whose probe (or half-open trial) answered since
    /// `since` may be asked at once: after a wait cut short by that answer
    /// (`after_wait`), or when it came during this call's own turns.
    /// Returns whether there was any.
    fn found_by_probes(
        &self,
        walk: &mut Walk<'_>,
        since: Duration,
        now: Duration,
        after_wait: bool,
    ) -> bool {
        let capability = walk.capability;
        let mut found = false;
        for i in 0..walk.len() {
            let slot = walk.slot(i);
            let state = &mut walk.slots[i];
            if slot
                .probe(capability)
                .is_some_and(|p| p.answered_since(since))
            {
                state.note = Some(if after_wait {
                    format!(
                        "waited {:.0} ms, until another call's probe of it answered",
                        now.saturating_sub(since).as_secs_f64() * 1000.0
                    )
                } else {
                    "another call's probe of it answered meanwhile".to_string()
                });
                state.ready = Some(now);
                found = true;
            }
        }
        found
    }

    /// One pass: asks, in chain order, every provider that may be asked
    /// now. `probe` makes provider `i`'s turn a last-resort probe.
    async fn pass<X: Exchange>(
        &self,
        x: &X,
        walk: &mut Walk<'_>,
        mut probe: Option<(usize, ProbeGuard)>,
    ) -> Turn<X::Answer> {
        let chain = walk.chain;
        let mut i = 0;
        while i < walk.len() {
            let now = self.clock.now();
            if now >= walk.deadline {
                return Turn::DeadlinePassed;
            }
            if !walk.ready_now(i, now) {
                i += 1;
                continue;
            }
            if let Some(reason) = walk.misfit(i, x.request()) {
                // Passed over at no cost: nothing is sent, no guard spent.
                let slot = walk.slot(i);
                slot.stats
                    .outcome(AttemptOutcome::Skipped(SkipReason::ContextWindow).as_str());
                let mut end: TurnEnd<X::Answer> = TurnEnd {
                    turn: Turn::Failed,
                    entry: Attempt {
                        provider: slot.id(),
                        deployment: slot.deployment_name(),
                        outcome: AttemptOutcome::Skipped(SkipReason::ContextWindow),
                        status: None,
                        tries: 0,
                        elapsed: Duration::ZERO,
                        upstream: std::time::Duration::ZERO,
                        reason: Cow::Owned(reason),
                        retry_after: None,
                        hedged: false,
                        cost_usd: None,
                    },
                    again_at: None,
                    line: LineWait::default(),
                };
                walk.record(i, &mut end, now);
                i += 1;
                continue;
            }
            let stop_at = walk.stop_at(i, now);
            let this_probe = probe.take_if(|(p, _)| *p == i).map(|(_, guard)| guard);
            let probing = this_probe.is_some();
            let plan = TurnPlan {
                started: now,
                deadline: walk.deadline,
                stop_at,
                probe: this_probe,
                hedged: false,
                // A probe is one trial, and a second chance one try.
                max_tries: if probing
                    || (walk.slots[i].second_chance && walk.slots[i].entry.is_some())
                {
                    1
                } else {
                    u32::MAX
                },
                in_line: std::mem::take(&mut walk.slots[i].in_line),
                others_left: walk.others_left(i, now),
                wait_until: stop_at.min(now.saturating_add(walk.wait_left())),
            };
            let hedge = match (&chain.hedging, plan.probe.is_none()) {
                (Some(hedging), true) => self.hedge_partner(x, walk, i, now, hedging),
                _ => None,
            };
            let turn = match hedge {
                Some((j, after)) => {
                    // Boxed: two provider turns side by side would double
                    // the size of every call's future, hedged or not, and
                    // each move of it costs a copy (hedging is off by default).
                    let (turn, asked) =
                        Box::pin(self.hedged_turns(x, walk, i, j, plan, after)).await;
                    if asked {
                        // The partner had its turn: the pass goes on after it.
                        i = j;
                    }
                    turn
                }
                None => {
                    // Not boxed, unlike the hedged pair: it would save
                    // copies, but its allocation cost more than they did
                    // (BENCHMARKS.md, instructions per request).
                    let mut end = self.provider_turn(walk.slot(i), chain, x, plan).await;
                    walk.record(i, &mut end, self.clock.now());
                    end.turn
                }
            };
            match turn {
                Turn::Failed => i += 1,
                ended => return ended,
            }
        }
        Turn::Failed
    }

    /// The provider to hedge provider `i` with, and after how long: the next
    /// provider that can be asked now, when `i`'s request is safe to send
    /// twice (a GET, or a provider that de-duplicates by idempotency key).
    fn hedge_partner<X: Exchange>(
        &self,
        x: &X,
        walk: &Walk<'_>,
        i: usize,
        now: Duration,
        hedging: &Hedging,
    ) -> Option<(usize, Duration)> {
        let slot = walk.slot(i);
        let ctx = CallContext {
            base_url: &slot.base_url,
            user_agent: &self.user_agent,
        };
        let repeatable = slot.provider.idempotency_header().is_some()
            || x.first_request(slot, &ctx).is_ok_and(|r| r.is_idempotent());
        if !repeatable || !slot.looks_available(walk.capability, now) {
            return None;
        }
        let after = hedging.delay_for(&slot.recent)?;
        let j = (i + 1..walk.len()).find(|&j| {
            walk.ready_now(j, now)
                && walk.fits(j)
                && walk.slot(j).looks_available(walk.capability, now)
        })?;
        Some((j, after))
    }

    /// Provider `i`'s turn, raced by provider `j`'s if `i` has not answered
    /// after `after` and the hedge budget allows. The first answer wins and
    /// the other turn is cancelled (its request closed). Returns the pass's
    /// outcome and whether `j` was asked.
    async fn hedged_turns<X: Exchange>(
        &self,
        x: &X,
        walk: &mut Walk<'_>,
        i: usize,
        j: usize,
        plan: TurnPlan,
        after: Duration,
    ) -> (Turn<X::Answer>, bool) {
        let chain = walk.chain;
        let hedging = chain.hedging.as_ref();
        let (first_slot, second_slot) = (walk.slot(i), walk.slot(j));
        let started = plan.started;
        let deadline = plan.deadline;
        let mut first = std::pin::pin!(self.provider_turn(first_slot, chain, x, plan));
        let hedge_at = started.saturating_add(after);
        let end = tokio::select! {
            biased;
            end = &mut first => Some(end),
            _ = self.clock.sleep_until(hedge_at) => None,
        };
        let mut end = match end {
            Some(end) => end,
            None if hedging.is_some_and(Hedging::withdraw) => {
                let hedge_started = self.clock.now();
                let second_plan = TurnPlan {
                    started: hedge_started,
                    deadline,
                    stop_at: deadline,
                    probe: None,
                    hedged: true,
                    max_tries: u32::MAX,
                    in_line: false,
                    wait_until: hedge_started,
                    others_left: true,
                };
                let mut second =
                    std::pin::pin!(self.provider_turn(second_slot, chain, x, second_plan));
                // Whichever answers first wins; a failure waits for the other.
                let (winner, mut first_end, mut second_end) = tokio::select! {
                    end = &mut first => (0, Some(end), None),
                    end = &mut second => (1, None, Some(end)),
                };
                let won = |end: &Option<TurnEnd<X::Answer>>| {
                    end.as_ref()
                        .is_some_and(|e| matches!(e.turn, Turn::Answered(_)))
                };
                if !won(&first_end) && !won(&second_end) {
                    if winner == 0 {
                        second_end = Some(second.await);
                    } else {
                        first_end = Some(first.await);
                    }
                }
                let now = self.clock.now();
                let mut first_end =
                    first_end.unwrap_or_else(|| cancelled(first_slot, started, now));
                let mut second_end =
                    second_end.unwrap_or_else(|| cancelled(second_slot, hedge_started, now));
                second_end.entry.hedged = true;
                walk.record(i, &mut first_end, now);
                walk.record(j, &mut second_end, now);
                let turn = match (first_end.turn, second_end.turn) {
                    (answered @ Turn::Answered(_), _) | (_, answered @ Turn::Answered(_)) => {
                        answered
                    }
                    (refused @ Turn::Refused(_), _) | (_, refused @ Turn::Refused(_)) => refused,
                    (Turn::DeadlinePassed, _) | (_, Turn::DeadlinePassed) => Turn::DeadlinePassed,
                    _ => Turn::Failed,
                };
                return (turn, true);
            }
            None => first.await,
        };
        walk.record(i, &mut end, self.clock.now());
        (end.turn, false)
    }

    /// After a pass without an answer: the earliest moment a provider said
    /// it can answer again (within the deadline and `max_wait`), or, unless
    /// that moment is within [`WAIT_BEFORE_PROBE`], a last-resort probe of a
    /// breaker-open provider.
    fn next_chance(&self, walk: &Walk<'_>, now: Duration) -> Option<NextChance> {
        let wait_left = walk.wait_left();
        let fits = |at: Duration| at < walk.deadline && at.saturating_sub(now) <= wait_left;
        let soonest = (0..walk.len())
            .filter_map(|i| walk.slots[i].ready.map(|at| (i, at)))
            .filter(|(i, at)| fits(*at) && walk.fits(*i))
            .min_by_key(|(_, at)| *at)
            .map(|(i, at)| {
                let what = walk
                    .last_entry(i)
                    .map(|a| waited_for(walk.slot(i).name(), a))
                    .unwrap_or_default();
                NextChance::At { i, at, what }
            });
        let soon = |chance: &NextChance| matches!(chance, NextChance::At { at, .. } if *at <= now.saturating_add(WAIT_BEFORE_PROBE));
        if !walk.last_resort_probe || soonest.as_ref().is_some_and(soon) {
            return soonest;
        }
        let soonest_at = match &soonest {
            Some(NextChance::At { at, .. }) => Some(*at),
            _ => None,
        };
        let wait_until = |at: Option<Duration>| {
            at.unwrap_or(walk.deadline)
                .min(now.saturating_add(wait_left))
        };
        let mut candidates: Vec<ProbeCandidate> = (0..walk.len())
            .filter_map(|i| probe_candidate(walk, i, now))
            .collect();
        candidates.sort_by_key(|c| c.back_in);
        let probes: Vec<(&ProbeCandidate, &LastResortProbe)> = candidates
            .iter()
            .filter_map(|c| Some((c, walk.slot(c.i).probe(walk.capability)?)))
            .collect();
        // A probe that started less than PROBE_PATIENCE ago: wait for it
        // rather than send another request.
        let mut stalled = None;
        for (_, probe) in &probes {
            if let Some((since, wait)) = probe.in_flight() {
                let patience_ends = since.saturating_add(PROBE_PATIENCE);
                if now < patience_ends && !wait_left.is_zero() {
                    let until = soonest_at.map_or(patience_ends, |at| at.min(patience_ends));
                    return Some(NextChance::AwaitProbe {
                        wait,
                        until: wait_until(Some(until)),
                    });
                }
                stalled.get_or_insert(wait);
            }
        }
        let mut next_probe: Option<(usize, Duration)> = None;
        for (c, probe) in &probes {
            let own_wait = walk.slots[c.i]
                .failed_at
                .map(|at| at.saturating_add(walk.slot(c.i).settings.probe_interval))
                .filter(|at| *at > now);
            let turn = match own_wait {
                Some(at) => ProbeTurn::NotBefore(at),
                None => probe.turn(now),
            };
            match turn {
                ProbeTurn::Probe(guard) => {
                    return Some(NextChance::Probe {
                        i: c.i,
                        guard,
                        why: c.why,
                    })
                }
                ProbeTurn::Wait(wait) => {
                    stalled.get_or_insert(wait);
                }
                ProbeTurn::NotBefore(at) => {
                    if fits(at) && next_probe.is_none_or(|(_, t)| at < t) {
                        next_probe = Some((c.i, at));
                    }
                }
            }
        }
        let next_probe_at = next_probe.map(|(_, at)| at);
        match stalled {
            // Probes in flight for a while, and none can start now: wait for
            // one of them, or for the next moment something can be asked.
            Some(wait) if !wait_left.is_zero() => Some(NextChance::AwaitProbe {
                wait,
                until: wait_until(soonest_at.into_iter().chain(next_probe_at).min()),
            }),
            _ => match next_probe {
                Some((i, at)) if soonest_at.is_none_or(|other| at < other) => {
                    Some(NextChance::At {
                        i,
                        at,
                        what: format!("{}'s next last-resort probe", walk.slot(i).name()),
                    })
                }
                _ => soonest,
            },
        }
    }

    /// One provider's turn: guards, tries with retry, and the trail entry.
    async fn provider_turn<X: Exchange>(
        &self,
        slot: &Arc<ProviderSlot>,
        chain: &Chain,
        x: &X,
        plan: TurnPlan,
    ) -> TurnEnd<X::Answer> {
        let id = slot.id();
        let started = plan.started;
        let ctx = CallContext {
            base_url: &slot.base_url,
            user_agent: &self.user_agent,
        };
        let mut entry = Attempt {
            provider: id,
            deployment: slot.deployment_name(),
            outcome: AttemptOutcome::Answered,
            status: None,
            tries: 0,
            elapsed: Duration::ZERO,
            upstream: std::time::Duration::ZERO,
            reason: Cow::Borrowed(""),
            retry_after: None,
            hedged: plan.hedged,
            cost_usd: None,
        };
        // Skips that cost nothing: the provider cannot serve this request,
        // has no key, or is benched.
        // A call pinned to another provider is one this provider cannot serve.
        let built = match x.request().pinned_provider().filter(|p| *p != id) {
            Some(pinned) => Err(ProviderFailure::unsupported(format!(
                "the call is pinned to {pinned}"
            ))
            .not_sent()),
            None => x.first_request(slot, &ctx),
        };
        let first = match built {
            Err(failure) => Err((
                AttemptOutcome::Failed(failure.class),
                format!("skipped: {failure}"),
                None,
            )),
            Ok(_) if slot.missing_key() => Err((
                AttemptOutcome::Skipped(SkipReason::NoKey),
                format!("skipped: {} is not set", slot.key_env),
                None,
            )),
            Ok(first) => match slot.benched(started) {
                Some((_, cause)) if plan.probe.is_some() && cause.may_be_probed() => Ok(first),
                Some((left, cause)) => Err((
                    AttemptOutcome::Skipped(SkipReason::Benched(cause)),
                    format!("skipped: benched for {:.1} s ({cause})", left.as_secs_f64()),
                    Some(left),
                )),
                None => Ok(first),
            },
        };
        let mut line = LineWait::default();
        let (turn, again_at) = match first {
            Ok(first) => {
                self.tries(slot, chain, x, &first, &plan, &mut entry, &mut line)
                    .await
            }
            Err((outcome, reason, retry_after)) => {
                entry.outcome = outcome;
                entry.reason = Cow::Owned(reason);
                entry.retry_after = retry_after;
                (Turn::Failed, retry_after.map(|r| started.saturating_add(r)))
            }
        };
        let ended = self.clock.now();
        entry.elapsed = ended.saturating_sub(started);
        slot.stats.outcome(entry.outcome.as_str());
        tracing::debug!(
            provider = id,
            deployment = entry.deployment,
            outcome = entry.outcome.as_str(),
            tries = entry.tries,
            elapsed_ms = entry.elapsed.as_secs_f64() * 1000.0,
            reason = %entry.reason,
            "provider turn"
        );
        TurnEnd {
            turn,
            entry,
            again_at,
            line,
        }
    }

    /// The retry loop of one provider. Returns how the turn ended and when
    /// asking the provider again could make sense.
    #[allow(clippy::too_many_arguments)]
    async fn tries<X: Exchange>(
        &self,
        slot: &Arc<ProviderSlot>,
        chain: &Chain,
        x: &X,
        first: &HttpRequest,
        plan: &TurnPlan,
        entry: &mut Attempt,
        line: &mut LineWait,
    ) -> (Turn<X::Answer>, Option<Duration>) {
        let ctx = &CallContext {
            base_url: &slot.base_url,
            user_agent: &self.user_agent,
        };
        let id = slot.id();
        // Limits and quotas are the slot's: a deployment's are its own.
        let name = slot.name();
        let retry: &RetryConfig = &slot.settings.retry;
        let (try_timeout, awaited) = x.try_timeout(retry);
        let capability = x.request().capability();
        let tokens = slot.deployment.as_ref().and_then(|d| d.tokens.as_ref());
        let estimate = tokens.map(|_| TokenEstimate::of(x.request()).total());
        let idempotency_key = (!first.is_idempotent())
            .then(|| slot.provider.idempotency_header())
            .flatten()
            .map(|header| {
                (
                    header,
                    IdempotencyKey::generate(&mut rand::rng()).to_string(),
                )
            });
        let safe_to_repeat =
            first.is_idempotent() || !capability.has_side_effects() || idempotency_key.is_some();
        let (deadline, stop_at) = (plan.deadline, plan.stop_at);
        let probing = plan.probe.is_some();
        // Whether this probe moved the breaker from open to half-open.
        let mut probe_opened = false;
        slot.budget.deposit();
        let mut sent_at = plan.started;
        // An open breaker is known without spending a quota unit or a
        // limiter slot, or queuing for one.
        if let Some(breaker) = slot.breaker(capability) {
            if !probing && breaker.state() == CircuitState::Open {
                if let Err(rejected) = breaker.try_acquire() {
                    return refuse_open(entry, rejected, self.clock.now());
                }
            }
        }
        let mut place = None;
        if plan.in_line {
            let started = self.clock.now();
            tokio::select! {
                biased;
                first = slot.line.first_in_line() => place = Some(first),
                _ = self.clock.sleep_until(plan.wait_until) => {}
            }
            line.waited += self.clock.now().saturating_sub(started);
            if place.is_none() {
                refuse(
                    entry,
                    SkipReason::RateLimit,
                    "skipped: still in line for a rate-limit slot".into(),
                    None,
                );
                return (Turn::Failed, None);
            }
        }
        loop {
            let mut now = self.clock.now();
            // Calls in line for a slot go first (a probe, at most one per
            // probe interval, does not wait).
            let queued = slot.line.len();
            if place.is_none() && !probing && queued > 0 {
                line.at_limiter = true;
                refuse(
                    entry,
                    SkipReason::RateLimit,
                    format!("skipped: {queued} calls in line for a rate-limit slot"),
                    None,
                );
                return (Turn::Failed, Some(now));
            }
            // Guards: each try spends one quota unit and one limiter token,
            // asked together so a shared store answers in one round trip.
            let admission = loop {
                match self.state.admit(name, 1).await {
                    // At the head of the line: wait for the slot.
                    Admission::RateLimited { retry_after }
                        if place.is_some() && now.saturating_add(retry_after) < plan.wait_until =>
                    {
                        let wait = retry_after.max(MIN_WAIT);
                        self.clock.backoff(wait).await;
                        line.waited += wait;
                        now = self.clock.now();
                    }
                    admission => break admission,
                }
            };
            // Out of the line, admitted or not.
            place = None;
            match admission {
                Admission::Admitted => {}
                Admission::QuotaExhausted {
                    reset_at,
                    retry_after,
                } => {
                    refuse(
                        entry,
                        SkipReason::Quota,
                        format!(
                            "skipped: quota used up until {}",
                            reset_at.format("%Y-%m-%d %H:%M:%S UTC")
                        ),
                        Some(retry_after),
                    );
                    return (Turn::Failed, Some(now.saturating_add(retry_after)));
                }
                Admission::RateLimited { retry_after } => {
                    line.at_limiter = true;
                    refuse(
                        entry,
                        SkipReason::RateLimit,
                        format!(
                            "skipped: client rate limit, next slot in {:.3} s",
                            retry_after.as_secs_f64()
                        ),
                        Some(retry_after),
                    );
                    return (Turn::Failed, Some(now.saturating_add(retry_after)));
                }
                Admission::InsufficientCapacity { burst } => {
                    refuse(
                        entry,
                        SkipReason::RateLimit,
                        format!("skipped: rate limit burst {burst} is too small"),
                        None,
                    );
                    return (Turn::Failed, None);
                }
            }
            if let (Some(tokens), Some(estimate)) = (tokens, estimate) {
                let refused = match tokens.check(estimate) {
                    RateDecision::Allowed { .. } => None,
                    RateDecision::Limited { retry_after } => Some((
                        format!(
                            "skipped: tokens-per-minute limit, {estimate} estimated tokens fit in {:.3} s",
                            retry_after.as_secs_f64()
                        ),
                        Some(retry_after),
                    )),
                    RateDecision::InsufficientCapacity { burst } => Some((
                        format!(
                            "skipped: {estimate} estimated tokens are more than its {burst} tokens per minute"
                        ),
                        None,
                    )),
                };
                if let Some((text, retry_after)) = refused {
                    self.state.refund_quota(name, 1).await;
                    refuse(entry, SkipReason::RateLimit, text, retry_after);
                    return (
                        Turn::Failed,
                        retry_after.map(|wait| now.saturating_add(wait)),
                    );
                }
            }
            let mut hold = match self
                .reserve_budgets(slot, chain.group.as_deref(), x.request())
                .await
            {
                Ok(hold) => hold,
                Err(refusal) => {
                    self.state.refund_quota(name, 1).await;
                    if let (Some(tokens), Some(estimate)) = (tokens, estimate) {
                        tokens.settle(estimate, 0);
                    }
                    refuse(entry, SkipReason::Budget, refusal.text, refusal.retry_after);
                    return (
                        Turn::Failed,
                        refusal.retry_after.map(|wait| now.saturating_add(wait)),
                    );
                }
            };
            let breaker = slot.breaker(capability);
            if probing {
                // The last resort: a half-open trial now rather than at the
                // end of the open period. Only an open breaker is moved.
                if let Some(breaker) = breaker.filter(|b| b.state() == CircuitState::Open) {
                    probe_opened = breaker.transition_to_half_open().is_ok();
                }
            } else if slot.probe(capability).is_some_and(|p| p.probing())
                && breaker.is_some_and(|b| {
                    matches!(b.state(), CircuitState::Open | CircuitState::HalfOpen)
                })
            {
                // Another call is probing this provider: wait for its
                // outcome rather than send a second trial.
                self.state.refund_quota(name, 1).await;
                self.release_budgets(hold.take()).await;
                refuse(
                    entry,
                    SkipReason::CircuitOpen,
                    "skipped: circuit open, a last-resort probe is in flight".into(),
                    None,
                );
                return (Turn::Failed, None);
            }
            let permit = match breaker.map(CircuitBreaker::try_acquire) {
                Some(Ok(permit)) => Some(permit),
                Some(Err(rejected)) => {
                    self.state.refund_quota(name, 1).await;
                    self.release_budgets(hold.take()).await;
                    return refuse_open(entry, rejected, now);
                }
                None => None,
            };

            entry.tries += 1;
            let attempt_deadline = sent_at.saturating_add(try_timeout).min(stop_at);
            // One HTTP exchange (`otel.kind`: an OpenTelemetry client span).
            // Names, numbers and classes only, never a URL, header or key.
            let span = tracing::debug_span!(
                "polyrelay.attempt",
                provider = id,
                // As i64: an OpenTelemetry integer (u64s become text).
                attempt = i64::from(entry.tries),
                otel.kind = "client",
                outcome = tracing::field::Empty,
                http.response.status_code = tracing::field::Empty,
                error.type = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            );
            // Pinned in place: `select!` then moves a reference, not the
            // (large) future.
            let idempotency = idempotency_key.as_ref().map(|(h, k)| (*h, k.as_str()));
            let in_flight = InFlight::start(&slot.in_flight);
            let exchange = std::pin::pin!(async {
                x.exchange(self, slot, ctx, first, idempotency)
                    .await
                    .map_err(|failure| redact(failure, slot.key.as_ref()))
            }
            .instrument(span.clone()));
            let (result, timed_out) = tokio::select! {
                biased;
                result = exchange => (result, false),
                _ = self.clock.sleep_until(attempt_deadline) => (Err(ProviderFailure::new(
                    FailureClass::Transient,
                    if attempt_deadline == deadline {
                        "cut off by the total deadline".to_string()
                    } else if attempt_deadline == stop_at {
                        format!(
                            "no {awaited} within {:.3} s (the rest is kept for the next provider)",
                            attempt_deadline.saturating_sub(sent_at).as_secs_f64()
                        )
                    } else {
                        format!("no {awaited} within {:.3} s", try_timeout.as_secs_f64())
                    },
                )), true),
            };
            drop(in_flight);
            let now = self.clock.now();
            let latency = now.saturating_sub(sent_at);
            slot.stats.request(latency);
            entry.upstream += latency;
            let failure = match result {
                Ok((mut answer, status)) => {
                    slot.recent.record(latency);
                    slot.latency.record(latency);
                    slot.settle_tokens(x.request(), X::tokens_used(&answer));
                    if let Some(hold) = hold.take() {
                        if let Some(hold) = X::keep_budget(&mut answer, hold) {
                            if let Some(data) = X::answered_data(&answer) {
                                self.settle_budgets(hold, id, data).await;
                            }
                        }
                    }
                    let mut closed_breaker = false;
                    if let Some(permit) = permit {
                        let breaker = slot.breaker(capability);
                        let trial = breaker.is_some_and(|b| b.state() == CircuitState::HalfOpen);
                        permit.record(Outcome::Success, latency);
                        closed_breaker =
                            trial && breaker.is_some_and(|b| b.state() == CircuitState::Closed);
                    }
                    // A last-resort probe that answered, or an answer that
                    // closed the breaker: the provider is back, and calls
                    // waiting for any provider may ask it now.
                    if plan.probe.is_some() || closed_breaker {
                        if plan.probe.is_some() {
                            slot.end_bench();
                        }
                        if let Some(probe) = slot.probe(capability) {
                            probe.record_answer(now);
                        }
                        chain.probe_answered.notify_waiters();
                    }
                    span.record("outcome", "success");
                    span.record("http.response.status_code", i64::from(status));
                    span.in_scope(|| {
                        tracing::debug!(
                            outcome = "success",
                            elapsed_ms = latency.as_secs_f64() * 1000.0,
                            "attempt"
                        )
                    });
                    entry.outcome = AttemptOutcome::Answered;
                    entry.status = Some(status);
                    if let Some(data) = X::answered_data(&answer) {
                        entry.cost_usd = self.record_spend(slot, data);
                    }
                    entry.reason = Cow::Borrowed(match &plan.probe {
                        Some(guard) => {
                            guard.answered();
                            "answered a last-resort probe"
                        }
                        None => "answered",
                    });
                    return (Turn::Answered(answer), None);
                }
                Err(failure) => failure,
            };
            self.release_budgets(hold.take()).await;
            if failure.status.is_some() {
                // A reply, even an error, says how fast the provider is.
                slot.recent.record(latency);
            }
            if failure.status.is_some() || timed_out {
                // A try that timed out counts its whole wait, so a hanging
                // deployment sinks in the `lowest_latency` order.
                slot.latency.record(latency);
            }
            let decision = policy::after_failure(Facts {
                safe_to_repeat,
                timed_out,
                last_available: !plan.others_left,
                content_filtered_fallback: chain.content_filtered_fallback,
                ..Facts::of(&failure)
            });
            if let Some(permit) = permit {
                permit.record(decision.breaker, latency);
            }
            if probe_opened && decision.breaker == Outcome::Failure {
                // A failed last resort re-opens the breaker at once rather
                // than leaving the rest of its half-open trials to other
                // calls.
                if let Some(breaker) = slot.breaker(capability) {
                    breaker.transition_to_open();
                }
            }
            span.record("outcome", failure.class.as_str());
            span.record("error.type", failure.class.as_str());
            span.record("otel.status_code", "error");
            if let Some(status) = failure.status {
                span.record("http.response.status_code", i64::from(status));
            }
            span.in_scope(|| {
                tracing::debug!(
                    outcome = failure.class.as_str(),
                    status = failure.status,
                    elapsed_ms = latency.as_secs_f64() * 1000.0,
                    "attempt"
                )
            });
            entry.outcome = AttemptOutcome::Failed(failure.class);
            entry.status = failure.status;
            entry.reason = Cow::Owned(if entry.tries > 1 {
                format!("{failure} (after {} tries)", entry.tries)
            } else {
                failure.to_string()
            });
            entry.retry_after = failure.retry_after;

            if now >= deadline {
                return (Turn::DeadlinePassed, None);
            }
            if !decision.fall_over {
                return (Turn::Refused(failure.message), None);
            }
            if entry.tries >= plan.max_tries {
                return (Turn::Failed, None);
            }
            match self.next_try(slot, &failure, decision, entry.tries, now, stop_at) {
                Ok(wait) => {
                    self.clock.backoff(wait).await;
                    sent_at = self.clock.now();
                }
                Err(again_at) => return (Turn::Failed, again_at),
            }
        }
    }

    /// When to try the same provider again (`Ok(wait)`), or, when its turn
    /// is over, when asking it again in this call could make sense; benches
    /// it when the failure says it will not answer for a while.
    fn next_try(
        &self,
        slot: &ProviderSlot,
        failure: &ProviderFailure,
        decision: policy::Decision,
        tries: u32,
        now: Duration,
        stop_at: Duration,
    ) -> Result<Duration, Option<Duration>> {
        let retry = &slot.settings.retry;
        let server_wait = failure.retry_after.filter(|_| retry.respect_retry_after);
        let timing = if decision.retry {
            RetryDecision::decide(
                retry,
                &slot.backoff,
                tries,
                server_wait,
                stop_at.saturating_sub(now),
            )
        } else {
            RetryDecision::GiveUp(crate::resilience::retry::GiveUpReason::AttemptsExhausted)
        };
        if let RetryDecision::Retry { after } = timing {
            if slot.budget.withdraw() {
                return Ok(after);
            }
        }
        // The turn is over.
        let bench = match (decision.bench, timing) {
            (Some(BenchCause::KeyRefused), _) => {
                Some((slot.settings.auth_bench, BenchCause::KeyRefused))
            }
            (Some(BenchCause::QuotaUsedUp), _) => Some((
                failure
                    .reset_at
                    .and_then(|at| (at - self.clock.wall()).to_std().ok())
                    .or(failure.retry_after)
                    .unwrap_or(Duration::from_secs(3600)),
                BenchCause::QuotaUsedUp,
            )),
            (Some(BenchCause::Unreachable), _) => {
                Some((slot.settings.unreachable_bench, BenchCause::Unreachable))
            }
            (_, RetryDecision::FailOver { bench_for }) => {
                Some((bench_for, BenchCause::RateLimited))
            }
            // Out of tries but the provider said when it will answer again:
            // skip it until then instead of hammering it.
            _ => server_wait.map(|wait| (wait, BenchCause::RateLimited)),
        };
        match bench {
            Some((for_, cause)) => {
                slot.bench(now, for_, cause);
                Err(Some(now.saturating_add(for_)))
            }
            None => Err(None),
        }
    }
}

/// What one try sends and what counts as its answer: a plain call's whole
/// answer ([`Plain`]), or a stream up to its first token
/// ([`StreamOpening`](crate::stream::StreamOpening)). Everything around a
/// try (guards, retries, fallback, deadlines) is the same for both.
pub(crate) trait Exchange: Sync {
    /// What a try that succeeds returns.
    type Answer: Send;

    /// The validated request: its capability picks the chain and breakers.
    fn request(&self) -> &Request;

    /// The provider's first request, or why it cannot serve this call
    /// (skipped at no cost).
    fn first_request(
        &self,
        slot: &ProviderSlot,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure>;

    /// Tokens an answer's reply says it used, to settle a tokens-per-minute
    /// limit (`None`: not known yet, or not reported).
    fn tokens_used(_answer: &Self::Answer) -> Option<u64> {
        None
    }

    /// How long one try may take, and what it waits for (for the trail).
    fn try_timeout(&self, retry: &RetryConfig) -> (Duration, &'static str) {
        (retry.attempt_timeout, "response")
    }

    /// One try, starting with `first`; the answer and its HTTP status.
    fn exchange<'a>(
        &'a self,
        engine: &'a Engine,
        slot: &'a Arc<ProviderSlot>,
        ctx: &'a CallContext<'a>,
        first: &'a HttpRequest,
        idempotency: Option<(&'static str, &'a str)>,
    ) -> impl std::future::Future<Output = Result<(Self::Answer, u16), ProviderFailure>> + Send + 'a;

    /// The whole answer a successful try produced, when it has one yet (a
    /// stream's comes at its end): its cost goes in the trail and stats.
    fn answered_data(_answer: &Self::Answer) -> Option<&Data> {
        None
    }

    /// Hands the budget reservation of a successful try to its answer,
    /// to be settled when its usage is known (a stream's, at its end);
    /// `Some`: settle now, with [`Exchange::answered_data`].
    fn keep_budget(_answer: &mut Self::Answer, hold: BudgetHold) -> Option<BudgetHold> {
        Some(hold)
    }
}

/// A plain call: the provider's request and its follow-ups, read whole.
pub(crate) struct Plain<'r>(pub(crate) &'r Request);

impl Exchange for Plain<'_> {
    type Answer = Arc<Answer>;

    fn request(&self) -> &Request {
        self.0
    }

    fn answered_data(answer: &Arc<Answer>) -> Option<&Data> {
        Some(&answer.data)
    }

    fn first_request(
        &self,
        slot: &ProviderSlot,
        ctx: &CallContext<'_>,
    ) -> Result<HttpRequest, ProviderFailure> {
        slot.provider.request(&slot.deployed(self.0), ctx)
    }

    fn tokens_used(answer: &Arc<Answer>) -> Option<u64> {
        match &answer.data {
            Data::LlmChat(reply) => reply.usage.total_tokens,
            Data::LlmEmbeddings(embeddings) => embeddings.usage.input_tokens,
            _ => None,
        }
    }

    async fn exchange<'a>(
        &'a self,
        engine: &'a Engine,
        slot: &'a Arc<ProviderSlot>,
        ctx: &'a CallContext<'a>,
        first: &'a HttpRequest,
        idempotency: Option<(&'static str, &'a str)>,
    ) -> Result<(Arc<Answer>, u16), ProviderFailure> {
        let request = slot.deployed(self.0);
        let mut follow_up: Option<HttpRequest> = None;
        for _ in 0..MAX_STEPS {
            let next = follow_up.as_ref().unwrap_or(first);
            let response = engine
                .transport
                .send(
                    next,
                    slot.base.as_ref(),
                    slot.key_placement(),
                    idempotency,
                    || engine.clock.wall(),
                )
                .await?;
            let (status, fetched_at) = (response.status, response.received_at);
            match slot.provider.response(&request, ctx, response)? {
                // Of the request's capability by construction (`serves!`).
                Step::Done(data) => {
                    let answer = Answer {
                        data: self.0.check_answer(data).map_err(|f| f.status(status))?,
                        provider: slot.id(),
                        fetched_at,
                    };
                    return Ok((Arc::new(answer), status));
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
fn refuse(entry: &mut Attempt, reason: SkipReason, text: String, retry_after: Option<Duration>) {
    if entry.tries == 0 {
        entry.outcome = AttemptOutcome::Skipped(reason);
        entry.reason = Cow::Owned(text);
    } else {
        entry.reason = Cow::Owned(format!("{}; retry {text}", entry.reason));
    }
    if retry_after.is_some() {
        entry.retry_after = retry_after;
    }
}

/// Records a breaker's refusal; returns how the turn ends and when to ask
/// again.
fn refuse_open<A>(
    entry: &mut Attempt,
    rejected: crate::resilience::breaker::Rejected,
    now: Duration,
) -> (Turn<A>, Option<Duration>) {
    refuse(
        entry,
        SkipReason::CircuitOpen,
        format!(
            "skipped: circuit {} for {:.1} s",
            rejected.state.as_str().replace('_', "-"),
            rejected.retry_after.as_secs_f64()
        ),
        Some(rejected.retry_after),
    );
    let wait = match rejected.state {
        CircuitState::HalfOpen => rejected.retry_after.min(HALF_OPEN_RECHECK),
        _ => rejected.retry_after,
    };
    (Turn::Failed, Some(now.saturating_add(wait)))
}

/// The trail entry of a hedged turn that lost the race.
fn cancelled<A>(slot: &ProviderSlot, started: Duration, now: Duration) -> TurnEnd<A> {
    slot.stats.outcome(AttemptOutcome::Cancelled.as_str());
    TurnEnd {
        turn: Turn::Failed,
        entry: Attempt {
            provider: slot.id(),
            deployment: slot.deployment_name(),
            outcome: AttemptOutcome::Cancelled,
            status: None,
            tries: 1,
            elapsed: now.saturating_sub(started),
            upstream: std::time::Duration::ZERO,
            reason: Cow::Borrowed("cancelled: another provider answered first"),
            retry_after: None,
            hedged: false,
            cost_usd: None,
        },
        again_at: None,
        line: LineWait::default(),
    }
}

/// Whether provider `i` may be probed as a last resort in this call: its
/// breaker is open (or a probe of it is in flight), or it is benched as
/// unreachable or by a `Retry-After` no longer than a call's deadline and
/// than this call may still wait (a flapping provider's 429 says little
/// about the next second; a call that may not wait fails fast), and nothing
/// in this call says a new request would fail the same way. A provider
/// without a key, benched for a refused key, a used-up quota or a longer
/// `Retry-After` is never probed; one that merely failed while its breaker
/// stays closed has had its retries.
fn probe_candidate(walk: &Walk<'_>, i: usize, now: Duration) -> Option<ProbeCandidate> {
    if !walk.fits(i) {
        return None;
    }
    let slot = walk.slot(i);
    match walk.last_entry(i)?.outcome {
        AttemptOutcome::Failed(
            FailureClass::Transient | FailureClass::RateLimited | FailureClass::MalformedResponse,
        )
        | AttemptOutcome::Cancelled
        | AttemptOutcome::Skipped(SkipReason::CircuitOpen | SkipReason::Benched(_)) => {}
        _ => return None,
    }
    if slot.missing_key() {
        return None;
    }
    let benched = match slot.benched(now) {
        Some((_, cause)) if !cause.may_be_probed() => return None,
        // A wait longer than a whole call, or than this call may wait
        // (`max_wait`), is taken at its word.
        Some((left, BenchCause::RateLimited))
            if left > walk.chain.total_timeout || left > walk.wait_left() =>
        {
            return None
        }
        benched => benched.map(|(left, _)| left),
    };
    let probing = slot.probe(walk.capability).is_some_and(|p| p.probing());
    let (back_in, why) = match slot.breaker(walk.capability).map(CircuitBreaker::snapshot) {
        Some(b) if b.state == CircuitState::Open => (
            b.open_until.unwrap_or_default(),
            "last-resort probe while its circuit was open",
        ),
        _ if benched.is_some() => (Duration::ZERO, "last-resort probe while benched"),
        // Another call's probe: this one waits for it.
        _ if probing => (Duration::ZERO, "last-resort probe"),
        _ => return None,
    };
    Some(ProbeCandidate {
        i,
        back_in: back_in.max(benched.unwrap_or_default()),
        why,
    })
}

/// What a second pass waited for, for the trail.
fn waited_for(provider: &str, entry: &Attempt) -> String {
    match entry.outcome {
        AttemptOutcome::Skipped(SkipReason::RateLimit) => format!("{provider}'s rate-limit slot"),
        AttemptOutcome::Skipped(SkipReason::Quota) => format!("{provider}'s quota reset"),
        AttemptOutcome::Skipped(SkipReason::Budget) => "a budget's reset".to_string(),
        AttemptOutcome::Skipped(SkipReason::CircuitOpen) => {
            format!("{provider}'s circuit to half-open")
        }
        AttemptOutcome::Skipped(SkipReason::Benched(_)) => format!("{provider}'s bench to end"),
        AttemptOutcome::Failed(_) if entry.retry_after.is_none() => {
            format!("a second chance of {provider} after its failure")
        }
        _ => format!("{provider}'s Retry-After"),
    }
}

/// The error of a call that a provider refused on content grounds, with
/// the provider's own words.
fn content_filtered(walk: &mut Walk<'_>, reason: String) -> Error {
    let provider = walk
        .attempts
        .iter()
        .rev()
        .find(|a| a.outcome == AttemptOutcome::Failed(FailureClass::ContentFiltered))
        .map_or("", |a| a.provider);
    Error::ContentFiltered {
        capability: walk.capability.as_str(),
        provider,
        reason,
        attempts: std::mem::take(&mut walk.attempts),
    }
}

/// Recording finished calls for analytics.
impl Engine {
    /// Records a call that ended with `envelope`.
    pub(crate) fn record_answer(&self, envelope: &crate::Envelope, tag: Option<Arc<str>>) {
        let Some(recorder) = &self.analytics else {
            return;
        };
        let spend = if envelope.cached {
            None
        } else {
            self.models.spend(envelope.provider, envelope.data())
        };
        let (input_tokens, output_tokens) = spend.map_or((0, 0), |s| {
            (s.input_tokens.unwrap_or(0), s.output_tokens.unwrap_or(0))
        });
        recorder.record(crate::analytics::CallRecord {
            at: self.clock.wall(),
            capability: envelope.capability.as_str(),
            provider: Some(envelope.provider),
            outcome: crate::analytics::SUCCESS,
            latency: envelope.elapsed,
            upstream: envelope.attempts.iter().map(|a| a.upstream).sum(),
            cached: envelope.cached,
            stale: envelope.stale,
            input_tokens,
            output_tokens,
            cost_usd: envelope.cost_usd.unwrap_or(0.0),
            tag,
        });
    }

    /// Records a call of `capability`, started at `started` (monotonic),
    /// that failed with `error`.
    pub(crate) fn record_failure(
        &self,
        capability: crate::CapabilityId,
        started: Duration,
        error: &Error,
        tag: Option<Arc<str>>,
    ) {
        let Some(recorder) = &self.analytics else {
            return;
        };
        recorder.record(crate::analytics::CallRecord {
            at: self.clock.wall(),
            capability: capability.as_str(),
            provider: None,
            outcome: error.kind().as_str(),
            latency: self.clock.now().saturating_sub(started),
            upstream: error.attempts().iter().map(|a| a.upstream).sum(),
            cached: false,
            stale: false,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
            tag,
        });
    }

    /// The tag a call of `request` is recorded with: the caller's, else the
    /// request's own (LLM calls). Allocated only when analytics is on.
    pub(crate) fn record_tag(
        &self,
        request: &crate::Request,
        tag: Option<&str>,
    ) -> Option<Arc<str>> {
        self.analytics.as_ref()?;
        tag.or(request.tag()).map(Arc::from)
    }
}
