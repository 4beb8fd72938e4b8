//! The Rider Rewards dealer API on the wire (docs/protocol.md): endpoint paths, header names, request and response
//! bodies, the 25 customer fields and the vendor's error texts.
//!
//! Both the HTTP client and the mock server use these types, so they cannot drift apart. This module does
//! no IO and holds every wire name of the project: a correction to the vendor's spelling is a one-line
//! change here.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// Feed type of the customer feed, the only feed rrfeed uploads.
pub const FEED_CUSTOMERS: &str = "C";

/// The vendor refuses posts of more rows than this (docs/protocol.md).
pub const MAX_ROWS_PER_POST: usize = 1000;

/// Header names, spelled as the vendor documents them (HTTP compares them without case).
pub mod header {
    pub const PARTNER_API_KEY: &str = "PartnerAPIKey";
    pub const STORE_API_KEY: &str = "RRStoreAPIKey";
    pub const STORE_ID: &str = "RRStoreID";
    pub const TRANSACTION_ID: &str = "transactionid";
    pub const ADMIN_PASSWORD: &str = "PartnerAPIAdminPassword";
    pub const PARTNER_STORE_ID: &str = "PartnerStoreID";
}

/// Error texts the vendor documents. Matching is done by [`VendorError::classify`].
pub mod error_text {
    pub const AUTHENTICATION_FAILED: &str = "Authentication failed";
    pub const TOO_MANY_ROWS: &str = "There are more than 1000 rows of data within the post";

    /// The vendor's text (sic) when a post would take the running total past the declared total.
    pub fn over_expected(rows: usize) -> String {
        format!(
            "Tried to upload {rows}, causing the total to go larger then the expected upload total. "
        )
    }
}

/// The vendor's five endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    DealerList,
    ReadyFeed,
    BeginTransaction,
    UploadCustomers,
    EndTransaction,
}

impl Endpoint {
    pub const ALL: [Endpoint; 5] = [
        Endpoint::DealerList,
        Endpoint::ReadyFeed,
        Endpoint::BeginTransaction,
        Endpoint::UploadCustomers,
        Endpoint::EndTransaction,
    ];

    /// The path appended to the base URL.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::DealerList => "/getmydealerlist",
            Endpoint::ReadyFeed => "/readyfeedupload",
            Endpoint::BeginTransaction => "/begintransaction",
            Endpoint::UploadCustomers => "/uploadcustomerprofile",
            Endpoint::EndTransaction => "/endtransaction",
        }
    }

    /// The short name used in logs, fault specs and the mock's call log.
    pub fn short_name(self) -> &'static str {
        match self {
            Endpoint::DealerList => "dealers",
            Endpoint::ReadyFeed => "ready",
            Endpoint::BeginTransaction => "begin",
            Endpoint::UploadCustomers => "upload",
            Endpoint::EndTransaction => "end",
        }
    }

    /// Finds an endpoint by its short name or by its path without the slash.
    pub fn from_name(name: &str) -> Option<Endpoint> {
        Endpoint::ALL
            .into_iter()
            .find(|e| e.short_name() == name || &e.path()[1..] == name)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path()[1..])
    }
}

/// A count on the wire: sent as a digit string, accepted as a string or a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Count(pub u64);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Count {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl Visitor<'_> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative count as a string or a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                u64::try_from(v)
                    .map(Count)
                    .map_err(|_| E::custom(format!("negative count {v}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
                if v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64 {
                    Ok(Count(v as u64))
                } else {
                    Err(E::custom(format!("count {v} is not a whole number")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Count, E> {
                v.trim()
                    .parse()
                    .map(Count)
                    .map_err(|_| E::custom(format!("count {v:?} is not a whole number")))
            }
        }
        d.deserialize_any(CountVisitor)
    }
}

/// A text value from the server, accepted as a string, a number or a boolean.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Text(pub String);

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Text(s)),
            serde_json::Value::Number(n) => Ok(Text(n.to_string())),
            serde_json::Value::Bool(b) => Ok(Text(b.to_string())),
            other => Err(de::Error::custom(format!("expected text, found {other}"))),
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(s.to_owned())
    }
}

/// Lenient optional text: missing, null, a string or a number.
type OptText = Option<Text>;

fn text(s: &str) -> OptText {
    Some(Text::from(s))
}

// ---------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------

/// Body of `readyfeedupload`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadyFeedRequest {
    pub feedtype: String,
}

/// Body of `begintransaction` (inferred, docs/protocol.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BeginTransactionRequest {
    pub transactionsummary: BeginSummary,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BeginSummary {
    pub partnertransactionid: String,
    pub partnerstoreid: String,
    #[serde(rename = "RRStoreID")]
    pub rr_store_id: String,
    pub feedtype: String,
    pub startdate: Option<String>,
    pub enddate: Option<String>,
    pub expectedtotal: Count,
}

/// The `transactionsummary` of an `uploadcustomerprofile` post. The rows are spliced in by
/// [`write_upload_body`] so that rows serialized once are never serialized again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UploadSummary {
    pub transactionid: String,
    pub partnertransactionid: String,
    pub partnerstoreid: String,
    #[serde(rename = "RRStoreID")]
    pub rr_store_id: String,
    pub feedtype: String,
    pub startdate: Option<String>,
    pub enddate: Option<String>,
    pub totalrowssent: Count,
}

/// An `uploadcustomerprofile` body as the server reads it: the rows stay raw until checked.
#[derive(Debug, Deserialize)]
pub struct UploadRequest<'a> {
    pub transactionsummary: UploadSummary,
    #[serde(borrow)]
    pub rows: Vec<&'a serde_json::value::RawValue>,
}

/// Writes an `uploadcustomerprofile` body: the summary, then `rows`, each already a JSON object.
pub fn write_upload_body<'r>(
    summary: &UploadSummary,
    rows: impl IntoIterator<Item = &'r [u8]>,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"{\"transactionsummary\":");
    serde_json::to_writer(&mut *out, summary).expect("a summary always serializes");
    out.extend_from_slice(b",\"rows\":[");
    for (i, row) in rows.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(row);
    }
    out.extend_from_slice(b"]}");
}

/// Body of `endtransaction`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndTransactionRequest {
    pub transactionsummary: EndSummary,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndSummary {
    pub transactionid: String,
    pub partnertransactionid: String,
    pub partnerstoreid: String,
    pub feedtype: String,
    pub startdate: Option<String>,
    pub enddate: Option<String>,
}

// ---------------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------------

/// The text of `results.message` on success.
pub const SUCCESS: &str = "Success";

/// `results` of a successful `readyfeedupload`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadyFeedResults {
    pub message: String,
    #[serde(default)]
    pub feedtype: OptText,
    #[serde(default)]
    pub startdate: OptText,
    #[serde(default)]
    pub enddate: OptText,
}

impl ReadyFeedResults {
    pub fn customers() -> Self {
        Self {
            message: SUCCESS.into(),
            feedtype: text(FEED_CUSTOMERS),
            startdate: None,
            enddate: None,
        }
    }
}

/// `results` of a successful `begintransaction`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BeginResults {
    pub message: String,
    pub transactionid: Text,
    pub expectedtotal: Count,
    #[serde(default)]
    pub feedtype: OptText,
    #[serde(default)]
    pub startdate: OptText,
    #[serde(default)]
    pub enddate: OptText,
    #[serde(rename = "RRStoreID", default)]
    pub rr_store_id: OptText,
    #[serde(default)]
    pub partnerstoreid: OptText,
    #[serde(default)]
    pub partnertransactionid: OptText,
}

/// `results` of a successful `uploadcustomerprofile`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UploadResults {
    pub message: String,
    pub transactionid: Text,
    #[serde(default)]
    pub batchid: OptText,
    pub uploadedtotal: Count,
    pub runningtotal: Count,
    pub expectedtotal: Count,
    #[serde(default)]
    pub feedtype: OptText,
    #[serde(default)]
    pub startdate: OptText,
    #[serde(default)]
    pub enddate: OptText,
    #[serde(rename = "RRStoreID", default)]
    pub rr_store_id: OptText,
    #[serde(default)]
    pub partnerstoreid: OptText,
    #[serde(default)]
    pub partnertransactionid: OptText,
}

/// `results` of a successful `endtransaction`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndResults {
    pub message: String,
    pub transactionid: Text,
    #[serde(default)]
    pub partnertransactionid: OptText,
    #[serde(rename = "PartnerStoreID", default)]
    pub partner_store_id: OptText,
}

/// `results` of a successful `getmydealerlist`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DealerListResults {
    pub message: String,
    #[serde(rename = "PartnerAPIKey", default)]
    pub partner_api_key: OptText,
    #[serde(default)]
    pub totalauthorizedstores: Option<Count>,
}

/// One store of `getmydealerlist`'s top-level `authorizedstores` array.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthorizedStore {
    #[serde(default)]
    pub row_number: OptText,
    #[serde(rename = "PartnerStoreID", default)]
    pub partner_store_id: OptText,
    #[serde(default)]
    pub partner_activation_date: OptText,
    #[serde(rename = "RRStoreID", default)]
    pub rr_store_id: OptText,
    #[serde(rename = "RRStoreAPIKey", default)]
    pub rr_store_api_key: OptText,
    #[serde(rename = "CRMStoreID", default)]
    pub crm_store_id: OptText,
    #[serde(rename = "CRMStoreAPIKey", default)]
    pub crm_store_api_key: OptText,
    #[serde(rename = "LBLStoreID", default)]
    pub lbl_store_id: OptText,
    #[serde(rename = "LBLStoreAPIKey", default)]
    pub lbl_store_api_key: OptText,
    #[serde(default)]
    pub store_name: OptText,
    #[serde(default)]
    pub store_address: OptText,
    #[serde(default)]
    pub store_state: OptText,
    #[serde(default)]
    pub store_zip: OptText,
    #[serde(default)]
    pub store_country: OptText,
    #[serde(rename = "StoreURL", default)]
    pub store_url: OptText,
}

/// The whole `getmydealerlist` answer: `results` plus the top-level store array.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DealerListResponse {
    pub results: DealerListResults,
    #[serde(default)]
    pub authorizedstores: Vec<AuthorizedStore>,
}

/// The envelope every answer comes in.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub results: T,
}

/// A failure envelope's `results`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorResults {
    pub error: String,
}

/// Serializes a failure envelope: `{"results": {"error": text}}`.
pub fn error_body(text: &str) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        results: ErrorResults { error: text.into() },
    })
    .expect("an error envelope always serializes")
}

/// What a body said, once parsed: the step's results or the vendor's error text.
#[derive(Debug, PartialEq)]
pub enum Reply<T> {
    Success(T),
    Failure(VendorError),
}

/// Why a body could not be read as an answer. Always a protocol error (docs/transaction.md, exit code 76).
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("the answer is not JSON ({detail}): {snippet}")]
    NotJson { detail: String, snippet: String },
    #[error("the answer has no `results` object: {snippet}")]
    NoResults { snippet: String },
    /// `message` is as it appeared in the answer (JSON), or `missing`.
    #[error("the answer's message is {message}, not \"Success\"")]
    NotSuccess { message: String },
    #[error("the answer's results are not as documented: {detail}")]
    BadResults { detail: String },
}

/// Parses an answer whose success fields sit in `results` (every step but the dealer list).
///
/// Fails when the body is not the vendor's envelope, or a success lacks a documented field.
pub fn parse_reply<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<Reply<T>, WireError> {
    let doc = parse_envelope(body)?;
    match doc {
        Ok(results) => serde_json::from_value(results)
            .map(Reply::Success)
            .map_err(|e| WireError::BadResults {
                detail: e.to_string(),
            }),
        Err(failure) => Ok(Reply::Failure(failure)),
    }
}

/// Parses a `getmydealerlist` answer, whose store array sits beside `results`.
pub fn parse_dealer_list(body: &[u8]) -> Result<Reply<DealerListResponse>, WireError> {
    if let Err(failure) = parse_envelope(body)? {
        return Ok(Reply::Failure(failure));
    }
    serde_json::from_slice(body)
        .map(Reply::Success)
        .map_err(|e| WireError::BadResults {
            detail: e.to_string(),
        })
}

/// Splits a body into success `results` or a vendor failure; checks `message == "Success"`.
fn parse_envelope(body: &[u8]) -> Result<Result<serde_json::Value, VendorError>, WireError> {
    let doc: serde_json::Value = serde_json::from_slice(body).map_err(|e| WireError::NotJson {
        detail: e.to_string(),
        snippet: snippet(body),
    })?;
    let Some(results) = doc.get("results").filter(|r| r.is_object()) else {
        return Err(WireError::NoResults {
            snippet: snippet(body),
        });
    };
    if let Some(error) = results.get("error").filter(|e| !e.is_null()) {
        let text = match error {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return Ok(Err(VendorError::classify(&text)));
    }
    match results.get("message") {
        Some(serde_json::Value::String(m)) if m.trim().eq_ignore_ascii_case(SUCCESS) => {
            Ok(Ok(results.clone()))
        }
        other => Err(WireError::NotSuccess {
            message: other.map_or_else(|| "missing".into(), |m| m.to_string()),
        }),
    }
}

/// The start of a body, for error messages: at most 200 characters, on one line.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out.replace(['\r', '\n'], " ")
}

/// A `results.error` from the vendor, sorted into what the driver must tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VendorError {
    /// `Authentication failed`.
    AuthenticationFailed,
    /// `There are more than 1000 rows of data within the post`.
    TooManyRows,
    /// `Tried to upload N, causing the total to go larger then the expected upload total.`
    OverExpected { rows: Option<u64> },
    /// Any other text: undocumented, never retried.
    Other(String),
}

impl VendorError {
    /// Sorts an error text; the documented texts are matched loosely (case, spacing, "than"/"then").
    pub fn classify(text: &str) -> VendorError {
        let t = text.trim().to_ascii_lowercase();
        if t == error_text::AUTHENTICATION_FAILED.to_ascii_lowercase() {
            VendorError::AuthenticationFailed
        } else if t.starts_with("there are more than 1000 rows") {
            VendorError::TooManyRows
        } else if t.starts_with("tried to upload")
            && (t.contains("larger then the expected") || t.contains("larger than the expected"))
        {
            let rows = t
                .trim_start_matches("tried to upload")
                .split(',')
                .next()
                .and_then(|n| n.trim().parse().ok());
            VendorError::OverExpected { rows }
        } else {
            VendorError::Other(text.trim().to_owned())
        }
    }
}

impl fmt::Display for VendorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VendorError::AuthenticationFailed => f.write_str(error_text::AUTHENTICATION_FAILED),
            VendorError::TooManyRows => f.write_str(error_text::TOO_MANY_ROWS),
            VendorError::OverExpected { rows: Some(n) } => {
                f.write_str(error_text::over_expected(*n as usize).trim_end())
            }
            VendorError::OverExpected { rows: None } => {
                f.write_str("the post would take the total past the expected total")
            }
            VendorError::Other(text) => f.write_str(text),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Customer rows
// ---------------------------------------------------------------------------------------------------

/// The 25 fields of a customer row, in the vendor's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    PartnerCustomerId,
    RewardNumber,
    FirstName,
    LastName,
    Address,
    City,
    StateProvince,
    ZipOrPostalCode,
    Country,
    BirthMonth,
    BirthDay,
    BirthYear,
    PrimaryPhoneType,
    MobilePhone,
    HomePhone,
    WorkPhone,
    Class,
    ClubName,
    Gender,
    Email,
    HogNumber,
    HogExpireMonth,
    HogExpireDate,
    HogExpireYear,
    IsLocalHogChapterMember,
}

/// Number of fields in a customer row.
pub const FIELD_COUNT: usize = 25;

/// The wire names, indexed by `Field as usize`.
pub const FIELD_NAMES: [&str; FIELD_COUNT] = [
    "PartnerCustomerID",
    "CustomerRewardNumber",
    "CustomerFirstName",
    "CustomerLastName",
    "CustomerAddress",
    "CustomerCity",
    "CustomerStateProvince",
    "CustomerZipOrPostalCode",
    "CustomerCountry",
    "CustomerBirthMonth",
    "CustomerBirthDay",
    "CustomerBirthYear",
    "CustomerPrimaryPhoneType",
    "CustomerMobilePhone",
    "CustomerHomePhone",
    "CustomerWorkPhone",
    "CustomerClass",
    "CustomerClubName",
    "CustomerGender",
    "CustomerEmail",
    "CustomerNationalHOGNumber",
    "CustomerNationalHOGExpireMonth",
    "CustomerNationalHOGExpireDate",
    "CustomerNationalHOGExpireYear",
    "CustomerIsLocalHOGChapterMember",
];

impl Field {
    pub const ALL: [Field; FIELD_COUNT] = [
        Field::PartnerCustomerId,
        Field::RewardNumber,
        Field::FirstName,
        Field::LastName,
        Field::Address,
        Field::City,
        Field::StateProvince,
        Field::ZipOrPostalCode,
        Field::Country,
        Field::BirthMonth,
        Field::BirthDay,
        Field::BirthYear,
        Field::PrimaryPhoneType,
        Field::MobilePhone,
        Field::HomePhone,
        Field::WorkPhone,
        Field::Class,
        Field::ClubName,
        Field::Gender,
        Field::Email,
        Field::HogNumber,
        Field::HogExpireMonth,
        Field::HogExpireDate,
        Field::HogExpireYear,
        Field::IsLocalHogChapterMember,
    ];

    /// The wire name, e.g. `CustomerFirstName`.
    pub fn name(self) -> &'static str {
        FIELD_NAMES[self as usize]
    }

    /// Finds a field by its exact wire name.
    pub fn from_name(name: &str) -> Option<Field> {
        FIELD_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Field::ALL[i])
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Serializes 25 values as a customer object, every key present, in the vendor's order.
pub struct CustomerJson<'a, S: AsRef<str>>(pub &'a [S; FIELD_COUNT]);

impl<S: AsRef<str>> Serialize for CustomerJson<'_, S> {
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        let mut map = s.serialize_map(Some(FIELD_COUNT))?;
        for (name, value) in FIELD_NAMES.iter().zip(self.0.iter()) {
            map.serialize_entry(name, value.as_ref())?;
        }
        map.end()
    }
}

/// Appends 25 values as a customer object, every key present, in the vendor's order: the same JSON as
/// [`CustomerJson`], written directly (this runs once per row, so it skips serde's generic path).
pub fn write_customer_json<S: AsRef<str>>(values: &[S; FIELD_COUNT], out: &mut Vec<u8>) {
    for (key, value) in KEY_PREFIXES.iter().zip(values) {
        out.extend_from_slice(key.as_bytes());
        write_json_string_contents(value.as_ref(), out);
    }
    out.extend_from_slice(b"\"}");
}

/// What precedes each value in [`write_customer_json`]: `{"PartnerCustomerID":"`, then
/// `","CustomerRewardNumber":"` and so on, so that each field costs one copy of its key.
const KEY_PREFIXES: [&str; FIELD_COUNT] = [
    "{\"PartnerCustomerID\":\"",
    "\",\"CustomerRewardNumber\":\"",
    "\",\"CustomerFirstName\":\"",
    "\",\"CustomerLastName\":\"",
    "\",\"CustomerAddress\":\"",
    "\",\"CustomerCity\":\"",
    "\",\"CustomerStateProvince\":\"",
    "\",\"CustomerZipOrPostalCode\":\"",
    "\",\"CustomerCountry\":\"",
    "\",\"CustomerBirthMonth\":\"",
    "\",\"CustomerBirthDay\":\"",
    "\",\"CustomerBirthYear\":\"",
    "\",\"CustomerPrimaryPhoneType\":\"",
    "\",\"CustomerMobilePhone\":\"",
    "\",\"CustomerHomePhone\":\"",
    "\",\"CustomerWorkPhone\":\"",
    "\",\"CustomerClass\":\"",
    "\",\"CustomerClubName\":\"",
    "\",\"CustomerGender\":\"",
    "\",\"CustomerEmail\":\"",
    "\",\"CustomerNationalHOGNumber\":\"",
    "\",\"CustomerNationalHOGExpireMonth\":\"",
    "\",\"CustomerNationalHOGExpireDate\":\"",
    "\",\"CustomerNationalHOGExpireYear\":\"",
    "\",\"CustomerIsLocalHOGChapterMember\":\"",
];

/// Appends `text` escaped for the inside of a JSON string.
fn write_json_string_contents(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let needs_escape = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    // One pass without early exit, which the compiler vectorizes; escapes are rare.
    if !bytes.iter().fold(false, |seen, &b| {
        seen | (b < 0x20) | (b == b'"') | (b == b'\\')
    }) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            other => out.extend_from_slice(format!("\\u{other:04x}").as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A customer row as a server receives it: exactly the 25 keys, each a string or null.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CustomerRecord(pub [Option<String>; FIELD_COUNT]);

impl CustomerRecord {
    pub fn get(&self, field: Field) -> Option<&str> {
        self.0[field as usize].as_deref()
    }
}

impl Serialize for CustomerRecord {
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        let mut map = s.serialize_map(Some(FIELD_COUNT))?;
        for (name, value) in FIELD_NAMES.iter().zip(self.0.iter()) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for CustomerRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = CustomerRecord;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a customer object with the 25 documented keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CustomerRecord, A::Error> {
        let mut record = CustomerRecord::default();
        visit_fields(map, |field, map| {
            record.0[field as usize] = map.next_value::<Option<String>>()?;
            Ok(())
        })?;
        Ok(record)
    }
}

/// Checks that a customer row has exactly the 25 keys, each a string or null, without keeping the
/// values (a server storing the row as it came needs no more).
pub struct CustomerRowCheck;

impl<'de> Deserialize<'de> for CustomerRowCheck {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CheckVisitor)
    }
}

struct CheckVisitor;

impl<'de> Visitor<'de> for CheckVisitor {
    type Value = CustomerRowCheck;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a customer object with the 25 documented keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CustomerRowCheck, A::Error> {
        visit_fields(map, |_, map| map.next_value::<StringOrNull>().map(|_| ()))?;
        Ok(CustomerRowCheck)
    }
}

/// A value that must be a string or null; not kept.
struct StringOrNull;

impl<'de> Deserialize<'de> for StringOrNull {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StringOrNull;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or null")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<StringOrNull, E> {
                Ok(StringOrNull)
            }
            fn visit_unit<E: de::Error>(self) -> Result<StringOrNull, E> {
                Ok(StringOrNull)
            }
            fn visit_none<E: de::Error>(self) -> Result<StringOrNull, E> {
                Ok(StringOrNull)
            }
        }
        d.deserialize_any(V)
    }
}

/// Walks a customer object's keys: each must be one of the 25, once; all 25 must be there. `value`
/// reads the value of each key.
fn visit_fields<'de, A: MapAccess<'de>>(
    mut map: A,
    mut value: impl FnMut(Field, &mut A) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    let mut seen = [false; FIELD_COUNT];
    let mut next = 0;
    while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
        // Keys nearly always come in the documented order: try the expected one before searching.
        let field = match FIELD_NAMES.get(next) {
            Some(name) if *name == key => Some(Field::ALL[next]),
            _ => Field::from_name(&key),
        };
        let Some(field) = field else {
            return Err(de::Error::custom(format!("unknown key {key:?}")));
        };
        if std::mem::replace(&mut seen[field as usize], true) {
            return Err(de::Error::custom(format!("key {key:?} appears twice")));
        }
        next = field as usize + 1;
        value(field, &mut map)?;
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(de::Error::custom(format!(
            "key {:?} is missing",
            FIELD_NAMES[missing]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_sent_as_strings_and_read_from_strings_or_numbers() {
        assert_eq!(serde_json::to_string(&Count(1000)).unwrap(), "\"1000\"");
        let a: Count = serde_json::from_str("\"3000\"").unwrap();
        let b: Count = serde_json::from_str("3000").unwrap();
        let c: Count = serde_json::from_str("\" 7 \"").unwrap();
        assert_eq!((a, b, c), (Count(3000), Count(3000), Count(7)));
        assert!(serde_json::from_str::<Count>("\"-1\"").is_err());
        assert!(serde_json::from_str::<Count>("-1").is_err());
        assert!(serde_json::from_str::<Count>("\"ten\"").is_err());
    }

    #[test]
    fn an_error_is_a_failure_whatever_else_the_results_say() {
        let body = br#"{"results": {"error": "Authentication failed", "message": "Success"}}"#;
        let reply = parse_reply::<EndResults>(body).unwrap();
        assert_eq!(reply, Reply::Failure(VendorError::AuthenticationFailed));
    }

    #[test]
    fn a_success_without_the_success_message_is_a_protocol_error() {
        let body = br#"{"results": {"message": "Queued", "transactionid": "1"}}"#;
        let err = parse_reply::<EndResults>(body).unwrap_err();
        assert!(matches!(err, WireError::NotSuccess { .. }));
        let err = parse_reply::<EndResults>(b"<html>502 Bad Gateway</html>").unwrap_err();
        assert!(matches!(err, WireError::NotJson { .. }));
        let err = parse_reply::<EndResults>(br#"{"result": {}}"#).unwrap_err();
        assert!(matches!(err, WireError::NoResults { .. }));
    }

    #[test]
    fn the_vendors_sample_upload_answer_parses() {
        let body = br#"{ "results": { "message": "Success", "transactionid": "1232", "batchid": "1325", "uploadedtotal": "1000", "runningtotal": "3000", "expectedtotal": "4000", "feedtype": "C", "startdate": null, "enddate": null, "RRStoreID": "1215", "partnerstoreid": "154", "partnertransactionid": "154" } }"#;
        let Reply::Success(r) = parse_reply::<UploadResults>(body).unwrap() else {
            panic!("not a success")
        };
        assert_eq!(r.transactionid, Text::from("1232"));
        assert_eq!(
            (r.uploadedtotal, r.runningtotal, r.expectedtotal),
            (Count(1000), Count(3000), Count(4000))
        );
    }

    #[test]
    fn documented_error_texts_are_recognised() {
        assert_eq!(
            VendorError::classify("There are more than 1000 rows of data within the post"),
            VendorError::TooManyRows
        );
        assert_eq!(
            VendorError::classify(&error_text::over_expected(1000)),
            VendorError::OverExpected { rows: Some(1000) }
        );
        assert_eq!(
            VendorError::classify(" authentication failed "),
            VendorError::AuthenticationFailed
        );
        assert_eq!(
            VendorError::classify("Transaction not found"),
            VendorError::Other("Transaction not found".into())
        );
    }

    #[test]
    fn a_customer_record_needs_exactly_the_25_keys() {
        let values: [String; FIELD_COUNT] = std::array::from_fn(|i| format!("v{i}"));
        let json = serde_json::to_string(&CustomerJson(&values)).unwrap();
        let record: CustomerRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(record.get(Field::FirstName), Some("v2"));

        let mut obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&json).unwrap();
        obj.remove("CustomerEmail");
        let err = serde_json::from_value::<CustomerRecord>(obj.clone().into()).unwrap_err();
        assert!(err.to_string().contains("CustomerEmail"), "{err}");
        obj.insert("CustomerEmail".into(), serde_json::Value::Null);
        let text = serde_json::to_string(&obj).unwrap();
        assert!(serde_json::from_str::<CustomerRowCheck>(&text).is_ok());
        obj.insert("Nickname".into(), "x".into());
        let err = serde_json::from_value::<CustomerRecord>(obj.clone().into()).unwrap_err();
        assert!(err.to_string().contains("Nickname"), "{err}");
        let text = serde_json::to_string(&obj).unwrap();
        let err = serde_json::from_str::<CustomerRowCheck>(&text)
            .err()
            .unwrap();
        assert!(err.to_string().contains("Nickname"), "{err}");
        obj.remove("Nickname");
        obj.insert("CustomerEmail".into(), 7.into());
        let text = serde_json::to_string(&obj).unwrap();
        assert!(serde_json::from_str::<CustomerRowCheck>(&text).is_err());
    }

    proptest::proptest! {
        #[test]
        fn the_direct_writer_writes_what_serde_writes(values in proptest::array::uniform25(".*")) {
            let mut direct = Vec::new();
            write_customer_json(&values, &mut direct);
            let via_serde = serde_json::to_vec(&CustomerJson(&values)).unwrap();
            let a: serde_json::Value = serde_json::from_slice(&direct).unwrap();
            let b: serde_json::Value = serde_json::from_slice(&via_serde).unwrap();
            proptest::prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn the_key_prefixes_spell_the_field_names() {
        for (i, prefix) in KEY_PREFIXES.iter().enumerate() {
            let opening = if i == 0 { "{\"" } else { "\",\"" };
            assert_eq!(*prefix, format!("{opening}{}\":\"", FIELD_NAMES[i]));
        }
    }

    #[test]
    fn the_direct_writer_escapes_quotes_backslashes_and_controls() {
        let mut values: [String; FIELD_COUNT] = Default::default();
        values[0] = "a\"b\\c\nd\u{1}".into();
        let mut out = Vec::new();
        write_customer_json(&values, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(r#"{"PartnerCustomerID":"a\"b\\c\nd\u0001","#),
            "{text}"
        );
    }

    #[test]
    fn upload_bodies_splice_serialized_rows() {
        let summary = UploadSummary {
            transactionid: "t".into(),
            partnertransactionid: "p".into(),
            partnerstoreid: "s".into(),
            rr_store_id: "12".into(),
            feedtype: FEED_CUSTOMERS.into(),
            startdate: None,
            enddate: None,
            totalrowssent: Count(2),
        };
        let mut out = Vec::new();
        write_upload_body(&summary, [&b"{\"a\":1}"[..], b"{\"b\":2}"], &mut out);
        let parsed: UploadRequest = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed.transactionsummary, summary);
        assert_eq!(parsed.rows.len(), 2);
    }
}
