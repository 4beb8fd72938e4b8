//! The link table's behaviour, the same tests for SQLite and PostgreSQL (see `crate::state::testing`).

use super::*;

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(1_795_000_000 + s).unwrap()
}

fn scope(store: &str) -> Scope {
    Scope {
        url: "https://crm.example.com/crmapi/rest/v2".into(),
        organisation: "DEMO".into(),
        store: store.into(),
    }
}

fn links_survive_reopening_and_settle_needs_attention(state: &State) {
    let links = Links::open(state, scope("north")).unwrap();
    assert_eq!(links.get("C1").unwrap(), None);
    links
        .needs_attention("C1", "create: no answer", at(0))
        .unwrap();
    links.link("C2", "RP2", Some("ACR2"), at(1)).unwrap();
    drop(links);
    let links = Links::open(state, scope("north")).unwrap();
    assert!(matches!(
        links.get("C1").unwrap(),
        Some(Link::NeedsAttention { .. })
    ));
    links.link("C1", "RP1", None, at(2)).unwrap();
    assert_eq!(
        links.get("C1").unwrap(),
        Some(Link::Linked {
            participant: "RP1".into(),
            accounts_receivable: None
        })
    );
    assert_eq!(links.linked().unwrap().len(), 2);
    assert!(links.forget("C2").unwrap());
    assert!(!links.forget("C2").unwrap());
    assert_eq!(
        links.linked().unwrap(),
        [("C1".to_owned(), "RP1".to_owned())]
    );
}

fn two_stores_never_see_each_others_links(state: &State) {
    let north = Links::open(state, scope("north")).unwrap();
    let south = Links::open(state, scope("south")).unwrap();
    north.link("C1", "RP1", None, at(0)).unwrap();
    south.link("C1", "RP9", None, at(0)).unwrap();
    assert_eq!(
        north.linked().unwrap(),
        [("C1".to_owned(), "RP1".to_owned())]
    );
    assert_eq!(
        south.linked().unwrap(),
        [("C1".to_owned(), "RP9".to_owned())]
    );
    assert_eq!(
        south.linked_to("RP1").unwrap(),
        [("north".to_owned(), "C1".to_owned())],
        "a participant's owner is found across the organisation's stores"
    );
}

fn a_create_in_flight_reads_as_needing_attention_until_settled(state: &State) {
    let links = Links::open(state, scope("-")).unwrap();
    links.create_in_flight("C1", at(0)).unwrap();
    drop(links);
    let links = Links::open(state, scope("-")).unwrap();
    assert!(matches!(
        links.get("C1").unwrap(),
        Some(Link::NeedsAttention { .. })
    ));
    links.create_refused("C1").unwrap();
    assert_eq!(links.get("C1").unwrap(), None);
    links.create_in_flight("C2", at(1)).unwrap();
    links.link("C2", "RP2", None, at(2)).unwrap();
    assert!(matches!(
        links.get("C2").unwrap(),
        Some(Link::Linked { .. })
    ));
}

fn a_returning_customer_keeps_its_terminated_participant_in_the_history(state: &State) {
    let links = Links::open(state, scope("-")).unwrap();
    links.link("C1", "RP1", None, at(0)).unwrap();
    links.terminated("C1", "RP1", at(1)).unwrap();
    assert!(
        links.linked().unwrap().is_empty(),
        "terminated is not linked"
    );
    links.create_in_flight("C1", at(2)).unwrap();
    links.link("C1", "RP2", None, at(3)).unwrap();
    let rows = links.list().unwrap();
    let states: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.participant.as_deref().unwrap(), r.state.as_str()))
        .collect();
    assert_eq!(states, [("RP1", "replaced"), ("RP2", "linked")]);
}

#[test]
fn links_of_an_older_version_move_to_the_store_that_adopts_them() {
    let dir = tempfile::tempdir().unwrap();
    let conn = crate::sqlite::connect(&dir.path().join(crate::ledger::LEDGER_FILE)).unwrap();
    conn.execute_batch(
        "CREATE TABLE crm_links (partner_customer_id TEXT PRIMARY KEY, participant_number TEXT,
         accounts_receivable TEXT, state TEXT NOT NULL, detail TEXT, updated_at TEXT NOT NULL);
         INSERT INTO crm_links VALUES ('C1', 'RP1', NULL, 'linked', NULL, 't');",
    )
    .unwrap();
    let mut links = Links::open(&State::local(dir.path().to_owned()), scope("north")).unwrap();
    assert_eq!(links.legacy_links().unwrap(), 1);
    assert_eq!(links.adopt_legacy_links().unwrap(), 1);
    assert_eq!(links.legacy_links().unwrap(), 0);
    assert_eq!(
        links.linked().unwrap(),
        [("C1".to_owned(), "RP1".to_owned())]
    );
}

/// One `#[test]` per behaviour and backend.
macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(&crate::state::State::local(dir.path().to_owned()));
                }
            )*
        }
        mod on_postgres {
            $(
                #[test]
                fn $name() {
                    let Some(target) = crate::state::testing::fresh_database(stringify!($name)) else {
                        return;
                    };
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(&crate::state::State {
                        dir: dir.path().to_owned(),
                        postgres: Some(std::sync::Arc::new(target)),
                    });
                }
            )*
        }
    };
}

backends!(
    links_survive_reopening_and_settle_needs_attention,
    two_stores_never_see_each_others_links,
    a_create_in_flight_reads_as_needing_attention_until_settled,
    a_returning_customer_keeps_its_terminated_participant_in_the_history,
);
