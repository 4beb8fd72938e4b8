//! CRM.COM as a second destination (SPEC §8): the rewards participants of a dealer's loyalty program,
//! synced one participant per call.
//!
//! - [`wire`]: paths, envelope, identifiers, requests and answers (pure)

pub mod wire;
