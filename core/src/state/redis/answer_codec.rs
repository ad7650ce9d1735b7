//! How a client's answers are stored in the shared cache tier.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::answer::Answer;
use crate::capability::{Data, Request};
use crate::error::Error;
use crate::resilience::cache::{stable_key, SharedCodec};

/// How the client's answers are stored in a shared tier: the answer as JSON
/// (provider, fetch time, normalised data), or a marker for an authoritative
/// "not found". Keys are [`stable_key`]s of the validated request under the
/// capability's name, which holds no secret (keys are applied later).
pub(crate) struct AnswerCodec {
    /// Provider ids of the client, to map a stored id back to its static name.
    providers: Vec<&'static str>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Stored<'a> {
    Answer {
        #[serde(borrow)]
        provider: Cow<'a, str>,
        fetched_at: DateTime<Utc>,
        data: serde_json::Value,
    },
    NotFound,
}

impl AnswerCodec {
    pub(crate) fn new(providers: Vec<&'static str>) -> Self {
        Self { providers }
    }
}

type CachedAnswer = Result<Arc<Answer>, Arc<Error>>;

impl SharedCodec<Request, CachedAnswer> for AnswerCodec {
    fn key(&self, request: &Request) -> String {
        let params = serde_json::to_value(request).unwrap_or_default();
        stable_key(request.capability().as_str(), &params)
    }

    fn encode(&self, value: &CachedAnswer) -> Option<Vec<u8>> {
        let stored = match value {
            Ok(answer) => Stored::Answer {
                provider: Cow::Borrowed(answer.provider),
                fetched_at: answer.fetched_at,
                data: answer.data.to_json(),
            },
            Err(error) if matches!(**error, Error::NotFound { .. }) => Stored::NotFound,
            Err(_) => return None,
        };
        serde_json::to_vec(&stored).ok()
    }

    fn decode(&self, request: &Request, bytes: &[u8]) -> Option<CachedAnswer> {
        let capability = request.capability();
        match serde_json::from_slice(bytes).ok()? {
            Stored::Answer {
                provider,
                fetched_at,
                data,
            } => {
                let provider = *self.providers.iter().find(|id| **id == provider)?;
                let data = Data::from_json(capability, data).ok()?;
                Some(Ok(Arc::new(Answer {
                    data,
                    provider,
                    fetched_at,
                })))
            }
            Stored::NotFound => Some(Err(Arc::new(Error::NotFound {
                capability: capability.as_str(),
                attempts: Vec::new(),
            }))),
        }
    }
}
