//! polyrelay: one resilient client for many public APIs.
#![forbid(unsafe_code)]

pub mod clock;
pub mod resilience;
