//! `rrfeed crm sync|link|show|terminate|spend-blocking|awarded` (docs/crm.md). Every command that logs in
//! releases its token at the end, also when it fails or is interrupted.

use std::fmt::Write as _;

use crate::cli::{CrmCommand, CrmLinkArgs, GlobalArgs};
use crate::config::{Config, CrmSettings, Overrides};
use crate::crm::client::{CrmClient, CrmError};
use crate::crm::links::{Link, Links, Scope};
use crate::crm::wire::{CalculateAwarded, Identifier, Participant, Terminate};
use crate::error::Exit;
use crate::state::State;

mod sync;

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
                let crm = (&client, &settings, &config);
                sync::monitored(args, global, ctx, crm, stop.clone()).await
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

/// Where the link table and the ledger are: the state directory, or PostgreSQL with `state_url`.
fn state_of(config: &Config, global: &GlobalArgs, ctx: &Context) -> Result<State, String> {
    let overrides = Overrides {
        state_dir: global.state_dir.clone(),
        ca_cert: global.ca_cert.clone(),
        ..Overrides::default()
    };
    config
        .state(&overrides, &ctx.env)
        .map_err(|e| e.to_string())
}

/// Opens the store's links. Links of an older rrfeed, which did not record their store, are adopted by
/// this store when it can be the only one (at most one store syncs to CRM.COM) or with
/// `--adopt-links`; otherwise the sync is refused, since guessing would mix two stores' customers.
fn open_links(config: &Config, state: &State, scope: Scope, adopt: bool) -> Result<Links, String> {
    let mut links = Links::open(state, scope.clone()).map_err(|e| e.to_string())?;
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
    let opened = state_of(config, global, ctx).and_then(|state| {
        open_links(
            config,
            &state,
            scope(settings, args.store.as_deref()),
            false,
        )
    });
    let links = match opened {
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
            let state = state_of(&config, global, ctx)?;
            open_links(
                &config,
                &state,
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
