//! Pings in the Healthchecks.io protocol, which Cronitor, Uptime Kuma and Sentry's cron monitors also
//! accept: `GET {url}/start?rid=RUN` when a run starts, `POST {url}/{exit_code}?rid=RUN` with a short
//! plain-text summary when it ends (0 is success, anything else a failure), and a plain `GET {url}`
//! for "alive".
//!
//! Each call waits at most 10 s and is retried up to 3 times on a 5xx answer, a timeout or a refused
//! connection. A ping that still fails is one warning naming only the URL's host: the rest of the URL
//! often holds the check's token.

use std::path::Path;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tracing::{debug, warn};

use crate::config::PingUrl;

/// How long one ping may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Retries after the first attempt.
const RETRIES: usize = 3;
/// The first wait before a retry; it doubles.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
/// The largest summary sent with an end ping (the services keep the first 10 kB or less).
pub const MAX_BODY_BYTES: usize = 10_000;

/// The pings of one run (or one night): one check, one run id.
pub struct Ping {
    url: PingUrl,
    client: reqwest::Client,
    rid: String,
    retry_delay: Duration,
}

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    reason: String,
    transient: bool,
}

impl Ping {
    /// The pings to `url` for a new run, with a fresh run id; `None` (and a warning) when no HTTP client
    /// can be made for it (an unreadable CA file, say).
    pub fn new(url: PingUrl, ca_cert: Option<&Path>) -> Option<Self> {
        let base = url.call(None, None);
        match crate::client::http_client(&base, TIMEOUT, TIMEOUT, ca_cert) {
            Ok(client) => Some(Self {
                url,
                client,
                rid: uuid::Uuid::new_v4().to_string(),
                retry_delay: FIRST_RETRY_DELAY,
            }),
            Err(e) => {
                warn!(host = url.host(), "cannot ping: {e}");
                None
            }
        }
    }

    /// Says the run started.
    pub async fn start(&self) {
        let url = self.url.call(Some("start"), Some(&self.rid));
        self.send("start", || self.client.get(url.clone())).await;
    }

    /// Says how the run ended: its exit code, with `summary` (cut to [`MAX_BODY_BYTES`]) as the body.
    pub async fn finish(&self, exit_code: u8, summary: &str) {
        let url = self.url.call(Some(&exit_code.to_string()), Some(&self.rid));
        let body = truncate(summary, MAX_BODY_BYTES).to_owned();
        self.send("end", || {
            self.client
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(body.clone())
        })
        .await;
    }

    /// Says the long-running process is alive and well.
    pub async fn alive(&self) {
        let url = self.url.call(None, None);
        self.send("alive", || self.client.get(url.clone())).await;
    }

    /// Says the long-running process is not well, and why.
    pub async fn fail(&self, reason: &str) {
        let url = self.url.call(Some("fail"), None);
        let body = truncate(reason, MAX_BODY_BYTES).to_owned();
        self.send("fail", || self.client.post(url.clone()).body(body.clone()))
            .await;
    }

    async fn send(&self, what: &str, request: impl Fn() -> reqwest::RequestBuilder) {
        let attempt = || async {
            match request().send().await {
                Ok(answer) if answer.status().is_success() => Ok(()),
                Ok(answer) => Err(Failure {
                    reason: format!("answered {}", answer.status()),
                    transient: answer.status().is_server_error(),
                }),
                Err(e) => Err(Failure {
                    transient: e.is_connect() || e.is_timeout() || e.is_request(),
                    reason: describe(&e.without_url()),
                }),
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry_delay)
            .with_max_times(RETRIES);
        let sent = attempt
            .retry(backoff)
            .when(|f: &Failure| f.transient)
            .notify(|f: &Failure, wait| {
                debug!(
                    host = self.url.host(),
                    "{what} ping {}; retrying in {wait:?}", f.reason
                );
            })
            .await;
        match sent {
            Ok(()) => debug!(host = self.url.host(), "{what} ping sent"),
            Err(f) => warn!(
                host = self.url.host(),
                "the {what} ping to {} failed: {}; the run's outcome is unchanged",
                self.url.host(),
                f.reason
            ),
        }
    }
}

/// A request error and its causes, without the URL (which may hold the check's token).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_summary_is_cut_at_a_character_boundary() {
        let text = "é".repeat(6000);
        let cut = truncate(&text, MAX_BODY_BYTES);
        assert_eq!(cut.len(), MAX_BODY_BYTES);
        assert_eq!(truncate("short", MAX_BODY_BYTES), "short");
        assert_eq!(truncate("aé", 2), "a");
    }
}
