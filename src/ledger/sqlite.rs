//! The ledger in an embedded SQLite database in the state directory (`ledger.sqlite3`): the default,
//! right for one machine.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Checkpoint, Finish, LEDGER_FILE, Ledger, LedgerError, Milestone, NewRun, RUNNING, RunRecord,
    StoreOverview,
};
use crate::changes::ChangeCounts;

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
    destination TEXT NOT NULL DEFAULT 'riderrewards',
    changes TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_store ON runs (store_id, id);
";

/// Columns added after the first release, with their definitions: a ledger written by an older rrfeed
/// gains them when opened.
const ADDED_COLUMNS: [(&str, &str); 3] = [
    ("warnings", "INTEGER"),
    ("destination", "TEXT NOT NULL DEFAULT 'riderrewards'"),
    ("changes", "TEXT"),
];

/// An open SQLite ledger.
pub struct SqliteLedger {
    conn: Connection,
    path: PathBuf,
    /// The milestone of the last progress written (see [`SqliteLedger::progress`]).
    milestone: RefCell<Option<Milestone>>,
}

impl SqliteLedger {
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
        Ok(Self {
            conn,
            path,
            milestone: RefCell::new(None),
        })
    }

    /// Writes the driver's progress; the statement is parsed once per connection (it runs after
    /// every confirmed post).
    fn write_progress(&self, id: i64, p: &Checkpoint, now: &str) -> rusqlite::Result<()> {
        let abandoned = serde_json::to_string(&p.abandoned).expect("strings serialize");
        let mut statement = self.conn.prepare_cached(
            "UPDATE runs SET
                begun_at = CASE WHEN transactionid IS ?2 THEN begun_at ELSE ?7 END,
                transactionid = ?2, partnertransactionid = ?3, chunks = ?4, confirmed = ?5,
                abandoned = ?6, ended_transactionid = ?8
             WHERE id = ?1",
        )?;
        statement.execute(params![
            id,
            p.transactionid,
            p.partnertransactionid,
            p.chunks as i64,
            p.confirmed as i64,
            abandoned,
            now,
            p.ended.then_some(p.transactionid).flatten()
        ])?;
        Ok(())
    }

    /// Runs `write` with its commit left in the write-ahead log without a sync to disk: it survives
    /// the process being killed, not a power cut, until the next synced commit or checkpoint.
    fn unsynced(&self, write: impl FnOnce() -> rusqlite::Result<()>) -> rusqlite::Result<()> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let written = write();
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        written
    }

    fn fail(&self, source: rusqlite::Error) -> LedgerError {
        LedgerError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn one(&self, sql: &str, store_id: &str) -> Result<Option<RunRecord>, LedgerError> {
        self.conn
            .query_row(sql, params![store_id], record)
            .optional()
            .map_err(|e| self.fail(e))
    }
}

impl Ledger for SqliteLedger {
    /// Records a run as started; returns its id.
    fn start(&self, run: &NewRun) -> Result<i64, LedgerError> {
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
    fn snapshot(
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

    fn changes(&self, id: i64, counts: &ChangeCounts) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET changes = ?2 WHERE id = ?1",
                params![id, super::changes_json(counts)],
            )
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Records the driver's progress: the transaction, the confirmed rows, abandoned transactions.
    /// `begun_at` is set when the transaction changes.
    fn progress(&self, id: i64, p: &Checkpoint, now: &str) -> Result<(), LedgerError> {
        let milestone = p.milestone(id);
        if self.milestone.borrow().as_ref() == Some(&milestone) {
            // Only the resume point moved: not synced to disk (the sync was three quarters of the
            // time between one post's answer and the next post).
            self.unsynced(|| self.write_progress(id, p, now))
                .map_err(|e| self.fail(e))?;
        } else {
            self.write_progress(id, p, now).map_err(|e| self.fail(e))?;
            *self.milestone.borrow_mut() = Some(milestone);
        }
        Ok(())
    }

    /// Records how a run ended.
    fn finish(&self, id: i64, f: &Finish) -> Result<(), LedgerError> {
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
    fn resumed(&self, id: i64, from: i64) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET resumed_from = ?2 WHERE id = ?1",
                params![id, from],
            )
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Clears a run's spool path once the file is gone.
    fn spool_removed(&self, id: i64) -> Result<(), LedgerError> {
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
    fn prunable(&self, before: &str) -> Result<Vec<(i64, Option<String>)>, LedgerError> {
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
    fn forget(&self, ids: &[i64]) -> Result<(), LedgerError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| LedgerError::Sqlite {
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
    fn referenced_spools(&self) -> Result<Vec<String>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT spool_path FROM runs WHERE spool_path IS NOT NULL")
            .map_err(|e| self.fail(e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    /// The last upload of a store to Rider Rewards that succeeded.
    fn last_success(&self, store_id: &str) -> Result<Option<RunRecord>, LedgerError> {
        self.one(
            "SELECT * FROM runs WHERE store_id = ?1 AND state = 'succeeded' AND destination = 'riderrewards'
             ORDER BY id DESC LIMIT 1",
            store_id,
        )
    }

    /// The last run of a store other than `except`, whatever its state, leaving out runs stopped by
    /// their configuration (exit 78): those never reached the server, so the transaction a `--resume`
    /// may continue is an earlier run's.
    fn last_run(&self, store_id: &str, except: i64) -> Result<Option<RunRecord>, LedgerError> {
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
    fn kept_spools(&self, store_id: &str, except: i64) -> Result<Vec<(i64, String)>, LedgerError> {
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
    fn mark_crashed(&self, store_id: &str, except: i64, now: &str) -> Result<usize, LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET state = 'interrupted', error = 'the process died before the run ended',
                    finished_at = ?3 WHERE store_id = ?1 AND id != ?2 AND state = 'running'",
                params![store_id, except, now],
            )
            .map_err(|e| self.fail(e))
    }

    /// Runs of one store (or all), newest first.
    fn history(
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
    fn knows_store(&self, store: &str) -> Result<bool, LedgerError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM runs WHERE store = ?1 OR store_id = ?1)",
                params![store],
                |row| row.get(0),
            )
            .map_err(|e| self.fail(e))
    }

    fn import(&self, r: &RunRecord, resumed_from: Option<i64>) -> Result<i64, LedgerError> {
        let abandoned = super::abandoned_json(&r.abandoned_transactions);
        let n = |v: Option<u64>| v.map(|v| v as i64);
        self.conn
            .execute(
                "INSERT INTO runs (store, store_id, feed, input, input_blake3, snapshot_blake3,
                    spool_path, rows, chunks, confirmed, transactionid, partnertransactionid,
                    ended_transactionid, abandoned, state, exit_code, error, pid, started_at, begun_at,
                    finished_at, duration_ms, resumed_from, warnings, destination, changes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                    ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
                params![
                    r.store,
                    r.store_id,
                    r.feed,
                    r.input,
                    r.input_blake3,
                    r.snapshot_blake3,
                    r.spool_path,
                    n(r.rows),
                    n(r.chunks),
                    n(r.confirmed),
                    r.transactionid,
                    r.partnertransactionid,
                    r.ended_transactionid,
                    abandoned,
                    r.state,
                    r.exit_code,
                    r.error,
                    r.pid,
                    r.started_at,
                    r.begun_at,
                    r.finished_at,
                    n(r.duration_ms),
                    resumed_from,
                    n(r.warnings),
                    r.destination,
                    r.changes.as_ref().map(super::changes_json)
                ],
            )
            .map_err(|e| self.fail(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Every store's latest finished run, latest success and number of runs by state, for `status` and
    /// the metrics. Stores are named as their runs name them; sorted by name.
    fn overview(&self) -> Result<Vec<StoreOverview>, LedgerError> {
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
        Ok(super::overview_of(last, &successes, &counts))
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
        changes: super::changes_of(row.get("changes")?),
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

    #[test]
    fn a_moved_resume_point_is_committed_for_other_readers_and_syncing_resumes_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = SqliteLedger::open(dir.path()).unwrap();
        let run = NewRun {
            store: "s",
            store_id: "1",
            destination: super::super::RIDER_REWARDS,
            feed: "C",
            input: "in.csv",
            started_at: "2026-11-22T01:00:00Z",
        };
        let id = ledger.start(&run).unwrap();
        let abandoned = ["T0".to_owned()];
        let mut p = Checkpoint {
            transactionid: Some("T1"),
            chunks: 1,
            confirmed: 1000,
            ..Checkpoint::default()
        };
        ledger.progress(id, &p, "t1").unwrap();
        (p.chunks, p.confirmed) = (2, 2000);
        ledger.progress(id, &p, "t2").unwrap();
        let other = SqliteLedger::open(dir.path()).unwrap();
        let seen = other.last_run("1", -1).unwrap().unwrap();
        assert_eq!((seen.chunks, seen.confirmed), (Some(2), Some(2000)));
        let synchronous: i64 = ledger
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "FULL again after an unsynced write");
        p.abandoned = &abandoned;
        ledger.progress(id, &p, "t3").unwrap();
        let seen = other.last_run("1", -1).unwrap().unwrap();
        assert_eq!(seen.abandoned_transactions, ["T0"]);
    }

    #[test]
    fn only_a_checkpoint_that_begins_abandons_or_ends_a_transaction_is_a_milestone() {
        let abandoned = ["T0".to_owned()];
        let first = Checkpoint {
            transactionid: Some("T1"),
            chunks: 1,
            confirmed: 1000,
            ..Checkpoint::default()
        };
        let moved = Checkpoint {
            chunks: 2,
            confirmed: 2000,
            ..first.clone()
        };
        assert_eq!(first.milestone(7), moved.milestone(7));
        for changed in [
            Checkpoint {
                transactionid: Some("T2"),
                ..first.clone()
            },
            Checkpoint {
                abandoned: &abandoned,
                ..first.clone()
            },
            Checkpoint {
                ended: true,
                ..first.clone()
            },
        ] {
            assert_ne!(first.milestone(7), changed.milestone(7), "{changed:?}");
        }
        assert_ne!(first.milestone(7), first.milestone(8), "another run");
    }

    #[test]
    fn a_ledger_of_an_older_rrfeed_gains_the_new_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEDGER_FILE);
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, store TEXT NOT NULL,
               store_id TEXT NOT NULL, feed TEXT NOT NULL, input TEXT NOT NULL, input_blake3 TEXT,
               snapshot_blake3 TEXT, spool_path TEXT, rows INTEGER, chunks INTEGER, confirmed INTEGER,
               transactionid TEXT, partnertransactionid TEXT, ended_transactionid TEXT,
               abandoned TEXT NOT NULL DEFAULT '[]', state TEXT NOT NULL, exit_code INTEGER, error TEXT,
               pid INTEGER, started_at TEXT NOT NULL, begun_at TEXT, finished_at TEXT,
               duration_ms INTEGER, resumed_from INTEGER);
             INSERT INTO runs (store, store_id, feed, input, state, exit_code, started_at)
               VALUES ('north', '1', 'C', 'x.csv', 'succeeded', 0, '2026-11-01T00:00:00Z');",
        )
        .unwrap();
        drop(old);
        let ledger = SqliteLedger::open(dir.path()).unwrap();
        let run = ledger.last_success("1").unwrap().unwrap();
        assert_eq!(
            (run.destination.as_str(), run.warnings),
            ("riderrewards", None)
        );
    }
}
