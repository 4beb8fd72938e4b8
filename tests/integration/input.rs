//! Messy exports through the real binary: encodings, BOMs, quoted newlines, ragged rows, strict mode and
//! the rejects file. A broken input fails before any call, naming file, line and column.

use rrfeed::wire::Field;

use crate::helpers::*;

fn held(server: &MockServer) -> Vec<rrfeed::wire::CustomerRecord> {
    server.mock.store(STORE_ID).unwrap().customers()
}

#[test]
fn windows_1252_with_quoted_newlines_is_decoded() {
    let bytes = b"ID,First Name,Last Name,Address,City\r\n1,Zo\xEB,M\xFCller,\"12 Main St\r\nApt 4\",Caf\xE9 Town\r\n2,Ren\xE9e,O'Brien,\"1, Elm\",X\r\n";
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
    let text =
        "\u{feff}First Name,Email,Address,ID\r\nJosé,JOSE@EXAMPLE.COM,\"Line 1\nLine 2\",1\r\n";
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
    let file = file_with(b"ID,First Name,Gender\n1,Ann,F\n2,Bob,Unknown\n", ".csv");
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
    let file = file_with(b"ID;First Name;Last Name\n1;Ann;Lee\n", ".csv");
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

/// What a corpus file must do: upload with a value checked, or fail before any call naming the line
/// (and the column where one is to blame).
enum Expect {
    Uploads {
        rows: usize,
        field: Field,
        row: usize,
        value: &'static str,
    },
    Fails {
        line: u64,
        column: Option<&'static str>,
    },
}

#[test]
fn a_corpus_of_csv_edge_cases_uploads_correctly_or_fails_naming_file_line_and_column() {
    let huge = format!("ID,Address\n1,\"{}\"\n2,Short St\n", "x".repeat(10 << 20));
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "doubled quotes",
            b"ID,Last Name\n1,\"O\"\"Brien\"\n".to_vec(),
            Expect::Uploads {
                rows: 1,
                field: Field::LastName,
                row: 0,
                value: "O\"Brien",
            },
        ),
        (
            "a quote inside an unquoted value",
            b"ID,Last Name\n1,O\"Brien\n".to_vec(),
            Expect::Uploads {
                rows: 1,
                field: Field::LastName,
                row: 0,
                value: "O\"Brien",
            },
        ),
        (
            "embedded newline and quotes",
            b"ID,Address\n1,\"12 \"\"Main\"\"\nSt\"\n".to_vec(),
            Expect::Uploads {
                rows: 1,
                field: Field::Address,
                row: 0,
                value: "12 \"Main\" St",
            },
        ),
        (
            "CRLF",
            b"ID,City\r\n1,Oak\r\n2,Elm\r\n".to_vec(),
            Expect::Uploads {
                rows: 2,
                field: Field::City,
                row: 1,
                value: "Elm",
            },
        ),
        (
            "blank lines",
            b"ID,City\n\n1,Oak\n\n\n2,Elm\n\n".to_vec(),
            Expect::Uploads {
                rows: 2,
                field: Field::City,
                row: 1,
                value: "Elm",
            },
        ),
        (
            "a trailing delimiter",
            b"ID,City\n1,Oak,\n2,Elm,\n".to_vec(),
            Expect::Uploads {
                rows: 2,
                field: Field::City,
                row: 0,
                value: "Oak",
            },
        ),
        (
            "a 10 MB field",
            huge.into_bytes(),
            Expect::Fails {
                line: 2,
                column: None,
            },
        ),
        (
            "a NUL byte",
            b"ID,City\n1,Oak\x00Creek\n".to_vec(),
            Expect::Uploads {
                rows: 1,
                field: Field::City,
                row: 0,
                value: "Oak Creek",
            },
        ),
        (
            "a BOM",
            b"\xEF\xBB\xBFID,City\n1,Oak\n".to_vec(),
            Expect::Uploads {
                rows: 1,
                field: Field::PartnerCustomerId,
                row: 0,
                value: "1",
            },
        ),
        (
            "Windows-1252",
            b"ID,City\n1,Caf\xE9\n".to_vec(),
            Expect::Uploads {
                rows: 1,
                field: Field::City,
                row: 0,
                value: "Café",
            },
        ),
        (
            "a semicolon export",
            b"ID;City\n1;Oak\n".to_vec(),
            Expect::Uploads {
                rows: 1,
                field: Field::City,
                row: 0,
                value: "Oak",
            },
        ),
        (
            "a ragged row",
            b"ID,City\n1,Oak\n2,Elm,X,Y\n".to_vec(),
            Expect::Fails {
                line: 3,
                column: None,
            },
        ),
        (
            "a quote left open",
            b"ID,City\n1,\"Oak\n2,Elm\n".to_vec(),
            Expect::Fails {
                line: 2,
                column: Some("2 (City)"),
            },
        ),
        (
            "UTF-8 mixed with invalid bytes",
            b"ID,City\n1,Zo\xC3\xAB\n2,Caf\xE9\n".to_vec(),
            Expect::Fails {
                line: 3,
                column: None,
            },
        ),
        (
            "invalid UTF-8 in a file forced to UTF-8",
            b"ID,City\n1,Oak\n2,Caf\xE9\n".to_vec(),
            Expect::Fails {
                line: 3,
                column: Some("2 (City)"),
            },
        ),
    ];
    for (name, bytes, expect) in cases {
        let file = file_with(&bytes, ".csv");
        let server = MockServer::start("");
        let extra: &[&str] = if name.contains("forced") {
            &["--encoding", "utf-8"]
        } else {
            &[]
        };
        let out = upload(&server, file.path(), extra);
        match expect {
            Expect::Uploads {
                rows,
                field,
                row,
                value,
            } => {
                assert_eq!(out.code, 0, "{name}: {}", out.stderr);
                let held = held(&server);
                assert_eq!(held.len(), rows, "{name}");
                assert_eq!(held[row].get(field), Some(value), "{name}");
            }
            Expect::Fails { line, column } => {
                assert_eq!(out.code, 65, "{name}: {}", out.stderr);
                assert!(server.calls().is_empty(), "{name}: a call was made");
                let error = out.json["error"].as_str().unwrap();
                let path = file.path().display().to_string();
                assert!(
                    error.starts_with(&format!("{path}:{line}")),
                    "{name}: {error}"
                );
                if let Some(column) = column {
                    assert!(
                        error.contains(&format!("column {column}")),
                        "{name}: {error}"
                    );
                }
            }
        }
    }
}
