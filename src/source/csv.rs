//! CSV exports: a header row, then one record per customer. Quoted fields may hold delimiters, quotes
//! and line breaks; blank lines are skipped; a record with more or fewer fields than the header is a
//! structural error, except for empty fields after the last column (a trailing delimiter).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::rc::Rc;

use ::csv::{ErrorKind, ReaderBuilder, StringRecord};

use super::{Encoding, Format, InputError, InputSpec, Location, SourceInfo, Visit, utf8_hint};
use crate::customer::{RawCustomer, has_control_bytes};
use crate::mapping::{ColumnMap, Target};

pub(super) fn read(
    mut reader: Box<dyn BufRead>,
    spec: &InputSpec,
    name: &str,
    encoding: Encoding,
    visit: &mut Visit<'_>,
) -> Result<SourceInfo, InputError> {
    let delimiter = match spec.delimiter {
        Some(d) => d,
        None => sniff_delimiter(
            reader
                .fill_buf()
                .map_err(|e| InputError::new(name, format!("cannot read: {e}")))?,
        ),
    };
    let lines = Rc::new(RefCell::new(LineIndex::default()));
    let counting = Counting {
        inner: reader,
        lines: lines.clone(),
    };
    let mut csv = ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(counting);
    // A StringRecord checks UTF-8 once per record, not once per field.
    let mut record = StringRecord::new();
    let line_of = |record: &StringRecord| {
        lines
            .borrow_mut()
            .line_of(record.position().map_or(0, |p| p.byte()))
    };
    let mut headers: Vec<String> = Vec::new();
    let read = |csv: &mut ::csv::Reader<_>, record: &mut StringRecord, headers: &[String]| {
        csv.read_record(record).map_err(|e| {
            let line = e.position().map(|p| lines.borrow_mut().line_of(p.byte()));
            csv_error(name, &e, line, headers, encoding)
        })
    };
    if !read(&mut csv, &mut record, &headers)? {
        return Err(InputError::new(
            name,
            "the file is empty: a header row is required",
        ));
    }
    headers = record.iter().map(str::to_owned).collect();
    let map = ColumnMap::from_headers(&headers, &spec.rules);
    if map.targets.iter().all(|t| *t == Target::Ignore) {
        return Err(InputError::new(
            name,
            format!(
                "no column maps to a customer field (headers: {}); is the header row missing, or is \
                 the delimiter not {:?}?",
                headers.join(", "),
                delimiter as char
            ),
        )
        .at_line(1));
    }
    let mut number = 0;
    // The last record's line, if its last value holds a line break (see `check_closed_quotes`).
    let mut broken_last_value = None;
    while read(&mut csv, &mut record, &headers)? {
        number += 1;
        let line = line_of(&record);
        check_width(&record, &headers, line, name)?;
        broken_last_value = record
            .iter()
            .next_back()
            .is_some_and(|v| v.contains(['\n', '\r']))
            .then_some((line, record.len() - 1));
        let raw = raw_customer(&record, &map.targets);
        visit(
            &raw,
            Location {
                line,
                record: number,
            },
        )?;
    }
    check_closed_quotes(broken_last_value, lines.borrow().last_byte, &headers, name)?;
    Ok(SourceInfo {
        format: Format::Csv,
        encoding,
        input_blake3: String::new(),
        unknown_columns: map.unknown,
        shadowed_columns: map.shadowed,
    })
}

/// `,` unless the first line has none and plainly uses `;`, a tab or `|` instead.
fn sniff_delimiter(start: &[u8]) -> u8 {
    let first_line = start.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |d: u8| first_line.iter().filter(|b| **b == d).count();
    if count(b',') > 0 {
        return b',';
    }
    [b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|d| count(*d))
        .filter(|d| count(*d) > 0)
        .unwrap_or(b',')
}

/// A quote left open runs to the end of the file, and the csv crate ends the value there without a
/// word: the lines it swallowed would silently become one customer's value. That is the case when
/// the last value of the last record holds a line break and the file does not end with a quote.
fn check_closed_quotes(
    broken_last_value: Option<(u64, usize)>,
    last_byte: Option<u8>,
    headers: &[String],
    name: &str,
) -> Result<(), InputError> {
    match broken_last_value {
        Some((line, field)) if last_byte != Some(b'"') => {
            let column = match headers.get(field) {
                Some(header) => format!("{} ({header})", field + 1),
                None => (field + 1).to_string(),
            };
            Err(InputError::new(
                name,
                "a quote opened here is never closed: it swallows every line after it",
            )
            .at_line(line)
            .in_column(column))
        }
        _ => Ok(()),
    }
}

fn check_width(
    record: &StringRecord,
    headers: &[String],
    line: u64,
    name: &str,
) -> Result<(), InputError> {
    let trailing_empty =
        record.len() > headers.len() && record.iter().skip(headers.len()).all(|f| f.is_empty());
    if record.len() == headers.len() || trailing_empty {
        return Ok(());
    }
    let hint = if record.len() < headers.len() {
        " (a quote left open swallows the lines after it)"
    } else {
        " (an unquoted delimiter inside a value?)"
    };
    Err(InputError::new(
        name,
        format!(
            "ragged row: {} fields where the header has {}{hint}",
            record.len(),
            headers.len()
        ),
    )
    .at_line(line))
}

fn raw_customer<'r>(record: &'r StringRecord, targets: &[Target]) -> RawCustomer<'r> {
    let mut raw = RawCustomer {
        plain: !has_control_bytes(record.as_slice().as_bytes()),
        ..RawCustomer::default()
    };
    for (value, target) in record.iter().zip(targets) {
        match *target {
            Target::Field(f) => raw.set(f, value),
            Target::BirthDate => raw.birth_date = Some(value),
            Target::FullName => raw.full_name = Some(value),
            Target::AccountsReceivable => raw.accounts_receivable = Some(value),
            Target::Ignore => {}
        }
    }
    raw
}

/// A CSV error with its line; invalid UTF-8 also names the column (the header row is line 1).
fn csv_error(
    name: &str,
    e: &::csv::Error,
    line: Option<u64>,
    headers: &[String],
    encoding: Encoding,
) -> InputError {
    let err = match e.kind() {
        ErrorKind::Utf8 { err, .. } => {
            let column = match headers.get(err.field()) {
                Some(header) => format!("{} ({header})", err.field() + 1),
                None => (err.field() + 1).to_string(),
            };
            InputError::new(name, format!("invalid UTF-8{}", utf8_hint(encoding))).in_column(column)
        }
        _ => InputError::new(name, format!("malformed CSV: {e}")),
    };
    match line {
        Some(line) => err.at_line(line),
        None => err,
    }
}

/// The line breaks read so far and not yet passed, so that a record's byte offset can be turned into the
/// physical line where it starts (quoted fields may span lines; blank lines are skipped).
#[derive(Default)]
struct LineIndex {
    /// Offsets of `\r` and `\n` bytes ahead of the last record asked about, and whether each is `\n`.
    ahead: VecDeque<(u64, bool)>,
    passed: u64,
    read: u64,
    /// The last byte read that is not a line break.
    last_byte: Option<u8>,
}

impl LineIndex {
    /// The 1-based line of the record whose position is `byte`. The csv crate places a record before
    /// the line breaks it skips to reach it (the `\n` of a CRLF, blank lines), so those are counted too.
    /// Offsets must be asked in increasing order.
    fn line_of(&mut self, byte: u64) -> u64 {
        while let Some(&(offset, lf)) = self.ahead.front() {
            if offset >= byte {
                break;
            }
            self.ahead.pop_front();
            self.passed += u64::from(lf);
        }
        let skipped = self
            .ahead
            .iter()
            .enumerate()
            .take_while(|(i, (offset, _))| *offset == byte + *i as u64)
            .filter(|(_, (_, lf))| *lf)
            .count() as u64;
        self.passed + skipped + 1
    }
}

/// Feeds the reader's bytes to a [`LineIndex`] on their way to the CSV parser.
struct Counting {
    inner: Box<dyn BufRead>,
    lines: Rc<RefCell<LineIndex>>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut index = self.lines.borrow_mut();
        let start = index.read;
        for i in memchr::memchr2_iter(b'\n', b'\r', &buf[..n]) {
            index.ahead.push_back((start + i as u64, buf[i] == b'\n'));
        }
        index.read += n as u64;
        if let Some(&b) = buf[..n].iter().rev().find(|b| !matches!(b, b'\n' | b'\r')) {
            index.last_byte = Some(b);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Field;

    type Row = (u64, Vec<(Field, String)>);

    fn rows(text: &'static [u8]) -> Result<Vec<Row>, InputError> {
        let mut out = Vec::new();
        let spec = InputSpec {
            path: None,
            format: Format::Csv,
            encoding: None,
            delimiter: None,
            rules: Default::default(),
        };
        read(
            Box::new(text),
            &spec,
            "t.csv",
            Encoding::Utf8,
            &mut |raw, at| {
                let fields = Field::ALL
                    .into_iter()
                    .filter_map(|f| raw.fields[f as usize].map(|v| (f, v.to_owned())))
                    .collect();
                out.push((at.line, fields));
                Ok(())
            },
        )?;
        Ok(out)
    }

    #[test]
    fn quoted_newlines_keep_the_line_where_the_record_starts() {
        let text = b"First Name,Address\r\nAnn,\"1 Main\r\nSt\"\r\n\r\nBob,\"2, \"\"Elm\"\"\"\r\n";
        let got = rows(text).unwrap();
        assert_eq!(got[0].0, 2);
        assert_eq!(got[0].1[1], (Field::Address, "1 Main\r\nSt".into()));
        assert_eq!(got[1].0, 5);
        assert_eq!(got[1].1[1], (Field::Address, "2, \"Elm\"".into()));
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let got = rows(b"First Name\nAnn\n\n\nBob\n").unwrap();
        let lines: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(lines, [2, 5]);
    }

    #[test]
    fn a_ragged_row_names_its_line() {
        let err = rows(b"First Name,Email\nAnn,a@b.c\nBob\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(
            err.message
                .contains("ragged row: 1 fields where the header has 2"),
            "{err}"
        );
    }

    #[test]
    fn empty_fields_after_the_last_column_are_a_trailing_delimiter() {
        let got = rows(b"First Name,Email\nAnn,a@b.c,\n").unwrap();
        assert_eq!(got.len(), 1);
        assert!(rows(b"First Name,Email\nAnn,a@b.c,x\n").is_err());
    }

    #[test]
    fn an_unclosed_quote_is_a_structural_error() {
        let err = rows(b"First Name,Email\n\"Ann,a@b.c\nBob,b@c.d\n").unwrap_err();
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn a_quote_left_open_to_the_end_of_the_file_is_refused() {
        let err = rows(b"ID,City\n1,Oak\n2,\"Elm\n3,Ash\n4,Fir\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(err.column.as_deref(), Some("2 (City)"));
        assert!(err.message.contains("never closed"), "{}", err.message);
        // A quoted last value with a line break, properly closed, is fine, with or without a final
        // line break; so is a line break in a quoted value that is not the last.
        for ok in [
            &b"ID,City\n1,\"Oak\nCreek\"\n"[..],
            b"ID,City\n1,\"Oak\nCreek\"",
            b"ID,City\r\n1,\"Oak\r\nCreek\"\r\n",
            b"ID,Address,City\n1,\"a\nb\",Oak\n",
        ] {
            assert!(rows(ok).is_ok(), "{}", String::from_utf8_lossy(ok));
        }
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let err = rows(b"First Name,Email\nAnn,a@b.c\nZo\xEB,z@b.c\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(err.column.as_deref(), Some("1 (First Name)"));
        assert!(err.to_string().contains("--encoding windows-1252"), "{err}");
    }

    #[test]
    fn semicolon_exports_are_recognised_by_their_header() {
        let got = rows(b"First Name;Email\nAnn;a@b.c\n").unwrap();
        assert_eq!(got[0].1.len(), 2);
    }

    #[test]
    fn a_file_without_a_known_header_is_refused() {
        let err = rows(b"Ann,a@b.c\nBob,b@c.d\n").unwrap_err();
        assert!(err.message.contains("no column maps"), "{err}");
        let err = rows(b"").unwrap_err();
        assert!(err.message.contains("empty"), "{err}");
    }
}
