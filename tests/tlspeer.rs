//! The Go TLS peer (`test-support/tlspeer`): Envoy Gateway's TLS stack (Go's crypto/tls,
//! files re-read on every handshake through `GetConfigForClient`, client certificates
//! required and verified against `ca.crt`) against certificates from certrotate-core.
//!
//! Built by `test-support/controlplane/build.sh`; where it is not built this test prints one
//! line and returns (a failure under `CERTROTATE_REQUIRE_CONTROLPLANE=1`, as in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use certrotate::core::{Ca, CaParams, LeafParams, SeededEntropy};
use certrotate_controlplane::go_peer;
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

fn mount(dir: &Path, (crt, key): &(String, String), ca: &str) {
    go_peer::mount(dir, crt.as_bytes(), key.as_bytes(), ca.as_bytes()).unwrap();
}

fn connect(tlspeer: &Path, addr: &str, dir: &Path, n: u32) -> (bool, serde_json::Value) {
    go_peer::connect(tlspeer, addr, SERVER_NAME, dir, n).unwrap()
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

    let server = go_peer::Server::start(&tlspeer, &dir("server")).unwrap();
    let addr = server.addr.clone();

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
    let counts = server.stop().unwrap();
    assert_eq!((counts.ok, counts.failed), (25, 5), "{counts:?}");
}
