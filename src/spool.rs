//! The snapshot of a run's rows (SPEC §2.1): every validated row, serialized once as the vendor's JSON,
//! one per line, in a file under the state directory. The upload reads chunks back from it, so the rows
//! sent are exactly the rows counted even if the export is rewritten meanwhile.
//!
//! The file holds customer data: it is created readable by its owner only, and removed when its run
//! ends unless the run may be resumed ([`Spool::keep`]). Its SHA-256 lets `--resume` check that a new
//! snapshot is the same as the interrupted one.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::customer::Customer;

/// Writes a spool, one row per call.
pub struct SpoolWriter {
    out: BufWriter<File>,
    path: PathBuf,
    rows: u64,
    scratch: Vec<u8>,
    hasher: Sha256,
}

impl SpoolWriter {
    /// Creates an empty spool file at `path` (its directory is made if missing), readable by its owner
    /// only.
    ///
    /// Fails when the directory cannot be made or the file cannot be created.
    pub fn create(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        Ok(Self {
            out: BufWriter::with_capacity(1 << 16, file),
            path: path.to_owned(),
            rows: 0,
            scratch: Vec::with_capacity(1024),
            hasher: Sha256::new(),
        })
    }

    /// Appends one row.
    pub fn push(&mut self, customer: &Customer) -> io::Result<()> {
        self.scratch.clear();
        customer.write_json(&mut self.scratch);
        self.scratch.push(b'\n');
        self.hasher.update(&self.scratch);
        self.out.write_all(&self.scratch)?;
        self.rows += 1;
        Ok(())
    }

    /// Flushes the spool to disk and hands it over for reading.
    pub fn finish(self) -> io::Result<Spool> {
        // Made first, so that a failure below removes the file when it drops.
        let spool = Spool {
            path: self.path.clone(),
            rows: self.rows,
            sha256: hex(&self.hasher.finalize()),
            keep: false,
        };
        self.out
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_data()?;
        Ok(spool)
    }
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A finished snapshot; its file is removed when this is dropped, unless [`Spool::keep`] was called.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    rows: u64,
    sha256: String,
    keep: bool,
}

impl Spool {
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SHA-256 of the spooled rows, in hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Keeps the file after this is dropped: the run may be resumed.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Reads the rows from the first one.
    pub fn reader(&self) -> io::Result<SpoolReader> {
        Ok(SpoolReader {
            input: BufReader::with_capacity(1 << 16, File::open(&self.path)?),
        })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Reads rows back in order.
pub struct SpoolReader {
    input: BufReader<File>,
}

impl SpoolReader {
    /// Skips the first `n` rows (already confirmed by the server).
    pub fn skip_rows(&mut self, n: u64) -> io::Result<()> {
        let mut scratch = Vec::new();
        for _ in 0..n {
            scratch.clear();
            if self.input.read_until(b'\n', &mut scratch)? == 0 {
                return Err(io::Error::other(
                    "the snapshot ended before the confirmed rows",
                ));
            }
        }
        Ok(())
    }

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
    fn a_kept_spool_survives_and_equal_rows_hash_equal() {
        let dir = tempfile::tempdir().unwrap();
        let norm = Normalizer::new(jiff::civil::date(2026, 1, 1));
        let write = |name: &str| {
            let mut w = SpoolWriter::create(&dir.path().join(name)).unwrap();
            w.push(&norm.parse(&RawCustomer::default(), &mut Vec::new()))
                .unwrap();
            w.finish().unwrap()
        };
        let mut a = write("a.ndjson");
        let b = write("b.ndjson");
        assert_eq!(a.sha256(), b.sha256());
        a.keep();
        let path = a.path().to_owned();
        drop(a);
        assert!(path.exists());
    }

    #[test]
    fn rows_come_back_in_order_and_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let norm = Normalizer::new(jiff::civil::date(2026, 1, 1));
        let mut w = SpoolWriter::create(&dir.path().join("spool/run-1.ndjson")).unwrap();
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
        assert_eq!(spool.sha256().len(), 64);
        let path = spool.path().to_owned();
        drop(spool);
        assert!(!path.exists(), "the spool is removed with its owner");
    }
}
