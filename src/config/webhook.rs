//! Settings of the webhook receiver (README "Two-way sync"): flags, else the environment (the secret), else
//! `[webhook]` in the config file, else the defaults.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{Config, ConfigError, Env, env};

/// Where and how the receiver listens.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    pub secret: SecretString,
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub max_rows: usize,
    pub request_timeout: Duration,
}

/// Flag values for `webhook serve` (each `None` when not given).
#[derive(Clone, Debug, Default)]
pub struct WebhookOverrides {
    pub listen: Option<SocketAddr>,
    pub max_body_bytes: Option<usize>,
    pub max_rows: Option<usize>,
    pub request_timeout: Option<Duration>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
pub const DEFAULT_MAX_ROWS: usize = 1000;
/// The receiver refuses secrets shorter than this: the URL holding it is all that protects the outbox.
const MIN_SECRET_LEN: usize = 16;

impl Config {
    /// The receiver's settings.
    ///
    /// Fails when the secret is missing or too short, or a setting is malformed.
    pub fn webhook(
        &self,
        env: Env,
        overrides: &WebhookOverrides,
    ) -> Result<WebhookSettings, ConfigError> {
        let file = &self.file.webhook;
        let secret = match env(env::WEBHOOK_SECRET) {
            Some(secret) => SecretString::from(secret),
            None => match &file.secret {
                Some(r) => self.secret(r, "webhook.secret", env)?,
                None => {
                    return Err(ConfigError::Missing {
                        name: env::WEBHOOK_SECRET.into(),
                        what: "webhook's shared secret (or set [webhook] secret in the config file)",
                    });
                }
            },
        };
        if secret.expose_secret().len() < MIN_SECRET_LEN {
            return Err(ConfigError::invalid(
                "the webhook secret",
                format!("it has fewer than {MIN_SECRET_LEN} characters; use a long random value"),
            ));
        }
        let listen = match (overrides.listen, &file.listen) {
            (Some(addr), _) => addr,
            (None, Some(text)) => text.parse().map_err(|e| {
                self.invalid("webhook.listen", format!("{text:?} is not HOST:PORT ({e})"))
            })?,
            (None, None) => DEFAULT_LISTEN.parse().expect("the default address parses"),
        };
        let max_body_bytes = overrides
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(DEFAULT_MAX_BODY_BYTES);
        let max_rows = overrides
            .max_rows
            .or(file.max_rows)
            .unwrap_or(DEFAULT_MAX_ROWS);
        if max_body_bytes == 0 || max_rows == 0 {
            return Err(self.invalid("webhook.max_body_bytes / max_rows", "must be above 0"));
        }
        let request_timeout = match overrides.request_timeout {
            Some(timeout) => timeout,
            None => self.duration(
                file.request_timeout.as_deref(),
                "webhook.request_timeout",
                "30s",
            )?,
        };
        Ok(WebhookSettings {
            secret,
            listen,
            max_body_bytes,
            max_rows,
            request_timeout,
        })
    }
}
