//! Turns a worksheet's cells, given row by row, into customer records: finds the header row (passing
//! over title rows above it and joining a header split over two rows), skips blank and totals rows,
//! and reports error cells and ZIP codes that lost their leading zero, naming each cell.

use super::cell::{self, Kind, Value};
use super::quoted;
use crate::customer::{RawCustomer, scan_record};
use crate::mapping::{ColumnMap, Target};
use crate::source::{InputError, InputSpec, Location, SourceInfo, Visit};
use crate::warnings::{WarningCode, Warnings, shorten};
use crate::wire::Field;

/// Non-empty rows looked at for the header before giving up.
const MAX_TITLE_ROWS: u32 = 10;

/// One row's cells, reused from row to row.
#[derive(Default)]
struct Row {
    /// 0-based row number in the sheet.
    number: u32,
    texts: Vec<String>,
    kinds: Vec<Kind>,
    /// Error cells: column and what Excel shows (`#N/A`).
    errors: Vec<(u32, String)>,
    /// Whether any cell holds something, if only a space.
    filled: bool,
}

impl Row {
    fn start(&mut self, number: u32) {
        self.number = number;
        for (text, kind) in self.texts.iter_mut().zip(&mut self.kinds) {
            text.clear();
            *kind = Kind::Empty;
        }
        self.errors.clear();
        self.filled = false;
    }

    fn set(&mut self, column: u32, value: &Value<'_>) {
        let i = column as usize;
        if i >= self.texts.len() {
            self.texts.resize_with(i + 1, String::new);
            self.kinds.resize(i + 1, Kind::Empty);
        }
        self.kinds[i] = cell::write_text(value, &mut self.texts[i]);
        self.filled |= !matches!(value, Value::Empty);
        if let Value::Error(e) = value {
            self.errors.push((column, e.to_string()));
        }
    }

    /// No cell holds anything (formatting alone makes a cell without a value).
    fn is_empty(&self) -> bool {
        !self.filled
    }

    /// No cell holds more than spaces (or an error).
    fn is_blank(&self) -> bool {
        self.kinds
            .iter()
            .all(|k| matches!(k, Kind::Empty | Kind::Error))
    }

    fn text(&self, column: usize) -> &str {
        self.texts.get(column).map_or("", String::as_str)
    }

    fn kind(&self, column: usize) -> Kind {
        self.kinds.get(column).copied().unwrap_or_default()
    }
}

/// The header once found.
struct Header {
    names: Vec<String>,
    map: ColumnMap,
    /// 0-based row of the (last) header row.
    row: u32,
    id_column: Option<usize>,
    zip_column: Option<usize>,
    country_column: Option<usize>,
    /// Whether the next non-empty row may still continue the header.
    open: bool,
}

/// Reads one worksheet's cells into records.
pub struct SheetReader<'r, 'v> {
    spec: &'r InputSpec,
    name: &'r str,
    sheet: String,
    visit: &'r mut Visit<'v>,
    row: Row,
    started: bool,
    header: Option<Header>,
    titles: u32,
    records: u64,
    info: SourceInfo,
    /// Columns with values but no header, by column.
    unnamed: Vec<u32>,
}

impl<'r, 'v> SheetReader<'r, 'v> {
    pub fn new(
        spec: &'r InputSpec,
        name: &'r str,
        sheet: &str,
        notes: Warnings,
        visit: &'r mut Visit<'v>,
    ) -> Self {
        let mut info = SourceInfo::new(spec.format, crate::source::Encoding::Utf8);
        info.notes = notes;
        info.sheet = Some(sheet.to_owned());
        Self {
            spec,
            name,
            sheet: sheet.to_owned(),
            visit,
            row: Row::default(),
            started: false,
            header: None,
            titles: 0,
            records: 0,
            info,
            unnamed: Vec::new(),
        }
    }

    /// Takes the next cell; cells come row by row, left to right (0-based row and column).
    pub fn cell(&mut self, row: u32, column: u32, value: &Value<'_>) -> Result<(), InputError> {
        if !self.started || row != self.row.number {
            if self.started {
                self.end_row()?;
            }
            self.row.start(row);
            self.started = true;
        }
        self.row.set(column, value);
        Ok(())
    }

    /// Ends the sheet: the last row, then what was found.
    pub fn finish(mut self) -> Result<SourceInfo, InputError> {
        if self.started {
            self.end_row()?;
        }
        let Some(header) = self.header else {
            return Err(InputError::new(
                self.name,
                format!(
                    "sheet {} has no header row: {}",
                    quoted(&self.sheet),
                    if self.titles > 0 {
                        "none of its rows names a customer field (is this the right sheet? see --sheet)"
                    } else {
                        "the sheet is empty"
                    }
                ),
            ));
        };
        let mut info = self.info;
        info.has_id_column = header.id_column.is_some();
        info.birth_date_columns = header
            .map
            .order
            .iter()
            .filter(|(_, t)| *t == Target::BirthDate)
            .map(|(i, _)| header.names[*i].clone())
            .collect();
        info.unknown_columns = header.map.unknown;
        info.unknown_columns.extend(
            self.unnamed
                .iter()
                .map(|c| format!("column {} (no header)", cell::column_letters(*c))),
        );
        info.shadowed_columns = header.map.shadowed;
        info.columns = header.names;
        Ok(info)
    }

    fn end_row(&mut self) -> Result<(), InputError> {
        if self.row.is_empty() {
            return Ok(());
        }
        match &mut self.header {
            None => self.find_header(),
            Some(header) if header.open => {
                header.open = false;
                let joined = self.join_header();
                self.settle_places();
                if joined { Ok(()) } else { self.record() }
            }
            Some(_) => self.record(),
        }
    }

    /// The first row that names a customer field is the header; rows above it are titles.
    fn find_header(&mut self) -> Result<(), InputError> {
        if self.row.is_blank() {
            return Ok(());
        }
        let names = self.row.texts.clone();
        let map = ColumnMap::from_headers(&names, &self.spec.rules);
        if !map.order.is_empty() {
            self.header = Some(header(names, map, self.row.number));
            return Ok(());
        }
        self.titles += 1;
        let at = self.first_cell();
        if self.titles > MAX_TITLE_ROWS {
            return Err(InputError::new(
                self.name,
                format!(
                    "sheet {}: none of the first {MAX_TITLE_ROWS} non-empty rows names a customer \
                     field, so there is no header row (is this the right sheet? see --sheet)",
                    quoted(&self.sheet)
                ),
            )
            .at_line(u64::from(self.row.number) + 1)
            .at_cell(at));
        }
        let first = self
            .row
            .texts
            .iter()
            .find(|t| !t.is_empty())
            .map_or("", |t| t);
        self.info.notes.add(WarningCode::TitleRow, || {
            format!(
                "{at}: {:?} names no customer field and is above the header; skipped",
                shorten(first)
            )
        });
        Ok(())
    }

    /// A row of text right under the header that itself names two fields or more continues the header
    /// (a merged group title such as `Name` above `First | Last`): each column takes its lower name
    /// where it has one. Says whether the row was taken as part of the header.
    fn join_header(&mut self) -> bool {
        let all_text = self
            .row
            .kinds
            .iter()
            .all(|k| matches!(k, Kind::Empty | Kind::Text));
        if !all_text || !self.row.errors.is_empty() {
            return false;
        }
        let lower = ColumnMap::from_headers(&self.row.texts, &self.spec.rules);
        if lower.order.len() < 2 {
            return false;
        }
        let old = self.header.take().expect("a header is open");
        let width = old.names.len().max(self.row.texts.len());
        let names: Vec<String> = (0..width)
            .map(|i| match self.row.text(i) {
                "" => old.names.get(i).cloned().unwrap_or_default(),
                lower => lower.to_owned(),
            })
            .collect();
        let map = ColumnMap::from_headers(&names, &self.spec.rules);
        let (upper, row) = (old.row, self.row.number);
        let sheet = &self.sheet;
        self.info.notes.add(WarningCode::TwoRowHeader, || {
            format!(
                "{}: the header spans rows {} and {} (merged cells above the column names); read as {}",
                cell::reference(sheet, upper, 0),
                upper + 1,
                row + 1,
                shorten(&names.iter().filter(|n| !n.is_empty()).cloned().collect::<Vec<_>>().join(", "))
            )
        });
        let mut joined = header(names, map, row);
        joined.open = false;
        self.header = Some(joined);
        true
    }

    /// Lets a refusal raised after reading name the cell of a field.
    fn settle_places(&self) {
        let header = self.header.as_ref().expect("the header is settled");
        self.spec.places.settle(&self.sheet, &header.map.order);
    }

    fn record(&mut self) -> Result<(), InputError> {
        let line = u64::from(self.row.number) + 1;
        self.note_unnamed();
        self.note_errors();
        let header = self.header.as_ref().expect("records follow the header");
        if self.row.is_blank() {
            if self.row.errors.is_empty() {
                self.info.blank_row(line);
            }
            return Ok(());
        }
        if is_totals_row(&self.row, header) {
            let at = self.first_cell();
            self.info.notes.add(WarningCode::TotalsRow, || {
                format!("{at}: a row with no customer id and only numbers (a totals row); skipped")
            });
            return Ok(());
        }
        self.check_zip();
        let header = self.header.as_ref().expect("records follow the header");
        let scans = self.row.texts.iter().map(|t| scan_record(t.as_bytes()));
        let mut raw = RawCustomer {
            plain: true,
            escape_free: true,
            ..RawCustomer::default()
        };
        for scan in scans {
            raw.plain &= scan.plain;
            raw.escape_free &= scan.escape_free;
        }
        for &(column, target) in &header.map.order {
            raw.fill(target, self.row.text(column));
        }
        self.records += 1;
        let at = Location {
            line,
            record: self.records,
        };
        // A refusal names its cell in `ingest`, which does so for every input error.
        (self.visit)(&raw, at)
    }

    fn note_unnamed(&mut self) {
        let header = self.header.as_ref().expect("records follow the header");
        for (i, kind) in self.row.kinds.iter().enumerate() {
            let named = header.names.get(i).is_some_and(|n| !n.trim().is_empty());
            if *kind != Kind::Empty && !named && !self.unnamed.contains(&(i as u32)) {
                self.unnamed.push(i as u32);
            }
        }
    }

    fn note_errors(&mut self) {
        let header = self.header.as_ref().expect("records follow the header");
        for (column, shown) in &self.row.errors {
            let at = cell::reference(&self.sheet, self.row.number, *column);
            let name = header
                .names
                .get(*column as usize)
                .map_or("", String::as_str);
            self.info.notes.add(WarningCode::ErrorCell, || {
                format!("{at} ({}) holds {shown}; read as empty", shorten(name))
            });
        }
    }

    /// A US ZIP code that Excel stored as a number loses its leading zeros (`02134` becomes `2134`).
    /// It is reported, not mended: a four-digit number may be a postal code of another country.
    fn check_zip(&mut self) {
        let header = self.header.as_ref().expect("records follow the header");
        let Some(zip) = header.zip_column else { return };
        let text = self.row.text(zip);
        let short = (3..=4).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
        let us = header
            .country_column
            .is_none_or(|c| is_us(self.row.text(c)));
        if self.row.kind(zip) == Kind::Number && short && us {
            let at = cell::reference(&self.sheet, self.row.number, zip as u32);
            let padded = format!("{text:0>5}");
            self.info.notes.add(WarningCode::ZipLostLeadingZero, || {
                format!(
                    "{at}: ZIP {text} is a number in the workbook, so its leading zero is gone \
                     ({padded}?); read as {text}: format the column as Text in the sheet"
                )
            });
        }
    }

    fn first_cell(&self) -> String {
        let column = self
            .row
            .kinds
            .iter()
            .position(|k| *k != Kind::Empty)
            .unwrap_or(0);
        cell::reference(&self.sheet, self.row.number, column as u32)
    }
}

fn header(names: Vec<String>, map: ColumnMap, row: u32) -> Header {
    let column_of = |field: Field| {
        map.order
            .iter()
            .find(|(_, t)| *t == Target::Field(field))
            .map(|(i, _)| *i)
    };
    Header {
        id_column: column_of(Field::PartnerCustomerId),
        zip_column: column_of(Field::ZipOrPostalCode),
        country_column: column_of(Field::Country),
        names,
        map,
        row,
        open: true,
    }
}

/// A row whose id cell is empty (or a label such as `Total`) and whose other values are all numbers.
fn is_totals_row(row: &Row, header: &Header) -> bool {
    let Some(id) = header.id_column else {
        return false;
    };
    let label = row.text(id).trim().to_ascii_lowercase();
    let labelled = label.is_empty()
        || matches!(
            label.as_str(),
            "total" | "totals" | "grand total" | "sum" | "subtotal" | "count"
        );
    let mut numbers = 0;
    for (i, kind) in row.kinds.iter().enumerate() {
        match kind {
            Kind::Number => numbers += 1,
            Kind::Empty => {}
            Kind::Text if i == id => {}
            _ => return false,
        }
    }
    labelled && numbers > 0
}

fn is_us(country: &str) -> bool {
    let country = country.trim().to_ascii_lowercase();
    matches!(
        country.as_str(),
        "" | "us" | "usa" | "u.s." | "u.s.a." | "united states" | "united states of america"
    )
}
