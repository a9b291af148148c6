//! The exact requests the Kubernetes backend sends (method, path, content type, body),
//! against a tower-test mock, as kube-rs's own tests do.
#![cfg(feature = "kube")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;

use certrotate_core::plan::{ObjectRef, WorkloadRef};
use certrotate_core::profile::WorkloadKind;
use certrotate_kube::{KubeStore, SecretStore, SecretUpdate, StoreError, WorkloadStore};
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn store() -> (KubeStore, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    (
        KubeStore::new(client).with_retries(2, std::time::Duration::from_millis(1)),
        handle,
    )
}

async fn expect(
    handle: &mut Handle,
    method: &str,
    path: &str,
    content_type: Option<&str>,
) -> (Value, tower_test::mock::SendResponse<Response<Body>>) {
    let (request, send) = handle.next_request().await.expect("a request");
    assert_eq!(request.method().as_str(), method);
    assert_eq!(request.uri().to_string(), path);
    assert_eq!(
        request
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        content_type
    );
    let body = request.into_body().collect_bytes().await.unwrap();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (body, send)
}

fn reply(send: tower_test::mock::SendResponse<Response<Body>>, status: u16, body: Value) {
    let response = Response::builder()
        .status(status)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    send.send_response(response);
}

fn secret_json(rv: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "envoy", "namespace": "ns", "resourceVersion": rv}, "type": "kubernetes.io/tls", "data": {}})
}

fn status(code: u16, reason: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": reason, "reason": reason, "code": code})
}

#[tokio::test]
async fn secret_update_is_one_merge_patch_with_a_version_precondition() {
    let (store, mut handle) = store();
    let server = tokio::spawn(async move {
        let (body, send) = expect(
            &mut handle,
            "PATCH",
            "/api/v1/namespaces/ns/secrets/envoy?&fieldManager=certrotate",
            Some("application/merge-patch+json"),
        )
        .await;
        assert_eq!(
            body,
            json!({
                "metadata": {
                    "resourceVersion": "7",
                    "labels": {"control-plane": "envoy-gateway"},
                    "annotations": {"certrotate.io/phase": "trust", "stale": null}
                },
                "data": {"ca.crt": "Y2E=", "old": null}
            })
        );
        reply(send, 200, secret_json("8"));
    });
    let mut update = SecretUpdate::default();
    update.data = BTreeMap::from([
        ("ca.crt".into(), Some(b"ca".to_vec())),
        ("old".into(), None),
    ]);
    update.labels = BTreeMap::from([("control-plane".into(), "envoy-gateway".into())]);
    update.annotations = BTreeMap::from([
        ("certrotate.io/phase".into(), Some("trust".into())),
        ("stale".into(), None),
    ]);
    let version = store
        .update_secret(&ObjectRef::new("ns", "envoy"), "7", &update)
        .await
        .unwrap();
    assert_eq!(version, "8");
    server.await.unwrap();
}

#[tokio::test]
async fn restart_is_the_patch_kubectl_rollout_restart_sends() {
    let (store, mut handle) = store();
    let server = tokio::spawn(async move {
        let (body, send) = expect(
            &mut handle,
            "PATCH",
            "/apis/apps/v1/namespaces/ns/deployments/envoy-ratelimit?&fieldManager=certrotate",
            Some("application/merge-patch+json"),
        )
        .await;
        assert_eq!(
            body,
            json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2026-06-01T12:00:00Z",
                "certrotate.io/restarted-for": "abc"
            }}}}})
        );
        reply(
            send,
            200,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "envoy-ratelimit"}}),
        );
    });
    let workload = WorkloadRef {
        kind: WorkloadKind::Deployment,
        object: ObjectRef::new("ns", "envoy-ratelimit"),
    };
    let annotations = BTreeMap::from([
        (
            "kubectl.kubernetes.io/restartedAt".into(),
            "2026-06-01T12:00:00Z".into(),
        ),
        ("certrotate.io/restarted-for".into(), "abc".into()),
    ]);
    store
        .restart_workload(&workload, &annotations)
        .await
        .unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn conflicts_absence_and_retries_map_to_store_errors() {
    let (store, mut handle) = store();
    let server = tokio::spawn(async move {
        // 409 on a stale version.
        let (_, send) = expect(
            &mut handle,
            "PATCH",
            "/api/v1/namespaces/ns/secrets/envoy?&fieldManager=certrotate",
            Some("application/merge-patch+json"),
        )
        .await;
        reply(send, 409, status(409, "Conflict"));
        // 404 on a read is "absent".
        let (_, send) = expect(
            &mut handle,
            "GET",
            "/api/v1/namespaces/ns/secrets/envoy",
            None,
        )
        .await;
        reply(send, 404, status(404, "NotFound"));
        // 500 then 429 then success: retried with backoff.
        for code in [500, 429] {
            let (_, send) = expect(
                &mut handle,
                "GET",
                "/api/v1/namespaces/ns/secrets/envoy",
                None,
            )
            .await;
            reply(send, code, status(code, "InternalError"));
        }
        let (_, send) = expect(
            &mut handle,
            "GET",
            "/api/v1/namespaces/ns/secrets/envoy",
            None,
        )
        .await;
        reply(send, 200, secret_json("3"));
        // Past the retry budget: a clear error.
        for _ in 0..3 {
            let (_, send) = expect(
                &mut handle,
                "GET",
                "/api/v1/namespaces/ns/secrets/envoy",
                None,
            )
            .await;
            reply(send, 503, status(503, "ServiceUnavailable"));
        }
    });
    let s = ObjectRef::new("ns", "envoy");
    let err = store
        .update_secret(&s, "1", &SecretUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err}");
    assert!(store.read_secret(&s).await.unwrap().is_none());
    assert_eq!(store.read_secret(&s).await.unwrap().unwrap().version, "3");
    let err = store.read_secret(&s).await.unwrap_err();
    // The cause is the error's source, printed once in the chain.
    let chain = std::error::Error::source(&err)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        err.to_string().contains("gave up after") && chain.contains("ServiceUnavailable"),
        "{err}: {chain}"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn server_side_dry_run_is_asked_for_on_writes() {
    let (store, mut handle) = store();
    let store = store.with_dry_run(true);
    let server = tokio::spawn(async move {
        let (_, send) = expect(
            &mut handle,
            "PATCH",
            "/api/v1/namespaces/ns/secrets/envoy?&dryRun=All&fieldManager=certrotate",
            Some("application/merge-patch+json"),
        )
        .await;
        reply(send, 200, secret_json("1"));
    });
    store
        .update_secret(
            &ObjectRef::new("ns", "envoy"),
            "1",
            &SecretUpdate::default(),
        )
        .await
        .unwrap();
    server.await.unwrap();
}

/// A profile's Secrets are read with a GET each, by name, never with a LIST: the Role
/// grants `get` by name only (`list` cannot be limited by name and would expose every
/// Secret of the namespace, service-account tokens included), and a LIST by label left a
/// refused request in the audit log of every run. An absent Secret is a 404, not an error.
#[tokio::test]
async fn secrets_are_read_by_name_never_listed() {
    let (store, mut handle) = store();
    let server = tokio::spawn(async move {
        for (name, rv) in [("ca", Some("3")), ("envoy", Some("5")), ("absent", None)] {
            let (_, send) = expect(
                &mut handle,
                "GET",
                &format!("/api/v1/namespaces/ns/secrets/{name}"),
                None,
            )
            .await;
            match rv {
                Some(rv) => reply(send, 200, secret_json(rv)),
                None => reply(send, 404, status(404, "NotFound")),
            }
        }
    });
    let secrets = ["ca", "envoy", "absent"].map(|n| ObjectRef::new("ns", n));
    let labels = BTreeMap::from([("control-plane".to_owned(), "envoy-gateway".to_owned())]);
    let read: Vec<Option<String>> = store
        .read_secrets(&secrets, &labels)
        .await
        .into_iter()
        .map(|r| r.unwrap().map(|s| s.version))
        .collect();
    assert_eq!(read, [Some("3".into()), Some("5".into()), None]);
    server.await.unwrap();
}

const HOOKS: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/hook";

fn hook_json(rv: &str) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "hook", "resourceVersion": rv},
        "webhooks": [
            {"name": "a.example.com", "clientConfig": {"caBundle": "b2xk"}, "futureField": 1},
            {"name": "b.example.com", "clientConfig": {"url": "https://b.example.com"}},
            {"name": "c.example.com", "clientConfig": {"caBundle": "bmV3"}},
        ],
    })
}

fn hook() -> certrotate_core::plan::WebhookRef {
    certrotate_core::plan::WebhookRef {
        kind: certrotate_core::profile::WebhookKind::Mutating,
        name: "hook".into(),
    }
}

/// Red-team R3 (finding 7): a webhook configuration's caBundles are changed with one RFC
/// 6902 patch that tests the version read and each webhook's name, and names nothing but
/// the caBundles that change (`add` where there is none, none for one already right).
#[tokio::test]
async fn webhook_update_is_a_json_patch_testing_version_and_names() {
    use certrotate_kube::WebhookStore as _;
    let (store, mut handle) = store();
    let server = tokio::spawn(async move {
        let (_, send) = expect(&mut handle, "GET", HOOKS, None).await;
        reply(send, 200, hook_json("5"));
        let (body, send) = expect(
            &mut handle,
            "PATCH",
            &format!("{HOOKS}?&fieldManager=certrotate"),
            Some("application/json-patch+json"),
        )
        .await;
        assert_eq!(
            body,
            json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "5"},
                {"op": "test", "path": "/webhooks/0/name", "value": "a.example.com"},
                {"op": "test", "path": "/webhooks/1/name", "value": "b.example.com"},
                {"op": "test", "path": "/webhooks/2/name", "value": "c.example.com"},
                {"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": "bmV3"},
                {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": "bmV3"},
            ])
        );
        reply(send, 200, hook_json("6"));
    });
    let version = store
        .update_webhook(
            &hook(),
            "5",
            &[b"new".to_vec(), b"new".to_vec(), b"new".to_vec()],
        )
        .await
        .unwrap();
    assert_eq!(version, "6");
    server.await.unwrap();
}

/// A failed `test` (the API server's 422) is the conflict the engine re-plans on when the
/// object changed; a 422 on an unchanged object is the API server refusing the change.
#[tokio::test]
async fn a_failed_webhook_patch_test_is_a_conflict_only_if_the_object_changed() {
    use certrotate_kube::WebhookStore as _;
    let (store, mut handle) = store();
    let server = tokio::spawn(async move {
        for now in ["6", "5"] {
            let (_, send) = expect(&mut handle, "GET", HOOKS, None).await;
            reply(send, 200, hook_json("5"));
            let (_, send) = expect(
                &mut handle,
                "PATCH",
                &format!("{HOOKS}?&fieldManager=certrotate"),
                Some("application/json-patch+json"),
            )
            .await;
            reply(send, 422, status(422, "Invalid"));
            let (_, send) = expect(&mut handle, "GET", HOOKS, None).await;
            reply(send, 200, hook_json(now));
        }
    });
    let bundles = [b"x".to_vec(), b"x".to_vec(), b"x".to_vec()];
    let err = store
        .update_webhook(&hook(), "5", &bundles)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err}");
    let err = store
        .update_webhook(&hook(), "5", &bundles)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Backend(_)) && err.to_string().contains("Invalid"),
        "{err}"
    );
    server.await.unwrap();
}

/// A caBundle that is not base64 is named by kind, name and field, never shown.
#[tokio::test]
async fn a_bad_ca_bundle_is_named_without_its_value() {
    use certrotate_kube::WebhookStore as _;
    let (store, mut handle) = store();
    let server = tokio::spawn(async move {
        let (_, send) = expect(&mut handle, "GET", HOOKS, None).await;
        let mut object = hook_json("5");
        object["webhooks"][1]["clientConfig"]["caBundle"] = json!("SECRET-VALUE-NOT-BASE64!");
        reply(send, 200, object);
    });
    let err = store.read_webhook(&hook()).await.unwrap_err().to_string();
    assert_eq!(
        err,
        "MutatingWebhookConfiguration hook: webhooks[1].clientConfig.caBundle is not base64"
    );
    server.await.unwrap();
}

/// Red-team R3 (finding 6): in a storm of 429s, an observation made one LIST with its
/// retries and then a GET with retries for every Secret (`check` took 9 minutes). Now the
/// retries of an observation share one budget and a read that outlasted it ends the
/// observation: the requests are counted on the server's side.
#[tokio::test]
async fn a_429_storm_costs_one_retry_budget_per_observation() {
    let (store, mut handle) = store();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&seen);
    let server = tokio::spawn(async move {
        while let Some((_, send)) = handle.next_request().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            reply(send, 429, status(429, "TooManyRequests"));
        }
    });
    let profile = certrotate_core::Profile::envoy_gateway("ns");
    let err = certrotate_kube::observe(&store, &profile)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    // One attempt and the store's two retries; before, 3 more for each of the Secrets.
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 3, "{err}");
    drop(store);
    server.abort();
}

/// Issue 23: a selector is one label-selected list per namespace (a Role's `list`
/// suffices), paged with `continue`; every namespace is one cluster-wide list.
#[tokio::test]
async fn workloads_are_listed_by_label_per_namespace_and_paged() {
    use certrotate_core::plan::WorkloadSelector;
    let (store, mut handle) = store();
    let item = |ns: &str, name: &str| {
        json!({"metadata": {"name": name, "namespace": ns, "generation": 1,
            "labels": {"app.kubernetes.io/component": "proxy", "app.kubernetes.io/name": "envoy"}},
            "spec": {"replicas": 1, "selector": {}, "template": {"metadata": {"annotations": {"a": "b"}}}},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}})
    };
    let server = tokio::spawn(async move {
        let selector = "labelSelector=app.kubernetes.io%2Fcomponent%3Dproxy%2Capp.kubernetes.io%2Fname%3Denvoy";
        let (_, send) = expect(
            &mut handle,
            "GET",
            &format!("/apis/apps/v1/namespaces/eg/deployments?&{selector}&limit=500"),
            None,
        )
        .await;
        reply(
            send,
            200,
            json!({"apiVersion": "apps/v1", "kind": "DeploymentList",
                "metadata": {"continue": "page2"}, "items": [item("eg", "envoy-eg-b")]}),
        );
        let (_, send) = expect(
            &mut handle,
            "GET",
            &format!(
                "/apis/apps/v1/namespaces/eg/deployments?&{selector}&limit=500&continue=page2"
            ),
            None,
        )
        .await;
        reply(
            send,
            200,
            json!({"apiVersion": "apps/v1", "kind": "DeploymentList",
                "metadata": {}, "items": [item("eg", "envoy-eg-a")]}),
        );
        let (_, send) = expect(
            &mut handle,
            "GET",
            &format!("/apis/apps/v1/deployments?&{selector}&limit=500"),
            None,
        )
        .await;
        reply(
            send,
            200,
            json!({"apiVersion": "apps/v1", "kind": "DeploymentList",
                "metadata": {}, "items": [item("team-a", "gw")]}),
        );
    });
    let labels = BTreeMap::from([
        ("app.kubernetes.io/component".to_owned(), "proxy".to_owned()),
        ("app.kubernetes.io/name".to_owned(), "envoy".to_owned()),
    ]);
    let mut selector = WorkloadSelector {
        kind: WorkloadKind::Deployment,
        labels,
        namespaces: Some(vec!["eg".into()]),
    };
    let found = store.list_workloads(&selector).await.unwrap();
    let names: Vec<String> = found.iter().map(|(w, _)| w.to_string()).collect();
    assert_eq!(
        names,
        ["deployment eg/envoy-eg-a", "deployment eg/envoy-eg-b"],
        "sorted"
    );
    assert!(found[0].1.rollout_complete);
    assert_eq!(found[0].1.template_annotations["a"], "b");
    selector.namespaces = None;
    let found = store.list_workloads(&selector).await.unwrap();
    assert_eq!(found[0].0.to_string(), "deployment team-a/gw");
    server.await.unwrap();
}

/// A list answered 404 (no such collection: an API server without the apps group) selects
/// nothing; it is no failure of the observation.
#[tokio::test]
async fn a_workload_list_answered_404_selects_nothing() {
    use certrotate_core::plan::WorkloadSelector;
    let (store, mut handle) = store();
    let server = tokio::spawn(async move {
        let (_, send) = expect(
            &mut handle,
            "GET",
            "/apis/apps/v1/namespaces/eg/daemonsets?&labelSelector=app%3Denvoy&limit=500",
            None,
        )
        .await;
        reply(send, 404, status(404, "NotFound"));
    });
    let selector = WorkloadSelector {
        kind: WorkloadKind::DaemonSet,
        labels: BTreeMap::from([("app".to_owned(), "envoy".to_owned())]),
        namespaces: Some(vec!["eg".into()]),
    };
    assert_eq!(store.list_workloads(&selector).await.unwrap(), []);
    server.await.unwrap();
}

/// Issue 24: the pods behind a profile's Services are one LIST of EndpointSlices per
/// Service, by the label `kubernetes.io/service-name` in the profile's namespace, reading
/// only; each ready address is an endpoint named by its pod. A refused LIST (the Role
/// lacks `list` on endpointslices) is said in the API server's words, not an error: that
/// Service gives no evidence and the timers decide for it.
#[tokio::test]
async fn discovery_lists_endpointslices_by_the_service_label() {
    use certrotate_core::Profile;
    use certrotate_core::evidence::ServicePort;
    use certrotate_kube::evidence::DiscoveryProblem;

    let (store, mut handle) = store();
    let profile = Profile::envoy_gateway("ns");
    let services = certrotate_core::evidence::service_ports(&profile);
    // 18000 and 18001 of the controller, then the rate limit's 8081 (refused).
    let services: Vec<ServicePort> = [&services[0], &services[1], &services[4]]
        .into_iter()
        .cloned()
        .collect();
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (_, send) = expect(
                &mut handle,
                "GET",
                "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices?&labelSelector=kubernetes.io%2Fservice-name%3Denvoy-gateway",
                None,
            )
            .await;
            reply(
                send,
                200,
                json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList", "metadata": {},
                    "items": [{
                        "metadata": {"name": "envoy-gateway-abc"},
                        "addressType": "IPv4",
                        "ports": [{"port": 18000}, {"port": 18001}],
                        "endpoints": [
                            {"addresses": ["10.244.0.5"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "envoy-gateway-7d9f"}},
                            {"addresses": ["10.244.0.6"], "conditions": {"ready": false}, "targetRef": {"kind": "Pod", "name": "envoy-gateway-old"}},
                        ],
                    }],
                }),
            );
        }
        let (_, send) = expect(
            &mut handle,
            "GET",
            "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices?&labelSelector=kubernetes.io%2Fservice-name%3Denvoy-ratelimit",
            None,
        )
        .await;
        reply(
            send,
            403,
            status(
                403,
                "endpointslices.discovery.k8s.io is forbidden: User \"system:serviceaccount:ns:certrotate\" cannot list resource \"endpointslices\"",
            ),
        );
    });
    let found = store.discover_endpoints(&profile, &services).await;
    server.await.unwrap();
    let shown: Vec<String> = found.endpoints.iter().map(|(_, e)| e.to_string()).collect();
    assert_eq!(
        shown,
        [
            "pod envoy-gateway-7d9f (10.244.0.5:18000, secret ns/envoy-gateway)",
            "pod envoy-gateway-7d9f (10.244.0.5:18001, secret ns/envoy-gateway)",
        ]
    );
    assert_eq!(found.endpoints[0].1.server_name, "envoy-gateway");
    assert_eq!(found.undiscovered.len(), 1, "{:?}", found.undiscovered);
    let refused = &found.undiscovered[0];
    assert_eq!(refused.service.service.name, "envoy-ratelimit");
    let DiscoveryProblem::ListFailed { detail } = &refused.problem else {
        panic!("{refused:?}");
    };
    assert!(
        detail.contains("cannot list resource \"endpointslices\""),
        "{detail}"
    );
    assert!(
        refused
            .to_string()
            .ends_with("no evidence, the timers decide"),
        "{refused}"
    );
}
