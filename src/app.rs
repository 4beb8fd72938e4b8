//! The top of the program: builds the runtime and the context, and runs the chosen command.

use clap::CommandFactory;

use crate::cli::{Cli, Command, ConfigCommand, WebhookCommand};
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
    let global = &cli.global;
    match &cli.command {
        Command::Upload(args) => runtime.block_on(cmd::upload::run(args, global, &ctx)),
        Command::Validate(args) => cmd::validate::run(args, global, &ctx),
        Command::Mock(args) => runtime.block_on(cmd::mock::run(args, &ctx)),
        Command::Stores(args) => runtime.block_on(cmd::stores::run(args, global, &ctx)),
        Command::History(args) => cmd::history::run(args, global, &ctx),
        Command::Status(args) => cmd::status::run(args, global, &ctx),
        Command::Prune(args) => cmd::prune::run(args, global, &ctx),
        Command::State(command) => cmd::state::run(command, global, &ctx),
        Command::Config(ConfigCommand::Check(args)) => cmd::config_check::run(args, global, &ctx),
        Command::Crm(command) => runtime.block_on(cmd::crm::run(command, global, &ctx)),
        Command::Webhook(WebhookCommand::Serve(args)) => {
            runtime.block_on(cmd::webhook::serve(args, global, &ctx))
        }
        Command::Webhook(WebhookCommand::Export(args)) => cmd::webhook::export(args, global, &ctx),
        Command::Webhook(WebhookCommand::Status(args)) => cmd::webhook::status(args, global, &ctx),
        Command::Completions(args) => {
            let mut command = Cli::command();
            clap_complete::generate(args.shell, &mut command, "rrfeed", &mut std::io::stdout());
            Exit::Success
        }
        Command::Man => man(),
    }
}

fn man() -> Exit {
    let page = clap_mangen::Man::new(Cli::command());
    match page.render(&mut std::io::stdout()) {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("rrfeed man: {e}");
            Exit::Internal
        }
    }
}
