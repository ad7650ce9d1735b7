//! polyrelay: one resilient client for many public APIs.
#![forbid(unsafe_code)]

pub mod capability;
pub mod clock;
pub mod config;
pub mod error;
pub mod provider;
pub mod providers;
pub mod resilience;
