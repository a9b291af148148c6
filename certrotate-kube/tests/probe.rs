//! The probe against real TLS servers on 127.0.0.1, and the core's rules judging what it
//! read (issue 24).
//!
//! Three servers that verify client certificates, each listing its CAs in its
//! CertificateRequest: rustls (`WebPkiClientVerifier`), OpenSSL (`s_server -Verify 1
//! -CAfile`, TLS 1.3 and TLS 1.2) and the Go peer (`test-support/tlspeer`, crypto/tls
//! re-reading its files per handshake as Envoy Gateway's controller does). Each goes
//! through a rotation's two changes: `ca.crt` from `[old]` to `[next, old]`, then its leaf
//! from one the old CA issued to one the new CA issued. The Go peer shows each change at
//! the next handshake; the rustls and OpenSSL servers read their files once, so they keep
//! showing the old state (the `subPath` pod) until restarted. Then what shows nothing: a
//! closed port, an unroutable address, a TCP listener that does not speak TLS.
//!
//! Without `openssl` on the PATH its cases say so and pass, unless
//! `CERTROTATE_REQUIRE_OPENSSL=1`; without the Go peer built, likewise (see
//! `certrotate_controlplane::tlspeer`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certrotate_controlplane::go_peer;
use certrotate_core::evidence::{
    CaName, ClientAuth, Endpoint, Evidence, HandshakeEnd, Judgement, ProbeFailureKind, Shows,
    judge_leaves, judge_trust,
};
use certrotate_core::plan::ObjectRef;
use certrotate_core::{Ca, CaParams, LeafParams, SeededEntropy, Trigger};
use certrotate_kube::probe::{ProbeError, ProbeLimits, probe};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
const NAME: &str = "envoy-gateway";

/// Two generations of a CA named alike, and a leaf of each.
struct Pki {
    old: Ca,
    next: Ca,
    old_leaf: (String, String),
    new_leaf: (String, String),
}

impl Pki {
    fn new() -> Self {
        let mut e = SeededEntropy::new(24);
        let old = Ca::generate(&CaParams::new(NAME), NOW, &mut e).unwrap();
        let next = Ca::generate(&CaParams::new(NAME), NOW, &mut e).unwrap();
        let params = LeafParams::new(NAME, vec![NAME.into()]);
        let leaf = |ca: &Ca, e: &mut SeededEntropy| {
            let l = ca.issue_leaf(&params, NOW, e).unwrap();
            (l.cert_pem, l.key_pem.expose_secret().to_owned())
        };
        Self {
            old_leaf: leaf(&old, &mut e),
            new_leaf: leaf(&next, &mut e),
            old,
            next,
        }
    }

    fn old_name(&self) -> CaName {
        CaName::subject_of(self.old.cert_der()).unwrap()
    }

    fn next_name(&self) -> CaName {
        CaName::subject_of(self.next.cert_der()).unwrap()
    }

    /// The folder of a mounted Secret at each stage of the rotation.
    fn mount(&self, dir: &Path, stage: Stage) {
        let (leaf, trust) = match stage {
            Stage::Before => (&self.old_leaf, self.old.cert_pem().to_owned()),
            Stage::Trust => (
                &self.old_leaf,
                format!("{}{}", self.next.cert_pem(), self.old.cert_pem()),
            ),
            Stage::Leaves => (
                &self.new_leaf,
                format!("{}{}", self.next.cert_pem(), self.old.cert_pem()),
            ),
        };
        go_peer::mount(dir, leaf.0.as_bytes(), leaf.1.as_bytes(), trust.as_bytes()).unwrap();
    }
}

#[derive(Clone, Copy, Debug)]
enum Stage {
    /// `ca.crt` = [old], leaf of old.
    Before,
    /// `ca.crt` = [next, old], leaf of old.
    Trust,
    /// `ca.crt` = [next, old], leaf of next.
    Leaves,
}

fn endpoint(addr: &str) -> Endpoint {
    Endpoint::new(ObjectRef::new("eg", NAME), addr, NAME)
}

fn limits() -> ProbeLimits {
    let mut l = ProbeLimits::default();
    l.connect_timeout = Duration::from_millis(500);
    l.handshake_timeout = Duration::from_secs(2);
    l
}

type Probed = Vec<(Endpoint, Result<Evidence, ProbeError>)>;

async fn probe_one(addr: &str) -> Probed {
    probe(&[endpoint(addr)], &limits()).await
}

fn trust(p: &Probed, pki: &Pki) -> Judgement {
    judge_trust(p, &pki.next_name())
}

fn leaves(p: &Probed, pki: &Pki) -> Judgement {
    judge_leaves(p, pki.next.cert_pem().as_bytes(), NOW)
}

/// What the probe read at `stage` from a server that has loaded it, and how the rules judge
/// it; `ended` is asserted by the caller.
fn assert_shows(p: &Probed, pki: &Pki, stage: Stage) {
    let evidence = p[0].1.as_ref().expect("evidence");
    let listed = match &evidence.client_auth {
        ClientAuth::Requested { ca_names } => ca_names.clone(),
        ClientAuth::NotRequested => panic!("{stage:?}: no client certificate requested"),
    };
    let leaf_issuer = evidence.leaf_issuer().expect("a leaf that parses");
    let (t, l) = (trust(p, pki), leaves(p, pki));
    match stage {
        Stage::Before => {
            assert_eq!(listed, [pki.old_name()]);
            assert_eq!(leaf_issuer, pki.old_name());
            assert!(!t.converged());
            assert_eq!(
                t.lagging[0].shows,
                Shows::TrustWithoutNext {
                    ca_names: vec![pki.old_name()]
                }
            );
            assert!(!l.converged());
        }
        Stage::Trust => {
            assert_eq!(listed, [pki.next_name(), pki.old_name()]);
            assert_eq!(leaf_issuer, pki.old_name());
            assert!(t.converged() && t.agreeing.len() == 1, "{t:?}");
            assert!(!l.converged());
            assert!(
                matches!(&l.lagging[0].shows, Shows::LeafNotFromNew { issuer: Some(i), .. } if *i == pki.old_name()),
                "{l:?}"
            );
        }
        Stage::Leaves => {
            assert_eq!(listed, [pki.next_name(), pki.old_name()]);
            assert_eq!(leaf_issuer, pki.next_name());
            assert!(t.converged());
            assert!(l.converged() && l.agreeing.len() == 1, "{l:?}");
        }
    }
}

// ---- rustls ----

/// A rustls server that reads its files once, at start, and requires a client certificate
/// (or, with `client_auth` false, asks for none).
struct RustlsServer {
    addr: String,
    task: tokio::task::JoinHandle<()>,
}

impl RustlsServer {
    async fn start(dir: &Path, client_auth: bool) -> Self {
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read("tls.crt"))
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_slice(&read("tls.key")).unwrap();
        let builder = rustls::ServerConfig::builder();
        let config = if client_auth {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&read("ca.crt")) {
                roots.add(c.unwrap()).unwrap();
            }
            builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder(Arc::new(roots))
                    .build()
                    .unwrap(),
            )
        } else {
            builder.with_no_client_auth()
        }
        .with_single_cert(chain, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        Self { addr, task }
    }
}

impl Drop for RustlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn rustls_server_shows_its_trust_and_leaf_and_keeps_them_until_restarted() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    pki.mount(dir.path(), Stage::Before);
    let server = RustlsServer::start(dir.path(), true).await;
    let p = probe_one(&server.addr).await;
    assert_shows(&p, &pki, Stage::Before);
    // TLS 1.3: the server refuses a missing certificate after the client's Finished.
    assert_eq!(p[0].1.as_ref().unwrap().ended, HandshakeEnd::Completed);

    // The files change; a server that read them once (the `subPath` pod) still lags,
    // and the rule names it with what it still shows.
    pki.mount(dir.path(), Stage::Trust);
    let p = probe_one(&server.addr).await;
    assert_shows(&p, &pki, Stage::Before);
    let t = trust(&p, &pki);
    let line = t.lagging[0].to_string();
    assert!(
        line.starts_with(&format!(
            "{} (secret eg/{NAME}): trusts only [CN={NAME}",
            server.addr
        )),
        "{line}"
    );

    // Restarted, it shows the new trust.
    drop(server);
    let server = RustlsServer::start(dir.path(), true).await;
    assert_shows(&probe_one(&server.addr).await, &pki, Stage::Trust);

    pki.mount(dir.path(), Stage::Leaves);
    assert_shows(&probe_one(&server.addr).await, &pki, Stage::Trust);
    drop(server);
    let server = RustlsServer::start(dir.path(), true).await;
    assert_shows(&probe_one(&server.addr).await, &pki, Stage::Leaves);
}

#[tokio::test]
async fn a_server_asking_no_client_certificate_gives_leaf_evidence_only() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    pki.mount(dir.path(), Stage::Leaves);
    let server = RustlsServer::start(dir.path(), false).await;
    let p = probe_one(&server.addr).await;
    let evidence = p[0].1.as_ref().unwrap();
    assert_eq!(evidence.client_auth, ClientAuth::NotRequested);
    assert_eq!(evidence.ended, HandshakeEnd::Completed);
    let t = trust(&p, &pki);
    assert!(t.agreeing.is_empty() && t.lagging.is_empty());
    assert_eq!(t.silent, [endpoint(&server.addr)]);
    assert!(leaves(&p, &pki).converged());
}

// ---- OpenSSL ----

fn openssl_available() -> bool {
    if Command::new("openssl").arg("version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CERTROTATE_REQUIRE_OPENSSL").is_none_or(|v| v.is_empty() || v == "0"),
        "CERTROTATE_REQUIRE_OPENSSL=1 and no openssl on the PATH"
    );
    eprintln!("openssl not found: the probe's tests against `openssl s_server` are skipped");
    false
}

/// `openssl s_server -Verify 1 -CAfile ca.crt`, reading its files once, at start.
struct OpensslServer {
    child: Child,
    addr: String,
}

impl OpensslServer {
    fn start(dir: &Path, version: &str) -> Self {
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", version, "-Verify", "1", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(dir.join("tls.crt"))
            .arg("-key")
            .arg(dir.join("tls.key"))
            .arg("-CAfile")
            .arg(dir.join("ca.crt"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until it listens, without connecting.
        let listening = format!(":{port:04X} 00000000:0000 0A");
        for _ in 0..200 {
            if std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| t.contains(&listening)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            addr: format!("127.0.0.1:{port}"),
        }
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn openssl_rotation(version: &str) {
    if !openssl_available() {
        return;
    }
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    pki.mount(dir.path(), Stage::Before);
    let server = OpensslServer::start(dir.path(), version);
    let p = probe_one(&server.addr).await;
    assert_shows(&p, &pki, Stage::Before);
    if version == "-tls1_2" {
        // TLS 1.2: the server refuses the empty Certificate before its Finished; what it
        // showed before is still the evidence.
        assert!(
            matches!(
                &p[0].1.as_ref().unwrap().ended,
                HandshakeEnd::Refused { .. }
            ),
            "{p:?}"
        );
    }

    pki.mount(dir.path(), Stage::Trust);
    assert_shows(&probe_one(&server.addr).await, &pki, Stage::Before);
    drop(server);
    let server = OpensslServer::start(dir.path(), version);
    assert_shows(&probe_one(&server.addr).await, &pki, Stage::Trust);

    pki.mount(dir.path(), Stage::Leaves);
    drop(server);
    let server = OpensslServer::start(dir.path(), version);
    assert_shows(&probe_one(&server.addr).await, &pki, Stage::Leaves);
}

#[tokio::test]
async fn openssl_s_server_tls13_lists_its_cafile() {
    openssl_rotation("-tls1_3").await;
}

#[tokio::test]
async fn openssl_s_server_tls12_lists_its_cafile_before_refusing() {
    openssl_rotation("-tls1_2").await;
}

// ---- the Go peer (Envoy Gateway's TLS stack, re-reading per handshake) ----

#[tokio::test]
async fn go_peer_shows_each_change_at_the_next_handshake() {
    let Some(tlspeer) = certrotate_controlplane::tlspeer() else {
        return;
    };
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    pki.mount(dir.path(), Stage::Before);
    let server = go_peer::Server::start(&tlspeer, dir.path()).unwrap();
    let addr = server.addr.clone();
    for stage in [Stage::Before, Stage::Trust, Stage::Leaves] {
        pki.mount(dir.path(), stage);
        assert_shows(&probe_one(&addr).await, &pki, stage);
    }
    // The Go server counts each probe as a failed handshake (no client certificate):
    // every probe reached it and was refused by it, none was accepted.
    let counts = server.stop().unwrap();
    assert_eq!((counts.ok, counts.failed), (0, 3), "{counts:?}");
}

// ---- what shows nothing ----

#[tokio::test]
async fn endpoints_that_show_nothing_lag_with_their_reason_within_the_timeouts() {
    let pki = Pki::new();
    // A closed port.
    let closed = format!("127.0.0.1:{}", free_port());
    // A TCP listener that never speaks, and one that answers in plain text.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            held.push(tcp);
        }
    });
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = http.local_addr().unwrap().to_string();
    let _http = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = http.accept().await {
            let _ = tcp
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    // An address no one answers (TEST-NET-1, RFC 5737): a timeout, or unreachable at once.
    let unroutable = "192.0.2.1:18000";
    let endpoints: Vec<Endpoint> = [
        closed.as_str(),
        silent_addr.as_str(),
        http_addr.as_str(),
        unroutable,
        "no-such-host.invalid:1",
    ]
    .map(endpoint)
    .to_vec();
    let limits = limits();
    #[allow(clippy::disallowed_methods)] // a test measuring wall time
    let started = Instant::now();
    let p = probe(&endpoints, &limits).await;
    // All at once, so the whole is bounded by one connect and one handshake timeout.
    assert!(
        started.elapsed()
            < limits.connect_timeout + limits.handshake_timeout + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let kinds: Vec<ProbeFailureKind> = p
        .iter()
        .map(|(e, r)| {
            let err = r.as_ref().expect_err("no evidence");
            assert_eq!(&err.endpoint, e);
            err.failure.kind
        })
        .collect();
    assert_eq!(kinds[0], ProbeFailureKind::Connect);
    assert_eq!(kinds[1], ProbeFailureKind::HandshakeTimeout);
    assert_eq!(kinds[2], ProbeFailureKind::Handshake);
    assert!(
        matches!(
            kinds[3],
            ProbeFailureKind::ConnectTimeout | ProbeFailureKind::Connect
        ),
        "{:?}",
        kinds[3]
    );
    assert_eq!(kinds[4], ProbeFailureKind::Address);
    // The error names the endpoint.
    let err = p[1].1.as_ref().unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "probing {silent_addr} (secret eg/{NAME}) as {NAME}: handshake timed out"
        )),
        "{err}"
    );
    // Both rules count each as lagging, showing nothing.
    for j in [trust(&p, &pki), leaves(&p, &pki)] {
        assert!(j.agreeing.is_empty() && j.silent.is_empty());
        assert_eq!(j.lagging.len(), endpoints.len());
        assert!(
            j.lagging
                .iter()
                .all(|l| matches!(l.shows, Shows::Nothing { .. }))
        );
    }
}

#[tokio::test]
async fn concurrency_is_bounded_and_order_kept() {
    // Ten silent listeners, two at a time: five rounds of one handshake timeout each.
    let mut addrs = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(l.local_addr().unwrap().to_string());
        tasks.push(tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = l.accept().await {
                held.push(tcp);
            }
        }));
    }
    let mut limits = limits();
    limits.handshake_timeout = Duration::from_millis(200);
    limits.concurrency = 2;
    let endpoints: Vec<Endpoint> = addrs.iter().map(|a| endpoint(a)).collect();
    #[allow(clippy::disallowed_methods)] // a test measuring wall time
    let started = Instant::now();
    let p = probe(&endpoints, &limits).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1000), "{took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    let order: Vec<&Endpoint> = p.iter().map(|(e, _)| e).collect();
    assert_eq!(order, endpoints.iter().collect::<Vec<_>>());
}

/// Issue 24: a staged rotation gated on evidence, with a server that loads its files only
/// at start (a `subPath` pod). Past the convergence interval the rotation still holds at
/// `trust` (the server does not list the next CA) and, past the convergence timeout,
/// fails naming it while the phase stays; restarted, the server lists it and the leaves
/// change. In `leaves` it holds again until the server presents the new CA's leaf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_waits_for_every_server_to_show_what_it_wrote() {
    use certrotate_core::plan::{Next, Phase, WaitReason};
    use certrotate_core::{Profile, RotationPolicy};
    use certrotate_kube::{Engine, ManualClock, MemoryStore, RunMode, SecretStore};

    const NS: &str = "envoy-gateway-system";
    let t0 = datetime!(2026-06-01 0:00 UTC);
    let hour = Duration::from_secs(3600);
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(t0));
    let profile = Profile::envoy_gateway(NS);
    Engine::new(store.clone())
        .with_clock(clock.clone())
        .run(&profile, &RotationPolicy::default(), RunMode::Once)
        .await
        .unwrap();
    // The controller's Secret, as a pod mounting it would see it now.
    let dir = tempfile::tempdir().unwrap();
    let mount = || async {
        let s = store
            .read_secret(&ObjectRef::new(NS, "envoy-gateway"))
            .await
            .unwrap()
            .unwrap();
        for key in ["tls.crt", "tls.key", "ca.crt"] {
            std::fs::write(dir.path().join(key), &s.data[key]).unwrap();
        }
    };
    mount().await;
    let server = RustlsServer::start(dir.path(), true).await;
    let endpoint = Endpoint::for_component(&profile, "envoy-gateway", &server.addr).unwrap();
    let mut options = RotationPolicy::default();
    options.trigger = Trigger::Always;
    options.convergence_interval = hour;
    options.convergence_timeout = Some(6 * hour);
    let engine = || {
        Engine::new(store.clone())
            .with_clock(clock.clone())
            .with_endpoints(vec![endpoint.clone()], limits())
    };
    // To `trust`: every ca.crt now [next, current].
    let mut report = engine()
        .run(&profile, &options, RunMode::Once)
        .await
        .unwrap();
    while report.phase != Phase::Trust {
        report = engine()
            .run(&profile, &options, RunMode::Once)
            .await
            .unwrap();
    }
    // The interval passes; the server, never reloaded, still lists the current CA only.
    clock.advance(2 * hour);
    let report = engine()
        .run(&profile, &options, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Trust, "{:?}", report.summary);
    assert!(
        matches!(
            report.next,
            Next::WaitUntil {
                reason: WaitReason::Evidence {
                    phase: Phase::Trust,
                    lagging: 1
                },
                ..
            }
        ),
        "{:?}",
        report.next
    );
    // The run names the server it waits for, and what it still shows.
    let lagging = lagging_of(&report);
    assert_eq!(lagging.len(), 1, "{:?}", report.events);
    assert!(lagging[0].contains(&server.addr), "{lagging:?}");
    // Past the convergence timeout: an error naming the endpoint; the phase stays.
    clock.advance(5 * hour);
    let err = engine()
        .run(&profile, &options, RunMode::Once)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("convergence timeout"), "{err}");
    assert!(err.contains(&server.addr), "{err}");
    // Restarted with the files as they are now, it lists the next CA: the leaves change.
    drop(server);
    mount().await;
    let server = RustlsServer::start(dir.path(), true).await;
    let endpoint = Endpoint::for_component(&profile, "envoy-gateway", &server.addr).unwrap();
    let engine = || {
        Engine::new(store.clone())
            .with_clock(clock.clone())
            .with_endpoints(vec![endpoint.clone()], limits())
    };
    let report = engine()
        .run(&profile, &options, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Leaves, "{:?}", report.summary);
    // In `leaves` the server still presents the old CA's leaf: held after the interval.
    clock.advance(2 * hour);
    let report = engine()
        .run(&profile, &options, RunMode::Once)
        .await
        .unwrap();
    assert!(
        matches!(
            report.next,
            Next::WaitUntil {
                reason: WaitReason::Evidence {
                    phase: Phase::Leaves,
                    lagging: 1
                },
                ..
            }
        ),
        "{:?}",
        report.next
    );
    drop(server);
    mount().await;
    let server = RustlsServer::start(dir.path(), true).await;
    let endpoint = Endpoint::for_component(&profile, "envoy-gateway", &server.addr).unwrap();
    let report = Engine::new(store.clone())
        .with_clock(clock.clone())
        .with_endpoints(vec![endpoint], limits())
        .run(&profile, &options, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Stable, "{:?}", report.summary);
    drop(server);
}

/// Pods found through a Service, fixed (the Kubernetes store lists EndpointSlices).
struct FoundPods(Vec<(certrotate_core::evidence::ServicePort, Endpoint)>);

impl certrotate_kube::evidence::Discover for FoundPods {
    fn discover<'a>(
        &'a self,
        _profile: &'a certrotate_core::Profile,
        _services: &'a [certrotate_core::evidence::ServicePort],
    ) -> certrotate_kube::evidence::BoxFuture<'a, certrotate_kube::evidence::Discovered> {
        Box::pin(std::future::ready(
            certrotate_kube::evidence::Discovered::new(self.0.clone(), Vec::new()),
        ))
    }
}

/// Issue 24: pods found through a Service that no probe can connect to (no network path
/// from here: a NetworkPolicy, a Job outside the pod network) say nothing about the pods:
/// the phase falls back to its timers, and the run says so (`EndpointsUndiscovered`,
/// `Unreachable`). Once one pod of the Service is reached, every pod counts: the one that
/// cannot be connected to lags with the one that shows the old trust, and the phase holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_no_probe_reaches_fall_back_to_the_timers_but_one_reached_gates() {
    use certrotate_core::evidence::ServicePort;
    use certrotate_core::plan::{Next, Phase, WaitReason};
    use certrotate_core::{Profile, RotationPolicy};
    use certrotate_kube::evidence::{DiscoveryProblem, Probes};
    use certrotate_kube::{Engine, ManualClock, MemoryStore, RunMode, SecretStore};

    const NS: &str = "envoy-gateway-system";
    let hour = Duration::from_secs(3600);
    let profile = Profile::envoy_gateway(NS);
    let service = ServicePort {
        secret: ObjectRef::new(NS, "envoy-gateway"),
        service: ObjectRef::new(NS, "envoy-gateway"),
        port: 18000,
    };
    let pod = |addr: &str, name: &str| {
        Endpoint::for_component(&profile, "envoy-gateway", addr)
            .unwrap()
            .with_pod(name)
    };
    let closed = format!("127.0.0.1:{}", free_port());
    // To `trust`, then past the interval, with these pods found.
    let past_the_interval = |pods: Vec<Endpoint>| {
        let (profile, service) = (profile.clone(), service.clone());
        async move {
            let store = Arc::new(MemoryStore::new());
            let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 0:00 UTC)));
            Engine::new(store.clone())
                .with_clock(clock.clone())
                .run(&profile, &RotationPolicy::default(), RunMode::Once)
                .await
                .unwrap();
            let mut options = RotationPolicy::default();
            options.trigger = Trigger::Always;
            options.convergence_interval = hour;
            let found = FoundPods(pods.into_iter().map(|p| (service.clone(), p)).collect());
            let probes = Probes::new(Vec::new(), limits()).with_services(vec![service], found);
            let engine = Engine::new(store.clone())
                .with_clock(clock.clone())
                .with_evidence(probes);
            let mut report = engine.run(&profile, &options, RunMode::Once).await.unwrap();
            while report.phase != Phase::Trust {
                report = engine.run(&profile, &options, RunMode::Once).await.unwrap();
            }
            clock.advance(2 * hour);
            engine.run(&profile, &options, RunMode::Once).await.unwrap()
        }
    };

    // No pod reached: the timers decide, and the run says why.
    let report = past_the_interval(vec![pod(&closed, "eg-a")]).await;
    assert_eq!(report.phase, Phase::Leaves, "{:?}", report.summary);
    let undiscovered: Vec<_> = report
        .events
        .iter()
        .filter_map(|e| match e {
            certrotate_kube::Event::EndpointsUndiscovered { undiscovered } => Some(undiscovered),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        undiscovered
            .iter()
            .any(|u| u.problem == DiscoveryProblem::Unreachable { pods: 1 }),
        "{:?}",
        report.events
    );

    // One pod reached (it never reloads: a server on the install's files), one not: both
    // lag, the phase holds.
    let dir = tempfile::tempdir().unwrap();
    let report = {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 0:00 UTC)));
        Engine::new(store.clone())
            .with_clock(clock.clone())
            .run(&profile, &RotationPolicy::default(), RunMode::Once)
            .await
            .unwrap();
        let s = store
            .read_secret(&ObjectRef::new(NS, "envoy-gateway"))
            .await
            .unwrap()
            .unwrap();
        for key in ["tls.crt", "tls.key", "ca.crt"] {
            std::fs::write(dir.path().join(key), &s.data[key]).unwrap();
        }
        let server = RustlsServer::start(dir.path(), true).await;
        let mut options = RotationPolicy::default();
        options.trigger = Trigger::Always;
        options.convergence_interval = hour;
        let found = FoundPods(vec![
            (service.clone(), pod(&server.addr, "eg-stuck")),
            (service.clone(), pod(&closed, "eg-gone")),
        ]);
        let probes = Probes::new(Vec::new(), limits()).with_services(vec![service], found);
        let engine = Engine::new(store.clone())
            .with_clock(clock.clone())
            .with_evidence(probes);
        let mut report = engine.run(&profile, &options, RunMode::Once).await.unwrap();
        while report.phase != Phase::Trust {
            report = engine.run(&profile, &options, RunMode::Once).await.unwrap();
        }
        clock.advance(2 * hour);
        let report = engine.run(&profile, &options, RunMode::Once).await.unwrap();
        drop(server);
        report
    };
    assert_eq!(report.phase, Phase::Trust, "{:?}", report.summary);
    assert!(
        matches!(
            report.next,
            Next::WaitUntil {
                reason: WaitReason::Evidence {
                    phase: Phase::Trust,
                    lagging: 2
                },
                ..
            }
        ),
        "{:?}",
        report.next
    );
    let lagging = lagging_of(&report);
    assert!(
        lagging.iter().any(|l| l.starts_with("pod eg-stuck ("))
            && lagging.iter().any(|l| l.starts_with("pod eg-gone (")),
        "{lagging:?}"
    );
}

/// Every endpoint a run's `EndpointsLagging` events named, in order.
fn lagging_of(report: &certrotate_kube::RunReport) -> Vec<&String> {
    report
        .events
        .iter()
        .filter_map(|e| match e {
            certrotate_kube::Event::EndpointsLagging { lagging } => Some(lagging),
            _ => None,
        })
        .flatten()
        .collect()
}
