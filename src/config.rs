//! Settings, resolved once from flags and the environment (SPEC §4) into validated values: the API URL
//! checked for https, secrets wrapped so that they never print. The core never sees clap or `std::env`.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

use crate::client::is_loopback;

/// The vendor's production API.
pub const DEFAULT_API_URL: &str = "https://api.riderrewards.com";

/// Environment variable names (SPEC §4).
pub mod env {
    pub const API_URL: &str = "RRFEED_API_URL";
    pub const PARTNER_API_KEY: &str = "RRFEED_PARTNER_API_KEY";
    pub const ADMIN_PASSWORD: &str = "RRFEED_ADMIN_PASSWORD";
    pub const STORE_ID: &str = "RRFEED_STORE_ID";
    pub const STORE_API_KEY: &str = "RRFEED_STORE_API_KEY";
    pub const PARTNER_STORE_ID: &str = "RRFEED_PARTNER_STORE_ID";
    pub const STATE_DIR: &str = "RRFEED_STATE_DIR";
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
    Missing {
        name: &'static str,
        what: &'static str,
    },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
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

/// One store's identity for feed calls.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    pub store_id: String,
    pub store_key: SecretString,
    pub partner_store_id: String,
}

/// Reads the API settings from the environment.
///
/// Fails when the partner key is missing or the URL is unusable.
pub fn api_from_env(
    env: Env,
    ca_cert: Option<PathBuf>,
    timeout: Duration,
) -> Result<ApiSettings, ConfigError> {
    let url = env(env::API_URL).unwrap_or_else(|| DEFAULT_API_URL.to_owned());
    Ok(ApiSettings {
        base_url: check_base_url(&url).map_err(|reason| ConfigError::Invalid {
            name: env::API_URL,
            reason,
        })?,
        partner_key: secret(env, env::PARTNER_API_KEY, "partner API key")?,
        admin_password: env(env::ADMIN_PASSWORD).map(SecretString::from),
        ca_cert,
        timeout,
        connect_timeout: Duration::from_secs(10).min(timeout),
    })
}

/// Reads the store settings from the environment. The partner store id defaults to the RRStoreID.
///
/// Fails when the store id or key is missing.
pub fn store_from_env(env: Env) -> Result<StoreSettings, ConfigError> {
    let store_id = env(env::STORE_ID).ok_or(ConfigError::Missing {
        name: env::STORE_ID,
        what: "store's RRStoreID",
    })?;
    Ok(StoreSettings {
        store_key: secret(env, env::STORE_API_KEY, "store's RRStoreAPIKey")?,
        partner_store_id: env(env::PARTNER_STORE_ID).unwrap_or_else(|| store_id.clone()),
        store_id,
    })
}

fn secret(env: Env, name: &'static str, what: &'static str) -> Result<SecretString, ConfigError> {
    env(name)
        .map(SecretString::from)
        .ok_or(ConfigError::Missing { name, what })
}

/// Parses a base URL: `https://` anywhere, `http://` only for loopback hosts (SPEC §4).
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

/// Where the ledger, locks and spools live: `--state-dir`, `RRFEED_STATE_DIR`, else the user's state
/// directory (`~/.local/state/rrfeed` on Linux).
pub fn state_dir(flag: Option<PathBuf>, env: Env) -> PathBuf {
    flag.or_else(|| env(env::STATE_DIR).map(PathBuf::from))
        .or_else(|| {
            dirs::state_dir()
                .or_else(dirs::data_local_dir)
                .map(|d| d.join("rrfeed"))
        })
        .unwrap_or_else(|| PathBuf::from(".rrfeed-state"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn http_is_refused_except_for_loopback() {
        assert!(check_base_url("https://api.riderrewards.com").is_ok());
        assert!(check_base_url("http://127.0.0.1:8080").is_ok());
        assert!(check_base_url("http://localhost:1/api").is_ok());
        let err = check_base_url("http://api.riderrewards.com").unwrap_err();
        assert!(err.contains("not loopback"), "{err}");
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("not a url").is_err());
    }

    #[test]
    fn the_environment_alone_configures_a_store() {
        let env = env_of(&[
            ("RRFEED_PARTNER_API_KEY", "pk"),
            ("RRFEED_STORE_ID", "12"),
            ("RRFEED_STORE_API_KEY", "sk"),
        ]);
        let api = api_from_env(&env, None, Duration::from_secs(60)).unwrap();
        assert_eq!(api.base_url.as_str(), "https://api.riderrewards.com/");
        assert_eq!(api.partner_key.expose_secret(), "pk");
        let store = store_from_env(&env).unwrap();
        assert_eq!(
            (store.store_id.as_str(), store.partner_store_id.as_str()),
            ("12", "12")
        );
    }

    #[test]
    fn a_missing_key_names_the_variable_and_never_a_value() {
        let env = env_of(&[("RRFEED_STORE_ID", "12")]);
        let err = store_from_env(&env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "RRFEED_STORE_API_KEY is not set: it must hold the store's RRStoreAPIKey"
        );
        let err = api_from_env(&env, None, Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().starts_with("RRFEED_PARTNER_API_KEY"));
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let env = env_of(&[("RRFEED_PARTNER_API_KEY", "very-secret-key")]);
        let api = api_from_env(&env, None, Duration::from_secs(1)).unwrap();
        assert!(!format!("{api:?}").contains("very-secret-key"));
    }
}
