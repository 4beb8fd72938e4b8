use super::*;

#[test]
fn counts_are_sent_as_strings_and_read_from_strings_or_numbers() {
    assert_eq!(serde_json::to_string(&Count(1000)).unwrap(), "\"1000\"");
    let a: Count = serde_json::from_str("\"3000\"").unwrap();
    let b: Count = serde_json::from_str("3000").unwrap();
    let c: Count = serde_json::from_str("\" 7 \"").unwrap();
    assert_eq!((a, b, c), (Count(3000), Count(3000), Count(7)));
    assert!(serde_json::from_str::<Count>("\"-1\"").is_err());
    assert!(serde_json::from_str::<Count>("-1").is_err());
    assert!(serde_json::from_str::<Count>("\"ten\"").is_err());
}

#[test]
fn an_error_is_a_failure_whatever_else_the_results_say() {
    let body = br#"{"results": {"error": "Authentication failed", "message": "Success"}}"#;
    let reply = parse_reply::<EndResults>(body).unwrap();
    assert_eq!(reply, Reply::Failure(VendorError::AuthenticationFailed));
}

#[test]
fn a_success_without_the_success_message_is_a_protocol_error() {
    let body = br#"{"results": {"message": "Queued", "transactionid": "1"}}"#;
    let err = parse_reply::<EndResults>(body).unwrap_err();
    assert!(matches!(err, WireError::NotSuccess { .. }));
    let err = parse_reply::<EndResults>(b"<html>502 Bad Gateway</html>").unwrap_err();
    assert!(matches!(err, WireError::NotJson { .. }));
    let err = parse_reply::<EndResults>(br#"{"result": {}}"#).unwrap_err();
    assert!(matches!(err, WireError::NoResults { .. }));
}

#[test]
fn the_vendors_sample_upload_answer_parses() {
    let body = br#"{ "results": { "message": "Success", "transactionid": "1232", "batchid": "1325", "uploadedtotal": "1000", "runningtotal": "3000", "expectedtotal": "4000", "feedtype": "C", "startdate": null, "enddate": null, "RRStoreID": "1215", "partnerstoreid": "154", "partnertransactionid": "154" } }"#;
    let Reply::Success(r) = parse_reply::<UploadResults>(body).unwrap() else {
        panic!("not a success")
    };
    assert_eq!(r.transactionid, Text::from("1232"));
    assert_eq!(
        (r.uploadedtotal, r.runningtotal, r.expectedtotal),
        (Count(1000), Count(3000), Count(4000))
    );
}

#[test]
fn documented_error_texts_are_recognised() {
    assert_eq!(
        VendorError::classify("There are more than 1000 rows of data within the post"),
        VendorError::TooManyRows
    );
    assert_eq!(
        VendorError::classify(&error_text::over_expected(1000)),
        VendorError::OverExpected { rows: Some(1000) }
    );
    assert_eq!(
        VendorError::classify(" authentication failed "),
        VendorError::AuthenticationFailed
    );
    assert_eq!(
        VendorError::classify("Transaction not found"),
        VendorError::Other("Transaction not found".into())
    );
}

#[test]
fn a_customer_record_needs_exactly_the_25_keys() {
    let values: [String; FIELD_COUNT] = std::array::from_fn(|i| format!("v{i}"));
    let json = serde_json::to_string(&CustomerJson(&values)).unwrap();
    let record: CustomerRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(record.get(Field::FirstName), Some("v2"));

    let mut obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).unwrap();
    obj.remove("CustomerEmail");
    let err = serde_json::from_value::<CustomerRecord>(obj.clone().into()).unwrap_err();
    assert!(err.to_string().contains("CustomerEmail"), "{err}");
    obj.insert("CustomerEmail".into(), serde_json::Value::Null);
    let text = serde_json::to_string(&obj).unwrap();
    assert!(serde_json::from_str::<CustomerRowCheck>(&text).is_ok());
    obj.insert("Nickname".into(), "x".into());
    let err = serde_json::from_value::<CustomerRecord>(obj.clone().into()).unwrap_err();
    assert!(err.to_string().contains("Nickname"), "{err}");
    let text = serde_json::to_string(&obj).unwrap();
    let err = serde_json::from_str::<CustomerRowCheck>(&text)
        .err()
        .unwrap();
    assert!(err.to_string().contains("Nickname"), "{err}");
    obj.remove("Nickname");
    obj.insert("CustomerEmail".into(), 7.into());
    let text = serde_json::to_string(&obj).unwrap();
    assert!(serde_json::from_str::<CustomerRowCheck>(&text).is_err());
}

proptest::proptest! {
    #[test]
    fn the_direct_writer_writes_what_serde_writes(values in proptest::array::uniform25(".*")) {
        let mut direct = Vec::new();
        write_customer_json(&values, &mut direct);
        let via_serde = serde_json::to_vec(&CustomerJson(&values)).unwrap();
        let a: serde_json::Value = serde_json::from_slice(&direct).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&via_serde).unwrap();
        proptest::prop_assert_eq!(a, b);
    }

    #[test]
    fn values_free_of_escapes_are_written_the_same_copied(values in proptest::array::uniform25("[^\"\\\\\\p{Cc}]*")) {
        let mut checked = Vec::new();
        write_customer_json(&values, &mut checked);
        let mut copied = Vec::new();
        write_customer_row(&values, true, &mut copied);
        proptest::prop_assert_eq!(&checked, &copied);
        let mut separated = Vec::new();
        proptest::prop_assert!(write_separated_row(values.join("\x1f").as_bytes(), 0x1f, &mut separated));
        proptest::prop_assert_eq!(checked, separated);
    }
}

#[test]
fn a_separated_row_must_hold_exactly_25_values() {
    for n in [1, 24, 26] {
        let text = vec!["a"; n].join("|");
        assert!(
            !write_separated_row(text.as_bytes(), b'|', &mut Vec::new()),
            "{n} values"
        );
    }
    let mut out = Vec::new();
    assert!(write_separated_row(
        vec!["a"; 25].join("|").as_bytes(),
        b'|',
        &mut out
    ));
    let row: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&out).unwrap();
    assert!(FIELD_NAMES.iter().all(|name| row[*name] == "a"));
}

#[test]
fn the_key_prefixes_spell_the_field_names() {
    for (i, prefix) in KEY_PREFIXES.iter().enumerate() {
        let opening = if i == 0 { "{\"" } else { "\",\"" };
        assert_eq!(*prefix, format!("{opening}{}\":\"", FIELD_NAMES[i]));
    }
}

#[test]
fn the_direct_writer_escapes_quotes_backslashes_and_controls() {
    let mut values: [String; FIELD_COUNT] = Default::default();
    values[0] = "a\"b\\c\nd\u{1}".into();
    let mut out = Vec::new();
    write_customer_json(&values, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with(r#"{"PartnerCustomerID":"a\"b\\c\nd\u0001","#),
        "{text}"
    );
}

#[test]
fn upload_bodies_splice_serialized_rows() {
    let summary = UploadSummary {
        transactionid: "t".into(),
        partnertransactionid: "p".into(),
        partnerstoreid: "s".into(),
        rr_store_id: "12".into(),
        feedtype: FEED_CUSTOMERS.into(),
        startdate: None,
        enddate: None,
        totalrowssent: Count(2),
    };
    let mut out = Vec::new();
    write_upload_body(&summary, [&b"{\"a\":1}"[..], b"{\"b\":2}"], &mut out);
    let parsed: UploadRequest = serde_json::from_slice(&out).unwrap();
    assert_eq!(parsed.transactionsummary, summary);
    assert_eq!(parsed.rows.len(), 2);
}
