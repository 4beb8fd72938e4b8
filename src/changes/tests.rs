use std::collections::BTreeMap;

use super::*;
use crate::customer::{Customer, Normalizer, RawCustomer};

fn customer(id: &str, email: &str, city: &str) -> Customer {
    let norm = Normalizer::new(jiff::civil::date(2026, 1, 1));
    let mut raw = RawCustomer::default();
    raw.set(Field::PartnerCustomerId, id);
    raw.set(Field::Email, email);
    raw.set(Field::City, city);
    norm.parse(&raw, &mut Vec::new())
}

/// The remembered state of `customers` (as an upload of them would leave it).
fn remembered(customers: &[Customer]) -> Vec<u8> {
    let mut log = ChangeLog::new(false);
    for (line, c) in (2..).zip(customers) {
        log.push(c, line).unwrap();
    }
    let mut w = KnownWriter::new(Vec::new(), &baseline::header("1001", Some(7))).unwrap();
    compare::<&[u8], _, CompareError>(log, None, &mut w, None, &mut |_| Ok(())).unwrap();
    w.finish().unwrap().1
}

fn night(
    before: Option<&[u8]>,
    tonight: &[Customer],
    report: Option<&mut ChangeReport>,
) -> (Comparison, Vec<u8>) {
    let (comparison, state, _) = night_with_repeats(before, tonight, report);
    (comparison, state)
}

/// A night whose customers start on lines 2, 3, ...; also gives the repeats found, as (line, line of
/// the first, id).
fn night_with_repeats(
    before: Option<&[u8]>,
    tonight: &[Customer],
    report: Option<&mut ChangeReport>,
) -> (Comparison, Vec<u8>, Vec<(u64, u64, String)>) {
    // Values are kept whenever there is a report: a report without a values column ignores them.
    let mut log = ChangeLog::new(report.is_some());
    for (line, c) in (2..).zip(tonight) {
        log.push(c, line).unwrap();
    }
    let baseline = before.map(|b| KnownReader::open(b).unwrap());
    let mut w = KnownWriter::new(Vec::new(), &baseline::header("1001", Some(8))).unwrap();
    let mut repeats = Vec::new();
    let mut repeat = |r: Repeat| -> Result<(), CompareError> {
        let id = String::from_utf8(r.id.to_vec()).unwrap();
        repeats.push((r.line, r.first_line, id));
        Ok(())
    };
    let comparison = compare(log, baseline, &mut w, report, &mut repeat).unwrap();
    (comparison, w.finish().unwrap().1, repeats)
}

fn hundred() -> Vec<Customer> {
    (0..100)
        .map(|i| customer(&format!("C{i:03}"), &format!("c{i}@example.com"), "Tampa"))
        .collect()
}

#[test]
fn a_first_upload_has_nothing_to_compare_and_is_never_refused() {
    let (comparison, state) = night(None, &hundred(), None);
    assert_eq!(comparison.counts, None);
    assert!(comparison.churn_guard(0.0).is_ok());
    let mut reader = KnownReader::open(state.as_slice()).unwrap();
    let mut ids = Vec::new();
    while let Some(k) = reader.next_known().unwrap() {
        ids.push(String::from_utf8(k.id.into_vec()).unwrap());
    }
    assert_eq!(ids.len(), 100);
    assert!(ids.is_sorted());
}

#[test]
fn a_night_counts_and_reports_exactly_what_changed() {
    let before = remembered(&hundred());
    let mut tonight: Vec<Customer> = hundred().into_iter().skip(10).collect();
    for c in tonight.iter_mut().take(7) {
        let id = c.get(Field::PartnerCustomerId).to_owned();
        *c = customer(&id, c.get(Field::Email), "Orlando");
    }
    for i in 0..5 {
        tonight.insert(0, customer(&format!("N{i}"), "", ""));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("changes.csv");
    let mut report = ChangeReport::create(&path, false).unwrap();
    let (comparison, _) = night(Some(&before), &tonight, Some(&mut report));
    let counts = comparison.counts.unwrap();
    assert_eq!(
        counts,
        ChangeCounts {
            added: 5,
            removed: 10,
            changed: 7,
            unchanged: 83
        }
    );
    assert_eq!(comparison.since_run, Some(7));
    assert_eq!(comparison.examples, ["C000", "C001", "C002"]);
    drop(report);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "change,PartnerCustomerID,fields");
    assert_eq!(lines.len(), 1 + 5 + 10 + 7);
    assert!(lines.contains(&"removed,C009,"));
    assert!(lines.contains(&"changed,C010,CustomerCity"), "{text}");
    assert!(lines.contains(&"added,N4,"));
    assert!(
        !text.contains("Orlando"),
        "no values without --changes-values"
    );
}

#[test]
fn values_are_written_only_when_asked() {
    let before = remembered(&hundred()[..2]);
    let tonight = [
        customer("C000", "c0@example.com", "Orlando"),
        customer("C002", "new@example.com", ""),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("changes.csv");
    let mut report = ChangeReport::create(&path, true).unwrap();
    night(Some(&before), &tonight, Some(&mut report));
    drop(report);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("change,PartnerCustomerID,fields,values\n"));
    assert!(
        text.contains(r#"changed,C000,CustomerCity,"{""CustomerCity"":""Orlando""}""#),
        "{text}"
    );
    assert!(text.contains("removed,C001,,\n"), "{text}");
    assert!(
        text.contains(r#""CustomerEmail"":""new@example.com"""#),
        "{text}"
    );
}

#[test]
fn customers_without_an_id_and_repeated_ids_are_counted_not_compared() {
    let before = remembered(&hundred()[..3]);
    let mut tonight = hundred()[..3].to_vec();
    tonight.push(customer("", "x@example.com", ""));
    tonight.push(customer("C001", "other@example.com", ""));
    tonight.push(customer("C001", "third@example.com", ""));
    let (comparison, _, repeats) = night_with_repeats(Some(&before), &tonight, None);
    assert_eq!(comparison.without_id, 1);
    assert_eq!(comparison.repeated, 2);
    assert_eq!(
        repeats,
        [(6, 3, "C001".to_owned()), (7, 3, "C001".to_owned())],
        "each later line is named with the first"
    );
    assert_eq!(
        comparison.counts.unwrap(),
        ChangeCounts {
            unchanged: 3,
            ..ChangeCounts::default()
        },
        "the first C001 is compared"
    );
}

#[test]
fn the_churn_guard_refuses_past_its_ratio_and_names_examples() {
    let before = remembered(&hundred());
    let tonight: Vec<Customer> = (0..100)
        .map(|i| {
            let id = if i < 60 {
                format!("X{i:03}")
            } else {
                format!("C{i:03}")
            };
            customer(&id, &format!("c{i}@example.com"), "Tampa")
        })
        .collect();
    let (comparison, _) = night(Some(&before), &tonight, None);
    let err = comparison.churn_guard(0.5).unwrap_err();
    assert!(err.contains("60 of the 100 customers"), "{err}");
    assert!(
        err.contains("removed (60)") && err.contains("changed (0)"),
        "{err}"
    );
    assert!(err.contains("C000, C001, C002"), "{err}");
    assert!(
        comparison.churn_guard(0.6).is_ok(),
        "exactly the ratio passes"
    );
}

proptest::proptest! {
    #[test]
    fn the_counts_match_a_map_of_both_nights(
        before in proptest::collection::btree_map(0u8..40, 0u8..3, 0..30),
        tonight in proptest::collection::btree_map(0u8..40, 0u8..3, 0..30),
    ) {
        let make = |m: &BTreeMap<u8, u8>| -> Vec<Customer> {
            m.iter().rev().map(|(id, v)| customer(&format!("P{id}"), "", &format!("city {v}"))).collect()
        };
        let (comparison, _) = night(Some(&remembered(&make(&before))), &make(&tonight), None);
        let counts = comparison.counts.unwrap();
        let both = |same: bool| before.iter().filter(|(k, v)| tonight.get(k).is_some_and(|t| (t == *v) == same)).count() as u64;
        proptest::prop_assert_eq!(counts.added, tonight.keys().filter(|k| !before.contains_key(k)).count() as u64);
        proptest::prop_assert_eq!(counts.removed, before.keys().filter(|k| !tonight.contains_key(k)).count() as u64);
        proptest::prop_assert_eq!(counts.changed, both(false));
        proptest::prop_assert_eq!(counts.unchanged, both(true));
    }
}
