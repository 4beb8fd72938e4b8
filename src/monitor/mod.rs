//! Monitoring a fleet of nightly runs (docs/monitoring.md): dead-man's-switch pings ([`ping`]),
//! node_exporter's textfile metrics ([`metrics`]) and the verdict of `rrfeed status` ([`status`]).
//!
//! Nothing here changes a run's outcome: a monitoring endpoint that is down, or a metrics file that
//! cannot be written, costs a warning.

pub mod exposition;
pub mod metrics;
pub mod ping;
pub mod settings;
pub mod status;

/// Seconds since the epoch of an RFC 3339 time as the ledger records it.
pub(crate) fn epoch_seconds(time: &str) -> Option<f64> {
    let at: jiff::Timestamp = time.parse().ok()?;
    Some(at.as_millisecond() as f64 / 1000.0)
}
