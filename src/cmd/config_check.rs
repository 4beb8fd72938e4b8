//! `rrfeed config check`: checks everything a run would use — every setting, every secret reference,
//! the CA file, each store's export, the state directory, CRM.COM and the webhook receiver — and
//! reports every problem found, not just the first. Prints the resolved settings with every secret
//! redacted (only whether it is set, and where from); `--json` for scripts. Exits 78 when anything
//! is wrong.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::cli::{ConfigCheckArgs, GlobalArgs};
use crate::config::{self, Config, ConfigError, Destination, Overrides, StoreSettings, env};
use crate::error::Exit;

use super::{Context, print_result};

/// What `config check` found.
#[derive(Debug, Default, Serialize)]
struct Report {
    config_file: Option<String>,
    api_url: Option<String>,
    state_dir: String,
    stores: Vec<StoreReport>,
    /// Every problem found, each naming the setting (and the file).
    problems: Vec<String>,
    /// The settings as a person reads them.
    #[serde(skip)]
    text: String,
}

#[derive(Debug, Serialize)]
struct StoreReport {
    name: String,
    store_id: String,
    destination: &'static str,
    export: Option<String>,
    problems: Vec<String>,
}

pub fn run(args: &ConfigCheckArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    let config = match Config::load(global.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("rrfeed config check: {e}");
            return Exit::Config;
        }
    };
    let report = check(&config, global, ctx);
    let exit = if report.problems.is_empty() {
        Exit::Success
    } else {
        for problem in &report.problems {
            tracing::error!("rrfeed config check: {problem}");
        }
        Exit::Config
    };
    print_result(args.json, &report, || human(&report));
    exit
}

fn human(report: &Report) -> String {
    let mut out = report.text.clone();
    match report.problems.len() {
        0 => out.push_str("no problems found\n"),
        n => {
            let _ = writeln!(out, "{n} problem(s):");
            for problem in &report.problems {
                let _ = writeln!(out, "  - {problem}");
            }
        }
    }
    out
}

/// Collects a setting's value, or its problem.
fn note<T>(problems: &mut Vec<String>, result: Result<T, ConfigError>) -> Option<T> {
    result.map_err(|e| problems.push(e.to_string())).ok()
}

fn check(config: &Config, global: &GlobalArgs, ctx: &Context) -> Report {
    let overrides = Overrides {
        state_dir: global.state_dir.clone(),
        ca_cert: global.ca_cert.clone(),
        ..Overrides::default()
    };
    let mut report = Report {
        config_file: config.path.as_ref().map(|p| p.display().to_string()),
        state_dir: config.state_dir(&overrides, &ctx.env).display().to_string(),
        ..Report::default()
    };
    let problems = &mut report.problems;
    let out = &mut report.text;
    let file = report
        .config_file
        .clone()
        .unwrap_or_else(|| "none found (./rrfeed.toml, then the user config dir)".to_owned());
    let _ = writeln!(out, "config file:      {file}");
    let retry = note(problems, config.retry(&overrides));
    let timeout = retry
        .as_ref()
        .map_or(Duration::from_secs(60), |r| r.timeout);
    if let Some(api) = note(problems, config.api(&ctx.env, &overrides, timeout)) {
        report.api_url = Some(api.base_url.to_string());
        let _ = writeln!(out, "api_url:          {}", api.base_url);
        let _ = writeln!(
            out,
            "partner_api_key:  set ({})",
            source(ctx, env::PARTNER_API_KEY, "partner_api_key")
        );
        if let Some(ca) = &api.ca_cert {
            let _ = writeln!(out, "ca_cert:          {}", ca.display());
            if let Err(e) =
                crate::client::http_client(&api.base_url, timeout, timeout, Some(ca.as_path()))
            {
                problems.push(ConfigError::invalid("ca_cert", e.to_string()).to_string());
            }
        }
    }
    let admin = match note(problems, config.admin_password(&ctx.env)) {
        Some(Some(_)) => format!(
            "set ({})",
            source(ctx, env::ADMIN_PASSWORD, "admin_password")
        ),
        Some(None) => "not set (only `rrfeed stores` needs it)".into(),
        None => "unreadable".into(),
    };
    let _ = writeln!(out, "admin_password:   {admin}");
    let _ = writeln!(out, "state_dir:        {}", report.state_dir);
    if let Err(reason) = writable(Path::new(&report.state_dir)) {
        problems.push(ConfigError::invalid("state_dir", reason).to_string());
    }
    if let Some(state) = note(problems, config.state(&overrides, &ctx.env))
        && let Some(target) = &state.postgres
    {
        let reached = target.connect().map(|client| {
            crate::state::postgres::blocking(move || drop(client));
        });
        let shown = match reached {
            Ok(()) => "reachable, schema up to date".to_owned(),
            Err(e) => {
                problems.push(ConfigError::invalid("state_url", e).to_string());
                "unreachable (see the problems below)".to_owned()
            }
        };
        let _ = writeln!(
            out,
            "state_url:        PostgreSQL {} ({shown}): the ledger, locks, CRM.COM links and outbox are shared",
            target.describe()
        );
    }
    if let Some(retry) = &retry {
        let _ = writeln!(
            out,
            "retry:            {} retries, first wait {}, timeout {}",
            retry.retries,
            human_duration(retry.delay),
            human_duration(retry.timeout)
        );
    }
    if let Some(guards) = note(problems, config.guards()) {
        let _ = writeln!(
            out,
            "guards:           refuse a shrink of more than {:.0}%, a churn of more than {:.0}%; resume within {} of a transaction's begin",
            guards.shrink_ratio * 100.0,
            guards.churn_ratio * 100.0,
            human_duration(guards.purge_window.saturating_sub(guards.resume_margin))
        );
    }
    let _ = writeln!(out, "webhook:          {}", webhook(config, ctx, problems));
    monitoring(config, ctx, problems, out);
    if config.file.crm.is_some() {
        let crm = match note(problems, config.crm(&ctx.env)) {
            Some(crm) => format!("{} as {}", crm.base_url, crm.login.username),
            None => "wrong (see the problems below)".into(),
        };
        let _ = writeln!(out, "crm:              {crm}");
    }
    stores(config, ctx, &mut report);
    report
}

/// Every configured store, and the environment's when `RRFEED_STORE_ID` is set.
fn stores(config: &Config, ctx: &Context, report: &mut Report) {
    let configured = match config.stores() {
        Ok(stores) => stores,
        Err(e) => {
            report.problems.push(e.to_string());
            Vec::new()
        }
    };
    let env_store = (ctx.env)(env::STORE_ID).map(|_| config.default_store(&ctx.env));
    let _ = writeln!(
        report.text,
        "stores:           {}",
        configured.len() + usize::from(env_store.is_some())
    );
    for store in configured.into_iter().chain(env_store.map(|s| {
        s.map_err(|error| config::StoreProblem {
            name: "-".into(),
            store_id: (ctx.env)(env::STORE_ID).unwrap_or_default(),
            error,
        })
    })) {
        let entry = match store {
            Ok(store) => check_store(config, ctx, &store, &mut report.text),
            Err(problem) => {
                let _ = writeln!(
                    report.text,
                    "  - {} (RRStoreID {}): wrong",
                    problem.name, problem.store_id
                );
                StoreReport {
                    name: problem.name,
                    store_id: problem.store_id,
                    destination: "rider-rewards",
                    export: None,
                    problems: vec![problem.error.to_string()],
                }
            }
        };
        report.problems.extend(entry.problems.iter().cloned());
        report.stores.push(entry);
    }
}

fn check_store(config: &Config, ctx: &Context, s: &StoreSettings, out: &mut String) -> StoreReport {
    let mut problems = Vec::new();
    let destination = match config.destination_of(&s.name) {
        Ok(Destination::Crm) => "crm",
        Ok(Destination::RiderRewards) => "rider-rewards",
        Err(e) => {
            problems.push(e.to_string());
            "unknown"
        }
    };
    describe(out, s, destination);
    if destination != "crm" && note(&mut problems, s.store_key.resolve(&ctx.env)).is_some() {
        let _ = writeln!(out, "      store_api_key: set ({})", s.store_key.origin());
    }
    if let Some(export) = &s.export
        && let Err(e) = std::fs::File::open(export)
    {
        problems.push(
            ConfigError::invalid(
                format!("store {:?}: export", s.name),
                format!("cannot open {}: {e}", export.display()),
            )
            .to_string(),
        );
    }
    StoreReport {
        name: s.name.clone(),
        store_id: s.store_id.clone(),
        destination,
        export: s.export.as_ref().map(|p| p.display().to_string()),
        problems,
    }
}

/// Whether rrfeed could write in `dir`, or in the directory it would be created in. Leaves nothing
/// behind.
fn writable(dir: &Path) -> Result<(), String> {
    let existing = dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("."));
    if !existing.is_dir() {
        return Err(format!("{} is not a directory", existing.display()));
    }
    tempfile::tempfile_in(existing)
        .map(drop)
        .map_err(|e| format!("cannot write in {}: {e}", existing.display()))
}

/// The receiver's settings in one line; a missing secret is only a note, since most partners never
/// run the receiver.
fn webhook(config: &Config, ctx: &Context, problems: &mut Vec<String>) -> String {
    match config.webhook(&ctx.env, &config::WebhookOverrides::default()) {
        Ok(w) => format!(
            "secret set ({}); listen {}, at most {} bytes and {} rows a request, timeout {}",
            source(ctx, env::WEBHOOK_SECRET, "webhook.secret"),
            w.listen,
            w.max_body_bytes,
            w.max_rows,
            human_duration(w.request_timeout)
        ),
        Err(ConfigError::Missing { .. }) => {
            "no secret set (only `rrfeed webhook serve` needs one)".into()
        }
        Err(e) => {
            problems.push(e.to_string());
            "wrong (see the problems below)".into()
        }
    }
}

/// The ping URLs (their hosts only: the rest may hold a token) and the metrics file.
fn monitoring(config: &Config, ctx: &Context, problems: &mut Vec<String>, out: &mut String) {
    let host = |url: Option<config::PingUrl>| {
        url.map_or_else(
            || "not set".to_owned(),
            |u| format!("set (host {})", u.host()),
        )
    };
    let ping = note(problems, config.ping_url(&ctx.env)).map_or_else(|| "wrong".into(), host);
    let _ = writeln!(out, "ping_url:         {ping}");
    if let Some(url) = note(problems, config.webhook_ping_url(&ctx.env)).flatten() {
        let _ = writeln!(out, "webhook ping_url: set (host {})", url.host());
    }
    for name in config.store_names() {
        if let Some(url) = note(problems, config.store_ping_url(name, &ctx.env)).flatten() {
            let _ = writeln!(out, "ping_url of {name}: set (host {})", url.host());
        }
    }
    match config.metrics_file(&ctx.env) {
        Some(path) => {
            let _ = writeln!(out, "metrics_file:     {}", path.display());
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if let Err(reason) = writable(dir.unwrap_or(Path::new("."))) {
                problems.push(ConfigError::invalid("monitor.metrics_file", reason).to_string());
            }
        }
        None => {
            let _ = writeln!(out, "metrics_file:     not set");
        }
    }
}

fn describe(out: &mut String, s: &StoreSettings, destination: &str) {
    let _ = writeln!(
        out,
        "  - {} (RRStoreID {}, partner store {}, destination {destination})",
        s.name, s.store_id, s.partner_store_id
    );
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
    if let Some(sheet) = &s.input.sheet {
        input.push(format!("sheet {sheet:?}"));
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

fn human_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
