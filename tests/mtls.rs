//! Real mutual TLS through a rotation, in every convergence order.
//!
//! The engine drives a rotation of the `envoy-gateway` profile step by step. Each component
//! serves and dials with the Secret version it has loaded: the kubelet swaps a mounted
//! Secret atomically, Envoy Gateway re-reads it per connection, Envoy reloads it when the
//! files change, and the rate-limit service reads it only at start (the engine restarts it
//! in every step). Between two steps each component may therefore hold the version from
//! before or after the step, in any combination, and the next step only runs once every
//! component holds the newer one (the convergence interval, and the restart's rollout).
//!
//! For every step and every combination, every component dials every other with rustls
//! (client certificate required, both ways) over 127.0.0.1, and the same handshakes are
//! checked with OpenSSL (`s_server -Verify` / `s_client`) on the mixed states. Staged must
//! fail none; upstream's single-step order and a rotation without bundling fail some, and
//! the test prints which.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use certrotate::core::plan::{ObjectRef, Strategy};
use certrotate::core::{BundlePolicy, Profile, RotationPolicy, SeededEntropy, Trigger};
use certrotate::engine::{Engine, ManualClock, MemoryStore, RunMode, observe};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NS: &str = "envoy-gateway-system";
const COMPONENTS: [&str; 3] = ["envoy-gateway", "envoy", "envoy-rate-limit"];

/// The name a peer dials each component by (matching the profile's SANs).
fn dns_name(component: &str) -> String {
    match component {
        "envoy-gateway" => format!("envoy-gateway.{NS}.svc"),
        "envoy" => format!("envoy.{NS}"),
        _ => format!("envoy-ratelimit.{NS}"),
    }
}

/// What one component has loaded: its Secret at some version.
#[derive(Clone, PartialEq, Eq)]
struct View {
    trust: Vec<u8>,
    crt: Vec<u8>,
    key: Vec<u8>,
}

type Snapshot = BTreeMap<&'static str, View>;

async fn snapshot(store: &Arc<MemoryStore>, profile: &Profile) -> Snapshot {
    let observed = observe(store, profile).await.unwrap();
    COMPONENTS
        .iter()
        .map(|c| {
            let data = &observed.secrets[&ObjectRef::new(NS, *c)].data;
            (
                *c,
                View {
                    trust: data["ca.crt"].clone(),
                    crt: data["tls.crt"].clone(),
                    key: data["tls.key"].clone(),
                },
            )
        })
        .collect()
}

/// Installs, then rotates one step per run, returning the component Secrets after each.
async fn rotation(strategy: Strategy, max_carried: usize, drop_old_ca: bool) -> Vec<Snapshot> {
    let profile = Profile::envoy_gateway(NS);
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 0:00 UTC)));
    Engine::new(store.clone())
        .with_clock(clock.clone())
        .with_entropy(SeededEntropy::new(1))
        .run(&profile.clone(), &RotationPolicy::default(), RunMode::Once)
        .await
        .unwrap();
    let mut snapshots = vec![snapshot(&store, &profile).await];
    let mut options = RotationPolicy::default();
    options.trigger = Trigger::Always;
    options.strategy = strategy;
    options.drop_old_ca = drop_old_ca;
    options.bundle_policy = BundlePolicy::new(max_carried);
    for run in 0..6 {
        clock.advance(Duration::from_secs(3600));
        let report = Engine::new(store.clone())
            .with_clock(clock.clone())
            .with_entropy(SeededEntropy::new(2 + run))
            .run(&profile.clone(), &options.clone(), RunMode::Once)
            .await
            .unwrap();
        let snap = snapshot(&store, &profile).await;
        if snapshots.last() != Some(&snap) {
            snapshots.push(snap);
        }
        if report.phase == certrotate::core::plan::Phase::Stable {
            break;
        }
    }
    snapshots
}

fn roots(pem: &[u8]) -> Arc<RootCertStore> {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        store.add(cert.unwrap()).unwrap();
    }
    Arc::new(store)
}

fn chain(view: &View) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let certs = CertificateDer::pem_slice_iter(&view.crt)
        .map(Result::unwrap)
        .collect();
    (certs, PrivateKeyDer::from_pem_slice(&view.key).unwrap())
}

/// Verifies the server's chain with webpki and, unless `check_name`, ignores only a name
/// mismatch. certgen gives Envoy and the rate-limit service the SAN `*.NAMESPACE`, a
/// wildcard directly above a single label that RFC 6125 matchers (webpki among them) refuse
/// to match, so in Envoy Gateway those links rest on the chain, not on the name; the
/// envoy-gateway server's names are checked strictly.
#[derive(Debug)]
struct ChainVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    check_name: bool,
}

impl rustls::client::danger::ServerCertVerifier for ChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// One real mTLS handshake: `client` dials `server`, both requiring the other's certificate.
async fn handshake(client: &View, server: &View, name: &str) -> bool {
    let (server_chain, server_key) = chain(server);
    let verifier = WebPkiClientVerifier::builder(roots(&server.trust))
        .build()
        .unwrap();
    let server_config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(server_chain, server_key)
        .unwrap();
    let (client_chain, client_key) = chain(client);
    let verifier = ChainVerifier {
        inner: rustls::client::WebPkiServerVerifier::builder(roots(&client.trust))
            .build()
            .unwrap(),
        check_name: name.starts_with("envoy-gateway."),
    };
    let client_config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(client_chain, client_key)
        .unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let server_side = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.ok()?;
        tls.write_all(b"k").await.ok()?;
        tls.flush().await.ok()
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client_ok = match connector
        .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
        .await
    {
        // In TLS 1.3 the client learns that the server refused its certificate only when
        // it reads: so read the server's byte.
        Ok(mut tls) => {
            let mut byte = [0u8; 1];
            tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut byte))
                .await
                .is_ok_and(|r| r.is_ok())
        }
        Err(e) => {
            if std::env::var_os("MTLS_DEBUG").is_some() {
                eprintln!("{name}: {e}");
            }
            false
        }
    };
    let server_ok = tokio::time::timeout(Duration::from_secs(5), server_side)
        .await
        .is_ok_and(|r| r.unwrap().is_some());
    client_ok && server_ok
}

struct Tally {
    attempted: usize,
    failed: Vec<String>,
}

/// Every step × every convergence state × every ordered pair of components.
async fn explore(snapshots: &[Snapshot]) -> Tally {
    let mut tally = Tally {
        attempted: 0,
        failed: Vec::new(),
    };
    for (step, pair) in snapshots.windows(2).enumerate() {
        let (before, after) = (&pair[0], &pair[1]);
        for mask in 0u8..(1 << COMPONENTS.len()) {
            let view = |i: usize| {
                if mask & (1 << i) != 0 {
                    &after[COMPONENTS[i]]
                } else {
                    &before[COMPONENTS[i]]
                }
            };
            for (a, client) in COMPONENTS.iter().enumerate() {
                for (b, server) in COMPONENTS.iter().enumerate() {
                    if a == b {
                        continue;
                    }
                    tally.attempted += 1;
                    if !handshake(view(a), view(b), &dns_name(server)).await {
                        let state = |i: usize| if mask & (1 << i) != 0 { "new" } else { "old" };
                        tally.failed.push(format!(
                            "step {}: {client} ({}) -> {server} ({})",
                            step + 1,
                            state(a),
                            state(b)
                        ));
                    }
                }
            }
        }
    }
    tally
}

#[tokio::test]
async fn staged_rotation_fails_no_handshake_in_any_convergence_order() {
    let snapshots = rotation(Strategy::Staged, 1, false).await;
    assert_eq!(snapshots.len(), 3, "install, trust, leaves");
    let tally = explore(&snapshots).await;
    println!(
        "staged: {} handshakes attempted, {} failed",
        tally.attempted,
        tally.failed.len()
    );
    assert_eq!(tally.attempted, 2 * 8 * 6);
    assert!(tally.failed.is_empty(), "{:#?}", tally.failed);

    // And with the old CA retired at the end.
    let snapshots = rotation(Strategy::Staged, 1, true).await;
    assert_eq!(snapshots.len(), 4, "install, trust, leaves, retire");
    let tally = explore(&snapshots).await;
    println!(
        "staged + retire: {} handshakes attempted, {} failed",
        tally.attempted,
        tally.failed.len()
    );
    assert!(tally.failed.is_empty(), "{:#?}", tally.failed);
}

#[tokio::test]
async fn single_step_and_unbundled_rotations_fail_in_some_orders() {
    let snapshots = rotation(Strategy::SingleStep, 1, false).await;
    assert_eq!(snapshots.len(), 2);
    let tally = explore(&snapshots).await;
    println!(
        "single-step (upstream): {} attempted, {} failed",
        tally.attempted,
        tally.failed.len()
    );
    for f in &tally.failed {
        println!("  {f}");
    }
    // Exactly the pairs where one side holds the new leaf and the other only the old CA.
    assert_eq!(tally.failed.len(), 24, "{:#?}", tally.failed);
    assert!(
        tally
            .failed
            .iter()
            .all(|f| f.contains("(new)") && f.contains("(old)")),
        "{:#?}",
        tally.failed
    );

    let snapshots = rotation(Strategy::SingleStep, 0, false).await;
    let tally = explore(&snapshots).await;
    println!(
        "no bundling: {} attempted, {} failed",
        tally.attempted,
        tally.failed.len()
    );
    // With each Secret swapped whole, a pair fails exactly when one side holds the new
    // version and the other the old one: in both directions, bundled or not (the old side
    // cannot verify the new leaf). 3 states with one new component and 3 with two, each
    // with 4 such ordered pairs.
    assert_eq!(tally.failed.len(), 24, "{:#?}", tally.failed);
    assert!(
        tally
            .failed
            .iter()
            .all(|f| f.contains("(new)") && f.contains("(old)"))
    );
}

/// OpenSSL as the peer: an independent TLS implementation accepts what certrotate writes in
/// every mixed state of the staged rotation, and rejects what single-step writes.
#[test]
fn openssl_agrees() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let staged = runtime.block_on(rotation(Strategy::Staged, 1, false));
    let single = runtime.block_on(rotation(Strategy::SingleStep, 1, false));
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, v: &View| {
        for (file, data) in [("trust", &v.trust), ("crt", &v.crt), ("key", &v.key)] {
            let mut f = std::fs::File::create(dir.path().join(format!("{name}.{file}"))).unwrap();
            f.write_all(data).unwrap();
        }
    };
    let mut attempted = 0;
    // Server holds the new version, client the old, and the reverse, for each step.
    for (label, snapshots, expect_ok) in
        [("staged", &staged, true), ("single-step", &single, false)]
    {
        let mut all_ok = true;
        for pair in snapshots.windows(2) {
            for (server_view, client_view) in [
                (&pair[1]["envoy-gateway"], &pair[0]["envoy"]),
                (&pair[0]["envoy-gateway"], &pair[1]["envoy"]),
            ] {
                write("server", server_view);
                write("client", client_view);
                attempted += 1;
                all_ok &= openssl_handshake(dir.path());
            }
        }
        assert_eq!(all_ok, expect_ok, "{label}: openssl verdict");
    }
    println!("openssl: {attempted} handshakes attempted");
}

/// Envoy Gateway's own TLS stack as the peer (the Go TLS peer of `test-support/tlspeer`:
/// crypto/tls, files re-read on every handshake, client certificates required): one
/// server that is never restarted, its files changed under it as the kubelet would, and a
/// client with the other component's files, in every mixed state of each rotation. Zero
/// failed handshakes for staged; single-step fails. Counted by the server.
#[test]
fn go_peer_agrees() {
    let Some(tlspeer) = certrotate_controlplane::tlspeer() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let staged = runtime.block_on(rotation(Strategy::Staged, 1, false));
    let retired = runtime.block_on(rotation(Strategy::Staged, 1, true));
    let single = runtime.block_on(rotation(Strategy::SingleStep, 1, false));
    let tmp = tempfile::tempdir().unwrap();
    let (server_dir, client_dir) = (tmp.path().join("server"), tmp.path().join("client"));
    let mount = |dir: &std::path::Path, v: &View| {
        certrotate_controlplane::go_peer::mount(dir, &v.crt, &v.key, &v.trust).unwrap();
    };
    mount(&server_dir, &staged[0]["envoy-gateway"]);
    let server = certrotate_controlplane::go_peer::Server::start(&tlspeer, &server_dir).unwrap();
    let mut tally = Vec::new();
    for (label, snapshots, expect_ok) in [
        ("staged", &staged, true),
        ("staged with --drop-old-ca", &retired, true),
        ("single-step", &single, false),
    ] {
        let (mut ok, mut failed) = (0, 0);
        for pair in snapshots.windows(2) {
            for (server_view, client_view) in [
                (&pair[1]["envoy-gateway"], &pair[0]["envoy"]),
                (&pair[0]["envoy-gateway"], &pair[1]["envoy"]),
                (&pair[1]["envoy-gateway"], &pair[1]["envoy"]),
            ] {
                mount(&server_dir, server_view);
                mount(&client_dir, client_view);
                let (good, _) = certrotate_controlplane::go_peer::connect(
                    &tlspeer,
                    &server.addr,
                    &dns_name("envoy-gateway"),
                    &client_dir,
                    1,
                )
                .unwrap();
                if good {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
        }
        if expect_ok {
            assert_eq!(
                failed, 0,
                "{label}: {failed} failed handshakes with the Go peer"
            );
        } else {
            assert!(
                failed > 0,
                "{label}: the Go peer accepted every mixed state"
            );
        }
        tally.push((label, ok, failed));
    }
    let counts = server.stop().unwrap();
    let (ok, failed) = tally
        .iter()
        .fold((0, 0), |(o, f), (_, ok, failed)| (o + ok, f + failed));
    assert_eq!(
        (counts.ok, counts.failed),
        (ok, failed),
        "the server agrees"
    );
    for (label, ok, failed) in tally {
        println!("go peer, {label}: {ok} handshakes ok, {failed} failed");
    }
}

fn openssl_handshake(dir: &std::path::Path) -> bool {
    use std::process::{Command, Stdio};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = |f: &str| dir.join(f);
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-naccept",
            "1",
            "-verify_return_error",
            "-Verify",
            "1",
            "-accept",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(p("server.crt"))
        .arg("-key")
        .arg(p("server.key"))
        .arg("-CAfile")
        .arg(p("server.trust"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it listens (without connecting: it accepts one connection only).
    for _ in 0..100 {
        let listening = std::fs::read_to_string("/proc/net/tcp")
            .map(|t| t.contains(&format!(":{port:04X} 00000000:0000 0A")))
            .unwrap_or(false);
        if listening {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let client = Command::new("openssl")
        .args(["s_client", "-verify_return_error", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "-servername",
            &dns_name("envoy-gateway"),
            "-verify_hostname",
            &dns_name("envoy-gateway"),
        ])
        .arg("-cert")
        .arg(p("client.crt"))
        .arg("-key")
        .arg(p("client.key"))
        .arg("-CAfile")
        .arg(p("client.trust"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = {
        let mut client = client;
        client.stdin.take().unwrap().write_all(b"Q\n").unwrap();
        client.wait_with_output().unwrap()
    };
    let _ = server.kill();
    let server_out = server.wait_with_output().unwrap();
    let client_text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let server_text = String::from_utf8_lossy(&server_out.stdout).into_owned()
        + &String::from_utf8_lossy(&server_out.stderr);
    let client_ok = out.status.success() && client_text.contains("Verify return code: 0 (ok)");
    let server_ok = !server_text.contains("verify error") && !server_text.contains("alert");
    client_ok && server_ok
}
