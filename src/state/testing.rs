//! A PostgreSQL server for tests: `RRFEED_TEST_POSTGRES_URL`, else a throwaway cluster started by
//! `scripts/test-postgres` for the length of the test process. When none can be had, a test that needs
//! one says why and is skipped — unless `RRFEED_REQUIRE_POSTGRES=1` (as in CI), where it fails.

use std::sync::OnceLock;

use super::postgres::PgTarget;

/// The server's URL (its `postgres` database), or why there is none.
fn server() -> &'static Result<String, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("RRFEED_TEST_POSTGRES_URL")
            && !url.is_empty()
        {
            return Ok(url);
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test-postgres");
        let started = std::process::Command::new(script)
            .args(["--watch", &std::process::id().to_string()])
            .output()
            .map_err(|e| format!("cannot run {script}: {e}"))?;
        if !started.status.success() {
            return Err(format!(
                "{script} failed: {}",
                String::from_utf8_lossy(&started.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&started.stdout).trim().to_owned())
    })
}

/// The URL of a new, empty database named after `test`, or `None` (said on stderr) when no server
/// can be had.
///
/// # Panics
///
/// When no server can be had and `RRFEED_REQUIRE_POSTGRES=1`, or the database cannot be made.
pub fn fresh_database_url(test: &str) -> Option<String> {
    let admin = match server() {
        Ok(url) => url,
        Err(reason) if std::env::var("RRFEED_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("{test} needs PostgreSQL, and RRFEED_REQUIRE_POSTGRES=1: {reason}")
        }
        Err(reason) => {
            eprintln!("skipped {test} on PostgreSQL: {reason}");
            return None;
        }
    };
    let name = format!(
        "t_{}_{}",
        test.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(30)
            .collect::<String>(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
    .to_ascii_lowercase();
    let target = PgTarget::parse(admin, None, &|_| None).expect("the test server's URL parses");
    let mut client = target.connect_only().expect("the test server answers");
    super::postgres::blocking(|| client.batch_execute(&format!("CREATE DATABASE {name}")))
        .expect("a test database can be made");
    let (base, query) = admin.split_once('?').unwrap_or((admin, ""));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    Some(if query.is_empty() {
        format!("{server}/{name}")
    } else {
        format!("{server}/{name}?{query}")
    })
}

/// A new, empty database as a [`PgTarget`] (see [`fresh_database_url`]).
pub fn fresh_database(test: &str) -> Option<PgTarget> {
    let url = fresh_database_url(test)?;
    Some(PgTarget::parse(&url, None, &|_| None).expect("the test database's URL parses"))
}
