//! `rrfeed webhook serve|export|status` (README "Two-way sync"). `serve` prints its URL as the first stdout line (for
//! scripts and tests), then serves until Ctrl-C or SIGTERM, finishing the requests it has accepted.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::cli::{GlobalArgs, WebhookExportArgs, WebhookServeArgs, WebhookStatusArgs};
use crate::config::{Config, ConfigError, Overrides, WebhookOverrides};
use crate::error::Exit;
use crate::monitor::ping::Ping;
use crate::state::State;
use crate::webhook::export::{self, Exported};
use crate::webhook::health;
use crate::webhook::metrics::ReceiverMetrics;
use crate::webhook::outbox::{self, Counts, OutboxError};
use crate::webhook::server::{self, Receiver, UPDATES_PATH};
use crate::webhook::writer;

use super::{Context, print_result};

/// Why a webhook command failed; every case maps to an exit code.
#[derive(Debug, thiserror::Error)]
enum WebhookError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Export(#[from] export::ExportError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl WebhookError {
    fn exit(&self) -> Exit {
        match self {
            // An unusable state directory or destination file is the operator's to fix.
            WebhookError::Config(_) | WebhookError::Outbox(_) | WebhookError::Export(_) => {
                Exit::Config
            }
            WebhookError::Listen { .. } => Exit::Unavailable,
        }
    }
}

fn fail(command: &str, e: &WebhookError) -> Exit {
    tracing::error!("rrfeed webhook {command}: {e}");
    e.exit()
}

fn state_dir(global: &GlobalArgs, ctx: &Context) -> Result<(Config, State), WebhookError> {
    let config = Config::load(global.config.as_deref())?;
    let overrides = Overrides {
        state_dir: global.state_dir.clone(),
        ca_cert: global.ca_cert.clone(),
        ..Overrides::default()
    };
    let state = config.state(&overrides, &ctx.env)?;
    Ok((config, state))
}

pub async fn serve(args: &WebhookServeArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    match serve_inner(args, global, ctx).await {
        Ok(()) => Exit::Success,
        Err(e) => fail("serve", &e),
    }
}

async fn serve_inner(
    args: &WebhookServeArgs,
    global: &GlobalArgs,
    ctx: &Context,
) -> Result<(), WebhookError> {
    let (config, state) = state_dir(global, ctx)?;
    let settings = config.webhook(
        &ctx.env,
        &WebhookOverrides {
            listen: args.listen,
            max_body_bytes: args.max_body_bytes,
            max_rows: args.max_rows,
            request_timeout: args.request_timeout,
        },
    )?;
    let outbox = outbox::open(&state)?;
    let outbox_place = outbox.place();
    let listener =
        TcpListener::bind(settings.listen)
            .await
            .map_err(|source| WebhookError::Listen {
                addr: settings.listen,
                source,
            })?;
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let (handle, thread) = writer::start(outbox, Arc::new(jiff::Timestamp::now));
    let metrics = Arc::new(ReceiverMetrics::new(state.clone()));
    let (metrics_task, metrics_addr) =
        match serve_metrics(args.metrics_listen, metrics.clone()).await? {
            Some((task, addr)) => (Some(task), Some(addr)),
            None => (None, None),
        };
    let background = Background {
        metrics: metrics_task,
        ping: start_pinging(args, &config, ctx, &state, &handle),
    };
    let receiver = Receiver::new(
        &settings,
        handle,
        Arc::new(|| jiff::Zoned::now().date()),
        metrics,
    );
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "rrfeed webhook listening on http://{addr}{UPDATES_PATH}"
        );
        let _ = writeln!(out, "outbox: {}", outbox_place);
        if let Some(addr) = metrics_addr {
            let _ = writeln!(out, "metrics: http://{addr}/metrics");
        }
        let _ = out.flush();
    }
    tracing::info!(%addr, outbox = %outbox_place, "webhook receiver started");
    let served = server::serve(
        listener,
        server::router(Arc::new(receiver)),
        settings.request_timeout,
        settings.request_timeout + Duration::from_secs(5),
        crate::signal::shutdown(),
    )
    .await;
    // Every request handler (and with it every writer handle) is gone: the writer drains and ends.
    drop(background);
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    tracing::info!("webhook receiver stopped");
    served.map_err(|source| WebhookError::Listen { addr, source })
}

/// The receiver's tasks besides serving: its metrics server and its pings. Dropped, they stop.
struct Background {
    metrics: Option<tokio::task::JoinHandle<()>>,
    ping: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in [self.metrics.take(), self.ping.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

/// Serves `GET /metrics` on `addr`, if given.
async fn serve_metrics(
    addr: Option<std::net::SocketAddr>,
    metrics: Arc<ReceiverMetrics>,
) -> Result<Option<(tokio::task::JoinHandle<()>, std::net::SocketAddr)>, WebhookError> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| WebhookError::Listen { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %bound, "serving the receiver's metrics");
    let router = crate::webhook::metrics::router(metrics);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!("the metrics server stopped: {e}");
        }
    });
    Ok(Some((task, bound)))
}

/// Pings `[webhook] ping_url` while the receiver is healthy (not with `--no-ping`); a wrong setting is
/// a warning.
fn start_pinging(
    args: &WebhookServeArgs,
    config: &Config,
    ctx: &Context,
    state: &State,
    writer: &writer::WriterHandle,
) -> Option<tokio::task::JoinHandle<()>> {
    if args.no_ping {
        return None;
    }
    let url = match config.webhook_ping_url(&ctx.env) {
        Ok(url) => url?,
        Err(e) => {
            tracing::warn!("no ping will be sent: {e}");
            return None;
        }
    };
    let ping = Ping::new(url, config.file.ca_cert.as_deref())?;
    Some(tokio::spawn(health::keep_pinging(
        ping,
        state.clone(),
        writer.clone(),
        args.ping_every,
    )))
}

pub fn export(args: &WebhookExportArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    let result = state_dir(global, ctx).and_then(|(_, state)| {
        let mut outbox = outbox::open(&state)?;
        Ok(export::export(
            outbox.as_mut(),
            args.format,
            args.all,
            args.out.as_deref(),
            (ctx.now)(),
        )?)
    });
    match result {
        Ok(done) => {
            match &done.out {
                Some(_) => print_result(args.json, &done, || describe(&done)),
                // The data went to stdout: the summary goes to stderr.
                None if !crate::output::quiet() => eprint!("{}", describe(&done)),
                None => {}
            }
            Exit::Success
        }
        Err(e) => fail("export", &e),
    }
}

fn describe(done: &Exported) -> String {
    let place = done
        .out
        .as_ref()
        .map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
    format!(
        "exported {} customer(s) to {place}; {} update(s) marked exported (up to #{})\n",
        done.customers, done.marked, done.up_to_seq
    )
}

pub fn status(args: &WebhookStatusArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    // A status query never creates an outbox: none yet means nothing received.
    let result =
        state_dir(global, ctx).and_then(|(_, state)| match outbox::open_existing(&state)? {
            Some(mut outbox) => Ok(outbox.counts()?),
            None => Ok(Counts::default()),
        });
    match result {
        Ok(counts) => {
            print_result(args.json, &counts, || render(&counts));
            Exit::Success
        }
        Err(e) => fail("status", &e),
    }
}

fn render(c: &Counts) -> String {
    let or_never = |t: &Option<String>| t.clone().unwrap_or_else(|| "never".into());
    format!(
        "updates stored:    {}\npending:           {} ({} customer(s))\nexported:          {}\n\
         last received:     {}\nlast exported:     {}\n",
        c.updates,
        c.pending,
        c.pending_customers,
        c.exported,
        or_never(&c.last_received_at),
        or_never(&c.last_exported_at)
    )
}
