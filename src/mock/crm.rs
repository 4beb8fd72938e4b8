//! The mock's CRM.COM side (docs/crm.md): tokens that are issued, expire and are released; rewards
//! participants numbered `RP0000000001`…, each on an accounts receivable numbered `ACR0000000001`…; and
//! the methods rrfeed uses, answering in CRM.COM's `{"data", "status"}` envelope. Pure: the caller
//! passes the time and the parsed parameters.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::crm::wire::{
    AccountsReceivableChoice, Envelope, Identifier, Method, Participant, Status, TerminationReason,
};

/// How long a token lives (CRM.COM: two hours from issue).
pub const TOKEN_LIFE: Duration = Duration::from_secs(2 * 3600);

/// The one user the mock accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrmAccount {
    pub username: String,
    pub password: String,
    pub organisation: String,
}

impl CrmAccount {
    pub fn demo() -> Self {
        CrmAccount {
            username: "demo-crm-user".into(),
            password: "demo-crm-password".into(),
            organisation: "DEMO".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredParticipant {
    pub number: String,
    pub accounts_receivable: String,
    pub life_cycle_state: String,
    pub udf_strings: [Option<String>; 8],
    pub spend_blocking: bool,
    pub sign_up_on: String,
    pub schemes: Vec<String>,
    pub access_tokens: Vec<String>,
    pub termination_reason: Option<TerminationReason>,
    /// The participant this one's wallet went to when it was terminated.
    pub wallet_moved_to: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredAccount {
    pub number: String,
    pub name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Everything the mock's CRM.COM holds.
#[derive(Debug)]
pub struct CrmState {
    account: CrmAccount,
    token_life: Duration,
    tokens: HashMap<String, Instant>,
    issued: u64,
    pub released: u64,
    pub participants: BTreeMap<String, StoredParticipant>,
    pub accounts: BTreeMap<String, StoredAccount>,
    /// Calls per method that changed something (a second sync of the same file must make none).
    pub writes: BTreeMap<&'static str, u64>,
}

/// A failure in CRM.COM's words.
fn failure(code: &str, message: impl Into<String>) -> Envelope<Value> {
    Envelope {
        data: None,
        status: Status::failure(code, &message.into()),
    }
}

fn success(data: impl Serialize) -> Envelope<Value> {
    Envelope {
        data: Some(serde_json::to_value(data).expect("answers serialize")),
        status: Status::ok(),
    }
}

type Answer = Result<Value, Envelope<Value>>;

impl CrmState {
    pub fn new(account: CrmAccount, token_life: Duration) -> Self {
        CrmState {
            account,
            token_life,
            tokens: HashMap::new(),
            issued: 0,
            released: 0,
            participants: BTreeMap::new(),
            accounts: BTreeMap::new(),
            writes: BTreeMap::new(),
        }
    }

    /// Handles one call; `params` is the POST body or the GET query (identifiers as JSON text).
    pub fn handle(
        &mut self,
        method: Method,
        params: &Map<String, Value>,
        now: Instant,
    ) -> Envelope<Value> {
        if method == Method::Login {
            return self.login(params, now);
        }
        if let Err(refused) = self.check_token(params, now) {
            return refused;
        }
        let answer = match method {
            Method::Login => unreachable!("handled above"),
            Method::Release => {
                let token = text(params, "token").unwrap_or_default();
                self.tokens.remove(&token);
                self.released += 1;
                Ok(json!({}))
            }
            Method::List => self.list(params),
            Method::Show => self
                .found(params, "rewards_participant_identifier")
                .map(|p| self.view(&p)),
            Method::Create => self.create(params),
            Method::Update => self.update(params),
            Method::Terminate => self.terminate(params),
            Method::EnableSpendBlocking | Method::DisableSpendBlocking => {
                self.spend_blocking(params, method == Method::EnableSpendBlocking)
            }
            Method::CalculateTotalAwardedAmount => self.awarded(params),
        };
        match answer {
            Ok(data) => {
                if method.writes() {
                    *self.writes.entry(method.path()).or_default() += 1;
                }
                success(data)
            }
            Err(refused) => refused,
        }
    }

    fn login(&mut self, params: &Map<String, Value>, now: Instant) -> Envelope<Value> {
        let given = |key: &str| text(params, key);
        if given("username").as_deref() != Some(&self.account.username)
            || given("password").as_deref() != Some(&self.account.password)
            || given("organisation").as_deref() != Some(&self.account.organisation)
        {
            return failure(
                "AUTHENTICATION_FAILED",
                "Invalid username, password or organisation",
            );
        }
        self.issued += 1;
        let token = format!("{:032X}", 0xC0FFEE_u64 * 1_000_003 + self.issued);
        self.tokens.insert(token.clone(), now);
        success(json!({ "token": token }))
    }

    fn check_token(
        &mut self,
        params: &Map<String, Value>,
        now: Instant,
    ) -> Result<(), Envelope<Value>> {
        let life = self.token_life;
        let valid = text(params, "token")
            .and_then(|t| self.tokens.get(&t).copied())
            .is_some_and(|issued| now.saturating_duration_since(issued) < life);
        if valid {
            Ok(())
        } else {
            Err(failure(
                "INVALID_TOKEN",
                "The token is invalid or has expired",
            ))
        }
    }

    /// Ages every live token by `by` (tests make them expire).
    pub fn backdate_tokens(&mut self, by: Duration) {
        for issued in self.tokens.values_mut() {
            *issued = issued.checked_sub(by).unwrap_or(*issued);
        }
    }

    /// How many logins succeeded (tokens issued).
    pub fn logins(&self) -> u64 {
        self.issued
    }

    pub fn live_tokens(&self) -> usize {
        self.tokens.len()
    }

    fn found(
        &self,
        params: &Map<String, Value>,
        key: &str,
    ) -> Result<StoredParticipant, Envelope<Value>> {
        let id = identifier(params, key)?;
        match &id {
            Identifier::Number(n) => self.participants.get(n).cloned(),
            _ => None,
        }
        .ok_or_else(|| {
            failure(
                "NOT_FOUND",
                format!("No rewards participant {}", id.value()),
            )
        })
    }

    /// A participant as CRM.COM shows it (the fields rrfeed reads, as the vendor names them).
    fn view(&self, p: &StoredParticipant) -> Value {
        let account = &self.accounts[&p.accounts_receivable];
        let mut value = json!({
            "number": p.number,
            "id": format!("ID-{}", p.number),
            "life_cycle_state": p.life_cycle_state,
            "sign_up_on": p.sign_up_on,
            "spend_blocking_state": { "enabled": p.spend_blocking },
            "accounts_receivable": {
                "number": account.number,
                "name": account.name,
                "account_owner": { "first_name": account.first_name, "last_name": account.last_name },
            },
            "participating_schemes_set": p.schemes.iter().map(|s| json!({"scheme": {"name": s}})).collect::<Vec<_>>(),
            "access_tokens_set": p.access_tokens.iter().map(|code| json!({"authentication_code": code, "life_cycle_state": "EFFECTIVE"})).collect::<Vec<_>>(),
        });
        for (i, udf) in p.udf_strings.iter().enumerate() {
            value[format!("udf_string_{}", i + 1)] = json!(udf);
        }
        value
    }

    fn list(&self, params: &Map<String, Value>) -> Answer {
        let account = identifier(params, "accounts_receivable_identifier")?;
        let state = text(params, "life_cycle_state");
        let offset = number(params, "offset").unwrap_or(0);
        let limit = number(params, "number_of_results").unwrap_or(50);
        let found: Vec<Value> = self
            .participants
            .values()
            .filter(|p| matches!(&account, Identifier::Number(n) if *n == p.accounts_receivable))
            .filter(|p| state.as_ref().is_none_or(|s| *s == p.life_cycle_state))
            .skip(offset)
            .take(limit)
            .map(|p| self.view(p))
            .collect();
        Ok(Value::Array(found))
    }

    fn create(&mut self, params: &Map<String, Value>) -> Answer {
        let request: crate::crm::wire::Create =
            serde_json::from_value(Value::Object(params.clone()))
                .map_err(|e| failure("INVALID_REQUEST", e.to_string()))?;
        let account = match &request.accounts_receivable {
            AccountsReceivableChoice::Existing {
                accounts_receivable_identifier: Identifier::Number(n),
            } if self.accounts.contains_key(n) => n.clone(),
            AccountsReceivableChoice::Existing {
                accounts_receivable_identifier,
            } => {
                return Err(failure(
                    "NOT_FOUND",
                    format!(
                        "No accounts receivable {}",
                        accounts_receivable_identifier.value()
                    ),
                ));
            }
            AccountsReceivableChoice::New {
                name,
                contact_information,
                ..
            } => {
                let number = format!("ACR{:010}", self.accounts.len() + 1);
                self.accounts.insert(
                    number.clone(),
                    StoredAccount {
                        number: number.clone(),
                        name: name.clone(),
                        first_name: Some(contact_information.first_name.clone()),
                        last_name: Some(contact_information.last_name.clone()),
                    },
                );
                number
            }
        };
        let number = format!("RP{:010}", self.participants.len() + 1);
        let mut udf_strings: [Option<String>; 8] = Default::default();
        for (i, slot) in udf_strings.iter_mut().enumerate() {
            *slot = text(
                &Map::from_iter(request.udf_strings.clone()),
                &format!("udf_string_{}", i + 1),
            );
        }
        let participant = StoredParticipant {
            number: number.clone(),
            accounts_receivable: account,
            life_cycle_state: "EFFECTIVE".into(),
            udf_strings,
            spend_blocking: false,
            sign_up_on: request.sign_up_on.clone(),
            schemes: request
                .participating_schemes_set
                .iter()
                .map(|s| s.reward_scheme_identifier.value().to_owned())
                .collect(),
            access_tokens: request
                .access_tokens_set
                .iter()
                .map(|t| t.authentication_code.clone())
                .collect(),
            termination_reason: None,
            wallet_moved_to: None,
        };
        self.participants.insert(number.clone(), participant);
        Ok(self.view(&self.participants[&number]))
    }

    fn update(&mut self, params: &Map<String, Value>) -> Answer {
        let found = self.found(params, "rewards_participant_identifier")?;
        if found.life_cycle_state == "TERMINATED" {
            return Err(failure(
                "INVALID_STATE",
                "only effective rewards participants can be updated",
            ));
        }
        let mut changes = Vec::new();
        for change in params
            .get("access_tokens_set")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let action = change
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let code = change
                .get("authentication_code")
                .or_else(|| change.pointer("/access_token_identifier/authentication_code"))
                .and_then(Value::as_str);
            match (action.to_ascii_lowercase().as_str(), code) {
                (action @ ("add_new" | "add_existing" | "remove"), Some(code)) => {
                    changes.push((action.to_owned(), code.to_owned()));
                }
                _ => {
                    return Err(failure(
                        "INVALID_REQUEST",
                        format!("access token change {change}"),
                    ));
                }
            }
        }
        for (action, code) in changes {
            if action == "add_existing" {
                // An existing token moves: it leaves the participant that held it.
                for other in self.participants.values_mut() {
                    other.access_tokens.retain(|c| *c != code);
                }
            }
            let tokens = &mut self
                .participants
                .get_mut(&found.number)
                .expect("found above")
                .access_tokens;
            match action.as_str() {
                "remove" => tokens.retain(|c| *c != code),
                _ => tokens.push(code),
            }
        }
        let participant = self
            .participants
            .get_mut(&found.number)
            .expect("found above");
        for (i, slot) in participant.udf_strings.iter_mut().enumerate() {
            let key = format!("udf_string_{}", i + 1);
            match params.get(&key) {
                None => {}
                Some(Value::Null) => *slot = None,
                Some(Value::String(s)) => *slot = Some(s.clone()),
                Some(other) => return Err(failure("INVALID_REQUEST", format!("{key} is {other}"))),
            }
        }
        let number = found.number;
        Ok(self.view(&self.participants[&number]))
    }

    fn terminate(&mut self, params: &Map<String, Value>) -> Answer {
        let request: crate::crm::wire::Terminate =
            serde_json::from_value(Value::Object(params.clone()))
                .map_err(|e| failure("INVALID_REQUEST", e.to_string()))?;
        if request.termination_reason == TerminationReason::Duplication
            && request.replaced_by_rewards_participant_identifier.is_none()
        {
            return Err(failure(
                "INVALID_REQUEST",
                "DUPLICATION needs replaced_by_rewards_participant_identifier",
            ));
        }
        let found = self.found(params, "rewards_participant_identifier")?;
        if found.life_cycle_state == "TERMINATED" {
            return Err(failure(
                "INVALID_STATE",
                format!("{} is already terminated", found.number),
            ));
        }
        let participant = self
            .participants
            .get_mut(&found.number)
            .expect("found above");
        participant.life_cycle_state = "TERMINATED".into();
        participant.termination_reason = Some(request.termination_reason);
        if request.transfer_wallet_amount == Some(true) {
            participant.wallet_moved_to = request
                .replaced_by_rewards_participant_identifier
                .as_ref()
                .map(|r| r.value().to_owned());
        }
        let number = found.number;
        Ok(self.view(&self.participants[&number]))
    }

    fn spend_blocking(&mut self, params: &Map<String, Value>, enable: bool) -> Answer {
        let found = self.found(params, "rewards_participant_identifier")?;
        self.participants
            .get_mut(&found.number)
            .expect("found above")
            .spend_blocking = enable;
        Ok(self.view(&self.participants[&found.number]))
    }

    fn awarded(&self, params: &Map<String, Value>) -> Answer {
        let found = self.found(params, "rewards_participant_identifier")?;
        // Date-times, as every example of the vendor's document writes them.
        for key in ["from_date", "to_date"] {
            if let Some(value) = text(params, key)
                && (value.as_bytes().get(10) != Some(&b'T')
                    || value.parse::<jiff::civil::DateTime>().is_err())
            {
                return Err(failure(
                    "INVALID_PARAMETER",
                    format!("{key} {value:?} is not a date-time YYYY-MM-DDTHH:MM:SS"),
                ));
            }
        }
        // Each scheme awarded 10 per participant: enough for `crm awarded` to show a sum.
        let awards: Vec<Value> = found
            .schemes
            .iter()
            .map(|s| json!({"scheme": {"name": s, "life_cycle_state": "EFFECTIVE"}, "total_awarded_amount": 10.0}))
            .collect();
        Ok(json!({
            "from_date": params.get("from_date"),
            "to_date": params.get("to_date"),
            "currency": {"code": "USD"},
            "reward_scheme_awards_set": awards,
            "total_awarded_amount": 10.0 * found.schemes.len() as f64,
        }))
    }

    /// The participants as the wire type reads them (for tests).
    pub fn participant(&self, number: &str) -> Option<Participant> {
        let p = self.participants.get(number)?;
        serde_json::from_value(self.view(p)).ok()
    }
}

fn text(params: &Map<String, Value>, key: &str) -> Option<String> {
    match params.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(params: &Map<String, Value>, key: &str) -> Option<usize> {
    text(params, key)?.parse().ok()
}

/// An identifier object given as an object (POST) or as JSON text (GET).
fn identifier(params: &Map<String, Value>, key: &str) -> Result<Identifier, Envelope<Value>> {
    let value = match params.get(key) {
        Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| e.to_string()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| e.to_string()),
        None => Err("missing".into()),
    };
    value.map_err(|why| failure("INVALID_REQUEST", format!("{key}: {why}")))
}

#[cfg(test)]
mod tests;
