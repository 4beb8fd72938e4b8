//! The top of the program: builds the runtime and the context, and runs the chosen command.

use crate::cli::{Cli, Command};
use crate::cmd::{self, Context};
use crate::error::Exit;

/// Runs a parsed command line and returns its exit code.
pub fn run(cli: Cli) -> Exit {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rrfeed: cannot start the async runtime: {e}");
            return Exit::Internal;
        }
    };
    let ctx = Context::from_process();
    match &cli.command {
        Command::Upload(args) => runtime.block_on(cmd::upload::run(args, &cli.global, &ctx)),
        Command::Validate(args) => cmd::validate::run(args, &ctx),
        Command::Mock(args) => runtime.block_on(cmd::mock::run(args, &ctx)),
    }
}
