//! The resilience mechanisms, one module each, composed by the call pipeline.

pub mod breaker;
pub mod budget;
pub mod cache;
pub mod hedge;
pub(crate) mod probe;
pub mod quota;
pub mod rate_limit;
pub mod retry;
