//! The control-plane harness (`test-support/controlplane`) against a real kube-apiserver,
//! etcd, kube-controller-manager and KWOK: what the fake API server cannot show.
//!
//! Where the control plane is not built, each test prints one line and returns (a failure
//! under `CERTROTATE_REQUIRE_CONTROLPLANE=1`, as in CI); build it with
//! `nice -n 19 test-support/controlplane/build.sh`. The tests share one control plane and
//! each works in a namespace of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use certrotate_controlplane::{ControlPlane, Deadline, ENVOY_GATEWAY_WEBHOOK, NODE_NAME};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, PostParams};

#[tokio::test]
async fn the_admin_client_writes_and_reads_back_a_secret() {
    let Some(cp) = ControlPlane::shared() else {
        return;
    };
    let ns = cp.namespace("e2e-secret").await.unwrap();
    let secrets = Api::<Secret>::namespaced(cp.client().unwrap(), &ns);
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("envoy-gateway".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "ca.crt".to_owned(),
            ByteString(b"not a certificate".to_vec()),
        )])),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let read = secrets.get("envoy-gateway").await.unwrap();
    assert_eq!(read.data, secret.data);
    // A real API server assigns what the fake never checks.
    assert!(read.metadata.uid.is_some() && read.metadata.resource_version.is_some());
    assert_eq!(read.type_.as_deref(), Some("Opaque"));
}

#[tokio::test]
async fn a_service_account_without_rbac_is_refused_and_the_audit_log_says_so() {
    let Some(cp) = ControlPlane::shared() else {
        return;
    };
    let ns = cp.namespace("e2e-rbac").await.unwrap();
    let token = cp.service_account_token(&ns, "nobody").await.unwrap();
    let secrets = Api::<Secret>::namespaced(cp.client_with_token(&token).unwrap(), &ns);
    match secrets.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{status:?}");
            assert!(
                status
                    .message
                    .contains(&format!("system:serviceaccount:{ns}:nobody")),
                "{status:?}"
            );
        }
        other => panic!("listing Secrets without RBAC gave {other:?}"),
    }

    let user = format!("system:serviceaccount:{ns}:nobody");
    let deadline = Deadline::new("the refused LIST in the audit log", Duration::from_secs(20));
    loop {
        let refused = cp.audit_events().unwrap().into_iter().any(|e| {
            e["user"]["username"] == user.as_str()
                && e["verb"] == "list"
                && e["objectRef"]["resource"] == "secrets"
                && e["objectRef"]["namespace"] == ns.as_str()
                && e["responseStatus"]["code"] == 403
        });
        if refused {
            break;
        }
        deadline.tick().await.unwrap();
    }
}

#[tokio::test]
async fn a_deployment_on_the_kwok_node_is_rolled_out_by_the_deployment_controller() {
    let Some(cp) = ControlPlane::shared() else {
        return;
    };
    let ns = cp.namespace("e2e-deploy").await.unwrap();
    let client = cp.client().unwrap();
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "envoy-ratelimit" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "envoy-ratelimit" } },
            "template": {
                "metadata": { "labels": { "app": "envoy-ratelimit" } },
                "spec": {
                    // No scheduler: pinned to the KWOK node, which makes it Ready.
                    "nodeName": NODE_NAME,
                    "containers": [{ "name": "ratelimit", "image": "registry.invalid/ratelimit:1" }],
                },
            },
        },
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    let deadline = Deadline::new("the Deployment to be rolled out", Duration::from_secs(120));
    loop {
        let d = deployments.get("envoy-ratelimit").await.unwrap();
        let status = d.status.clone().unwrap_or_default();
        let done = status.observed_generation == d.metadata.generation
            && status.updated_replicas == Some(2)
            && status.ready_replicas == Some(2)
            && status.available_replicas == Some(2);
        if done {
            break;
        }
        deadline.tick().await.unwrap();
    }
    // Made by the ReplicaSet controller, on the KWOK node, Ready through KWOK's stages.
    let pods = Api::<Pod>::namespaced(client, &ns)
        .list(&ListParams::default().labels("app=envoy-ratelimit"))
        .await
        .unwrap();
    assert_eq!(pods.items.len(), 2);
    for pod in pods.items {
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "ReplicaSet");
        assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some(NODE_NAME));
        let status = pod.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(status.pod_ip.is_some());
    }
}

/// Envoy Gateway's chart at the pinned release, rendered as upstream's release does
/// (`build.sh envoy-gateway-chart`): what certrotate touches is accepted by a real API
/// server as shipped (the webhook configuration without a `caBundle`), and both Deployments
/// (the rate-limit one from upstream's golden file, owned by the controller's as at run time)
/// are rolled out. The one change: pods pinned to the KWOK node (there is no scheduler).
#[tokio::test]
async fn envoy_gateways_chart_is_accepted_as_shipped_and_rolled_out() {
    let Some(cp) = ControlPlane::shared() else {
        return;
    };
    if !cp.install_envoy_gateway().await.unwrap() {
        certrotate_controlplane::skip_or_fail(
            "the test of Envoy Gateway's chart",
            "its chart is not rendered",
        );
        return;
    }
    const NS: &str = "envoy-gateway-system";
    let client = cp.client().unwrap();
    let webhook = Api::<MutatingWebhookConfiguration>::all(client)
        .get(ENVOY_GATEWAY_WEBHOOK)
        .await
        .unwrap();
    let hooks = webhook.webhooks.unwrap();
    assert_eq!(hooks.len(), 1);
    assert!(
        hooks[0].client_config.ca_bundle.is_none(),
        "shipped without a caBundle"
    );
    for name in ["envoy-gateway", "envoy-ratelimit"] {
        cp.wait_rolled_out(NS, name, Duration::from_secs(120))
            .await
            .unwrap();
    }
}

/// A namespace that does not exist: the API server answers the first create with 404. That
/// is not a stale read (re-planning would only meet it again, until "too many conflicts"):
/// the run fails at once, naming the namespace.
#[tokio::test]
async fn a_rotation_into_a_missing_namespace_names_it() {
    let Some(cp) = ControlPlane::shared() else {
        return;
    };
    let ns = format!("absent-{}", std::process::id());
    let store = certrotate_kube::KubeStore::new(cp.client().unwrap());
    let err = certrotate_kube::Engine::new(store)
        .run(
            &certrotate_core::Profile::envoy_gateway(&ns),
            &certrotate_core::RotationPolicy::default(),
            certrotate_kube::RunMode::Once,
        )
        .await
        .unwrap_err();
    let mut chain = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        chain.push_str(": ");
        chain.push_str(&c.to_string());
        cause = c.source();
    }
    assert!(
        chain.contains(&format!("namespaces \"{ns}\" not found")),
        "{chain}"
    );
    assert!(!chain.contains("conflict"), "{chain}");
}
