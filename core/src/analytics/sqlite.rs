//! Hourly buckets in an SQLite file (`[analytics] sqlite = "path"`).
//!
//! Several processes may write one file: WAL journal, every batch one
//! `BEGIN IMMEDIATE` transaction of upserts that add to the stored sums,
//! and a busy timeout, so a writer waits for another instead of failing.
//! The same file keeps the quota counters ([`SqliteStore::load_quota`])
//! and the assistant's conversations by id (`assistant_conversations`:
//! one row per id, replaced on each save, so the last write wins).

use std::path::Path;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{AnalyticsStore, BucketKey, BucketTotals};
use crate::error::{Error, Result};

/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS analytics_buckets (
    hour INTEGER NOT NULL, capability TEXT NOT NULL, provider TEXT NOT NULL, tag TEXT NOT NULL,
    calls INTEGER NOT NULL, cached INTEGER NOT NULL, stale INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL,
    PRIMARY KEY (hour, capability, provider, tag));
CREATE TABLE IF NOT EXISTS analytics_outcomes (
    hour INTEGER NOT NULL, capability TEXT NOT NULL, provider TEXT NOT NULL, tag TEXT NOT NULL,
    outcome TEXT NOT NULL, calls INTEGER NOT NULL,
    PRIMARY KEY (hour, capability, provider, tag, outcome));
CREATE TABLE IF NOT EXISTS analytics_latency (
    hour INTEGER NOT NULL, capability TEXT NOT NULL, provider TEXT NOT NULL, tag TEXT NOT NULL,
    bucket INTEGER NOT NULL, calls INTEGER NOT NULL,
    PRIMARY KEY (hour, capability, provider, tag, bucket));
CREATE TABLE IF NOT EXISTS quota_counters (
    provider TEXT NOT NULL PRIMARY KEY, window_label TEXT NOT NULL, used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS assistant_conversations (
    id TEXT NOT NULL PRIMARY KEY, updated_ms INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS assistant_conversations_updated
    ON assistant_conversations (updated_ms);
";

/// Hourly buckets (and quota counters, and conversations) in one SQLite
/// file.
pub struct SqliteStore {
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn text(e: rusqlite::Error) -> String {
    e.to_string()
}

/// Sets the WAL journal (kept in the file, so done once per file).
///
/// Switching needs the file to itself, and SQLite answers "database is
/// locked" at once, without its busy handler, when another connection is
/// opening the same new file: processes started together do that. So the
/// switch is retried, within the same [`BUSY_TIMEOUT`] any writer waits.
fn switch_to_wal(connection: &Connection) -> rusqlite::Result<()> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match connection.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        }) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other.map(drop),
        }
    }
}

impl SqliteStore {
    /// Opens (or creates) the file at `path` with its tables.
    pub fn open(path: &Path) -> Result<Self> {
        let fail = |e: rusqlite::Error| {
            Error::config(
                "analytics.sqlite",
                format!("cannot open {}: {e}", path.display()),
            )
        };
        let connection = Connection::open(path).map_err(fail)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        // Readers never block the writer, and a commit needs no fsync of
        // the main file.
        switch_to_wal(&connection).map_err(fail)?;
        connection
            .execute_batch("PRAGMA synchronous = NORMAL;")
            .map_err(fail)?;
        connection.execute_batch(SCHEMA).map_err(fail)?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    fn add(&self, buckets: &[(BucketKey, BucketTotals)]) -> rusqlite::Result<()> {
        let mut connection = self.connection.lock();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut totals = tx.prepare_cached(
                "INSERT INTO analytics_buckets VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT DO UPDATE SET calls = calls + excluded.calls,
                   cached = cached + excluded.cached, stale = stale + excluded.stale,
                   input_tokens = input_tokens + excluded.input_tokens,
                   output_tokens = output_tokens + excluded.output_tokens,
                   cost_usd = cost_usd + excluded.cost_usd",
            )?;
            let mut outcomes = tx.prepare_cached(
                "INSERT INTO analytics_outcomes VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT DO UPDATE SET calls = calls + excluded.calls",
            )?;
            let mut latency = tx.prepare_cached(
                "INSERT INTO analytics_latency VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT DO UPDATE SET calls = calls + excluded.calls",
            )?;
            for (k, t) in buckets {
                totals.execute(params![
                    k.hour,
                    k.capability,
                    k.provider,
                    k.tag,
                    t.calls as i64,
                    t.cached as i64,
                    t.stale as i64,
                    t.input_tokens as i64,
                    t.output_tokens as i64,
                    t.cost_usd
                ])?;
                for (outcome, n) in &t.outcomes {
                    outcomes.execute(params![
                        k.hour,
                        k.capability,
                        k.provider,
                        k.tag,
                        outcome,
                        *n as i64
                    ])?;
                }
                for (bucket, n) in &t.latency {
                    latency.execute(params![
                        k.hour,
                        k.capability,
                        k.provider,
                        k.tag,
                        bucket,
                        *n as i64
                    ])?;
                }
            }
        }
        tx.commit()
    }

    fn range(&self, from: i64, to: i64) -> rusqlite::Result<Vec<(BucketKey, BucketTotals)>> {
        let connection = self.connection.lock();
        let key = |row: &rusqlite::Row<'_>| -> rusqlite::Result<BucketKey> {
            Ok(BucketKey {
                hour: row.get(0)?,
                capability: row.get(1)?,
                provider: row.get(2)?,
                tag: row.get(3)?,
            })
        };
        let mut found: std::collections::BTreeMap<BucketKey, BucketTotals> = Default::default();
        let mut totals = connection.prepare_cached(
            "SELECT hour, capability, provider, tag, calls, cached, stale, input_tokens,
                    output_tokens, cost_usd
             FROM analytics_buckets WHERE hour BETWEEN ?1 AND ?2",
        )?;
        let rows = totals.query_map(params![from, to], |row| {
            let count = |i: usize| row.get::<_, i64>(i).map(|n| n.max(0) as u64);
            Ok((
                key(row)?,
                BucketTotals {
                    calls: count(4)?,
                    cached: count(5)?,
                    stale: count(6)?,
                    input_tokens: count(7)?,
                    output_tokens: count(8)?,
                    cost_usd: row.get(9)?,
                    ..BucketTotals::default()
                },
            ))
        })?;
        for row in rows {
            let (k, t) = row?;
            found.insert(k, t);
        }
        for (table, column) in [
            ("analytics_outcomes", "outcome"),
            ("analytics_latency", "bucket"),
        ] {
            let mut parts = connection.prepare_cached(&format!(
                "SELECT hour, capability, provider, tag, {column}, calls
                 FROM {table} WHERE hour BETWEEN ?1 AND ?2"
            ))?;
            let mut rows = parts.query(params![from, to])?;
            while let Some(row) = rows.next()? {
                let Some(totals) = found.get_mut(&key(row)?) else {
                    continue;
                };
                let n = row.get::<_, i64>(5)?.max(0) as u64;
                if column == "outcome" {
                    totals.outcomes.insert(row.get(4)?, n);
                } else {
                    totals.latency.insert(row.get(4)?, n);
                }
            }
        }
        Ok(found.into_iter().collect())
    }

    fn forget_before(&self, hour: i64) -> rusqlite::Result<()> {
        let mut connection = self.connection.lock();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for table in [
            "analytics_buckets",
            "analytics_outcomes",
            "analytics_latency",
        ] {
            tx.execute(&format!("DELETE FROM {table} WHERE hour < ?1"), [hour])?;
        }
        tx.commit()
    }
}

impl AnalyticsStore for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn write<'a>(
        &'a self,
        buckets: &'a [(BucketKey, BucketTotals)],
    ) -> BoxFuture<'a, std::result::Result<(), String>> {
        let done = self.add(buckets).map_err(text);
        Box::pin(async move { done })
    }

    fn read(
        &self,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, std::result::Result<Vec<(BucketKey, BucketTotals)>, String>> {
        let found = self.range(from, to).map_err(text);
        Box::pin(async move { found })
    }

    fn prune(&self, hour: i64) -> BoxFuture<'_, std::result::Result<(), String>> {
        let done = self.forget_before(hour).map_err(text);
        Box::pin(async move { done })
    }

    fn save_conversation<'a>(
        &'a self,
        id: &'a str,
        updated_ms: i64,
        body: &'a str,
    ) -> BoxFuture<'a, std::result::Result<(), String>> {
        let done = self
            .connection
            .lock()
            .prepare_cached(
                "INSERT INTO assistant_conversations VALUES (?1, ?2, ?3)
                 ON CONFLICT DO UPDATE SET updated_ms = excluded.updated_ms, body = excluded.body",
            )
            .and_then(|mut save| save.execute(params![id, updated_ms, body]))
            .map(drop)
            .map_err(text);
        Box::pin(async move { done })
    }

    fn load_conversation<'a>(
        &'a self,
        id: &'a str,
        since_ms: i64,
    ) -> BoxFuture<'a, std::result::Result<Option<String>, String>> {
        let found = self
            .connection
            .lock()
            .query_row(
                "SELECT body FROM assistant_conversations WHERE id = ?1 AND updated_ms >= ?2",
                params![id, since_ms],
                |row| row.get(0),
            )
            .optional()
            .map_err(text);
        Box::pin(async move { found })
    }

    fn delete_conversation<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, std::result::Result<bool, String>> {
        let done = self
            .connection
            .lock()
            .execute("DELETE FROM assistant_conversations WHERE id = ?1", [id])
            .map(|deleted| deleted > 0)
            .map_err(text);
        Box::pin(async move { done })
    }

    fn conversation_ids(
        &self,
        limit: usize,
        since_ms: i64,
    ) -> BoxFuture<'_, std::result::Result<Vec<String>, String>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let found = (|| {
            let connection = self.connection.lock();
            let mut ids = connection.prepare_cached(
                "SELECT id FROM assistant_conversations WHERE updated_ms >= ?1
                 ORDER BY updated_ms DESC, id DESC LIMIT ?2",
            )?;
            let rows = ids.query_map(params![since_ms, limit], |row| row.get(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
        })()
        .map_err(text);
        Box::pin(async move { found })
    }

    fn prune_conversations(
        &self,
        before_ms: i64,
    ) -> BoxFuture<'_, std::result::Result<(), String>> {
        let done = self
            .connection
            .lock()
            .execute(
                "DELETE FROM assistant_conversations WHERE updated_ms < ?1",
                [before_ms],
            )
            .map(drop)
            .map_err(text);
        Box::pin(async move { done })
    }
}

impl crate::state::QuotaFile for SqliteStore {
    fn load_quota(&self, provider: &str) -> Option<(String, u64)> {
        let connection = self.connection.lock();
        connection
            .query_row(
                "SELECT window_label, used FROM quota_counters WHERE provider = ?1",
                [provider],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?.max(0) as u64,
                    ))
                },
            )
            .optional()
            .unwrap_or_else(|e| {
                tracing::warn!(provider, error = %e, "quota counter not read");
                None
            })
    }

    fn save_quotas(&self, counters: &[(&str, String, u64)]) {
        if counters.is_empty() {
            return;
        }
        let mut connection = self.connection.lock();
        let saved = (|| {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut save = tx.prepare_cached(
                    "INSERT INTO quota_counters VALUES (?1, ?2, ?3)
                     ON CONFLICT DO UPDATE SET window_label = excluded.window_label,
                       used = excluded.used",
                )?;
                for (provider, window, used) in counters {
                    save.execute(params![provider, window, *used as i64])?;
                }
            }
            tx.commit()
        })();
        if let Err(e) = saved {
            tracing::warn!(error = %e, "quota counters not saved");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Processes started together open one new file at the same moment;
    /// each must wait for the others' set-up, never fail with "locked".
    /// (Threads stand in for processes: each has its own connection.)
    #[test]
    fn many_connections_opening_one_new_file_at_once_all_succeed() {
        let dir =
            std::env::temp_dir().join(format!("polyrelay-sqlite-open-{}", std::process::id()));
        for round in 0..40 {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("analytics.sqlite");
            let start = std::sync::Barrier::new(8);
            let opened: Vec<_> = std::thread::scope(|s| {
                let openers: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            SqliteStore::open(&path).map(drop)
                        })
                    })
                    .collect();
                openers.into_iter().map(|t| t.join().unwrap()).collect()
            });
            for result in opened {
                if let Err(e) = result {
                    panic!("round {round}: {e}");
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
