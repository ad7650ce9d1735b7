//! Faults the emulator injects, and the plan saying which request gets which.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::reply::Reply;
use crate::route::PathPattern;

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

/// Which requests get which fault.
///
/// Queued faults come first, in FIFO order: a request takes the oldest queued fault
/// whose target matches its path, and each queued fault serves `times` requests.
/// Only when no queued fault matches does a sticky fault apply (the most recently
/// set one whose target matches).
#[derive(Default)]
pub(crate) struct FaultPlan {
    queued: VecDeque<Queued>,
    sticky: Vec<(PathPattern, Fault)>,
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

    pub(crate) fn stick(&mut self, target: PathPattern, fault: Fault) {
        self.sticky.retain(|(existing, _)| *existing != target);
        self.sticky.push((target, fault));
    }

    pub(crate) fn clear(&mut self) {
        self.queued.clear();
        self.sticky.clear();
    }

    /// The fault for a request to `path`, consuming one use of a queued fault.
    pub(crate) fn take(&mut self, path: &str) -> Option<Fault> {
        if self.queued.is_empty() && self.sticky.is_empty() {
            return None;
        }
        if let Some(index) = self.queued.iter().position(|q| q.target.matches(path)) {
            let queued = &mut self.queued[index];
            queued.remaining -= 1;
            if queued.remaining > 0 {
                return Some(queued.fault.clone());
            }
            return self.queued.remove(index).map(|q| q.fault);
        }
        self.sticky
            .iter()
            .rev()
            .find(|(target, _)| target.matches(path))
            .map(|(_, fault)| fault.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency_ms(fault: Option<Fault>) -> Option<u128> {
        match fault {
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
        assert!(plan.take("/a").is_none());
    }
}
