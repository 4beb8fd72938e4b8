//! CRM.COM's wire format (docs/crm.md): paths, the `{"data", "status"}` envelope, identifier
//! objects, and the requests and answers of the `rewards_participants` methods rrfeed uses. No IO.
//!
//! Answers are read leniently (unknown fields ignored, missing optional ones empty); requests are written
//! exactly: identifier objects carry one field, fields not to be touched are not sent, fields to clear
//! are sent as `null`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// The methods, as paths under the base URL (`https://<server>/crmapi/rest/v2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Login,
    Release,
    List,
    Show,
    Create,
    Update,
    Terminate,
    EnableSpendBlocking,
    DisableSpendBlocking,
    CalculateTotalAwardedAmount,
}

impl Method {
    pub const ALL: [Method; 10] = [
        Method::Login,
        Method::Release,
        Method::List,
        Method::Show,
        Method::Create,
        Method::Update,
        Method::Terminate,
        Method::EnableSpendBlocking,
        Method::DisableSpendBlocking,
        Method::CalculateTotalAwardedAmount,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Method::Login => "authentication/token",
            Method::Release => "authentication/token/release",
            Method::List => "rewards_participants/list",
            Method::Show => "rewards_participants/show",
            Method::Create => "rewards_participants/create",
            Method::Update => "rewards_participants/update",
            Method::Terminate => "rewards_participants/terminate",
            Method::EnableSpendBlocking => "rewards_participants/enable_spend_blocking",
            Method::DisableSpendBlocking => "rewards_participants/disable_spend_blocking",
            Method::CalculateTotalAwardedAmount => {
                "rewards_participants/calculate_total_awarded_amount"
            }
        }
    }

    /// `list` is a GET with its parameters in the query string; everything else is a POST of JSON.
    pub fn is_get(self) -> bool {
        self == Method::List
    }

    /// Whether the call changes something at CRM.COM (a `--dry-run` makes none of these).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Method::Create
                | Method::Update
                | Method::Terminate
                | Method::EnableSpendBlocking
                | Method::DisableSpendBlocking
        )
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// `status.code` of a success.
pub const OK: &str = "OK";

/// Every answer: `data` (absent or null on failures) and `status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    #[serde(default = "none")]
    pub data: Option<T>,
    pub status: Status,
}

fn none<T>() -> Option<T> {
    None
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub code: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl Status {
    pub fn ok() -> Self {
        Status {
            code: OK.into(),
            description: None,
            message: None,
        }
    }

    pub fn failure(code: &str, message: &str) -> Self {
        Status {
            code: code.into(),
            description: None,
            message: Some(message.into()),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.code == OK
    }

    /// The failure in words: the message, else the description, else the code.
    pub fn text(&self) -> String {
        [self.message.as_deref(), self.description.as_deref()]
            .into_iter()
            .flatten()
            .find(|t| !t.trim().is_empty())
            .map_or_else(|| self.code.clone(), |t| format!("{t} ({})", self.code))
    }
}

/// An identifier object: exactly one field (docs/crm.md), never a null second one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identifier {
    Number(String),
    Name(String),
    Id(String),
    AlternativeCode(String),
}

impl Identifier {
    pub fn number(number: impl Into<String>) -> Self {
        Identifier::Number(number.into())
    }

    pub fn name(name: impl Into<String>) -> Self {
        Identifier::Name(name.into())
    }

    fn key(&self) -> &'static str {
        match self {
            Identifier::Number(_) => "number",
            Identifier::Name(_) => "name",
            Identifier::Id(_) => "id",
            Identifier::AlternativeCode(_) => "alternative_code",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Identifier::Number(v)
            | Identifier::Name(v)
            | Identifier::Id(v)
            | Identifier::AlternativeCode(v) => v,
        }
    }

    /// The object as JSON text, for a GET's query string.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("identifiers serialize")
    }
}

impl Serialize for Identifier {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(self.key(), self.value())?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Identifier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct One;
        impl<'de> Visitor<'de> for One {
            type Value = Identifier;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an identifier object with one of number, name, id, alternative_code")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Identifier, A::Error> {
                let mut found = None;
                while let Some((key, value)) = map.next_entry::<String, Option<String>>()? {
                    let Some(value) = value else { continue };
                    let id = match key.as_str() {
                        "number" => Identifier::Number(value),
                        "name" => Identifier::Name(value),
                        "id" => Identifier::Id(value),
                        "alternative_code" => Identifier::AlternativeCode(value),
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["number", "name", "id", "alternative_code"],
                            ));
                        }
                    };
                    if found.replace(id).is_some() {
                        return Err(de::Error::custom("an identifier has exactly one field"));
                    }
                }
                found.ok_or_else(|| de::Error::custom("an identifier needs one field"))
            }
        }
        d.deserialize_map(One)
    }
}

/// `POST authentication/token`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub username: String,
    pub password: String,
    pub organisation: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginData {
    pub token: String,
}

/// A call that carries only the token (`authentication/token/release`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenOnly {
    pub token: String,
}

/// `show`, `enable_spend_blocking`, `disable_spend_blocking`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantCall {
    pub token: String,
    pub rewards_participant_identifier: Identifier,
}

/// `GET list`'s query parameters (besides the token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub accounts_receivable: Identifier,
    pub life_cycle_state: Option<String>,
    pub number_of_results: u32,
    pub offset: u32,
}

impl ListQuery {
    /// The query pairs, identifier objects as JSON text.
    pub fn pairs(&self, token: &str) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            ("token", token.to_owned()),
            (
                "accounts_receivable_identifier",
                self.accounts_receivable.to_json(),
            ),
        ];
        if let Some(state) = &self.life_cycle_state {
            pairs.push(("life_cycle_state", state.clone()));
        }
        pairs.push(("number_of_results", self.number_of_results.to_string()));
        pairs.push(("offset", self.offset.to_string()));
        pairs
    }
}

/// How a new participant gets its accounts receivable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "UPPERCASE")]
pub enum AccountsReceivableChoice {
    Existing {
        accounts_receivable_identifier: Identifier,
    },
    New {
        name: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        classification_identifier: Option<Identifier>,
        contact_information: NewContact,
    },
}

/// `{action: NEW, type: PERSON, first_name, last_name}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewContact {
    pub action: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub first_name: String,
    pub last_name: String,
}

impl NewContact {
    pub fn person(first_name: &str, last_name: &str) -> Self {
        NewContact {
            action: "NEW".into(),
            kind: "PERSON".into(),
            first_name: first_name.into(),
            last_name: last_name.into(),
        }
    }
}

/// One scheme a new participant signs up to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemeSignUp {
    pub sign_up_on: String,
    pub sign_up_by_unit_identifier: Identifier,
    pub reward_scheme_identifier: Identifier,
}

/// `{"action": "ADD_NEW", "authentication_code": ...}` (the vendor's examples also leave `action` out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccessToken {
    #[serde(default = "add_new")]
    pub action: String,
    pub authentication_code: String,
}

impl NewAccessToken {
    pub fn new(authentication_code: &str) -> Self {
        NewAccessToken {
            action: add_new(),
            authentication_code: authentication_code.into(),
        }
    }
}

fn add_new() -> String {
    "ADD_NEW".into()
}

/// `POST create`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Create {
    pub token: String,
    /// `YYYY-MM-DDTHH:MM:SS`, UTC.
    pub sign_up_on: String,
    pub sign_up_by_unit_identifier: Identifier,
    pub accounts_receivable: AccountsReceivableChoice,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participating_schemes_set: Vec<SchemeSignUp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_tokens_set: Vec<NewAccessToken>,
    /// `udf_string_1` … `udf_string_8` that have a value.
    #[serde(flatten)]
    pub udf_strings: BTreeMap<String, serde_json::Value>,
}

/// `POST update`: only the fields to change; `null` clears one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub token: String,
    pub rewards_participant_identifier: Identifier,
    /// Cards to add and remove (the update method's own examples write the actions in lower case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_tokens_set: Vec<AccessTokenChange>,
    #[serde(flatten)]
    pub udf_strings: BTreeMap<String, serde_json::Value>,
}

/// One change to a participant's access tokens in an `update`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AccessTokenChange {
    /// A new access token with this code.
    AddNew { authentication_code: String },
    /// An access token that exists already (on another participant) moves to this one.
    AddExisting {
        access_token_identifier: AccessTokenIdentifier,
    },
    /// The access token with this code is taken off the participant.
    Remove {
        access_token_identifier: AccessTokenIdentifier,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenIdentifier {
    pub authentication_code: String,
}

/// An access token as a participant's answer lists it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeldAccessToken {
    #[serde(default)]
    pub authentication_code: Option<String>,
    #[serde(default)]
    pub life_cycle_state: Option<String>,
}

/// Why a participant is terminated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TerminationReason {
    CustomerRequest,
    Fraud,
    Duplication,
}

/// `POST terminate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terminate {
    pub token: String,
    pub rewards_participant_identifier: Identifier,
    pub termination_reason: TerminationReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by_rewards_participant_identifier: Option<Identifier>,
    /// Whether the wallet's amount moves to the replacing participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_wallet_amount: Option<bool>,
}

/// `POST calculate_total_awarded_amount`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalculateAwarded {
    pub token: String,
    pub rewards_participant_identifier: Identifier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_date: Option<String>,
}

/// A participant as `show`, `list`, `create`, `update` and `terminate` answer it (what rrfeed reads).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub number: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub life_cycle_state: Option<String>,
    #[serde(default)]
    pub sign_up_on: Option<String>,
    #[serde(default)]
    pub accounts_receivable: Option<AccountsReceivable>,
    #[serde(default)]
    pub spend_blocking_state: Option<SpendBlockingState>,
    #[serde(default)]
    pub access_tokens_set: Vec<HeldAccessToken>,
    #[serde(default)]
    pub udf_string_1: Option<String>,
    #[serde(default)]
    pub udf_string_2: Option<String>,
    #[serde(default)]
    pub udf_string_3: Option<String>,
    #[serde(default)]
    pub udf_string_4: Option<String>,
    #[serde(default)]
    pub udf_string_5: Option<String>,
    #[serde(default)]
    pub udf_string_6: Option<String>,
    #[serde(default)]
    pub udf_string_7: Option<String>,
    #[serde(default)]
    pub udf_string_8: Option<String>,
}

impl Participant {
    /// The codes of the participant's cards (access tokens) that are not terminated.
    pub fn cards(&self) -> impl Iterator<Item = &str> {
        self.access_tokens_set
            .iter()
            .filter(|t| {
                t.life_cycle_state
                    .as_deref()
                    .is_none_or(|s| !s.eq_ignore_ascii_case("TERMINATED"))
            })
            .filter_map(|t| t.authentication_code.as_deref())
    }

    /// `udf_string_n` (1 to 8).
    pub fn udf_string(&self, n: u8) -> Option<&str> {
        match n {
            1 => self.udf_string_1.as_deref(),
            2 => self.udf_string_2.as_deref(),
            3 => self.udf_string_3.as_deref(),
            4 => self.udf_string_4.as_deref(),
            5 => self.udf_string_5.as_deref(),
            6 => self.udf_string_6.as_deref(),
            7 => self.udf_string_7.as_deref(),
            8 => self.udf_string_8.as_deref(),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountsReceivable {
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub life_cycle_state: Option<String>,
    #[serde(default)]
    pub account_owner: Option<AccountOwner>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountOwner {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendBlockingState {
    #[serde(default)]
    pub enabled: bool,
}

/// `calculate_total_awarded_amount`'s answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AwardedAmounts {
    #[serde(default)]
    pub from_date: Option<String>,
    #[serde(default)]
    pub to_date: Option<String>,
    #[serde(default)]
    pub currency: Option<Currency>,
    #[serde(default)]
    pub reward_scheme_awards_set: Vec<SchemeAward>,
    pub total_awarded_amount: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Currency {
    pub code: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemeAward {
    pub scheme: Scheme,
    pub total_awarded_amount: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scheme {
    pub name: String,
    #[serde(default)]
    pub life_cycle_state: Option<String>,
}

#[cfg(test)]
mod tests;
