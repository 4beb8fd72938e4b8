//! `rrfeed history`: past runs from the ledger, newest first, as a table or a JSON array.

use crate::cli::{GlobalArgs, HistoryArgs};
use crate::config::{Config, Overrides};
use crate::error::{Exit, RunError};
use crate::ledger::{self, RunRecord};
use crate::summary::table;

use super::{Context, print_result};

pub fn run(args: &HistoryArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    match runs(args, global, ctx) {
        Ok(runs) => {
            print_result(args.json, &runs, || render(&runs));
            Exit::Success
        }
        Err(e) => {
            tracing::error!("rrfeed history: {e}");
            e.exit()
        }
    }
}

fn runs(
    args: &HistoryArgs,
    global: &GlobalArgs,
    ctx: &Context,
) -> Result<Vec<RunRecord>, RunError> {
    let config = Config::load(global.config.as_deref())?;
    let overrides = Overrides {
        state_dir: global.state_dir.clone(),
        ..Overrides::default()
    };
    // A query never creates a ledger.
    let ledger = ledger::open_existing(&config.state(&overrides, &ctx.env)?)?;
    if let Some(store) = &args.store {
        let configured = config
            .file
            .stores
            .iter()
            .any(|s| &s.name == store || &s.store_id == store);
        let recorded = match &ledger {
            Some(ledger) => ledger.knows_store(store)?,
            None => false,
        };
        if !configured && !recorded {
            return Err(RunError::NotFound(format!(
                "no store {store:?} is configured or has runs recorded; configured: {}",
                list(&config.store_names())
            )));
        }
    }
    let Some(ledger) = ledger else {
        return Ok(Vec::new());
    };
    let state = args.state.map(|s| s.as_str());
    Ok(ledger.history(args.store.as_deref(), state, args.limit)?)
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn render(runs: &[RunRecord]) -> String {
    if runs.is_empty() {
        return "no runs recorded yet\n".into();
    }
    let header = [
        "RUN",
        "STARTED",
        "STORE",
        "STATE",
        "EXIT",
        "ROWS",
        "CONFIRMED",
        "CHANGES",
        "TRANSACTION",
        "SECONDS",
    ];
    let rows: Vec<[String; 10]> = runs
        .iter()
        .map(|r| {
            let n = |v: Option<u64>| v.map_or_else(|| "-".into(), |n| n.to_string());
            [
                r.id.to_string(),
                r.started_at.chars().take(19).collect(),
                r.store.clone(),
                r.state.clone(),
                r.exit_code.map_or_else(|| "-".into(), |c| c.to_string()),
                n(r.rows),
                n(r.confirmed),
                r.changes.map_or_else(|| "-".into(), |c| c.short()),
                r.transactionid.clone().unwrap_or_else(|| "-".into()),
                r.duration_ms
                    .map_or_else(|| "-".into(), |d| format!("{:.1}", d as f64 / 1000.0)),
            ]
        })
        .collect();
    let mut out = table(&header, &rows);
    if runs.iter().any(|r| r.changes.is_some()) {
        out.push_str("changes since the last success: +added -removed ~changed =unchanged\n");
    }
    for r in runs
        .iter()
        .filter(|r| r.error.is_some() || !r.abandoned_transactions.is_empty())
    {
        if let Some(error) = &r.error {
            out.push_str(&format!("run {}: {error}\n", r.id));
        }
        if !r.abandoned_transactions.is_empty() {
            out.push_str(&format!(
                "run {}: abandoned {}\n",
                r.id,
                r.abandoned_transactions.join(", ")
            ));
        }
    }
    out
}
