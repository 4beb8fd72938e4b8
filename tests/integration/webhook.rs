//! `rrfeed webhook serve|export|status` as processes: authentication, limits, refusals, repeats, load,
//! a kill -9 under load, and the whole two-way loop with the mock playing Rider Rewards.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use rrfeed::mock::{MockConfig, WebhookTarget};
use serde_json::{Value, json};

use crate::helpers::{MockServer, csv_rows, rrfeed};

const SECRET: &str = "test-webhook-secret-0123456789";

/// A running `rrfeed webhook serve` on a free port.
struct Receiver {
    child: Child,
    url: String,
}

impl Receiver {
    fn start(state: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
            .args(["webhook", "serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_clear()
            .env("RRFEED_WEBHOOK_SECRET", SECRET)
            .env("RRFEED_STATE_DIR", state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let url = first
            .strip_prefix("rrfeed webhook listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        Self { child, url }
    }

    /// `HOST:PORT`, for raw TCP clients.
    fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned()
    }

    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// A receiver on a state dir of its own, and the URL with the secret in its path.
fn fresh_receiver() -> (tempfile::TempDir, Receiver, String) {
    let state = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(state.path(), &[]);
    let url = format!("{}/{SECRET}", receiver.url);
    (state, receiver, url)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// POSTs `body` with a content type and an optional Bearer secret; returns (status, body as JSON).
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
    content_type: &str,
    bearer: Option<&str>,
) -> (u16, Value) {
    let mut request = client
        .post(url)
        .header("Content-Type", content_type)
        .body(body);
    if let Some(secret) = bearer {
        request = request.bearer_auth(secret);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn customer(id: &str, city: &str) -> String {
    json!({"PartnerCustomerID": id, "CustomerCity": city, "CustomerEmail": format!("{id}@Example.com")})
        .to_string()
}

/// `webhook status --json` of a state directory.
fn status(state: &Path) -> Value {
    let output = Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
        .args(["webhook", "status", "--json"])
        .env_clear()
        .env("RRFEED_STATE_DIR", state)
        .output()
        .unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `webhook export --all --format json` of a state directory, parsed.
fn export_all(state: &Path) -> Vec<Value> {
    let out = state.join("all.json");
    let output = Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
        .args(["webhook", "export", "--all", "--format", "json", "--out"])
        .arg(&out)
        .env_clear()
        .env("RRFEED_STATE_DIR", state)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

#[test]
fn only_the_right_secret_in_the_path_or_a_bearer_header_is_accepted() {
    let state = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(state.path(), &[]);
    let url = receiver.url.clone();
    let client = reqwest::Client::new();
    let json = "application/json";
    let answers = runtime().block_on(async {
        let body = || customer("C1", "Oak Creek");
        vec![
            post(&client, &url, body(), json, None).await,
            post(&client, &format!("{url}/wrong-secret"), body(), json, None).await,
            post(&client, &url, body(), json, Some("wrong-secret")).await,
            post(&client, &format!("{url}/{SECRET}"), body(), json, None).await,
            post(
                &client,
                &url,
                customer("C2", "Milwaukee"),
                json,
                Some(SECRET),
            )
            .await,
        ]
    });
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [401, 401, 401, 200, 200]);
    assert_eq!(answers[1].1["results"]["error"], "Authentication failed");
    assert_eq!(answers[3].1["results"]["message"], "Success");
    assert_eq!(answers[3].1["results"]["stored"], 1);
    assert_eq!(status(state.path())["updates"], 2);
}

#[test]
fn oversize_malformed_invalid_and_non_json_requests_are_refused_with_the_reason() {
    let (state, _receiver, url) = fresh_receiver();
    let client = reqwest::Client::new();
    let json = "application/json";
    let big = format!(
        r#"{{"PartnerCustomerID":"1","CustomerAddress":"{}"}}"#,
        "x".repeat(300 * 1024)
    );
    let many_rows = json!({"rows": (0..1001).map(|i| json!({"PartnerCustomerID": i.to_string()})).collect::<Vec<_>>()});
    let answers = runtime().block_on(async {
        vec![
            post(&client, &url, big, json, None).await,
            post(&client, &url, many_rows.to_string(), json, None).await,
            post(&client, &url, "{not json", json, None).await,
            post(
                &client,
                &url,
                r#"{"PartnerCustomerID":"1","CustomerEmail":"n/a"}"#,
                json,
                None,
            )
            .await,
            post(
                &client,
                &url,
                customer("1", "Oak Creek"),
                "text/plain",
                None,
            )
            .await,
        ]
    });
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [413, 413, 400, 400, 415]);
    let error = |i: usize| {
        answers[i].1["results"]["error"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        error(0).contains("larger than 262144 bytes"),
        "{}",
        error(0)
    );
    assert!(
        error(1).contains("1001 in one request, at most 1000"),
        "{}",
        error(1)
    );
    assert!(error(2).starts_with("malformed payload"), "{}", error(2));
    assert!(
        error(3).contains("CustomerEmail \"n/a\" is not an email address"),
        "{}",
        error(3)
    );
    assert_eq!(status(state.path())["updates"], 0);
}

#[test]
fn a_repeated_update_is_stored_once() {
    let (state, _receiver, url) = fresh_receiver();
    let client = reqwest::Client::new();
    let answers = runtime().block_on(async {
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(
                post(
                    &client,
                    &url,
                    customer("C1", "Oak Creek"),
                    "application/json",
                    None,
                )
                .await,
            );
        }
        answers
    });
    assert!(answers.iter().all(|(s, _)| *s == 200));
    assert_eq!(answers[2].1["results"]["repeats"], 1);
    assert_eq!(answers[2].1["results"]["sequence"], json!([1]));
    assert_eq!(status(state.path())["updates"], 1);
}

/// Sends `count` updates of distinct customers, `concurrency` at a time; returns the ids acknowledged
/// with 200 and how many requests failed (refused or cut off).
/// Where the load sends: the test may point it at a restarted receiver while it runs.
type Target = Arc<std::sync::RwLock<String>>;

/// Sends `count` updates over `concurrency` connections; returns the acknowledged ids and the failures.
/// Every request has a timeout, so a receiver that never answers fails a request instead of the test
/// waiting forever.
async fn load(target: Target, count: usize, concurrency: usize) -> (BTreeSet<String>, usize) {
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, next, target) = (client.clone(), next.clone(), target.clone());
            tokio::spawn(async move {
                let (mut acked, mut failed) = (BTreeSet::new(), 0);
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= count {
                        return (acked, failed);
                    }
                    let id = format!("L{i:05}");
                    let url = target.read().unwrap().clone();
                    let sent = client
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .body(customer(&id, "Load City"))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 200 => {
                            acked.insert(id);
                        }
                        Ok(_) => failed += 1,
                        Err(_) => {
                            // Nobody listening: pause so the ids are not all spent before a restart.
                            failed += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        }
                    }
                }
            })
        })
        .collect();
    let (mut acked, mut failed) = (BTreeSet::new(), 0);
    for worker in workers {
        let (a, f) = worker.await.unwrap();
        acked.extend(a);
        failed += f;
    }
    (acked, failed)
}

fn target(url: String) -> Target {
    Arc::new(std::sync::RwLock::new(url))
}

/// Waits until the receiver has stored `n` updates, or fails the test after a minute.
fn wait_for_stored(state: &Path, n: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let stored = status(state)["updates"].as_i64().unwrap();
        if stored >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {stored} of {n} updates stored after a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn ids_in_outbox(state: &Path) -> BTreeSet<String> {
    export_all(state)
        .iter()
        .map(|row| {
            row["customer"]["PartnerCustomerID"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn two_thousand_updates_at_concurrency_32_are_each_stored_exactly_once() {
    let (state, _receiver, url) = fresh_receiver();
    let (acked, failed) = runtime().block_on(load(target(url), 2000, 32));
    eprintln!(
        "load: 2000 sent, {} acknowledged, {failed} failed",
        acked.len()
    );
    assert_eq!((acked.len(), failed), (2000, 0));
    let counts = status(state.path());
    assert_eq!(counts["updates"], 2000);
    assert_eq!(counts["pending_customers"], 2000);
    assert_eq!(ids_in_outbox(state.path()), acked);
}

#[test]
fn every_acknowledged_update_survives_a_kill_9_under_load() {
    let state = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::start(state.path(), &[]);
    let url = format!("{}/{SECRET}", receiver.url);
    let rt = runtime();
    let sending = rt.spawn(load(target(url), 20_000, 32));
    // Kill it while requests are in flight.
    wait_for_stored(state.path(), 500);
    receiver.kill_9();
    let (acked, failed) = rt.block_on(sending).unwrap();
    // Restarting opens the outbox as a new run of the receiver would.
    let restarted = Receiver::start(state.path(), &[]);
    let stored = ids_in_outbox(state.path());
    drop(restarted);
    eprintln!(
        "kill -9 under load: {} sent, {} acknowledged, {failed} failed or cut off, {} in the outbox",
        acked.len() + failed,
        acked.len(),
        stored.len()
    );
    // 500 were stored before the kill; the answers still in flight then die with the connections (a
    // reset drops what a busy client had not read yet), so fewer may count as acknowledged.
    assert!(acked.len() >= 100, "{} acknowledged", acked.len());
    assert!(failed > 0, "the kill should have cut requests off");
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but not in the outbox: {lost:?}"
    );
}

#[test]
fn a_customer_edit_at_rider_rewards_reaches_the_dealer_export() {
    let state = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(state.path(), &[]);
    let server = MockServer::start_with(MockConfig {
        webhook: Some(WebhookTarget {
            url: receiver.url.parse().unwrap(),
            secret: Some(SECRET.to_owned().into()),
        }),
        ..MockConfig::demo()
    });
    // The nightly upload puts the dealer's customers at Rider Rewards.
    let file = csv_rows(5);
    let uploaded = rrfeed(&server, state.path())
        .args(["upload"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(uploaded.status.code(), Some(0));
    // A customer edits their profile on the rewards website; Rider Rewards posts it to the webhook.
    let edit = runtime().block_on(post(
        &reqwest::Client::new(),
        &format!("{}/_mock/stores/1001/customers/C000003/edit", server.url),
        json!({"CustomerCity": "Milwaukee", "CustomerEmail": "New.Address@Example.com"})
            .to_string(),
        "application/json",
        None,
    ));
    assert_eq!(edit.0, 200, "{}", edit.1);
    assert_eq!(edit.1["webhook"]["status"], 200);
    // The dealer system's import picks it up.
    let out = state.path().join("updates.csv");
    let exported = Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
        .args(["webhook", "export", "--format", "csv", "--out"])
        .arg(&out)
        .env_clear()
        .env("RRFEED_STATE_DIR", state.path())
        .output()
        .unwrap();
    assert!(exported.status.success(), "{exported:?}");
    let mut csv = csv::Reader::from_path(&out).unwrap();
    let headers = csv.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    let get = |name: &str| rows[0][headers.iter().position(|h| h == name).unwrap()].to_owned();
    assert_eq!(get("PartnerCustomerID"), "C000003");
    assert_eq!(get("CustomerCity"), "Milwaukee");
    assert_eq!(get("CustomerEmail"), "new.address@example.com");
    assert_eq!(get("CustomerFirstName"), "First3");
    assert_eq!(status(state.path())["pending"], 0);
}

#[test]
fn a_client_too_slow_to_send_its_body_gets_408_and_the_secret_is_never_logged() {
    use std::io::{Read, Write};
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("receiver.log");
    let log_arg = log.to_str().unwrap();
    let receiver = Receiver::start(
        state.path(),
        &[
            "--request-timeout",
            "500ms",
            "--log-level",
            "trace",
            "--log-file",
            log_arg,
        ],
    );
    let addr = receiver.addr();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    // Headers promise 100 bytes; only 10 come.
    write!(
        stream,
        "POST /customer-updates/{SECRET} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\nConnection: close\r\n\r\n{{\"Partner"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");
    // A good request and a wrong one are logged without the secret.
    let url = receiver.url.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let ok = post(
            &client,
            &format!("{url}/{SECRET}"),
            customer("C1", "X"),
            "application/json",
            None,
        )
        .await;
        assert_eq!(ok.0, 200);
        let bad = post(
            &client,
            &url,
            customer("C1", "X"),
            "application/json",
            Some("not-it"),
        )
        .await;
        assert_eq!(bad.0, 401);
    });
    drop(receiver);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("stored customer updates"), "{logged}");
    assert!(!logged.contains(SECRET), "the secret was logged:\n{logged}");
}

#[test]
fn sigterm_lets_a_request_being_received_finish_then_exits_0() {
    use std::io::{Read, Write};
    let state = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::start(state.path(), &[]);
    let addr = receiver.addr();
    let body = customer("C9", "Oak Creek");
    let (first, rest) = body.split_at(10);
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /customer-updates/{SECRET} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    // A second request served proves the first connection, made before it, was accepted too.
    let (served, _) = runtime().block_on(post(
        &reqwest::Client::new(),
        &format!("{}/{SECRET}", receiver.url),
        customer("C8", "Racine"),
        "application/json",
        None,
    ));
    assert_eq!(served, 200);
    let pid = receiver.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    // Shutting down, the receiver stops accepting: wait for that instead of a fixed time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "still accepting after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    stream.write_all(rest.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let exit = receiver.child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
    assert_eq!(
        ids_in_outbox(state.path()),
        BTreeSet::from(["C8".to_owned(), "C9".to_owned()])
    );
}

#[test]
fn the_receiver_refuses_to_start_without_a_secret() {
    let state = tempfile::tempdir().unwrap();
    let output = Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
        .args(["webhook", "serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("RRFEED_STATE_DIR", state.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("RRFEED_WEBHOOK_SECRET is not set"),
        "{stderr}"
    );
}

#[test]
fn secrets_never_show_in_output_logs_ledger_or_outbox() {
    const WRONG_KEY: &str = "SK-wrong-8e2f61d0c4";
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("trace.log");
    let log_arg = log.to_str().unwrap().to_owned();
    let trace = ["--log-level", "trace", "--log-file", &log_arg];
    let mut seen: Vec<Vec<u8>> = Vec::new();
    // An upload refused for a wrong store key.
    let server = MockServer::start("");
    let file = csv_rows(3);
    let refused = rrfeed(&server, state.path())
        .env("RRFEED_STORE_API_KEY", WRONG_KEY)
        .args(trace)
        .args(["upload", "--json"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(77));
    seen.extend([refused.stdout, refused.stderr]);
    // The receiver: the secret in the path, in a Bearer header, and a wrong one.
    let receiver = Receiver::start(state.path(), &trace);
    let url = receiver.url.clone();
    let statuses = runtime().block_on(async {
        let client = reqwest::Client::new();
        let json = "application/json";
        vec![
            post(
                &client,
                &format!("{url}/{SECRET}"),
                customer("C1", "A"),
                json,
                None,
            )
            .await
            .0,
            post(&client, &url, customer("C2", "B"), json, Some(SECRET))
                .await
                .0,
            post(
                &client,
                &format!("{url}/{WRONG_KEY}"),
                customer("C3", "C"),
                json,
                None,
            )
            .await
            .0,
        ]
    });
    assert_eq!(statuses, [200, 200, 401]);
    drop(receiver);
    for args in [
        vec!["config", "check"],
        vec!["webhook", "status"],
        vec!["webhook", "export", "--format", "json"],
    ] {
        let output = Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
            .args(trace)
            .args(&args)
            .env_clear()
            .env("RRFEED_WEBHOOK_SECRET", SECRET)
            .env("RRFEED_STATE_DIR", state.path())
            .env("RRFEED_PARTNER_API_KEY", "PK-any")
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        seen.extend([output.stdout, output.stderr]);
    }
    for entry in std::fs::read_dir(state.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            seen.push(std::fs::read(&path).unwrap());
        }
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("TRACE") || logged.contains("DEBUG"),
        "{logged}"
    );
    assert!(seen.len() > 8);
    for (i, bytes) in seen.iter().enumerate() {
        let text = String::from_utf8_lossy(bytes);
        for secret in [SECRET, WRONG_KEY] {
            assert!(!text.contains(secret), "output {i} shows a secret: {text}");
        }
    }
}

#[test]
fn a_client_that_trickles_its_headers_is_cut_off() {
    use std::io::{Read, Write};
    let state = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(state.path(), &["--request-timeout", "500ms"]);
    let addr = receiver.addr();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"POST /customer-updates HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    for _ in 0..4 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        // Each header byte comes late; the whole head never arrives in time.
        let _ = slow.write_all(b"X");
    }
    let mut answer = Vec::new();
    // The socket's own read timeout (10 s) turns a connection kept open into an error here.
    let closed = slow.read_to_end(&mut answer);
    assert!(closed.is_ok(), "the connection was kept open: {closed:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // Meanwhile others are served.
    let ok = runtime().block_on(post(
        &reqwest::Client::new(),
        &format!("{}/{SECRET}", receiver.url),
        customer("C1", "X"),
        "application/json",
        None,
    ));
    assert_eq!(ok.0, 200);
}

#[test]
fn nothing_acknowledged_is_lost_under_load_across_a_kill_and_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::start(state.path(), &[]);
    // The restarted receiver listens on a port of its own (reusing the old one races with every other
    // socket on the machine); the load follows it as a load balancer would.
    let sending_to = target(format!("{}/{SECRET}", receiver.url));
    let rt = runtime();
    let sending = rt.spawn(load(sending_to.clone(), 6_000, 32));
    wait_for_stored(state.path(), 300);
    receiver.kill_9();
    let before = status(state.path())["updates"].as_i64().unwrap();
    let restarted = Receiver::start(state.path(), &[]);
    *sending_to.write().unwrap() = format!("{}/{SECRET}", restarted.url);
    let (acked, failed) = rt.block_on(sending).unwrap();
    let in_outbox = ids_in_outbox(state.path());
    drop(restarted);
    eprintln!(
        "kill -9 and restart under load: 6000 sent, {} acknowledged, {failed} failed, {} in the outbox \
         ({before} before the restart)",
        acked.len(),
        in_outbox.len()
    );
    assert!(
        in_outbox.len() as i64 > before,
        "the restarted receiver stored nothing"
    );
    let lost: Vec<&String> = acked.difference(&in_outbox).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but not in the outbox: {lost:?}"
    );
}
