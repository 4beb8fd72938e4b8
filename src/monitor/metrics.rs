//! The metrics file for node_exporter's textfile collector: every store's latest figures from the run
//! ledger, rewritten after every store's run, so that it also holds the stores not run this time.
//!
//! The file is replaced atomically (a temporary file in the same directory, flushed to disk, then
//! renamed over it), so the collector never reads half of it; it is readable by everyone, since
//! node_exporter usually runs as a user of its own.

use std::io::Write;
use std::path::Path;

use super::epoch_seconds;
use super::exposition::{Family, Kind, render};
use crate::ledger::StoreOverview;

/// The metrics of `stores` and, when the receiver's outbox exists, its pending updates.
pub fn text(stores: &[StoreOverview], webhook_pending: Option<u64>) -> String {
    let mut last_run = Family::new(
        "rrfeed_last_run_timestamp_seconds",
        Kind::Gauge,
        "When the store's latest run ended, in seconds since the epoch.",
    );
    let mut last_success = Family::new(
        "rrfeed_last_success_timestamp_seconds",
        Kind::Gauge,
        "When the store's latest successful run ended, in seconds since the epoch.",
    );
    let mut exit_code = Family::new(
        "rrfeed_last_run_exit_code",
        Kind::Gauge,
        "The exit code of the store's latest run (0 is success).",
    );
    let mut rows = Family::new(
        "rrfeed_last_run_rows",
        Kind::Gauge,
        "Rows in the export of the store's latest run.",
    );
    let mut duration = Family::new(
        "rrfeed_last_run_duration_seconds",
        Kind::Gauge,
        "How long the store's latest run took.",
    );
    let mut warnings = Family::new(
        "rrfeed_last_run_warnings",
        Kind::Gauge,
        "Warnings counted while reading the export of the store's latest run.",
    );
    let mut changes = Family::new(
        "rrfeed_last_run_changes",
        Kind::Gauge,
        "Customers added, removed, changed and unchanged since the last success, as the store's latest run counted them.",
    );
    let mut runs = Family::new(
        "rrfeed_runs_total",
        Kind::Counter,
        "Runs of the store the ledger holds, by final state.",
    );
    for store in stores {
        let last = &store.last;
        let labels = || {
            vec![
                ("store", last.store.clone()),
                ("destination", last.destination.clone()),
            ]
        };
        let ended = last.finished_at.as_deref().unwrap_or(&last.started_at);
        if let Some(at) = epoch_seconds(ended) {
            last_run.push(labels(), at);
        }
        if let Some(at) = store
            .last_success
            .as_ref()
            .and_then(|s| epoch_seconds(s.finished_at.as_deref().unwrap_or(&s.started_at)))
        {
            last_success.push(labels(), at);
        }
        if let Some(code) = last.exit_code {
            exit_code.push(labels(), f64::from(code));
        }
        if let Some(n) = last.rows {
            rows.push(labels(), n as f64);
        }
        if let Some(ms) = last.duration_ms {
            duration.push(labels(), ms as f64 / 1000.0);
        }
        warnings.push(labels(), last.warnings.unwrap_or(0) as f64);
        if let Some(counts) = last.changes {
            for (change, n) in [
                ("added", counts.added),
                ("removed", counts.removed),
                ("changed", counts.changed),
                ("unchanged", counts.unchanged),
            ] {
                let mut labels = labels();
                labels.push(("change", change.to_owned()));
                changes.push(labels, n as f64);
            }
        }
        for (state, n) in &store.runs_by_state {
            let mut labels = labels();
            labels.push(("state", state.clone()));
            runs.push(labels, *n as f64);
        }
    }
    let mut pending = Family::new(
        "rrfeed_webhook_pending_updates",
        Kind::Gauge,
        "Customer updates the webhook receiver stored and the dealer system has not exported yet.",
    );
    if let Some(n) = webhook_pending {
        pending.push(Vec::new(), n as f64);
    }
    render(&[
        last_run,
        last_success,
        exit_code,
        rows,
        duration,
        warnings,
        changes,
        runs,
        pending,
    ])
}

/// Replaces `path` with `text` atomically.
///
/// Fails when the directory is not writable or the disk is full; the old file then stays as it was.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "metrics".into(), |n| n.to_string_lossy().into_owned());
    // A name the collector skips (it reads `*.prom` only) while the file is being written.
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    file.write_all(text.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Rewrites the metrics file from the ledger of `state`; a failure is a warning.
pub fn refresh(path: &Path, state: &crate::state::State) {
    if let Err(e) = try_refresh(path, state) {
        tracing::warn!(
            "cannot write the metrics file {}: {e}; the run's outcome is unchanged",
            path.display()
        );
    }
}

fn try_refresh(path: &Path, state: &crate::state::State) -> Result<(), String> {
    let ledger = crate::ledger::open(state).map_err(|e| e.to_string())?;
    let stores = ledger.overview().map_err(|e| e.to_string())?;
    write_atomically(path, &text(&stores, webhook_pending(state))).map_err(|e| e.to_string())
}

/// The receiver's pending updates, when it has an outbox where `state` is.
fn webhook_pending(state: &crate::state::State) -> Option<u64> {
    let mut outbox = crate::webhook::outbox::open_existing(state).ok()??;
    outbox.counts().ok().map(|c| c.pending.max(0) as u64)
}
