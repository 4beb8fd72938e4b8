//! The checks a run makes against the store's earlier runs: the shrink and churn guards (docs/transaction.md, step 2), whether the
//! last run's transaction can be resumed (docs/transaction.md, step 8), and the clean-up of snapshots no run needs.

use tracing::{info, warn};

use crate::config::Guards;
use crate::driver::{Progress, ResumePoint};
use crate::error::RunError;
use crate::ledger::{Ledger, LedgerError, RunRecord};
use crate::spool::Spool;

/// Refuses a count that shrank by more than `ratio` since the store's last successful run.
pub(super) fn shrink(
    ledger: &dyn Ledger,
    store_id: &str,
    rows: u64,
    ratio: f64,
) -> Result<(), RunError> {
    let Some(last) = ledger.last_success(store_id)? else {
        return Ok(());
    };
    let before = last.rows.unwrap_or(0);
    if before == 0 || (rows as f64) >= before as f64 * (1.0 - ratio) {
        return Ok(());
    }
    Err(RunError::Refused(format!(
        "the export has {rows} rows, down from {before} at the last successful run (run {}, {}): \
         more than {:.0}% fewer. Check the export; pass --force if the store really lost them",
        last.id,
        last.finished_at.as_deref().unwrap_or(&last.started_at),
        ratio * 100.0
    )))
}

/// Refuses a night that removes or changes more than `ratio` of the last success's customers.
pub(super) fn churn(comparison: &crate::changes::Comparison, ratio: f64) -> Result<(), RunError> {
    comparison.churn_guard(ratio).map_err(RunError::Refused)
}

/// The store's run before this one, if any.
pub(super) fn previous_runs(
    ledger: &dyn Ledger,
    store_id: &str,
    this_run: i64,
) -> Result<Option<RunRecord>, LedgerError> {
    ledger.last_run(store_id, this_run)
}

/// The transaction a run left open: begun, not ended, not abandoned, and not an end whose outcome is
/// unknown (that one may have been imported).
fn open_transaction(run: &RunRecord) -> Option<&str> {
    let open = run.ended_transactionid.is_none() && run.state == "interrupted";
    run.transactionid.as_deref().filter(|_| open)
}

/// Decides whether `--resume` can continue the previous run's transaction; when it cannot, says why
/// and lists that transaction as abandoned by this run.
pub(super) fn resume_point(
    previous: &Option<RunRecord>,
    spool: &Spool,
    guards: &Guards,
    now: jiff::Timestamp,
    progress: &mut Progress,
) -> Option<ResumePoint> {
    let Some(run) = previous else {
        warn!("--resume: this store has no earlier run; starting fresh");
        return None;
    };
    let Some(tx) = open_transaction(run) else {
        warn!(run = run.id, state = %run.state, "--resume: the last run left no open transaction; starting fresh");
        return None;
    };
    match why_not_resumable(run, spool, guards, now) {
        None => Some(ResumePoint {
            transactionid: tx.to_owned(),
            partnertransactionid: run.partnertransactionid.clone()?,
            chunks: run.chunks.unwrap_or(0) as usize,
            confirmed: run.confirmed.unwrap_or(0),
        }),
        Some(reason) => {
            warn!(run = run.id, transactionid = %tx, "--resume: cannot continue: {reason}; starting fresh");
            progress.abandoned.push(tx.to_owned());
            None
        }
    }
}

fn why_not_resumable(
    run: &RunRecord,
    spool: &Spool,
    guards: &Guards,
    now: jiff::Timestamp,
) -> Option<String> {
    if run.state != "interrupted" {
        return Some(format!(
            "it ended {} (exit {}), which a transaction cannot be trusted after",
            run.state,
            run.exit_code.map_or_else(|| "?".into(), |c| c.to_string())
        ));
    }
    if run.partnertransactionid.is_none() || run.confirmed.is_none() {
        return Some("the ledger lacks its resume point".into());
    }
    let limit = guards.purge_window.saturating_sub(guards.resume_margin);
    let begun: Option<jiff::Timestamp> = run.begun_at.as_deref().and_then(|t| t.parse().ok());
    let Some(begun) = begun else {
        return Some("the ledger lacks when its transaction began".into());
    };
    let age = now.duration_since(begun).unsigned_abs();
    if age > limit {
        return Some(format!(
            "its transaction began {} ago, past the {} the server may keep it",
            humantime::format_duration(std::time::Duration::from_secs(age.as_secs())),
            humantime::format_duration(limit)
        ));
    }
    if run.snapshot_blake3.as_deref() != Some(spool.blake3()) {
        return Some("the export changed since (its snapshot differs)".into());
    }
    None
}

/// Without `--resume`, a transaction the last run left open is abandoned; say so.
pub(super) fn note_open_transaction(previous: &Option<RunRecord>, progress: &mut Progress) {
    if let Some(run) = previous
        && let Some(tx) = open_transaction(run)
    {
        info!(run = run.id, transactionid = %tx,
            "the last run left this transaction open; starting fresh (--resume would have continued it)");
        progress.abandoned.push(tx.to_owned());
    }
}

/// Removes the snapshots that earlier runs of the store kept: this run supersedes them.
pub(super) fn remove_old_spools(ledger: &dyn Ledger, store_id: &str, this_run: i64) {
    let kept = match ledger.kept_spools(store_id, this_run) {
        Ok(kept) => kept,
        Err(e) => {
            warn!("cannot list old snapshots: {e}");
            return;
        }
    };
    for (run, path) in kept {
        let gone = match std::fs::remove_file(&path) {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        if gone && let Err(e) = ledger.spool_removed(run) {
            warn!("cannot record a removed snapshot: {e}");
        }
    }
}
