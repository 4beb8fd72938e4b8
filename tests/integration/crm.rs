//! The CRM.COM client against the mock's CRM.COM side: login, calls, token renewal on expiry, release.

use std::time::Duration;

use rrfeed::crm::client::{CrmClient, CrmError, CrmLogin};
use rrfeed::crm::wire::{
    AccountsReceivableChoice, Create, Identifier, ListQuery, NewContact, Update,
};
use serde_json::Value;

use crate::helpers::MockServer;

fn client(server: &MockServer, password: &str) -> CrmClient {
    let base = format!("{}/crmapi/rest/v2", server.url).parse().unwrap();
    let login = CrmLogin {
        username: "demo-crm-user".into(),
        password: password.to_owned().into(),
        organisation: "DEMO".into(),
    };
    CrmClient::new(&base, login, Duration::from_secs(5), None).unwrap()
}

fn new_participant(id: &str) -> Create {
    Create {
        token: String::new(),
        sign_up_on: "2026-11-22T10:00:00".into(),
        sign_up_by_unit_identifier: Identifier::name("Dealer"),
        accounts_receivable: AccountsReceivableChoice::New {
            name: "Ann Lee".into(),
            classification_identifier: None,
            contact_information: NewContact::person("Ann", "Lee"),
        },
        participating_schemes_set: Vec::new(),
        access_tokens_set: Vec::new(),
        udf_strings: [("udf_string_1".to_owned(), Value::from(id))].into(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_client_creates_updates_finds_and_releases_its_token() {
    let server = MockServer::start("");
    let crm = client(&server, "demo-crm-password");
    runtime().block_on(async {
        let created = crm.create(&new_participant("C1")).await.unwrap();
        assert_eq!(created.number, "RP0000000001");
        let update = Update {
            token: String::new(),
            rewards_participant_identifier: Identifier::number(&created.number),
            udf_strings: [("udf_string_3".to_owned(), Value::from("ann@example.com"))].into(),
        };
        let updated = crm.update(&update).await.unwrap();
        assert_eq!(updated.udf_string(1), Some("C1"));
        assert_eq!(updated.udf_string(3), Some("ann@example.com"));
        let account = created.accounts_receivable.unwrap().number.unwrap();
        let found = crm
            .list(&ListQuery {
                accounts_receivable: Identifier::number(account),
                life_cycle_state: Some("EFFECTIVE".into()),
                number_of_results: 10,
                offset: 0,
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        crm.release().await.unwrap();
    });
    let mock = server.mock.crm();
    assert_eq!((mock.released, mock.live_tokens()), (1, 0));
}

#[test]
fn an_expired_token_is_renewed_once_and_the_call_retried() {
    let server = MockServer::start("");
    let crm = client(&server, "demo-crm-password");
    let rt = runtime();
    let number = rt
        .block_on(crm.create(&new_participant("C1")))
        .unwrap()
        .number;
    // Two hours pass at CRM.COM: the token the client holds is now refused.
    server
        .mock
        .crm()
        .backdate_tokens(Duration::from_secs(2 * 3600));
    let shown = rt.block_on(crm.show(&Identifier::number(&number))).unwrap();
    assert_eq!(shown.number, number);
    // The refused token and the new one.
    assert_eq!(server.mock.crm().live_tokens(), 2);
    assert_eq!(server.mock.crm().writes["rewards_participants/create"], 1);
}

#[test]
fn a_refused_login_is_an_authentication_failure_and_a_refused_call_names_the_reason() {
    let server = MockServer::start("");
    let rt = runtime();
    let refused = rt
        .block_on(client(&server, "wrong").show(&Identifier::number("RP1")))
        .unwrap_err();
    assert!(matches!(refused, CrmError::Login { .. }), "{refused}");
    assert!(!refused.to_string().contains("wrong"), "{refused}");
    let missing = rt
        .block_on(client(&server, "demo-crm-password").show(&Identifier::number("RP9")))
        .unwrap_err();
    assert!(matches!(missing, CrmError::Refused { .. }), "{missing}");
    assert!(
        missing.to_string().contains("No rewards participant RP9"),
        "{missing}"
    );
    assert!(!missing.outcome_unknown());
}

#[test]
fn a_call_without_an_answer_is_an_unknown_outcome_and_shows_no_secret_or_url() {
    // Nothing listens here. Errors never carry the URL: a GET's query string holds the token.
    let base = "http://127.0.0.1:9/crmapi/rest/v2".parse().unwrap();
    let login = CrmLogin {
        username: "demo-crm-user".into(),
        password: "demo-crm-password".to_owned().into(),
        organisation: "DEMO".into(),
    };
    let crm = CrmClient::new(&base, login, Duration::from_secs(2), None).unwrap();
    let err = runtime()
        .block_on(crm.show(&Identifier::number("RP1")))
        .unwrap_err();
    assert!(err.outcome_unknown(), "{err}");
    assert!(!err.to_string().contains("demo-crm-password"), "{err}");
    assert!(!err.to_string().contains("127.0.0.1:9/"), "{err}");
}
