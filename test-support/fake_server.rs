//! Starts `test-support/kube-fake-server` (kube-fake-client over HTTP on 127.0.0.1) and
//! points a kube 5 client at it. The binary is built on first use if it is missing (after a
//! change to the fake itself, rebuild it: `.ci/run` always does); each server stops when the test process exits (its stdin closes).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, Once};

static BUILD: Once = Once::new();
static BUILD_RELEASE: Once = Once::new();
static SERVERS: Mutex<Vec<(Child, ChildStdin)>> = Mutex::new(Vec::new());

/// The server binary of `profile` (`debug` or `release`), built on first use if missing.
fn binary(profile: &str) -> PathBuf {
    // Included from member crates (one level down) and from the root package.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = [
        manifest.join("test-support"),
        manifest.join("../test-support"),
    ]
    .into_iter()
    .find(|d| d.is_dir())
    .expect("test-support folder")
    .join("kube-fake-server");
    let bin = dir.join("target").join(profile).join("kube-fake-server");
    let once = if profile == "release" {
        &BUILD_RELEASE
    } else {
        &BUILD
    };
    once.call_once(|| {
        // `.ci/run` builds the debug one first; build here only on a fresh machine.
        if bin.exists() {
            return;
        }
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "--locked", "--manifest-path"]);
        cargo.arg(dir.join("Cargo.toml"));
        if profile == "release" {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("cargo build of the fake API server");
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
    spawn(binary("debug"), args)
}

/// Like [`start`], with the server built in release mode (for benchmarks).
pub fn start_release(args: &[&str]) -> FakeServer {
    spawn(binary("release"), args)
}

fn spawn(binary: PathBuf, args: &[&str]) -> FakeServer {
    let log = tempfile::NamedTempFile::new()
        .unwrap()
        .into_temp_path()
        .keep()
        .unwrap();
    let mut child = Command::new(binary)
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
    /// A kubeconfig file that points at this server.
    pub fn kubeconfig(&self) -> PathBuf {
        let path = tempfile::NamedTempFile::new()
            .unwrap()
            .into_temp_path()
            .keep()
            .unwrap();
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\n",
            self.url
        );
        std::fs::write(&path, text).unwrap();
        path
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
