//! Contract tests: the raw JSON the binary sends, compared key for key with the vendor's example bodies
//! (copied from the seed documents into `tests/fixtures/`), and the vendor's sample answers read by our
//! wire types.

use serde_json::Value;

use crate::helpers::*;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The kind of a JSON value, for comparing shapes.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Asserts that `ours` has exactly `theirs`' keys, each of the same JSON kind, recursively; arrays are
/// compared element by element against the example's first element.
fn assert_same_shape(ours: &Value, theirs: &Value, path: &str) {
    assert_eq!(kind(ours), kind(theirs), "{path}: {ours} vs {theirs}");
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let mut ka: Vec<&String> = a.keys().collect();
            let mut kb: Vec<&String> = b.keys().collect();
            ka.sort();
            kb.sort();
            assert_eq!(ka, kb, "{path}: keys differ");
            for (k, v) in a {
                assert_same_shape(v, &b[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, v) in a.iter().enumerate() {
                assert_same_shape(v, &b[0], &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}

fn sent_bodies(server: &MockServer, path: &str) -> Vec<Value> {
    server
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == path)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn upload_example() -> MockServer {
    let server = MockServer::start("");
    let out = upload(&server, std::path::Path::new("examples/customers.csv"), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    server
}

#[test]
fn upload_bodies_match_the_vendors_example_key_for_key() {
    let server = upload_example();
    let example = fixture("seed_uploadcustomerprofile_body.json");
    let bodies = sent_bodies(&server, "/uploadcustomerprofile");
    assert!(!bodies.is_empty());
    for body in &bodies {
        assert_same_shape(body, &example, "body");
        let summary = &body["transactionsummary"];
        let rows = body["rows"].as_array().unwrap().len();
        assert_eq!(summary["totalrowssent"], rows.to_string());
        assert_eq!(summary["feedtype"], "C");
        assert_eq!(summary["RRStoreID"], STORE_ID);
        assert_eq!(summary["partnerstoreid"], "DEMO-1");
    }
}

#[test]
fn end_bodies_match_the_vendors_example_key_for_key() {
    let server = upload_example();
    let bodies = sent_bodies(&server, "/endtransaction");
    assert_eq!(bodies.len(), 1);
    assert_same_shape(
        &bodies[0],
        &fixture("seed_endtransaction_body.json"),
        "body",
    );
}

#[test]
fn begin_and_ready_bodies_carry_the_fields_spec_lists() {
    let server = upload_example();
    let ready = sent_bodies(&server, "/readyfeedupload");
    assert_eq!(ready, [serde_json::json!({"feedtype": "C"})]);
    let begin = &sent_bodies(&server, "/begintransaction")[0];
    let expected = serde_json::json!({"transactionsummary": {
        "partnertransactionid": "uuid", "partnerstoreid": "DEMO-1", "RRStoreID": "1001",
        "feedtype": "C", "startdate": null, "enddate": null, "expectedtotal": "300"}});
    assert_same_shape(begin, &expected, "body");
    assert_eq!(begin["transactionsummary"]["expectedtotal"], "300");
}

#[test]
fn every_call_carries_the_documented_headers_and_json_content_type() {
    let server = upload_example();
    for request in server.requests.lock().unwrap().iter() {
        let names: Vec<&str> = request.headers.iter().map(|(k, _)| k.as_str()).collect();
        for needed in [
            "partnerapikey",
            "rrstoreapikey",
            "rrstoreid",
            "content-type",
        ] {
            assert!(
                names.contains(&needed),
                "{} lacks {needed}: {names:?}",
                request.path
            );
        }
        let has_tx = names.contains(&"transactionid");
        let needs_tx = matches!(
            request.path.as_str(),
            "/uploadcustomerprofile" | "/endtransaction"
        );
        assert_eq!(has_tx, needs_tx, "{}", request.path);
    }
}

#[test]
fn the_vendors_sample_answers_parse() {
    use rrfeed::wire::{EndResults, Reply, UploadResults, parse_reply};
    let upload = serde_json::to_vec(&fixture("seed_uploadcustomerprofile_success.json")).unwrap();
    assert!(matches!(
        parse_reply::<UploadResults>(&upload),
        Ok(Reply::Success(_))
    ));
    let end = serde_json::to_vec(&fixture("seed_endtransaction_success.json")).unwrap();
    assert!(matches!(
        parse_reply::<EndResults>(&end),
        Ok(Reply::Success(_))
    ));
}
