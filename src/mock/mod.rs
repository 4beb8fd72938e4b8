//! `rrfeed mock`: a local Rider Rewards server for first tries, tests and CI (README "The mock server").
//!
//! The vendor's five paths are served from [`state::MockState`] through the same wire types the client
//! uses, with faults injected per call ([`faults`]); everything a test may want to see is under `/_mock/`,
//! apart from the vendor paths: what each store holds and every call received.

pub mod crm;
pub mod faults;
mod inject;
mod inspect;
mod routes;
pub mod state;
mod webhook;

use inject::{distort_upload, fault_answer, with_message};
use routes::into_response;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::Serialize;
use tokio::time::Instant;

use crate::crm::wire::Method as CrmMethod;
use crate::wire::{self, Endpoint, Envelope, UploadResults, header as h};
use crm::{CrmAccount, CrmState};
use faults::{Actions, FaultPlan};
use state::{Accounts, Creds, MockState, MockStore, Refusal, StoreData};
pub use webhook::WebhookTarget;

/// Where the CRM.COM methods live (`https://<server>/crmapi/rest/v2` at a real CRM.COM).
pub const CRM_PREFIX: &str = "/crmapi/rest/v2";

/// Where the inspection endpoints live, apart from the vendor's paths.
pub const MOCK_ROUTES: &str = "/_mock";

/// What a mock serves.
#[derive(Clone, Debug)]
pub struct MockConfig {
    pub accounts: Accounts,
    pub purge_after: Duration,
    pub faults: FaultPlan,
    /// Where customer edits are posted (two-way sync), if anywhere.
    pub webhook: Option<WebhookTarget>,
    /// The CRM.COM user the mock's CRM.COM side accepts, and how long its tokens live.
    pub crm: CrmAccount,
    pub crm_token_life: Duration,
}

impl MockConfig {
    /// One demo partner with one demo store. The keys are for the mock only.
    pub fn demo() -> Self {
        Self::demo_stores(1)
    }

    /// One demo partner with `n` demo stores: RRStoreIDs 1001, 1002, …, keys `demo-store-key` for the
    /// first and `demo-store-key-2`, `demo-store-key-3`, … for the others.
    pub fn demo_stores(n: usize) -> Self {
        let stores = (1..=n.max(1))
            .map(|i| MockStore {
                store_id: format!("{}", 1000 + i),
                store_key: if i == 1 {
                    "demo-store-key".into()
                } else {
                    format!("demo-store-key-{i}")
                },
                partner_store_id: format!("DEMO-{i}"),
                name: format!("Demo Motorcycles {i}"),
            })
            .collect();
        Self {
            accounts: Accounts {
                partner_key: "demo-partner-key".into(),
                admin_password: "demo-admin-password".into(),
                stores,
            },
            purge_after: Duration::from_secs(8 * 3600),
            faults: FaultPlan::default(),
            webhook: None,
            crm: CrmAccount::demo(),
            crm_token_life: crm::TOKEN_LIFE,
        }
    }
}

/// One call as the mock saw it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CallRecord {
    /// Order among all calls (1-based).
    pub seq: u64,
    /// The endpoint's path without the slash, e.g. `endtransaction`.
    pub endpoint: String,
    /// Order among this endpoint's calls (1-based), as fault rules count.
    pub call: u64,
    pub status: u16,
    pub transactionid: Option<String>,
    /// Rows in the post (uploads only).
    pub rows: Option<usize>,
    /// `success`, `error: TEXT`, or `fault: WHAT`.
    pub outcome: String,
    /// Whether the state was changed by the call (a success of begin, upload or end).
    pub processed: bool,
}

/// A running mock: cheap to clone, shared by the server and whoever inspects it.
#[derive(Clone)]
pub struct Mock {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<MockState>,
    faults: FaultPlan,
    webhook: Option<WebhookTarget>,
    log: Mutex<Log>,
    crm: Mutex<CrmState>,
}

#[derive(Default)]
struct Log {
    counts: HashMap<Endpoint, u64>,
    crm_counts: HashMap<CrmMethod, u64>,
    calls: Vec<CallRecord>,
}

/// The mock's decision for one call, for a transport (HTTP, or a test's direct calls) to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub retry_after: Option<u64>,
    /// Break the connection instead of answering.
    pub drop: bool,
    /// Hold the answer this long (the client should time out).
    pub hold: Option<Duration>,
}

impl Mock {
    pub fn new(config: MockConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(MockState::new(config.accounts, config.purge_after)),
                faults: config.faults,
                webhook: config.webhook,
                log: Mutex::new(Log::default()),
                crm: Mutex::new(CrmState::new(config.crm, config.crm_token_life)),
            }),
        }
    }

    /// The CRM.COM side's state (tests read it and age its tokens).
    pub fn crm(&self) -> MutexGuard<'_, CrmState> {
        self.inner.crm.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, MockState> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.inner.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every call received so far, in order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.log().calls.clone()
    }

    /// What a store holds now.
    pub fn store(&self, store_id: &str) -> Option<StoreData> {
        self.state().store(store_id).cloned()
    }

    /// How many customers a store holds now (without copying them).
    pub fn customer_count(&self, store_id: &str) -> usize {
        self.state().store(store_id).map_or(0, StoreData::len)
    }

    /// Transactions begun and neither ended nor purged.
    pub fn open_transactions(&self) -> usize {
        self.state().open_transactions()
    }

    /// Handles one vendor call: faults first, then the state machine.
    pub async fn handle(&self, endpoint: Endpoint, headers: &HeaderMap, body: &[u8]) -> Handled {
        let call = {
            let mut log = self.log();
            let n = log.counts.entry(endpoint).or_default();
            *n += 1;
            *n
        };
        let arrived = tokio::time::Instant::now();
        let actions = self.inner.faults.actions(endpoint, call);
        if let Some(delay) = actions.delay {
            tokio::time::sleep(delay).await;
        }
        let creds = creds(headers);
        let (mut handled, outcome, processed) = if actions.skips_processing() {
            let (handled, what) = fault_answer(&actions);
            (handled, format!("fault: {what}"), false)
        } else {
            self.process(endpoint, &creds, headers, body, &actions)
        };
        if processed && actions.drop_after {
            handled.drop = true;
        }
        if processed && let Some(message) = &actions.message {
            handled.body = with_message(&handled.body, message);
        }
        handled.hold = actions.timeout.filter(|_| !handled.drop);
        let outcome = match handled.hold {
            Some(hold) => format!("{outcome} (answer held {}s)", hold.as_secs_f64()),
            None => outcome,
        };
        self.record(endpoint, call, &creds, body, &handled, outcome, processed);
        if let Some(latency) = actions.latency {
            tokio::time::sleep_until(arrived + latency).await;
        }
        handled
    }

    fn process(
        &self,
        endpoint: Endpoint,
        creds: &Creds,
        headers: &HeaderMap,
        body: &[u8],
        actions: &Actions,
    ) -> (Handled, String, bool) {
        let json_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let now = Instant::now();
        let result = if !json_type {
            Err(Refusal {
                status: 415,
                text: "Content-Type must be application/json".into(),
            })
        } else {
            let mut state = self.state();
            match endpoint {
                Endpoint::DealerList => state.dealer_list(creds).map(|r| to_json(&r)),
                Endpoint::ReadyFeed => state.ready_feed(creds, body).map(|r| envelope(&r)),
                Endpoint::BeginTransaction => state.begin(creds, body, now).map(|r| envelope(&r)),
                Endpoint::UploadCustomers => state
                    .upload(creds, body, now)
                    .map(|r| envelope(&distort_upload(r, actions))),
                Endpoint::EndTransaction => state.end(creds, body, now).map(|r| envelope(&r)),
            }
        };
        match result {
            Ok(body) => (
                answer(200, body),
                "success".into(),
                endpoint != Endpoint::DealerList,
            ),
            Err(refusal) => (
                answer(refusal.status, wire::error_body(&refusal.text)),
                format!("error: {}", refusal.text),
                false,
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        endpoint: Endpoint,
        call: u64,
        creds: &Creds,
        body: &[u8],
        handled: &Handled,
        outcome: String,
        processed: bool,
    ) {
        // A processed post's answer says how many rows it held; only other posts are parsed again.
        let rows = (endpoint == Endpoint::UploadCustomers)
            .then(|| {
                let answered = processed
                    .then(|| serde_json::from_slice::<Envelope<UploadResults>>(&handled.body).ok())
                    .flatten()
                    .map(|a| a.results.uploadedtotal.0 as usize);
                answered.or_else(|| {
                    serde_json::from_slice::<wire::UploadRequest>(body)
                        .ok()
                        .map(|r| r.rows.len())
                })
            })
            .flatten();
        let mut log = self.log();
        let seq = log.calls.len() as u64 + 1;
        log.calls.push(CallRecord {
            seq,
            endpoint: endpoint.to_string(),
            call,
            status: if handled.drop { 0 } else { handled.status },
            transactionid: creds.transactionid.map(str::to_owned),
            rows,
            outcome,
            processed,
        });
    }

    /// One CRM.COM call: HTTP 200 with the outcome in `status`, unless a fault says otherwise.
    async fn crm_call(
        &self,
        method: CrmMethod,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Response {
        let call = {
            let mut log = self.log();
            let n = log.crm_counts.entry(method).or_default();
            *n += 1;
            *n
        };
        let arrived = Instant::now();
        let actions = self.inner.faults.crm_actions(method, call);
        if let Some(delay) = actions.delay {
            tokio::time::sleep(delay).await;
        }
        let mut handled = if actions.skips_processing() {
            match &actions.error {
                Some(text) => answer(
                    200,
                    to_json(&crate::crm::wire::Envelope::<serde_json::Value> {
                        data: None,
                        status: crate::crm::wire::Status::failure("ERROR", text),
                    }),
                ),
                None => fault_answer(&actions).0,
            }
        } else {
            let outcome = self.crm().handle(method, params, Instant::now());
            let mut handled = answer(200, to_json(&outcome));
            handled.drop = actions.drop_after;
            handled
        };
        handled.hold = actions.timeout.filter(|_| !handled.drop);
        if let Some(latency) = actions.latency {
            tokio::time::sleep_until(arrived + latency).await;
        }
        into_response(handled).await
    }
}

fn creds(headers: &HeaderMap) -> Creds<'_> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    Creds {
        partner_key: get(h::PARTNER_API_KEY),
        store_key: get(h::STORE_API_KEY),
        store_id: get(h::STORE_ID),
        admin_password: get(h::ADMIN_PASSWORD),
        transactionid: get(h::TRANSACTION_ID),
        partner_store_id: get(h::PARTNER_STORE_ID),
    }
}

fn envelope<T: Serialize>(results: &T) -> Vec<u8> {
    to_json(&Envelope { results })
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("answers always serialize")
}

fn answer(status: u16, body: Vec<u8>) -> Handled {
    Handled {
        status,
        body,
        content_type: "application/json",
        retry_after: None,
        drop: false,
        hold: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn dealer_list_after(faults: &str) -> (u16, Duration) {
        let mock = Mock::new(MockConfig {
            faults: FaultPlan::parse(faults).unwrap(),
            ..MockConfig::demo()
        });
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        headers.insert(h::PARTNER_API_KEY, "demo-partner-key".parse().unwrap());
        headers.insert(h::ADMIN_PASSWORD, "demo-admin-password".parse().unwrap());
        let start = tokio::time::Instant::now();
        let handled = mock.handle(Endpoint::DealerList, &headers, b"{}").await;
        (handled.status, start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn latency_counts_from_the_calls_arrival_and_delay_adds_to_it() {
        assert_eq!(
            dealer_list_after("*:latency=50ms").await,
            (200, Duration::from_millis(50))
        );
        assert_eq!(
            dealer_list_after("*:delay=30ms,latency=50ms").await,
            (200, Duration::from_millis(50))
        );
        assert_eq!(
            dealer_list_after("*:delay=30ms").await,
            (200, Duration::from_millis(30))
        );
    }
}
