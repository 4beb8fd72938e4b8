//! Operating rrfeed: many stores from one config, the ledger, locks, the shrink guard, SIGTERM, resume
//! after the process was killed, config errors, and secrets that never show anywhere.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rrfeed::mock::MockConfig;
use rrfeed::mock::faults::FaultPlan;
use serde_json::Value;

use crate::helpers::*;

#[test]
fn a_night_of_three_stores_goes_on_past_a_failing_one() {
    let north = csv_rows(1500);
    let south = csv_rows(20);
    let east = file_with(b"First Name,Email\nAnn,a@b.co\nBob,b@c.co,extra\n", ".csv");
    let night = Night::new([north.path(), south.path(), east.path()]);
    let server = MockServer::start_with(MockConfig::demo_stores(3));
    let output = night
        .command(&server)
        .args(["upload", "--all-stores", "--json", "--jobs", "2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(65), "the worst store's code");
    let runs = json_of(&output);
    let states: Vec<(&str, &str)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["store"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("north", "succeeded"),
            ("south", "succeeded"),
            ("east", "refused")
        ]
    );
    assert_eq!(server.mock.store("1001").unwrap().len(), 1500);
    assert_eq!(server.mock.store("1002").unwrap().len(), 20);
    assert_eq!(server.mock.store("1003").unwrap().imports, 0);

    let history = night
        .command(&server)
        .args(["history", "--json"])
        .output()
        .unwrap();
    let history = json_of(&history);
    assert_eq!(history.as_array().unwrap().len(), 3);
    let east = history
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["store"] == "east")
        .unwrap();
    assert_eq!(east["exit_code"], 65);
    assert!(east["error"].as_str().unwrap().contains("ragged row"));
    // The human table names every store and the failure.
    let table = night
        .command(&server)
        .args(["upload", "--all-stores"])
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("3 store(s), 1 failed"), "{text}");
}

#[test]
fn a_store_locked_by_another_run_exits_75_naming_the_holder_and_waiting_works() {
    let server = MockServer::start("upload#1:delay=3s");
    let state = tempfile::tempdir().unwrap();
    let file = csv_rows(10);
    let mut first = spawn_upload(&server, state.path(), file.path(), &[]);
    wait_for_requests(&server, "/uploadcustomerprofile", 1);
    let refused = rrfeed(&server, state.path())
        .args(["upload", "--json"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(75));
    let error = json_of(&refused)["error"].as_str().unwrap().to_owned();
    assert!(error.contains(&format!("pid {}", first.id())), "{error}");
    let waited = rrfeed(&server, state.path())
        .args(["upload", "--json", "--wait-lock", "30s"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(
        waited.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert_eq!(first.wait().unwrap().code(), Some(0));
    assert_eq!(server.store(), (10, 2));
}

#[test]
fn the_shrink_guard_refuses_a_halved_export_unless_forced() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let run = |file: &Path, extra: &[&str]| {
        rrfeed(&server, state.path())
            .args(["upload", "--json"])
            .arg(file)
            .args(extra)
            .output()
            .unwrap()
    };
    assert_eq!(run(csv_rows(100).path(), &[]).status.code(), Some(0));
    let shrunk = csv_rows(40);
    let refused = run(shrunk.path(), &[]);
    assert_eq!(refused.status.code(), Some(65));
    let error = json_of(&refused)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("has 40 rows, down from 100"), "{error}");
    assert_eq!(server.store(), (100, 1), "the refused run called nothing");
    assert_eq!(run(shrunk.path(), &["--force"]).status.code(), Some(0));
    assert_eq!(server.store(), (40, 2));
}

#[test]
fn sigterm_stops_between_chunks_and_resume_finishes_the_same_transaction() {
    let server = MockServer::start("upload#2:delay=1500ms");
    let state = tempfile::tempdir().unwrap();
    let file = csv_rows(3000);
    let output = upload_interrupted(&server, state.path(), file.path(), "-TERM");
    assert_eq!(output.status.code(), Some(143));
    let stopped = json_of(&output);
    assert_eq!(stopped["state"], "interrupted");
    assert_eq!(stopped["chunks"], 2, "the chunk in flight was let finish");
    server.assert_never_ended();
    let tx = stopped["transactionid"].as_str().unwrap().to_owned();

    let json = resume_upload(&server, state.path(), file.path());
    assert_eq!(json["transactionid"], tx.as_str());
    let begins = server
        .endpoints()
        .iter()
        .filter(|e| *e == "begintransaction")
        .count();
    assert_eq!(begins, 1, "the transaction was continued, not begun again");
    assert_eq!(server.upload_rows(), [1000, 1000, 1000]);
    assert_eq!(server.store(), (3000, 1));
}

#[test]
fn a_killed_upload_resumes_with_exactly_one_import() {
    let server = MockServer::start("upload#3:delay=30s");
    let state = tempfile::tempdir().unwrap();
    let file = csv_rows(5000);
    let mut child = spawn_upload(&server, state.path(), file.path(), &[]);
    wait_for_requests(&server, "/uploadcustomerprofile", 3);
    child.kill().unwrap();
    child.wait().unwrap();
    let sent_before = server.requests.lock().unwrap().len();

    resume_upload(&server, state.path(), file.path());
    let after: Vec<String> = server.requests.lock().unwrap()[sent_before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        after[0], "/uploadcustomerprofile",
        "resume posts first: {after:?}"
    );
    assert_eq!(server.store(), (5000, 1));
    let history = json_of(
        &rrfeed(&server, state.path())
            .args(["history", "--json"])
            .output()
            .unwrap(),
    );
    let runs = history.as_array().unwrap();
    assert_eq!(runs[0]["state"], "succeeded");
    assert_eq!(runs[0]["resumed_from"], runs[1]["id"]);
    assert_eq!(runs[1]["state"], "interrupted");
    assert_eq!(runs[1]["confirmed"], 2000);
}

#[test]
fn resume_refuses_a_changed_export_and_starts_fresh() {
    let server = MockServer::start("upload#2:delay=1500ms");
    let state = tempfile::tempdir().unwrap();
    let file = csv_rows(3000);
    let stopped = json_of(&upload_interrupted(
        &server,
        state.path(),
        file.path(),
        "-INT",
    ));
    assert_eq!(stopped["exit_code"], 130);
    let changed = csv_rows(2999);
    let output = rrfeed(&server, state.path())
        .args(["upload", "--json", "--resume"])
        .arg(changed.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let json = json_of(&output);
    assert_eq!(json["abandoned_transactions"][0], stopped["transactionid"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("the export changed"));
    assert_eq!(server.store(), (2999, 1));
}

#[test]
fn config_errors_exit_78_naming_the_key_and_the_file() {
    let server = MockServer::start("");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rrfeed.toml");
    std::fs::write(&config, "[retry]\nretries = 3\ndelai = \"1s\"\n").unwrap();
    let output = rrfeed(&server, dir.path())
        .args(["upload", "--json", "--config"])
        .arg(&config)
        .arg(csv_rows(3).path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let error = json_of(&output)["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("delai") && error.contains(&config.display().to_string()),
        "{error}"
    );

    std::fs::write(
        &config,
        "[[store]]\nname = \"north\"\nstore_id = \"1001\"\nstore_api_key = { env = \"KEY_NORTH\" }\n",
    )
    .unwrap();
    let output = rrfeed(&server, dir.path())
        .env_remove("RRFEED_STORE_ID")
        .args(["config", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("KEY_NORTH") && stderr.contains("store \"north\""),
        "{stderr}"
    );
}

#[test]
fn secrets_never_show_in_output_logs_ledger_or_spool() {
    const PARTNER: &str = "PK-secret-7f3a9e21";
    const STORE: &str = "SK-secret-19c2e8b4";
    const ADMIN: &str = "AP-secret-55d1c0a7";
    let mut config = MockConfig {
        faults: FaultPlan::parse("upload#2:delay=1500ms").unwrap(),
        ..MockConfig::demo()
    };
    config.accounts.partner_key = PARTNER.into();
    config.accounts.admin_password = ADMIN.into();
    config.accounts.stores[0].store_key = STORE.into();
    let server = MockServer::start_with(config);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let log = dir.path().join("rrfeed.log");
    std::fs::write(
        dir.path().join("rrfeed.toml"),
        "partner_api_key = { env = \"RRFEED_PARTNER_API_KEY\" }\nadmin_password = { env = \"RRFEED_ADMIN_PASSWORD\" }\n\
         [[store]]\nname = \"north\"\nstore_id = \"1001\"\nstore_api_key = { env = \"RRFEED_STORE_API_KEY\" }\n",
    )
    .unwrap();
    let secret_env = |cmd: &mut assert_cmd::Command| {
        cmd.env("RRFEED_PARTNER_API_KEY", PARTNER)
            .env("RRFEED_STORE_API_KEY", STORE)
            .env("RRFEED_ADMIN_PASSWORD", ADMIN)
            .current_dir(dir.path());
    };
    let mut seen = Vec::new();
    // An upload interrupted by SIGTERM keeps its spool; then a resumed one, all at trace level.
    let file = csv_rows(3000);
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"));
    cmd.env_clear()
        .env("RRFEED_API_URL", &server.url)
        .env("RRFEED_STORE_ID", "1001")
        .env("RRFEED_STATE_DIR", &state)
        .env("RRFEED_PARTNER_API_KEY", PARTNER)
        .env("RRFEED_STORE_API_KEY", STORE)
        .args(["--log-level", "trace", "--log-file"])
        .arg(&log)
        .args(["upload", "--json", "--retry-delay", "10ms"])
        .arg(file.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    wait_for_requests(&server, "/uploadcustomerprofile", 2);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(143));
    seen.push(output.stdout);
    seen.push(output.stderr);
    let spools: Vec<PathBuf> = std::fs::read_dir(state.join("spool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(spools.len(), 1, "the interrupted run kept its snapshot");
    for spool in &spools {
        seen.push(std::fs::read(spool).unwrap());
    }
    for args in [
        vec![
            "--log-level",
            "trace",
            "upload",
            "--json",
            "--resume",
            &file.path().to_string_lossy(),
        ],
        vec!["--log-level", "trace", "config", "check"],
        vec!["--log-level", "trace", "stores"],
        vec!["--log-level", "trace", "stores", "--json"],
        vec!["--log-level", "trace", "stores", "--emit-config"],
        vec!["history", "--json"],
    ] {
        let mut cmd = rrfeed(&server, &state);
        secret_env(&mut cmd);
        let output = cmd
            .args(&args)
            .arg("--log-file")
            .arg(&log)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        seen.push(output.stdout);
        seen.push(output.stderr);
    }
    assert_eq!(server.store(), (3000, 1));
    seen.push(std::fs::read(&log).unwrap());
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            seen.push(std::fs::read(&path).unwrap());
        }
    }
    let log_text = String::from_utf8_lossy(&seen[seen.len() - 1]).into_owned();
    assert!(!log_text.is_empty());
    for (i, bytes) in seen.iter().enumerate() {
        let text = String::from_utf8_lossy(bytes);
        for secret in [PARTNER, STORE, ADMIN] {
            assert!(!text.contains(secret), "output {i} shows a secret: {text}");
        }
    }
    let trace = std::fs::read_to_string(&log).unwrap();
    assert!(
        trace.contains("TRACE") || trace.contains("DEBUG"),
        "the log is at trace level"
    );
}

/// Starts `upload --json FILE` in the background.
fn spawn_upload(server: &MockServer, state: &Path, file: &Path, extra: &[&str]) -> Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
        .env_clear()
        .env("RRFEED_API_URL", &server.url)
        .env("RRFEED_PARTNER_API_KEY", PARTNER_KEY)
        .env("RRFEED_STORE_ID", STORE_ID)
        .env("RRFEED_STORE_API_KEY", STORE_KEY)
        .env("RRFEED_STATE_DIR", state)
        .args(["upload", "--json", "--retry-delay", "10ms"])
        .arg(file)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Starts `upload --json FILE`, sends `signal` (`-TERM`, `-INT`) once the mock has received the second
/// post, and returns what the process printed.
fn upload_interrupted(
    server: &MockServer,
    state: &Path,
    file: &Path,
    signal: &str,
) -> std::process::Output {
    let child = spawn_upload(server, state, file, &[]);
    wait_for_requests(server, "/uploadcustomerprofile", 2);
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `upload --json --resume FILE`, which must succeed; returns its summary.
fn resume_upload(server: &MockServer, state: &Path, file: &Path) -> Value {
    let resumed = rrfeed(server, state)
        .args(["upload", "--json", "--resume"])
        .arg(file)
        .output()
        .unwrap();
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    json_of(&resumed)
}

#[test]
fn completions_and_the_manual_page_are_generated() {
    let bash = assert_cmd::Command::cargo_bin("rrfeed")
        .unwrap()
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8(bash.stdout)
            .unwrap()
            .contains("complete -F _rrfeed")
    );
    let man = assert_cmd::Command::cargo_bin("rrfeed")
        .unwrap()
        .arg("man")
        .output()
        .unwrap();
    let page = String::from_utf8(man.stdout).unwrap();
    assert!(
        page.contains(".TH rrfeed 1") && page.contains("upload"),
        "{page}"
    );
    let _ = std::io::stdout().flush();
}

#[test]
fn the_readme_night_config_uploads_three_stores() {
    let server = MockServer::start_with(MockConfig::demo_stores(3));
    let state = tempfile::tempdir().unwrap();
    let output = rrfeed(&server, state.path())
        .env_remove("RRFEED_STORE_ID")
        .env("RRFEED_ADMIN_PASSWORD", "demo-admin-password")
        .env("KEY_NORTH", "demo-store-key")
        .env("KEY_SOUTH", "demo-store-key-2")
        .env("KEY_EAST", "demo-store-key-3")
        .args([
            "--config",
            "examples/night/rrfeed.toml",
            "upload",
            "--all-stores",
        ])
        .output()
        .unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{table}");
    assert!(table.contains("3 store(s), 0 failed"), "{table}");
    assert_eq!(server.mock.store("1001").unwrap().len(), 300);
    assert_eq!(server.mock.store("1002").unwrap().len(), 60);
    assert_eq!(server.mock.store("1003").unwrap().len(), 4);
}

#[test]
fn stores_lists_the_partners_stores_with_keys_redacted() {
    let server = MockServer::start_with(MockConfig::demo_stores(3));
    let state = tempfile::tempdir().unwrap();
    let stores = |extra: &[&str]| {
        rrfeed(&server, state.path())
            .env("RRFEED_ADMIN_PASSWORD", "demo-admin-password")
            .args(["stores", "--json"])
            .args(extra)
            .output()
            .unwrap()
    };
    let listed = json_of(&stores(&[]));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[1]["RRStoreID"], "1002");
    assert_eq!(listed[1]["RRStoreAPIKey"], "[redacted]");
    assert_eq!(
        json_of(&stores(&["--show-keys"]))[1]["RRStoreAPIKey"],
        "demo-store-key-2"
    );
    let one = json_of(&stores(&["--partner-store-id", "DEMO-3"]));
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["RRStoreID"], "1003");
    let no_password = rrfeed(&server, state.path())
        .args(["stores"])
        .output()
        .unwrap();
    assert_eq!(no_password.status.code(), Some(78));
    let wrong = rrfeed(&server, state.path())
        .env("RRFEED_ADMIN_PASSWORD", "wrong")
        .args(["stores"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(77));
}

#[test]
fn an_export_rewritten_during_the_upload_changes_nothing_that_is_sent() {
    let server = MockServer::start("upload#2:delay=800ms");
    let state = tempfile::tempdir().unwrap();
    let file = csv_rows(2500);
    let child = spawn_upload(&server, state.path(), file.path(), &[]);
    wait_for_requests(&server, "/uploadcustomerprofile", 1);
    // The dealer system writes tonight's next export over the file mid-upload.
    std::fs::write(file.path(), "Customer ID,Email\nX1,other@example.com\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(server.store(), (2500, 1));
    let customers = server.mock.store(STORE_ID).unwrap().customers();
    assert_eq!(
        customers[2499].get(rrfeed::wire::Field::Email),
        Some("user2499@example.com")
    );
    assert!(
        customers
            .iter()
            .all(|c| c.get(rrfeed::wire::Field::PartnerCustomerId) != Some("X1"))
    );
}

#[test]
fn a_full_disk_under_the_snapshot_exits_78_before_any_call() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let file = csv_rows(20_000);
    // Files may not grow past 1 MiB (the snapshot of 20,000 rows is about 10 MiB): writes fail with
    // EFBIG, as they would on a full disk, once SIGXFSZ is ignored.
    let output = Command::new("bash")
        .args([
            "-c",
            r#"trap "" XFSZ; ulimit -f 1024; exec "$0" upload --json "$1""#,
        ])
        .arg(assert_cmd::cargo::cargo_bin!("rrfeed"))
        .arg(file.path())
        .env_clear()
        .env("RRFEED_API_URL", &server.url)
        .env("RRFEED_PARTNER_API_KEY", PARTNER_KEY)
        .env("RRFEED_STORE_ID", STORE_ID)
        .env("RRFEED_STORE_API_KEY", STORE_KEY)
        .env("RRFEED_STATE_DIR", state.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let summary = json_of(&output);
    let error = summary["error"].as_str().unwrap();
    assert!(error.contains("RRFEED_STATE_DIR"), "{error}");
    assert!(error.contains("cannot write the snapshot"), "{error}");
    assert!(error.contains("File too large"), "{error}");
    assert!(
        server.calls().is_empty(),
        "no call before the snapshot is complete"
    );
    // Nothing half-written is left behind.
    let spool = state.path().join("spool");
    let left = std::fs::read_dir(&spool).map_or(0, |d| d.count());
    assert_eq!(left, 0, "{spool:?}");
}
