//! A store's lock in PostgreSQL, for runs on several machines sharing one `state_url`.

use super::postgres::{PgTarget, blocking, describe_error};

/// A store's lock in PostgreSQL: a session-level advisory lock on a connection of its own, held until
/// dropped — or until the connection dies with its process or host.
pub struct SessionLock {
    client: Option<postgres::Client>,
    key: i64,
    target: PgTarget,
}

impl SessionLock {
    /// Takes the lock of `store_id`, waiting up to `wait`; records the holder for a refused run's
    /// message.
    ///
    /// Fails when another run holds it past the wait, or the server cannot be used.
    pub async fn acquire(
        target: &PgTarget,
        store_id: &str,
        wait: Option<std::time::Duration>,
        started: &str,
    ) -> Result<Self, crate::lock::LockError> {
        use crate::lock::{Holder, LockError};
        let fail = |e: postgres::Error| LockError::Postgres(describe_error(&e));
        let mut client = target.connect().map_err(LockError::Postgres)?;
        let key = lock_key(store_id);
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        loop {
            let taken: bool =
                blocking(|| client.query_one("SELECT pg_try_advisory_lock($1)", &[&key]))
                    .map_err(fail)?
                    .get(0);
            if taken {
                break;
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() < d) {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
            let holder = blocking(|| {
                client.query_opt(
                    "SELECT pid, host, started FROM rrfeed_locks WHERE store_id = $1",
                    &[&store_id],
                )
            })
            .map_err(fail)?
            .map(|row| Holder {
                pid: row.get::<_, i64>(0) as u32,
                host: row.get(1),
                started: row.get(2),
            });
            target.release(client);
            return Err(LockError::Held {
                store: store_id.to_owned(),
                holder,
                place: format!("PostgreSQL {}", target.describe()),
                waited: wait,
            });
        }
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        blocking(|| {
            client.execute(
                "INSERT INTO rrfeed_locks (store_id, host, pid, started) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (store_id) DO UPDATE
                   SET host = EXCLUDED.host, pid = EXCLUDED.pid, started = EXCLUDED.started",
                &[&store_id, &host, &i64::from(std::process::id()), &started],
            )
        })
        .map_err(fail)?;
        Ok(Self {
            client: Some(client),
            key,
            target: target.clone(),
        })
    }
}

impl std::fmt::Debug for SessionLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionLock")
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        let Some(mut client) = self.client.take() else {
            return;
        };
        // Unlocked, the session can serve the next store's run; if the unlock fails, closing the
        // session releases the lock.
        let key = self.key;
        let unlocked = blocking(|| client.execute("SELECT pg_advisory_unlock($1)", &[&key]));
        match unlocked {
            Ok(_) => self.target.release(client),
            Err(_) => blocking(move || drop(client)),
        }
    }
}

/// The advisory lock key of a store.
fn lock_key(store_id: &str) -> i64 {
    super::postgres::advisory_key("rrfeed store lock", store_id)
}
