//! Fuzz targets, with proptest: the readers (CSV, JSON, NDJSON, workbooks), normalization, the vendor's answers and
//! the webhook's payloads get arbitrary and near-valid input and must never panic; what they accept
//! must hold the documented invariants.
//!
//! `cargo test --test fuzz` runs each target briefly with a fixed seed (so CI is deterministic);
//! `scripts/fuzz SECONDS` runs each for that long with random seeds and prints the executions.

use std::fmt::Debug;
use std::io::Write;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use rrfeed::customer::{Customer, Normalizer, RawCustomer};
use rrfeed::ingest::{IngestError, IngestOptions, RowSink, ingest_with_workers};
use rrfeed::source::{Format, InputSpec, Location};
use rrfeed::warnings::Issue;
use rrfeed::wire::{
    BeginResults, EndResults, FIELD_COUNT, FIELD_NAMES, Field, ReadyFeedResults, UploadResults,
    parse_reply,
};
use serde_json::Value;

/// Runs `test` on values of `strategy`: one round of `cases` with a fixed seed, or rounds with random
/// seeds for `RRFEED_FUZZ_SECONDS` seconds. A panic or a failed check fails the target (shrunk).
fn fuzz<S>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let seconds: f64 = std::env::var("RRFEED_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let start = Instant::now();
    let mut executions = 0u64;
    loop {
        // A runner runs its cases once: each round gets a new one (with a new random seed).
        let mut runner = if seconds > 0.0 {
            TestRunner::new(config.clone())
        } else {
            TestRunner::new_with_rng(
                config.clone(),
                TestRng::deterministic_rng(RngAlgorithm::ChaCha),
            )
        };
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("fuzz target {name} failed: {e}");
        }
        executions += u64::from(cases);
        if start.elapsed().as_secs_f64() >= seconds {
            break;
        }
    }
    eprintln!(
        "fuzz {name}: {executions} executions in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// Bytes made mostly of what CSV cares about (and dates, Excel's `sep=` and PowerShell's `#TYPE`
/// lines, Ctrl-Z, bytes Windows-1252 leaves undefined), sometimes re-encoded as UTF-16 with a BOM.
fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b",;\"\n\r\t |".to_vec()),
        6 => prop::sample::select(b"abcXYZ019@.-+/()".to_vec()),
        1 => prop::sample::select(b"\x1a\x81\x8d\xe9".to_vec()),
        1 => any::<u8>(),
    ];
    let header = prop::sample::select(vec![
        "ID,Email,First Name,Birth Date\n",
        "Customer ID;Mobile;Gender\n",
        "PartnerCustomerID,CustomerCountry,CustomerBirthYear\n",
        "sep=;\r\nID;DOB;Phone;Home Phone\r\n",
        "#TYPE System.Management.Automation.PSCustomObject\n\"ID\",\"DOB\"\n1,02/11/1980\n",
        "ID,DOB\n1,25.12.1980\n2,03/04/1990\n",
        "",
    ]);
    (header, prop::collection::vec(byte, 0..400), 0..4u8).prop_map(|(h, body, utf16)| {
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend(body);
        match utf16 {
            0 => String::from_utf8_lossy(&bytes).encode_utf16().fold(
                vec![0xFF, 0xFE],
                |mut out, unit| {
                    out.extend(unit.to_le_bytes());
                    out
                },
            ),
            _ => bytes,
        }
    })
}

/// Any JSON value, with keys that are often the customer fields.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 40, 6, |inner| {
        let key = prop_oneof![
            3 => prop::sample::select(FIELD_NAMES.to_vec()).prop_map(str::to_owned),
            1 => prop::sample::select(vec!["rows", "customers", "data", "Birth Date"]).prop_map(str::to_owned),
            1 => "[a-zA-Z ]{0,10}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// JSON text: valid values, or valid values cut short or with bytes spliced in.
fn json_text() -> impl Strategy<Value = Vec<u8>> {
    (json_value(), any::<u16>(), any::<u8>(), 0..3u8).prop_map(|(value, at, byte, damage)| {
        let mut text = value.to_string().into_bytes();
        let at = usize::from(at) % (text.len() + 1);
        match damage {
            0 => {}
            1 => text.truncate(at),
            _ => text.insert(at, byte),
        }
        text
    })
}

/// Keeps every row's values, and checks what normalization promises about each.
struct Checked(u64);

impl RowSink for Checked {
    fn accept(&mut self, customer: &Customer, _: Location, _: &[Issue]) -> std::io::Result<()> {
        check_customer(customer).map_err(|e| std::io::Error::other(e.to_string()))?;
        self.0 += 1;
        Ok(())
    }
}

/// What every normalized row holds, whatever came in (README "Input").
fn check_customer(c: &Customer) -> Result<(), TestCaseError> {
    for value in c.values() {
        prop_assert!(
            !value.chars().any(char::is_control),
            "control character in {value:?}"
        );
        prop_assert_eq!(value.trim(), value.as_str());
    }
    for phone in [Field::MobilePhone, Field::HomePhone, Field::WorkPhone] {
        let p = c.get(phone);
        let digits = p.strip_prefix('+').unwrap_or(p);
        prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()), "phone {p:?}");
    }
    prop_assert!(["", "M", "F"].contains(&c.get(Field::Gender)));
    prop_assert!(["", "Y", "N"].contains(&c.get(Field::IsLocalHogChapterMember)));
    let email = c.get(Field::Email);
    prop_assert!(
        !email.bytes().any(|b| b.is_ascii_uppercase()),
        "email {email:?}"
    );
    for (field, lo, hi) in [
        (Field::BirthMonth, 1, 12),
        (Field::BirthDay, 1, 31),
        (Field::HogExpireMonth, 1, 12),
    ] {
        let v = c.get(field);
        prop_assert!(
            v.is_empty() || v.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n)),
            "{v:?}"
        );
    }
    Ok(())
}

/// Reads `bytes` as an export of `format` (one worker or three), checking every row it accepts.
fn read_export(bytes: &[u8], format: Format, workers: usize) -> Result<(), TestCaseError> {
    let suffix = match format {
        Format::Csv => ".csv",
        Format::Json => ".json",
        Format::Ndjson => ".ndjson",
        Format::Xlsx => ".xlsx",
        Format::Xls => ".xls",
        Format::Ods => ".ods",
    };
    let mut file = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    file.write_all(bytes).unwrap();
    let spec = InputSpec {
        path: Some(file.path().to_owned()),
        format,
        encoding: None,
        delimiter: None,
        rules: Default::default(),
        ..InputSpec::default()
    };
    let options = IngestOptions {
        strict: false,
        normalizer: Normalizer::new(jiff::civil::date(2026, 11, 22)),
    };
    let mut sink = Checked(0);
    match ingest_with_workers(&spec, options, &mut sink, workers) {
        Ok(ingested) => prop_assert_eq!(ingested.rows, sink.0),
        Err(IngestError::Input(e)) => {
            prop_assert!(!e.message.is_empty());
            prop_assert!(e.line.is_none_or(|l| l >= 1), "{e}");
        }
        Err(IngestError::Storage { what, source }) => {
            // A row broke a promise of normalization: the sink said so.
            return Err(TestCaseError::fail(format!("{what}: {source}")));
        }
        Err(e @ IngestError::Compare(_)) => {
            return Err(TestCaseError::fail(format!(
                "a read that compares nothing: {e}"
            )));
        }
    }
    Ok(())
}

#[test]
fn csv_reader() {
    fuzz(
        "csv_reader",
        256,
        (csv_bytes(), prop::bool::ANY),
        |(bytes, parallel)| read_export(&bytes, Format::Csv, if parallel { 3 } else { 1 }),
    );
}

#[test]
fn json_reader() {
    let document = prop_oneof![
        json_text(),
        prop::collection::vec(json_value(), 0..6)
            .prop_map(|rows| serde_json::json!({ "rows": rows }).to_string().into_bytes()),
        (prop::collection::vec(json_value(), 0..6), json_value()).prop_map(|(rows, other)| {
            serde_json::json!({ "meta": other, "customers": rows })
                .to_string()
                .into_bytes()
        }),
        prop::collection::vec(json_value(), 0..6)
            .prop_map(|rows| Value::Array(rows).to_string().into_bytes()),
    ];
    fuzz("json_reader", 256, document, |bytes| {
        read_export(&bytes, Format::Json, 1)
    });
}

#[test]
fn ndjson_reader() {
    let lines = prop::collection::vec(json_text(), 0..6).prop_map(|lines| lines.join(&b'\n'));
    fuzz("ndjson_reader", 256, lines, |bytes| {
        read_export(&bytes, Format::Ndjson, 1)
    });
}

/// One cell of a generated workbook.
#[derive(Clone, Debug)]
enum CellValue {
    Text(String),
    Number(f64),
    Bool(bool),
    /// A formula whose cached result is this text (`#N/A`, a number, a word).
    Formula(String),
}

fn cell_value() -> impl Strategy<Value = CellValue> {
    let word = prop_oneof![
        prop::sample::select(vec![
            "ID",
            "First Name",
            "Last",
            "Name",
            "Zip",
            "DOB",
            "Email",
            "Phone",
            "Country",
            "Total",
            "US",
            "02134",
            "a@b.co",
            "03/07/1985",
            " ",
            "",
        ])
        .prop_map(str::to_owned),
        "[ -~\u{e9}\u{0}\t\n]{0,12}",
    ];
    prop_oneof![
        4 => word.clone().prop_map(CellValue::Text),
        2 => prop_oneof![any::<f64>(), (0u32..100_000).prop_map(f64::from), 1.0e9f64..1.0e11]
            .prop_map(CellValue::Number),
        1 => any::<bool>().prop_map(CellValue::Bool),
        1 => prop_oneof![
            prop::sample::select(vec!["#N/A", "#REF!", "#DIV/0!", "42"]).prop_map(str::to_owned),
            word,
        ]
        .prop_map(CellValue::Formula),
    ]
}

/// An `.xlsx` of a few rows of random cells, optionally with bytes of it overwritten.
fn workbook_bytes() -> impl Strategy<Value = Vec<u8>> {
    let cells = prop::collection::vec(((0u32..8), (0u16..6), cell_value()), 0..40);
    let damage = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3);
    (cells, damage).prop_map(|(mut cells, damage)| {
        cells.sort_by_key(|(row, column, _)| (*row, *column));
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        for (row, column, value) in cells {
            let _ = match value {
                CellValue::Text(t) => sheet.write_string(row, column, t),
                CellValue::Number(n) => sheet.write_number(row, column, n),
                CellValue::Bool(b) => sheet.write_boolean(row, column, b),
                CellValue::Formula(result) => sheet.write_formula(
                    row,
                    column,
                    rust_xlsxwriter::Formula::new("=A1").set_result(result),
                ),
            };
        }
        let mut bytes = workbook
            .save_to_buffer()
            .expect("a generated workbook saves");
        for (at, byte) in damage {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        bytes
    })
}

#[test]
fn workbook_reader() {
    fuzz(
        "workbook_reader",
        64,
        (workbook_bytes(), prop::bool::ANY),
        |(bytes, parallel)| read_export(&bytes, Format::Xlsx, if parallel { 3 } else { 1 }),
    );
}

#[test]
fn normalization() {
    let value = prop_oneof![
        ".{0,16}",
        "[ 0-9()+./-]{0,14}",
        "(?i)(male|female|m|f|yes|no|y|n|usa|canada|jan|feb|dec)",
        "[0-9]{1,4}(\\.0)?",
        "[0-9]{1,2}[/-][0-9]{1,2}[/-][0-9]{2,4}",
        "[a-zA-Z.]{1,8}@[a-zA-Z]{1,8}\\.[a-z]{2,3}",
    ];
    let values = prop::collection::vec(prop::option::of(value.clone()), FIELD_COUNT);
    let strategy = (
        values,
        prop::option::of(value.clone()),
        prop::option::of(value),
    );
    let normalizer = Normalizer::new(jiff::civil::date(2026, 11, 22));
    fuzz("normalization", 1024, strategy, |(values, birth, name)| {
        let mut raw = RawCustomer::default();
        for (field, value) in Field::ALL.into_iter().zip(&values) {
            if let Some(v) = value {
                raw.set(field, v);
            }
        }
        raw.birth_date = birth.as_deref();
        raw.full_name = name.as_deref();
        let mut issues = Vec::new();
        let customer = normalizer.parse(&raw, &mut issues);
        check_customer(&customer)
    });
}

#[test]
fn vendor_answers() {
    let body = prop_oneof![
        json_text(),
        json_value().prop_map(|v| serde_json::json!({ "results": v }).to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    fuzz("vendor_answers", 512, body, |bytes| {
        let _ = parse_reply::<ReadyFeedResults>(&bytes);
        let _ = parse_reply::<BeginResults>(&bytes);
        let _ = parse_reply::<UploadResults>(&bytes);
        let _ = parse_reply::<EndResults>(&bytes);
        Ok(())
    });
}

#[test]
fn webhook_payloads() {
    let body = prop_oneof![
        json_text(),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(json_value(), 0..4)
            .prop_map(|rows| serde_json::json!({ "rows": rows }).to_string().into_bytes()),
    ];
    let normalizer = Normalizer::new(jiff::civil::date(2026, 11, 22));
    fuzz("webhook_payloads", 512, body, |bytes| {
        if let Ok(updates) = rrfeed::webhook::payload::parse(&bytes, 1000, &normalizer) {
            for update in updates {
                let customer: serde_json::Map<String, Value> =
                    serde_json::from_str(&update.customer).unwrap();
                prop_assert_eq!(customer.len(), FIELD_COUNT);
                prop_assert!(
                    update.customer_key.starts_with("P:") || update.customer_key.starts_with("R:")
                );
                let _: Value = serde_json::from_str(&update.raw).unwrap();
            }
        }
        Ok(())
    });
}
