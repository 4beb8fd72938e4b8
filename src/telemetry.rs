//! Logging through tracing, to stderr (stdout is for results only) and, with `--log-file`, appended to
//! a file too. `RUST_LOG` overrides `--log-level`; `--log-format json` suits log collectors. Nothing
//! logged anywhere carries a secret.

use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt};

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber. `level` is a tracing filter such as `info` or `rrfeed=debug`.
///
/// Fails when the log file cannot be opened for appending.
pub fn init(level: &str, format: LogFormat, log_file: Option<&Path>) -> std::io::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let mut layers: Vec<BoxedLayer> = vec![layer(format, std::io::stderr, true)];
    if let Some(path) = log_file {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        layers.push(layer(format, Mutex::new(file), false));
    }
    // A second init (tests that run twice in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(layers.with_filter(filter))
        .try_init();
    Ok(())
}

fn layer<W>(format: LogFormat, writer: W, ansi: bool) -> BoxedLayer
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let base = fmt::layer().with_writer(writer).with_target(false);
    match format {
        LogFormat::Text => base
            .with_ansi(ansi && std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => base.json().flatten_event(true).boxed(),
    }
}
