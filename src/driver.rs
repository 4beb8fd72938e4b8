//! The transaction driver (SPEC §2): one store's snapshot reaches Rider Rewards in one verified
//! transaction, or nothing at Rider Rewards changes.
//!
//! Read [`upload`] as the script: guard, ready, begin, post every chunk with its four checks, end. The
//! invariant every path keeps: endtransaction is sent only for a transaction whose every row was
//! confirmed exactly once; any doubt before that abandons the transaction (the vendor purges it).

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::client::CallError;
use crate::plan::{self, Expectation, Mismatch, Verdict};
use crate::protocol::{
    BeginResults, BeginSummary, Count, EndResults, EndSummary, Endpoint, FEED_CUSTOMERS,
    ReadyFeedResults, UploadResults, UploadSummary, VendorError, write_upload_body,
};
use crate::spool::{self, Spool};

/// The vendor's API as the driver needs it. [`crate::client::Client`] speaks HTTP; tests substitute the
/// mock's state machine.
pub trait Api {
    fn ready_feed(&self) -> impl Future<Output = Result<ReadyFeedResults, CallError>> + Send;
    fn begin(
        &self,
        summary: &BeginSummary,
    ) -> impl Future<Output = Result<BeginResults, CallError>> + Send;
    fn upload(
        &self,
        transactionid: &str,
        body: Bytes,
    ) -> impl Future<Output = Result<UploadResults, CallError>> + Send;
    fn end(
        &self,
        summary: &EndSummary,
    ) -> impl Future<Output = Result<EndResults, CallError>> + Send;
}

/// One store's feed, ready to send.
pub struct Feed<'a> {
    pub rr_store_id: &'a str,
    pub partner_store_id: &'a str,
    pub spool: &'a Spool,
    pub allow_empty: bool,
    /// Rows per post, at most 1000.
    pub chunk_size: usize,
}

/// Bounded retries with exponential backoff and jitter for transient faults (SPEC §2.5).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: usize,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a server asking for more ends the run.
    pub max_retry_after: Duration,
    /// Seeds the jitter, for deterministic tests.
    pub jitter_seed: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
            jitter_seed: None,
        }
    }
}

impl RetryPolicy {
    fn delays(&self) -> impl Iterator<Item = Duration> {
        let mut builder = ExponentialBuilder::new()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.retries)
            .with_jitter();
        if let Some(seed) = self.jitter_seed {
            builder = builder.with_jitter_seed(seed);
        }
        builder.build()
    }
}

/// What the run did, kept up to date as it goes so that a failure still reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// The transaction in progress, or the one ended.
    pub transactionid: Option<String>,
    /// Transactions begun and never ended (the vendor purges them).
    pub abandoned: Vec<String>,
    /// Chunks confirmed in the current transaction.
    pub chunks: usize,
    /// Rows confirmed in the current transaction.
    pub confirmed: u64,
    /// Restarts under a new transaction after a duplicate (at most one).
    pub restarts: u32,
    /// Whether endtransaction succeeded.
    pub ended: bool,
}

impl Progress {
    fn start(&mut self, transactionid: &str) {
        self.transactionid = Some(transactionid.to_owned());
        self.chunks = 0;
        self.confirmed = 0;
    }

    fn abandon(&mut self) {
        if let Some(id) = self.transactionid.take() {
            warn!(transactionid = %id, "transaction abandoned; the server purges it unended");
            self.abandoned.push(id);
        }
    }
}

/// Why a run ended without importing, or without knowing whether it imported.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(
        "refusing to upload 0 rows: ending the transaction would replace the store's whole customer \
         list with nothing (pass --allow-empty if that is really meant)"
    )]
    EmptyRefused,
    #[error("{source}{}", gave_up(*attempts, note))]
    Call {
        source: CallError,
        attempts: usize,
        note: Option<String>,
    },
    #[error("{endpoint}{}: {mismatch}", chunk.map(|c| format!(" (chunk {c})")).unwrap_or_default())]
    Mismatch {
        endpoint: Endpoint,
        chunk: Option<usize>,
        mismatch: Mismatch,
    },
    #[error(
        "chunk {chunk} was counted twice again after restarting under a new transaction; giving up \
         rather than risk a duplicated customer list"
    )]
    DuplicateAgain { chunk: usize },
    #[error(
        "endtransaction for transaction {transactionid} was sent but no answer settled it ({source}); \
         the store's customer list may or may not have been replaced. Check the store's customer count \
         at Rider Rewards before running again"
    )]
    EndUnknown {
        transactionid: String,
        source: CallError,
    },
    #[error("cannot read the snapshot {path}: {detail}")]
    Spool { path: String, detail: String },
}

fn gave_up(attempts: usize, note: &Option<String>) -> String {
    let mut text = String::new();
    if attempts > 1 {
        text.push_str(&format!(" (gave up after {attempts} attempts)"));
    }
    if let Some(note) = note {
        text.push_str(&format!(" ({note})"));
    }
    text
}

/// Runs the whole transaction for `feed`, recording what happened in `progress`.
///
/// Fails as [`DriverError`] says; on every failure but [`DriverError::EndUnknown`] nothing was imported.
pub async fn upload<A: Api>(
    api: &A,
    feed: &Feed<'_>,
    policy: &RetryPolicy,
    new_partner_txid: &mut dyn FnMut() -> String,
    progress: &mut Progress,
) -> Result<(), DriverError> {
    guard_empty(feed)?;
    ready(api, policy).await?;
    loop {
        let tx = begin(api, feed, policy, new_partner_txid(), progress).await?;
        progress.start(&tx.id);
        let posted = post_chunks(api, feed, &tx, policy, progress).await;
        match posted {
            Ok(Posted::All) => return end(api, &tx, policy, progress).await,
            Ok(Posted::Duplicate { chunk }) if progress.restarts == 0 => {
                warn!(chunk, transactionid = %tx.id,
                    "the server counted a chunk twice; restarting the upload under a new transaction");
                progress.abandon();
                progress.restarts += 1;
            }
            Ok(Posted::Duplicate { chunk }) => {
                progress.abandon();
                return Err(DriverError::DuplicateAgain { chunk });
            }
            Err(e) => {
                progress.abandon();
                return Err(e);
            }
        }
    }
}

/// An open transaction.
struct Transaction {
    id: String,
    partnertransactionid: String,
    partnerstoreid: String,
    rr_store_id: String,
    declared: u64,
}

enum Posted {
    All,
    Duplicate { chunk: usize },
}

/// SPEC §2.2: 0 rows would wipe the store's customers.
fn guard_empty(feed: &Feed) -> Result<(), DriverError> {
    if feed.spool.rows() == 0 && !feed.allow_empty {
        return Err(DriverError::EmptyRefused);
    }
    Ok(())
}

/// readyfeedupload: confirms the feed and the credentials.
async fn ready<A: Api>(api: &A, policy: &RetryPolicy) -> Result<(), DriverError> {
    let results = retrying(policy, || api.ready_feed()).await.into_result()?;
    match results.feedtype {
        Some(feed) if feed.0 != FEED_CUSTOMERS => Err(DriverError::Mismatch {
            endpoint: Endpoint::ReadyFeed,
            chunk: None,
            mismatch: Mismatch {
                figure: "feedtype",
                expected: FEED_CUSTOMERS.into(),
                received: feed.0,
            },
        }),
        _ => Ok(()),
    }
}

/// begintransaction, declaring the snapshot's row count; checks the echoed total.
async fn begin<A: Api>(
    api: &A,
    feed: &Feed<'_>,
    policy: &RetryPolicy,
    partnertransactionid: String,
    progress: &mut Progress,
) -> Result<Transaction, DriverError> {
    let declared = feed.spool.rows();
    let summary = BeginSummary {
        partnertransactionid: partnertransactionid.clone(),
        partnerstoreid: feed.partner_store_id.to_owned(),
        rr_store_id: feed.rr_store_id.to_owned(),
        feedtype: FEED_CUSTOMERS.into(),
        startdate: None,
        enddate: None,
        expectedtotal: Count(declared),
    };
    let results = retrying(policy, || api.begin(&summary))
        .await
        .into_result()?;
    let id = results.transactionid.0.trim().to_owned();
    let mismatch = |figure, expected: String, received: String| DriverError::Mismatch {
        endpoint: Endpoint::BeginTransaction,
        chunk: None,
        mismatch: Mismatch {
            figure,
            expected,
            received,
        },
    };
    if id.is_empty() {
        return Err(mismatch("transactionid", "an id".into(), "nothing".into()));
    }
    if results.expectedtotal != Count(declared) {
        progress.start(&id);
        progress.abandon();
        return Err(mismatch(
            "expectedtotal",
            declared.to_string(),
            results.expectedtotal.to_string(),
        ));
    }
    info!(transactionid = %id, rows = declared, "transaction begun");
    Ok(Transaction {
        id,
        partnertransactionid,
        partnerstoreid: feed.partner_store_id.to_owned(),
        rr_store_id: feed.rr_store_id.to_owned(),
        declared,
    })
}

/// Posts every chunk in order, one at a time, checking each answer (SPEC §2.4, §2.5).
async fn post_chunks<A: Api>(
    api: &A,
    feed: &Feed<'_>,
    tx: &Transaction,
    policy: &RetryPolicy,
    progress: &mut Progress,
) -> Result<Posted, DriverError> {
    let spool_error = |e: std::io::Error| DriverError::Spool {
        path: feed.spool.path().display().to_string(),
        detail: e.to_string(),
    };
    let mut reader = feed.spool.reader().map_err(spool_error)?;
    let mut rows = Vec::new();
    for chunk in plan::chunks(tx.declared, feed.chunk_size) {
        rows.clear();
        let read = reader
            .read_rows(chunk.rows, &mut rows)
            .map_err(spool_error)?;
        if read != chunk.rows {
            return Err(spool_error(std::io::Error::other(format!(
                "it holds fewer rows than the {} counted",
                tx.declared
            ))));
        }
        let body = upload_body(tx, chunk.rows, &rows);
        let attempt = retrying(policy, || api.upload(&tx.id, body.clone())).await;
        let maybe_counted_before = attempt.maybe_processed_before_last;
        let results = match attempt.into_result() {
            Ok(results) => results,
            Err(DriverError::Call {
                source:
                    CallError::Vendor {
                        error: VendorError::OverExpected { .. },
                        ..
                    },
                ..
            }) if maybe_counted_before => {
                return Ok(Posted::Duplicate {
                    chunk: chunk.number,
                });
            }
            Err(e) => return Err(e),
        };
        let expectation = Expectation {
            transactionid: &tx.id,
            declared: tx.declared,
            confirmed: progress.confirmed,
            rows: chunk.rows as u64,
            maybe_counted_before,
        };
        match plan::check_upload(&expectation, &results) {
            Verdict::Confirmed { running } => {
                progress.confirmed = running;
                progress.chunks = chunk.number;
                debug!(
                    chunk = chunk.number,
                    rows = chunk.rows,
                    runningtotal = running,
                    "chunk confirmed"
                );
            }
            Verdict::Duplicate { .. } => {
                return Ok(Posted::Duplicate {
                    chunk: chunk.number,
                });
            }
            Verdict::Mismatch(mismatch) => {
                return Err(DriverError::Mismatch {
                    endpoint: Endpoint::UploadCustomers,
                    chunk: Some(chunk.number),
                    mismatch,
                });
            }
        }
    }
    Ok(Posted::All)
}

fn upload_body(tx: &Transaction, rows: usize, buf: &[u8]) -> Bytes {
    let summary = UploadSummary {
        transactionid: tx.id.clone(),
        partnertransactionid: tx.partnertransactionid.clone(),
        partnerstoreid: tx.partnerstoreid.clone(),
        rr_store_id: tx.rr_store_id.clone(),
        feedtype: FEED_CUSTOMERS.into(),
        startdate: None,
        enddate: None,
        totalrowssent: Count(rows as u64),
    };
    let mut body = Vec::with_capacity(buf.len() + 512);
    write_upload_body(&summary, spool::rows_of(buf), &mut body);
    Bytes::from(body)
}

/// endtransaction, only now that every row is confirmed once (SPEC §2.6).
async fn end<A: Api>(
    api: &A,
    tx: &Transaction,
    policy: &RetryPolicy,
    progress: &mut Progress,
) -> Result<(), DriverError> {
    if progress.confirmed != tx.declared {
        progress.abandon();
        return Err(DriverError::Mismatch {
            endpoint: Endpoint::EndTransaction,
            chunk: None,
            mismatch: Mismatch {
                figure: "confirmed rows",
                expected: tx.declared.to_string(),
                received: progress.confirmed.to_string(),
            },
        });
    }
    let summary = EndSummary {
        transactionid: tx.id.clone(),
        partnertransactionid: tx.partnertransactionid.clone(),
        partnerstoreid: tx.partnerstoreid.clone(),
        feedtype: FEED_CUSTOMERS.into(),
        startdate: None,
        enddate: None,
    };
    let attempt = retrying(policy, || api.end(&summary)).await;
    // A refusal on the first attempt is final; after an attempt that may have been delivered, or a last
    // attempt that timed out, the server may have imported whatever the last answer says.
    let maybe_delivered = attempt.maybe_processed_before_last
        || attempt
            .result
            .as_ref()
            .is_err_and(|e| e.is_transient() && e.may_have_been_processed());
    match attempt.result {
        Ok(results) if results.transactionid.0.trim() == tx.id => {
            progress.ended = true;
            info!(transactionid = %tx.id, rows = tx.declared, "transaction ended; the server imports it");
            Ok(())
        }
        Ok(results) => Err(DriverError::EndUnknown {
            transactionid: tx.id.clone(),
            source: CallError::Wire {
                endpoint: Endpoint::EndTransaction,
                status: 200,
                source: crate::protocol::WireError::BadResults {
                    detail: format!(
                        "the success names transaction {:?}, not ours",
                        results.transactionid.0
                    ),
                },
            },
        }),
        Err(source) if maybe_delivered => Err(DriverError::EndUnknown {
            transactionid: tx.id.clone(),
            source,
        }),
        Err(source) => {
            progress.abandon();
            Err(DriverError::Call {
                source,
                attempts: attempt.attempts,
                note: attempt.note,
            })
        }
    }
}

/// The outcome of a call and its retries.
struct Attempt<T> {
    result: Result<T, CallError>,
    attempts: usize,
    /// Whether an attempt before the last one failed in a way the server may have acted on.
    maybe_processed_before_last: bool,
    note: Option<String>,
}

impl<T> Attempt<T> {
    fn into_result(self) -> Result<T, DriverError> {
        self.result.map_err(|source| DriverError::Call {
            source,
            attempts: self.attempts,
            note: self.note,
        })
    }
}

/// Calls `call` until it succeeds, fails for good, or the transient retries run out. Waits between
/// attempts with exponential backoff and jitter, or as long as `Retry-After` asks, whichever is longer.
async fn retrying<T, F, Fut>(policy: &RetryPolicy, mut call: F) -> Attempt<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let mut delays = policy.delays();
    let mut attempts = 0;
    let mut maybe_processed = false;
    loop {
        attempts += 1;
        let error = match call().await {
            Ok(value) => {
                return Attempt {
                    result: Ok(value),
                    attempts,
                    maybe_processed_before_last: maybe_processed,
                    note: None,
                };
            }
            Err(e) => e,
        };
        let give_up = |note: Option<String>, error: CallError| Attempt {
            result: Err(error),
            attempts,
            maybe_processed_before_last: maybe_processed,
            note,
        };
        if !error.is_transient() {
            return give_up(None, error);
        }
        let Some(backoff) = delays.next() else {
            return give_up(None, error);
        };
        let wait = match error.retry_after() {
            Some(asked) if asked > policy.max_retry_after => {
                let note = format!(
                    "the server asked to wait {}s, more than the {}s allowed",
                    asked.as_secs(),
                    policy.max_retry_after.as_secs()
                );
                return give_up(Some(note), error);
            }
            Some(asked) => asked.max(backoff),
            None => backoff,
        };
        warn!(endpoint = %error.endpoint(), attempt = attempts, wait_ms = wait.as_millis() as u64,
            error = %error, "transient failure; retrying");
        maybe_processed |= error.may_have_been_processed();
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests;
