//! Assistant conversations kept by id in the analytics store, beside the
//! aggregates: in memory, in the SQLite file (table
//! `assistant_conversations`) or in Redis (one key per conversation,
//! `<prefix>conv:{<id>}`, and a sorted set of ids by last update,
//! `<prefix>conv-ids`).
//!
//! A conversation is visible while it was updated within the
//! `[analytics] retention`; older ones are deleted with the old hours.
//! Saving replaces: two processes saving one id, the last write wins.
//! Ids are the caller's, so they are checked before any I/O
//! ([`check_conversation_id`]): a key never holds anything but such an id.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::AnalyticsStore;
use crate::clock::SharedClock;
use crate::error::{Error, Result};

/// Longest conversation id, in characters.
pub const MAX_CONVERSATION_ID_CHARS: usize = 128;

/// Checks a conversation id: 1 to [`MAX_CONVERSATION_ID_CHARS`] ASCII
/// letters, digits or `_ - . :`; anything else is an
/// [`Error::InvalidRequest`] on `conversation_id` (which does not repeat
/// the id: it may be something the caller did not mean to show).
pub fn check_conversation_id(id: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-.:".contains(c);
    if id.is_empty() || id.len() > MAX_CONVERSATION_ID_CHARS || !id.chars().all(allowed) {
        return Err(Error::invalid(
            "conversation_id",
            format!("must be 1 to {MAX_CONVERSATION_ID_CHARS} ASCII letters, digits or _ - . :"),
        ));
    }
    Ok(())
}

/// The oldest last-update (Unix ms) the retention keeps at `now`.
pub(crate) fn cutoff_ms(now: DateTime<Utc>, retention: Duration) -> i64 {
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    now.timestamp_millis().saturating_sub(retention_ms)
}

/// The client's conversations: the analytics store's conversation methods
/// behind id checks, the retention and typed errors.
#[derive(Debug, Clone)]
pub(crate) struct ConversationStore {
    store: Arc<dyn AnalyticsStore>,
    clock: SharedClock,
    retention: Duration,
}

impl ConversationStore {
    pub(crate) fn new(
        store: Arc<dyn AnalyticsStore>,
        clock: SharedClock,
        retention: Duration,
    ) -> Self {
        Self {
            store,
            clock,
            retention,
        }
    }

    /// `failed` as the error of `what` (`save`, `load`, …): the store
    /// could not do it (Redis unreachable, a file error).
    fn failed(&self, what: &str, reason: String) -> Error {
        Error::Usage {
            message: format!(
                "the {} analytics store could not {what} the conversation: {reason}",
                self.store.kind()
            ),
        }
    }

    fn since_ms(&self) -> i64 {
        cutoff_ms(self.clock.wall(), self.retention)
    }

    /// Keeps `body` under `id`, stamped now.
    pub(crate) async fn save(&self, id: &str, body: &str) -> Result<()> {
        check_conversation_id(id)?;
        let now = self.clock.wall().timestamp_millis();
        self.store
            .save_conversation(id, now, body)
            .await
            .map_err(|reason| self.failed("save", reason))
    }

    /// The body saved under `id`, if any within the retention.
    pub(crate) async fn load(&self, id: &str) -> Result<Option<String>> {
        check_conversation_id(id)?;
        self.store
            .load_conversation(id, self.since_ms())
            .await
            .map_err(|reason| self.failed("load", reason))
    }

    /// Forgets `id`; whether it was kept.
    pub(crate) async fn delete(&self, id: &str) -> Result<bool> {
        check_conversation_id(id)?;
        self.store
            .delete_conversation(id)
            .await
            .map_err(|reason| self.failed("delete", reason))
    }

    /// The ids updated within the retention, most recent first.
    pub(crate) async fn ids(&self, limit: usize) -> Result<Vec<String>> {
        if limit == 0 {
            return Err(Error::invalid("limit", "must be at least 1"));
        }
        self.store
            .conversation_ids(limit, self.since_ms())
            .await
            .map_err(|reason| self.failed("list", reason))
    }
}
