//! rrfeed: uploads a dealer store's customer export to the Rider Rewards loyalty platform in one
//! verified transaction. README.md is the user's guide; `docs/` holds the contract: the protocol as
//! implemented (`docs/protocol.md`), the transaction rules and exit codes (`docs/transaction.md`),
//! CRM.COM (`docs/crm.md`), monitoring (`docs/monitoring.md`) and fleets (`docs/fleet.md`).
//!
//! # Layout
//!
//! - **Core, no IO:** `wire` (the Rider Rewards wire format), `customer` (the 25-field row and its
//!   normalization), `dates` (day/month order), `mapping` (export columns to fields), `totals` (chunks and
//!   running totals), `shard` (which stores a shard of a night runs), `warnings`, `summary` (what a run
//!   prints), `error` (exit codes).
//! - **Reading exports:** `source` (encodings, CSV, JSON, NDJSON, byte guards), `ingest` (the whole
//!   export read, validated and held until its date order is known), `repeats` (repeated customer ids),
//!   `rejects` (the rejects file), `spool` (the snapshot of what is sent).
//! - **Talking to Rider Rewards:** `api` (the seam the driver calls: `Api`, `CallError`, how an answer
//!   is sorted; no IO), `client` (its HTTP implementation: proxies, TLS), `driver` (the transaction),
//!   `signal` (stopping between chunks).
//! - **One store's run:** `run` (`StoreRun`: lock, ledger entry, snapshot, guards, resume, driver),
//!   `context` (date, clock and environment, injected).
//! - **State:** `state` (the state directory, and PostgreSQL shared by several machines), `sqlite` (how
//!   every durable file is opened), `ledger` (runs, in SQLite or PostgreSQL), `lock` (one run per
//!   store), `prune` (retention).
//! - **Monitoring:** `monitor` (dead-man's-switch pings, the node_exporter metrics file, the verdict of
//!   `status`).
//! - **Other destinations and servers:** `crm` (CRM.COM participants), `webhook` (customers' own edits),
//!   `mock` (the bundled Rider Rewards and CRM.COM server).
//! - **The program:** `config` (settings and secrets), `cli` (arguments), `cmd` (one module per
//!   command), `app` (dispatch), `telemetry` (logging), `output` (stdout, stderr and `--quiet`).
//!
//! The public modules are what the binary, the benchmarks, the examples and the integration tests use;
//! the rest is `pub(crate)`.

pub mod api;
pub mod app;
pub(crate) mod changes;
pub mod cli;
pub mod client;
pub(crate) mod cmd;
pub mod config;
pub(crate) mod context;
pub mod crm;
pub mod customer;
pub(crate) mod dates;
pub(crate) mod driver;
pub mod error;
pub(crate) mod extsort;
pub mod ingest;
pub(crate) mod ledger;
pub(crate) mod lock;
pub(crate) mod mapping;
pub mod mock;
pub(crate) mod monitor;
pub mod output;
pub(crate) mod prune;
pub(crate) mod rejects;
pub(crate) mod repeats;
pub(crate) mod run;
pub mod shard;
pub(crate) mod signal;
pub mod source;
pub(crate) mod spool;
pub(crate) mod sqlite;
pub mod state;
pub(crate) mod summary;
pub mod telemetry;
pub mod totals;
pub mod warnings;
pub mod webhook;
pub mod wire;
