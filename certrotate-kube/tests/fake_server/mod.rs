//! Starts `test-support/kube-fake-server` (kube-fake-client over HTTP on 127.0.0.1) and
//! points a kube 5 client at it. The binary is built on first use if `.ci/run` has not
//! built it; each server stops when the test process exits (its stdin closes).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, Once};

use certrotate_kube::KubeStore;

static BUILD: Once = Once::new();
static SERVERS: Mutex<Vec<(Child, ChildStdin)>> = Mutex::new(Vec::new());

fn binary() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test-support/kube-fake-server");
    let bin = dir.join("target/debug/kube-fake-server");
    BUILD.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .status()
            .expect("cargo build of the fake API server");
        assert!(
            status.success(),
            "building test-support/kube-fake-server failed"
        );
    });
    bin
}

/// A running fake API server.
pub struct FakeServer {
    pub url: String,
    pub log: PathBuf,
}

/// Starts a fresh, empty fake API server with `args` (e.g. `--fail PATCH:/secrets/envoy:500:2`).
pub fn start(args: &[&str]) -> FakeServer {
    let log = tempfile::NamedTempFile::new()
        .unwrap()
        .into_temp_path()
        .keep()
        .unwrap();
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start kube-fake-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_owned();
    let stdin = child.stdin.take().unwrap();
    SERVERS.lock().unwrap().push((child, stdin));
    FakeServer { url, log }
}

impl FakeServer {
    /// A store talking to this server over HTTP, with quick retries.
    pub fn store(&self) -> KubeStore {
        let config = kube::Config::new(self.url.parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        KubeStore::new(client).with_retries(3, std::time::Duration::from_millis(10))
    }

    /// The requests the server saw, as `METHOD /path?query` lines.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A store on a fresh server.
pub fn store() -> KubeStore {
    start(&[]).store()
}
