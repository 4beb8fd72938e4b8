//! One store's run, as library code: lock the store, open its ledger entry, snapshot the export, apply
//! the guards, decide whether to resume, run the transaction driver, and record how it ended. The
//! snapshot is kept only while the run may still be resumed. `cmd/upload` only decides which stores to
//! run and prints. The ledger and the lock are where [`crate::state::State`] says: SQLite and a lock
//! file in the state directory, or PostgreSQL shared by several machines.

mod guards;
mod snapshot;

use std::path::PathBuf;
use std::time::Instant;

use tracing::{Instrument, error, info, info_span, warn};

use crate::client::{Client, ClientError, StoreCredentials};
use crate::config::ConfigError;
use crate::driver::{self, DriverError, Feed, Progress, ResumePoint, RetryPolicy, Session};
use crate::error::{Exit, RunError};
use crate::ingest::Ingested;
use crate::ledger::{self, Checkpoint, Finish, Ledger, NewRun};
use crate::lock;
use crate::signal::Stop;
use crate::source::InputSpec;
use crate::spool::Spool;
use crate::summary::{RunState, UploadSummary};
use crate::totals;

use crate::config::{ApiSettings, Guards, RetrySettings, StoreSettings};
use crate::context::Context;

/// What the flags ask of every store's run.
#[derive(Clone, Debug)]
pub struct Flags {
    pub dry_run: bool,
    pub allow_empty: bool,
    pub strict: bool,
    pub force: bool,
    pub resume: bool,
    pub wait_lock: Option<std::time::Duration>,
    pub chunk_size: usize,
    /// Where to write the rejected values (one store only).
    pub rejects: Option<PathBuf>,
    /// Where to write the change report (one store only), and whether with values.
    pub changes: Option<PathBuf>,
    pub changes_values: bool,
}

/// What the stores of one invocation share.
pub struct Settings {
    /// `None` for a dry run, which needs no credentials.
    pub api: Option<ApiSettings>,
    pub retry: RetrySettings,
    pub guards: Guards,
    /// Where the ledger, the locks and the snapshots are.
    pub state: crate::state::State,
    pub flags: Flags,
}

/// One store's run to make: the store and the export it uploads.
pub struct Job {
    pub store: StoreSettings,
    pub input: InputSpec,
}

/// A store that cannot run because of its own configuration (its export missing, a wrong setting):
/// it fails with exit 78 while the other stores run.
pub struct Unready {
    pub name: String,
    pub store_id: String,
    pub input: String,
    pub error: ConfigError,
}

/// Shows a run's progress; the command line gives each store one (a bar on a terminal, log lines
/// otherwise).
pub trait Watch {
    /// The transaction is about to start with `rows` rows.
    fn started(&mut self, store: &str, rows: u64);
    /// A post was confirmed.
    fn update(&mut self, progress: &Progress);
    /// The transaction ended, one way or another.
    fn finished(&mut self);
}

/// One store's run: what to run, with what, and how its progress is shown.
pub struct StoreRun<'a> {
    pub job: &'a Job,
    pub settings: &'a Settings,
    pub ctx: &'a Context,
    pub stop: Stop,
}

/// Runs one store and returns its summary; never fails (a failure is in the summary).
pub async fn run(store_run: StoreRun<'_>, watch: &mut dyn Watch) -> UploadSummary {
    let StoreRun {
        job,
        settings: shared,
        ctx,
        stop,
    } = store_run;
    let started = Instant::now();
    let mut summary = UploadSummary::new(
        job.store.name.clone(),
        job.input.display_name(),
        shared.flags.dry_run,
    );
    summary.store_id = job.store.store_id.clone();
    summary.format = Some(job.input.format);
    let mut progress = Progress::default();
    let span = info_span!("store", store = %job.store.name);
    let result = execute(job, shared, ctx, stop, &mut summary, &mut progress, watch)
        .instrument(span)
        .await;
    summary.finish(result.as_ref().err(), &progress, started.elapsed());
    if summary.run_id.is_none() && summary.exit_code == Exit::Config.code() && !shared.flags.dry_run
    {
        record_refused(&shared.state, ctx, &summary);
    }
    if let Err(e) = &result {
        // The summary goes to stdout, which cron often discards: the reason goes to the log as well.
        error!(
            store = %job.store.name,
            run_id = summary.run_id,
            exit_code = summary.exit_code,
            "upload failed: {e}"
        );
    }
    summary
}

/// The summary of a store that could not run because of its own settings (exit 78), recorded in the
/// ledger (unless a dry run) and logged.
pub fn unready(unready: &Unready, settings: &Settings, ctx: &Context) -> UploadSummary {
    let summary = record_unready(unready, settings, ctx);
    error!(
        store = %unready.name,
        exit_code = summary.exit_code,
        "upload failed: {}",
        summary.error.as_deref().unwrap_or_default()
    );
    summary
}

/// Records in the ledger (unless a dry run) that a store could not run because of its own settings,
/// and returns its summary.
pub fn record_unready(unready: &Unready, settings: &Settings, ctx: &Context) -> UploadSummary {
    let dry_run = settings.flags.dry_run;
    let mut summary = UploadSummary::new(unready.name.clone(), unready.input.clone(), dry_run);
    summary.store_id = unready.store_id.clone();
    let error = RunError::from(unready.error.clone());
    summary.finish(
        Some(&error),
        &Progress::default(),
        std::time::Duration::ZERO,
    );
    if !dry_run {
        record_refused(&settings.state, ctx, &summary);
    }
    summary
}

/// Records a run its configuration stopped before it had a ledger entry (a store's key unset, its
/// export missing), so that `status` and the metrics show the store failing rather than its last
/// good night. A ledger that cannot be written costs a warning: the failure is reported anyway.
fn record_refused(state: &crate::state::State, ctx: &Context, summary: &UploadSummary) {
    let now = (ctx.now)().to_string();
    let recorded = ledger::open(state).and_then(|ledger| {
        let id = ledger.start(&NewRun {
            store: &summary.store,
            store_id: &summary.store_id,
            destination: crate::ledger::RIDER_REWARDS,
            feed: crate::wire::FEED_CUSTOMERS,
            input: &summary.input,
            started_at: &now,
        })?;
        ledger.finish(
            id,
            &Finish {
                state: summary.state.as_str(),
                exit_code: summary.exit_code,
                error: summary.error.as_deref(),
                finished_at: &now,
                duration: std::time::Duration::ZERO,
                warnings: 0,
                rows: None,
            },
        )
    });
    if let Err(e) = recorded {
        warn!(store = %summary.store, "cannot record the failed run: {e}");
    }
}

/// The ledger entry of a run, finished whatever happens.
struct Entry<'a> {
    ledger: &'a dyn Ledger,
    id: i64,
}

async fn execute(
    job: &Job,
    shared: &Settings,
    ctx: &Context,
    stop: Stop,
    summary: &mut UploadSummary,
    progress: &mut Progress,
    watch: &mut dyn Watch,
) -> Result<(), RunError> {
    if shared.flags.dry_run {
        return dry_run(job, shared, ctx, summary).await;
    }
    // Read before anything else: a store without its key fails alone, before its export is read.
    let credentials = StoreCredentials {
        store_id: job.store.store_id.clone(),
        store_key: job.store.store_key.resolve(&ctx.env)?,
    };
    let started_at = (ctx.now)().to_string();
    let _lock = lock::acquire_in(
        &shared.state,
        &job.store.store_id,
        shared.flags.wait_lock,
        &started_at,
    )
    .await?;
    let opened = ledger::open(&shared.state)?;
    let ledger: &dyn Ledger = opened.as_ref();
    let id = ledger.start(&NewRun {
        store: &job.store.name,
        store_id: &job.store.store_id,
        destination: crate::ledger::RIDER_REWARDS,
        feed: crate::wire::FEED_CUSTOMERS,
        input: &summary.input,
        started_at: &started_at,
    })?;
    ledger.mark_crashed(&job.store.store_id, id, &started_at)?;
    summary.run_id = Some(id);
    let entry = Entry { ledger, id };
    let started = Instant::now();
    let run = Run {
        job,
        shared,
        ctx,
        credentials: &credentials,
        watch,
    };
    let result = upload(run, stop, summary, progress, &entry).await;
    let exit = result.as_ref().err().map_or(Exit::Success, RunError::exit);
    let error = result.as_ref().err().map(ToString::to_string);
    entry.ledger.finish(
        id,
        &Finish {
            state: RunState::from_exit(exit).as_str(),
            exit_code: exit.code(),
            error: error.as_deref(),
            finished_at: &(ctx.now)().to_string(),
            duration: started.elapsed(),
            warnings: summary.warning_count(),
            rows: None,
        },
    )?;
    result
}

/// What one store's run works with once its ledger entry exists.
struct Run<'a> {
    job: &'a Job,
    shared: &'a Settings,
    ctx: &'a Context,
    credentials: &'a StoreCredentials,
    watch: &'a mut dyn Watch,
}

/// Everything after the ledger entry exists: snapshot, guards, resume, transaction.
async fn upload(
    run: Run<'_>,
    stop: Stop,
    summary: &mut UploadSummary,
    progress: &mut Progress,
    entry: &Entry<'_>,
) -> Result<(), RunError> {
    let (job, shared, ctx) = (run.job, run.shared, run.ctx);
    let client = build_client(shared, run.credentials);
    let spool_path = spool_dir(shared).join(format!("run-{}.rows", entry.id));
    let snapshot::Snapshotted {
        ingested,
        mut spool,
        tonight,
    } = snapshot::snapshot(job, ctx, shared, spool_path, Some(entry.id)).await?;
    note_snapshot(summary, &ingested, &spool, &tonight.comparison);
    entry.ledger.snapshot(
        entry.id,
        spool.rows(),
        &ingested.source.input_blake3,
        spool.blake3(),
        spool.path(),
    )?;
    if let Some(counts) = &tonight.comparison.counts {
        entry.ledger.changes(entry.id, counts)?;
    }
    let store_id = &job.store.store_id;
    if !shared.flags.force {
        guards::shrink(
            entry.ledger,
            store_id,
            spool.rows(),
            shared.guards.shrink_ratio,
        )?;
        guards::churn(&tonight.comparison, shared.guards.churn_ratio)?;
    }
    let previous = guards::previous_runs(entry.ledger, store_id, entry.id)?;
    let resume = if shared.flags.resume {
        let point = guards::resume_point(&previous, &spool, &shared.guards, (ctx.now)(), progress);
        if let (Some(_), Some(from)) = (&point, &previous) {
            entry.ledger.resumed(entry.id, from.id)?;
        }
        point
    } else {
        guards::note_open_transaction(&previous, progress);
        None
    };
    // The state to remember is flushed to disk while the upload runs, so that only a rename is left
    // once the end is confirmed.
    let synced = tonight.remember.as_deref().map(|path| {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || std::fs::File::open(path)?.sync_all())
    });
    let result = transact(run, client, stop, &spool, resume, progress, entry).await;
    let synced = match synced {
        Some(sync) => matches!(sync.await, Ok(Ok(()))),
        None => false,
    };
    if result.is_ok() {
        remember(&shared.state, store_id, tonight, synced).await;
    }
    guards::remove_old_spools(entry.ledger, store_id, entry.id);
    if may_resume(&result, progress) {
        spool.keep();
        info!(spool = %spool.path().display(), "snapshot kept for `rrfeed upload --resume`");
    } else {
        entry.ledger.spool_removed(entry.id)?;
    }
    result
}

/// After the server confirmed `endtransaction`: tonight's customers become what the next run compares
/// with. A failure costs a warning (the upload itself succeeded); the next run then compares with an
/// older upload.
async fn remember(
    state: &crate::state::State,
    store_id: &str,
    tonight: crate::changes::Tonight,
    synced: bool,
) {
    let Some(pending) = tonight.remember else {
        return;
    };
    let (state, store_id) = (state.clone(), store_id.to_owned());
    let remembered = tokio::task::spawn_blocking(move || {
        crate::changes::baseline::remember(&state, &store_id, pending, synced)
    })
    .await
    .unwrap_or_else(|e| Err(format!("the thread failed: {e}")));
    if let Err(e) = remembered {
        warn!("cannot remember tonight's customers for the next change report: {e}");
    }
}

/// Whether a later `--resume` could continue this run's transaction: only a stop by signal leaves one
/// open (every other failure abandons it, and a killed process keeps its snapshot by not getting here).
fn may_resume(result: &Result<(), RunError>, progress: &Progress) -> bool {
    progress.transactionid.is_some()
        && !progress.ended
        && matches!(result, Err(RunError::Driver(DriverError::Interrupted(_))))
}

/// Builds the store's HTTP client on a blocking thread, so that loading the system's root
/// certificates (20 to 40 ms) overlaps the reading of the export instead of delaying the first call.
/// Building it calls nothing.
fn build_client(
    shared: &Settings,
    credentials: &StoreCredentials,
) -> tokio::task::JoinHandle<Result<Client, ClientError>> {
    let api = shared.api.clone().expect("a real run has API settings");
    let credentials = credentials.clone();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _in_store = span.enter();
        Client::new(&api, Some(credentials))
    })
}

async fn transact(
    run: Run<'_>,
    client: tokio::task::JoinHandle<Result<Client, ClientError>>,
    stop: Stop,
    spool: &Spool,
    resume: Option<ResumePoint>,
    progress: &mut Progress,
    entry: &Entry<'_>,
) -> Result<(), RunError> {
    let Run {
        job,
        shared,
        ctx,
        credentials: _,
        watch,
    } = run;
    let client = client
        .await
        .map_err(|e| RunError::Internal(format!("building the HTTP client failed: {e}")))?
        .map_err(|e| ConfigError::invalid("ca_cert", e.to_string()))?;
    let feed = Feed {
        rr_store_id: &job.store.store_id,
        partner_store_id: &job.store.partner_store_id,
        spool,
        allow_empty: shared.flags.allow_empty,
        chunk_size: shared.flags.chunk_size,
    };
    let policy = RetryPolicy {
        retries: shared.retry.retries,
        base_delay: shared.retry.delay,
        ..RetryPolicy::default()
    };
    watch.started(&job.store.name, spool.rows());
    let mut on_progress = |p: &Progress| {
        let checkpoint = Checkpoint {
            transactionid: p.transactionid.as_deref(),
            partnertransactionid: p.partnertransactionid.as_deref(),
            abandoned: &p.abandoned,
            chunks: p.chunks,
            confirmed: p.confirmed,
            ended: p.ended,
        };
        if let Err(e) = entry
            .ledger
            .progress(entry.id, &checkpoint, &(ctx.now)().to_string())
        {
            warn!("cannot record progress in the ledger: {e}");
        }
        watch.update(p);
    };
    let mut new_id = || uuid::Uuid::new_v4().to_string();
    let mut session = Session {
        policy: &policy,
        new_partner_txid: &mut new_id,
        on_progress: &mut on_progress,
        stop,
    };
    let result = driver::upload(&client, &feed, &mut session, resume, progress).await;
    drop(session);
    watch.finished();
    Ok(result?)
}

fn spool_dir(shared: &Settings) -> PathBuf {
    shared.state.dir.join("spool")
}

fn note_snapshot(
    summary: &mut UploadSummary,
    ingested: &Ingested,
    spool: &Spool,
    comparison: &crate::changes::Comparison,
) {
    summary.rows = Some(spool.rows());
    summary.changes = comparison.counts;
    summary.changes_note = Some(comparison.note());
    summary.encoding = Some(ingested.source.encoding);
    summary.format = Some(ingested.source.format);
    summary.sheet = ingested.source.sheet.clone();
    summary.warnings = ingested.warnings.summaries();
}

/// A dry run: the snapshot and the guards, with no lock, no ledger entry and no call.
async fn dry_run(
    job: &Job,
    shared: &Settings,
    ctx: &Context,
    summary: &mut UploadSummary,
) -> Result<(), RunError> {
    let path = spool_dir(shared).join(format!("dry-run-{}.rows", uuid::Uuid::new_v4()));
    let snapshot::Snapshotted {
        ingested,
        spool,
        tonight,
    } = snapshot::snapshot(job, ctx, shared, path, None).await?;
    note_snapshot(summary, &ingested, &spool, &tonight.comparison);
    summary.chunks = Some(totals::chunks(spool.rows(), shared.flags.chunk_size).count());
    if spool.rows() == 0 && !shared.flags.allow_empty {
        return Err(DriverError::EmptyRefused.into());
    }
    if !shared.flags.force
        && let Some(ledger) = ledger::open_existing(&shared.state)?
    {
        guards::shrink(
            ledger.as_ref(),
            &job.store.store_id,
            spool.rows(),
            shared.guards.shrink_ratio,
        )?;
    }
    if !shared.flags.force {
        guards::churn(&tonight.comparison, shared.guards.churn_ratio)?;
    }
    Ok(())
}
