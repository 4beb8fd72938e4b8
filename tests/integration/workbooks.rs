//! Spreadsheet workbooks through the real binary: `.xlsx` written here with `rust_xlsxwriter`, `.xls`
//! and `.ods` fixtures written by LibreOffice-compatible writers (`tests/fixtures/workbooks/make.py`).
//! Each upload's stored customers are checked field by field at the mock.

use std::io::{Read, Write};
use std::path::Path;

use rrfeed::wire::{CustomerRecord, Field};
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook, Worksheet};
use serde_json::Value;

use crate::helpers::*;

fn held(server: &MockServer) -> Vec<CustomerRecord> {
    server.mock.store(STORE_ID).unwrap().customers()
}

fn by_id<'a>(rows: &'a [CustomerRecord], id: &str) -> &'a CustomerRecord {
    rows.iter()
        .find(|r| r.get(Field::PartnerCustomerId) == Some(id))
        .unwrap_or_else(|| panic!("no customer {id} stored"))
}

/// Saves a workbook built by `build` as a temporary `.xlsx`.
fn xlsx(build: impl FnOnce(&mut Workbook)) -> tempfile::NamedTempFile {
    let mut workbook = Workbook::new();
    build(&mut workbook);
    let file = tempfile::Builder::new().suffix(".xlsx").tempfile().unwrap();
    workbook.save(file.path()).unwrap();
    file
}

fn warning<'a>(json: &'a Value, code: &str) -> Option<&'a Value> {
    json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == code)
}

fn count(json: &Value, code: &str) -> u64 {
    warning(json, code).map_or(0, |w| w["count"].as_u64().unwrap())
}

fn example(json: &Value, code: &str) -> String {
    warning(json, code).unwrap_or_else(|| panic!("no {code} warning in {json}"))["example"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn date(year: u16, month: u8, day: u8) -> ExcelDateTime {
    ExcelDateTime::from_ymd(year, month, day).unwrap()
}

/// The workbook a dealer's report screen makes: a hidden old sheet first, a merged title, a header
/// split over two rows, typed cells, an error cell, a blank row, a totals row and a stray note.
fn report(workbook: &mut Workbook) {
    let date_format = Format::new().set_num_format("mm/dd/yyyy");
    let old = workbook.add_worksheet();
    old.set_name("Old").unwrap();
    old.write_string(0, 0, "Customer No").unwrap();
    old.write_string(1, 0, "999").unwrap();
    old.set_hidden(true);
    let sheet = workbook.add_worksheet();
    sheet.set_name("Customers").unwrap().set_active(true);
    sheet
        .merge_range(0, 0, 0, 7, "Spring customer report", &Format::new())
        .unwrap();
    let top = [
        "Customer No",
        "Name",
        "",
        "Birth Date",
        "Zip",
        "Phone",
        "Email",
        "Country",
    ];
    let lower = ["", "First", "Last"];
    write_row(sheet, 2, &top);
    write_row(sheet, 3, &lower);
    // Row 5: numbers where text belongs, a date cell, a ZIP that lost its leading zero.
    sheet.write_number(4, 0, 1001).unwrap();
    write_row_from(sheet, 4, 1, &["Ann", "Lee"]);
    sheet
        .write_datetime_with_format(4, 3, date(1985, 3, 7), &date_format)
        .unwrap();
    sheet.write_number(4, 4, 2134).unwrap();
    sheet.write_number(4, 5, 4_143_264_100.0).unwrap();
    write_row_from(sheet, 4, 6, &["ann@example.com", "US"]);
    sheet.write_string(4, 9, "call after 5").unwrap();
    // Row 6: text cells, a name formula (its cached result is read), and an email formula whose
    // cached result is #N/A.
    write_row(sheet, 5, &["C-2", "", "Ray"]);
    sheet
        .write_formula(5, 1, Formula::new("=PROPER(\"bob\")").set_result("Bob"))
        .unwrap();
    sheet
        .write_datetime_with_format(5, 3, date(1979, 11, 30), &date_format)
        .unwrap();
    write_row_from(sheet, 5, 4, &["02134", "414-326-4101"]);
    sheet
        .write_formula(
            5,
            6,
            Formula::new("=VLOOKUP(A6,Old!A:B,2,0)").set_result("#N/A"),
        )
        .unwrap();
    sheet.write_string(5, 7, "USA").unwrap();
    // Row 7: a Canadian postal code stored as a number is not a US ZIP.
    sheet.write_number(6, 0, 1003).unwrap();
    write_row_from(sheet, 6, 1, &["Cy", "Dee"]);
    sheet.write_number(6, 4, 5315).unwrap();
    write_row_from(sheet, 6, 6, &["cy@example.com", "CA"]);
    // Row 8: blank (a space); row 9: the totals.
    sheet.write_string(7, 1, " ").unwrap();
    sheet
        .write_formula(8, 4, Formula::new("=COUNTA(B5:B7)").set_result("3"))
        .unwrap();
    sheet.write_number(8, 5, 3).unwrap();
}

fn write_row(sheet: &mut Worksheet, row: u32, values: &[&str]) {
    write_row_from(sheet, row, 0, values);
}

fn write_row_from(sheet: &mut Worksheet, row: u32, first: u16, values: &[&str]) {
    for (i, value) in values.iter().enumerate() {
        if !value.is_empty() {
            sheet.write_string(row, first + i as u16, *value).unwrap();
        }
    }
}

#[test]
fn an_xlsx_report_uploads_typed_cells_as_the_sheet_shows_them() {
    let file = xlsx(report);
    let server = MockServer::start("");
    let out = upload(&server, file.path(), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json["format"], "xlsx");
    let rows = held(&server);
    assert_eq!(rows.len(), 3, "the totals and blank rows are no customers");
    let ann = by_id(&rows, "1001");
    assert_eq!(ann.get(Field::FirstName), Some("Ann"));
    assert_eq!(ann.get(Field::LastName), Some("Lee"));
    assert_eq!(
        [Field::BirthMonth, Field::BirthDay, Field::BirthYear].map(|f| ann.get(f)),
        [Some("3"), Some("7"), Some("1985")]
    );
    assert_eq!(ann.get(Field::ZipOrPostalCode), Some("2134"));
    assert_eq!(ann.get(Field::HomePhone), Some("4143264100"));
    assert_eq!(ann.get(Field::Email), Some("ann@example.com"));
    let bob = by_id(&rows, "C-2");
    assert_eq!(bob.get(Field::FirstName), Some("Bob"));
    assert_eq!(
        [Field::BirthMonth, Field::BirthDay, Field::BirthYear].map(|f| bob.get(f)),
        [Some("11"), Some("30"), Some("1979")]
    );
    assert_eq!(bob.get(Field::ZipOrPostalCode), Some("02134"));
    assert_eq!(bob.get(Field::HomePhone), Some("4143264101"));
    assert_eq!(bob.get(Field::Email).unwrap_or(""), "");
    let cy = by_id(&rows, "1003");
    assert_eq!(cy.get(Field::ZipOrPostalCode), Some("5315"));
    let json = &out.json;
    assert_eq!(count(json, "hidden-sheet"), 1);
    assert_eq!(count(json, "title-row"), 1);
    assert_eq!(count(json, "two-row-header"), 1);
    assert_eq!(count(json, "error-cell"), 1);
    assert!(example(json, "error-cell").starts_with("Customers!G6 (Email) holds #N/A"));
    assert_eq!(count(json, "zip-lost-leading-zero"), 1, "only the US ZIP");
    assert!(example(json, "zip-lost-leading-zero").starts_with("Customers!E5: ZIP 2134"));
    assert_eq!(count(json, "totals-row"), 1);
    assert!(example(json, "totals-row").starts_with("Customers!E9"));
    assert_eq!(count(json, "blank-row"), 1);
    assert!(example(json, "unknown-columns").contains("column J (no header)"));
}

#[test]
fn strict_refusals_name_the_cell() {
    let file = xlsx(report);
    let server = MockServer::start("");
    let out = upload(&server, file.path(), &["--strict"]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    let error = out.json["error"].as_str().unwrap();
    assert!(error.contains("Customers!G6 (Email) holds #N/A"), "{error}");
    assert!(server.calls().is_empty());

    let file = xlsx(|workbook| {
        let sheet = workbook.add_worksheet();
        sheet.set_name("Store 12").unwrap();
        write_row(sheet, 0, &["ID", "First Name", "Mobile"]);
        write_row(sheet, 1, &["1", "Ann", "555-0101"]);
        write_row(sheet, 2, &["2", "Bob", "not a phone"]);
    });
    let out = upload(&server, file.path(), &["--strict"]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    let error = out.json["error"].as_str().unwrap();
    let name = file.path().display().to_string();
    assert!(
        error.starts_with(&format!("{name}: 'Store 12'!C3 (CustomerMobilePhone): ")),
        "{error}"
    );
    assert!(server.calls().is_empty());
}

/// Rewrites `xl/workbook.xml` to use Excel's 1904 date system (Excel for Mac's old default), keeping
/// every other entry as it is.
fn into_1904(path: &Path) {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let out_path = path.with_extension("1904.xlsx");
    let mut out = zip::ZipWriter::new(std::fs::File::create(&out_path).unwrap());
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        let name = entry.name().unwrap().into_owned();
        if name == "xl/workbook.xml" {
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.contains("<workbookPr "), "{text}");
            bytes = text
                .replace("<workbookPr ", "<workbookPr date1904=\"1\" ")
                .into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap();
    std::fs::rename(out_path, path).unwrap();
}

#[test]
fn dates_in_the_1904_system_read_as_the_same_day() {
    let date_format = Format::new().set_num_format("yyyy-mm-dd");
    let file = xlsx(|workbook| {
        let sheet = workbook.add_worksheet();
        write_row(sheet, 0, &["ID", "DOB"]);
        sheet.write_string(1, 0, "1").unwrap();
        // 1985-03-07 is day 29651 counted from 1904-01-01 (day 31113 from 1900).
        sheet
            .write_number_with_format(1, 1, 29651, &date_format)
            .unwrap();
    });
    into_1904(file.path());
    let server = MockServer::start("");
    let out = upload(&server, file.path(), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = held(&server);
    assert_eq!(
        [Field::BirthMonth, Field::BirthDay, Field::BirthYear].map(|f| rows[0].get(f)),
        [Some("3"), Some("7"), Some("1985")]
    );
}

#[test]
fn the_sheet_flag_chooses_and_an_unknown_sheet_is_refused() {
    let file = xlsx(|workbook| {
        let first = workbook.add_worksheet();
        first.set_name("Summary").unwrap();
        write_row(first, 0, &["Total customers", "2"]);
        let sheet = workbook.add_worksheet();
        sheet.set_name("Customers").unwrap();
        write_row(sheet, 0, &["ID", "First Name"]);
        write_row(sheet, 1, &["7", "Eve"]);
    });
    let server = MockServer::start("");
    let out = upload(&server, file.path(), &["--sheet", "Customers"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(held(&server)[0].get(Field::FirstName), Some("Eve"));

    let out = upload(&server, file.path(), &["--sheet", "Clients"]);
    assert_eq!(out.code, 65);
    let error = out.json["error"].as_str().unwrap();
    assert!(
        error.contains("no worksheet \"Clients\"; its worksheets: \"Summary\", \"Customers\""),
        "{error}"
    );

    // Without --sheet the first sheet is read, and it has no header row.
    let out = upload(&server, file.path(), &[]);
    assert_eq!(out.code, 65);
    let error = out.json["error"].as_str().unwrap();
    assert!(
        error.contains("sheet \"Summary\" has no header row"),
        "{error}"
    );
}

#[test]
fn a_workbook_above_the_held_size_is_refused_before_loading() {
    let file = tempfile::Builder::new().suffix(".xlsx").tempfile().unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(file.path()).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(false);
    zip.start_file("xl/sharedStrings.xml", options).unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..21 {
        zip.write_all(&chunk).unwrap();
    }
    zip.finish().unwrap();
    let server = MockServer::start("");
    let out = upload(&server, file.path(), &[]);
    assert_eq!(out.code, 65);
    let error = out.json["error"].as_str().unwrap();
    assert!(
        error.contains("sharedStrings.xml) is 21 MiB, above the 20 MiB"),
        "{error}"
    );
    assert!(server.calls().is_empty());
}

#[test]
fn xls_and_ods_files_upload_the_same_customers() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workbooks");
    for (file, format) in [("customers.xls", "xls"), ("customers.ods", "ods")] {
        let server = MockServer::start("");
        let out = upload(&server, &fixtures.join(file), &[]);
        assert_eq!(out.code, 0, "{file}: {}", out.stderr);
        assert_eq!(out.json["format"], format);
        let rows = held(&server);
        assert_eq!(rows.len(), 2, "{file}: the totals row is no customer");
        let ann = by_id(&rows, "1001");
        assert_eq!(ann.get(Field::FirstName), Some("Ann"), "{file}");
        assert_eq!(
            [Field::BirthMonth, Field::BirthDay, Field::BirthYear].map(|f| ann.get(f)),
            [Some("3"), Some("7"), Some("1985")],
            "{file}"
        );
        assert_eq!(ann.get(Field::ZipOrPostalCode), Some("2134"), "{file}");
        assert_eq!(ann.get(Field::HomePhone), Some("4143264100"), "{file}");
        let bob = by_id(&rows, "C-2");
        assert_eq!(bob.get(Field::ZipOrPostalCode), Some("02134"), "{file}");
        assert_eq!(bob.get(Field::Email), Some("bob@example.com"), "{file}");
        assert_eq!(count(&out.json, "zip-lost-leading-zero"), 1, "{file}");
        assert_eq!(count(&out.json, "totals-row"), 1, "{file}");
    }
}

#[test]
fn a_workbook_on_stdin_needs_its_format_named() {
    let file = xlsx(|workbook| {
        let sheet = workbook.add_worksheet();
        write_row(sheet, 0, &["ID", "First Name"]);
        write_row(sheet, 1, &["7", "Eve"]);
    });
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let output = rrfeed(&server, state.path())
        .args(["upload", "--json", "--format", "xlsx", "-"])
        .pipe_stdin(file.path())
        .unwrap()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(held(&server)[0].get(Field::FirstName), Some("Eve"));
}

#[test]
fn a_workbook_uploads_exactly_what_the_same_csv_uploads() {
    let csv_file = csv_rows(1500);
    let mut reader = csv::Reader::from_path(csv_file.path()).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let book = xlsx(|workbook| {
        let sheet = workbook.add_worksheet();
        let names: Vec<&str> = header.iter().map(String::as_str).collect();
        write_row(sheet, 0, &names);
        for (i, record) in records.iter().enumerate() {
            let values: Vec<&str> = record.iter().collect();
            write_row(sheet, i as u32 + 1, &values);
        }
    });
    let stored = |file: &Path| {
        let server = MockServer::start("");
        let out = upload(&server, file, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        (held(&server), out.json["warnings"].clone())
    };
    let (from_csv, csv_warnings) = stored(csv_file.path());
    let (from_xlsx, xlsx_warnings) = stored(book.path());
    assert_eq!(from_csv.len(), 1500);
    assert!(from_csv == from_xlsx, "the stored customers differ");
    assert_eq!(csv_warnings, xlsx_warnings);
}
