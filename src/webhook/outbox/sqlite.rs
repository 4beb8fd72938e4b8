//! The outbox in SQLite in the state directory: WAL mode with `synchronous = FULL`, so that a committed
//! update survives a crash or power loss; the receiver answers success only after the commit.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Counts, FILE_NAME, Outbox, OutboxError, Row, Stored};
use crate::webhook::payload::Update;

/// An open SQLite outbox.
pub struct SqliteOutbox {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS updates (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at  TEXT NOT NULL,
    customer_key TEXT NOT NULL,
    digest       TEXT NOT NULL,
    customer     TEXT NOT NULL,
    raw          TEXT NOT NULL,
    exported_at  TEXT
);
CREATE INDEX IF NOT EXISTS updates_by_customer ON updates (customer_key, seq);
CREATE INDEX IF NOT EXISTS updates_pending ON updates (exported_at, seq);
";

impl SqliteOutbox {
    /// Opens (creating) the outbox in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, OutboxError> {
        let path = state_dir.join(FILE_NAME);
        let err = |e: rusqlite::Error| OutboxError {
            place: path.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(state_dir).map_err(|e| OutboxError {
            place: path.display().to_string(),
            message: format!("cannot create its directory: {e}"),
        })?;
        let conn = crate::sqlite::connect(&path).map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self { conn, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> OutboxError {
        OutboxError {
            place: self.path.display().to_string(),
            message: e.to_string(),
        }
    }
}

impl Outbox for SqliteOutbox {
    fn place(&self) -> String {
        self.path.display().to_string()
    }

    /// Stores the updates of several requests in one transaction (one sync to disk), in order.
    /// Returns, per request, what happened to each of its updates.
    fn store(
        &mut self,
        batches: &[&[Update]],
        now: Timestamp,
    ) -> Result<Vec<Vec<Stored>>, OutboxError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| OutboxError {
            place: path.display().to_string(),
            message: e.to_string(),
        };
        let tx = self.conn.transaction().map_err(err)?;
        let received_at = now.to_string();
        let mut results = Vec::with_capacity(batches.len());
        {
            let mut latest = tx
                .prepare_cached(
                    "SELECT seq, digest FROM updates WHERE customer_key = ?1 \
                     ORDER BY seq DESC LIMIT 1",
                )
                .map_err(err)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO updates (received_at, customer_key, digest, customer, raw) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for batch in batches {
                let mut stored = Vec::with_capacity(batch.len());
                for update in *batch {
                    let last: Option<(i64, String)> = latest
                        .query_row(params![update.customer_key], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                        .map_err(err)?;
                    match last {
                        Some((seq, digest)) if digest == update.digest => {
                            stored.push(Stored { seq, repeat: true });
                        }
                        _ => {
                            insert
                                .execute(params![
                                    received_at,
                                    update.customer_key,
                                    update.digest,
                                    update.customer,
                                    update.raw
                                ])
                                .map_err(err)?;
                            stored.push(Stored {
                                seq: tx.last_insert_rowid(),
                                repeat: false,
                            });
                        }
                    }
                }
                results.push(stored);
            }
        }
        tx.commit().map_err(err)?;
        Ok(results)
    }

    /// The newest sequence number (0 when empty): an export covers the updates up to it.
    fn last_seq(&mut self) -> Result<i64, OutboxError> {
        self.conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM updates", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    /// The latest update of each customer among those up to `up_to`, in sequence order: of customers
    /// with a pending update only, or of every customer when `all`.
    fn latest(&mut self, up_to: i64, all: bool) -> Result<Vec<Row>, OutboxError> {
        let mut query = self
            .conn
            .prepare(
                "SELECT u.seq, u.received_at, u.customer_key, u.customer, u.raw FROM updates u \
                 WHERE u.seq = (SELECT MAX(v.seq) FROM updates v \
                                WHERE v.customer_key = u.customer_key AND v.seq <= ?1) \
                   AND (?2 OR EXISTS (SELECT 1 FROM updates p WHERE p.customer_key = u.customer_key \
                                      AND p.exported_at IS NULL AND p.seq <= ?1)) \
                 ORDER BY u.seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = query
            .query_map(params![up_to, all], |r| {
                Ok(Row {
                    seq: r.get(0)?,
                    received_at: r.get(1)?,
                    customer_key: r.get(2)?,
                    customer: r.get(3)?,
                    raw: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Marks every pending update up to `up_to` exported; returns how many.
    fn mark_exported(&mut self, up_to: i64, now: Timestamp) -> Result<u64, OutboxError> {
        let n = self
            .conn
            .execute(
                "UPDATE updates SET exported_at = ?1 WHERE exported_at IS NULL AND seq <= ?2",
                params![now.to_string(), up_to],
            )
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    fn counts(&mut self) -> Result<Counts, OutboxError> {
        self.conn
            .query_row(
                "SELECT COUNT(*), \
                        COUNT(*) FILTER (WHERE exported_at IS NULL), \
                        COUNT(DISTINCT customer_key) FILTER (WHERE exported_at IS NULL), \
                        COUNT(*) FILTER (WHERE exported_at IS NOT NULL), \
                        MAX(received_at), MAX(exported_at) \
                 FROM updates",
                [],
                |r| {
                    Ok(Counts {
                        updates: r.get(0)?,
                        pending: r.get(1)?,
                        pending_customers: r.get(2)?,
                        exported: r.get(3)?,
                        last_received_at: r.get(4)?,
                        last_exported_at: r.get(5)?,
                    })
                },
            )
            .map_err(|e| self.err(e))
    }

    fn exclusive_export(&mut self) -> Result<(), OutboxError> {
        Ok(())
    }
}
