//! The file format of a remembered upload (docs/changes.md): the line `rrfeed-known 1`, a line of JSON
//! naming the store and the run, then one record per customer, sorted by `PartnerCustomerID` bytes
//! and each id once: the id's length (LEB128), the id, the row hash (8 bytes, little-endian) and the 25
//! field fingerprints. About 40 bytes a customer.

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::fingerprint::Fingerprint;
use crate::extsort::read_or_end;
use crate::wire::FIELD_COUNT;

const MAGIC: &[u8] = b"rrfeed-known 1\n";

/// A `PartnerCustomerID`'s bytes: held inline up to 24 bytes (almost every id), so that a million
/// customers cost no allocation each.
pub type Id = SmallVec<[u8; 24]>;

/// The memory an [`Id`] holds besides its own size: its bytes and about 16 of allocator bookkeeping
/// when it is too long for the inline room, nothing otherwise.
pub fn id_heap_bytes(id: &Id) -> usize {
    if id.spilled() { id.len() + 16 } else { 0 }
}

/// The bytes after the id: the row hash and the field fingerprints.
pub(super) const FINGERPRINT_BYTES: usize = 8 + FIELD_COUNT;

/// Whose upload a remembered state is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub store_id: String,
    /// The ledger's number of the run that uploaded it.
    pub run: Option<i64>,
}

/// One remembered customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub id: Id,
    pub fingerprint: Fingerprint,
}

/// Writes a remembered state; the ids must come in ascending order.
pub struct KnownWriter<W: Write> {
    out: W,
    customers: u64,
}

impl<W: Write> KnownWriter<W> {
    /// Starts the file with its header.
    ///
    /// Fails when `out` cannot be written.
    pub fn new(mut out: W, header: &Header) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        Ok(Self { out, customers: 0 })
    }

    /// Appends one customer.
    ///
    /// Fails when `out` cannot be written.
    pub fn push(&mut self, id: &[u8], fingerprint: &Fingerprint) -> io::Result<()> {
        let mut record: SmallVec<[u8; 96]> = SmallVec::new();
        push_len(&mut record, id.len());
        record.extend_from_slice(id);
        record.extend_from_slice(&fingerprint.to_bytes());
        self.out.write_all(&record)?;
        self.customers += 1;
        Ok(())
    }

    /// The customers written, and the output.
    pub fn finish(mut self) -> io::Result<(u64, W)> {
        self.out.flush()?;
        Ok((self.customers, self.out))
    }
}

/// Reads a remembered state, checking its format and order as it goes.
pub struct KnownReader<R: BufRead> {
    input: R,
    header: Header,
    /// The id just read, and the one before it (for the order check).
    current: Vec<u8>,
    last: Vec<u8>,
    read_any: bool,
}

impl<R: BufRead> KnownReader<R> {
    /// Reads the header.
    ///
    /// Fails when the input is not a remembered state of this format.
    pub fn open(mut input: R) -> io::Result<Self> {
        let mut magic = [0; MAGIC.len()];
        if !read_or_end(&mut input, &mut magic)? || magic != MAGIC {
            return Err(invalid("it does not start with `rrfeed-known 1`".into()));
        }
        let mut line = Vec::new();
        input.read_until(b'\n', &mut line)?;
        let header: Header = serde_json::from_slice(&line)
            .map_err(|e| invalid(format!("its header is not readable: {e}")))?;
        Ok(Self {
            input,
            header,
            current: Vec::new(),
            last: Vec::new(),
            read_any: false,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next customer; `None` after the last.
    ///
    /// Fails on a read error, a truncated record, or ids out of order.
    pub fn next_known(&mut self) -> io::Result<Option<Known>> {
        Ok(self.advance()?.map(|fingerprint| Known {
            id: self.current.as_slice().into(),
            fingerprint,
        }))
    }

    /// Reads every remaining customer, checking them, without keeping any; returns how many.
    ///
    /// Fails as [`KnownReader::next_known`] does.
    pub fn check_rest(&mut self) -> io::Result<u64> {
        let mut customers = 0;
        while self.advance()?.is_some() {
            customers += 1;
        }
        Ok(customers)
    }

    /// Reads the next id into `current` (checking it comes after the one before); its fingerprint.
    fn advance(&mut self) -> io::Result<Option<Fingerprint>> {
        std::mem::swap(&mut self.current, &mut self.last);
        self.current.clear();
        let mut rest = [0; FINGERPRINT_BYTES];
        let buffered = self.input.fill_buf()?;
        if buffered.is_empty() {
            return Ok(None);
        }
        // The whole record is usually buffered: take it in one piece.
        match decode_len(buffered) {
            Some((len, used)) if buffered.len() >= used + len + FINGERPRINT_BYTES => {
                self.current.extend_from_slice(&buffered[used..used + len]);
                rest.copy_from_slice(&buffered[used + len..used + len + FINGERPRINT_BYTES]);
                self.input.consume(used + len + FINGERPRINT_BYTES);
            }
            _ => {
                let len = read_len(&mut self.input)?.ok_or(io::ErrorKind::UnexpectedEof)?;
                self.current.resize(len, 0);
                self.input.read_exact(&mut self.current)?;
                self.input.read_exact(&mut rest)?;
            }
        }
        if self.read_any && self.last >= self.current {
            return Err(invalid("its customers are not in order".into()));
        }
        self.read_any = true;
        Ok(Some(Fingerprint::read_from(&rest)))
    }
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Appends a length as LEB128 (one byte below 128).
pub(super) fn push_len(out: &mut impl Extend<u8>, mut len: usize) {
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.extend([byte]);
            return;
        }
        out.extend([byte | 0x80]);
    }
}

/// The LEB128 length at the start of `bytes`, and how many bytes it took; `None` when `bytes` ends
/// inside it.
pub(super) fn decode_len(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut len = 0usize;
    for (i, byte) in bytes.iter().take(5).enumerate() {
        len |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((len, i + 1));
        }
    }
    None
}

/// Reads a LEB128 length; `None` at the end of the input.
pub(super) fn read_len(input: &mut impl BufRead) -> io::Result<Option<usize>> {
    match input.fill_buf()?.first() {
        None => return Ok(None),
        Some(&byte) if byte < 0x80 => {
            input.consume(1);
            return Ok(Some(byte as usize));
        }
        Some(_) => {}
    }
    let mut len = 0usize;
    for shift in (0..35).step_by(7) {
        let mut byte = [0];
        if !read_or_end(input, &mut byte)? {
            return if shift == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        len |= ((byte[0] & 0x7f) as usize) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(Some(len));
        }
    }
    Err(invalid("a length is too long".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint {
            row: u64::from(n) * 7,
            fields: [n; FIELD_COUNT],
        }
    }

    fn header() -> Header {
        Header {
            store_id: "1001".into(),
            run: Some(4),
        }
    }

    #[test]
    fn customers_come_back_as_written() {
        let mut w = KnownWriter::new(Vec::new(), &header()).unwrap();
        let long = "L".repeat(300);
        for (id, n) in [("A1", 1), ("B2", 2), (long.as_str(), 3)] {
            w.push(id.as_bytes(), &fp(n)).unwrap();
        }
        let (count, bytes) = w.finish().unwrap();
        assert_eq!(count, 3);
        let mut r = KnownReader::open(bytes.as_slice()).unwrap();
        assert_eq!(r.header(), &header());
        let mut got = Vec::new();
        while let Some(k) = r.next_known().unwrap() {
            got.push((String::from_utf8(k.id.into_vec()).unwrap(), k.fingerprint));
        }
        assert_eq!(got[1], ("B2".to_owned(), fp(2)));
        assert_eq!(got[2].0, long);
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_shorter_list() {
        assert!(KnownReader::open(&b"something else\n"[..]).is_err());
        let mut w = KnownWriter::new(Vec::new(), &header()).unwrap();
        w.push(b"B", &fp(1)).unwrap();
        w.push(b"A", &fp(2)).unwrap();
        let (_, bytes) = w.finish().unwrap();
        let mut r = KnownReader::open(bytes.as_slice()).unwrap();
        r.next_known().unwrap();
        assert!(r.next_known().is_err(), "out of order");
        let mut r = KnownReader::open(&bytes[..bytes.len() - 3]).unwrap();
        r.next_known().unwrap();
        assert!(r.next_known().is_err(), "truncated");
    }
}
