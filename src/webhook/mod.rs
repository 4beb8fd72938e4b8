//! Two-way customer sync (README "Two-way sync"): Rider Rewards POSTs a customer's edited profile to the partner;
//! rrfeed authenticates it, normalizes it like an upload row, stores it durably in the outbox, and
//! exports the pending updates for the dealer system to import.
//!
//! - [`payload`]: the body's shape and rules (pure)
//! - [`outbox`]: the SQLite outbox (WAL, full sync), idempotent on repeats
//! - [`writer`]: one thread committing many requests per disk sync
//! - [`server`]: the axum routes, authentication, limits and answers
//! - [`export`]: writing pending updates as CSV or JSON, atomically, then marking them exported

pub mod export;
pub mod outbox;
pub mod payload;
pub mod server;
pub mod writer;
