//! Issue 23: start-only workloads chosen by label. Envoy Gateway's proxies have generated
//! names (`envoy-<namespace>-<gateway>-<hash>`) and live in the controller namespace, or
//! in each Gateway's namespace in GatewayNamespace mode; the built-in profile selects them
//! by upstream's labels, the observation expands the selectors, and a rotation restarts
//! what they found. Run against the fake API server, and against the real kube-apiserver
//! of `test-support/controlplane` where it is built (one line and no test where not).
#![cfg(feature = "kube")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod fake_server;

use std::sync::Arc;

use certrotate_controlplane::{ControlPlane, NODE_NAME};
use certrotate_core::plan::{Phase, WorkloadRef, wire};
use certrotate_core::profile::{PROXY_LABELS, WorkloadKind};
use certrotate_core::{Profile, RotationPolicy, SeededEntropy, Trigger};
use certrotate_kube::{Engine, KubeStore, ManualClock, RunMode, observe};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use kube::api::{Api, PostParams};
use serde_json::json;
use time::macros::datetime;

/// A workload's manifest: pinned to the KWOK node (no scheduler), with these labels.
fn manifest(name: &str, labels: &serde_json::Value) -> serde_json::Value {
    json!({
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": {
                    "nodeName": NODE_NAME,
                    "containers": [{ "name": "c", "image": "registry.invalid/envoy:1" }],
                },
            },
        },
    })
}

fn proxy_labels(gateway: &str) -> serde_json::Value {
    let mut labels: serde_json::Map<String, serde_json::Value> = PROXY_LABELS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    labels.insert(
        "gateway.envoyproxy.io/owning-gateway-name".into(),
        json!(gateway),
    );
    serde_json::Value::Object(labels)
}

async fn create_deployment(client: &kube::Client, ns: &str, name: &str, labels: serde_json::Value) {
    let object: Deployment = serde_json::from_value(manifest(name, &labels)).unwrap();
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

async fn create_daemon_set(client: &kube::Client, ns: &str, name: &str, labels: serde_json::Value) {
    let mut manifest = manifest(name, &labels);
    manifest["spec"].as_object_mut().unwrap().remove("replicas");
    let object: DaemonSet = serde_json::from_value(manifest).unwrap();
    Api::<DaemonSet>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

async fn restarted_for(client: &kube::Client, workload: &WorkloadRef) -> Option<String> {
    let (ns, name) = (&workload.object.namespace, &workload.object.name);
    let template = match workload.kind {
        WorkloadKind::Deployment => {
            Api::<Deployment>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .unwrap()
                .spec
                .unwrap()
                .template
        }
        WorkloadKind::DaemonSet => {
            Api::<DaemonSet>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .unwrap()
                .spec
                .unwrap()
                .template
        }
        WorkloadKind::StatefulSet => unreachable!("none made here"),
    };
    template
        .metadata
        .and_then(|m| m.annotations)
        .and_then(|a| a.get(wire::ANNOTATION_RESTARTED_FOR).cloned())
}

/// The proxies of the controller namespace (a Deployment and a DaemonSet) are selected,
/// not a workload without the labels, nor a proxy in a Gateway's namespace; in
/// GatewayNamespace mode that one too. A rotation into `trust` restarts every selected
/// proxy and the rate limit, and nothing else.
async fn proxies_are_selected_by_label_and_restarted(
    client: kube::Client,
    store: KubeStore,
    eg: &str,
    team: &str,
) {
    create_deployment(
        &client,
        eg,
        "envoy-ratelimit",
        json!({ "app": "ratelimit" }),
    )
    .await;
    create_deployment(&client, eg, "envoy-eg-gw-1a2b3c4d", proxy_labels("gw")).await;
    create_daemon_set(&client, eg, "envoy-eg-ds-5e6f7a8b", proxy_labels("ds")).await;
    create_deployment(&client, eg, "unrelated", json!({ "app": "unrelated" })).await;
    create_deployment(&client, team, "gw", proxy_labels("gw")).await;
    let ratelimit = WorkloadRef::new(WorkloadKind::Deployment, eg, "envoy-ratelimit");
    let proxy = WorkloadRef::new(WorkloadKind::Deployment, eg, "envoy-eg-gw-1a2b3c4d");
    let daemon_set = WorkloadRef::new(WorkloadKind::DaemonSet, eg, "envoy-eg-ds-5e6f7a8b");
    let unrelated = WorkloadRef::new(WorkloadKind::Deployment, eg, "unrelated");
    let elsewhere = WorkloadRef::new(WorkloadKind::Deployment, team, "gw");

    let profile = Profile::envoy_gateway(eg);
    let observed = observe(&store, &profile).await.unwrap();
    assert_eq!(
        observed.selected.iter().cloned().collect::<Vec<_>>(),
        [proxy.clone(), daemon_set.clone()]
    );
    assert!(observed.workloads.contains_key(&ratelimit));
    assert!(!observed.workloads.contains_key(&unrelated));

    let profile = profile.with_gateway_namespace_mode();
    let observed = observe(&store, &profile).await.unwrap();
    let selected: Vec<WorkloadRef> = observed.selected.iter().cloned().collect();
    for w in [&proxy, &daemon_set, &elsewhere] {
        assert!(selected.contains(w), "{w} in {selected:?}");
    }
    assert!(!selected.contains(&unrelated));

    let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 0:00 UTC)));
    let mut options = RotationPolicy::default();
    let engine = |seed| {
        Engine::new(store.clone())
            .with_clock(clock.clone())
            .with_entropy(SeededEntropy::new(seed))
    };
    engine(1)
        .run(&profile, &options, RunMode::Once)
        .await
        .unwrap();
    for w in [&ratelimit, &proxy, &daemon_set, &elsewhere] {
        assert_eq!(restarted_for(&client, w).await, None, "not on install: {w}");
    }
    clock.advance(std::time::Duration::from_secs(3600));
    options.trigger = Trigger::Always;
    let report = engine(2)
        .run(&profile, &options, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Trust);
    let token = restarted_for(&client, &ratelimit).await.expect("restarted");
    for w in [&proxy, &daemon_set, &elsewhere] {
        assert_eq!(
            restarted_for(&client, w).await.as_ref(),
            Some(&token),
            "{w} restarted after trust, into the same state as the rate limit"
        );
    }
    assert_eq!(restarted_for(&client, &unrelated).await, None);
}

#[tokio::test]
async fn fake_api_server_selects_and_restarts_proxies() {
    let server = fake_server::start(&[]);
    let store = fake_server::store_for(&server);
    let mut config = kube::Config::new(server.url.parse().unwrap());
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    proxies_are_selected_by_label_and_restarted(client, store, "eg", "team-a").await;
}

#[tokio::test]
async fn real_api_server_selects_and_restarts_proxies() {
    let Some(cp) = ControlPlane::shared() else {
        return;
    };
    let eg = cp.namespace("sel-eg").await.unwrap();
    let team = cp.namespace("sel-team").await.unwrap();
    let client = cp.client().unwrap();
    let store = KubeStore::new(client.clone());
    proxies_are_selected_by_label_and_restarted(client, store, &eg, &team).await;
}
