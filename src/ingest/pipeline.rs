//! The stages that let [`super::ingest`] use every core: a reader thread copies records into batches,
//! worker threads normalize batches, and the calling thread takes the results back in file order.
//! Batches travel through bounded channels (memory stays flat) and their buffers are recycled.

use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use crate::customer::{Customer, Normalizer, RawCustomer};
use crate::source::Location;
use crate::warnings::Issue;
use crate::wire::FIELD_COUNT;

/// Records per batch: large enough that channel hand-overs cost nothing per row.
pub const BATCH_ROWS: usize = 256;

type Span = Option<Range<u32>>;

/// One record's values as spans of its batch's text.
#[derive(Clone, Debug)]
struct RawRow {
    fields: [Span; FIELD_COUNT],
    birth_date: Span,
    full_name: Span,
    accounts_receivable: Span,
    plain: bool,
    escape_free: bool,
    at: Location,
}

/// Records copied out of the reader's buffers, ready to cross to a worker.
#[derive(Default)]
pub struct RawBatch {
    pub seq: u64,
    text: String,
    rows: Vec<RawRow>,
}

impl RawBatch {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn clear(&mut self) {
        self.text.clear();
        self.rows.clear();
    }

    /// Copies one record in.
    pub fn push(&mut self, raw: &RawCustomer<'_>, at: Location) {
        let text = &mut self.text;
        let mut span = |value: Option<&str>| {
            value.map(|v| {
                let start = text.len() as u32;
                text.push_str(v);
                start..text.len() as u32
            })
        };
        let fields = raw.fields.map(&mut span);
        let birth_date = span(raw.birth_date);
        let full_name = span(raw.full_name);
        let accounts_receivable = span(raw.accounts_receivable);
        self.rows.push(RawRow {
            fields,
            birth_date,
            full_name,
            accounts_receivable,
            plain: raw.plain,
            escape_free: raw.escape_free,
            at,
        });
    }

    fn raw(&self, row: &RawRow) -> RawCustomer<'_> {
        let text = |span: &Span| {
            span.clone()
                .map(|r| &self.text[r.start as usize..r.end as usize])
        };
        RawCustomer {
            fields: std::array::from_fn(|i| text(&row.fields[i])),
            birth_date: text(&row.birth_date),
            full_name: text(&row.full_name),
            accounts_receivable: text(&row.accounts_receivable),
            plain: row.plain,
            escape_free: row.escape_free,
        }
    }
}

/// A batch after normalization: the customers in file order, with their issues.
pub struct DoneBatch {
    pub seq: u64,
    pub raw: RawBatch,
    customers: Vec<Customer>,
    issues: Vec<Issue>,
    /// Where each row's issues end in `issues`.
    issue_ends: Vec<u32>,
}

impl DoneBatch {
    /// Each row: the customer (to settle its birth date), where it was read, and its issues.
    pub fn rows_mut(&mut self) -> impl Iterator<Item = (&mut Customer, Location, &[Issue])> {
        let mut start = 0;
        let issues = &self.issues;
        let ends = &self.issue_ends;
        self.customers
            .iter_mut()
            .zip(&self.raw.rows)
            .enumerate()
            .map(move |(i, (customer, row))| {
                let end = ends[i] as usize;
                let row_issues = &issues[start..end];
                start = end;
                (customer, row.at, row_issues)
            })
    }

    /// Splits the batch into its reusable parts.
    pub fn recycle(self) -> (RawBatch, Vec<Customer>) {
        (self.raw, self.customers)
    }
}

/// Where a worker gets batches and empty customer buffers, and where it sends results.
pub struct WorkerChannels {
    pub work: Arc<Mutex<Receiver<RawBatch>>>,
    pub spare_customers: Arc<Mutex<Receiver<Vec<Customer>>>>,
    pub done: SyncSender<DoneBatch>,
}

/// Normalizes batches until the work channel closes or nobody takes results any more.
pub fn work(normalizer: &Normalizer, channels: WorkerChannels) {
    loop {
        let batch = match channels.work.lock().map(|rx| rx.recv()) {
            Ok(Ok(batch)) => batch,
            _ => return,
        };
        let customers = match channels.spare_customers.lock().map(|rx| rx.try_recv()) {
            Ok(Ok(customers)) => customers,
            _ => Vec::new(),
        };
        let done = normalize(normalizer, batch, customers);
        if channels.done.send(done).is_err() {
            return;
        }
    }
}

fn normalize(normalizer: &Normalizer, raw: RawBatch, mut customers: Vec<Customer>) -> DoneBatch {
    customers.resize_with(raw.rows.len(), Customer::default);
    let mut issues = Vec::new();
    let mut issue_ends = Vec::with_capacity(raw.rows.len());
    for (row, customer) in raw.rows.iter().zip(customers.iter_mut()) {
        normalizer.parse_into(&raw.raw(row), customer, &mut issues);
        issue_ends.push(issues.len() as u32);
    }
    DoneBatch {
        seq: raw.seq,
        raw,
        customers,
        issues,
        issue_ends,
    }
}

/// The reader's side: fills batches and sends them, reusing the buffers that come back.
pub struct Batcher {
    pub work: SyncSender<RawBatch>,
    pub spare: Receiver<RawBatch>,
    current: RawBatch,
    next_seq: u64,
}

impl Batcher {
    pub fn new(work: SyncSender<RawBatch>, spare: Receiver<RawBatch>) -> Self {
        Self {
            work,
            spare,
            current: RawBatch::default(),
            next_seq: 0,
        }
    }

    /// Adds a record; sends the batch when full. Returns false once nobody takes batches any more.
    pub fn push(&mut self, raw: &RawCustomer<'_>, at: Location) -> bool {
        self.current.push(raw, at);
        self.current.len() < BATCH_ROWS || self.send()
    }

    /// Sends what is batched (if anything). Returns false once nobody takes batches any more.
    pub fn send(&mut self) -> bool {
        if self.current.is_empty() {
            return true;
        }
        let mut next = self.spare.try_recv().unwrap_or_default();
        next.clear();
        let mut full = std::mem::replace(&mut self.current, next);
        full.seq = self.next_seq;
        self.next_seq += 1;
        self.work.send(full).is_ok()
    }
}
