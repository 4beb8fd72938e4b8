//! The Rider Rewards dealer API on the wire (docs/protocol.md): endpoint paths, header names, request and
//! response bodies, the 25 customer fields and the vendor's error texts.
//!
//! Both the HTTP client and the mock server use these types, so they cannot drift apart. This module
//! does no IO and holds every wire name of the project: a correction to the vendor's spelling is a
//! one-line change here.
//!
//! - [`lenient`]: counts and texts the server may send as strings or numbers
//! - [`messages`]: request bodies, answers, and how a body is parsed into one
//! - [`errors`]: the vendor's error texts, and what an unreadable answer is
//! - [`row`]: the 25-field customer row and its JSON, written once per row

mod errors;
mod lenient;
mod messages;
mod row;

pub use errors::*;
pub use lenient::*;
pub use messages::*;
pub use row::*;

use std::fmt;

use serde::{Deserialize, Serialize};

/// Feed type of the customer feed, the only feed rrfeed uploads.
pub const FEED_CUSTOMERS: &str = "C";

/// The vendor refuses posts of more rows than this (docs/protocol.md).
pub const MAX_ROWS_PER_POST: usize = 1000;

/// Header names, spelled as the vendor documents them (HTTP compares them without case).
pub mod header {
    pub const PARTNER_API_KEY: &str = "PartnerAPIKey";
    pub const STORE_API_KEY: &str = "RRStoreAPIKey";
    pub const STORE_ID: &str = "RRStoreID";
    pub const TRANSACTION_ID: &str = "transactionid";
    pub const ADMIN_PASSWORD: &str = "PartnerAPIAdminPassword";
    pub const PARTNER_STORE_ID: &str = "PartnerStoreID";
}

/// The vendor's five endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    DealerList,
    ReadyFeed,
    BeginTransaction,
    UploadCustomers,
    EndTransaction,
}

impl Endpoint {
    pub const ALL: [Endpoint; 5] = [
        Endpoint::DealerList,
        Endpoint::ReadyFeed,
        Endpoint::BeginTransaction,
        Endpoint::UploadCustomers,
        Endpoint::EndTransaction,
    ];

    /// The path appended to the base URL.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::DealerList => "/getmydealerlist",
            Endpoint::ReadyFeed => "/readyfeedupload",
            Endpoint::BeginTransaction => "/begintransaction",
            Endpoint::UploadCustomers => "/uploadcustomerprofile",
            Endpoint::EndTransaction => "/endtransaction",
        }
    }

    /// The short name used in logs, fault specs and the mock's call log.
    pub fn short_name(self) -> &'static str {
        match self {
            Endpoint::DealerList => "dealers",
            Endpoint::ReadyFeed => "ready",
            Endpoint::BeginTransaction => "begin",
            Endpoint::UploadCustomers => "upload",
            Endpoint::EndTransaction => "end",
        }
    }

    /// Finds an endpoint by its short name or by its path without the slash.
    pub fn from_name(name: &str) -> Option<Endpoint> {
        Endpoint::ALL
            .into_iter()
            .find(|e| e.short_name() == name || &e.path()[1..] == name)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path()[1..])
    }
}

#[cfg(test)]
mod tests;
