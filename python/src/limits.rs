//! `InboundLimiter` for Python: the core's per-key GCRA for requests coming
//! in to an app (`polyrelay.fastapi` limits users and client addresses with
//! it). Conversions only; keys are hashed by the core, never stored as given.

use std::sync::Arc;

use polyrelay::config::RedisConfig;
use polyrelay::internal::resilience::rate_limit::Rate;
use polyrelay::internal::state::inbound::{self, InboundDecision};
use polyrelay::internal::state::redis::RedisBackend;
use polyrelay::Error;
use pyo3::prelude::*;

use crate::clock::FakeClock;
use crate::{bridge, errors};

/// `(allowed, retry_after_s, remaining, reset_s)`.
type Decision = (bool, f64, u32, f64);

fn decision(decided: InboundDecision) -> Decision {
    (
        decided.allowed,
        decided.retry_after.as_secs_f64(),
        decided.remaining,
        decided.reset_after.as_secs_f64(),
    )
}

/// A GCRA budget per key, in memory or shared through Redis.
#[pyclass(module = "polyrelay._native", name = "InboundLimiter", frozen)]
pub(crate) struct InboundLimiter {
    inner: Arc<inbound::InboundLimiter>,
    /// The rate as given, for `repr`.
    rate: String,
}

#[pymethods]
impl InboundLimiter {
    /// A limiter allowing `rate` (`"10/s"`, `"600/min"`, `"1/5s"`) per key,
    /// `burst` back to back (default: the rate's requests); shared through
    /// the Redis at `redis_url` when given. `name` names its Redis keys.
    #[new]
    #[pyo3(signature = (rate, *, burst = None, name = "default", redis_url = None, clock = None))]
    fn new(
        py: Python<'_>,
        rate: &str,
        burst: Option<u32>,
        name: &str,
        redis_url: Option<&str>,
        clock: Option<PyRef<'_, FakeClock>>,
    ) -> PyResult<Self> {
        let parsed: Rate = rate.parse().map_err(
            |e: polyrelay::internal::resilience::rate_limit::InvalidRate| {
                errors::to_py(py, Error::config("rate", e.reason))
            },
        )?;
        let clock = clock.map_or_else(polyrelay::clock::SystemClock::shared, |c| c.shared());
        let mut limiter = inbound::InboundLimiter::new(name, parsed, burst, clock.clone())
            .map_err(|e| errors::to_py(py, e))?;
        if let Some(url) = redis_url {
            // Connects in the background: while Redis is unreachable each
            // process limits on its own.
            let backend = RedisBackend::new(&RedisConfig::new(url), clock)
                .map_err(|e| errors::to_py(py, e))?;
            limiter = limiter
                .with_redis(backend)
                .map_err(|e| errors::to_py(py, e))?;
        }
        Ok(Self {
            inner: Arc::new(limiter),
            rate: rate.to_owned(),
        })
    }

    /// Takes one unit of `key`'s budget if it conforms now (blocking on
    /// Redis when shared): `(allowed, retry_after_s, remaining, reset_s)`.
    fn check(&self, py: Python<'_>, key: &str) -> PyResult<Decision> {
        if !self.inner.is_shared() {
            return Ok(decision(self.inner.check_local(key)));
        }
        let limiter = Arc::clone(&self.inner);
        let key = key.to_owned();
        bridge::block_on(py, async move { decision(limiter.check(&key).await) })
    }

    /// `check`, as an awaitable (answered at once when not shared).
    fn acheck<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        let limiter = Arc::clone(&self.inner);
        let key = key.to_owned();
        bridge::awaitable(py, async move {
            Ok::<_, Error>(decision(limiter.check(&key).await))
        })
    }

    /// Requests allowed back to back from a full budget.
    #[getter]
    fn limit(&self) -> u32 {
        self.inner.limit()
    }

    /// The window of the rate, in seconds (`60.0` for `"600/min"`).
    #[getter]
    fn window(&self) -> f64 {
        self.inner.rate().per.as_secs_f64()
    }

    /// Whether budgets are shared through Redis.
    #[getter]
    fn shared(&self) -> bool {
        self.inner.is_shared()
    }

    /// Whether a shared limiter currently limits locally (Redis
    /// unreachable).
    #[getter]
    fn degraded(&self) -> bool {
        self.inner.degraded()
    }

    fn __repr__(&self) -> String {
        format!(
            "<polyrelay.InboundLimiter rate={:?} burst={} store={}>",
            self.rate,
            self.inner.limit(),
            if self.inner.is_shared() {
                "redis"
            } else {
                "memory"
            }
        )
    }
}
