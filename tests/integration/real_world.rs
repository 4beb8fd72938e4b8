//! Exports written the way real spreadsheets and dealer systems write them (Excel on Windows and Mac in
//! US, French and German locales, LibreOffice, Google Sheets, PowerShell), each uploaded through the
//! binary against the mock and checked value by value: read right, or refused before any call.

use rrfeed::wire::Field;

use crate::helpers::*;

fn held(server: &MockServer) -> Vec<rrfeed::wire::CustomerRecord> {
    server.mock.store(STORE_ID).unwrap().customers()
}

/// Uploads `bytes` and returns the stored rows; the upload must succeed.
fn uploads(
    bytes: &[u8],
    suffix: &str,
    extra: &[&str],
) -> (Outcome, Vec<rrfeed::wire::CustomerRecord>) {
    let file = file_with(bytes, suffix);
    let server = MockServer::start("");
    let out = upload(&server, file.path(), extra);
    assert_eq!(out.code, 0, "{}\n{}", out.json, out.stderr);
    let rows = held(&server);
    (out, rows)
}

/// Uploads `bytes`, which must be refused with exit 65 before any call; returns the error.
fn refused(bytes: &[u8], suffix: &str, extra: &[&str]) -> String {
    let file = file_with(bytes, suffix);
    let server = MockServer::start("");
    let out = upload(&server, file.path(), extra);
    assert_eq!(out.code, 65, "{}\n{}", out.json, out.stderr);
    assert!(server.calls().is_empty(), "no call for a refused export");
    out.json["error"].as_str().unwrap().to_owned()
}

fn birth(row: &rrfeed::wire::CustomerRecord) -> (&str, &str, &str) {
    (
        row.get(Field::BirthMonth).unwrap(),
        row.get(Field::BirthDay).unwrap(),
        row.get(Field::BirthYear).unwrap(),
    )
}

fn warning<'a>(out: &'a Outcome, code: &str) -> &'a serde_json::Value {
    out.json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == code)
        .unwrap_or_else(|| panic!("no {code} warning in {}", out.json))
}

#[test]
fn german_excel_dotted_dates_are_day_first() {
    let text = "ID;Vorname;First Name;Birth Date\r\n1;x;Anna;02.11.1980\r\n2;x;Ben;05.06.1975\r\n";
    let (_, rows) = uploads(text.as_bytes(), ".csv", &[]);
    assert_eq!(birth(&rows[0]), ("11", "2", "1980"));
    assert_eq!(birth(&rows[1]), ("6", "5", "1975"));
}

#[test]
fn a_french_column_proves_day_first_after_dates_that_could_be_either() {
    let text = "ID;First Name;DOB\r\n1;Anne;02/11/1980\r\n2;Bea;03/04/1990\r\n3;Cyr;25/12/1975\r\n4;Dan;01/02/2000\r\n";
    let (out, rows) = uploads(text.as_bytes(), ".csv", &["--delimiter", ";"]);
    assert_eq!(birth(&rows[0]), ("11", "2", "1980"));
    assert_eq!(birth(&rows[1]), ("4", "3", "1990"));
    assert_eq!(birth(&rows[2]), ("12", "25", "1975"));
    assert_eq!(birth(&rows[3]), ("2", "1", "2000"));
    assert_eq!(out.json["rows"], 4);
}

#[test]
fn us_dates_that_prove_month_first_are_read_month_first() {
    let text = "ID,First Name,DOB\n1,Al,02/11/1980\n2,Bo,12/25/1975\n";
    let (_, rows) = uploads(text.as_bytes(), ".csv", &[]);
    assert_eq!(birth(&rows[0]), ("2", "11", "1980"));
    assert_eq!(birth(&rows[1]), ("12", "25", "1975"));
}

#[test]
fn a_date_column_that_never_shows_its_order_is_refused_until_it_is_given() {
    let text = "ID,First Name,DOB\n1,Al,02/11/1980\n2,Bo,05/06/1975\n3,Cy,\n";
    let error = refused(text.as_bytes(), ".csv", &[]);
    assert!(error.contains("\"DOB\""), "{error}");
    assert!(
        error.contains("\"02/11/1980\"") && error.contains("\"05/06/1975\""),
        "{error}"
    );
    assert!(
        error.contains("--date-order") && error.contains("date_order"),
        "{error}"
    );
    let (_, rows) = uploads(text.as_bytes(), ".csv", &["--date-order", "dmy"]);
    assert_eq!(birth(&rows[0]), ("11", "2", "1980"));
    let (_, rows) = uploads(text.as_bytes(), ".csv", &["--date-order", "mdy"]);
    assert_eq!(birth(&rows[0]), ("2", "11", "1980"));
}

#[test]
fn a_date_column_mixing_both_orders_is_refused() {
    let text = "ID,First Name,DOB\n1,Al,25/12/1980\n2,Bo,12/25/1975\n";
    let error = refused(text.as_bytes(), ".csv", &[]);
    assert!(
        error.contains("line 2") && error.contains("line 3"),
        "{error}"
    );
    // With the order given, the value that contradicts it is emptied with a warning.
    let (out, rows) = uploads(text.as_bytes(), ".csv", &["--date-order", "mdy"]);
    assert_eq!(birth(&rows[0]), ("", "", ""));
    assert_eq!(birth(&rows[1]), ("12", "25", "1975"));
    assert_eq!(warning(&out, "invalid-birth-date")["count"], 1);
}

#[test]
fn rows_of_only_delimiters_below_the_data_are_skipped_with_a_warning() {
    let text = "ID,First Name,Email\r\n1,Ann,a@b.co\r\n,,\r\n , ,\r\n,,\r\n";
    let (out, rows) = uploads(text.as_bytes(), ".csv", &[]);
    assert_eq!(rows.len(), 1);
    let w = warning(&out, "blank-row");
    assert_eq!(w["count"], 3);
    assert!(w["example"].as_str().unwrap().starts_with("line 3"), "{w}");
}

#[test]
fn the_exact_column_wins_and_the_other_fills_its_empty_rows() {
    let text = "ID,Phone,Home Phone,Email,E-mail\n1,111,222,a@b.co,x@y.co\n2,333,,,c@d.co\n";
    let (out, rows) = uploads(text.as_bytes(), ".csv", &[]);
    assert_eq!(rows[0].get(Field::HomePhone), Some("222"));
    assert_eq!(rows[1].get(Field::HomePhone), Some("333"));
    assert_eq!(rows[0].get(Field::Email), Some("a@b.co"));
    assert_eq!(rows[1].get(Field::Email), Some("c@d.co"));
    let w = warning(&out, "duplicate-columns");
    assert_eq!(w["count"], 2);
    assert!(
        w["example"]
            .as_str()
            .unwrap()
            .contains("\"Home Phone\" is used"),
        "{w}"
    );
}

#[test]
fn a_byte_windows_1252_leaves_undefined_is_refused_naming_line_and_column() {
    let error = refused(b"ID,First Name\r\n1,Ren\xE9e\r\n2,Bo\x81b\r\n", ".csv", &[]);
    assert!(error.contains(":3: column 5: byte 0x81"), "{error}");
}

#[test]
fn excel_for_mac_csv_is_refused_unless_read_as_mac_roman() {
    let bytes = b"ID,First Name,Last Name\r1,Jos\x8E,Mu\x96oz\r2,Ann,Lee\r";
    let error = refused(bytes, ".csv", &[]);
    assert!(error.contains("--encoding macintosh"), "{error}");
    let (out, rows) = uploads(bytes, ".csv", &["--encoding", "macintosh"]);
    assert_eq!(out.json["encoding"], "macintosh");
    assert_eq!(rows[0].get(Field::FirstName), Some("José"));
    assert_eq!(rows[0].get(Field::LastName), Some("Muñoz"));
    assert_eq!(rows[1].get(Field::LastName), Some("Lee"));
}

#[test]
fn a_ragged_row_in_a_cr_only_file_names_its_line() {
    let bytes = b"ID,First Name\r1,Ann\r2,Bo,x\r";
    let error = refused(bytes, ".csv", &["--encoding", "utf-8"]);
    assert!(error.contains(":3: ragged row"), "{error}");
}

#[test]
fn windows_1252_with_semicolons_is_split_on_the_decoded_header() {
    let (_, rows) = uploads(b"ID;First Name;City\r\n1;Ren\xE9e;K\xF6ln\r\n", ".csv", &[]);
    assert_eq!(rows[0].get(Field::FirstName), Some("Renée"));
    assert_eq!(rows[0].get(Field::City), Some("Köln"));
}

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    let mut out = if big_endian {
        vec![0xFE, 0xFF]
    } else {
        vec![0xFF, 0xFE]
    };
    for unit in text.encode_utf16() {
        out.extend(if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    out
}

#[test]
fn excel_unicode_text_utf16_with_tabs_is_read() {
    let text = "ID\tFirst Name\tCity\r\n1\tZoë\tMünchen\r\n2\t\"Ann\"\tOslo\r\n";
    for big_endian in [false, true] {
        let (out, rows) = uploads(&utf16(text, big_endian), ".txt", &[]);
        assert_eq!(
            out.json["encoding"],
            if big_endian { "utf-16be" } else { "utf-16le" }
        );
        assert_eq!(rows[0].get(Field::FirstName), Some("Zoë"));
        assert_eq!(rows[0].get(Field::City), Some("München"));
        assert_eq!(rows[1].get(Field::FirstName), Some("Ann"));
    }
}

#[test]
fn excels_sep_line_sets_the_delimiter_and_is_skipped() {
    let (_, rows) = uploads(
        b"sep=;\r\nID;First Name;Last Name\r\n1;Ann;Lee, Jr\r\n",
        ".csv",
        &[],
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get(Field::LastName), Some("Lee, Jr"));
    let error = refused(b"sep=;\nID;First Name\n1;Ann\n2;Bo;x\n", ".csv", &[]);
    assert!(error.contains(":4: ragged row"), "{error}");
}

#[test]
fn powershell_exports_read_with_or_without_the_type_line() {
    let ps51 = "#TYPE System.Management.Automation.PSCustomObject\r\n\"ID\",\"First Name\",\"Email\"\r\n\"1\",\"Ann\",\"A@B.CO\"\r\n";
    let (_, rows) = uploads(ps51.as_bytes(), ".csv", &[]);
    assert_eq!(rows[0].get(Field::Email), Some("a@b.co"));
    let ps7 = "\u{feff}\"ID\",\"First Name\",\"Email\"\r\n\"1\",\"Ann\",\"\"\r\n";
    let (_, rows) = uploads(ps7.as_bytes(), ".csv", &[]);
    assert_eq!(rows[0].get(Field::FirstName), Some("Ann"));
}

#[test]
fn a_dos_ctrl_z_at_the_end_is_ignored() {
    let (_, rows) = uploads(b"ID,First Name\r\n1,Ann\r\n2,Bo\r\n\x1A", ".csv", &[]);
    assert_eq!(rows.len(), 2);
}

#[test]
fn google_sheets_and_libreoffice_quoting_is_read_field_by_field() {
    // Google Sheets: LF, no final line break. LibreOffice: every field quoted.
    let sheets =
        "ID,First Name,Address\n1,Ann,\"12 \"\"Oak\"\" St, Apt 4\"\n2,Bo,\"line 1\nline 2\"";
    let (_, rows) = uploads(sheets.as_bytes(), ".csv", &[]);
    assert_eq!(rows[0].get(Field::Address), Some("12 \"Oak\" St, Apt 4"));
    assert_eq!(rows[1].get(Field::Address), Some("line 1 line 2"));
    let libre = "\"ID\",\"First Name\",\"City\"\n\"1\",\"Ann\",\"\"\n\"2\",\"\",\"Oslo\"\n";
    let (_, rows) = uploads(libre.as_bytes(), ".csv", &[]);
    assert_eq!(rows[1].get(Field::City), Some("Oslo"));
    assert_eq!(rows[1].get(Field::FirstName), Some(""));
}

#[test]
fn json_wrapped_in_an_object_is_read_from_its_only_array_of_objects() {
    let text = r#"{"exported": "2026-11-30", "count": 2, "customers": [{"ID": "1", "First Name": "Ann"}, {"ID": "2", "First Name": "Bo"}]}"#;
    let (_, rows) = uploads(text.as_bytes(), ".json", &[]);
    assert_eq!(rows[1].get(Field::FirstName), Some("Bo"));
    let two = r#"{"data": [{"ID": "1"}], "stores": [{"ID": "S1"}]}"#;
    let error = refused(two.as_bytes(), ".json", &[]);
    assert!(error.contains("\"data\" and \"stores\""), "{error}");
    let (_, rows) = uploads(two.as_bytes(), ".json", &["--json-key", "data"]);
    assert_eq!(rows.len(), 1);
}

#[test]
fn a_file_of_nul_bytes_or_an_endless_header_is_refused_with_a_short_message() {
    let nul = vec![0u8; 3 << 20];
    let error = refused(&nul, ".csv", &[]);
    assert!(
        error.contains(":1: a record (or the header) is longer than 1 MiB"),
        "{error}"
    );
    let header = format!("ID,{}\n1,x\n", "Notes ".repeat(400_000));
    let error = refused(header.as_bytes(), ".csv", &[]);
    assert!(error.len() < 600, "{} characters", error.len());
}

#[test]
fn an_export_with_no_id_column_is_refused_naming_its_headers() {
    let error = refused(b"First Name,Email\nAnn,a@b.co\n", ".csv", &[]);
    assert!(error.contains("PartnerCustomerID"), "{error}");
    assert!(error.contains("First Name, Email"), "{error}");
    assert!(error.contains("allow_missing_id"), "{error}");
}

#[test]
fn a_repeated_id_is_named_with_both_lines_and_written_to_the_rejects_file() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.csv");
    let text = "ID,First Name,Email\nC10150,Ann,none\nC10151,Bo,b@c.co\nC10150,Cy,c@d.co\n";
    let (out, _) = uploads(
        text.as_bytes(),
        ".csv",
        &["--rejects", rejects.to_str().unwrap()],
    );
    assert_eq!(
        warning(&out, "duplicate-customer-id")["example"],
        "PartnerCustomerID C10150 on lines 2 and 4"
    );
    let written = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        written.starts_with("line,record,field,value,reason\n"),
        "{written}"
    );
    assert!(written.contains("2,1,CustomerEmail,none,"), "{written}");
    assert!(
        written.contains("4,,PartnerCustomerID,C10150,repeats the PartnerCustomerID of line 2"),
        "{written}"
    );
}
