//! `rrfeed validate FILE [--rejects OUT.csv]`: the same reading and normalization as an upload, with no
//! network; every value that had to be dropped can be written out for the dealer system's people to fix.

use std::sync::Arc;

use crate::cli::{GlobalArgs, ValidateArgs};
use crate::config::{Config, ConfigError};
use crate::customer::Normalizer;
use crate::error::Exit;
use crate::ingest::{self, IngestError, IngestOptions};
use crate::mapping::MappingRules;
use crate::rejects::Rejects;
use crate::source::InputError;
use crate::source::InputSpec;
use crate::summary::{RunState, ValidateSummary};

use super::{Context, input_spec, print_result};

pub fn run(args: &ValidateArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    let mut spec = input_spec(&args.file, &args.input);
    let rules = match store_rules(args, global, &mut spec) {
        Ok(rules) => rules,
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
        delimiter: None,
        date_order: None,
        warnings: Vec::new(),
        rejects: args.rejects.as_ref().map(|p| p.display().to_string()),
        rejected_values: 0,
        error: None,
    };
    let result = validate(args, ctx, &spec, rules, &mut summary);
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

/// With `--store`, reads as that configured store does: its mapping, encoding, delimiter and format.
fn store_rules(
    args: &ValidateArgs,
    global: &GlobalArgs,
    spec: &mut InputSpec,
) -> Result<Arc<MappingRules>, ConfigError> {
    let Some(name) = &args.store else {
        return Ok(Arc::default());
    };
    let store = Config::load(global.config.as_deref())?.store_named(name)?;
    *spec = super::store_input_spec(&args.file, &args.input, &store);
    Ok(store.rules)
}

fn validate(
    args: &ValidateArgs,
    ctx: &Context,
    spec: &InputSpec,
    rules: Arc<MappingRules>,
    summary: &mut ValidateSummary,
) -> Result<(), InputError> {
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
    let result = ingest::ingest(spec, options, &mut rejects);
    summary.rejected_values = rejects.values();
    rejects.flush().map_err(|e| {
        InputError::new(
            summary.rejects.as_deref().unwrap_or("rejects"),
            e.to_string(),
        )
    })?;
    let ingested = result.map_err(|e| match e {
        IngestError::Input(e) => e,
        IngestError::Storage { source, .. } => InputError::new(
            summary.rejects.as_deref().unwrap_or("rejects"),
            format!("cannot write: {source}"),
        ),
    })?;
    summary.rows = Some(ingested.rows);
    summary.format = Some(ingested.source.format);
    summary.encoding = Some(ingested.source.encoding);
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
    Ok(())
}
