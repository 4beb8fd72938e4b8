//! What the operator sees: results on stdout, log lines on stderr, and `--quiet` for cron, which mails
//! whatever a job prints. With `--quiet` both streams are held back until the command ends and are
//! written only when it failed or warned; a run that succeeded without a warning prints nothing.
//!
//! Progress bars share stderr with the log lines: every log line is written with the bars suspended,
//! so neither draws over the other.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};

use indicatif::{MultiProgress, ProgressDrawTarget};

use crate::error::Exit;

/// Held-back output larger than this is written at once: a run that talkative is not a quiet one.
const HELD_LIMIT: usize = 4 << 20;

static QUIET: AtomicBool = AtomicBool::new(false);
static WARNED: AtomicBool = AtomicBool::new(false);
static HELD_OUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static HELD_ERR: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static BARS: LazyLock<MultiProgress> =
    LazyLock::new(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));

/// Turns `--quiet` on for this process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `--quiet` holds output back (no progress bar is drawn then).
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Records that the run warned: `--quiet` then shows its output.
pub fn warned() {
    WARNED.store(true, Ordering::Relaxed);
}

/// Writes a result on stdout (or holds it back under `--quiet`).
pub fn print(text: &str) {
    if quiet() {
        hold(&HELD_OUT, text.as_bytes());
    } else {
        let mut out = std::io::stdout().lock();
        // A closed stdout (`| head`) is not the run's failure.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
}

/// Adds a progress bar below the others; log lines suspend it while they are written.
pub fn add_bar(bar: indicatif::ProgressBar) -> indicatif::ProgressBar {
    BARS.add(bar)
}

/// Removes a finished progress bar.
pub fn remove_bar(bar: &indicatif::ProgressBar) {
    BARS.remove(bar);
}

/// Called once the command is done: under `--quiet`, writes what was held back if the run failed or
/// warned, and drops it otherwise.
pub fn finish(exit: Exit) {
    if !quiet() {
        return;
    }
    if exit != Exit::Success || WARNED.load(Ordering::Relaxed) {
        release();
    }
}

/// Stops holding output back and writes what was held: logs first, then the result.
fn release() {
    QUIET.store(false, Ordering::Relaxed);
    let err = std::mem::take(&mut *lock(&HELD_ERR));
    let out = std::mem::take(&mut *lock(&HELD_OUT));
    let _ = std::io::stderr().write_all(&err);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&out).and_then(|()| stdout.flush());
}

fn lock(buffer: &Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}

fn hold(buffer: &Mutex<Vec<u8>>, bytes: &[u8]) {
    let over = {
        let mut held = lock(buffer);
        held.extend_from_slice(bytes);
        held.len() > HELD_LIMIT
    };
    if over {
        release();
    }
}

/// The writer of log lines to stderr: held back under `--quiet`, else written with the bars suspended.
#[derive(Clone, Copy, Default)]
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if quiet() {
            hold(&HELD_ERR, buf);
        } else {
            BARS.suspend(|| std::io::stderr().write_all(buf))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'w self) -> Self::Writer {
        *self
    }
}

/// A tracing layer that notes every warning or error logged, for `--quiet`.
pub struct WarningWatch;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for WarningWatch {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() <= tracing::Level::WARN {
            warned();
        }
    }
}

/// Prints a line on stdout through [`print`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::print(&format!("{}\n", format_args!($($arg)*)))
    };
}
