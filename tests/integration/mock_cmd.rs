//! `rrfeed mock` as a process: it names its URL and credentials first, serves uploads, shows them under
//! `/_mock/`, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use crate::helpers::csv_rows;

struct MockProcess {
    child: Child,
    url: String,
    env: Vec<(String, String)>,
}

impl MockProcess {
    fn start(faults: &str) -> Self {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin!("rrfeed"))
            .args(["mock", "--listen", "127.0.0.1:0", "--faults", faults])
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let url = first
            .strip_prefix("rrfeed mock listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        let mut env = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line.starts_with("inspect:") {
                break;
            }
            if let Some((name, value)) = line
                .trim()
                .strip_prefix("export ")
                .and_then(|l| l.split_once('='))
            {
                env.push((name.to_owned(), value.to_owned()));
            }
        }
        Self { child, url, env }
    }

    fn get(&self, path: &str) -> String {
        let addr = self.url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_mock_command_serves_an_upload_and_shows_it() {
    let mut mock = MockProcess::start("upload#1:status=503");
    assert!(
        mock.env
            .iter()
            .any(|(k, v)| k == "RRFEED_API_URL" && *v == mock.url)
    );
    let file = csv_rows(3);
    let state = tempfile::tempdir().unwrap();
    let status = assert_cmd::Command::cargo_bin("rrfeed")
        .unwrap()
        .env_clear()
        .envs(mock.env.clone())
        .env("RRFEED_STATE_DIR", state.path())
        .args(["upload", "--retry-delay", "10ms"])
        .arg(file.path())
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(0));
    let stores = mock.get("/_mock/stores");
    assert!(stores.contains("\"customers\":3"), "{stores}");
    assert!(stores.contains("\"imports\":1"), "{stores}");
    let calls = mock.get("/_mock/calls");
    assert!(
        calls.contains("\"outcome\":\"fault: status 503\""),
        "{calls}"
    );
    let customers = mock.get("/_mock/stores/1001/customers");
    assert!(
        customers.contains("\"CustomerEmail\":\"user0@example.com\""),
        "{customers}"
    );

    // SIGTERM ends it cleanly.
    let pid = mock.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let exit = mock.child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn a_wrong_fault_spec_is_a_usage_error() {
    assert_cmd::Command::cargo_bin("rrfeed")
        .unwrap()
        .args([
            "mock",
            "--listen",
            "127.0.0.1:0",
            "--faults",
            "upload#0:drop",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "invalid fault rule \"upload#0:drop\"",
        ));
}
