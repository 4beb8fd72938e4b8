//! Cuts a JSON document into values over buffered bytes, tracking the line and column, so that each
//! customer object is parsed by serde_json from a slice (fast) instead of from a stream (one byte at a
//! time through `Read`). Only the structure is scanned here — brackets, braces, strings and their
//! escapes; every value's syntax is still checked by serde_json.

use std::io::{self, BufRead};

/// A position-tracking reader of JSON structure.
pub(super) struct Scanner<'r> {
    reader: &'r mut dyn BufRead,
    /// The line (1-based) and column (1-based, in bytes) of the next byte.
    pub line: u64,
    pub column: u64,
}

impl<'r> Scanner<'r> {
    pub fn new(reader: &'r mut dyn BufRead) -> Self {
        Self {
            reader,
            line: 1,
            column: 1,
        }
    }

    /// The next byte, not consumed; `None` at the end.
    pub fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.reader.fill_buf()?.first().copied())
    }

    /// Consumes one byte that is not a line break (a bracket, a comma).
    pub fn bump(&mut self) {
        self.reader.consume(1);
        self.column += 1;
    }

    /// Skips JSON whitespace.
    pub fn skip_whitespace(&mut self) -> io::Result<()> {
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            let n = buf
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(buf.len());
            let all = n == buf.len();
            advance(&mut self.line, &mut self.column, &buf[..n]);
            self.reader.consume(n);
            if !all {
                return Ok(());
            }
        }
    }

    /// Appends the bytes of the value that starts at the next byte to `out` (cleared by the caller):
    /// an object or array up to its closing bracket, a string up to its closing quote, anything else
    /// up to the next `,`, `]`, `}` or whitespace. An input that ends inside the value gives what
    /// there was, for serde_json to report.
    pub fn capture(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let start = out.len();
        let mut state = match self.peek()? {
            Some(b'{' | b'[') => State::Nested {
                depth: 0,
                in_string: false,
                escaped: false,
            },
            Some(b'"') => State::String {
                opened: false,
                escaped: false,
            },
            _ => State::Scalar,
        };
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let (used, done) = state.scan(buf);
            out.extend_from_slice(&buf[..used]);
            self.reader.consume(used);
            if done {
                break;
            }
        }
        advance(&mut self.line, &mut self.column, &out[start..]);
        Ok(())
    }
}

/// Moves a line and column past `bytes`.
fn advance(line: &mut u64, column: &mut u64, bytes: &[u8]) {
    match memchr::memrchr(b'\n', bytes) {
        Some(last) => {
            *line += memchr::memchr_iter(b'\n', bytes).count() as u64;
            *column = (bytes.len() - last) as u64;
        }
        None => *column += bytes.len() as u64,
    }
}

/// Where the scan of one value is.
enum State {
    Nested {
        depth: u32,
        in_string: bool,
        escaped: bool,
    },
    String {
        opened: bool,
        escaped: bool,
    },
    Scalar,
}

impl State {
    /// Scans `buf`: how many bytes belong to the value, and whether it ended within them.
    fn scan(&mut self, buf: &[u8]) -> (usize, bool) {
        match self {
            State::Nested {
                depth,
                in_string,
                escaped,
            } => {
                let mut i = 0;
                while i < buf.len() {
                    if *in_string {
                        if *escaped {
                            *escaped = false;
                            i += 1;
                            continue;
                        }
                        // Jump to the next quote or backslash.
                        match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                            None => return (buf.len(), false),
                            Some(at) => {
                                i += at;
                                if buf[i] == b'\\' {
                                    *escaped = true;
                                } else {
                                    *in_string = false;
                                }
                            }
                        }
                    } else {
                        match buf[i] {
                            b'"' => *in_string = true,
                            b'{' | b'[' => *depth += 1,
                            b'}' | b']' => {
                                *depth = depth.saturating_sub(1);
                                if *depth == 0 {
                                    return (i + 1, true);
                                }
                            }
                            _ => {}
                        }
                    }
                    i += 1;
                }
                (buf.len(), false)
            }
            State::String { opened, escaped } => {
                for (i, b) in buf.iter().enumerate() {
                    if !*opened {
                        *opened = true;
                    } else if *escaped {
                        *escaped = false;
                    } else if *b == b'\\' {
                        *escaped = true;
                    } else if *b == b'"' {
                        return (i + 1, true);
                    }
                }
                (buf.len(), false)
            }
            State::Scalar => match buf
                .iter()
                .position(|b| matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                Some(end) => (end, true),
                None => (buf.len(), false),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values captured from `text` read in pieces of `piece` bytes, with the position after each.
    fn values(text: &str, piece: usize) -> Vec<(String, u64, u64)> {
        let mut reader = io::BufReader::with_capacity(piece, text.as_bytes());
        let mut scan = Scanner::new(&mut reader);
        let mut out = Vec::new();
        loop {
            scan.skip_whitespace().unwrap();
            match scan.peek().unwrap() {
                None => return out,
                Some(b',') => scan.bump(),
                Some(_) => {
                    let mut value = Vec::new();
                    scan.capture(&mut value).unwrap();
                    out.push((String::from_utf8(value).unwrap(), scan.line, scan.column));
                }
            }
        }
    }

    #[test]
    fn cuts_values_whatever_the_buffer_size() {
        let text =
            "{\"a\": \"x}\\\"]\", \"b\": [1, {\"c\": null}]},\n  \"s\\\\\" , 12.5e3,\n[ ] ,true";
        let expected = vec![
            (
                "{\"a\": \"x}\\\"]\", \"b\": [1, {\"c\": null}]}".to_owned(),
                1,
                38,
            ),
            ("\"s\\\\\"".to_owned(), 2, 8),
            ("12.5e3".to_owned(), 2, 17),
            ("[ ]".to_owned(), 3, 4),
            ("true".to_owned(), 3, 10),
        ];
        for piece in [1, 2, 3, 7, 64] {
            assert_eq!(values(text, piece), expected, "pieces of {piece}");
        }
    }

    #[test]
    fn an_unclosed_value_gives_what_there_is() {
        assert_eq!(
            values("{\"a\": [1,", 4),
            vec![("{\"a\": [1,".to_owned(), 1, 10)]
        );
        assert_eq!(values("\"abc", 2), vec![("\"abc".to_owned(), 1, 5)]);
    }

    #[test]
    fn line_breaks_inside_values_move_the_line() {
        assert_eq!(
            values("\n\n{\"a\":\n\"b\"}", 3),
            vec![("{\"a\":\n\"b\"}".to_owned(), 4, 5)]
        );
    }
}
