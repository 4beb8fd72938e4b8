//! `rrfeed crm sync|link|show|terminate|spend-blocking|awarded` (docs/crm.md). Every command that logs in
//! releases its token at the end, also when it fails or is interrupted.

use std::fmt::Write as _;

use crate::cli::{CrmCommand, CrmLinkArgs, CrmSyncArgs, GlobalArgs};
use crate::config::{Config, ConfigError, CrmSettings, Overrides};
use crate::crm::client::{CrmClient, CrmError};
use crate::crm::links::{Link, Links, Scope};
use crate::crm::sync::{self, SyncError, SyncOptions, SyncSummary};
use crate::crm::wire::{CalculateAwarded, Identifier, Participant, Terminate};
use crate::customer::{Customer, Normalizer};
use crate::error::Exit;
use crate::ingest::{self, IngestError, IngestOptions, RowSink};
use crate::source::Location;
use crate::warnings::Issue;

use super::{Context, print_result};

pub async fn run(command: &CrmCommand, global: &GlobalArgs, ctx: &Context) -> Exit {
    if let CrmCommand::Links(args) = command {
        return list_links(args, global, ctx);
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
            CrmCommand::Links(_) => unreachable!("handled above"),
            CrmCommand::Link(args) => link(args, global, ctx, &client, &settings, &config).await,
            CrmCommand::Sync(args) => {
                sync_command(args, global, ctx, &client, &settings, &config, stop.clone()).await
            }
            CrmCommand::Show(args) => {
                let shown = client.show(&Identifier::number(&args.number)).await;
                participant_answer("show", args.json, shown)
            }
            CrmCommand::Terminate(args) => terminate(args, &client).await,
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
                    // Date-times, as in every example of the vendor's document; `--to` is inclusive.
                    from_date: args.from.map(|d| format!("{d}T00:00:00")),
                    to_date: args.to.map(|d| format!("{d}T23:59:59")),
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

/// `crm terminate`. With a replacing participant and `--transfer-wallet` (the default for
/// duplication), the wallet's amount goes with `transfer_wallet_amount`, and the terminated
/// participant's cards move to the replacement (`add_existing` in an update of the replacement, after
/// the termination): the vendor's document does not say whether a termination moves cards itself.
async fn terminate(args: &crate::cli::CrmTerminateArgs, client: &CrmClient) -> Exit {
    let transfer = args.replaced_by.is_some()
        && (args.transfer_wallet
            || (args.reason == crate::crm::wire::TerminationReason::Duplication
                && !args.no_transfer_wallet));
    let old = Identifier::number(&args.number);
    let cards = match transfer {
        true => match client.show(&old).await {
            Ok(held) => held.cards().map(str::to_owned).collect(),
            Err(e) => return fail_call("terminate", &e),
        },
        false => Vec::new(),
    };
    let request = Terminate {
        token: String::new(),
        rewards_participant_identifier: old,
        termination_reason: args.reason,
        replaced_by_rewards_participant_identifier: args
            .replaced_by
            .as_ref()
            .map(Identifier::number),
        transfer_wallet_amount: args.replaced_by.as_ref().map(|_| transfer),
    };
    let terminated = match client.terminate(&request).await {
        Ok(p) => p,
        Err(e) => return fail_call("terminate", &e),
    };
    if let (Some(replacement), false) = (&args.replaced_by, cards.is_empty()) {
        let moves = cards
            .iter()
            .map(|code| crate::crm::wire::AccessTokenChange::AddExisting {
                access_token_identifier: crate::crm::wire::AccessTokenIdentifier {
                    authentication_code: code.clone(),
                },
            })
            .collect();
        let update = crate::crm::decide::update(replacement, Default::default(), moves);
        if let Err(e) = client.update(&update).await {
            tracing::error!(
                "rrfeed crm terminate: {} is terminated, but its cards ({}) did not move to {replacement}: {e}",
                args.number,
                cards.join(", ")
            );
            return Exit::Partial;
        }
        tracing::info!(cards = %cards.join(", "), to = %replacement, "moved the cards to the replacing participant");
    }
    participant_answer("terminate", args.json, Ok(terminated))
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
    .map_err(|e| e.to_string())?
    .with_reauth_codes(settings.reauth_codes.clone());
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

/// The links of one store (`-` when none is named) at the configured CRM.COM organisation.
fn scope(settings: &CrmSettings, store: Option<&str>) -> Scope {
    Scope {
        url: settings.base_url.to_string(),
        organisation: settings.login.organisation.clone(),
        store: store.unwrap_or("-").to_owned(),
    }
}

fn state_dir(config: &Config, global: &GlobalArgs, ctx: &Context) -> std::path::PathBuf {
    config.state_dir(
        &Overrides {
            state_dir: global.state_dir.clone(),
            ..Overrides::default()
        },
        &ctx.env,
    )
}

/// Opens the store's links. Links of an older rrfeed, which did not record their store, are adopted by
/// this store when it can be the only one (at most one store syncs to CRM.COM) or with
/// `--adopt-links`; otherwise the sync is refused, since guessing would mix two stores' customers.
fn open_links(
    config: &Config,
    dir: &std::path::Path,
    scope: Scope,
    adopt: bool,
) -> Result<Links, String> {
    let mut links = Links::open(dir, scope.clone()).map_err(|e| e.to_string())?;
    let legacy = links.legacy_links().map_err(|e| e.to_string())?;
    if legacy == 0 {
        return Ok(links);
    }
    let crm_stores = config
        .store_names()
        .into_iter()
        .filter(|name| config.destination_of(name).ok() == Some(crate::config::Destination::Crm))
        .count();
    if !adopt && crm_stores > 1 {
        return Err(format!(
            "the link table holds {legacy} link(s) from an older rrfeed, which did not record the \
             store that made them, and {crm_stores} stores sync to CRM.COM: run the store that made \
             them once with `rrfeed crm sync --store NAME --adopt-links FILE`"
        ));
    }
    let moved = links.adopt_legacy_links().map_err(|e| e.to_string())?;
    tracing::info!(links = moved, store = %scope.store, "links of an older rrfeed now belong to this store");
    Ok(links)
}

/// `crm link`: settles a customer's link, after checking the participant at CRM.COM. A link that is
/// not waiting for attention is replaced or cleared only with `--force`.
async fn link(
    args: &CrmLinkArgs,
    global: &GlobalArgs,
    ctx: &Context,
    client: &CrmClient,
    settings: &CrmSettings,
    config: &Config,
) -> Exit {
    let dir = state_dir(config, global, ctx);
    let links = match open_links(config, &dir, scope(settings, args.store.as_deref()), false) {
        Ok(links) => links,
        Err(e) => {
            tracing::error!("rrfeed crm link: {e}");
            return Exit::Config;
        }
    };
    match settle(args, ctx, client, &links).await {
        Ok(text) => {
            crate::output::print(&text);
            Exit::Success
        }
        Err((exit, e)) => {
            tracing::error!("rrfeed crm link: {e}");
            exit
        }
    }
}

async fn settle(
    args: &CrmLinkArgs,
    ctx: &Context,
    client: &CrmClient,
    links: &Links,
) -> Result<String, (Exit, String)> {
    let id = &args.partner_customer_id;
    let store_error = |e: crate::crm::links::LinkError| (Exit::Config, e.to_string());
    let current = links.get(id).map_err(store_error)?;
    let settled = match &current {
        Some(Link::Linked { participant, .. }) => Some(format!("linked to {participant}")),
        Some(Link::Terminated { participant, .. }) => {
            Some(format!("linked to {participant}, which was terminated"))
        }
        Some(Link::NeedsAttention { .. }) | None => None,
    };
    let refuse_without_force = |what: &str| match (&settled, args.force) {
        (Some(state), false) => Err((
            Exit::DataErr,
            format!("{id} is {state}; {what} only with --force"),
        )),
        _ => Ok(()),
    };
    let Some(number) = &args.number else {
        refuse_without_force("clearing it (the next sync would create a duplicate) is done")?;
        let had = links.forget(id).map_err(store_error)?;
        return Ok(if had {
            format!("{id} has no participant now: the next sync creates one\n")
        } else {
            format!("{id} was not linked; the next sync looks it up or creates it\n")
        });
    };
    if let Some(Link::Linked { participant, .. }) = &current
        && participant == number
    {
        return Ok(format!(
            "{id} was already participant {number}; nothing changed\n"
        ));
    }
    refuse_without_force("replacing it is done")?;
    let held = client
        .show(&Identifier::number(number))
        .await
        .map_err(|e| (Exit::DataErr, format!("participant {number}: {e}")))?;
    let state = held.life_cycle_state.as_deref().unwrap_or("unknown");
    if !state.eq_ignore_ascii_case("EFFECTIVE") {
        return Err((
            Exit::DataErr,
            format!("participant {number} is {state}, not EFFECTIVE: not linking {id} to it"),
        ));
    }
    let account = held
        .accounts_receivable
        .as_ref()
        .and_then(|a| a.number.as_deref());
    links
        .link(id, number, account, (ctx.now)())
        .map_err(store_error)?;
    Ok(match settled {
        Some(before) => format!("{id} is participant {number} now (it was {before})\n"),
        None => format!("{id} is participant {number}\n"),
    })
}

/// `crm links`: a store's links, with terminated participants and earlier ones of returning
/// customers.
fn list_links(args: &crate::cli::CrmLinksArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    let listed = Config::load(global.config.as_deref())
        .map_err(|e| e.to_string())
        .and_then(|config| {
            let settings = config.crm(&ctx.env).map_err(|e| e.to_string())?;
            let dir = state_dir(&config, global, ctx);
            open_links(
                &config,
                &dir,
                scope(&settings, args.store.as_deref()),
                false,
            )?
            .list()
            .map_err(|e| e.to_string())
        });
    match listed {
        Ok(rows) => {
            print_result(args.json, &rows, || {
                let table: Vec<[String; 4]> = rows
                    .iter()
                    .map(|r| {
                        [
                            r.partner_customer_id.clone(),
                            r.participant.clone().unwrap_or_else(|| "-".into()),
                            r.state.clone(),
                            r.detail.clone().unwrap_or_else(|| r.since.clone()),
                        ]
                    })
                    .collect();
                crate::summary::table(&["CUSTOMER", "PARTICIPANT", "STATE", "SINCE"], &table)
            });
            Exit::Success
        }
        Err(e) => {
            tracing::error!("rrfeed crm links: {e}");
            Exit::Config
        }
    }
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
    global: &GlobalArgs,
    ctx: &Context,
    client: &CrmClient,
    settings: &CrmSettings,
    config: &Config,
    stop: crate::signal::Stop,
) -> Exit {
    let export = match read_export(args, ctx, settings, config) {
        Ok(export) => export,
        Err((exit, e)) => {
            tracing::error!("rrfeed crm sync: {e}");
            return exit;
        }
    };
    let dir = state_dir(config, global, ctx);
    let scope = scope(settings, args.store.as_deref());
    let prepared = open_links(config, &dir, scope, args.adopt_links)
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
    let repeated = export.repeated;
    match sync::sync(client, links, settings, export.rows, &options, (ctx.now)()).await {
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
            super::store_input_spec(&args.file, &args.input, &store)
        }
        None => super::input_spec(&args.file, &args.input),
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
        Err(e @ IngestError::Storage { .. }) => return Err((Exit::Config, e.to_string())),
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
