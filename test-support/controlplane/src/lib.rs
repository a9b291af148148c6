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

mod binaries;
mod certgen;
mod certs;
pub mod go_peer;
pub mod handshake;
pub mod host;
pub mod kubelet;
pub mod netns;
mod procs;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Node, ServiceAccount};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery;

pub use binaries::{Binaries, REQUIRE_ENV, skip_or_fail, tlspeer};
pub use certgen::CertgenRun;

/// The name of the KWOK node; pin test pods to it with `spec.nodeName` (there is no
/// scheduler).
pub const NODE_NAME: &str = "kwok-node";

/// The topology-injector webhook configuration Envoy Gateway's chart ships.
pub const ENVOY_GATEWAY_WEBHOOK: &str = "envoy-gateway-topology-injector.envoy-gateway-system";

/// Why the control plane could not start, or a request of the harness failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A program of the control plane exited while starting or running.
    #[error("{name} exited ({status}); the end of {log}:\n{tail}")]
    Exited {
        /// The program.
        name: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its log file.
        log: String,
        /// The last lines of its log.
        tail: String,
    },
    /// A bounded wait ran out.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        after: Duration,
    },
    /// Generating a certificate or key failed.
    #[error("generating {what}: {source}")]
    Cert {
        /// Which certificate.
        what: &'static str,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },
    /// A Kubernetes request of the harness failed.
    #[error("{what}: {source}")]
    Kube {
        /// The request.
        what: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// A manifest could not be read or applied as written.
    #[error("{what}: {message}")]
    Manifest {
        /// Which manifest or object.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The admin kubeconfig could not be turned into a client configuration.
    #[error("loading {path}: {message}")]
    Kubeconfig {
        /// The kubeconfig file.
        path: String,
        /// What kube-rs said.
        message: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { what, source }
}

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
struct Info {
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
            .spawn(move || owner(&bins, &ready_tx, &stop_rx))
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

    /// Server-side applies `objects` as `kubectl apply --server-side` does (field manager
    /// `certrotate-e2e`, conflicts forced), in order; each kind is found through discovery,
    /// and a namespaced object without a namespace goes to `namespace`. Returns them as the
    /// API server answered.
    pub async fn apply(
        &self,
        objects: &[serde_json::Value],
        namespace: Option<&str>,
    ) -> Result<Vec<DynamicObject>, Error> {
        let client = self.client()?;
        let mut applied = Vec::with_capacity(objects.len());
        for value in objects {
            let object: DynamicObject =
                serde_json::from_value(value.clone()).map_err(|e| Error::Manifest {
                    what: "an object to apply".into(),
                    message: e.to_string(),
                })?;
            let types = object.types.clone().unwrap_or_default();
            let name = object.metadata.name.clone().unwrap_or_default();
            let what = format!("applying {} {name}", types.kind);
            let gvk = GroupVersionKind::try_from(&types).map_err(|e| Error::Manifest {
                what: what.clone(),
                message: e.to_string(),
            })?;
            let (resource, caps) = discovery::pinned_kind(&client, &gvk)
                .await
                .map_err(kube_err(format!("{what}: discovery")))?;
            let api: Api<DynamicObject> = if caps.scope == discovery::Scope::Namespaced {
                let ns = object
                    .metadata
                    .namespace
                    .as_deref()
                    .or(namespace)
                    .unwrap_or("default");
                Api::namespaced_with(client.clone(), ns, &resource)
            } else {
                Api::all_with(client.clone(), &resource)
            };
            let params = PatchParams::apply("certrotate-e2e").force();
            applied.push(
                api.patch(&name, &params, &Patch::Apply(&object))
                    .await
                    .map_err(kube_err(what))?,
            );
        }
        Ok(applied)
    }

    /// Installs what certrotate touches of Envoy Gateway, from its chart as `build.sh`
    /// rendered it, into `envoy-gateway-system`: the controller's ServiceAccount,
    /// ConfigMap, Service and Deployment, the topology-injector webhook configuration as
    /// shipped (no `caBundle`), and the rate-limit Deployment of upstream's golden file
    /// (the controller makes it at run time), owned by the controller's Deployment. Pods
    /// are pinned to the KWOK node (no scheduler). `Ok(false)` where the chart is not
    /// rendered.
    pub async fn install_envoy_gateway(&self) -> Result<bool, Error> {
        const NS: &str = "envoy-gateway-system";
        let dir = self.binaries().envoy_gateway();
        if !dir.join("install.yaml").is_file() {
            return Ok(false);
        }
        let docs = yaml_documents(&dir.join("install.yaml"))?;
        let pick = |kind: &str, name: &str| -> Result<serde_json::Value, Error> {
            docs.iter()
                .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
                .cloned()
                .ok_or_else(|| Error::Manifest {
                    what: "Envoy Gateway's chart".into(),
                    message: format!("no {kind} {name}"),
                })
        };
        let mut controller = pick("Deployment", "envoy-gateway")?;
        controller["spec"]["template"]["spec"]["nodeName"] = NODE_NAME.into();
        let namespace = serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": NS },
        });
        let applied = self
            .apply(
                &[
                    namespace,
                    pick("ServiceAccount", "envoy-gateway")?,
                    pick("ConfigMap", "envoy-gateway-config")?,
                    pick("Service", "envoy-gateway")?,
                    pick("MutatingWebhookConfiguration", ENVOY_GATEWAY_WEBHOOK)?,
                    controller,
                ],
                Some(NS),
            )
            .await?;
        let owner_uid = applied
            .last()
            .and_then(|d| d.metadata.uid.clone())
            .unwrap_or_default();
        // The rate-limit Deployment as the controller makes it: owned by the controller's
        // Deployment (the golden file's placeholder uid would have the garbage collector
        // delete it), with its own ServiceAccount.
        let mut ratelimit = yaml_documents(&dir.join("ratelimit-deployment.yaml"))?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Manifest {
                what: "ratelimit-deployment.yaml".into(),
                message: "empty".into(),
            })?;
        ratelimit["metadata"]["ownerReferences"][0]["uid"] = owner_uid.into();
        ratelimit["spec"]["template"]["spec"]["nodeName"] = NODE_NAME.into();
        let sa = serde_json::json!({
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": "envoy-ratelimit" },
        });
        self.apply(&[sa, ratelimit], Some(NS)).await?;
        Ok(true)
    }

    /// Waits (at most `bound`) until Deployment `namespace/name` is rolled out: its
    /// controller saw the newest generation and every replica is updated and ready.
    pub async fn wait_rolled_out(
        &self,
        namespace: &str,
        name: &str,
        bound: Duration,
    ) -> Result<(), Error> {
        let deployments =
            Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(self.client()?, namespace);
        let deadline = Deadline::new(format!("{namespace}/{name} to be rolled out"), bound);
        loop {
            let d = deployments
                .get(name)
                .await
                .map_err(kube_err(format!("reading Deployment {namespace}/{name}")))?;
            let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let status = d.status.clone().unwrap_or_default();
            if status.observed_generation == d.metadata.generation
                && status.ready_replicas == Some(wanted)
                && status.updated_replicas == Some(wanted)
                && status.replicas == Some(wanted)
            {
                return Ok(());
            }
            deadline.tick().await?;
        }
    }

    /// Creates a fresh namespace named `PREFIX-N` and waits (bounded) until its `default`
    /// ServiceAccount exists, so pods can be created in it.
    pub async fn namespace(&self, prefix: &str) -> Result<String, Error> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        let client = self.client()?;
        let ns: Namespace = json_object(serde_json::json!({
            "metadata": { "name": name }
        }));
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(kube_err(format!("creating namespace {name}")))?;
        let sas = Api::<ServiceAccount>::namespaced(client, &name);
        let deadline = Deadline::new(
            format!("the default ServiceAccount of namespace {name}"),
            Duration::from_secs(60),
        );
        while sas.get_opt("default").await.ok().flatten().is_none() {
            deadline.tick().await?;
        }
        Ok(name)
    }

    /// A token for ServiceAccount `namespace/name` (created if missing), through the
    /// TokenRequest API, valid for an hour.
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, Error> {
        let sas = Api::<ServiceAccount>::namespaced(self.client()?, namespace);
        if sas
            .get_opt(name)
            .await
            .map_err(kube_err(format!(
                "reading ServiceAccount {namespace}/{name}"
            )))?
            .is_none()
        {
            let sa: ServiceAccount =
                json_object(serde_json::json!({ "metadata": { "name": name } }));
            sas.create(&PostParams::default(), &sa)
                .await
                .map_err(kube_err(format!(
                    "creating ServiceAccount {namespace}/{name}"
                )))?;
        }
        let request = TokenRequest {
            spec: TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = sas
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .map_err(kube_err(format!(
                "requesting a token for {namespace}/{name}"
            )))?;
        answer
            .status
            .map(|s| s.token)
            .ok_or_else(|| Error::Kubeconfig {
                path: format!("TokenRequest for {namespace}/{name}"),
                message: "the answer has no status".into(),
            })
    }

    /// Writes a kubeconfig that authenticates with `token` (and trusts the API server's CA)
    /// to `path`: what a Job's ServiceAccount gets, for running the CLI as it.
    pub fn write_token_kubeconfig(
        &self,
        token: &str,
        namespace: &str,
        path: &Path,
    ) -> Result<(), Error> {
        certs::write_kubeconfig(
            path,
            &self.info.server,
            &self.info.dir.join("ca.crt"),
            certs::Credentials::Token(token),
            Some(namespace),
        )
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

/// The control plane's thread: starts everything, reports, then waits for the stop signal
/// (for the shared control plane, the end of the process) and stops everything by PID.
fn owner(bins: &Binaries, ready: &mpsc::Sender<Result<Info, Error>>, stop: &mpsc::Receiver<()>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(io_err("building a Tokio runtime")(e)));
            return;
        }
    };
    let mut procs = match procs::Procs::new() {
        Ok(p) => p,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let started = runtime.block_on(bring_up(bins, &mut procs));
    let ok = started.is_ok();
    // On failure, `procs` is dropped right below, stopping whatever did start.
    let _ = ready.send(started);
    if ok {
        // Returns when the ControlPlane is dropped (its Sender closes); never for the shared
        // one, whose programs end with the process.
        let _ = stop.recv();
    }
    drop(procs);
}

/// The bounds of the waits while starting (generous: a loaded CI machine).
const ETCD_UP: Duration = Duration::from_secs(60);
const APISERVER_READY: Duration = Duration::from_secs(180);
const NODE_READY: Duration = Duration::from_secs(120);
const CONTROLLERS_UP: Duration = Duration::from_secs(120);

async fn bring_up(bins: &Binaries, procs: &mut procs::Procs) -> Result<Info, Error> {
    let dir = procs.dir().to_path_buf();
    let [etcd_port, etcd_peer_port, api_port, kcm_port] = free_ports()?;
    let server = format!("https://127.0.0.1:{api_port}");
    let pki = certs::Pki::generate(&dir)?;
    let admin_kubeconfig = dir.join("admin.kubeconfig");
    certs::write_kubeconfig(
        &admin_kubeconfig,
        &server,
        &pki.ca_crt,
        certs::Credentials::Files(&pki.admin_crt, &pki.admin_key),
        None,
    )?;
    let kcm_kubeconfig = dir.join("kube-controller-manager.kubeconfig");
    certs::write_kubeconfig(
        &kcm_kubeconfig,
        &server,
        &pki.ca_crt,
        certs::Credentials::Files(&pki.kcm_crt, &pki.kcm_key),
        None,
    )?;
    let audit_policy = dir.join("audit-policy.yaml");
    std::fs::write(&audit_policy, AUDIT_POLICY).map_err(io_err("writing the audit policy"))?;
    let audit_log = dir.join("audit.log");

    // etcd: a single member, on 127.0.0.1 only (client and peer ports both chosen here, so
    // two test binaries never share one).
    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
    procs.spawn(
        "etcd",
        &bins.etcd(),
        &[
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            "--unsafe-no-fsync".into(),
            "--log-level=warn".into(),
        ],
    )?;
    let etcd_addr = std::net::SocketAddr::from(([127, 0, 0, 1], etcd_port));
    let deadline = Deadline::new("etcd to accept connections", ETCD_UP);
    loop {
        procs.check_alive()?;
        if tokio::net::TcpStream::connect(etcd_addr).await.is_ok() {
            break;
        }
        deadline.tick().await?;
    }

    procs.spawn(
        "kube-apiserver",
        &bins.kube_apiserver(),
        &[
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            // The API server would publish its own 127.0.0.1 address as the `kubernetes`
            // Service's endpoint, which it refuses (loopback).
            "--endpoint-reconciler-type=none".into(),
            format!("--tls-cert-file={}", pki.serving_crt.display()),
            format!("--tls-private-key-file={}", pki.serving_key.display()),
            format!("--client-ca-file={}", pki.ca_crt.display()),
            "--authorization-mode=RBAC".into(),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            format!("--service-account-issuer={server}"),
            format!("--service-account-key-file={}", pki.sa_pub.display()),
            format!(
                "--service-account-signing-key-file={}",
                pki.sa_key.display()
            ),
            format!("--audit-policy-file={}", audit_policy.display()),
            format!("--audit-log-path={}", audit_log.display()),
            "--profiling=false".into(),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
        ],
    )?;

    let config = admin_config(&admin_kubeconfig).await?;
    let client =
        kube::Client::try_from(config.clone()).map_err(kube_err("building the admin client"))?;
    let deadline = Deadline::new("kube-apiserver's /readyz", APISERVER_READY);
    loop {
        procs.check_alive()?;
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| Error::Io {
                what: "building the /readyz request".into(),
                source: std::io::Error::other(e),
            })?;
        if client
            .request_text(request)
            .await
            .is_ok_and(|body| body.trim() == "ok")
        {
            break;
        }
        deadline.tick().await?;
    }

    procs.spawn(
        "kube-controller-manager",
        &bins.kube_controller_manager(),
        &[
            format!("--kubeconfig={}", kcm_kubeconfig.display()),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={kcm_port}"),
            format!("--cert-dir={}", dir.join("kcm-certs").display()),
            "--leader-elect=false".into(),
            "--use-service-account-credentials=true".into(),
            format!(
                "--service-account-private-key-file={}",
                pki.sa_key.display()
            ),
            format!("--root-ca-file={}", pki.ca_crt.display()),
            "--profiling=false".into(),
        ],
    )?;
    procs.spawn(
        "kwok",
        &bins.kwok(),
        &[
            format!("--kubeconfig={}", admin_kubeconfig.display()),
            format!("--config={}", bins.kwok_stages().display()),
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake".into(),
            // No kwok server (it would listen on 0.0.0.0): no port, no address.
            "--node-port=0".into(),
            "--cidr=10.0.1.0/24".into(),
            "--node-ip=127.0.0.1".into(),
        ],
    )?;

    let nodes = Api::<Node>::all(client.clone());
    nodes
        .create(&PostParams::default(), &json_object(kwok_node()))
        .await
        .map_err(kube_err(format!("creating node {NODE_NAME}")))?;
    let deadline = Deadline::new(format!("node {NODE_NAME} to be Ready (KWOK)"), NODE_READY);
    loop {
        procs.check_alive()?;
        let node = nodes.get_opt(NODE_NAME).await.ok().flatten();
        let ready = node
            .and_then(|n| n.status)
            .and_then(|s| s.conditions)
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            break;
        }
        deadline.tick().await?;
    }
    // The service-account controller (kube-controller-manager) makes `default` in every
    // namespace: seeing it proves the controllers run.
    let sas = Api::<ServiceAccount>::namespaced(client, "default");
    let deadline = Deadline::new(
        "kube-controller-manager (the default ServiceAccount)",
        CONTROLLERS_UP,
    );
    loop {
        procs.check_alive()?;
        if sas.get_opt("default").await.ok().flatten().is_some() {
            break;
        }
        deadline.tick().await?;
    }

    Ok(Info {
        bins: bins.clone(),
        dir,
        server,
        config,
        admin_kubeconfig,
        audit_log,
        ca_pem: pki.ca_pem,
    })
}

/// Every request at `Metadata` level (who, verb, object, response code), once complete.
const AUDIT_POLICY: &str = "\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
";

fn kwok_node() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "annotations": { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": { "cpu": "32", "memory": "256Gi", "pods": "110" },
            "capacity": { "cpu": "32", "memory": "256Gi", "pods": "110" },
        },
    })
}

/// A typed object from JSON written in this file (the shapes are fixed, so a failure is a
/// bug here).
fn json_object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    #[allow(clippy::expect_used)]
    serde_json::from_value(value).expect("the harness's object literals match their types")
}

async fn admin_config(path: &Path) -> Result<kube::Config, Error> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| Error::Kubeconfig {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| Error::Kubeconfig {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(60));
    Ok(config)
}

/// `N` distinct free ports on 127.0.0.1 (bound together, then released).
fn free_ports<const N: usize>() -> Result<[u16; N], Error> {
    let listeners = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err("finding a free port on 127.0.0.1"))?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener
            .local_addr()
            .map_err(io_err("reading a bound port"))?
            .port();
    }
    Ok(ports)
}

/// The documents of a multi-document YAML file (empty ones, such as Helm's comment-only
/// documents, skipped).
pub fn yaml_documents(path: &Path) -> Result<Vec<serde_json::Value>, Error> {
    let text =
        std::fs::read_to_string(path).map_err(io_err(format!("reading {}", path.display())))?;
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_str_multiple(&text).map_err(|e| Error::Manifest {
            what: path.display().to_string(),
            message: e.to_string(),
        })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// A bounded wait: call [`Deadline::tick`] once per failed check; it sleeps 100 ms, or
/// fails with [`Error::Timeout`] naming what was awaited once the bound has passed.
#[derive(Debug)]
pub struct Deadline {
    what: String,
    bound: Duration,
    start: Instant,
}

impl Deadline {
    /// Starts a wait for `what`, of at most `bound`.
    pub fn new(what: impl Into<String>, bound: Duration) -> Self {
        // Test support bounding waits on real programs: real time is the point.
        #[allow(clippy::disallowed_methods)]
        Deadline {
            what: what.into(),
            bound,
            start: Instant::now(),
        }
    }

    /// Sleeps before the next check, or fails once the bound has passed.
    pub async fn tick(&self) -> Result<(), Error> {
        if self.start.elapsed() > self.bound {
            return Err(Error::Timeout {
                what: self.what.clone(),
                after: self.bound,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }
}
