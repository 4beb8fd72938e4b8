//! The transaction driver (docs/transaction.md): one store's snapshot reaches Rider Rewards in one verified
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

use crate::api::{Api, CallError};
use crate::signal::{Signal, Stop};
use crate::spool::Spool;
use crate::totals::{self, Expectation, Mismatch, Verdict};
use crate::wire::{
    BeginSummary, Count, EndSummary, Endpoint, FEED_CUSTOMERS, UploadSummary, VendorError,
    write_upload_body_head, write_upload_body_tail,
};

/// One store's feed, ready to send.
pub struct Feed<'a> {
    pub rr_store_id: &'a str,
    pub partner_store_id: &'a str,
    pub spool: &'a Spool,
    pub allow_empty: bool,
    /// Rows per post, at most 1000.
    pub chunk_size: usize,
}

/// Bounded retries with exponential backoff and jitter for transient faults (docs/transaction.md, step 5).
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
    /// Our id for that transaction.
    pub partnertransactionid: Option<String>,
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
    fn start(&mut self, tx: &Transaction, chunks: usize, confirmed: u64) {
        self.transactionid = Some(tx.id.clone());
        self.partnertransactionid = Some(tx.partnertransactionid.clone());
        self.chunks = chunks;
        self.confirmed = confirmed;
    }

    fn abandon(&mut self) {
        self.partnertransactionid = None;
        if let Some(id) = self.transactionid.take() {
            warn!(transactionid = %id, "transaction abandoned; the server purges it unended");
            self.abandoned.push(id);
        }
    }
}

/// Where an interrupted transaction stopped, to continue it with `--resume` (docs/transaction.md, step 8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumePoint {
    pub transactionid: String,
    pub partnertransactionid: String,
    pub chunks: usize,
    pub confirmed: u64,
}

/// What a run needs besides the API and the feed: retry policy, id source, progress reports, and the
/// stop request.
pub struct Session<'a> {
    pub policy: &'a RetryPolicy,
    /// Makes a `partnertransactionid` for each new transaction (a UUID in production).
    pub new_partner_txid: &'a mut dyn FnMut() -> String,
    /// Told of every change: a transaction begun, a chunk confirmed, one abandoned or ended.
    pub on_progress: &'a mut dyn FnMut(&Progress),
    pub stop: Stop,
}

impl Session<'_> {
    fn check_stop(&self) -> Result<(), DriverError> {
        match self.stop.requested() {
            Some(signal) => Err(DriverError::Interrupted(signal)),
            None => Ok(()),
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
    #[error(
        "stopped by {} before the upload finished; nothing was imported, and the transaction stays \
         open for `rrfeed upload --resume` until the server purges it", .0.name()
    )]
    Interrupted(Signal),
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

/// Runs the whole transaction for `feed`, or continues the one `resume` names, recording what happened
/// in `progress`.
///
/// Fails as [`DriverError`] says; on every failure but [`DriverError::EndUnknown`] nothing was imported.
pub async fn upload<A: Api>(
    api: &A,
    feed: &Feed<'_>,
    session: &mut Session<'_>,
    resume: Option<ResumePoint>,
    progress: &mut Progress,
) -> Result<(), DriverError> {
    guard_empty(feed)?;
    let mut resume = resume;
    if resume.is_none() {
        ready(api, session).await?;
    }
    loop {
        session.check_stop()?;
        let resumed = resume.take();
        let tx = match &resumed {
            Some(point) => {
                let tx = Transaction::resumed(point, feed);
                info!(transactionid = %tx.id, confirmed = point.confirmed, "continuing the transaction");
                progress.start(&tx, point.chunks, point.confirmed);
                tx
            }
            None => {
                let tx = begin(api, feed, session, progress).await?;
                progress.start(&tx, 0, 0);
                tx
            }
        };
        (session.on_progress)(progress);
        let start = progress.confirmed;
        match post_chunks(api, feed, &tx, session, progress, resumed.is_some()).await {
            Ok(Posted::All) => {
                session.check_stop()?;
                return end(api, &tx, session, progress).await;
            }
            Ok(Posted::Duplicate { chunk }) if progress.restarts == 0 => {
                warn!(chunk, transactionid = %tx.id,
                    "the server counted a chunk twice; restarting the upload under a new transaction");
                progress.abandon();
                progress.restarts += 1;
            }
            Ok(Posted::Duplicate { chunk }) => {
                progress.abandon();
                (session.on_progress)(progress);
                return Err(DriverError::DuplicateAgain { chunk });
            }
            Err(e @ DriverError::Interrupted(_)) => return Err(e),
            Err(e) if resumed.is_some() && progress.confirmed == start && e.is_refusal() => {
                warn!(transactionid = %tx.id, error = %e,
                    "the interrupted transaction cannot be continued; starting a fresh one");
                progress.abandon();
                ready(api, session).await?;
            }
            Err(e) => {
                progress.abandon();
                (session.on_progress)(progress);
                return Err(e);
            }
        }
        (session.on_progress)(progress);
    }
}

impl DriverError {
    /// A definite refusal by the server (not authentication): what a purged transaction looks like.
    fn is_refusal(&self) -> bool {
        matches!(
            self,
            DriverError::Call {
                source: CallError::Vendor {
                    error: VendorError::Other(_),
                    ..
                },
                ..
            }
        )
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

impl Transaction {
    fn resumed(point: &ResumePoint, feed: &Feed) -> Self {
        Transaction {
            id: point.transactionid.clone(),
            partnertransactionid: point.partnertransactionid.clone(),
            partnerstoreid: feed.partner_store_id.to_owned(),
            rr_store_id: feed.rr_store_id.to_owned(),
            declared: feed.spool.rows(),
        }
    }
}

enum Posted {
    All,
    Duplicate { chunk: usize },
}

/// docs/transaction.md, step 2: 0 rows would wipe the store's customers.
fn guard_empty(feed: &Feed) -> Result<(), DriverError> {
    if feed.spool.rows() == 0 && !feed.allow_empty {
        return Err(DriverError::EmptyRefused);
    }
    Ok(())
}

/// readyfeedupload: confirms the feed and the credentials.
async fn ready<A: Api>(api: &A, session: &mut Session<'_>) -> Result<(), DriverError> {
    let results = retrying(session, || api.ready_feed()).await.into_result()?;
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
    session: &mut Session<'_>,
    progress: &mut Progress,
) -> Result<Transaction, DriverError> {
    let partnertransactionid = (session.new_partner_txid)();
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
    let results = retrying(session, || api.begin(&summary))
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
        progress.transactionid = Some(id.clone());
        progress.abandon();
        (session.on_progress)(progress);
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

/// Posts every chunk after the confirmed rows in order, one at a time, checking each answer
/// (docs/transaction.md, steps 4 and 5). Stops between chunks when asked to.
async fn post_chunks<A: Api>(
    api: &A,
    feed: &Feed<'_>,
    tx: &Transaction,
    session: &mut Session<'_>,
    progress: &mut Progress,
    resumed: bool,
) -> Result<Posted, DriverError> {
    let spool_error = |e: std::io::Error| DriverError::Spool {
        path: feed.spool.path().display().to_string(),
        detail: e.to_string(),
    };
    let mut reader = feed.spool.reader().map_err(spool_error)?;
    reader.skip_rows(progress.confirmed).map_err(spool_error)?;
    // Bodies of one transaction are about the same size: each is given room for the last one's
    // bytes and a little more, so that it is not grown (and doubled) while it is written.
    let mut last_body = 0;
    let mut read_body = |chunk: &totals::Chunk| -> Result<Bytes, DriverError> {
        let room = match last_body {
            0 => chunk.rows * 800 + 512,
            last => last + last / 16,
        };
        let mut body = Vec::with_capacity(room);
        write_upload_body_head(&upload_summary(tx, chunk.rows), &mut body);
        let read = reader
            .read_rows_json(chunk.rows, &mut body)
            .map_err(spool_error)?;
        if read != chunk.rows {
            return Err(spool_error(std::io::Error::other(format!(
                "it holds fewer rows than the {} counted",
                tx.declared
            ))));
        }
        write_upload_body_tail(&mut body);
        last_body = body.len();
        Ok(Bytes::from(body))
    };
    // After a crash the chunk then in flight may or may not have been counted.
    let mut unsure_of_previous = resumed;
    let mut chunks =
        totals::chunks_from(progress.confirmed, tx.declared, feed.chunk_size).peekable();
    let mut body = chunks.peek().map(&mut read_body).transpose()?;
    while let Some(chunk) = chunks.next() {
        session.check_stop()?;
        let this_body = body
            .take()
            .expect("each chunk's body is read before it is posted");
        let next = chunks.peek().copied();
        // The next chunk's body is read and built while this one is in flight; posts stay sequential.
        let (attempt, next_body) = tokio::join!(
            retrying(session, || api.upload(&tx.id, this_body.clone())),
            async { next.as_ref().map(&mut read_body).transpose() }
        );
        body = next_body?;
        let maybe_counted_before = attempt.maybe_processed_before_last || unsure_of_previous;
        unsure_of_previous = false;
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
        match totals::check_upload(&expectation, &results) {
            Verdict::Confirmed { running } => {
                progress.confirmed = running;
                progress.chunks += 1;
                (session.on_progress)(progress);
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

fn upload_summary(tx: &Transaction, rows: usize) -> UploadSummary {
    UploadSummary {
        transactionid: tx.id.clone(),
        partnertransactionid: tx.partnertransactionid.clone(),
        partnerstoreid: tx.partnerstoreid.clone(),
        rr_store_id: tx.rr_store_id.clone(),
        feedtype: FEED_CUSTOMERS.into(),
        startdate: None,
        enddate: None,
        totalrowssent: Count(rows as u64),
    }
}

/// endtransaction, only now that every row is confirmed once (docs/transaction.md, step 6).
async fn end<A: Api>(
    api: &A,
    tx: &Transaction,
    session: &mut Session<'_>,
    progress: &mut Progress,
) -> Result<(), DriverError> {
    if progress.confirmed != tx.declared {
        progress.abandon();
        (session.on_progress)(progress);
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
    let attempt = retrying(session, || api.end(&summary)).await;
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
            (session.on_progress)(progress);
            info!(transactionid = %tx.id, rows = tx.declared, "transaction ended; the server imports it");
            Ok(())
        }
        Ok(results) => Err(DriverError::EndUnknown {
            transactionid: tx.id.clone(),
            source: CallError::Wire {
                endpoint: Endpoint::EndTransaction,
                status: 200,
                source: crate::wire::WireError::BadResults {
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
        Err(_) if attempt.interrupted.is_some() => Err(DriverError::Interrupted(
            attempt.interrupted.expect("checked"),
        )),
        Err(source) => {
            progress.abandon();
            (session.on_progress)(progress);
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
    /// A stop request that cut the retries short.
    interrupted: Option<Signal>,
}

impl<T> Attempt<T> {
    fn into_result(self) -> Result<T, DriverError> {
        if let Some(signal) = self.interrupted {
            return Err(DriverError::Interrupted(signal));
        }
        self.result.map_err(|source| DriverError::Call {
            source,
            attempts: self.attempts,
            note: self.note,
        })
    }
}

/// Calls `call` until it succeeds, fails for good, or the transient retries run out. Waits between
/// attempts with exponential backoff and jitter, or as long as `Retry-After` asks, whichever is longer;
/// a stop request ends the wait (the call in flight is always let finish).
async fn retrying<T, F, Fut>(session: &mut Session<'_>, mut call: F) -> Attempt<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let policy = session.policy;
    let mut delays = policy.delays();
    let mut attempts = 0;
    let mut maybe_processed = false;
    loop {
        attempts += 1;
        let outcome = call().await;
        let done = |result, note, interrupted| Attempt {
            result,
            attempts,
            maybe_processed_before_last: maybe_processed,
            note,
            interrupted,
        };
        let error = match outcome {
            Ok(value) => return done(Ok(value), None, None),
            Err(e) if !e.is_transient() => return done(Err(e), None, None),
            Err(e) => e,
        };
        let Some(backoff) = delays.next() else {
            return done(Err(error), None, None);
        };
        let wait = match error.retry_after() {
            Some(asked) if asked > policy.max_retry_after => {
                let note = format!(
                    "the server asked to wait {}s, more than the {}s allowed",
                    asked.as_secs(),
                    policy.max_retry_after.as_secs()
                );
                return done(Err(error), Some(note), None);
            }
            Some(asked) => asked.max(backoff),
            None => backoff,
        };
        warn!(endpoint = %error.endpoint(), attempt = attempts, wait_ms = wait.as_millis() as u64,
            error = %error, "transient failure; retrying");
        let processed = error.may_have_been_processed();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            signal = session.stop.wait() => {
                let mut attempt = done(Err(error), None, Some(signal));
                attempt.maybe_processed_before_last |= processed;
                return attempt;
            }
        }
        maybe_processed |= processed;
    }
}

#[cfg(test)]
mod tests;
