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
            access_tokens_set: Vec::new(),
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

/// A state dir with a config pointing `[crm]` at the mock.
struct CrmSetup {
    dir: tempfile::TempDir,
}

impl CrmSetup {
    fn new(server: &MockServer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rrfeed.toml"),
            format!(
                "[crm]\nurl = \"{}/crmapi/rest/v2\"\nusername = \"demo-crm-user\"\n\
                 password = {{ env = \"CRM_PASSWORD\" }}\norganisation = \"DEMO\"\nunit = \"Dealer Sales\"\n\
                 schemes = [\"Riders\"]\naccounts_receivable_column = \"AR Number\"\ntimeout = \"3s\"\n",
                server.url
            ),
        )
        .unwrap();
        Self { dir }
    }

    /// A setup whose config also has `[[store]]`s syncing to CRM.COM.
    fn with_stores(server: &MockServer, stores: &[&str]) -> Self {
        let setup = Self::new(server);
        let config = setup.dir.path().join("rrfeed.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        for (i, name) in stores.iter().enumerate() {
            text.push_str(&format!(
                "[[store]]\nname = \"{name}\"\nstore_id = \"{}\"\nstore_api_key = {{ env = \"UNUSED\" }}\n\
                 destination = \"crm\"\n",
                2001 + i
            ));
        }
        std::fs::write(&config, text).unwrap();
        setup
    }

    /// `rrfeed ARGS` with this setup's config and state.
    fn rrfeed(&self, args: &[&str]) -> std::process::Output {
        assert_cmd::Command::cargo_bin("rrfeed")
            .unwrap()
            .env_clear()
            .env("CRM_PASSWORD", "demo-crm-password")
            .env("RRFEED_STATE_DIR", self.dir.path().join("state"))
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    /// `crm sync FILE --json` plus `extra`; (exit code, summary).
    fn sync(&self, file: &std::path::Path, extra: &[&str]) -> (i32, Value) {
        let output = assert_cmd::Command::cargo_bin("rrfeed")
            .unwrap()
            .env_clear()
            .env("CRM_PASSWORD", "demo-crm-password")
            .env("RRFEED_STATE_DIR", self.dir.path().join("state"))
            .current_dir(self.dir.path())
            .args(["crm", "sync", "--json"])
            .arg(file)
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let summary = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
        (output.status.code().unwrap(), summary)
    }
}

/// `rows` customers, each changed by `edit` (index, values) before it is written.
fn export(rows: usize, edit: impl Fn(usize, &mut Vec<String>)) -> tempfile::NamedTempFile {
    let mut text = String::from("Customer ID,First Name,Last Name,Email,Mobile,AR Number\n");
    for i in 0..rows {
        let mut row = vec![
            format!("C{i:05}"),
            format!("First{i}"),
            format!("Last{i}"),
            format!("user{i}@example.com"),
            format!("(414) 555-{:04}", i % 10_000),
            String::new(),
        ];
        edit(i, &mut row);
        if !row.is_empty() {
            text.push_str(&row.join(","));
            text.push('\n');
        }
    }
    crate::helpers::file_with(text.as_bytes(), ".csv")
}

fn counts(summary: &Value) -> [u64; 6] {
    [
        "created",
        "updated",
        "unchanged",
        "terminated",
        "failed",
        "needs_attention",
    ]
    .map(|k| summary[k].as_u64().unwrap())
}

fn writes(server: &MockServer, method: &str) -> u64 {
    server.mock.crm().writes.get(method).copied().unwrap_or(0)
}

#[test]
fn a_second_sync_of_the_same_file_writes_nothing() {
    let server = MockServer::start("");
    let setup = CrmSetup::new(&server);
    let file = export(2000, |_, _| {});
    let (code, first) = setup.sync(file.path(), &["--jobs", "8"]);
    eprintln!("first sync: {first}");
    assert_eq!(code, 0, "{first}");
    assert_eq!(counts(&first), [2000, 0, 0, 0, 0, 0]);
    assert_eq!(writes(&server, "rewards_participants/create"), 2000);
    let (code, second) = setup.sync(file.path(), &["--jobs", "8"]);
    eprintln!("second sync: {second}");
    assert_eq!(code, 0, "{second}");
    assert_eq!(counts(&second), [0, 0, 2000, 0, 0, 0]);
    let crm = server.mock.crm();
    assert_eq!(
        crm.writes.values().sum::<u64>(),
        2000,
        "the second sync wrote something"
    );
    assert_eq!(
        (crm.released, crm.live_tokens()),
        (2, 0),
        "each run released its token"
    );
}

#[test]
fn an_edited_row_updates_only_that_participants_changed_fields() {
    let server = MockServer::start("");
    let setup = CrmSetup::new(&server);
    setup.sync(export(20, |_, _| {}).path(), &[]);
    let edited = export(20, |i, row| {
        if i == 5 {
            row[3] = "New.Address@Example.com".into();
        }
    });
    let (code, summary) = setup.sync(edited.path(), &[]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(counts(&summary), [0, 1, 19, 0, 0, 0]);
    assert_eq!(
        summary["changes"],
        serde_json::json!({"added": 0, "removed": 0, "changed": 1, "unchanged": 19})
    );
    assert_eq!(writes(&server, "rewards_participants/update"), 1);
    let crm = server.mock.crm();
    let participant = crm
        .participants
        .values()
        .find(|p| p.udf_strings[0].as_deref() == Some("C00005"))
        .unwrap();
    assert_eq!(
        participant.udf_strings[2].as_deref(),
        Some("new.address@example.com")
    );
    assert_eq!(participant.udf_strings[3].as_deref(), Some("4145550005"));
}

#[test]
fn a_removed_row_is_terminated_only_with_terminate_missing() {
    let server = MockServer::start("");
    let setup = CrmSetup::new(&server);
    setup.sync(export(20, |_, _| {}).path(), &[]);
    let without_7 = export(20, |i, row| {
        if i == 7 {
            row.clear();
        }
    });
    let (_, plain) = setup.sync(without_7.path(), &[]);
    assert_eq!(counts(&plain)[3], 0);
    assert_eq!(
        plain["changes"],
        serde_json::json!({"added": 0, "removed": 1, "changed": 0, "unchanged": 19}),
        "the change report counts the absent customer, terminated or not"
    );
    let (code, dry) = setup.sync(without_7.path(), &["--terminate-missing", "--dry-run"]);
    assert_eq!((code, counts(&dry)[3]), (0, 1));
    assert_eq!(
        writes(&server, "rewards_participants/terminate"),
        0,
        "a dry run writes nothing"
    );
    let (code, summary) = setup.sync(without_7.path(), &["--terminate-missing"]);
    assert_eq!((code, counts(&summary)[3]), (0, 1), "{summary}");
    let crm = server.mock.crm();
    let gone = crm
        .participants
        .values()
        .find(|p| p.udf_strings[0].as_deref() == Some("C00007"))
        .unwrap();
    assert_eq!(gone.life_cycle_state, "TERMINATED");
}

#[test]
fn an_accounts_receivable_number_finds_the_participant_instead_of_creating_one() {
    let server = MockServer::start("");
    let setup = CrmSetup::new(&server);
    setup.sync(export(1, |_, _| {}).path(), &[]);
    // The link is lost (say the ledger was reset); the export now names the accounts receivable.
    let refused = setup.rrfeed(&["crm", "link", "C00000", "--none"]);
    assert_eq!(
        refused.status.code(),
        Some(65),
        "a settled link is cleared only with --force"
    );
    let forgot = setup.rrfeed(&["crm", "link", "C00000", "--none", "--force"]);
    assert!(forgot.status.success());
    let with_account = export(1, |_, row| row[5] = "ACR0000000001".into());
    let (code, summary) = setup.sync(with_account.path(), &[]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(counts(&summary), [0, 0, 1, 0, 0, 0]);
    assert_eq!(
        writes(&server, "rewards_participants/create"),
        1,
        "no duplicate participant"
    );
}

#[test]
fn a_refused_crm_login_exits_77() {
    let server = MockServer::start("");
    let setup = CrmSetup::new(&server);
    let output = assert_cmd::Command::cargo_bin("rrfeed")
        .unwrap()
        .env_clear()
        .env("CRM_PASSWORD", "not-the-password")
        .env("RRFEED_STATE_DIR", setup.dir.path().join("state"))
        .current_dir(setup.dir.path())
        .args(["crm", "sync"])
        .arg(export(3, |_, _| {}).path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(77));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    assert_eq!(server.mock.crm().participants.len(), 0);
}

#[test]
fn a_create_whose_answer_is_lost_is_never_repeated_until_linked() {
    let server = MockServer::start("crm-create#3:timeout=5s");
    let setup = CrmSetup::new(&server);
    let file = export(5, |_, _| {});
    let (code, first) = setup.sync(file.path(), &["--jobs", "1"]);
    assert_eq!(code, 3, "{first}");
    assert_eq!(counts(&first), [4, 0, 0, 0, 0, 1]);
    assert_eq!(first["problems"][0]["partner_customer_id"], "C00002");
    assert_eq!(first["problems"][0]["outcome"], "needs-attention");
    // The mock did create it: exactly the case that must not be repeated.
    assert_eq!(server.mock.crm().participants.len(), 5);
    let (code, second) = setup.sync(file.path(), &["--jobs", "1"]);
    assert_eq!(code, 3, "{second}");
    assert_eq!(
        counts(&second),
        [0, 0, 4, 0, 0, 1],
        "reported again, not created again"
    );
    assert_eq!(writes(&server, "rewards_participants/create"), 5);
    let linked = setup.rrfeed(&["crm", "link", "C00002", "RP0000000003"]);
    assert!(linked.status.success());
    let (code, third) = setup.sync(file.path(), &["--jobs", "1"]);
    assert_eq!((code, counts(&third)), (0, [0, 0, 5, 0, 0, 0]), "{third}");
    assert_eq!(
        server.mock.crm().participants.len(),
        5,
        "no duplicate participant"
    );
}

#[test]
fn the_admin_commands_show_block_award_and_terminate() {
    let server = MockServer::start("");
    let setup = CrmSetup::new(&server);
    setup.sync(export(1, |_, _| {}).path(), &[]);
    let json = |args: &[&str]| -> Value {
        let output = setup.rrfeed(args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let shown = json(&["crm", "show", "RP0000000001", "--json"]);
    assert_eq!(shown["udf_string_1"], "C00000");
    let blocked = json(&["crm", "spend-blocking", "enable", "RP0000000001", "--json"]);
    assert_eq!(blocked["spend_blocking_state"]["enabled"], true);
    let awarded = json(&[
        "crm",
        "awarded",
        "RP0000000001",
        "--from",
        "2026-01-01",
        "--to",
        "2026-11-22",
        "--json",
    ]);
    assert_eq!(awarded["total_awarded_amount"], 10.0);
    let human = setup.rrfeed(&["crm", "show", "RP0000000001"]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("participant:          RP0000000001"));
    let terminated = json(&[
        "crm",
        "terminate",
        "RP0000000001",
        "--reason",
        "customer-request",
        "--json",
    ]);
    assert_eq!(terminated["life_cycle_state"], "TERMINATED");
    let missing = setup.rrfeed(&["crm", "show", "RP0000000099"]);
    assert_eq!(missing.status.code(), Some(65));
    // Every command released its token.
    let crm = server.mock.crm();
    assert_eq!(crm.live_tokens(), 0);
    assert_eq!(crm.released, 7);
}

#[test]
fn a_store_whose_destination_is_crm_is_never_uploaded_to_rider_rewards() {
    let server = MockServer::start("");
    let dir = tempfile::tempdir().unwrap();
    let file = export(3, |_, _| {});
    std::fs::write(
        dir.path().join("rrfeed.toml"),
        format!(
            "partner_api_key = {{ env = \"RRFEED_PARTNER_API_KEY\" }}\n\
             [[store]]\nname = \"north\"\nstore_id = \"1001\"\nstore_api_key = {{ env = \"KEY\" }}\nexport = {path:?}\n\
             [[store]]\nname = \"south\"\nstore_id = \"1002\"\nstore_api_key = {{ env = \"KEY\" }}\nexport = {path:?}\n\
             destination = \"crm\"\n",
            path = file.path().to_str().unwrap()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        crate::helpers::rrfeed(&server, &dir.path().join("state"))
            .env_remove("RRFEED_STORE_ID")
            .env("KEY", "demo-store-key")
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let refused = run(&["upload", "--store", "south"]);
    assert_eq!(refused.status.code(), Some(78));
    let said = String::from_utf8_lossy(&refused.stdout);
    assert!(said.contains("rrfeed crm sync --store south"), "{said}");
    let all = run(&["upload", "--all-stores", "--json"]);
    assert_eq!(
        all.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    assert!(
        server.mock.store("1002").is_none(),
        "south went to Rider Rewards"
    );
    assert_eq!(server.mock.customer_count("1001"), 3);
}

#[test]
fn terminate_missing_is_refused_past_the_shrink_guard_and_problems_go_to_the_rejects_file() {
    let server = MockServer::start("crm-create#2:error=Duplicate email, refused");
    let setup = CrmSetup::new(&server);
    let rejects = setup.dir.path().join("rejects.csv");
    let (code, first) = setup.sync(
        export(4, |_, _| {}).path(),
        &["--jobs", "1", "--rejects", rejects.to_str().unwrap()],
    );
    assert_eq!(code, 3, "{first}");
    assert_eq!(counts(&first), [3, 0, 0, 0, 1, 0]);
    let written = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        written.starts_with("line,PartnerCustomerID,outcome,reason\n"),
        "{written}"
    );
    assert!(written.contains("3,C00001,failed,"), "{written}");
    assert!(written.contains("Duplicate email, refused"), "{written}");
    // Two of the three linked customers leave the export: more than half.
    let one_left = export(4, |i, row| {
        if i != 0 {
            row.clear();
        }
    });
    let output = setup.rrfeed(&[
        "crm",
        "sync",
        "--terminate-missing",
        one_left.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&output.stderr).contains("would terminate 2 of 3"));
    assert_eq!(writes(&server, "rewards_participants/terminate"), 0);
    let (code, forced) = setup.sync(one_left.path(), &["--terminate-missing", "--force"]);
    assert_eq!((code, counts(&forced)[3]), (0, 2), "{forced}");
}

#[test]
fn sigterm_finishes_the_create_in_flight_releases_the_token_and_loses_no_link() {
    let server = MockServer::start("crm-create:delay=200ms");
    let setup = CrmSetup::new(&server);
    let file = export(30, |_, _| {});
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
        .env_clear()
        .env("CRM_PASSWORD", "demo-crm-password")
        .env("RRFEED_STATE_DIR", setup.dir.path().join("state"))
        .current_dir(setup.dir.path())
        .args(["crm", "sync", "--jobs", "2", "--json"])
        .arg(file.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while server.mock.crm().participants.len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sync created nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(143));
    let stopped: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(stopped["interrupted"], "SIGTERM");
    assert_eq!(
        stopped["needs_attention"], 0,
        "a create was cut off: {stopped}"
    );
    let created = stopped["created"].as_u64().unwrap();
    assert!(created < 30, "{stopped}");
    assert_eq!(server.mock.crm().participants.len() as u64, created);
    {
        let crm = server.mock.crm();
        assert_eq!((crm.released, crm.live_tokens()), (1, 0));
    }
    // The next night creates only the rest: nothing twice.
    let (code, rest) = setup.sync(file.path(), &["--jobs", "4"]);
    assert_eq!(code, 0, "{rest}");
    assert_eq!(
        rest["created"].as_u64().unwrap() + rest["unchanged"].as_u64().unwrap(),
        30
    );
    assert_eq!(server.mock.crm().participants.len(), 30);
}

#[test]
fn two_stores_never_terminate_or_overwrite_each_others_participants() {
    let server = MockServer::start("");
    let setup = CrmSetup::with_stores(&server, &["north", "south"]);
    let north = export(4, |_, _| {});
    // South's export shares C00000 with north's and has its own C09999.
    let south = export(1, |_, row| row[1] = "Southern".into());
    let (code, first) = setup.sync(north.path(), &["--store", "north"]);
    assert_eq!((code, counts(&first)), (0, [4, 0, 0, 0, 0, 0]), "{first}");
    let (code, second) = setup.sync(south.path(), &["--store", "south", "--terminate-missing"]);
    assert_eq!((code, counts(&second)), (0, [1, 0, 0, 0, 0, 0]), "{second}");
    assert_eq!(writes(&server, "rewards_participants/terminate"), 0);
    let crm = server.mock.crm();
    let named_c0: Vec<&str> = crm
        .participants
        .values()
        .filter(|p| p.udf_strings[0].as_deref() == Some("C00000"))
        .map(|p| p.life_cycle_state.as_str())
        .collect();
    assert_eq!(
        named_c0,
        ["EFFECTIVE", "EFFECTIVE"],
        "one participant per store"
    );
    drop(crm);
    let (code, again) = setup.sync(north.path(), &["--store", "north"]);
    assert_eq!((code, counts(&again)), (0, [0, 0, 4, 0, 0, 0]), "{again}");
}

#[test]
fn links_of_an_older_rrfeed_are_adopted_only_when_their_store_is_known() {
    let server = MockServer::start("");
    let setup = CrmSetup::with_stores(&server, &["north", "south"]);
    // RP0000000001 exists at CRM.COM (made here by south, so that the mock has it).
    setup.sync(export(1, |_, _| {}).path(), &["--store", "south"]);
    let state = setup.dir.path().join("state");
    let ledger = rusqlite::Connection::open(state.join("ledger.sqlite3")).unwrap();
    ledger
        .execute_batch(
            "CREATE TABLE crm_links (partner_customer_id TEXT PRIMARY KEY, participant_number TEXT,
             accounts_receivable TEXT, state TEXT NOT NULL, detail TEXT, updated_at TEXT NOT NULL);
             INSERT INTO crm_links VALUES ('C00000', 'RP0000000001', NULL, 'linked', NULL, 't');",
        )
        .unwrap();
    drop(ledger);
    let file = export(1, |_, _| {});
    let refused = setup.rrfeed(&[
        "crm",
        "sync",
        "--store",
        "north",
        file.path().to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--adopt-links"));
    let (code, adopted) = setup.sync(file.path(), &["--store", "north", "--adopt-links"]);
    assert_eq!(
        (code, counts(&adopted)),
        (0, [0, 0, 1, 0, 0, 0]),
        "{adopted}"
    );
}

#[test]
fn a_repeated_id_is_synced_once_and_a_second_sync_writes_nothing() {
    let server = MockServer::start("");
    let setup = CrmSetup::new(&server);
    let twice = export(6, |i, row| {
        if i == 4 {
            row[0] = "C00001".into();
        }
    });
    let (code, first) = setup.sync(twice.path(), &["--jobs", "8"]);
    assert_eq!((code, counts(&first)), (0, [5, 0, 0, 0, 0, 0]), "{first}");
    assert_eq!(first["repeated"], 1);
    let warning = &first["warnings"][0];
    assert_eq!(warning["code"], "duplicate-customer-id");
    assert!(
        warning["example"].as_str().unwrap().contains("C00001"),
        "{warning}"
    );
    assert_eq!(writes(&server, "rewards_participants/create"), 5);
    let strict = setup.rrfeed(&["crm", "sync", "--strict", twice.path().to_str().unwrap()]);
    assert_eq!(strict.status.code(), Some(65));

    let before = server.mock.crm().writes.values().sum::<u64>();
    let (code, once) = setup.sync(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/customers.csv"),
        &[],
    );
    assert!(code == 0 || code == 3, "{once}");
    let after_first = server.mock.crm().writes.values().sum::<u64>();
    assert!(after_first > before);
    let (code, again) = setup.sync(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/customers.csv"),
        &[],
    );
    assert_eq!(code, 0, "{again}");
    assert_eq!(
        server.mock.crm().writes.values().sum::<u64>(),
        after_first,
        "the second sync of the example wrote something: {again}"
    );
}

#[test]
fn a_participant_found_by_accounts_receivable_is_adopted_only_by_its_own_customer() {
    let server = MockServer::start("");
    let setup = CrmSetup::new(&server);
    setup.sync(export(1, |_, _| {}).path(), &[]);
    // A second customer of the same household names the first one's accounts receivable.
    let second = export(2, |i, row| {
        if i == 1 {
            row[5] = "ACR0000000001".into();
        }
    });
    let (code, summary) = setup.sync(second.path(), &[]);
    assert_eq!(code, 3, "{summary}");
    assert_eq!(counts(&summary), [0, 0, 1, 0, 0, 1]);
    let reason = summary["problems"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("C00000") && reason.contains("C00001"),
        "{reason}"
    );
    assert_eq!(writes(&server, "rewards_participants/update"), 0);
    let crm = server.mock.crm();
    assert_eq!(
        crm.participants["RP0000000001"].udf_strings[0].as_deref(),
        Some("C00000")
    );
}

#[test]
fn a_create_cut_off_by_a_kill_is_never_repeated() {
    let server = MockServer::start("crm-create:delay=3s");
    let setup = CrmSetup::new(&server);
    let file = export(1, |_, _| {});
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
        .env_clear()
        .env("CRM_PASSWORD", "demo-crm-password")
        .env("RRFEED_STATE_DIR", setup.dir.path().join("state"))
        .current_dir(setup.dir.path())
        .args(["crm", "sync"])
        .arg(file.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !server
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.path.ends_with("rewards_participants/create"))
    {
        assert!(std::time::Instant::now() < deadline, "no create arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    let (code, next) = setup.sync(file.path(), &[]);
    assert_eq!((code, counts(&next)), (3, [0, 0, 0, 0, 0, 1]), "{next}");
    assert!(writes(&server, "rewards_participants/create") <= 1);
}

#[test]
fn a_terminated_participant_is_never_terminated_or_updated_again_and_a_returning_customer_gets_a_new_one()
 {
    let server = MockServer::start("");
    let setup = CrmSetup::new(&server);
    setup.sync(export(10, |_, _| {}).path(), &[]);
    let without_7 = export(10, |i, row| {
        if i == 7 {
            row.clear();
        }
    });
    let (code, first) = setup.sync(without_7.path(), &["--terminate-missing"]);
    assert_eq!((code, counts(&first)[3]), (0, 1), "{first}");
    let (code, again) = setup.sync(without_7.path(), &["--terminate-missing"]);
    assert_eq!((code, counts(&again)), (0, [0, 0, 9, 0, 0, 0]), "{again}");
    assert_eq!(writes(&server, "rewards_participants/terminate"), 1);
    // Customer 7 comes back, with a new e-mail address.
    let returning = export(10, |i, row| {
        if i == 7 {
            row[3] = "back@example.com".into();
        }
    });
    let (code, back) = setup.sync(returning.path(), &[]);
    assert_eq!((code, counts(&back)), (0, [1, 0, 9, 0, 0, 0]), "{back}");
    assert_eq!(
        writes(&server, "rewards_participants/update"),
        0,
        "the terminated one was updated"
    );
    let links = setup.rrfeed(&["crm", "links", "--json"]);
    let listed: Value = serde_json::from_slice(&links.stdout).unwrap();
    let of_7: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["partner_customer_id"] == "C00007")
        .map(|l| l["state"].as_str().unwrap())
        .collect();
    assert_eq!(of_7, ["replaced", "linked"], "{listed}");
    // Terminated from CRM.COM's own screens while still in the export: never updated.
    let number = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["partner_customer_id"] == "C00003")
        .unwrap()["participant"]
        .as_str()
        .unwrap()
        .to_owned();
    let ended = setup.rrfeed(&["crm", "terminate", &number, "--reason", "fraud"]);
    assert!(ended.status.success());
    let edited = export(10, |i, row| match i {
        3 => row[3] = "changed@example.com".into(),
        7 => row[3] = "back@example.com".into(),
        _ => {}
    });
    let (code, after) = setup.sync(edited.path(), &[]);
    assert_eq!((code, counts(&after)), (0, [1, 0, 9, 0, 0, 0]), "{after}");
    assert_eq!(writes(&server, "rewards_participants/update"), 0);
}

#[test]
fn crm_link_checks_the_participant_and_replaces_a_link_only_with_force() {
    let server = MockServer::start("");
    let setup = CrmSetup::new(&server);
    setup.sync(export(2, |_, _| {}).path(), &[]);
    let nowhere = setup.rrfeed(&["crm", "link", "C00005", "RP0000000099"]);
    assert_eq!(nowhere.status.code(), Some(65));
    let replace = setup.rrfeed(&["crm", "link", "C00000", "RP0000000002"]);
    assert_eq!(replace.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&replace.stderr).contains("--force"));
    let same = setup.rrfeed(&["crm", "link", "C00000", "RP0000000001"]);
    assert!(String::from_utf8_lossy(&same.stdout).contains("already"));
    let forced = setup.rrfeed(&["crm", "link", "C00000", "RP0000000002", "--force"]);
    assert!(forced.status.success());
    assert!(String::from_utf8_lossy(&forced.stdout).contains("it was linked to RP0000000001"));
}

#[test]
fn calls_in_flight_when_the_token_expires_share_one_new_login() {
    let server = MockServer::start("");
    let crm = client(&server, "demo-crm-password");
    let rt = runtime();
    let number = rt
        .block_on(crm.create(&new_participant("C1")))
        .unwrap()
        .number;
    server
        .mock
        .crm()
        .backdate_tokens(Duration::from_secs(2 * 3600));
    rt.block_on(async {
        let id = Identifier::number(&number);
        let shown = futures_util::future::join_all((0..4).map(|_| crm.show(&id))).await;
        assert!(shown.iter().all(Result::is_ok), "{shown:?}");
        crm.release().await.unwrap();
    });
    let mock = server.mock.crm();
    // The first login and one renewal for the four calls; the renewed token was released, and the
    // expired one cannot be.
    assert_eq!(mock.logins(), 2);
    assert_eq!((mock.released, mock.live_tokens()), (1, 1));
}

#[test]
fn a_token_near_its_two_hours_is_renewed_before_a_call_and_the_old_one_released() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let server = MockServer::start("");
    let elapsed = std::sync::Arc::new(AtomicU64::new(0));
    let start = std::time::Instant::now();
    let clock = {
        let elapsed = elapsed.clone();
        std::sync::Arc::new(move || start + Duration::from_secs(elapsed.load(Ordering::SeqCst)))
    };
    let crm = client(&server, "demo-crm-password").with_clock(clock);
    let rt = runtime();
    let number = rt
        .block_on(crm.create(&new_participant("C1")))
        .unwrap()
        .number;
    elapsed.store(60 * 60, Ordering::SeqCst);
    rt.block_on(crm.show(&Identifier::number(&number))).unwrap();
    assert_eq!(
        server.mock.crm().logins(),
        1,
        "an hour in, the token is still good"
    );
    elapsed.store(115 * 60, Ordering::SeqCst);
    rt.block_on(crm.show(&Identifier::number(&number))).unwrap();
    let mock = server.mock.crm();
    assert_eq!(mock.logins(), 2, "renewed before the two hours");
    assert_eq!(
        (mock.released, mock.live_tokens()),
        (1, 1),
        "the old token released"
    );
}

#[test]
fn a_refusal_that_is_not_a_reauth_code_never_logs_in_again() {
    let server = MockServer::start("crm-show#1:error=Session token limit reached");
    let crm = client(&server, "demo-crm-password");
    let rt = runtime();
    let refused = rt
        .block_on(crm.show(&Identifier::number("RP1")))
        .unwrap_err();
    assert!(matches!(refused, CrmError::Refused { .. }), "{refused}");
    assert_eq!(server.mock.crm().logins(), 1);
}

#[test]
fn max_rps_spaces_the_calls_out() {
    let server = MockServer::start("");
    let setup = CrmSetup::new(&server);
    let started = std::time::Instant::now();
    let (code, summary) = setup.sync(
        export(200, |_, _| {}).path(),
        &["--jobs", "8", "--max-rps", "50"],
    );
    assert_eq!(code, 0, "{summary}");
    // 200 creates at 50 a second: the first goes at once, the last 3.98 s later.
    assert!(
        started.elapsed() >= Duration::from_millis(3980),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_new_reward_number_moves_the_card_and_a_new_name_is_a_warning() {
    let server = MockServer::start("");
    let setup = CrmSetup::new(&server);
    let config = setup.dir.path().join("rrfeed.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("access_token_field = \"CustomerRewardNumber\"\n");
    std::fs::write(&config, text).unwrap();
    let with_card = |card: &str, first: &str| {
        let text = format!(
            "Customer ID,First Name,Last Name,Rewards Number\nC1,{first},Lee,{card}\nC2,Bo,Park,RR20\n"
        );
        crate::helpers::file_with(text.as_bytes(), ".csv")
    };
    let (code, first) = setup.sync(with_card("RR10", "Ann").path(), &[]);
    assert_eq!((code, counts(&first)), (0, [2, 0, 0, 0, 0, 0]), "{first}");
    let (code, moved) = setup.sync(with_card("RR11", "Anne").path(), &[]);
    assert_eq!((code, counts(&moved)), (0, [0, 1, 1, 0, 0, 0]), "{moved}");
    let warning = moved["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "crm-name-differs")
        .unwrap_or_else(|| panic!("no name warning: {moved}"));
    assert_eq!(warning["count"], 1);
    assert!(
        warning["example"]
            .as_str()
            .unwrap()
            .contains("RP0000000001"),
        "{warning}"
    );
    let crm = server.mock.crm();
    let card = &crm.participants["RP0000000001"];
    assert_eq!(
        card.access_tokens,
        ["RR11"],
        "the old card removed, the new one added"
    );
    assert_eq!(card.udf_strings[1].as_deref(), Some("RR11"));
}

#[test]
fn terminating_a_duplicate_moves_its_wallet_and_cards_to_the_replacement() {
    let server = MockServer::start("");
    let setup = CrmSetup::new(&server);
    let config = setup.dir.path().join("rrfeed.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("access_token_field = \"CustomerRewardNumber\"\n");
    std::fs::write(&config, text).unwrap();
    let export = crate::helpers::file_with(
        b"Customer ID,First Name,Last Name,Rewards Number\nC1,Ann,Lee,RR10\nC2,Ann,Lee,RR20\n",
        ".csv",
    );
    setup.sync(export.path(), &[]);
    let ended = setup.rrfeed(&[
        "crm",
        "terminate",
        "RP0000000002",
        "--reason",
        "duplication",
        "--replaced-by",
        "RP0000000001",
    ]);
    assert!(ended.status.success(), "{ended:?}");
    let crm = server.mock.crm();
    let old = &crm.participants["RP0000000002"];
    assert_eq!(old.wallet_moved_to.as_deref(), Some("RP0000000001"));
    assert!(old.access_tokens.is_empty());
    assert_eq!(
        crm.participants["RP0000000001"].access_tokens,
        ["RR10", "RR20"]
    );
    drop(crm);
    let kept = setup.rrfeed(&[
        "crm",
        "terminate",
        "RP0000000001",
        "--reason",
        "customer-request",
    ]);
    assert!(kept.status.success());
    assert_eq!(
        server.mock.crm().participants["RP0000000001"].wallet_moved_to,
        None
    );
}

#[test]
fn a_sync_is_pinged_recorded_in_the_metrics_and_checked_by_status() {
    let server = MockServer::start("");
    let pings = crate::monitoring::PingServer::start();
    let setup = CrmSetup::with_stores(&server, &["crmstore"]);
    let config = setup.dir.path().join("rrfeed.toml");
    let metrics = setup.dir.path().join("rrfeed.prom");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}[monitor]\nping_url = \"{}\"\nmetrics_file = \"{}\"\n",
            pings.url,
            metrics.display()
        ),
    )
    .unwrap();
    let file = export(3, |_, _| {});
    let (code, _) = setup.sync(file.path(), &["--store", "crmstore"]);
    assert_eq!(code, 0);
    let got = pings.received();
    assert_eq!(
        got.iter()
            .map(|r| (r.method.as_str(), r.what.rsplit('/').next().unwrap()))
            .collect::<Vec<_>>(),
        [("GET", "start"), ("POST", "0")]
    );
    assert!(got[0].rid.is_some() && got[0].rid == got[1].rid);
    assert!(got[1].body.contains("created"), "{}", got[1].body);
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.contains("rrfeed_last_run_exit_code{store=\"crmstore\",destination=\"crm\"} 0")
            && prom.contains("rrfeed_last_run_rows{store=\"crmstore\",destination=\"crm\"} 3"),
        "{prom}"
    );
    let status = setup.rrfeed(&["status", "--json"]);
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    let report: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["stores"][0]["destination"], "crm");
}

#[test]
fn a_second_host_sharing_the_state_in_postgresql_finds_every_link() {
    let Some(state_url) = rrfeed::state::testing::fresh_database_url("crm_two_hosts") else {
        return;
    };
    let server = MockServer::start("");
    let setup = CrmSetup::with_stores(&server, &["north"]);
    let file = export(30, |_, _| {});
    let host = |state: &std::path::Path| {
        let output = assert_cmd::Command::cargo_bin("rrfeed")
            .unwrap()
            .env_clear()
            .env("CRM_PASSWORD", "demo-crm-password")
            .env("RRFEED_STATE_DIR", state)
            .env("RRFEED_STATE_URL", &state_url)
            .current_dir(setup.dir.path())
            .args(["crm", "sync", "--json", "--store", "north"])
            .arg(file.path())
            .output()
            .unwrap();
        let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
        (output.status.code().unwrap(), summary)
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (code, first) = host(a.path());
    assert_eq!((code, counts(&first)), (0, [30, 0, 0, 0, 0, 0]), "{first}");
    let (code, second) = host(b.path());
    assert_eq!(
        (code, counts(&second)),
        (0, [0, 0, 30, 0, 0, 0]),
        "{second}"
    );
    assert_eq!(writes(&server, "rewards_participants/create"), 30);
    // Both syncs are in the shared ledger.
    let history = assert_cmd::Command::cargo_bin("rrfeed")
        .unwrap()
        .env_clear()
        .env("RRFEED_STATE_DIR", a.path())
        .env("RRFEED_STATE_URL", &state_url)
        .current_dir(setup.dir.path())
        .args(["history", "--json"])
        .output()
        .unwrap();
    let runs: Value = serde_json::from_slice(&history.stdout).unwrap();
    let destinations: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["destination"].as_str().unwrap())
        .collect();
    assert_eq!(destinations, ["crm", "crm"]);
    assert_eq!(
        runs[0]["changes"]["unchanged"], 30,
        "the ledger has the sync's counts"
    );
    assert_eq!(runs[1]["changes"]["added"], 30);
}
