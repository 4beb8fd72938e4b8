//! The snapshot of a run's rows (SPEC §2.1): every validated row, serialized once as the vendor's JSON,
//! one per line, in a file under the state directory. The upload reads chunks back from it, so the rows
//! sent are exactly the rows counted even if the export is rewritten meanwhile.
//!
//! The file holds customer data: it is created readable by its owner only and removed when dropped.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use tempfile::NamedTempFile;

use crate::customer::Customer;

/// Writes a spool, one row per call.
pub struct SpoolWriter {
    out: BufWriter<NamedTempFile>,
    rows: u64,
    scratch: Vec<u8>,
}

impl SpoolWriter {
    /// Creates an empty spool file in `dir` (made if missing).
    ///
    /// Fails when the directory cannot be made or written.
    pub fn create(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let file = tempfile::Builder::new()
            .prefix("spool-")
            .suffix(".ndjson")
            .tempfile_in(dir)?;
        Ok(Self {
            out: BufWriter::with_capacity(1 << 16, file),
            rows: 0,
            scratch: Vec::with_capacity(1024),
        })
    }

    /// Appends one row.
    pub fn push(&mut self, customer: &Customer) -> io::Result<()> {
        self.scratch.clear();
        customer.write_json(&mut self.scratch);
        self.scratch.push(b'\n');
        self.out.write_all(&self.scratch)?;
        self.rows += 1;
        Ok(())
    }

    /// Flushes the spool and hands it over for reading.
    pub fn finish(self) -> io::Result<Spool> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.as_file().sync_data()?;
        Ok(Spool {
            file,
            rows: self.rows,
        })
    }
}

/// A finished snapshot.
#[derive(Debug)]
pub struct Spool {
    file: NamedTempFile,
    rows: u64,
}

impl Spool {
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Reads the rows from the first one.
    pub fn reader(&self) -> io::Result<SpoolReader> {
        let mut file = self.file.reopen()?;
        file.seek(SeekFrom::Start(0))?;
        Ok(SpoolReader {
            input: BufReader::with_capacity(1 << 16, file),
        })
    }
}

/// Reads rows back in order.
pub struct SpoolReader {
    input: BufReader<File>,
}

impl SpoolReader {
    /// Appends up to `n` rows to `out`, each followed by `\n`; returns how many it read.
    pub fn read_rows(&mut self, n: usize, out: &mut Vec<u8>) -> io::Result<usize> {
        for i in 0..n {
            if self.input.read_until(b'\n', out)? == 0 {
                return Ok(i);
            }
        }
        Ok(n)
    }
}

/// The rows of a buffer filled by [`SpoolReader::read_rows`].
pub fn rows_of(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|b| *b == b'\n').filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::{Normalizer, RawCustomer};
    use crate::protocol::Field;

    #[test]
    fn rows_come_back_in_order_and_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let norm = Normalizer::new(jiff::civil::date(2026, 1, 1));
        let mut w = SpoolWriter::create(&dir.path().join("spool")).unwrap();
        for i in 0..5 {
            let id = i.to_string();
            let mut raw = RawCustomer::default();
            raw.set(Field::PartnerCustomerId, &id);
            w.push(&norm.parse(&raw, &mut Vec::new())).unwrap();
        }
        let spool = w.finish().unwrap();
        assert_eq!(spool.rows(), 5);
        let mut r = spool.reader().unwrap();
        let mut buf = Vec::new();
        assert_eq!(r.read_rows(3, &mut buf).unwrap(), 3);
        let ids: Vec<String> = rows_of(&buf)
            .map(|row| {
                let v: serde_json::Value = serde_json::from_slice(row).unwrap();
                v["PartnerCustomerID"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(ids, ["0", "1", "2"]);
        buf.clear();
        assert_eq!(r.read_rows(3, &mut buf).unwrap(), 2);
        let path = spool.path().to_owned();
        drop(spool);
        assert!(!path.exists(), "the spool is removed with its owner");
    }
}
