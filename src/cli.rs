//! The command line (README "Running it for real") as clap structs. Only parsing lives here: commands turn these into
//! validated settings before doing anything. Secrets are never flags; they come from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use crate::dates::DateOrder;
use crate::source::{Encoding, Format};
use crate::telemetry::LogFormat;

const ENVIRONMENT_HELP: &str = "\
Environment (secrets are read only from here, never from flags):
  RRFEED_API_URL           base URL (default https://api.riderrewards.com; http:// only for loopback)
  RRFEED_PARTNER_API_KEY   the partner's API key
  RRFEED_ADMIN_PASSWORD    the partner's admin password (store listing only)
  RRFEED_STORE_ID          the store's RRStoreID
  RRFEED_STORE_API_KEY     the store's RRStoreAPIKey
  RRFEED_PARTNER_STORE_ID  your own id for the store (default: the RRStoreID)
  RRFEED_STATE_DIR         ledger, locks and snapshots (default ~/.local/state/rrfeed)
  RRFEED_STATE_URL         postgres://…: ledger, locks, links and outbox shared by several machines
  RRFEED_PING_URL          a dead-man's-switch check pinged at each run's start and end
  RRFEED_METRICS_FILE      a node_exporter textfile rewritten after each store's run
  RUST_LOG                 overrides --log-level, e.g. RUST_LOG=rrfeed=debug

Exit codes:
  0 success · 1 internal error · 2 usage · 3 partly done (crm sync: some rows not synced;
  status: a store failing or stale)
  65 input unusable or a guard refused, or an unknown store asked for
  69 server unreachable, TLS failure or retries exhausted (nothing imported)
  75 another run holds this store's lock
  76 protocol or running-total mismatch (nothing imported) · 77 authentication failed
  78 configuration error · 79 outcome unknown: endtransaction sent, no answer settled it
  130 / 143 stopped by SIGINT / SIGTERM (nothing imported; the transaction stays open for --resume)
With --all-stores the exit code is the most severe store's.";

/// The version and the commit it was built from (`rrfeed --version`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("RRFEED_GIT_COMMIT"),
    ")"
);

/// Uploads a dealer store's customer export to Rider Rewards in one verified transaction.
#[derive(Debug, Parser)]
#[command(
    name = "rrfeed",
    version = VERSION,
    about,
    long_about = "Uploads a dealer store's customer export (CSV, JSON, NDJSON or an Excel or OpenDocument \
                  workbook) to the Rider Rewards \
                  loyalty platform in one verified transaction: the store's customer list is replaced \
                  only when every row was confirmed exactly once.\n\n\
                  First try, against the built-in mock server:\n  \
                  rrfeed upload examples/customers.csv --mock",
    after_long_help = ENVIRONMENT_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The config file [default: ./rrfeed.toml, else ~/.config/rrfeed/rrfeed.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the ledger, locks and snapshots are kept [env: RRFEED_STATE_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A PEM file of extra trusted CA certificates (for TLS-inspecting proxies)
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Log level for stderr and the log file: error, warn, info, debug, trace or off, or a filter
    /// such as rrfeed=debug
    #[arg(long, global = true, default_value = "info", value_parser = crate::telemetry::parse_filter, value_name = "L")]
    pub log_level: String,
    /// Log line format on stderr
    #[arg(long, global = true, default_value = "text", value_parser = log_format())]
    pub log_format: LogFormat,
    /// Also append the logs to this file (failures are always logged, at error level)
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// For cron: print nothing when the command succeeds without a warning; otherwise print
    /// everything it would have printed (logs on stderr, the result on stdout) when it ends
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload a customer export: validate, snapshot, then one verified transaction
    #[command(after_long_help = ENVIRONMENT_HELP)]
    Upload(UploadArgs),
    /// Check an export without sending anything; optionally write the rejected values to a file
    Validate(ValidateArgs),
    /// Run the bundled mock server: Rider Rewards, and CRM.COM under /crmapi/rest/v2
    Mock(MockArgs),
    /// List the partner's stores at Rider Rewards (getmydealerlist)
    Stores(StoresArgs),
    /// Show past runs from the ledger
    History(HistoryArgs),
    /// Is every store well? Each store's last run and last success; exit 0 when every last run
    /// succeeded within --max-age, else 3 (a Nagios/Icinga/Zabbix check)
    Status(StatusArgs),
    /// Forget old runs and remove old snapshots (never a store's newest run or newest success)
    Prune(PruneArgs),
    /// The shared state in PostgreSQL (state_url): migrate its schema; export and import a ledger
    #[command(subcommand)]
    State(StateCommand),
    /// Check the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Receive customers' own profile edits from Rider Rewards and hand them to the dealer system
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Sync an export to CRM.COM rewards participants, and manage participants ([crm] in rrfeed.toml)
    #[command(subcommand)]
    Crm(CrmCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(CompletionsArgs),
    /// Print the manual page (roff) on stdout
    Man,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check everything a run would use (settings, secrets, CA file, exports, state directory) and
    /// print the resolved settings, secrets redacted, and every problem found (exit 78 if any)
    Check(ConfigCheckArgs),
}

#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// Print one JSON object: the settings and `problems`, a list empty when all is well
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum CrmCommand {
    /// Create, update (only what changed) and optionally terminate participants to match an export
    Sync(CrmSyncArgs),
    /// Record which participant a customer is (after a create whose answer was lost), or that none is
    Link(CrmLinkArgs),
    /// List a store's links: customer, participant, state (terminated and earlier participants too)
    Links(CrmLinksArgs),
    /// Show a participant
    Show(CrmNumberArgs),
    /// Terminate a participant
    Terminate(CrmTerminateArgs),
    /// Block or unblock a participant's spending
    SpendBlocking(CrmSpendBlockingArgs),
    /// The total amount awarded to a participant, per scheme
    Awarded(CrmAwardedArgs),
}

#[derive(Debug, Args)]
pub struct CrmSyncArgs {
    /// The customer export; `-` reads stdin
    pub file: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
    /// Read the export as this configured store does (its mapping, encoding, delimiter)
    #[arg(long, value_name = "NAME")]
    pub store: Option<String>,
    /// Show the planned creates, updates and terminations; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Calls in flight at once
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64), value_name = "N")]
    pub jobs: u16,
    /// At most this many calls a second
    #[arg(long, value_name = "RATE")]
    pub max_rps: Option<f64>,
    /// Terminate linked participants absent from the export (behind the shrink guard)
    #[arg(long)]
    pub terminate_missing: bool,
    /// Terminate even when more participants would go than the shrink guard allows
    #[arg(long, requires = "terminate_missing")]
    pub force: bool,
    /// Write the rows that failed or need attention to this CSV file
    #[arg(long, value_name = "OUT.csv")]
    pub rejects: Option<PathBuf>,
    /// Refuse the export (exit 65) on a repeated PartnerCustomerID or a value that cannot be
    /// normalized, instead of skipping the repeat with a warning
    #[arg(long)]
    pub strict: bool,
    /// Make the links an older rrfeed left (which did not record their store) this store's
    #[arg(long, requires = "store")]
    pub adopt_links: bool,
    /// Send no monitoring ping ([monitor] ping_url, the store's ping_url, RRFEED_PING_URL)
    #[arg(long)]
    pub no_ping: bool,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CrmLinkArgs {
    /// The customer's PartnerCustomerID
    pub partner_customer_id: String,
    /// The participant number it became (e.g. RP0000000012)
    #[arg(required_unless_present = "none", conflicts_with = "none")]
    pub number: Option<String>,
    /// No participant was created: the next sync creates one
    #[arg(long)]
    pub none: bool,
    /// The store whose customer it is (as given to `crm sync --store`)
    #[arg(long, value_name = "NAME")]
    pub store: Option<String>,
    /// Replace or clear a link that is not waiting for attention
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CrmLinksArgs {
    /// The store whose links to list (as given to `crm sync --store`)
    #[arg(long, value_name = "NAME")]
    pub store: Option<String>,
    /// Print one JSON array
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CrmNumberArgs {
    /// The participant number
    pub number: String,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CrmTerminateArgs {
    /// The participant number
    pub number: String,
    /// Why the participant ends, as CRM.COM records it
    #[arg(long, value_parser = termination_reason())]
    pub reason: crate::crm::wire::TerminationReason,
    /// The participant that replaces it (required with --reason duplication)
    #[arg(long, value_name = "NUMBER", required_if_eq("reason", "duplication"))]
    pub replaced_by: Option<String>,
    /// Move the wallet's amount and the access tokens (cards) to the replacing participant [default:
    /// on with --reason duplication]
    #[arg(long, requires = "replaced_by", conflicts_with = "no_transfer_wallet")]
    pub transfer_wallet: bool,
    /// With --reason duplication: leave the wallet and the cards on the terminated participant
    #[arg(long)]
    pub no_transfer_wallet: bool,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CrmSpendBlockingArgs {
    /// `enable` blocks the participant's spending; `disable` lets it spend again
    #[arg(value_parser = ["enable", "disable"])]
    pub action: String,
    /// The participant number
    pub number: String,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CrmAwardedArgs {
    /// The participant number
    pub number: String,
    /// From this date (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    pub from: Option<jiff::civil::Date>,
    /// To this date, inclusive (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    pub to: Option<jiff::civil::Date>,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Listen for customer updates; each is stored durably in the outbox before it is acknowledged
    #[command(after_long_help = WEBHOOK_SERVE_HELP)]
    Serve(WebhookServeArgs),
    /// Write the pending updates (the latest per customer) for the dealer system, then mark them exported
    Export(WebhookExportArgs),
    /// Show how many updates the outbox holds, pending and exported
    Status(WebhookStatusArgs),
}

#[derive(Debug, Args)]
pub struct WebhookServeArgs {
    /// Address to listen on [default: [webhook] listen, else 127.0.0.1:8787; port 0 picks a free port]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Largest accepted request body in bytes [default: 262144]
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Most customers in one request [default: 1000]
    #[arg(long, value_name = "N")]
    pub max_rows: Option<usize>,
    /// How long a client may take to send its request [default: 30s]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub request_timeout: Option<Duration>,
    /// Serve the receiver's Prometheus metrics on this address at GET /metrics (e.g. 127.0.0.1:9464)
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// How often to ping [webhook] ping_url while healthy
    #[arg(long, value_parser = parse_duration, default_value = "5m", value_name = "DURATION")]
    pub ping_every: Duration,
    /// Send no monitoring ping
    #[arg(long)]
    pub no_ping: bool,
}

const WEBHOOK_SERVE_HELP: &str = "\
The shared secret comes from RRFEED_WEBHOOK_SECRET or [webhook] secret in rrfeed.toml (never a flag). \
Give the vendor the URL https://YOUR-HOST/customer-updates/SECRET (behind a TLS reverse proxy), or \
have the sender put `Authorization: Bearer SECRET` on POST /customer-updates.

Answers: 200 once stored, 400 malformed or invalid (with the reason), 401 bad secret, 413 too large, \
415 not JSON, 503 not stored (send again). GET /healthz answers {\"status\":\"ok\"}.";

#[derive(Debug, Args)]
pub struct WebhookExportArgs {
    /// File format
    #[arg(long, default_value = "csv", value_parser = export_format())]
    pub format: crate::webhook::export::ExportFormat,
    /// Write here (atomically: a temporary file, synced, then renamed) instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Export the latest update of every customer, including those exported before
    #[arg(long)]
    pub all: bool,
    /// Print the export's summary as JSON (with --out)
    #[arg(long, requires = "out")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WebhookStatusArgs {
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StoresArgs {
    /// Print one JSON array
    #[arg(long)]
    pub json: bool,
    /// Show the stores' API keys (redacted otherwise)
    #[arg(long)]
    pub show_keys: bool,
    /// Print `[[store]]` entries ready to paste into rrfeed.toml (key references, never keys)
    #[arg(long, conflicts_with = "json")]
    pub emit_config: bool,
    /// Only the store with this PartnerStoreID
    #[arg(long, value_name = "ID")]
    pub partner_store_id: Option<String>,
    /// How long to wait for the answer
    #[arg(long, value_parser = parse_duration, default_value = "60s", value_name = "DURATION")]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this store (its name or RRStoreID)
    #[arg(long, value_name = "NAME")]
    pub store: Option<String>,
    /// Print one JSON array
    #[arg(long)]
    pub json: bool,
    /// Only runs that ended in this state (or are still running)
    #[arg(long, value_enum)]
    pub state: Option<StateFilter>,
    /// How many runs, newest first
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Create or upgrade the schema in PostgreSQL now (every command does it when it connects)
    Migrate,
    /// Write every run of the ledger as one JSON object a line (to move it to another backend)
    Export(StateExportArgs),
    /// Add the runs of an export to the configured ledger, e.g. a SQLite ledger into PostgreSQL
    Import(StateImportArgs),
}

#[derive(Debug, Args)]
pub struct StateExportArgs {
    /// Write here instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StateImportArgs {
    /// A file written by `rrfeed state export`
    pub file: PathBuf,
    /// Import even into a ledger that already holds runs
    #[arg(long)]
    pub append: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A store whose last success is older than this is stale
    #[arg(long, value_parser = parse_duration, default_value = "26h", value_name = "AGE")]
    pub max_age: Duration,
    /// Print one JSON object: {"ok": bool, "stores": [...]}
    #[arg(long)]
    pub json: bool,
}

/// A run's state in the ledger, for `history --state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StateFilter {
    Succeeded,
    Failed,
    Refused,
    Interrupted,
    Unknown,
    Running,
}

impl StateFilter {
    /// The state as the ledger writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            StateFilter::Succeeded => "succeeded",
            StateFilter::Failed => "failed",
            StateFilter::Refused => "refused",
            StateFilter::Interrupted => "interrupted",
            StateFilter::Unknown => "unknown",
            StateFilter::Running => crate::ledger::RUNNING,
        }
    }
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Forget runs started longer ago than this, e.g. 90d or 12w [default: [ledger] keep, else 90d]
    #[arg(long, value_parser = parse_duration, value_name = "AGE")]
    pub older_than: Option<Duration>,
    /// Count what would go; remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// How to read the input.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// Input format [default: from the file extension; CSV for stdin]
    #[arg(long, value_parser = input_format())]
    pub format: Option<Format>,
    /// Character encoding [default: detected: UTF-8 (BOM or not), UTF-16 with a BOM, or Windows-1252]
    #[arg(
        long,
        value_parser = parse_encoding,
        value_name = "utf-8|windows-1252|utf-16le|utf-16be|macintosh"
    )]
    pub encoding: Option<Encoding>,
    /// CSV delimiter, one character (`tab` for a tab) [default: an Excel `sep=` line, else `,`, or `;`/tab/`|` when the header uses only that]
    #[arg(long, value_parser = crate::source::parse_delimiter, value_name = "C")]
    pub delimiter: Option<u8>,
    /// Order of day and month in whole dates such as 02/11/1980, for a column whose values never
    /// show it (a day above 12, or dots, show it) [default: the store's `date_order`; else refused]
    #[arg(long, value_parser = parse_date_order, value_name = "dmy|mdy")]
    pub date_order: Option<DateOrder>,
    /// JSON: the member of the top-level object that holds the customers [default: its only array of objects]
    #[arg(long, value_name = "NAME")]
    pub json_key: Option<String>,
    /// Workbooks (.xlsx, .xlsm, .xls, .ods): the worksheet to read [default: the store's `sheet`; else the first visible one]
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The customer export; `-` reads stdin [default: the store's `export` in the config]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub input: InputArgs,
    /// Upload the configured store with this name
    #[arg(long, value_name = "NAME", conflicts_with = "all_stores")]
    pub store: Option<String>,
    /// Upload every configured store, each from its `export`
    #[arg(long, conflicts_with = "file")]
    pub all_stores: bool,
    /// Also write every value that had to be emptied (and every repeated id) to this CSV file:
    /// line, record, field, value, reason
    #[arg(long, value_name = "OUT.csv", conflicts_with = "all_stores")]
    pub rejects: Option<PathBuf>,
    /// Also write one CSV line per customer added, removed or changed since the store's last
    /// successful upload: change, PartnerCustomerID, the fields that changed (names only)
    #[arg(long, value_name = "OUT.csv", conflicts_with = "all_stores")]
    pub changes: Option<PathBuf>,
    /// With --changes: add the new values of the fields that changed (customer data)
    #[arg(long, requires = "changes")]
    pub changes_values: bool,
    /// With --all-stores: only the stores in shard I of N (0-based; a stable hash of the store's
    /// name), so that N processes share a night; `auto/N` takes I from JOB_COMPLETION_INDEX (a
    /// Kubernetes Indexed Job)
    #[arg(long, requires = "all_stores", value_name = "I/N")]
    pub shard: Option<crate::shard::ShardSpec>,
    /// With --all-stores: how many stores at once (never two runs of one store)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64), value_name = "N")]
    pub jobs: u16,
    /// Validate and plan the chunks, send nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Upload even 0 rows (this empties the store's customer list at Rider Rewards)
    #[arg(long)]
    pub allow_empty: bool,
    /// Upload even when the row count shrank, or more customers were removed or changed, than the
    /// guards allow since the last success (guards.shrink_ratio, guards.churn_ratio)
    #[arg(long)]
    pub force: bool,
    /// Continue the store's interrupted transaction where it stopped, if it still can be
    #[arg(long)]
    pub resume: bool,
    /// Wait this long for another run of the same store to finish (e.g. 30s, 5m) instead of exiting 75
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub wait_lock: Option<Duration>,
    /// Refuse the input on any value that cannot be normalized, or a repeated PartnerCustomerID
    #[arg(long)]
    pub strict: bool,
    /// Print the result as one JSON object on stdout (an array with --all-stores)
    #[arg(long)]
    pub json: bool,
    /// Send no monitoring ping ([monitor] ping_url, a store's ping_url, RRFEED_PING_URL), as for a
    /// manual run
    #[arg(long)]
    pub no_ping: bool,
    /// Upload to an in-process mock server on a free local port, with its demo store (its ledger and
    /// snapshot go to a temporary directory)
    #[arg(long, conflicts_with_all = ["store", "all_stores"])]
    pub mock: bool,
    /// How long to wait for each answer [default: 60s, or retry.timeout in the config]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// Retries of a call after a transient failure (connection, timeout, HTTP 5xx or 429) [default: 5]
    #[arg(long, value_name = "N")]
    pub retries: Option<usize>,
    /// The first wait before a retry; each further wait doubles (plus jitter), up to 30s [default: 500ms]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub retry_delay: Option<Duration>,
    /// Rows per post (at most 1000, the vendor's limit)
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000), value_name = "N")]
    pub chunk_size: u16,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The customer export; `-` reads stdin
    pub file: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
    /// Read as this configured store reads its export (its mapping, encoding, delimiter)
    #[arg(long, value_name = "NAME")]
    pub store: Option<String>,
    /// Write every value that was rejected (line, field, value, reason) to this CSV file
    #[arg(long, value_name = "OUT.csv")]
    pub rejects: Option<PathBuf>,
    /// With --store: write one CSV line per customer added, removed or changed since the store's
    /// last successful upload (change, PartnerCustomerID, the fields that changed)
    #[arg(long, value_name = "OUT.csv", requires = "store")]
    pub changes: Option<PathBuf>,
    /// With --changes: add the new values of the fields that changed (customer data)
    #[arg(long, requires = "changes")]
    pub changes_values: bool,
    /// Treat rejected values and repeated PartnerCustomerIDs as errors (exit 65)
    #[arg(long)]
    pub strict: bool,
    /// Print the result as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_long_help = MOCK_HELP)]
pub struct MockArgs {
    /// Address to listen on (port 0 picks a free port; the first stdout line names it)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Faults to inject, e.g. "upload#2:status=503; end#1:timeout=5s" (see below)
    #[arg(long, value_name = "RULES")]
    pub faults: Option<String>,
    /// Forget transactions left open this long (the vendor's window is 8h)
    #[arg(long, value_parser = parse_duration, default_value = "8h", value_name = "DURATION")]
    pub purge_after: Duration,
    /// How many demo stores to serve (RRStoreIDs 1001, 1002, …)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000), value_name = "N")]
    pub stores: u16,
    /// Post customer edits (made with POST /_mock/stores/{id}/customers/{customer}/edit) to this URL,
    /// e.g. that of `rrfeed webhook serve`; the secret goes in a Bearer header from RRFEED_WEBHOOK_SECRET
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<reqwest::Url>,
}

const MOCK_HELP: &str = "\
Fault rules, separated by `;`:  ENDPOINT[#CALLS]:ACTION[,ACTION...]
  ENDPOINT  ready | begin | upload | end | dealers | *   (Rider Rewards)
            crm-login | crm-release | crm-list | crm-show | crm-create | crm-update |
            crm-terminate | crm-enable-spend-blocking | crm-disable-spend-blocking |
            crm-calculate-total-awarded-amount | crm-*   (CRM.COM methods)
  CALLS     N, N-M or N+ (the endpoint's Nth call, 1-based); every call if omitted
  ACTION    status=CODE          answer HTTP CODE without processing
            retry-after=SECS     add a Retry-After header
            drop                 break the connection without processing
            timeout[=DURATION]   process, then hold the answer (default 1h)
            running-total=+N|-N  process, then report a wrong runningtotal
            expected-total=+N|-N process an upload, then report a wrong expectedtotal
            transactionid=TEXT   process an upload, then echo another transactionid
            message=TEXT         process, then answer with results.message TEXT
            drop-after           process, then break the connection (answer lost)
            delay=DURATION       wait before handling
            latency=DURATION     answer DURATION after the call arrived, own work included
            error=TEXT           answer with results.error TEXT (last action; TEXT may hold commas)
            body=html|garbage|empty   answer 200 with a body that is not the vendor's JSON

The demo partner and store keys are printed at start; RRFEED_PARTNER_API_KEY, RRFEED_ADMIN_PASSWORD, \
RRFEED_STORE_ID, RRFEED_STORE_API_KEY and RRFEED_PARTNER_STORE_ID override them.

Inspection (not vendor paths): GET /_mock/stores, /_mock/stores/{id}/customers, /_mock/calls. \
POST /_mock/stores/{id}/customers/{customer}/edit with {\"CustomerCity\": \"...\"} edits a customer as if \
on the rewards website and posts the edited row to --webhook-url.";

// The core's enums know nothing of clap: each is offered here by its names and converted once.

fn input_format() -> impl clap::builder::TypedValueParser<Value = Format> {
    PossibleValuesParser::new(["csv", "json", "ndjson", "xlsx", "xlsm", "xls", "ods"])
        .map(|name| Format::from_name(&name).expect("the parser only passes known names"))
}

fn log_format() -> impl clap::builder::TypedValueParser<Value = LogFormat> {
    PossibleValuesParser::new(["text", "json"]).map(|name| match name.as_str() {
        "json" => LogFormat::Json,
        _ => LogFormat::Text,
    })
}

fn export_format()
-> impl clap::builder::TypedValueParser<Value = crate::webhook::export::ExportFormat> {
    use crate::webhook::export::ExportFormat;
    PossibleValuesParser::new(["csv", "json"]).map(|name| match name.as_str() {
        "json" => ExportFormat::Json,
        _ => ExportFormat::Csv,
    })
}

fn termination_reason()
-> impl clap::builder::TypedValueParser<Value = crate::crm::wire::TerminationReason> {
    use crate::crm::wire::TerminationReason;
    PossibleValuesParser::new(["customer-request", "fraud", "duplication"]).map(|name| {
        match name.as_str() {
            "fraud" => TerminationReason::Fraud,
            "duplication" => TerminationReason::Duplication,
            _ => TerminationReason::CustomerRequest,
        }
    })
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (try 30s, 5m, 500ms)"))
}

fn parse_encoding(text: &str) -> Result<Encoding, String> {
    Encoding::from_name(text).ok_or_else(|| {
        "use utf-8, windows-1252 (cp1252), utf-16le, utf-16be or macintosh (Mac Roman)".to_owned()
    })
}

fn parse_date_order(text: &str) -> Result<DateOrder, String> {
    DateOrder::from_name(text).ok_or_else(|| "use dmy (day first) or mdy (month first)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn delimiters_and_encodings_parse() {
        assert_eq!(crate::source::parse_delimiter(";"), Ok(b';'));
        assert_eq!(crate::source::parse_delimiter("tab"), Ok(b'\t'));
        assert!(crate::source::parse_delimiter(";;").is_err());
        assert_eq!(parse_encoding("cp1252"), Ok(Encoding::Windows1252));
    }

    #[test]
    fn every_argument_says_what_it_is_for() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "rrfeed", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }

    #[test]
    fn chunk_size_is_bounded_by_the_vendors_limit() {
        let parsed = Cli::try_parse_from(["rrfeed", "upload", "f.csv", "--chunk-size", "1001"]);
        assert!(parsed.is_err());
    }

    #[test]
    fn all_stores_takes_no_file() {
        let parsed = Cli::try_parse_from(["rrfeed", "upload", "f.csv", "--all-stores"]);
        assert!(parsed.is_err());
    }
}
