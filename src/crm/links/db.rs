//! Where the link table is: the SQLite ledger of the state directory, or PostgreSQL (`state_url`). The
//! statements are the same in both (`?N` parameters become PostgreSQL's `$N`), every value is text.

use rusqlite::Connection;

use super::{LinkError, SCHEMA};
use crate::ledger::LEDGER_FILE;
use crate::state::State;
use crate::state::postgres::Shared;

/// A connection to the link table.
pub(super) enum Db {
    Sqlite { conn: Connection, path: String },
    Postgres(Box<Shared>),
}

impl Db {
    pub(super) fn open(state: &State) -> Result<Self, LinkError> {
        if let Some(target) = &state.postgres {
            let shared = Shared::connect(target).map_err(|message| LinkError {
                path: format!("PostgreSQL {}", target.describe()),
                message,
            })?;
            return Ok(Db::Postgres(Box::new(shared)));
        }
        let path = state.dir.join(LEDGER_FILE);
        let err = |e: &dyn std::fmt::Display| LinkError {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&state.dir).map_err(|e| err(&e))?;
        let conn = crate::sqlite::connect(&path).map_err(|e| err(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| err(&e))?;
        Ok(Db::Sqlite {
            conn,
            path: path.display().to_string(),
        })
    }

    /// The file or the database, for messages.
    pub(super) fn place(&self) -> String {
        match self {
            Db::Sqlite { path, .. } => path.clone(),
            Db::Postgres(shared) => format!("PostgreSQL {}", shared.describe()),
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub(super) fn execute(&self, sql: &str, params: &[Option<&str>]) -> Result<u64, String> {
        match self {
            Db::Sqlite { conn, .. } => conn
                .execute(sql, rusqlite::params_from_iter(params))
                .map(|n| n as u64)
                .map_err(|e| e.to_string()),
            Db::Postgres(shared) => {
                let sql = dollar_parameters(sql);
                shared.with(|c| c.execute(sql.as_str(), &bind(params)))
            }
        }
    }

    /// Runs a query; returns its rows, every column as text.
    pub(super) fn rows(
        &self,
        sql: &str,
        params: &[Option<&str>],
    ) -> Result<Vec<Vec<Option<String>>>, String> {
        match self {
            Db::Sqlite { conn, .. } => {
                let mut query = conn.prepare(sql).map_err(|e| e.to_string())?;
                let columns = query.column_count();
                let rows = query
                    .query_map(rusqlite::params_from_iter(params), |r| {
                        (0..columns).map(|i| r.get(i)).collect()
                    })
                    .map_err(|e| e.to_string())?;
                rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
            }
            Db::Postgres(shared) => {
                let sql = dollar_parameters(sql);
                let rows = shared.with(|c| c.query(sql.as_str(), &bind(params)))?;
                Ok(rows
                    .iter()
                    .map(|r| (0..r.len()).map(|i| r.get(i)).collect())
                    .collect())
            }
        }
    }

    /// How many links the table of an older rrfeed holds (none in PostgreSQL: it never had one).
    pub(super) fn legacy_links(&self, table: &str) -> Result<u64, String> {
        let Db::Sqlite { conn, .. } = self else {
            return Ok(0);
        };
        let exists: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [table],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if !exists {
            return Ok(0);
        }
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n as u64)
        .map_err(|e| e.to_string())
    }

    /// Moves the older table's links into `scope` (url, organisation, store) and drops it.
    pub(super) fn adopt_legacy_links(
        &mut self,
        table: &str,
        scope: [&str; 3],
    ) -> Result<u64, String> {
        let Db::Sqlite { conn, .. } = self else {
            return Ok(0);
        };
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        let moved = tx
            .execute(
                &format!(
                    "INSERT OR IGNORE INTO crm_participant_links
                     SELECT ?1, ?2, ?3, partner_customer_id, participant_number, accounts_receivable,
                            state, detail, updated_at FROM {table}"
                ),
                scope,
            )
            .map_err(|e| e.to_string())?;
        tx.execute_batch(&format!("DROP TABLE {table}"))
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        Ok(moved as u64)
    }
}

fn bind<'a>(params: &'a [Option<&'a str>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// `?1` → `$1`: SQLite's numbered parameters as PostgreSQL writes them (no statement here has a `?`
/// inside a string).
fn dollar_parameters(sql: &str) -> String {
    sql.replace('?', "$")
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbered_parameters_become_dollars() {
        assert_eq!(
            super::dollar_parameters("a = ?1 AND b = ?12"),
            "a = $1 AND b = $12"
        );
    }
}
