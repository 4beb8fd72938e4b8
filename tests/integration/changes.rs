//! The change report and the churn guard through the binary: what changed since the store's last
//! successful upload, counted, listed with `--changes`, shown by `history`, and a night that would
//! swap the store's customers refused before any call.

use std::path::Path;

use serde_json::Value;

use crate::helpers::*;

/// A CSV export of customers `C000`… with `edit` applied to each (id, email, city) before writing.
fn export(
    ids: impl Iterator<Item = String>,
    edit: impl Fn(&str) -> (String, String),
) -> tempfile::NamedTempFile {
    let mut text = String::from("Customer ID,First Name,Email,City\n");
    for id in ids {
        let (email, city) = edit(&id);
        text.push_str(&format!("{id},Name {id},{email},{city}\n"));
    }
    file_with(text.as_bytes(), ".csv")
}

fn hundred() -> impl Iterator<Item = String> {
    (0..100).map(|i| format!("C{i:03}"))
}

fn plain(id: &str) -> (String, String) {
    (format!("{}@example.com", id.to_lowercase()), "Tampa".into())
}

fn night(server: &MockServer, state: &Path, file: &Path, extra: &[&str]) -> (i32, Value) {
    let output = rrfeed(server, state)
        .args([
            "upload",
            "--json",
            "--retry-delay",
            "10ms",
            "--retries",
            "0",
            "--timeout",
            "2s",
        ])
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    (output.status.code().unwrap(), json_of(&output))
}

/// A night with `--changes`: its exit code, its summary and the report it wrote.
fn reported_night(
    server: &MockServer,
    state: &Path,
    file: &Path,
    extra: &[&str],
) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("changes.csv");
    let mut args = extra.to_vec();
    args.extend(["--changes", report.to_str().unwrap()]);
    let (code, json) = night(server, state, file, &args);
    (code, json, std::fs::read_to_string(&report).unwrap())
}

/// A mock and a state directory after a first night of [`hundred`] customers, and the calls it took.
fn first_night() -> (MockServer, tempfile::TempDir, usize) {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let first = export(hundred(), plain);
    assert_eq!(night(&server, state.path(), first.path(), &[]).0, 0);
    let calls = server.calls().len();
    (server, state, calls)
}

fn counts(added: u64, removed: u64, changed: u64, unchanged: u64) -> Value {
    serde_json::json!({"added": added, "removed": removed, "changed": changed, "unchanged": unchanged})
}

#[test]
fn a_night_reports_exactly_the_customers_added_removed_and_changed() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let first = export(hundred(), plain);
    let (code, json) = night(&server, state.path(), first.path(), &[]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        json["changes"],
        Value::Null,
        "a first upload has nothing to compare with"
    );

    // Tonight: C000–C009 gone, N0–N4 new, C010–C016 moved to another email.
    let ids = hundred().skip(10).chain((0..5).map(|i| format!("N{i}")));
    let second = export(ids, |id| match id {
        "C010" | "C011" | "C012" | "C013" | "C014" | "C015" | "C016" => (
            format!("new.{}@example.com", id.to_lowercase()),
            "Tampa".into(),
        ),
        _ => plain(id),
    });
    let (code, json, text) = reported_night(&server, state.path(), second.path(), &[]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["changes"], counts(5, 10, 7, 83));
    assert_eq!(server.mock.store(STORE_ID).unwrap().len(), 95);

    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.remove(0), "change,PartnerCustomerID,fields");
    let mut expected: Vec<String> = (0..10).map(|i| format!("removed,C{i:03},")).collect();
    expected.extend((10..17).map(|i| format!("changed,C{i:03},CustomerEmail")));
    expected.extend((0..5).map(|i| format!("added,N{i},")));
    expected.sort();
    lines.sort_unstable();
    assert_eq!(lines, expected);
    assert!(
        !text.contains("example.com"),
        "no values unless --changes-values"
    );

    let history = rrfeed(&server, state.path())
        .args(["history", "--json"])
        .output()
        .unwrap();
    let runs = json_of(&history);
    assert_eq!(runs[0]["changes"], counts(5, 10, 7, 83));
    assert_eq!(runs[1]["changes"], Value::Null);
    let table = rrfeed(&server, state.path())
        .arg("history")
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("+5 -10 ~7 =83"), "{table}");

    // The same export again: nothing changed since tonight.
    let (code, json) = night(&server, state.path(), second.path(), &["--dry-run"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["changes"], counts(0, 0, 0, 95));
}

#[test]
fn changes_values_shows_the_new_values_and_validate_counts_against_the_same_state() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let first = export(hundred(), plain);
    assert_eq!(night(&server, state.path(), first.path(), &[]).0, 0);
    let second = export(hundred(), |id| match id {
        "C042" => ("c042@example.com".into(), "Orlando".into()),
        _ => plain(id),
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rrfeed.toml"),
        format!(
            "partner_api_key = {{ env = \"RRFEED_PARTNER_API_KEY\" }}\n[[store]]\nname = \"north\"\n\
             store_id = \"{STORE_ID}\"\nstore_api_key = {{ env = \"RRFEED_STORE_API_KEY\" }}\n"
        ),
    )
    .unwrap();
    let report = dir.path().join("changes.csv");
    let output = rrfeed(&server, state.path())
        .current_dir(dir.path())
        .args([
            "validate",
            "--json",
            "--store",
            "north",
            "--changes-values",
            "--changes",
        ])
        .arg(&report)
        .arg(second.path())
        .output()
        .unwrap();
    let json = json_of(&output);
    assert_eq!(output.status.code(), Some(0), "{json}");
    assert_eq!(json["changes"], counts(0, 0, 1, 99));
    let text = std::fs::read_to_string(&report).unwrap();
    assert_eq!(
        text,
        "change,PartnerCustomerID,fields,values\nchanged,C042,CustomerCity,\"{\"\"CustomerCity\"\":\"\"Orlando\"\"}\"\n"
    );
    assert_eq!(
        server.mock.store(STORE_ID).unwrap().len(),
        100,
        "validate sends nothing"
    );
}

#[test]
fn a_same_size_export_with_most_ids_new_is_refused_before_any_call_unless_forced() {
    let (server, state, calls) = first_night();

    // Another store's export, or a DMS that renumbered: 60 of 100 ids are new.
    let renumbered = export(
        (0..100).map(|i| {
            if i < 60 {
                format!("X{i:03}")
            } else {
                format!("C{i:03}")
            }
        }),
        plain,
    );
    let (code, json) = night(&server, state.path(), renumbered.path(), &[]);
    assert_eq!(code, 65, "{json}");
    assert_eq!(json["state"], "refused");
    assert_eq!(json["changes"], counts(60, 60, 0, 40));
    let error = json["error"].as_str().unwrap();
    assert!(error.contains("60 of the 100 customers"), "{error}");
    assert!(error.contains("C000, C001, C002"), "{error}");
    assert_eq!(server.calls().len(), calls, "no call at the mock");
    let (code, _) = night(&server, state.path(), renumbered.path(), &["--dry-run"]);
    assert_eq!(code, 65, "a dry run is refused alike");

    let (code, json) = night(&server, state.path(), renumbered.path(), &["--force"]);
    assert_eq!(code, 0, "{json}");
    let ids: Vec<String> = server
        .mock
        .store(STORE_ID)
        .unwrap()
        .customers()
        .iter()
        .map(|c| {
            c.get(rrfeed::wire::Field::PartnerCustomerId)
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(ids.contains(&"X000".to_owned()));
    // The forced night is now what the next one compares with.
    let (_, json) = night(&server, state.path(), renumbered.path(), &["--dry-run"]);
    assert_eq!(json["changes"], counts(0, 0, 0, 100));
}

#[test]
fn a_failed_or_unknown_upload_does_not_replace_the_remembered_customers() {
    // The second night's post is refused, the third night's end gets no answer.
    let server = MockServer::start("upload#2:status=400; end#2:drop");
    let state = tempfile::tempdir().unwrap();
    let first = export(hundred(), plain);
    assert_eq!(night(&server, state.path(), first.path(), &[]).0, 0);
    let other = export(hundred().skip(20), plain);
    let (code, json) = night(&server, state.path(), other.path(), &[]);
    assert_eq!(
        (code, json["state"].as_str()),
        (76, Some("failed")),
        "{json}"
    );
    let (code, json) = night(&server, state.path(), other.path(), &[]);
    assert_eq!(json["state"], "unknown", "{code} {json}");
    assert_eq!(
        json["changes"],
        counts(0, 20, 0, 80),
        "still compared with the first night"
    );
    let (code, json) = night(&server, state.path(), first.path(), &["--dry-run"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["changes"], counts(0, 0, 0, 100));
}

#[test]
fn on_shared_postgresql_state_another_host_compares_with_the_first_hosts_upload() {
    let Some(url) = rrfeed::state::testing::fresh_database_url("changes") else {
        return;
    };
    let server = MockServer::start("");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host = |state: &Path, file: &Path, extra: &[&str]| -> (i32, Value) {
        let output = rrfeed(&server, state)
            .env("RRFEED_STATE_URL", &url)
            .args(["upload", "--json"])
            .arg(file)
            .args(extra)
            .output()
            .unwrap();
        (output.status.code().unwrap(), json_of(&output))
    };
    // 30,000 customers: their remembered state spans two of the table's 1 MiB parts.
    let full = csv_rows(30_000);
    let (code, json) = host(a.path(), full.path(), &[]);
    assert_eq!(code, 0, "{json}");
    assert!(
        !a.path().join("known").exists(),
        "remembered in PostgreSQL, not on the host"
    );

    let fewer = csv_rows(29_000);
    let (code, json) = host(b.path(), fewer.path(), &["--dry-run"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["changes"], counts(0, 1000, 0, 29_000));

    let swapped = export((0..30_000).map(|i| format!("Z{i}")), plain);
    let (code, json) = host(b.path(), swapped.path(), &[]);
    assert_eq!(code, 65, "{json}");
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("30000 of the 30000"),
        "{json}"
    );
    assert_eq!(server.mock.store(STORE_ID).unwrap().len(), 30_000);
}

#[test]
fn a_night_refused_for_a_repeated_id_still_leaves_a_whole_report_and_makes_no_call() {
    let (server, state, calls) = first_night();

    // Tonight C050 comes twice; in id order, C051–C099 and the new N0 come after it.
    let ids = hundred()
        .chain(["C050".to_owned(), "N0".to_owned()])
        .filter(|id| id != "C000");
    let second = export(ids, plain);
    let (code, json, text) = reported_night(&server, state.path(), second.path(), &["--strict"]);
    assert_eq!(code, 65, "{json}");
    let error = json["error"].as_str().unwrap();
    assert!(
        error.contains("PartnerCustomerID C050 repeats that of line 51"),
        "{error}"
    );
    assert_eq!(server.calls().len(), calls, "no call for a refused night");
    assert_eq!(
        text, "change,PartnerCustomerID,fields\nremoved,C000,\nadded,N0,\n",
        "the whole comparison, past the repeated id"
    );
}
