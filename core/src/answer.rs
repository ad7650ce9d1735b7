//! A provider's answer as the engine produces it and the cache tiers keep
//! it. It has its own module because the engine, the client and the shared
//! (Redis) cache tier all use it, and none of them should depend on another
//! for it.

use chrono::{DateTime, Utc};

use crate::capability::Data;

/// A provider's answer, as cached.
#[derive(Debug)]
pub(crate) struct Answer {
    pub data: Data,
    pub provider: &'static str,
    pub fetched_at: DateTime<Utc>,
}
