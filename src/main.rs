//! The `rrfeed` binary: parse arguments, start logging, run, exit with the documented code.

use clap::Parser;
use rrfeed::error::Exit;
use rrfeed::telemetry::TelemetryError;

fn main() -> std::process::ExitCode {
    let cli = rrfeed::cli::Cli::parse();
    let global = &cli.global;
    rrfeed::output::set_quiet(global.quiet);
    if let Err(e) = rrfeed::telemetry::init(
        &global.log_level,
        global.log_format,
        global.log_file.as_deref(),
    ) {
        eprintln!("rrfeed: {e}");
        return match e {
            TelemetryError::Filter(_) => Exit::Usage,
            TelemetryError::LogFile { .. } => Exit::Config,
        }
        .into();
    }
    let exit = rrfeed::app::run(cli);
    rrfeed::output::finish(exit);
    exit.into()
}
