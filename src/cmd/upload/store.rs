//! One store's run, as a script: lock the store, open its ledger entry, snapshot the export, apply the
//! guards, decide whether to resume, run the transaction driver, and record how it ended. The snapshot
//! is kept only while the run may still be resumed.

use std::path::PathBuf;
use std::time::Instant;

use tracing::{Instrument, error, info, info_span, warn};

use super::{Job, Shared, Unready, guards, progress::Reporter};
use crate::client::{Client, StoreCredentials};
use crate::config::ConfigError;
use crate::customer::{Customer, Normalizer};
use crate::driver::{self, DriverError, Feed, Progress, ResumePoint, RetryPolicy, Session};
use crate::error::{Exit, RunError};
use crate::ingest::{self, IngestError, IngestOptions, Ingested, RowSink};
use crate::ledger::{Checkpoint, Finish, Ledger, NewRun};
use crate::lock;
use crate::rejects::Rejects;
use crate::signal::Stop;
use crate::source::{InputSpec, Location};
use crate::spool::{Spool, SpoolWriter};
use crate::summary::{RunState, UploadSummary};
use crate::totals;
use crate::warnings::Issue;

use super::super::Context;

/// The snapshot, and the rejects file when one was asked for.
struct Snapshot {
    spool: SpoolWriter,
    rejects: Option<Rejects>,
}

impl RowSink for Snapshot {
    fn accept(
        &mut self,
        customer: &Customer,
        at: Location,
        issues: &[Issue],
    ) -> std::io::Result<()> {
        if let Some(rejects) = &mut self.rejects {
            rejects.accept(customer, at, issues)?;
        }
        self.spool.push(customer)
    }

    fn repeated_id(&mut self, line: u64, first_line: u64, id: &str) -> std::io::Result<()> {
        match &mut self.rejects {
            Some(rejects) => rejects.repeated_id(line, first_line, id),
            None => Ok(()),
        }
    }
}

/// Runs one store and returns its summary; never fails (a failure is in the summary).
pub(super) async fn run(job: &Job, shared: &Shared, ctx: &Context, stop: Stop) -> UploadSummary {
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
    let result = execute(job, shared, ctx, stop, &mut summary, &mut progress)
        .instrument(span)
        .await;
    summary.finish(result.as_ref().err(), &progress, started.elapsed());
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

/// The summary of a store that could not run because of its own settings (exit 78).
pub(super) fn unready(unready: &Unready, dry_run: bool) -> UploadSummary {
    let mut summary = UploadSummary::new(unready.name.clone(), unready.input.clone(), dry_run);
    summary.store_id = unready.store_id.clone();
    let error = RunError::from(unready.error.clone());
    summary.finish(
        Some(&error),
        &Progress::default(),
        std::time::Duration::ZERO,
    );
    error!(
        store = %unready.name,
        exit_code = summary.exit_code,
        "upload failed: {error}"
    );
    summary
}

/// The ledger entry of a run, finished whatever happens.
struct Entry<'a> {
    ledger: &'a Ledger,
    id: i64,
}

async fn execute(
    job: &Job,
    shared: &Shared,
    ctx: &Context,
    stop: Stop,
    summary: &mut UploadSummary,
    progress: &mut Progress,
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
    let _lock = lock::acquire(
        &shared.state_dir,
        &job.store.store_id,
        shared.flags.wait_lock,
        &started_at,
    )
    .await?;
    let ledger = Ledger::open(&shared.state_dir)?;
    let id = ledger.start(&NewRun {
        store: &job.store.name,
        store_id: &job.store.store_id,
        feed: crate::wire::FEED_CUSTOMERS,
        input: &summary.input,
        started_at: &started_at,
    })?;
    ledger.mark_crashed(&job.store.store_id, id, &started_at)?;
    summary.run_id = Some(id);
    let entry = Entry {
        ledger: &ledger,
        id,
    };
    let started = Instant::now();
    let run = Run {
        job,
        shared,
        ctx,
        credentials: &credentials,
    };
    let result = upload(&run, stop, summary, progress, &entry).await;
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
        },
    )?;
    result
}

/// What one store's run works with.
struct Run<'a> {
    job: &'a Job,
    shared: &'a Shared,
    ctx: &'a Context,
    credentials: &'a StoreCredentials,
}

/// Everything after the ledger entry exists: snapshot, guards, resume, transaction.
async fn upload(
    run: &Run<'_>,
    stop: Stop,
    summary: &mut UploadSummary,
    progress: &mut Progress,
    entry: &Entry<'_>,
) -> Result<(), RunError> {
    let Run {
        job, shared, ctx, ..
    } = *run;
    let spool_path = spool_dir(shared).join(format!("run-{}.ndjson", entry.id));
    let (ingested, mut spool) = snapshot(job, ctx, shared, spool_path).await?;
    note_snapshot(summary, &ingested, &spool);
    entry.ledger.snapshot(
        entry.id,
        spool.rows(),
        &ingested.source.input_blake3,
        spool.blake3(),
        spool.path(),
    )?;
    let store_id = &job.store.store_id;
    if !shared.flags.force {
        guards::shrink(
            entry.ledger,
            store_id,
            spool.rows(),
            shared.guards.shrink_ratio,
        )?;
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
    let result = transact(run, stop, &spool, resume, progress, entry).await;
    guards::remove_old_spools(entry.ledger, store_id, entry.id);
    if may_resume(&result, progress) {
        spool.keep();
        info!(spool = %spool.path().display(), "snapshot kept for `rrfeed upload --resume`");
    } else {
        entry.ledger.spool_removed(entry.id)?;
    }
    result
}

/// Whether a later `--resume` could continue this run's transaction: only a stop by signal leaves one
/// open (every other failure abandons it, and a killed process keeps its snapshot by not getting here).
fn may_resume(result: &Result<(), RunError>, progress: &Progress) -> bool {
    progress.transactionid.is_some()
        && !progress.ended
        && matches!(result, Err(RunError::Driver(DriverError::Interrupted(_))))
}

async fn transact(
    run: &Run<'_>,
    stop: Stop,
    spool: &Spool,
    resume: Option<ResumePoint>,
    progress: &mut Progress,
    entry: &Entry<'_>,
) -> Result<(), RunError> {
    let Run {
        job, shared, ctx, ..
    } = *run;
    let api = shared.api.as_ref().expect("a real run has API settings");
    let client = Client::new(api, Some(run.credentials.clone()))
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
    let mut reporter = Reporter::new(&job.store.name, spool.rows());
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
        reporter.update(p);
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
    reporter.finish();
    Ok(result?)
}

fn spool_dir(shared: &Shared) -> PathBuf {
    shared.state_dir.join("spool")
}

fn note_snapshot(summary: &mut UploadSummary, ingested: &Ingested, spool: &Spool) {
    summary.rows = Some(spool.rows());
    summary.encoding = Some(ingested.source.encoding);
    summary.format = Some(ingested.source.format);
    summary.warnings = ingested.warnings.summaries();
}

/// A dry run: the snapshot and the guards, with no lock, no ledger entry and no call.
async fn dry_run(
    job: &Job,
    shared: &Shared,
    ctx: &Context,
    summary: &mut UploadSummary,
) -> Result<(), RunError> {
    let path = spool_dir(shared).join(format!("dry-run-{}.ndjson", uuid::Uuid::new_v4()));
    let (ingested, spool) = snapshot(job, ctx, shared, path).await?;
    note_snapshot(summary, &ingested, &spool);
    summary.chunks = Some(totals::chunks(spool.rows(), shared.flags.chunk_size).count());
    if spool.rows() == 0 && !shared.flags.allow_empty {
        return Err(DriverError::EmptyRefused.into());
    }
    if !shared.flags.force && shared.state_dir.join(crate::ledger::LEDGER_FILE).exists() {
        let ledger = Ledger::open(&shared.state_dir)?;
        guards::shrink(
            &ledger,
            &job.store.store_id,
            spool.rows(),
            shared.guards.shrink_ratio,
        )?;
    }
    Ok(())
}

/// Reads and validates the whole input into a snapshot, on a blocking thread.
async fn snapshot(
    job: &Job,
    ctx: &Context,
    shared: &Shared,
    path: PathBuf,
) -> Result<(Ingested, Spool), RunError> {
    let spec: InputSpec = job.input.clone();
    let rejects_path = shared.flags.rejects.clone();
    let options = IngestOptions {
        strict: shared.flags.strict,
        normalizer: Normalizer::with_rules(ctx.today, job.store.rules.clone()),
    };
    // A blocking thread does not inherit the store's span: carry it, so that these lines name the store.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _in_store = span.enter();
        let unwritable = |e: std::io::Error| {
            ConfigError::invalid(
                "RRFEED_STATE_DIR",
                format!("cannot write a snapshot at {}: {e}", path.display()),
            )
        };
        let rejects = match &rejects_path {
            Some(p) => Some(Rejects::create(p).map_err(|e| {
                ConfigError::invalid("--rejects", format!("cannot write {}: {e}", p.display()))
            })?),
            None => None,
        };
        let mut writer = Snapshot {
            spool: SpoolWriter::create(&path).map_err(unwritable)?,
            rejects,
        };
        let ingested = ingest::ingest(&spec, options, &mut writer);
        if let Some(rejects) = &mut writer.rejects {
            rejects.flush().map_err(|e| {
                ConfigError::invalid("--rejects", format!("cannot write the rejects file: {e}"))
            })?;
        }
        let writer = writer.spool;
        let ingested = match ingested {
            Ok(i) => i,
            Err(e) => {
                drop(writer);
                let _ = std::fs::remove_file(&path);
                return Err(match e {
                    IngestError::Input(e) => e.into(),
                    // A full disk or a read-only state dir: the operator's to fix (exit 78).
                    IngestError::Storage { what, source } => ConfigError::invalid(
                        "RRFEED_STATE_DIR",
                        format!("cannot {what} at {}: {source}", path.display()),
                    )
                    .into(),
                });
            }
        };
        let spool = writer.finish().map_err(unwritable)?;
        info!(
            rows = spool.rows(),
            encoding = ingested.source.encoding.name(),
            warnings = ingested.warnings.total(),
            "input read and validated"
        );
        Ok((ingested, spool))
    })
    .await
    .map_err(|e| RunError::Internal(format!("the reading thread failed: {e}")))?
}
