//! Retention: the ledger's runs and the kept snapshots must not grow forever. Forgets runs older than
//! the retention (`rrfeed prune --older-than`, or `[ledger] keep` after every upload) and removes
//! their snapshots and snapshots no run refers to any more. Never what a later run relies on: the
//! newest run of each store (which `--resume` continues) and its newest success (the shrink guard's
//! baseline) are kept whatever their age, and so are running runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::ledger::LedgerError;

/// The state directory's folder of snapshots.
pub const SPOOL_DIR: &str = "spool";

/// What a prune removed (or, with `dry_run`, would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub runs: usize,
    pub snapshots: usize,
    pub dry_run: bool,
}

/// Forgets the runs started more than `older_than` before `now`, and removes snapshots that no kept
/// run refers to and that are that old. A state directory without a ledger is left untouched.
pub fn prune(
    state: &crate::state::State,
    older_than: Duration,
    now: jiff::Timestamp,
    dry_run: bool,
) -> Result<Pruned, LedgerError> {
    let mut pruned = Pruned {
        dry_run,
        ..Pruned::default()
    };
    let Some(ledger) = crate::ledger::open_existing(state)? else {
        return Ok(pruned);
    };
    let cutoff = now
        .checked_sub(
            jiff::SignedDuration::try_from(older_than).unwrap_or(jiff::SignedDuration::MAX),
        )
        .unwrap_or(jiff::Timestamp::MIN);
    let runs = ledger.prunable(&cutoff.to_string())?;
    let snapshots: Vec<&str> = runs.iter().filter_map(|(_, p)| p.as_deref()).collect();
    if !dry_run {
        snapshots.iter().for_each(|p| remove(Path::new(p)));
        let ids: Vec<i64> = runs.iter().map(|(id, _)| *id).collect();
        ledger.forget(&ids)?;
    }
    // In a dry run the forgotten runs' snapshots are still referenced, so they are not counted twice.
    let referenced = ledger.referenced_spools()?;
    let orphans = orphan_snapshots(&state.dir.join(SPOOL_DIR), &referenced, cutoff);
    if !dry_run {
        orphans.iter().for_each(|p| remove(p));
    }
    pruned.runs = runs.len();
    pruned.snapshots = snapshots.len() + orphans.len();
    Ok(pruned)
}

/// Snapshot files older than `cutoff` that no run refers to (left by a crash, say), and change-report
/// scratch files (`.known-*`) a crashed run left.
fn orphan_snapshots(dir: &Path, referenced: &[String], cutoff: jiff::Timestamp) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let cutoff = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(cutoff.as_second()).unwrap_or(0));
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let scratch = p.file_name().is_some_and(|n| {
                let name = n.to_string_lossy();
                name.starts_with(crate::changes::baseline::SCRATCH_PREFIX)
            });
            scratch || p.extension().is_some_and(|e| e == "ndjson")
        })
        .filter(|p| !referenced.iter().any(|r| Path::new(r) == p))
        .filter(|p| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified < cutoff)
        })
        .collect()
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), "cannot remove an old snapshot: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::sqlite::SqliteLedger;
    use crate::ledger::{Finish, Ledger, NewRun};
    use crate::state::State;

    fn run(
        ledger: &dyn Ledger,
        store: &str,
        started: &str,
        state: &str,
        spool: Option<&Path>,
    ) -> i64 {
        let id = ledger
            .start(&NewRun {
                store,
                store_id: store,
                destination: crate::ledger::RIDER_REWARDS,
                feed: "customers",
                input: "x.csv",
                started_at: started,
            })
            .unwrap();
        if let Some(spool) = spool {
            std::fs::write(spool, b"{}\n").unwrap();
            ledger.snapshot(id, 1, "h", "h", spool).unwrap();
        }
        if state != crate::ledger::RUNNING {
            ledger
                .finish(
                    id,
                    &Finish {
                        state,
                        exit_code: 0,
                        error: None,
                        finished_at: started,
                        duration: Duration::ZERO,
                        warnings: 0,
                        rows: None,
                    },
                )
                .unwrap();
        }
        id
    }

    #[test]
    fn old_runs_go_but_never_the_newest_nor_the_last_success_of_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = SqliteLedger::open(dir.path()).unwrap();
        let spools = dir.path().join(SPOOL_DIR);
        std::fs::create_dir_all(&spools).unwrap();
        let old_spool = spools.join("run-1.ndjson");
        let t = |day: u32| format!("2026-01-{day:02}T00:00:00Z");
        run(&ledger, "a", &t(1), "failed", Some(&old_spool));
        let a_success = run(&ledger, "a", &t(2), "succeeded", None);
        run(&ledger, "a", &t(3), "failed", None);
        let a_newest = run(&ledger, "a", &t(4), "interrupted", None);
        let b_only = run(&ledger, "b", &t(1), "failed", None);
        let now: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let year = Duration::from_secs(365 * 86_400);
        assert_eq!(
            prune(&State::local(dir.path().to_owned()), year, now, false)
                .unwrap()
                .runs,
            0
        );

        let month = Duration::from_secs(30 * 86_400);
        let planned = prune(&State::local(dir.path().to_owned()), month, now, true).unwrap();
        assert_eq!((planned.runs, planned.snapshots), (2, 1));
        assert!(old_spool.exists(), "a dry run removes nothing");
        let done = prune(&State::local(dir.path().to_owned()), month, now, false).unwrap();
        assert_eq!((done.runs, done.snapshots), (2, 1));
        assert!(!old_spool.exists());
        let kept: Vec<i64> = ledger
            .history(None, None, 10)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(kept, [b_only, a_newest, a_success]);
    }

    #[test]
    fn scratch_files_a_crashed_comparison_left_go_once_old() {
        let dir = tempfile::tempdir().unwrap();
        SqliteLedger::open(dir.path()).unwrap();
        let spools = dir.path().join(SPOOL_DIR);
        std::fs::create_dir_all(&spools).unwrap();
        let (old, fresh) = (spools.join(".known-old"), spools.join(".known-fresh"));
        let january = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        std::fs::File::create(&old)
            .unwrap()
            .set_modified(january)
            .unwrap();
        std::fs::File::create(&fresh).unwrap();
        let now = jiff::Timestamp::now();
        let month = Duration::from_secs(30 * 86_400);
        let done = prune(&State::local(dir.path().to_owned()), month, now, false).unwrap();
        assert_eq!(done.snapshots, 1);
        assert!(!old.exists() && fresh.exists());
    }

    #[test]
    fn a_state_directory_without_a_ledger_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let pruned = prune(
            &State::local(dir.path().to_owned()),
            Duration::ZERO,
            jiff::Timestamp::now(),
            false,
        )
        .unwrap();
        assert_eq!(pruned.runs, 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
