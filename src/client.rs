//! The HTTP client for the Rider Rewards API (reqwest and rustls): one method per endpoint, each one
//! POST whose answer `api::interpret` sorts into a success or a typed [`CallError`].
//!
//! It sends what `wire` describes and nothing else; it never retries (the driver decides that) and
//! never logs a secret: keys are set as sensitive header values straight from their [`SecretString`].

use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use tracing::debug;

use crate::api::{Answer, Api, CallError, TransportKind, interpret, parse_retry_after};
use crate::config::{ApiSettings, is_loopback};
use crate::wire::{
    self, BeginResults, BeginSummary, BeginTransactionRequest, DealerListResponse, EndResults,
    EndSummary, EndTransactionRequest, Endpoint, ReadyFeedRequest, ReadyFeedResults, UploadResults,
    header,
};

/// An HTTP client for `base`: https only unless `base` is loopback, certificates verified, `ca_cert`
/// trusted besides the system's roots. Shared by the Rider Rewards and CRM.COM clients.
///
/// Fails when the CA file cannot be read or holds no certificate, or the TLS stack cannot start.
pub fn http_client(
    base: &Url,
    timeout: Duration,
    connect_timeout: Duration,
    ca_cert: Option<&std::path::Path>,
) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .user_agent(concat!("rrfeed/", env!("CARGO_PKG_VERSION")))
        .https_only(!is_loopback(base));
    // HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY apply, except to a server on this machine
    // (a local mock), which a proxy elsewhere could not reach.
    if is_loopback(base) {
        builder = builder.no_proxy();
    }
    if let Some(path) = ca_cert {
        let ca_err = |detail: String| ClientError::CaCert {
            path: path.display().to_string(),
            detail,
        };
        let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_err(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_err("no PEM certificate found".into()));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| ClientError::Build(error_chain(&e)))
}

/// A store's identity and key, the three headers every feed call carries besides the partner key.
#[derive(Clone, Debug)]
pub struct StoreCredentials {
    pub store_id: String,
    pub store_key: SecretString,
}

/// The Rider Rewards API for one partner and, for feed calls, one store.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    partner_key: SecretString,
    admin_password: Option<SecretString>,
    store: Option<StoreCredentials>,
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read the CA certificate {path}: {detail}")]
    CaCert { path: String, detail: String },
    #[error("cannot set up HTTPS: {0}")]
    Build(String),
}

impl Client {
    /// Builds a client. Fails when `--ca-cert` cannot be read or the TLS stack cannot start.
    pub fn new(api: &ApiSettings, store: Option<StoreCredentials>) -> Result<Self, ClientError> {
        let http = http_client(
            &api.base_url,
            api.timeout,
            api.connect_timeout,
            api.ca_cert.as_deref(),
        )?;
        Ok(Self {
            http,
            base: api.base_url.as_str().trim_end_matches('/').to_owned(),
            partner_key: api.partner_key.clone(),
            admin_password: api.admin_password.clone(),
            store,
        })
    }

    fn url(&self, endpoint: Endpoint) -> String {
        format!("{}{}", self.base, endpoint.path())
    }

    /// The partner key plus, where a store is set, the store's id and key.
    fn feed_headers(&self, transactionid: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(id) = transactionid {
            put(&mut headers, header::TRANSACTION_ID, id, false);
        }
        put(
            &mut headers,
            header::PARTNER_API_KEY,
            self.partner_key.expose_secret(),
            true,
        );
        if let Some(store) = &self.store {
            put(
                &mut headers,
                header::STORE_API_KEY,
                store.store_key.expose_secret(),
                true,
            );
            put(&mut headers, header::STORE_ID, &store.store_id, false);
        }
        headers
    }

    /// POSTs `body` and returns the status and the answer's bytes.
    async fn post(
        &self,
        endpoint: Endpoint,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer, CallError> {
        debug!(endpoint = %endpoint, bytes = body.len(), "POST");
        let response = self
            .http
            .post(self.url(endpoint))
            .headers(headers)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| transport_error(endpoint, &e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(endpoint, &e))?;
        debug!(endpoint = %endpoint, status = status.as_u16(), bytes = bytes.len(), "answer");
        Ok(Answer {
            status: status.as_u16(),
            retry_after,
            body: bytes,
        })
    }

    async fn call<T: for<'de> serde::Deserialize<'de>>(
        &self,
        endpoint: Endpoint,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<T, CallError> {
        let answer = self.post(endpoint, headers, body).await?;
        interpret(endpoint, &answer, wire::parse_reply)
    }

    /// `getmydealerlist`: the partner's stores, optionally only the one with `partner_store_id`.
    pub async fn dealer_list(
        &self,
        partner_store_id: Option<&str>,
    ) -> Result<DealerListResponse, CallError> {
        let mut headers = HeaderMap::new();
        put(
            &mut headers,
            header::PARTNER_API_KEY,
            self.partner_key.expose_secret(),
            true,
        );
        if let Some(password) = &self.admin_password {
            put(
                &mut headers,
                header::ADMIN_PASSWORD,
                password.expose_secret(),
                true,
            );
        }
        if let Some(id) = partner_store_id {
            put(&mut headers, header::PARTNER_STORE_ID, id, false);
        }
        let endpoint = Endpoint::DealerList;
        let answer = self
            .post(endpoint, headers, Bytes::from_static(b"{}"))
            .await?;
        interpret(endpoint, &answer, wire::parse_dealer_list)
    }
}

impl Api for Client {
    async fn ready_feed(&self) -> Result<ReadyFeedResults, CallError> {
        let body = json_bytes(&ReadyFeedRequest {
            feedtype: wire::FEED_CUSTOMERS.into(),
        });
        self.call(Endpoint::ReadyFeed, self.feed_headers(None), body)
            .await
    }

    async fn begin(&self, summary: &BeginSummary) -> Result<BeginResults, CallError> {
        let body = json_bytes(&BeginTransactionRequest {
            transactionsummary: summary.clone(),
        });
        self.call(Endpoint::BeginTransaction, self.feed_headers(None), body)
            .await
    }

    async fn upload(&self, transactionid: &str, body: Bytes) -> Result<UploadResults, CallError> {
        let headers = self.feed_headers(Some(transactionid));
        self.call(Endpoint::UploadCustomers, headers, body).await
    }

    async fn end(&self, summary: &EndSummary) -> Result<EndResults, CallError> {
        let headers = self.feed_headers(Some(&summary.transactionid));
        let body = json_bytes(&EndTransactionRequest {
            transactionsummary: summary.clone(),
        });
        self.call(Endpoint::EndTransaction, headers, body).await
    }
}

fn json_bytes(value: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("request bodies always serialize"))
}

fn put(headers: &mut HeaderMap, name: &'static str, value: &str, secret: bool) {
    // Header values with control characters cannot be sent; such a value is sent empty, and the server's
    // "Authentication failed" then names the problem without echoing the value anywhere.
    let mut value = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    value.set_sensitive(secret);
    // HTTP header names are case-insensitive; `HeaderName` holds them lowercase.
    let name =
        HeaderName::from_bytes(name.as_bytes()).expect("the vendor's header names are valid");
    headers.insert(name, value);
}

fn transport_error(endpoint: Endpoint, e: &reqwest::Error) -> CallError {
    let detail = error_chain(e);
    if is_tls_problem(&detail) {
        return CallError::Tls { endpoint, detail };
    }
    let kind = if e.is_timeout() {
        TransportKind::Timeout
    } else if e.is_connect() {
        TransportKind::Connect
    } else {
        TransportKind::Broken
    };
    let detail = match e
        .url()
        .and_then(|url| proxy_in_use(url, &crate::config::process_env))
    {
        Some(proxy) if kind == TransportKind::Connect => {
            format!("{detail} (through the proxy {proxy})")
        }
        _ => detail,
    };
    CallError::Transport {
        endpoint,
        kind,
        detail,
    }
}

/// The proxy the environment sends a request for `url` through, as "URL from VARIABLE" with any
/// user name and password removed; `None` for a direct connection (no proxy set, the host in
/// `NO_PROXY`, or a loopback host, which never goes through a proxy).
pub fn proxy_in_use(url: &Url, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if is_loopback(url) {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let no_proxy = env("NO_PROXY")
        .or_else(|| env("no_proxy"))
        .unwrap_or_default();
    let bypassed = no_proxy.split(',').map(str::trim).any(|entry| {
        let entry = entry.trim_start_matches('.').to_ascii_lowercase();
        entry == "*"
            || (!entry.is_empty() && (host == entry || host.ends_with(&format!(".{entry}"))))
    });
    if bypassed {
        return None;
    }
    let names: &[&str] = match url.scheme() {
        "https" => &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"],
        _ => &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"],
    };
    names.iter().find_map(|name| {
        let value = env(name)?;
        let shown = match Url::parse(&value) {
            Ok(mut proxy) => {
                let _ = proxy.set_username("");
                let _ = proxy.set_password(None);
                proxy.to_string()
            }
            Err(_) => "(a value that is not a URL)".to_owned(),
        };
        Some(format!("{shown} from {name}"))
    })
}

fn is_tls_problem(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("certificate") || d.contains("tls handshake") || d.contains("invalid peer")
}

/// An error and its causes on one line: reqwest's own message alone rarely names the real problem.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_in_use_is_named_without_its_password() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let api = Url::parse("https://api.riderrewards.com/x").unwrap();
        let through = env(&[("HTTPS_PROXY", "http://user:pw@proxy.corp:3128")]);
        assert_eq!(
            proxy_in_use(&api, &through).as_deref(),
            Some("http://proxy.corp:3128/ from HTTPS_PROXY")
        );
        let bypassed = env(&[
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("NO_PROXY", "localhost,.riderrewards.com"),
        ]);
        assert_eq!(proxy_in_use(&api, &bypassed), None);
        let local = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            proxy_in_use(&local, &env(&[("ALL_PROXY", "http://p:1")])),
            None
        );
        assert_eq!(proxy_in_use(&api, &env(&[])), None);
    }
}
