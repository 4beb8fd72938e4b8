//! Shared helpers: start the mock on a free port, run the binary against it, read its JSON summary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use assert_cmd::Command;
use rrfeed::mock::faults::FaultPlan;
use rrfeed::mock::{CallRecord, Mock, MockConfig};
use serde_json::Value;

/// The demo credentials the mock accepts.
pub const PARTNER_KEY: &str = "demo-partner-key";
pub const STORE_ID: &str = "1001";
pub const STORE_KEY: &str = "demo-store-key";

/// A raw request the mock received: path, header names as sent, and the body.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A mock running on its own runtime for the length of a test.
pub struct MockServer {
    pub url: String,
    pub mock: Mock,
    pub requests: Arc<Mutex<Vec<RawRequest>>>,
    _runtime: tokio::runtime::Runtime,
}

impl MockServer {
    pub fn start(faults: &str) -> Self {
        Self::start_with(MockConfig {
            faults: FaultPlan::parse(faults).expect("a valid fault spec"),
            ..MockConfig::demo()
        })
    }

    pub fn start_with(config: MockConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mock = Mock::new(config);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let app = mock.router().layer(axum::middleware::from_fn_with_state(
            requests.clone(),
            capture,
        ));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            mock,
            requests,
            _runtime: runtime,
        }
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        self.mock.calls()
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.endpoint).collect()
    }

    /// The invariant of every failure test: endtransaction never reached the server.
    pub fn assert_never_ended(&self) {
        assert!(
            !self.endpoints().iter().any(|e| e == "endtransaction"),
            "endtransaction was called: {:?}",
            self.endpoints()
        );
    }

    /// (customers held, imports) of the demo store.
    pub fn store(&self) -> (usize, u64) {
        let data = self.mock.store(STORE_ID).unwrap();
        (data.len(), data.imports)
    }

    pub fn upload_rows(&self) -> Vec<usize> {
        self.calls().iter().filter_map(|c| c.rows).collect()
    }
}

/// A test cannot pass while the mock refused a request it could not read: rrfeed must only ever send
/// well-formed requests, whatever the test is about.
impl Drop for MockServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let unreadable: Vec<String> = self
            .calls()
            .into_iter()
            .filter(|c| {
                ["Malformed request body", "of the post:", "totalrowssent is"]
                    .iter()
                    .any(|text| c.outcome.contains(text))
            })
            .map(|c| format!("{} #{}: {}", c.endpoint, c.call, c.outcome))
            .collect();
        assert!(
            unreadable.is_empty(),
            "the mock could not read requests: {unreadable:?}"
        );
    }
}

async fn capture(
    axum::extract::State(requests): axum::extract::State<Arc<Mutex<Vec<RawRequest>>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    requests.lock().unwrap().push(RawRequest {
        path: parts.uri.path().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: bytes.to_vec(),
    });
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// The binary with a clean environment pointing at `server`, fast retries and a private state dir.
pub fn rrfeed(server: &MockServer, state: &Path) -> Command {
    let mut cmd = Command::cargo_bin("rrfeed").unwrap();
    cmd.env_clear()
        .env("RRFEED_API_URL", &server.url)
        .env("RRFEED_PARTNER_API_KEY", PARTNER_KEY)
        .env("RRFEED_STORE_ID", STORE_ID)
        .env("RRFEED_STORE_API_KEY", STORE_KEY)
        .env("RRFEED_PARTNER_STORE_ID", "DEMO-1")
        .env("RRFEED_STATE_DIR", state);
    cmd
}

/// The outcome of one `upload --json`.
pub struct Outcome {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
    /// The run as the ledger recorded it (`history --json`), `null` if it recorded none.
    pub ledger: Value,
}

/// Runs `upload FILE --json` with fast retries plus `extra` arguments.
pub fn upload(server: &MockServer, file: &Path, extra: &[&str]) -> Outcome {
    let state = tempfile::tempdir().unwrap();
    let output = rrfeed(server, state.path())
        .args([
            "upload",
            "--json",
            "--retry-delay",
            "10ms",
            "--timeout",
            "2s",
        ])
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let json: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}"));
    let history = rrfeed(server, state.path())
        .args(["history", "--json"])
        .output()
        .unwrap();
    let runs: Value = serde_json::from_slice(&history.stdout).unwrap();
    Outcome {
        code: output.status.code().unwrap(),
        json,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        ledger: runs[0].clone(),
    }
}

/// A CSV export of `rows` distinct customers.
pub fn csv_rows(rows: usize) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    writeln!(file, "Customer ID,First Name,Last Name,Email,Mobile,Gender").unwrap();
    for i in 0..rows {
        writeln!(
            file,
            "C{i:06},First{i},Last{i},user{i}@Example.com,(414) 555-{:04},{}",
            i % 10_000,
            if i % 2 == 0 { "Male" } else { "female" }
        )
        .unwrap();
    }
    file
}

/// A file with the given bytes and suffix.
pub fn file_with(bytes: &[u8], suffix: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    file.write_all(bytes).unwrap();
    file
}

/// A state dir and config file for three stores of a three-store mock.
pub struct Night {
    pub dir: tempfile::TempDir,
}

impl Night {
    pub fn new(exports: [&Path; 3]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("partner_api_key = { env = \"RRFEED_PARTNER_API_KEY\" }\n");
        for (i, (name, export)) in ["north", "south", "east"].iter().zip(exports).enumerate() {
            text.push_str(&format!(
                "[[store]]\nname = \"{name}\"\nstore_id = \"{}\"\nstore_api_key = {{ env = \"KEY_{}\" }}\nexport = \"{}\"\n",
                1001 + i,
                name.to_uppercase(),
                export.display()
            ));
        }
        std::fs::write(dir.path().join("rrfeed.toml"), text).unwrap();
        Self { dir }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn command(&self, server: &MockServer) -> assert_cmd::Command {
        let mut cmd = rrfeed(server, &self.state());
        cmd.env_remove("RRFEED_STORE_ID")
            .env("KEY_NORTH", "demo-store-key")
            .env("KEY_SOUTH", "demo-store-key-2")
            .env("KEY_EAST", "demo-store-key-3")
            .current_dir(self.dir.path());
        cmd
    }
}

pub fn json_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// Waits until the mock has received `n` requests to `path` (it may still be handling the last).
pub fn wait_for_requests(server: &MockServer, path: &str, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let seen = server
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .count();
        if seen >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {seen} requests to {path}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
