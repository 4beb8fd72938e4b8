//! rrfeed: uploads a dealer store's customer export to the Rider Rewards loyalty platform in one
//! verified transaction (see SPEC.md and README.md).
//!
//! The pure core (`protocol`, `customer`, `mapping`, `plan`, `warnings`) does no IO; `source` and `ingest`
//! read exports; `spool` keeps the snapshot; `client` speaks HTTP; `driver` runs the transaction; `mock`
//! is the bundled server; `cli`, `cmd` and `app` are the command line.

pub mod app;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod config;
pub mod crm;
pub mod customer;
pub mod dates;
pub mod driver;
pub mod error;
pub mod ingest;
pub mod ledger;
pub mod lock;
pub mod mapping;
pub mod mock;
pub mod output;
pub mod plan;
pub mod protocol;
pub mod prune;
pub mod rejects;
pub mod repeats;
pub mod signal;
pub mod source;
pub mod spool;
pub mod summary;
pub mod telemetry;
pub mod warnings;
pub mod webhook;
