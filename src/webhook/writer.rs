//! The outbox's single writer: one thread owns the SQLite connection and commits the updates of every
//! request waiting at that moment in one transaction, so that under load many requests share one sync
//! to disk. A request is answered only after the commit that holds its updates.

use std::sync::Arc;
use std::thread::JoinHandle;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tracing::error;

use super::outbox::{Outbox, Stored};
use super::payload::Update;

/// Requests committed together at most.
const MAX_BATCH: usize = 256;

type Reply = Result<Vec<Stored>, String>;

struct Job {
    updates: Vec<Update>,
    reply: oneshot::Sender<Reply>,
}

/// Hands updates to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct WriterHandle {
    jobs: mpsc::Sender<Job>,
}

impl WriterHandle {
    /// Whether the writer thread is still taking updates.
    pub fn is_alive(&self) -> bool {
        !self.jobs.is_closed()
    }
}

/// The writer thread; it ends once every [`WriterHandle`] is dropped and the queue is drained.
pub struct WriterThread(JoinHandle<()>);

impl WriterThread {
    pub fn join(self) {
        if self.0.join().is_err() {
            error!("the outbox writer thread panicked");
        }
    }
}

/// Starts the writer on `outbox`; `now` stamps each commit's updates.
pub fn start(
    mut outbox: Box<dyn Outbox>,
    now: Arc<dyn Fn() -> Timestamp + Send + Sync>,
) -> (WriterHandle, WriterThread) {
    let (tx, mut rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
    let thread = std::thread::Builder::new()
        .name("outbox-writer".into())
        .spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                commit(outbox.as_mut(), jobs, now());
            }
        })
        .expect("a thread can be spawned");
    (WriterHandle { jobs: tx }, WriterThread(thread))
}

fn commit(outbox: &mut dyn Outbox, jobs: Vec<Job>, now: Timestamp) {
    let batches: Vec<&[Update]> = jobs.iter().map(|j| j.updates.as_slice()).collect();
    match outbox.store(&batches, now) {
        Ok(results) => {
            for (job, stored) in jobs.into_iter().zip(results) {
                // A client that went away still had its update stored; nobody to tell.
                let _ = job.reply.send(Ok(stored));
            }
        }
        Err(e) => {
            error!(error = %e, requests = jobs.len(), "cannot store updates in the outbox");
            for job in jobs {
                let _ = job.reply.send(Err(e.to_string()));
            }
        }
    }
}

impl WriterHandle {
    /// Stores `updates` durably; returns what happened to each once committed.
    ///
    /// Fails when the outbox cannot be written (nothing of this request is stored).
    pub async fn store(&self, updates: Vec<Update>) -> Result<Vec<Stored>, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { updates, reply })
            .await
            .map_err(|_| "the outbox writer has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the outbox writer has stopped".to_owned())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::Normalizer;
    use crate::webhook::outbox::sqlite::SqliteOutbox;
    use crate::webhook::payload;

    fn updates(n: usize) -> Vec<Vec<Update>> {
        let normalizer = Normalizer::new(jiff::civil::date(2026, 11, 22));
        (0..n)
            .map(|i| {
                let body = format!(r#"{{"PartnerCustomerID":"{}","CustomerCity":"X"}}"#, i % 50);
                payload::parse(body.as_bytes(), 10, &normalizer).unwrap()
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_are_each_stored_once_and_answered() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = SqliteOutbox::open(dir.path()).unwrap();
        let (writer, thread) = start(Box::new(outbox), Arc::new(Timestamp::now));
        let tasks: Vec<_> = updates(200)
            .into_iter()
            .map(|u| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.store(u).await })
            })
            .collect();
        let mut repeats = 0;
        for task in tasks {
            let stored = task.await.unwrap().unwrap();
            repeats += stored.iter().filter(|s| s.repeat).count();
        }
        drop(writer);
        thread.join();
        let counts = SqliteOutbox::open(dir.path()).unwrap().counts().unwrap();
        // Each of the 50 customers sent the same update four times: stored once each.
        assert_eq!((counts.updates, repeats), (50, 150));
    }
}
