//! Per-store locks (docs/transaction.md, "What is recorded"): one run per store at a time, across
//! processes — and across machines with the PostgreSQL state backend. On one machine the lock is an OS
//! file lock; in PostgreSQL a session-level advisory lock held on a connection of its own for the
//! whole run. Either way a crashed process cannot leave it stuck (its file handle or its connection
//! goes with it), and the holder (pid, host, start time) is recorded for the message of a run that is
//! refused.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub started: String,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("store {store} is locked by another run{}{} ({place})",
        holder.as_ref().map(|h| format!(": pid {} on {} since {}", h.pid, h.host, h.started)).unwrap_or_default(),
        waited.map(|w| format!(", still after waiting {}", humantime::format_duration(w))).unwrap_or_default())]
    Held {
        store: String,
        holder: Option<Holder>,
        /// The lock file, or the database.
        place: String,
        waited: Option<Duration>,
    },
    #[error("cannot take the lock in PostgreSQL: {0}")]
    Postgres(String),
    #[error("cannot use the lock file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub enum StoreLock {
    File {
        _file: File,
    },
    Postgres {
        _session: Box<crate::state::lock::SessionLock>,
    },
}

/// Takes the lock of `store_id` where `state` keeps locks, waiting up to `wait` for it.
///
/// Fails when another run holds it past the wait, or the lock cannot be taken at all.
pub async fn acquire_in(
    state: &crate::state::State,
    store_id: &str,
    wait: Option<Duration>,
    started: &str,
) -> Result<StoreLock, LockError> {
    match &state.postgres {
        Some(target) => crate::state::lock::SessionLock::acquire(target, store_id, wait, started)
            .await
            .map(|session| StoreLock::Postgres {
                _session: Box::new(session),
            }),
        None => acquire(&state.dir, store_id, wait, started).await,
    }
}

/// Takes the lock of `store_id` under `state_dir/locks`, waiting up to `wait` for it.
///
/// Fails when another process holds it past the wait, or the lock file cannot be opened.
pub async fn acquire(
    state_dir: &Path,
    store_id: &str,
    wait: Option<Duration>,
    started: &str,
) -> Result<StoreLock, LockError> {
    let dir = state_dir.join("locks");
    let path = dir.join(format!("{}.lock", safe_name(store_id)));
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                if deadline.is_some_and(|d| tokio::time::Instant::now() < d) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                return Err(LockError::Held {
                    store: store_id.to_owned(),
                    holder: read_holder(&mut file),
                    place: path.display().to_string(),
                    waited: wait,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    write_holder(&mut file, started).map_err(io)?;
    Ok(StoreLock::File { _file: file })
}

fn write_holder(file: &mut File, started: &str) -> std::io::Result<()> {
    let holder = Holder {
        pid: std::process::id(),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        started: started.to_owned(),
    };
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&serde_json::to_vec(&holder).expect("a holder serializes"))?;
    file.sync_data()
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// A store id as a file name: anything but letters, digits, `-` and `_` becomes `_`.
pub(crate) fn safe_name(store_id: &str) -> String {
    store_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_lock_of_one_store_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path(), "1215", None, "2026-11-22T01:00:00Z")
            .await
            .unwrap();
        let err = acquire(dir.path(), "1215", None, "later")
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("since 2026-11-22T01:00:00Z"), "{text}");
        // Another store is independent.
        acquire(dir.path(), "1216", None, "now").await.unwrap();
        drop(held);
        acquire(dir.path(), "1215", None, "now").await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_gets_the_lock_once_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path(), "1", None, "t0").await.unwrap();
        let path = dir.path().to_owned();
        let waiter =
            tokio::spawn(
                async move { acquire(&path, "1", Some(Duration::from_secs(30)), "t1").await },
            );
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(held);
        assert!(waiter.await.unwrap().is_ok());
        let _again = acquire(dir.path(), "1", None, "t2").await;
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_gives_up_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let _held = acquire(dir.path(), "1", None, "t0").await.unwrap();
        let err = acquire(dir.path(), "1", Some(Duration::from_secs(2)), "t1")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("still after waiting 2s"), "{err}");
    }

    #[test]
    fn store_ids_become_safe_file_names() {
        assert_eq!(safe_name("12/../x"), "12____x");
    }
}
