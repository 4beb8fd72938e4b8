//! The driver against the mock's own logic and fault injection, called directly (no sockets), with
//! tokio's paused clock: backoff, Retry-After and timeouts take no real time.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use bytes::Bytes;
use tokio::time::Instant;

use super::*;
use crate::api::{Answer, TransportKind, interpret};
use crate::customer::{Normalizer, RawCustomer};
use crate::mock::faults::FaultPlan;
use crate::mock::{Mock, MockConfig};
use crate::signal::{Signal, Stop};
use crate::spool::SpoolWriter;
use crate::wire::{self, BeginResults, EndResults, Field, ReadyFeedResults, UploadResults, header};

/// How long the simulated client waits for an answer the mock holds.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

struct DirectApi {
    mock: Mock,
    headers: HeaderMap,
}

impl DirectApi {
    fn new(mock: &Mock, store_key: &str) -> Self {
        let accounts = MockConfig::demo().accounts;
        let mut headers = HeaderMap::new();
        let mut put = |name: &str, value: &str| {
            headers.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        };
        put(header::PARTNER_API_KEY, &accounts.partner_key);
        put(header::STORE_API_KEY, store_key);
        put(header::STORE_ID, &accounts.stores[0].store_id);
        put("content-type", "application/json");
        Self {
            mock: mock.clone(),
            headers,
        }
    }

    async fn call<T: for<'de> serde::Deserialize<'de>>(
        &self,
        endpoint: Endpoint,
        transactionid: Option<&str>,
        body: &[u8],
    ) -> Result<T, CallError> {
        let mut headers = self.headers.clone();
        if let Some(id) = transactionid {
            headers.insert("transactionid", HeaderValue::from_str(id).unwrap());
        }
        let handled = self.mock.handle(endpoint, &headers, body).await;
        let transport = |kind| CallError::Transport {
            endpoint,
            kind,
            detail: "simulated".into(),
        };
        if handled.drop {
            return Err(transport(TransportKind::Broken));
        }
        if handled.hold.is_some_and(|hold| hold >= CLIENT_TIMEOUT) {
            tokio::time::sleep(CLIENT_TIMEOUT).await;
            return Err(transport(TransportKind::Timeout));
        }
        let answer = Answer {
            status: handled.status,
            retry_after: handled.retry_after.map(Duration::from_secs),
            body: Bytes::from(handled.body),
        };
        interpret(endpoint, &answer, wire::parse_reply)
    }
}

impl Api for DirectApi {
    async fn ready_feed(&self) -> Result<ReadyFeedResults, CallError> {
        self.call(Endpoint::ReadyFeed, None, br#"{"feedtype":"C"}"#)
            .await
    }

    async fn begin(&self, summary: &BeginSummary) -> Result<BeginResults, CallError> {
        let body = serde_json::to_vec(&wire::BeginTransactionRequest {
            transactionsummary: summary.clone(),
        })
        .unwrap();
        self.call(Endpoint::BeginTransaction, None, &body).await
    }

    async fn upload(&self, transactionid: &str, body: Bytes) -> Result<UploadResults, CallError> {
        self.call(Endpoint::UploadCustomers, Some(transactionid), &body)
            .await
    }

    async fn end(&self, summary: &EndSummary) -> Result<EndResults, CallError> {
        let body = serde_json::to_vec(&wire::EndTransactionRequest {
            transactionsummary: summary.clone(),
        })
        .unwrap();
        self.call(
            Endpoint::EndTransaction,
            Some(&summary.transactionid),
            &body,
        )
        .await
    }
}

fn spool_of(rows: usize, dir: &std::path::Path) -> Spool {
    let norm = Normalizer::new(jiff::civil::date(2026, 11, 22));
    let mut writer = SpoolWriter::create(&dir.join("spool.rows")).unwrap();
    for i in 0..rows {
        let id = format!("C{i:05}");
        let mut raw = RawCustomer::default();
        raw.set(Field::PartnerCustomerId, &id);
        writer.push(&norm.parse(&raw, &mut Vec::new())).unwrap();
    }
    writer.finish().unwrap()
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        retries: 3,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(8),
        max_retry_after: Duration::from_secs(60),
        jitter_seed: Some(7),
    }
}

struct Run {
    mock: Mock,
    result: Result<(), DriverError>,
    progress: Progress,
    elapsed: Duration,
}

impl Run {
    fn endpoints(&self) -> Vec<String> {
        self.mock
            .calls()
            .iter()
            .map(|c| c.endpoint.clone())
            .collect()
    }

    fn end_calls(&self) -> usize {
        self.endpoints()
            .iter()
            .filter(|e| *e == "endtransaction")
            .count()
    }

    fn imports(&self) -> u64 {
        self.mock.store("1001").unwrap().imports
    }

    fn customers(&self) -> usize {
        self.mock.store("1001").unwrap().len()
    }
}

async fn run_with(faults: &str, rows: usize, allow_empty: bool, store_key: &str) -> Run {
    run_config(
        MockConfig {
            faults: FaultPlan::parse(faults).unwrap(),
            ..MockConfig::demo()
        },
        rows,
        allow_empty,
        store_key,
    )
    .await
}

async fn run_config(config: MockConfig, rows: usize, allow_empty: bool, store_key: &str) -> Run {
    let mock = Mock::new(config);
    let dir = tempfile::tempdir().unwrap();
    let spool = spool_of(rows, dir.path());
    let mut progress = Progress::default();
    let start = Instant::now();
    let result = drive(
        &mock,
        store_key,
        &spool,
        allow_empty,
        Stop::never(),
        None,
        &mut progress,
        |_| {},
    )
    .await;
    Run {
        elapsed: start.elapsed(),
        mock,
        result,
        progress,
    }
}

/// Runs the driver once against `mock`, calling `watch` on every progress report.
#[allow(clippy::too_many_arguments)]
async fn drive(
    mock: &Mock,
    store_key: &str,
    spool: &Spool,
    allow_empty: bool,
    stop: Stop,
    resume: Option<ResumePoint>,
    progress: &mut Progress,
    mut watch: impl FnMut(&Progress),
) -> Result<(), DriverError> {
    let api = DirectApi::new(mock, store_key);
    let feed = Feed {
        rr_store_id: "1001",
        partner_store_id: "DEMO-1",
        spool,
        allow_empty,
        chunk_size: 1000,
    };
    let mut n = 0;
    let mut ids = || {
        n += 1;
        format!("ptx-{n}")
    };
    let policy = policy();
    let mut session = Session {
        policy: &policy,
        new_partner_txid: &mut ids,
        on_progress: &mut watch,
        stop,
    };
    upload(&api, &feed, &mut session, resume, progress).await
}

async fn run(faults: &str, rows: usize) -> Run {
    run_with(faults, rows, false, "demo-store-key").await
}

#[tokio::test(start_paused = true)]
async fn uploads_2500_rows_in_three_chunks_and_ends_once() {
    let r = run("", 2500).await;
    r.result.as_ref().unwrap();
    assert_eq!(
        r.endpoints(),
        [
            "readyfeedupload",
            "begintransaction",
            "uploadcustomerprofile",
            "uploadcustomerprofile",
            "uploadcustomerprofile",
            "endtransaction"
        ]
    );
    let rows: Vec<_> = r.mock.calls().iter().filter_map(|c| c.rows).collect();
    assert_eq!(rows, [1000, 1000, 500]);
    assert_eq!((r.imports(), r.customers()), (1, 2500));
    assert_eq!(r.progress.chunks, 3);
    assert!(r.progress.ended && r.progress.abandoned.is_empty());
}

#[tokio::test(start_paused = true)]
async fn refuses_0_rows_without_calling_the_server() {
    let r = run("", 0).await;
    assert!(matches!(r.result, Err(DriverError::EmptyRefused)));
    assert!(r.mock.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_allowed_empty_upload_begins_with_0_and_ends() {
    let r = run_with("", 0, true, "demo-store-key").await;
    r.result.as_ref().unwrap();
    assert_eq!(
        r.endpoints(),
        ["readyfeedupload", "begintransaction", "endtransaction"]
    );
    assert_eq!(r.imports(), 1);
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_with_growing_waits() {
    let r = run("upload#2-3:status=503", 1500).await;
    r.result.as_ref().unwrap();
    assert_eq!(r.imports(), 1);
    // Two waits: the first at least 1 s, the second at least 2 s (jitter only adds).
    assert!(r.elapsed >= Duration::from_secs(3), "{:?}", r.elapsed);
    assert!(r.elapsed < Duration::from_secs(12), "{:?}", r.elapsed);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let r = run("begin#1:status=429,retry-after=40", 10).await;
    r.result.as_ref().unwrap();
    assert!(r.elapsed >= Duration::from_secs(40), "{:?}", r.elapsed);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_limit_ends_the_run() {
    let r = run("begin:status=503,retry-after=3600", 10).await;
    let err = r.result.as_ref().unwrap_err();
    assert!(err.to_string().contains("asked to wait 3600s"), "{err}");
    assert_eq!(r.end_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_that_outlast_the_retries_end_nothing() {
    let r = run("upload#2+:status=502", 2500).await;
    let Err(DriverError::Call { attempts, .. }) = r.result else {
        panic!("{:?}", r.result)
    };
    assert_eq!(attempts, 4);
    assert_eq!(r.end_calls(), 0);
    assert_eq!(r.imports(), 0);
    assert_eq!(r.progress.abandoned.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_post_that_was_not_counted_is_simply_sent_again() {
    let r = run("upload#2:drop", 2500).await;
    r.result.as_ref().unwrap();
    assert_eq!(r.progress.restarts, 0);
    assert_eq!((r.imports(), r.customers()), (1, 2500));
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_that_was_counted_restarts_under_a_new_transaction() {
    let r = run("upload#2:timeout", 2500).await;
    r.result.as_ref().unwrap();
    assert_eq!(r.progress.restarts, 1);
    assert_eq!(r.progress.abandoned.len(), 1);
    assert_ne!(
        r.progress.abandoned[0],
        r.progress.transactionid.clone().unwrap()
    );
    assert_eq!(r.end_calls(), 1);
    assert_eq!((r.imports(), r.customers()), (1, 2500));
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_on_the_last_chunk_is_a_duplicate_through_the_vendors_error() {
    // Re-sending the last chunk would pass the declared total: the server refuses with its error text.
    let r = run("upload#3:timeout", 2500).await;
    r.result.as_ref().unwrap();
    assert_eq!(r.progress.restarts, 1);
    assert_eq!((r.imports(), r.customers()), (1, 2500));
}

#[tokio::test(start_paused = true)]
async fn a_second_duplicate_gives_up_without_ending() {
    let r = run("upload#2:timeout; upload#5:timeout", 2500).await;
    assert!(
        matches!(r.result, Err(DriverError::DuplicateAgain { chunk: 2 })),
        "{:?}",
        r.result
    );
    assert_eq!(r.end_calls(), 0);
    assert_eq!(r.progress.abandoned.len(), 2);
    assert_eq!(r.imports(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_running_total_abandons_the_transaction_without_ending() {
    let r = run("upload#2:running-total=+1", 2500).await;
    let Err(DriverError::Mismatch {
        chunk, mismatch, ..
    }) = &r.result
    else {
        panic!("{:?}", r.result)
    };
    assert_eq!(*chunk, Some(2));
    assert_eq!(
        (mismatch.expected.as_str(), mismatch.received.as_str()),
        ("2000", "2001")
    );
    assert_eq!(r.end_calls(), 0);
    assert_eq!(r.progress.abandoned.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_store_key_fails_authentication_before_any_transaction() {
    let r = run_with("", 10, false, "wrong-key").await;
    let Err(DriverError::Call {
        source: CallError::Vendor { error, .. },
        ..
    }) = &r.result
    else {
        panic!("{:?}", r.result)
    };
    assert_eq!(*error, VendorError::AuthenticationFailed);
    assert_eq!(r.endpoints(), ["readyfeedupload"]);
}

#[tokio::test(start_paused = true)]
async fn a_lost_end_answer_is_retried_and_imports_once() {
    let r = run("end#1:timeout", 1200).await;
    r.result.as_ref().unwrap();
    assert_eq!(r.end_calls(), 2);
    assert_eq!(r.imports(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_end_never_answered_is_an_unknown_outcome() {
    let r = run("end:timeout", 1200).await;
    assert!(
        matches!(r.result, Err(DriverError::EndUnknown { .. })),
        "{:?}",
        r.result
    );
    assert!(r.progress.abandoned.is_empty());
    assert!(r.progress.transactionid.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_refusal_after_a_lost_end_answer_is_still_an_unknown_outcome() {
    // The first end was processed (the mock imported) but its answer was lost; a server that then
    // refuses the repeated end must not make the run claim that nothing was imported.
    let r = run("end#1:timeout; end#2:error=Transaction not found", 1200).await;
    assert!(
        matches!(r.result, Err(DriverError::EndUnknown { .. })),
        "{:?}",
        r.result
    );
    assert_eq!(r.imports(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_end_refused_by_the_server_is_a_clean_failure() {
    let r = run("end:error=Import queue full", 1200).await;
    let Err(DriverError::Call {
        source: CallError::Vendor { .. },
        ..
    }) = &r.result
    else {
        panic!("{:?}", r.result)
    };
    assert_eq!(r.progress.abandoned.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_transaction_purged_mid_upload_is_abandoned() {
    let config = MockConfig {
        purge_after: Duration::from_secs(10),
        faults: FaultPlan::parse("upload#2:delay=20s").unwrap(),
        ..MockConfig::demo()
    };
    let r = run_config(config, 2500, false, "demo-store-key").await;
    let err = r.result.as_ref().unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    assert_eq!(r.end_calls(), 0);
    assert_eq!(r.imports(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_html_answer_is_a_protocol_error() {
    let r = run("upload#1:body=html", 10).await;
    let Err(DriverError::Call {
        source: CallError::Wire { .. },
        ..
    }) = &r.result
    else {
        panic!("{:?}", r.result)
    };
    assert_eq!(r.end_calls(), 0);
}

/// Runs 2500 rows and asks to stop (SIGTERM) once `after` rows are confirmed.
async fn interrupted_after(mock: &Mock, spool: &Spool, after: u64) -> Progress {
    let (stop_tx, stop) = Stop::manual();
    let mut progress = Progress::default();
    let result = drive(
        mock,
        "demo-store-key",
        spool,
        false,
        stop,
        None,
        &mut progress,
        |p| {
            if p.confirmed >= after {
                let _ = stop_tx.send(Some(Signal::Terminate));
            }
        },
    )
    .await;
    assert!(
        matches!(result, Err(DriverError::Interrupted(Signal::Terminate))),
        "{result:?}"
    );
    progress
}

/// Continues a transaction from `point` with no stop and no faults added; returns what the run did.
async fn resume(mock: &Mock, spool: &Spool, point: ResumePoint) -> Progress {
    let mut progress = Progress::default();
    drive(
        mock,
        "demo-store-key",
        spool,
        false,
        Stop::never(),
        Some(point),
        &mut progress,
        |_| {},
    )
    .await
    .unwrap();
    progress
}

fn point(progress: &Progress) -> ResumePoint {
    ResumePoint {
        transactionid: progress.transactionid.clone().unwrap(),
        partnertransactionid: progress.partnertransactionid.clone().unwrap(),
        chunks: progress.chunks,
        confirmed: progress.confirmed,
    }
}

#[tokio::test(start_paused = true)]
async fn a_stop_request_ends_between_chunks_and_leaves_the_transaction_open() {
    let mock = Mock::new(MockConfig::demo());
    let dir = tempfile::tempdir().unwrap();
    let spool = spool_of(2500, dir.path());
    let progress = interrupted_after(&mock, &spool, 1000).await;
    assert_eq!((progress.confirmed, progress.chunks), (1000, 1));
    assert!(progress.transactionid.is_some() && progress.abandoned.is_empty());
    assert!(!mock.calls().iter().any(|c| c.endpoint == "endtransaction"));
    assert_eq!(mock.open_transactions(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_resumed_transaction_continues_from_its_confirmed_rows() {
    let mock = Mock::new(MockConfig::demo());
    let dir = tempfile::tempdir().unwrap();
    let spool = spool_of(2500, dir.path());
    let first = interrupted_after(&mock, &spool, 1000).await;
    let calls_before = mock.calls().len();
    let progress = resume(&mock, &spool, point(&first)).await;
    let later: Vec<_> = mock.calls()[calls_before..]
        .iter()
        .map(|c| (c.endpoint.clone(), c.rows))
        .collect();
    assert_eq!(
        later,
        [
            ("uploadcustomerprofile".to_owned(), Some(1000)),
            ("uploadcustomerprofile".to_owned(), Some(500)),
            ("endtransaction".to_owned(), None)
        ]
    );
    assert_eq!(progress.transactionid, first.transactionid);
    assert_eq!(progress.chunks, 3);
    let store = mock.store("1001").unwrap();
    assert_eq!((store.imports, store.len()), (1, 2500));
}

#[tokio::test(start_paused = true)]
async fn a_resume_point_behind_the_server_is_caught_as_a_duplicate() {
    // The process died after the server counted chunk 2 but before the ledger recorded it.
    let mock = Mock::new(MockConfig::demo());
    let dir = tempfile::tempdir().unwrap();
    let spool = spool_of(2500, dir.path());
    let first = interrupted_after(&mock, &spool, 2000).await;
    let stale = ResumePoint {
        chunks: 1,
        confirmed: 1000,
        ..point(&first)
    };
    let progress = resume(&mock, &spool, stale).await;
    assert_eq!(progress.restarts, 1);
    assert_eq!(progress.abandoned, [first.transactionid.clone().unwrap()]);
    let store = mock.store("1001").unwrap();
    assert_eq!((store.imports, store.len()), (1, 2500));
}

#[tokio::test(start_paused = true)]
async fn a_purged_transaction_cannot_be_resumed_and_a_fresh_one_is_begun() {
    let mock = Mock::new(MockConfig {
        purge_after: Duration::from_secs(60),
        ..MockConfig::demo()
    });
    let dir = tempfile::tempdir().unwrap();
    let spool = spool_of(2500, dir.path());
    let first = interrupted_after(&mock, &spool, 1000).await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    let progress = resume(&mock, &spool, point(&first)).await;
    assert_eq!(progress.abandoned, [first.transactionid.clone().unwrap()]);
    assert_ne!(progress.transactionid, first.transactionid);
    let store = mock.store("1001").unwrap();
    assert_eq!((store.imports, store.len()), (1, 2500));
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_a_backoff_wait_ends_the_wait() {
    let mock = Mock::new(MockConfig {
        faults: FaultPlan::parse("upload#2+:status=503").unwrap(),
        ..MockConfig::demo()
    });
    let dir = tempfile::tempdir().unwrap();
    let spool = spool_of(2500, dir.path());
    let (stop_tx, stop) = Stop::manual();
    let mut progress = Progress::default();
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let _ = stop_tx.send(Some(Signal::Interrupt));
    });
    let result = drive(
        &mock,
        "demo-store-key",
        &spool,
        false,
        stop,
        None,
        &mut progress,
        |_| {},
    )
    .await;
    stopper.await.unwrap();
    assert!(
        matches!(result, Err(DriverError::Interrupted(Signal::Interrupt))),
        "{result:?}"
    );
    assert_eq!(progress.confirmed, 1000);
    assert!(progress.transactionid.is_some());
}
