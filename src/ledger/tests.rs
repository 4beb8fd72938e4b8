//! The ledger's behaviour, the same tests for every backend: SQLite always, PostgreSQL when a server
//! can be started (see `crate::state::testing`).

use std::path::Path;
use std::time::Duration;

use super::*;

fn start(ledger: &dyn Ledger, store_id: &str, started_at: &str) -> i64 {
    ledger
        .start(&NewRun {
            store: store_id,
            store_id,
            destination: RIDER_REWARDS,
            feed: "C",
            input: "/x.csv",
            started_at,
        })
        .unwrap()
}

fn finish(ledger: &dyn Ledger, id: i64, state: &str, exit_code: u8) {
    ledger
        .finish(
            id,
            &Finish {
                state,
                exit_code,
                error: (exit_code != 0).then_some("it failed"),
                finished_at: "2026-11-22T01:01:00Z",
                duration: Duration::from_millis(1500),
                warnings: 7,
                rows: None,
            },
        )
        .unwrap();
}

pub(crate) fn records_a_run_from_start_to_finish(ledger: &dyn Ledger) {
    let id = start(ledger, "1", "2026-11-22T01:00:00Z");
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
    finish(ledger, id, "succeeded", 0);
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
    assert_eq!((r.duration_ms, r.warnings), (Some(1500), Some(7)));
    assert_eq!(r.snapshot_blake3.as_deref(), Some("snap-hash"));
    assert_eq!(r.spool_path.as_deref(), Some("/s/run.ndjson"));
    assert_eq!(
        (r.exit_code, r.destination.as_str()),
        (Some(0), RIDER_REWARDS)
    );
    assert_eq!(r.pid, Some(std::process::id()));
}

pub(crate) fn history_is_newest_first_and_filters(ledger: &dyn Ledger) {
    let a = start(ledger, "1", "2026-11-22T01:00:00Z");
    finish(ledger, a, "succeeded", 0);
    let b = start(ledger, "2", "2026-11-22T01:00:00Z");
    finish(ledger, b, "failed", 69);
    let all = ledger.history(None, None, 10).unwrap();
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [b, a]);
    assert_eq!(ledger.history(Some("2"), None, 10).unwrap().len(), 1);
    assert_eq!(ledger.history(None, None, 1).unwrap().len(), 1);
    assert_eq!(ledger.history(None, Some("failed"), 10).unwrap()[0].id, b);
    assert_eq!(ledger.history(None, Some("nosuch"), 10).unwrap().len(), 0);
    assert!(ledger.knows_store("2").unwrap() && !ledger.knows_store("9").unwrap());
    assert_eq!(ledger.last_success("2").unwrap(), None);
}

pub(crate) fn runs_left_running_are_marked_interrupted(ledger: &dyn Ledger) {
    let dead = start(ledger, "1", "2026-11-22T01:00:00Z");
    let live = start(ledger, "1", "2026-11-22T01:00:00Z");
    assert_eq!(ledger.mark_crashed("1", live, "now").unwrap(), 1);
    let r = ledger.last_run("1", live).unwrap().unwrap();
    assert_eq!((r.id, r.state.as_str()), (dead, "interrupted"));
}

pub(crate) fn resume_looks_past_configuration_failures_and_crm_syncs(ledger: &dyn Ledger) {
    let interrupted = start(ledger, "1", "2026-11-22T01:00:00Z");
    finish(ledger, interrupted, "interrupted", 143);
    let refused = start(ledger, "1", "2026-11-22T02:00:00Z");
    finish(ledger, refused, "failed", 78);
    let crm = ledger
        .start(&NewRun {
            store: "1",
            store_id: "1",
            destination: CRM,
            feed: CRM,
            input: "x.csv",
            started_at: "2026-11-22T03:00:00Z",
        })
        .unwrap();
    finish(ledger, crm, "succeeded", 0);
    let now = start(ledger, "1", "2026-11-22T04:00:00Z");
    assert_eq!(ledger.last_run("1", now).unwrap().unwrap().id, interrupted);
    assert_eq!(
        ledger.last_success("1").unwrap(),
        None,
        "a CRM.COM sync is no upload"
    );
}

pub(crate) fn the_overview_has_each_stores_latest_run_success_and_counts(ledger: &dyn Ledger) {
    let a1 = start(ledger, "a", "2026-11-20T01:00:00Z");
    finish(ledger, a1, "succeeded", 0);
    let a2 = start(ledger, "a", "2026-11-21T01:00:00Z");
    finish(ledger, a2, "failed", 69);
    let b1 = start(ledger, "b", "2026-11-21T01:00:00Z");
    finish(ledger, b1, "succeeded", 0);
    start(ledger, "b", "2026-11-22T01:00:00Z"); // still running: not in the overview
    let overview = ledger.overview().unwrap();
    type Seen<'a> = (&'a str, i64, Option<i64>, &'a [(String, u64)]);
    let got: Vec<Seen> = overview
        .iter()
        .map(|o| {
            (
                o.last.store.as_str(),
                o.last.id,
                o.last_success.as_ref().map(|s| s.id),
                o.runs_by_state.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "a",
                a2,
                Some(a1),
                &[("failed".to_owned(), 1), ("succeeded".to_owned(), 1)][..]
            ),
            ("b", b1, Some(b1), &[("succeeded".to_owned(), 1)][..]),
        ]
    );
}

pub(crate) fn old_runs_are_pruned_but_not_the_newest_or_last_success(ledger: &dyn Ledger) {
    let old_success = start(ledger, "1", "2026-01-01T00:00:00Z");
    finish(ledger, old_success, "succeeded", 0);
    let old_failure = start(ledger, "1", "2026-01-02T00:00:00Z");
    ledger
        .snapshot(old_failure, 1, "h", "h", Path::new("/s/old.ndjson"))
        .unwrap();
    finish(ledger, old_failure, "failed", 69);
    let newest = start(ledger, "1", "2026-01-03T00:00:00Z");
    finish(ledger, newest, "failed", 69);
    let prunable = ledger.prunable("2026-06-01T00:00:00Z").unwrap();
    assert_eq!(prunable, [(old_failure, Some("/s/old.ndjson".to_owned()))]);
    assert_eq!(ledger.referenced_spools().unwrap(), ["/s/old.ndjson"]);
    assert_eq!(
        ledger.kept_spools("1", newest).unwrap(),
        [(old_failure, "/s/old.ndjson".to_owned())]
    );
    ledger.spool_removed(old_failure).unwrap();
    assert!(ledger.referenced_spools().unwrap().is_empty());
    ledger.forget(&[old_failure]).unwrap();
    assert_eq!(ledger.history(None, None, 10).unwrap().len(), 2);
    ledger.resumed(newest, old_success).unwrap();
    assert_eq!(
        ledger.history(None, None, 1).unwrap()[0].resumed_from,
        Some(old_success)
    );
}

pub(crate) fn imported_runs_keep_every_field_and_their_links(ledger: &dyn Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let source = super::sqlite::SqliteLedger::open(dir.path()).unwrap();
    let first = start(&source, "1", "2026-11-20T01:00:00Z");
    source
        .progress(
            first,
            &Checkpoint {
                transactionid: Some("T1"),
                partnertransactionid: Some("P1"),
                abandoned: &["T0".to_owned()],
                chunks: 2,
                confirmed: 2000,
                ended: false,
            },
            "2026-11-20T01:00:01Z",
        )
        .unwrap();
    finish(&source, first, "interrupted", 143);
    let second = start(&source, "1", "2026-11-20T02:00:00Z");
    source.resumed(second, first).unwrap();
    let counts = ChangeCounts {
        added: 1,
        removed: 2,
        changed: 3,
        unchanged: 4,
    };
    source.changes(second, &counts).unwrap();
    finish(&source, second, "succeeded", 0);
    let mut runs = source.history(None, None, usize::MAX).unwrap();
    runs.reverse();
    let mut ids = std::collections::HashMap::new();
    for run in &runs {
        let from = run.resumed_from.and_then(|old| ids.get(&old).copied());
        ids.insert(run.id, ledger.import(run, from).unwrap());
    }
    let imported = ledger.history(None, None, 10).unwrap();
    assert_eq!(imported.len(), 2);
    let (new_second, new_first) = (&imported[0], &imported[1]);
    assert_eq!(new_second.resumed_from, Some(new_first.id));
    assert_eq!(
        (new_second.changes, new_first.changes),
        (Some(counts), None)
    );
    let same = |a: &RunRecord, b: &RunRecord| {
        RunRecord {
            id: b.id,
            resumed_from: b.resumed_from,
            ..a.clone()
        } == *b
    };
    assert!(same(&runs[0], new_first), "{:?}\n{new_first:?}", runs[0]);
    assert!(same(&runs[1], new_second));
}

/// One `#[test]` per behaviour and backend.
macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let ledger = super::super::sqlite::SqliteLedger::open(dir.path()).unwrap();
                    super::$name(&ledger);
                }
            )*
        }
        mod on_postgres {
            $(
                #[test]
                fn $name() {
                    let Some(target) = crate::state::testing::fresh_database(stringify!($name)) else {
                        return;
                    };
                    let ledger = super::super::postgres::PgLedger::open(&target).unwrap();
                    super::$name(&ledger);
                }
            )*
        }
    };
}

backends!(
    records_a_run_from_start_to_finish,
    history_is_newest_first_and_filters,
    runs_left_running_are_marked_interrupted,
    resume_looks_past_configuration_failures_and_crm_syncs,
    the_overview_has_each_stores_latest_run_success_and_counts,
    old_runs_are_pruned_but_not_the_newest_or_last_success,
    imported_runs_keep_every_field_and_their_links,
);
