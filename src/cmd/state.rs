//! `rrfeed state migrate|export|import` (docs/fleet.md): bring the PostgreSQL schema up to date, and
//! move a ledger from one backend to another — `export` writes every run as one JSON object a line,
//! `import` adds them to the configured ledger, keeping which run resumed which.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use crate::cli::{GlobalArgs, StateCommand, StateExportArgs, StateImportArgs};
use crate::config::{Config, Overrides};
use crate::error::{Exit, RunError};
use crate::ledger::{self, RunRecord};
use crate::state::State;

use super::Context;

pub fn run(command: &StateCommand, global: &GlobalArgs, ctx: &Context) -> Exit {
    let done = state(global, ctx).and_then(|state| match command {
        StateCommand::Migrate => migrate(&state),
        StateCommand::Export(args) => export(&state, args),
        StateCommand::Import(args) => import(&state, args),
    });
    match done {
        Ok(text) => {
            if !text.is_empty() {
                crate::output::print(&format!("{text}\n"));
            }
            Exit::Success
        }
        Err(e) => {
            tracing::error!("rrfeed state: {e}");
            e.exit()
        }
    }
}

fn state(global: &GlobalArgs, ctx: &Context) -> Result<State, RunError> {
    let config = Config::load(global.config.as_deref())?;
    let overrides = Overrides {
        state_dir: global.state_dir.clone(),
        ca_cert: global.ca_cert.clone(),
        ..Overrides::default()
    };
    Ok(config.state(&overrides, &ctx.env)?)
}

fn migrate(state: &State) -> Result<String, RunError> {
    let Some(target) = &state.postgres else {
        return Err(RunError::Config(crate::config::ConfigError::invalid(
            "state_url",
            format!(
                "is not set: the state is the SQLite files in {}, which update themselves",
                state.dir.display()
            ),
        )));
    };
    let mut client = target
        .connect_only()
        .map_err(|e| RunError::Unavailable(e.to_string()))?;
    let applied = crate::state::postgres::blocking(|| crate::state::postgres::migrate(&mut client))
        .map_err(RunError::Unavailable)?;
    crate::state::postgres::blocking(move || drop(client));
    Ok(match applied.as_slice() {
        [] => format!("{}: the schema is up to date", target.describe()),
        versions => format!(
            "{}: applied schema version(s) {}",
            target.describe(),
            versions
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

fn export(state: &State, args: &StateExportArgs) -> Result<String, RunError> {
    let Some(ledger) = ledger::open_existing(state)? else {
        return Err(RunError::NotFound(format!(
            "there is no ledger in {}",
            state.dir.display()
        )));
    };
    let mut runs = ledger.history(None, None, usize::MAX)?;
    runs.reverse();
    let mut text = String::new();
    for run in &runs {
        text.push_str(&serde_json::to_string(run).expect("runs serialize"));
        text.push('\n');
    }
    let io = |e: std::io::Error| RunError::Internal(format!("cannot write the runs: {e}"));
    match &args.out {
        Some(path) => std::fs::write(path, text).map_err(io)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).map_err(io)?;
            out.flush().map_err(io)?;
        }
    }
    // stdout may be the export itself: the count goes to the log.
    tracing::info!("exported {} run(s) from {}", runs.len(), state.describe());
    Ok(String::new())
}

fn import(state: &State, args: &StateImportArgs) -> Result<String, RunError> {
    let file = std::fs::File::open(&args.file)
        .map_err(|e| RunError::Refused(format!("cannot open {}: {e}", args.file.display())))?;
    let mut runs: Vec<RunRecord> = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| RunError::Refused(format!("{}: {e}", args.file.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        runs.push(serde_json::from_str(&line).map_err(|e| {
            RunError::Refused(format!(
                "{} line {}: not a run exported by `rrfeed state export` ({e})",
                args.file.display(),
                i + 1
            ))
        })?);
    }
    let ledger = ledger::open(state)?;
    let held = ledger.history(None, None, 1)?.len();
    if held > 0 && !args.append {
        return Err(RunError::Refused(format!(
            "{} already holds runs: importing would mix two histories; pass --append if that is meant",
            state.describe()
        )));
    }
    let mut ids: HashMap<i64, i64> = HashMap::new();
    for run in &runs {
        let from = run.resumed_from.and_then(|old| ids.get(&old).copied());
        ids.insert(run.id, ledger.import(run, from)?);
    }
    Ok(format!(
        "imported {} run(s) into {}",
        runs.len(),
        state.describe()
    ))
}
