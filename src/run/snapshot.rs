//! The snapshot of a run: the whole export read, validated and spooled on a blocking thread, with the
//! rejects file beside it when one was asked for (docs/transaction.md, step 1), and compared with the
//! store's last successful upload (docs/changes.md).

use std::path::PathBuf;

use tracing::info;

use super::{Job, Settings};
use crate::changes::{self, ChangeReport, CompareError, Comparing, Tonight};
use crate::config::ConfigError;
use crate::context::Context;
use crate::customer::{Customer, Normalizer};
use crate::error::RunError;
use crate::ingest::{self, IngestError, IngestOptions, Ingested, RowSink};
use crate::rejects::Rejects;
use crate::source::{InputSpec, Location};
use crate::spool::{Spool, SpoolWriter};
use crate::warnings::Issue;

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
        // The comparison takes the row next (`ingest_comparing`): its fingerprint then reads values
        // the serializer just brought into cache.
        self.spool.push(customer)
    }

    fn repeated_id(&mut self, line: u64, first_line: u64, id: &str) -> std::io::Result<()> {
        match &mut self.rejects {
            Some(rejects) => rejects.repeated_id(line, first_line, id),
            None => Ok(()),
        }
    }
}

/// A run's snapshot, read and compared.
pub(super) struct Snapshotted {
    pub ingested: Ingested,
    pub spool: Spool,
    pub tonight: Tonight,
}

/// Reads and validates the whole input into a snapshot, and compares it with the store's last
/// successful upload, on a blocking thread. `run` is the ledger's number of a real run (`None` for a
/// dry run, which remembers nothing).
pub(super) async fn snapshot(
    job: &Job,
    ctx: &Context,
    shared: &Settings,
    path: PathBuf,
    run: Option<i64>,
) -> Result<Snapshotted, RunError> {
    let spec: InputSpec = job.input.clone();
    let rejects_path = shared.flags.rejects.clone();
    let changes_path = shared.flags.changes.clone();
    let changes_values = shared.flags.changes_values;
    let state = shared.state.clone();
    let store_id = job.store.store_id.clone();
    let scratch = path.parent().unwrap_or(&path).to_owned();
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
        let mut report = match &changes_path {
            Some(p) => Some(ChangeReport::create(p, changes_values).map_err(|e| {
                ConfigError::invalid("--changes", format!("cannot write {}: {e}", p.display()))
            })?),
            None => None,
        };
        let baseline = changes::Loading::start(&state, &store_id, &scratch);
        let mut writer = Snapshot {
            spool: SpoolWriter::create(&path).map_err(unwritable)?,
            rejects,
        };
        let comparing = Comparing::new(
            baseline,
            &store_id,
            &scratch,
            report.as_mut(),
            run,
            changes_values,
        );
        let read = ingest::ingest_comparing(&spec, options, &mut writer, comparing);
        if let Some(rejects) = &mut writer.rejects {
            rejects.flush().map_err(|e| {
                ConfigError::invalid("--rejects", format!("cannot write the rejects file: {e}"))
            })?;
        }
        let Snapshot { spool: writer, .. } = writer;
        let (ingested, tonight) = match read {
            Ok(read) => read,
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
                    IngestError::Compare(CompareError::Report(e)) => {
                        ConfigError::invalid("--changes", e.to_string()).into()
                    }
                    IngestError::Compare(CompareError::Storage(e)) => ConfigError::invalid(
                        "RRFEED_STATE_DIR",
                        format!(
                            "cannot compare with the last upload in {}: {e}",
                            scratch.display()
                        ),
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
        if let Some(counts) = tonight.comparison.counts {
            info!(changes = %counts.describe(), "compared with the last successful upload");
        }
        Ok(Snapshotted {
            ingested,
            spool,
            tonight,
        })
    })
    .await
    .map_err(|e| RunError::Internal(format!("the reading thread failed: {e}")))?
}
