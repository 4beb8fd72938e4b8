//! Inspection routes under `/_mock` (not vendor paths): what each store holds, the calls received,
//! and the CRM.COM side, for tests and first tries to look at.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Mock;

#[derive(Serialize)]
struct StoreView {
    #[serde(rename = "RRStoreID")]
    store_id: String,
    name: String,
    customers: usize,
    imports: u64,
    last_import: Option<String>,
}

pub(super) async fn inspect_stores(State(mock): State<Mock>) -> Response {
    let state = mock.state();
    let views: Vec<StoreView> = state
        .accounts()
        .stores
        .iter()
        .map(|s| {
            let data = state.store(&s.store_id);
            StoreView {
                store_id: s.store_id.clone(),
                name: s.name.clone(),
                customers: data.map_or(0, |d| d.len()),
                imports: data.map_or(0, |d| d.imports),
                last_import: data.and_then(|d| d.last_import.clone()),
            }
        })
        .collect();
    axum::Json(views).into_response()
}

pub(super) async fn inspect_customers(
    State(mock): State<Mock>,
    Path(id): Path<String>,
) -> Response {
    match mock.store(&id) {
        Some(data) => axum::Json(data.customers()).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no store {id}")).into_response(),
    }
}

/// What the CRM.COM side holds, and how many writes and token releases it saw.
pub(super) async fn inspect_crm(State(mock): State<Mock>) -> Response {
    let crm = mock.crm();
    axum::Json(serde_json::json!({
        "participants": crm.participants.values().collect::<Vec<_>>(),
        "accounts_receivable": crm.accounts.values().collect::<Vec<_>>(),
        "writes": crm.writes,
        "released_tokens": crm.released,
        "live_tokens": crm.live_tokens(),
    }))
    .into_response()
}

pub(super) async fn inspect_calls(State(mock): State<Mock>) -> Response {
    axum::Json(mock.calls()).into_response()
}
