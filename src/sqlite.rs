//! How rrfeed keeps its durable files (the ledger with its CRM.COM link table, the webhook outbox):
//! SQLite in WAL mode, a sync to disk at every commit (the ledger leaves out only a commit that moves
//! a resume point, see `ledger::Milestone`), a wait for another writer, and readable by their owner
//! only, since they hold customer data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// Opens an SQLite database the way every durable file of rrfeed is kept (the ledger with its link
/// table, the webhook outbox): readable by its owner only (they hold customer data), WAL, a sync to
/// disk at every commit, and a wait for another writer.
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    owner_only(path).map_err(|e| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("cannot create {}: {e}", path.display())),
        )
    })?;
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Creates the database file with mode 0600 if it is missing, and takes group and others' access
/// away from one made by an older version. SQLite gives its `-wal` and `-shm` files the mode of the
/// database file.
#[cfg(unix)]
fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if let Ok(meta) = std::fs::metadata(&file)
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_: &Path) -> std::io::Result<()> {
    Ok(())
}
