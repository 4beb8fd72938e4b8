//! The vendor's side of two-way sync (README "Two-way sync"): `POST /_mock/stores/{id}/customers/{customer}/edit`
//! with `{"Field": "new value", ...}` plays a customer editing their profile on the rewards website.
//! The mock changes the stored row and POSTs it, as one customer object, to the partner's webhook
//! (`rrfeed mock --webhook-url URL`, with `Authorization: Bearer` and `RRFEED_WEBHOOK_SECRET`).
//! The inspection call answers 200 once the webhook accepted the update, 502 when it did not.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::value::RawValue;

use super::Mock;

/// Where the vendor posts customer edits.
#[derive(Clone, Debug)]
pub struct WebhookTarget {
    pub url: Url,
    pub secret: Option<SecretString>,
}

#[derive(Serialize)]
struct Delivery {
    status: u16,
    body: String,
}

#[derive(Serialize)]
struct Edited {
    customer: Box<RawValue>,
    /// What the webhook answered; `null` when no webhook is configured.
    webhook: Option<Delivery>,
}

pub(super) async fn edit_customer(
    State(mock): State<Mock>,
    Path((store_id, customer_id)): Path<(String, String)>,
    axum::Json(changes): axum::Json<serde_json::Map<String, serde_json::Value>>,
) -> Response {
    let edited = mock
        .state()
        .edit_customer(&store_id, &customer_id, &changes);
    let row = match edited {
        Ok(row) => row,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let webhook = match &mock.inner.webhook {
        Some(target) => Some(deliver(target, &row).await),
        None => None,
    };
    let delivered = webhook
        .as_ref()
        .is_none_or(|d| (200..300).contains(&d.status));
    let answer = Edited {
        customer: RawValue::from_string(row).expect("the row is JSON"),
        webhook,
    };
    let status = if delivered {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    (status, axum::Json(answer)).into_response()
}

/// POSTs the edited row; a transport failure is reported as status 0 with the error.
async fn deliver(target: &WebhookTarget, row: &str) -> Delivery {
    let mut request = reqwest::Client::new()
        .post(target.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(row.to_owned());
    if let Some(secret) = &target.secret {
        request = request.bearer_auth(secret.expose_secret());
    }
    match request.send().await {
        Ok(response) => Delivery {
            status: response.status().as_u16(),
            body: response.text().await.unwrap_or_default(),
        },
        Err(e) => Delivery {
            status: 0,
            body: format!("cannot reach the webhook: {e}"),
        },
    }
}
