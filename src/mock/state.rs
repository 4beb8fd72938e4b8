//! The mock's vendor logic (README "The mock server") as a plain state machine: stores, keys, open transactions, running
//! totals, imports and the purge of transactions never ended. No IO and no clock of its own: the caller
//! passes `now`, so the purge is testable with paused time.
//!
//! It is strict on purpose: every header, key, count and total a real server could check is checked, so a
//! client bug shows up here rather than at a dealer's store.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use crate::wire::{
    AuthorizedStore, BeginResults, BeginTransactionRequest, Count, CustomerRecord,
    CustomerRowCheck, DealerListResponse, DealerListResults, EndResults, EndTransactionRequest,
    FEED_CUSTOMERS, Field, MAX_ROWS_PER_POST, ReadyFeedRequest, ReadyFeedResults, SUCCESS, Text,
    UploadRequest, UploadResults, error_text,
};

/// A store the mock knows, with its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockStore {
    pub store_id: String,
    pub store_key: String,
    pub partner_store_id: String,
    pub name: String,
}

/// The partner and stores the mock accepts.
#[derive(Clone, Debug)]
pub struct Accounts {
    pub partner_key: String,
    pub admin_password: String,
    pub stores: Vec<MockStore>,
}

/// The credentials and ids a request carried in its headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Creds<'a> {
    pub partner_key: Option<&'a str>,
    pub store_key: Option<&'a str>,
    pub store_id: Option<&'a str>,
    pub admin_password: Option<&'a str>,
    pub transactionid: Option<&'a str>,
    pub partner_store_id: Option<&'a str>,
}

/// A refusal: the vendor's error text, and the HTTP status the mock answers it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub text: String,
}

fn refuse(status: u16, text: impl Into<String>) -> Refusal {
    Refusal {
        status,
        text: text.into(),
    }
}

fn auth_failed() -> Refusal {
    refuse(401, error_text::AUTHENTICATION_FAILED)
}

/// What one store holds. Rows are kept as the JSON they came in (checked, not parsed into fields), so
/// a million rows cost their size and no more.
#[derive(Clone, Debug, Default)]
pub struct StoreData {
    rows: Vec<Box<str>>,
    /// How many transactions were imported into this store.
    pub imports: u64,
    pub last_import: Option<String>,
}

impl StoreData {
    /// How many customers the store holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The customers, parsed.
    pub fn customers(&self) -> Vec<CustomerRecord> {
        self.rows
            .iter()
            .map(|row| serde_json::from_str(row).expect("rows were checked when they came in"))
            .collect()
    }
}

#[derive(Debug)]
struct Transaction {
    store_id: String,
    partnertransactionid: String,
    partnerstoreid: String,
    expected: u64,
    rows: Vec<Box<str>>,
    begun: Instant,
    ended: bool,
}

/// The whole vendor side.
#[derive(Debug)]
pub struct MockState {
    accounts: Accounts,
    purge_after: Duration,
    stores: BTreeMap<String, StoreData>,
    transactions: HashMap<String, Transaction>,
    next_transaction: u64,
    next_batch: u64,
}

impl MockState {
    pub fn new(accounts: Accounts, purge_after: Duration) -> Self {
        let stores = accounts
            .stores
            .iter()
            .map(|s| (s.store_id.clone(), StoreData::default()))
            .collect();
        Self {
            accounts,
            purge_after,
            stores,
            transactions: HashMap::new(),
            next_transaction: 1,
            next_batch: 1,
        }
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    pub fn store(&self, store_id: &str) -> Option<&StoreData> {
        self.stores.get(store_id)
    }

    /// A customer edits their own profile on the rewards website: `changes` (field name → new value,
    /// a string) are applied to the stored row whose PartnerCustomerID is `customer_id`. Returns the
    /// row as it is now, which the vendor would POST to the partner's webhook.
    ///
    /// Fails when the store or customer is unknown, or a change names no field or is not a string.
    pub fn edit_customer(
        &mut self,
        store_id: &str,
        customer_id: &str,
        changes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, String> {
        let data = self
            .stores
            .get_mut(store_id)
            .ok_or_else(|| format!("no store {store_id} holds customers"))?;
        for (key, value) in changes {
            if !Field::ALL.iter().any(|f| f.name() == key) {
                return Err(format!("{key} is not a customer field"));
            }
            if !value.is_string() {
                return Err(format!("{key}: the new value must be a string"));
            }
        }
        for row in &mut data.rows {
            let mut customer: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(row).expect("rows were checked when they came in");
            if customer
                .get(Field::PartnerCustomerId.name())
                .and_then(|v| v.as_str())
                != Some(customer_id)
            {
                continue;
            }
            customer.extend(changes.iter().map(|(k, v)| (k.clone(), v.clone())));
            let edited = serde_json::Value::Object(customer).to_string();
            *row = edited.clone().into_boxed_str();
            return Ok(edited);
        }
        Err(format!("store {store_id} has no customer {customer_id}"))
    }

    pub fn stores(&self) -> impl Iterator<Item = (&String, &StoreData)> {
        self.stores.iter()
    }

    /// Transactions begun and neither ended nor purged.
    pub fn open_transactions(&self) -> usize {
        self.transactions.values().filter(|t| !t.ended).count()
    }

    /// Checks the partner key, the store id and the store's key.
    fn authenticate(&self, creds: &Creds) -> Result<&MockStore, Refusal> {
        if creds.partner_key != Some(self.accounts.partner_key.as_str()) {
            return Err(auth_failed());
        }
        self.accounts
            .stores
            .iter()
            .find(|s| Some(s.store_id.as_str()) == creds.store_id)
            .filter(|s| Some(s.store_key.as_str()) == creds.store_key)
            .ok_or_else(auth_failed)
    }

    /// Forgets transactions never ended within the purge window (docs/protocol.md: 8 hours at the vendor).
    fn purge(&mut self, now: Instant) {
        let window = self.purge_after;
        self.transactions
            .retain(|_, t| t.ended || now.duration_since(t.begun) < window);
    }

    /// `getmydealerlist`.
    pub fn dealer_list(&self, creds: &Creds) -> Result<DealerListResponse, Refusal> {
        if creds.partner_key != Some(self.accounts.partner_key.as_str())
            || creds.admin_password != Some(self.accounts.admin_password.as_str())
        {
            return Err(auth_failed());
        }
        let stores: Vec<AuthorizedStore> = self
            .accounts
            .stores
            .iter()
            .filter(|s| {
                creds
                    .partner_store_id
                    .is_none_or(|p| p == s.partner_store_id)
            })
            .enumerate()
            .map(|(i, s)| authorized_store(i + 1, s))
            .collect();
        Ok(DealerListResponse {
            results: DealerListResults {
                message: SUCCESS.into(),
                partner_api_key: Some(Text(self.accounts.partner_key.clone())),
                totalauthorizedstores: Some(Count(stores.len() as u64)),
            },
            authorizedstores: stores,
        })
    }

    /// `readyfeedupload`.
    pub fn ready_feed(&self, creds: &Creds, body: &[u8]) -> Result<ReadyFeedResults, Refusal> {
        self.authenticate(creds)?;
        let request: ReadyFeedRequest = parse_body(body)?;
        check_feed(&request.feedtype)?;
        Ok(ReadyFeedResults::customers())
    }

    /// `begintransaction`: opens a transaction for the declared total.
    pub fn begin(
        &mut self,
        creds: &Creds,
        body: &[u8],
        now: Instant,
    ) -> Result<BeginResults, Refusal> {
        self.purge(now);
        let store = self.authenticate(creds)?.clone();
        let request: BeginTransactionRequest = parse_body(body)?;
        let summary = request.transactionsummary;
        check_feed(&summary.feedtype)?;
        check_store_echo(&summary.rr_store_id, &store)?;
        let id = format!("{}", 700_000 + self.next_transaction);
        self.next_transaction += 1;
        self.transactions.insert(
            id.clone(),
            Transaction {
                store_id: store.store_id.clone(),
                partnertransactionid: summary.partnertransactionid.clone(),
                partnerstoreid: summary.partnerstoreid.clone(),
                expected: summary.expectedtotal.0,
                rows: Vec::new(),
                begun: now,
                ended: false,
            },
        );
        Ok(BeginResults {
            message: SUCCESS.into(),
            transactionid: Text(id),
            expectedtotal: summary.expectedtotal,
            feedtype: Some(Text::from(FEED_CUSTOMERS)),
            startdate: None,
            enddate: None,
            rr_store_id: Some(Text(store.store_id)),
            partnerstoreid: Some(Text(summary.partnerstoreid)),
            partnertransactionid: Some(Text(summary.partnertransactionid)),
        })
    }

    /// `uploadcustomerprofile`: counts a post's rows into its transaction.
    pub fn upload(
        &mut self,
        creds: &Creds,
        body: &[u8],
        now: Instant,
    ) -> Result<UploadResults, Refusal> {
        self.purge(now);
        let store = self.authenticate(creds)?.clone();
        let request: UploadRequest = parse_body(body)?;
        let summary = &request.transactionsummary;
        check_feed(&summary.feedtype)?;
        check_store_echo(&summary.rr_store_id, &store)?;
        let id = transaction_header(creds, &summary.transactionid)?;
        let rows = parse_rows(&request)?;
        let batch = self.next_batch;
        let tx = self.open_transaction(id, &store)?;
        let n = rows.len() as u64;
        if tx.rows.len() as u64 + n > tx.expected {
            return Err(refuse(400, error_text::over_expected(rows.len())));
        }
        tx.rows.extend(rows);
        let results = UploadResults {
            message: SUCCESS.into(),
            transactionid: Text(id.to_owned()),
            batchid: Some(Text(batch.to_string())),
            uploadedtotal: Count(n),
            runningtotal: Count(tx.rows.len() as u64),
            expectedtotal: Count(tx.expected),
            feedtype: Some(Text::from(FEED_CUSTOMERS)),
            startdate: None,
            enddate: None,
            rr_store_id: Some(Text(store.store_id.clone())),
            partnerstoreid: Some(Text(tx.partnerstoreid.clone())),
            partnertransactionid: Some(Text(tx.partnertransactionid.clone())),
        };
        self.next_batch += 1;
        Ok(results)
    }

    /// `endtransaction`: imports the transaction if it received exactly its declared total, replacing the
    /// store's customers. Ending an ended transaction again answers the same success, with no second import.
    pub fn end(&mut self, creds: &Creds, body: &[u8], now: Instant) -> Result<EndResults, Refusal> {
        self.purge(now);
        let store = self.authenticate(creds)?.clone();
        let request: EndTransactionRequest = parse_body(body)?;
        let summary = request.transactionsummary;
        check_feed(&summary.feedtype)?;
        let id = transaction_header(creds, &summary.transactionid)?;
        let tx = self.transaction(id, &store)?;
        let answer = EndResults {
            message: SUCCESS.into(),
            transactionid: Text(id.to_owned()),
            partnertransactionid: Some(Text(tx.partnertransactionid.clone())),
            partner_store_id: Some(Text(tx.partnerstoreid.clone())),
        };
        if tx.ended {
            return Ok(answer);
        }
        let received = tx.rows.len() as u64;
        if received != tx.expected {
            return Err(refuse(
                400,
                format!(
                    "Transaction {id} received {received} rows but expected {}; nothing imported",
                    tx.expected
                ),
            ));
        }
        tx.ended = true;
        let rows = std::mem::take(&mut tx.rows);
        let data = self.stores.entry(store.store_id).or_default();
        data.rows = rows;
        data.imports += 1;
        data.last_import = Some(id.to_owned());
        Ok(answer)
    }

    fn transaction(&mut self, id: &str, store: &MockStore) -> Result<&mut Transaction, Refusal> {
        match self.transactions.get_mut(id) {
            Some(tx) if tx.store_id == store.store_id => Ok(tx),
            Some(_) => Err(refuse(
                400,
                format!("Transaction {id} belongs to another store"),
            )),
            None => Err(refuse(
                400,
                format!(
                    "Transaction {id} not found (never begun, or purged after it was left open)"
                ),
            )),
        }
    }

    fn open_transaction(
        &mut self,
        id: &str,
        store: &MockStore,
    ) -> Result<&mut Transaction, Refusal> {
        let tx = self.transaction(id, store)?;
        if tx.ended {
            return Err(refuse(400, format!("Transaction {id} has already ended")));
        }
        Ok(tx)
    }
}

fn authorized_store(row: usize, s: &MockStore) -> AuthorizedStore {
    let t = |v: &str| Some(Text(v.to_owned()));
    AuthorizedStore {
        row_number: t(&row.to_string()),
        partner_store_id: t(&s.partner_store_id),
        partner_activation_date: t("01/01/2024"),
        rr_store_id: t(&s.store_id),
        rr_store_api_key: t(&s.store_key),
        store_name: t(&s.name),
        store_country: t("USA"),
        ..AuthorizedStore::default()
    }
}

fn parse_body<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| refuse(400, format!("Malformed request body: {e}")))
}

fn check_feed(feedtype: &str) -> Result<(), Refusal> {
    if feedtype == FEED_CUSTOMERS {
        Ok(())
    } else {
        Err(refuse(400, format!("Unsupported feedtype {feedtype:?}")))
    }
}

fn check_store_echo(body_store_id: &str, store: &MockStore) -> Result<(), Refusal> {
    if body_store_id == store.store_id {
        Ok(())
    } else {
        Err(refuse(
            400,
            format!("RRStoreID {body_store_id:?} in the body does not match the header"),
        ))
    }
}

/// The `transactionid` header, which must match the body's.
fn transaction_header<'a>(creds: &Creds<'a>, in_body: &str) -> Result<&'a str, Refusal> {
    match creds.transactionid {
        Some(id) if id == in_body => Ok(id),
        Some(id) => Err(refuse(
            400,
            format!("transactionid header {id:?} does not match the body's {in_body:?}"),
        )),
        None => Err(refuse(400, "Missing transactionid header")),
    }
}

fn parse_rows(request: &UploadRequest) -> Result<Vec<Box<str>>, Refusal> {
    let n = request.rows.len();
    if n > MAX_ROWS_PER_POST {
        return Err(refuse(400, error_text::TOO_MANY_ROWS));
    }
    let declared = request.transactionsummary.totalrowssent.0;
    if declared != n as u64 {
        return Err(refuse(
            400,
            format!("totalrowssent is {declared} but the post holds {n} rows"),
        ));
    }
    request
        .rows
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            serde_json::from_str::<CustomerRowCheck>(raw.get())
                .map(|_| raw.get().into())
                .map_err(|e| refuse(400, format!("Row {} of the post: {e}", i + 1)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{BeginSummary, EndSummary, FIELD_COUNT, UploadSummary, write_upload_body};

    fn accounts() -> Accounts {
        Accounts {
            partner_key: "pk".into(),
            admin_password: "admin".into(),
            stores: vec![MockStore {
                store_id: "12".into(),
                store_key: "sk".into(),
                partner_store_id: "P12".into(),
                name: "Demo".into(),
            }],
        }
    }

    fn creds(tx: Option<&str>) -> Creds<'_> {
        Creds {
            partner_key: Some("pk"),
            store_key: Some("sk"),
            store_id: Some("12"),
            transactionid: tx,
            ..Creds::default()
        }
    }

    fn begin(state: &mut MockState, expected: u64, now: Instant) -> String {
        let body = serde_json::to_vec(&BeginTransactionRequest {
            transactionsummary: BeginSummary {
                partnertransactionid: "p1".into(),
                partnerstoreid: "P12".into(),
                rr_store_id: "12".into(),
                feedtype: "C".into(),
                startdate: None,
                enddate: None,
                expectedtotal: Count(expected),
            },
        })
        .unwrap();
        state
            .begin(&creds(None), &body, now)
            .unwrap()
            .transactionid
            .0
    }

    fn upload_body(tx: &str, rows: usize) -> Vec<u8> {
        let row = serde_json::to_vec(&crate::wire::CustomerJson(&std::array::from_fn::<
            &str,
            FIELD_COUNT,
            _,
        >(|_| "x")))
        .unwrap();
        let mut out = Vec::new();
        let summary = UploadSummary {
            transactionid: tx.into(),
            partnertransactionid: "p1".into(),
            partnerstoreid: "P12".into(),
            rr_store_id: "12".into(),
            feedtype: "C".into(),
            startdate: None,
            enddate: None,
            totalrowssent: Count(rows as u64),
        };
        write_upload_body(&summary, std::iter::repeat_n(&row[..], rows), &mut out);
        out
    }

    fn end_body(tx: &str) -> Vec<u8> {
        serde_json::to_vec(&EndTransactionRequest {
            transactionsummary: EndSummary {
                transactionid: tx.into(),
                partnertransactionid: "p1".into(),
                partnerstoreid: "P12".into(),
                feedtype: "C".into(),
                startdate: None,
                enddate: None,
            },
        })
        .unwrap()
    }

    #[test]
    fn imports_only_when_the_received_total_matches_and_only_once() {
        let now = Instant::now();
        let mut s = MockState::new(accounts(), Duration::from_secs(3600));
        let tx = begin(&mut s, 3, now);
        let c = creds(Some(&tx));
        let r = s.upload(&c, &upload_body(&tx, 2), now).unwrap();
        assert_eq!((r.uploadedtotal, r.runningtotal), (Count(2), Count(2)));
        let refused = s.end(&c, &end_body(&tx), now).unwrap_err();
        assert!(refused.text.contains("received 2 rows but expected 3"));
        assert_eq!(s.store("12").unwrap().imports, 0);
        s.upload(&c, &upload_body(&tx, 1), now).unwrap();
        s.end(&c, &end_body(&tx), now).unwrap();
        s.end(&c, &end_body(&tx), now).unwrap();
        let store = s.store("12").unwrap();
        assert_eq!((store.imports, store.len()), (1, 3));
        assert_eq!(
            store.customers()[0].get(crate::wire::Field::FirstName),
            Some("x")
        );
    }

    #[test]
    fn refuses_posts_past_the_expected_total_with_the_vendors_text() {
        let now = Instant::now();
        let mut s = MockState::new(accounts(), Duration::from_secs(3600));
        let tx = begin(&mut s, 2, now);
        let err = s
            .upload(&creds(Some(&tx)), &upload_body(&tx, 3), now)
            .unwrap_err();
        assert_eq!(err.text, error_text::over_expected(3));
    }

    #[test]
    fn refuses_more_than_1000_rows_and_a_wrong_totalrowssent() {
        let now = Instant::now();
        let mut s = MockState::new(accounts(), Duration::from_secs(3600));
        let tx = begin(&mut s, 5000, now);
        let err = s
            .upload(&creds(Some(&tx)), &upload_body(&tx, 1001), now)
            .unwrap_err();
        assert_eq!(err.text, error_text::TOO_MANY_ROWS);
        let body = String::from_utf8(upload_body(&tx, 2))
            .unwrap()
            .replacen("\"2\"", "\"3\"", 1);
        let err = s
            .upload(&creds(Some(&tx)), body.as_bytes(), now)
            .unwrap_err();
        assert!(err.text.contains("totalrowssent is 3"), "{}", err.text);
    }

    #[test]
    fn wrong_keys_fail_authentication() {
        let mut s = MockState::new(accounts(), Duration::from_secs(3600));
        let bad = Creds {
            store_key: Some("nope"),
            ..creds(None)
        };
        assert_eq!(
            s.ready_feed(&bad, br#"{"feedtype":"C"}"#).unwrap_err(),
            auth_failed()
        );
        assert!(s.begin(&bad, b"{}", Instant::now()).is_err());
    }

    #[test]
    fn transactions_left_open_are_purged_after_the_window() {
        let start = Instant::now();
        let mut s = MockState::new(accounts(), Duration::from_secs(60));
        let tx = begin(&mut s, 1, start);
        let later = start + Duration::from_secs(61);
        let err = s
            .upload(&creds(Some(&tx)), &upload_body(&tx, 1), later)
            .unwrap_err();
        assert!(err.text.contains("not found"), "{}", err.text);
        assert_eq!(s.open_transactions(), 0);
    }

    #[test]
    fn the_dealer_list_needs_the_admin_password() {
        let s = MockState::new(accounts(), Duration::from_secs(60));
        let admin = Creds {
            partner_key: Some("pk"),
            admin_password: Some("admin"),
            ..Creds::default()
        };
        let list = s.dealer_list(&admin).unwrap();
        assert_eq!(list.authorizedstores.len(), 1);
        let only_other = Creds {
            partner_store_id: Some("P99"),
            ..admin
        };
        assert!(
            s.dealer_list(&only_other)
                .unwrap()
                .authorizedstores
                .is_empty()
        );
        assert!(s.dealer_list(&creds(None)).is_err());
    }
}
