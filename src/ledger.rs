//! The run ledger (docs/transaction.md, "What is recorded"): an embedded SQLite database in the state directory recording every run —
//! store, feed, input and its hash, rows, chunks, transactions ended and abandoned, final state, timings
//! and error text. `history` reads it, the shrink guard and `--resume` rely on it.
//!
//! A run's row is written when the run starts and updated after every confirmed chunk, so even a run
//! killed with SIGKILL leaves its resume point behind. No secret is ever stored here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// The file name of the ledger inside the state directory.
pub const LEDGER_FILE: &str = "ledger.sqlite3";

/// The state of a run that has not finished (or whose process died before it could say).
pub const RUNNING: &str = "running";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store TEXT NOT NULL,
    store_id TEXT NOT NULL,
    feed TEXT NOT NULL,
    input TEXT NOT NULL,
    input_blake3 TEXT,
    snapshot_blake3 TEXT,
    spool_path TEXT,
    rows INTEGER,
    chunks INTEGER,
    confirmed INTEGER,
    transactionid TEXT,
    partnertransactionid TEXT,
    ended_transactionid TEXT,
    abandoned TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL,
    exit_code INTEGER,
    error TEXT,
    pid INTEGER,
    started_at TEXT NOT NULL,
    begun_at TEXT,
    finished_at TEXT,
    duration_ms INTEGER,
    resumed_from INTEGER,
    warnings INTEGER,
    destination TEXT NOT NULL DEFAULT 'riderrewards'
);
CREATE INDEX IF NOT EXISTS runs_by_store ON runs (store_id, id);
";

/// Columns added after the first release, with their definitions: a ledger written by an older rrfeed
/// gains them when opened.
const ADDED_COLUMNS: [(&str, &str); 2] = [
    ("warnings", "INTEGER"),
    ("destination", "TEXT NOT NULL DEFAULT 'riderrewards'"),
];

/// Where a run's customers went: the `destination` of its store.
pub const RIDER_REWARDS: &str = "riderrewards";
/// A `crm sync` run.
pub const CRM: &str = "crm";

/// Why the ledger could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the run ledger {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the state directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One run as recorded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub store: String,
    pub store_id: String,
    pub feed: String,
    pub input: String,
    pub input_blake3: Option<String>,
    pub snapshot_blake3: Option<String>,
    #[serde(skip)]
    pub spool_path: Option<String>,
    pub rows: Option<u64>,
    pub chunks: Option<u64>,
    pub confirmed: Option<u64>,
    /// The transaction in progress when the run stopped, or the one it ended.
    pub transactionid: Option<String>,
    pub partnertransactionid: Option<String>,
    pub ended_transactionid: Option<String>,
    pub abandoned_transactions: Vec<String>,
    pub state: String,
    pub exit_code: Option<u8>,
    pub error: Option<String>,
    pub pid: Option<u32>,
    pub started_at: String,
    /// When the current transaction was begun (for the resume window).
    pub begun_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub resumed_from: Option<i64>,
    /// Warnings counted while reading the export (each occurrence), once the run finished.
    pub warnings: Option<u64>,
    /// [`RIDER_REWARDS`] or [`CRM`].
    pub destination: String,
}

/// One store as the ledger knows it.
#[derive(Clone, Debug)]
pub struct StoreOverview {
    /// Its latest finished run.
    pub last: RunRecord,
    /// Its latest successful run.
    pub last_success: Option<RunRecord>,
    /// How many finished runs it has in each state.
    pub runs_by_state: Vec<(String, u64)>,
}

/// What is known when a run starts.
#[derive(Clone, Debug)]
pub struct NewRun<'a> {
    pub store: &'a str,
    pub store_id: &'a str,
    /// [`RIDER_REWARDS`] or [`CRM`].
    pub destination: &'a str,
    pub feed: &'a str,
    pub input: &'a str,
    pub started_at: &'a str,
}

/// Where a run's transaction stands, recorded after every confirmed post.
#[derive(Clone, Debug, Default)]
pub struct Checkpoint<'a> {
    /// The transaction in progress, or the one ended.
    pub transactionid: Option<&'a str>,
    /// Our id for that transaction.
    pub partnertransactionid: Option<&'a str>,
    /// Transactions begun and never ended.
    pub abandoned: &'a [String],
    /// Chunks and rows confirmed in the current transaction.
    pub chunks: usize,
    pub confirmed: u64,
    /// Whether endtransaction succeeded.
    pub ended: bool,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct Finish<'a> {
    pub state: &'a str,
    pub exit_code: u8,
    pub error: Option<&'a str>,
    pub finished_at: &'a str,
    pub duration: Duration,
    /// Warnings counted while reading the export.
    pub warnings: u64,
    /// Rows read, when the run did not record a snapshot (a CRM.COM sync, a run refused early).
    pub rows: Option<u64>,
}

/// An open ledger.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

impl Ledger {
    /// Opens (creating if needed) the ledger in `state_dir`.
    ///
    /// Fails when the directory cannot be made or the database cannot be opened or migrated.
    pub fn open(state_dir: &Path) -> Result<Self, LedgerError> {
        let path = state_dir.join(LEDGER_FILE);
        let fail = |source| LedgerError::Sqlite {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(|source| LedgerError::Dir {
            path: state_dir.to_owned(),
            source,
        })?;
        let conn = crate::sqlite::connect(&path).map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        add_missing_columns(&conn).map_err(fail)?;
        Ok(Self { conn, path })
    }

    fn fail(&self, source: rusqlite::Error) -> LedgerError {
        LedgerError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Records a run as started; returns its id.
    pub fn start(&self, run: &NewRun) -> Result<i64, LedgerError> {
        self.conn
            .execute(
                "INSERT INTO runs (store, store_id, feed, input, state, pid, started_at, destination)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    run.store,
                    run.store_id,
                    run.feed,
                    run.input,
                    RUNNING,
                    std::process::id(),
                    run.started_at,
                    run.destination
                ],
            )
            .map_err(|e| self.fail(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records the validated snapshot of a run.
    pub fn snapshot(
        &self,
        id: i64,
        rows: u64,
        input_blake3: &str,
        snapshot_blake3: &str,
        spool_path: &Path,
    ) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET rows = ?2, input_blake3 = ?3, snapshot_blake3 = ?4, spool_path = ?5
                 WHERE id = ?1",
                params![
                    id,
                    rows as i64,
                    input_blake3,
                    snapshot_blake3,
                    spool_path.display().to_string()
                ],
            )
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Records the driver's progress: the transaction, the confirmed rows, abandoned transactions.
    /// `begun_at` is set when the transaction changes.
    pub fn progress(&self, id: i64, p: &Checkpoint, now: &str) -> Result<(), LedgerError> {
        let abandoned = serde_json::to_string(&p.abandoned).expect("strings serialize");
        self.conn
            .execute(
                "UPDATE runs SET
                    begun_at = CASE WHEN transactionid IS ?2 THEN begun_at ELSE ?7 END,
                    transactionid = ?2, partnertransactionid = ?3, chunks = ?4, confirmed = ?5,
                    abandoned = ?6, ended_transactionid = ?8
                 WHERE id = ?1",
                params![
                    id,
                    p.transactionid,
                    p.partnertransactionid,
                    p.chunks as i64,
                    p.confirmed as i64,
                    abandoned,
                    now,
                    p.ended.then_some(p.transactionid).flatten()
                ],
            )
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Records how a run ended.
    pub fn finish(&self, id: i64, f: &Finish) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET state = ?2, exit_code = ?3, error = ?4, finished_at = ?5,
                    duration_ms = ?6, warnings = ?7, rows = COALESCE(?8, rows) WHERE id = ?1",
                params![
                    id,
                    f.state,
                    f.exit_code,
                    f.error,
                    f.finished_at,
                    f.duration.as_millis() as i64,
                    f.warnings as i64,
                    f.rows.map(|r| r as i64)
                ],
            )
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Records that run `id` continues the transaction of run `from`.
    pub fn resumed(&self, id: i64, from: i64) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET resumed_from = ?2 WHERE id = ?1",
                params![id, from],
            )
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Clears a run's spool path once the file is gone.
    pub fn spool_removed(&self, id: i64) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET spool_path = NULL WHERE id = ?1",
                params![id],
            )
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Runs started before `before` (an RFC 3339 time) that may be forgotten: finished, and neither
    /// the newest run of their store (a `--resume` may need it) nor its newest success (the shrink
    /// guard's baseline). With each, its kept snapshot, if any.
    pub fn prunable(&self, before: &str) -> Result<Vec<(i64, Option<String>)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, spool_path FROM runs
                 WHERE started_at < ?1 AND state != ?2
                   AND id NOT IN (SELECT MAX(id) FROM runs GROUP BY store_id)
                   AND id NOT IN (SELECT MAX(id) FROM runs WHERE state = 'succeeded' GROUP BY store_id)
                 ORDER BY id",
            )
            .map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map(params![before, RUNNING], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    /// Forgets the runs `ids`, in one transaction.
    pub fn forget(&mut self, ids: &[i64]) -> Result<(), LedgerError> {
        let tx = self.conn.transaction().map_err(|e| LedgerError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        for id in ids {
            tx.execute("DELETE FROM runs WHERE id = ?1", params![id])
                .map_err(|e| LedgerError::Sqlite {
                    path: self.path.clone(),
                    source: e,
                })?;
        }
        tx.commit().map_err(|e| LedgerError::Sqlite {
            path: self.path.clone(),
            source: e,
        })
    }

    /// Every snapshot a run still refers to.
    pub fn referenced_spools(&self) -> Result<Vec<String>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT spool_path FROM runs WHERE spool_path IS NOT NULL")
            .map_err(|e| self.fail(e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    /// The last upload of a store to Rider Rewards that succeeded.
    pub fn last_success(&self, store_id: &str) -> Result<Option<RunRecord>, LedgerError> {
        self.one(
            "SELECT * FROM runs WHERE store_id = ?1 AND state = 'succeeded' AND destination = 'riderrewards'
             ORDER BY id DESC LIMIT 1",
            store_id,
        )
    }

    /// The last run of a store other than `except`, whatever its state, leaving out runs stopped by
    /// their configuration (exit 78): those never reached the server, so the transaction a `--resume`
    /// may continue is an earlier run's.
    pub fn last_run(&self, store_id: &str, except: i64) -> Result<Option<RunRecord>, LedgerError> {
        self.conn
            .query_row(
                "SELECT * FROM runs WHERE store_id = ?1 AND id != ?2 AND destination = 'riderrewards'
                   AND (exit_code IS NULL OR exit_code != 78)
                 ORDER BY id DESC LIMIT 1",
                params![store_id, except],
                record,
            )
            .optional()
            .map_err(|e| self.fail(e))
    }

    /// The snapshots earlier runs of a store kept: (run id, path).
    pub fn kept_spools(
        &self,
        store_id: &str,
        except: i64,
    ) -> Result<Vec<(i64, String)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, spool_path FROM runs
                 WHERE store_id = ?1 AND id != ?2 AND spool_path IS NOT NULL",
            )
            .map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map(params![store_id, except], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    /// Runs still marked running that are not `except`: their process died (the caller holds the lock).
    pub fn mark_crashed(
        &self,
        store_id: &str,
        except: i64,
        now: &str,
    ) -> Result<usize, LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET state = 'interrupted', error = 'the process died before the run ended',
                    finished_at = ?3 WHERE store_id = ?1 AND id != ?2 AND state = 'running'",
                params![store_id, except, now],
            )
            .map_err(|e| self.fail(e))
    }

    /// Runs of one store (or all), newest first.
    pub fn history(
        &self,
        store: Option<&str>,
        state: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT * FROM runs WHERE (?1 IS NULL OR store = ?1 OR store_id = ?1)
                   AND (?2 IS NULL OR state = ?2)
                 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map(params![store, state, limit as i64], record)
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    /// Whether any run was recorded for `store` (its name or RRStoreID).
    pub fn knows_store(&self, store: &str) -> Result<bool, LedgerError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM runs WHERE store = ?1 OR store_id = ?1)",
                params![store],
                |row| row.get(0),
            )
            .map_err(|e| self.fail(e))
    }

    /// Every store's latest finished run, latest success and number of runs by state, for `status` and
    /// the metrics. Stores are named as their runs name them; sorted by name.
    pub fn overview(&self) -> Result<Vec<StoreOverview>, LedgerError> {
        let latest = |sql: &str| -> Result<Vec<RunRecord>, LedgerError> {
            let mut stmt = self.conn.prepare(sql).map_err(|e| self.fail(e))?;
            let rows = stmt.query_map([], record).map_err(|e| self.fail(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
        };
        let last = latest(
            "SELECT * FROM runs WHERE id IN
               (SELECT MAX(id) FROM runs WHERE state != 'running' GROUP BY store) ORDER BY store",
        )?;
        let successes = latest(
            "SELECT * FROM runs WHERE id IN
               (SELECT MAX(id) FROM runs WHERE state = 'succeeded' GROUP BY store)",
        )?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT store, state, COUNT(*) FROM runs WHERE state != 'running'
                 GROUP BY store, state ORDER BY store, state",
            )
            .map_err(|e| self.fail(e))?;
        let counts: Vec<(String, String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.fail(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.fail(e))?;
        Ok(last
            .into_iter()
            .map(|last| StoreOverview {
                last_success: successes.iter().find(|s| s.store == last.store).cloned(),
                runs_by_state: counts
                    .iter()
                    .filter(|(store, _, _)| *store == last.store)
                    .map(|(_, state, n)| (state.clone(), *n as u64))
                    .collect(),
                last,
            })
            .collect())
    }

    fn one(&self, sql: &str, store_id: &str) -> Result<Option<RunRecord>, LedgerError> {
        self.conn
            .query_row(sql, params![store_id], record)
            .optional()
            .map_err(|e| self.fail(e))
    }
}

fn record(row: &rusqlite::Row) -> rusqlite::Result<RunRecord> {
    let abandoned: String = row.get("abandoned")?;
    let count = |name: &str| -> rusqlite::Result<Option<u64>> {
        Ok(row.get::<_, Option<i64>>(name)?.map(|n| n as u64))
    };
    Ok(RunRecord {
        id: row.get("id")?,
        store: row.get("store")?,
        store_id: row.get("store_id")?,
        feed: row.get("feed")?,
        input: row.get("input")?,
        input_blake3: row.get("input_blake3")?,
        snapshot_blake3: row.get("snapshot_blake3")?,
        spool_path: row.get("spool_path")?,
        rows: count("rows")?,
        chunks: count("chunks")?,
        confirmed: count("confirmed")?,
        transactionid: row.get("transactionid")?,
        partnertransactionid: row.get("partnertransactionid")?,
        ended_transactionid: row.get("ended_transactionid")?,
        abandoned_transactions: serde_json::from_str(&abandoned).unwrap_or_default(),
        state: row.get("state")?,
        exit_code: row.get("exit_code")?,
        error: row.get("error")?,
        pid: row.get("pid")?,
        started_at: row.get("started_at")?,
        begun_at: row.get("begun_at")?,
        finished_at: row.get("finished_at")?,
        duration_ms: count("duration_ms")?,
        resumed_from: row.get("resumed_from")?,
        warnings: count("warnings")?,
        destination: row.get("destination")?,
    })
}

/// Adds the columns a ledger written by an older rrfeed lacks.
fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('runs')")?;
    let have: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, definition) in ADDED_COLUMNS {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!("ALTER TABLE runs ADD COLUMN {name} {definition}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(ledger: &Ledger, store_id: &str) -> i64 {
        ledger
            .start(&NewRun {
                store: "north",
                store_id,
                destination: RIDER_REWARDS,
                feed: "C",
                input: "/x.csv",
                started_at: "2026-11-22T01:00:00Z",
            })
            .unwrap()
    }

    fn finish(ledger: &Ledger, id: i64, state: &str) {
        ledger
            .finish(
                id,
                &Finish {
                    state,
                    exit_code: 0,
                    error: None,
                    finished_at: "2026-11-22T01:01:00Z",
                    duration: Duration::from_millis(1500),
                    warnings: 0,
                    rows: None,
                },
            )
            .unwrap();
    }

    #[test]
    fn records_a_run_from_start_to_finish() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let id = start(&ledger, "1");
        ledger
            .snapshot(id, 2500, "in-hash", "snap-hash", Path::new("/s/run.ndjson"))
            .unwrap();
        let mut p = Checkpoint {
            transactionid: Some("T1"),
            partnertransactionid: Some("P1"),
            chunks: 1,
            confirmed: 1000,
            ..Checkpoint::default()
        };
        ledger.progress(id, &p, "2026-11-22T01:00:05Z").unwrap();
        p.chunks = 3;
        p.confirmed = 2500;
        p.ended = true;
        ledger.progress(id, &p, "2026-11-22T01:00:09Z").unwrap();
        finish(&ledger, id, "succeeded");
        let r = ledger.last_success("1").unwrap().unwrap();
        assert_eq!(
            (r.rows, r.chunks, r.confirmed),
            (Some(2500), Some(3), Some(2500))
        );
        assert_eq!(
            r.begun_at.as_deref(),
            Some("2026-11-22T01:00:05Z"),
            "begun when T1 first seen"
        );
        assert_eq!(r.ended_transactionid.as_deref(), Some("T1"));
        assert_eq!(r.duration_ms, Some(1500));
        assert_eq!(r.snapshot_blake3.as_deref(), Some("snap-hash"));
    }

    #[test]
    fn history_is_newest_first_and_filters_by_store() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let a = start(&ledger, "1");
        finish(&ledger, a, "succeeded");
        let b = start(&ledger, "2");
        finish(&ledger, b, "failed");
        let all = ledger.history(None, None, 10).unwrap();
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [b, a]);
        assert_eq!(ledger.history(Some("2"), None, 10).unwrap().len(), 1);
        assert_eq!(ledger.history(None, None, 1).unwrap().len(), 1);
        assert_eq!(ledger.history(None, Some("nosuch"), 10).unwrap().len(), 0);
        assert!(ledger.knows_store("2").unwrap() && !ledger.knows_store("9").unwrap());
        assert_eq!(ledger.last_success("2").unwrap(), None);
    }

    #[test]
    fn runs_left_running_are_marked_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let dead = start(&ledger, "1");
        let live = start(&ledger, "1");
        assert_eq!(ledger.mark_crashed("1", live, "now").unwrap(), 1);
        let r = ledger.last_run("1", live).unwrap().unwrap();
        assert_eq!((r.id, r.state.as_str()), (dead, "interrupted"));
    }
}
