//! Several machines sharing one PostgreSQL state (docs/fleet.md): each "host" is an rrfeed process with
//! a state directory of its own and the same `RRFEED_STATE_URL`. Skipped, saying why, only when no
//! PostgreSQL server can be started (CI sets `RRFEED_REQUIRE_POSTGRES=1`, so there they run).

use std::path::Path;
use std::process::{Child, Command, Stdio};

use rrfeed::mock::MockConfig;
use serde_json::Value;

use crate::helpers::*;

/// A host: its own state directory, the shared database.
struct Host {
    state: tempfile::TempDir,
    state_url: String,
}

impl Host {
    fn new(state_url: &str) -> Self {
        Self {
            state: tempfile::tempdir().unwrap(),
            state_url: state_url.to_owned(),
        }
    }

    /// `rrfeed` against `server` as this host, for the demo store.
    fn rrfeed(&self, server: &MockServer) -> assert_cmd::Command {
        let mut cmd = rrfeed(server, self.state.path());
        cmd.env("RRFEED_STATE_URL", &self.state_url);
        cmd
    }

    /// `upload --json FILE ARGS` as a process left running.
    fn spawn_upload(&self, server: &MockServer, file: &Path, extra: &[&str]) -> Child {
        Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
            .env_clear()
            .env("RRFEED_API_URL", &server.url)
            .env("RRFEED_PARTNER_API_KEY", PARTNER_KEY)
            .env("RRFEED_STORE_ID", STORE_ID)
            .env("RRFEED_STORE_API_KEY", STORE_KEY)
            .env("RRFEED_STATE_DIR", self.state.path())
            .env("RRFEED_STATE_URL", &self.state_url)
            .args(["upload", "--json", "--retry-delay", "10ms"])
            .arg(file)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// A fresh database for `test`, or `None` when the test is skipped.
fn database(test: &str) -> Option<String> {
    rrfeed::state::testing::fresh_database_url(test)
}

#[test]
fn two_hosts_racing_one_store_upload_it_once_and_the_second_exits_75() {
    let Some(url) = database("racing") else {
        return;
    };
    let server = MockServer::start("upload#1:delay=1500ms");
    let file = csv_rows(10);
    let (a, b) = (Host::new(&url), Host::new(&url));
    let first = a.spawn_upload(&server, file.path(), &[]);
    wait_for_requests(&server, "/uploadcustomerprofile", 1);
    let second = b
        .rrfeed(&server)
        .args(["upload", "--json"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(75));
    let refused = json_of(&second);
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("pid {}", first.id())) && error.contains("PostgreSQL"),
        "{error}"
    );
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(server.store(), (10, 1));
}

#[test]
fn a_host_killed_mid_upload_is_resumed_by_another_in_the_same_transaction() {
    let Some(url) = database("resumed") else {
        return;
    };
    let server = MockServer::start("upload#3:delay=30s");
    let file = csv_rows(5000);
    let (a, b) = (Host::new(&url), Host::new(&url));
    let mut killed = a.spawn_upload(&server, file.path(), &[]);
    wait_for_requests(&server, "/uploadcustomerprofile", 3);
    killed.kill().unwrap();
    killed.wait().unwrap();
    let sent_before = server.requests.lock().unwrap().len();

    // B has never seen this store: A's run, its transaction and its running total are in PostgreSQL;
    // the snapshot is rebuilt from the export, and its hash matches A's.
    let resumed = b
        .rrfeed(&server)
        .args(["upload", "--json", "--resume", "--wait-lock", "30s"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let after: Vec<String> = server.requests.lock().unwrap()[sent_before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        after[0], "/uploadcustomerprofile",
        "resume posts first: {after:?}"
    );
    let begins = server
        .endpoints()
        .iter()
        .filter(|e| *e == "begintransaction")
        .count();
    assert_eq!(begins, 1, "one transaction across both hosts");
    assert_eq!(server.store(), (5000, 1));
    let history = json_of(
        &a.rrfeed(&server)
            .args(["history", "--json"])
            .output()
            .unwrap(),
    );
    let states: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["succeeded", "interrupted"],
        "A sees B's run: {history}"
    );
}

#[test]
fn history_and_the_shrink_guard_see_the_runs_of_every_host() {
    let Some(url) = database("shrink") else {
        return;
    };
    let server = MockServer::start("");
    let (a, b) = (Host::new(&url), Host::new(&url));
    let full = csv_rows(100);
    let ran = a
        .rrfeed(&server)
        .args(["upload"])
        .arg(full.path())
        .output()
        .unwrap();
    assert_eq!(ran.status.code(), Some(0));

    let history = json_of(
        &b.rrfeed(&server)
            .args(["history", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(history[0]["rows"], 100, "{history}");
    let halved = csv_rows(40);
    let refused = b
        .rrfeed(&server)
        .args(["upload", "--json"])
        .arg(halved.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(65));
    let error = json_of(&refused)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("down from 100"), "{error}");
    let status = b
        .rrfeed(&server)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let report: Value = json_of(&status);
    assert_eq!(report["stores"][0]["last_exit_code"], 65, "{report}");
}

#[test]
fn a_night_of_40_stores_in_4_shards_on_4_hosts_uploads_every_store_once() {
    let Some(url) = database("shards") else {
        return;
    };
    let server = MockServer::start_with(MockConfig::demo_stores(40));
    let dir = tempfile::tempdir().unwrap();
    let export = csv_rows(3);
    let mut config = String::from("partner_api_key = { env = \"RRFEED_PARTNER_API_KEY\" }\n");
    for i in 1..=40 {
        config.push_str(&format!(
            "[[store]]\nname = \"store-{i:02}\"\nstore_id = \"{}\"\nstore_api_key = {{ env = \"KEY_{i}\" }}\nexport = \"{}\"\n",
            1000 + i,
            export.path().display()
        ));
    }
    std::fs::write(dir.path().join("rrfeed.toml"), config).unwrap();
    let hosts: Vec<Host> = (0..4).map(|_| Host::new(&url)).collect();
    let nights: Vec<Child> = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"));
            cmd.env_clear()
                .env("RRFEED_API_URL", &server.url)
                .env("RRFEED_PARTNER_API_KEY", PARTNER_KEY)
                .env("RRFEED_STATE_DIR", host.state.path())
                .env("RRFEED_STATE_URL", &host.state_url)
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .current_dir(dir.path())
                .args([
                    "upload",
                    "--all-stores",
                    "--json",
                    "--jobs",
                    "4",
                    "--shard",
                    "auto/4",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            for s in 1..=40 {
                let key = if s == 1 {
                    "demo-store-key".to_owned()
                } else {
                    format!("demo-store-key-{s}")
                };
                cmd.env(format!("KEY_{s}"), key);
            }
            cmd.spawn().unwrap()
        })
        .collect();
    let mut uploaded = Vec::new();
    for night in nights {
        let output = night.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let summaries: Value = json_of(&output);
        for s in summaries.as_array().unwrap() {
            uploaded.push(s["store"].as_str().unwrap().to_owned());
        }
    }
    uploaded.sort();
    let every: Vec<String> = (1..=40).map(|i| format!("store-{i:02}")).collect();
    assert_eq!(uploaded, every, "each store in exactly one shard");
    for i in 1..=40 {
        let data = server.mock.store(&format!("{}", 1000 + i)).unwrap();
        assert_eq!((data.len(), data.imports), (3, 1), "store {i}");
    }
}

#[test]
fn a_machines_sqlite_ledger_moves_into_postgres_with_state_export_and_import() {
    let Some(url) = database("moved") else {
        return;
    };
    let server = MockServer::start("");
    let local = tempfile::tempdir().unwrap();
    let file = csv_rows(100);
    for _ in 0..2 {
        let ran = rrfeed(&server, local.path())
            .args(["upload"])
            .arg(file.path())
            .output()
            .unwrap();
        assert_eq!(ran.status.code(), Some(0));
    }
    let exported = local.path().join("runs.ndjson");
    let export = rrfeed(&server, local.path())
        .args(["state", "export", "--out"])
        .arg(&exported)
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(0));

    let host = Host::new(&url);
    let migrate = host
        .rrfeed(&server)
        .args(["state", "migrate"])
        .output()
        .unwrap();
    assert_eq!(migrate.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("applied schema version(s) 1"));
    let import = host
        .rrfeed(&server)
        .args(["state", "import"])
        .arg(&exported)
        .output()
        .unwrap();
    assert_eq!(
        import.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    assert!(String::from_utf8_lossy(&import.stdout).contains("imported 2 run(s)"));
    let again = host
        .rrfeed(&server)
        .args(["state", "import"])
        .arg(&exported)
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(65),
        "a second import would mix two histories"
    );

    // The shrink guard on the shared state now knows the machine's last success.
    let halved = csv_rows(40);
    let refused = host
        .rrfeed(&server)
        .args(["upload"])
        .arg(halved.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(65));
    let history = json_of(
        &host
            .rrfeed(&server)
            .args(["history", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(history.as_array().unwrap().len(), 3);
}

/// `rrfeed webhook serve` as a host: its URL, and the process (killed when dropped).
struct Receiver {
    child: Child,
    url: String,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const WEBHOOK_SECRET: &str = "fleet-webhook-secret-0123456789";

fn receiver(host: &Host) -> Receiver {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
        .env_clear()
        .env("RRFEED_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("RRFEED_STATE_DIR", host.state.path())
        .env("RRFEED_STATE_URL", &host.state_url)
        .args(["webhook", "serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let url = first
        .strip_prefix("rrfeed webhook listening on ")
        .unwrap()
        .to_owned();
    Receiver { child, url }
}

#[test]
fn receivers_on_two_hosts_store_each_update_once_and_exports_take_each_once() {
    let Some(url) = database("receivers") else {
        return;
    };
    let (a, b) = (Host::new(&url), Host::new(&url));
    let (ra, rb) = (receiver(&a), receiver(&b));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    // Every update goes to both receivers at once, as a retry routed to the other host would.
    rt.block_on(async {
        let mut sends = Vec::new();
        for i in 0..150 {
            for target in [&ra.url, &rb.url] {
                let (client, url) = (client.clone(), format!("{target}/{WEBHOOK_SECRET}"));
                let body =
                    format!(r#"{{"PartnerCustomerID": "W{i:03}", "CustomerCity": "Oak Creek"}}"#);
                sends.push(tokio::spawn(async move {
                    let answer = client
                        .post(url)
                        .header("Content-Type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    answer.status().as_u16()
                }));
            }
        }
        for send in sends {
            assert_eq!(send.await.unwrap(), 200);
        }
    });
    let status = |host: &Host| -> Value {
        json_of(
            &Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
                .env_clear()
                .env("RRFEED_STATE_DIR", host.state.path())
                .env("RRFEED_STATE_URL", &host.state_url)
                .args(["webhook", "status", "--json"])
                .output()
                .unwrap(),
        )
    };
    assert_eq!(status(&b)["updates"], 150, "each update stored once");

    // Both hosts export at once: every customer lands in exactly one of the two files.
    let exports: Vec<_> = [&a, &b]
        .iter()
        .map(|host| {
            let out = host.state.path().join("updates.json");
            let child = Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
                .env_clear()
                .env("RRFEED_STATE_DIR", host.state.path())
                .env("RRFEED_STATE_URL", &host.state_url)
                .args(["webhook", "export", "--format", "json", "--out"])
                .arg(&out)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    let mut exported: Vec<String> = Vec::new();
    for (child, out) in exports {
        let done = child.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        let rows: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
        for row in rows.as_array().unwrap() {
            exported.push(
                row["customer"]["PartnerCustomerID"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    exported.sort();
    let every: Vec<String> = (0..150).map(|i| format!("W{i:03}")).collect();
    assert_eq!(exported, every);
    assert_eq!(status(&a)["pending"], 0);
    drop((ra, rb));
}
