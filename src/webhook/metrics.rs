//! The receiver's own metrics, served on `--metrics-listen ADDR` at `GET /metrics` in the OpenMetrics
//! text format: requests received, customer updates stored, requests refused by reason, how long
//! committing an update to the outbox took, and the updates the dealer system has not exported yet.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Why a request was refused: its answer's status, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Refusal {
    pub reason: &'static str,
}

/// The receiver's counters; cheap to update from every request handler.
pub struct ReceiverMetrics {
    registry: Registry,
    received: Counter,
    stored: Counter,
    refused: Family<Refusal, Counter>,
    commit_seconds: Histogram,
    pending: Gauge,
    state: crate::state::State,
}

impl ReceiverMetrics {
    /// Metrics of a receiver whose outbox is in `state`.
    pub fn new(state: crate::state::State) -> Self {
        let mut registry = Registry::with_prefix("rrfeed_webhook");
        let received = Counter::default();
        let stored = Counter::default();
        let refused = Family::<Refusal, Counter>::default();
        // 0.5 ms to about 4 s.
        let commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let pending = Gauge::default();
        registry.register(
            "requests",
            "Requests received on the updates path",
            received.clone(),
        );
        registry.register(
            "updates_stored",
            "Customer updates committed to the outbox (repeats not counted)",
            stored.clone(),
        );
        registry.register(
            "requests_refused",
            "Requests refused, by reason",
            refused.clone(),
        );
        registry.register(
            "commit_seconds",
            "How long committing a request's updates to the outbox took",
            commit_seconds.clone(),
        );
        registry.register(
            "pending_updates",
            "Updates stored and not yet exported to the dealer system",
            pending.clone(),
        );
        Self {
            registry,
            received,
            stored,
            refused,
            commit_seconds,
            pending,
            state,
        }
    }

    pub fn received(&self) {
        self.received.inc();
    }

    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&Refusal { reason }).inc();
    }

    pub fn committed(&self, stored: usize, took: std::time::Duration) {
        self.stored.inc_by(stored as u64);
        self.commit_seconds.observe(took.as_secs_f64());
    }

    /// The metrics as text, the pending count read from the outbox now.
    fn render(&self) -> Result<String, String> {
        let mut outbox = crate::webhook::outbox::open(&self.state).map_err(|e| e.to_string())?;
        let counts = outbox.counts().map_err(|e| e.to_string())?;
        self.pending.set(counts.pending);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|e| e.to_string())?;
        Ok(text)
    }
}

/// `GET /metrics`.
pub fn router(metrics: Arc<ReceiverMetrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<ReceiverMetrics>>) -> Response {
    let rendered = tokio::task::spawn_blocking(move || metrics.render()).await;
    match rendered {
        Ok(Ok(text)) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
