//! The seam between the transaction driver and the vendor, with no IO: the [`Api`] the driver calls,
//! the [`CallError`] a call fails with (and whether a retry may help), and how an answer read off the
//! wire is sorted into a success or a failure (docs/protocol.md, "Every call"). `client.rs` implements
//! [`Api`] over HTTP; the driver's tests implement it over the mock's state machine.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use crate::wire::{
    self, BeginResults, BeginSummary, EndResults, EndSummary, Endpoint, ReadyFeedResults, Reply,
    UploadResults, VendorError, WireError,
};

/// The vendor's API as the driver needs it.
pub trait Api {
    fn ready_feed(&self) -> impl Future<Output = Result<ReadyFeedResults, CallError>> + Send;
    fn begin(
        &self,
        summary: &BeginSummary,
    ) -> impl Future<Output = Result<BeginResults, CallError>> + Send;
    fn upload(
        &self,
        transactionid: &str,
        body: Bytes,
    ) -> impl Future<Output = Result<UploadResults, CallError>> + Send;
    fn end(
        &self,
        summary: &EndSummary,
    ) -> impl Future<Output = Result<EndResults, CallError>> + Send;
}

/// How a request failed before an answer was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection was made: the server cannot have seen the request.
    Connect,
    /// The answer did not come in time: the server may have processed the request.
    Timeout,
    /// The connection broke while sending or reading: the server may have processed the request.
    Broken,
}

/// Why a call did not succeed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum CallError {
    #[error("{endpoint}: {}: {detail}", transport_text(*kind))]
    Transport {
        endpoint: Endpoint,
        kind: TransportKind,
        detail: String,
    },
    #[error("{endpoint}: TLS failure: {detail}{}", tls_hint(detail))]
    Tls { endpoint: Endpoint, detail: String },
    #[error("{endpoint}: HTTP {status}{}: {body}", retry_after.map(|d| format!(" (Retry-After {}s)", d.as_secs())).unwrap_or_default())]
    Transient {
        endpoint: Endpoint,
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    #[error("{endpoint}: the server answered with the error {error:?} (HTTP {status}){}", vendor_hint(error), error = error.to_string())]
    Vendor {
        endpoint: Endpoint,
        status: u16,
        error: VendorError,
    },
    #[error("{endpoint}: HTTP {status}: {source}")]
    Wire {
        endpoint: Endpoint,
        status: u16,
        source: WireError,
    },
}

fn transport_text(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Connect => "cannot connect",
        TransportKind::Timeout => "no answer in time",
        TransportKind::Broken => "the connection broke",
    }
}

impl CallError {
    /// Connect errors, timeouts, broken connections, HTTP 5xx and 429 (docs/transaction.md, step 5).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CallError::Transport { .. } | CallError::Transient { .. }
        )
    }

    /// Whether the server may have acted on the request although no success was read.
    pub fn may_have_been_processed(&self) -> bool {
        match self {
            CallError::Transport { kind, .. } => *kind != TransportKind::Connect,
            CallError::Transient { status, .. } => *status != 429,
            CallError::Tls { .. } => false,
            CallError::Vendor { .. } | CallError::Wire { .. } => true,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        match self {
            CallError::Transport { endpoint, .. }
            | CallError::Tls { endpoint, .. }
            | CallError::Transient { endpoint, .. }
            | CallError::Vendor { endpoint, .. }
            | CallError::Wire { endpoint, .. } => *endpoint,
        }
    }
}

/// What to check after the vendor's own error.
fn vendor_hint(error: &VendorError) -> &'static str {
    match error {
        VendorError::AuthenticationFailed => {
            ": check the partner API key (RRFEED_PARTNER_API_KEY or partner_api_key) and the store's \
             RRStoreID and RRStoreAPIKey (`rrfeed stores` lists them); if they are right, the server \
             may be comparing header names by case, which HTTP does not allow: rrfeed sends them \
             lowercased, e.g. partnerapikey (README \"Protocol notes\")"
        }
        _ => "",
    }
}

/// What to do about a certificate the client refused.
fn tls_hint(detail: &str) -> &'static str {
    if detail.contains("UnknownIssuer") {
        " (no trusted CA signed the server's certificate; behind a TLS-inspecting proxy, trust its CA \
         with --ca-cert FILE or ca_cert in rrfeed.toml)"
    } else if detail.contains("NotValidForName") {
        " (the certificate is for another host name: check api_url)"
    } else if detail.contains("Expired") {
        " (the server's certificate has expired)"
    } else {
        ""
    }
}

/// An answer as read off the wire, before interpretation.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

/// Sorts an answer into a success or a [`CallError`]: 5xx and 429 are transient whatever the body;
/// otherwise a `results.error` is a vendor failure whatever the status (docs/protocol.md).
pub fn interpret<T>(
    endpoint: Endpoint,
    answer: &Answer,
    parse: fn(&[u8]) -> Result<Reply<T>, WireError>,
) -> Result<T, CallError> {
    let status = answer.status;
    if (500..600).contains(&status) || status == 429 {
        return Err(CallError::Transient {
            endpoint,
            status,
            retry_after: answer.retry_after,
            body: wire::snippet(&answer.body),
        });
    }
    match parse(&answer.body) {
        Ok(Reply::Success(results)) if (200..300).contains(&status) => Ok(results),
        Ok(Reply::Success(_)) => Err(CallError::Wire {
            endpoint,
            status,
            source: WireError::NotSuccess {
                message: format!("a success body with HTTP status {status}"),
            },
        }),
        Ok(Reply::Failure(error)) => Err(CallError::Vendor {
            endpoint,
            status,
            error,
        }),
        Err(source) => Err(CallError::Wire {
            endpoint,
            status,
            source,
        }),
    }
}

/// `Retry-After` in seconds or as an HTTP date (README "Running it for real").
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let past = httpdate::fmt_http_date(std::time::SystemTime::UNIX_EPOCH);
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let d = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn transient_errors_say_whether_the_server_may_have_acted() {
        let t = |kind| CallError::Transport {
            endpoint: Endpoint::UploadCustomers,
            kind,
            detail: String::new(),
        };
        assert!(!t(TransportKind::Connect).may_have_been_processed());
        assert!(t(TransportKind::Timeout).may_have_been_processed());
        let status = |status| CallError::Transient {
            endpoint: Endpoint::UploadCustomers,
            status,
            retry_after: None,
            body: String::new(),
        };
        assert!(!status(429).may_have_been_processed());
        assert!(status(502).may_have_been_processed());
        assert!(status(503).is_transient());
    }
}
