//! CRM.COM as a second destination (docs/crm.md): the rewards participants of a dealer's loyalty program,
//! synced one participant per call.
//!
//! - [`wire`]: paths, envelope, identifiers, requests and answers (pure)
//! - [`client`]: login, token renewal and release, one method per call
//! - [`links`]: which participant each customer became, in the ledger
//! - [`decide`]: what to create, and what to change in an existing participant (pure)
//! - [`sync`]: `crm sync`, row by row with bounded concurrency

pub mod client;
pub mod decide;
pub mod links;
pub mod sync;
pub mod wire;
