//! A provider's answer as the engine produces it and the cache tiers keep
//! it ([`Answer`]), and as a call or a stream returns it ([`Envelope`]). It
//! has its own module because the engine, the client, streams and the
//! shared (Redis) cache tier all use it, and none of them should depend on
//! another for it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::ser::SerializeStruct;
use serde::Serialize;
use serde_json::Value;

use crate::capability::{CapabilityId, Data};
use crate::error::Attempt;

/// A provider's answer, as cached.
#[derive(Debug)]
pub(crate) struct Answer {
    pub data: Data,
    pub provider: &'static str,
    pub fetched_at: DateTime<Utc>,
}

/// The answer to a call, with how it was obtained.
#[derive(Clone)]
pub struct Envelope {
    /// The capability called.
    pub capability: CapabilityId,
    /// The provider whose answer this is.
    pub provider: &'static str,
    /// Served from the cache rather than fetched by this call.
    pub cached: bool,
    /// Past its freshness (stale-while-revalidate or stale-if-error).
    pub stale: bool,
    /// When the provider produced it.
    pub fetched_at: DateTime<Utc>,
    /// What each provider did during this call (empty for a fresh cache hit).
    pub attempts: Vec<Attempt>,
    /// Time this call took.
    pub elapsed: Duration,
    /// What this call cost in US dollars, for `llm.chat` and
    /// `llm.embeddings`: the answer's usage at its model's price (see
    /// [`crate::capability::llm::models`]), `Some(0.0)` for an answer served
    /// from the cache (nothing was spent on it, as LiteLLM reports a cache
    /// hit) or by a free model, `None` when the model's price or the usage
    /// is unknown, and for other capabilities.
    pub cost_usd: Option<f64>,
    answer: Arc<Answer>,
}

impl Envelope {
    pub(crate) fn new(
        capability: CapabilityId,
        answer: Arc<Answer>,
        cached: bool,
        attempts: Vec<Attempt>,
        elapsed: Duration,
        cost_usd: Option<f64>,
    ) -> Self {
        Self {
            capability,
            provider: answer.provider,
            cached,
            stale: false,
            fetched_at: answer.fetched_at,
            attempts,
            elapsed,
            cost_usd,
            answer,
        }
    }

    /// The normalised answer.
    pub fn data(&self) -> &Data {
        &self.answer.data
    }

    /// The whole envelope as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("capability", &self.capability)
            .field("provider", &self.provider)
            .field("cached", &self.cached)
            .field("stale", &self.stale)
            .field("attempts", &self.attempts)
            .field("elapsed", &self.elapsed)
            .field("cost_usd", &self.cost_usd)
            .field("data", self.data())
            .finish()
    }
}

impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Envelope", 9)?;
        st.serialize_field("capability", &self.capability)?;
        st.serialize_field("provider", self.provider)?;
        st.serialize_field("data", self.data())?;
        st.serialize_field("cached", &self.cached)?;
        st.serialize_field("stale", &self.stale)?;
        st.serialize_field("fetched_at", &self.fetched_at)?;
        st.serialize_field("attempts", &self.attempts)?;
        st.serialize_field("elapsed", &self.elapsed.as_secs_f64())?;
        // Only LLM answers are priced: `null` there means unknown.
        if matches!(
            self.capability,
            CapabilityId::LlmChat | CapabilityId::LlmEmbeddings
        ) {
            st.serialize_field("cost_usd", &self.cost_usd)?;
        } else {
            st.skip_field("cost_usd")?;
        }
        st.end()
    }
}
