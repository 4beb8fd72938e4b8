//! What a sync asks of CRM.COM for one customer (docs/crm.md), decided without IO: the fields a new
//! participant gets, and the changes an existing one needs — only the mapped fields whose value differs
//! from what CRM.COM holds (the server is the truth), an emptied value sent as `null` only when the
//! participant holds one.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

use super::wire::{
    AccessTokenChange, AccessTokenIdentifier, AccountsReceivableChoice, Create, Identifier,
    NewAccessToken, NewContact, Participant, SchemeSignUp, Update,
};
use crate::config::CrmSettings;
use crate::customer::Customer;

/// `sign_up_on`: `YYYY-MM-DDTHH:MM:SS`, the organisation's local date and time (`[crm] timezone`).
/// The vendor's document gives no zone; a UTC time would land in the future on a server west of UTC.
pub fn sign_up_on(now: Timestamp, zone: &jiff::tz::TimeZone) -> String {
    now.to_zoned(zone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

fn udf_key(slot: u8) -> String {
    format!("udf_string_{slot}")
}

/// The mapped udf values a customer should have at CRM.COM; `None` where the export has nothing.
pub fn desired(customer: &Customer, settings: &CrmSettings) -> Vec<(u8, Option<String>)> {
    settings
        .udf
        .iter()
        .map(|(slot, field)| {
            let value = customer.get(*field);
            (*slot, (!value.is_empty()).then(|| value.to_owned()))
        })
        .collect()
}

/// The `update` fields that bring `participant` to `desired`; empty when nothing changed.
pub fn changes(
    participant: &Participant,
    desired: &[(u8, Option<String>)],
) -> BTreeMap<String, Value> {
    desired
        .iter()
        .filter_map(|(slot, want)| {
            let held = participant.udf_string(*slot).filter(|v| !v.is_empty());
            match (want, held) {
                (Some(want), Some(held)) if want == held => None,
                (Some(want), _) => Some((udf_key(*slot), Value::String(want.clone()))),
                (None, Some(_)) => Some((udf_key(*slot), Value::Null)),
                (None, None) => None,
            }
        })
        .collect()
}

/// The access-token changes that make the participant's card follow the customer's
/// `access_token_field` (its reward number): the new code added, and the old one — the code the
/// participant's udf held for that field — removed. Cards rrfeed did not give are never removed.
pub fn token_changes(
    participant: &Participant,
    customer: &Customer,
    settings: &CrmSettings,
) -> Vec<AccessTokenChange> {
    let Some(field) = settings.access_token_field else {
        return Vec::new();
    };
    let held: Vec<&str> = participant.cards().collect();
    let wanted = customer.get(field);
    let previous = settings
        .udf
        .iter()
        .find(|(_, f)| *f == field)
        .and_then(|(slot, _)| participant.udf_string(*slot))
        .filter(|old| !old.is_empty() && *old != wanted);
    let mut changes = Vec::new();
    if !wanted.is_empty() && !held.contains(&wanted) {
        changes.push(AccessTokenChange::AddNew {
            authentication_code: wanted.to_owned(),
        });
    }
    if let Some(old) = previous.filter(|old| held.contains(old)) {
        changes.push(AccessTokenChange::Remove {
            access_token_identifier: AccessTokenIdentifier {
                authentication_code: old.to_owned(),
            },
        });
    }
    changes
}

/// The name CRM.COM holds for the participant's account owner, when it differs from the export's
/// (names are given only at create; the document has no way to change them).
pub fn name_difference(participant: &Participant, customer: &Customer) -> Option<String> {
    let owner = participant
        .accounts_receivable
        .as_ref()?
        .account_owner
        .as_ref()?;
    let held = format!(
        "{} {}",
        owner.first_name.as_deref().unwrap_or_default(),
        owner.last_name.as_deref().unwrap_or_default()
    );
    let wanted = format!(
        "{} {}",
        customer.get(crate::wire::Field::FirstName),
        customer.get(crate::wire::Field::LastName)
    );
    let same = held.trim().eq_ignore_ascii_case(wanted.trim()) || wanted.trim().is_empty();
    (!same).then(|| {
        format!(
            "CRM.COM has {:?}, the export {:?}",
            held.trim(),
            wanted.trim()
        )
    })
}

/// An `update` of `participant` with `changes` (the client adds the token).
pub fn update(
    participant: &str,
    changes: BTreeMap<String, Value>,
    access_tokens_set: Vec<AccessTokenChange>,
) -> Update {
    Update {
        token: String::new(),
        rewards_participant_identifier: Identifier::number(participant),
        access_tokens_set,
        udf_strings: changes,
    }
}

/// A `create` for a customer: on the accounts receivable numbered `accounts_receivable` when the export
/// names one, else on a new one for a person with the customer's name.
pub fn create(
    customer: &Customer,
    accounts_receivable: Option<&str>,
    settings: &CrmSettings,
    now: Timestamp,
) -> Create {
    let unit = Identifier::name(&settings.unit);
    let accounts_receivable = match accounts_receivable {
        Some(number) => AccountsReceivableChoice::Existing {
            accounts_receivable_identifier: Identifier::number(number),
        },
        None => {
            let first = customer.get(crate::wire::Field::FirstName);
            let last = customer.get(crate::wire::Field::LastName);
            let name = format!("{first} {last}").trim().to_owned();
            AccountsReceivableChoice::New {
                name: if name.is_empty() {
                    customer
                        .get(crate::wire::Field::PartnerCustomerId)
                        .to_owned()
                } else {
                    name
                },
                classification_identifier: settings.classification.as_deref().map(Identifier::name),
                contact_information: NewContact::person(first, last),
            }
        }
    };
    let signed_up = sign_up_on(now, &settings.timezone);
    let access_tokens_set = settings
        .access_token_field
        .map(|field| customer.get(field))
        .filter(|code| !code.is_empty())
        .map(|code| vec![NewAccessToken::new(code)])
        .unwrap_or_default();
    Create {
        token: String::new(),
        sign_up_on: signed_up.clone(),
        sign_up_by_unit_identifier: unit.clone(),
        accounts_receivable,
        participating_schemes_set: settings
            .schemes
            .iter()
            .map(|scheme| SchemeSignUp {
                sign_up_on: signed_up.clone(),
                sign_up_by_unit_identifier: unit.clone(),
                reward_scheme_identifier: Identifier::name(scheme),
            })
            .collect(),
        access_tokens_set,
        udf_strings: desired(customer, settings)
            .into_iter()
            .filter_map(|(slot, value)| value.map(|v| (udf_key(slot), Value::String(v))))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_UDF;
    use crate::crm::client::CrmLogin;
    use crate::customer::{Normalizer, RawCustomer};
    use crate::wire::Field;

    fn settings() -> CrmSettings {
        CrmSettings {
            base_url: "https://crm.example.com/crmapi/rest/v2".parse().unwrap(),
            login: CrmLogin {
                username: "u".into(),
                password: "p".to_owned().into(),
                organisation: "O".into(),
            },
            unit: "Dealer Sales".into(),
            classification: Some("Residential Customer".into()),
            schemes: vec!["Rider Rewards".into()],
            accounts_receivable_column: None,
            access_token_field: Some(Field::RewardNumber),
            udf: DEFAULT_UDF.to_vec(),
            timeout: std::time::Duration::from_secs(60),
            reauth_codes: vec!["INVALID_TOKEN".into()],
            timezone: jiff::tz::TimeZone::fixed(jiff::tz::offset(-6)),
        }
    }

    fn customer(pairs: &[(Field, &str)]) -> Customer {
        let mut raw = RawCustomer::default();
        for (field, value) in pairs {
            raw.set(*field, value);
        }
        Normalizer::new(jiff::civil::date(2026, 11, 22)).parse(&raw, &mut Vec::new())
    }

    fn held(udfs: [Option<&str>; 4]) -> Participant {
        let own = |v: Option<&str>| v.map(str::to_owned);
        Participant {
            number: "RP1".into(),
            udf_string_1: own(udfs[0]),
            udf_string_2: own(udfs[1]),
            udf_string_3: own(udfs[2]),
            udf_string_4: own(udfs[3]),
            ..Participant::default()
        }
    }

    #[test]
    fn only_changed_fields_are_sent_and_an_emptied_one_only_if_held() {
        let c = customer(&[
            (Field::PartnerCustomerId, "C1"),
            (Field::Email, "New@X.com"),
        ]);
        let want = desired(&c, &settings());
        let now_held = held([Some("C1"), None, Some("old@x.com"), Some("4145550101")]);
        let changed = changes(&now_held, &want);
        assert_eq!(
            changed,
            BTreeMap::from([
                ("udf_string_3".to_owned(), Value::from("new@x.com")),
                ("udf_string_4".to_owned(), Value::Null),
            ])
        );
        let same = held([Some("C1"), None, Some("new@x.com"), None]);
        assert!(changes(&same, &want).is_empty());
    }

    #[test]
    fn a_create_without_an_accounts_receivable_opens_one_for_the_person() {
        let c = customer(&[
            (Field::PartnerCustomerId, "C1"),
            (Field::FirstName, "Ann"),
            (Field::LastName, "Lee"),
            (Field::RewardNumber, "RR7"),
        ]);
        let now = Timestamp::from_second(1_795_000_000).unwrap();
        let create = create(&c, None, &settings(), now);
        let value = serde_json::to_value(&create).unwrap();
        assert_eq!(value["accounts_receivable"]["action"], "NEW");
        assert_eq!(value["accounts_receivable"]["name"], "Ann Lee");
        assert_eq!(
            value["accounts_receivable"]["contact_information"]["type"],
            "PERSON"
        );
        assert_eq!(
            value["accounts_receivable"]["classification_identifier"]["name"],
            "Residential Customer"
        );
        // 11:06:40 UTC is 05:06:40 six hours west of UTC (Chicago in winter).
        assert_eq!(value["sign_up_on"], "2026-11-18T05:06:40");
        assert_eq!(
            value["participating_schemes_set"][0]["reward_scheme_identifier"]["name"],
            "Rider Rewards"
        );
        assert_eq!(value["access_tokens_set"][0]["authentication_code"], "RR7");
        assert_eq!(value["udf_string_1"], "C1");
        assert!(
            value.get("udf_string_3").is_none(),
            "empty values are not sent"
        );
        let existing =
            serde_json::to_value(super::create(&c, Some("ACR9"), &settings(), now)).unwrap();
        assert_eq!(
            existing["accounts_receivable"],
            serde_json::json!({"action": "EXISTING", "accounts_receivable_identifier": {"number": "ACR9"}})
        );
    }
}
