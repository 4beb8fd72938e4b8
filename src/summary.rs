//! What `upload` and `validate` print on stdout: one JSON object with `--json` (SPEC §4), otherwise a few
//! lines for a person. Built from the run's outcome; never holds a secret.

use std::fmt::Write;

use serde::Serialize;

use crate::error::Exit;
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

    fn word(self) -> &'static str {
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
    pub store: String,
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
    pub dry_run: bool,
    pub restarts: u32,
}

impl UploadSummary {
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
    pub warnings: Vec<WarningSummary>,
    pub rejects: Option<String>,
    pub rejected_values: u64,
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
            let _ = writeln!(
                out,
                "  rows: {rows} ({} in {})",
                serde_plain(&format),
                encoding.name()
            );
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
