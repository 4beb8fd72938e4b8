//! CSV exports: a header row, then one record per customer. Quoted fields may hold delimiters, quotes
//! and line breaks; blank lines are skipped; a record with more or fewer fields than the header is a
//! structural error, except for empty fields after the last column (a trailing delimiter).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, BufRead, Cursor, Read};
use std::rc::Rc;

use ::csv::{ByteRecord, ErrorKind, ReaderBuilder};

use super::guard::{GuardError, MAX_RECORD_BYTES};
use super::{
    Encoding, Format, Input, InputError, InputSpec, Location, SourceInfo, Visit, quote, read_error,
    utf8_hint,
};
use crate::customer::{RawCustomer, scan_record};
use crate::mapping::{ColumnMap, Target};
use crate::wire::Field;

pub(super) fn read(
    input: Input<'_>,
    spec: &InputSpec,
    visit: &mut Visit<'_>,
) -> Result<SourceInfo, InputError> {
    let Input {
        mut reader,
        mark,
        name,
        encoding,
    } = input;
    let read_error = |e: &io::Error, line| read_error(name, e, line);
    let preamble =
        read_preamble(&mut reader, spec.delimiter).map_err(|e| read_error(&e, Some(1)))?;
    let delimiter = preamble.delimiter;
    let lines = Rc::new(RefCell::new(LineIndex {
        passed: preamble.skipped_lines,
        ..LineIndex::default()
    }));
    let counting = Counting {
        inner: Box::new(Cursor::new(preamble.first_line).chain(reader)),
        lines: lines.clone(),
    };
    let mut csv = ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(counting);
    // Bytes, checked as UTF-8 once per record (see `Fields`).
    let mut record = ByteRecord::new();
    let line_of = |byte: u64| lines.borrow_mut().line_of(byte);
    // Where the record being read starts, for errors that stop the reading inside it.
    let mut next_start = 0;
    let mut read = |csv: &mut ::csv::Reader<_>, record: &mut ByteRecord| {
        let got = csv.read_byte_record(record).map_err(|e| match e.kind() {
            ErrorKind::Io(io) => read_error(io, Some(line_of(next_start))),
            _ => {
                let line = e.position().map(|p| line_of(p.byte()));
                csv_error(name, &e, line)
            }
        })?;
        mark.next_record();
        if got && record.as_slice().len() as u64 > MAX_RECORD_BYTES {
            let line = line_of(record.position().map_or(0, |p| p.byte()));
            return Err(InputError::new(name, GuardError::TooLong.to_string()).at_line(line));
        }
        next_start = csv.position().byte();
        Ok(got)
    };
    if !read(&mut csv, &mut record)? {
        return Err(InputError::new(
            name,
            "the file is empty: a header row is required",
        ));
    }
    let header_line = line_of(record.position().map_or(0, |p| p.byte()));
    let fields = Fields::of(&record, header_line, &[], name, encoding)?;
    let headers: Vec<String> = fields.iter().map(str::to_owned).collect();
    let map = ColumnMap::from_headers(&headers, &spec.rules);
    if map.order.is_empty() {
        return Err(InputError::new(
            name,
            format!(
                "no column maps to a customer field (headers: {}); is the header row missing, or is \
                 the delimiter not {:?}?",
                quote(&headers.join(", ")),
                delimiter as char
            ),
        )
        .at_line(preamble.skipped_lines + 1));
    }
    let mut info = SourceInfo::new(Format::Csv, encoding);
    let mut number = 0;
    // The last record's line, if its last value holds a line break (see `check_closed_quotes`).
    let mut broken_last_value = None;
    while read(&mut csv, &mut record)? {
        let line = line_of(record.position().map_or(0, |p| p.byte()));
        let record = Fields::of(&record, line, &headers, name, encoding)?;
        check_width(&record, &headers, line, name)?;
        broken_last_value = record
            .iter()
            .next_back()
            .is_some_and(|v| v.contains(['\n', '\r']))
            .then_some((line, record.len() - 1));
        if record.iter().all(|v| v.trim().is_empty()) {
            info.blank_row(line);
            continue;
        }
        number += 1;
        let raw = raw_customer(&record, &map.order);
        visit(
            &raw,
            Location {
                line,
                record: number,
            },
        )?;
    }
    check_closed_quotes(broken_last_value, lines.borrow().last_byte, &headers, name)?;
    info.delimiter = Some(delimiter);
    info.has_id_column = map
        .order
        .iter()
        .any(|(_, t)| *t == Target::Field(Field::PartnerCustomerId));
    info.birth_date_columns = map
        .order
        .iter()
        .filter(|(_, t)| *t == Target::BirthDate)
        .map(|(i, _)| headers[*i].clone())
        .collect();
    info.unknown_columns = map.unknown;
    info.columns = headers;
    info.shadowed_columns = map.shadowed;
    Ok(info)
}

/// What comes before the header row.
struct Preamble {
    delimiter: u8,
    /// Lines skipped: Excel's `sep=;`, PowerShell's `#TYPE System.Management.Automation.PSCustomObject`.
    skipped_lines: u64,
    /// The header line as read, given back to the CSV parser.
    first_line: Vec<u8>,
}

/// Reads up to the header line: honours Excel's `sep=X` line (a `--delimiter` still wins), skips
/// PowerShell 5.1's `#TYPE` line, and otherwise sniffs the delimiter from the decoded header.
fn read_preamble(reader: &mut dyn BufRead, forced: Option<u8>) -> io::Result<Preamble> {
    let mut skipped_lines = 0;
    let mut declared = None;
    loop {
        let line = read_line(reader)?;
        let text = line.trim_ascii_end();
        let text = text
            .strip_prefix(b"\"")
            .and_then(|t| t.strip_suffix(b"\""))
            .unwrap_or(text);
        if skipped_lines < 2 {
            if let [s, e, p, b'=', d] = text
                && [s, e, p].map(u8::to_ascii_lowercase) == *b"sep"
                && declared.is_none()
            {
                declared = Some(*d);
                skipped_lines += 1;
                continue;
            }
            if text.starts_with(b"#TYPE ") {
                skipped_lines += 1;
                continue;
            }
        }
        let delimiter = forced
            .or(declared)
            .unwrap_or_else(|| sniff_delimiter(&line));
        return Ok(Preamble {
            delimiter,
            skipped_lines,
            first_line: line,
        });
    }
}

/// One line with its end (`\n`, `\r\n` or a bare `\r`), or what is left at the end of the stream.
fn read_line(reader: &mut dyn BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(line);
        }
        match memchr::memchr2(b'\n', b'\r', buf) {
            Some(i) => {
                let cr = buf[i] == b'\r';
                line.extend_from_slice(&buf[..=i]);
                reader.consume(i + 1);
                if cr && reader.fill_buf()?.first() == Some(&b'\n') {
                    line.push(b'\n');
                    reader.consume(1);
                }
                return Ok(line);
            }
            None => {
                let n = buf.len();
                line.extend_from_slice(buf);
                reader.consume(n);
            }
        }
    }
}

/// `,` unless the header has none and plainly uses `;`, a tab or `|` instead.
fn sniff_delimiter(first_line: &[u8]) -> u8 {
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
    record: &Fields<'_>,
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

/// The record's values by target; `order` puts the column that wins each target first, so a later
/// column for the same target only fills a row where the earlier ones are empty.
fn raw_customer<'r>(record: &Fields<'r>, order: &[(usize, Target)]) -> RawCustomer<'r> {
    let scan = scan_record(record.text.as_bytes());
    let mut raw = RawCustomer {
        plain: scan.plain,
        escape_free: scan.escape_free,
        ..RawCustomer::default()
    };
    for &(column, target) in order {
        if let Some(value) = record.get(column) {
            raw.fill(target, value);
        }
    }
    raw
}

/// A record's values as text. The record's bytes are checked as UTF-8 in one SIMD pass, and each
/// value is a slice of them: the csv crate's own check (`StringRecord`) runs at a fraction of the speed.
struct Fields<'r> {
    text: &'r str,
    record: &'r ByteRecord,
}

impl<'r> Fields<'r> {
    /// The record as text, or invalid UTF-8 refused naming its line and the first column that holds it.
    fn of(
        record: &'r ByteRecord,
        line: u64,
        headers: &[String],
        name: &str,
        encoding: Encoding,
    ) -> Result<Self, InputError> {
        let text = simdutf8::basic::from_utf8(record.as_slice()).ok();
        // Values joined may read as UTF-8 where one alone does not (a character cut by a delimiter);
        // in ASCII text (most records) every byte starts a character.
        if let Some(text) = text
            && (text.is_ascii()
                || (0..record.len()).all(|i| {
                    record
                        .range(i)
                        .is_some_and(|r| text.is_char_boundary(r.end))
                }))
        {
            return Ok(Self { text, record });
        }
        let field = record
            .iter()
            .position(|value| std::str::from_utf8(value).is_err())
            .unwrap_or(0);
        let column = match headers.get(field) {
            Some(header) => format!("{} ({header})", field + 1),
            None => (field + 1).to_string(),
        };
        Err(
            InputError::new(name, format!("invalid UTF-8{}", utf8_hint(encoding)))
                .in_column(column)
                .at_line(line),
        )
    }

    fn len(&self) -> usize {
        self.record.len()
    }

    fn get(&self, i: usize) -> Option<&'r str> {
        self.record.range(i).map(|r| &self.text[r])
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = &'r str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// A CSV error with its line.
fn csv_error(name: &str, e: &::csv::Error, line: Option<u64>) -> InputError {
    let err = InputError::new(name, format!("malformed CSV: {e}"));
    match line {
        Some(line) => err.at_line(line),
        None => err,
    }
}

/// The line breaks read so far and not yet passed, so that a record's byte offset can be turned into the
/// physical line where it starts (quoted fields may span lines; blank lines are skipped).
#[derive(Default)]
struct LineIndex {
    /// Offsets of `\r` and `\n` bytes ahead of the last record asked about, and whether each ends a
    /// line (a `\n`, or a `\r` not followed by one).
    ahead: VecDeque<(u64, bool)>,
    passed: u64,
    read: u64,
    /// A `\r` that ended the last read: whether it ends a line depends on the next byte.
    pending_cr: Option<u64>,
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
        if let Some(cr) = index.pending_cr.take() {
            index
                .ahead
                .push_back((cr, buf[..n].first() != Some(&b'\n')));
        }
        for i in memchr::memchr2_iter(b'\n', b'\r', &buf[..n]) {
            let ends_line = match (buf[i], buf[..n].get(i + 1)) {
                (b'\n', _) => true,
                (_, Some(next)) => *next != b'\n',
                (_, None) => {
                    index.pending_cr = Some(start + i as u64);
                    continue;
                }
            };
            index.ahead.push_back((start + i as u64, ends_line));
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
    use crate::wire::Field;

    type Row = (u64, Vec<(Field, String)>);

    fn rows(text: &'static [u8]) -> Result<Vec<Row>, InputError> {
        let mut out = Vec::new();
        let spec = InputSpec::default();
        let input = Input {
            reader: Box::new(text),
            mark: Default::default(),
            name: "t.csv",
            encoding: Encoding::Utf8,
        };
        read(input, &spec, &mut |raw, at| {
            let fields = Field::ALL
                .into_iter()
                .filter_map(|f| raw.fields[f as usize].map(|v| (f, v.to_owned())))
                .collect();
            out.push((at.line, fields));
            Ok(())
        })?;
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
    fn a_character_cut_in_two_by_a_delimiter_is_invalid_in_both_columns() {
        // "é" is C3 A9: joined, the record's bytes read as UTF-8; neither value does.
        let err = rows(b"First Name,Email\nAnn,a@b.c\nZo\xC3,\xA9@b.c\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(err.column.as_deref(), Some("1 (First Name)"));
        let err = rows(b"First \xC3,\xA9mail\nAnn,a@b.c\n").unwrap_err();
        assert_eq!((err.line, err.column.as_deref()), (Some(1), Some("1")));
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
