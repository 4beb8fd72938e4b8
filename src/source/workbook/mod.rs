//! Spreadsheet workbooks (README "Input"): `.xlsx`/`.xlsm` are streamed cell by cell (only the
//! workbook's table of shared text is held whole); `.xls` and `.ods` can only be read a whole sheet at
//! a time, so they are refused above a stated size rather than risk swapping. The first visible
//! worksheet is read unless `--sheet` (or the store's `sheet`) names one.

mod cell;
mod sheet;

use std::fmt::Display;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::sync::{Arc, OnceLock};

use calamine::{Ods, Reader, SheetType, SheetVisible, Xls, Xlsx};

use super::{Format, InputError, InputSpec, SourceInfo, Visit, quote};
use crate::mapping::Target;
use crate::warnings::{WarningCode, Warnings};
use crate::wire::Field;
use sheet::SheetReader;

/// An `.xlsx` holds its text once, in a shared table that is read whole before the first row: above
/// this size (uncompressed) the workbook is refused. 20 MiB is about 190,000 customers of a typical
/// export, read within 64 MiB (BENCHMARKS.md "Workbooks").
pub const MAX_SHARED_TEXT_BYTES: u64 = 20 << 20;
/// An `.xls` is read whole, at about nine times its size in memory: above 5 MiB (about 18,000
/// customers) it is refused.
pub const MAX_XLS_BYTES: u64 = 5 << 20;
/// An `.ods` sheet is read whole from its `content.xml`, at about twice its size in memory: above
/// 24 MiB (uncompressed; 18,000 customers or more) it is refused.
pub const MAX_ODS_CONTENT_BYTES: u64 = 24 << 20;

/// Where each field's column is in the sheet being read, settled once the header is found, so that
/// a refusal raised after a row was read (by `--strict`, say) can name the cell.
#[derive(Clone, Debug, Default)]
pub struct Places(Arc<OnceLock<Placed>>);

#[derive(Debug)]
struct Placed {
    sheet: String,
    /// Field name (as errors name it) and 0-based column.
    columns: Vec<(&'static str, u32)>,
}

impl Places {
    fn settle(&self, sheet: &str, order: &[(usize, Target)]) {
        let mut columns = Vec::new();
        for &(column, target) in order {
            let fields = match target {
                Target::Field(f) => vec![f],
                Target::BirthDate => vec![Field::BirthMonth, Field::BirthDay, Field::BirthYear],
                Target::FullName => vec![Field::FirstName, Field::LastName],
                Target::AccountsReceivable | Target::Ignore => vec![],
            };
            for field in fields {
                if !columns.iter().any(|(n, _)| *n == field.name()) {
                    columns.push((field.name(), column as u32));
                }
            }
        }
        let _ = self.0.set(Placed {
            sheet: sheet.to_owned(),
            columns,
        });
    }

    /// Names the cell of an error that gives a row and a field, when the input is a workbook.
    pub fn name_cell(&self, error: InputError) -> InputError {
        let Some(placed) = self.0.get() else {
            return error;
        };
        let (None, Some(line), Some(field)) = (&error.cell, error.line, error.column.as_deref())
        else {
            return error;
        };
        match placed.columns.iter().find(|(n, _)| *n == field) {
            Some(&(_, column)) => {
                let cell = cell::reference(&placed.sheet, (line - 1) as u32, column);
                error.at_cell(cell)
            }
            None => error,
        }
    }
}

/// What a file is by its first bytes, if it is a workbook saved under another name (an `.xlsx` or
/// `.ods` is a zip archive, an `.xls` a compound document); a text export never starts so.
pub(super) fn looks_like_workbook(path: &std::path::Path) -> Option<&'static str> {
    let mut magic = [0; 4];
    File::open(path).ok()?.read_exact(&mut magic).ok()?;
    match magic {
        [b'P', b'K', 3, 4] => Some("a zip archive, as an .xlsx or .ods workbook is"),
        [0xD0, 0xCF, 0x11, 0xE0] => Some("an .xls workbook (a compound document)"),
        _ => None,
    }
}

/// Reads the chosen worksheet of the workbook `spec` names (or that stdin holds).
pub(super) fn read(
    spec: &InputSpec,
    name: &str,
    visit: &mut Visit<'_>,
) -> Result<SourceInfo, InputError> {
    let io_err = |e: io::Error| InputError::new(name, format!("cannot read: {e}"));
    let (file, hash) = open(spec).map_err(io_err)?;
    check_size(spec.format, &file, name)?;
    let reader = BufReader::with_capacity(1 << 16, file);
    let mut info = match spec.format {
        Format::Xls => read_whole::<Xls<_>>(reader, spec, name, visit)?,
        Format::Ods => read_whole::<Ods<_>>(reader, spec, name, visit)?,
        _ => read_xlsx(reader, spec, name, visit)?,
    };
    info.input_blake3 = hash;
    Ok(info)
}

/// The workbook's file and the BLAKE3 hash of its bytes; stdin is copied to a temporary file first
/// (a workbook is a zip archive or a compound file, read out of order).
fn open(spec: &InputSpec) -> io::Result<(File, String)> {
    let mut hasher = blake3::Hasher::new();
    let mut file = match &spec.path {
        Some(path) => {
            let mut file = File::open(path)?;
            hasher.update_reader(&mut file)?;
            file
        }
        None => {
            let mut file = tempfile::tempfile()?;
            let mut stdin = io::stdin().lock();
            let mut buf = vec![0; 1 << 16];
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                hasher.update(&buf[..n]);
                io::Write::write_all(&mut file, &buf[..n])?;
            }
            file
        }
    };
    file.rewind()?;
    Ok((file, hasher.finalize().to_hex().to_string()))
}

/// Refuses a workbook whose whole-held part is above its limit, before anything is loaded.
fn check_size(format: Format, file: &File, name: &str) -> Result<(), InputError> {
    let (size, limit, what) = match format {
        Format::Xls => (
            file.metadata().map(|m| m.len()).unwrap_or(0),
            MAX_XLS_BYTES,
            "the .xls file",
        ),
        Format::Ods => (
            zip_entry_size(file, |n| n == "content.xml"),
            MAX_ODS_CONTENT_BYTES,
            "the sheet data (content.xml)",
        ),
        _ => (
            zip_entry_size(file, |n| n.ends_with("sharedStrings.xml")),
            MAX_SHARED_TEXT_BYTES,
            "the table of shared text (sharedStrings.xml)",
        ),
    };
    if size <= limit {
        return Ok(());
    }
    Err(InputError::new(
        name,
        format!(
            "{what} is {} MiB, above the {} MiB rrfeed holds in memory for a {} workbook; save the \
             sheet as CSV (UTF-8) and upload that instead",
            size >> 20,
            limit >> 20,
            format_label(format)
        ),
    ))
}

/// The uncompressed size of the zip entry `wanted` picks (0 when there is none or the file is not a
/// zip archive: opening the workbook then says what is wrong).
fn zip_entry_size(file: &File, wanted: impl Fn(&str) -> bool) -> u64 {
    let Ok(mut archive) = zip::ZipArchive::new(BufReader::new(file)) else {
        return 0;
    };
    let mut total = 0;
    for i in 0..archive.len() {
        if let Ok(entry) = archive.by_index_raw(i)
            && entry.name().is_ok_and(|n| wanted(&n))
        {
            total += entry.size();
        }
    }
    total
}

/// A sheet name in a message, in double quotes.
fn quoted(name: &str) -> String {
    format!("\"{}\"", quote(name))
}

fn format_label(format: Format) -> &'static str {
    match format {
        Format::Xls => ".xls",
        Format::Ods => ".ods",
        _ => ".xlsx",
    }
}

fn open_error(name: &str, format: Format, e: impl Display) -> InputError {
    InputError::new(
        name,
        format!(
            "cannot read it as an {} workbook: {e} (if it is another format, pass --format)",
            format_label(format)
        ),
    )
}

type FileReader = BufReader<File>;

/// `.xlsx`/`.xlsm`: cells stream from the sheet's XML one at a time.
fn read_xlsx(
    reader: FileReader,
    spec: &InputSpec,
    name: &str,
    visit: &mut Visit<'_>,
) -> Result<SourceInfo, InputError> {
    let mut workbook = Xlsx::new(reader).map_err(|e| open_error(name, spec.format, e))?;
    let (sheet, notes) = choose_sheet(workbook.sheets_metadata(), spec, name)?;
    let mut cells = workbook
        .worksheet_cells_reader(&sheet)
        .map_err(|e| open_error(name, spec.format, e))?;
    let mut rows = SheetReader::new(spec, name, &sheet, notes, visit);
    while let Some(cell) = cells
        .next_cell()
        .map_err(|e| open_error(name, spec.format, e))?
    {
        let (row, column) = cell.get_position();
        rows.cell(row, column, &cell::Value::from(cell.get_value()))?;
    }
    rows.finish()
}

/// `.xls` and `.ods`: the sheet is loaded whole (its size was checked), then walked row by row.
fn read_whole<R>(
    reader: FileReader,
    spec: &InputSpec,
    name: &str,
    visit: &mut Visit<'_>,
) -> Result<SourceInfo, InputError>
where
    R: Reader<FileReader>,
    R::Error: Display,
{
    let mut workbook = R::new(reader).map_err(|e| open_error(name, spec.format, e))?;
    let (sheet, notes) = choose_sheet(workbook.sheets_metadata(), spec, name)?;
    let range = workbook
        .worksheet_range(&sheet)
        .map_err(|e| open_error(name, spec.format, e))?;
    let (top, left) = range.start().unwrap_or((0, 0));
    let mut rows = SheetReader::new(spec, name, &sheet, notes, visit);
    for (row, column, data) in range.used_cells() {
        rows.cell(
            top + row as u32,
            left + column as u32,
            &cell::Value::from(data),
        )?;
    }
    rows.finish()
}

/// The sheet named by `--sheet` (or the store's `sheet`), else the first visible worksheet; hidden
/// sheets passed over are counted.
fn choose_sheet(
    sheets: &[calamine::Sheet],
    spec: &InputSpec,
    name: &str,
) -> Result<(String, Warnings), InputError> {
    let mut notes = Warnings::default();
    let worksheets = || sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
    let list = || {
        worksheets()
            .map(|s| quoted(&s.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(wanted) = &spec.sheet {
        return match worksheets().find(|s| s.name == *wanted) {
            Some(s) => Ok((s.name.clone(), notes)),
            None => Err(InputError::new(
                name,
                format!(
                    "the workbook has no worksheet {}; its worksheets: {}",
                    quoted(wanted),
                    list()
                ),
            )),
        };
    }
    for s in worksheets() {
        if s.visible == SheetVisible::Visible {
            return Ok((s.name.clone(), notes));
        }
        let hidden = s.name.clone();
        notes.add(WarningCode::HiddenSheet, || {
            format!(
                "sheet {} is hidden and was passed over (--sheet reads it)",
                quoted(&hidden)
            )
        });
    }
    Err(InputError::new(
        name,
        match list().as_str() {
            "" => "the workbook has no worksheet".to_owned(),
            all => format!("every worksheet is hidden ({all}): pass --sheet NAME to read one"),
        },
    ))
}
