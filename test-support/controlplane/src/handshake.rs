//! Workload clients that connect over and over, as Envoy's and the rate limit's clients
//! do, and count each handshake that worked or failed.
//!
//! One attempt: TCP connect, a TLS handshake (rustls, aws-lc-rs, ALPN `h2`, no resumption:
//! every attempt is a full handshake), the HTTP/2 client preface sent, and the server's
//! first bytes read. Reading matters: in TLS 1.3 the client's handshake is over before the
//! server has judged the client certificate, and a refusal arrives as an alert on the first
//! read. A gRPC server (the controller's xDS servers, the rate limit's) sends its SETTINGS
//! frame at once, so a byte read is a connection the server accepted.
//!
//! How a client loads its files is its [`Reload`] rule: on every attempt from the folder's
//! current `..data` version (Envoy's SDS files, reloaded when that link moves), or once at
//! its start and again at each [`Workloads::restart`] (a process that builds its TLS
//! configuration once: the rate limit's xDS client, Envoy's static `trusted_ca`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{Deadline, Error};

/// The HTTP/2 client preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
/// The bound of each part of an attempt (connect, handshake, first read).
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause between two attempts of one client.
const PAUSE: Duration = Duration::from_millis(25);
/// How many failures each client keeps the text of.
const KEPT_FAILURES: usize = 20;

/// When a client reads its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// Before every attempt, from the folder's `..data` version as it is then.
    EachAttempt,
    /// At its start, and again when restarted ([`Workloads::restart`]).
    AtStart,
}

/// One workload client.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// Its name in the tally.
    pub name: String,
    /// The server it connects to.
    pub addr: SocketAddr,
    /// The name it sends as SNI, and verifies in the server's certificate if `check_name`.
    pub server_name: String,
    /// Whether the server's certificate must be valid for `server_name`. Without it, only
    /// the chain is verified: Envoy's rate-limit cluster matches no name.
    pub check_name: bool,
    /// The folder of the CA bundle it trusts (`ca.crt`).
    pub trust: PathBuf,
    /// The folder of the certificate it presents (`tls.crt`, `tls.key`), if any.
    pub identity: Option<PathBuf>,
    /// When it reads those files.
    pub reload: Reload,
}

/// One failed attempt.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The phase the attempt ran in ([`Workloads::set_phase`]).
    pub phase: String,
    /// What failed.
    pub error: String,
}

/// What one client counted.
#[derive(Clone, Debug)]
pub struct Tally {
    /// The client.
    pub name: String,
    /// Attempts the server accepted.
    pub ok: u64,
    /// Failed handshakes: TLS refused a certificate, on either side (or the client could
    /// not load its own files).
    pub failed: u64,
    /// Attempts that reached no TLS verdict: the connection refused, reset or timed out
    /// (a server restarting, not a certificate refused). Counted, never a failure.
    pub unreachable: u64,
    /// What the last unreachable attempt met.
    pub last_unreachable: Option<String>,
    /// Times it was restarted.
    pub restarts: u64,
    /// Accepted attempts per phase.
    pub ok_by_phase: BTreeMap<String, u64>,
    /// Failed attempts per phase.
    pub failed_by_phase: BTreeMap<String, u64>,
    /// The first failures, with their errors.
    pub failures: Vec<Failure>,
}

#[derive(Default)]
struct Counters {
    ok: u64,
    failed: u64,
    unreachable: u64,
    last_unreachable: Option<String>,
    ok_by_phase: BTreeMap<String, u64>,
    failed_by_phase: BTreeMap<String, u64>,
    failures: Vec<Failure>,
}

struct Shared {
    phase: Arc<Mutex<String>>,
    counters: Mutex<Counters>,
    generation: AtomicU64,
    stop: AtomicBool,
}

struct Client {
    name: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// Workload clients running continuously, each in a task of its own.
#[derive(Default)]
pub struct Workloads {
    phase: Arc<Mutex<String>>,
    clients: Vec<Client>,
}

impl Workloads {
    /// No client yet; the phase is `""`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a client.
    pub fn spawn(&mut self, spec: ClientSpec) {
        let shared = Arc::new(Shared {
            phase: Arc::clone(&self.phase),
            counters: Mutex::new(Counters::default()),
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let name = spec.name.clone();
        let task = tokio::spawn(run(spec, Arc::clone(&shared)));
        self.clients.push(Client { name, shared, task });
    }

    /// Names the phase the next attempts run in.
    pub fn set_phase(&self, phase: &str) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase.to_owned();
    }

    /// Restarts the client `name`: it reads its files again before its next attempt (an
    /// [`Reload::EachAttempt`] client does anyway).
    pub fn restart(&self, name: &str) {
        for client in self.clients.iter().filter(|c| c.name == name) {
            client.shared.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// What each client counted so far.
    pub fn tally(&self) -> Vec<Tally> {
        self.clients
            .iter()
            .map(|c| {
                let counters = c
                    .shared
                    .counters
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                Tally {
                    name: c.name.clone(),
                    ok: counters.ok,
                    failed: counters.failed,
                    unreachable: counters.unreachable,
                    last_unreachable: counters.last_unreachable.clone(),
                    restarts: c.shared.generation.load(Ordering::SeqCst),
                    ok_by_phase: counters.ok_by_phase.clone(),
                    failed_by_phase: counters.failed_by_phase.clone(),
                    failures: counters.failures.clone(),
                }
            })
            .collect()
    }

    /// Waits (bounded) until every client has had `n` more attempts accepted than now.
    pub async fn wait_accepted(&self, n: u64, bound: Duration) -> Result<(), Error> {
        let start: Vec<u64> = self.tally().iter().map(|t| t.ok).collect();
        let deadline = Deadline::new(
            format!("every workload client to have {n} more handshakes accepted"),
            bound,
        );
        loop {
            let tally = self.tally();
            if tally.iter().zip(&start).all(|(t, s)| t.ok >= s + n) {
                return Ok(());
            }
            if let Err(Error::Timeout { what, after }) = deadline.tick().await {
                let mut what = format!("{what}; counted:");
                for t in &tally {
                    what.push_str(&format!(
                        " {} {} accepted, {} failed (last: {});",
                        t.name,
                        t.ok,
                        t.failed,
                        t.failures.last().map_or("-", |f| f.error.as_str())
                    ));
                }
                return Err(Error::Timeout { what, after });
            }
        }
    }

    /// Stops every client and returns what each counted.
    pub async fn stop(self) -> Vec<Tally> {
        for client in &self.clients {
            client.shared.stop.store(true, Ordering::SeqCst);
        }
        let tally = self.tally();
        for client in self.clients {
            let _ = client.task.await;
        }
        tally
    }
}

/// A client's loop: (re)load its configuration when its rule says, attempt, count, pause.
async fn run(spec: ClientSpec, shared: Arc<Shared>) {
    let mut loaded: Option<(u64, Result<Arc<rustls::ClientConfig>, String>)> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        let generation = shared.generation.load(Ordering::SeqCst);
        let config = match (&loaded, spec.reload) {
            (Some((g, config)), Reload::AtStart) if *g == generation => config.clone(),
            _ => {
                let config = client_config(&spec).map(Arc::new);
                loaded = Some((generation, config.clone()));
                config
            }
        };
        let phase = shared
            .phase
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let outcome = match config {
            Ok(config) => attempt(config, spec.addr, &spec.server_name).await,
            Err(e) => Err(Attempt::Refused(e)),
        };
        {
            let mut c = shared
                .counters
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match outcome {
                Ok(()) => {
                    c.ok += 1;
                    *c.ok_by_phase.entry(phase).or_default() += 1;
                }
                Err(Attempt::Unreachable(error)) => {
                    c.unreachable += 1;
                    c.last_unreachable = Some(error);
                }
                Err(Attempt::Refused(error)) => {
                    c.failed += 1;
                    *c.failed_by_phase.entry(phase.clone()).or_default() += 1;
                    if c.failures.len() < KEPT_FAILURES {
                        c.failures.push(Failure { phase, error });
                    }
                }
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// How an attempt ended, if not accepted.
enum Attempt {
    /// A certificate refused (by the client's verifier, or by the server: an alert).
    Refused(String),
    /// No TLS verdict: refused, reset or timed-out connections, the server gone.
    Unreachable(String),
}

/// A TLS error (rustls's, surfaced through `io::Error`) is a refusal; anything else on the
/// wire is the server being unreachable.
fn classify(stage: &str, e: &std::io::Error) -> Attempt {
    let text = format!("{stage}: {e}");
    if e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
    {
        Attempt::Refused(text)
    } else {
        Attempt::Unreachable(text)
    }
}

/// One attempt: connect, handshake, send the HTTP/2 preface, read the server's first bytes.
async fn attempt(
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    server_name: &str,
) -> Result<(), Attempt> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| Attempt::Refused(format!("server name {server_name}: {e}")))?;
    let tcp = tokio::time::timeout(STEP_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| Attempt::Unreachable(format!("connecting to {addr}: timed out")))?
        .map_err(|e| Attempt::Unreachable(format!("connecting to {addr}: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = tokio::time::timeout(STEP_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| Attempt::Unreachable("handshake: timed out".into()))?
        .map_err(|e| classify("handshake", &e))?;
    let exchange = async {
        tls.write_all(H2_PREFACE).await?;
        tls.flush().await?;
        let mut buf = [0u8; 64];
        tls.read(&mut buf).await
    };
    match tokio::time::timeout(STEP_TIMEOUT, exchange).await {
        Err(_) => Err(Attempt::Unreachable("first read: timed out".into())),
        Ok(Err(e)) => Err(classify(
            "first read (the server judging our certificate)",
            &e,
        )),
        Ok(Ok(0)) => Err(Attempt::Unreachable(
            "first read: the server closed the connection".into(),
        )),
        Ok(Ok(_)) => Ok(()),
    }
}

/// The folder's current version: `DIR/..data` resolved (the kubelet layout's, and
/// certrotate's standalone layout's, swap), so the files read belong together; `DIR` itself
/// when it has no `..data`.
fn version_dir(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir.join("..data")).unwrap_or_else(|_| dir.to_path_buf())
}

/// The client's TLS configuration from its files as they are now.
fn client_config(spec: &ClientSpec) -> Result<rustls::ClientConfig, String> {
    let trust = version_dir(&spec.trust).join("ca.crt");
    let mut roots = rustls::RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(&trust)
        .map_err(|e| format!("reading {}: {e}", trust.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("reading {}: {e}", trust.display()))?;
    let (added, _) = roots.add_parsable_certificates(cas);
    if added == 0 {
        return Err(format!("{}: no usable CA", trust.display()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .map_err(|e| format!("{}: {e}", trust.display()))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = if spec.check_name {
        builder.with_webpki_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
    };
    let mut config = match &spec.identity {
        None => builder.with_no_client_auth(),
        Some(dir) => {
            let dir = version_dir(dir);
            let (crt, key) = (dir.join("tls.crt"), dir.join("tls.key"));
            let chain = CertificateDer::pem_file_iter(&crt)
                .map_err(|e| format!("reading {}: {e}", crt.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("reading {}: {e}", crt.display()))?;
            // The error names the file only: never its content.
            let key = PrivateKeyDer::from_pem_file(&key)
                .map_err(|_| format!("reading {}: no usable private key", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{}: {e}", crt.display()))?
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// webpki's verification without the name check: a server certificate whose chain verifies
/// but whose names do not cover the server name is accepted (as Envoy accepts one when its
/// validation context matches no subject alternative name). rustls checks the name only once
/// the chain has verified, so `NotValidForName` means the chain holds.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
