//! `rrfeed validate FILE [--rejects OUT.csv]`: the same reading and normalization as an upload, with no
//! network; every value that had to be dropped can be written out for the dealer system's people to fix.
//! With `--store`, what changed since that store's last successful upload is counted too (and
//! `--changes` lists it), against the same state an upload would use.

use std::path::Path;
use std::sync::Arc;

use crate::changes::{self, ChangeReport, CompareError, Comparing, Tonight};
use crate::cli::{GlobalArgs, ValidateArgs};
use crate::config::{Config, ConfigError, Guards, Overrides};
use crate::customer::Normalizer;
use crate::error::Exit;
use crate::ingest::{self, IngestError, IngestOptions};
use crate::mapping::MappingRules;
use crate::rejects::Rejects;
use crate::source::{InputError, InputSpec};
use crate::state::State;
use crate::summary::{RunState, ValidateSummary};

/// The configured store an export is validated for: where its last upload is remembered.
struct ForStore {
    state: State,
    store_id: String,
    guards: Guards,
}

use super::{Context, input_spec, print_result};

pub fn run(args: &ValidateArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    let mut spec = input_spec(&args.file, &args.input);
    let (rules, store) = match store_rules(args, global, ctx, &mut spec) {
        Ok(found) => found,
        Err(e) => {
            tracing::error!("rrfeed validate: {e}");
            return Exit::Config;
        }
    };
    let mut summary = ValidateSummary {
        input: spec.display_name(),
        state: RunState::Succeeded,
        exit_code: 0,
        rows: None,
        format: Some(spec.format),
        encoding: None,
        sheet: None,
        delimiter: None,
        date_order: None,
        warnings: Vec::new(),
        rejects: args.rejects.as_ref().map(|p| p.display().to_string()),
        rejected_values: 0,
        changes: None,
        changes_note: None,
        error: None,
    };
    let result = validate(args, ctx, &spec, rules, store.as_ref(), &mut summary);
    let exit = match result {
        Ok(()) => Exit::Success,
        Err(e) => {
            tracing::error!(input = %summary.input, exit_code = Exit::DataErr.code(), "validate failed: {e}");
            summary.error = Some(e.to_string());
            Exit::DataErr
        }
    };
    if !summary.warnings.is_empty() {
        crate::output::warned();
    }
    summary.exit_code = exit.code();
    summary.state = RunState::from_exit(exit);
    print_result(args.json, &summary, || summary.human());
    exit
}

/// With `--store`, reads as that configured store does: its mapping, encoding, delimiter and format;
/// and finds where its last upload is remembered.
fn store_rules(
    args: &ValidateArgs,
    global: &GlobalArgs,
    ctx: &Context,
    spec: &mut InputSpec,
) -> Result<(Arc<MappingRules>, Option<ForStore>), ConfigError> {
    let Some(name) = &args.store else {
        return Ok((Arc::default(), None));
    };
    let config = Config::load(global.config.as_deref())?;
    let store = config.store_named(name)?;
    *spec = super::store_input_spec(&args.file, &args.input, &store);
    let overrides = Overrides {
        state_dir: global.state_dir.clone(),
        ca_cert: global.ca_cert.clone(),
        ..Overrides::default()
    };
    let target = ForStore {
        state: config.state(&overrides, &ctx.env)?,
        store_id: store.store_id.clone(),
        guards: config.guards()?,
    };
    Ok((store.rules, Some(target)))
}

fn validate(
    args: &ValidateArgs,
    ctx: &Context,
    spec: &InputSpec,
    rules: Arc<MappingRules>,
    store: Option<&ForStore>,
    summary: &mut ValidateSummary,
) -> Result<(), InputError> {
    let mut report = match &args.changes {
        Some(path) => Some(
            ChangeReport::create(path, args.changes_values).map_err(|e| {
                InputError::new(&path.display().to_string(), format!("cannot write: {e}"))
            })?,
        ),
        None => None,
    };
    let mut rejects = match &args.rejects {
        Some(path) => Rejects::create(path).map_err(|e| {
            InputError::new(&path.display().to_string(), format!("cannot write: {e}"))
        })?,
        None => Rejects::count_only(),
    };
    let options = IngestOptions {
        strict: args.strict,
        normalizer: Normalizer::with_rules(ctx.today, rules),
    };
    let scratch = store.map(scratch_of);
    let comparing = store.zip(scratch.as_deref()).map(|(s, scratch)| {
        let baseline = changes::Loading::start(&s.state, &s.store_id, scratch);
        Comparing::new(
            baseline,
            &s.store_id,
            scratch,
            report.as_mut(),
            None,
            args.changes_values,
        )
    });
    let read = match comparing {
        Some(comparing) => ingest::ingest_comparing(spec, options, &mut rejects, comparing)
            .map(|(ingested, tonight)| (ingested, Some(tonight))),
        None => ingest::ingest(spec, options, &mut rejects).map(|ingested| (ingested, None)),
    };
    summary.rejected_values = rejects.values();
    rejects.flush().map_err(|e| {
        InputError::new(
            summary.rejects.as_deref().unwrap_or("rejects"),
            e.to_string(),
        )
    })?;
    let (ingested, tonight) =
        read.map_err(|e| read_error(e, summary.rejects.as_deref(), scratch.as_deref()))?;
    summary.rows = Some(ingested.rows);
    summary.format = Some(ingested.source.format);
    summary.encoding = Some(ingested.source.encoding);
    summary.sheet = ingested.source.sheet.clone();
    summary.delimiter = ingested.source.delimiter.map(|d| match d {
        b'\t' => "tab".to_owned(),
        d => (d as char).to_string(),
    });
    summary.date_order = ingested.date_order.map(|decision| {
        format!(
            "{}: {}",
            ingested.source.birth_date_columns.join(", "),
            decision.describe()
        )
    });
    summary.warnings = ingested.warnings.summaries();
    if let (Some(store), Some(tonight)) = (store, tonight) {
        note_changes(store, tonight, summary);
    }
    Ok(())
}

/// A failed read's error, naming the file at fault: the export, the rejects file, the change report
/// or the state directory's scratch space.
fn read_error(e: IngestError, rejects: Option<&str>, scratch: Option<&Path>) -> InputError {
    match e {
        IngestError::Input(e) => e,
        IngestError::Storage { source, .. } => InputError::new(
            rejects.unwrap_or("rejects"),
            format!("cannot write: {source}"),
        ),
        IngestError::Compare(CompareError::Report(e)) => {
            InputError::new("--changes", e.to_string())
        }
        IngestError::Compare(CompareError::Storage(e)) => InputError::new(
            &scratch.map_or_else(String::new, |p| p.display().to_string()),
            e.to_string(),
        ),
    }
}

/// Where a PostgreSQL copy of the remembered upload is downloaded to.
fn scratch_of(store: &ForStore) -> std::path::PathBuf {
    store.state.dir.join("spool")
}

/// What changed since the store's last successful upload, and whether the churn guard would refuse
/// the upload.
fn note_changes(store: &ForStore, tonight: Tonight, summary: &mut ValidateSummary) {
    let comparison = tonight.comparison;
    let mut note = comparison.note();
    if let Err(refusal) = comparison.churn_guard(store.guards.churn_ratio) {
        note.push_str(&format!(
            "\n  an upload would be REFUSED (exit 65): {refusal}"
        ));
    }
    summary.changes = comparison.counts;
    summary.changes_note = Some(note);
}
