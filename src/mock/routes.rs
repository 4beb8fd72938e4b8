//! The mock's HTTP face: the vendor's paths, CRM.COM's methods and the inspection paths, and how a
//! [`Handled`] answer (with its injected faults) becomes an HTTP response.

use std::future::Future;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;

use super::inspect::{inspect_calls, inspect_crm, inspect_customers, inspect_stores};
use super::{CRM_PREFIX, Handled, MOCK_ROUTES, Mock, webhook};
use crate::crm::wire::Method as CrmMethod;
use crate::wire::Endpoint;

impl Mock {
    /// The HTTP routes: the vendor's paths and the inspection paths.
    pub fn router(&self) -> Router {
        let mut router = Router::new();
        for endpoint in Endpoint::ALL {
            router = router.route(
                endpoint.path(),
                post(
                    move |State(mock): State<Mock>, headers: HeaderMap, body: Bytes| async move {
                        let handled = mock.handle(endpoint, &headers, &body).await;
                        into_response(handled).await
                    },
                ),
            );
        }
        for method in CrmMethod::ALL {
            let path = format!("{CRM_PREFIX}/{}", method.path());
            router = if method.is_get() {
                router.route(
                    &path,
                    get(
                        move |State(mock): State<Mock>,
                              Query(params): Query<serde_json::Map<String, serde_json::Value>>| async move {
                            mock.crm_call(method, &params).await
                        },
                    ),
                )
            } else {
                router.route(
                    &path,
                    post(move |State(mock): State<Mock>, body: Bytes| async move {
                        match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(
                            &body,
                        ) {
                            Ok(params) => mock.crm_call(method, &params).await,
                            Err(e) => (StatusCode::BAD_REQUEST, format!("not a JSON object: {e}"))
                                .into_response(),
                        }
                    }),
                )
            };
        }
        router
            .route(&format!("{MOCK_ROUTES}/stores"), get(inspect_stores))
            .route(
                &format!("{MOCK_ROUTES}/stores/{{id}}/customers"),
                get(inspect_customers),
            )
            .route(&format!("{MOCK_ROUTES}/calls"), get(inspect_calls))
            .route(&format!("{MOCK_ROUTES}/crm"), get(inspect_crm))
            .route(
                &format!("{MOCK_ROUTES}/stores/{{id}}/customers/{{customer}}/edit"),
                post(webhook::edit_customer),
            )
            .layer(DefaultBodyLimit::max(64 << 20))
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` completes.
    ///
    /// Fails when the listener fails.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

pub(super) async fn into_response(handled: Handled) -> Response {
    if handled.drop {
        // Headers go out, then the body fails: hyper closes the connection mid-answer.
        let broken = futures_util::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::other("fault: drop"))
        });
        return Response::new(Body::from_stream(broken));
    }
    if let Some(hold) = handled.hold {
        tokio::time::sleep(hold).await;
    }
    let status = StatusCode::from_u16(handled.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, handled.content_type)],
        handled.body,
    )
        .into_response();
    if let Some(secs) = handled.retry_after {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            secs.to_string().parse().expect("digits"),
        );
    }
    response
}
