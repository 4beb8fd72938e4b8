//! What changed since the store's last successful upload (docs/changes.md): tonight's customers,
//! sorted on disk by `PartnerCustomerID`, are merged in one pass with the remembered ids and row
//! fingerprints of that upload, counting customers added, removed, changed and unchanged, writing the
//! `--changes` report, finding repeated ids (`Comparing`: a read that compares needs no check of its
//! own), and writing the state to remember should tonight's upload succeed. Memory stays
//! a few MiB whatever the store's size. The churn guard refuses a night that would remove or change
//! too many of the customers the platform has.

pub mod baseline;
mod fingerprint;
mod known;
mod log;
mod report;

use std::io::{self, BufRead, Write};
use std::path::Path;

use tempfile::TempPath;
use tracing::warn;

use serde::{Deserialize, Serialize};

pub use known::{KnownReader, KnownWriter};
use log::ChangeLog;
pub use log::Repeat;
pub use report::ChangeReport;

use crate::state::State;
use crate::wire::Field;

/// How many examples of removed or changed ids a refusal names.
const EXAMPLES: usize = 3;

/// How tonight's customers differ from the last successful upload's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    pub unchanged: u64,
}

impl ChangeCounts {
    /// Customers the last upload had.
    pub fn before(&self) -> u64 {
        self.removed + self.changed + self.unchanged
    }

    /// `+5 -10 ~7 =78`, for tables.
    pub fn short(&self) -> String {
        format!(
            "+{} -{} ~{} ={}",
            self.added, self.removed, self.changed, self.unchanged
        )
    }

    /// `5 added, 10 removed, 7 changed, 78 unchanged`.
    pub fn describe(&self) -> String {
        format!(
            "{} added, {} removed, {} changed, {} unchanged",
            self.added, self.removed, self.changed, self.unchanged
        )
    }
}

/// The outcome of the comparison.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// `None` when there was nothing to compare with (the store's first upload).
    pub counts: Option<ChangeCounts>,
    /// The ledger's number of the run compared with, when known.
    pub since_run: Option<i64>,
    /// Customers without a `PartnerCustomerID`: counted, not compared.
    pub without_id: u64,
    /// Customers whose id an earlier customer of the export had: only the first is compared.
    pub repeated: u64,
    /// The first few ids removed or changed, in id order.
    pub examples: Vec<String>,
}

impl Comparison {
    /// Refuses a night that removes or changes more than `ratio` of the last upload's customers.
    ///
    /// Fails with the reason, naming the counts and a few ids.
    pub fn churn_guard(&self, ratio: f64) -> Result<(), String> {
        let Some(counts) = self.counts else {
            return Ok(());
        };
        let before = counts.before();
        let churned = counts.removed + counts.changed;
        if before == 0 || churned as f64 <= ratio * before as f64 {
            return Ok(());
        }
        let since = self
            .since_run
            .map_or_else(String::new, |run| format!(" (run {run})"));
        Err(format!(
            "{churned} of the {before} customers of the last successful upload{since} would be \
             removed ({}) or changed ({}), more than {:.0}% (guards.churn_ratio); for example \
             PartnerCustomerID {}. Is this the store's own export, with its own customer ids? \
             Pass --force if the change is real",
            counts.removed,
            counts.changed,
            ratio * 100.0,
            self.examples.join(", ")
        ))
    }
}

impl Comparison {
    /// One line for a person: the counts and what they were compared with.
    pub fn note(&self) -> String {
        let mut note = match (self.counts, self.since_run) {
            (Some(counts), Some(run)) => format!("changes since run {run}: {}", counts.describe()),
            (Some(counts), None) => format!("changes since the last upload: {}", counts.describe()),
            (None, _) => {
                "changes: nothing to compare with (no successful upload of this store remembered yet)"
                    .to_owned()
            }
        };
        let mut aside = Vec::new();
        if self.without_id > 0 {
            aside.push(format!("{} without a PartnerCustomerID", self.without_id));
        }
        if self.repeated > 0 {
            aside.push(format!("{} repeating an earlier id", self.repeated));
        }
        if !aside.is_empty() {
            note.push_str(&format!(" ({}, not compared)", aside.join(", ")));
        }
        note
    }
}

/// Why the comparison could not be made.
#[derive(Debug)]
pub enum CompareError {
    /// The `--changes` file could not be written (the error names it).
    Report(io::Error),
    /// A temporary file, or the state to remember, could not be written or read back.
    Storage(io::Error),
}

impl From<io::Error> for CompareError {
    fn from(e: io::Error) -> Self {
        CompareError::Storage(e)
    }
}

impl std::fmt::Display for CompareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompareError::Report(e) | CompareError::Storage(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CompareError {}

/// Tonight's comparison, and the state to remember once the upload succeeded.
pub struct Tonight {
    pub comparison: Comparison,
    /// Written for a real run (`run` given), in the scratch directory; removed when dropped.
    pub remember: Option<TempPath>,
}

/// The store's remembered upload, being found and checked on a thread of its own while the export
/// is read.
pub struct Loading {
    thread: std::thread::JoinHandle<Result<Option<baseline::Baseline>, String>>,
}

impl Loading {
    /// Starts loading the remembered upload of `store_id` (a PostgreSQL copy goes to `scratch`).
    pub fn start(state: &State, store_id: &str, scratch: &Path) -> Self {
        let (state, store_id, scratch) = (state.clone(), store_id.to_owned(), scratch.to_owned());
        let span = tracing::Span::current();
        Self {
            thread: std::thread::spawn(move || {
                let _in_store = span.enter();
                baseline::load(&state, &store_id, &scratch)
            }),
        }
    }

    /// Nothing remembered: a store's first upload.
    #[cfg(test)]
    pub fn nothing() -> Self {
        Self {
            thread: std::thread::spawn(|| Ok(None)),
        }
    }

    /// The remembered upload, if there is one and it can be read: a damaged one is a warning (the
    /// comparison is skipped and the next success replaces it).
    fn finish(self) -> Option<baseline::Baseline> {
        let loaded = self
            .thread
            .join()
            .unwrap_or_else(|_| Err("the thread reading it failed".into()));
        loaded.unwrap_or_else(|e| {
            warn!("{e}; no change report and no churn guard tonight");
            None
        })
    }
}

/// Tonight's customers as they are read, and what they are compared with once the whole export is
/// read: the store's remembered upload (see [`Loading`]), the `--changes` report, and, for a real run
/// (`run` given, not a dry run or `validate`), where the state to remember is written.
pub struct Comparing<'a> {
    log: ChangeLog,
    baseline: Loading,
    store_id: &'a str,
    scratch: &'a Path,
    report: Option<&'a mut ChangeReport>,
    run: Option<i64>,
}

impl<'a> Comparing<'a> {
    /// Compares with `baseline`; writes the state to remember to a temporary file in `scratch`;
    /// `keep_values` keeps each customer's values for the report (`--changes-values`).
    pub fn new(
        baseline: Loading,
        store_id: &'a str,
        scratch: &'a Path,
        report: Option<&'a mut ChangeReport>,
        run: Option<i64>,
        keep_values: bool,
    ) -> Self {
        Self {
            log: ChangeLog::new(keep_values),
            baseline,
            store_id,
            scratch,
            report,
            run,
        }
    }

    /// Notes one customer, whose record starts on `line`, in file order.
    ///
    /// Fails when a sorted run cannot be spilled to a temporary file.
    pub fn push(&mut self, customer: &crate::customer::Customer, line: u64) -> io::Result<()> {
        self.log.push(customer, line)
    }

    /// Compares, handing each customer whose id an earlier one had to `repeat` (the ids are sorted
    /// for the comparison anyway, so a run that compares needs no repeated-id check of its own).
    ///
    /// Fails when a temporary file or the report cannot be written, or with what `repeat` failed
    /// with.
    pub fn finish<E: From<CompareError>>(
        self,
        repeat: &mut dyn FnMut(Repeat) -> Result<(), E>,
    ) -> Result<Tonight, E> {
        let Comparing {
            log,
            baseline,
            store_id,
            scratch,
            report,
            run,
        } = self;
        let reader = baseline.finish().map(|b| b.reader);
        let Some(run) = run else {
            let mut sink =
                KnownWriter::new(io::sink(), &baseline::header(store_id, None)).map_err(storage)?;
            let comparison = compare(log, reader, &mut sink, report, repeat)?;
            return Ok(Tonight {
                comparison,
                remember: None,
            });
        };
        let (file, path) = baseline::scratch_file(scratch).map_err(storage)?;
        let out = io::BufWriter::with_capacity(1 << 16, file);
        let mut writer =
            KnownWriter::new(out, &baseline::header(store_id, Some(run))).map_err(storage)?;
        let comparison = compare(log, reader, &mut writer, report, repeat)?;
        let (_, out) = writer.finish().map_err(storage)?;
        out.into_inner().map_err(|e| storage(e.into_error()))?;
        Ok(Tonight {
            comparison,
            remember: Some(path),
        })
    }
}

/// A local file's failure, as the caller's error.
fn storage<E: From<CompareError>>(e: io::Error) -> E {
    CompareError::Storage(e).into()
}

/// Merges tonight's customers with the remembered upload (if any), writing each of tonight's
/// customers, in id order, to `remember`, each difference to `report`, and each repeated id to
/// `repeat`.
///
/// Fails when a temporary run, the remembered upload, `remember` or the report cannot be read or
/// written (the report's errors name its file), or with what `repeat` failed with.
pub fn compare<R: BufRead, W: Write, E: From<CompareError>>(
    log: ChangeLog,
    mut baseline: Option<KnownReader<R>>,
    remember: &mut KnownWriter<W>,
    mut report: Option<&mut ChangeReport>,
    repeat: &mut dyn FnMut(Repeat) -> Result<(), E>,
) -> Result<Comparison, E> {
    let mut comparison = Comparison {
        since_run: baseline.as_ref().and_then(|b| b.header().run),
        without_id: log.without_id(),
        ..Comparison::default()
    };
    let mut counts = ChangeCounts::default();
    let mut tonight = log.into_unique().map_err(storage)?;
    let mut new = tonight.next_unique(repeat)?;
    let mut old = match &mut baseline {
        Some(b) => b.next_known().map_err(storage)?,
        None => None,
    };
    let reported = |e: io::Error, report: &ChangeReport| -> E {
        CompareError::Report(io::Error::new(
            e.kind(),
            format!("cannot write {}: {e}", report.path().display()),
        ))
        .into()
    };
    loop {
        let order = match (&old, &new) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(o), Some(n)) => o.id.cmp(&n.id),
        };
        if order.is_le() {
            let o = old.take().expect("an old customer");
            if order.is_lt() {
                counts.removed += 1;
                note_example(&mut comparison.examples, &o.id);
                if let Some(r) = report.as_deref_mut() {
                    r.removed(&o.id).map_err(|e| reported(e, r))?;
                }
            } else {
                let n = new.as_ref().expect("a new customer");
                if n.fingerprint.row == o.fingerprint.row {
                    counts.unchanged += 1;
                } else {
                    counts.changed += 1;
                    note_example(&mut comparison.examples, &o.id);
                    if let Some(r) = report.as_deref_mut() {
                        let fields: Vec<Field> =
                            n.fingerprint.changed_fields(&o.fingerprint).collect();
                        r.changed(n, &fields).map_err(|e| reported(e, r))?;
                    }
                }
            }
            old = baseline
                .as_mut()
                .expect("old customers come from it")
                .next_known()
                .map_err(storage)?;
        }
        if order.is_ge() {
            let n = new.take().expect("a new customer");
            if order.is_gt() && baseline.is_some() {
                counts.added += 1;
                if let Some(r) = report.as_deref_mut() {
                    r.added(&n).map_err(|e| reported(e, r))?;
                }
            }
            remember.push(&n.id, &n.fingerprint).map_err(storage)?;
            new = tonight.next_unique(repeat)?;
        }
    }
    if let Some(r) = report {
        r.flush().map_err(|e| reported(e, r))?;
    }
    comparison.repeated = tonight.repeated;
    comparison.counts = baseline.is_some().then_some(counts);
    Ok(comparison)
}

fn note_example(examples: &mut Vec<String>, id: &[u8]) {
    if examples.len() < EXAMPLES {
        examples.push(String::from_utf8_lossy(id).into_owned());
    }
}

#[cfg(test)]
mod tests;
