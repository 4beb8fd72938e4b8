//! The link table (README "Syncing to CRM.COM"): which CRM.COM participant each customer of a store
//! became, kept in the ledger so that a second sync updates instead of creating again. Links belong to
//! a [`Scope`] — one CRM.COM URL, organisation and store — so that two stores never share, overwrite or
//! terminate each other's participants.
//!
//! A create is recorded as *in flight* before it is sent and settled when its answer arrives, so that a
//! run killed in between (a second Ctrl-C, SIGKILL, an OOM kill) leaves a trace: the next run treats it
//! like a lost answer and never creates again blindly. A terminated participant stays recorded with its
//! date; when its customer returns and gets a new participant, the old number moves to the history.
//!
//! The table lives in the SQLite ledger of the state directory, or in PostgreSQL with `state_url`
//! (the same statements: `links/db.rs`).

mod db;

use jiff::Timestamp;
use serde::Serialize;

use crate::state::State;
use db::Db;

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
    db: Db,
    scope: Scope,
}

/// The tables in SQLite (in PostgreSQL the schema's migrations create the same).
pub(crate) const SCHEMA: &str = "
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
    /// Opens the link table of `scope` where `state` keeps it (creating it as needed).
    pub fn open(state: &State, scope: Scope) -> Result<Self, LinkError> {
        Ok(Self {
            db: Db::open(state)?,
            scope,
        })
    }

    fn err(&self, message: String) -> LinkError {
        LinkError {
            path: self.db.place(),
            message,
        }
    }

    fn key<'a>(&'a self, id: &'a str) -> [Option<&'a str>; 4] {
        [
            Some(&self.scope.url),
            Some(&self.scope.organisation),
            Some(&self.scope.store),
            Some(id),
        ]
    }

    /// The store whose links these are.
    pub fn store(&self) -> &str {
        &self.scope.store
    }

    /// How many links an older rrfeed left without saying which store made them (only a SQLite
    /// ledger can have them).
    pub fn legacy_links(&self) -> Result<u64, LinkError> {
        self.db.legacy_links(LEGACY_TABLE).map_err(|e| self.err(e))
    }

    /// Moves an older rrfeed's links into this scope (the caller knows they are this store's), and
    /// drops the old table. Returns how many moved.
    pub fn adopt_legacy_links(&mut self) -> Result<u64, LinkError> {
        let count = self.legacy_links()?;
        if count == 0 {
            return Ok(0);
        }
        let scope = [
            self.scope.url.as_str(),
            &self.scope.organisation,
            &self.scope.store,
        ];
        self.db
            .adopt_legacy_links(LEGACY_TABLE, scope)
            .map_err(|e| self.err(e))
    }

    pub fn get(&self, partner_customer_id: &str) -> Result<Option<Link>, LinkError> {
        let rows = self
            .db
            .rows(
                &format!(
                    "SELECT state, participant_number, accounts_receivable, detail, updated_at \
                     FROM crm_participant_links WHERE {WHERE_KEY}"
                ),
                &self.key(partner_customer_id),
            )
            .map_err(|e| self.err(e))?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let text = |i: usize| row[i].clone();
        let since = text(4).unwrap_or_default();
        Ok(Some(match text(0).as_deref() {
            Some("linked") => Link::Linked {
                participant: text(1).unwrap_or_default(),
                accounts_receivable: text(2),
            },
            Some("terminated") => Link::Terminated {
                participant: text(1).unwrap_or_default(),
                at: since,
            },
            Some("in_flight") => Link::NeedsAttention {
                detail: "a create was sent and the run stopped before its answer was recorded"
                    .into(),
                since,
            },
            _ => Link::NeedsAttention {
                detail: text(3).unwrap_or_default(),
                since,
            },
        }))
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
        let now = now.to_string();
        self.db
            .execute(
                "INSERT INTO crm_participant_links VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (crm_url, organisation, store, partner_customer_id) DO UPDATE SET \
                 participant_number = ?5, accounts_receivable = ?6, state = ?7, detail = ?8, \
                 updated_at = ?9",
                &[
                    url,
                    organisation,
                    store,
                    Some(id),
                    participant,
                    accounts_receivable,
                    Some(state),
                    detail,
                    Some(&now),
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
        let now = now.to_string();
        self.db
            .execute(
                "INSERT INTO crm_link_history VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                &[
                    url,
                    organisation,
                    store,
                    id,
                    Some(&participant),
                    Some(&at),
                    Some(&now),
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// A create that was refused outright: nothing was created, so the in-flight mark goes.
    pub fn create_refused(&self, partner_customer_id: &str) -> Result<(), LinkError> {
        self.db
            .execute(
                &format!(
                    "DELETE FROM crm_participant_links WHERE {WHERE_KEY} AND state = 'in_flight'"
                ),
                &self.key(partner_customer_id),
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
        self.db
            .execute(
                &format!("DELETE FROM crm_participant_links WHERE {WHERE_KEY}"),
                &self.key(partner_customer_id),
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Every linked customer of the scope: (PartnerCustomerID, participant number), for
    /// `--terminate-missing`. Terminated participants are not in it.
    pub fn linked(&self) -> Result<Vec<(String, String)>, LinkError> {
        let [url, organisation, store, _] = self.key("");
        let rows = self
            .db
            .rows(
                "SELECT partner_customer_id, participant_number FROM crm_participant_links \
                 WHERE crm_url = ?1 AND organisation = ?2 AND store = ?3 AND state = 'linked' \
                 ORDER BY partner_customer_id",
                &[url, organisation, store],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().map(pair).collect())
    }

    /// The customers, of any store of this organisation, linked to `participant`: (store, id).
    pub fn linked_to(&self, participant: &str) -> Result<Vec<(String, String)>, LinkError> {
        let [url, organisation, _, _] = self.key("");
        let rows = self
            .db
            .rows(
                "SELECT store, partner_customer_id FROM crm_participant_links \
                 WHERE crm_url = ?1 AND organisation = ?2 AND participant_number = ?3 \
                 AND state = 'linked' ORDER BY store, partner_customer_id",
                &[url, organisation, Some(participant)],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().map(pair).collect())
    }

    /// Every link of the scope and every earlier participant, for `crm links`.
    pub fn list(&self) -> Result<Vec<LinkRow>, LinkError> {
        let [url, organisation, store, _] = self.key("");
        let rows = self
            .db
            .rows(
                "SELECT partner_customer_id, participant_number, state, updated_at, detail \
                 FROM crm_participant_links WHERE crm_url = ?1 AND organisation = ?2 AND store = ?3 \
                 UNION ALL \
                 SELECT partner_customer_id, participant_number, 'replaced', terminated_at, \
                 'terminated ' || terminated_at || ', replaced ' || replaced_at \
                 FROM crm_link_history WHERE crm_url = ?1 AND organisation = ?2 AND store = ?3 \
                 ORDER BY 1, 4",
                &[url, organisation, store],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|mut row| LinkRow {
                partner_customer_id: row[0].take().unwrap_or_default(),
                participant: row[1].take(),
                state: row[2].take().unwrap_or_default(),
                since: row[3].take().unwrap_or_default(),
                detail: row[4].take(),
            })
            .collect())
    }
}

/// Two text columns.
fn pair(mut row: Vec<Option<String>>) -> (String, String) {
    (
        row[0].take().unwrap_or_default(),
        row[1].take().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests;
