//! The customers of tonight's export, as the change report needs them: each id with its row's
//! fingerprint (and its values, for `--changes-values`), sorted on disk by id so that the comparison
//! with the remembered upload is one streaming merge. Customers without an id are only counted.

use std::io::{self, Read, Write};

use super::fingerprint::Fingerprint;
use super::known::{read_len, write_len};
use crate::customer::Customer;
use crate::extsort::{ExternalSort, Sorted, Spill, read_or_end};
use crate::wire::{FIELD_COUNT, Field};

/// Bytes of customers kept in memory before a sorted run is spilled to disk.
const RUN_BUDGET: usize = 4 << 20;

/// One customer of tonight's export.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub id: Box<[u8]>,
    /// Its place in the export: of two customers with one id, the first is compared.
    seq: u64,
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
        // The boxes' allocations cost about 16 bytes each besides their contents.
        std::mem::size_of::<Self>()
            + 16
            + self.id.len()
            + self.values.as_ref().map_or(0, |v| v.len() + 16)
    }

    fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        write_len(out, self.id.len())?;
        out.write_all(&self.id)?;
        out.write_all(&self.seq.to_le_bytes())?;
        out.write_all(&self.fingerprint.row.to_le_bytes())?;
        out.write_all(&self.fingerprint.fields)?;
        match &self.values {
            Some(values) => {
                write_len(out, values.len() + 1)?;
                out.write_all(values)
            }
            None => write_len(out, 0),
        }
    }

    fn read_from(input: &mut impl Read) -> io::Result<Option<Self>> {
        let Some(len) = read_len(input)? else {
            return Ok(None);
        };
        let mut id = vec![0; len];
        input.read_exact(&mut id)?;
        let mut fixed = [0; 16 + FIELD_COUNT];
        if !read_or_end(input, &mut fixed)? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let values = match read_len(input)?.ok_or(io::ErrorKind::UnexpectedEof)? {
            0 => None,
            n => {
                let mut values = vec![0; n - 1];
                input.read_exact(&mut values)?;
                Some(values.into_boxed_slice())
            }
        };
        Ok(Some(Entry {
            id: id.into_boxed_slice(),
            seq: u64::from_le_bytes(fixed[..8].try_into().expect("8 bytes")),
            fingerprint: Fingerprint {
                row: u64::from_le_bytes(fixed[8..16].try_into().expect("8 bytes")),
                fields: fixed[16..].try_into().expect("25 bytes"),
            },
            values,
        }))
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

    /// Notes one customer as it goes into the snapshot.
    ///
    /// Fails when a sorted run cannot be spilled to a temporary file.
    pub fn push(&mut self, customer: &Customer) -> io::Result<()> {
        let id = customer.get(Field::PartnerCustomerId);
        if id.is_empty() {
            self.without_id += 1;
            return Ok(());
        }
        let values = self.keep_values.then(|| {
            let mut out = Vec::new();
            for value in customer.values() {
                write_len(&mut out, value.len()).expect("a Vec takes every write");
                out.extend_from_slice(value.as_bytes());
            }
            out.into_boxed_slice()
        });
        self.seq += 1;
        self.sort.push(Entry {
            id: id.as_bytes().into(),
            seq: self.seq,
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

/// The sorted customers with each id once: the first in the export is kept.
pub(super) struct Unique {
    sorted: Sorted<Entry>,
    peeked: Option<Entry>,
    /// Customers dropped because an earlier one had their id.
    pub repeated: u64,
}

impl Unique {
    /// The next customer in id order.
    ///
    /// Fails when a spilled run cannot be read back.
    pub fn next_unique(&mut self) -> io::Result<Option<Entry>> {
        let first = match self.peeked.take() {
            Some(entry) => entry,
            None => match self.sorted.next_record()? {
                Some(entry) => entry,
                None => return Ok(None),
            },
        };
        loop {
            match self.sorted.next_record()? {
                Some(entry) if entry.id == first.id => self.repeated += 1,
                other => {
                    self.peeked = other;
                    return Ok(Some(first));
                }
            }
        }
    }
}
