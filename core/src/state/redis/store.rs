//! [`RedisState`]: request quotas and rate limits shared through Redis, with
//! local state while Redis is unreachable.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use futures::future::Either;
use parking_lot::Mutex;

use super::backend::{RedisBackend, RedisStats, Unavailable};
use super::scripts::{code, Scripts, TimeSource};
use super::QuotaFallback;
use crate::resilience::budget::{budget_key, BudgetCharge, BudgetDecision, BudgetLimit};
use crate::resilience::quota::{
    quota_key, CalendarQuota, Quota, QuotaDecision, QuotaPeriod, QuotaSnapshot, QuotaWindow,
};
use crate::resilience::rate_limit::{Rate, RateDecision, RateLimitConfig, RateLimiter};
use crate::state::{
    adjust_locally, budget_counter, ready, Admission, ProviderLimits, StateFuture, StateStore,
};

/// Name of the one quota (per day or per month) each provider has, in its key.
const QUOTA_NAME: &str = "requests";

/// Longest limiter tolerance (burst × emission interval) the script handles
/// exactly: 100 years in µs, far under 2^53 once added to the time.
const MAX_TOLERANCE_US: u64 = 100 * 365 * 86_400 * 1_000_000;

/// Request quotas and GCRA rate limits shared by every process using the same
/// Redis; see the `state::redis` module for the scripts and the
/// outage contract.
///
/// ```no_run
/// use polyrelay::clock::SystemClock;
/// use polyrelay::internal::state::redis::{RedisBackend, RedisConfig, RedisState};
/// use std::sync::Arc;
///
/// # fn demo() -> polyrelay::Result<()> {
/// let backend = RedisBackend::new(&RedisConfig::new("redis://127.0.0.1:6379"), SystemClock::shared())?;
/// let state = RedisState::new(backend, &[])?;
/// let client = polyrelay::Client::builder().state(Arc::new(state)).build()?;
/// # Ok(()) }
/// ```
///
/// A client configured with a `[redis]` table builds one by itself.
#[derive(Clone)]
pub struct RedisState {
    inner: Arc<Inner>,
}

struct Inner {
    backend: RedisBackend,
    scripts: Scripts,
    time: TimeSource,
    providers: HashMap<&'static str, ProviderState>,
    /// Some quota units were spent locally and not yet added to Redis.
    needs_reconcile: AtomicBool,
    /// Budget counters by name, made on first use.
    budgets: Mutex<HashMap<&'static str, Arc<BudgetState>>>,
    /// The share of a limit one process keeps while Redis is unreachable;
    /// `None` under `deny`.
    local_share: Option<f64>,
}

/// One budget's counter on Redis, and its local stand-in.
struct BudgetState {
    limit: BudgetLimit,
    /// The current window and its counter key, named from the server's time.
    window: Mutex<(QuotaWindow, String)>,
    /// The last counter Redis reported, for snapshots.
    last: Mutex<Option<QuotaSnapshot>>,
    /// The counter while Redis is unreachable (`None` under `deny`).
    local: Option<CalendarQuota>,
    /// Units moved locally in a window (named by its first date), not yet
    /// added to Redis.
    pending: Mutex<Option<(NaiveDate, i64)>>,
}

/// The GCRA parameters sent to the script.
#[derive(Debug, Clone, Copy)]
struct Gcra {
    interval_us: u64,
    burst: u32,
}

struct ProviderState {
    id: &'static str,
    quota: Option<Quota>,
    timezone: Tz,
    gcra: Option<Gcra>,
    /// `<prefix>rl:{provider}`.
    rate_key: String,
    /// The current window (day or month) and its counter key, named from
    /// the server's time.
    window: Mutex<(QuotaWindow, String)>,
    /// The last counter Redis reported, for stats.
    last: Mutex<Option<QuotaSnapshot>>,
    /// Fallback while Redis is unreachable.
    local_quota: Option<CalendarQuota>,
    local_limiter: Option<RateLimiter>,
    /// Units spent locally in a window (named by its first date), not yet
    /// added to Redis.
    pending: Mutex<Option<(NaiveDate, u64)>>,
}

/// What the admit script said.
struct Reply {
    code: i64,
    quota_left: i64,
    retry_after_ms: i64,
}

impl fmt::Debug for RedisState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisState")
            .field("backend", &self.inner.backend)
            .field("providers", &self.inner.providers.len())
            .finish()
    }
}

impl RedisState {
    /// A store enforcing `limits` through `backend`. Never connects here.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Config`] naming a provider whose rate limit is invalid.
    pub fn new(backend: RedisBackend, limits: &[ProviderLimits]) -> crate::Result<Self> {
        Self::with_time(backend, limits, TimeSource::Server)
    }

    fn with_time(
        backend: RedisBackend,
        limits: &[ProviderLimits],
        time: TimeSource,
    ) -> crate::Result<Self> {
        let config = backend.config();
        let clock = backend.clock().clone();
        let share = match config.quota_fallback {
            QuotaFallback::LocalFull => 1.0,
            QuotaFallback::LocalShare | QuotaFallback::Deny => config.local_share_fraction,
        };
        let local_share = (config.quota_fallback != QuotaFallback::Deny).then_some(share);
        let scale = |n: u64| ((n as f64 * share).ceil() as u64).max(1);
        let mut providers = HashMap::with_capacity(limits.len());
        for limit in limits {
            let id = limit.provider;
            let invalid = |e: crate::resilience::rate_limit::InvalidRateLimit| {
                crate::Error::config(format!("providers.{id}.rate_limit"), e.to_string())
            };
            let (gcra, local_limiter) = match &limit.rate_limit {
                Some(rate) => {
                    rate.validate().map_err(invalid)?;
                    let interval_ns = rate
                        .rate
                        .per
                        .as_nanos()
                        .div_ceil(u128::from(rate.rate.requests));
                    let gcra = Gcra {
                        interval_us: u64::try_from(interval_ns.div_ceil(1000)).unwrap_or(u64::MAX),
                        burst: rate.effective_burst(),
                    };
                    // The script's arithmetic is exact below 2^53 µs (Lua numbers).
                    if gcra.interval_us.saturating_mul(u64::from(gcra.burst)) > MAX_TOLERANCE_US {
                        return Err(crate::Error::config(
                            format!("providers.{id}.rate_limit"),
                            "burst × interval must be under 100 years for the shared limiter",
                        ));
                    }
                    let local = RateLimitConfig {
                        rate: Rate {
                            requests: u32::try_from(scale(u64::from(rate.rate.requests)))
                                .unwrap_or(u32::MAX),
                            per: rate.rate.per,
                        },
                        burst: Some(
                            u32::try_from(scale(u64::from(gcra.burst))).unwrap_or(u32::MAX),
                        ),
                    };
                    let limiter = RateLimiter::new(&local, clock.clone()).map_err(invalid)?;
                    (Some(gcra), Some(limiter))
                }
                None => (None, None),
            };
            let local_quota = match (limit.quota, config.quota_fallback) {
                (Some(_), QuotaFallback::Deny) | (None, _) => None,
                (Some(quota), _) => Some(CalendarQuota::new(
                    Quota {
                        limit: scale(quota.limit),
                        ..quota
                    },
                    limit.timezone,
                    clock.clone(),
                )),
            };
            let period = limit.quota.map_or(QuotaPeriod::Day, |q| q.period);
            let window = QuotaWindow::containing(backend.clock().wall(), limit.timezone, period);
            let window_key = backend.key(&quota_key(id, QUOTA_NAME, &window));
            providers.insert(
                id,
                ProviderState {
                    id,
                    quota: limit.quota,
                    timezone: limit.timezone,
                    gcra,
                    rate_key: backend.key(&format!("rl:{{{id}}}")),
                    window: Mutex::new((window, window_key)),
                    last: Mutex::new(None),
                    local_quota,
                    local_limiter,
                    pending: Mutex::new(None),
                },
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                scripts: Scripts::new(time),
                time,
                backend,
                providers,
                needs_reconcile: AtomicBool::new(false),
                budgets: Mutex::default(),
                local_share,
            }),
        })
    }

    /// The backend's counters and breaker state.
    pub fn stats(&self) -> RedisStats {
        self.inner.backend.stats()
    }

    /// The backend, to share its connection with a [`super::RedisCacheTier`].
    pub fn backend(&self) -> &RedisBackend {
        &self.inner.backend
    }

    fn run(
        &self,
        provider: &'static str,
        cost: u32,
        use_quota: bool,
        use_rate: bool,
    ) -> StateFuture<'_, Admission> {
        let Some(state) = self.inner.providers.get(provider) else {
            return ready(Admission::Admitted);
        };
        let use_quota = use_quota && state.quota.is_some();
        let use_rate = use_rate && state.gcra.is_some();
        if !use_quota && !use_rate {
            return ready(Admission::Admitted);
        }
        Either::Right(Box::pin(async move {
            match self.inner.shared(state, cost, use_quota, use_rate).await {
                Ok(admission) => {
                    self.reconcile_if_needed();
                    admission
                }
                Err(_) => self.inner.local(state, cost, use_quota, use_rate),
            }
        }))
    }

    /// After Redis answered: adds the units spent locally meanwhile.
    fn reconcile_if_needed(&self) {
        if !self.inner.needs_reconcile.swap(false, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.inner.needs_reconcile.store(true, Ordering::Release);
            return;
        };
        runtime.spawn(async move { inner.reconcile().await });
    }
}

impl Inner {
    /// The window holding the server's (estimated) time, and its counter key.
    fn window(&self, state: &ProviderState, server_ms: i64) -> (QuotaWindow, String) {
        let now = DateTime::<Utc>::from_timestamp_millis(server_ms).unwrap_or_default();
        let mut current = state.window.lock();
        if !(current.0.start <= now && now < current.0.end) {
            let window = QuotaWindow::containing(now, state.timezone, current.0.period);
            *current = (
                window,
                self.backend.key(&quota_key(state.id, QUOTA_NAME, &window)),
            );
        }
        current.clone()
    }

    fn expire_at_ms(&self, window: &QuotaWindow) -> i64 {
        let grace =
            i64::try_from(self.backend.config().quota_grace.as_millis()).unwrap_or(i64::MAX);
        window.end.timestamp_millis().saturating_add(grace)
    }

    /// The test time source: the injected clock's wall time, in µs.
    fn now_argument(&self) -> Option<i64> {
        match self.time {
            TimeSource::Server => None,
            #[cfg(test)]
            TimeSource::Argument => self.backend.clock().wall().timestamp_micros().into(),
        }
    }

    /// One script call (two when the window we named is not the server's).
    async fn shared(
        &self,
        state: &ProviderState,
        cost: u32,
        use_quota: bool,
        use_rate: bool,
    ) -> Result<Admission, Unavailable> {
        let mut server_ms = self
            .now_argument()
            .map_or_else(|| self.backend.server_now_ms(), |us| us / 1000);
        for _ in 0..2 {
            let (window, window_key) = self.window(state, server_ms);
            let limit = match state.quota {
                Some(quota) if use_quota => quota.limit,
                _ => 0,
            };
            let gcra = state.gcra.filter(|_| use_rate);
            let expire_at = self.expire_at_ms(&window);
            let now_argument = self.now_argument();
            let deadline = self.backend.config().state_timeout;
            let values: Vec<i64> = self
                .backend
                .run(deadline, |mut connection| {
                    let mut invocation = self.scripts.admit.key(&window_key);
                    invocation
                        .key(&state.rate_key)
                        .arg(cost)
                        .arg(limit)
                        .arg(window.start.timestamp_millis())
                        .arg(window.end.timestamp_millis())
                        .arg(expire_at)
                        .arg(gcra.map_or(0, |g| g.interval_us))
                        .arg(gcra.map_or(0, |g| g.burst));
                    if let Some(now) = now_argument {
                        invocation.arg(now);
                    }
                    async move { invocation.invoke_async(&mut connection).await }
                })
                .await?;
            let field = |i: usize| values.get(i).copied().unwrap_or_default();
            server_ms = field(1);
            if self.time == TimeSource::Server {
                self.backend.observe_server_time(server_ms);
            }
            let reply = Reply {
                code: field(0),
                quota_left: field(2),
                retry_after_ms: field(5),
            };
            if reply.code == code::WRONG_DAY {
                continue;
            }
            return Ok(self.decide(state, &reply, &window, server_ms, gcra));
        }
        // The server's clock moved across a window boundary twice in a row.
        Err(Unavailable::Failed)
    }

    fn decide(
        &self,
        state: &ProviderState,
        reply: &Reply,
        window: &QuotaWindow,
        server_ms: i64,
        gcra: Option<Gcra>,
    ) -> Admission {
        let now = DateTime::<Utc>::from_timestamp_millis(server_ms).unwrap_or_default();
        if let (Some(quota), Ok(left)) = (state.quota, u64::try_from(reply.quota_left)) {
            *state.last.lock() = Some(QuotaSnapshot {
                limit: quota.limit,
                period: quota.period,
                used: quota.limit.saturating_sub(left),
                remaining: left,
                timezone: state.timezone.name(),
                date: window.date,
                reset_at: window.end,
            });
        }
        let millis = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        match reply.code {
            code::QUOTA_EXHAUSTED => Admission::QuotaExhausted {
                reset_at: window.end,
                retry_after: (window.end - now).to_std().unwrap_or_default(),
            },
            code::RATE_LIMITED => Admission::RateLimited {
                retry_after: millis(reply.retry_after_ms),
            },
            code::INSUFFICIENT_CAPACITY => Admission::InsufficientCapacity {
                burst: gcra.map_or(0, |g| g.burst),
            },
            _ => Admission::Admitted,
        }
    }

    /// Budget `limit`'s state, made on first use.
    fn budget(&self, limit: BudgetLimit) -> Arc<BudgetState> {
        let mut budgets = self.budgets.lock();
        let state = budgets.entry(limit.name).or_insert_with(|| {
            let window =
                QuotaWindow::containing(self.backend.clock().wall(), limit.timezone, limit.period);
            let key = self.backend.key(&budget_key(limit.name, &window));
            let local = self.local_share.map(|share| {
                let scaled = BudgetLimit {
                    limit: ((limit.limit as f64 * share).ceil() as u64).max(1),
                    ..limit
                };
                budget_counter(scaled, self.backend.clock().clone())
            });
            Arc::new(BudgetState {
                limit,
                window: Mutex::new((window, key)),
                last: Mutex::new(None),
                local,
                pending: Mutex::new(None),
            })
        });
        Arc::clone(state)
    }

    /// The budget's window holding the server's (estimated) time, and its key.
    fn budget_window(&self, state: &BudgetState, server_ms: i64) -> (QuotaWindow, String) {
        let now = DateTime::<Utc>::from_timestamp_millis(server_ms).unwrap_or_default();
        let mut current = state.window.lock();
        if !(current.0.start <= now && now < current.0.end) {
            let window = QuotaWindow::containing(now, state.limit.timezone, state.limit.period);
            *current = (
                window,
                self.backend.key(&budget_key(state.limit.name, &window)),
            );
        }
        current.clone()
    }

    fn remember_budget(&self, state: &BudgetState, window: &QuotaWindow, used: i64) {
        let used = u64::try_from(used).unwrap_or(0);
        *state.last.lock() = Some(QuotaSnapshot {
            limit: state.limit.limit,
            period: state.limit.period,
            used,
            remaining: state.limit.limit.saturating_sub(used),
            timezone: state.limit.timezone.name(),
            date: window.date,
            reset_at: window.end,
        });
    }

    /// One budget script call (two when a window we named is not the
    /// server's).
    async fn reserve_shared(
        &self,
        states: &[Arc<BudgetState>],
        charges: &[BudgetCharge],
    ) -> Result<BudgetDecision, Unavailable> {
        let mut server_ms = self
            .now_argument()
            .map_or_else(|| self.backend.server_now_ms(), |us| us / 1000);
        for _ in 0..2 {
            let windows: Vec<(QuotaWindow, String)> = states
                .iter()
                .map(|state| self.budget_window(state, server_ms))
                .collect();
            let now_argument = self.now_argument();
            let deadline = self.backend.config().state_timeout;
            let values: Vec<i64> = self
                .backend
                .run(deadline, |mut connection| {
                    let mut invocation = self.scripts.budget.prepare_invoke();
                    for ((window, key), charge) in windows.iter().zip(charges) {
                        invocation
                            .key(key)
                            .arg(charge.units)
                            .arg(charge.budget.limit)
                            .arg(window.start.timestamp_millis())
                            .arg(window.end.timestamp_millis())
                            .arg(self.expire_at_ms(window));
                    }
                    if let Some(now) = now_argument {
                        invocation.arg(now);
                    }
                    async move { invocation.invoke_async(&mut connection).await }
                })
                .await?;
            let field = |i: usize| values.get(i).copied().unwrap_or_default();
            server_ms = field(1);
            if self.time == TimeSource::Server {
                self.backend.observe_server_time(server_ms);
            }
            match field(0) {
                code::WRONG_DAY => continue,
                code::QUOTA_EXHAUSTED => {
                    let i = usize::try_from(field(2) - 1).unwrap_or(0);
                    let (Some(state), Some((window, _))) = (states.get(i), windows.get(i)) else {
                        return Err(Unavailable::Failed);
                    };
                    let left = u64::try_from(field(3)).unwrap_or(0);
                    self.remember_budget(
                        state,
                        window,
                        signed(state.limit.limit.saturating_sub(left)),
                    );
                    return Ok(BudgetDecision::Exhausted {
                        budget: state.limit.name,
                        left,
                        reset_at: window.end,
                    });
                }
                _ => {
                    for (i, (state, (window, _))) in states.iter().zip(&windows).enumerate() {
                        self.remember_budget(state, window, field(4 + i));
                    }
                    return Ok(BudgetDecision::Reserved);
                }
            }
        }
        Err(Unavailable::Failed)
    }

    /// A reservation from local counters, while Redis is unreachable.
    fn reserve_local(
        &self,
        states: &[Arc<BudgetState>],
        charges: &[BudgetCharge],
    ) -> BudgetDecision {
        let clock = self.backend.clock();
        for (i, (state, charge)) in states.iter().zip(charges).enumerate() {
            let refused = match &state.local {
                Some(local) => match local.try_consume(charge.units) {
                    QuotaDecision::Exhausted { reset_at, .. } => {
                        Some((local.remaining(), reset_at))
                    }
                    QuotaDecision::Allowed { .. } => None,
                },
                // `deny`: refuse until the breaker lets us ask Redis again.
                None => Some((0, clock.wall() + self.backend.config().breaker_open)),
            };
            if let Some((left, reset_at)) = refused {
                for (state, charge) in states.iter().zip(charges).take(i) {
                    if let Some(local) = &state.local {
                        local.refund(charge.units);
                    }
                }
                return BudgetDecision::Exhausted {
                    budget: state.limit.name,
                    left,
                    reset_at,
                };
            }
        }
        for (state, charge) in states.iter().zip(charges) {
            self.add_budget_pending(state, signed(charge.units));
        }
        BudgetDecision::Reserved
    }

    /// Records `delta` units moved locally in the budget's current window,
    /// for the next reconciliation.
    fn add_budget_pending(&self, state: &BudgetState, delta: i64) {
        let clock = self.backend.clock();
        let date =
            QuotaWindow::containing(clock.wall(), state.limit.timezone, state.limit.period).date;
        let mut pending = state.pending.lock();
        *pending = match *pending {
            Some((day, more)) if day == date => Some((day, more.saturating_add(delta))),
            Some((day, more)) if day > date => Some((day, more)),
            _ => Some((date, delta)),
        };
        self.needs_reconcile.store(true, Ordering::Release);
    }

    async fn adjust_budget(&self, state: &BudgetState, delta: i64) {
        let (window, key) = self.budget_window(state, self.backend.server_now_ms());
        if let Ok(used) = self.adjust(&key, &window, delta).await {
            self.remember_budget(state, &window, used);
            return;
        }
        if let Some(local) = &state.local {
            adjust_locally(local, delta);
        }
        self.add_budget_pending(state, delta);
    }

    /// The decision from local state, while Redis is unreachable.
    fn local(
        &self,
        state: &ProviderState,
        cost: u32,
        use_quota: bool,
        use_rate: bool,
    ) -> Admission {
        let clock = self.backend.clock();
        if use_quota {
            let decision = match &state.local_quota {
                Some(quota) => quota.try_consume(u64::from(cost)),
                // `deny`: refuse until the breaker lets us ask Redis again.
                None => {
                    let retry_after = self.backend.config().breaker_open;
                    QuotaDecision::Exhausted {
                        reset_at: clock.wall() + retry_after,
                        retry_after,
                    }
                }
            };
            if let QuotaDecision::Exhausted {
                reset_at,
                retry_after,
            } = decision
            {
                return Admission::QuotaExhausted {
                    reset_at,
                    retry_after,
                };
            }
        }
        let admission = match (&state.local_limiter, use_rate) {
            (Some(limiter), true) => Admission::from(limiter.check(cost)),
            _ => Admission::Admitted,
        };
        if use_quota {
            if admission == Admission::Admitted {
                let period = state.window.lock().0.period;
                let current = QuotaWindow::containing(clock.wall(), state.timezone, period).date;
                self.add_pending(state, current, u64::from(cost));
            } else if let Some(quota) = &state.local_quota {
                quota.refund(u64::from(cost));
            }
        }
        admission
    }

    /// Records `units` spent locally in the window starting on `date`, for
    /// the next reconciliation (units of an earlier window than those
    /// already pending are dropped).
    fn add_pending(&self, state: &ProviderState, date: NaiveDate, units: u64) {
        let mut pending = state.pending.lock();
        *pending = match *pending {
            Some((day, more)) if day == date => Some((day, more + units)),
            Some((day, more)) if day > date => Some((day, more)),
            _ => Some((date, units)),
        };
        self.needs_reconcile.store(true, Ordering::Release);
    }

    /// Adds each provider's locally spent units of the current window to its
    /// Redis counter (one `INCRBY` each); units of a past window are
    /// dropped, that window's counter no longer decides anything.
    async fn reconcile(&self) {
        for state in self.providers.values() {
            let Some((date, units)) = state.pending.lock().take() else {
                continue;
            };
            let period = state.window.lock().0.period;
            let window = QuotaWindow::for_date(date, state.timezone, period);
            if DateTime::<Utc>::from_timestamp_millis(self.backend.server_now_ms())
                .is_some_and(|now| now >= window.end)
            {
                continue;
            }
            let key = self.backend.key(&quota_key(state.id, QUOTA_NAME, &window));
            if self.adjust(&key, &window, signed(units)).await.is_err() {
                self.add_pending(state, date, units);
            } else {
                tracing::info!(
                    provider = state.id,
                    units,
                    "reconciled quota units spent during the redis outage"
                );
            }
        }
        let budgets: Vec<Arc<BudgetState>> = self.budgets.lock().values().cloned().collect();
        for state in budgets {
            let Some((date, units)) = state.pending.lock().take() else {
                continue;
            };
            let window = QuotaWindow::for_date(date, state.limit.timezone, state.limit.period);
            if units == 0
                || DateTime::<Utc>::from_timestamp_millis(self.backend.server_now_ms())
                    .is_some_and(|now| now >= window.end)
            {
                continue;
            }
            let key = self.backend.key(&budget_key(state.limit.name, &window));
            if self.adjust(&key, &window, units).await.is_err() {
                self.add_budget_pending(&state, units);
            } else {
                tracing::info!(
                    budget = state.limit.name,
                    units,
                    "reconciled budget units moved during the redis outage"
                );
            }
        }
    }

    async fn adjust(
        &self,
        key: &str,
        window: &QuotaWindow,
        delta: i64,
    ) -> Result<i64, Unavailable> {
        let expire_at = self.expire_at_ms(window);
        self.backend
            .run(self.backend.config().state_timeout, |mut connection| {
                let mut invocation = self.scripts.adjust.key(key);
                invocation.arg(delta).arg(expire_at);
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await
    }

    async fn refund(&self, state: &ProviderState, cost: u64) {
        let (window, key) = self.window(state, self.backend.server_now_ms());
        if self.adjust(&key, &window, -signed(cost)).await.is_ok() {
            return;
        }
        if let Some(quota) = &state.local_quota {
            quota.refund(cost);
        }
        let mut pending = state.pending.lock();
        if let Some((_, units)) = pending.as_mut() {
            *units = units.saturating_sub(cost);
        }
    }
}

fn signed(units: u64) -> i64 {
    i64::try_from(units).unwrap_or(i64::MAX)
}

impl StateStore for RedisState {
    fn consume_quota(&self, provider: &'static str, cost: u64) -> StateFuture<'_, QuotaDecision> {
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        let admission = self.run(provider, cost, true, false);
        Either::Right(Box::pin(async move {
            match admission.await {
                Admission::QuotaExhausted {
                    reset_at,
                    retry_after,
                } => QuotaDecision::Exhausted {
                    reset_at,
                    retry_after,
                },
                _ => QuotaDecision::Allowed {
                    remaining: self
                        .quota_snapshot(provider)
                        .map_or(u64::MAX, |q| q.remaining),
                },
            }
        }))
    }

    fn refund_quota(&self, provider: &'static str, cost: u64) -> StateFuture<'_, ()> {
        match self.inner.providers.get(provider) {
            Some(state) if state.quota.is_some() && cost > 0 => {
                Either::Right(Box::pin(self.inner.refund(state, cost)))
            }
            _ => ready(()),
        }
    }

    fn check_rate(&self, provider: &'static str, cost: u32) -> StateFuture<'_, RateDecision> {
        let admission = self.run(provider, cost, false, true);
        Either::Right(Box::pin(async move {
            match admission.await {
                Admission::RateLimited { retry_after } => RateDecision::Limited { retry_after },
                Admission::InsufficientCapacity { burst } => {
                    RateDecision::InsufficientCapacity { burst }
                }
                _ => RateDecision::Allowed { remaining: None },
            }
        }))
    }

    fn quota_snapshot(&self, provider: &'static str) -> Option<QuotaSnapshot> {
        let state = self.inner.providers.get(provider)?;
        let quota = state.quota?;
        if self.inner.backend.degraded() {
            if let Some(local) = &state.local_quota {
                return Some(local.snapshot());
            }
        }
        let last = state.last.lock().clone();
        last.or_else(|| {
            let now = self.inner.backend.clock().wall();
            let window = QuotaWindow::containing(now, state.timezone, quota.period);
            Some(QuotaSnapshot {
                limit: quota.limit,
                period: quota.period,
                used: 0,
                remaining: quota.limit,
                timezone: state.timezone.name(),
                date: window.date,
                reset_at: window.end,
            })
        })
    }

    fn backend(&self) -> &'static str {
        "redis"
    }

    fn reserve_budgets<'a>(
        &'a self,
        charges: &'a [BudgetCharge],
    ) -> StateFuture<'a, BudgetDecision> {
        if charges.is_empty() {
            return ready(BudgetDecision::Reserved);
        }
        let states: Vec<Arc<BudgetState>> = charges
            .iter()
            .map(|charge| self.inner.budget(charge.budget))
            .collect();
        Either::Right(Box::pin(async move {
            match self.inner.reserve_shared(&states, charges).await {
                Ok(decision) => {
                    self.reconcile_if_needed();
                    decision
                }
                Err(_) => self.inner.reserve_local(&states, charges),
            }
        }))
    }

    fn adjust_budget(&self, budget: BudgetLimit, delta: i64) -> StateFuture<'_, ()> {
        if delta == 0 {
            return ready(());
        }
        let state = self.inner.budget(budget);
        Either::Right(Box::pin(async move {
            self.inner.adjust_budget(&state, delta).await;
        }))
    }

    fn budget_snapshot(&self, budget: BudgetLimit) -> QuotaSnapshot {
        let state = self.inner.budget(budget);
        if self.inner.backend.degraded() {
            if let Some(local) = &state.local {
                return local.snapshot();
            }
        }
        let last = state.last.lock().clone();
        last.unwrap_or_else(|| {
            let now = self.inner.backend.clock().wall();
            let window = QuotaWindow::containing(now, budget.timezone, budget.period);
            QuotaSnapshot {
                limit: budget.limit,
                period: budget.period,
                used: 0,
                remaining: budget.limit,
                timezone: budget.timezone.name(),
                date: window.date,
                reset_at: window.end,
            }
        })
    }

    fn admit(&self, provider: &'static str, cost: u32) -> StateFuture<'_, Admission> {
        self.run(provider, cost, true, true)
    }

    fn degraded(&self) -> bool {
        self.inner.backend.degraded()
    }

    fn ping(&self, deadline: Duration) -> StateFuture<'_, Option<bool>> {
        Either::Right(Box::pin(async move {
            let answered = self
                .inner
                .backend
                .run(deadline, |mut connection| async move {
                    redis::cmd("PING").query_async::<()>(&mut connection).await
                })
                .await;
            Some(answered.is_ok())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_server::{free_port, RedisServer};
    use super::super::{RedisBackend, RedisConfig};
    use super::*;
    use crate::clock::FakeClock;
    use chrono::TimeZone;
    use chrono_tz::America::{Havana, Santiago};
    use chrono_tz::Europe::Paris;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// Limits of one provider: an optional `rate` (with `burst`) and quota.
    fn limits(
        provider: &'static str,
        rate: Option<(&str, u32)>,
        quota: Option<Quota>,
        timezone: Tz,
    ) -> ProviderLimits {
        ProviderLimits {
            provider,
            rate_limit: rate.map(|(rate, burst)| RateLimitConfig {
                rate: rate.parse().unwrap(),
                burst: Some(burst),
            }),
            quota,
            timezone,
        }
    }

    /// A store on `url` whose scripts take their time from `clock`.
    fn store(
        url: &str,
        clock: &FakeClock,
        limits: &[ProviderLimits],
        config: RedisConfig,
    ) -> RedisState {
        let config = RedisConfig {
            url: vec![url.to_string()],
            ..config
        };
        let backend = RedisBackend::new(&config, clock.shared()).unwrap();
        RedisState::with_time(backend, limits, TimeSource::Argument).unwrap()
    }

    /// A fake clock at a real, whole second (keys' expiries are real time).
    fn clock_near_now() -> FakeClock {
        let now = Utc::now().timestamp();
        FakeClock::new(DateTime::from_timestamp(now, 0).unwrap())
    }

    fn allowed(decision: RateDecision) -> bool {
        matches!(decision, RateDecision::Allowed { .. })
    }

    fn budget(name: &'static str, limit: u64, period: QuotaPeriod) -> BudgetLimit {
        BudgetLimit {
            name,
            limit,
            period,
            timezone: Tz::UTC,
        }
    }

    fn charge(budget: BudgetLimit, units: u64) -> BudgetCharge {
        BudgetCharge { budget, units }
    }

    // Several budgets in one script: all take their units or none does; a
    // settlement may charge past the limit and a refund stops at zero.
    #[tokio::test]
    async fn budgets_reserve_all_or_none_and_settle_past_their_limit() {
        let server = RedisServer::start();
        let clock = clock_near_now();
        let state = store(&server.url(), &clock, &[], RedisConfig::default());
        let month = budget("month", 100, QuotaPeriod::Month);
        let day = budget("day", 30, QuotaPeriod::Day);
        let both = [charge(month, 20), charge(day, 20)];
        assert_eq!(state.reserve_budgets(&both).await, BudgetDecision::Reserved);
        let now = crate::clock::Clock::wall(&clock);
        let day_window = QuotaWindow::containing(now, Tz::UTC, QuotaPeriod::Day);
        assert_eq!(
            state.reserve_budgets(&both).await,
            BudgetDecision::Exhausted {
                budget: "day",
                left: 10,
                reset_at: day_window.end,
            }
        );
        let month_key = format!("polyrelay:b:{{budgets}}:month:{}", now.format("%Y-%m"));
        let day_key = format!("polyrelay:b:{{budgets}}:day:{}", now.format("%Y-%m-%d"));
        assert_eq!(server.cli(&["GET", &month_key]), "20", "none taken");
        assert_eq!(server.cli(&["GET", &day_key]), "20");
        for key in [&month_key, &day_key] {
            assert!(server.pttl(key) > 0, "{key}");
        }

        state.adjust_budget(month, 100).await;
        assert_eq!(
            server.cli(&["GET", &month_key]),
            "120",
            "charged past the limit"
        );
        let snapshot = state.budget_snapshot(month);
        assert_eq!((snapshot.used, snapshot.remaining), (120, 0));
        assert!(matches!(
            state.reserve_budgets(&[charge(month, 1)]).await,
            BudgetDecision::Exhausted { left: 0, .. }
        ));
        state.adjust_budget(day, -50).await;
        assert_eq!(
            server.cli(&["GET", &day_key]),
            "0",
            "a refund stops at zero"
        );
        assert_eq!(state.budget_snapshot(day).remaining, 30);
    }

    // Redis down: each process keeps its share of a budget, or none (deny).
    #[tokio::test]
    async fn without_redis_budgets_keep_a_local_share() {
        let dead = format!("redis://127.0.0.1:{}", free_port(false));
        let clock = clock_near_now();
        for (policy, expected) in [
            (QuotaFallback::LocalShare, 5),
            (QuotaFallback::LocalFull, 10),
            (QuotaFallback::Deny, 0),
        ] {
            let state = store(
                &dead,
                &clock,
                &[],
                RedisConfig {
                    quota_fallback: policy,
                    local_share_fraction: 0.5,
                    ..RedisConfig::default()
                },
            );
            let limit = budget("b", 10, QuotaPeriod::Day);
            let mut reserved = 0;
            for _ in 0..12 {
                if state.reserve_budgets(&[charge(limit, 1)]).await == BudgetDecision::Reserved {
                    reserved += 1;
                }
            }
            assert_eq!(reserved, expected, "{policy:?}");
            if expected > 0 {
                state.adjust_budget(limit, -2).await;
                assert_eq!(
                    state.budget_snapshot(limit).used,
                    expected - 2,
                    "{policy:?}: a refund is local too"
                );
            }
        }
    }

    // What a process reserved while Redis was unreachable is added to the
    // shared counter once Redis answers.
    #[tokio::test]
    async fn budget_units_reserved_during_an_outage_reach_redis_when_it_answers() {
        let port = free_port(false);
        let clock = clock_near_now();
        let state = store(
            &format!("redis://127.0.0.1:{port}"),
            &clock,
            &[],
            RedisConfig::default(),
        );
        let limit = budget("b", 100, QuotaPeriod::Day);
        for _ in 0..3 {
            assert_eq!(
                state.reserve_budgets(&[charge(limit, 5)]).await,
                BudgetDecision::Reserved
            );
        }
        state.adjust_budget(limit, -2).await;
        let server = RedisServer::start_on(port, false).expect("redis starts on the port");
        assert_eq!(
            state.reserve_budgets(&[charge(limit, 1)]).await,
            BudgetDecision::Reserved
        );
        let now = crate::clock::Clock::wall(&clock);
        let key = format!("polyrelay:b:{{budgets}}:b:{}", now.format("%Y-%m-%d"));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while server.cli(&["GET", &key]) != "14" {
            assert!(
                std::time::Instant::now() < deadline,
                "never reconciled: {}",
                server.cli(&["GET", &key])
            );
            tokio::time::sleep(ms(10)).await;
        }
    }

    // Against Redis: governor's `rejects_too_many`.
    #[tokio::test]
    async fn gcra_vectors_per_second_2() {
        let server = RedisServer::start();
        let clock = clock_near_now();
        let rate = Some(("2/s", 2));
        let state = store(
            &server.url(),
            &clock,
            &[
                limits("a", rate, None, Tz::UTC),
                limits("b", rate, None, Tz::UTC),
            ],
            RedisConfig::default(),
        );
        let at = |t: u64| clock.set(ms(t));

        // "a": rejected at 2 ms for 498 ms, admitted again at exactly 500 ms.
        assert!(allowed(state.check_rate("a", 1).await));
        at(1);
        assert!(allowed(state.check_rate("a", 1).await));
        at(2);
        assert_eq!(
            state.check_rate("a", 1).await,
            RateDecision::Limited {
                retry_after: ms(498)
            }
        );
        at(499);
        assert_eq!(
            state.check_rate("a", 1).await,
            RateDecision::Limited { retry_after: ms(1) }
        );
        at(500);
        assert!(allowed(state.check_rate("a", 1).await));

        // "b" (same times, its own key): 1002 and 1003 admitted, 1004 not.
        let clock_b = clock_near_now();
        let state_b = store(
            &server.url(),
            &clock_b,
            &[limits("b", rate, None, Tz::UTC)],
            RedisConfig::default(),
        );
        for (t, expected) in [
            (0, true),
            (1, true),
            (2, false),
            (1002, true),
            (1003, true),
            (1004, false),
        ] {
            clock_b.set(ms(t));
            assert_eq!(
                allowed(state_b.check_rate("b", 1).await),
                expected,
                "at {t} ms"
            );
        }
    }

    // `does_not_allow_one_extra_cell_after_longer_interval`,
    // and a cost above the burst is never admitted.
    #[tokio::test]
    async fn gcra_after_idle_allows_exactly_the_burst_and_never_more_than_it() {
        let server = RedisServer::start();
        let clock = clock_near_now();
        let state = store(
            &server.url(),
            &clock,
            &[limits("p", Some(("5/s", 5)), None, Tz::UTC)],
            RedisConfig::default(),
        );
        for round in 0..2 {
            let admitted =
                futures::future::join_all((0..6).map(|_| state.check_rate("p", 1))).await;
            assert_eq!(
                admitted.iter().filter(|d| allowed(**d)).count(),
                5,
                "round {round}"
            );
            clock.advance(Duration::from_secs(2));
        }
        for cost in [15, 7, 6] {
            assert_eq!(
                state.check_rate("p", cost).await,
                RateDecision::InsufficientCapacity { burst: 5 }
            );
        }
        assert!(allowed(state.check_rate("p", 5).await));
    }

    // The redis-cell table, replayed on the script with a
    // mocked TIME. Reply `[allowed, remaining, retry_after_ms, reset_after_ms]`
    // with limit = burst = 5 (redis-cell's max_burst 4), 1 request per second.
    #[tokio::test]
    async fn gcra_script_replays_the_redis_cell_table() {
        let server = RedisServer::start();
        let scripts = Scripts::new(TimeSource::Argument);
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let start_us = Utc::now().timestamp_micros();
        // (t ms, quantity, allowed, remaining, retry_after ms, reset_after ms)
        let rows: [(i64, u32, i64, i64, i64, i64); 15] = [
            (0, 6, 0, 5, -1, 0),
            (0, 1, 1, 4, 0, 1000),
            (0, 1, 1, 3, 0, 2000),
            (0, 1, 1, 2, 0, 3000),
            (0, 1, 1, 1, 0, 4000),
            (0, 1, 1, 0, 0, 5000),
            (0, 1, 0, 0, 1000, 5000),
            (3000, 1, 1, 2, 0, 3000),
            (3100, 1, 1, 1, 0, 3900),
            (4000, 1, 1, 1, 0, 4000),
            (8000, 1, 1, 4, 0, 1000),
            (9500, 1, 1, 4, 0, 1000),
            (9500, 0, 1, 4, 0, 1000),
            (9500, 2, 1, 2, 0, 3000),
            (9500, 5, 0, 2, 3000, 3000),
        ];
        for (i, (t, quantity, allowed, remaining, retry_after, reset_after)) in
            rows.into_iter().enumerate()
        {
            let reply: Vec<i64> = scripts
                .admit
                .key("q:{cell}:unused")
                .key("rl:{cell}")
                .arg(quantity)
                .arg(0)
                .arg(0)
                .arg(0)
                .arg(0)
                .arg(1_000_000)
                .arg(5)
                .arg(start_us + t * 1000)
                .invoke_async(&mut connection)
                .await
                .unwrap();
            assert_eq!(
                reply[3..],
                [allowed, remaining, retry_after, reset_after],
                "row {i}"
            );
        }
        let ttl = server.pttl("rl:{cell}");
        assert!(
            ttl > 0 && ttl <= 4000,
            "TAT expires when it stops mattering: {ttl}"
        );
    }

    fn exhausted(decision: QuotaDecision) -> Option<(DateTime<Utc>, Duration)> {
        match decision {
            QuotaDecision::Exhausted {
                reset_at,
                retry_after,
            } => Some((reset_at, retry_after)),
            QuotaDecision::Allowed { .. } => None,
        }
    }

    // 3/day in Paris around the next real local midnight.
    #[tokio::test]
    async fn quota_resets_at_local_midnight_and_keys_outlive_their_day() {
        let server = RedisServer::start();
        let tomorrow = QuotaWindow::containing(
            Utc::now() + chrono::Duration::days(1),
            Paris,
            QuotaPeriod::Day,
        );
        let midnight = tomorrow.start;
        let clock = FakeClock::new(midnight - chrono::Duration::seconds(1));
        let state = store(
            &server.url(),
            &clock,
            &[limits("p", None, Some(Quota::per_day(3)), Paris)],
            RedisConfig::default(),
        );
        for _ in 0..3 {
            assert_eq!(exhausted(state.consume_quota("p", 1).await), None);
        }
        assert_eq!(
            exhausted(state.consume_quota("p", 1).await),
            Some((midnight, Duration::from_secs(1)))
        );
        assert_eq!(
            Paris
                .from_utc_datetime(&midnight.naive_utc())
                .format("%H:%M:%S")
                .to_string(),
            "00:00:00"
        );
        let today_key = format!(
            "polyrelay:q:{{p}}:requests:{}",
            tomorrow.date.pred_opt().unwrap()
        );
        assert_eq!(
            server.cli(&["GET", &today_key]),
            "3",
            "rejected calls do not count"
        );
        let ttl = server.pttl(&today_key);
        assert!(ttl >= 1000, "TTL {ttl} ms must reach past midnight");

        clock.set_wall(midnight);
        assert_eq!(exhausted(state.consume_quota("p", 1).await), None);
        let new_key = format!("polyrelay:q:{{p}}:requests:{}", tomorrow.date);
        assert_eq!(server.cli(&["GET", &new_key]), "1");
        let length = i64::try_from(tomorrow.length().as_millis()).unwrap();
        assert!(
            server.pttl(&new_key) >= length,
            "lives to the end of its day"
        );
        assert_eq!(state.quota_snapshot("p").unwrap().remaining, 2);
    }

    // A month's quota on Redis: spent early, it stays spent through the
    // month's other days, under one key named by the month, and the next
    // month starts a new counter (CoinPaprika's 20,000 calls a month).
    #[tokio::test]
    async fn monthly_quota_holds_for_the_calendar_month() {
        let server = RedisServer::start();
        let next_month = QuotaWindow::containing(
            Utc::now() + chrono::Duration::days(32),
            Tz::UTC,
            QuotaPeriod::Month,
        );
        let month = QuotaWindow::containing(
            next_month.start - chrono::Duration::days(1),
            Tz::UTC,
            QuotaPeriod::Month,
        );
        let clock = FakeClock::new(month.start + chrono::Duration::hours(1));
        let state = store(
            &server.url(),
            &clock,
            &[limits("m", None, Some(Quota::per_month(2)), Tz::UTC)],
            RedisConfig::default(),
        );
        for _ in 0..2 {
            assert_eq!(exhausted(state.consume_quota("m", 1).await), None);
        }
        clock.set_wall(month.end - chrono::Duration::hours(1));
        assert_eq!(
            exhausted(state.consume_quota("m", 1).await),
            Some((month.end, Duration::from_secs(3600))),
            "a new day of the month does not restore the month's quota"
        );
        let key = format!("polyrelay:q:{{m}}:requests:{}", month.date.format("%Y-%m"));
        assert_eq!(server.keys("polyrelay:q:*"), std::slice::from_ref(&key));
        assert_eq!(server.cli(&["GET", &key]), "2");
        let snapshot = state.quota_snapshot("m").unwrap();
        assert_eq!(
            (snapshot.period, snapshot.date),
            (QuotaPeriod::Month, month.date)
        );

        clock.set_wall(month.end);
        assert_eq!(exhausted(state.consume_quota("m", 1).await), None);
        let next_key = format!(
            "polyrelay:q:{{m}}:requests:{}",
            next_month.date.format("%Y-%m")
        );
        assert_eq!(server.cli(&["GET", &next_key]), "1");
        assert!(
            server.pttl(&next_key) >= i64::try_from(next_month.length().as_millis()).unwrap(),
            "lives to the end of its month"
        );
    }

    // On Redis, with the next DST days of the zones of the in-process test.
    #[tokio::test]
    async fn quota_windows_on_dst_days() {
        let server = RedisServer::start();
        let rows = [
            (Santiago, "2027-09-05", "2027-09-05T04:00:00Z", 23),
            (Paris, "2027-10-31", "2027-10-30T22:00:00Z", 25),
            (Havana, "2027-11-07", "2027-11-07T04:00:00Z", 25),
            (Paris, "2027-03-28", "2027-03-27T23:00:00Z", 23),
        ];
        for (zone, date, start, hours) in rows {
            let start = utc(start);
            let end = start + chrono::Duration::hours(hours);
            let clock = FakeClock::new(start - chrono::Duration::milliseconds(1));
            let provider: &'static str = Box::leak(format!("dst-{}", zone.name()).into_boxed_str());
            let state = store(
                &server.url(),
                &clock,
                &[limits(provider, None, Some(Quota::per_day(2)), zone)],
                RedisConfig::default(),
            );
            let key = |day: &str| format!("polyrelay:q:{{{provider}}}:requests:{day}");
            // The last millisecond of the day before counts there.
            assert_eq!(exhausted(state.consume_quota(provider, 1).await), None);
            assert_eq!(
                server.keys(&key(date)),
                Vec::<String>::new(),
                "{zone} {date}"
            );
            // The day starts at `start` and lasts `hours`: one reset only.
            clock.set_wall(start);
            assert_eq!(exhausted(state.consume_quota(provider, 1).await), None);
            clock.set_wall(start + chrono::Duration::minutes(90));
            assert_eq!(exhausted(state.consume_quota(provider, 1).await), None);
            clock.set_wall(end - chrono::Duration::milliseconds(1));
            assert_eq!(
                exhausted(state.consume_quota(provider, 1).await),
                Some((end, ms(1))),
                "{zone} {date}"
            );
            assert_eq!(server.cli(&["GET", &key(date)]), "2", "{zone} {date}");
            let ttl = server.pttl(&key(date));
            assert!(ttl >= 3_600_000 * hours, "{zone} {date}: TTL {ttl}");
            clock.set_wall(end);
            assert_eq!(
                exhausted(state.consume_quota(provider, 1).await),
                None,
                "{zone} {date}"
            );
        }
    }

    // The day is named from Redis TIME: a client whose clock is a day ahead
    // is told so by the script, and counts in the server's day.
    #[tokio::test]
    async fn the_day_of_the_quota_key_is_the_servers() {
        let server = RedisServer::start();
        let clock = FakeClock::new(Utc::now() + chrono::Duration::days(1));
        let config = RedisConfig::new(&server.url());
        let backend = RedisBackend::new(&config, clock.shared()).unwrap();
        let state = RedisState::new(
            backend,
            &[limits("p", None, Some(Quota::per_day(5)), Paris)],
        )
        .unwrap();
        let evalsha = || server.command_calls("evalsha");

        assert_eq!(exhausted(state.consume_quota("p", 1).await), None);
        // NOSCRIPT (then SCRIPT LOAD), the wrong day, then the server's day.
        assert_eq!(evalsha(), 3, "the first call learns the server's day");
        assert_eq!(exhausted(state.consume_quota("p", 1).await), None);
        assert_eq!(evalsha(), 4, "then one round trip");

        let seconds: i64 = server
            .cli(&["TIME"])
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let server_day = QuotaWindow::containing(
            DateTime::from_timestamp(seconds, 0).unwrap(),
            Paris,
            QuotaPeriod::Day,
        );
        let keys = server.keys("polyrelay:q:*");
        assert_eq!(
            keys,
            [format!("polyrelay:q:{{p}}:requests:{}", server_day.date)]
        );
        assert_eq!(server.cli(&["GET", &keys[0]]), "2");
        assert_eq!(state.quota_snapshot("p").unwrap().reset_at, server_day.end);
    }

    // The hot path: quota and limiter in one script call, one round trip.
    #[tokio::test]
    async fn admit_takes_one_round_trip_and_survives_script_flush() {
        let server = RedisServer::start();
        let clock = clock_near_now();
        let state = store(
            &server.url(),
            &clock,
            &[limits(
                "p",
                Some(("100/h", 1000)),
                Some(Quota::per_day(10_000)),
                Tz::UTC,
            )],
            RedisConfig::default(),
        );
        assert_eq!(state.admit("p", 1).await, Admission::Admitted);
        let round_trips = || {
            ["evalsha", "eval", "script|load"]
                .iter()
                .map(|c| server.command_calls(c))
                .sum::<u64>()
        };
        let before = round_trips();
        for _ in 0..50 {
            assert_eq!(state.admit("p", 1).await, Admission::Admitted);
        }
        assert_eq!(round_trips() - before, 50);

        server.cli(&["SCRIPT", "FLUSH"]);
        assert_eq!(state.admit("p", 1).await, Admission::Admitted);
        assert_eq!(state.stats().failures, 0);
        let keys = server.keys("polyrelay:*");
        assert_eq!(keys.len(), 2, "{keys:?}");
        for key in keys {
            assert!(server.pttl(&key) > 0, "{key}");
        }
    }

    // Healing: a key that lost its TTL gets it back.
    #[tokio::test]
    async fn a_counter_without_ttl_is_healed() {
        let server = RedisServer::start();
        let clock = clock_near_now();
        let state = store(
            &server.url(),
            &clock,
            &[limits(
                "p",
                Some(("1/h", 1)),
                Some(Quota::per_day(1)),
                Tz::UTC,
            )],
            RedisConfig::default(),
        );
        assert_eq!(state.admit("p", 1).await, Admission::Admitted);
        let keys = server.keys("polyrelay:*");
        assert_eq!(keys.len(), 2);
        for key in &keys {
            server.cli(&["PERSIST", key]);
            assert_eq!(server.pttl(key), -1);
        }
        // Refused by the quota, then by the limiter alone: both heal.
        assert!(matches!(
            state.admit("p", 1).await,
            Admission::QuotaExhausted { .. }
        ));
        assert!(matches!(
            state.check_rate("p", 1).await,
            RateDecision::Limited { .. }
        ));
        for key in &keys {
            assert!(server.pttl(key) > 0, "{key}");
        }
    }

    // Redis down, policy by policy, with nothing listening.
    #[tokio::test]
    async fn without_redis_the_local_policy_decides() {
        let dead = format!("redis://127.0.0.1:{}", free_port(false));
        let clock = clock_near_now();
        let cases = [
            (QuotaFallback::LocalShare, 0.25, 3),
            (QuotaFallback::LocalFull, 0.25, 10),
            (QuotaFallback::Deny, 0.25, 0),
        ];
        for (policy, fraction, expected) in cases {
            let state = store(
                &dead,
                &clock,
                &[limits(
                    "p",
                    Some(("1000/s", 100)),
                    Some(Quota::per_day(10)),
                    Tz::UTC,
                )],
                RedisConfig {
                    quota_fallback: policy,
                    local_share_fraction: fraction,
                    ..RedisConfig::default()
                },
            );
            let mut admitted = 0;
            for _ in 0..12 {
                if state.admit("p", 1).await == Admission::Admitted {
                    admitted += 1;
                }
            }
            assert_eq!(admitted, expected, "{policy:?}");
            assert!(state.degraded());
            let stats = state.stats();
            assert_eq!(stats.failures, 5, "the breaker opened after 5 failures");
            assert_eq!(stats.short_circuited, 7);
        }
        // The local limiter is scaled too: burst 8 × 0.25 = 2.
        let state = store(
            &dead,
            &clock,
            &[limits("r", Some(("100/s", 8)), None, Tz::UTC)],
            RedisConfig {
                local_share_fraction: 0.25,
                ..RedisConfig::default()
            },
        );
        let decisions = futures::future::join_all((0..4).map(|_| state.check_rate("r", 1))).await;
        assert_eq!(decisions.iter().filter(|d| allowed(**d)).count(), 2);
    }
}
