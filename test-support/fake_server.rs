//! Starts `test-support/kube-fake-server` (kube-fake-client over HTTP on 127.0.0.1) and
//! points a kube 5 client at it. Each test process builds the server once, on first use,
//! into `kube-fake-server/` under its own target directory (a no-op when it is up to date,
//! so a change to the fake is always picked up); each server stops when the test process
//! exits (its stdin closes).
//!
//! The target directory is found from the running test binary
//! (`<target>/<profile>/deps/<binary>`), not from `$CARGO_TARGET_DIR` or a path relative to
//! the source tree, so the layout is the same whether or not `CARGO_TARGET_DIR` (or
//! `build.target-dir`) is set. The fake has its own `Cargo.lock` (kube 4), so it gets its
//! own target directory: sharing the workspace's would wait on the lock that the running
//! `cargo test` holds.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

static BUILD: OnceLock<PathBuf> = OnceLock::new();
static BUILD_RELEASE: OnceLock<PathBuf> = OnceLock::new();
static SERVERS: Mutex<Vec<(Child, ChildStdin)>> = Mutex::new(Vec::new());

/// The server binary of `profile` (`debug` or `release`), built once per process.
fn binary(profile: &str) -> PathBuf {
    let once = if profile == "release" {
        &BUILD_RELEASE
    } else {
        &BUILD
    };
    once.get_or_init(|| build(profile)).clone()
}

/// Where the fake is built: `kube-fake-server/` in the target directory of this binary.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the running test binary");
    // <target>/<profile>/deps/<binary>; with `--target T`, <target>/T/<profile>/deps/<binary>.
    exe.ancestors()
        .nth(3)
        .expect("a test binary lives in <target>/<profile>/deps")
        .join("kube-fake-server")
}

fn build(profile: &str) -> PathBuf {
    // Included from member crates (one level down) and from the root package.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let source = [
        manifest.join("test-support"),
        manifest.join("../test-support"),
    ]
    .into_iter()
    .find(|d| d.is_dir())
    .expect("test-support folder")
    .join("kube-fake-server");
    let target = target_dir();
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "--quiet", "--locked", "--manifest-path"]);
    cargo.arg(source.join("Cargo.toml"));
    cargo.arg("--target-dir").arg(&target);
    if profile == "release" {
        cargo.arg("--release");
    }
    // The server is built for the host, whatever `--target` the tests were built for.
    cargo.env_remove("CARGO_BUILD_TARGET");
    // What cargo sets for this test process is not the fake's: some build scripts track
    // these (ring tracks CARGO_MANIFEST_DIR), which would rebuild the fake on every run.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key == "OUT_DIR"
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_EXE_")
            || key.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&key.as_ref())
        {
            cargo.env_remove(key.as_ref());
        }
    }
    let status = cargo.status().expect("cargo build of the fake API server");
    assert!(
        status.success(),
        "building test-support/kube-fake-server into {} failed",
        target.display()
    );
    let bin = target.join(profile).join("kube-fake-server");
    assert!(is_file(&bin), "{} missing after its build", bin.display());
    bin
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file())
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
    let mut child = Command::new(&binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("start kube-fake-server {}: {e}", binary.display()));
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
