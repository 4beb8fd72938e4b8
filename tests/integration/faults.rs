//! Every fault kind of the mock, through the real binary. Whatever happens, endtransaction is only ever
//! sent for a transaction whose every row was confirmed exactly once, and a failed run leaves the store
//! untouched.

use serde_json::Value;

use crate::helpers::*;

fn run(faults: &str, rows: usize, extra: &[&str]) -> (MockServer, Outcome) {
    let server = MockServer::start(faults);
    let file = csv_rows(rows);
    let out = upload(&server, file.path(), extra);
    (server, out)
}

/// The invariants of a clean failure: the documented exit code, endtransaction never sent, the store
/// untouched at the vendor, and the ledger saying the same as the summary.
fn assert_failed_untouched(server: &MockServer, out: &Outcome, code: i32) {
    assert_eq!(out.code, code, "{}\n{}", out.json, out.stderr);
    assert_eq!(out.json["state"], "failed");
    server.assert_never_ended();
    assert_eq!(server.store(), (0, 0));
    assert!(out.json["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_ledger_agrees(out);
}

/// The ledger recorded the run as the summary reports it.
fn assert_ledger_agrees(out: &Outcome) {
    assert_eq!(out.ledger["state"], out.json["state"], "{}", out.ledger);
    assert_eq!(out.ledger["exit_code"], out.code, "{}", out.ledger);
    assert_eq!(out.ledger["rows"], out.json["rows"], "{}", out.ledger);
    if out.code == 0 {
        assert_eq!(out.ledger["ended_transactionid"], out.json["transactionid"]);
        assert_eq!(out.ledger["confirmed"], out.json["rows"]);
    } else {
        assert_eq!(out.ledger["ended_transactionid"], Value::Null);
    }
}

#[test]
fn a_503_on_a_chunk_is_retried() {
    let (server, out) = run("upload#2:status=503", 2500, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_ledger_agrees(&out);
    assert_eq!(server.upload_rows(), [1000, 1000, 1000, 500]);
    assert_eq!(server.store(), (2500, 1));
}

#[test]
fn a_429_with_retry_after_is_retried() {
    let (server, out) = run("begin#1:status=429,retry-after=1", 10, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_ledger_agrees(&out);
    let begins = server
        .calls()
        .iter()
        .filter(|c| c.endpoint == "begintransaction")
        .count();
    assert_eq!(begins, 2);
    assert!(out.stderr.contains("Retry-After 1s"), "{}", out.stderr);
}

#[test]
fn a_dropped_connection_before_counting_is_retried_without_restart() {
    let (server, out) = run("upload#2:drop", 2500, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_ledger_agrees(&out);
    assert_eq!(out.json["restarts"], 0);
    assert_eq!(server.store(), (2500, 1));
}

#[test]
fn a_timeout_after_the_rows_were_counted_restarts_once_under_a_new_transaction() {
    let (server, out) = run("upload#2:timeout=5s", 2500, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_ledger_agrees(&out);
    assert_eq!(out.json["restarts"], 1);
    let abandoned = out.json["abandoned_transactions"].as_array().unwrap();
    assert_eq!(abandoned.len(), 1);
    assert_ne!(abandoned[0], out.json["transactionid"]);
    // Only the second transaction was ended, and the store holds each row once.
    let ends: Vec<_> = server
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == "endtransaction")
        .collect();
    assert_eq!(ends.len(), 1);
    assert_eq!(
        ends[0].transactionid.as_ref(),
        out.json["transactionid"]
            .as_str()
            .map(String::from)
            .as_ref()
    );
    assert_eq!(server.store(), (2500, 1));
}

#[test]
fn a_duplicate_found_again_after_the_restart_gives_up() {
    let (server, out) = run("upload#2:timeout=5s; upload#5:timeout=5s", 2500, &[]);
    assert_failed_untouched(&server, &out, 76);
    assert_eq!(
        out.json["abandoned_transactions"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn a_wrong_running_total_stops_without_ending() {
    let (server, out) = run("upload#2:running-total=+7", 2500, &[]);
    assert_failed_untouched(&server, &out, 76);
    let error = out.json["error"].as_str().unwrap();
    assert!(
        error.contains("runningtotal is 2007, expected 2000"),
        "{error}"
    );
    assert_eq!(
        out.json["abandoned_transactions"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn transient_failures_that_outlast_the_retries_exit_69() {
    let (server, out) = run("upload#2+:status=503", 2500, &["--retries", "2"]);
    assert_failed_untouched(&server, &out, 69);
    assert!(
        out.json["error"]
            .as_str()
            .unwrap()
            .contains("gave up after 3 attempts")
    );
}

#[test]
fn a_slow_server_beyond_the_timeout_exits_69() {
    let (server, out) = run("ready:delay=5s", 10, &["--retries", "1"]);
    assert_eq!(out.code, 69, "{}", out.stderr);
    assert!(server.endpoints().iter().all(|e| e == "readyfeedupload"));
}

#[test]
fn a_fixed_delay_on_every_call_still_succeeds() {
    let (server, out) = run("*:delay=20ms", 1500, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_ledger_agrees(&out);
    assert_eq!(server.store(), (1500, 1));
}

#[test]
fn wrong_credentials_exit_77_after_the_first_call() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let file = csv_rows(5);
    let output = rrfeed(&server, state.path())
        .env("RRFEED_STORE_API_KEY", "not-the-key")
        .args(["upload", "--json"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(77));
    assert_eq!(server.endpoints(), ["readyfeedupload"]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("Authentication failed"));
    assert!(!stdout.contains("not-the-key"));
}

#[test]
fn authentication_failing_mid_upload_exits_77() {
    let (server, out) = run("upload#2:error=Authentication failed", 2500, &[]);
    assert_failed_untouched(&server, &out, 77);
}

#[test]
fn a_malformed_answer_is_a_protocol_error() {
    let (server, out) = run("upload#1:body=garbage", 10, &[]);
    assert_failed_untouched(&server, &out, 76);
    assert!(out.json["error"].as_str().unwrap().contains("not JSON"));
}

#[test]
fn an_html_error_page_with_status_200_is_a_protocol_error() {
    let (server, out) = run("begin#1:body=html", 10, &[]);
    assert_failed_untouched(&server, &out, 76);
}

#[test]
fn an_undocumented_error_text_is_not_retried() {
    let (server, out) = run("upload#1:error=Store is locked for maintenance", 10, &[]);
    assert_failed_untouched(&server, &out, 76);
    assert_eq!(server.upload_rows().len(), 1);
}

#[test]
fn a_lost_end_answer_is_retried_and_imports_once() {
    let (server, out) = run("end#1:timeout=5s", 1200, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_ledger_agrees(&out);
    let ends = server
        .endpoints()
        .iter()
        .filter(|e| *e == "endtransaction")
        .count();
    assert_eq!(ends, 2);
    assert_eq!(server.store(), (1200, 1));
}

#[test]
fn an_end_that_is_never_answered_is_an_unknown_outcome() {
    let (server, out) = run("end:timeout=5s", 10, &["--retries", "1"]);
    assert_eq!(out.code, 79, "{}", out.stderr);
    assert_eq!(out.json["state"], "unknown");
    assert_ledger_agrees(&out);
    let error = out.json["error"].as_str().unwrap();
    assert!(
        error.contains("may or may not have been replaced"),
        "{error}"
    );
    // The mock did import: exactly the case the message warns about.
    assert_eq!(server.store(), (10, 1));
}

#[test]
fn a_purged_transaction_stops_the_upload() {
    let server = MockServer::start_with(rrfeed::mock::MockConfig {
        purge_after: std::time::Duration::from_millis(300),
        faults: rrfeed::mock::faults::FaultPlan::parse("upload#2:delay=600ms").unwrap(),
        ..rrfeed::mock::MockConfig::demo()
    });
    let file = csv_rows(2500);
    let out = upload(&server, file.path(), &[]);
    assert_failed_untouched(&server, &out, 76);
    assert!(out.json["error"].as_str().unwrap().contains("not found"));
}

/// How many times the server was called at `endpoint`.
fn calls_to(server: &MockServer, endpoint: &str) -> usize {
    server.endpoints().iter().filter(|e| *e == endpoint).count()
}

#[test]
fn http_500_502_and_503_on_each_endpoint_are_retried() {
    for (endpoint, path) in [
        ("ready", "readyfeedupload"),
        ("begin", "begintransaction"),
        ("upload", "uploadcustomerprofile"),
    ] {
        for status in [500, 502, 503] {
            let (server, out) = run(&format!("{endpoint}#1:status={status}"), 1200, &[]);
            assert_eq!(out.code, 0, "{endpoint} {status}: {}", out.stderr);
            assert_ledger_agrees(&out);
            assert_eq!(server.store(), (1200, 1), "{endpoint} {status}");
            let expected = if endpoint == "upload" { 3 } else { 2 };
            assert_eq!(calls_to(&server, path), expected, "{endpoint} {status}");
        }
    }
}

#[test]
fn http_500_502_and_503_on_end_are_an_unknown_outcome_never_a_success() {
    // A gateway may answer 5xx after the vendor imported: rrfeed cannot tell, so it says so.
    for status in [500, 502, 503] {
        let (server, out) = run(&format!("end:status={status}"), 10, &["--retries", "1"]);
        assert_eq!(out.code, 79, "{status}: {}", out.stderr);
        assert_eq!(out.json["state"], "unknown");
        assert_ledger_agrees(&out);
        assert_eq!(calls_to(&server, "endtransaction"), 2);
        assert_eq!(server.store(), (0, 0));
    }
}

#[test]
fn a_connection_reset_after_the_rows_were_counted_restarts_under_a_new_transaction() {
    let (server, out) = run("upload#2:drop-after", 2500, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_ledger_agrees(&out);
    assert_eq!(out.json["restarts"], 1);
    assert_eq!(calls_to(&server, "begintransaction"), 2);
    assert_eq!(calls_to(&server, "endtransaction"), 1);
    assert_eq!(server.store(), (2500, 1));
}

#[test]
fn a_message_other_than_success_is_a_protocol_error() {
    let (server, out) = run("upload#1:message=Queued", 10, &[]);
    assert_failed_untouched(&server, &out, 76);
    let error = out.json["error"].as_str().unwrap();
    assert!(
        error.contains(r#"message is "Queued", not "Success""#),
        "{error}"
    );
}

#[test]
fn a_wrong_transactionid_echo_stops_without_ending() {
    let (server, out) = run("upload#2:transactionid=123456", 2500, &[]);
    assert_failed_untouched(&server, &out, 76);
    let error = out.json["error"].as_str().unwrap();
    assert!(
        error.contains("transactionid is 123456, expected"),
        "{error}"
    );
}

#[test]
fn a_running_total_that_skips_or_doubles_stops_without_ending() {
    for (skew, reported) in [("-1", 1999), ("+1000", 3000)] {
        let (server, out) = run(&format!("upload#2:running-total={skew}"), 2500, &[]);
        assert_failed_untouched(&server, &out, 76);
        let error = out.json["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("runningtotal is {reported}, expected 2000")),
            "{error}"
        );
    }
}

#[test]
fn a_changed_expectedtotal_stops_without_ending() {
    let (server, out) = run("upload#3:expected-total=+1", 2500, &[]);
    assert_failed_untouched(&server, &out, 76);
    let error = out.json["error"].as_str().unwrap();
    assert!(
        error.contains("expectedtotal is 2501, expected 2500"),
        "{error}"
    );
}

#[test]
fn both_documented_row_count_errors_stop_without_ending() {
    let too_many = "There are more than 1000 rows of data within the post";
    let over =
        "Tried to upload 1000, causing the total to go larger then the expected upload total. ";
    for text in [too_many, over] {
        let (server, out) = run(&format!("upload#2:error={text}"), 2500, &[]);
        assert_failed_untouched(&server, &out, 76);
        assert_eq!(calls_to(&server, "uploadcustomerprofile"), 2, "not retried");
    }
}

#[test]
fn authentication_failing_at_each_step_exits_77_untouched() {
    for endpoint in ["ready", "begin", "upload", "end"] {
        let (server, out) = run(
            &format!("{endpoint}#1:error=Authentication failed"),
            10,
            &[],
        );
        assert_eq!(out.code, 77, "{endpoint}: {}", out.stderr);
        assert_ledger_agrees(&out);
        assert_eq!(out.json["state"], "failed");
        assert_eq!(server.store(), (0, 0), "{endpoint}");
    }
}

#[test]
fn an_end_refused_by_the_server_is_a_clean_failure() {
    let (server, out) = run("end#1:error=Transaction totals do not match", 10, &[]);
    assert_eq!(out.code, 76, "{}", out.stderr);
    assert_eq!(out.json["state"], "failed");
    assert_eq!(calls_to(&server, "endtransaction"), 1);
    assert_eq!(server.store(), (0, 0));
}
