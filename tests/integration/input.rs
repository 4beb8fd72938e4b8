//! Messy exports through the real binary: encodings, BOMs, quoted newlines, ragged rows, strict mode and
//! the rejects file. A broken input fails before any call, naming file, line and column.

use rrfeed::protocol::Field;

use crate::helpers::*;

fn held(server: &MockServer) -> Vec<rrfeed::protocol::CustomerRecord> {
    server.mock.store(STORE_ID).unwrap().customers()
}

#[test]
fn windows_1252_with_quoted_newlines_is_decoded() {
    let bytes = b"First Name,Last Name,Address,City\r\nZo\xEB,M\xFCller,\"12 Main St\r\nApt 4\",Caf\xE9 Town\r\nRen\xE9e,O'Brien,\"1, Elm\",X\r\n";
    let file = file_with(bytes, ".csv");
    let server = MockServer::start("");
    let out = upload(&server, file.path(), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json["encoding"], "windows-1252");
    let rows = held(&server);
    assert_eq!(rows[0].get(Field::FirstName), Some("Zoë"));
    assert_eq!(rows[0].get(Field::LastName), Some("Müller"));
    assert_eq!(rows[0].get(Field::Address), Some("12 Main St Apt 4"));
    assert_eq!(rows[0].get(Field::City), Some("Café Town"));
    assert_eq!(rows[1].get(Field::Address), Some("1, Elm"));
}

#[test]
fn utf8_with_a_bom_and_quoted_newlines_is_read() {
    let text = "\u{feff}First Name,Email,Address\r\nJosé,JOSE@EXAMPLE.COM,\"Line 1\nLine 2\"\r\n";
    let file = file_with(text.as_bytes(), ".csv");
    let server = MockServer::start("");
    let out = upload(&server, file.path(), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json["encoding"], "utf-8");
    let rows = held(&server);
    assert_eq!(rows[0].get(Field::FirstName), Some("José"));
    assert_eq!(rows[0].get(Field::Email), Some("jose@example.com"));
    assert_eq!(rows[0].get(Field::Address), Some("Line 1 Line 2"));
}

#[test]
fn a_ragged_row_fails_naming_file_and_line_before_any_call() {
    let file = file_with(b"First Name,Email\nAnn,a@b.co\nBob,b@c.co,extra\n", ".csv");
    let server = MockServer::start("");
    let out = upload(&server, file.path(), &[]);
    assert_eq!(out.code, 65);
    assert_eq!(out.json["state"], "refused");
    let error = out.json["error"].as_str().unwrap();
    let name = file.path().display().to_string();
    assert!(
        error.starts_with(&format!("{name}:3: ragged row")),
        "{error}"
    );
    assert!(server.calls().is_empty());
}

#[test]
fn utf8_mixed_with_stray_bytes_fails_naming_the_line() {
    let file = file_with(
        "First Name\nZoë\nAnn\nCaf\u{e9}\n"
            .as_bytes()
            .iter()
            .copied()
            .chain(*b"Bad\xE9\n")
            .collect::<Vec<u8>>()
            .as_slice(),
        ".csv",
    );
    let server = MockServer::start("");
    let out = upload(&server, file.path(), &[]);
    assert_eq!(out.code, 65);
    assert!(
        out.json["error"]
            .as_str()
            .unwrap()
            .contains(":5: the file mixes UTF-8")
    );
    assert!(server.calls().is_empty());
}

#[test]
fn strict_mode_refuses_a_value_that_cannot_be_normalized() {
    let file = file_with(b"First Name,Gender\nAnn,F\nBob,Unknown\n", ".csv");
    let server = MockServer::start("");
    let out = upload(&server, file.path(), &["--strict"]);
    assert_eq!(out.code, 65);
    let error = out.json["error"].as_str().unwrap();
    assert!(error.contains(":3: column CustomerGender"), "{error}");
    assert!(server.calls().is_empty());
    // Without --strict the value is dropped with a counted warning and the row uploads.
    let out = upload(&server, file.path(), &[]);
    assert_eq!(out.code, 0);
    assert_eq!(out.json["warnings"][0]["code"], "invalid-gender");
    assert_eq!(out.json["warnings"][0]["count"], 1);
}

#[test]
fn ndjson_uploads_with_numbers_and_booleans_as_text() {
    let text = "{\"PartnerCustomerID\": 7, \"First Name\": \"Ann\", \"Local HOG Member\": true, \"Zip\": 53154}\n\n{\"PartnerCustomerID\": \"8\", \"First Name\": \"Bob\"}\n";
    let file = file_with(text.as_bytes(), ".ndjson");
    let server = MockServer::start("");
    let out = upload(&server, file.path(), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = held(&server);
    assert_eq!(rows[0].get(Field::PartnerCustomerId), Some("7"));
    assert_eq!(rows[0].get(Field::IsLocalHogChapterMember), Some("Y"));
    assert_eq!(rows[0].get(Field::ZipOrPostalCode), Some("53154"));
    assert_eq!(rows.len(), 2);
}

#[test]
fn semicolon_exports_need_no_flag() {
    let file = file_with(b"First Name;Last Name\nAnn;Lee\n", ".csv");
    let server = MockServer::start("");
    let out = upload(&server, file.path(), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(held(&server)[0].get(Field::LastName), Some("Lee"));
}

#[test]
fn validate_writes_each_rejected_value_with_line_field_and_reason() {
    let file = file_with(b"ID,Email,Mobile\n1,a@b.co,555-0100\n2,none,n/a\n", ".csv");
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.csv");
    let output = assert_cmd::Command::cargo_bin("rrfeed")
        .unwrap()
        .env_clear()
        .args(["validate", "--json", "--rejects"])
        .arg(&rejects)
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["rows"], 2);
    assert_eq!(json["rejected_values"], 2);
    let text = std::fs::read_to_string(&rejects).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "line,record,field,value,reason");
    assert!(
        lines[1].starts_with("3,2,CustomerMobilePhone,n/a,"),
        "{text}"
    );
    assert!(lines[2].starts_with("3,2,CustomerEmail,none,"), "{text}");
}

#[test]
fn validate_exits_65_on_a_broken_file() {
    let file = file_with(
        b"[{\"First Name\": \"Ann\"},\n {\"First Name\": }]",
        ".json",
    );
    assert_cmd::Command::cargo_bin("rrfeed")
        .unwrap()
        .env_clear()
        .args(["validate"])
        .arg(file.path())
        .assert()
        .code(65)
        .stdout(predicates::str::contains(":2: column"));
}
