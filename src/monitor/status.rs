//! The verdict of `rrfeed status`: is every store's last run a success, and is its last success recent?

use serde::Serialize;

use super::epoch_seconds;
use crate::ledger::StoreOverview;

/// One store's standing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoreStatus {
    pub store: String,
    pub destination: String,
    /// When the latest run ended (RFC 3339); `None` when it never ran.
    pub last_run_at: Option<String>,
    pub last_state: Option<String>,
    pub last_exit_code: Option<u8>,
    pub rows: Option<u64>,
    pub last_success_at: Option<String>,
    /// Seconds since the latest success ended.
    pub success_age_seconds: Option<u64>,
    pub ok: bool,
    /// Why it is not ok.
    pub problem: Option<String>,
}

/// The standing of the configured stores (`configured`: name and destination, in config order) and of
/// every other store the ledger knows, at `now` (seconds since the epoch).
pub fn assess(
    configured: &[(String, String)],
    known: &[StoreOverview],
    now: f64,
    max_age: std::time::Duration,
) -> Vec<StoreStatus> {
    let mut names: Vec<(String, String)> = configured.to_vec();
    for store in known {
        if !names.iter().any(|(n, _)| *n == store.last.store) {
            names.push((store.last.store.clone(), store.last.destination.clone()));
        }
    }
    names
        .into_iter()
        .map(|(name, destination)| {
            let overview = known.iter().find(|s| s.last.store == name);
            judge(name, destination, overview, now, max_age)
        })
        .collect()
}

fn judge(
    store: String,
    destination: String,
    overview: Option<&StoreOverview>,
    now: f64,
    max_age: std::time::Duration,
) -> StoreStatus {
    let Some(overview) = overview else {
        return StoreStatus {
            store,
            destination,
            last_run_at: None,
            last_state: None,
            last_exit_code: None,
            rows: None,
            last_success_at: None,
            success_age_seconds: None,
            ok: false,
            problem: Some("never ran".into()),
        };
    };
    let last = &overview.last;
    let ended =
        |r: &crate::ledger::RunRecord| r.finished_at.clone().unwrap_or(r.started_at.clone());
    let last_success_at = overview.last_success.as_ref().map(ended);
    let success_age_seconds = last_success_at
        .as_deref()
        .and_then(epoch_seconds)
        .map(|at| (now - at).max(0.0) as u64);
    let problem = if last.exit_code != Some(0) {
        Some(format!(
            "its last run {} (exit {})",
            last.state,
            last.exit_code.map_or_else(|| "-".into(), |c| c.to_string())
        ))
    } else {
        match success_age_seconds {
            None => Some("never succeeded".into()),
            Some(age) if age > max_age.as_secs() => Some(format!(
                "its last success is {} old, more than {}",
                age_text(age),
                age_text(max_age.as_secs())
            )),
            Some(_) => None,
        }
    };
    StoreStatus {
        store,
        destination: if overview.last.destination.is_empty() {
            destination
        } else {
            last.destination.clone()
        },
        last_run_at: Some(ended(last)),
        last_state: Some(last.state.clone()),
        last_exit_code: last.exit_code,
        rows: last.rows,
        last_success_at,
        success_age_seconds,
        ok: problem.is_none(),
        problem,
    }
}

/// An age in whole hours and minutes ("30h 5m").
pub fn age_text(seconds: u64) -> String {
    let (hours, minutes) = (seconds / 3600, seconds % 3600 / 60);
    if hours > 0 && minutes == 0 {
        format!("{hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else {
        format!("{minutes}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RunRecord;
    use std::time::Duration;

    fn run(store: &str, state: &str, exit: u8, finished: &str) -> RunRecord {
        RunRecord {
            id: 1,
            store: store.into(),
            store_id: store.into(),
            feed: "customers".into(),
            input: "x.csv".into(),
            input_blake3: None,
            snapshot_blake3: None,
            spool_path: None,
            rows: Some(10),
            chunks: None,
            confirmed: None,
            transactionid: None,
            partnertransactionid: None,
            ended_transactionid: None,
            abandoned_transactions: Vec::new(),
            state: state.into(),
            exit_code: Some(exit),
            error: None,
            pid: None,
            started_at: finished.into(),
            begun_at: None,
            finished_at: Some(finished.into()),
            duration_ms: Some(1000),
            resumed_from: None,
            warnings: Some(0),
            destination: "riderrewards".into(),
            changes: None,
        }
    }

    fn overview(last: RunRecord, success: Option<RunRecord>) -> StoreOverview {
        StoreOverview {
            last,
            last_success: success,
            runs_by_state: Vec::new(),
        }
    }

    #[test]
    fn fresh_stale_failed_and_never_run_stores() {
        let now = epoch_seconds("2026-12-02T12:00:00Z").unwrap();
        let fresh = run("fresh", "succeeded", 0, "2026-12-02T02:00:00Z");
        let stale = run("stale", "succeeded", 0, "2026-11-30T02:00:00Z");
        let failed = run("failed", "failed", 69, "2026-12-02T02:00:00Z");
        let known = [
            overview(fresh.clone(), Some(fresh)),
            overview(stale.clone(), Some(stale)),
            overview(failed, None),
        ];
        let configured = [("never".to_string(), "riderrewards".to_string())];
        let verdicts = assess(&configured, &known, now, Duration::from_secs(26 * 3600));
        let got: Vec<(&str, bool, Option<&str>)> = verdicts
            .iter()
            .map(|s| (s.store.as_str(), s.ok, s.problem.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("never", false, Some("never ran")),
                ("fresh", true, None),
                (
                    "stale",
                    false,
                    Some("its last success is 58h old, more than 26h")
                ),
                ("failed", false, Some("its last run failed (exit 69)")),
            ]
        );
        assert_eq!(verdicts[1].success_age_seconds, Some(10 * 3600));
    }
}
