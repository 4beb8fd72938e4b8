//! The snapshot of a run's rows (docs/transaction.md, step 1): every validated row, written once in
//! a compact form to a file under the state directory. The upload reads chunks back from it, so the
//! rows sent are exactly the rows counted even if the export is rewritten meanwhile.
//!
//! A row is one line: `1` when no value needs escaping in JSON (`0` otherwise), then its 25 values
//! in field order, separated by the unit separator (0x1F). A normalized value holds no control
//! character, so neither byte can occur inside one. Each chunk's rows become the vendor's JSON as
//! they are read back, in the post loop while the chunk before is in flight: the file is about a sixth
//! of the size of the JSON (128 bytes a row against 736 for the generated benchmark customers), and so
//! are the bytes written, hashed and read.
//!
//! The file holds customer data: it is created readable by its owner only, and removed when its run
//! ends unless the run may be resumed ([`Spool::keep`]). Its BLAKE3 hash lets `--resume` check that a new
//! snapshot is the same as the interrupted one.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::customer::Customer;
use crate::wire::{FIELD_COUNT, write_customer_row, write_separated_row};

/// Separates the values of a row.
const UNIT_SEPARATOR: u8 = 0x1f;

/// Rows are gathered in a buffer this large before it is hashed and written in one go (BLAKE3 is
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
        self.buf
            .push(if customer.escape_free() { b'1' } else { b'0' });
        for (i, value) in customer.values().iter().enumerate() {
            if i > 0 {
                self.buf.push(UNIT_SEPARATOR);
            }
            self.buf.extend_from_slice(value.as_bytes());
        }
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

    /// Appends up to `n` rows to `out` as the vendor's JSON objects, separated by commas (the inside
    /// of a JSON array); returns how many it read. A row cut short at the end of the file is no row.
    ///
    /// Fails when the file cannot be read or a row is not one this module wrote.
    pub fn read_rows_json(&mut self, n: usize, out: &mut Vec<u8>) -> io::Result<usize> {
        let mut read = 0;
        let mut long_row = Vec::new();
        while read < n {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let mut used = 0;
            for end in memchr::memchr_iter(b'\n', buf) {
                write_row_json(&buf[used..end], read > 0, out)?;
                used = end + 1;
                read += 1;
                if read == n {
                    break;
                }
            }
            if used > 0 {
                self.input.consume(used);
                continue;
            }
            // A row longer than the buffer.
            long_row.clear();
            self.input.read_until(b'\n', &mut long_row)?;
            if long_row.pop() == Some(b'\n') {
                write_row_json(&long_row, read > 0, out)?;
                read += 1;
            }
        }
        Ok(read)
    }
}

/// Appends one spooled row as a JSON object, after a comma unless it is the first. A damaged row
/// fails the read, leaving part of a row in `out`, which the caller then discards.
fn write_row_json(row: &[u8], comma: bool, out: &mut Vec<u8>) -> io::Result<()> {
    let damaged = || io::Error::other("a row in it is damaged");
    let (&flag, rest) = row.split_first().ok_or_else(damaged)?;
    if comma {
        out.push(b',');
    }
    if flag == b'1' {
        return match write_separated_row(rest, UNIT_SEPARATOR, out) {
            true => Ok(()),
            false => Err(damaged()),
        };
    }
    let mut values: [&[u8]; FIELD_COUNT] = [&[]; FIELD_COUNT];
    let mut start = 0;
    let mut separators = memchr::memchr_iter(UNIT_SEPARATOR, rest);
    for value in values.iter_mut().take(FIELD_COUNT - 1) {
        let end = separators.next().ok_or_else(damaged)?;
        *value = &rest[start..end];
        start = end + 1;
    }
    if separators.next().is_some() || flag != b'0' {
        return Err(damaged());
    }
    values[FIELD_COUNT - 1] = &rest[start..];
    write_customer_row(&values, false, out);
    Ok(())
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

    /// Customers with these ids and addresses, the reader's record checked like the CSV reader's.
    fn spool_of(dir: &Path, rows: &[(&str, &str)]) -> Spool {
        let norm = Normalizer::new(jiff::civil::date(2026, 1, 1));
        let mut w = SpoolWriter::create(&dir.join("spool/run-1.rows")).unwrap();
        for (id, address) in rows {
            let scan = crate::customer::scan_record(format!("{id}{address}").as_bytes());
            let mut raw = RawCustomer {
                plain: scan.plain,
                escape_free: scan.escape_free,
                ..RawCustomer::default()
            };
            raw.set(Field::PartnerCustomerId, id);
            raw.set(Field::Address, address);
            w.push(&norm.parse(&raw, &mut Vec::new())).unwrap();
        }
        w.finish().unwrap()
    }

    /// The JSON objects of a buffer filled by [`SpoolReader::read_rows_json`]: (id, address).
    fn parsed(buf: &[u8]) -> Vec<(String, String)> {
        let array = [b"[", buf, b"]"].concat();
        let rows: Vec<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_slice(&array).unwrap();
        rows.iter()
            .map(|row| {
                assert_eq!(row.len(), 25);
                let text = |key: &str| row[key].as_str().unwrap().to_owned();
                (text("PartnerCustomerID"), text("CustomerAddress"))
            })
            .collect()
    }

    #[test]
    fn rows_come_back_as_the_vendors_json_in_order_and_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [
            ("0", "1 Main St"),
            ("1", "2 \"Elm\" St"),
            ("2", "C:\\road"),
            ("3", ""),
            ("4", "Rue de l'Église"),
        ];
        let spool = spool_of(dir.path(), &rows);
        assert_eq!(spool.rows(), 5);
        let want = |range: std::ops::Range<usize>| -> Vec<(String, String)> {
            rows[range]
                .iter()
                .map(|(id, a)| (id.to_string(), a.to_string()))
                .collect()
        };
        let mut r = spool.reader().unwrap();
        r.skip_rows(1).unwrap();
        let mut buf = Vec::new();
        assert_eq!(r.read_rows_json(3, &mut buf).unwrap(), 3);
        assert_eq!(parsed(&buf), want(1..4));
        buf.clear();
        assert_eq!(r.read_rows_json(3, &mut buf).unwrap(), 1);
        assert_eq!(parsed(&buf), want(4..5));
        assert_eq!(r.read_rows_json(3, &mut buf).unwrap(), 0);
        assert_eq!(spool.blake3().len(), 64);
        let path = spool.path().to_owned();
        drop(spool);
        assert!(!path.exists(), "the spool is removed with its owner");
    }

    #[test]
    fn rows_longer_than_a_buffer_come_back_whole_and_a_cut_short_or_damaged_row_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(300);
        let mut spool = spool_of(dir.path(), &[("1", long.as_str()), ("2", "b")]);
        spool.keep();
        let path = spool.path().to_owned();
        let open = || SpoolReader {
            input: BufReader::with_capacity(64, File::open(&path).unwrap()),
        };
        let mut out = Vec::new();
        assert_eq!(open().read_rows_json(5, &mut out).unwrap(), 2);
        assert_eq!(parsed(&out)[0], ("1".to_owned(), long.clone()));
        let mut r = open();
        r.skip_rows(1).unwrap();
        out.clear();
        assert_eq!(r.read_rows_json(1, &mut out).unwrap(), 1);
        assert_eq!(parsed(&out), [("2".to_owned(), "b".to_owned())]);

        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, [&whole[..], b"1C3\x1f"].concat()).unwrap();
        out.clear();
        assert_eq!(open().read_rows_json(5, &mut out).unwrap(), 2);
        assert!(open().skip_rows(3).is_err(), "a cut-short row is no row");
        let values = |n: usize| vec!["v"; n].join("\x1f");
        for damaged in [
            "1C3\x1fno more values".to_owned(),
            format!("1{}", values(26)),
            format!("0{}", values(24)),
            format!("0{}", values(26)),
            format!("x{}", values(25)),
        ] {
            let row = format!("{damaged}\n");
            std::fs::write(&path, [&whole[..], row.as_bytes()].concat()).unwrap();
            let err = open().read_rows_json(5, &mut out).unwrap_err();
            assert!(err.to_string().contains("damaged"), "{damaged:?}: {err}");
        }
        let whole_row = format!("1{}\n", values(25));
        std::fs::write(&path, [&whole[..], whole_row.as_bytes()].concat()).unwrap();
        assert_eq!(open().read_rows_json(5, &mut out).unwrap(), 3);
    }
}
