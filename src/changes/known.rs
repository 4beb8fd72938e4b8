//! The file format of a remembered upload (docs/changes.md): the line `rrfeed-known 1`, a line of JSON
//! naming the store and the run, then one record per customer, sorted by `PartnerCustomerID` bytes
//! and each id once: the id's length (LEB128), the id, the row hash (8 bytes, little-endian) and the 25
//! field fingerprints. About 40 bytes a customer.

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;
use crate::extsort::read_or_end;
use crate::wire::FIELD_COUNT;

const MAGIC: &[u8] = b"rrfeed-known 1\n";

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
    pub id: Box<[u8]>,
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
        write_len(&mut self.out, id.len())?;
        self.out.write_all(id)?;
        self.out.write_all(&fingerprint.row.to_le_bytes())?;
        self.out.write_all(&fingerprint.fields)?;
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
    last: Option<Box<[u8]>>,
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
            last: None,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next customer; `None` after the last.
    ///
    /// Fails on a read error, a truncated record, or ids out of order.
    pub fn next_known(&mut self) -> io::Result<Option<Known>> {
        let Some(len) = read_len(&mut self.input)? else {
            return Ok(None);
        };
        let mut id = vec![0; len];
        self.input.read_exact(&mut id)?;
        let mut rest = [0; 8 + FIELD_COUNT];
        self.input.read_exact(&mut rest)?;
        let id = id.into_boxed_slice();
        if self.last.as_ref().is_some_and(|last| *last >= id) {
            return Err(invalid("its customers are not in order".into()));
        }
        self.last = Some(id.clone());
        let fingerprint = Fingerprint {
            row: u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")),
            fields: rest[8..].try_into().expect("25 bytes"),
        };
        Ok(Some(Known { id, fingerprint }))
    }
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Writes a length as LEB128 (one byte below 128).
pub(super) fn write_len(out: &mut impl Write, mut len: usize) -> io::Result<()> {
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            return out.write_all(&[byte]);
        }
        out.write_all(&[byte | 0x80])?;
    }
}

/// Reads a LEB128 length; `None` at the end of the input.
pub(super) fn read_len(input: &mut impl io::Read) -> io::Result<Option<usize>> {
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
            got.push((String::from_utf8(k.id.into()).unwrap(), k.fingerprint));
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
