//! The PostgreSQL state backend: how `state_url` is read (the way libpq reads it), the TLS to the
//! server (always verified), the connection, and the schema's migrations.
//!
//! The URL is a libpq connection URI (`postgres://user:password@host:port/dbname?sslmode=…`) or a
//! `key=value` string. `sslmode` is `disable`, `prefer`, `require`, `verify-ca` or `verify-full`; any
//! mode that uses TLS verifies the server's certificate and name (stricter than libpq's `require`),
//! trusting the system's CAs, `sslrootcert=FILE` and the configured `ca_cert`. Without a password in
//! the URL, `PGPASSWORD`, then the password file (`PGPASSFILE`, default `~/.pgpass`), are read.
//!
//! The `postgres` crate's blocking client runs its own small runtime; calls made from inside rrfeed's
//! async runtime are run on a plain thread of their own ([`blocking`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use postgres::config::SslMode;

/// A parsed `state_url`, ready to connect.
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
    tls: Tls,
    /// `host:port/dbname`, for messages.
    shown: String,
}

#[derive(Clone)]
enum Tls {
    Off,
    On(Arc<rustls::ClientConfig>),
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgTarget({})", self.shown)
    }
}

/// Reads an environment variable (empty counts as unset).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl PgTarget {
    /// Parses `url`; `ca_cert` is trusted besides the system's CAs.
    ///
    /// Fails naming what is wrong, never quoting the URL (it may hold a password).
    pub fn parse(url: &str, ca_cert: Option<&Path>, env: Env) -> Result<Self, String> {
        let (rest, sslmode, rootcert) = take_tls_params(url.trim());
        let mut config: postgres::Config = rest
            .parse()
            .map_err(|e| format!("it is not a PostgreSQL URL ({e})"))?;
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .ok_or("it names no user, and neither PGUSER nor USER is set")?;
            config.user(&user);
        }
        let shown = describe(&config);
        if config.get_password().is_none()
            && let Some(password) = env("PGPASSWORD").or_else(|| pgpass(&config, env))
        {
            config.password(password);
        }
        let tls = match sslmode.as_deref() {
            Some("disable") => Tls::Off,
            None | Some("prefer" | "allow" | "require" | "verify-ca" | "verify-full") => {
                let roots: Vec<&Path> = ca_cert.into_iter().chain(rootcert.as_deref()).collect();
                Tls::On(Arc::new(client_config(&roots)?))
            }
            Some(other) => return Err(format!("sslmode={other} is not a mode libpq knows")),
        };
        config.ssl_mode(match (&tls, sslmode.as_deref()) {
            (Tls::Off, _) => SslMode::Disable,
            (_, None | Some("prefer" | "allow")) => SslMode::Prefer,
            _ => SslMode::Require,
        });
        config.application_name("rrfeed");
        // The server's notices ("relation already exists, skipping") are not the operator's concern.
        config.options("-c client_min_messages=warning");
        config.connect_timeout(std::time::Duration::from_secs(10));
        Ok(Self { config, tls, shown })
    }

    /// `host:port/dbname`.
    pub fn describe(&self) -> &str {
        &self.shown
    }

    /// The same server, another database (for tests and `state migrate`).
    pub fn with_dbname(&self, dbname: &str) -> Self {
        let mut other = self.clone();
        other.config.dbname(dbname);
        other.shown = describe(&other.config);
        other
    }

    /// A connection, its schema migrated: an idle one this process used before (a night runs a few
    /// statements per store, and a new connection costs the server a process), else a new one. The
    /// migration check runs once per process and database: it is a transaction under a lock every
    /// host shares. Give it back with [`PgTarget::release`].
    ///
    /// Fails when the server cannot be reached, refuses the login or TLS, or the migration fails.
    pub fn connect(&self) -> Result<postgres::Client, String> {
        static MIGRATED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        if let Some(client) = take_idle(&self.shown) {
            return Ok(client);
        }
        let mut client = self.connect_only()?;
        let mut migrated = MIGRATED.lock().unwrap_or_else(|e| e.into_inner());
        if !migrated.contains(&self.shown) {
            blocking(|| migrate(&mut client)).map_err(|e| format!("{}: {e}", self.shown))?;
            migrated.push(self.shown.clone());
        }
        Ok(client)
    }

    /// Gives a connection from [`PgTarget::connect`] back for reuse (a broken one is closed).
    pub fn release(&self, client: postgres::Client) {
        if client.is_closed() {
            blocking(move || drop(client));
            return;
        }
        IDLE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.shown.clone(), client));
    }

    /// A new connection, as it is.
    pub fn connect_only(&self) -> Result<postgres::Client, String> {
        let connected = blocking(|| match &self.tls {
            Tls::Off => self.config.connect(postgres::NoTls),
            Tls::On(config) => self
                .config
                .connect(tokio_postgres_rustls::MakeRustlsConnect::new(
                    (**config).clone(),
                )),
        });
        connected.map_err(|e| format!("cannot connect to {}: {}", self.shown, describe_error(&e)))
    }
}

/// Connections given back, by database, for the next [`PgTarget::connect`] of this process.
static IDLE: std::sync::Mutex<Vec<(String, postgres::Client)>> = std::sync::Mutex::new(Vec::new());

fn take_idle(shown: &str) -> Option<postgres::Client> {
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    let at = idle.iter().position(|(db, _)| db == shown)?;
    Some(idle.swap_remove(at).1)
}

/// An error with its causes (the server's message, the TLS or network problem).
pub fn describe_error(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Runs `f` where the blocking client may run: on a thread of its own when called from inside an async
/// runtime (the client's own runtime cannot start there), else right here.
pub fn blocking<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(f)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Splits `sslmode` and `sslrootcert` off a URL or key=value string (the client library knows fewer
/// modes than libpq).
fn take_tls_params(url: &str) -> (String, Option<String>, Option<PathBuf>) {
    let (mut mode, mut root) = (None, None);
    let mut take = |key: &str, value: &str| match key {
        "sslmode" => {
            mode = Some(value.to_owned());
            true
        }
        "sslrootcert" => {
            root = Some(PathBuf::from(value));
            true
        }
        _ => false,
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        !take(k, v)
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => url.to_owned(),
        }
    } else {
        url.split_whitespace()
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                !take(k.trim(), v.trim())
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (rest, mode, root)
}

fn describe(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// The password for this server from the password file (`PGPASSFILE`, else `~/.pgpass`):
/// `host:port:database:user:password` lines, `*` matching anything.
fn pgpass(config: &postgres::Config, env: Env) -> Option<String> {
    let path = env("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".pgpass")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let host = describe(config);
    let (host, rest) = host.split_once(':')?;
    let (port, db) = rest.split_once('/')?;
    let user = config.get_user()?;
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields: Vec<&str> = line.splitn(5, ':').collect();
            let [h, p, d, u, password] = fields.as_slice() else {
                return None;
            };
            let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
            (matches(h, host) && matches(p, port) && matches(d, db) && matches(u, user))
                .then(|| password.to_string())
        })
}

/// A TLS client that verifies the server against the system's CAs and `extra` PEM files.
fn client_config(extra: &[&Path]) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = Vec::new();
    for path in extra {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the CA file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "the CA file {} holds no certificate",
                path.display()
            ));
        }
        roots.extend(certs);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// The schema's versions, in order; each runs once, in a transaction.
const MIGRATIONS: [&str; 4] = [
    // 1: the run ledger and the holders of the per-store locks.
    "CREATE TABLE rrfeed_runs (
        id BIGSERIAL PRIMARY KEY,
        store TEXT NOT NULL,
        store_id TEXT NOT NULL,
        feed TEXT NOT NULL,
        input TEXT NOT NULL,
        input_blake3 TEXT,
        snapshot_blake3 TEXT,
        spool_path TEXT,
        rows BIGINT,
        chunks BIGINT,
        confirmed BIGINT,
        transactionid TEXT,
        partnertransactionid TEXT,
        ended_transactionid TEXT,
        abandoned TEXT NOT NULL DEFAULT '[]',
        state TEXT NOT NULL,
        exit_code INTEGER,
        error TEXT,
        pid BIGINT,
        host TEXT,
        started_at TEXT NOT NULL,
        begun_at TEXT,
        finished_at TEXT,
        duration_ms BIGINT,
        resumed_from BIGINT,
        warnings BIGINT,
        destination TEXT NOT NULL DEFAULT 'riderrewards'
    );
    CREATE INDEX rrfeed_runs_by_store ON rrfeed_runs (store_id, id);
    CREATE TABLE rrfeed_locks (
        store_id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid BIGINT NOT NULL,
        started TEXT NOT NULL
    );",
    // 2: the webhook receiver's outbox.
    "CREATE TABLE rrfeed_outbox (
        seq BIGSERIAL PRIMARY KEY,
        received_at TEXT NOT NULL,
        customer_key TEXT NOT NULL,
        digest TEXT NOT NULL,
        customer TEXT NOT NULL,
        raw TEXT NOT NULL,
        exported_at TEXT
    );
    CREATE INDEX rrfeed_outbox_by_customer ON rrfeed_outbox (customer_key, seq);
    CREATE INDEX rrfeed_outbox_pending ON rrfeed_outbox (exported_at, seq);",
    // 3: the CRM.COM link table, as in the SQLite ledger.
    "CREATE TABLE crm_participant_links (
        crm_url             TEXT NOT NULL,
        organisation        TEXT NOT NULL,
        store               TEXT NOT NULL,
        partner_customer_id TEXT NOT NULL,
        participant_number  TEXT,
        accounts_receivable TEXT,
        state               TEXT NOT NULL
                            CHECK (state IN ('linked', 'needs_attention', 'in_flight', 'terminated')),
        detail              TEXT,
        updated_at          TEXT NOT NULL,
        PRIMARY KEY (crm_url, organisation, store, partner_customer_id)
    );
    CREATE INDEX crm_links_by_participant
        ON crm_participant_links (crm_url, organisation, participant_number);
    CREATE TABLE crm_link_history (
        crm_url             TEXT NOT NULL,
        organisation        TEXT NOT NULL,
        store               TEXT NOT NULL,
        partner_customer_id TEXT NOT NULL,
        participant_number  TEXT NOT NULL,
        terminated_at       TEXT NOT NULL,
        replaced_at         TEXT NOT NULL
    );",
    // 4: what changed per run, and each store's last successful upload (the change report's baseline).
    "ALTER TABLE rrfeed_runs ADD COLUMN changes TEXT;
    CREATE TABLE rrfeed_known (
        store_id TEXT NOT NULL,
        part     INTEGER NOT NULL,
        data     BYTEA NOT NULL,
        PRIMARY KEY (store_id, part)
    );",
];

/// The advisory lock that serializes migrations: two hosts starting at once migrate one after the other.
const MIGRATION_LOCK: i64 = 0x7272_6665_6564_0001;

/// Brings the schema to the newest version; a no-op when it is there. Returns the versions applied.
pub fn migrate(client: &mut postgres::Client) -> Result<Vec<usize>, String> {
    let fail = |e: postgres::Error| describe_error(&e);
    let mut tx = client.transaction().map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(fail)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS rrfeed_schema (version INTEGER NOT NULL)")
        .map_err(fail)?;
    let current: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM rrfeed_schema", &[])
        .map_err(fail)?
        .get(0);
    if current as usize > MIGRATIONS.len() {
        return Err(format!(
            "the database's schema is version {current}, newer than this rrfeed knows ({}): \
             upgrade rrfeed",
            MIGRATIONS.len()
        ));
    }
    let mut applied = Vec::new();
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO rrfeed_schema (version) VALUES ($1)",
            &[&version],
        )
        .map_err(fail)?;
        applied.push(version as usize);
    }
    tx.commit().map_err(fail)?;
    Ok(applied)
}

/// A connection from [`PgTarget::connect`] shared behind `&self` (the ledger, the link table), given
/// back for reuse when dropped.
pub struct Shared {
    /// Taken out only when dropped.
    client: std::sync::Mutex<Option<postgres::Client>>,
    target: PgTarget,
}

impl Shared {
    /// A connection of `target`, its schema migrated.
    ///
    /// Fails as [`PgTarget::connect`] does.
    pub fn connect(target: &PgTarget) -> Result<Self, String> {
        Ok(Self {
            client: std::sync::Mutex::new(Some(target.connect()?)),
            target: target.clone(),
        })
    }

    /// `host:port/dbname`.
    pub fn describe(&self) -> &str {
        self.target.describe()
    }

    /// Runs `f` on the connection, where the blocking client may run; the error with its causes.
    pub fn with<R: Send>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<R, postgres::Error> + Send,
    ) -> Result<R, String> {
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let client = guard.as_mut().expect("the client is taken only on drop");
        blocking(|| f(client)).map_err(|e| describe_error(&e))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(client) = self.client.get_mut().ok().and_then(Option::take) {
            self.target.release(client);
        }
    }
}

/// An advisory lock key for `name` in `namespace`: a hash, stable across versions and hosts.
pub fn advisory_key(namespace: &str, name: &str) -> i64 {
    let hash = blake3::hash(format!("{namespace}\0{name}").as_bytes());
    i64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn tls_parameters_are_taken_off_the_url_and_the_password_is_never_shown() {
        let (rest, mode, root) = take_tls_params(
            "postgres://u:pw@db.example:6543/rr?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=5",
        );
        assert_eq!(rest, "postgres://u:pw@db.example:6543/rr?connect_timeout=5");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some(Path::new("/ca.pem")));
        let (rest, mode, _) = take_tls_params("host=db user=u sslmode=disable dbname=rr");
        assert_eq!(
            (rest.as_str(), mode.as_deref()),
            ("host=db user=u dbname=rr", Some("disable"))
        );

        let target = PgTarget::parse(
            "postgres://u:s3cret@db.example:6543/rr?sslmode=disable",
            None,
            &no_env,
        )
        .unwrap();
        assert_eq!(target.describe(), "db.example:6543/rr");
        assert!(!format!("{target:?}").contains("s3cret"));
        let err = PgTarget::parse("postgres://u:s3cret@db/rr?sslmode=sometimes", None, &no_env)
            .unwrap_err();
        assert!(
            err.contains("sometimes") && !err.contains("s3cret"),
            "{err}"
        );
    }

    #[test]
    fn the_password_comes_from_pgpassword_or_the_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:*:*:*:no\ndb.example:5432:rr:u:from-file\n",
        )
        .unwrap();
        let path = file.display().to_string();
        let env = move |name: &str| (name == "PGPASSFILE").then(|| path.clone());
        let target =
            PgTarget::parse("postgres://u@db.example/rr?sslmode=disable", None, &env).unwrap();
        assert_eq!(target.config.get_password(), Some(&b"from-file"[..]));
        let env = |name: &str| (name == "PGPASSWORD").then(|| "from-env".to_owned());
        let target =
            PgTarget::parse("postgres://u@db.example/rr?sslmode=disable", None, &env).unwrap();
        assert_eq!(target.config.get_password(), Some(&b"from-env"[..]));
    }
}
