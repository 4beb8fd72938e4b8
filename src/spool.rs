//! The snapshot of a run's rows (docs/transaction.md, step 1): every validated row, serialized once as the vendor's JSON,
//! one per line, in a file under the state directory. The upload reads chunks back from it, so the rows
//! sent are exactly the rows counted even if the export is rewritten meanwhile.
//!
//! The file holds customer data: it is created readable by its owner only, and removed when its run
//! ends unless the run may be resumed ([`Spool::keep`]). Its BLAKE3 hash lets `--resume` check that a new
//! snapshot is the same as the interrupted one.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::customer::Customer;

/// Rows are serialized into a buffer this large before it is hashed and written in one go (BLAKE3 is
/// fast only on large blocks).
const BLOCK: usize = 1 << 18;

/// Bytes read from the spool at a time: a chunk of a thousand rows in two or three reads.
const READ_BUFFER: usize = 1 << 18;

/// Writes a spool, one row per call.
pub struct SpoolWriter {
    file: File,
    path: PathBuf,
    rows: u64,
    buf: Vec<u8>,
    hasher: blake3::Hasher,
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
            file,
            path: path.to_owned(),
            rows: 0,
            buf: Vec::with_capacity(BLOCK + 4096),
            hasher: blake3::Hasher::new(),
        })
    }

    /// Appends one row.
    pub fn push(&mut self, customer: &Customer) -> io::Result<()> {
        customer.write_json(&mut self.buf);
        self.buf.push(b'\n');
        self.rows += 1;
        if self.buf.len() >= BLOCK {
            self.write_block()?;
        }
        Ok(())
    }

    fn write_block(&mut self) -> io::Result<()> {
        self.hasher.update(&self.buf);
        self.file.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the last rows and hands the spool over for reading.
    ///
    /// There is no fsync: the spool is read back by this run only (a resumed run makes its own
    /// snapshot and compares hashes), so it only has to outlive a killed process, which the page cache
    /// does.
    pub fn finish(mut self) -> io::Result<Spool> {
        let written = self.write_block();
        let spool = Spool {
            path: self.path.clone(),
            rows: self.rows,
            blake3: self.hasher.finalize().to_hex().to_string(),
            keep: false,
        };
        // On a failure the spool drops here, removing the partial file.
        written.map(|()| spool)
    }
}

/// A finished snapshot; its file is removed when this is dropped, unless [`Spool::keep`] was called.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    rows: u64,
    blake3: String,
    keep: bool,
}

impl Spool {
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The BLAKE3 hash of the spooled rows, in hex.
    pub fn blake3(&self) -> &str {
        &self.blake3
    }

    /// Keeps the file after this is dropped: the run may be resumed.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Reads the rows from the first one.
    pub fn reader(&self) -> io::Result<SpoolReader> {
        Ok(SpoolReader {
            input: BufReader::with_capacity(READ_BUFFER, File::open(&self.path)?),
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

/// Reads rows back in order, a chunk at a time.
pub struct SpoolReader {
    input: BufReader<File>,
}

impl SpoolReader {
    /// Skips the first `n` rows (already confirmed by the server).
    pub fn skip_rows(&mut self, n: u64) -> io::Result<()> {
        let mut left = n;
        while left > 0 {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Err(io::Error::other(
                    "the snapshot ended before the confirmed rows",
                ));
            }
            let (rows, used) = rows_in(buf, left);
            self.input.consume(used);
            left -= rows;
        }
        Ok(())
    }

    /// Appends up to `n` rows to `out` as the inside of a JSON array (`{..},{..}`); returns how
    /// many it read.
    ///
    /// Rows are copied in blocks as they lie in the file, then their line ends become commas: a
    /// JSON string never holds a raw line break, so every `\n` in the spool ends a row.
    pub fn read_rows_joined(&mut self, n: usize, out: &mut Vec<u8>) -> io::Result<usize> {
        let start = out.len();
        let mut left = n as u64;
        while left > 0 {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let (rows, used) = rows_in(buf, left);
            out.extend_from_slice(&buf[..used]);
            self.input.consume(used);
            left -= rows;
        }
        let read = n - left as usize;
        // A snapshot cut short may end inside a row: that part is no row.
        let complete = memchr::memrchr(b'\n', &out[start..]).map_or(start, |at| start + at);
        out.truncate(complete);
        // The other line ends separate the rows.
        let mut from = start;
        while let Some(at) = memchr::memchr(b'\n', &out[from..]) {
            out[from + at] = b',';
            from += at + 1;
        }
        Ok(read)
    }
}

/// How many whole rows (up to `max`) begin `buf`, and the bytes they take with their line ends. A
/// row cut by the end of the buffer is left for the next fill.
fn rows_in(buf: &[u8], max: u64) -> (u64, usize) {
    let mut rows = 0;
    let mut used = 0;
    for end in memchr::memchr_iter(b'\n', buf) {
        rows += 1;
        used = end + 1;
        if rows == max {
            break;
        }
    }
    if rows == 0 {
        // A row longer than the buffer: take what there is; the row goes on in the next fill.
        return (0, buf.len());
    }
    (rows, used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::{Normalizer, RawCustomer};
    use crate::wire::Field;

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
        assert_eq!(a.blake3(), b.blake3());
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
        r.skip_rows(1).unwrap();
        let mut buf = b"[".to_vec();
        assert_eq!(r.read_rows_joined(3, &mut buf).unwrap(), 3);
        buf.push(b']');
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&buf).unwrap();
        let ids: Vec<&str> = rows
            .iter()
            .map(|v| v["PartnerCustomerID"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["1", "2", "3"]);
        buf.clear();
        assert_eq!(r.read_rows_joined(3, &mut buf).unwrap(), 1);
        assert_eq!(buf.iter().filter(|b| **b == b',').count(), 24, "one row");
        assert_eq!(r.read_rows_joined(3, &mut buf).unwrap(), 0);
        assert_eq!(spool.blake3().len(), 64);
        let path = spool.path().to_owned();
        drop(spool);
        assert!(!path.exists(), "the spool is removed with its owner");
    }

    #[test]
    fn rows_longer_than_a_buffer_and_a_cut_short_end_are_read_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.ndjson");
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(300));
        std::fs::write(&path, format!("{long}\n{{\"b\":1}}\n{{\"c\":")).unwrap();
        let open = || SpoolReader {
            input: BufReader::with_capacity(64, File::open(&path).unwrap()),
        };
        let mut out = Vec::new();
        assert_eq!(open().read_rows_joined(5, &mut out).unwrap(), 2);
        assert_eq!(out, format!("{long},{{\"b\":1}}").into_bytes());
        let mut r = open();
        r.skip_rows(1).unwrap();
        out.clear();
        assert_eq!(r.read_rows_joined(1, &mut out).unwrap(), 1);
        assert_eq!(out, b"{\"b\":1}");
        assert!(open().skip_rows(3).is_err(), "a cut-short row is no row");
    }
}
