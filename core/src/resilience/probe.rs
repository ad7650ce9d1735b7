//! The last-resort probe: Envoy's panic threshold applied to a chain.
//!
//! When a call finds no provider that can answer and some were passed over
//! for a reason that may already be over (an open breaker, a bench for a
//! long `Retry-After` or an unreachable host, failures earlier in the call),
//! one call probes the provider that would be back soonest (an open breaker
//! as a half-open trial through it) instead of failing with time left on the
//! clock. Calls that reach the same point while that probe is in flight wait
//! for its outcome (within their own deadlines) instead of each sending a
//! request; a probe still in flight after a patience period lets the next
//! provider be probed too, so that one hung provider cannot hold the chain.
//! Probes of one provider are at least `probe_interval` apart.
//!
//! This type only arbitrates who probes and when; the engine sends the
//! request through the breaker like any try.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

/// The probe arbiter of one provider for one capability.
#[derive(Debug)]
pub(crate) struct LastResortProbe {
    interval: Duration,
    state: Mutex<ProbeState>,
}

#[derive(Debug, Default)]
struct ProbeState {
    /// When the last probe started (monotonic).
    last: Option<Duration>,
    /// The probe in flight: `Some(answered)` is sent when it ends, and the
    /// channel closes; waiters hold receivers.
    in_flight: Option<watch::Receiver<Option<bool>>>,
    /// When a probe last got an answer (monotonic).
    answered_at: Option<Duration>,
}

/// What a call should do about a provider whose breaker is open.
#[derive(Debug)]
pub(crate) enum ProbeTurn {
    /// Send the probe; drop the guard when the try has ended.
    Probe(ProbeGuard),
    /// Another call is probing: wait for [`ProbeWait::ended`], then ask the
    /// provider again.
    Wait(ProbeWait),
    /// The last probe was too recent; the next may start at this moment.
    NotBefore(Duration),
}

/// Held by the call that probes; dropping it wakes the waiters (as a
/// failed probe unless [`ProbeGuard::answered`] was called).
#[derive(Debug)]
pub(crate) struct ProbeGuard {
    ended: watch::Sender<Option<bool>>,
}

impl ProbeGuard {
    /// The probe got an answer: waiters may ask the provider again.
    pub(crate) fn answered(&self) {
        self.ended.send_replace(Some(true));
    }
}

/// A call's wait for someone else's probe.
#[derive(Debug)]
pub(crate) struct ProbeWait(watch::Receiver<Option<bool>>);

impl ProbeWait {
    /// Completes when the probe in flight has ended; `true` when it got an
    /// answer.
    pub(crate) async fn ended(mut self) -> bool {
        // Wait until the guard is gone (the channel closes), then read
        // whether it reported an answer.
        while self.0.changed().await.is_ok() {}
        let answered = *self.0.borrow();
        answered == Some(true)
    }
}

impl LastResortProbe {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(ProbeState::default()),
        }
    }

    /// Whether a probe of this provider is in flight.
    pub(crate) fn probing(&self) -> bool {
        let state = self.state.lock();
        state
            .in_flight
            .as_ref()
            .is_some_and(|rx| rx.has_changed().is_ok())
    }

    /// Notes that a probe got an answer at `now`, for calls that were
    /// waiting for something else when it did.
    pub(crate) fn record_answer(&self, now: Duration) {
        self.state.lock().answered_at = Some(now);
    }

    /// Whether a probe got an answer at or after `since`.
    pub(crate) fn answered_since(&self, since: Duration) -> bool {
        self.state.lock().answered_at.is_some_and(|at| at >= since)
    }

    /// The probe in flight, if any: when it started and a wait for its end.
    pub(crate) fn in_flight(&self) -> Option<(Duration, ProbeWait)> {
        let state = self.state.lock();
        let rx = state.in_flight.as_ref()?;
        rx.has_changed()
            .is_ok()
            .then(|| (state.last.unwrap_or_default(), ProbeWait(rx.clone())))
    }

    /// Decides, at monotonic `now`, whether this call probes, waits for the
    /// probe in flight, or comes back later.
    pub(crate) fn turn(&self, now: Duration) -> ProbeTurn {
        let mut state = self.state.lock();
        if let Some(rx) = &state.in_flight {
            // `has_changed` fails once the sender (the guard) is gone.
            if rx.has_changed().is_ok() {
                return ProbeTurn::Wait(ProbeWait(rx.clone()));
            }
        }
        if let Some(next) = state.last.map(|last| last.saturating_add(self.interval)) {
            if now < next {
                return ProbeTurn::NotBefore(next);
            }
        }
        let (tx, rx) = watch::channel(None);
        state.last = Some(now);
        state.in_flight = Some(rx);
        ProbeTurn::Probe(ProbeGuard { ended: tx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_call_probes_the_others_wait_for_it_and_probes_are_spaced() {
        let probe = LastResortProbe::new(Duration::from_secs(1));
        let ProbeTurn::Probe(guard) = probe.turn(Duration::ZERO) else {
            panic!("the first call probes");
        };
        assert!(probe.probing());
        assert_eq!(
            probe.in_flight().map(|(since, _)| since),
            Some(Duration::ZERO)
        );
        let waits: Vec<ProbeWait> = (0..5)
            .map(|_| match probe.turn(Duration::from_millis(10)) {
                ProbeTurn::Wait(wait) => wait,
                other => panic!("expected a wait, got {other:?}"),
            })
            .collect();
        let waiting = tokio::spawn(async move {
            let mut answered = Vec::new();
            for wait in waits {
                answered.push(wait.ended().await);
            }
            answered
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        guard.answered();
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "waiters wake when the probe ends");
        drop(guard);
        assert_eq!(waiting.await.unwrap(), vec![true; 5]);
        assert!(!probe.probing());
        assert!(probe.in_flight().is_none());
        assert!(!probe.answered_since(Duration::ZERO));
        probe.record_answer(Duration::from_millis(20));
        assert!(probe.answered_since(Duration::from_millis(20)));
        assert!(!probe.answered_since(Duration::from_millis(21)));
        // Within the interval: not before 1 s after the last probe.
        match probe.turn(Duration::from_millis(999)) {
            ProbeTurn::NotBefore(at) => assert_eq!(at, Duration::from_secs(1)),
            other => panic!("expected NotBefore, got {other:?}"),
        }
        let ProbeTurn::Probe(failed) = probe.turn(Duration::from_secs(1)) else {
            panic!("a probe is due after the interval");
        };
        let ProbeTurn::Wait(wait) = probe.turn(Duration::from_secs(1)) else {
            panic!("expected a wait");
        };
        drop(failed);
        assert!(
            !wait.ended().await,
            "a probe dropped without an answer failed"
        );
    }
}
