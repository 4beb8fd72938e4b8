//! The customers of tonight's export, as the change report needs them: each id with its row's
//! fingerprint (and its values, for `--changes-values`), sorted on disk by id so that the comparison
//! with the remembered upload is one streaming merge. Customers without an id are only counted. Each
//! customer carries its record's line, so that the merge names repeated ids as the export has them.

use std::io::{self, BufRead, Write};

use super::CompareError;
use super::fingerprint::Fingerprint;
use super::known::{FINGERPRINT_BYTES, Id, decode_len, id_heap_bytes, push_len, read_len};
use crate::customer::Customer;
use smallvec::SmallVec;

use crate::extsort::{ExternalSort, Sorted, Spill};
use crate::wire::Field;

/// Bytes of customers kept in memory before a sorted run is spilled to disk.
const RUN_BUDGET: usize = 4 << 20;

/// One customer of tonight's export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub id: Id,
    /// Its place in the export: of two customers with one id, the first is compared.
    seq: u64,
    /// The line where its record starts, to name a repeated id.
    line: u64,
    pub fingerprint: Fingerprint,
    /// Its 25 values, each length-prefixed, when the report shows values.
    values: Option<Box<[u8]>>,
}

impl Entry {
    /// The value of `field`, when values were kept.
    pub fn value(&self, field: Field) -> Option<&str> {
        let mut rest: &[u8] = self.values.as_deref()?;
        for (i, _) in Field::ALL.iter().enumerate() {
            let len = read_len(&mut rest).ok()??;
            let (value, tail) = rest.split_at_checked(len)?;
            if i == field as usize {
                return std::str::from_utf8(value).ok();
            }
            rest = tail;
        }
        None
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.id, self.seq).cmp(&(&other.id, other.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Spill for Entry {
    fn size(&self) -> usize {
        // An id longer than its inline room, and the values, are allocations of their own (about 16
        // bytes each besides their contents).
        std::mem::size_of::<Self>()
            + id_heap_bytes(&self.id)
            + self.values.as_ref().map_or(0, |v| v.len() + 16)
    }

    fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let id = self.id.len();
        if self.values.is_none() && id <= SHORT_ID {
            // Nearly every entry: the record put together on the stack in fixed places (its length
            // is one LEB128 byte) and written with one copy.
            let mut record = [0; 1 + SHORT_ID + FIXED_BYTES + 1];
            record[0] = id as u8;
            record[1..1 + id].copy_from_slice(&self.id);
            record[1 + id..1 + id + FIXED_BYTES].copy_from_slice(&self.fixed());
            return out.write_all(&record[..id + FIXED_BYTES + 2]);
        }
        let mut record: SmallVec<[u8; 96]> = SmallVec::new();
        push_len(&mut record, id);
        record.extend_from_slice(&self.id);
        record.extend_from_slice(&self.fixed());
        match &self.values {
            Some(values) => {
                push_len(&mut record, values.len() + 1);
                out.write_all(&record)?;
                out.write_all(values)
            }
            None => {
                record.push(0);
                out.write_all(&record)
            }
        }
    }

    fn read_from(input: &mut impl BufRead) -> io::Result<Option<Self>> {
        let buffered = input.fill_buf()?;
        if buffered.is_empty() {
            return Ok(None);
        }
        // A record without values, whole in the buffer (nearly all): parsed in place.
        if let Some((len, used)) = decode_len(buffered) {
            let fixed = used + len;
            let end = fixed + FIXED_BYTES;
            if buffered.get(end) == Some(&0) {
                let entry = Entry::with_fixed(
                    Id::from_slice(&buffered[used..fixed]),
                    (&buffered[fixed..end]).try_into().expect("fixed part"),
                    None,
                );
                input.consume(end + 1);
                return Ok(Some(entry));
            }
        }
        let len = read_len(input)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        let mut id = Id::from_elem(0, len);
        input.read_exact(&mut id)?;
        let mut fixed = [0; FIXED_BYTES];
        input.read_exact(&mut fixed)?;
        let values = match read_len(input)?.ok_or(io::ErrorKind::UnexpectedEof)? {
            0 => None,
            n => {
                let mut values = vec![0; n - 1];
                input.read_exact(&mut values)?;
                Some(values.into_boxed_slice())
            }
        };
        Ok(Some(Entry::with_fixed(id, &fixed, values)))
    }
}

/// The sequence number, line and fingerprint of a spilled entry, after its id.
const FIXED_BYTES: usize = 8 + 8 + FINGERPRINT_BYTES;

/// The longest id whose spilled record is put together on the stack (an id this short is held
/// inline, and its length is one byte).
const SHORT_ID: usize = 24;

impl Entry {
    /// What `write_to` writes after the id.
    fn fixed(&self) -> [u8; FIXED_BYTES] {
        let mut fixed = [0; FIXED_BYTES];
        fixed[..8].copy_from_slice(&self.seq.to_le_bytes());
        fixed[8..16].copy_from_slice(&self.line.to_le_bytes());
        fixed[16..].copy_from_slice(&self.fingerprint.to_bytes());
        fixed
    }

    /// An entry read back: `fixed` holds what `write_to` wrote after the id.
    fn with_fixed(id: Id, fixed: &[u8; FIXED_BYTES], values: Option<Box<[u8]>>) -> Self {
        let word = |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().expect("8 bytes"));
        Entry {
            id,
            seq: word(0),
            line: word(8),
            fingerprint: Fingerprint::read_from(fixed[16..].try_into().expect("33 bytes")),
            values,
        }
    }
}

/// Collects tonight's customers.
pub struct ChangeLog {
    sort: ExternalSort<Entry>,
    seq: u64,
    without_id: u64,
    keep_values: bool,
}

impl ChangeLog {
    /// A log that keeps each customer's values too when `keep_values` (for `--changes-values`).
    pub fn new(keep_values: bool) -> Self {
        Self {
            sort: ExternalSort::new(RUN_BUDGET),
            seq: 0,
            without_id: 0,
            keep_values,
        }
    }

    /// Notes one customer, whose record starts on `line`, as it goes into the snapshot.
    ///
    /// Fails when a sorted run cannot be spilled to a temporary file.
    pub fn push(&mut self, customer: &Customer, line: u64) -> io::Result<()> {
        let id = customer.get(Field::PartnerCustomerId);
        if id.is_empty() {
            self.without_id += 1;
            return Ok(());
        }
        let values = self.keep_values.then(|| {
            let mut out = Vec::new();
            for value in customer.values() {
                push_len(&mut out, value.len());
                out.extend_from_slice(value.as_bytes());
            }
            out.into_boxed_slice()
        });
        self.seq += 1;
        self.sort.push(Entry {
            id: Id::from_slice(id.as_bytes()),
            seq: self.seq,
            line,
            fingerprint: Fingerprint::of(customer.values()),
            values,
        })
    }

    /// Customers without a `PartnerCustomerID`: counted, never compared.
    pub fn without_id(&self) -> u64 {
        self.without_id
    }

    /// The customers in id order, each id once.
    ///
    /// Fails when a spilled run cannot be read back.
    pub(super) fn into_unique(self) -> io::Result<Unique> {
        Ok(Unique {
            sorted: self.sort.sorted()?,
            peeked: None,
            repeated: 0,
        })
    }
}

/// A customer whose id an earlier customer of the export had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repeat<'a> {
    pub line: u64,
    /// The line of the first customer with the id.
    pub first_line: u64,
    pub id: &'a [u8],
}

/// The sorted customers with each id once: the first in the export is kept. Repeats are what the
/// repeated-id check of an export reports (README.md, "Input"): the ids are sorted here anyway, so a run
/// that compares finds them in the same pass.
pub(super) struct Unique {
    sorted: Sorted<Entry>,
    peeked: Option<Entry>,
    /// Customers dropped because an earlier one had their id.
    pub repeated: u64,
}

impl Unique {
    /// The next customer in id order, handing each later customer with its id to `repeat`.
    ///
    /// Fails when a spilled run cannot be read back, or with what `repeat` failed with.
    pub fn next_unique<E: From<CompareError>>(
        &mut self,
        repeat: &mut dyn FnMut(Repeat) -> Result<(), E>,
    ) -> Result<Option<Entry>, E> {
        let first = match self.peeked.take() {
            Some(entry) => entry,
            None => match self.next_sorted()? {
                Some(entry) => entry,
                None => return Ok(None),
            },
        };
        loop {
            match self.next_sorted()? {
                Some(entry) if entry.id == first.id => {
                    self.repeated += 1;
                    repeat(Repeat {
                        line: entry.line,
                        first_line: first.line,
                        id: &entry.id,
                    })?;
                }
                other => {
                    self.peeked = other;
                    return Ok(Some(first));
                }
            }
        }
    }

    fn next_sorted(&mut self) -> Result<Option<Entry>, CompareError> {
        Ok(self.sorted.next_record()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, seq: u64, values: Option<&[u8]>) -> Entry {
        Entry {
            id: Id::from_slice(id.as_bytes()),
            seq,
            line: seq * 2 + 1,
            fingerprint: Fingerprint {
                row: seq * 31,
                fields: [seq as u8; crate::wire::FIELD_COUNT],
            },
            values: values.map(Into::into),
        }
    }

    #[test]
    fn spilled_entries_come_back_whole_however_the_buffer_splits_them() {
        let long = "L".repeat(200);
        let entries = [
            entry("C1", 1, None),
            entry(&long, 2, Some(b"\x01a\x00")),
            entry("C3", 3, None),
            entry(&"M".repeat(SHORT_ID), 4, None),
            entry(&"N".repeat(SHORT_ID + 1), 5, None),
            entry("C6", 6, Some(b"\x01b\x00")),
        ];
        let mut bytes = Vec::new();
        for e in &entries {
            e.write_to(&mut bytes).unwrap();
        }
        for capacity in [1, 7, 64, 4096] {
            let mut input = std::io::BufReader::with_capacity(capacity, bytes.as_slice());
            for e in &entries {
                assert_eq!(Entry::read_from(&mut input).unwrap().as_ref(), Some(e));
            }
            assert!(Entry::read_from(&mut input).unwrap().is_none());
        }
        let mut cut = &bytes[..bytes.len() - 1];
        for _ in 1..entries.len() {
            Entry::read_from(&mut cut).unwrap();
        }
        assert!(
            Entry::read_from(&mut cut).is_err(),
            "a truncated run is an error"
        );
    }
}
