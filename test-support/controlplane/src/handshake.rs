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
    /// The name it verifies in the server's certificate (and sends as SNI).
    pub server_name: String,
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
    /// Attempts that failed.
    pub failed: u64,
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
        while !self
            .tally()
            .iter()
            .zip(&start)
            .all(|(t, s)| t.ok >= s + n)
        {
            deadline.tick().await?;
        }
        Ok(())
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
            Err(e) => Err(e),
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
                Err(error) => {
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

/// One attempt: connect, handshake, send the HTTP/2 preface, read the server's first bytes.
async fn attempt(
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    server_name: &str,
) -> Result<(), String> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| format!("server name {server_name}: {e}"))?;
    let tcp = tokio::time::timeout(STEP_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connecting to {addr}: timed out"))?
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = tokio::time::timeout(STEP_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| "handshake: timed out".to_owned())?
        .map_err(|e| format!("handshake: {e}"))?;
    let exchange = async {
        tls.write_all(H2_PREFACE).await?;
        tls.flush().await?;
        let mut buf = [0u8; 64];
        tls.read(&mut buf).await
    };
    match tokio::time::timeout(STEP_TIMEOUT, exchange).await {
        Err(_) => Err("first read: timed out".into()),
        Ok(Err(e)) => Err(format!("first read (the server judging our certificate): {e}")),
        Ok(Ok(0)) => Err("first read: the server closed the connection".into()),
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
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots);
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
