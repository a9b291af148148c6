//! Issue 24 on the real API server: a rotation in Kubernetes mode finds the servers of the
//! built-in profile through their Service's EndpointSlice (each ready pod at its own
//! address, named by its pod), probes each, and holds at `trust` while one of them (the
//! `subPath` pod, fed by a harness kubelet that never syncs) does not list the next CA;
//! once that pod is "restarted" (a server on fresh files at the same address), the next run
//! proceeds to the end.
//!
//! The API server refuses loopback addresses in an EndpointSlice, so the servers (the Go
//! peer, which re-reads its files per handshake as Envoy Gateway's controller does) run in
//! a network namespace the test makes, at 10.244.251.x behind a veth pair; the slice is
//! hand-made, with its own `endpointslice.kubernetes.io/managed-by`, for a Service without
//! a selector (no controller manages either).
//!
//! Where the control plane is not built, or a network namespace cannot be made, the test
//! prints one line and returns (a failure under `CERTROTATE_REQUIRE_CONTROLPLANE=1`, as in
//! CI); build it with `nice -n 19 test-support/controlplane/build.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use certrotate_controlplane::kubelet::{Mirror, Sync};
use certrotate_controlplane::netns::NetNs;
use certrotate_controlplane::{ControlPlane, Deadline, go_peer};

const HOST: Ipv4Addr = Ipv4Addr::new(10, 244, 251, 1);
const RELOADS: Ipv4Addr = Ipv4Addr::new(10, 244, 251, 2);
const STUCK: Ipv4Addr = Ipv4Addr::new(10, 244, 251, 3);
const PORT: u16 = 18000;

/// Runs the CLI with `kubeconfig`; (exit code, stdout + stderr). No output may hold a key.
fn certrotate(kubeconfig: &Path, args: &[&str]) -> (i32, String) {
    let out = assert_cmd::Command::cargo_bin("certrotate")
        .unwrap()
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .timeout(Duration::from_secs(240))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("PRIVATE KEY"), "{args:?}:\n{text}");
    (out.status.code().unwrap_or(-1), text)
}

/// The Service `envoy-gateway` (no selector) and its hand-made slice: two ready pods.
fn service_and_slice(ns: &str) -> Vec<serde_json::Value> {
    let pod = |ip: Ipv4Addr, name: &str| {
        serde_json::json!({
            "addresses": [ip.to_string()],
            "conditions": { "ready": true },
            "targetRef": { "kind": "Pod", "namespace": ns, "name": name },
        })
    };
    vec![
        serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": "envoy-gateway" },
            "spec": { "ports": [{ "name": "grpc", "port": PORT, "targetPort": PORT }] },
        }),
        serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {
                "name": "envoy-gateway-test",
                "labels": {
                    "kubernetes.io/service-name": "envoy-gateway",
                    "endpointslice.kubernetes.io/managed-by": "certrotate-test",
                },
            },
            "addressType": "IPv4",
            "ports": [{ "name": "grpc", "port": PORT, "protocol": "TCP" }],
            "endpoints": [pod(RELOADS, "envoy-gateway-reloads"), pod(STUCK, "envoy-gateway-subpath")],
        }),
    ]
}

async fn mounted(mirrors: &[&Mirror]) {
    let deadline = Deadline::new("the first copies of the Secrets", Duration::from_secs(30));
    while !mirrors.iter().all(|m| m.mounted()) {
        deadline.tick().await.unwrap();
    }
}

#[tokio::test]
async fn a_stuck_pod_found_through_its_endpointslice_holds_the_rotation_at_trust() {
    let Some(cp) = ControlPlane::shared() else {
        return;
    };
    let Some(tlspeer) = certrotate_controlplane::tlspeer() else {
        return;
    };
    let net = match NetNs::create(HOST, &[RELOADS, STUCK]) {
        Ok(net) => net,
        Err(why) => {
            certrotate_controlplane::skip_or_fail(
                "the end-to-end test of evidence through EndpointSlices",
                &format!("no network namespace for its servers ({why})"),
            );
            return;
        }
    };
    let ns = cp.namespace("e2e-evidence").await.unwrap();
    let admin = cp.admin_kubeconfig().to_owned();
    let (code, out) = certrotate(&admin, &["rotate", "--kube", "--namespace", &ns]);
    assert_eq!(code, 0, "install:\n{out}");
    cp.apply(&service_and_slice(&ns), Some(&ns)).await.unwrap();

    // Two pods of the controller: one whose kubelet syncs the Secret, one mounting it with
    // `subPath` (never synced).
    let tmp = tempfile::tempdir().unwrap();
    let reloads = Mirror::start(
        cp.config(),
        &ns,
        "envoy-gateway",
        tmp.path().join("reloads"),
        Sync::After(Duration::from_secs(1)),
    );
    let stuck = Mirror::start(
        cp.config(),
        &ns,
        "envoy-gateway",
        tmp.path().join("stuck"),
        Sync::Never,
    );
    mounted(&[&reloads, &stuck]).await;
    let listen = |ip: Ipv4Addr| format!("{ip}:{PORT}");
    let _reloading = go_peer::Server::start_at(
        net.command(&tlspeer),
        &tmp.path().join("reloads"),
        &listen(RELOADS),
    )
    .unwrap();
    let stuck_server = go_peer::Server::start_at(
        net.command(&tlspeer),
        &tmp.path().join("stuck"),
        &listen(STUCK),
    )
    .unwrap();

    // Before the rotation: `check` finds both pods and shows what each trusts.
    let (code, out) = certrotate(&admin, &["check", "--kube", "--namespace", &ns]);
    assert_eq!(code, 0, "check:\n{out}");
    for pod in ["envoy-gateway-reloads", "envoy-gateway-subpath"] {
        assert!(
            out.contains(&format!("pod {pod} (10.244.251.")),
            "{pod}:\n{out}"
        );
    }

    // The rotation holds at `trust` for the stuck pod, names it, and exits 6 past the
    // convergence timeout; the phase stays.
    let (code, out) = certrotate(
        &admin,
        &[
            "rotate",
            "--kube",
            "--namespace",
            &ns,
            "--overwrite",
            "--wait",
            "--convergence-interval",
            "1s",
            "--allow-short-interval",
            "--convergence-timeout",
            "25s",
            "--timeout",
            "2m",
        ],
    );
    assert_eq!(code, 6, "held at trust:\n{out}");
    let stuck_named =
        format!("pod envoy-gateway-subpath ({STUCK}:{PORT}, secret {ns}/envoy-gateway)");
    assert!(out.contains(&stuck_named), "names the stuck pod:\n{out}");
    assert!(out.contains("trusts only"), "{out}");
    // The pod that reloaded caught up (it may lag for its kubelet's second at first): the
    // timeout names the stuck one alone.
    let error = out
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        error.contains("1 endpoint(s) still lag")
            && error.contains(&stuck_named)
            && !error.contains("envoy-gateway-reloads"),
        "{out}"
    );
    // The Services and ports the slice does not serve are said, not skipped: the timers
    // decide for them.
    assert!(
        out.contains("port 8081 (secret") && out.contains("no EndpointSlice names it"),
        "{out}"
    );
    let (code, out) = certrotate(&admin, &["status", "--kube", "--namespace", &ns]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("phase:") && out.contains("trust"), "{out}");

    // The stuck pod restarted: a new server at its address, on files synced from now on.
    drop(stuck_server);
    drop(stuck);
    let restarted = Mirror::start(
        cp.config(),
        &ns,
        "envoy-gateway",
        tmp.path().join("restarted"),
        Sync::After(Duration::from_secs(1)),
    );
    mounted(&[&restarted]).await;
    let _restarted_server = go_peer::Server::start_at(
        net.command(&tlspeer),
        &tmp.path().join("restarted"),
        &listen(STUCK),
    )
    .unwrap();
    let (code, out) = certrotate(
        &admin,
        &[
            "rotate",
            "--kube",
            "--namespace",
            &ns,
            "--wait",
            "--timeout",
            "2m",
        ],
    );
    assert_eq!(code, 0, "proceeds once the pod shows the next CA:\n{out}");
    let (code, out) = certrotate(&admin, &["status", "--kube", "--namespace", &ns]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("stable"), "{out}");
    drop(net);
}
