//! Bringing a control plane up: the thread that owns its programs, the start of etcd,
//! kube-apiserver, kube-controller-manager and KWOK (each awaited, bounded), their
//! certificates, kubeconfigs and free ports.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::api::{Api, PostParams};

use crate::cluster::json_object;
use crate::{Binaries, Deadline, Error, Info, NODE_NAME, certs, io_err, kube_err, procs};

/// The control plane's thread: starts everything, reports, then waits for the stop signal
/// (for the shared control plane, the end of the process) and stops everything by PID.
pub(crate) fn owner(
    bins: &Binaries,
    ready: &mpsc::Sender<Result<Info, Error>>,
    stop: &mpsc::Receiver<()>,
) {
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
pub(crate) fn free_ports<const N: usize>() -> Result<[u16; N], Error> {
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
