//! `rrfeed config check`: loads and validates the whole configuration the way a run would, and prints
//! the resolved settings with every secret redacted (only whether it is set, and where from). Exits 78
//! naming the key and the file on the first problem.

use std::fmt::Write;
use std::time::Duration;

use crate::cli::GlobalArgs;
use crate::config::{self, Config, ConfigError, Overrides, StoreSettings, env};
use crate::error::Exit;

use super::Context;

pub fn run(global: &GlobalArgs, ctx: &Context) -> Exit {
    match check(global, ctx) {
        Ok(text) => {
            print!("{text}");
            Exit::Success
        }
        Err(e) => {
            eprintln!("rrfeed config check: {e}");
            Exit::Config
        }
    }
}

fn check(global: &GlobalArgs, ctx: &Context) -> Result<String, ConfigError> {
    let config = Config::load(global.config.as_deref())?;
    let overrides = Overrides {
        state_dir: global.state_dir.clone(),
        ca_cert: global.ca_cert.clone(),
        ..Overrides::default()
    };
    let retry = config.retry(&overrides)?;
    let guards = config.guards()?;
    let api = config.api(&ctx.env, &overrides, retry.timeout)?;
    let stores = config.stores(&ctx.env)?;
    let env_store = match (ctx.env)(env::STORE_ID) {
        Some(_) => Some(config.default_store(&ctx.env)?),
        None => None,
    };
    let mut out = String::new();
    let file = config.path.as_ref().map_or_else(
        || "none found (./rrfeed.toml, then the user config dir)".to_owned(),
        |p| p.display().to_string(),
    );
    let _ = writeln!(out, "config file:      {file}");
    let _ = writeln!(out, "api_url:          {}", api.base_url);
    let _ = writeln!(
        out,
        "partner_api_key:  set ({})",
        source(ctx, env::PARTNER_API_KEY, "partner_api_key")
    );
    let admin = if api.admin_password.is_some() {
        format!(
            "set ({})",
            source(ctx, env::ADMIN_PASSWORD, "admin_password")
        )
    } else {
        "not set (only `rrfeed stores` needs it)".into()
    };
    let _ = writeln!(out, "admin_password:   {admin}");
    if let Some(ca) = &api.ca_cert {
        let _ = writeln!(out, "ca_cert:          {}", ca.display());
    }
    let _ = writeln!(
        out,
        "state_dir:        {}",
        config.state_dir(&overrides, &ctx.env).display()
    );
    let _ = writeln!(
        out,
        "retry:            {} retries, first wait {}, timeout {}",
        retry.retries,
        human(retry.delay),
        human(retry.timeout)
    );
    let _ = writeln!(
        out,
        "guards:           refuse a shrink of more than {:.0}%; resume within {} of a transaction's begin",
        guards.shrink_ratio * 100.0,
        human(guards.purge_window.saturating_sub(guards.resume_margin))
    );
    let _ = writeln!(out, "webhook:          {}", webhook(&config, ctx)?);
    let _ = writeln!(out, "stores:           {}", stores.len());
    for (store, from) in stores
        .iter()
        .map(|s| (s, key_source(&config, &s.name)))
        .chain(
            env_store
                .iter()
                .map(|s| (s, format!("env {}", env::STORE_API_KEY))),
        )
    {
        describe(&mut out, store, &from);
    }
    Ok(out)
}

/// The receiver's settings in one line; a missing secret is only a note, since most partners never
/// run the receiver.
fn webhook(config: &Config, ctx: &Context) -> Result<String, ConfigError> {
    match config.webhook(&ctx.env, &config::WebhookOverrides::default()) {
        Ok(w) => Ok(format!(
            "secret set ({}); listen {}, at most {} bytes and {} rows a request, timeout {}",
            source(ctx, env::WEBHOOK_SECRET, "webhook.secret"),
            w.listen,
            w.max_body_bytes,
            w.max_rows,
            human(w.request_timeout)
        )),
        Err(ConfigError::Missing { .. }) => {
            Ok("no secret set (only `rrfeed webhook serve` needs one)".into())
        }
        Err(e) => Err(e),
    }
}

fn describe(out: &mut String, s: &StoreSettings, key_from: &str) {
    let _ = writeln!(
        out,
        "  - {} (RRStoreID {}, partner store {})",
        s.name, s.store_id, s.partner_store_id
    );
    let _ = writeln!(out, "      store_api_key: set ({key_from})");
    if let Some(export) = &s.export {
        let _ = writeln!(out, "      export: {}", export.display());
    }
    let mut input = Vec::new();
    if let Some(f) = s.input.format {
        input.push(format!("format {f:?}").to_lowercase());
    }
    if let Some(e) = s.input.encoding {
        input.push(format!("encoding {}", e.name()));
    }
    if let Some(d) = s.input.delimiter {
        input.push(format!("delimiter {:?}", d as char));
    }
    if !input.is_empty() {
        let _ = writeln!(out, "      {}", input.join(", "));
    }
    let r = &s.rules;
    if !r.columns.is_empty() || !r.defaults.is_empty() {
        let defaults: Vec<String> = r
            .defaults
            .iter()
            .map(|(f, v)| format!("{f} = {v:?}"))
            .collect();
        let _ = writeln!(
            out,
            "      mapping: {} configured column(s){}",
            r.columns.len(),
            if defaults.is_empty() {
                String::new()
            } else {
                format!("; defaults {}", defaults.join(", "))
            }
        );
    }
}

/// Where a secret came from: the environment variable, or the config file's reference.
fn source(ctx: &Context, env_name: &str, key: &str) -> String {
    if (ctx.env)(env_name).is_some() {
        format!("env {env_name}")
    } else {
        format!("config {key}")
    }
}

fn key_source(config: &Config, store: &str) -> String {
    let reference = config
        .file
        .stores
        .iter()
        .find(|s| s.name == store)
        .map(|s| &s.store_api_key);
    match reference {
        Some(config::file::SecretRef {
            env: Some(name), ..
        }) => format!("env {name}"),
        Some(config::file::SecretRef {
            file: Some(path), ..
        }) => format!("file {}", path.display()),
        _ => "config".into(),
    }
}

fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
