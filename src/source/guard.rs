//! Byte-level guards every export passes through before a format reader sees it: bytes that
//! Windows-1252 leaves undefined (they prove the file is in another encoding), a DOS end-of-file
//! Ctrl-Z, and a bound on how much may be read for one record, so that a file of one endless line
//! (a dump of NUL bytes, a header of 20 MB) is refused instead of filling memory (README "Input").

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

/// The longest record or header accepted, in bytes.
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

/// Reading may run ahead of the record being parsed by the readers' buffers; the guard allows that
/// much on top of [`MAX_RECORD_BYTES`] before it stops the reading.
const READ_AHEAD: u64 = 1 << 18;

const CTRL_Z: u8 = 0x1a;

/// Why a guard stopped the reading. Carried inside an [`io::Error`] through the decoders and the
/// format readers, and turned back into an input error by [`GuardError::of`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardError {
    /// A byte that Windows-1252 does not define, at a 1-based line and byte column.
    Undefined1252 { byte: u8, line: u64, column: u64 },
    /// More than [`MAX_RECORD_BYTES`] were read without a record ending.
    TooLong,
}

impl GuardError {
    /// The guard's error inside `e`, if it is one.
    pub fn of(e: &io::Error) -> Option<&GuardError> {
        e.get_ref().and_then(|inner| inner.downcast_ref())
    }
}

impl fmt::Display for GuardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuardError::Undefined1252 { byte, .. } => write!(
                f,
                "byte 0x{byte:02X} is not a character in Windows-1252, so the file is in another \
                 encoding: re-export it as UTF-8, or pass the --encoding it was written in \
                 (e.g. macintosh for Excel for Mac)"
            ),
            GuardError::TooLong => write!(
                f,
                "a record (or the header) is longer than {} MiB: is this a customer export? (a \
                 quote left open, or a file of one endless line)",
                MAX_RECORD_BYTES >> 20
            ),
        }
    }
}

impl std::error::Error for GuardError {}

/// Refuses the five bytes Windows-1252 leaves undefined; reads raw bytes before they are decoded.
pub struct Undefined1252<R> {
    inner: R,
    line: u64,
    column: u64,
}

impl<R: Read> Undefined1252<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            line: 1,
            column: 0,
        }
    }
}

fn undefined_in_1252(b: u8) -> bool {
    matches!(b, 0x81 | 0x8d | 0x8f | 0x90 | 0x9d)
}

impl<R: Read> Read for Undefined1252<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let bytes = &buf[..n];
        match bytes.iter().position(|b| undefined_in_1252(*b)) {
            None => {
                match memchr::memrchr(b'\n', bytes) {
                    Some(last) => {
                        self.line += memchr::memchr_iter(b'\n', bytes).count() as u64;
                        self.column = (n - last - 1) as u64;
                    }
                    None => self.column += n as u64,
                }
                Ok(n)
            }
            Some(at) => {
                let before = &bytes[..at];
                let (line, column) = match memchr::memrchr(b'\n', before) {
                    Some(last) => (
                        self.line + memchr::memchr_iter(b'\n', before).count() as u64,
                        (at - last) as u64,
                    ),
                    None => (self.line, self.column + at as u64 + 1),
                };
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    GuardError::Undefined1252 {
                        byte: bytes[at],
                        line,
                        column,
                    },
                ))
            }
        }
    }
}

/// Where the current record started, in bytes read through a [`Guard`]; readers move it on after
/// every record.
#[derive(Clone, Debug, Default)]
pub struct RecordMark(Rc<Cell<(u64, u64)>>);

impl RecordMark {
    /// A record ended: the next one starts at what has been read so far.
    pub fn next_record(&self) {
        let (read, _) = self.0.get();
        self.0.set((read, read));
    }

    fn add_read(&self, n: usize) -> bool {
        let (read, start) = self.0.get();
        let read = read + n as u64;
        self.0.set((read, start));
        read - start <= MAX_RECORD_BYTES + READ_AHEAD
    }
}

/// Decoded text on its way to a format reader: drops a Ctrl-Z that ends the stream, and stops with
/// [`GuardError::TooLong`] when a record runs past the limit.
pub struct Guard<R> {
    inner: R,
    mark: RecordMark,
}

impl<R: BufRead> Guard<R> {
    pub fn new(inner: R, mark: RecordMark) -> Self {
        Self { inner, mark }
    }
}

impl<R: BufRead> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let data = self.inner.fill_buf()?;
        let n = match data {
            [] => return Ok(0),
            [CTRL_Z] => {
                self.inner.consume(1);
                if self.inner.fill_buf()?.is_empty() {
                    return Ok(0);
                }
                buf[0] = CTRL_Z;
                1
            }
            // A Ctrl-Z at the end of what is buffered waits until we know whether the stream ends.
            [.., CTRL_Z] => {
                let n = (data.len() - 1).min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                self.inner.consume(n);
                n
            }
            _ => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                self.inner.consume(n);
                n
            }
        };
        if self.mark.add_read(n) {
            Ok(n)
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                GuardError::TooLong,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through_guard(bytes: &[u8], chunk: usize) -> io::Result<Vec<u8>> {
        let inner = io::BufReader::with_capacity(chunk, bytes);
        let mut out = Vec::new();
        Guard::new(inner, RecordMark::default()).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn only_a_ctrl_z_that_ends_the_stream_is_dropped() {
        for chunk in [1, 2, 3, 64] {
            assert_eq!(through_guard(b"a,b\r\n\x1a", chunk).unwrap(), b"a,b\r\n");
            assert_eq!(through_guard(b"a\x1ab\x1a", chunk).unwrap(), b"a\x1ab");
            assert_eq!(through_guard(b"\x1a\x1a", chunk).unwrap(), b"\x1a");
            assert_eq!(through_guard(b"", chunk).unwrap(), b"");
        }
    }

    #[test]
    fn a_record_longer_than_the_limit_stops_the_reading() {
        let long = vec![0u8; (MAX_RECORD_BYTES + READ_AHEAD) as usize + 10];
        let err = through_guard(&long, 1 << 16).unwrap_err();
        assert_eq!(GuardError::of(&err), Some(&GuardError::TooLong));
        // Records that end in time may add up to any size.
        let mark = RecordMark::default();
        let mut guard = Guard::new(
            io::BufReader::with_capacity(1 << 16, &long[..]),
            mark.clone(),
        );
        let mut buf = vec![0; 1 << 16];
        while guard.read(&mut buf).unwrap() > 0 {
            mark.next_record();
        }
    }

    #[test]
    fn an_undefined_windows_1252_byte_names_its_line_and_column() {
        let mut out = Vec::new();
        let err = Undefined1252::new(&b"id,name\n1,Ann\n2,Bo\x81b\n"[..])
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(
            GuardError::of(&err),
            Some(&GuardError::Undefined1252 {
                byte: 0x81,
                line: 3,
                column: 5
            })
        );
        assert!(
            Undefined1252::new(&b"Caf\xe9 \x80\n"[..])
                .read_to_end(&mut out)
                .is_ok()
        );
    }
}
