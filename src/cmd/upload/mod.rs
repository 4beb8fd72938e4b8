//! `rrfeed upload`: which stores to upload and how (`resolve_stores`), then one run per store — one after
//! another, or `--jobs N` at once, never two of one store — and the summary: one object for a single
//! store, a table or JSON array for `--all-stores`, whose exit code is the most severe store's.

mod progress;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tracing::info;

use crate::cli::{GlobalArgs, UploadArgs};
use crate::config::{
    self, ApiSettings, Config, ConfigError, Destination, Overrides, StoreProblem, StoreSettings,
};
use crate::error::{Exit, RunError};
use crate::mock::{Mock, MockConfig};
use crate::monitor::metrics;
use crate::monitor::ping::Ping;
use crate::monitor::settings::Monitoring;
use crate::run::{self, Flags, Job, Settings, StoreRun, Unready};
use crate::signal::{self, Stop};
use crate::source::{Format, InputSpec};
use crate::summary::{self, RunState, UploadSummary};

use super::{Context, print_result};

/// Settings shared by the stores of one invocation.
struct Shared {
    /// What every store's run uses.
    run: Settings,
    /// How long the ledger keeps runs (`[ledger] keep`); pruned after the stores ran.
    retention: Option<Duration>,
    /// The embedded mock of `--mock`, kept running for the upload.
    mock: Option<Mock>,
    /// Pings and the metrics file (none for a dry run or the embedded mock).
    monitoring: Monitoring,
    /// A night of `--all-stores` (pinged once as a whole), not one store's run.
    all_stores: bool,
    /// With `--mock`, a state directory of its own, removed at the end: a first try against the demo
    /// store must not leave runs in the real ledger (where its shrink guard would see them).
    _mock_state: Option<tempfile::TempDir>,
}

/// A store to run: ready, or failing alone.
enum Planned {
    Ready(Box<Job>),
    Unready(Unready),
}

pub async fn run(args: &UploadArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    let started = Instant::now();
    let (shared, jobs) = match resolve_stores(args, global, ctx).await {
        Ok(planned) => planned,
        Err(e) => {
            let summary = summary_before_start(args, ctx, &e, started);
            tracing::error!(store = %summary.store, exit_code = summary.exit_code, "upload failed: {e}");
            ping_failure_before_start(args, global, ctx, &summary).await;
            print_one_or_many(args, &[summary]);
            return e.exit();
        }
    };
    let stop = signal::listen(
        "stopping after the chunk in flight; the transaction stays open for --resume",
    );
    let night = shared.monitoring.night().filter(|_| shared.all_stores);
    if let Some(ping) = &night {
        ping.start().await;
    }
    let summaries = run_jobs(&shared, jobs, usize::from(args.jobs), ctx, stop).await;
    if let Some(ping) = &night {
        let worst = summaries.iter().map(|s| s.exit_code).max().unwrap_or(0);
        ping.finish(worst, &summary::upload_table(&summaries)).await;
    }
    if let Some(mock) = shared.mock.as_ref().filter(|_| summaries[0].exit_code == 0) {
        let held = mock.customer_count(&summaries[0].store_id);
        info!(
            customers = held,
            "the embedded mock now holds the store's list"
        );
    }
    if !args.dry_run && shared.mock.is_none() {
        prune_old_runs(&shared, ctx);
    }
    print_one_or_many(args, &summaries);
    summaries
        .iter()
        .map(|s| Exit::from_code(s.exit_code))
        .max_by_key(|e| e.code())
        .unwrap_or(Exit::Success)
}

/// Applies `[ledger] keep` after a night's runs; a failure here costs a warning, never the upload.
fn prune_old_runs(shared: &Shared, ctx: &Context) {
    let Some(keep) = shared.retention else {
        return;
    };
    match crate::prune::prune(&shared.run.state, keep, (ctx.now)(), false) {
        Ok(done) if done.runs + done.snapshots > 0 => info!(
            runs = done.runs,
            snapshots = done.snapshots,
            "forgot runs older than [ledger] keep"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot prune the ledger: {e}"),
    }
}

/// Runs the stores, `jobs` at a time; the summaries come back in the stores' order.
async fn run_jobs(
    shared: &Shared,
    jobs: Vec<Planned>,
    parallel: usize,
    ctx: &Context,
    stop: Stop,
) -> Vec<UploadSummary> {
    let mut done: Vec<(usize, UploadSummary)> = futures_util::stream::iter(jobs.iter().enumerate())
        .map(|(i, job)| {
            let stop = stop.clone();
            async move {
                let name = match job {
                    Planned::Ready(job) => &job.store.name,
                    Planned::Unready(unready) => &unready.name,
                };
                let ping = shared.monitoring.store(name, !shared.all_stores);
                if let Some(ping) = &ping {
                    ping.start().await;
                }
                let summary = match job {
                    Planned::Ready(job) => {
                        let store_run = StoreRun {
                            job,
                            settings: &shared.run,
                            ctx,
                            stop,
                        };
                        run::run(store_run, &mut progress::Reporter::default()).await
                    }
                    Planned::Unready(unready) => run::unready(unready, &shared.run, ctx),
                };
                report(shared, ping.as_ref(), &summary).await;
                (i, summary)
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, s)| s).collect()
}

/// Tells monitoring how one store's run ended: its ping, and the metrics file rewritten from the
/// ledger (so that it holds every store's latest figures).
async fn report(shared: &Shared, ping: Option<&Ping>, summary: &UploadSummary) {
    if let Some(ping) = ping {
        ping.finish(summary.exit_code, &summary.human()).await;
    }
    if let Some(path) = &shared.monitoring.metrics_file {
        metrics::refresh(path, &shared.run.state);
    }
}

/// An invocation that failed before any store started still ends its check's run with its exit code
/// (when a ping URL can be found: the store's own, else the night's).
async fn ping_failure_before_start(
    args: &UploadArgs,
    global: &GlobalArgs,
    ctx: &Context,
    summary: &UploadSummary,
) {
    if args.no_ping || args.dry_run || args.mock {
        return;
    }
    let config = Config::load(global.config.as_deref()).unwrap_or_default();
    let names: Vec<&str> = args.store.as_deref().into_iter().collect();
    let ca_cert = global.ca_cert.clone().or(config.file.ca_cert.clone());
    let monitoring = Monitoring::new(&config, &ctx.env, &names, true, ca_cert);
    let ping = match &args.store {
        Some(name) if !args.all_stores => monitoring.store(name, true),
        _ => monitoring.night(),
    };
    if let Some(ping) = ping {
        ping.finish(summary.exit_code, &summary.human()).await;
    }
}

fn print_one_or_many(args: &UploadArgs, summaries: &[UploadSummary]) {
    if summaries.iter().any(|s| !s.warnings.is_empty()) {
        crate::output::warned();
    }
    if args.all_stores {
        print_result(args.json, &summaries, || summary::upload_table(summaries));
    } else if let Some(one) = summaries.first() {
        print_result(args.json, one, || one.human());
    }
}

/// Resolves the settings and the stores to run; a store whose own settings are wrong becomes
/// [`Unready`], so that it fails alone.
async fn resolve_stores(
    args: &UploadArgs,
    global: &GlobalArgs,
    ctx: &Context,
) -> Result<(Shared, Vec<Planned>), RunError> {
    let config = Config::load(global.config.as_deref())?;
    let overrides = Overrides {
        state_dir: global.state_dir.clone(),
        ca_cert: global.ca_cert.clone(),
        retries: args.retries,
        retry_delay: args.retry_delay,
        timeout: args.timeout,
    };
    let retry = config.retry(&overrides)?;
    let flags = Flags {
        rejects: args.rejects.clone(),
        changes: args.changes.clone(),
        changes_values: args.changes_values,
        dry_run: args.dry_run,
        allow_empty: args.allow_empty,
        strict: args.strict,
        force: args.force,
        resume: args.resume,
        wait_lock: args.wait_lock,
        chunk_size: usize::from(args.chunk_size),
    };
    let mut shared = Shared {
        run: Settings {
            api: None,
            guards: config.guards()?,
            state: config.state(&overrides, &ctx.env)?,
            retry,
            flags,
        },
        retention: config.retention()?,
        mock: None,
        monitoring: Monitoring::default(),
        all_stores: args.all_stores,
        _mock_state: None,
    };
    let stores = if args.mock {
        let (api, store, mock) = embedded_mock(shared.run.retry.timeout).await?;
        let state = tempfile::Builder::new()
            .prefix("rrfeed-mock-")
            .tempdir()
            .map_err(|e| {
                RunError::Internal(format!("cannot make a state directory for the mock: {e}"))
            })?;
        shared.run.state = crate::state::State::local(state.path().to_owned());
        shared._mock_state = Some(state);
        shared.run.api = Some(api);
        shared.mock = Some(mock);
        vec![Ok(store)]
    } else {
        if !args.dry_run {
            shared.run.api = Some(config.api(&ctx.env, &overrides, shared.run.retry.timeout)?);
        }
        let stores = chosen_stores(args, &config, ctx)?;
        if !args.dry_run {
            let names: Vec<&str> = stores
                .iter()
                .map(|s| match s {
                    Ok(store) => store.name.as_str(),
                    Err(problem) => problem.name.as_str(),
                })
                .collect();
            let ca_cert = global.ca_cert.clone().or(config.file.ca_cert.clone());
            shared.monitoring = Monitoring::new(&config, &ctx.env, &names, !args.no_ping, ca_cert);
        }
        stores
    };
    let jobs: Vec<Planned> = stores
        .into_iter()
        .map(|store| match store {
            Ok(store) => job(args, store),
            Err(problem) => Planned::Unready(Unready {
                name: problem.name,
                store_id: problem.store_id,
                input: "-".into(),
                error: problem.error,
            }),
        })
        .collect();
    // One store alone: its problem is the invocation's, reported as before any store started.
    if let [Planned::Unready(unready)] = jobs.as_slice()
        && !args.all_stores
    {
        run::record_unready(unready, &shared.run, ctx);
        return Err(unready.error.clone().into());
    }
    Ok((shared, jobs))
}

/// The run of one store, or why it cannot run.
fn job(args: &UploadArgs, store: StoreSettings) -> Planned {
    match input_for(args, &store) {
        Ok(input) => Planned::Ready(Box::new(Job { store, input })),
        Err(error) => Planned::Unready(Unready {
            input: store
                .export
                .as_ref()
                .map_or_else(|| "-".into(), |p| p.display().to_string()),
            name: store.name,
            store_id: store.store_id,
            error,
        }),
    }
}

fn chosen_stores(
    args: &UploadArgs,
    config: &Config,
    ctx: &Context,
) -> Result<Vec<Result<StoreSettings, StoreProblem>>, ConfigError> {
    if args.all_stores {
        let shard = args
            .shard
            .map(|spec| spec.resolve(&ctx.env))
            .transpose()
            .map_err(|reason| ConfigError::invalid("--shard", reason))?;
        let mut kept = Vec::new();
        for store in config.stores()? {
            let name = match &store {
                Ok(s) => &s.name,
                Err(problem) => &problem.name,
            };
            if shard.is_some_and(|shard| !shard.holds(name)) {
                continue;
            }
            // Stores whose customers go to CRM.COM are synced by `rrfeed crm sync`, never uploaded.
            if config.destination_of(name)? == Destination::Crm {
                tracing::info!(store = %name, "skipping a store whose destination is CRM.COM");
            } else {
                kept.push(store);
            }
        }
        if kept.is_empty() && shard.is_none() {
            return Err(ConfigError::invalid(
                "--all-stores",
                "the config has no [[store]] entries",
            ));
        }
        if let Some(shard) = shard {
            tracing::info!(
                shard = shard.index,
                of = shard.count,
                stores = kept.len(),
                "running the stores of this shard"
            );
        }
        return Ok(kept);
    }
    match (&args.store, config.default_store(&ctx.env)) {
        (Some(name), _) if config.destination_of(name)? == Destination::Crm => {
            Err(ConfigError::invalid(
                format!("store {name}"),
                format!(
                    "its destination is CRM.COM: sync it with `rrfeed crm sync --store {name} FILE`"
                ),
            ))
        }
        (Some(name), _) => Ok(vec![Ok(config.store_named(name)?)]),
        (None, Ok(store)) => Ok(vec![Ok(store)]),
        // A dry run sends nothing, so it needs no store credentials.
        (None, Err(ConfigError::Missing { .. })) if args.dry_run => Ok(vec![Ok(StoreSettings {
            name: "-".into(),
            store_id: "-".into(),
            store_key: config::Secret::given(SecretString::from(String::new())),
            partner_store_id: "-".into(),
            export: None,
            input: config::InputDefaults::default(),
            rules: Default::default(),
        })]),
        (None, Err(e)) => Err(e),
    }
}

/// The input of one store: the FILE argument, else the store's `export`; flags beat the store's settings.
fn input_for(args: &UploadArgs, store: &StoreSettings) -> Result<InputSpec, ConfigError> {
    let file = match (&args.file, &store.export) {
        (Some(file), _) => file.clone(),
        (None, Some(export)) => {
            // The configured export must be there: its absence is the store's setup to fix (78).
            if let Err(e) = std::fs::File::open(export) {
                return Err(ConfigError::invalid(
                    format!("store {:?}: export", store.name),
                    format!("cannot open {}: {e}", export.display()),
                ));
            }
            export.clone()
        }
        (None, None) => {
            return Err(ConfigError::invalid(
                format!("store {:?}", store.name),
                "no export file: give FILE (or - for stdin), or set `export` in its [[store]]",
            ));
        }
    };
    Ok(super::store_input_spec(&file, &args.input, store))
}

/// Starts the mock on a free loopback port with its demo store, for a first try without credentials.
async fn embedded_mock(timeout: Duration) -> Result<(ApiSettings, StoreSettings, Mock), RunError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| RunError::Unavailable(format!("cannot start the embedded mock: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| RunError::Internal(e.to_string()))?;
    let config = MockConfig::demo();
    let accounts = config.accounts.clone();
    let demo = &accounts.stores[0];
    let mock = Mock::new(config);
    tokio::spawn(mock.clone().serve(listener, std::future::pending()));
    let url = format!("http://{addr}");
    info!(url = %url, store = %demo.store_id, "uploading to the embedded mock");
    let api = ApiSettings {
        base_url: config::check_base_url(&url).map_err(RunError::Internal)?,
        partner_key: SecretString::from(accounts.partner_key.clone()),
        admin_password: Some(SecretString::from(accounts.admin_password.clone())),
        ca_cert: None,
        timeout,
        connect_timeout: timeout,
    };
    let store = StoreSettings {
        name: demo.store_id.clone(),
        store_id: demo.store_id.clone(),
        store_key: config::Secret::given(SecretString::from(demo.store_key.clone())),
        partner_store_id: demo.partner_store_id.clone(),
        export: None,
        input: config::InputDefaults::default(),
        rules: Default::default(),
    };
    Ok((api, store, mock))
}

/// The summary of an invocation that failed before any store could start (a config error, say).
fn summary_before_start(
    args: &UploadArgs,
    ctx: &Context,
    error: &RunError,
    started: Instant,
) -> UploadSummary {
    let exit = error.exit();
    let mut summary = UploadSummary::new(
        args.store
            .clone()
            .or_else(|| (ctx.env)(config::env::STORE_ID))
            .unwrap_or_else(|| "-".into()),
        args.file
            .as_ref()
            .map_or_else(|| "-".into(), |f| f.display().to_string()),
        args.dry_run,
    );
    summary.format = args
        .input
        .format
        .or(Some(Format::Csv))
        .filter(|_| args.file.is_some());
    summary.exit_code = exit.code();
    summary.state = RunState::from_exit(exit);
    summary.error = Some(error.to_string());
    summary.duration_ms = started.elapsed().as_millis() as u64;
    summary
}
