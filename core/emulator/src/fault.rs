//! Faults the emulator injects, and the plan saying which request gets which.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::reply::Reply;
use crate::route::PathPattern;
use crate::streamed::ChunkFault;

/// A misbehaviour to inject instead of (or on top of) a route's normal reply.
///
/// Faults model what real providers do on a bad day, so the client's retry,
/// timeout, breaker and parsing paths can be driven from outside.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this reply instead of the route's: any status, headers and body,
    /// e.g. `503`, `429` with `Retry-After`, or `200` with an error inside the JSON.
    /// [`Fault::status`] builds the common case.
    Respond(Reply),
    /// Wait this long, then send the normal reply. If the client gives up first,
    /// the request is logged as `closed_early`.
    Latency(Duration),
    /// Read the request and never answer. The emulator notices when the client
    /// closes the connection, releases the request and logs it as `closed_early`.
    Hang,
    /// Read the request, then close the TCP connection abruptly (`SO_LINGER` 0,
    /// so the client receives an RST) without sending a response.
    Reset,
    /// Send `200` with `Content-Type: application/json` and a body that is not
    /// valid JSON: the first half of the normal JSON body, or a fixed truncated
    /// document when the normal body is not a JSON object or array.
    Malformed,
    /// Send `200` with a JSON array of exactly this many bytes, streamed in 64 KiB
    /// chunks so that even gigabytes cost no memory.
    Oversized(u64),
    /// Send the normal status and headers with this body instead.
    ReplaceBody(Bytes),
    /// Stream the normal reply and misbehave at its chunk of this index
    /// (from 0; a reply that is not streamed is one chunk): cut the
    /// connection, stall, insert a malformed event, or end with an error
    /// event. See [`ChunkFault`].
    AtChunk(usize, ChunkFault),
}

impl Fault {
    /// Answers with `status` and a JSON error body
    /// `{"error": {"code": 503, "message": "Service Unavailable"}}`.
    pub fn status(status: u16) -> Self {
        let message = hyper::StatusCode::from_u16(status)
            .ok()
            .and_then(|code| code.canonical_reason())
            .unwrap_or("Injected fault");
        Self::Respond(
            Reply::json(&serde_json::json!({
                "error": { "code": status, "message": message }
            }))
            .with_status(status),
        )
    }
}

/// Draws the fault of one request, or `None` for none; see
/// [`Emulator::fault_with`](crate::Emulator::fault_with).
pub(crate) type FaultChooser = Arc<dyn Fn() -> Option<Fault> + Send + Sync>;

/// Which requests get which fault.
///
/// Queued faults come first, in FIFO order: a request takes the oldest queued fault
/// whose target matches its path, and each queued fault serves `times` requests.
/// When no queued fault matches, a chooser draws one (the most recently set
/// chooser whose target matches); when there is none or it draws `None`, a sticky
/// fault applies (the most recently set one whose target matches).
#[derive(Default)]
pub(crate) struct FaultPlan {
    queued: VecDeque<Queued>,
    choosers: Vec<(PathPattern, FaultChooser)>,
    sticky: Vec<(PathPattern, Fault)>,
}

/// What the plan holds for one request. A chooser is returned rather than
/// called so that it runs after the plan's lock is released: it may take its
/// time, or set faults on the emulator itself, without stalling other requests
/// or deadlocking.
pub(crate) enum Planned {
    Nothing,
    Fault(Fault),
    Draw {
        chooser: FaultChooser,
        otherwise: Option<Fault>,
    },
}

impl Planned {
    /// The fault to inject, drawing it when a chooser decides.
    pub(crate) fn resolve(self) -> Option<Fault> {
        match self {
            Self::Nothing => None,
            Self::Fault(fault) => Some(fault),
            Self::Draw { chooser, otherwise } => chooser().or(otherwise),
        }
    }
}

struct Queued {
    target: PathPattern,
    fault: Fault,
    remaining: usize,
}

impl FaultPlan {
    pub(crate) fn queue(&mut self, target: PathPattern, fault: Fault, times: usize) {
        if times > 0 {
            self.queued.push_back(Queued {
                target,
                fault,
                remaining: times,
            });
        }
    }

    pub(crate) fn choose(&mut self, target: PathPattern, chooser: FaultChooser) {
        self.choosers.retain(|(existing, _)| *existing != target);
        self.choosers.push((target, chooser));
    }

    pub(crate) fn stick(&mut self, target: PathPattern, fault: Fault) {
        self.sticky.retain(|(existing, _)| *existing != target);
        self.sticky.push((target, fault));
    }

    pub(crate) fn clear(&mut self) {
        self.queued.clear();
        self.choosers.clear();
        self.sticky.clear();
    }

    /// What applies to a request to `path`, consuming one use of a queued fault.
    pub(crate) fn take(&mut self, path: &str) -> Planned {
        if self.queued.is_empty() && self.choosers.is_empty() && self.sticky.is_empty() {
            return Planned::Nothing;
        }
        if let Some(index) = self.queued.iter().position(|q| q.target.matches(path)) {
            let queued = &mut self.queued[index];
            queued.remaining -= 1;
            if queued.remaining > 0 {
                return Planned::Fault(queued.fault.clone());
            }
            return match self.queued.remove(index) {
                Some(queued) => Planned::Fault(queued.fault),
                None => Planned::Nothing,
            };
        }
        let sticky = latest_matching(&self.sticky, path).cloned();
        match (latest_matching(&self.choosers, path), sticky) {
            (Some(chooser), otherwise) => Planned::Draw {
                chooser: Arc::clone(chooser),
                otherwise,
            },
            (None, Some(fault)) => Planned::Fault(fault),
            (None, None) => Planned::Nothing,
        }
    }
}

/// The most recently set rule whose target matches `path`.
fn latest_matching<'a, T>(rules: &'a [(PathPattern, T)], path: &str) -> Option<&'a T> {
    rules
        .iter()
        .rev()
        .find(|(target, _)| target.matches(path))
        .map(|(_, rule)| rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency_ms(planned: Planned) -> Option<u128> {
        match planned.resolve() {
            Some(Fault::Latency(d)) => Some(d.as_millis()),
            _ => None,
        }
    }

    fn lat(ms: u64) -> Fault {
        Fault::Latency(Duration::from_millis(ms))
    }

    #[test]
    fn queued_faults_are_fifo_per_matching_path_and_counted() {
        let mut plan = FaultPlan::default();
        plan.queue(PathPattern::parse("/a"), lat(1), 2);
        plan.queue(PathPattern::parse("/b"), lat(2), 1);
        plan.queue(PathPattern::parse("*"), lat(3), 1);
        assert_eq!(latency_ms(plan.take("/b")), Some(2));
        assert_eq!(latency_ms(plan.take("/a")), Some(1));
        assert_eq!(latency_ms(plan.take("/a")), Some(1));
        assert_eq!(latency_ms(plan.take("/a")), Some(3));
        assert_eq!(latency_ms(plan.take("/a")), None);
    }

    #[test]
    fn queued_faults_come_before_sticky_ones_and_clear_removes_all() {
        let mut plan = FaultPlan::default();
        plan.stick(PathPattern::parse("*"), lat(9));
        plan.queue(PathPattern::parse("/a"), lat(1), 1);
        assert_eq!(latency_ms(plan.take("/a")), Some(1));
        assert_eq!(latency_ms(plan.take("/a")), Some(9));
        assert_eq!(latency_ms(plan.take("/a")), Some(9));
        plan.clear();
        assert_eq!(latency_ms(plan.take("/a")), None);
    }

    #[test]
    fn the_latest_matching_sticky_fault_wins_and_replaces_its_target() {
        let mut plan = FaultPlan::default();
        plan.stick(PathPattern::parse("*"), lat(1));
        plan.stick(PathPattern::parse("/a"), lat(2));
        plan.stick(PathPattern::parse("/a"), lat(3));
        assert_eq!(plan.sticky.len(), 2);
        assert_eq!(latency_ms(plan.take("/a")), Some(3));
        assert_eq!(latency_ms(plan.take("/b")), Some(1));
    }

    #[test]
    fn zero_times_queues_nothing() {
        let mut plan = FaultPlan::default();
        plan.queue(PathPattern::parse("*"), Fault::Hang, 0);
        assert!(plan.take("/a").resolve().is_none());
    }

    #[test]
    fn a_chooser_comes_after_queued_faults_and_its_none_falls_through_to_sticky() {
        let mut plan = FaultPlan::default();
        let draws = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let chooser: FaultChooser = {
            let draws = Arc::clone(&draws);
            // Every other draw is a fault.
            Arc::new(move || {
                let n = draws.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                n.is_multiple_of(2).then(|| lat(5))
            })
        };
        plan.stick(PathPattern::parse("*"), lat(9));
        plan.choose(PathPattern::parse("/a"), chooser);
        plan.queue(PathPattern::parse("/a"), lat(1), 1);
        assert_eq!(latency_ms(plan.take("/a")), Some(1), "queued first");
        assert_eq!(latency_ms(plan.take("/a")), Some(5), "drawn");
        assert_eq!(latency_ms(plan.take("/a")), Some(9), "drew none: sticky");
        assert_eq!(
            latency_ms(plan.take("/b")),
            Some(9),
            "not the chooser's path"
        );
        assert_eq!(draws.load(std::sync::atomic::Ordering::Relaxed), 2);
        plan.clear();
        assert_eq!(latency_ms(plan.take("/a")), None);
    }

    #[test]
    fn setting_a_chooser_for_the_same_target_replaces_it() {
        let mut plan = FaultPlan::default();
        plan.choose(PathPattern::parse("/a*"), Arc::new(|| Some(lat(1))));
        plan.choose(PathPattern::parse("/a*"), Arc::new(|| Some(lat(2))));
        plan.choose(PathPattern::parse("/ab"), Arc::new(|| Some(lat(3))));
        assert_eq!(plan.choosers.len(), 2);
        assert_eq!(latency_ms(plan.take("/a")), Some(2));
        assert_eq!(latency_ms(plan.take("/ab")), Some(3));
    }
}
