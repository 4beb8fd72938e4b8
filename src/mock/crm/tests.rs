use serde_json::{Map, Value, json};

use super::*;

fn params(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn state() -> (CrmState, String, Instant) {
    let mut crm = CrmState::new(CrmAccount::demo(), TOKEN_LIFE);
    let now = Instant::now();
    let login = crm.handle(
        Method::Login,
        &params(json!({"username": "demo-crm-user", "password": "demo-crm-password", "organisation": "DEMO"})),
        now,
    );
    assert!(login.status.is_ok());
    let token = login.data.unwrap()["token"].as_str().unwrap().to_owned();
    (crm, token, now)
}

fn create_new(crm: &mut CrmState, token: &str, now: Instant, id: &str) -> String {
    let answer = crm.handle(
        Method::Create,
        &params(json!({
            "token": token,
            "sign_up_on": "2026-11-22T10:00:00",
            "sign_up_by_unit_identifier": {"name": "Dealer"},
            "accounts_receivable": {"action": "NEW", "name": "Ann Lee",
                "contact_information": {"action": "NEW", "type": "PERSON", "first_name": "Ann", "last_name": "Lee"}},
            "participating_schemes_set": [{"sign_up_on": "2026-11-22T10:00:00",
                "sign_up_by_unit_identifier": {"name": "Dealer"}, "reward_scheme_identifier": {"name": "Riders"}}],
            "udf_string_1": id,
            "udf_string_3": "ann@example.com",
        })),
        now,
    );
    assert!(answer.status.is_ok(), "{:?}", answer.status);
    answer.data.unwrap()["number"].as_str().unwrap().to_owned()
}

#[test]
fn login_create_show_update_and_list_by_accounts_receivable() {
    let (mut crm, token, now) = state();
    let number = create_new(&mut crm, &token, now, "C1");
    assert_eq!(number, "RP0000000001");
    let shown = crm.participant(&number).unwrap();
    assert_eq!(shown.udf_string(1), Some("C1"));
    let account = shown.accounts_receivable.unwrap().number.unwrap();
    assert_eq!(account, "ACR0000000001");
    let update = crm.handle(
        Method::Update,
        &params(
            json!({"token": token, "rewards_participant_identifier": {"number": number},
            "udf_string_3": null, "udf_string_4": "4145550101"}),
        ),
        now,
    );
    assert!(update.status.is_ok());
    let shown = crm.participant(&number).unwrap();
    assert_eq!(
        (shown.udf_string(3), shown.udf_string(4)),
        (None, Some("4145550101"))
    );
    assert_eq!(
        shown.udf_string(1),
        Some("C1"),
        "fields not sent are left alone"
    );
    let listed = crm.handle(
        Method::List,
        &params(json!({"token": token, "accounts_receivable_identifier": format!("{{\"number\":\"{account}\"}}"),
            "life_cycle_state": "EFFECTIVE", "number_of_results": "10", "offset": "0"})),
        now,
    );
    assert_eq!(listed.data.unwrap().as_array().unwrap().len(), 1);
    assert_eq!(crm.writes["rewards_participants/create"], 1);
    assert_eq!(crm.writes["rewards_participants/update"], 1);
}

#[test]
fn tokens_expire_after_two_hours_and_are_released() {
    let (mut crm, token, now) = state();
    let show = |crm: &mut CrmState, at| {
        crm.handle(
            Method::List,
            &params(
                json!({"token": token, "accounts_receivable_identifier": "{\"number\":\"X\"}"}),
            ),
            at,
        )
    };
    assert!(show(&mut crm, now).status.is_ok());
    let expired = show(&mut crm, now + TOKEN_LIFE);
    assert_eq!(expired.status.code, "INVALID_TOKEN", "{:?}", expired.status);
    let released = crm.handle(Method::Release, &params(json!({"token": token})), now);
    assert!(released.status.is_ok());
    assert_eq!(show(&mut crm, now).status.code, "INVALID_TOKEN");
    assert_eq!((crm.released, crm.live_tokens()), (1, 0));
}

#[test]
fn a_wrong_password_is_refused() {
    let mut crm = CrmState::new(CrmAccount::demo(), TOKEN_LIFE);
    let answer = crm.handle(
        Method::Login,
        &params(json!({"username": "demo-crm-user", "password": "nope", "organisation": "DEMO"})),
        Instant::now(),
    );
    assert_eq!(answer.status.code, "AUTHENTICATION_FAILED");
}

#[test]
fn terminate_spend_blocking_and_awarded_amounts() {
    let (mut crm, token, now) = state();
    let number = create_new(&mut crm, &token, now, "C1");
    let call =
        || params(json!({"token": token, "rewards_participant_identifier": {"number": number}}));
    assert!(
        crm.handle(Method::EnableSpendBlocking, &call(), now)
            .status
            .is_ok()
    );
    assert!(
        crm.participant(&number)
            .unwrap()
            .spend_blocking_state
            .unwrap()
            .enabled
    );
    let awarded = crm.handle(Method::CalculateTotalAwardedAmount, &call(), now);
    assert_eq!(awarded.data.unwrap()["total_awarded_amount"], 10.0);
    let duplicate = crm.handle(
        Method::Terminate,
        &params(
            json!({"token": token, "rewards_participant_identifier": {"number": number},
            "termination_reason": "DUPLICATION"}),
        ),
        now,
    );
    assert_eq!(duplicate.status.code, "INVALID_REQUEST");
    let mut terminate = call();
    terminate.insert("termination_reason".into(), json!("CUSTOMER_REQUEST"));
    assert!(
        crm.handle(Method::Terminate, &terminate, now)
            .status
            .is_ok()
    );
    assert_eq!(
        crm.participant(&number)
            .unwrap()
            .life_cycle_state
            .as_deref(),
        Some("TERMINATED")
    );
    assert_eq!(
        crm.handle(Method::Terminate, &terminate, now).status.code,
        "INVALID_STATE"
    );
    let unknown = crm.handle(
        Method::Show,
        &params(json!({"token": token, "rewards_participant_identifier": {"number": "RP9"}})),
        now,
    );
    assert_eq!(unknown.status.code, "NOT_FOUND");
}
