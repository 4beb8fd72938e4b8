//! The link table (SPEC §8): which CRM.COM participant each `PartnerCustomerID` became, kept in the
//! ledger so that a second sync updates instead of creating again. A create whose answer was lost is
//! recorded as needing attention: later runs skip and report it until `rrfeed crm link` settles it.

use std::path::Path;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::ledger::{LEDGER_FILE, connect};

/// What the ledger knows of one customer at CRM.COM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Link {
    /// The customer is this participant, on this accounts receivable.
    Linked {
        participant: String,
        accounts_receivable: Option<String>,
    },
    /// A create was sent but its outcome is unknown: never create it again blindly.
    NeedsAttention { detail: String, since: String },
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
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS crm_links (
    partner_customer_id TEXT PRIMARY KEY,
    participant_number  TEXT,
    accounts_receivable TEXT,
    state               TEXT NOT NULL CHECK (state IN ('linked', 'needs_attention')),
    detail              TEXT,
    updated_at          TEXT NOT NULL
);
";

impl Links {
    /// Opens the link table in the ledger of `state_dir` (creating both as needed).
    pub fn open(state_dir: &Path) -> Result<Self, LinkError> {
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
        })
    }

    fn err(&self, e: rusqlite::Error) -> LinkError {
        LinkError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    pub fn get(&self, partner_customer_id: &str) -> Result<Option<Link>, LinkError> {
        self.conn
            .query_row(
                "SELECT state, participant_number, accounts_receivable, detail, updated_at \
                 FROM crm_links WHERE partner_customer_id = ?1",
                params![partner_customer_id],
                |r| {
                    let state: String = r.get(0)?;
                    Ok(if state == "linked" {
                        Link::Linked {
                            participant: r.get(1)?,
                            accounts_receivable: r.get(2)?,
                        }
                    } else {
                        Link::NeedsAttention {
                            detail: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                            since: r.get(4)?,
                        }
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records that the customer is `participant` (settling any needs-attention state).
    pub fn link(
        &self,
        partner_customer_id: &str,
        participant: &str,
        accounts_receivable: Option<&str>,
        now: Timestamp,
    ) -> Result<(), LinkError> {
        self.conn
            .execute(
                "INSERT INTO crm_links VALUES (?1, ?2, ?3, 'linked', NULL, ?4) \
                 ON CONFLICT (partner_customer_id) DO UPDATE SET participant_number = ?2, \
                 accounts_receivable = ?3, state = 'linked', detail = NULL, updated_at = ?4",
                params![
                    partner_customer_id,
                    participant,
                    accounts_receivable,
                    now.to_string()
                ],
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
        self.conn
            .execute(
                "INSERT INTO crm_links VALUES (?1, NULL, NULL, 'needs_attention', ?2, ?3) \
                 ON CONFLICT (partner_customer_id) DO UPDATE SET participant_number = NULL, \
                 accounts_receivable = NULL, state = 'needs_attention', detail = ?2, updated_at = ?3",
                params![partner_customer_id, detail, now.to_string()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Forgets the customer (`crm link ID --none`: it was not created; the next sync creates it).
    /// Returns whether there was anything to forget.
    pub fn forget(&self, partner_customer_id: &str) -> Result<bool, LinkError> {
        self.conn
            .execute(
                "DELETE FROM crm_links WHERE partner_customer_id = ?1",
                params![partner_customer_id],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Every linked customer: (PartnerCustomerID, participant number), for `--terminate-missing`.
    pub fn linked(&self) -> Result<Vec<(String, String)>, LinkError> {
        let mut query = self
            .conn
            .prepare(
                "SELECT partner_customer_id, participant_number FROM crm_links \
                 WHERE state = 'linked' ORDER BY partner_customer_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = query
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_795_000_000 + s).unwrap()
    }

    #[test]
    fn links_survive_reopening_and_settle_needs_attention() {
        let dir = tempfile::tempdir().unwrap();
        let links = Links::open(dir.path()).unwrap();
        assert_eq!(links.get("C1").unwrap(), None);
        links
            .needs_attention("C1", "create: no answer", at(0))
            .unwrap();
        links
            .link("C2", "RP0000000002", Some("ACR0000000002"), at(1))
            .unwrap();
        drop(links);
        let links = Links::open(dir.path()).unwrap();
        assert!(matches!(
            links.get("C1").unwrap(),
            Some(Link::NeedsAttention { .. })
        ));
        links.link("C1", "RP0000000001", None, at(2)).unwrap();
        assert_eq!(
            links.get("C1").unwrap(),
            Some(Link::Linked {
                participant: "RP0000000001".into(),
                accounts_receivable: None
            })
        );
        assert_eq!(links.linked().unwrap().len(), 2);
        assert!(links.forget("C2").unwrap());
        assert!(!links.forget("C2").unwrap());
        assert_eq!(
            links.linked().unwrap(),
            [("C1".to_owned(), "RP0000000001".to_owned())]
        );
    }

    #[test]
    fn the_link_table_lives_beside_the_runs_in_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let _ledger = crate::ledger::Ledger::open(dir.path()).unwrap();
        let links = Links::open(dir.path()).unwrap();
        links.link("C1", "RP1", None, at(0)).unwrap();
        assert!(dir.path().join(LEDGER_FILE).exists());
        assert_eq!(links.linked().unwrap().len(), 1);
    }
}
