//! Uploads that should succeed or be refused before any call, by row count.

use crate::helpers::*;

fn assert_uploaded(rows: usize, chunks: &[usize]) {
    let server = MockServer::start("");
    let file = csv_rows(rows);
    let out = upload(&server, file.path(), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json["state"], "succeeded");
    assert_eq!(out.json["rows"], rows);
    assert_eq!(out.json["chunks"], chunks.len());
    assert_eq!(server.upload_rows(), chunks);
    let mut expected = vec!["readyfeedupload", "begintransaction"];
    expected.extend(chunks.iter().map(|_| "uploadcustomerprofile"));
    expected.push("endtransaction");
    assert_eq!(server.endpoints(), expected);
    assert_eq!(server.store(), (rows, 1));
    assert_eq!(
        out.json["transactionid"],
        server.mock.store(STORE_ID).unwrap().last_import.unwrap()
    );
}

#[test]
fn uploads_one_row() {
    assert_uploaded(1, &[1]);
}

#[test]
fn uploads_999_rows_in_one_post() {
    assert_uploaded(999, &[999]);
}

#[test]
fn uploads_1000_rows_in_one_post() {
    assert_uploaded(1000, &[1000]);
}

#[test]
fn uploads_1001_rows_in_two_posts() {
    assert_uploaded(1001, &[1000, 1]);
}

#[test]
fn uploads_2500_rows_in_three_posts() {
    assert_uploaded(2500, &[1000, 1000, 500]);
}

#[test]
fn refuses_an_empty_export_without_calling_the_server() {
    let server = MockServer::start("");
    let file = csv_rows(0);
    let out = upload(&server, file.path(), &[]);
    assert_eq!(out.code, 65);
    assert_eq!(out.json["state"], "refused");
    assert_eq!(out.json["rows"], 0);
    assert!(
        out.json["error"]
            .as_str()
            .unwrap()
            .contains("--allow-empty")
    );
    assert!(server.calls().is_empty());
}

#[test]
fn an_allowed_empty_export_empties_the_store() {
    let server = MockServer::start("");
    let file = csv_rows(0);
    let out = upload(&server, file.path(), &["--allow-empty"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        server.endpoints(),
        ["readyfeedupload", "begintransaction", "endtransaction"]
    );
    assert_eq!(server.store(), (0, 1));
}

#[test]
fn a_dry_run_plans_without_any_call() {
    let server = MockServer::start("");
    let file = csv_rows(2500);
    let out = upload(&server, file.path(), &["--dry-run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        (out.json["rows"].as_u64(), out.json["chunks"].as_u64()),
        (Some(2500), Some(3))
    );
    assert_eq!(out.json["dry_run"], true);
    assert!(server.calls().is_empty());
}

#[test]
fn stdin_is_read_with_a_dash() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let output = rrfeed(&server, state.path())
        .args(["upload", "-", "--json"])
        .write_stdin("ID,First Name,Email\n1,Ann,ANN@X.COM\n2,Bob,bob@x.com\n")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(server.store(), (2, 1));
    let held = server.mock.store(STORE_ID).unwrap().customers();
    assert_eq!(held[0].get(rrfeed::wire::Field::Email), Some("ann@x.com"));
}

#[test]
fn the_human_summary_names_rows_and_transaction() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let file = csv_rows(3);
    rrfeed(&server, state.path())
        .args(["upload"])
        .arg(file.path())
        .assert()
        .success()
        .stdout(predicates::str::contains("succeeded (exit 0)"))
        .stdout(predicates::str::contains(
            "rows: 3, confirmed in 1 chunk(s)",
        ));
}

#[test]
fn missing_credentials_are_a_configuration_error() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let file = csv_rows(3);
    let output = rrfeed(&server, state.path())
        .env_remove("RRFEED_STORE_API_KEY")
        .args(["upload", "--json"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("RRFEED_STORE_API_KEY")
    );
    assert!(server.calls().is_empty());
}

#[test]
fn plain_http_is_refused_for_remote_hosts() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let file = csv_rows(3);
    let output = rrfeed(&server, state.path())
        .env("RRFEED_API_URL", "http://api.riderrewards.com")
        .args(["upload", "--json"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(json["error"].as_str().unwrap().contains("https://"));
}

#[test]
fn the_examples_upload_to_the_embedded_mock_leaving_no_state() {
    let state = tempfile::tempdir().unwrap();
    for example in ["examples/customers.csv", "examples/customers.json"] {
        let output = assert_cmd::Command::cargo_bin("rrfeed")
            .unwrap()
            .env_clear()
            .env("RRFEED_STATE_DIR", state.path())
            .args(["upload", example, "--mock", "--json"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{example}");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(json["state"], "succeeded");
        assert!(json["rows"].as_u64().unwrap() >= 60);
    }
    let left: Vec<_> = std::fs::read_dir(state.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "a --mock run wrote to the real state dir: {left:?}"
    );
}
