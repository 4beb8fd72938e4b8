//! Progress of an upload: a bar on an interactive terminal, otherwise (cron, CI) a log line every ten
//! chunks or thirty seconds, so a long upload never looks stuck. Log lines suspend the bars while they
//! are written (see `output`), and rates are whole rows a second.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use tracing::info;

use crate::driver::Progress;
use crate::run::Watch;

const LINE_EVERY: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(super) struct Reporter {
    bar: Option<ProgressBar>,
    total: u64,
    last_line: Option<Instant>,
}

impl Watch for Reporter {
    fn started(&mut self, store: &str, total: u64) {
        let drawn = std::io::stderr().is_terminal() && !crate::output::quiet();
        self.bar = drawn.then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} rows ({rate} rows/s, {eta} left)",
                )
                .expect("a valid template")
                .with_key(
                    "rate",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0}", state.per_sec());
                    },
                )
                .progress_chars("=> "),
            );
            bar.set_prefix(store.to_owned());
            crate::output::add_bar(bar)
        });
        self.total = total;
        self.last_line = Some(Instant::now());
    }

    fn update(&mut self, p: &Progress) {
        if let Some(bar) = &self.bar {
            bar.set_position(p.confirmed);
            return;
        }
        let last = self.last_line.get_or_insert_with(Instant::now);
        let due = (p.chunks > 0 && p.chunks.is_multiple_of(10)) || last.elapsed() >= LINE_EVERY;
        if due && p.confirmed < self.total {
            info!(
                confirmed = p.confirmed,
                of = self.total,
                chunks = p.chunks,
                "upload in progress"
            );
            self.last_line = Some(Instant::now());
        }
    }

    fn finished(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            crate::output::remove_bar(&bar);
        }
    }
}
