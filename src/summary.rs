//! What `upload` and `validate` print on stdout: one JSON object with `--json` (README "Running it for real"), otherwise a few
//! lines for a person. Built from the run's outcome; never holds a secret.

use std::fmt::Write;

use serde::Serialize;

use crate::changes::ChangeCounts;
use crate::driver::Progress;
use crate::error::{Exit, RunError};
use crate::source::{Encoding, Format};
use crate::warnings::WarningSummary;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Succeeded,
    Failed,
    Refused,
    Interrupted,
    Unknown,
}

impl RunState {
    /// The state an exit code stands for.
    pub fn from_exit(exit: Exit) -> RunState {
        match exit {
            Exit::Success => RunState::Succeeded,
            Exit::DataErr => RunState::Refused,
            Exit::Unknown => RunState::Unknown,
            Exit::Interrupted | Exit::Terminated => RunState::Interrupted,
            _ => RunState::Failed,
        }
    }

    /// The state as JSON and the ledger write it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Refused => "refused",
            RunState::Interrupted => "interrupted",
            RunState::Unknown => "unknown",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            RunState::Succeeded => "succeeded",
            RunState::Failed => "FAILED",
            RunState::Refused => "REFUSED",
            RunState::Interrupted => "INTERRUPTED",
            RunState::Unknown => "OUTCOME UNKNOWN",
        }
    }
}

/// The result of one store's upload.
#[derive(Clone, Debug, Serialize)]
pub struct UploadSummary {
    /// The store's name in config, else its RRStoreID.
    pub store: String,
    /// The store's RRStoreID.
    pub store_id: String,
    pub feed: &'static str,
    pub state: RunState,
    pub exit_code: u8,
    pub rows: Option<u64>,
    pub chunks: Option<usize>,
    pub transactionid: Option<String>,
    pub abandoned_transactions: Vec<String>,
    pub warnings: Vec<WarningSummary>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub input: String,
    pub format: Option<Format>,
    pub encoding: Option<Encoding>,
    /// Workbooks: the worksheet read.
    pub sheet: Option<String>,
    pub dry_run: bool,
    pub restarts: u32,
    /// The run's number in the ledger (`rrfeed history`).
    pub run_id: Option<i64>,
    /// What changed since the store's last successful upload; `None` when there was nothing to
    /// compare with.
    pub changes: Option<ChangeCounts>,
    /// The comparison in words, for a person.
    #[serde(skip)]
    pub changes_note: Option<String>,
}

impl UploadSummary {
    /// A summary of a run not yet started.
    pub fn new(store: String, input: String, dry_run: bool) -> Self {
        Self {
            store_id: store.clone(),
            store,
            feed: crate::wire::FEED_CUSTOMERS,
            state: RunState::Succeeded,
            exit_code: 0,
            rows: None,
            chunks: None,
            transactionid: None,
            abandoned_transactions: Vec::new(),
            warnings: Vec::new(),
            error: None,
            duration_ms: 0,
            input,
            format: None,
            encoding: None,
            sheet: None,
            dry_run,
            restarts: 0,
            run_id: None,
            changes: None,
            changes_note: None,
        }
    }

    /// Completes the summary from how the run ended and what the driver did.
    pub fn finish(
        &mut self,
        error: Option<&RunError>,
        progress: &Progress,
        took: std::time::Duration,
    ) {
        let exit = error.map_or(Exit::Success, RunError::exit);
        let begun = progress.transactionid.is_some() || !progress.abandoned.is_empty();
        if !self.dry_run && begun {
            self.chunks = Some(progress.chunks);
        }
        self.transactionid.clone_from(&progress.transactionid);
        self.abandoned_transactions.clone_from(&progress.abandoned);
        self.restarts = progress.restarts;
        self.exit_code = exit.code();
        self.state = RunState::from_exit(exit);
        self.duration_ms = took.as_millis() as u64;
        self.error = error.map(ToString::to_string);
    }

    /// Warnings counted while reading the export, every occurrence.
    pub fn warning_count(&self) -> u64 {
        self.warnings.iter().map(|w| w.count).sum()
    }

    /// A few lines for a person.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let what = if self.dry_run { "dry run" } else { "upload" };
        let _ = writeln!(
            out,
            "{what} of {} to store {} (feed {}): {} (exit {})",
            self.input,
            self.store,
            self.feed,
            self.state.word(),
            self.exit_code
        );
        if let Some(rows) = self.rows {
            let chunks = self.chunks.map_or_else(String::new, |c| {
                let verb = if self.dry_run {
                    "to send in"
                } else {
                    "confirmed in"
                };
                format!(", {verb} {c} chunk(s)")
            });
            let _ = writeln!(out, "  rows: {rows}{chunks}");
        }
        if let Some(note) = &self.changes_note {
            let _ = writeln!(out, "  {note}");
        }
        if let Some(tx) = &self.transactionid {
            let _ = writeln!(out, "  transaction: {tx}");
        }
        if !self.abandoned_transactions.is_empty() {
            let _ = writeln!(
                out,
                "  abandoned transactions (purged by the server): {}",
                self.abandoned_transactions.join(", ")
            );
        }
        push_warnings(&mut out, &self.warnings);
        if let Some(error) = &self.error {
            let _ = writeln!(out, "  error: {error}");
        }
        let _ = writeln!(out, "  took {:.1} s", self.duration_ms as f64 / 1000.0);
        out
    }
}

/// The result of `validate`.
#[derive(Clone, Debug, Serialize)]
pub struct ValidateSummary {
    pub input: String,
    pub state: RunState,
    pub exit_code: u8,
    pub rows: Option<u64>,
    pub format: Option<Format>,
    pub encoding: Option<Encoding>,
    /// Workbooks: the worksheet read.
    pub sheet: Option<String>,
    /// CSV: the delimiter read (`tab` for a tab).
    pub delimiter: Option<String>,
    /// The birth-date column(s) and how the order of day and month was decided.
    pub date_order: Option<String>,
    pub warnings: Vec<WarningSummary>,
    pub rejects: Option<String>,
    pub rejected_values: u64,
    /// With `--store`: what changed since the store's last successful upload.
    pub changes: Option<ChangeCounts>,
    #[serde(skip)]
    pub changes_note: Option<String>,
    pub error: Option<String>,
}

impl ValidateSummary {
    pub fn human(&self) -> String {
        let mut out = String::new();
        let verdict = match self.state {
            RunState::Succeeded => "usable",
            _ => "NOT usable",
        };
        let _ = writeln!(out, "{}: {verdict} (exit {})", self.input, self.exit_code);
        if let (Some(rows), Some(format), Some(encoding)) = (self.rows, self.format, self.encoding)
        {
            let read = match &self.sheet {
                Some(sheet) => format!("sheet \"{sheet}\""),
                None => encoding.name().to_owned(),
            };
            let _ = writeln!(out, "  rows: {rows} ({} in {read})", serde_plain(&format));
        }
        if let Some(delimiter) = &self.delimiter {
            let _ = writeln!(out, "  delimiter: {delimiter}");
        }
        if let Some(order) = &self.date_order {
            let _ = writeln!(out, "  date order: {order}");
        }
        if let Some(note) = &self.changes_note {
            let _ = writeln!(out, "  {note}");
        }
        push_warnings(&mut out, &self.warnings);
        if let Some(path) = &self.rejects {
            let _ = writeln!(
                out,
                "  rejected values written to {path}: {}",
                self.rejected_values
            );
        }
        if let Some(error) = &self.error {
            let _ = writeln!(out, "  error: {error}");
        }
        out
    }
}

/// The table printed at the end of a many-store run.
pub fn upload_table(summaries: &[UploadSummary]) -> String {
    let header = [
        "STORE",
        "STATE",
        "EXIT",
        "ROWS",
        "CHUNKS",
        "CHANGES",
        "TRANSACTION",
        "SECONDS",
    ];
    let rows: Vec<[String; 8]> = summaries
        .iter()
        .map(|s| {
            [
                s.store.clone(),
                s.state.word().to_owned(),
                s.exit_code.to_string(),
                s.rows.map_or_else(|| "-".into(), |r| r.to_string()),
                s.chunks.map_or_else(|| "-".into(), |c| c.to_string()),
                s.changes.map_or_else(|| "-".into(), |c| c.short()),
                s.transactionid.clone().unwrap_or_else(|| "-".into()),
                format!("{:.1}", s.duration_ms as f64 / 1000.0),
            ]
        })
        .collect();
    let mut out = table(&header, &rows);
    for s in summaries.iter().filter(|s| s.error.is_some()) {
        let _ = writeln!(
            out,
            "{}: {}",
            s.store,
            s.error.as_deref().unwrap_or_default()
        );
    }
    if summaries.iter().any(|s| s.changes.is_some()) {
        out.push_str("changes since the last success: +added -removed ~changed =unchanged\n");
    }
    let failed = summaries.iter().filter(|s| s.exit_code != 0).count();
    let _ = writeln!(out, "{} store(s), {} failed", summaries.len(), failed);
    out
}

/// Left-aligned columns separated by two spaces.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

fn push_warnings(out: &mut String, warnings: &[WarningSummary]) {
    for w in warnings {
        let _ = writeln!(
            out,
            "  warning: {} × {} (e.g. {})",
            w.count,
            w.code.as_str(),
            w.example
        );
    }
}

fn serde_plain(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_the_same_in_json_and_the_ledger() {
        for state in [
            RunState::Succeeded,
            RunState::Failed,
            RunState::Refused,
            RunState::Interrupted,
            RunState::Unknown,
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
    }
}
