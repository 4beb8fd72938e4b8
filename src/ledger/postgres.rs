//! The ledger in PostgreSQL (`state_url`), shared by every machine that runs the fleet's nights: the
//! shrink guard, `--resume`, `history`, `status` and the metrics see every host's runs. The same
//! queries as the SQLite ledger, in PostgreSQL's dialect; the schema is migrated on connect.

use postgres::Row;
use std::path::Path;

use super::{
    Checkpoint, Finish, Ledger, LedgerError, NewRun, RUNNING, RunRecord, StoreOverview,
    abandoned_json, overview_of,
};
use crate::changes::ChangeCounts;
use crate::state::postgres::{PgTarget, Shared};

/// An open ledger in PostgreSQL.
pub struct PgLedger {
    db: Shared,
}

/// Every column of a run, in the order [`record`] reads them.
const COLUMNS: &str = "id, store, store_id, feed, input, input_blake3, snapshot_blake3, spool_path, \
    rows, chunks, confirmed, transactionid, partnertransactionid, ended_transactionid, abandoned, state, \
    exit_code, error, pid, started_at, begun_at, finished_at, duration_ms, resumed_from, warnings, \
    destination, changes";

impl PgLedger {
    /// Connects to the ledger of `target`, migrating its schema.
    ///
    /// Fails when the server cannot be reached or the migration fails.
    pub fn open(target: &PgTarget) -> Result<Self, LedgerError> {
        Ok(Self {
            db: Shared::connect(target).map_err(LedgerError::Postgres)?,
        })
    }

    /// Runs `f` on the connection.
    fn with<R: Send>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<R, postgres::Error> + Send,
    ) -> Result<R, LedgerError> {
        self.db.with(f).map_err(LedgerError::Postgres)
    }

    fn records(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<RunRecord>, LedgerError> {
        let rows = self.with(|c| c.query(sql, params))?;
        Ok(rows.iter().map(record).collect())
    }

    fn one(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<RunRecord>, LedgerError> {
        Ok(self.records(sql, params)?.into_iter().next())
    }
}

impl Ledger for PgLedger {
    fn start(&self, run: &NewRun) -> Result<i64, LedgerError> {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let row = self.with(|c| {
            c.query_one(
                "INSERT INTO rrfeed_runs
                   (store, store_id, feed, input, state, pid, host, started_at, destination)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                &[
                    &run.store,
                    &run.store_id,
                    &run.feed,
                    &run.input,
                    &RUNNING,
                    &i64::from(std::process::id()),
                    &host,
                    &run.started_at,
                    &run.destination,
                ],
            )
        })?;
        Ok(row.get(0))
    }

    fn snapshot(
        &self,
        id: i64,
        rows: u64,
        input_blake3: &str,
        snapshot_blake3: &str,
        spool_path: &Path,
    ) -> Result<(), LedgerError> {
        let spool = spool_path.display().to_string();
        self.with(|c| {
            c.execute(
                "UPDATE rrfeed_runs SET rows = $2, input_blake3 = $3, snapshot_blake3 = $4,
                   spool_path = $5 WHERE id = $1",
                &[&id, &(rows as i64), &input_blake3, &snapshot_blake3, &spool],
            )
        })?;
        Ok(())
    }

    fn changes(&self, id: i64, counts: &ChangeCounts) -> Result<(), LedgerError> {
        let changes = super::changes_json(counts);
        self.with(|c| {
            c.execute(
                "UPDATE rrfeed_runs SET changes = $2 WHERE id = $1",
                &[&id, &changes],
            )
        })?;
        Ok(())
    }

    fn progress(&self, id: i64, p: &Checkpoint, now: &str) -> Result<(), LedgerError> {
        let abandoned = abandoned_json(p.abandoned);
        let ended = p.ended.then_some(p.transactionid).flatten();
        self.with(|c| {
            c.execute(
                "UPDATE rrfeed_runs SET
                    begun_at = CASE WHEN transactionid IS NOT DISTINCT FROM $2 THEN begun_at
                                    ELSE $7 END,
                    transactionid = $2, partnertransactionid = $3, chunks = $4, confirmed = $5,
                    abandoned = $6, ended_transactionid = $8
                 WHERE id = $1",
                &[
                    &id,
                    &p.transactionid,
                    &p.partnertransactionid,
                    &(p.chunks as i64),
                    &(p.confirmed as i64),
                    &abandoned,
                    &now,
                    &ended,
                ],
            )
        })?;
        Ok(())
    }

    fn finish(&self, id: i64, f: &Finish) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute(
                "UPDATE rrfeed_runs SET state = $2, exit_code = $3, error = $4, finished_at = $5,
                    duration_ms = $6, warnings = $7, rows = COALESCE($8, rows) WHERE id = $1",
                &[
                    &id,
                    &f.state,
                    &i32::from(f.exit_code),
                    &f.error,
                    &f.finished_at,
                    &(f.duration.as_millis() as i64),
                    &(f.warnings as i64),
                    &f.rows.map(|r| r as i64),
                ],
            )
        })?;
        Ok(())
    }

    fn resumed(&self, id: i64, from: i64) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute(
                "UPDATE rrfeed_runs SET resumed_from = $2 WHERE id = $1",
                &[&id, &from],
            )
        })?;
        Ok(())
    }

    fn spool_removed(&self, id: i64) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute(
                "UPDATE rrfeed_runs SET spool_path = NULL WHERE id = $1",
                &[&id],
            )
        })?;
        Ok(())
    }

    fn prunable(&self, before: &str) -> Result<Vec<(i64, Option<String>)>, LedgerError> {
        let rows = self.with(|c| {
            c.query(
                "SELECT id, spool_path FROM rrfeed_runs
                 WHERE started_at < $1 AND state != $2
                   AND id NOT IN (SELECT MAX(id) FROM rrfeed_runs GROUP BY store_id)
                   AND id NOT IN (SELECT MAX(id) FROM rrfeed_runs WHERE state = 'succeeded'
                                  GROUP BY store_id)
                 ORDER BY id",
                &[&before, &RUNNING],
            )
        })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn forget(&self, ids: &[i64]) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute("DELETE FROM rrfeed_runs WHERE id = ANY($1)", &[&ids])
                .map(drop)
        })
    }

    fn referenced_spools(&self) -> Result<Vec<String>, LedgerError> {
        let rows = self.with(|c| {
            c.query(
                "SELECT spool_path FROM rrfeed_runs WHERE spool_path IS NOT NULL ORDER BY id",
                &[],
            )
        })?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn last_success(&self, store_id: &str) -> Result<Option<RunRecord>, LedgerError> {
        self.one(
            &format!(
                "SELECT {COLUMNS} FROM rrfeed_runs WHERE store_id = $1 AND state = 'succeeded'
                   AND destination = 'riderrewards' ORDER BY id DESC LIMIT 1"
            ),
            &[&store_id],
        )
    }

    fn last_run(&self, store_id: &str, except: i64) -> Result<Option<RunRecord>, LedgerError> {
        self.one(
            &format!(
                "SELECT {COLUMNS} FROM rrfeed_runs WHERE store_id = $1 AND id != $2
                   AND destination = 'riderrewards' AND (exit_code IS NULL OR exit_code != 78)
                 ORDER BY id DESC LIMIT 1"
            ),
            &[&store_id, &except],
        )
    }

    fn kept_spools(&self, store_id: &str, except: i64) -> Result<Vec<(i64, String)>, LedgerError> {
        let rows = self.with(|c| {
            c.query(
                "SELECT id, spool_path FROM rrfeed_runs
                 WHERE store_id = $1 AND id != $2 AND spool_path IS NOT NULL ORDER BY id",
                &[&store_id, &except],
            )
        })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn mark_crashed(&self, store_id: &str, except: i64, now: &str) -> Result<usize, LedgerError> {
        let n = self.with(|c| {
            c.execute(
                "UPDATE rrfeed_runs SET state = 'interrupted',
                    error = 'the process died before the run ended', finished_at = $3
                 WHERE store_id = $1 AND id != $2 AND state = 'running'",
                &[&store_id, &except, &now],
            )
        })?;
        Ok(n as usize)
    }

    fn history(
        &self,
        store: Option<&str>,
        state: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, LedgerError> {
        self.records(
            &format!(
                "SELECT {COLUMNS} FROM rrfeed_runs
                 WHERE ($1::TEXT IS NULL OR store = $1 OR store_id = $1)
                   AND ($2::TEXT IS NULL OR state = $2)
                 ORDER BY id DESC LIMIT $3"
            ),
            &[&store, &state, &(limit as i64)],
        )
    }

    fn knows_store(&self, store: &str) -> Result<bool, LedgerError> {
        let row = self.with(|c| {
            c.query_one(
                "SELECT EXISTS (SELECT 1 FROM rrfeed_runs WHERE store = $1 OR store_id = $1)",
                &[&store],
            )
        })?;
        Ok(row.get(0))
    }

    fn import(&self, r: &RunRecord, resumed_from: Option<i64>) -> Result<i64, LedgerError> {
        let abandoned = abandoned_json(&r.abandoned_transactions);
        let n = |v: Option<u64>| v.map(|v| v as i64);
        let (rows, chunks, confirmed, duration, warnings) = (
            n(r.rows),
            n(r.chunks),
            n(r.confirmed),
            n(r.duration_ms),
            n(r.warnings),
        );
        let exit_code = r.exit_code.map(i32::from);
        let pid = r.pid.map(i64::from);
        let changes = r.changes.as_ref().map(super::changes_json);
        let row = self.with(|c| {
            c.query_one(
                "INSERT INTO rrfeed_runs (store, store_id, feed, input, input_blake3, snapshot_blake3,
                    spool_path, rows, chunks, confirmed, transactionid, partnertransactionid,
                    ended_transactionid, abandoned, state, exit_code, error, pid, started_at, begun_at,
                    finished_at, duration_ms, resumed_from, warnings, destination, changes)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                    $18, $19, $20, $21, $22, $23, $24, $25, $26)
                 RETURNING id",
                &[
                    &r.store,
                    &r.store_id,
                    &r.feed,
                    &r.input,
                    &r.input_blake3,
                    &r.snapshot_blake3,
                    &r.spool_path,
                    &rows,
                    &chunks,
                    &confirmed,
                    &r.transactionid,
                    &r.partnertransactionid,
                    &r.ended_transactionid,
                    &abandoned,
                    &r.state,
                    &exit_code,
                    &r.error,
                    &pid,
                    &r.started_at,
                    &r.begun_at,
                    &r.finished_at,
                    &duration,
                    &resumed_from,
                    &warnings,
                    &r.destination,
                    &changes,
                ],
            )
        })?;
        Ok(row.get(0))
    }

    fn overview(&self) -> Result<Vec<StoreOverview>, LedgerError> {
        let last = self.records(
            &format!(
                "SELECT {COLUMNS} FROM rrfeed_runs WHERE id IN
                   (SELECT MAX(id) FROM rrfeed_runs WHERE state != 'running' GROUP BY store)
                 ORDER BY store"
            ),
            &[],
        )?;
        let successes = self.records(
            &format!(
                "SELECT {COLUMNS} FROM rrfeed_runs WHERE id IN
                   (SELECT MAX(id) FROM rrfeed_runs WHERE state = 'succeeded' GROUP BY store)"
            ),
            &[],
        )?;
        let counts: Vec<(String, String, i64)> = self
            .with(|c| {
                c.query(
                    "SELECT store, state, COUNT(*) FROM rrfeed_runs WHERE state != 'running'
                     GROUP BY store, state ORDER BY store, state",
                    &[],
                )
            })?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        Ok(overview_of(last, &successes, &counts))
    }
}

fn record(row: &Row) -> RunRecord {
    let count = |i: usize| row.get::<_, Option<i64>>(i).map(|n| n as u64);
    let abandoned: String = row.get(14);
    RunRecord {
        id: row.get(0),
        store: row.get(1),
        store_id: row.get(2),
        feed: row.get(3),
        input: row.get(4),
        input_blake3: row.get(5),
        snapshot_blake3: row.get(6),
        spool_path: row.get(7),
        rows: count(8),
        chunks: count(9),
        confirmed: count(10),
        transactionid: row.get(11),
        partnertransactionid: row.get(12),
        ended_transactionid: row.get(13),
        abandoned_transactions: serde_json::from_str(&abandoned).unwrap_or_default(),
        state: row.get(15),
        exit_code: row.get::<_, Option<i32>>(16).map(|c| c as u8),
        error: row.get(17),
        pid: row.get::<_, Option<i64>>(18).map(|p| p as u32),
        started_at: row.get(19),
        begun_at: row.get(20),
        finished_at: row.get(21),
        duration_ms: count(22),
        resumed_from: row.get(23),
        warnings: count(24),
        destination: row.get(25),
        changes: super::changes_of(row.get(26)),
    }
}
