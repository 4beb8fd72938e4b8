//! The HTTP side of the receiver (README "Two-way sync"): `POST /customer-updates/{secret}` or `POST /customer-updates`
//! with `Authorization: Bearer SECRET`, and `GET /healthz`. Every answer is in the vendor's envelope:
//! `{"results": {"message": "Success", ...}}` only after the update is committed to the outbox,
//! `{"results": {"error": "..."}}` with 400, 401, 404, 408, 413, 415 or 503 otherwise.
//!
//! The secret is compared in constant time (as BLAKE3 hashes, so its length does not leak either) and
//! never logged: request paths are not logged at all, since one of them holds the secret.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use jiff::civil::Date;
use secrecy::ExposeSecret;
use serde::Serialize;
use tracing::{info, warn};

use super::metrics::ReceiverMetrics;
use super::outbox::Stored;
use super::payload;
use super::writer::WriterHandle;
use crate::config::WebhookSettings;
use crate::customer::Normalizer;
use crate::wire::{self, Envelope, SUCCESS};

/// The path the vendor is given (with `/{secret}` appended, or a Bearer header).
pub const UPDATES_PATH: &str = "/customer-updates";

/// What every request handler shares.
pub struct Receiver {
    secret: blake3::Hash,
    max_body_bytes: usize,
    max_rows: usize,
    request_timeout: Duration,
    writer: WriterHandle,
    today: Arc<dyn Fn() -> Date + Send + Sync>,
    metrics: Arc<ReceiverMetrics>,
}

impl Receiver {
    pub fn new(
        settings: &WebhookSettings,
        writer: WriterHandle,
        today: Arc<dyn Fn() -> Date + Send + Sync>,
        metrics: Arc<ReceiverMetrics>,
    ) -> Self {
        Self {
            metrics,
            secret: blake3::hash(settings.secret.expose_secret().as_bytes()),
            max_body_bytes: settings.max_body_bytes,
            max_rows: settings.max_rows,
            request_timeout: settings.request_timeout,
            writer,
            today,
        }
    }

    /// Whether `given` is the secret; `blake3::Hash` compares in constant time.
    fn authentic(&self, given: &str) -> bool {
        blake3::hash(given.as_bytes()) == self.secret
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the requests in progress finish
/// (for at most `grace`). Unlike `axum::serve`, a client must send its request head within
/// `header_timeout`: a connection that trickles its headers (slowloris) is closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    header_timeout: Duration,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                // Out of file descriptors and the like: wait a little instead of spinning.
                Err(e) => {
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                tower::ServiceExt::oneshot(router.clone(), request.map(Body::new))
            });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(tcp), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or times out is not the receiver's problem.
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("requests still in progress after the grace period were cut off");
    }
    Ok(())
}

/// The receiver's routes.
pub fn router(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route(UPDATES_PATH, post(updates_with_bearer))
        .route(
            &format!("{UPDATES_PATH}/{{secret}}"),
            post(updates_with_path),
        )
        .route("/healthz", get(healthz))
        .fallback(|| async { failure(StatusCode::NOT_FOUND, "no such path") })
        .with_state(receiver)
}

async fn healthz() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

async fn updates_with_path(
    State(receiver): State<Arc<Receiver>>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(&receiver, Some(&secret), &headers, body).await
}

async fn updates_with_bearer(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    handle(&receiver, bearer.as_deref(), &headers, body).await
}

/// The success answer's `results`.
#[derive(Serialize)]
struct Accepted {
    message: &'static str,
    received: usize,
    stored: usize,
    repeats: usize,
    sequence: Vec<i64>,
}

/// Handles one request on the updates path, counted in the receiver's metrics.
async fn handle(
    receiver: &Receiver,
    secret: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    receiver.metrics.received();
    let answer = answer(receiver, secret, headers, body).await;
    if let Some(reason) = refusal_reason(answer.status()) {
        receiver.metrics.refused(reason);
    }
    answer
}

/// The metrics' name for a refusal, by its status.
fn refusal_reason(status: StatusCode) -> Option<&'static str> {
    Some(match status.as_u16() {
        200..=299 => return None,
        400 => "invalid",
        401 => "unauthorized",
        408 => "timeout",
        413 => "too_large",
        415 => "not_json",
        503 => "not_stored",
        _ => "other",
    })
}

async fn answer(
    receiver: &Receiver,
    secret: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    match secret {
        None => {
            return failure(
                StatusCode::UNAUTHORIZED,
                "missing secret: put it in the path or an Authorization: Bearer header",
            );
        }
        Some(s) if !receiver.authentic(s) => {
            warn!("refused a request with a wrong secret");
            return failure(
                StatusCode::UNAUTHORIZED,
                wire::error_text::AUTHENTICATION_FAILED,
            );
        }
        Some(_) => {}
    }
    if !is_json(headers) {
        return failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        );
    }
    let bytes = match read_body(receiver, headers, body).await {
        Ok(bytes) => bytes,
        Err(answer) => return answer,
    };
    let normalizer = Normalizer::new((receiver.today)());
    let updates = match payload::parse(&bytes, receiver.max_rows, &normalizer) {
        Ok(updates) => updates,
        Err(refused) => {
            warn!(reason = %refused.message(), "refused an update");
            let status = StatusCode::from_u16(refused.status()).expect("400 and 413 are statuses");
            return failure(status, &refused.message());
        }
    };
    let received = updates.len();
    let committing = std::time::Instant::now();
    match receiver.writer.store(updates).await {
        Ok(stored) => {
            let new = stored.iter().filter(|s| !s.repeat).count();
            receiver.metrics.committed(new, committing.elapsed());
            accepted(received, &stored)
        }
        Err(e) => failure(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the update could not be stored ({e}); send it again"),
        ),
    }
}

fn accepted(received: usize, stored: &[Stored]) -> Response {
    let repeats = stored.iter().filter(|s| s.repeat).count();
    info!(
        received,
        stored = received - repeats,
        repeats,
        "stored customer updates"
    );
    let body = Envelope {
        results: Accepted {
            message: SUCCESS,
            received,
            stored: received - repeats,
            repeats,
            sequence: stored.iter().map(|s| s.seq).collect(),
        },
    };
    json(
        StatusCode::OK,
        serde_json::to_vec(&body).expect("answers serialize"),
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// How much of a body that is too large is still read (and thrown away) so that the client, still
/// sending, gets the 413 instead of a broken connection.
const DRAIN_LIMIT: usize = 8 << 20;

/// The whole body, within the size limit and the request timeout.
async fn read_body(
    receiver: &Receiver,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, Response> {
    let max = receiver.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let read = async {
        let mut body = body;
        let mut bytes = Vec::new();
        let mut seen = 0usize;
        let mut too_large = declared.is_some_and(|n| n > max);
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            seen += data.len();
            too_large |= seen > max;
            if too_large && seen > DRAIN_LIMIT {
                break;
            }
            if !too_large {
                bytes.extend_from_slice(&data);
            }
        }
        Ok::<_, axum::Error>((bytes, too_large))
    };
    match tokio::time::timeout(receiver.request_timeout, read).await {
        Err(_) => Err(failure(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )),
        Ok(Ok((_, true))) => Err(failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is larger than {max} bytes"),
        )),
        Ok(Err(e)) => Err(failure(
            StatusCode::BAD_REQUEST,
            &format!("cannot read the body: {e}"),
        )),
        Ok(Ok((bytes, false))) => Ok(bytes),
    }
}

fn failure(status: StatusCode, text: &str) -> Response {
    json(status, wire::error_body(text))
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
