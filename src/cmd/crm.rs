//! `rrfeed crm sync|link|show|terminate|spend-blocking|awarded` (SPEC §8). Every command that logs in
//! releases its token at the end, also when it fails or is interrupted.

use std::fmt::Write as _;

use crate::cli::{CrmCommand, CrmLinkArgs, CrmSyncArgs, GlobalArgs};
use crate::config::{Config, ConfigError, CrmSettings, Overrides};
use crate::crm::client::{CrmClient, CrmError};
use crate::crm::links::Links;
use crate::crm::sync::{self, SyncError, SyncOptions, SyncSummary};
use crate::crm::wire::{CalculateAwarded, Identifier, Participant, Terminate};
use crate::customer::{Customer, Normalizer};
use crate::error::Exit;
use crate::ingest::{self, IngestError, IngestOptions, RowSink};
use crate::source::Location;
use crate::warnings::Issue;

use super::{Context, print_result};

pub async fn run(command: &CrmCommand, global: &GlobalArgs, ctx: &Context) -> Exit {
    if let CrmCommand::Link(args) = command {
        return link(args, global, ctx);
    }
    let (config, settings, client) = match setup(global, ctx) {
        Ok(setup) => setup,
        Err(e) => {
            tracing::error!("rrfeed crm: {e}");
            return Exit::Config;
        }
    };
    // A first signal lets the call in flight finish (a create cut off would have an unknown outcome),
    // then the token is released; a second one exits at once.
    let stop = crate::signal::listen(
        "stopping after the calls in flight; the next sync carries on where this one stopped",
    );
    let work = async {
        match command {
            CrmCommand::Link(_) => unreachable!("handled above"),
            CrmCommand::Sync(args) => {
                sync_command(args, global, ctx, &client, &settings, &config, stop.clone()).await
            }
            CrmCommand::Show(args) => {
                let shown = client.show(&Identifier::number(&args.number)).await;
                participant_answer("show", args.json, shown)
            }
            CrmCommand::Terminate(args) => {
                let request = Terminate {
                    token: String::new(),
                    rewards_participant_identifier: Identifier::number(&args.number),
                    termination_reason: args.reason,
                    replaced_by_rewards_participant_identifier: args
                        .replaced_by
                        .as_ref()
                        .map(Identifier::number),
                };
                participant_answer("terminate", args.json, client.terminate(&request).await)
            }
            CrmCommand::SpendBlocking(args) => {
                let enable = args.action == "enable";
                let done = client
                    .spend_blocking(&Identifier::number(&args.number), enable)
                    .await;
                participant_answer("spend-blocking", args.json, done)
            }
            CrmCommand::Awarded(args) => {
                let request = CalculateAwarded {
                    token: String::new(),
                    rewards_participant_identifier: Identifier::number(&args.number),
                    from_date: args.from.map(|d| d.to_string()),
                    to_date: args.to.map(|d| d.to_string()),
                };
                match client.awarded(&request).await {
                    Ok(awarded) => {
                        print_result(args.json, &awarded, || awarded_table(&awarded));
                        Exit::Success
                    }
                    Err(e) => fail_call("awarded", &e),
                }
            }
        }
    };
    let exit = work.await;
    if let Err(e) = client.release().await {
        tracing::warn!("could not release the CRM.COM token: {e}");
    }
    match stop.requested() {
        Some(signal) => {
            tracing::error!("rrfeed crm: stopped by {}", signal.name());
            Exit::from_code(signal.exit_code())
        }
        None => exit,
    }
}

/// `[crm]` and a client for it.
fn setup(global: &GlobalArgs, ctx: &Context) -> Result<(Config, CrmSettings, CrmClient), String> {
    let config = Config::load(global.config.as_deref()).map_err(|e| e.to_string())?;
    let settings = config.crm(&ctx.env).map_err(|e| e.to_string())?;
    let ca_cert = global
        .ca_cert
        .clone()
        .or_else(|| config.file.ca_cert.clone());
    let client = CrmClient::new(
        &settings.base_url,
        settings.login.clone(),
        settings.timeout,
        ca_cert.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    Ok((config, settings, client))
}

fn awarded_table(awarded: &crate::crm::wire::AwardedAmounts) -> String {
    let mut out = String::new();
    for award in &awarded.reward_scheme_awards_set {
        let _ = writeln!(
            out,
            "{:<30} {:>12.2}",
            award.scheme.name, award.total_awarded_amount
        );
    }
    let currency = awarded.currency.as_ref().map_or("", |c| c.code.as_str());
    let _ = writeln!(
        out,
        "{:<30} {:>12.2} {currency}",
        "TOTAL", awarded.total_awarded_amount
    );
    out
}

/// The exit code of a failed call: 77 login refused, 69 no answer, 76 not CRM.COM's answer, 65 refused.
fn fail_call(command: &str, e: &CrmError) -> Exit {
    tracing::error!("rrfeed crm {command}: {e}");
    match e {
        CrmError::Login { .. } => Exit::Auth,
        CrmError::NoAnswer { .. } => Exit::Unavailable,
        CrmError::Wire { .. } => Exit::Protocol,
        CrmError::Refused { .. } => Exit::DataErr,
    }
}

fn participant_answer(command: &str, json: bool, answer: Result<Participant, CrmError>) -> Exit {
    match answer {
        Ok(p) => {
            print_result(json, &p, || describe(&p));
            Exit::Success
        }
        Err(e) => fail_call(command, &e),
    }
}

fn describe(p: &Participant) -> String {
    let mut out = String::new();
    let or_dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
    let _ = writeln!(out, "participant:          {}", p.number);
    let _ = writeln!(
        out,
        "state:                {}",
        or_dash(p.life_cycle_state.as_deref())
    );
    let _ = writeln!(
        out,
        "signed up:            {}",
        or_dash(p.sign_up_on.as_deref())
    );
    if let Some(account) = &p.accounts_receivable {
        let _ = writeln!(
            out,
            "accounts receivable:  {} ({})",
            or_dash(account.number.as_deref()),
            or_dash(account.name.as_deref())
        );
    }
    if let Some(blocking) = &p.spend_blocking_state {
        let _ = writeln!(
            out,
            "spend blocking:       {}",
            if blocking.enabled {
                "enabled"
            } else {
                "disabled"
            }
        );
    }
    for n in 1..=8 {
        if let Some(v) = p.udf_string(n) {
            let _ = writeln!(out, "udf_string_{n}:         {v}");
        }
    }
    out
}

fn link(args: &CrmLinkArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    let result = Config::load(global.config.as_deref())
        .map_err(|e| e.to_string())
        .and_then(|config| {
            let dir = config.state_dir(
                &Overrides {
                    state_dir: global.state_dir.clone(),
                    ..Overrides::default()
                },
                &ctx.env,
            );
            let links = Links::open(&dir).map_err(|e| e.to_string())?;
            let id = &args.partner_customer_id;
            match &args.number {
                Some(number) => links
                    .link(id, number, None, (ctx.now)())
                    .map(|()| format!("{id} is participant {number}\n"))
                    .map_err(|e| e.to_string()),
                None => links
                    .forget(id)
                    .map(|had| {
                        if had {
                            format!("{id} has no participant: the next sync creates one\n")
                        } else {
                            format!(
                                "{id} was not linked; the next sync looks it up or creates it\n"
                            )
                        }
                    })
                    .map_err(|e| e.to_string()),
            }
        });
    match result {
        Ok(text) => {
            crate::output::print(&text);
            Exit::Success
        }
        Err(e) => {
            tracing::error!("rrfeed crm link: {e}");
            Exit::Config
        }
    }
}

/// Keeps every row of the export, for the sync.
struct Rows(Vec<(Customer, Location)>);

impl RowSink for Rows {
    fn accept(&mut self, customer: &Customer, at: Location, _: &[Issue]) -> std::io::Result<()> {
        self.0.push((customer.clone(), at));
        Ok(())
    }
}

async fn sync_command(
    args: &CrmSyncArgs,
    global: &GlobalArgs,
    ctx: &Context,
    client: &CrmClient,
    settings: &CrmSettings,
    config: &Config,
    stop: crate::signal::Stop,
) -> Exit {
    let rows = match read_export(args, ctx, settings, config) {
        Ok(rows) => rows,
        Err((exit, e)) => {
            tracing::error!("rrfeed crm sync: {e}");
            return exit;
        }
    };
    let dir = config.state_dir(
        &Overrides {
            state_dir: global.state_dir.clone(),
            ..Overrides::default()
        },
        &ctx.env,
    );
    let prepared = Links::open(&dir)
        .map_err(|e| e.to_string())
        .and_then(|links| Ok((links, config.guards().map_err(|e| e.to_string())?)));
    let (links, guards) = match prepared {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("rrfeed crm sync: {e}");
            return Exit::Config;
        }
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
    match sync::sync(client, links, settings, rows, &options, (ctx.now)()).await {
        Ok(summary) => {
            if let Some(path) = &args.rejects
                && let Err(e) = write_rejects(path, &summary)
            {
                tracing::error!("rrfeed crm sync: cannot write {}: {e}", path.display());
            }
            print_result(args.json, &summary, || render(&summary));
            if summary.complete() {
                Exit::Success
            } else {
                Exit::Partial
            }
        }
        Err(SyncError::Login(e)) => fail_call("sync", &e),
        Err(e @ SyncError::Shrink { .. }) => {
            tracing::error!("rrfeed crm sync: {e}");
            Exit::DataErr
        }
        Err(e @ SyncError::Links(_)) => {
            tracing::error!("rrfeed crm sync: {e}");
            Exit::Config
        }
    }
}

fn read_export(
    args: &CrmSyncArgs,
    ctx: &Context,
    settings: &CrmSettings,
    config: &Config,
) -> Result<Vec<(Customer, Location)>, (Exit, String)> {
    let mut spec = match &args.store {
        Some(name) => {
            let store = config
                .store_named(name)
                .map_err(|e: ConfigError| (Exit::Config, e.to_string()))?;
            super::store_input_spec(&args.file, &args.input, &store)
        }
        None => super::input_spec(&args.file, &args.input),
    };
    if let Some(column) = &settings.accounts_receivable_column {
        spec.rules = spec.rules.clone().with_accounts_receivable(column);
    }
    let options = IngestOptions {
        strict: false,
        normalizer: Normalizer::with_rules(ctx.today, std::sync::Arc::new(spec.rules.clone())),
    };
    let mut rows = Rows(Vec::new());
    match ingest::ingest(&spec, options, &mut rows) {
        Ok(_) => Ok(rows.0),
        Err(IngestError::Input(e)) => Err((Exit::DataErr, e.to_string())),
        Err(e @ IngestError::Storage { .. }) => Err((Exit::Config, e.to_string())),
    }
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
        ("terminated", s.terminated),
        ("failed", s.failed),
        ("needs attention", s.needs_attention),
    ] {
        let _ = writeln!(out, "  {label:<16} {n}");
    }
    for p in &s.problems {
        let _ = writeln!(
            out,
            "  line {}: {} {:?}: {}",
            p.line, p.partner_customer_id, p.outcome, p.reason
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
        csv.write_record([
            p.line.to_string().as_str(),
            &p.partner_customer_id,
            outcome,
            &p.reason,
        ])?;
    }
    csv.flush()
}
