//! The worked mapping examples under `config/mappings/`, each against its sample export in
//! `examples/exports/`: what a differently shaped export becomes at the mock.

use rrfeed::wire::{CustomerRecord, Field};

use crate::helpers::*;

fn upload_with(config: &str, store: &str) -> Vec<CustomerRecord> {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let output = rrfeed(&server, state.path())
        .env_remove("RRFEED_STORE_ID")
        .args(["upload", "--json", "--config", config, "--store", store])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    server.mock.store(STORE_ID).unwrap().customers()
}

fn get(row: &CustomerRecord, field: Field) -> &str {
    row.get(field).unwrap_or_default()
}

#[test]
fn the_legacy_dms_mapping_reads_its_windows_1252_semicolon_export() {
    let rows = upload_with("config/mappings/legacy-dms.toml", "legacy-dms");
    assert_eq!(rows.len(), 4);
    let zoe = &rows[0];
    assert_eq!(get(zoe, Field::PartnerCustomerId), "A-1001");
    assert_eq!(
        (get(zoe, Field::FirstName), get(zoe, Field::LastName)),
        ("ZOË", "MÜLLER")
    );
    assert_eq!(get(zoe, Field::MobilePhone), "4145550101");
    assert_eq!(get(zoe, Field::HomePhone), "4145550102");
    assert_eq!(get(zoe, Field::Email), "zoe.muller@example.com");
    assert_eq!(
        (
            get(zoe, Field::BirthMonth),
            get(zoe, Field::BirthDay),
            get(zoe, Field::BirthYear)
        ),
        ("3", "15", "1980")
    );
    assert_eq!(get(zoe, Field::Country), "USA");
    assert_eq!(get(zoe, Field::IsLocalHogChapterMember), "Y");
    assert_eq!(get(zoe, Field::HogNumber), "1234567");
    assert_eq!(
        get(zoe, Field::WorkPhone),
        "",
        "the Fax column is ignored on purpose"
    );
    let jose = &rows[2];
    assert_eq!(
        (get(jose, Field::FirstName), get(jose, Field::LastName)),
        ("JOSÉ LUIS", "GARCÍA")
    );
    assert_eq!(get(jose, Field::Address), "5 Elm St; Apt 2");
    assert_eq!(get(jose, Field::BirthDay), "29");
}

#[test]
fn the_web_dms_mapping_reads_its_ndjson_export() {
    let rows = upload_with("config/mappings/web-dms.toml", "web-dms");
    assert_eq!(rows.len(), 3);
    let chloe = &rows[0];
    assert_eq!(get(chloe, Field::PartnerCustomerId), "50001");
    assert_eq!(get(chloe, Field::RewardNumber), "RR-9001");
    assert_eq!(get(chloe, Field::City), "Montréal");
    assert_eq!(get(chloe, Field::ZipOrPostalCode), "H2X 1Y4");
    assert_eq!(get(chloe, Field::Email), "chloe.tremblay@example.ca");
    assert_eq!(get(chloe, Field::Class), "2");
    assert_eq!(get(chloe, Field::Country), "CAN", "the configured default");
    assert_eq!(
        (
            get(chloe, Field::BirthMonth),
            get(chloe, Field::BirthDay),
            get(chloe, Field::BirthYear)
        ),
        ("7", "4", "1988")
    );
    assert_eq!(get(&rows[1], Field::Gender), "M");
    assert_eq!(get(&rows[2], Field::Country), "CAN", "Canada becomes CAN");
    assert_eq!(get(&rows[2], Field::Email), "", "'none' is not an address");
}
