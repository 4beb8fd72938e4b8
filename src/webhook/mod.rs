//! Two-way customer sync (README "Two-way sync"): Rider Rewards POSTs a customer's edited profile to the partner;
//! rrfeed authenticates it, normalizes it like an upload row, stores it durably in the outbox, and
//! exports the pending updates for the dealer system to import.
//!
//! - [`payload`]: the body's shape and rules (pure)
//! - [`outbox`]: the SQLite outbox (WAL, full sync), idempotent on repeats
//! - [`writer`]: one thread committing many requests per disk sync
//! - [`server`]: the axum routes, authentication, limits and answers
//! - [`export`]: writing pending updates as CSV or JSON, atomically, then marking them exported
//! - [`metrics`]: the receiver's own metrics, served on `--metrics-listen`
//! - [`health`]: the dead-man's-switch pings while the receiver is healthy

pub mod export;
pub mod health;
pub mod metrics;
pub mod outbox;
pub mod payload;
pub mod server;
pub mod writer;
