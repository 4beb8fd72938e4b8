//! `rrfeed crm sync`: read the export as the store does, sync it (crm/sync.rs), print the summary, and
//! tell monitoring: the run goes to the ledger (destination `crm`), its pings and the metrics file.

use std::fmt::Write as _;
use std::time::Instant;

use crate::cli::{CrmSyncArgs, GlobalArgs};
use crate::config::{Config, ConfigError, CrmSettings};
use crate::crm::client::CrmClient;
use crate::crm::sync::{SyncError, SyncOptions, SyncSummary};
use crate::customer::{Customer, Normalizer};
use crate::error::Exit;
use crate::ingest::{self, IngestError, IngestOptions, RowSink};
use crate::ledger::{CRM, Finish, NewRun};
use crate::monitor::{metrics, settings::Monitoring};
use crate::source::Location;
use crate::summary::RunState;
use crate::warnings::Issue;

use super::{Context, fail_call, open_links, print_result, scope, state_of};
use crate::crm::sync as crm_sync;

/// How a sync ended, for the ledger and the end ping.
struct Outcome {
    exit: Exit,
    rows: Option<u64>,
    warnings: u64,
    error: Option<String>,
    /// The printed summary, when the sync ran.
    summary: Option<String>,
    /// What changed since the last sync, when it ran.
    changes: Option<crate::changes::ChangeCounts>,
}

impl Outcome {
    /// A sync that failed with `error`, logged.
    fn failed(exit: Exit, error: String) -> Self {
        tracing::error!("rrfeed crm sync: {error}");
        Self {
            exit,
            error: Some(error),
            ..Self::failed_quietly()
        }
    }

    /// A failure already logged.
    fn failed_quietly() -> Self {
        Self {
            exit: Exit::Internal,
            rows: None,
            warnings: 0,
            error: None,
            summary: None,
            changes: None,
        }
    }
}

/// `crm sync`, with its pings around it and its run recorded (not for a dry run). `stopped` says which
/// signal's exit code replaces the sync's, once it returns.
pub(super) async fn monitored(
    args: &CrmSyncArgs,
    global: &GlobalArgs,
    ctx: &Context,
    crm: (&CrmClient, &CrmSettings, &Config),
    stop: crate::signal::Stop,
) -> Exit {
    let (client, settings, config) = crm;
    let started = Instant::now();
    let started_at = (ctx.now)().to_string();
    let store = args.store.as_deref().unwrap_or("-");
    let ca_cert = global.ca_cert.clone().or(config.file.ca_cert.clone());
    let monitoring = match args.dry_run {
        true => Monitoring::default(),
        false => Monitoring::new(config, &ctx.env, &[store], !args.no_ping, ca_cert),
    };
    let ping = monitoring.store(store, true);
    if let Some(ping) = &ping {
        ping.start().await;
    }
    let state = match state_of(config, global, ctx) {
        Ok(state) => state,
        Err(e) => {
            tracing::error!("rrfeed crm sync: {e}");
            return Exit::Config;
        }
    };
    let mut outcome = sync_command(args, &state, ctx, client, settings, config, stop.clone()).await;
    if let Some(signal) = stop.requested() {
        outcome.exit = Exit::from_code(signal.exit_code());
        outcome.error = Some(format!("stopped by {}", signal.name()));
    }
    if args.dry_run {
        return outcome.exit;
    }
    let store_id = config
        .store_named(store)
        .map_or_else(|_| store.to_owned(), |s| s.store_id);
    let run = NewRun {
        store,
        store_id: &store_id,
        destination: CRM,
        feed: CRM,
        input: &args.file.display().to_string(),
        started_at: &started_at,
    };
    if let Err(e) = record(&state, &run, &outcome, started, ctx) {
        tracing::warn!("cannot record the sync in the run ledger: {e}");
    }
    if let Some(ping) = &ping {
        ping.finish(outcome.exit.code(), &ping_body(&run, &outcome))
            .await;
    }
    if let Some(path) = &monitoring.metrics_file {
        metrics::refresh(path, &state);
    }
    outcome.exit
}

fn record(
    state: &crate::state::State,
    run: &NewRun,
    outcome: &Outcome,
    started: Instant,
    ctx: &Context,
) -> Result<(), crate::ledger::LedgerError> {
    let ledger = crate::ledger::open(state)?;
    let id = ledger.start(run)?;
    if let Some(changes) = &outcome.changes {
        ledger.changes(id, changes)?;
    }
    ledger.finish(
        id,
        &Finish {
            state: RunState::from_exit(outcome.exit).as_str(),
            exit_code: outcome.exit.code(),
            error: outcome.error.as_deref(),
            finished_at: &(ctx.now)().to_string(),
            duration: started.elapsed(),
            warnings: outcome.warnings,
            rows: outcome.rows,
        },
    )
}

/// The end ping's text: what was synced, how it ended, the summary or the error.
fn ping_body(run: &NewRun, outcome: &Outcome) -> String {
    let mut body = format!(
        "CRM.COM sync of {} for store {}: {} (exit {})\n",
        run.input,
        run.store,
        RunState::from_exit(outcome.exit).word(),
        outcome.exit.code()
    );
    if let Some(summary) = &outcome.summary {
        body.push_str(summary);
    }
    if let Some(error) = &outcome.error {
        let _ = writeln!(body, "  error: {error}");
    }
    body
}

/// Keeps every row of the export, and the lines of repeated ids, for the sync.
#[derive(Default)]
struct Rows {
    rows: Vec<(Customer, Location)>,
    repeats: Vec<u64>,
}

impl RowSink for Rows {
    fn accept(&mut self, customer: &Customer, at: Location, _: &[Issue]) -> std::io::Result<()> {
        self.rows.push((customer.clone(), at));
        Ok(())
    }

    fn repeated_id(&mut self, line: u64, _first_line: u64, _id: &str) -> std::io::Result<()> {
        self.repeats.push(line);
        Ok(())
    }
}

async fn sync_command(
    args: &CrmSyncArgs,
    state: &crate::state::State,
    ctx: &Context,
    client: &CrmClient,
    settings: &CrmSettings,
    config: &Config,
    stop: crate::signal::Stop,
) -> Outcome {
    let export = match read_export(args, ctx, settings, config) {
        Ok(export) => export,
        Err((exit, e)) => return Outcome::failed(exit, e),
    };
    let scope = scope(settings, args.store.as_deref());
    let prepared = open_links(config, state, scope, args.adopt_links)
        .and_then(|links| Ok((links, config.guards().map_err(|e| e.to_string())?)));
    let (links, guards) = match prepared {
        Ok(p) => p,
        Err(e) => return Outcome::failed(Exit::Config, e),
    };
    let options = SyncOptions {
        dry_run: args.dry_run,
        jobs: usize::from(args.jobs),
        max_rps: args.max_rps,
        terminate_missing: args.terminate_missing,
        force: args.force,
        shrink_ratio: guards.shrink_ratio,
        stop,
    };
    let repeated = export.repeated;
    match crm_sync::sync(client, links, settings, export.rows, &options, (ctx.now)()).await {
        Ok(mut summary) => {
            summary.repeated = repeated;
            let mut warnings = export.warnings;
            warnings.append(&mut summary.warnings);
            summary.warnings = warnings;
            if !summary.warnings.is_empty() {
                crate::output::warned();
            }
            if let Some(path) = &args.rejects
                && let Err(e) = write_rejects(path, &summary)
            {
                tracing::error!("rrfeed crm sync: cannot write {}: {e}", path.display());
            }
            let text = render(&summary);
            print_result(args.json, &summary, || text.clone());
            let complete = summary.complete();
            Outcome {
                exit: if complete {
                    Exit::Success
                } else {
                    Exit::Partial
                },
                rows: Some(summary.rows),
                changes: Some(summary.changes),
                warnings: summary.warnings.iter().map(|w| w.count).sum(),
                error: (!complete).then(|| {
                    format!(
                        "{} row(s) failed and {} need attention",
                        summary.failed, summary.needs_attention
                    )
                }),
                summary: Some(text),
            }
        }
        Err(SyncError::Login(e)) => Outcome {
            exit: fail_call("sync", &e),
            error: Some(e.to_string()),
            ..Outcome::failed_quietly()
        },
        Err(e @ SyncError::Shrink { .. }) => Outcome::failed(Exit::DataErr, e.to_string()),
        Err(e @ SyncError::Links(_)) => Outcome::failed(Exit::Config, e.to_string()),
    }
}

/// The export's rows for a sync: the first row of each PartnerCustomerID (repeats are counted
/// warnings, refused with `--strict`), so that two rows of one customer are never in flight at once.
struct Export {
    rows: Vec<(Customer, Location)>,
    repeated: u64,
    warnings: Vec<crate::warnings::WarningSummary>,
}

fn read_export(
    args: &CrmSyncArgs,
    ctx: &Context,
    settings: &CrmSettings,
    config: &Config,
) -> Result<Export, (Exit, String)> {
    let mut spec = match &args.store {
        Some(name) => {
            let store = config
                .store_named(name)
                .map_err(|e: ConfigError| (Exit::Config, e.to_string()))?;
            crate::cmd::store_input_spec(&args.file, &args.input, &store)
        }
        None => crate::cmd::input_spec(&args.file, &args.input),
    };
    if let Some(column) = &settings.accounts_receivable_column {
        spec.rules = spec.rules.clone().with_accounts_receivable(column);
    }
    let options = IngestOptions {
        strict: args.strict,
        normalizer: Normalizer::with_rules(ctx.today, std::sync::Arc::new(spec.rules.clone())),
    };
    let mut rows = Rows::default();
    let ingested = match ingest::ingest(&spec, options, &mut rows) {
        Ok(ingested) => ingested,
        Err(IngestError::Input(e)) => return Err((Exit::DataErr, e.to_string())),
        Err(e @ (IngestError::Storage { .. } | IngestError::Compare(_))) => {
            return Err((Exit::Config, e.to_string()));
        }
    };
    let repeats: std::collections::HashSet<u64> = rows.repeats.into_iter().collect();
    let kept: Vec<(Customer, Location)> = rows
        .rows
        .into_iter()
        .filter(|(_, at)| !repeats.contains(&at.line))
        .collect();
    Ok(Export {
        rows: kept,
        repeated: repeats.len() as u64,
        warnings: ingested.warnings.summaries(),
    })
}

fn render(s: &SyncSummary) -> String {
    let mut out = String::new();
    let plan = if s.dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    let _ = writeln!(out, "CRM.COM sync of {} row(s){plan}", s.rows);
    for (label, n) in [
        ("created", s.created),
        ("updated", s.updated),
        ("unchanged", s.unchanged),
        ("absent", s.changes.removed),
        ("terminated", s.terminated),
        ("failed", s.failed),
        ("needs attention", s.needs_attention),
    ] {
        let _ = writeln!(out, "  {label:<16} {n}");
    }
    if s.repeated > 0 {
        let _ = writeln!(
            out,
            "  {:<16} {} (a PartnerCustomerID seen on an earlier line; the first row wins)",
            "skipped repeats", s.repeated
        );
    }
    for w in &s.warnings {
        let _ = writeln!(
            out,
            "  warning {}: {} (e.g. {})",
            w.code.as_str(),
            w.count,
            w.example
        );
    }
    for p in &s.problems {
        let place = p
            .line
            .map_or_else(|| "not in the export".to_owned(), |l| format!("line {l}"));
        let _ = writeln!(
            out,
            "  {place}: {} {:?}: {}",
            p.partner_customer_id, p.outcome, p.reason
        );
    }
    out
}

fn write_rejects(path: &std::path::Path, summary: &SyncSummary) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_path(path)?;
    csv.write_record(["line", "PartnerCustomerID", "outcome", "reason"])?;
    for p in &summary.problems {
        let outcome = serde_json::to_value(p.outcome).ok();
        let outcome = outcome
            .as_ref()
            .and_then(|v| v.as_str())
            .unwrap_or("failed");
        let line = p
            .line
            .map_or_else(|| "not in the export".to_owned(), |l| l.to_string());
        csv.write_record([line.as_str(), &p.partner_customer_id, outcome, &p.reason])?;
    }
    csv.flush()
}
