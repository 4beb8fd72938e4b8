//! Logging through tracing, to stderr (stdout is for results only) and, with `--log-file`, appended to
//! a file too. `RUST_LOG` overrides `--log-level`; both are checked, since a filter that names no
//! level (`--log-level nonsense`) would silently drop every line, warnings included. `--log-format
//! json` suits log collectors. Colours only on a terminal, and never with `NO_COLOR` set. Nothing
//! logged anywhere carries a secret.

use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt};

use crate::output;

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` holds a filter that is not one (a usage error).
    #[error("RUST_LOG: {0}")]
    Filter(String),
    #[error("cannot open the log file {path}: {source}")]
    LogFile {
        path: String,
        source: std::io::Error,
    },
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks a log filter: comma-separated levels (`info`) or `TARGET=LEVEL` directives
/// (`rrfeed=debug`). A bare word that is not a level is refused: tracing would read it as a target
/// and log nothing else.
pub fn parse_filter(text: &str) -> Result<String, String> {
    let hint = "use error, warn, info, debug, trace or off, or TARGET=LEVEL such as rrfeed=debug";
    if text.trim().is_empty() {
        return Err(format!("an empty filter logs nothing; {hint}"));
    }
    for directive in text.split(',').map(str::trim) {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, level)| level);
        if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            return Err(format!("{directive:?} is not a level; {hint}"));
        }
    }
    EnvFilter::try_new(text)
        .map(|_| text.to_owned())
        .map_err(|e| format!("{e}; {hint}"))
}

/// Whether log lines on stderr may be coloured: only on a terminal, and never with `NO_COLOR` set
/// to anything but the empty string (no-color.org).
pub fn colours(stderr_is_terminal: bool, no_color: Option<&str>) -> bool {
    stderr_is_terminal && no_color.is_none_or(str::is_empty)
}

/// Installs the global subscriber. `level` is a filter checked by [`parse_filter`].
///
/// Fails when `RUST_LOG` is not a valid filter or the log file cannot be opened for appending.
pub fn init(level: &str, format: LogFormat, log_file: Option<&Path>) -> Result<(), TelemetryError> {
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(env) if !env.trim().is_empty() => parse_filter(&env).map_err(TelemetryError::Filter)?,
        _ => level.to_owned(),
    };
    let filter = EnvFilter::try_new(filter).map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let ansi = colours(
        std::io::IsTerminal::is_terminal(&std::io::stderr()) && !output::quiet(),
        std::env::var("NO_COLOR").ok().as_deref(),
    );
    let mut layers: Vec<BoxedLayer> = vec![layer(format, output::Stderr, ansi)];
    if let Some(path) = log_file {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| TelemetryError::LogFile {
                path: path.display().to_string(),
                source,
            })?;
        layers.push(layer(format, Mutex::new(file), false));
    }
    // A second init (tests that run twice in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(layers.with_filter(filter))
        .with(output::WarningWatch.with_filter(LevelFilter::WARN))
        .try_init();
    Ok(())
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn layer<W>(format: LogFormat, writer: W, ansi: bool) -> BoxedLayer
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let base = fmt::layer().with_writer(writer).with_target(false);
    match format {
        LogFormat::Text => base.with_ansi(ansi).boxed(),
        LogFormat::Json => base.json().flatten_event(true).boxed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_target_directives_are_filters() {
        for good in [
            "info",
            "WARN",
            "rrfeed=debug",
            "warn,rrfeed::driver=trace",
            "off",
        ] {
            assert_eq!(parse_filter(good).as_deref(), Ok(good), "{good}");
        }
    }

    #[test]
    fn a_word_that_is_no_level_is_refused_with_the_choices() {
        for bad in ["nonsense", "", "info,chatty", "rrfeed=loud"] {
            let error = parse_filter(bad).unwrap_err();
            assert!(error.contains("error, warn, info"), "{bad}: {error}");
        }
    }

    #[test]
    fn no_color_turns_colours_off_even_on_a_terminal() {
        assert!(colours(true, None));
        assert!(colours(true, Some("")));
        assert!(!colours(true, Some("1")));
        assert!(!colours(false, None));
    }
}
