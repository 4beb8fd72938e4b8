//! The `rrfeed` binary: parse arguments, start logging, run, exit with the documented code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = rrfeed::cli::Cli::parse();
    let global = &cli.global;
    if let Err(e) = rrfeed::telemetry::init(
        &global.log_level,
        global.log_format,
        global.log_file.as_deref(),
    ) {
        let file = global
            .log_file
            .as_deref()
            .unwrap_or(std::path::Path::new("?"))
            .display();
        eprintln!("rrfeed: cannot open the log file {file}: {e}");
        return rrfeed::error::Exit::Config.into();
    }
    rrfeed::app::run(cli).into()
}
