//! Settings, resolved once into validated values (README "Running it for real"): flags first, then the environment, then the
//! config file (`--config`, else `./rrfeed.toml`, else the user config dir). The API URL is checked for
//! https, secrets are read from their references and wrapped so that they never print. The core never
//! sees clap, `std::env` or TOML.

mod crm;
pub mod file;
mod mapping;
mod monitor;
mod secret;
mod webhook;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::mapping::MappingRules;
use crate::source::{Encoding, Format};
pub use crm::{CrmSettings, DEFAULT_UDF, Destination};
use file::{FileConfig, SecretRef, StoreConfig};
pub use monitor::PingUrl;
pub use secret::Secret;
pub use webhook::{WebhookOverrides, WebhookSettings};

/// The vendor's production API.
pub const DEFAULT_API_URL: &str = "https://api.riderrewards.com";

/// How long the ledger keeps runs unless `[ledger] keep` says otherwise.
pub const DEFAULT_RETENTION: &str = "90d";

/// The name of the config file looked for in the working directory and the user config dir.
pub const CONFIG_FILE_NAME: &str = "rrfeed.toml";

/// Environment variable names (README "Running it for real").
pub mod env {
    pub const API_URL: &str = "RRFEED_API_URL";
    pub const PARTNER_API_KEY: &str = "RRFEED_PARTNER_API_KEY";
    pub const ADMIN_PASSWORD: &str = "RRFEED_ADMIN_PASSWORD";
    pub const STORE_ID: &str = "RRFEED_STORE_ID";
    pub const STORE_API_KEY: &str = "RRFEED_STORE_API_KEY";
    pub const PARTNER_STORE_ID: &str = "RRFEED_PARTNER_STORE_ID";
    pub const STATE_DIR: &str = "RRFEED_STATE_DIR";
    pub const WEBHOOK_SECRET: &str = "RRFEED_WEBHOOK_SECRET";
    pub const PING_URL: &str = "RRFEED_PING_URL";
    pub const STATE_URL: &str = "RRFEED_STATE_URL";
    pub const METRICS_FILE: &str = "RRFEED_METRICS_FILE";
}

/// Reads one variable; empty counts as unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as an [`Env`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A setting that is missing or wrong. Exit 78.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set: it must hold the {what}")]
    Missing { name: String, what: &'static str },
    #[error("{}{name} is invalid: {reason}", file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default())]
    Invalid {
        file: Option<PathBuf>,
        name: String,
        reason: String,
    },
}

impl ConfigError {
    /// An invalid setting that does not come from the file.
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            file: None,
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// How to reach the API, for any command.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub base_url: Url,
    pub partner_key: SecretString,
    pub admin_password: Option<SecretString>,
    pub ca_cert: Option<PathBuf>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

/// How the export of a store is read, where the config says.
#[derive(Clone, Debug, Default)]
pub struct InputDefaults {
    pub format: Option<Format>,
    pub encoding: Option<Encoding>,
    pub delimiter: Option<u8>,
    /// Workbooks: the worksheet to read.
    pub sheet: Option<String>,
}

/// One store: its identity for feed calls, and its export.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// The name in config (the RRStoreID for a store from the environment).
    pub name: String,
    pub store_id: String,
    /// Read only when something is sent for the store.
    pub store_key: Secret,
    pub partner_store_id: String,
    pub export: Option<PathBuf>,
    pub input: InputDefaults,
    pub rules: Arc<MappingRules>,
}

/// A configured store whose own settings are wrong: that store fails (exit 78), the others run.
#[derive(Clone, Debug)]
pub struct StoreProblem {
    pub name: String,
    pub store_id: String,
    pub error: ConfigError,
}

/// Retry and timeout settings after flags and config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySettings {
    pub retries: usize,
    pub delay: Duration,
    pub timeout: Duration,
}

/// Guard thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct Guards {
    /// Refuse a run whose rows shrank by more than this fraction since the last success.
    pub shrink_ratio: f64,
    /// Refuse a run that removes or changes more than this fraction of the customers of the last
    /// success.
    pub churn_ratio: f64,
    /// How long the vendor keeps an unended transaction.
    pub purge_window: Duration,
    /// Resume only a transaction younger than `purge_window - resume_margin`.
    pub resume_margin: Duration,
}

/// Flag values that override the config (each `None` when not given).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub state_dir: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
    pub retries: Option<usize>,
    pub retry_delay: Option<Duration>,
    pub timeout: Option<Duration>,
}

/// The config file as loaded (empty when there is none), with where it came from.
#[derive(Debug, Default)]
pub struct Config {
    pub path: Option<PathBuf>,
    pub file: FileConfig,
}

impl Config {
    /// Finds and parses the config file: `--config` (which must exist), else `./rrfeed.toml`, else
    /// `rrfeed/rrfeed.toml` in the user config dir; none is fine.
    ///
    /// Fails when the file cannot be read or parsed; the message names the file, line and key.
    pub fn load(flag: Option<&Path>) -> Result<Self, ConfigError> {
        let path = match flag {
            Some(p) => Some(p.to_owned()),
            None => [
                Some(PathBuf::from(CONFIG_FILE_NAME)),
                dirs::config_dir().map(|d| d.join("rrfeed").join(CONFIG_FILE_NAME)),
            ]
            .into_iter()
            .flatten()
            .find(|p| p.is_file()),
        };
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let file = file::load(&path).map_err(|reason| ConfigError::Invalid {
            file: Some(path.clone()),
            name: "the config file".into(),
            reason,
        })?;
        Ok(Config {
            path: Some(path),
            file,
        })
    }

    fn invalid(&self, name: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.path.clone(),
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// The API settings: the URL and partner key from the environment, else the file.
    ///
    /// Fails when the partner key is missing or the URL is unusable.
    pub fn api(
        &self,
        env: Env,
        overrides: &Overrides,
        timeout: Duration,
    ) -> Result<ApiSettings, ConfigError> {
        let (url, url_key) = match env(env::API_URL) {
            Some(url) => (url, env::API_URL.to_owned()),
            None => (
                self.file
                    .api_url
                    .clone()
                    .unwrap_or_else(|| DEFAULT_API_URL.to_owned()),
                "api_url".to_owned(),
            ),
        };
        let base_url = check_base_url(&url).map_err(|reason| {
            if url_key == env::API_URL {
                ConfigError::invalid(url_key, reason)
            } else {
                self.invalid(url_key, reason)
            }
        })?;
        let partner_key = match env(env::PARTNER_API_KEY) {
            Some(key) => SecretString::from(key),
            None => match &self.file.partner_api_key {
                Some(r) => self.secret(r, "partner_api_key", env)?,
                None => {
                    return Err(ConfigError::Missing {
                        name: env::PARTNER_API_KEY.into(),
                        what: "partner API key (or set partner_api_key in the config file)",
                    });
                }
            },
        };
        Ok(ApiSettings {
            base_url,
            partner_key,
            // Read by the one command that needs it (see `admin_password`).
            admin_password: None,
            ca_cert: overrides
                .ca_cert
                .clone()
                .or_else(|| self.file.ca_cert.clone()),
            timeout,
            connect_timeout: Duration::from_secs(10).min(timeout),
        })
    }

    /// The partner's admin password, which only the store listing needs: `RRFEED_ADMIN_PASSWORD`,
    /// else the file's `admin_password`; `None` when neither is set.
    ///
    /// Fails when the file's reference cannot be read.
    pub fn admin_password(&self, env: Env) -> Result<Option<SecretString>, ConfigError> {
        match env(env::ADMIN_PASSWORD) {
            Some(p) => Ok(Some(SecretString::from(p))),
            None => self
                .file
                .admin_password
                .as_ref()
                .map(|r| self.secret(r, "admin_password", env))
                .transpose(),
        }
    }

    /// Retries and timeouts: flags, else the file, else the defaults (5 retries, 500ms, 60s).
    pub fn retry(&self, overrides: &Overrides) -> Result<RetrySettings, ConfigError> {
        let r = &self.file.retry;
        Ok(RetrySettings {
            retries: overrides.retries.or(r.retries).unwrap_or(5),
            delay: match overrides.retry_delay {
                Some(d) => d,
                None => self.duration(r.delay.as_deref(), "retry.delay", "500ms")?,
            },
            timeout: match overrides.timeout {
                Some(d) => d,
                None => self.duration(r.timeout.as_deref(), "retry.timeout", "60s")?,
            },
        })
    }

    /// Guard thresholds from the file, else the defaults (50%, 8h, 1h).
    pub fn guards(&self) -> Result<Guards, ConfigError> {
        let g = &self.file.guards;
        let shrink_ratio = self.fraction(g.shrink_ratio, "guards.shrink_ratio", "a drop")?;
        let churn_ratio =
            self.fraction(g.churn_ratio, "guards.churn_ratio", "removing or changing")?;
        let purge_window = self.duration(g.purge_window.as_deref(), "guards.purge_window", "8h")?;
        let resume_margin =
            self.duration(g.resume_margin.as_deref(), "guards.resume_margin", "1h")?;
        if resume_margin >= purge_window {
            return Err(self.invalid(
                "guards.resume_margin",
                "must be shorter than guards.purge_window",
            ));
        }
        Ok(Guards {
            shrink_ratio,
            churn_ratio,
            purge_window,
            resume_margin,
        })
    }

    /// A guard's ratio from 0 to 1, 0.5 when not set.
    fn fraction(&self, value: Option<f64>, key: &str, what: &str) -> Result<f64, ConfigError> {
        let ratio = value.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&ratio) {
            return Err(self.invalid(
                key,
                format!(
                    "{ratio} is not a fraction from 0 to 1 (0.5 refuses {what} of more than half)"
                ),
            ));
        }
        Ok(ratio)
    }

    /// How long runs are kept in the ledger: `[ledger] keep`, default 90 days; `None` for
    /// "forever".
    pub fn retention(&self) -> Result<Option<Duration>, ConfigError> {
        match self.file.ledger.keep.as_deref().map(str::trim) {
            Some("forever" | "never") => Ok(None),
            keep => self
                .duration(keep, "ledger.keep", DEFAULT_RETENTION)
                .map(Some),
        }
    }

    fn duration(
        &self,
        value: Option<&str>,
        key: &str,
        default: &str,
    ) -> Result<Duration, ConfigError> {
        let text = value.unwrap_or(default);
        humantime::parse_duration(text).map_err(|e| {
            self.invalid(
                key,
                format!("{text:?} is not a duration ({e}); try \"30s\" or \"5m\""),
            )
        })
    }

    /// Where the ledger, locks and spools live: `--state-dir`, `RRFEED_STATE_DIR`, the file's
    /// `state_dir`, else the user's state directory (`~/.local/state/rrfeed` on Linux).
    pub fn state_dir(&self, overrides: &Overrides, env: Env) -> PathBuf {
        overrides
            .state_dir
            .clone()
            .or_else(|| env(env::STATE_DIR).map(PathBuf::from))
            .or_else(|| self.file.state_dir.clone())
            .or_else(|| {
                dirs::state_dir()
                    .or_else(dirs::data_local_dir)
                    .map(|d| d.join("rrfeed"))
            })
            .unwrap_or_else(|| PathBuf::from(".rrfeed-state"))
    }

    /// Where the state lives: the state directory, and PostgreSQL when `RRFEED_STATE_URL` or
    /// `state_url` is set (the variable wins).
    ///
    /// Fails when the URL's reference cannot be read or the URL is unusable (never quoting it).
    pub fn state(
        &self,
        overrides: &Overrides,
        env_fn: Env,
    ) -> Result<crate::state::State, ConfigError> {
        let dir = self.state_dir(overrides, env_fn);
        let (text, key) = match (env_fn(env::STATE_URL), &self.file.state_url) {
            (Some(text), _) => (text, env::STATE_URL.to_owned()),
            (None, None) => return Ok(crate::state::State::local(dir)),
            (None, Some(file::UrlSetting::Plain(text))) => (text.clone(), "state_url".to_owned()),
            (None, Some(file::UrlSetting::Reference(r))) => (
                Secret::reference(r, "state_url", self.path.as_deref())
                    .resolve(env_fn)?
                    .expose_secret()
                    .to_owned(),
                "state_url".to_owned(),
            ),
        };
        let ca_cert = overrides
            .ca_cert
            .clone()
            .or_else(|| self.file.ca_cert.clone());
        let target = crate::state::PgTarget::parse(&text, ca_cert.as_deref(), env_fn)
            .map_err(|reason| self.invalid(key, reason))?;
        Ok(crate::state::State {
            dir,
            postgres: Some(std::sync::Arc::new(target)),
        })
    }

    /// The shared `[mapping]`, checked.
    fn shared_rules(&self) -> Result<Arc<MappingRules>, ConfigError> {
        match &self.file.mapping {
            Some(m) => Ok(Arc::new(
                mapping::rules(m).map_err(|(key, reason)| self.invalid(key, reason))?,
            )),
            None => Ok(Arc::default()),
        }
    }

    /// Every `[[store]]`, each checked on its own: a store whose settings are wrong is a
    /// [`StoreProblem`] and the others are unaffected. Keys are not read here (see [`Secret`]).
    ///
    /// Fails as a whole only when two stores share a name or store_id, or the shared `[mapping]` is
    /// wrong.
    pub fn stores(&self) -> Result<Vec<Result<StoreSettings, StoreProblem>>, ConfigError> {
        let shared = self.shared_rules()?;
        let mut seen: Vec<&StoreConfig> = Vec::new();
        let mut stores = Vec::with_capacity(self.file.stores.len());
        for s in &self.file.stores {
            if let Some(twin) = seen
                .iter()
                .find(|o| o.name == s.name || o.store_id == s.store_id)
            {
                return Err(self.invalid(
                    format!("store {:?}", s.name),
                    format!("repeats the name or store_id of store {:?}", twin.name),
                ));
            }
            seen.push(s);
            stores.push(self.store(s, shared.clone()).map_err(|error| StoreProblem {
                name: s.name.clone(),
                store_id: s.store_id.clone(),
                error,
            }));
        }
        Ok(stores)
    }

    /// The configured store named `name` (or with that RRStoreID).
    ///
    /// Fails when there is none, listing the names there are, or when its settings are wrong.
    pub fn store_named(&self, name: &str) -> Result<StoreSettings, ConfigError> {
        let found = self
            .file
            .stores
            .iter()
            .find(|s| s.name == name)
            .or_else(|| self.file.stores.iter().find(|s| s.store_id == name));
        match found {
            Some(s) => self.store(s, self.shared_rules()?),
            None => Err(self.invalid(
                "--store",
                format!(
                    "no [[store]] is named {name:?}; configured: {}",
                    self.store_names().join(", ")
                ),
            )),
        }
    }

    /// The names of the configured stores, in file order.
    pub fn store_names(&self) -> Vec<&str> {
        self.file.stores.iter().map(|s| s.name.as_str()).collect()
    }

    /// The store a single-store run uses when no `--store` is given: the environment's
    /// (`RRFEED_STORE_ID` and `RRFEED_STORE_API_KEY`, with the shared `[mapping]`), else the config's
    /// only store.
    ///
    /// Fails when neither says which store, naming what to set.
    pub fn default_store(&self, env: Env) -> Result<StoreSettings, ConfigError> {
        if let Some(store_id) = env(env::STORE_ID) {
            return Ok(StoreSettings {
                name: store_id.clone(),
                store_key: Secret::env_var(env::STORE_API_KEY, "store's RRStoreAPIKey"),
                partner_store_id: env(env::PARTNER_STORE_ID).unwrap_or_else(|| store_id.clone()),
                export: None,
                input: InputDefaults::default(),
                rules: self.shared_rules()?,
                store_id,
            });
        }
        match self.file.stores.as_slice() {
            [only] => self.store(only, self.shared_rules()?),
            [] => Err(ConfigError::Missing {
                name: env::STORE_ID.into(),
                what: "store's RRStoreID (or configure a [[store]] in rrfeed.toml)",
            }),
            several => Err(ConfigError::invalid(
                "--store",
                format!(
                    "the config has {} stores ({}); name one with --store NAME or use --all-stores",
                    several.len(),
                    self.store_names().join(", ")
                ),
            )),
        }
    }

    fn store(
        &self,
        s: &StoreConfig,
        shared: Arc<MappingRules>,
    ) -> Result<StoreSettings, ConfigError> {
        let key = |k: &str| format!("store {:?}: {k}", s.name);
        if s.name.trim().is_empty() || s.store_id.trim().is_empty() {
            return Err(self.invalid(key("name"), "every store needs a name and a store_id"));
        }
        let mut rules = match &s.mapping {
            Some(m) => {
                Arc::new(mapping::rules(m).map_err(|(k, reason)| self.invalid(key(&k), reason))?)
            }
            None => shared,
        };
        if let Some(order) = &s.date_order {
            let order = crate::dates::DateOrder::from_name(order).ok_or_else(|| {
                self.invalid(
                    key("date_order"),
                    format!("{order:?} is neither \"dmy\" nor \"mdy\""),
                )
            })?;
            Arc::make_mut(&mut rules).date_order = Some(order);
        }
        Ok(StoreSettings {
            name: s.name.clone(),
            store_id: s.store_id.clone(),
            store_key: Secret::reference(
                &s.store_api_key,
                &key("store_api_key"),
                self.path.as_deref(),
            ),
            partner_store_id: s
                .partner_store_id
                .clone()
                .unwrap_or_else(|| s.store_id.clone()),
            export: s.export.clone(),
            input: self.input_defaults(s)?,
            rules,
        })
    }

    fn input_defaults(&self, s: &StoreConfig) -> Result<InputDefaults, ConfigError> {
        let key = |k: &str| format!("store {:?}: {k}", s.name);
        let format = match s.format.as_deref() {
            None => None,
            Some(name) => Some(Format::from_name(name).ok_or_else(|| {
                self.invalid(
                    key("format"),
                    format!("{name:?} is not one of {}", Format::NAMES.join(", ")),
                )
            })?),
        };
        let encoding = match s.encoding.as_deref() {
            None => None,
            Some(e) => Some(Encoding::from_name(e).ok_or_else(|| {
                self.invalid(
                    key("encoding"),
                    format!("{e:?} is not utf-8, windows-1252, utf-16le, utf-16be or macintosh"),
                )
            })?),
        };
        let delimiter = s
            .delimiter
            .as_deref()
            .map(crate::source::parse_delimiter)
            .transpose()
            .map_err(|reason| self.invalid(key("delimiter"), reason))?;
        Ok(InputDefaults {
            format,
            encoding,
            delimiter,
            sheet: s.sheet.clone(),
        })
    }

    /// Reads a secret from its reference now. A secret file readable by group or others draws a
    /// warning.
    fn secret(&self, r: &SecretRef, key: &str, env: Env) -> Result<SecretString, ConfigError> {
        Secret::reference(r, key, self.path.as_deref()).resolve(env)
    }
}

/// Parses a base URL: `https://` anywhere, `http://` only for loopback hosts (README "Running it for real").
pub fn check_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{text:?} uses http:// for a host that is not loopback; use https:// (http:// is only \
             for a local mock)"
        )),
        other => Err(format!("{text:?} has the scheme {other:?}; use https://")),
    }
}

/// Whether a URL's host is loopback: the only hosts `http://` is allowed for (README "Running it for real"): `localhost`, 127.0.0.0/8, `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests;
