//! What happens after a provider fails: one pure function and its table.
//!
//! The engine asks [`after_failure`] once per failed try; the answer says
//! whether the same provider may be tried again, whether the next provider
//! may be asked, whether the provider is benched, and how the circuit
//! breaker counts the failure. *When* a retry happens (backoff, `Retry-After`,
//! the deadline, the retry budget) is [`crate::resilience::retry`]'s job.

use crate::error::{BenchCause, FailureClass, ProviderFailure};
use crate::resilience::breaker::Outcome;

/// The facts about one failed try that the decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    pub class: FailureClass,
    /// The reply proves the request was not processed: 429, 503 with
    /// `Retry-After`, or a failure before the request was written
    /// (connection refused). Re-sending is then safe whatever the method.
    pub unprocessed: bool,
    /// Nothing was listening: the connection was refused or never made.
    pub unreachable: bool,
    /// No answer came within the attempt timeout.
    pub timed_out: bool,
    /// Repeating a processed request is harmless: a GET, a capability whose
    /// calls have no side effects, or a provider that de-duplicates by an
    /// idempotency key.
    pub safe_to_repeat: bool,
    /// No other provider of the chain is left to ask in this call.
    pub last_available: bool,
    /// The capability's `content_filtered_fallback` setting.
    pub content_filtered_fallback: bool,
}

impl Facts {
    /// The facts of `failure`; the caller supplies what the failure cannot
    /// know about the request and the chain.
    pub(crate) fn of(failure: &ProviderFailure) -> Self {
        let unreachable = failure.class == FailureClass::Transient && !failure.request_sent;
        Self {
            class: failure.class,
            unprocessed: !failure.request_sent
                || failure.class == FailureClass::RateLimited
                || (failure.status == Some(503) && failure.retry_after.is_some()),
            unreachable,
            timed_out: false,
            safe_to_repeat: false,
            last_available: false,
            content_filtered_fallback: false,
        }
    }
}

/// What to do about one failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The same provider may be tried again (timing permitting).
    pub retry: bool,
    /// The next provider of the chain may be asked.
    pub fall_over: bool,
    /// Bench the provider when its turn ends on this failure.
    pub bench: Option<BenchCause>,
    /// How the circuit breaker counts the try: only signs of an unhealthy
    /// provider count; caller-shaped errors and answers are ignored.
    pub breaker: Outcome,
}

/// The policy table. Exhaustive over [`FailureClass`]: a new class must say
/// what happens to it. See the table test below for every case.
pub(crate) fn after_failure(facts: Facts) -> Decision {
    use FailureClass::*;
    let plain = |breaker| Decision {
        retry: false,
        fall_over: true,
        bench: None,
        breaker,
    };
    match facts.class {
        Transient if facts.unreachable => Decision {
            // Retrying a refused connection within a second rarely helps
            // while another provider can answer now; as the last one left,
            // it is worth its retries.
            retry: facts.last_available,
            fall_over: true,
            bench: Some(BenchCause::Unreachable),
            breaker: Outcome::Failure,
        },
        Transient if facts.timed_out => Decision {
            // A provider that hung for a whole attempt timeout is likely to
            // hang again: while another provider is left to ask, the call
            // moves on (the provider keeps its second chance).
            retry: facts.last_available && facts.safe_to_repeat,
            ..plain(Outcome::Failure)
        },
        Transient | RateLimited => Decision {
            retry: facts.unprocessed || facts.safe_to_repeat,
            ..plain(Outcome::Failure)
        },
        MalformedResponse => plain(Outcome::Failure),
        QuotaExhausted => Decision {
            bench: Some(BenchCause::QuotaUsedUp),
            ..plain(Outcome::Ignored)
        },
        Auth => Decision {
            bench: Some(BenchCause::KeyRefused),
            ..plain(Outcome::Ignored)
        },
        ContentFiltered => Decision {
            fall_over: facts.content_filtered_fallback,
            ..plain(Outcome::Ignored)
        },
        InvalidRequest | NotFound | Unsupported | ContextLengthExceeded => plain(Outcome::Ignored),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureClass::*;

    fn facts(class: FailureClass) -> Facts {
        Facts {
            class,
            unprocessed: false,
            unreachable: false,
            timed_out: false,
            safe_to_repeat: false,
            last_available: false,
            content_filtered_fallback: false,
        }
    }

    /// (facts, retry, fall over, bench, breaker)
    #[test]
    fn the_policy_table() {
        let f = Outcome::Failure;
        let i = Outcome::Ignored;
        let processed_post = facts(Transient);
        let get = Facts {
            safe_to_repeat: true,
            ..facts(Transient)
        };
        let refused = Facts {
            unreachable: true,
            unprocessed: true,
            ..facts(Transient)
        };
        let refused_last = Facts {
            last_available: true,
            ..refused
        };
        let hung = Facts {
            timed_out: true,
            ..get
        };
        let hung_last = Facts {
            last_available: true,
            ..hung
        };
        let busy_503 = Facts {
            unprocessed: true,
            ..facts(Transient)
        };
        let too_many = Facts {
            unprocessed: true,
            ..facts(RateLimited)
        };
        let filtered_fallback = Facts {
            content_filtered_fallback: true,
            ..facts(ContentFiltered)
        };
        let table: &[(Facts, bool, bool, Option<BenchCause>, Outcome)] = &[
            (processed_post, false, true, None, f),
            (get, true, true, None, f),
            (refused, false, true, Some(BenchCause::Unreachable), f),
            (refused_last, true, true, Some(BenchCause::Unreachable), f),
            (hung, false, true, None, f),
            (hung_last, true, true, None, f),
            (busy_503, true, true, None, f),
            (too_many, true, true, None, f),
            (facts(MalformedResponse), false, true, None, f),
            (
                facts(QuotaExhausted),
                false,
                true,
                Some(BenchCause::QuotaUsedUp),
                i,
            ),
            (facts(Auth), false, true, Some(BenchCause::KeyRefused), i),
            (facts(InvalidRequest), false, true, None, i),
            (facts(NotFound), false, true, None, i),
            (facts(Unsupported), false, true, None, i),
            (facts(ContextLengthExceeded), false, true, None, i),
            (facts(ContentFiltered), false, false, None, i),
            (filtered_fallback, false, true, None, i),
        ];
        for (facts, retry, fall_over, bench, breaker) in table {
            let expected = Decision {
                retry: *retry,
                fall_over: *fall_over,
                bench: *bench,
                breaker: *breaker,
            };
            assert_eq!(after_failure(*facts), expected, "{facts:?}");
        }
    }

    #[test]
    fn facts_read_the_failure() {
        let too_many = ProviderFailure::new(RateLimited, "slow down").status(429);
        assert!(Facts::of(&too_many).unprocessed);
        let busy = ProviderFailure::new(Transient, "busy")
            .status(503)
            .retry_after(Some(std::time::Duration::from_secs(1)));
        assert!(Facts::of(&busy).unprocessed);
        let crashed = ProviderFailure::new(Transient, "oops").status(503);
        assert!(!Facts::of(&crashed).unprocessed);
        let refused = ProviderFailure::new(Transient, "connection refused").not_sent();
        let facts = Facts::of(&refused);
        assert!(facts.unprocessed && facts.unreachable);
        let bad_key = ProviderFailure::new(Auth, "bad header").not_sent();
        assert!(!Facts::of(&bad_key).unreachable);
    }
}
