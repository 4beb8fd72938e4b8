//! The `rrfeed` binary: parse arguments, start logging, run, exit with the documented code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = rrfeed::cli::Cli::parse();
    rrfeed::telemetry::init(&cli.global.log_level, cli.global.log_format);
    rrfeed::app::run(cli).into()
}
