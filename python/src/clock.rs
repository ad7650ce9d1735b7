//! A fake clock for tests of time-dependent auth (token lifetimes, the
//! refresh grace window, denylist expiry) without sleeping.

use std::time::Duration;

use chrono::{DateTime, Utc};
use polyrelay::clock::{Clock, SharedClock};
use polyrelay::Error;
use pyo3::prelude::*;

use crate::errors;

/// Time that moves only when told to.
#[pyclass(module = "polyrelay._native", name = "FakeClock", frozen)]
pub(crate) struct FakeClock {
    inner: polyrelay::clock::FakeClock,
}

impl FakeClock {
    /// The handle polyrelay components read time from.
    pub(crate) fn shared(&self) -> SharedClock {
        self.inner.shared()
    }
}

#[pymethods]
impl FakeClock {
    /// A clock whose wall time starts at `wall` (seconds since the epoch).
    #[new]
    fn new(py: Python<'_>, wall: f64) -> PyResult<Self> {
        let start = (wall * 1000.0).round();
        let origin = (start.is_finite() && start.abs() < i64::MAX as f64)
            .then(|| DateTime::<Utc>::from_timestamp_millis(start as i64))
            .flatten()
            .ok_or_else(|| {
                errors::to_py(py, Error::invalid("wall", "must be a representable time"))
            })?;
        Ok(Self {
            inner: polyrelay::clock::FakeClock::new(origin),
        })
    }

    /// Moves time forward by `seconds`.
    fn advance(&self, py: Python<'_>, seconds: f64) -> PyResult<()> {
        let by = Duration::try_from_secs_f64(seconds).map_err(|_| {
            errors::to_py(
                py,
                Error::invalid("seconds", "must be a non-negative number"),
            )
        })?;
        self.inner.advance(by);
        Ok(())
    }

    /// The wall time, in seconds since the epoch.
    #[getter]
    fn wall(&self) -> f64 {
        self.inner.wall().timestamp_millis() as f64 / 1000.0
    }

    fn __repr__(&self) -> String {
        format!("<polyrelay.testing.FakeClock at {}>", self.inner.wall())
    }
}
