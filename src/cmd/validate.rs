//! `rrfeed validate FILE [--rejects OUT.csv]`: the same reading and normalization as an upload, with no
//! network; every value that had to be dropped can be written out for the dealer system's people to fix.

use std::fs::File;
use std::io;

use std::sync::Arc;

use crate::cli::{GlobalArgs, ValidateArgs};
use crate::config::{Config, ConfigError};
use crate::customer::{Customer, Normalizer};
use crate::error::Exit;
use crate::ingest::{self, IngestError, IngestOptions, RowSink};
use crate::mapping::MappingRules;
use crate::protocol::Field;
use crate::source::InputSpec;
use crate::source::{InputError, Location};
use crate::summary::{RunState, ValidateSummary};
use crate::warnings::Issue;

use super::{Context, input_spec, print_result};

/// Writes one CSV line per rejected value: line, record, field, value, reason.
struct Rejects {
    out: Option<csv::Writer<File>>,
    values: u64,
}

impl RowSink for Rejects {
    fn accept(&mut self, _: &Customer, at: Location, issues: &[Issue]) -> io::Result<()> {
        self.values += issues.len() as u64;
        let Some(out) = &mut self.out else {
            return Ok(());
        };
        for issue in issues {
            out.write_record([
                at.line.to_string().as_str(),
                at.record.to_string().as_str(),
                issue.field.name(),
                issue.value.as_str(),
                issue.reason().as_str(),
            ])?;
        }
        Ok(())
    }

    fn repeated_id(&mut self, line: u64, first_line: u64, id: &str) -> io::Result<()> {
        self.values += 1;
        if let Some(out) = &mut self.out {
            out.write_record([
                line.to_string().as_str(),
                "",
                Field::PartnerCustomerId.name(),
                id,
                format!("repeats the PartnerCustomerID of line {first_line}").as_str(),
            ])?;
        }
        Ok(())
    }
}

pub fn run(args: &ValidateArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    let mut spec = input_spec(&args.file, &args.input);
    let rules = match store_rules(args, global, ctx, &mut spec) {
        Ok(rules) => rules,
        Err(e) => {
            eprintln!("rrfeed validate: {e}");
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
        warnings: Vec::new(),
        rejects: args.rejects.as_ref().map(|p| p.display().to_string()),
        rejected_values: 0,
        error: None,
    };
    let result = validate(args, ctx, &spec, rules, &mut summary);
    let exit = match result {
        Ok(()) => Exit::Success,
        Err(e) => {
            summary.error = Some(e.to_string());
            Exit::DataErr
        }
    };
    summary.exit_code = exit.code();
    summary.state = RunState::from_exit(exit);
    print_result(args.json, &summary, || summary.human());
    exit
}

/// With `--store`, reads as that configured store does: its mapping, encoding, delimiter and format.
fn store_rules(
    args: &ValidateArgs,
    global: &GlobalArgs,
    ctx: &Context,
    spec: &mut InputSpec,
) -> Result<Arc<MappingRules>, ConfigError> {
    let Some(name) = &args.store else {
        return Ok(Arc::default());
    };
    let store = Config::load(global.config.as_deref())?.store_named(name, &ctx.env)?;
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
    let out = match &args.rejects {
        Some(path) => {
            let mut writer = csv::Writer::from_path(path).map_err(|e| {
                InputError::new(&path.display().to_string(), format!("cannot write: {e}"))
            })?;
            writer
                .write_record(["line", "record", "field", "value", "reason"])
                .map_err(|e| InputError::new(&path.display().to_string(), e.to_string()))?;
            Some(writer)
        }
        None => None,
    };
    let mut rejects = Rejects { out, values: 0 };
    let options = IngestOptions {
        strict: args.strict,
        normalizer: Normalizer::with_rules(ctx.today, rules),
    };
    let result = ingest::ingest(spec, options, &mut rejects);
    summary.rejected_values = rejects.values;
    if let Some(mut out) = rejects.out.take() {
        out.flush().map_err(|e| {
            InputError::new(
                summary.rejects.as_deref().unwrap_or("rejects"),
                e.to_string(),
            )
        })?;
    }
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
    summary.warnings = ingested.warnings.summaries();
    Ok(())
}
