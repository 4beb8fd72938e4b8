//! JSON exports (an array of customer objects, or an object whose only array of objects holds them,
//! such as `{"customers": [...]}`) and NDJSON (one object per line).
//!
//! The document is cut into values over the buffered bytes (`json_scan.rs`): a top-level array's
//! elements, or an object's members and the elements of the one that holds the rows, each customer
//! parsed from its own slice. Only one record is held at a time, never the file. A property test
//! holds the cutting readers to serde_json's streaming reader (the rows read, the errors and their
//! places). Values may be strings, numbers, booleans or null; an object or array where a value
//! belongs is a structural error.

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::guard::RecordMark;
use super::json_scan::Scanner;
use super::{
    Encoding, Format, Input, InputError, InputSpec, Location, SourceInfo, Visit, quote, read_error,
    utf8_hint,
};
use crate::customer::{RawCustomer, RecordScan, scan_json_record};
use crate::mapping::{KeyMapper, Target};
use crate::wire::{FIELD_COUNT, Field};

/// Slots of a record: the 25 fields, then the whole birth date, the whole name and the
/// accounts-receivable number.
const SLOTS: usize = FIELD_COUNT + 3;
const BIRTH_DATE: usize = FIELD_COUNT;
const FULL_NAME: usize = FIELD_COUNT + 1;
const ACCOUNTS_RECEIVABLE: usize = FIELD_COUNT + 2;

fn slot_of(target: Target) -> Option<usize> {
    match target {
        Target::Field(f) => Some(f as usize),
        Target::BirthDate => Some(BIRTH_DATE),
        Target::FullName => Some(FULL_NAME),
        Target::AccountsReceivable => Some(ACCOUNTS_RECEIVABLE),
        Target::Ignore => None,
    }
}

/// One record's values, reused from record to record.
struct RowBuf {
    values: [String; SLOTS],
    /// The rank and number of the key that gave each slot its value.
    given: [Option<(u8, u16)>; SLOTS],
    scratch: String,
}

impl Default for RowBuf {
    fn default() -> Self {
        Self {
            values: std::array::from_fn(|_| String::new()),
            given: [None; SLOTS],
            scratch: String::new(),
        }
    }
}

impl RowBuf {
    fn clear(&mut self) {
        self.given = [None; SLOTS];
    }

    fn get(&self, slot: usize) -> Option<&str> {
        self.given[slot].map(|_| self.values[slot].as_str())
    }

    fn raw(&self, scan: RecordScan) -> RawCustomer<'_> {
        let mut raw = RawCustomer {
            plain: scan.plain,
            escape_free: scan.escape_free,
            ..RawCustomer::default()
        };
        for (i, value) in raw.fields.iter_mut().enumerate() {
            *value = self.get(i);
        }
        raw.birth_date = self.get(BIRTH_DATE);
        raw.full_name = self.get(FULL_NAME);
        raw.accounts_receivable = self.get(ACCOUNTS_RECEIVABLE);
        raw
    }

    fn is_blank(&self) -> bool {
        (0..SLOTS).all(|i| self.get(i).is_none_or(|v| v.trim().is_empty()))
    }

    /// Keeps the value in `scratch` for `slot` if it is the first, or fills an empty one, or comes
    /// from a stronger key; returns the pair (key used, other key) when a slot had two values.
    fn offer(&mut self, slot: usize, rank: u8, id: u16) -> Option<(u16, u16)> {
        let Some((old_rank, old_id)) = self.given[slot] else {
            std::mem::swap(&mut self.values[slot], &mut self.scratch);
            self.given[slot] = Some((rank, id));
            return None;
        };
        let old_blank = self.values[slot].trim().is_empty();
        let new_blank = self.scratch.trim().is_empty();
        let takes = !new_blank && (old_blank || rank > old_rank);
        if takes {
            std::mem::swap(&mut self.values[slot], &mut self.scratch);
            self.given[slot] = Some((rank, id));
        }
        Some(if rank > old_rank {
            (id, old_id)
        } else {
            (old_id, id)
        })
    }
}

/// The state shared by the visitors of one input.
struct Rows<'a, 'v> {
    name: &'a str,
    visit: &'a mut Visit<'v>,
    mapper: KeyMapper,
    buf: RowBuf,
    records: u64,
    info: SourceInfo,
    mark: RecordMark,
    /// The member of a top-level object that holds the rows, if named.
    json_key: Option<String>,
    /// Newlines consumed so far (JSON), or the current line (NDJSON).
    line: Rc<Cell<u64>>,
    last_key: String,
    /// What the bytes being parsed hold (see [`scan_json_record`]); they may hold several records.
    scan: RecordScan,
    /// The callback's error, kept while serde unwinds.
    stopped: Option<InputError>,
}

impl Rows<'_, '_> {
    fn finish_record<E: de::Error>(&mut self, line: u64) -> Result<(), E> {
        self.mark.next_record();
        if self.buf.is_blank() {
            self.info.blank_row(line);
            return Ok(());
        }
        self.records += 1;
        let at = Location {
            line,
            record: self.records,
        };
        (self.visit)(&self.buf.raw(self.scan), at).map_err(|e| {
            self.stopped = Some(e);
            E::custom("stopped")
        })
    }

    fn info(&mut self, format: Format) -> SourceInfo {
        let mut info = std::mem::replace(&mut self.info, SourceInfo::new(format, Encoding::Utf8));
        info.format = format;
        info.unknown_columns = self.mapper.unknown();
        info.shadowed_columns = self.mapper.pairs();
        info.birth_date_columns = self.mapper.keys_for(Target::BirthDate);
        info.columns = self.mapper.keys();
        info.has_id_column = !self
            .mapper
            .keys_for(Target::Field(Field::PartnerCustomerId))
            .is_empty();
        info
    }

    /// An error of serde_json parsing one value that starts at `line` and `column`, placed in the file.
    fn error_from(
        &mut self,
        e: serde_json::Error,
        line: u64,
        column: u64,
        encoding: Encoding,
    ) -> InputError {
        let at = line + (e.line() as u64).saturating_sub(1);
        let column = match e.line() {
            0 => 0,
            1 => column + e.column() as u64 - 1,
            _ => e.column() as u64,
        };
        self.error_at(e, at, column, encoding)
    }

    /// Turns a serde_json error into an input error, preferring the callback's own error.
    fn error(&mut self, e: serde_json::Error, line: Option<u64>, encoding: Encoding) -> InputError {
        let at = line.unwrap_or(e.line() as u64);
        let column = e.column() as u64;
        self.error_at(e, at, column, encoding)
    }

    fn error_at(
        &mut self,
        e: serde_json::Error,
        at: u64,
        column: u64,
        encoding: Encoding,
    ) -> InputError {
        if let Some(stopped) = self.stopped.take() {
            return stopped;
        }
        if e.is_io() {
            return read_error(self.name, &io::Error::from(e), Some(at));
        }
        let text = e.to_string();
        let message = text
            .rfind(" at line ")
            .map_or(text.as_str(), |i| &text[..i]);
        let hint = if message.contains("unicode") || message.contains("UTF-8") {
            utf8_hint(encoding)
        } else {
            ""
        };
        let mut err =
            InputError::new(self.name, format!("malformed JSON: {message}{hint}")).at_line(at);
        if column > 0 {
            let key = if self.last_key.is_empty() {
                String::new()
            } else {
                format!(" (near key \"{}\")", quote(&self.last_key))
            };
            err = err.in_column(format!("{column}{key}"));
        }
        err
    }
}

/// Reads a JSON array of customers, or an object holding one.
///
/// The document is cut into values over the buffered bytes and each customer object is parsed from a
/// slice: an array's elements, or those of the object's member that holds the rows (`--json-key`, else
/// the only array of objects). The other members are cut whole and checked by serde_json.
pub(super) fn read_json(
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
    let line = Rc::new(Cell::new(0));
    let mut scan = Scanner::new(&mut *reader);
    let io = |e: io::Error, line| read_error(name, &e, Some(line));
    scan.skip_whitespace().map_err(|e| io(e, scan.line))?;
    let first = scan.peek().map_err(|e| io(e, scan.line))?;
    let start = (scan.line, scan.column);
    line.set(scan.line - 1);
    let mut rows = new_rows(name, spec, visit, line, mark);
    match first {
        Some(b'[') => read_array(&mut scan, &mut rows, encoding)?,
        Some(b'{') => read_wrapped(&mut scan, &mut rows, encoding)?,
        // Anything else is refused by serde_json, in its words.
        _ => read_streamed(reader, &mut rows, start, encoding)?,
    }
    Ok(rows.info(Format::Json))
}

/// The whole document through serde_json's streaming reader; `start` is where `reader` is in the file.
/// What a document that is neither an array nor an object gets: serde_json's refusal, in its words.
/// In tests, it reads arrays and objects too: the reference the cutting readers are held to.
fn read_streamed(
    reader: Box<dyn BufRead>,
    rows: &mut Rows<'_, '_>,
    start: (u64, u64),
    encoding: Encoding,
) -> Result<(), InputError> {
    let counting = CountLines {
        inner: reader,
        newlines: rows.line.clone(),
    };
    let mut de = serde_json::Deserializer::from_reader(counting);
    TopSeed(&mut *rows)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| rows.error_from(e, start.0, start.1, encoding))
}

/// The elements of a top-level array, each a customer object parsed from its own bytes.
fn read_array(
    scan: &mut Scanner<'_>,
    rows: &mut Rows<'_, '_>,
    encoding: Encoding,
) -> Result<(), InputError> {
    let name = rows.name;
    scan.bump();
    read_elements(scan, name, |element, _, line, column| {
        read_record(element, rows, line, column, encoding)
    })?;
    expect_end(scan, name)
}

/// One customer object cut from the document at `line` and `column`.
fn read_record(
    element: &[u8],
    rows: &mut Rows<'_, '_>,
    line: u64,
    column: u64,
    encoding: Encoding,
) -> Result<(), InputError> {
    rows.line.set(line - 1);
    parse_record(element, rows).map_err(|e| rows.error_from(e, line, column, encoding))
}

/// An object holding the rows: its members are cut one by one; the member named by `--json-key`, else
/// the only one that is an array of objects, has its elements read as customers. What is refused, and
/// how, is what serde_json's streaming reader refuses (a property test holds the two together).
fn read_wrapped(
    scan: &mut Scanner<'_>,
    rows: &mut Rows<'_, '_>,
    encoding: Encoding,
) -> Result<(), InputError> {
    let name = rows.name;
    let wanted = rows.json_key.clone();
    let mut found: Option<String> = None;
    let mut empty = Vec::new();
    let mut value = Vec::with_capacity(256);
    scan.bump();
    let mut first = true;
    // Where the closing brace is: a refusal of the whole object is placed there.
    let closed_at = loop {
        if let Some(closed_at) = next_member(scan, name, first)? {
            break closed_at;
        }
        first = false;
        let key = read_key(scan, rows, &mut value, encoding)?;
        let rows_here = match &wanted {
            Some(w) => *w == key && found.is_none(),
            None => true,
        };
        let named = wanted.is_some();
        if rows_here && peek(scan, name)? == Some(b'[') {
            match read_member(scan, rows, &key, found.as_deref(), named, encoding)? {
                Member::Rows => found = Some(key),
                Member::EmptyArray if named => found = Some(key),
                Member::EmptyArray => empty.push(key),
                Member::Other => {}
            }
        } else {
            check_member(scan, rows, &mut value, (rows_here, named), encoding)?;
        }
        if let Some(closed_at) = after_member(scan, name)? {
            break closed_at;
        }
    };
    let refused = match (found, wanted) {
        (Some(_), _) => return expect_end(scan, name),
        (None, None) if empty.len() == 1 => return expect_end(scan, name),
        (None, Some(w)) => format!("the object has no member \"{}\" (--json-key)", quote(&w)),
        (None, None) => r#"the object holds no array of customer objects; expected [...] or an object such as {"customers": [...]}"#.to_owned(),
    };
    Err(InputError::new(name, format!("malformed JSON: {refused}"))
        .at_line(closed_at.0)
        .in_column(closed_at.1.to_string()))
}

/// Up to the next member's key, or past the closing brace of an empty object (its place returned).
fn next_member(
    scan: &mut Scanner<'_>,
    name: &str,
    first: bool,
) -> Result<Option<(u64, u64)>, InputError> {
    skip_whitespace(scan, name)?;
    match peek(scan, name)? {
        None if first => Err(eof(scan, name, "EOF while parsing an object")),
        None => Err(eof(scan, name, "EOF while parsing a value")),
        Some(b'}') if first => {
            let at = (scan.line, scan.column);
            scan.bump();
            Ok(Some(at))
        }
        Some(b'}') => Err(structural(scan, name, "trailing comma")),
        Some(b'"') => Ok(None),
        Some(_) => Err(structural(scan, name, "key must be a string")),
    }
}

/// A member's key and its colon, up to where its value starts.
fn read_key(
    scan: &mut Scanner<'_>,
    rows: &mut Rows<'_, '_>,
    value: &mut Vec<u8>,
    encoding: Encoding,
) -> Result<String, InputError> {
    let name = rows.name;
    let (line, column) = (scan.line, scan.column);
    value.clear();
    scan.capture(value).map_err(|e| io_error(name, e, scan))?;
    let key = parse_value(value, rows, line, column, encoding, |de, _| {
        String::deserialize(de)
    })?;
    skip_whitespace(scan, name)?;
    match peek(scan, name)? {
        Some(b':') => scan.bump(),
        None => return Err(eof(scan, name, "EOF while parsing an object")),
        Some(_) => return Err(structural(scan, name, "expected `:`")),
    }
    skip_whitespace(scan, name)?;
    match peek(scan, name)? {
        None => Err(eof(scan, name, "EOF while parsing a value")),
        Some(b',' | b'}' | b']') => Err(structural(scan, name, "expected value")),
        Some(_) => Ok(key),
    }
}

/// A member that does not hold rows, cut whole and checked the way the streaming reader would: the
/// member `--json-key` names says what it is instead of an array; any member that might have held
/// rows is looked at; the others only skipped.
fn check_member(
    scan: &mut Scanner<'_>,
    rows: &mut Rows<'_, '_>,
    value: &mut Vec<u8>,
    (rows_here, named): (bool, bool),
    encoding: Encoding,
) -> Result<(), InputError> {
    let name = rows.name;
    let (line, column) = (scan.line, scan.column);
    value.clear();
    scan.capture(value).map_err(|e| io_error(name, e, scan))?;
    let at = Cut {
        next: peek(scan, name)?,
        closer: '}',
        line,
        column,
    };
    match (rows_here, named) {
        (true, true) => check_value(value, at, rows, encoding, |de, rows| {
            RowsSeed(rows).deserialize(de)
        }),
        (true, false) => check_value(value, at, rows, encoding, look_at),
        (false, _) => check_value(value, at, rows, encoding, ignore),
    }
}

/// Past the comma after a member, or past the object's closing brace (its place returned).
fn after_member(scan: &mut Scanner<'_>, name: &str) -> Result<Option<(u64, u64)>, InputError> {
    skip_whitespace(scan, name)?;
    match peek(scan, name)? {
        Some(b',') => {
            scan.bump();
            Ok(None)
        }
        Some(b'}') => {
            let at = (scan.line, scan.column);
            scan.bump();
            Ok(Some(at))
        }
        None => Err(eof(scan, name, "EOF while parsing an object")),
        Some(_) => Err(structural(scan, name, "expected `,` or `}`")),
    }
}

/// A member of the top-level object whose value is an array (its `[` next): rows if it is named, or if
/// its first element is an object; otherwise its elements are only checked.
fn read_member(
    scan: &mut Scanner<'_>,
    rows: &mut Rows<'_, '_>,
    key: &str,
    found: Option<&str>,
    named: bool,
    encoding: Encoding,
) -> Result<Member, InputError> {
    let name = rows.name;
    scan.bump();
    let mut kind = None;
    read_elements(scan, name, |element, next, line, column| {
        let first = kind.is_none();
        let is_rows = *kind.get_or_insert(named || element.first() == Some(&b'{'));
        if !is_rows {
            let at = Cut {
                next,
                closer: ']',
                line,
                column,
            };
            // The first element is looked at (is it an object?), the others only skipped.
            let check = if first { look_at } else { ignore };
            return check_value(element, at, rows, encoding, check);
        }
        if let Some(first) = found.filter(|_| !named) {
            return Err(InputError::new(
                name,
                format!(
                    "malformed JSON: the object holds two arrays of objects, \"{}\" and \"{}\": \
                     pass --json-key with the one that holds the customers",
                    quote(first),
                    quote(key)
                ),
            )
            .at_line(line)
            .in_column((column + 1).to_string()));
        }
        read_record(element, rows, line, column, encoding)
    })?;
    Ok(match kind {
        None => Member::EmptyArray,
        Some(true) => Member::Rows,
        Some(false) => Member::Other,
    })
}

/// The elements of an array whose `[` was just consumed, up to its `]`: each is cut and handed to
/// `element` with the byte after it (not consumed) and the line and column where it starts.
fn read_elements(
    scan: &mut Scanner<'_>,
    name: &str,
    mut element: impl FnMut(&[u8], Option<u8>, u64, u64) -> Result<(), InputError>,
) -> Result<(), InputError> {
    let mut bytes = Vec::with_capacity(1024);
    let mut first = true;
    loop {
        skip_whitespace(scan, name)?;
        match peek(scan, name)? {
            None if first => return Err(eof(scan, name, "EOF while parsing a list")),
            None => return Err(eof(scan, name, "EOF while parsing a value")),
            Some(b']') if first => {
                scan.bump();
                return Ok(());
            }
            Some(b']') => return Err(structural(scan, name, "trailing comma")),
            Some(b',' | b'}') => return Err(structural(scan, name, "expected value")),
            Some(_) => {}
        }
        first = false;
        let (line, column) = (scan.line, scan.column);
        bytes.clear();
        scan.capture(&mut bytes)
            .map_err(|e| io_error(name, e, scan))?;
        let next = peek(scan, name)?;
        element(&bytes, next, line, column)?;
        skip_whitespace(scan, name)?;
        match peek(scan, name)? {
            Some(b',') => scan.bump(),
            Some(b']') => {
                scan.bump();
                return Ok(());
            }
            None => return Err(eof(scan, name, "EOF while parsing a list")),
            Some(_) => return Err(structural(scan, name, "expected `,` or `]`")),
        }
    }
}

/// Nothing but whitespace may follow the document.
fn expect_end(scan: &mut Scanner<'_>, name: &str) -> Result<(), InputError> {
    skip_whitespace(scan, name)?;
    match peek(scan, name)? {
        None => Ok(()),
        Some(_) => Err(structural(scan, name, "trailing characters")),
    }
}

/// One value cut from the document, through `parse` (a deserializer of it that must hold nothing
/// after it); an error is placed in the file from where the value starts.
fn parse_value<T>(
    bytes: &[u8],
    rows: &mut Rows<'_, '_>,
    line: u64,
    column: u64,
    encoding: Encoding,
    parse: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
        &mut Rows<'_, '_>,
    ) -> Result<T, serde_json::Error>,
) -> Result<T, InputError> {
    parse_whole(serde_json::Deserializer::from_slice(bytes), rows, parse)
        .map_err(|e| rows.error_from(e, line, column, encoding))
}

/// Where a value not read as rows was cut: the byte after it, the bracket that closes what holds it,
/// and where it starts.
struct Cut {
    next: Option<u8>,
    closer: char,
    line: u64,
    column: u64,
}

/// Checks a value that is not read as rows as serde_json's streaming reader would. A number, `true`,
/// `false` or `null` is cut at the next delimiter or space, which may leave bytes after the token
/// (`1x`), so the byte after the cut is given too: what serde_json finds after the token is then the
/// structure's error, placed where it is.
fn check_value(
    value: &[u8],
    at: Cut,
    rows: &mut Rows<'_, '_>,
    encoding: Encoding,
    parse: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
        &mut Rows<'_, '_>,
    ) -> Result<(), serde_json::Error>,
) -> Result<(), InputError> {
    let scalar = !matches!(value.first(), Some(b'{' | b'[' | b'"'));
    let mut bytes = std::borrow::Cow::Borrowed(value);
    if let (true, Some(next)) = (scalar, at.next) {
        bytes.to_mut().push(next);
    }
    match parse_whole(serde_json::Deserializer::from_slice(&bytes), rows, parse) {
        Ok(()) => Ok(()),
        Err(e) if scalar && e.to_string().starts_with("trailing characters") => {
            if e.column() > value.len() {
                // The byte after the cut: the structure judges it.
                return Ok(());
            }
            Err(InputError::new(
                rows.name,
                format!("malformed JSON: expected `,` or `{}`", at.closer),
            )
            .at_line(at.line)
            .in_column((at.column + e.column() as u64 - 1).to_string()))
        }
        Err(e) => Err(rows.error_from(e, at.line, at.column, encoding)),
    }
}

/// A value only checked, the way serde_json skips a value nobody looks at.
fn ignore(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
    _: &mut Rows<'_, '_>,
) -> Result<(), serde_json::Error> {
    IgnoredAny::deserialize(de).map(drop)
}

/// A value only checked, the way serde_json reads a value that is looked at (its errors differ in
/// places from [`ignore`]'s): what the streaming reader does with a member that might hold the rows.
fn look_at(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
    _: &mut Rows<'_, '_>,
) -> Result<(), serde_json::Error> {
    de.deserialize_any(IgnoredAny).map(drop)
}

/// A refusal of the document's structure at the scanner's place.
fn structural(scan: &Scanner<'_>, name: &str, message: &str) -> InputError {
    InputError::new(name, format!("malformed JSON: {message}"))
        .at_line(scan.line)
        .in_column(scan.column.to_string())
}

/// A refusal at the end of the input: the column of the last byte (none after a line break).
fn eof(scan: &Scanner<'_>, name: &str, message: &str) -> InputError {
    let err = InputError::new(name, format!("malformed JSON: {message}")).at_line(scan.line);
    match scan.column - 1 {
        0 => err,
        column => err.in_column(column.to_string()),
    }
}

fn io_error(name: &str, e: io::Error, scan: &Scanner<'_>) -> InputError {
    read_error(name, &e, Some(scan.line))
}

fn skip_whitespace(scan: &mut Scanner<'_>, name: &str) -> Result<(), InputError> {
    scan.skip_whitespace().map_err(|e| io_error(name, e, scan))
}

fn peek(scan: &mut Scanner<'_>, name: &str) -> Result<Option<u8>, InputError> {
    scan.peek().map_err(|e| io_error(name, e, scan))
}

/// Reads one customer object per line; blank lines are skipped.
pub(super) fn read_ndjson(
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
    let line = Rc::new(Cell::new(0));
    let mut rows = new_rows(name, spec, visit, line.clone(), mark);
    let mut buf = Vec::new();
    let mut lines_before = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| read_error(name, &e, Some(lines_before + 1)))?;
        if n == 0 {
            break;
        }
        // The row visitor names a record's line as newlines before it + 1, as for JSON.
        line.set(lines_before);
        lines_before += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            rows.mark.next_record();
            continue;
        }
        if let Err(e) = parse_record(&buf, &mut rows) {
            return Err(rows.error(e, Some(lines_before), encoding));
        }
    }
    Ok(rows.info(Format::Ndjson))
}

/// Parses one record's bytes. Bytes that are UTF-8 (checked in one SIMD pass) are parsed as text,
/// so that serde_json does not check every string of them again (a twentieth of reading a JSON
/// export); other bytes are parsed as they are, for serde_json to say where they stop being UTF-8.
fn parse_record(bytes: &[u8], rows: &mut Rows<'_, '_>) -> Result<(), serde_json::Error> {
    rows.scan = scan_json_record(bytes);
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => parse_with(serde_json::Deserializer::from_str(text), rows),
        Err(_) => parse_with(serde_json::Deserializer::from_slice(bytes), rows),
    }
}

/// One record through `de`, which must hold nothing after it.
fn parse_with<'de, R: serde_json::de::Read<'de>>(
    de: serde_json::Deserializer<R>,
    rows: &mut Rows<'_, '_>,
) -> Result<(), serde_json::Error> {
    parse_whole(de, rows, |de, rows| RowSeed(rows).deserialize(de))
}

/// What `parse` reads from `de`, which must hold nothing after it.
fn parse_whole<'de, R: serde_json::de::Read<'de>, T>(
    mut de: serde_json::Deserializer<R>,
    rows: &mut Rows<'_, '_>,
    parse: impl FnOnce(
        &mut serde_json::Deserializer<R>,
        &mut Rows<'_, '_>,
    ) -> Result<T, serde_json::Error>,
) -> Result<T, serde_json::Error> {
    parse(&mut de, rows).and_then(|value| de.end().map(|()| value))
}

fn new_rows<'a, 'v>(
    name: &'a str,
    spec: &InputSpec,
    visit: &'a mut Visit<'v>,
    line: Rc<Cell<u64>>,
    mark: RecordMark,
) -> Rows<'a, 'v> {
    Rows {
        name,
        visit,
        mapper: KeyMapper::new(spec.rules.clone()),
        buf: RowBuf::default(),
        records: 0,
        info: SourceInfo::new(spec.format, Encoding::Utf8),
        mark,
        json_key: spec.json_key.clone(),
        line,
        last_key: String::new(),
        // Nothing known until a record's bytes are scanned (never, for a streamed document).
        scan: RecordScan {
            plain: false,
            escape_free: false,
        },
        stopped: None,
    }
}

/// Counts the newlines read through it, so records can be given a line.
struct CountLines {
    inner: Box<dyn BufRead>,
    newlines: Rc<Cell<u64>>,
}

impl Read for CountLines {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let lines = memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        self.newlines.set(self.newlines.get() + lines);
        Ok(n)
    }
}

/// Visitor methods that accept any scalar and answer `$value`.
#[cfg(test)]
macro_rules! accept_scalars {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// The document: an array of rows, or an object one of whose members is.
struct TopSeed<'r, 'a, 'v>(&'r mut Rows<'a, 'v>);

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"an array of customer objects, or an object holding one such as {"customers": [...]}"#)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        RowsSeed(self.0).visit_seq(seq)
    }

    /// The member named by `--json-key`, else the only member that is an array of objects.
    #[cfg(test)]
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let rows = self.0;
        let wanted = rows.json_key.clone();
        let mut found: Option<String> = None;
        let mut empty = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match &wanted {
                Some(w) if *w == key && found.is_none() => {
                    map.next_value_seed(RowsSeed(&mut *rows))?;
                    found = Some(key);
                }
                Some(_) => {
                    map.next_value::<IgnoredAny>()?;
                }
                None => match map.next_value_seed(MemberSeed {
                    rows: &mut *rows,
                    key: &key,
                    found: found.as_deref(),
                })? {
                    Member::Rows => found = Some(key),
                    Member::EmptyArray => empty.push(key),
                    Member::Other => {}
                },
            }
        }
        match (found, wanted) {
            (Some(_), _) => Ok(()),
            (None, Some(w)) => Err(de::Error::custom(format!(
                "the object has no member \"{}\" (--json-key)",
                quote(&w)
            ))),
            (None, None) if empty.len() == 1 => Ok(()),
            (None, None) => Err(de::Error::custom(
                r#"the object holds no array of customer objects; expected [...] or an object such as {"customers": [...]}"#,
            )),
        }
    }
}

/// What a member of the top-level object turned out to be.
enum Member {
    Rows,
    EmptyArray,
    Other,
}

/// A member of the top-level object: streamed as rows if it is an array of objects.
#[cfg(test)]
struct MemberSeed<'r, 'k, 'a, 'v> {
    rows: &'r mut Rows<'a, 'v>,
    key: &'k str,
    /// The member that already held rows, if any.
    found: Option<&'k str>,
}

#[cfg(test)]
impl<'de> DeserializeSeed<'de> for MemberSeed<'_, '_, '_, '_> {
    type Value = Member;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Member, D::Error> {
        d.deserialize_any(self)
    }
}

#[cfg(test)]
impl<'de> Visitor<'de> for MemberSeed<'_, '_, '_, '_> {
    type Value = Member;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    accept_scalars!(Member::Other);

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Member, A::Error> {
        IgnoredAny.visit_map(map).map(|_| Member::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member, A::Error> {
        let first = seq.next_element_seed(FirstElement {
            rows: &mut *self.rows,
            key: self.key,
            found: self.found,
        })?;
        match first {
            None => Ok(Member::EmptyArray),
            Some(true) => {
                while seq.next_element_seed(RowSeed(&mut *self.rows))?.is_some() {}
                Ok(Member::Rows)
            }
            Some(false) => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Member::Other)
            }
        }
    }
}

/// The first element of a member's array: a row if it is an object (then the array holds rows).
#[cfg(test)]
struct FirstElement<'r, 'k, 'a, 'v> {
    rows: &'r mut Rows<'a, 'v>,
    key: &'k str,
    found: Option<&'k str>,
}

#[cfg(test)]
impl<'de> DeserializeSeed<'de> for FirstElement<'_, '_, '_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

#[cfg(test)]
impl<'de> Visitor<'de> for FirstElement<'_, '_, '_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    accept_scalars!(false);

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| false)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        if let Some(first) = self.found {
            return Err(de::Error::custom(format!(
                "the object holds two arrays of objects, \"{}\" and \"{}\": pass --json-key with \
                 the one that holds the customers",
                quote(first),
                quote(self.key)
            )));
        }
        RowSeed(self.rows).visit_map(map).map(|()| true)
    }
}

/// An array of rows.
struct RowsSeed<'r, 'a, 'v>(&'r mut Rows<'a, 'v>);

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of customer objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(RowSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

/// One customer object.
struct RowSeed<'r, 'a, 'v>(&'r mut Rows<'a, 'v>);

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a customer object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let rows = self.0;
        let line = rows.line.get() + 1;
        rows.buf.clear();
        let mut position = 0;
        while let Some(key) = map.next_key_seed(KeySeed(rows, position))? {
            position += 1;
            let Some(slot) = slot_of(key.target) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            rows.buf.scratch.clear();
            map.next_value_seed(ScalarSeed(&mut rows.buf.scratch))?;
            if let Some((used, other)) = rows.buf.offer(slot, key.rank, key.id) {
                rows.mapper.pair(used, other);
            }
        }
        rows.last_key.clear();
        rows.finish_record(line)
    }
}

/// A key and its place in the record, resolved to its target without allocating.
struct KeySeed<'r, 'a, 'v>(&'r mut Rows<'a, 'v>, usize);

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_, '_> {
    type Value = crate::mapping::Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_, '_, '_> {
    type Value = crate::mapping::Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a column name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        self.0.last_key.clear();
        self.0.last_key.push_str(key);
        Ok(self.0.mapper.key_at(self.1, key))
    }
}

/// A value as text: strings as they are, numbers and booleans as written, null as empty.
struct ScalarSeed<'s>(&'s mut String);

impl<'de> DeserializeSeed<'de> for ScalarSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text, a number, true/false or null (not an object or array)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.0.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        use std::fmt::Write;
        write!(self.0, "{v}").expect("writing to a String cannot fail");
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Field;

    type Got = Vec<(Location, String, String)>;

    fn collect(
        text: &'static str,
        read: fn(&'static [u8], &mut Visit<'_>) -> Result<SourceInfo, InputError>,
    ) -> Result<Got, InputError> {
        let mut out = Vec::new();
        read(text.as_bytes(), &mut |raw, at| {
            let get = |f: Field| raw.fields[f as usize].unwrap_or("-").to_owned();
            out.push((at, get(Field::FirstName), get(Field::ZipOrPostalCode)));
            Ok(())
        })?;
        Ok(out)
    }

    fn spec(format: Format) -> InputSpec {
        InputSpec {
            format,
            ..InputSpec::default()
        }
    }

    fn input(text: &'static [u8], name: &'static str) -> Input<'static> {
        Input {
            reader: Box::new(text),
            mark: Default::default(),
            name,
            encoding: Encoding::Utf8,
        }
    }

    fn json(text: &'static [u8], visit: &mut Visit<'_>) -> Result<SourceInfo, InputError> {
        read_json(input(text, "t.json"), &spec(Format::Json), visit)
    }

    fn ndjson(text: &'static [u8], visit: &mut Visit<'_>) -> Result<SourceInfo, InputError> {
        read_ndjson(input(text, "t.ndjson"), &spec(Format::Ndjson), visit)
    }

    #[test]
    fn reads_an_array_with_numbers_and_nulls_as_text() {
        let got = collect(
            "[\n {\"First Name\": \"Ann\", \"Zip\": 53154},\n {\"firstname\": null, \"zip\": \"02134\"}\n]",
            json,
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].1.as_str(), got[0].2.as_str()), ("Ann", "53154"));
        assert_eq!(got[0].0, Location { line: 2, record: 1 });
        assert_eq!((got[1].1.as_str(), got[1].2.as_str()), ("", "02134"));
        assert_eq!(got[1].0.line, 3);
    }

    #[test]
    fn a_record_that_is_not_utf8_is_refused_naming_its_line_and_column() {
        let array: &'static [u8] = b"[\n{\"City\": \"Oak\"},\n{\"City\": \"Caf\xE9\"}\n]";
        let err = json(array, &mut |_, _| Ok(())).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.message.contains("invalid unicode"), "{err}");
        assert!(
            err.column.as_deref().is_some_and(|c| c.starts_with("14 ")),
            "{err}"
        );
        let lines: &'static [u8] = b"{\"City\": \"Oak\"}\n{\"City\": \"Caf\xE9\"}\n";
        let err = ndjson(lines, &mut |_, _| Ok(())).unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        assert!(err.message.contains("invalid unicode"), "{err}");
    }

    #[test]
    fn reads_the_rows_of_a_wrapping_object_and_lists_unknown_keys() {
        let mut unknown = Vec::new();
        let text = br#"{"exported": "2026-11-01", "rows": [{"First Name": "Ann", "Fax": "1"}]}"#;
        let info = json(text, &mut |_, _| Ok(())).unwrap();
        unknown.extend(info.unknown_columns);
        assert_eq!(unknown, vec!["Fax".to_owned()]);
        assert!(json(br#"{"customers": []}"#, &mut |_, _| Ok(())).is_ok());
        let err = json(br#"{"count": 2, "tags": ["a"]}"#, &mut |_, _| Ok(())).unwrap_err();
        assert!(
            err.message.contains("no array of customer objects"),
            "{err}"
        );
    }

    #[test]
    fn the_only_array_of_objects_in_a_wrapping_object_holds_the_rows() {
        let text = r#"{"meta": {"n": 2}, "tags": ["x", 1], "data": [{"First Name": "Ann"}, {"First Name": "Bo"}]}"#;
        let got = collect(text, json).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].1, "Bo");
    }

    #[test]
    fn two_arrays_of_objects_are_refused_naming_both_unless_one_is_named() {
        let text: &'static [u8] =
            br#"{"customers": [{"First Name": "Ann"}], "stores": [{"First Name": "Main St"}]}"#;
        let err = json(text, &mut |_, _| Ok(())).unwrap_err();
        assert!(
            err.message.contains("\"customers\" and \"stores\"")
                && err.message.contains("--json-key"),
            "{err}"
        );
        let mut names = Vec::new();
        let spec = InputSpec {
            json_key: Some("customers".into()),
            ..spec(Format::Json)
        };
        read_json(input(text, "t.json"), &spec, &mut |raw, _| {
            names.push(
                raw.fields[Field::FirstName as usize]
                    .unwrap_or("")
                    .to_owned(),
            );
            Ok(())
        })
        .unwrap();
        assert_eq!(names, ["Ann"]);
    }

    #[test]
    fn objects_of_only_empty_values_are_skipped_as_blank_rows() {
        let got = collect(
            "[{\"First Name\": \"\"}, {\"First Name\": \"Ann\"}, {}]",
            json,
        )
        .unwrap();
        assert_eq!(got.len(), 1);
        let info = json(b"[{\"Email\": \" \"}]", &mut |_, _| Ok(())).unwrap();
        assert_eq!(info.blank_rows.0, 1);
    }

    #[test]
    fn of_two_keys_for_one_field_the_exact_name_wins_and_the_other_fills_in() {
        let mut got = Vec::new();
        let text: &'static [u8] =
            br#"[{"Phone": "1", "Home Phone": "2"}, {"Phone": "3", "Home Phone": ""}]"#;
        let info = json(text, &mut |raw, _| {
            got.push(
                raw.fields[Field::HomePhone as usize]
                    .unwrap_or("")
                    .to_owned(),
            );
            Ok(())
        })
        .unwrap();
        assert_eq!(got, ["2", "3"]);
        assert_eq!(
            info.shadowed_columns,
            [("Home Phone".to_owned(), "Phone".to_owned())]
        );
    }

    #[test]
    fn a_nested_value_is_a_structural_error_with_its_key() {
        let err = collect(
            "[{\"First Name\": \"Ann\",\n \"Zip\": {\"code\": 1}}]",
            json,
        )
        .unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.column.unwrap().contains("Zip"));
    }

    #[test]
    fn ndjson_names_the_line_of_a_broken_record() {
        let got = collect(
            "{\"First Name\":\"Ann\"}\n\n{\"First Name\":\"Bob\"}\n",
            ndjson,
        )
        .unwrap();
        assert_eq!(got[1].0, Location { line: 3, record: 2 });
        let err = collect(
            "{\"First Name\":\"Ann\"}\n{\"First Name\":\"Bob\"\n",
            ndjson,
        )
        .unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.starts_with("malformed JSON"), "{err}");
    }

    /// What reading `text` gave (`json_key` as `--json-key`): each record's location and values, or
    /// the error.
    fn outcome(
        text: &[u8],
        streamed: bool,
        json_key: Option<&str>,
    ) -> Result<Vec<(Location, Vec<String>)>, InputError> {
        let mut got = Vec::new();
        let spec = InputSpec {
            json_key: json_key.map(str::to_owned),
            ..spec(Format::Json)
        };
        let mut visit = |raw: &RawCustomer<'_>, at: Location| {
            let values = raw
                .fields
                .iter()
                .map(|v| v.unwrap_or("-").to_owned())
                .collect();
            got.push((at, values));
            Ok(())
        };
        let input = Input {
            reader: Box::new(std::io::BufReader::with_capacity(
                7,
                text.to_vec().leak() as &[u8],
            )),
            mark: Default::default(),
            name: "t.json",
            encoding: Encoding::Utf8,
        };
        if streamed {
            let mut rows = new_rows(
                input.name,
                &spec,
                &mut visit,
                Rc::new(Cell::new(0)),
                input.mark,
            );
            read_streamed(input.reader, &mut rows, (1, 1), Encoding::Utf8)?;
        } else {
            read_json(input, &spec, &mut visit)?;
        }
        Ok(got)
    }

    use proptest::prelude::*;

    proptest::proptest! {
        /// Cutting an array into elements reads what serde_json's streaming reader reads, and fails
        /// where it fails, with the same line, column and message.
        #[test]
        fn cutting_elements_reads_as_streaming_does(
            rows in proptest::collection::vec(
                proptest::collection::vec(
                    (proptest::sample::select(vec!["First Name", "Zip", "Email", "x"]),
                     proptest::prop_oneof![
                        "[a-z\\\\\"{}\\[\\] ,\n]{0,6}".prop_map(serde_json::Value::from),
                        proptest::num::i64::ANY.prop_map(serde_json::Value::from),
                        proptest::strategy::Just(serde_json::Value::Null),
                     ]),
                    0..4,
                ),
                0..4,
            ),
            spaces in proptest::sample::select(vec!["", " ", "\n", " \r\n  "]),
            cut in proptest::option::of((0usize..400, proptest::sample::select(vec!["", ",", "]", "{", "}", ":", "\"", "x", "\n"]))),
            wrap in 0usize..5,
            json_key in proptest::option::of(proptest::sample::select(vec!["rows", "b", "n"])),
        ) {
            let objects: Vec<String> = rows
                .iter()
                .map(|pairs| {
                    let members: Vec<String> = pairs
                        .iter()
                        .map(|(k, v)| format!("{}:{spaces}{v}", serde_json::Value::from(*k)))
                        .collect();
                    format!("{{{spaces}{}{spaces}}}", members.join(&format!(",{spaces}")))
                })
                .collect();
            let array = format!("[{spaces}{}{spaces}]", objects.join(&format!("{spaces},{spaces}")));
            // The array alone, or held by an object beside other members (an array of objects too).
            let document = match wrap {
                0 => array,
                1 => format!("{{{spaces}\"rows\"{spaces}:{spaces}{array}{spaces}}}"),
                2 => format!("{{\"n\": 1,{spaces}\"rows\": {array}, \"x\": [1, \"a\", {{}}],{spaces}\"o\": {{\"k\": [2]}}}}"),
                3 => format!("{{\"rows\": {array},{spaces}\"b\": [{{\"Zip\": \"1\"}}]}}"),
                _ => format!("{{\"e\": [],{spaces}\"n\": \"x\"{spaces}}}"),
            };
            let mut text = format!("{spaces}{document}{spaces}");
            if let Some((at, with)) = cut {
                let at = at.min(text.len());
                if text.is_char_boundary(at) {
                    let end = (at + 1).min(text.len());
                    let end = if text.is_char_boundary(end) { end } else { at };
                    text.replace_range(at..end, with);
                }
            }
            let cut_up = outcome(text.as_bytes(), false, json_key);
            let streamed = outcome(text.as_bytes(), true, json_key);
            match (&cut_up, &streamed) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{}", text),
                (Err(a), Err(b)) => {
                    // serde_json places some errors one column apart reading a slice or a stream,
                    // and a line break inside a string on the line after it when streaming.
                    let column = |e: &InputError| -> Option<i64> {
                        e.column.as_ref().map(|c| c.split(' ').next().unwrap().parse().unwrap())
                    };
                    prop_assert_eq!(&a.message, &b.message, "{}", text);
                    // Reading a stream, serde_json has also taken in the line break after a token
                    // whose type it refuses (or after the brace of a second array's first object),
                    // and names the next line.
                    let (la, lb) = (a.line.unwrap() as i64, b.line.unwrap() as i64);
                    let line_break = a.message.contains("control character")
                        || (lb - la == 1
                            && (a.message.contains("invalid type") || a.message.contains("two arrays")));
                    prop_assert!(la == lb || (line_break && lb - la == 1), "{} {:?} {:?}", text, a, b);
                    let (ca, cb) = (column(a), column(b));
                    prop_assert!(
                        line_break || ca.zip(cb).is_none_or(|(x, y)| (x - y).abs() <= 1) && ca.is_some() == cb.is_some(),
                        "{} {:?} {:?}", text, a, b
                    );
                }
                _ => prop_assert!(false, "{}: cut {:?} streamed {:?}", text, cut_up, streamed),
            }
        }
    }

    /// Each record's normalized row, serialized, with what its bytes were found to hold (as read)
    /// and with nothing known (the flags cleared): the two must be the same.
    fn rows_both_ways(text: &'static [u8], format: Format) -> Vec<(String, String)> {
        let normalizer = crate::customer::Normalizer::new(jiff::civil::date(2026, 11, 22));
        let mut got = Vec::new();
        let mut visit = |raw: &RawCustomer<'_>, _: Location| {
            let row = |raw: &RawCustomer<'_>| {
                let mut out = Vec::new();
                normalizer.parse(raw, &mut Vec::new()).write_json(&mut out);
                String::from_utf8(out).unwrap()
            };
            let unknown = RawCustomer {
                plain: false,
                escape_free: false,
                ..raw.clone()
            };
            got.push((row(raw), row(&unknown)));
            Ok(())
        };
        let read = if format == Format::Ndjson {
            read_ndjson
        } else {
            read_json
        };
        read(input(text, "t.json"), &spec(format), &mut visit).unwrap();
        got
    }

    proptest::proptest! {
        /// What a record's bytes are found to hold lets normalization skip work, never changes a row:
        /// escapes (`\"`, `\\`, `\n`, `\u0085`), raw DEL and C1 characters, tabs and line breaks
        /// between tokens.
        #[test]
        fn the_record_scan_changes_no_row(
            values in proptest::collection::vec("[a \"\\\\\t\n\u{7f}\u{85}\u{a0}é]{0,5}", 1..4),
            pretty in proptest::bool::ANY,
        ) {
            let keys = ["First Name", "Address", "Email", "Zip"];
            let record: serde_json::Map<String, serde_json::Value> = keys
                .iter()
                .zip(&values)
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(v.as_str())))
                .collect();
            let line = if pretty {
                serde_json::to_string_pretty(&record).unwrap()
            } else {
                serde_json::to_string(&record).unwrap()
            };
            let array = format!("[{line},\n{line}]");
            for (text, format) in [(array, Format::Json), (serde_json::to_string(&record).unwrap(), Format::Ndjson)] {
                for (scanned, unknown) in rows_both_ways(text.leak().as_bytes(), format) {
                    prop_assert_eq!(&scanned, &unknown);
                    serde_json::from_str::<serde_json::Value>(&scanned).unwrap();
                }
            }
        }
    }

    #[test]
    fn a_raw_record_says_what_its_bytes_hold() {
        let flags = |text: &'static str| {
            let mut got = Vec::new();
            json(text.as_bytes(), &mut |raw, _| {
                got.push((raw.plain, raw.escape_free));
                Ok(())
            })
            .unwrap();
            got
        };
        assert_eq!(flags("[{\"First Name\":\n\t\"Ann\"}]"), [(true, true)]);
        assert_eq!(flags("[{\"First Name\": \"A\\\"nn\"}]"), [(false, false)]);
        assert_eq!(flags("[{\"First Name\": \"A\u{85}nn\"}]"), [(false, true)]);
        // Rows under a key are cut and scanned one by one too.
        assert_eq!(
            flags(r#"{"n": "\"", "rows": [{"First Name": "Ann"}]}"#),
            [(true, true)]
        );
    }

    #[test]
    fn a_callback_error_stops_reading_and_is_returned_as_is() {
        let err = json(
            br#"[{"First Name": "Ann"}, {"First Name": "Bob"}]"#,
            &mut |_, at| {
                if at.record == 2 {
                    Err(InputError::new("t.json", "refused"))
                } else {
                    Ok(())
                }
            },
        )
        .unwrap_err();
        assert_eq!(err.message, "refused");
    }
}
