//! The Go TLS peer (`test-support/tlspeer`): Envoy Gateway's TLS stack (Go's crypto/tls,
//! files re-read on every handshake through `GetConfigForClient`, client certificates
//! required and verified against `ca.crt`) against certificates from certrotate-core.
//!
//! Built by `test-support/controlplane/build.sh`; where it is not built this test prints one
//! line and returns (a failure under `CERTROTATE_REQUIRE_CONTROLPLANE=1`, as in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use certrotate::core::{Ca, CaParams, LeafParams, SeededEntropy};
use time::OffsetDateTime;

const SERVER_NAME: &str = "envoy-gateway.envoy-gateway-system.svc";

/// A CA and a server and a client leaf under it.
struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn pki(seed: u64) -> Pki {
    // The Go peer checks validity against the real clock.
    #[allow(clippy::disallowed_methods)]
    let now = OffsetDateTime::now_utc();
    let mut entropy = SeededEntropy::new(seed);
    let ca = Ca::generate(&CaParams::new("control-plane"), now, &mut entropy).unwrap();
    let mut leaf = |cn: &str, dns: &str| {
        let issued = ca
            .issue_leaf(&LeafParams::new(cn, vec![dns.into()]), now, &mut entropy)
            .unwrap();
        (issued.cert_pem, issued.key_pem.expose_secret().to_owned())
    };
    let server = leaf("envoy-gateway", SERVER_NAME);
    let client = leaf("envoy", "envoy.envoy-gateway-system");
    Pki {
        ca_pem: ca.cert_pem().to_owned(),
        server,
        client,
    }
}

/// Writes `tls.crt`, `tls.key` and `ca.crt` into `dir` (the layout of a mounted Secret).
fn mount(dir: &Path, (crt, key): &(String, String), ca: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("tls.crt"), crt).unwrap();
    std::fs::write(dir.join("tls.key"), key).unwrap();
    std::fs::write(dir.join("ca.crt"), ca).unwrap();
}

/// The server, killed by PID if the test fails before it is stopped.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(tlspeer: &Path, dir: &Path) -> (Server, String) {
    let mut child = Command::new(tlspeer)
        .args(["serve", "-listen", "127.0.0.1:0", "-dir"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut server = Server { child, stdout };
    let mut line = String::new();
    server.stdout.read_line(&mut line).unwrap();
    let first: serde_json::Value = serde_json::from_str(&line).expect(&line);
    let addr = first["listening"].as_str().expect(&line).to_owned();
    (server, addr)
}

/// Runs the client `n` times from `dir`: (exit success, its summary).
fn connect(tlspeer: &Path, addr: &str, dir: &Path, n: u32) -> (bool, serde_json::Value) {
    let out = Command::new(tlspeer)
        .args(["client", "-addr", addr, "-server-name", SERVER_NAME, "-n"])
        .arg(n.to_string())
        .arg("-dir")
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), summary)
}

#[test]
fn go_peer_trusts_its_ca_refuses_another_and_rereads_files_per_handshake() {
    let Some(tlspeer) = certrotate_controlplane::tlspeer() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| -> PathBuf { tmp.path().join(name) };
    let a = pki(1);
    let b = pki(2);
    mount(&dir("server"), &a.server, &a.ca_pem);
    mount(&dir("client"), &a.client, &a.ca_pem);
    // Trusts the server, but holds a leaf of another CA.
    mount(&dir("stranger"), &b.client, &a.ca_pem);

    let (mut server, addr) = serve(&tlspeer, &dir("server"));

    let (ok, summary) = connect(&tlspeer, &addr, &dir("client"), 20);
    assert!(ok, "{summary}");
    assert_eq!(
        (summary["ok"].as_u64(), summary["failed"].as_u64()),
        (Some(20), Some(0)),
        "{summary}"
    );

    let (ok, summary) = connect(&tlspeer, &addr, &dir("stranger"), 3);
    assert!(!ok, "{summary}");
    assert_eq!(
        (summary["ok"].as_u64(), summary["failed"].as_u64()),
        (Some(0), Some(3)),
        "{summary}"
    );

    // The server's files change under it (CA B everywhere), no restart: the next handshake
    // uses them. B's client now gets in and A's no longer does.
    mount(&dir("server"), &b.server, &b.ca_pem);
    mount(&dir("stranger"), &b.client, &b.ca_pem);
    let (ok, summary) = connect(&tlspeer, &addr, &dir("stranger"), 5);
    assert!(ok, "{summary}");
    let (ok, summary) = connect(&tlspeer, &addr, &dir("client"), 2);
    assert!(!ok, "{summary}");
    assert_eq!(summary["failed"].as_u64(), Some(2), "{summary}");

    // Closing its standard input stops the server, which counts what it saw.
    drop(server.child.stdin.take());
    let counts = (&mut server.stdout)
        .lines()
        .map(Result::unwrap)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .find(|v| v.get("handshakes_ok").is_some())
        .expect("a summary line from the server");
    assert_eq!(counts["handshakes_ok"], 25, "{counts}");
    assert_eq!(counts["handshakes_failed"], 5, "{counts}");
}
