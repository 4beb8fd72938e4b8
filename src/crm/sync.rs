//! `crm sync` (docs/crm.md): brings CRM.COM's rewards participants in line with an export, one participant
//! per call, with bounded concurrency. Linked customers are shown and updated only where a mapped field
//! changed; unlinked ones are found through their accounts receivable or created; a create whose answer
//! was lost is never repeated blindly but recorded as needing attention.

use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use serde::Serialize;
use tokio::time::Instant;
use tracing::{info, warn};

use super::client::{CrmClient, CrmError};
use super::decide;
use super::links::{Link, LinkError, Links};
use super::wire::{Identifier, ListQuery, Participant, Terminate, TerminationReason};
use crate::config::CrmSettings;
use crate::customer::Customer;
use crate::signal::Stop;
use crate::source::Location;
use crate::wire::Field;

/// How a sync runs.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Plan only: reads (`show`, `list`) but no write.
    pub dry_run: bool,
    /// Calls in flight at once.
    pub jobs: usize,
    /// At most this many calls a second, if set.
    pub max_rps: Option<f64>,
    /// Terminate linked participants absent from the export.
    pub terminate_missing: bool,
    /// Terminate even when more than `shrink_ratio` of the linked participants would go.
    pub force: bool,
    pub shrink_ratio: f64,
    /// A signal stops the sync from starting rows; the calls in flight finish, so that no create's
    /// outcome is lost by cancelling it.
    pub stop: Stop,
}

/// What happened to one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Failed,
    NeedsAttention,
}

/// A row that failed or needs attention, for the summary and the rejects file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The export's line; `None` for a linked customer no longer in the export (a termination).
    pub line: Option<u64>,
    pub partner_customer_id: String,
    pub outcome: Outcome,
    pub reason: String,
}

/// The counts of a sync (docs/crm.md), with its problems.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncSummary {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub terminated: u64,
    pub failed: u64,
    pub needs_attention: u64,
    /// Rows skipped because an earlier row has their PartnerCustomerID (the first one wins).
    pub repeated: u64,
    /// The export's counted warnings (repeated ids among them).
    pub warnings: Vec<crate::warnings::WarningSummary>,
    pub dry_run: bool,
    /// What changed since the last sync, from the link table: created participants are added,
    /// updated ones changed, linked customers absent from the export removed (terminated or not).
    pub changes: crate::changes::ChangeCounts,
    /// The signal that stopped the sync before every row was done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<&'static str>,
    pub problems: Vec<Problem>,
}

impl SyncSummary {
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::NeedsAttention => self.needs_attention += 1,
        }
    }

    /// Whether every row went through (exit 0; otherwise 3).
    pub fn complete(&self) -> bool {
        self.failed == 0 && self.needs_attention == 0
    }
}

/// Why a sync stopped as a whole.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Login refused (exit 77).
    #[error(transparent)]
    Login(CrmError),
    #[error(transparent)]
    Links(#[from] LinkError),
    /// `--terminate-missing` would end too many participants (exit 65).
    #[error(
        "--terminate-missing would terminate {missing} of {linked} linked participants, more than \
         {:.0}% (the export may be incomplete); check it, or pass --force", ratio * 100.0
    )]
    Shrink {
        missing: usize,
        linked: usize,
        ratio: f64,
    },
}

/// Spaces calls out to at most `rps` a second.
struct Pace {
    gap: Option<Duration>,
    next: tokio::sync::Mutex<Instant>,
}

impl Pace {
    fn new(rps: Option<f64>) -> Self {
        Pace {
            gap: rps
                .filter(|r| *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let Some(gap) = self.gap else { return };
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + gap;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// Everything a row's work shares.
struct Shared<'a> {
    client: &'a CrmClient,
    links: &'a Mutex<Links>,
    settings: &'a CrmSettings,
    options: &'a SyncOptions,
    pace: Pace,
    now: Timestamp,
    /// Participants whose name at CRM.COM differs from the export's, for a counted warning.
    name_differences: Mutex<Vec<String>>,
}

/// Syncs `rows` (customers in file order, with their lines), then terminates the missing if asked.
///
/// Fails when the login is refused, the link table cannot be used, or the shrink guard refuses.
pub async fn sync(
    client: &CrmClient,
    links: Links,
    settings: &CrmSettings,
    rows: Vec<(Customer, Location)>,
    options: &SyncOptions,
    now: Timestamp,
) -> Result<SyncSummary, SyncError> {
    client.log_in().await.map_err(SyncError::Login)?;
    let links = Mutex::new(links);
    let shared = Shared {
        client,
        links: &links,
        settings,
        options,
        pace: Pace::new(options.max_rps),
        now,
        name_differences: Mutex::new(Vec::new()),
    };
    let mut summary = SyncSummary {
        rows: rows.len() as u64,
        dry_run: options.dry_run,
        ..SyncSummary::default()
    };
    let absent = absent_from(&links, &rows)?;
    let missing = if options.terminate_missing {
        Some(shrink_guard(absent.clone(), options)?)
    } else {
        None
    };
    let stop = &options.stop;
    let mut outcomes = futures_util::stream::iter(rows.iter())
        .take_while(|_| std::future::ready(stop.requested().is_none()))
        .map(|(customer, at)| row(&shared, customer, *at))
        .buffer_unordered(options.jobs.max(1));
    while let Some((outcome, problem)) = outcomes.next().await {
        summary.count(outcome);
        summary.problems.extend(problem);
    }
    drop(outcomes);
    summary.changes = crate::changes::ChangeCounts {
        added: summary.created,
        removed: absent.missing.len() as u64,
        changed: summary.updated,
        unchanged: summary.unchanged,
    };
    let differences = std::mem::take(
        &mut *shared
            .name_differences
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    if let Some(example) = differences.first() {
        summary.warnings.push(crate::warnings::WarningSummary {
            code: crate::warnings::WarningCode::CrmNameDiffers,
            count: differences.len() as u64,
            example: example.clone(),
        });
    }
    if let Some(signal) = stop.requested() {
        summary.interrupted = Some(signal.name());
        summary.problems.sort_by_key(|p| p.line.unwrap_or(u64::MAX));
        return Ok(summary);
    }
    for (id, number) in missing.unwrap_or_default() {
        match terminate(&shared, &id, &number).await {
            Ok(()) => summary.terminated += 1,
            Err(reason) => {
                summary.failed += 1;
                summary.problems.push(Problem {
                    line: None,
                    partner_customer_id: id,
                    outcome: Outcome::Failed,
                    reason,
                });
            }
        }
    }
    summary.problems.sort_by_key(|p| p.line.unwrap_or(u64::MAX));
    Ok(summary)
}

/// The linked customers absent from the export, out of how many are linked.
#[derive(Clone)]
struct Absent {
    /// (PartnerCustomerID, participant number).
    missing: Vec<(String, String)>,
    linked: usize,
}

/// Linked customers absent from the export.
fn absent_from(links: &Mutex<Links>, rows: &[(Customer, Location)]) -> Result<Absent, SyncError> {
    let present: std::collections::HashSet<&str> = rows
        .iter()
        .map(|(c, _)| c.get(Field::PartnerCustomerId))
        .collect();
    let linked = links.lock().unwrap_or_else(|p| p.into_inner()).linked()?;
    let missing: Vec<(String, String)> = linked
        .iter()
        .filter(|(id, _)| !present.contains(id.as_str()))
        .cloned()
        .collect();
    Ok(Absent {
        missing,
        linked: linked.len(),
    })
}

/// The absent customers to terminate, refused past the shrink guard.
fn shrink_guard(absent: Absent, options: &SyncOptions) -> Result<Vec<(String, String)>, SyncError> {
    let Absent { missing, linked } = absent;
    let too_many = missing.len() as f64 > options.shrink_ratio * linked as f64;
    if too_many && !options.force && !missing.is_empty() {
        return Err(SyncError::Shrink {
            missing: missing.len(),
            linked,
            ratio: options.shrink_ratio,
        });
    }
    Ok(missing)
}

/// Terminates a missing customer's participant and records it; one already terminated at CRM.COM
/// (from its own screens) is recorded as such.
async fn terminate(shared: &Shared<'_>, id: &str, number: &str) -> Result<(), String> {
    if shared.options.dry_run {
        info!(participant = number, "would terminate");
        return Ok(());
    }
    shared.pace.wait().await;
    let request = Terminate {
        token: String::new(),
        rewards_participant_identifier: Identifier::number(number),
        termination_reason: TerminationReason::CustomerRequest,
        replaced_by_rewards_participant_identifier: None,
        transfer_wallet_amount: None,
    };
    let record = || {
        links(shared)
            .terminated(id, number, shared.now)
            .map_err(|e| e.to_string())
    };
    match shared.client.terminate(&request).await {
        Ok(_) => record(),
        Err(e @ CrmError::Refused { .. }) => {
            shared.pace.wait().await;
            match shared.client.show(&Identifier::number(number)).await {
                Ok(held) if is_terminated(&held) => record(),
                _ => Err(e.to_string()),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

fn links<'a>(shared: &'a Shared<'_>) -> std::sync::MutexGuard<'a, Links> {
    shared.links.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_terminated(participant: &Participant) -> bool {
    participant
        .life_cycle_state
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("TERMINATED"))
}

/// One row: its outcome, and the problem to report if it did not go through.
async fn row(shared: &Shared<'_>, customer: &Customer, at: Location) -> (Outcome, Option<Problem>) {
    let id = customer.get(Field::PartnerCustomerId);
    let result = if id.is_empty() {
        Err((
            Outcome::Failed,
            "no PartnerCustomerID: the row cannot be linked".to_owned(),
        ))
    } else {
        sync_one(shared, id, customer).await
    };
    match result {
        Ok(outcome) => (outcome, None),
        Err((outcome, reason)) => {
            warn!(line = at.line, customer = id, %reason, "row not synced");
            let problem = Problem {
                line: Some(at.line),
                partner_customer_id: id.to_owned(),
                outcome,
                reason,
            };
            (outcome, Some(problem))
        }
    }
}

type RowResult = Result<Outcome, (Outcome, String)>;

fn failed(e: impl std::fmt::Display) -> (Outcome, String) {
    (Outcome::Failed, e.to_string())
}

async fn sync_one(shared: &Shared<'_>, id: &str, customer: &Customer) -> RowResult {
    let link = links(shared).get(id).map_err(failed)?;
    match link {
        Some(Link::NeedsAttention { detail, since }) => Err((
            Outcome::NeedsAttention,
            format!(
                "a create sent {since} may or may not have happened ({detail}); settle it with \
                 `rrfeed crm link {id} NUMBER` or `rrfeed crm link {id} --none`"
            ),
        )),
        Some(Link::Linked { participant, .. }) => {
            shared.pace.wait().await;
            let held = shared
                .client
                .show(&Identifier::number(&participant))
                .await
                .map_err(failed)?;
            if !is_terminated(&held) {
                return update_if_changed(shared, &held, customer).await;
            }
            // Terminated from CRM.COM's own screens while the customer is still in the export: it is
            // never updated again; the customer gets a new participant, like a returning one.
            warn!(customer = id, %participant, "the participant was terminated at CRM.COM; creating a new one");
            if !shared.options.dry_run {
                links(shared)
                    .terminated(id, &participant, shared.now)
                    .map_err(failed)?;
            }
            find_or_create(shared, id, customer).await
        }
        // A returning customer: its old participant stays terminated (and in the link history).
        Some(Link::Terminated { .. }) | None => find_or_create(shared, id, customer).await,
    }
}

async fn update_if_changed(
    shared: &Shared<'_>,
    held: &Participant,
    customer: &Customer,
) -> RowResult {
    if let Some(difference) = decide::name_difference(held, customer) {
        let id = customer.get(Field::PartnerCustomerId);
        shared
            .name_differences
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{} ({id}): {difference}", held.number));
    }
    let changes = decide::changes(held, &decide::desired(customer, shared.settings));
    let tokens = decide::token_changes(held, customer, shared.settings);
    if changes.is_empty() && tokens.is_empty() {
        return Ok(Outcome::Unchanged);
    }
    if !shared.options.dry_run {
        shared.pace.wait().await;
        shared
            .client
            .update(&decide::update(&held.number, changes, tokens))
            .await
            .map_err(failed)?;
    }
    Ok(Outcome::Updated)
}

/// An unlinked customer: found through its accounts receivable when the export names one, else
/// created.
async fn find_or_create(shared: &Shared<'_>, id: &str, customer: &Customer) -> RowResult {
    let Some(account) = customer.accounts_receivable() else {
        return create(shared, id, customer, None).await;
    };
    shared.pace.wait().await;
    let query = ListQuery {
        accounts_receivable: Identifier::number(account),
        life_cycle_state: Some("EFFECTIVE".into()),
        number_of_results: 2,
        offset: 0,
    };
    let found = shared.client.list(&query).await.map_err(failed)?;
    match found.as_slice() {
        [] => create(shared, id, customer, Some(account)).await,
        [participant] => {
            shared.pace.wait().await;
            let held = shared
                .client
                .show(&Identifier::number(&participant.number))
                .await
                .map_err(failed)?;
            check_owner(shared, id, &held)?;
            if !shared.options.dry_run {
                links(shared)
                    .link(id, &held.number, Some(account), shared.now)
                    .map_err(failed)?;
            }
            update_if_changed(shared, &held, customer).await
        }
        _ => Err(failed(format!(
            "accounts receivable {account} has more than one EFFECTIVE participant; not guessing"
        ))),
    }
}

/// Adopts a participant found by accounts receivable only when it is this customer's: its id field
/// at CRM.COM empty or this customer's id, and no other customer linked to it. Otherwise a second
/// customer on the same accounts receivable would take the first one's participant over.
fn check_owner(shared: &Shared<'_>, id: &str, held: &Participant) -> Result<(), (Outcome, String)> {
    let attention = |whose: String| {
        Err((
            Outcome::NeedsAttention,
            format!(
                "participant {} on this accounts receivable belongs to {whose}, not to {id}: not \
                 adopting it; link {id} with `rrfeed crm link {id} NUMBER`, or give it its own \
                 accounts receivable",
                held.number
            ),
        ))
    };
    if let Some(slot) = shared.settings.id_slot()
        && let Some(owner) = held.udf_string(slot).filter(|v| !v.is_empty() && *v != id)
    {
        return attention(format!("customer {owner} (udf_string_{slot})"));
    }
    let (own_store, linked) = {
        let links = links(shared);
        (
            links.store().to_owned(),
            links.linked_to(&held.number).map_err(failed)?,
        )
    };
    let others: Vec<String> = linked
        .into_iter()
        .filter(|(store, other)| other != id || *store != own_store)
        .map(|(store, other)| format!("customer {other} of store {store}"))
        .collect();
    match others.first() {
        Some(other) => attention(other.clone()),
        None => Ok(()),
    }
}

async fn create(
    shared: &Shared<'_>,
    id: &str,
    customer: &Customer,
    account: Option<&str>,
) -> RowResult {
    if shared.options.dry_run {
        return Ok(Outcome::Created);
    }
    let request = decide::create(customer, account, shared.settings, shared.now);
    let links = || links(shared);
    // Durable before the call: a run killed before the answer is recorded leaves this trace.
    links().create_in_flight(id, shared.now).map_err(failed)?;
    shared.pace.wait().await;
    match shared.client.create(&request).await {
        Ok(participant) => {
            let account = participant
                .accounts_receivable
                .as_ref()
                .and_then(|a| a.number.as_deref())
                .or(account);
            links()
                .link(id, &participant.number, account, shared.now)
                .map_err(failed)?;
            Ok(Outcome::Created)
        }
        Err(e) if e.outcome_unknown() => {
            links()
                .needs_attention(id, &e.to_string(), shared.now)
                .map_err(failed)?;
            Err((
                Outcome::NeedsAttention,
                format!(
                    "{e}; the participant may or may not exist now: it will not be created again until `rrfeed crm link` settles it"
                ),
            ))
        }
        Err(e) => {
            links().create_refused(id).map_err(failed)?;
            Err(failed(e))
        }
    }
}
