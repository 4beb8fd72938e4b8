//! The outbox in PostgreSQL (`state_url`), shared by receivers on several machines behind one load
//! balancer: an update the vendor sends to two of them is stored once, and two exports never take the
//! same updates.
//!
//! - A repeat is detected under a transaction-level advisory lock per customer, taken in a fixed
//!   order, so that two receivers storing the same customer's update at once store it once (and never
//!   deadlock).
//! - `last_seq` reads the newest sequence number under an `EXCLUSIVE` table lock, which waits for the
//!   inserts in flight to commit: no update can appear below it later (sequence numbers are handed out
//!   before commit, so without the lock an export could mark exported an update it never saw).
//! - An export holds a session-level advisory lock until it ends.

use jiff::Timestamp;

use super::{Counts, Outbox, OutboxError, Row, Stored};
use crate::state::postgres::{PgTarget, blocking, describe_error};
use crate::webhook::payload::Update;

/// An open outbox in PostgreSQL.
pub struct PgOutbox {
    /// Taken out only when dropped.
    client: Option<postgres::Client>,
    place: String,
}

/// The advisory lock of exports.
const EXPORT_LOCK: i64 = 0x7272_6665_6564_0002;

impl PgOutbox {
    /// Connects to the outbox of `target`, migrating the schema.
    ///
    /// Fails when the server cannot be reached or the migration fails.
    pub fn open(target: &PgTarget) -> Result<Self, OutboxError> {
        let place = format!("PostgreSQL {}", target.describe());
        let client = target.connect().map_err(|message| OutboxError {
            place: place.clone(),
            message,
        })?;
        Ok(Self {
            client: Some(client),
            place,
        })
    }

    fn with<R: Send>(
        &mut self,
        f: impl FnOnce(&mut postgres::Client) -> Result<R, postgres::Error> + Send,
    ) -> Result<R, OutboxError> {
        let client = self
            .client
            .as_mut()
            .expect("the client is taken only on drop");
        blocking(|| f(client)).map_err(|e| OutboxError {
            place: self.place.clone(),
            message: describe_error(&e),
        })
    }
}

impl Drop for PgOutbox {
    fn drop(&mut self) {
        // Not given back for reuse: an export's session holds its advisory lock until it closes.
        let client = self.client.take();
        blocking(move || drop(client));
    }
}

/// The advisory lock key of a customer's updates.
fn customer_lock(customer_key: &str) -> i64 {
    crate::state::postgres::advisory_key("rrfeed outbox", customer_key)
}

impl Outbox for PgOutbox {
    fn place(&self) -> String {
        self.place.clone()
    }

    fn store(
        &mut self,
        batches: &[&[Update]],
        now: Timestamp,
    ) -> Result<Vec<Vec<Stored>>, OutboxError> {
        let received_at = now.to_string();
        let mut keys: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.iter().map(|u| customer_lock(&u.customer_key)))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        self.with(|c| {
            let mut tx = c.transaction()?;
            for key in &keys {
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[key])?;
            }
            let latest = tx.prepare(
                "SELECT seq, digest FROM rrfeed_outbox WHERE customer_key = $1
                 ORDER BY seq DESC LIMIT 1",
            )?;
            let insert = tx.prepare(
                "INSERT INTO rrfeed_outbox (received_at, customer_key, digest, customer, raw)
                 VALUES ($1, $2, $3, $4, $5) RETURNING seq",
            )?;
            let mut results = Vec::with_capacity(batches.len());
            for batch in batches {
                let mut stored = Vec::with_capacity(batch.len());
                for update in *batch {
                    let last = tx.query_opt(&latest, &[&update.customer_key])?;
                    match last {
                        Some(row) if row.get::<_, String>(1) == update.digest => {
                            stored.push(Stored {
                                seq: row.get(0),
                                repeat: true,
                            });
                        }
                        _ => {
                            let row = tx.query_one(
                                &insert,
                                &[
                                    &received_at,
                                    &update.customer_key,
                                    &update.digest,
                                    &update.customer,
                                    &update.raw,
                                ],
                            )?;
                            stored.push(Stored {
                                seq: row.get(0),
                                repeat: false,
                            });
                        }
                    }
                }
                results.push(stored);
            }
            tx.commit()?;
            Ok(results)
        })
    }

    fn last_seq(&mut self) -> Result<i64, OutboxError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            tx.batch_execute("LOCK TABLE rrfeed_outbox IN EXCLUSIVE MODE")?;
            let seq: i64 = tx
                .query_one("SELECT COALESCE(MAX(seq), 0) FROM rrfeed_outbox", &[])?
                .get(0);
            tx.commit()?;
            Ok(seq)
        })
    }

    fn latest(&mut self, up_to: i64, all: bool) -> Result<Vec<Row>, OutboxError> {
        let rows = self.with(|c| {
            c.query(
                "SELECT u.seq, u.received_at, u.customer_key, u.customer, u.raw FROM rrfeed_outbox u
                 WHERE u.seq = (SELECT MAX(v.seq) FROM rrfeed_outbox v
                                WHERE v.customer_key = u.customer_key AND v.seq <= $1)
                   AND ($2 OR EXISTS (SELECT 1 FROM rrfeed_outbox p
                                      WHERE p.customer_key = u.customer_key
                                        AND p.exported_at IS NULL AND p.seq <= $1))
                 ORDER BY u.seq",
                &[&up_to, &all],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| Row {
                seq: r.get(0),
                received_at: r.get(1),
                customer_key: r.get(2),
                customer: r.get(3),
                raw: r.get(4),
            })
            .collect())
    }

    fn mark_exported(&mut self, up_to: i64, now: Timestamp) -> Result<u64, OutboxError> {
        let now = now.to_string();
        self.with(|c| {
            c.execute(
                "UPDATE rrfeed_outbox SET exported_at = $1 WHERE exported_at IS NULL AND seq <= $2",
                &[&now, &up_to],
            )
        })
    }

    fn counts(&mut self) -> Result<Counts, OutboxError> {
        let row = self.with(|c| {
            c.query_one(
                "SELECT COUNT(*),
                        COUNT(*) FILTER (WHERE exported_at IS NULL),
                        COUNT(DISTINCT customer_key) FILTER (WHERE exported_at IS NULL),
                        COUNT(*) FILTER (WHERE exported_at IS NOT NULL),
                        MAX(received_at), MAX(exported_at)
                 FROM rrfeed_outbox",
                &[],
            )
        })?;
        Ok(Counts {
            updates: row.get(0),
            pending: row.get(1),
            pending_customers: row.get(2),
            exported: row.get(3),
            last_received_at: row.get(4),
            last_exported_at: row.get(5),
        })
    }

    fn exclusive_export(&mut self) -> Result<(), OutboxError> {
        self.with(|c| {
            c.execute("SELECT pg_advisory_lock($1)", &[&EXPORT_LOCK])
                .map(drop)
        })
    }
}
