//! The outbox: every accepted customer update, durably, until the dealer system has taken it (README
//! "Two-way sync"). A repeat of a customer's latest update (the same raw JSON) is stored once: the
//! vendor may send an update again when an answer is lost, while a customer who changes a value back
//! and forth still has each change kept.
//!
//! [`Outbox`] is the interface: SQLite in the state directory ([`sqlite`]), or PostgreSQL shared by
//! receivers on several machines ([`postgres`]). The same behavioural tests run against both.

pub mod postgres;
pub mod sqlite;
#[cfg(test)]
mod tests;

use jiff::Timestamp;
use serde::Serialize;

use super::payload::Update;
use crate::state::State;

/// The file name of the outbox in the state directory.
pub const FILE_NAME: &str = "outbox.sqlite3";

/// An outbox that cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[error("outbox {place}: {message}")]
pub struct OutboxError {
    /// The file, or the database.
    pub place: String,
    pub message: String,
}

/// What happened to one update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Stored {
    /// The update's sequence number (the earlier one for a repeat).
    pub seq: i64,
    /// Whether it repeated the customer's latest update and was not stored again.
    pub repeat: bool,
}

/// An update as stored, for exports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub seq: i64,
    pub received_at: String,
    pub customer_key: String,
    pub customer: String,
    pub raw: String,
}

/// What `webhook status` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub updates: i64,
    pub pending: i64,
    pub pending_customers: i64,
    pub exported: i64,
    pub last_received_at: Option<String>,
    pub last_exported_at: Option<String>,
}

/// The outbox, wherever it lives.
pub trait Outbox: Send {
    /// Where it is, for messages (the file, or the database without its password).
    fn place(&self) -> String;
    /// Stores the updates of several requests in one transaction (one sync to disk), in order.
    /// Returns, per request, what happened to each of its updates.
    fn store(
        &mut self,
        batches: &[&[Update]],
        now: Timestamp,
    ) -> Result<Vec<Vec<Stored>>, OutboxError>;
    /// The newest sequence number (0 when empty): an export covers the updates up to it. Every update
    /// numbered up to it is committed: none can appear below it later.
    fn last_seq(&mut self) -> Result<i64, OutboxError>;
    /// The latest update of each customer among those up to `up_to`, in sequence order: of customers
    /// with a pending update only, or of every customer when `all`.
    fn latest(&mut self, up_to: i64, all: bool) -> Result<Vec<Row>, OutboxError>;
    /// Marks every pending update up to `up_to` exported; returns how many.
    fn mark_exported(&mut self, up_to: i64, now: Timestamp) -> Result<u64, OutboxError>;
    /// What `webhook status` shows.
    fn counts(&mut self) -> Result<Counts, OutboxError>;
    /// Keeps other exports out until this outbox is dropped, so that two exports never take the same
    /// updates (a no-op on one machine's SQLite outbox).
    fn exclusive_export(&mut self) -> Result<(), OutboxError>;
}

/// Opens (creating if needed) the outbox of `state`.
///
/// Fails when it cannot be created or reached.
pub fn open(state: &State) -> Result<Box<dyn Outbox>, OutboxError> {
    match &state.postgres {
        Some(target) => Ok(Box::new(postgres::PgOutbox::open(target)?)),
        None => Ok(Box::new(sqlite::SqliteOutbox::open(&state.dir)?)),
    }
}

/// Opens the outbox of `state` for a query, which never creates one: `None` when there is no SQLite
/// outbox yet.
pub fn open_existing(state: &State) -> Result<Option<Box<dyn Outbox>>, OutboxError> {
    if state.postgres.is_none() && !state.dir.join(FILE_NAME).exists() {
        return Ok(None);
    }
    open(state).map(Some)
}
