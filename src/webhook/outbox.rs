//! The outbox: every accepted customer update, durably, until the dealer system has taken it (README "Two-way sync").
//!
//! SQLite in WAL mode with `synchronous = FULL`, so that a committed update survives a crash or power
//! loss; the receiver answers success only after the commit. A repeat of a customer's latest update
//! (the same raw JSON) is stored once: the vendor may send an update again when an answer is lost, while
//! a customer who changes a value back and forth still has each change kept.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::payload::Update;

/// The file name of the outbox in the state directory.
pub const FILE_NAME: &str = "outbox.sqlite3";

/// An outbox that cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[error("outbox {}: {message}", path.display())]
pub struct OutboxError {
    pub path: PathBuf,
    pub message: String,
}

/// What happened to one update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Stored {
    /// The update's sequence number (the earlier one for a repeat).
    pub seq: i64,
    /// Whether it repeated the customer's latest update and was not stored again.
    pub repeat: bool,
}

/// An update as stored, for exports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub seq: i64,
    pub received_at: String,
    pub customer_key: String,
    pub customer: String,
    pub raw: String,
}

/// What `webhook status` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub updates: i64,
    pub pending: i64,
    pub pending_customers: i64,
    pub exported: i64,
    pub last_received_at: Option<String>,
    pub last_exported_at: Option<String>,
}

pub struct Outbox {
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

impl Outbox {
    /// Opens (creating) the outbox in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, OutboxError> {
        let path = state_dir.join(FILE_NAME);
        let err = |e: rusqlite::Error| OutboxError {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(state_dir).map_err(|e| OutboxError {
            path: path.clone(),
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
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Stores the updates of several requests in one transaction (one sync to disk), in order.
    /// Returns, per request, what happened to each of its updates.
    pub fn store(
        &mut self,
        batches: &[&[Update]],
        now: Timestamp,
    ) -> Result<Vec<Vec<Stored>>, OutboxError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| OutboxError {
            path: path.clone(),
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
    pub fn last_seq(&self) -> Result<i64, OutboxError> {
        self.conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM updates", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    /// The latest update of each customer among those up to `up_to`, in sequence order: of customers
    /// with a pending update only, or of every customer when `all`.
    pub fn latest(&self, up_to: i64, all: bool) -> Result<Vec<Row>, OutboxError> {
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
    pub fn mark_exported(&mut self, up_to: i64, now: Timestamp) -> Result<u64, OutboxError> {
        let n = self
            .conn
            .execute(
                "UPDATE updates SET exported_at = ?1 WHERE exported_at IS NULL AND seq <= ?2",
                params![now.to_string(), up_to],
            )
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    pub fn counts(&self) -> Result<Counts, OutboxError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(key: &str, city: &str) -> Update {
        let raw = format!(r#"{{"PartnerCustomerID":"{key}","CustomerCity":"{city}"}}"#);
        Update {
            customer_key: format!("P:{key}"),
            customer: raw.clone(),
            digest: blake3::hash(raw.as_bytes()).to_hex().to_string(),
            raw,
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_795_000_000 + seconds).unwrap()
    }

    #[test]
    fn a_repeat_of_the_latest_update_is_stored_once_but_a_change_back_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path()).unwrap();
        let a = update("1", "Oak Creek");
        let b = update("1", "Milwaukee");
        let once = std::slice::from_ref(&a);
        let stored = outbox.store(&[once, once], at(0)).unwrap();
        assert_eq!(
            stored[0],
            [Stored {
                seq: 1,
                repeat: false
            }]
        );
        assert_eq!(
            stored[1],
            [Stored {
                seq: 1,
                repeat: true
            }]
        );
        let stored = outbox.store(&[&[b, a]], at(1)).unwrap();
        assert_eq!(stored[0].iter().filter(|s| s.repeat).count(), 0);
        assert_eq!(outbox.counts().unwrap().updates, 3);
    }

    #[test]
    fn exports_take_the_latest_pending_update_of_each_customer() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path()).unwrap();
        outbox
            .store(
                &[&[update("1", "A"), update("2", "B"), update("1", "C")]],
                at(0),
            )
            .unwrap();
        let up_to = outbox.last_seq().unwrap();
        let rows = outbox.latest(up_to, false).unwrap();
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [2, 3]);
        assert_eq!(outbox.mark_exported(up_to, at(5)).unwrap(), 3);
        outbox.store(&[&[update("2", "D")]], at(6)).unwrap();
        let counts = outbox.counts().unwrap();
        assert_eq!(
            (counts.pending, counts.pending_customers, counts.exported),
            (1, 1, 3)
        );
        let up_to = outbox.last_seq().unwrap();
        assert_eq!(outbox.latest(up_to, false).unwrap().len(), 1);
        assert_eq!(outbox.latest(up_to, true).unwrap().len(), 2);
    }

    #[test]
    fn updates_arriving_after_an_export_began_stay_pending() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path()).unwrap();
        outbox.store(&[&[update("1", "A")]], at(0)).unwrap();
        let up_to = outbox.last_seq().unwrap();
        outbox.store(&[&[update("1", "B")]], at(1)).unwrap();
        let rows = outbox.latest(up_to, false).unwrap();
        assert!(rows[0].customer.contains("\"A\""));
        outbox.mark_exported(up_to, at(2)).unwrap();
        assert_eq!(outbox.counts().unwrap().pending, 1);
    }

    #[test]
    fn what_was_committed_is_there_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        Outbox::open(dir.path())
            .unwrap()
            .store(&[&[update("1", "A")]], at(0))
            .unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        assert_eq!(outbox.counts().unwrap().updates, 1);
    }
}
