//! Running unattended, as cron does: failures reach stderr and the log file even when stdout is thrown
//! away, `--quiet` prints nothing for a clean success, log filters are checked, every line of a store's
//! run names the store, and one store's configuration problem never sinks the night.

use rrfeed::mock::MockConfig;
use serde_json::Value;

use crate::helpers::*;

#[test]
fn a_failure_reaches_stderr_and_the_log_file_when_cron_discards_stdout() {
    let server = MockServer::start("upload#1:status=503");
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("rrfeed.log");
    let output = rrfeed(&server, state.path())
        .args(["upload", "--retries", "0", "--log-file"])
        .arg(&log)
        .arg(csv_rows(5).path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(69));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("ERROR") && stderr.contains("upload failed") && stderr.contains("503"),
        "{stderr}"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    let failure = logged
        .lines()
        .find(|l| l.contains("upload failed"))
        .unwrap_or_else(|| panic!("no failure in the log file: {logged}"));
    for field in ["store=1001", "run_id=1", "exit_code=69", "503"] {
        assert!(failure.contains(field), "{field} missing: {failure}");
    }
}

#[test]
fn a_failed_validate_says_why_on_stderr() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let export = file_with(b"Customer ID,First Name\n\"C1,Ann\n", ".csv");
    let output = rrfeed(&server, state.path())
        .arg("validate")
        .arg(export.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(65));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("validate failed") && stderr.contains("line"),
        "{stderr}"
    );
}

#[test]
fn quiet_prints_nothing_for_a_clean_success() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let output = rrfeed(&server, state.path())
        .args(["upload", "--quiet"])
        .arg(csv_rows(5).path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    assert_eq!(server.store().0, 5, "the quiet run still uploaded");
}

#[test]
fn quiet_prints_everything_when_the_run_warns_or_fails() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let warned = rrfeed(&server, state.path())
        .args(["upload", "--quiet", "examples/customers.csv"])
        .output()
        .unwrap();
    assert_eq!(warned.status.code(), Some(0));
    let stdout = String::from_utf8(warned.stdout).unwrap();
    assert!(
        stdout.contains("succeeded") && stdout.contains("warning"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&warned.stderr).contains("input read and validated"),
        "the held-back log lines are shown too"
    );

    let failed = rrfeed(&server, state.path())
        .args(["upload", "--quiet", "no-such-export.csv"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&failed.stdout).contains("no-such-export.csv"));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("no-such-export.csv"));
}

#[test]
fn a_log_level_that_is_no_level_is_a_usage_error() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let flag = rrfeed(&server, state.path())
        .args(["upload", "--log-level", "nonsense", "--dry-run"])
        .arg(csv_rows(2).path())
        .output()
        .unwrap();
    assert_eq!(flag.status.code(), Some(2));
    let stderr = String::from_utf8(flag.stderr).unwrap();
    assert!(
        stderr.contains("nonsense") && stderr.contains("warn"),
        "{stderr}"
    );

    let env = rrfeed(&server, state.path())
        .env("RUST_LOG", "chatty")
        .args(["upload", "--dry-run"])
        .arg(csv_rows(2).path())
        .output()
        .unwrap();
    assert_eq!(env.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&env.stderr).contains("RUST_LOG"));

    let filter = rrfeed(&server, state.path())
        .args(["upload", "--log-level", "rrfeed=debug,warn", "--dry-run"])
        .arg(csv_rows(2).path())
        .output()
        .unwrap();
    assert_eq!(filter.status.code(), Some(0));
}

#[test]
fn every_log_line_of_a_night_names_its_store() {
    let server = MockServer::start_with(MockConfig::demo_stores(3));
    let exports = [csv_rows(3), csv_rows(4), csv_rows(5)];
    let night = Night::new([exports[0].path(), exports[1].path(), exports[2].path()]);
    let output = night
        .command(&server)
        .args([
            "--log-format",
            "json",
            "upload",
            "--all-stores",
            "--jobs",
            "3",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8(output.stderr)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let read: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "input read and validated")
        .collect();
    assert_eq!(read.len(), 3, "{lines:?}");
    let mut stores: Vec<&str> = read
        .iter()
        .map(|l| l["span"]["store"].as_str().unwrap_or("none"))
        .collect();
    stores.sort_unstable();
    assert_eq!(stores, ["east", "north", "south"]);
}

#[test]
fn no_color_keeps_a_terminal_free_of_colour_codes() {
    // `script` gives the run a terminal, where log lines are coloured unless NO_COLOR is set.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` to make a terminal");
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let export = csv_rows(3);
    let run = |no_color: Option<&str>| {
        let command = format!(
            "{} upload --dry-run {}",
            assert_cmd::cargo::cargo_bin("rrfeed").display(),
            export.path().display()
        );
        let mut cmd = std::process::Command::new("script");
        cmd.env_clear()
            .env("RRFEED_STATE_DIR", state.path())
            .env("TERM", "xterm")
            .args(["-q", "-e", "-c", &command, "/dev/null"]);
        if let Some(value) = no_color {
            cmd.env("NO_COLOR", value);
        }
        let output = cmd.output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(run(None).contains("\u{1b}["), "coloured on a terminal");
    let plain = run(Some("1"));
    assert!(plain.contains("input read and validated"), "{plain}");
    assert!(!plain.contains("\u{1b}["), "{plain:?}");
}

#[test]
fn one_stores_missing_key_or_export_fails_only_that_store() {
    let server = MockServer::start_with(MockConfig::demo_stores(3));
    let exports = [csv_rows(3), csv_rows(4), csv_rows(5)];
    let gone = exports[2].path().with_extension("gone.csv");
    let night = Night::new([exports[0].path(), exports[1].path(), &gone]);
    let output = night
        .command(&server)
        .env_remove("KEY_SOUTH")
        .args(["upload", "--all-stores", "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stores = json_of(&output);
    let by_name = |name: &str| {
        stores
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["store"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("north")["exit_code"], 0);
    let south = by_name("south");
    assert_eq!(south["exit_code"], 78);
    assert!(
        south["error"].as_str().unwrap().contains("KEY_SOUTH"),
        "{south}"
    );
    let east = by_name("east");
    assert_eq!(east["exit_code"], 78);
    assert!(
        east["error"].as_str().unwrap().contains("gone.csv"),
        "{east}"
    );
    assert_eq!(
        server.mock.store("1001").unwrap().len(),
        3,
        "north uploaded"
    );
    assert!(server.mock.store("1002").unwrap().is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("KEY_SOUTH") && stderr.contains("gone.csv"),
        "{stderr}"
    );
}

#[test]
fn keys_are_read_only_by_the_commands_that_send() {
    let server = MockServer::start("");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rrfeed.toml");
    std::fs::write(
        &config,
        "partner_api_key = { env = \"PARTNER\" }\nadmin_password = { env = \"ADMIN_UNSET\" }\n\
         [[store]]\nname = \"north\"\nstore_id = \"1001\"\nstore_api_key = { env = \"KEY_NORTH\" }\n",
    )
    .unwrap();
    let export = csv_rows(4);
    let command = || {
        let mut cmd = rrfeed(&server, dir.path());
        cmd.env_remove("RRFEED_STORE_ID")
            .env_remove("RRFEED_PARTNER_API_KEY")
            .arg("--config")
            .arg(&config);
        cmd
    };
    let validate = command()
        .args(["validate", "--store", "north"])
        .arg(export.path())
        .output()
        .unwrap();
    assert_eq!(validate.status.code(), Some(0), "{validate:?}");
    let upload = command()
        .env("PARTNER", PARTNER_KEY)
        .env("KEY_NORTH", STORE_KEY)
        .args(["upload", "--store", "north"])
        .arg(export.path())
        .output()
        .unwrap();
    assert_eq!(upload.status.code(), Some(0), "{upload:?}");
    let stores = command()
        .env("PARTNER", PARTNER_KEY)
        .arg("stores")
        .output()
        .unwrap();
    assert_eq!(stores.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&stores.stderr).contains("ADMIN_UNSET"));
}

#[test]
fn config_check_reports_every_problem_at_once() {
    let server = MockServer::start("");
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let config = dir.path().join("rrfeed.toml");
    std::fs::write(
        &config,
        format!(
            "ca_cert = \"{dir}/no-such-ca.pem\"\nstate_dir = \"{dir}/locked/state\"\n\
             [[store]]\nname = \"north\"\nstore_id = \"1001\"\nstore_api_key = {{ env = \"KEY_NORTH\" }}\n\
             export = \"{dir}/no-such-export.csv\"\n\
             [[store]]\nname = \"south\"\nstore_id = \"1002\"\nstore_api_key = {{ env = \"KEY_SOUTH\" }}\n\
             encoding = \"ebcdic\"\n",
            dir = dir.path().display()
        ),
    )
    .unwrap();
    set_mode(&locked, 0o500);
    let output = rrfeed(&server, dir.path())
        .env_remove("RRFEED_STORE_ID")
        .env_remove("RRFEED_STATE_DIR")
        .args(["config", "check", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    set_mode(&locked, 0o700);
    assert_eq!(output.status.code(), Some(78));
    let report = json_of(&output);
    let problems: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let has = |text: &str| problems.iter().any(|p| p.contains(text));
    assert!(has("no-such-ca.pem"), "{problems:?}");
    assert!(has("no-such-export.csv"), "{problems:?}");
    assert!(has("KEY_NORTH"), "{problems:?}");
    assert!(has("ebcdic"), "{problems:?}");
    // Root may write anywhere: the state directory can only be found unwritable by others.
    if !running_as_root() {
        assert!(has("cannot write in"), "{problems:?}");
    }
    assert_eq!(report["stores"].as_array().unwrap().len(), 2);
}

#[test]
fn a_secret_written_as_a_value_is_never_echoed() {
    const SECRET: &str = "PK-plain-3c9d1e";
    let server = MockServer::start("");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rrfeed.toml");
    std::fs::write(&config, format!("partner_api_key = \"{SECRET}\"\n")).unwrap();
    for args in [
        vec!["config", "check"],
        vec!["upload", "examples/customers.csv"],
        vec!["upload", "examples/customers.csv", "--json"],
    ] {
        let output = rrfeed(&server, dir.path())
            .arg("--config")
            .arg(&config)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(78), "{args:?}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!all.contains(SECRET), "{args:?}: {all}");
        assert!(
            all.contains("partner_api_key must be a reference"),
            "{args:?}: {all}"
        );
    }
}

#[cfg(unix)]
#[test]
fn databases_are_private_and_queries_create_none() {
    use std::os::unix::fs::PermissionsExt;
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    for query in [vec!["history"], vec!["webhook", "status"]] {
        let output = rrfeed(&server, state.path()).args(&query).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{query:?}");
    }
    assert_eq!(
        std::fs::read_dir(state.path()).unwrap().count(),
        0,
        "a query created a file"
    );
    let upload = rrfeed(&server, state.path())
        .arg("upload")
        .arg(csv_rows(3).path())
        .output()
        .unwrap();
    assert_eq!(upload.status.code(), Some(0));
    let mut databases = 0;
    for entry in std::fs::read_dir(state.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains(".sqlite") {
            databases += 1;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
    }
    assert!(databases >= 1, "no database in the state directory");
}

#[test]
fn a_proxy_in_the_environment_never_carries_loopback_traffic() {
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("rrfeed"))
        .env_clear()
        .env("RRFEED_STATE_DIR", tempfile::tempdir().unwrap().path())
        .env("http_proxy", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9")
        .args(["upload", "--mock", "examples/customers.csv"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn authentication_failed_says_what_to_check() {
    let server = MockServer::start("");
    let state = tempfile::tempdir().unwrap();
    let output = rrfeed(&server, state.path())
        .env("RRFEED_STORE_API_KEY", "wrong-key")
        .args(["upload", "--json"])
        .arg(csv_rows(2).path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(77));
    let error = json_of(&output)["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("RRStoreAPIKey") && error.contains("header names by case"),
        "{error}"
    );
}

#[test]
fn asking_for_an_unknown_store_is_an_error_not_an_empty_answer() {
    let server = MockServer::start_with(MockConfig::demo_stores(2));
    let state = tempfile::tempdir().unwrap();
    let history = rrfeed(&server, state.path())
        .args(["history", "--store", "NOSUCH"])
        .output()
        .unwrap();
    assert_eq!(history.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&history.stderr).contains("NOSUCH"));
    let stores = rrfeed(&server, state.path())
        .env("RRFEED_ADMIN_PASSWORD", "demo-admin-password")
        .args(["stores", "--partner-store-id", "NOPE"])
        .output()
        .unwrap();
    assert_eq!(stores.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&stores.stderr).contains("NOPE"));
}

#[test]
fn history_shows_only_the_runs_in_the_state_asked_for() {
    let server = MockServer::start("upload#1:status=400");
    let state = tempfile::tempdir().unwrap();
    let export = csv_rows(3);
    for expected in [76, 0] {
        let run = rrfeed(&server, state.path())
            .args(["upload", "--retries", "0"])
            .arg(export.path())
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(expected), "{run:?}");
    }
    let runs = |state_filter: &str| {
        let output = rrfeed(&server, state.path())
            .args([
                "history",
                "--json",
                "--store",
                STORE_ID,
                "--state",
                state_filter,
            ])
            .output()
            .unwrap();
        json_of(&output).as_array().unwrap().len()
    };
    assert_eq!(
        (runs("failed"), runs("succeeded"), runs("refused")),
        (1, 1, 0)
    );
}

fn set_mode(path: &std::path::Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn prune_forgets_old_runs_but_keeps_the_newest_and_the_last_success() {
    let server = MockServer::start("upload#3:status=400");
    let state = tempfile::tempdir().unwrap();
    let export = csv_rows(3);
    for expected in [0, 0, 76] {
        let run = rrfeed(&server, state.path())
            .args(["upload", "--retries", "0"])
            .arg(export.path())
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(expected));
    }
    let prune = |extra: &[&str]| {
        let output = rrfeed(&server, state.path())
            .args(["prune", "--older-than", "0s", "--json"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        json_of(&output)
    };
    assert_eq!(prune(&["--dry-run"])["runs"], 1);
    assert_eq!(prune(&[])["runs"], 1);
    let history = rrfeed(&server, state.path())
        .args(["history", "--json"])
        .output()
        .unwrap();
    let states: Vec<String> = json_of(&history)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        states,
        ["failed", "succeeded"],
        "the newest and the last success"
    );
}

#[test]
fn ledger_keep_prunes_after_every_upload() {
    let server = MockServer::start("");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rrfeed.toml");
    std::fs::write(&config, "[ledger]\nkeep = \"1ms\"\n").unwrap();
    let export = csv_rows(3);
    for _ in 0..3 {
        let run = rrfeed(&server, dir.path())
            .arg("--config")
            .arg(&config)
            .arg("upload")
            .arg(export.path())
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(0));
    }
    let history = rrfeed(&server, dir.path())
        .args(["history", "--json"])
        .output()
        .unwrap();
    assert_eq!(json_of(&history).as_array().unwrap().len(), 1);
}
