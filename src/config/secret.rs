//! Secrets in the configuration. The file holds only references (an environment variable or a file);
//! a store's key is read only when a command sends something for that store, so that `validate
//! --store` needs no key and one store's missing key fails only that store. A value is never echoed:
//! not in an error, not in a log line.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use tracing::warn;

use super::file::SecretRef;
use super::{ConfigError, Env};

/// A secret not yet read: where it comes from, and the setting that names it (for messages).
#[derive(Clone, Debug)]
pub struct Secret {
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    /// Already known (the embedded mock's demo keys).
    Given(SecretString),
    /// An environment variable the program itself documents, such as `RRFEED_STORE_API_KEY`.
    Env { var: String, what: &'static str },
    /// A reference from the config file.
    Reference {
        reference: SecretRef,
        setting: String,
        config: Option<PathBuf>,
    },
}

impl Secret {
    pub fn given(value: SecretString) -> Self {
        Self {
            source: Source::Given(value),
        }
    }

    /// The variable `var`, which must hold `what`.
    pub fn env_var(var: &str, what: &'static str) -> Self {
        Self {
            source: Source::Env {
                var: var.to_owned(),
                what,
            },
        }
    }

    /// The reference `setting` of the config file at `config`.
    pub fn reference(reference: &SecretRef, setting: &str, config: Option<&Path>) -> Self {
        Self {
            source: Source::Reference {
                reference: reference.clone(),
                setting: setting.to_owned(),
                config: config.map(Path::to_owned),
            },
        }
    }

    /// Where the secret comes from, for `config check`: `env VAR`, `file /path`.
    pub fn origin(&self) -> String {
        match &self.source {
            Source::Given(_) => "given".into(),
            Source::Env { var, .. } => format!("env {var}"),
            Source::Reference { reference, .. } => match (&reference.env, &reference.file) {
                (Some(var), _) => format!("env {var}"),
                (_, Some(path)) => format!("file {}", path.display()),
                _ => "config".into(),
            },
        }
    }

    /// Reads the secret.
    ///
    /// Fails when the variable is unset or empty, the file unreadable or empty, or the reference
    /// names neither or both; the message names the setting, never a value.
    pub fn resolve(&self, env: Env) -> Result<SecretString, ConfigError> {
        match &self.source {
            Source::Given(value) => Ok(value.clone()),
            Source::Env { var, what } => {
                env(var)
                    .map(SecretString::from)
                    .ok_or_else(|| ConfigError::Missing {
                        name: var.clone(),
                        what,
                    })
            }
            Source::Reference {
                reference,
                setting,
                config,
            } => {
                let invalid = |reason: String| ConfigError::Invalid {
                    file: config.clone(),
                    name: setting.clone(),
                    reason,
                };
                match (&reference.env, &reference.file) {
                    (Some(var), None) => env(var).map(SecretString::from).ok_or_else(|| {
                        let place = config
                            .as_ref()
                            .map_or_else(|| "the config".to_owned(), |p| p.display().to_string());
                        ConfigError::Missing {
                            name: format!("{var} (named by {setting} in {place})"),
                            what: "secret",
                        }
                    }),
                    (None, Some(path)) => read_secret_file(path).map_err(invalid),
                    _ => Err(invalid(
                        "give exactly one of env = \"VARIABLE\" or file = \"/path\"".into(),
                    )),
                }
            }
        }
    }
}

fn read_secret_file(path: &Path) -> Result<SecretString, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the secret file {}: {e}", path.display()))?;
    warn_if_readable_by_others(path);
    let value = text.trim();
    if value.is_empty() {
        return Err(format!("the secret file {} is empty", path.display()));
    }
    Ok(SecretString::from(value.to_owned()))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        warn!(file = %path.display(), "a secret file is readable by group or others; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}
