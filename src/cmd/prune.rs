//! `rrfeed prune [--older-than AGE]`: forgets old runs and removes old snapshots (see `prune`).

use std::time::Duration;

use crate::cli::{GlobalArgs, PruneArgs};
use crate::config::{Config, Overrides};
use crate::error::{Exit, RunError};
use crate::prune::{self, Pruned};

use super::{Context, print_result};

pub fn run(args: &PruneArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    match pruned(args, global, ctx) {
        Ok(done) => {
            print_result(args.json, &done, || describe(&done));
            Exit::Success
        }
        Err(e) => {
            tracing::error!("rrfeed prune: {e}");
            e.exit()
        }
    }
}

fn pruned(args: &PruneArgs, global: &GlobalArgs, ctx: &Context) -> Result<Pruned, RunError> {
    let config = Config::load(global.config.as_deref())?;
    let older_than = match args.older_than {
        Some(age) => age,
        // "forever" in the config: an explicit prune still needs an age, so it prunes nothing.
        None => config.retention()?.unwrap_or(Duration::MAX),
    };
    let overrides = Overrides {
        state_dir: global.state_dir.clone(),
        ..Overrides::default()
    };
    let state = config.state(&overrides, &ctx.env)?;
    Ok(prune::prune(&state, older_than, (ctx.now)(), args.dry_run)?)
}

fn describe(done: &Pruned) -> String {
    let verb = if done.dry_run {
        "would forget"
    } else {
        "forgot"
    };
    format!(
        "{verb} {} run(s) and {} {} snapshot(s)\n",
        done.runs,
        if done.dry_run { "remove" } else { "removed" },
        done.snapshots
    )
}
