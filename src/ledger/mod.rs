//! The run ledger (docs/transaction.md, "What is recorded"): every run — store, feed, input and its
//! hash, rows, chunks, transactions ended and abandoned, final state, timings and error text. `history`,
//! `status` and the metrics read it; the shrink guard and `--resume` rely on it.
//!
//! A run's row is written when the run starts and updated after every confirmed chunk, so even a run
//! killed with SIGKILL leaves its resume point behind. Every write is synced to disk except one that
//! only moves the resume point ([`Milestone`]). No secret is ever stored here.
//!
//! [`Ledger`] is the interface; it lives in SQLite in the state directory ([`sqlite`]) or, shared by
//! several machines, in PostgreSQL ([`postgres`]). The same behavioural tests run against both.

pub mod postgres;
pub mod sqlite;
#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::changes::ChangeCounts;
use crate::state::State;

/// The file name of the SQLite ledger inside the state directory.
pub const LEDGER_FILE: &str = "ledger.sqlite3";

/// The state of a run that has not finished (or whose process died before it could say).
pub const RUNNING: &str = "running";

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
    #[error("the run ledger in PostgreSQL: {0}")]
    Postgres(String),
    #[error("cannot create the state directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One run as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
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
    /// What changed since the store's last successful upload, when there was one to compare with.
    pub changes: Option<ChangeCounts>,
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

impl Checkpoint<'_> {
    /// What of this checkpoint must survive a power cut, for run `run`.
    pub(crate) fn milestone(&self, run: i64) -> Milestone {
        Milestone {
            run,
            transactionid: self.transactionid.map(str::to_owned),
            abandoned: self.abandoned.len(),
            ended: self.ended,
        }
    }
}

/// Which transactions a run has begun, abandoned and ended. A checkpoint with the same milestone as
/// the last one written only moves the resume point: a store may write it without syncing it to
/// disk, since it survives the process being killed and a resume point lost with a power cut is
/// refused by the running totals (docs/transaction.md, "What is recorded").
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Milestone {
    run: i64,
    transactionid: Option<String>,
    abandoned: usize,
    ended: bool,
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

/// The ledger, wherever it lives. Every method stores or returns plain values.
pub trait Ledger: Send {
    /// Records a run as started; returns its id.
    fn start(&self, run: &NewRun) -> Result<i64, LedgerError>;
    /// Records the validated snapshot of a run.
    fn snapshot(
        &self,
        id: i64,
        rows: u64,
        input_blake3: &str,
        snapshot_blake3: &str,
        spool_path: &Path,
    ) -> Result<(), LedgerError>;
    /// Records the driver's progress: the transaction, the confirmed rows, abandoned transactions.
    /// `begun_at` is set when the transaction changes.
    fn progress(&self, id: i64, checkpoint: &Checkpoint, now: &str) -> Result<(), LedgerError>;
    /// Records what changed since the store's last successful upload.
    fn changes(&self, id: i64, counts: &ChangeCounts) -> Result<(), LedgerError>;
    /// Records how a run ended.
    fn finish(&self, id: i64, finish: &Finish) -> Result<(), LedgerError>;
    /// Records that run `id` continues the transaction of run `from`.
    fn resumed(&self, id: i64, from: i64) -> Result<(), LedgerError>;
    /// Clears a run's snapshot path once the file is gone.
    fn spool_removed(&self, id: i64) -> Result<(), LedgerError>;
    /// Runs started before `before` (an RFC 3339 time) that may be forgotten: finished, and neither
    /// the newest run of their store (a `--resume` may need it) nor its newest success (the shrink
    /// guard's baseline). With each, its kept snapshot, if any.
    fn prunable(&self, before: &str) -> Result<Vec<(i64, Option<String>)>, LedgerError>;
    /// Forgets the runs `ids`, in one transaction.
    fn forget(&self, ids: &[i64]) -> Result<(), LedgerError>;
    /// Every snapshot a run still refers to.
    fn referenced_spools(&self) -> Result<Vec<String>, LedgerError>;
    /// The last upload of a store to Rider Rewards that succeeded: the shrink guard's baseline.
    fn last_success(&self, store_id: &str) -> Result<Option<RunRecord>, LedgerError>;
    /// The last upload of a store other than `except`, whatever its state, leaving out runs stopped
    /// by their configuration (exit 78): those never reached the server, so the transaction a
    /// `--resume` may continue is an earlier run's.
    fn last_run(&self, store_id: &str, except: i64) -> Result<Option<RunRecord>, LedgerError>;
    /// The snapshots other runs of a store still keep: (run id, path).
    fn kept_spools(&self, store_id: &str, except: i64) -> Result<Vec<(i64, String)>, LedgerError>;
    /// Runs still marked running that are not `except`: their process died (the caller holds the
    /// store's lock). Returns how many.
    fn mark_crashed(&self, store_id: &str, except: i64, now: &str) -> Result<usize, LedgerError>;
    /// Runs of one store (its name or RRStoreID) or all, in one state or any, newest first.
    fn history(
        &self,
        store: Option<&str>,
        state: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, LedgerError>;
    /// Whether any run was recorded for `store` (its name or RRStoreID).
    fn knows_store(&self, store: &str) -> Result<bool, LedgerError>;
    /// Every store's latest finished run, latest success and number of runs by state, for `status`
    /// and the metrics; sorted by store name.
    fn overview(&self) -> Result<Vec<StoreOverview>, LedgerError>;
    /// Adds a run recorded elsewhere (`rrfeed state import`) with all its fields but its id and
    /// `resumed_from`, which the caller maps; returns its new id.
    fn import(&self, run: &RunRecord, resumed_from: Option<i64>) -> Result<i64, LedgerError>;
}

/// Opens (creating if needed) the ledger of `state`.
///
/// Fails when the state directory cannot be made, or the database cannot be reached or migrated.
pub fn open(state: &State) -> Result<Box<dyn Ledger>, LedgerError> {
    match &state.postgres {
        Some(target) => Ok(Box::new(postgres::PgLedger::open(target)?)),
        None => Ok(Box::new(sqlite::SqliteLedger::open(&state.dir)?)),
    }
}

/// Opens the ledger of `state` for a query, which never creates one: `None` when there is no SQLite
/// ledger yet.
pub fn open_existing(state: &State) -> Result<Option<Box<dyn Ledger>>, LedgerError> {
    if state.postgres.is_none() && !state.dir.join(LEDGER_FILE).exists() {
        return Ok(None);
    }
    open(state).map(Some)
}

/// Assembles the overview from each store's latest finished run, latest success and (store, state,
/// count) rows.
fn overview_of(
    last: Vec<RunRecord>,
    successes: &[RunRecord],
    counts: &[(String, String, i64)],
) -> Vec<StoreOverview> {
    last.into_iter()
        .map(|last| StoreOverview {
            last_success: successes.iter().find(|s| s.store == last.store).cloned(),
            runs_by_state: counts
                .iter()
                .filter(|(store, _, _)| *store == last.store)
                .map(|(_, state, n)| (state.clone(), *n as u64))
                .collect(),
            last,
        })
        .collect()
}

/// The abandoned transactions as the ledger stores them (a JSON array).
fn abandoned_json(abandoned: &[String]) -> String {
    serde_json::to_string(abandoned).expect("strings serialize")
}

/// The change counts as the ledger stores them (a JSON object, in one column).
fn changes_json(counts: &ChangeCounts) -> String {
    serde_json::to_string(counts).expect("four numbers serialize")
}

/// The change counts of a stored column; `None` when empty or unreadable.
fn changes_of(stored: Option<String>) -> Option<ChangeCounts> {
    serde_json::from_str(stored.as_deref()?).ok()
}
