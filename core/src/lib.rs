//! polyrelay: one resilient client for many public APIs.
//!
//! A call names a capability (`weather.current`, `finance.fx_rates`, …) and
//! is answered by the first healthy provider of that capability's fallback
//! chain. Every provider is guarded by a daily or monthly quota, a client-side rate
//! limiter, a circuit breaker, retries with jittered backoff and an attempt
//! timeout; a cache sits in front and one total deadline bounds the call.
//! See `ARCHITECTURE.md` for the pipeline and where each piece lives.
//!
//! ```no_run
//! # async fn demo() -> polyrelay::Result<()> {
//! let client = polyrelay::Client::builder().build()?;
//! let rates = client.call("finance.fx_rates", serde_json::json!({"base": "USD", "symbols": ["EUR"]})).await?;
//! println!("{} via {} (cached: {})", rates.data().to_json(), rates.provider, rates.cached);
//! for attempt in &rates.attempts {
//!     println!("  {attempt}");
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The API: the modules users name, and the root re-exports below.
pub mod analytics;
pub mod assistant;
pub mod auth;
pub mod capability;
pub mod clock;
pub mod config;
#[cfg(feature = "emulator")]
pub mod emulation;
pub mod metrics;
pub mod provider;
#[cfg(feature = "otel")]
pub mod telemetry;

mod answer;
mod batch;
mod catalog;
mod client;
mod custom;
mod duration;
mod echo;
mod engine;
mod error;
mod intern;
mod meta_search;
mod per_process;
mod policy;
mod providers;
mod resilience;
mod routing;
mod runtime;
mod state;
mod state_future;
mod stats;
mod stream;
mod transport;

pub use answer::Envelope;
pub use capability::{CapabilityId, Data, Request};
pub use catalog::{Catalog, CatalogEntry};
pub use client::{
    CapabilityHealth, Client, ClientBuilder, GroupHealth, Health, ProviderStats, Stats,
};
pub use config::{Config, ConfigSource};
pub use error::{
    Attempt, AttemptOutcome, BenchCause, Error, ErrorKind, FailureClass, ProviderFailure, Result,
    SkipReason,
};
pub use resilience::breaker::{BreakerSnapshot, CircuitState};
// Another server speaking the OpenAI chat-completions format (vLLM, LM
// Studio, a gateway) is declared with the built-in providers' own type.
pub use providers::openai_compat::{
    EmbeddingsEndpoint, NoEmbeddings, OpenAiCompatible, StructuredOutput,
};
pub use resilience::budget::{BudgetSnapshot, BudgetUnit};
pub use resilience::quota::QuotaSnapshot;
#[cfg(feature = "redis")]
pub use state::redis::RedisTokenStore;
pub use stats::StatsCounters;
pub use stream::{ChatChunk, ChatStream, ReadAhead, StreamEnd, StreamPart};

/// Not part of the API and without any stability promise: what the two
/// binding crates (`python/`, `ffi/`) and the core's own integration tests
/// and benchmarks reach into.
#[doc(hidden)]
pub mod internal {
    pub use crate::catalog::markdown_table;
    pub use crate::providers::{builtin as builtin_providers, find as find_provider};
    pub use crate::runtime::{block_on, on_worker_thread, shared as shared_runtime};

    /// The routing decision of a call of `request` on `client` (its model
    /// group's order, or its capability's chain): how many providers it
    /// would walk. For the routing benchmark.
    pub fn routing_decision(
        client: &crate::Client,
        request: &crate::capability::Request,
    ) -> crate::Result<usize> {
        client.route_length(request)
    }

    /// Duration text.
    pub mod duration {
        pub use crate::duration::*;
    }

    /// The shared-state stores.
    pub mod state {
        pub use crate::state::*;

        /// The Redis stores.
        pub mod redis {
            pub use crate::state::redis::*;
        }
    }

    /// The resilience mechanisms.
    pub mod resilience {
        pub use crate::resilience::*;
    }
}
