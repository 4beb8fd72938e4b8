//! The link table (README "Syncing to CRM.COM"): which CRM.COM participant each customer of a store
//! became, kept in the ledger so that a second sync updates instead of creating again. Links belong to
//! a [`Scope`] — one CRM.COM URL, organisation and store — so that two stores never share, overwrite or
//! terminate each other's participants.
//!
//! A create is recorded as *in flight* before it is sent and settled when its answer arrives, so that a
//! run killed in between (a second Ctrl-C, SIGKILL, an OOM kill) leaves a trace: the next run treats it
//! like a lost answer and never creates again blindly. A terminated participant stays recorded with its
//! date; when its customer returns and gets a new participant, the old number moves to the history.

use std::path::Path;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::ledger::LEDGER_FILE;
use crate::sqlite::connect;

/// Whose links: one CRM.COM organisation at one URL, for one store (`-` when no store is named).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub url: String,
    pub organisation: String,
    pub store: String,
}

/// What the ledger knows of one customer at CRM.COM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Link {
    /// The customer is this participant, on this accounts receivable.
    Linked {
        participant: String,
        accounts_receivable: Option<String>,
    },
    /// A create was sent but its outcome is unknown (its answer was lost, or the run stopped before
    /// recording it): never create it again blindly.
    NeedsAttention { detail: String, since: String },
    /// The customer's participant was terminated.
    Terminated { participant: String, at: String },
}

/// One row of `crm links`: a current link, or an earlier participant of a returning customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkRow {
    pub partner_customer_id: String,
    pub participant: Option<String>,
    pub state: String,
    pub since: String,
    pub detail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the link table in {path}: {message}")]
pub struct LinkError {
    pub path: String,
    pub message: String,
}

pub struct Links {
    conn: Connection,
    path: String,
    scope: Scope,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS crm_participant_links (
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
CREATE INDEX IF NOT EXISTS crm_links_by_participant
    ON crm_participant_links (crm_url, organisation, participant_number);
CREATE TABLE IF NOT EXISTS crm_link_history (
    crm_url             TEXT NOT NULL,
    organisation        TEXT NOT NULL,
    store               TEXT NOT NULL,
    partner_customer_id TEXT NOT NULL,
    participant_number  TEXT NOT NULL,
    terminated_at       TEXT NOT NULL,
    replaced_at         TEXT NOT NULL
);
";

/// The table of an older rrfeed, keyed by customer id alone.
const LEGACY_TABLE: &str = "crm_links";

const WHERE_KEY: &str =
    "crm_url = ?1 AND organisation = ?2 AND store = ?3 AND partner_customer_id = ?4";

impl Links {
    /// Opens the link table of `scope` in the ledger of `state_dir` (creating both as needed).
    pub fn open(state_dir: &Path, scope: Scope) -> Result<Self, LinkError> {
        let path = state_dir.join(LEDGER_FILE);
        let err = |e: &dyn std::fmt::Display| LinkError {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(state_dir).map_err(|e| err(&e))?;
        let conn = connect(&path).map_err(|e| err(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| err(&e))?;
        Ok(Self {
            conn,
            path: path.display().to_string(),
            scope,
        })
    }

    fn err(&self, e: rusqlite::Error) -> LinkError {
        LinkError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn key<'a>(&'a self, id: &'a str) -> [&'a str; 4] {
        [
            &self.scope.url,
            &self.scope.organisation,
            &self.scope.store,
            id,
        ]
    }

    /// The store whose links these are.
    pub fn store(&self) -> &str {
        &self.scope.store
    }

    /// How many links an older rrfeed left without saying which store made them.
    pub fn legacy_links(&self) -> Result<u64, LinkError> {
        let exists: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                params![LEGACY_TABLE],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if !exists {
            return Ok(0);
        }
        self.conn
            .query_row(&format!("SELECT COUNT(*) FROM {LEGACY_TABLE}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Moves an older rrfeed's links into this scope (the caller knows they are this store's), and
    /// drops the old table. Returns how many moved.
    pub fn adopt_legacy_links(&mut self) -> Result<u64, LinkError> {
        let count = self.legacy_links()?;
        if count == 0 {
            return Ok(0);
        }
        let tx = self.conn.transaction().map_err(|e| LinkError {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let moved = tx
            .execute(
                &format!(
                    "INSERT OR IGNORE INTO crm_participant_links
                     SELECT ?1, ?2, ?3, partner_customer_id, participant_number, accounts_receivable,
                            state, detail, updated_at FROM {LEGACY_TABLE}"
                ),
                params![self.scope.url, self.scope.organisation, self.scope.store],
            )
            .and_then(|n| {
                tx.execute_batch(&format!("DROP TABLE {LEGACY_TABLE}"))?;
                Ok(n)
            })
            .and_then(|n| tx.commit().map(|()| n))
            .map_err(|e| LinkError {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        Ok(moved as u64)
    }

    pub fn get(&self, partner_customer_id: &str) -> Result<Option<Link>, LinkError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT state, participant_number, accounts_receivable, detail, updated_at \
                     FROM crm_participant_links WHERE {WHERE_KEY}"
                ),
                self.key(partner_customer_id),
                |r| {
                    let state: String = r.get(0)?;
                    let since: String = r.get(4)?;
                    Ok(match state.as_str() {
                        "linked" => Link::Linked {
                            participant: r.get(1)?,
                            accounts_receivable: r.get(2)?,
                        },
                        "terminated" => Link::Terminated {
                            participant: r.get(1)?,
                            at: since,
                        },
                        "in_flight" => Link::NeedsAttention {
                            detail: "a create was sent and the run stopped before its answer was \
                                     recorded"
                                .into(),
                            since,
                        },
                        _ => Link::NeedsAttention {
                            detail: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                            since,
                        },
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn put(
        &self,
        id: &str,
        participant: Option<&str>,
        accounts_receivable: Option<&str>,
        state: &str,
        detail: Option<&str>,
        now: Timestamp,
    ) -> Result<(), LinkError> {
        let [url, organisation, store, _] = self.key(id);
        self.conn
            .execute(
                "INSERT INTO crm_participant_links VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (crm_url, organisation, store, partner_customer_id) DO UPDATE SET \
                 participant_number = ?5, accounts_receivable = ?6, state = ?7, detail = ?8, \
                 updated_at = ?9",
                params![
                    url,
                    organisation,
                    store,
                    id,
                    participant,
                    accounts_receivable,
                    state,
                    detail,
                    now.to_string()
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Records that the customer is `participant` (settling any in-flight or needs-attention state).
    /// A terminated participant it had before moves to the history.
    pub fn link(
        &self,
        partner_customer_id: &str,
        participant: &str,
        accounts_receivable: Option<&str>,
        now: Timestamp,
    ) -> Result<(), LinkError> {
        self.retire_terminated(partner_customer_id, Some(participant), now)?;
        self.put(
            partner_customer_id,
            Some(participant),
            accounts_receivable,
            "linked",
            None,
            now,
        )
    }

    /// Records, before a create is sent, that it is about to be: durable, so that a run that dies
    /// before the answer is recorded leaves a trace. A terminated participant's number is kept.
    pub fn create_in_flight(
        &self,
        partner_customer_id: &str,
        now: Timestamp,
    ) -> Result<(), LinkError> {
        self.retire_terminated(partner_customer_id, None, now)?;
        self.put(partner_customer_id, None, None, "in_flight", None, now)
    }

    /// Moves the customer's terminated participant, if it has one other than `keep`, to the history
    /// before its row changes state.
    fn retire_terminated(
        &self,
        partner_customer_id: &str,
        keep: Option<&str>,
        now: Timestamp,
    ) -> Result<(), LinkError> {
        let Some(Link::Terminated { participant, at }) = self.get(partner_customer_id)? else {
            return Ok(());
        };
        if keep == Some(participant.as_str()) {
            return Ok(());
        }
        let [url, organisation, store, id] = self.key(partner_customer_id);
        self.conn
            .execute(
                "INSERT INTO crm_link_history VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    url,
                    organisation,
                    store,
                    id,
                    participant,
                    at,
                    now.to_string()
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// A create that was refused outright: nothing was created, so the in-flight mark goes.
    pub fn create_refused(&self, partner_customer_id: &str) -> Result<(), LinkError> {
        self.conn
            .execute(
                &format!(
                    "DELETE FROM crm_participant_links WHERE {WHERE_KEY} AND state = 'in_flight'"
                ),
                self.key(partner_customer_id),
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Records that a create for the customer may or may not have happened.
    pub fn needs_attention(
        &self,
        partner_customer_id: &str,
        detail: &str,
        now: Timestamp,
    ) -> Result<(), LinkError> {
        self.put(
            partner_customer_id,
            None,
            None,
            "needs_attention",
            Some(detail),
            now,
        )
    }

    /// Records that the customer's participant was terminated (by a sync, or at CRM.COM).
    pub fn terminated(
        &self,
        partner_customer_id: &str,
        participant: &str,
        now: Timestamp,
    ) -> Result<(), LinkError> {
        self.put(
            partner_customer_id,
            Some(participant),
            None,
            "terminated",
            None,
            now,
        )
    }

    /// Forgets the customer (`crm link ID --none`: it was not created; the next sync creates it).
    /// Returns whether there was anything to forget.
    pub fn forget(&self, partner_customer_id: &str) -> Result<bool, LinkError> {
        self.conn
            .execute(
                &format!("DELETE FROM crm_participant_links WHERE {WHERE_KEY}"),
                self.key(partner_customer_id),
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Every linked customer of the scope: (PartnerCustomerID, participant number), for
    /// `--terminate-missing`. Terminated participants are not in it.
    pub fn linked(&self) -> Result<Vec<(String, String)>, LinkError> {
        let mut query = self
            .conn
            .prepare(
                "SELECT partner_customer_id, participant_number FROM crm_participant_links \
                 WHERE crm_url = ?1 AND organisation = ?2 AND store = ?3 AND state = 'linked' \
                 ORDER BY partner_customer_id",
            )
            .map_err(|e| self.err(e))?;
        let [url, organisation, store, _] = self.key("");
        let rows = query
            .query_map(params![url, organisation, store], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The customers, of any store of this organisation, linked to `participant`: (store, id).
    pub fn linked_to(&self, participant: &str) -> Result<Vec<(String, String)>, LinkError> {
        let mut query = self
            .conn
            .prepare(
                "SELECT store, partner_customer_id FROM crm_participant_links \
                 WHERE crm_url = ?1 AND organisation = ?2 AND participant_number = ?3 \
                 AND state = 'linked' ORDER BY store, partner_customer_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = query
            .query_map(
                params![self.scope.url, self.scope.organisation, participant],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Every link of the scope and every earlier participant, for `crm links`.
    pub fn list(&self) -> Result<Vec<LinkRow>, LinkError> {
        let mut query = self
            .conn
            .prepare(
                "SELECT partner_customer_id, participant_number, state, updated_at, detail \
                 FROM crm_participant_links WHERE crm_url = ?1 AND organisation = ?2 AND store = ?3 \
                 UNION ALL \
                 SELECT partner_customer_id, participant_number, 'replaced', terminated_at, \
                 'terminated ' || terminated_at || ', replaced ' || replaced_at \
                 FROM crm_link_history WHERE crm_url = ?1 AND organisation = ?2 AND store = ?3 \
                 ORDER BY 1, 4",
            )
            .map_err(|e| self.err(e))?;
        let rows = query
            .query_map(
                params![self.scope.url, self.scope.organisation, self.scope.store],
                |r| {
                    Ok(LinkRow {
                        partner_customer_id: r.get(0)?,
                        participant: r.get(1)?,
                        state: r.get(2)?,
                        since: r.get(3)?,
                        detail: r.get(4)?,
                    })
                },
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests;
