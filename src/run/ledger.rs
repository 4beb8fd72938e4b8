//! What one store's run needs from the ledger, as an interface: the SQLite ledger in the state
//! directory implements it today, and a shared state backend for several machines implements it next,
//! without the run changing. Every method stores or returns plain values.

use std::path::Path;

use crate::ledger::{Checkpoint, Finish, Ledger, LedgerError, NewRun, RunRecord};

pub trait RunLedger {
    /// Records a run as started; returns its id.
    fn start(&self, run: &NewRun) -> Result<i64, LedgerError>;
    /// Marks runs of the store still "running" (other than `except`) as interrupted: their process
    /// died, since the caller holds the store's lock.
    fn mark_crashed(&self, store_id: &str, except: i64, now: &str) -> Result<(), LedgerError>;
    /// Records the validated snapshot of a run.
    fn snapshot(
        &self,
        id: i64,
        rows: u64,
        input_blake3: &str,
        snapshot_blake3: &str,
        spool_path: &Path,
    ) -> Result<(), LedgerError>;
    /// Records where the run's transaction stands.
    fn progress(&self, id: i64, checkpoint: &Checkpoint, now: &str) -> Result<(), LedgerError>;
    /// Records that the run continued run `from`'s transaction.
    fn resumed(&self, id: i64, from: i64) -> Result<(), LedgerError>;
    /// Records how the run ended.
    fn finish(&self, id: i64, finish: &Finish) -> Result<(), LedgerError>;
    /// Records that the run's snapshot was removed.
    fn spool_removed(&self, id: i64) -> Result<(), LedgerError>;
    /// The store's last successful run: the shrink guard's baseline.
    fn last_success(&self, store_id: &str) -> Result<Option<RunRecord>, LedgerError>;
    /// The store's last run other than `except`: what `--resume` may continue.
    fn last_run(&self, store_id: &str, except: i64) -> Result<Option<RunRecord>, LedgerError>;
    /// The snapshots other runs of the store still keep: (run, path).
    fn kept_spools(&self, store_id: &str, except: i64) -> Result<Vec<(i64, String)>, LedgerError>;
}

impl RunLedger for Ledger {
    fn start(&self, run: &NewRun) -> Result<i64, LedgerError> {
        Ledger::start(self, run)
    }

    fn mark_crashed(&self, store_id: &str, except: i64, now: &str) -> Result<(), LedgerError> {
        Ledger::mark_crashed(self, store_id, except, now).map(drop)
    }

    fn snapshot(
        &self,
        id: i64,
        rows: u64,
        input_blake3: &str,
        snapshot_blake3: &str,
        spool_path: &Path,
    ) -> Result<(), LedgerError> {
        Ledger::snapshot(self, id, rows, input_blake3, snapshot_blake3, spool_path)
    }

    fn progress(&self, id: i64, checkpoint: &Checkpoint, now: &str) -> Result<(), LedgerError> {
        Ledger::progress(self, id, checkpoint, now)
    }

    fn resumed(&self, id: i64, from: i64) -> Result<(), LedgerError> {
        Ledger::resumed(self, id, from)
    }

    fn finish(&self, id: i64, finish: &Finish) -> Result<(), LedgerError> {
        Ledger::finish(self, id, finish)
    }

    fn spool_removed(&self, id: i64) -> Result<(), LedgerError> {
        Ledger::spool_removed(self, id)
    }

    fn last_success(&self, store_id: &str) -> Result<Option<RunRecord>, LedgerError> {
        Ledger::last_success(self, store_id)
    }

    fn last_run(&self, store_id: &str, except: i64) -> Result<Option<RunRecord>, LedgerError> {
        Ledger::last_run(self, store_id, except)
    }

    fn kept_spools(&self, store_id: &str, except: i64) -> Result<Vec<(i64, String)>, LedgerError> {
        Ledger::kept_spools(self, store_id, except)
    }
}
