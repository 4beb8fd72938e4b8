//! `rrfeed upload FILE`: read and validate the export into a snapshot, then run the transaction driver
//! against the API (or, with `--mock`, an in-process mock), and print the summary.

use std::path::PathBuf;
use std::time::Instant;

use secrecy::SecretString;
use tokio::net::TcpListener;
use tracing::{error, info};

use crate::cli::{GlobalArgs, UploadArgs};
use crate::client::{Client, StoreCredentials};
use crate::config::{self, ApiSettings, ConfigError, StoreSettings};
use crate::customer::{Customer, Normalizer};
use crate::driver::{self, Feed, Progress, RetryPolicy};
use crate::error::{Exit, RunError};
use crate::ingest::{self, IngestOptions, Ingested, RowSink};
use crate::mock::{Mock, MockConfig};
use crate::plan;
use crate::source::{InputSpec, Location};
use crate::spool::{Spool, SpoolWriter};
use crate::summary::{RunState, UploadSummary};
use crate::warnings::Issue;

use super::{Context, input_spec, print_result};

impl RowSink for SpoolWriter {
    fn accept(&mut self, customer: &Customer, _: Location, _: &[Issue]) -> std::io::Result<()> {
        self.push(customer)
    }
}

pub async fn run(args: &UploadArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    let started = Instant::now();
    let spec = input_spec(&args.file, &args.input);
    let mut summary = UploadSummary {
        store: (ctx.env)(config::env::STORE_ID).unwrap_or_else(|| "-".into()),
        feed: crate::protocol::FEED_CUSTOMERS,
        state: RunState::Succeeded,
        exit_code: 0,
        rows: None,
        chunks: None,
        transactionid: None,
        abandoned_transactions: Vec::new(),
        warnings: Vec::new(),
        error: None,
        duration_ms: 0,
        input: spec.display_name(),
        format: Some(spec.format),
        encoding: None,
        dry_run: args.dry_run,
        restarts: 0,
    };
    let mut progress = Progress::default();
    let result = execute(args, global, ctx, spec, &mut summary, &mut progress).await;
    let exit = result.as_ref().err().map_or(Exit::Success, RunError::exit);
    let begun = progress.transactionid.is_some() || !progress.abandoned.is_empty();
    if !args.dry_run && begun {
        summary.chunks = Some(progress.chunks);
    }
    summary.transactionid = progress.transactionid;
    summary.abandoned_transactions = progress.abandoned;
    summary.restarts = progress.restarts;
    summary.exit_code = exit.code();
    summary.state = RunState::from_exit(exit);
    summary.duration_ms = started.elapsed().as_millis() as u64;
    if let Err(e) = result {
        if args.json {
            error!("{e}");
        }
        summary.error = Some(e.to_string());
    }
    print_result(args.json, &summary, || summary.human());
    exit
}

async fn execute(
    args: &UploadArgs,
    global: &GlobalArgs,
    ctx: &Context,
    spec: InputSpec,
    summary: &mut UploadSummary,
    progress: &mut Progress,
) -> Result<(), RunError> {
    let target = if args.dry_run {
        None
    } else {
        Some(Target::resolve(args, global, ctx).await?)
    };
    if let Some(target) = &target {
        summary.store = target.store.store_id.clone();
    }
    let spool_dir = config::state_dir(global.state_dir.clone(), &ctx.env).join("spool");
    let options = IngestOptions {
        strict: args.strict,
        normalizer: Normalizer::new(ctx.today),
    };
    let (ingested, spool) = snapshot(spec, options, spool_dir).await?;
    summary.rows = Some(spool.rows());
    summary.encoding = Some(ingested.source.encoding);
    summary.format = Some(ingested.source.format);
    summary.warnings = ingested.warnings.summaries();
    let chunk_size = usize::from(args.chunk_size);
    let Some(target) = target else {
        summary.chunks = Some(plan::chunks(spool.rows(), chunk_size).count());
        return guard_dry_run(&spool, args.allow_empty);
    };
    let client = Client::new(
        &target.api,
        Some(StoreCredentials {
            store_id: target.store.store_id.clone(),
            store_key: target.store.store_key.clone(),
        }),
    )
    .map_err(|e| ConfigError::Invalid {
        name: "--ca-cert",
        reason: e.to_string(),
    })?;
    let feed = Feed {
        rr_store_id: &target.store.store_id,
        partner_store_id: &target.store.partner_store_id,
        spool: &spool,
        allow_empty: args.allow_empty,
        chunk_size,
    };
    let policy = RetryPolicy {
        retries: args.retries,
        base_delay: args.retry_delay,
        ..RetryPolicy::default()
    };
    let mut new_id = || uuid::Uuid::new_v4().to_string();
    let result = driver::upload(&client, &feed, &policy, &mut new_id, progress).await;
    if let Some(mock) = &target.mock {
        let held = mock
            .store(&target.store.store_id)
            .map_or(0, |s| s.customers.len());
        info!(store = %target.store.store_id, customers = held, "the embedded mock now holds the store's list");
    }
    Ok(result?)
}

/// A dry run refuses what the real run would refuse before any call.
fn guard_dry_run(spool: &Spool, allow_empty: bool) -> Result<(), RunError> {
    if spool.rows() == 0 && !allow_empty {
        return Err(driver::DriverError::EmptyRefused.into());
    }
    Ok(())
}

/// Reads and validates the whole input into a snapshot, on a blocking thread.
async fn snapshot(
    spec: InputSpec,
    options: IngestOptions,
    dir: PathBuf,
) -> Result<(Ingested, Spool), RunError> {
    tokio::task::spawn_blocking(move || {
        let unwritable = |e: std::io::Error| ConfigError::Invalid {
            name: "RRFEED_STATE_DIR",
            reason: format!("cannot write a snapshot in {}: {e}", dir.display()),
        };
        let mut writer = SpoolWriter::create(&dir).map_err(unwritable)?;
        let ingested = ingest::ingest(&spec, options, &mut writer)?;
        let spool = writer.finish().map_err(unwritable)?;
        info!(
            rows = spool.rows(),
            encoding = ingested.source.encoding.name(),
            warnings = ingested.warnings.total(),
            "input read and validated"
        );
        Ok((ingested, spool))
    })
    .await
    .map_err(|e| RunError::Internal(format!("the reading thread failed: {e}")))?
}

/// Where to upload: the API from the environment, or an embedded mock.
struct Target {
    api: ApiSettings,
    store: StoreSettings,
    mock: Option<Mock>,
}

impl Target {
    async fn resolve(
        args: &UploadArgs,
        global: &GlobalArgs,
        ctx: &Context,
    ) -> Result<Self, RunError> {
        if args.mock {
            return Self::embedded_mock(args).await;
        }
        Ok(Self {
            api: config::api_from_env(&ctx.env, global.ca_cert.clone(), args.timeout)?,
            store: config::store_from_env(&ctx.env)?,
            mock: None,
        })
    }

    /// Starts the mock on a free loopback port with its demo store, for a first try without credentials.
    async fn embedded_mock(args: &UploadArgs) -> Result<Self, RunError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| RunError::Unavailable(format!("cannot start the embedded mock: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| RunError::Internal(e.to_string()))?;
        let config = MockConfig::demo();
        let accounts = config.accounts.clone();
        let mock = Mock::new(config);
        tokio::spawn(mock.clone().serve(listener, std::future::pending()));
        let url = format!("http://{addr}");
        info!(url = %url, store = %accounts.stores[0].store_id, "uploading to the embedded mock");
        Ok(Self {
            api: ApiSettings {
                base_url: config::check_base_url(&url).map_err(RunError::Internal)?,
                partner_key: SecretString::from(accounts.partner_key),
                admin_password: Some(SecretString::from(accounts.admin_password)),
                ca_cert: None,
                timeout: args.timeout,
                connect_timeout: args.timeout,
            },
            store: StoreSettings {
                store_id: accounts.stores[0].store_id.clone(),
                store_key: SecretString::from(accounts.stores[0].store_key.clone()),
                partner_store_id: accounts.stores[0].partner_store_id.clone(),
            },
            mock: Some(mock),
        })
    }
}
