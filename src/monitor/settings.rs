//! What one invocation reports to monitoring, resolved once from the configuration. A problem with a
//! monitoring setting (an unset variable, a plain-http URL) is a warning, never a failed run: the
//! dead-man's switch then notices the missing ping, and `rrfeed config check` names the setting.

use std::collections::HashMap;
use std::path::PathBuf;

use tracing::warn;

use super::ping::Ping;
use crate::config::{Config, Env, PingUrl};

/// The pings and the metrics file of one invocation.
#[derive(Default)]
pub struct Monitoring {
    /// `RRFEED_PING_URL` or `[monitor] ping_url`.
    night: Option<PingUrl>,
    /// The stores' own `ping_url`, by store name.
    stores: HashMap<String, PingUrl>,
    /// `RRFEED_METRICS_FILE` or `[monitor] metrics_file`.
    pub metrics_file: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
}

impl Monitoring {
    /// The settings of `config` for the stores `names`; without pings when `pinging` is false.
    /// Pings trust `ca_cert` as the API calls do.
    pub fn new(
        config: &Config,
        env: Env,
        names: &[&str],
        pinging: bool,
        ca_cert: Option<PathBuf>,
    ) -> Self {
        let mut monitoring = Monitoring {
            metrics_file: config.metrics_file(env),
            ca_cert,
            ..Monitoring::default()
        };
        if !pinging {
            return monitoring;
        }
        monitoring.night = config.ping_url(env).unwrap_or_else(|e| {
            warn!("no ping will be sent: {e}");
            None
        });
        for name in names {
            match config.store_ping_url(name, env) {
                Ok(Some(url)) => {
                    monitoring.stores.insert((*name).to_owned(), url);
                }
                Ok(None) => {}
                Err(e) => warn!(store = %name, "no ping will be sent for this store: {e}"),
            }
        }
        monitoring
    }

    /// The pings of the whole night, when there is a night's ping URL.
    pub fn night(&self) -> Option<Ping> {
        Ping::new(self.night.clone()?, self.ca_cert.as_deref())
    }

    /// The pings of one store's run: its own URL, else (when the run is of this store alone) the
    /// night's.
    pub fn store(&self, name: &str, alone: bool) -> Option<Ping> {
        let url = self
            .stores
            .get(name)
            .or(self.night.as_ref().filter(|_| alone))?;
        Ping::new(url.clone(), self.ca_cert.as_deref())
    }
}
