//! `rrfeed mock`: serves the mock until Ctrl-C or SIGTERM, after printing where it listens and which
//! credentials it accepts (the first stdout line names the URL, for scripts and tests).

use std::io::Write;

use tokio::net::TcpListener;

use crate::cli::MockArgs;
use crate::config::env;
use crate::error::Exit;
use crate::mock::faults::FaultPlan;
use crate::mock::{CRM_PREFIX, MOCK_ROUTES, Mock, MockConfig, WebhookTarget};
use secrecy::SecretString;

use super::Context;

pub async fn run(args: &MockArgs, ctx: &Context) -> Exit {
    let faults = match args.faults.as_deref().map(FaultPlan::parse).transpose() {
        Ok(plan) => plan.unwrap_or_default(),
        Err(e) => {
            tracing::error!("rrfeed mock: {e}");
            return Exit::Usage;
        }
    };
    let (config, overridden) = accounts_from_env(ctx, usize::from(args.stores));
    let webhook = args.webhook_url.clone().map(|url| WebhookTarget {
        url,
        secret: (ctx.env)(env::WEBHOOK_SECRET).map(SecretString::from),
    });
    let config = MockConfig {
        faults,
        purge_after: args.purge_after,
        webhook,
        ..config
    };
    let listener = match TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("rrfeed mock: cannot listen on {}: {e}", args.listen);
            return Exit::Unavailable;
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    print_banner(&format!("http://{addr}"), &config, overridden);
    match Mock::new(config)
        .serve(listener, crate::signal::shutdown())
        .await
    {
        Ok(()) => Exit::Success,
        Err(e) => {
            tracing::error!("rrfeed mock: {e}");
            Exit::Unavailable
        }
    }
}

/// The demo accounts, with any of the client's variables overriding the first store's.
fn accounts_from_env(ctx: &Context, stores: usize) -> (MockConfig, bool) {
    let mut config = MockConfig::demo_stores(stores);
    let a = &mut config.accounts;
    let store = &mut a.stores[0];
    let mut overridden = false;
    for (name, slot) in [
        (env::PARTNER_API_KEY, &mut a.partner_key),
        (env::ADMIN_PASSWORD, &mut a.admin_password),
        (env::STORE_ID, &mut store.store_id),
        (env::STORE_API_KEY, &mut store.store_key),
        (env::PARTNER_STORE_ID, &mut store.partner_store_id),
    ] {
        if let Some(value) = (ctx.env)(name) {
            *slot = value;
            overridden = true;
        }
    }
    (config, overridden)
}

fn print_banner(url: &str, config: &MockConfig, overridden: bool) {
    let a = &config.accounts;
    let first = &a.stores[0];
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "rrfeed mock listening on {url}");
    if overridden {
        let _ = writeln!(
            out,
            "credentials: as set in the environment (store {})",
            first.store_id
        );
    } else {
        let _ = writeln!(out, "demo credentials (for this mock only):");
        for (name, value) in [
            (env::API_URL, url),
            (env::PARTNER_API_KEY, a.partner_key.as_str()),
            (env::ADMIN_PASSWORD, a.admin_password.as_str()),
            (env::STORE_ID, first.store_id.as_str()),
            (env::STORE_API_KEY, first.store_key.as_str()),
            (env::PARTNER_STORE_ID, first.partner_store_id.as_str()),
        ] {
            let _ = writeln!(out, "  export {name}={value}");
        }
        for store in &a.stores[1..] {
            let _ = writeln!(
                out,
                "  store {} (partner store {}): key {}",
                store.store_id, store.partner_store_id, store.store_key
            );
        }
    }
    if !config.faults.is_empty() {
        let _ = writeln!(out, "injecting {}", config.faults);
    }
    let crm = &config.crm;
    let _ = writeln!(
        out,
        "CRM.COM: {url}{CRM_PREFIX} (user {}, organisation {}, password {}; mock only)",
        crm.username, crm.organisation, crm.password
    );
    if let Some(target) = &config.webhook {
        let auth = if target.secret.is_some() {
            "with the secret from RRFEED_WEBHOOK_SECRET"
        } else {
            "without a secret (RRFEED_WEBHOOK_SECRET is not set)"
        };
        // Only the origin: a path may hold a secret.
        let _ = writeln!(
            out,
            "customer edits are posted to the webhook at {} {auth}",
            target.url.origin().ascii_serialization()
        );
    }
    let _ = writeln!(
        out,
        "inspect: {url}{MOCK_ROUTES}/stores  {url}{MOCK_ROUTES}/calls"
    );
    let _ = out.flush();
}
