//! The HTTP client for the Rider Rewards API: one method per endpoint, each one POST whose answer is
//! sorted into a success or a typed [`CallError`] that says whether a retry may help.
//!
//! It sends what `protocol.rs` describes and nothing else; it never retries (the driver decides that) and
//! never logs a secret: keys are set as sensitive header values straight from their [`SecretString`].

use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use tracing::debug;

use crate::config::ApiSettings;
use crate::driver::Api;
use crate::protocol::{
    self, BeginResults, BeginSummary, BeginTransactionRequest, DealerListResponse, EndResults,
    EndSummary, EndTransactionRequest, Endpoint, ReadyFeedRequest, ReadyFeedResults, Reply,
    UploadResults, VendorError, WireError, header,
};

/// How a request failed before an answer was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection was made: the server cannot have seen the request.
    Connect,
    /// The answer did not come in time: the server may have processed the request.
    Timeout,
    /// The connection broke while sending or reading: the server may have processed the request.
    Broken,
}

/// Why a call did not succeed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum CallError {
    #[error("{endpoint}: {}: {detail}", transport_text(*kind))]
    Transport {
        endpoint: Endpoint,
        kind: TransportKind,
        detail: String,
    },
    #[error("{endpoint}: TLS failure: {detail}{}", tls_hint(detail))]
    Tls { endpoint: Endpoint, detail: String },
    #[error("{endpoint}: HTTP {status}{}: {body}", retry_after.map(|d| format!(" (Retry-After {}s)", d.as_secs())).unwrap_or_default())]
    Transient {
        endpoint: Endpoint,
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    #[error("{endpoint}: the server answered with the error {error:?} (HTTP {status}){}", vendor_hint(error), error = error.to_string())]
    Vendor {
        endpoint: Endpoint,
        status: u16,
        error: VendorError,
    },
    #[error("{endpoint}: HTTP {status}: {source}")]
    Wire {
        endpoint: Endpoint,
        status: u16,
        source: WireError,
    },
}

fn transport_text(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Connect => "cannot connect",
        TransportKind::Timeout => "no answer in time",
        TransportKind::Broken => "the connection broke",
    }
}

impl CallError {
    /// Connect errors, timeouts, broken connections, HTTP 5xx and 429 (docs/transaction.md, step 5).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CallError::Transport { .. } | CallError::Transient { .. }
        )
    }

    /// Whether the server may have acted on the request although no success was read.
    pub fn may_have_been_processed(&self) -> bool {
        match self {
            CallError::Transport { kind, .. } => *kind != TransportKind::Connect,
            CallError::Transient { status, .. } => *status != 429,
            CallError::Tls { .. } => false,
            CallError::Vendor { .. } | CallError::Wire { .. } => true,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        match self {
            CallError::Transport { endpoint, .. }
            | CallError::Tls { endpoint, .. }
            | CallError::Transient { endpoint, .. }
            | CallError::Vendor { endpoint, .. }
            | CallError::Wire { endpoint, .. } => *endpoint,
        }
    }
}

/// What to check after the vendor's own error.
fn vendor_hint(error: &VendorError) -> &'static str {
    match error {
        VendorError::AuthenticationFailed => {
            ": check the partner API key (RRFEED_PARTNER_API_KEY or partner_api_key) and the store's \
             RRStoreID and RRStoreAPIKey (`rrfeed stores` lists them); if they are right, the server \
             may be comparing header names by case, which HTTP does not allow: rrfeed sends them \
             lowercased, e.g. partnerapikey (README \"Protocol notes\")"
        }
        _ => "",
    }
}

/// What to do about a certificate the client refused.
fn tls_hint(detail: &str) -> &'static str {
    if detail.contains("UnknownIssuer") {
        " (no trusted CA signed the server's certificate; behind a TLS-inspecting proxy, trust its CA \
         with --ca-cert FILE or ca_cert in rrfeed.toml)"
    } else if detail.contains("NotValidForName") {
        " (the certificate is for another host name: check api_url)"
    } else if detail.contains("Expired") {
        " (the server's certificate has expired)"
    } else {
        ""
    }
}

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
        interpret(endpoint, &answer, protocol::parse_reply)
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
        interpret(endpoint, &answer, protocol::parse_dealer_list)
    }
}

impl Api for Client {
    async fn ready_feed(&self) -> Result<ReadyFeedResults, CallError> {
        let body = json_bytes(&ReadyFeedRequest {
            feedtype: protocol::FEED_CUSTOMERS.into(),
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

/// An answer as read off the wire, before interpretation.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

/// Sorts an answer into a success or a [`CallError`]: 5xx and 429 are transient whatever the body;
/// otherwise a `results.error` is a vendor failure whatever the status (docs/protocol.md).
pub fn interpret<T>(
    endpoint: Endpoint,
    answer: &Answer,
    parse: fn(&[u8]) -> Result<Reply<T>, WireError>,
) -> Result<T, CallError> {
    let status = answer.status;
    if (500..600).contains(&status) || status == 429 {
        return Err(CallError::Transient {
            endpoint,
            status,
            retry_after: answer.retry_after,
            body: protocol::snippet(&answer.body),
        });
    }
    match parse(&answer.body) {
        Ok(Reply::Success(results)) if (200..300).contains(&status) => Ok(results),
        Ok(Reply::Success(_)) => Err(CallError::Wire {
            endpoint,
            status,
            source: WireError::NotSuccess {
                message: format!("a success body with HTTP status {status}"),
            },
        }),
        Ok(Reply::Failure(error)) => Err(CallError::Vendor {
            endpoint,
            status,
            error,
        }),
        Err(source) => Err(CallError::Wire {
            endpoint,
            status,
            source,
        }),
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
    headers.insert(HeaderName::from_static(lowercase(name)), value);
}

/// Header names are compared without case; `HeaderName::from_static` wants them lowercase.
fn lowercase(name: &'static str) -> &'static str {
    match name {
        header::PARTNER_API_KEY => "partnerapikey",
        header::STORE_API_KEY => "rrstoreapikey",
        header::STORE_ID => "rrstoreid",
        header::TRANSACTION_ID => "transactionid",
        header::ADMIN_PASSWORD => "partnerapiadminpassword",
        header::PARTNER_STORE_ID => "partnerstoreid",
        other => panic!("unknown header {other}"),
    }
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

/// `Retry-After` in seconds or as an HTTP date (README "Running it for real").
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Whether a URL's host is loopback: the only hosts `http://` is allowed for (README "Running it for real").
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let past = httpdate::fmt_http_date(std::time::SystemTime::UNIX_EPOCH);
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let d = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn only_loopback_hosts_count_as_loopback() {
        for (url, want) in [
            ("http://localhost:8080", true),
            ("http://127.0.0.5/", true),
            ("http://[::1]:9/", true),
            ("http://10.0.0.1/", false),
            ("http://localhost.example.com/", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(url).unwrap()), want, "{url}");
        }
    }

    #[test]
    fn transient_errors_say_whether_the_server_may_have_acted() {
        let t = |kind| CallError::Transport {
            endpoint: Endpoint::UploadCustomers,
            kind,
            detail: String::new(),
        };
        assert!(!t(TransportKind::Connect).may_have_been_processed());
        assert!(t(TransportKind::Timeout).may_have_been_processed());
        let status = |status| CallError::Transient {
            endpoint: Endpoint::UploadCustomers,
            status,
            retry_after: None,
            body: String::new(),
        };
        assert!(!status(429).may_have_been_processed());
        assert!(status(502).may_have_been_processed());
        assert!(status(503).is_transient());
    }

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
