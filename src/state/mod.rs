//! Where the state of runs lives (docs/fleet.md): the state directory always (snapshots, the SQLite
//! files), and, with `state_url = "postgres://…"`, a PostgreSQL database shared by several machines for
//! the run ledger, the per-store locks, the CRM.COM link table and the webhook outbox.

pub mod lock;
pub mod postgres;
#[doc(hidden)]
pub mod testing;

use std::path::PathBuf;
use std::sync::Arc;

pub use postgres::PgTarget;

/// The state of one invocation.
#[derive(Clone, Debug)]
pub struct State {
    /// The state directory: snapshots always; the ledger, locks, links and outbox without PostgreSQL.
    pub dir: PathBuf,
    /// The shared PostgreSQL database, when `state_url` is set.
    pub postgres: Option<Arc<PgTarget>>,
}

impl State {
    /// State in the directory `dir` alone (SQLite).
    pub fn local(dir: PathBuf) -> Self {
        Self {
            dir,
            postgres: None,
        }
    }

    /// Where the state is, for messages: the directory, or the database (host and name, never the
    /// password).
    pub fn describe(&self) -> String {
        match &self.postgres {
            Some(target) => format!("PostgreSQL {}", target.describe()),
            None => self.dir.display().to_string(),
        }
    }
}
