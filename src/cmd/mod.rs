//! One module per subcommand: each turns its clap arguments into settings, runs the library, prints the
//! result on stdout and returns the exit code.

pub mod config_check;
pub mod crm;
pub mod history;
pub mod mock;
pub mod prune;
pub mod state;
pub mod status;
pub mod stores;
pub mod upload;
pub mod validate;
pub mod webhook;

use std::path::{Path, PathBuf};

use crate::cli::InputArgs;
use crate::mapping::MappingRules;
use crate::source::{Format, InputSpec};

pub use crate::context::Context;

/// The input to read: `-` is stdin; the format comes from the flag, else the extension.
pub fn input_spec(file: &Path, args: &InputArgs) -> InputSpec {
    let stdin = file == Path::new("-");
    InputSpec {
        path: (!stdin).then(|| PathBuf::from(file)),
        format: args.format.unwrap_or_else(|| {
            if stdin {
                Format::Csv
            } else {
                Format::from_path(file)
            }
        }),
        encoding: args.encoding,
        delimiter: args.delimiter,
        rules: MappingRules {
            date_order: args.date_order,
            ..MappingRules::default()
        },
        json_key: args.json_key.clone(),
        sheet: args.sheet.clone(),
        places: Default::default(),
    }
}

/// The input of a configured store: `file` read as the store says (format, encoding, delimiter,
/// mapping), where the flags do not say otherwise.
pub fn store_input_spec(
    file: &Path,
    args: &InputArgs,
    store: &crate::config::StoreSettings,
) -> InputSpec {
    let mut spec = input_spec(file, args);
    if args.format.is_none()
        && let Some(format) = store.input.format
    {
        spec.format = format;
    }
    spec.encoding = spec.encoding.or(store.input.encoding);
    spec.delimiter = spec.delimiter.or(store.input.delimiter);
    spec.sheet = spec.sheet.take().or_else(|| store.input.sheet.clone());
    spec.rules = MappingRules {
        date_order: args.date_order.or(store.rules.date_order),
        ..(*store.rules).clone()
    };
    spec
}

/// Prints a result on stdout: JSON, or the human text.
pub fn print_result(json: bool, value: &impl serde::Serialize, human: impl FnOnce() -> String) {
    if json {
        crate::outln!(
            "{}",
            serde_json::to_string(value).expect("summaries always serialize")
        );
    } else {
        crate::output::print(&human());
    }
}
