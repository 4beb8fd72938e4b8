//! TLS (README "Running it for real"): certificates are verified; a server whose certificate no trusted CA signed is refused
//! with exit 69 and a message naming the certificate problem, before any request is sent; `--ca-cert`
//! (or `ca_cert` in the config file) adds a CA for partners behind TLS-inspecting proxies.

use std::sync::Arc;

use rrfeed::mock::{Mock, MockConfig};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::helpers::{PARTNER_KEY, STORE_ID, STORE_KEY, csv_rows};

/// The mock served over TLS with a certificate for `localhost` signed by a throwaway CA.
struct TlsMock {
    url: String,
    mock: Mock,
    ca_pem: String,
    _runtime: tokio::runtime::Runtime,
}

impl TlsMock {
    fn start() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rrfeed test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mock = Mock::new(MockConfig::demo());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!(
            "https://localhost:{}",
            listener.local_addr().unwrap().port()
        );
        runtime.spawn(serve_tls(
            listener,
            TlsAcceptor::from(Arc::new(config)),
            mock.clone(),
        ));
        Self {
            url,
            mock,
            ca_pem: ca.pem(),
            _runtime: runtime,
        }
    }

    fn upload(&self, extra: &[&str], state: &std::path::Path) -> std::process::Output {
        let file = csv_rows(3);
        assert_cmd::Command::cargo_bin("rrfeed")
            .unwrap()
            .env_clear()
            .env("RRFEED_API_URL", &self.url)
            .env("RRFEED_PARTNER_API_KEY", PARTNER_KEY)
            .env("RRFEED_STORE_ID", STORE_ID)
            .env("RRFEED_STORE_API_KEY", STORE_KEY)
            .env("RRFEED_STATE_DIR", state)
            .args(["upload", "--json", "--retry-delay", "10ms"])
            .args(extra)
            .arg(file.path())
            .output()
            .unwrap()
    }
}

async fn serve_tls(listener: tokio::net::TcpListener, acceptor: TlsAcceptor, mock: Mock) {
    let router = mock.router();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            // A client that refuses the certificate ends the handshake: nothing to serve.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request| {
                tower::ServiceExt::oneshot(router.clone(), request)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}

#[test]
fn a_certificate_from_an_unknown_ca_is_refused_before_any_request() {
    let server = TlsMock::start();
    let state = tempfile::tempdir().unwrap();
    let output = server.upload(&[], state.path());
    assert_eq!(output.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TLS failure"), "{stderr}");
    assert!(
        stderr.contains("invalid peer certificate: UnknownIssuer"),
        "{stderr}"
    );
    assert!(stderr.contains("--ca-cert"), "{stderr}");
    assert!(server.mock.calls().is_empty(), "a request got through");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["exit_code"], 69);
}

#[test]
fn ca_cert_trusts_the_ca_of_a_tls_inspecting_proxy() {
    let server = TlsMock::start();
    let state = tempfile::tempdir().unwrap();
    let ca = state.path().join("proxy-ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let output = server.upload(&["--ca-cert", ca.to_str().unwrap()], state.path());
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(server.mock.customer_count(STORE_ID), 3);

    // The same from the config file.
    let config = state.path().join("rrfeed.toml");
    std::fs::write(&config, format!("ca_cert = {:?}\n", ca.to_str().unwrap())).unwrap();
    let output = server.upload(&["--config", config.to_str().unwrap()], state.path());
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn a_ca_cert_file_that_is_not_a_certificate_is_a_configuration_error() {
    let server = TlsMock::start();
    let state = tempfile::tempdir().unwrap();
    let ca = state.path().join("not-a-cert.pem");
    std::fs::write(&ca, "hello").unwrap();
    let output = server.upload(&["--ca-cert", ca.to_str().unwrap()], state.path());
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not-a-cert.pem"), "{stderr}");
}
