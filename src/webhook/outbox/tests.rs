//! The outbox's behaviour, the same tests for every backend (see `crate::state::testing`).

use super::*;
use crate::webhook::payload::Update;

fn update(key: &str, city: &str) -> Update {
    let raw = format!(r#"{{"PartnerCustomerID":"{key}","CustomerCity":"{city}"}}"#);
    Update {
        customer_key: format!("P:{key}"),
        customer: raw.clone(),
        digest: blake3::hash(raw.as_bytes()).to_hex().to_string(),
        raw,
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_795_000_000 + seconds).unwrap()
}

fn a_repeat_of_the_latest_update_is_stored_once_but_a_change_back_is_kept(outbox: &mut dyn Outbox) {
    let a = update("1", "Oak Creek");
    let b = update("1", "Milwaukee");
    let once = std::slice::from_ref(&a);
    let stored = outbox.store(&[once, once], at(0)).unwrap();
    assert_eq!(
        stored[0],
        [Stored {
            seq: 1,
            repeat: false
        }]
    );
    assert_eq!(
        stored[1],
        [Stored {
            seq: 1,
            repeat: true
        }]
    );
    let stored = outbox.store(&[&[b, a]], at(1)).unwrap();
    assert_eq!(stored[0].iter().filter(|s| s.repeat).count(), 0);
    assert_eq!(outbox.counts().unwrap().updates, 3);
}

fn exports_take_the_latest_pending_update_of_each_customer(outbox: &mut dyn Outbox) {
    outbox
        .store(
            &[&[update("1", "A"), update("2", "B"), update("1", "C")]],
            at(0),
        )
        .unwrap();
    let up_to = outbox.last_seq().unwrap();
    let rows = outbox.latest(up_to, false).unwrap();
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(outbox.mark_exported(up_to, at(5)).unwrap(), 3);
    outbox.store(&[&[update("2", "D")]], at(6)).unwrap();
    let counts = outbox.counts().unwrap();
    assert_eq!(
        (counts.pending, counts.pending_customers, counts.exported),
        (1, 1, 3)
    );
    let up_to = outbox.last_seq().unwrap();
    assert_eq!(outbox.latest(up_to, false).unwrap().len(), 1);
    assert_eq!(outbox.latest(up_to, true).unwrap().len(), 2);
}

fn updates_arriving_after_an_export_began_stay_pending(outbox: &mut dyn Outbox) {
    outbox.store(&[&[update("1", "A")]], at(0)).unwrap();
    let up_to = outbox.last_seq().unwrap();
    outbox.store(&[&[update("1", "B")]], at(1)).unwrap();
    let rows = outbox.latest(up_to, false).unwrap();
    assert!(rows[0].customer.contains("\"A\""));
    outbox.mark_exported(up_to, at(2)).unwrap();
    assert_eq!(outbox.counts().unwrap().pending, 1);
}

#[test]
fn what_was_committed_is_there_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    sqlite::SqliteOutbox::open(dir.path())
        .unwrap()
        .store(&[&[update("1", "A")]], at(0))
        .unwrap();
    let mut outbox = sqlite::SqliteOutbox::open(dir.path()).unwrap();
    assert_eq!(outbox.counts().unwrap().updates, 1);
}

#[test]
fn two_receivers_on_one_database_store_each_update_once() {
    let Some(target) = crate::state::testing::fresh_database("outbox_two_receivers") else {
        return;
    };
    // The vendor sends each update to both (a retry that the load balancer routed elsewhere).
    let updates: Vec<Update> = (0..200)
        .map(|i| update(&i.to_string(), "Oak Creek"))
        .collect();
    // Both receivers get every update, one at a time, at once.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let (target, updates) = (&target, &updates);
            scope.spawn(move || {
                let mut outbox = postgres::PgOutbox::open(target).unwrap();
                for u in updates {
                    outbox.store(&[std::slice::from_ref(u)], at(0)).unwrap();
                }
            });
        }
    });
    let mut outbox = postgres::PgOutbox::open(&target).unwrap();
    assert_eq!(outbox.counts().unwrap().updates, 200);
}

/// One `#[test]` per behaviour and backend.
macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let mut outbox = super::sqlite::SqliteOutbox::open(dir.path()).unwrap();
                    super::$name(&mut outbox);
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
                    let mut outbox = super::postgres::PgOutbox::open(&target).unwrap();
                    super::$name(&mut outbox);
                }
            )*
        }
    };
}

backends!(
    a_repeat_of_the_latest_update_is_stored_once_but_a_change_back_is_kept,
    exports_take_the_latest_pending_update_of_each_customer,
    updates_arriving_after_an_export_began_stay_pending,
);
