//! Monitoring a night (docs/monitoring.md): dead-man's-switch pings to a local recorder, the
//! node_exporter metrics file, and `rrfeed status` as a check.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// The token a real check URL holds after its host: it must never be printed.
pub const TOKEN: &str = "7c1d1e5e-ping-token-0badc0ffee";

/// One ping received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// The path after the check's URL, e.g. `/start` or `/0`.
    pub what: String,
    pub rid: Option<String>,
    pub body: String,
}

/// A local stand-in for Healthchecks.io: records every ping and answers with `status`.
pub struct PingServer {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    _runtime: tokio::runtime::Runtime,
}

impl PingServer {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let app = axum::Router::new()
            .fallback(record)
            .with_state((received.clone(), status.clone()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}/ping/{TOKEN}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            received,
            status,
            _runtime: runtime,
        }
    }

    /// A check URL of its own on this server (for a store's `ping_url`).
    pub fn check(&self, name: &str) -> String {
        format!("{}-{name}", self.url)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// (method, what) of every ping to `check`, in order.
    pub fn calls(&self, check: &str) -> Vec<(String, String)> {
        let path = check.split_once("/ping/").unwrap().1;
        self.received()
            .into_iter()
            .filter_map(|r| {
                let rest = r.what.strip_prefix(&format!("/ping/{path}"))?;
                (rest.is_empty() || rest.starts_with('/')).then(|| (r.method, rest.to_owned()))
            })
            .collect()
    }
}

type Shared = (Arc<Mutex<Vec<Received>>>, Arc<AtomicU16>);

async fn record(State((received, status)): State<Shared>, request: Request) -> StatusCode {
    let method = request.method().to_string();
    let what = request.uri().path().to_owned();
    let rid = request.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|p| p.strip_prefix("rid="))
            .map(str::to_owned)
    });
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap();
    received.lock().unwrap().push(Received {
        method,
        what,
        rid,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap()
}

/// `upload FILE --json` of the environment's store with `RRFEED_PING_URL` set.
fn upload_pinging(
    server: &MockServer,
    ping: &str,
    state: &Path,
    file: &Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    rrfeed(server, state)
        .env("RRFEED_PING_URL", ping)
        .envs(env.iter().copied())
        .args([
            "upload",
            "--json",
            "--retry-delay",
            "10ms",
            "--timeout",
            "2s",
        ])
        .arg(file)
        .output()
        .unwrap()
}

/// The start and the end ping of one run: same run id, the end's path is the exit code.
fn assert_one_run_pinged(pings: &PingServer, code: i32) -> Received {
    let got = pings.received();
    assert_eq!(got.len(), 2, "{got:?}");
    let (start, end) = (&got[0], &got[1]);
    assert_eq!(
        (start.method.as_str(), start.what.as_str()),
        ("GET", format!("/ping/{TOKEN}/start").as_str())
    );
    assert_eq!(
        (end.method.as_str(), end.what.clone()),
        ("POST", format!("/ping/{TOKEN}/{code}"))
    );
    assert!(start.rid.is_some() && start.rid == end.rid, "{got:?}");
    end.clone()
}

#[test]
fn a_run_pings_its_start_and_its_exit_code_with_one_run_id() {
    let server = MockServer::start("");
    let file = csv_rows(3);

    let pings = PingServer::start();
    let state = tempfile::tempdir().unwrap();
    let ok = upload_pinging(&server, &pings.url, state.path(), file.path(), &[]);
    assert_eq!(ok.status.code(), Some(0));
    let end = assert_one_run_pinged(&pings, 0);
    assert!(
        end.body.contains("to store 1001") && end.body.contains("rows: 3"),
        "{}",
        end.body
    );

    // Refused: an empty export (65).
    let pings = PingServer::start();
    let empty = file_with(b"Customer ID,Email\n", ".csv");
    let refused = upload_pinging(&server, &pings.url, state.path(), empty.path(), &[]);
    assert_eq!(refused.status.code(), Some(65));
    let end = assert_one_run_pinged(&pings, 65);
    assert!(end.body.contains("error:"), "{}", end.body);

    // A wrong store key (77).
    let pings = PingServer::start();
    let denied = upload_pinging(
        &server,
        &pings.url,
        state.path(),
        file.path(),
        &[("RRFEED_STORE_API_KEY", "wrong-key")],
    );
    assert_eq!(denied.status.code(), Some(77));
    assert_one_run_pinged(&pings, 77);

    // --no-ping: nothing.
    let pings = PingServer::start();
    let quiet = rrfeed(&server, state.path())
        .env("RRFEED_PING_URL", &pings.url)
        .args(["upload", "--no-ping"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(quiet.status.code(), Some(0));
    assert!(pings.received().is_empty(), "{:?}", pings.received());
}

#[test]
fn a_run_stopped_by_sigterm_pings_143() {
    let server = MockServer::start("upload#2:delay=1500ms");
    let pings = PingServer::start();
    let state = tempfile::tempdir().unwrap();
    let file = csv_rows(3000);
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
        .env_clear()
        .env("RRFEED_API_URL", &server.url)
        .env("RRFEED_PARTNER_API_KEY", PARTNER_KEY)
        .env("RRFEED_STORE_ID", STORE_ID)
        .env("RRFEED_STORE_API_KEY", STORE_KEY)
        .env("RRFEED_STATE_DIR", state.path())
        .env("RRFEED_PING_URL", &pings.url)
        .args(["upload", "--json"])
        .arg(file.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_requests(&server, "/uploadcustomerprofile", 2);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(143));
    let end = assert_one_run_pinged(&pings, 143);
    assert!(end.body.contains("INTERRUPTED (exit 143)"), "{}", end.body);
}

#[test]
fn a_ping_endpoint_that_fails_or_is_down_costs_one_warning_and_never_the_upload() {
    let server = MockServer::start("");
    let file = csv_rows(3);
    let state = tempfile::tempdir().unwrap();

    let failing = PingServer::start();
    failing.status.store(500, Ordering::SeqCst);
    let log = state.path().join("night.log");
    let output = rrfeed(&server, state.path())
        .env("RRFEED_PING_URL", &failing.url)
        .args(["upload", "--json", "--log-file"])
        .arg(&log)
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The first attempt and 3 retries, for the start and for the end.
    let starts = failing
        .received()
        .iter()
        .filter(|r| r.what.ends_with("/start"))
        .count();
    assert_eq!(starts, 4, "{:?}", failing.received());
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("ping"))
        .collect();
    assert_eq!(
        warnings.len(),
        2,
        "one for the start, one for the end: {stderr}"
    );
    assert!(warnings[0].contains("127.0.0.1"), "{stderr}");
    let everything = format!(
        "{stderr}{}{}",
        String::from_utf8_lossy(&output.stdout),
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(
        !everything.contains(TOKEN),
        "the token was printed: {everything}"
    );

    // Nobody listening at all.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("http://127.0.0.1:{port}/ping/{TOKEN}");
    let output = upload_pinging(&server, &down, state.path(), file.path(), &[]);
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ping"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}

/// A night of three stores; `south` has a ping URL of its own, `east` an export that is refused.
fn night_with_pings(pings: &PingServer, metrics: &Path) -> (Night, Vec<tempfile::NamedTempFile>) {
    let north = csv_rows(5);
    let south = csv_rows(7);
    let east = file_with(b"Customer ID,Email\n", ".csv");
    let night = Night::new([north.path(), south.path(), east.path()]);
    let config = night.dir.path().join("rrfeed.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "name = \"south\"\n",
        &format!(
            "name = \"south\"\nping_url = \"{}\"\n",
            pings.check("south")
        ),
    );
    let text = format!(
        "{text}[monitor]\nping_url = {{ env = \"NIGHT_PING\" }}\nmetrics_file = \"{}\"\n",
        metrics.display()
    );
    std::fs::write(&config, text).unwrap();
    (night, vec![north, south, east])
}

#[test]
fn a_night_pings_once_as_a_whole_and_a_store_with_its_own_check_pings_too() {
    let server = MockServer::start_with(rrfeed::mock::MockConfig::demo_stores(3));
    let pings = PingServer::start();
    let metrics_dir = tempfile::tempdir().unwrap();
    let (night, _exports) = night_with_pings(&pings, &metrics_dir.path().join("rrfeed.prom"));
    let output = night
        .command(&server)
        .env("NIGHT_PING", &pings.url)
        .args(["upload", "--all-stores", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(65),
        "the refused store is the worst"
    );
    assert_eq!(
        pings.calls(&pings.url),
        [
            ("GET".into(), "/start".into()),
            ("POST".into(), "/65".into())
        ]
    );
    let night_end = pings
        .received()
        .into_iter()
        .find(|r| r.what.ends_with(&format!("{TOKEN}/65")))
        .unwrap();
    for store in ["north", "south", "east"] {
        assert!(night_end.body.contains(store), "{}", night_end.body);
    }
    assert_eq!(
        pings.calls(&pings.check("south")),
        [
            ("GET".into(), "/start".into()),
            ("POST".into(), "/0".into())
        ]
    );
}

/// The families of a metrics file, parsed as Prometheus does.
fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The value of `name` for `store`.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, store: &str) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && s.labels.get("store") == Some(store))
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[test]
fn the_metrics_file_holds_every_store_after_a_partial_night_and_is_never_half_written() {
    let server = MockServer::start_with(rrfeed::mock::MockConfig::demo_stores(3));
    let pings = PingServer::start();
    let metrics_dir = tempfile::tempdir().unwrap();
    let metrics = metrics_dir.path().join("rrfeed.prom");
    let (night, _exports) = night_with_pings(&pings, &metrics);
    let first = night
        .command(&server)
        .args(["upload", "--all-stores", "--no-ping"])
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(65));
    let text = std::fs::read_to_string(&metrics).unwrap();
    let scrape = parse_metrics(&text);
    assert_eq!(
        sample(&scrape, "rrfeed_last_run_exit_code", "north"),
        Some(0.0)
    );
    assert_eq!(
        sample(&scrape, "rrfeed_last_run_exit_code", "east"),
        Some(65.0)
    );
    assert_eq!(sample(&scrape, "rrfeed_last_run_rows", "south"), Some(7.0));
    assert!(sample(&scrape, "rrfeed_last_success_timestamp_seconds", "north").unwrap() > 1.7e9);
    assert_eq!(
        sample(&scrape, "rrfeed_last_success_timestamp_seconds", "east"),
        None
    );
    assert!(text.contains("# TYPE rrfeed_runs_total counter"), "{text}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&metrics).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o644, "node_exporter must be able to read it");

    // A second night of north alone: the others stay in the file. A reader polling it meanwhile always
    // finds a whole file.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, metrics) = (stop.clone(), metrics.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::SeqCst) {
                let text = std::fs::read_to_string(&metrics).unwrap();
                parse_metrics(&text);
                assert!(
                    text.ends_with('\n') && text.contains("store=\"east\""),
                    "{text}"
                );
                reads += 1;
            }
            reads
        })
    };
    for _ in 0..3 {
        let again = night
            .command(&server)
            .args(["upload", "--all-stores", "--jobs", "4", "--no-ping"])
            .output()
            .unwrap();
        assert_eq!(again.status.code(), Some(65));
    }
    stop.store(true, Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0);
    let scrape = parse_metrics(&std::fs::read_to_string(&metrics).unwrap());
    let runs = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "rrfeed_runs_total"
                && s.labels.get("store") == Some("north")
                && s.labels.get("state") == Some("succeeded")
        })
        .unwrap();
    assert!(
        matches!(runs.value, prometheus_parse::Value::Counter(n) if n == 4.0),
        "{runs:?}"
    );
    // North's latest night compared its customers with the night before: none changed.
    let unchanged = scrape.samples.iter().find(|s| {
        s.metric == "rrfeed_last_run_changes"
            && s.labels.get("store") == Some("north")
            && s.labels.get("change") == Some("unchanged")
    });
    assert!(
        matches!(unchanged.map(|s| &s.value), Some(prometheus_parse::Value::Gauge(n)) if *n > 0.0),
        "{unchanged:?}"
    );
}

/// `rrfeed status --json` in `night`'s directory: (exit code, the report).
fn status(night: &Night, server: &MockServer, extra: &[&str]) -> (i32, Value) {
    let output = night
        .command(server)
        .args(["status", "--json"])
        .args(extra)
        .output()
        .unwrap();
    (output.status.code().unwrap(), json_of(&output))
}

#[test]
fn status_is_a_check_that_fails_for_stale_failed_or_never_run_stores() {
    let server = MockServer::start_with(rrfeed::mock::MockConfig::demo_stores(3));
    let north = csv_rows(5);
    let south = csv_rows(6);
    let east = csv_rows(7);
    let night = Night::new([north.path(), south.path(), east.path()]);

    let (code, report) = status(&night, &server, &[]);
    assert_eq!((code, report["ok"].clone()), (3, Value::Bool(false)));
    assert_eq!(report["stores"][0]["problem"], "never ran");

    let ran = night
        .command(&server)
        .args(["upload", "--all-stores"])
        .output()
        .unwrap();
    assert_eq!(ran.status.code(), Some(0));
    let (code, report) = status(&night, &server, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["stores"].as_array().unwrap().len(), 3);

    // North's last success was three days ago: stale past 26h, fine within 4 days.
    let ledger = rusqlite::Connection::open(night.state().join("ledger.sqlite3")).unwrap();
    let three_days_ago =
        (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(72)).to_string();
    ledger
        .execute(
            "UPDATE runs SET started_at = ?1, finished_at = ?1 WHERE store = 'north'",
            [&three_days_ago],
        )
        .unwrap();
    let (code, report) = status(&night, &server, &[]);
    assert_eq!(code, 3);
    let problem = report["stores"][0]["problem"].as_str().unwrap();
    assert!(problem.starts_with("its last success is 72h"), "{problem}");
    assert_eq!(status(&night, &server, &["--max-age", "4d"]).0, 0);

    // South's export is gone: its last run failed (78), whatever its last success.
    std::fs::remove_file(south.path()).unwrap();
    let failed = night
        .command(&server)
        .args(["upload", "--store", "south"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(78));
    let human = night
        .command(&server)
        .args(["status", "--max-age", "4d"])
        .output()
        .unwrap();
    assert_eq!(human.status.code(), Some(3));
    let text = String::from_utf8_lossy(&human.stdout);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("rrfeed status: FAILING")
            && first.contains("south")
            && !first.contains("north"),
        "{text}"
    );
    let _ = std::io::stdout().flush();
}

#[test]
fn the_receiver_pings_while_healthy_and_serves_its_metrics() {
    use std::io::{BufRead, BufReader};
    let pings = PingServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rrfeed.toml"),
        format!("[webhook]\nping_url = \"{}\"\n", pings.url),
    )
    .unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
        .env_clear()
        .env("RRFEED_WEBHOOK_SECRET", "receiver-secret-0123456789")
        .env("RRFEED_STATE_DIR", dir.path().join("state"))
        .current_dir(dir.path())
        .args(["webhook", "serve", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0", "--ping-every", "200ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap();
    let url = url
        .strip_prefix("rrfeed webhook listening on ")
        .unwrap()
        .to_owned();
    let _outbox = lines.next().unwrap().unwrap();
    let metrics = lines.next().unwrap().unwrap();
    let metrics = metrics.strip_prefix("metrics: ").unwrap().to_owned();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let post = |url: String| {
        let request = client
            .post(url)
            .header("Content-Type", "application/json")
            .body(r#"{"PartnerCustomerID": "C1", "CustomerCity": "Oak Creek"}"#);
        rt.block_on(async { request.send().await.unwrap().status().as_u16() })
    };
    assert_eq!(post(format!("{url}/receiver-secret-0123456789")), 200);
    assert_eq!(post(format!("{url}/wrong-secret")), 401);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pings.calls(&pings.url).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            pings.received()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        pings
            .calls(&pings.url)
            .iter()
            .all(|c| *c == ("GET".to_owned(), String::new())),
        "healthy: plain pings only, {:?}",
        pings.received()
    );
    let text = rt.block_on(async {
        client
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let _ = child.kill();
    let _ = child.wait();
    for line in [
        "rrfeed_webhook_requests_total 2",
        "rrfeed_webhook_updates_stored_total 1",
        "rrfeed_webhook_requests_refused_total{reason=\"unauthorized\"} 1",
        "rrfeed_webhook_commit_seconds_count 1",
        "rrfeed_webhook_pending_updates 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
}

#[test]
fn config_check_names_a_wrong_ping_url_by_its_host_only() {
    let server = MockServer::start_with(rrfeed::mock::MockConfig::demo_stores(3));
    let north = csv_rows(2);
    let night = Night::new([north.path(), north.path(), north.path()]);
    let config = night.dir.path().join("rrfeed.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "name = \"east\"\n",
        &format!("name = \"east\"\nping_url = \"http://hc.example.com/{TOKEN}\"\n"),
    );
    std::fs::write(
        &config,
        format!("{text}[monitor]\nping_url = {{ env = \"UNSET_PING\" }}\n"),
    )
    .unwrap();
    let output = night
        .command(&server)
        .args(["config", "check", "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let report = json_of(&output);
    let problems = report["problems"].to_string();
    assert!(problems.contains("UNSET_PING"), "{problems}");
    assert!(
        problems.contains("ping_url") && problems.contains("hc.example.com"),
        "{problems}"
    );
    let everything = format!("{}{}", problems, String::from_utf8_lossy(&output.stderr));
    assert!(!everything.contains(TOKEN), "{everything}");

    // The upload itself goes on, with a warning for each check it cannot ping.
    let night_run = night
        .command(&server)
        .args(["upload", "--store", "east"])
        .output()
        .unwrap();
    assert_eq!(night_run.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&night_run.stderr);
    assert!(stderr.contains("no ping will be sent"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}
