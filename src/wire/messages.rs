//! Request bodies, the answers of each step, the envelope they come in, and how a body is parsed into a
//! success or the vendor's failure.

use super::*;

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
    write_upload_body_head(summary, out);
    for (i, row) in rows.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(row);
    }
    write_upload_body_tail(out);
}

/// Writes the start of an `uploadcustomerprofile` body, up to the opening of its `rows` array: the
/// caller appends the rows, comma-separated, then [`write_upload_body_tail`].
pub fn write_upload_body_head(summary: &UploadSummary, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"transactionsummary\":");
    serde_json::to_writer(&mut *out, summary).expect("a summary always serializes");
    out.extend_from_slice(b",\"rows\":[");
}

/// Closes a body begun by [`write_upload_body_head`].
pub fn write_upload_body_tail(out: &mut Vec<u8>) {
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
