//! Reading and validating a whole export (docs/transaction.md, step 1; README "Input"): every record is mapped, normalized, counted and
//! handed to a sink (the spool for uploads, a tally for `validate`), with warnings counted by kind.
//! Synchronous; nothing here talks to the network.

mod pipeline;

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::mpsc::{Receiver, Sender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use tracing::warn;

use pipeline::{Batcher, DoneBatch, RawBatch, WorkerChannels};

use crate::changes::{CompareError, Comparing, Repeat, Tonight};
use crate::customer::{Customer, Normalizer};
use crate::dates::{DateEvidence, DateOrder, DateShape, Decision};
use crate::mapping::MappingRules;
use crate::repeats::IdLog;
use crate::source::{self, InputError, InputSpec, Location, SourceInfo};
use crate::warnings::{Issue, WarningCode, Warnings, shorten};
use crate::wire::Field;

/// Where validated rows go.
pub trait RowSink {
    /// Takes one normalized row with the issues found in it. An IO error stops the reading.
    fn accept(&mut self, customer: &Customer, at: Location, issues: &[Issue]) -> io::Result<()>;

    /// Hears, once the whole export is read, of a record whose `PartnerCustomerID` (`id`) repeats
    /// the one of the record at `first_line`.
    fn repeated_id(&mut self, _line: u64, _first_line: u64, _id: &str) -> io::Result<()> {
        Ok(())
    }
}

/// Why reading an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The export itself is unusable (naming its file, line and column), or `--strict` refused it.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Local storage failed: the sink (the snapshot, a rejects file) or the repeated-id check's
    /// temporary files. Nothing is wrong with the export.
    #[error("cannot {what}: {source}")]
    Storage {
        what: &'static str,
        source: io::Error,
    },
    /// The comparison with the store's last upload could not be made (see [`ingest_comparing`]).
    #[error("{0}")]
    Compare(#[from] CompareError),
}

/// How to validate.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Refuse the input on the first value that cannot be normalized, or a repeated customer id.
    pub strict: bool,
    pub normalizer: Normalizer,
}

/// What a complete read found.
#[derive(Clone, Debug)]
pub struct Ingested {
    pub rows: u64,
    pub warnings: Warnings,
    pub source: SourceInfo,
    /// How the order of day and month was settled for the birth-date column(s), if there are any.
    pub date_order: Option<Decision>,
}

/// Reads all of `spec`, normalizing each record and passing it to `sink` in file order: on the
/// calling thread, or with a pipeline of threads where the machine has the cores for one (see
/// [`workers_for`]).
///
/// Fails on a structural error in the input, a strict-mode refusal, or an IO error of the sink; the
/// sink has then seen exactly the records before the failing one.
pub fn ingest(
    spec: &InputSpec,
    options: IngestOptions,
    sink: &mut dyn RowSink,
) -> Result<Ingested, IngestError> {
    ingest_with_workers(spec, options, sink, workers_for(cores()))
}

/// [`ingest`] for a run that compares tonight's customers with the store's last upload: each row
/// delivered to `sink` goes to `comparing` too, which finds repeated ids while it compares (both
/// need the ids sorted; one sort serves them).
pub fn ingest_comparing(
    spec: &InputSpec,
    options: IngestOptions,
    sink: &mut dyn RowSink,
    comparing: Comparing<'_>,
) -> Result<(Ingested, Tonight), IngestError> {
    let ids = Ids::Compared(Box::new(comparing));
    let (ingested, tonight) = ingest_spec(spec, options, sink, workers_for(cores()), ids)
        .map_err(|e| named_cell(spec, e))?;
    Ok((ingested, tonight.expect("a comparing read compares")))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How many normalizing threads [`ingest`] uses on a machine with `cores` cores. The pipeline's
/// reader and its collecting thread are busy all along, so it needs a core for each of them besides
/// the workers; on fewer than four its threads only take turns, and copying every record into a batch
/// and handing it across costs more than the workers win. On two cores, 1M rows validate in 1.4 s of
/// wall and CPU time on one thread, against 1.5 to 1.7 s of wall and 2.3 to 2.5 s of CPU with the
/// pipeline (BENCHMARKS.md, "One thread on small machines").
pub fn workers_for(cores: usize) -> usize {
    if cores < 4 { 1 } else { (cores - 2).min(4) }
}

/// [`ingest`] with `workers` normalizing threads; with one, everything runs on the calling thread.
///
/// With more, a reader thread batches records, the workers normalize batches, and the calling thread
/// hands rows to the sink in file order (see [`pipeline`]).
pub fn ingest_with_workers(
    spec: &InputSpec,
    options: IngestOptions,
    sink: &mut dyn RowSink,
    workers: usize,
) -> Result<Ingested, IngestError> {
    let ids = Ids::Own(IdLog::default());
    ingest_spec(spec, options, sink, workers, ids)
        .map(|(ingested, _)| ingested)
        .map_err(|e| named_cell(spec, e))
}

/// A workbook's refusal names the cell (`Customers!D17`) where it knows the field's column.
fn named_cell(spec: &InputSpec, e: IngestError) -> IngestError {
    match e {
        IngestError::Input(input) => IngestError::Input(spec.places.name_cell(input)),
        other => other,
    }
}

/// How a read finds repeated ids.
enum Ids<'c> {
    /// On its own.
    Own(IdLog),
    /// In the comparison with the store's last upload, which gets every delivered row.
    Compared(Box<Comparing<'c>>),
}

fn ingest_spec(
    spec: &InputSpec,
    options: IngestOptions,
    sink: &mut dyn RowSink,
    workers: usize,
    ids: Ids<'_>,
) -> Result<(Ingested, Option<Tonight>), IngestError> {
    let name = spec.display_name();
    let mut rows = Rows::new(&name, options.strict, sink, &spec.rules, ids);
    let read = if workers <= 1 {
        read_serially(spec, &options.normalizer, &mut rows)
    } else {
        read_in_parallel(spec, &options.normalizer, &mut rows, workers)
    };
    // A storage failure stops the reading with a stand-in error; the real one is kept aside.
    if let Some(storage) = rows.storage.take() {
        return Err(storage);
    }
    let source = read?;
    let (date_order, tonight) = rows.finish(&source)?;
    let ingested = Ingested {
        rows: rows.count,
        warnings: rows.warnings,
        source,
        date_order,
    };
    Ok((ingested, tonight))
}

fn read_serially(
    spec: &InputSpec,
    normalizer: &Normalizer,
    rows: &mut Rows<'_>,
) -> Result<SourceInfo, InputError> {
    let mut customer = Customer::default();
    let mut issues = Vec::new();
    source::read_rows(spec, &mut |raw, at| {
        issues.clear();
        normalizer.parse_into(raw, &mut customer, &mut issues);
        rows.row(&mut customer, at, &issues)
    })
}

fn read_in_parallel(
    spec: &InputSpec,
    normalizer: &Normalizer,
    rows: &mut Rows<'_>,
    workers: usize,
) -> Result<SourceInfo, InputError> {
    let name = rows.name;
    let (work_tx, work_rx) = sync_channel::<RawBatch>(workers);
    let (done_tx, done_rx) = sync_channel::<DoneBatch>(workers);
    let (spare_raw_tx, spare_raw_rx) = channel::<RawBatch>();
    let (spare_customers_tx, spare_customers_rx) = channel::<Vec<Customer>>();
    let work_rx = Arc::new(Mutex::new(work_rx));
    let spare_customers_rx = Arc::new(Mutex::new(spare_customers_rx));
    let (read, collected) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut batcher = Batcher::new(work_tx, spare_raw_rx);
            let read = source::read_rows(spec, &mut |raw, at| {
                if batcher.push(raw, at) {
                    Ok(())
                } else {
                    Err(InputError::new(name, "reading stopped"))
                }
            });
            batcher.send();
            read
        });
        for _ in 0..workers {
            let channels = WorkerChannels {
                work: work_rx.clone(),
                spare_customers: spare_customers_rx.clone(),
                done: done_tx.clone(),
            };
            scope.spawn(move || pipeline::work(normalizer, channels));
        }
        // Only the workers may hold these now, so that each stage sees the next one go away.
        drop((work_rx, spare_customers_rx, done_tx));
        let collected = rows.collect(done_rx, spare_raw_tx, spare_customers_tx);
        let read = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, collected)
    });
    collected?;
    read
}

/// Rows held back while the birth-date column has not shown its order; past this many, rows go on
/// read month first, and a column that turns out day-first is refused (see [`Rows::deliver`]).
const MAX_HELD_ROWS: usize = 10_000;

/// The calling thread's side of [`ingest`]: takes normalized rows in file order, counts them and their
/// warnings, checks ids for repeats, settles the order of birth dates, and hands them to the sink.
struct Rows<'s> {
    name: &'s str,
    strict: bool,
    sink: &'s mut dyn RowSink,
    warnings: Warnings,
    /// Taken when the whole export is read.
    ids: Option<Ids<'s>>,
    count: u64,
    storage: Option<IngestError>,
    /// The store's `date_order` (or `--date-order`).
    configured_order: Option<DateOrder>,
    allow_missing_id: bool,
    dates: DateEvidence,
    /// Rows from the first date that could be read either way until the column shows its order.
    held: VecDeque<(Customer, Location, Vec<Issue>)>,
    /// The line from which rows went on read month first although the order was not yet known.
    unsettled_from: Option<u64>,
}

impl<'s> Rows<'s> {
    fn new(
        name: &'s str,
        strict: bool,
        sink: &'s mut dyn RowSink,
        rules: &MappingRules,
        ids: Ids<'s>,
    ) -> Self {
        Self {
            name,
            strict,
            sink,
            warnings: Warnings::default(),
            ids: Some(ids),
            count: 0,
            storage: None,
            configured_order: rules.date_order,
            allow_missing_id: rules.allow_missing_id,
            dates: DateEvidence::default(),
            held: VecDeque::new(),
            unsettled_from: None,
        }
    }

    /// Takes every batch the workers finish, in order, until they are all done.
    fn collect(
        &mut self,
        done: Receiver<DoneBatch>,
        spare_raw: Sender<RawBatch>,
        spare_customers: Sender<Vec<Customer>>,
    ) -> Result<(), InputError> {
        let mut waiting: BTreeMap<u64, DoneBatch> = BTreeMap::new();
        let mut next = 0;
        for batch in done {
            waiting.insert(batch.seq, batch);
            while let Some(mut batch) = waiting.remove(&next) {
                next += 1;
                for (customer, at, issues) in batch.rows_mut() {
                    self.row(customer, at, issues)?;
                }
                let (raw, customers) = batch.recycle();
                // The reader or the workers may have finished already; then nobody needs these.
                let _ = spare_raw.send(raw);
                let _ = spare_customers.send(customers);
            }
        }
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(InputError::new(
                self.name,
                "internal error: a batch of records was lost",
            ))
        }
    }

    fn row(
        &mut self,
        customer: &mut Customer,
        at: Location,
        issues: &[Issue],
    ) -> Result<(), InputError> {
        let id = customer.get(Field::PartnerCustomerId);
        if let Some(Ids::Own(ids)) = &mut self.ids
            && !id.is_empty()
            && let Err(e) = ids.push(id, at.line)
        {
            return Err(self.stop("check for repeated ids", e));
        }
        if self.strict
            && let Some(issue) = issues.first()
        {
            return Err(strict_refusal(self.name, at, issue));
        }
        for issue in issues {
            self.warnings
                .add(issue.code, || format!("{at}: {}", issue.reason()));
        }
        self.count += 1;
        self.deliver(customer, at, issues)
    }

    /// Settles the row's birth date by its column's order and hands the row on, or holds it (and
    /// every row after it, to keep the file order) while that order is not yet known.
    fn deliver(
        &mut self,
        customer: &mut Customer,
        at: Location,
        issues: &[Issue],
    ) -> Result<(), InputError> {
        let note = customer.birth_note();
        if let Some(note) = note {
            self.dates.note(note.shape, at.line, customer.birth_text());
        }
        let order = self.configured_order.or_else(|| self.dates.proven());
        if let Some(order) = order {
            self.release_held(order)?;
        }
        match (note.map(|n| n.shape), order) {
            (Some(shape), Some(order)) => {
                customer.settle_birth_date(order);
                if self.configured_order.is_some() && contradicts(shape, order) {
                    return self.reject_birth_date(customer, at, issues);
                }
            }
            (Some(DateShape::Ambiguous), None)
                if self.unsettled_from.is_none() && self.held.len() >= MAX_HELD_ROWS =>
            {
                self.unsettled_from = self.held.front().map(|(_, at, _)| at.line);
                self.release_held(DateOrder::Mdy)?;
            }
            _ => {}
        }
        let holding = !self.held.is_empty()
            || (note.is_some_and(|n| n.shape == DateShape::Ambiguous)
                && order.is_none()
                && self.unsettled_from.is_none());
        if holding {
            self.held.push_back((customer.clone(), at, issues.to_vec()));
            return Ok(());
        }
        self.accept(customer, at, issues)
    }

    /// A birth date that the configured order makes impossible (`25/12/1980` read month first).
    fn reject_birth_date(
        &mut self,
        customer: &mut Customer,
        at: Location,
        issues: &[Issue],
    ) -> Result<(), InputError> {
        let issue = customer.reject_birth_date();
        if self.strict {
            return Err(strict_refusal(self.name, at, &issue));
        }
        self.warnings
            .add(issue.code, || format!("{at}: {}", issue.reason()));
        let mut all = issues.to_vec();
        all.push(issue);
        self.accept(customer, at, &all)
    }

    /// Hands the held rows on, their dates read in `order`.
    fn release_held(&mut self, order: DateOrder) -> Result<(), InputError> {
        while let Some((mut customer, at, issues)) = self.held.pop_front() {
            customer.settle_birth_date(order);
            self.accept(&customer, at, &issues)?;
        }
        Ok(())
    }

    fn accept(
        &mut self,
        customer: &Customer,
        at: Location,
        issues: &[Issue],
    ) -> Result<(), InputError> {
        if let Err(e) = self.sink.accept(customer, at, issues) {
            return Err(self.stop("write the snapshot", e));
        }
        match &mut self.ids {
            Some(Ids::Compared(comparing)) => comparing
                .push(customer, at.line)
                .map_err(|e| self.stop("keep the customers to compare", e)),
            _ => Ok(()),
        }
    }

    /// Keeps a storage failure aside and gives the reader an error that stops it.
    fn stop(&mut self, what: &'static str, source: io::Error) -> InputError {
        self.storage = Some(IngestError::Storage { what, source });
        InputError::new(self.name, "reading stopped")
    }

    /// Once the whole export is read: the identity column, the order of birth dates, repeated ids
    /// (and the comparison, for a read that compares), then the notices about columns and rows.
    fn finish(
        &mut self,
        source: &SourceInfo,
    ) -> Result<(Option<Decision>, Option<Tonight>), IngestError> {
        self.check_id_column(source)?;
        let date_order = self.settle_dates(source)?;
        let tonight = self.check_ids()?;
        note_columns(source, &mut self.warnings);
        if self.strict
            && let Some(refused) = source.notes.first_strict_failure()
        {
            return Err(InputError::new(
                self.name,
                format!("{} (--strict refuses it)", refused.example),
            )
            .into());
        }
        Ok((date_order, tonight))
    }

    /// Reports each record whose `PartnerCustomerID` repeats an earlier record's: a warning, or the
    /// refusal under `--strict`. Gives the comparison, for a read that compares.
    fn check_ids(&mut self) -> Result<Option<Tonight>, IngestError> {
        let (name, strict) = (self.name, self.strict);
        let warnings = &mut self.warnings;
        let sink = &mut *self.sink;
        let storage = |what| move |source| IngestError::Storage { what, source };
        let mut repeat = |line, first_line, id: &str| -> Result<(), IngestError> {
            let id = crate::source::quote(id);
            if strict {
                return Err(InputError::new(
                    name,
                    format!("PartnerCustomerID {id} repeats that of line {first_line} (--strict refuses repeated ids)"),
                )
                .at_line(line)
                .in_column(Field::PartnerCustomerId.name())
                .into());
            }
            warnings.add(WarningCode::DuplicateCustomerId, || {
                format!("PartnerCustomerID {id} on lines {first_line} and {line}")
            });
            sink.repeated_id(line, first_line, &id)
                .map_err(storage("write the snapshot"))
        };
        match self.ids.take().expect("ids are checked once") {
            Ids::Own(ids) => {
                ids.repeats(storage("check for repeated ids"), repeat)?;
                Ok(None)
            }
            Ids::Compared(comparing) => {
                // A refusal waits for the end of the comparison, so that the change report is
                // whole for a refused night too (docs/changes.md).
                let mut refused = None;
                let tonight = comparing.finish(&mut |r: Repeat| match repeat(
                    r.line,
                    r.first_line,
                    &String::from_utf8_lossy(r.id),
                ) {
                    Err(IngestError::Input(e)) => {
                        refused.get_or_insert(e);
                        Ok(())
                    }
                    other => other,
                })?;
                match refused {
                    Some(e) => Err(e.into()),
                    None => Ok(Some(tonight)),
                }
            }
        }
    }

    /// An export with no column for `PartnerCustomerID` is a mapping mistake unless the store says
    /// its exports have no id.
    fn check_id_column(&self, source: &SourceInfo) -> Result<(), InputError> {
        if source.has_id_column || self.allow_missing_id || self.count == 0 {
            return Ok(());
        }
        Err(InputError::new(
            self.name,
            format!(
                "no column maps to PartnerCustomerID, the customer's id (columns: {}); name one \
                 \"Customer ID\" or map it in the store's [mapping] columns, or set \
                 allow_missing_id = true there if the export has no id",
                crate::source::quote(&source.columns.join(", "))
            ),
        ))
    }

    /// Decides the order of the birth-date column over the whole export and hands on the rows still
    /// held. Fails when the column proves both orders, or never shows one and none is configured.
    fn settle_dates(&mut self, source: &SourceInfo) -> Result<Option<Decision>, InputError> {
        if source.birth_date_columns.is_empty() {
            return Ok(None);
        }
        let column = source.birth_date_columns.join("\", \"");
        let decision = self
            .dates
            .decide(&column, self.configured_order)
            .map_err(|message| InputError::new(self.name, message))?;
        if let (Some(line), Some(DateOrder::Dmy)) = (self.unsettled_from, decision.order()) {
            return Err(InputError::new(
                self.name,
                format!(
                    "the dates in column \"{}\" turn out day-first only after more than {MAX_HELD_ROWS} \
                     rows that could be read either way, from line {line} on; set date_order = \
                     \"dmy\" for the store (or pass --date-order dmy) to read this export",
                    crate::source::quote(&column)
                ),
            ));
        }
        self.release_held(decision.order().unwrap_or(DateOrder::Mdy))?;
        Ok(Some(decision))
    }
}

/// Whether a value that proves one order contradicts the order the column was given.
fn contradicts(shape: DateShape, order: DateOrder) -> bool {
    matches!(
        (shape, order),
        (DateShape::DayFirst, DateOrder::Mdy) | (DateShape::MonthFirst, DateOrder::Dmy)
    )
}

fn strict_refusal(name: &str, at: Location, issue: &Issue) -> InputError {
    InputError::new(name, format!("{} (--strict refuses it)", issue.reason()))
        .at_line(at.line)
        .in_column(issue.field.name())
}

/// One warning listing every unknown column, one for each pair of columns giving one field, and one
/// for the rows skipped as blank.
fn note_columns(source: &SourceInfo, warnings: &mut Warnings) {
    if !source.unknown_columns.is_empty() {
        let list = source.unknown_columns.join(", ");
        warn!(columns = %list, "ignoring columns that map to no customer field");
        warnings.add_many(
            WarningCode::UnknownColumns,
            source.unknown_columns.len() as u64,
            || shorten(&list),
        );
    }
    for (used, other) in &source.shadowed_columns {
        warnings.add(WarningCode::DuplicateColumns, || {
            format!(
                "\"{}\" and \"{}\" give the same field: \"{}\" is used, \"{}\" where it is empty",
                shorten(used),
                shorten(other),
                shorten(used),
                shorten(other)
            )
        });
    }
    warnings.merge(&source.notes);
    let (blank, first) = source.blank_rows;
    if blank > 0 {
        warnings.add_many(WarningCode::BlankRow, blank, || {
            format!("line {first}: a row with no value in any column was skipped")
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The export's own error, for tests that expect one.
    fn input(result: Result<Ingested, IngestError>) -> InputError {
        match result {
            Err(IngestError::Input(e)) => e,
            other => panic!("expected an input error, got {other:?}"),
        }
    }
    use std::io::Write;

    #[test]
    fn the_pipeline_runs_only_where_its_reader_and_collector_have_cores_of_their_own() {
        assert_eq!([1, 2, 3].map(workers_for), [1, 1, 1]);
        assert_eq!([4, 5, 6, 64].map(workers_for), [2, 3, 4, 4]);
    }

    struct Collect(Vec<(u64, String)>);
    impl RowSink for Collect {
        fn accept(&mut self, c: &Customer, at: Location, _: &[Issue]) -> io::Result<()> {
            self.0.push((at.line, c.get(Field::Email).to_owned()));
            Ok(())
        }
    }

    fn ingest_text(
        text: &[u8],
        strict: bool,
        sink: &mut dyn RowSink,
    ) -> Result<Ingested, IngestError> {
        ingest_text_with(text, strict, sink, 2)
    }

    /// Both ways of reading: on the calling thread alone, and with a pipeline of three workers.
    const WORKERS: [usize; 2] = [1, 3];

    fn ingest_text_with(
        text: &[u8],
        strict: bool,
        sink: &mut dyn RowSink,
        workers: usize,
    ) -> Result<Ingested, IngestError> {
        let (_file, spec) = csv_spec(text);
        ingest_with_workers(&spec, options(strict), sink, workers)
    }

    /// A CSV file holding `text`, and how to read it.
    fn csv_spec(text: &[u8]) -> (tempfile::NamedTempFile, InputSpec) {
        let mut file = tempfile::NamedTempFile::with_suffix(".csv").unwrap();
        file.write_all(text).unwrap();
        let spec = InputSpec {
            path: Some(file.path().to_owned()),
            format: source::Format::Csv,
            encoding: None,
            delimiter: None,
            rules: Default::default(),
            ..InputSpec::default()
        };
        (file, spec)
    }

    fn options(strict: bool) -> IngestOptions {
        IngestOptions {
            strict,
            normalizer: Normalizer::new(jiff::civil::date(2026, 11, 22)),
        }
    }

    /// The repeats a sink hears of, as (line, line of the first, id).
    #[derive(Default)]
    struct Repeats(Vec<(u64, u64, String)>);
    impl RowSink for Repeats {
        fn accept(&mut self, _: &Customer, _: Location, _: &[Issue]) -> io::Result<()> {
            Ok(())
        }
        fn repeated_id(&mut self, line: u64, first_line: u64, id: &str) -> io::Result<()> {
            self.0.push((line, first_line, id.to_owned()));
            Ok(())
        }
    }

    /// A read that compares with the store's last upload (none here), as an upload's is.
    fn read_comparing(
        text: &[u8],
        strict: bool,
        sink: &mut dyn RowSink,
        workers: usize,
    ) -> Result<(Ingested, Option<Tonight>), IngestError> {
        let (_file, spec) = csv_spec(text);
        let scratch = tempfile::tempdir().unwrap();
        let baseline = crate::changes::Loading::nothing();
        let comparing = Comparing::new(baseline, "1001", scratch.path(), None, None, false);
        let ids = Ids::Compared(Box::new(comparing));
        ingest_spec(&spec, options(strict), sink, workers, ids)
    }

    #[test]
    fn a_read_that_compares_finds_the_repeats_a_read_of_its_own_finds() {
        let text =
            b"ID,Email\nB,x@y.co\nA,y@y.co\nB,z@y.co\nC,w@y.co\nA,v@y.co\nB,u@y.co\n,t@y.co\n";
        let expected =
            [(4, 2, "B"), (6, 3, "A"), (7, 2, "B")].map(|(l, f, id)| (l, f, id.to_owned()));
        for workers in WORKERS {
            let mut own = Repeats::default();
            let alone = ingest_text_with(text, false, &mut own, workers).unwrap();
            let mut compared = Repeats::default();
            let (ingested, tonight) = read_comparing(text, false, &mut compared, workers).unwrap();
            own.0.sort();
            assert_eq!(own.0, expected);
            compared.0.sort();
            assert_eq!(compared.0, expected, "{workers} workers");
            let count = |i: &Ingested| i.warnings.count(WarningCode::DuplicateCustomerId);
            assert_eq!((count(&alone), count(&ingested)), (3, 3));
            let comparison = tonight.unwrap().comparison;
            assert_eq!((comparison.repeated, comparison.without_id), (3, 1));
        }
    }

    #[test]
    fn strict_refuses_a_repeated_id_in_a_read_that_compares() {
        let text = b"ID,Email\nB,x@y.co\nA,y@y.co\nB,z@y.co\n";
        let Err(IngestError::Input(e)) = read_comparing(text, true, &mut Repeats::default(), 1)
        else {
            panic!("--strict refuses a repeated id");
        };
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("B repeats that of line 2"), "{e}");
    }

    fn run(text: &str, strict: bool) -> (Result<Ingested, IngestError>, Vec<(u64, String)>) {
        run_with(text, strict, 2)
    }

    fn run_with(
        text: &str,
        strict: bool,
        workers: usize,
    ) -> (Result<Ingested, IngestError>, Vec<(u64, String)>) {
        let mut sink = Collect(Vec::new());
        let result = ingest_text_with(text.as_bytes(), strict, &mut sink, workers);
        (result, sink.0)
    }

    #[test]
    fn counts_rows_and_warnings_by_kind() {
        let text = "ID,Email,Gender,Fax\n1,A@B.COM,Male,x\n2,none,Unknown,y\n1,c@d.ef,F,z\n";
        let (result, rows) = run(text, false);
        let got = result.unwrap();
        assert_eq!(got.rows, 3);
        assert_eq!(rows[0], (2, "a@b.com".to_owned()));
        assert_eq!(got.warnings.count(WarningCode::InvalidEmail), 1);
        assert_eq!(got.warnings.count(WarningCode::InvalidGender), 1);
        assert_eq!(got.warnings.count(WarningCode::DuplicateCustomerId), 1);
        assert_eq!(got.warnings.count(WarningCode::UnknownColumns), 1);
        let repeat = got
            .warnings
            .summaries()
            .into_iter()
            .find(|w| w.code == WarningCode::DuplicateCustomerId);
        assert_eq!(
            repeat.unwrap().example,
            "PartnerCustomerID 1 on lines 2 and 4"
        );
        let example = &got.warnings.summaries()[0].example;
        assert!(
            example.starts_with("line 3: CustomerGender \"Unknown\""),
            "{example}"
        );
    }

    #[test]
    fn a_quoted_line_break_in_a_csv_value_becomes_one_space() {
        struct Addresses(Vec<String>);
        impl RowSink for Addresses {
            fn accept(&mut self, c: &Customer, _: Location, _: &[Issue]) -> io::Result<()> {
                self.0.push(c.get(Field::Address).to_owned());
                Ok(())
            }
        }
        let mut sink = Addresses(Vec::new());
        ingest_text(
            b"ID,Address\n1,\"1 Main\r\nSt\"\n2,2 Elm St\n",
            false,
            &mut sink,
        )
        .unwrap();
        assert_eq!(sink.0, ["1 Main St", "2 Elm St"]);
    }

    /// `rows` customers (lines 2..) with `bad` replacing the line `at`.
    fn many_rows(rows: usize, at: usize, bad: &str) -> String {
        let mut text = String::from("ID,Email\n");
        for line in 2..rows + 2 {
            if line == at {
                text.push_str(bad);
            } else {
                text.push_str(&format!("{line},u{line}@x.com\n"));
            }
        }
        text
    }

    #[test]
    fn records_reach_the_sink_in_file_order_across_batches() {
        let rows = 5 * pipeline::BATCH_ROWS + 17;
        for workers in WORKERS {
            let (result, seen) = run_with(&many_rows(rows, 0, ""), false, workers);
            assert_eq!(result.unwrap().rows, rows as u64);
            let lines: Vec<u64> = seen.iter().map(|(line, _)| *line).collect();
            assert_eq!(lines, (2..rows as u64 + 2).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_broken_record_in_a_later_batch_stops_after_exactly_the_records_before_it() {
        let at = 3 * pipeline::BATCH_ROWS + 5;
        let rows = 4 * pipeline::BATCH_ROWS;
        for workers in WORKERS {
            let (result, seen) = run_with(&many_rows(rows, at, "1,2,3\n"), false, workers);
            assert_eq!(input(result).line, Some(at as u64));
            assert_eq!(seen.len(), at - 2);
            let (result, seen) = run_with(&many_rows(rows, at, "9,none\n"), true, workers);
            assert_eq!(input(result).line, Some(at as u64));
            assert_eq!(seen.len(), at - 2);
        }
    }

    #[test]
    fn a_failing_sink_stops_the_reading_without_waiting_for_the_rest() {
        struct FullDisk(usize);
        impl RowSink for FullDisk {
            fn accept(&mut self, _: &Customer, _: Location, _: &[Issue]) -> io::Result<()> {
                self.0 += 1;
                if self.0 == 600 {
                    return Err(io::Error::other("no space left on device"));
                }
                Ok(())
            }
        }
        let text = many_rows(50 * pipeline::BATCH_ROWS, 0, "");
        for workers in WORKERS {
            let mut sink = FullDisk(0);
            let err = ingest_text_with(text.as_bytes(), false, &mut sink, workers).unwrap_err();
            assert!(
                matches!(
                    &err,
                    IngestError::Storage {
                        what: "write the snapshot",
                        ..
                    }
                ),
                "{err}"
            );
            assert!(err.to_string().contains("no space left on device"), "{err}");
            assert_eq!(sink.0, 600);
        }
    }

    #[test]
    fn strict_mode_refuses_the_first_bad_value_with_its_line_and_field() {
        let (result, _) = run("ID,Email\n1,a@b.com\n2,none\n", true);
        let err = input(result);
        assert_eq!(err.line, Some(3));
        assert_eq!(err.column.as_deref(), Some("CustomerEmail"));
    }

    #[test]
    fn strict_mode_refuses_duplicate_customer_ids() {
        let (result, _) = run("ID,Email\n1,a@b.com\n1,c@b.com\n", true);
        assert!(input(result).message.contains("repeats"));
    }

    struct Births(Vec<(String, String)>);
    impl RowSink for Births {
        fn accept(&mut self, c: &Customer, _: Location, _: &[Issue]) -> io::Result<()> {
            let get = |f| c.get(f).to_owned();
            self.0.push((get(Field::BirthMonth), get(Field::BirthDay)));
            Ok(())
        }
    }

    #[test]
    fn rows_held_until_the_column_proves_day_first_are_read_day_first_in_order() {
        let mut text = String::from("ID,DOB\n");
        for i in 0..pipeline::BATCH_ROWS * 2 {
            text.push_str(&format!("{i},{:02}/{:02}/1980\n", i % 12 + 1, i % 7 + 1));
        }
        text.push_str("x,25/12/1975\n");
        for workers in WORKERS {
            let mut sink = Births(Vec::new());
            let got = ingest_text_with(text.as_bytes(), false, &mut sink, workers).unwrap();
            assert_eq!(got.date_order, Some(Decision::Proven(DateOrder::Dmy)));
            assert_eq!(sink.0.len(), pipeline::BATCH_ROWS * 2 + 1);
            assert_eq!(
                sink.0[13],
                ("7".to_owned(), "2".to_owned()),
                "13/7 read day first"
            );
            assert_eq!(sink.0.last().unwrap(), &("12".to_owned(), "25".to_owned()));
        }
    }

    #[test]
    fn a_column_proving_day_first_only_past_the_held_rows_is_refused() {
        let mut text = String::from("ID,DOB\n");
        for i in 0..=MAX_HELD_ROWS {
            text.push_str(&format!("{i},01/02/1980\n"));
        }
        text.push_str("x,25/12/1975\n");
        let err = input(ingest_text(text.as_bytes(), false, &mut Births(Vec::new())));
        assert!(err.message.contains("date_order = \"dmy\""), "{err}");
        // Month first is what the rows were read as: nothing to refuse.
        let text = text.replace("25/12/1975", "12/25/1975");
        let mut sink = Births(Vec::new());
        ingest_text(text.as_bytes(), false, &mut sink).unwrap();
        assert_eq!(sink.0[0], ("1".to_owned(), "2".to_owned()));
    }
}
