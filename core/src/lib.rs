//! polyrelay: one resilient client for many public APIs.
//!
//! A call names a capability (`weather.current`, `finance.fx_rates`, …) and
//! is answered by the first healthy provider of that capability's fallback
//! chain. Every provider is guarded by a daily quota, a client-side rate
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

mod answer;
pub mod auth;
pub mod capability;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod custom;
pub mod duration;
mod echo;
#[cfg(feature = "emulator")]
pub mod emulation;
mod engine;
pub mod error;
mod intern;
mod per_process;
mod policy;
pub mod provider;
pub mod providers;
pub mod resilience;
pub mod runtime;
pub mod state;
mod state_future;
mod stats;
mod transport;

mod batch;
mod client;

pub use capability::{CapabilityId, Data, Request};
pub use client::{CapabilityHealth, Client, ClientBuilder, Envelope, Health, ProviderStats, Stats};
pub use error::{Attempt, Error, ErrorKind, FailureClass, ProviderFailure, Result};
pub use stats::StatsCounters;
