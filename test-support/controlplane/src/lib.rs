//! A real Kubernetes control plane for certrotate's end-to-end tests, as controller-runtime's
//! envtest is for Go (its `pkg/internal/testing/controlplane` is the reference for the flags).
//!
//! [`ControlPlane::start`] runs etcd, kube-apiserver (RBAC, an audit log, service-account
//! tokens), kube-controller-manager (the Deployment, ReplicaSet, service-account and
//! garbage-collector controllers, among others) and KWOK (a fake Node whose pods become Ready
//! without a kubelet), all on 127.0.0.1 on free ports, and waits (bounded) until the API
//! server is ready, the KWOK node is Ready and the controllers run. It hands a test an admin
//! [`kube::Client`], an admin kubeconfig file and ServiceAccount tokens (TokenRequest).
//!
//! The programs are built from Go modules by `test-support/controlplane/build.sh`, pinned
//! in `versions.env`, into a cache outside the tree. Where they are not built,
//! [`ControlPlane::shared`] prints one line saying the end-to-end tests did not run and the
//! command that builds them, and returns `None`; with `CERTROTATE_REQUIRE_CONTROLPLANE=1`
//! (CI) it panics instead.
//!
//! ```no_run
//! # async fn t() {
//! let Some(cp) = certrotate_controlplane::ControlPlane::shared() else { return };
//! let ns = cp.namespace("demo").await.unwrap();
//! let client = cp.client().unwrap();
//! # let _ = (ns, client);
//! # }
//! ```
//!
//! Every process is stopped by its PID: when a [`ControlPlane`] is dropped (also while a
//! test unwinds from a panic), and, for the shared one that lives as long as the test binary,
//! when the test binary exits in any way: each program runs under `setpriv --pdeathsig KILL`
//! (`prctl(PR_SET_PDEATHSIG)`, spawned from a thread that lives as long as the control plane),
//! in a process group of its own, and a small reaper process (`sh`) whose standard input is
//! a pipe from the test binary kills them by PID and removes the control plane's folder
//! when that pipe closes.
//!
//! The code: `start.rs` brings the programs up (the thread that owns them, each one
//! awaited, bounded), `procs.rs` spawns, watches and stops them, `certs.rs` writes their
//! PKI and kubeconfigs, `cluster.rs` is what tests do on the running cluster (server-side
//! apply, Envoy Gateway's chart, rollouts, namespaces, ServiceAccount tokens), `wait.rs`
//! the bounded wait ([`Deadline`]) and `error.rs` the [`Error`] type; `binaries.rs` finds
//! the programs `build.sh` built.

mod binaries;
mod certgen;
mod certs;
mod cluster;
mod error;
pub mod go_peer;
pub mod handshake;
pub mod host;
pub mod kubelet;
pub mod netns;
mod procs;
mod start;
mod wait;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::mpsc;

pub use binaries::{Binaries, REQUIRE_ENV, skip_or_fail, tlspeer};
pub use certgen::CertgenRun;
pub use cluster::yaml_documents;
pub use error::Error;
pub(crate) use error::{io_err, kube_err};
pub(crate) use start::free_ports;
pub use wait::Deadline;

/// The name of the KWOK node; pin test pods to it with `spec.nodeName` (there is no
/// scheduler).
pub const NODE_NAME: &str = "kwok-node";

/// The topology-injector webhook configuration Envoy Gateway's chart ships.
pub const ENVOY_GATEWAY_WEBHOOK: &str = "envoy-gateway-topology-injector.envoy-gateway-system";

/// A running control plane: etcd, kube-apiserver, kube-controller-manager and KWOK.
///
/// Dropping it stops every program (by PID) and removes its folder.
#[derive(Debug)]
pub struct ControlPlane {
    info: Info,
    /// Dropped (closed) to tell the owner thread to stop the programs.
    stop: Option<mpsc::Sender<()>>,
    owner: Option<std::thread::JoinHandle<()>>,
}

/// What the owner thread hands back once everything is up.
#[derive(Debug, Clone)]
pub(crate) struct Info {
    bins: Binaries,
    dir: PathBuf,
    server: String,
    config: kube::Config,
    admin_kubeconfig: PathBuf,
    audit_log: PathBuf,
    ca_pem: String,
}

/// The shared control plane (or why it did not start).
static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

impl ControlPlane {
    /// The control plane shared by every test of this test binary, started on first use.
    ///
    /// `None` when the programs are not built (one line printed, see the crate docs), or a
    /// panic under `CERTROTATE_REQUIRE_CONTROLPLANE=1`. Panics when they are built but the
    /// control plane does not start (a real failure, with the failing program's log).
    /// Blocks the calling thread while starting (seconds to a minute on a loaded machine).
    pub fn shared() -> Option<&'static ControlPlane> {
        let bins = match Binaries::locate() {
            Ok(bins) => bins,
            Err(why) => {
                skip_or_fail("the end-to-end tests against a real control plane", &why);
                return None;
            }
        };
        let started = SHARED.get_or_init(|| ControlPlane::start(&bins).map_err(|e| e.to_string()));
        match started {
            Ok(cp) => Some(cp),
            Err(e) => panic!("the test control plane did not start: {e}"),
        }
    }

    /// Starts a control plane of its own (most tests want [`ControlPlane::shared`]).
    ///
    /// Blocks the calling thread; may be called from inside a Tokio runtime.
    pub fn start(bins: &Binaries) -> Result<ControlPlane, Error> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let bins = bins.clone();
        // The programs are spawned from this thread, which lives as long as the control
        // plane: a parent-death signal fires when the *thread* that forked a child ends.
        let owner = std::thread::Builder::new()
            .name("controlplane".into())
            .spawn(move || start::owner(&bins, &ready_tx, &stop_rx))
            .map_err(io_err("spawning the control plane's thread"))?;
        let info = match ready_rx.recv() {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => {
                let _ = owner.join();
                return Err(e);
            }
            Err(_) => {
                let _ = owner.join();
                return Err(Error::Io {
                    what: "starting the control plane".into(),
                    source: std::io::Error::other("its thread panicked"),
                });
            }
        };
        Ok(ControlPlane {
            info,
            stop: Some(stop_tx),
            owner: Some(owner),
        })
    }

    /// The admin client's configuration, for a client made on another runtime.
    pub fn config(&self) -> kube::Config {
        self.info.config.clone()
    }

    /// A client with cluster-admin rights (`system:masters`). Call it inside the Tokio
    /// runtime that will use it (each `#[tokio::test]` has its own).
    pub fn client(&self) -> Result<kube::Client, Error> {
        kube::Client::try_from(self.info.config.clone()).map_err(kube_err("building a client"))
    }

    /// A client that authenticates with a bearer `token` (a ServiceAccount's, say) and
    /// nothing else.
    pub fn client_with_token(&self, token: &str) -> Result<kube::Client, Error> {
        let mut config = self.info.config.clone();
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.to_owned().into()),
            ..Default::default()
        };
        kube::Client::try_from(config).map_err(kube_err("building a token client"))
    }

    /// The admin kubeconfig file (for `kubectl --kubeconfig` and the CLI).
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.info.admin_kubeconfig
    }

    /// The API server's URL (`https://127.0.0.1:PORT`).
    pub fn server(&self) -> &str {
        &self.info.server
    }

    /// The PEM of the CA that signed the API server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.info.ca_pem
    }

    /// The API server's audit log (JSON lines, level `Metadata` for every request).
    pub fn audit_log(&self) -> &Path {
        &self.info.audit_log
    }

    /// The audit events logged so far, parsed (lines that do not parse are skipped).
    pub fn audit_events(&self) -> Result<Vec<serde_json::Value>, Error> {
        let text = std::fs::read_to_string(&self.info.audit_log)
            .map_err(io_err(format!("reading {}", self.info.audit_log.display())))?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// The programs this control plane runs (and the fixtures built beside them).
    pub fn binaries(&self) -> &Binaries {
        &self.info.bins
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(owner) = self.owner.take() {
            let _ = owner.join();
        }
    }
}
