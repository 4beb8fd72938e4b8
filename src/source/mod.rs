//! Reading customer exports: CSV, JSON and NDJSON, from a file or stdin, in UTF-8, Windows-1252,
//! UTF-16 or Mac Roman, and spreadsheet workbooks (README "Input"). Records stream through a callback
//! one at a time, so memory does not grow with the file, and no record may be longer than
//! [`guard::MAX_RECORD_BYTES`]; a workbook that must be held whole is refused above a stated size.
//!
//! Readers only map columns to fields and report structural errors with file, line and column; the rules
//! for values live in `customer.rs`.

mod csv;
pub mod encoding;
pub mod guard;
mod json;
mod json_scan;
mod workbook;

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use encoding::Encoding;

use crate::customer::RawCustomer;
use crate::mapping::MappingRules;
use crate::warnings::Warnings;
use encoding::Detected;

/// The formats rrfeed reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Csv,
    Json,
    Ndjson,
    /// Excel's `.xlsx` and `.xlsm`.
    Xlsx,
    /// Excel 97–2003's `.xls`.
    Xls,
    /// OpenDocument's `.ods` (LibreOffice, Google Sheets).
    Ods,
}

impl Format {
    /// The format a file name implies: `.json`, `.ndjson`/`.jsonl`, `.xlsx`/`.xlsm`, `.xls`, `.ods`,
    /// anything else CSV.
    pub fn from_path(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("json") => Format::Json,
            Some("ndjson" | "jsonl") => Format::Ndjson,
            Some("xlsx" | "xlsm") => Format::Xlsx,
            Some("xls") => Format::Xls,
            Some("ods") => Format::Ods,
            _ => Format::Csv,
        }
    }

    /// The format a `--format` value or a store's `format` names.
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name.to_ascii_lowercase().as_str() {
            "csv" => Format::Csv,
            "json" => Format::Json,
            "ndjson" | "jsonl" => Format::Ndjson,
            "xlsx" | "xlsm" => Format::Xlsx,
            "xls" => Format::Xls,
            "ods" => Format::Ods,
            _ => return None,
        })
    }

    /// The names [`Format::from_name`] takes, for help texts and messages.
    pub const NAMES: &[&str] = &["csv", "json", "ndjson", "xlsx", "xls", "ods"];

    /// Whether this is a spreadsheet workbook (typed cells, no encoding or delimiter).
    pub fn is_workbook(self) -> bool {
        matches!(self, Format::Xlsx | Format::Xls | Format::Ods)
    }
}

/// Parses a delimiter: one ASCII character, or `tab`.
pub fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        t if t.len() == 1 && t.is_ascii() => Ok(t.as_bytes()[0]),
        _ => Err(format!("{text:?} is not one ASCII character (or `tab`)")),
    }
}

/// Which input to read and how.
#[derive(Clone, Debug, Default)]
pub struct InputSpec {
    /// `None` reads stdin.
    pub path: Option<PathBuf>,
    pub format: Format,
    /// `None` detects.
    pub encoding: Option<Encoding>,
    /// CSV only; `None` is `,` unless the header row plainly uses `;`, tab or `|` instead.
    pub delimiter: Option<u8>,
    /// The store's configured mapping (empty: names and aliases only).
    pub rules: MappingRules,
    /// JSON only: the member of a top-level object that holds the rows (`None`: the only array of
    /// objects in it).
    pub json_key: Option<String>,
    /// Workbooks only: the worksheet to read (`None`: the first visible one).
    pub sheet: Option<String>,
    /// Workbooks only: where each field's column is, once the reader has found the header, so that a
    /// refusal raised after reading can name the cell (`Customers!D17`).
    pub places: workbook::Places,
}

impl InputSpec {
    /// The name used in messages: the path, or `<stdin>`.
    pub fn display_name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "<stdin>".to_owned(), |p| p.display().to_string())
    }
}

/// Where a record is in its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// The physical line where the record starts (1-based).
    pub line: u64,
    /// The record's number among the data records (1-based).
    pub record: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)
    }
}

/// What reading found besides the records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceInfo {
    pub format: Format,
    pub encoding: Encoding,
    /// BLAKE3 hash of the input's bytes as read, in hex.
    pub input_blake3: String,
    /// Columns or keys that map to no field.
    pub unknown_columns: Vec<String>,
    /// Columns for a field that another column already supplies: (the column used, the column that
    /// fills the rows where it is empty).
    pub shadowed_columns: Vec<(String, String)>,
    /// CSV only: the delimiter used.
    pub delimiter: Option<u8>,
    /// Records skipped because every value in them was empty, and the line of the first.
    pub blank_rows: (u64, u64),
    /// Columns (or JSON keys) read as a whole birth date.
    pub birth_date_columns: Vec<String>,
    /// Whether any column (or key) maps to `PartnerCustomerID`.
    pub has_id_column: bool,
    /// The header row (or the JSON keys seen, up to a thousand).
    pub columns: Vec<String>,
    /// Workbooks only: the worksheet read.
    pub sheet: Option<String>,
    /// What the reader itself skipped or changed, counted like the values' warnings (workbooks: error
    /// cells, ZIP codes stored as numbers, totals rows, title rows, hidden sheets).
    pub notes: Warnings,
}

impl SourceInfo {
    fn new(format: Format, encoding: Encoding) -> Self {
        Self {
            format,
            encoding,
            input_blake3: String::new(),
            unknown_columns: Vec::new(),
            shadowed_columns: Vec::new(),
            delimiter: None,
            blank_rows: (0, 0),
            birth_date_columns: Vec::new(),
            has_id_column: false,
            columns: Vec::new(),
            sheet: None,
            notes: Warnings::default(),
        }
    }

    /// Counts a record skipped because all its values are empty.
    fn blank_row(&mut self, line: u64) {
        if self.blank_rows.0 == 0 {
            self.blank_rows.1 = line;
        }
        self.blank_rows.0 += 1;
    }
}

/// An input that cannot be used, naming the file, line and column where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: String,
    pub line: Option<u64>,
    pub column: Option<String>,
    /// Workbooks: the cell, `Customers!D17` (then `line` is its row).
    pub cell: Option<String>,
    pub message: String,
}

impl InputError {
    pub fn new(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            column: None,
            cell: None,
            message: message.into(),
        }
    }

    pub fn at_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    pub fn in_column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(column.into());
        self
    }

    pub fn at_cell(mut self, cell: impl Into<String>) -> Self {
        self.cell = Some(cell.into());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(cell) = &self.cell {
            write!(f, ": {cell}")?;
            if let Some(column) = &self.column {
                write!(f, " ({column})")?;
            }
            return write!(f, ": {}", self.message);
        }
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ": column {column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InputError {}

/// Called once per record; an error stops the reading and is returned by [`read_rows`].
pub type Visit<'v> = dyn FnMut(&RawCustomer<'_>, Location) -> Result<(), InputError> + 'v;

/// Reads every record of `spec`, calling `visit` for each.
///
/// Fails when the input cannot be opened or read, its encoding cannot be decided, or a record is
/// structurally broken (ragged row, unbalanced quote, invalid bytes, malformed JSON), or when `visit` fails.
pub fn read_rows(spec: &InputSpec, visit: &mut Visit<'_>) -> Result<SourceInfo, InputError> {
    let name = spec.display_name();
    if spec.format.is_workbook() {
        return workbook::read(spec, &name, visit);
    }
    let io_err = |e: io::Error| InputError::new(&name, format!("cannot read: {e}"));
    let hasher = Rc::new(RefCell::new(blake3::Hasher::new()));
    let (raw, encoding): (Box<dyn BufRead>, Encoding) = match &spec.path {
        Some(path) => {
            if let Some(kind) = workbook::looks_like_workbook(path) {
                return Err(InputError::new(
                    &name,
                    format!(
                        "this is {kind}, not {} text: give the file its extension or pass --format",
                        format!("{:?}", spec.format).to_uppercase()
                    ),
                ));
            }
            let encoding = match spec.encoding {
                Some(e) => e,
                None => decide(&name, encoding::detect_file(path).map_err(io_err)?)?,
            };
            let file = Hashing::new(std::fs::File::open(path).map_err(io_err)?, &hasher);
            (
                Box::new(io::BufReader::with_capacity(1 << 16, file)),
                encoding,
            )
        }
        None => {
            let stdin = Hashing::new(io::stdin(), &hasher);
            let mut stdin = io::BufReader::with_capacity(1 << 20, stdin);
            let encoding = match spec.encoding {
                Some(e) => e,
                None => {
                    // One read of a pipe may stop anywhere: a character cut at its end is not an error.
                    let prefix = stdin.fill_buf().map_err(io_err)?;
                    decide(&name, encoding::detect_prefix(prefix, false))?
                }
            };
            (Box::new(stdin), encoding)
        }
    };
    let mut info = read_decoded(raw, encoding, spec, &name, visit)?;
    info.input_blake3 = hasher.borrow().finalize().to_hex().to_string();
    Ok(info)
}

/// Hashes the bytes read through it.
struct Hashing<R> {
    inner: R,
    hasher: Rc<RefCell<blake3::Hasher>>,
}

impl<R> Hashing<R> {
    fn new(inner: R, hasher: &Rc<RefCell<blake3::Hasher>>) -> Self {
        Self {
            inner,
            hasher: hasher.clone(),
        }
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.borrow_mut().update(&buf[..n]);
        Ok(n)
    }
}

fn decide(name: &str, detected: Detected) -> Result<Encoding, InputError> {
    match detected {
        Detected::Encoding(e) => Ok(e),
        Detected::MacLineEnds => Err(InputError::new(
            name,
            "the text is not UTF-8 and its lines end in a bare CR, as Excel for Mac writes CSV in Mac \
             Roman: pass --encoding macintosh (or --encoding windows-1252 if it was written on Windows)",
        )),
        Detected::Mixed { first_invalid_line } => Err(InputError::new(
            name,
            "the file mixes UTF-8 text with bytes that are not UTF-8; decoding it either way would \
             mangle names. Re-export it as UTF-8, or force --encoding windows-1252 if it is that",
        )
        .at_line(first_invalid_line)),
    }
}

fn read_decoded(
    mut raw: Box<dyn BufRead>,
    encoding: Encoding,
    spec: &InputSpec,
    name: &str,
    visit: &mut Visit<'_>,
) -> Result<SourceInfo, InputError> {
    encoding::skip_bom(&mut raw).map_err(|e| InputError::new(name, format!("cannot read: {e}")))?;
    let decoded: Box<dyn BufRead> = match encoding {
        Encoding::Utf8 => raw,
        Encoding::Windows1252 => {
            encoding::decoded(guard::Undefined1252::new(raw as Box<dyn Read>), encoding)
        }
        _ => encoding::decoded(raw as Box<dyn Read>, encoding),
    };
    let mark = guard::RecordMark::default();
    let reader = Box::new(io::BufReader::with_capacity(
        1 << 16,
        guard::Guard::new(decoded, mark.clone()),
    ));
    let input = Input {
        reader,
        mark,
        name,
        encoding,
    };
    let mut info = match spec.format {
        Format::Csv => csv::read(input, spec, visit)?,
        Format::Json => json::read_json(input, spec, visit)?,
        Format::Ndjson => json::read_ndjson(input, spec, visit)?,
        Format::Xlsx | Format::Xls | Format::Ods => unreachable!("workbooks are read by cells"),
    };
    info.encoding = encoding;
    Ok(info)
}

/// Decoded text for a format reader, with what it needs to report errors and mark records.
pub(crate) struct Input<'n> {
    pub reader: Box<dyn BufRead>,
    /// Moved on after every record, so that only one record's length is bounded.
    pub mark: guard::RecordMark,
    pub name: &'n str,
    pub encoding: Encoding,
}

/// An input error for a failed read: a guard's refusal names the line (`line` is the reader's best
/// knowledge of where the current record starts); anything else is an IO error.
pub(crate) fn read_error(name: &str, e: &io::Error, line: Option<u64>) -> InputError {
    let err = match guard::GuardError::of(e) {
        Some(g @ guard::GuardError::Undefined1252 { line, column, .. }) => {
            return InputError::new(name, g.to_string())
                .at_line(*line)
                .in_column(column.to_string());
        }
        Some(g) => InputError::new(name, g.to_string()),
        None => InputError::new(name, format!("cannot read: {e}")),
    };
    match line {
        Some(line) => err.at_line(line),
        None => err,
    }
}

/// A hint added to invalid-UTF-8 errors.
fn utf8_hint(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Utf8 => " (if the export is Windows-1252, pass --encoding windows-1252)",
        _ => "",
    }
}

/// Quotes input text in a message: at most 200 characters, control characters escaped. Text that
/// needs neither (nearly all: this runs for every repeated id) is borrowed as it is.
pub fn quote(text: &str) -> Cow<'_, str> {
    const MAX: usize = 200;
    if text.len() <= MAX && !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(MAX) + 8);
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}
