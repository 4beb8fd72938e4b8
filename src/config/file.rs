//! The config file `rrfeed.toml` as written on disk (see `config/rrfeed.example.toml`): plain serde types,
//! unknown keys refused so that a typo is an error naming the key, never a silently ignored setting.
//! Secrets appear only as references (an environment variable name or a file path), never as values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub api_url: Option<String>,
    pub partner_api_key: Option<SecretRef>,
    pub admin_password: Option<SecretRef>,
    pub ca_cert: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// `postgres://…`: the ledger, locks, CRM.COM links and outbox in PostgreSQL, shared by several machines.
    pub state_url: Option<UrlSetting>,
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub guards: GuardConfig,
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// Mapping shared by every store that has none of its own.
    pub mapping: Option<MappingConfig>,
    #[serde(default, rename = "store")]
    pub stores: Vec<StoreConfig>,
    #[serde(default)]
    pub webhook: WebhookConfig,
    /// CRM.COM, for stores whose `destination` is `crm` (docs/crm.md).
    pub crm: Option<CrmConfig>,
    #[serde(default)]
    pub monitor: MonitorConfig,
}

/// `[monitor]`: how a night reports to monitoring (docs/monitoring.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// A dead-man's-switch check (Healthchecks.io protocol) pinged at the start and end of a run.
    pub ping_url: Option<UrlSetting>,
    /// node_exporter's textfile collector file, rewritten after every store's run.
    pub metrics_file: Option<PathBuf>,
}

/// A URL that may embed a token: written as it is, or as a secret reference.
#[derive(Clone, PartialEq, Eq)]
pub enum UrlSetting {
    Plain(String),
    Reference(SecretRef),
}

/// Never the URL: it may hold a token.
impl std::fmt::Debug for UrlSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlSetting::Plain(_) => f.write_str("UrlSetting::Plain(..)"),
            UrlSetting::Reference(r) => write!(f, "UrlSetting::Reference({r:?})"),
        }
    }
}

impl<'de> Deserialize<'de> for UrlSetting {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UrlSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a URL, or a table { env = \"VAR\" } or { file = \"/path\" }")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<UrlSetting, E> {
                Ok(UrlSetting::Plain(text.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<UrlSetting, A::Error> {
                SecretRef::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(UrlSetting::Reference)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `[crm]`: where and how to sync rewards participants.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmConfig {
    /// `https://<server>/crmapi/rest/v2` (no default).
    pub url: String,
    pub username: String,
    pub password: SecretRef,
    pub organisation: String,
    /// The unit participants are signed up by (`sign_up_by_unit_identifier`, by name).
    pub unit: String,
    /// The classification of new accounts receivable (by name).
    pub classification: Option<String>,
    /// Reward schemes new participants join (by name).
    #[serde(default)]
    pub schemes: Vec<String>,
    /// The export column holding the accounts-receivable number (not one of the 25 fields).
    pub accounts_receivable_column: Option<String>,
    /// The customer field whose value becomes a new participant's access token.
    pub access_token_field: Option<String>,
    /// `udf_string_1` … `udf_string_8` → customer field; the defaults of docs/crm.md when absent.
    pub udf: Option<BTreeMap<String, String>>,
    /// How long to wait for each answer, e.g. "60s".
    pub timeout: Option<String>,
    /// Status codes that mean "the token is no longer good: log in again" (default ["INVALID_TOKEN"]).
    pub reauth_codes: Option<Vec<String>>,
    /// The organisation's time zone (IANA name, e.g. "America/Chicago") for `sign_up_on`; default
    /// the machine's.
    pub timezone: Option<String>,
}

/// `[webhook]`: the receiver of customer edits (README "Two-way sync").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The shared secret the vendor sends (`RRFEED_WEBHOOK_SECRET` overrides it).
    pub secret: Option<SecretRef>,
    /// Address to listen on, e.g. "127.0.0.1:8787".
    pub listen: Option<String>,
    /// Largest accepted request body in bytes (default 262144).
    pub max_body_bytes: Option<usize>,
    /// Most customers in one request (default 1000).
    pub max_rows: Option<usize>,
    /// How long a client may take to send its request, e.g. "30s".
    pub request_timeout: Option<String>,
    /// A dead-man's-switch check pinged every 5 minutes while the receiver is healthy.
    pub ping_url: Option<UrlSetting>,
}

/// Where a secret is read from: exactly one of `env` or `file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
}

/// What a secret setting must look like; said instead of the value when a value was written there.
pub const SECRET_REFERENCE: &str =
    "must be a reference: { env = \"VAR\" } or { file = \"/path\" }, never the secret itself";

/// A reference, as a table. Anything else is refused without echoing it: a secret written as a plain
/// string would otherwise land in the error, and from there in cron mail.
impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            env: Option<String>,
            file: Option<PathBuf>,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SecretRef;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table { env = \"VAR\" } or { file = \"/path\" }")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SecretRef, A::Error> {
                let table = Table::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(SecretRef {
                    env: table.env,
                    file: table.file,
                })
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<SecretRef, E> {
                Err(E::custom(SECRET_REFERENCE))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretRef, E> {
                Err(E::custom(SECRET_REFERENCE))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretRef, E> {
                Err(E::custom(SECRET_REFERENCE))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretRef, E> {
                Err(E::custom(SECRET_REFERENCE))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretRef, E> {
                Err(E::custom(SECRET_REFERENCE))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<SecretRef, A::Error> {
                Err(serde::de::Error::custom(SECRET_REFERENCE))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    pub retries: Option<usize>,
    /// First wait before a retry, e.g. "500ms".
    pub delay: Option<String>,
    /// How long to wait for each answer, e.g. "60s".
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// Refuse when the row count shrank by more than this fraction since the last success (0.5 = 50%).
    pub shrink_ratio: Option<f64>,
    /// Refuse when more than this fraction of the last success's customers were removed or changed.
    pub churn_ratio: Option<f64>,
    /// How long the vendor keeps an unended transaction ("8h").
    pub purge_window: Option<String>,
    /// `--resume` only continues a transaction younger than the purge window minus this ("1h").
    pub resume_margin: Option<String>,
}

/// `[ledger]`: how long the history of runs is kept.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// Runs older than this are forgotten after each upload ("90d" by default; "forever" keeps all).
    pub keep: Option<String>,
}

/// One `[[store]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub name: String,
    pub store_id: String,
    pub store_api_key: SecretRef,
    pub partner_store_id: Option<String>,
    pub export: Option<PathBuf>,
    pub format: Option<String>,
    pub encoding: Option<String>,
    pub delimiter: Option<String>,
    /// Workbooks: the worksheet to read (default: the first visible one).
    pub sheet: Option<String>,
    pub mapping: Option<MappingConfig>,
    /// `rider-rewards` (the default) or `crm`.
    pub destination: Option<String>,
    /// `dmy` or `mdy`: the order of day and month in the export's whole dates, for columns whose
    /// values never show it (beats the mapping's).
    pub date_order: Option<String>,
    /// This store's own dead-man's-switch check, pinged for its runs (besides `[monitor] ping_url`).
    pub ping_url: Option<UrlSetting>,
}

/// A `[mapping]` table: how an export's columns become the 25 fields.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// Export header → field name (`PartnerCustomerID`, `CustomerEmail`, …) or `ignore`.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    pub birth_date: Option<BirthDateConfig>,
    pub full_name: Option<FullNameConfig>,
    /// Field name → value used where the export leaves the field empty.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// `dmy` or `mdy`: the order of day and month in whole dates whose column never shows it.
    pub date_order: Option<String>,
    /// The export has no customer id column, and that is intended.
    #[serde(default)]
    pub allow_missing_id: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BirthDateConfig {
    pub column: String,
    /// A strftime-style format such as `%d.%m.%Y`; the built-in formats when absent.
    pub format: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullNameConfig {
    pub column: String,
    /// `first_last` ("John Doe") or `last_first` ("Doe John" or "Doe, John"); default `first_last`.
    pub order: Option<String>,
}

/// Reads and parses a config file. Fails with the parser's message and the line, column and key it
/// concerns, but never the text of the line: it may hold a secret.
pub fn load(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    toml::from_str(&text).map_err(|e| describe_error(&text, &e))
}

fn describe_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    let Some(span) = e.span() else {
        return message.to_owned();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    // The key of a `key = value` line, when the error is about its value.
    let key = text[line_start..]
        .lines()
        .next()
        .and_then(|l| l.split_once('='))
        .map(|(key, _)| key.trim())
        .filter(|key| !key.is_empty() && !key.starts_with('[') && !key.starts_with('#'));
    match key {
        Some(key) if message == SECRET_REFERENCE => {
            format!("line {line}, column {column}: {key} {message}")
        }
        Some(key) => format!("line {line}, column {column} ({key}): {message}"),
        None => format!("line {line}, column {column}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rrfeed.example.toml");
        let config = load(&path).unwrap();
        assert!(config.stores.len() >= 2);
        assert!(
            config
                .stores
                .iter()
                .all(|s| s.store_api_key.env.is_some() || s.store_api_key.file.is_some())
        );
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let config = "api_url = \"https://x\"\nretires = 3\n";
        let text = describe_error(config, &toml::from_str::<FileConfig>(config).unwrap_err());
        assert!(
            text.contains("retires") && text.contains("line 2"),
            "{text}"
        );
    }

    #[test]
    fn a_secret_value_in_place_of_a_reference_is_refused_without_echoing_it() {
        for text in [
            "partner_api_key = \"abc123\"\n",
            "[[store]]\nname = \"n\"\nstore_id = \"1\"\nstore_api_key = \"abc123\"\n",
            "[webhook]\nsecret = 'abc123'\n",
        ] {
            let err = describe_error(text, &toml::from_str::<FileConfig>(text).unwrap_err());
            assert!(!err.contains("abc123"), "{err}");
            assert!(err.contains("must be a reference"), "{err}");
        }
        let text = "partner_api_key = \"abc123\"\n";
        let err = describe_error(text, &toml::from_str::<FileConfig>(text).unwrap_err());
        assert!(
            err.starts_with("line 1, column 19: partner_api_key must be"),
            "{err}"
        );
    }

    #[test]
    fn an_error_never_quotes_the_line() {
        let text =
            "api_url = \"https://x\"\npartner_api_key = { env = \"K\", value = \"s3cr3t\" }\n";
        let err = describe_error(text, &toml::from_str::<FileConfig>(text).unwrap_err());
        assert!(!err.contains("s3cr3t") && err.contains("line 2"), "{err}");
    }
}
