//! The Helm chart deploy/helm/certrotate renders the same objects as the kustomize overlays
//! (`helm template` with the values of `ci/OVERLAY-values.yaml` against `kubectl kustomize
//! deploy/overlays/OVERLAY`), takes the namespace, image, schedule and command lines from
//! its values, lints clean, and renders its optional objects (ServiceMonitor,
//! PrometheusRule, NetworkPolicy) when enabled, valid and consistent with the rest.
//!
//! The comparison is of parsed JSON, object by object (keyed by kind, namespace and name),
//! after exactly these normalisations, each asserted to have applied:
//! 1. Helm's own labels are removed from each object's top-level `metadata.labels`
//!    (`helm.sh/chart`, `app.kubernetes.io/managed-by: Helm`, `app.kubernetes.io/instance`,
//!    `app.kubernetes.io/version`, see [`HELM_LABELS`]), and `labels` with them when
//!    nothing else is left. Pod templates carry none, and nothing else is touched (the
//!    hook's `helm.sh/hook*` annotations are the overlay's own, and compared).
//! 2. kustomize's generated ConfigMap `certrotate-<hash>` (deploy/settings'
//!    configMapGenerator) is renamed `certrotate`, in its name and in every
//!    `configMapKeyRef` that names it: Helm has no name-hash suffix; the chart updates its
//!    ConfigMap in place, which a CronJob reads at each run.
//!
//! `helm` is the one `test-support/controlplane/build.sh` builds; where it is not built,
//! these tests print one line and pass (they fail under `CERTROTATE_REQUIRE_CONTROLPLANE=1`,
//! as in CI). Renders pass `--kube-version 1.33.0`: the chart requires 1.33 or newer, and a
//! helm built from the Go module assumes v1.20.0 without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::Deserialize;
use serde_json::Value;

/// Each overlay of deploy/overlays, rendered by the chart with `ci/OVERLAY-values.yaml`.
const OVERLAYS: [&str; 3] = ["job", "helm-hook", "cronjob"];

/// The labels the chart adds to every object's metadata for Helm, and their values for the
/// release these tests render (`helm template certrotate`).
const HELM_LABELS: [(&str, &str); 4] = [
    (
        "helm.sh/chart",
        concat!("certrotate-", env!("CARGO_PKG_VERSION")),
    ),
    ("app.kubernetes.io/managed-by", "Helm"),
    ("app.kubernetes.io/instance", "certrotate"),
    ("app.kubernetes.io/version", env!("CARGO_PKG_VERSION")),
];

/// The kinds only the optional values render.
const OPTIONAL_KINDS: [&str; 3] = ["ServiceMonitor", "PrometheusRule", "NetworkPolicy"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart() -> PathBuf {
    repo().join("deploy/helm/certrotate")
}

/// The helm `build.sh` builds, or `None` after one line saying these tests did not run.
fn helm() -> Option<PathBuf> {
    let found = certrotate_controlplane::Binaries::locate().and_then(|bins| {
        let helm = bins.helm();
        if helm.is_file() {
            Ok(helm)
        } else {
            Err(format!("{} is not built", helm.display()))
        }
    });
    match found {
        Ok(helm) => Some(helm),
        Err(why) => {
            certrotate_controlplane::skip_or_fail("the Helm chart tests (helm_chart.rs)", &why);
            None
        }
    }
}

/// Runs helm with `args`; its standard output, or its standard error as the error.
fn run_helm(helm: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(helm)
        .args(args)
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("certrotate-helm-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("certrotate-helm-config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("certrotate-helm-data"),
        )
        .output()
        .expect("running helm");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `helm template certrotate deploy/helm/certrotate --kube-version 1.33.0 ARGS`, split
/// into objects.
fn template(helm: &Path, args: &[&str]) -> Result<Vec<Value>, String> {
    let chart = chart();
    let mut all = vec![
        "template",
        "certrotate",
        chart.to_str().unwrap(),
        "--kube-version",
        "1.33.0",
    ];
    all.extend_from_slice(args);
    let text = run_helm(helm, &all)?;
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text)
        .unwrap_or_else(|e| panic!("helm template {args:?}: {e}\n{text}"));
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// [`template`] with the values of `ci/NAME-values.yaml`.
fn template_ci(helm: &Path, name: &str, more: &[&str]) -> Vec<Value> {
    let values = chart().join(format!("ci/{name}-values.yaml"));
    let mut args = vec!["-f", values.to_str().unwrap()];
    args.extend_from_slice(more);
    template(helm, &args).unwrap_or_else(|e| panic!("helm template {args:?}: {e}"))
}

/// `kubectl kustomize DEPLOY/overlays/OVERLAY`, split into objects.
fn kustomize(deploy: &Path, overlay: &str) -> Vec<Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(deploy.join("overlays").join(overlay))
        .output()
        .expect("kubectl (on the PATH, as .ci/run requires)");
    assert!(
        out.status.success(),
        "kubectl kustomize {overlay}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_saphyr::from_str_multiple::<Value, Vec<Value>>(&text)
        .unwrap_or_else(|e| panic!("{overlay}: {e}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

type Key = (String, String, String);

fn key(doc: &Value) -> Key {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        s(&doc["kind"]),
        s(&doc["metadata"]["namespace"]),
        s(&doc["metadata"]["name"]),
    )
}

/// Normalisation 1: removes Helm's labels from each object's metadata, checking each was
/// there with its value.
fn without_helm_labels(docs: Vec<Value>) -> BTreeMap<Key, Value> {
    let mut out = BTreeMap::new();
    for mut doc in docs {
        let k = key(&doc);
        let labels = doc["metadata"]["labels"]
            .as_object_mut()
            .unwrap_or_else(|| panic!("{k:?} has no labels"));
        for (name, value) in HELM_LABELS {
            assert_eq!(
                labels.remove(name).as_ref().and_then(Value::as_str),
                Some(value),
                "{k:?}: label {name}"
            );
        }
        if labels.is_empty() {
            doc["metadata"].as_object_mut().unwrap().remove("labels");
        }
        assert!(out.insert(k.clone(), doc).is_none(), "{k:?} twice");
    }
    out
}

/// Normalisation 2: kustomize's generated `certrotate-<hash>` ConfigMap named `certrotate`,
/// and every reference to it.
fn without_name_hash(docs: Vec<Value>) -> BTreeMap<Key, Value> {
    fn rename(v: &mut Value, from: &str) {
        match v {
            Value::Object(map) => {
                if let Some(r) = map.get_mut("configMapKeyRef")
                    && r["name"] == from
                {
                    r["name"] = "certrotate".into();
                }
                map.values_mut().for_each(|v| rename(v, from));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| rename(v, from)),
            _ => {}
        }
    }
    let generated: Vec<String> = docs
        .iter()
        .filter(|d| d["kind"] == "ConfigMap")
        .map(|d| d["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(generated.len(), 1, "one generated ConfigMap: {generated:?}");
    let from = &generated[0];
    let hash = from.strip_prefix("certrotate-").expect("certrotate-<hash>");
    assert!(
        hash.len() == 10 && hash.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{from}"
    );
    let mut out = BTreeMap::new();
    for mut doc in docs {
        if doc["kind"] == "ConfigMap" {
            doc["metadata"]["name"] = "certrotate".into();
        }
        rename(&mut doc, from);
        assert!(
            !serde_json::to_string(&doc).unwrap().contains(from.as_str()),
            "every reference to {from} is renamed"
        );
        out.insert(key(&doc), doc);
    }
    out
}

/// Asserts the two sides hold the same objects, naming the first that differs.
fn assert_same(helm: &BTreeMap<Key, Value>, kustomize: &BTreeMap<Key, Value>, what: &str) {
    assert_eq!(
        helm.keys().collect::<Vec<_>>(),
        kustomize.keys().collect::<Vec<_>>(),
        "{what}: the same objects"
    );
    for (k, h) in helm {
        assert!(
            h == &kustomize[k],
            "{what}: {k:?} differs\nhelm template:\n{}\nkubectl kustomize:\n{}",
            serde_json::to_string_pretty(h).unwrap(),
            serde_json::to_string_pretty(&kustomize[k]).unwrap()
        );
    }
}

#[test]
fn the_chart_renders_what_each_overlay_renders() {
    let Some(helm) = helm() else { return };
    for overlay in OVERLAYS {
        let chart = without_helm_labels(template_ci(&helm, overlay, &[]));
        let overlay_docs = without_name_hash(kustomize(&repo().join("deploy"), overlay));
        assert_same(&chart, &overlay_docs, overlay);
        check_core_objects(chart.values(), overlay);
    }
    // The defaults are the daily CronJob's overlay.
    let defaults = without_helm_labels(template(&helm, &[]).unwrap());
    assert_same(
        &defaults,
        &without_name_hash(kustomize(&repo().join("deploy"), "cronjob")),
        "default values",
    );
}

/// deploy/ (without the chart) copied to a temporary folder, with `edit` applied to
/// settings/kustomization.yaml.
fn deploy_copy(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let deploy = repo().join("deploy");
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(deploy.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let rel = rel.join(entry.file_name());
            if rel == Path::new("helm") {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                std::fs::create_dir_all(dir.path().join(&rel)).unwrap();
                stack.push(rel);
            } else {
                std::fs::copy(entry.path(), dir.path().join(&rel)).unwrap();
            }
        }
    }
    let settings = dir.path().join("settings/kustomization.yaml");
    let text = std::fs::read_to_string(&settings).unwrap();
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit applies");
    std::fs::write(settings, edited).unwrap();
    dir
}

/// The same settings changed on both sides give the same objects again: the namespace
/// (with the cluster-scoped names and the webhook configuration that embed it), the image
/// and the schedule each come from one value. An empty `namespace` is the release's.
#[test]
fn namespace_image_and_schedule_are_set_in_one_place() {
    let Some(helm) = helm() else { return };
    let copy = deploy_copy(|s| {
        s.replace("namespace: envoy-gateway-system", "namespace: edge-system")
            .replace(
                "newName: localhost/certrotate",
                "newName: registry.example/certrotate",
            )
            .replace("newTag: 0.1.0", "newTag: 9.9.9")
            .replace("value: \"17 3 * * *\"", "value: \"5 4 * * 1\"")
    });
    let settings = [
        "--set",
        "image.repository=registry.example/certrotate,image.tag=9.9.9",
        "--set-string",
        "cronjob.schedule=5 4 * * 1",
    ];
    for overlay in OVERLAYS {
        let expected = without_name_hash(kustomize(copy.path(), overlay));
        for namespace in [
            &["--set", "namespace=edge-system"][..],
            &["--set", "namespace=", "--namespace", "edge-system"][..],
        ] {
            let args = [&settings[..], namespace].concat();
            let chart = without_helm_labels(template_ci(&helm, overlay, &args));
            let text = serde_json::to_string(&chart.values().collect::<Vec<_>>()).unwrap();
            assert!(!text.contains("envoy-gateway-system"), "{overlay}: {text}");
            assert_same(&chart, &expected, &format!("{overlay} {namespace:?}"));
        }
    }
}

/// Every command line is a value.
#[test]
fn command_lines_are_values() {
    let Some(helm) = helm() else { return };
    let docs = template(
        &helm,
        &[
            "--set-json",
            r#"cronjob.checkArgs=["check","--kube","--namespace","$(POD_NAMESPACE)","--warn-within","14d"]"#,
        ],
    )
    .unwrap();
    let cron: CronJob = object(&docs, "CronJob");
    let pod = cron.spec.unwrap().job_template.spec.unwrap().template;
    let args = pod.spec.unwrap().containers[0].args.clone().unwrap();
    assert_eq!(args[4..], ["--warn-within", "14d"]);
}

/// The one object of `kind` in `docs`, parsed.
fn object<T: serde::de::DeserializeOwned>(docs: &[Value], kind: &str) -> T {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind}");
    serde_json::from_value(found[0].clone()).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

/// `doc` parses as `T` and serialises back to itself: no field unknown to the 1.33 API
/// (k8s-openapi skips unknown fields), none of the wrong type.
fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value, what: &str) {
    let parsed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        &serde_json::to_value(parsed).unwrap(),
        doc,
        "{what}: a field the API does not know, or of the wrong type"
    );
}

/// Every core object round-trips through its k8s-openapi type; returns nothing else.
fn check_core_objects<'a>(docs: impl IntoIterator<Item = &'a Value>, what: &str) {
    for doc in docs {
        let what = format!("{what}: {:?}", key(doc));
        match doc["kind"].as_str().unwrap() {
            "ServiceAccount" => round_trips::<ServiceAccount>(doc, &what),
            "Role" => round_trips::<Role>(doc, &what),
            "RoleBinding" => round_trips::<RoleBinding>(doc, &what),
            "ClusterRole" => round_trips::<ClusterRole>(doc, &what),
            "ClusterRoleBinding" => round_trips::<ClusterRoleBinding>(doc, &what),
            "ConfigMap" => round_trips::<ConfigMap>(doc, &what),
            "Job" => round_trips::<Job>(doc, &what),
            "CronJob" => round_trips::<CronJob>(doc, &what),
            "NetworkPolicy" => round_trips::<NetworkPolicy>(doc, &what),
            "ServiceMonitor" | "PrometheusRule" => {}
            other => panic!("{what}: unexpected kind {other}"),
        }
    }
}

/// The fields of prometheus-operator's ServiceMonitor (monitoring.coreos.com/v1) the chart
/// writes; anything else is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    namespace_selector: NamespaceSelector,
    endpoints: Vec<Endpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NamespaceSelector {
    match_names: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Endpoint {
    port: String,
    interval: String,
    honor_labels: bool,
    metric_relabelings: Vec<Relabeling>,
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Relabeling {
    source_labels: Vec<String>,
    regex: String,
    action: String,
}

/// A Prometheus rule file, as PrometheusRule's spec holds it (the fields our alerts use).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

#[test]
fn optional_objects_are_off_by_default() {
    let Some(helm) = helm() else { return };
    for values in OVERLAYS {
        for doc in template_ci(&helm, values, &[]) {
            assert!(
                !OPTIONAL_KINDS.contains(&doc["kind"].as_str().unwrap()),
                "{values}: {:?}",
                key(&doc)
            );
        }
    }
}

/// ci/optional-values.yaml turns every optional object on: they render, parse strictly,
/// and fit the rest (the NetworkPolicy selects every certrotate Pod and opens exactly the
/// ports it must; the ServiceMonitor keeps this namespace's series; the PrometheusRule is
/// deploy/monitoring's alerts). Nothing else changes but the ConfigMap's Pushgateway URL.
#[test]
fn optional_objects_render_when_enabled_and_validate() {
    let Some(helm) = helm() else { return };
    let docs = template_ci(&helm, "optional", &[]);
    check_core_objects(&docs, "optional");
    let kinds: BTreeSet<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    for kind in OPTIONAL_KINDS {
        assert!(kinds.contains(kind), "{kind} renders: {kinds:?}");
    }

    // The rest is the defaults' objects, with the Pushgateway URL set.
    let mut rest = without_helm_labels(docs.clone());
    rest.retain(|k, _| !OPTIONAL_KINDS.contains(&k.0.as_str()));
    let mut defaults = without_helm_labels(template(&helm, &[]).unwrap());
    let config_map = defaults
        .get_mut(&(
            "ConfigMap".into(),
            "envoy-gateway-system".into(),
            "certrotate".into(),
        ))
        .unwrap();
    config_map["data"] =
        serde_json::json!({"pushgateway": "http://pushgateway.monitoring.svc:9091"});
    assert_same(&rest, &defaults, "optional values, the other objects");

    // NetworkPolicy: selects the Pods of every variant, no ingress, egress to exactly DNS,
    // the API server, the Pushgateway and Envoy Gateway's serving ports.
    let policy: NetworkPolicy = object(&docs, "NetworkPolicy");
    let spec = policy.spec.unwrap();
    assert_eq!(
        spec.policy_types.as_deref(),
        Some(&["Ingress".to_owned(), "Egress".to_owned()][..])
    );
    assert!(spec.ingress.is_none(), "no ingress rule: nothing connects");
    let selector = spec.pod_selector.unwrap().match_labels.unwrap();
    for overlay in OVERLAYS {
        for template in pod_templates(&template_ci(&helm, overlay, &[])) {
            let labels = template.metadata.unwrap().labels.unwrap();
            for (k, v) in &selector {
                assert_eq!(
                    labels.get(k),
                    Some(v),
                    "{overlay}: the policy selects its Pods"
                );
            }
        }
    }
    let mut ports = BTreeSet::new();
    let mut cidrs = BTreeSet::new();
    for rule in spec.egress.unwrap() {
        for peer in rule.to.unwrap() {
            if let Some(block) = peer.ip_block {
                cidrs.insert(block.cidr);
            }
        }
        for port in rule.ports.unwrap() {
            let number = match port.port.unwrap() {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n,
                other => panic!("a named port {other:?}"),
            };
            ports.insert((port.protocol.unwrap(), number));
        }
    }
    let tcp = |n| ("TCP".to_owned(), n);
    let expected: BTreeSet<(String, i32)> = [
        ("UDP".to_owned(), 53),
        tcp(53),
        tcp(6443),
        tcp(9091),
        tcp(18000),
        tcp(18001),
        tcp(18002),
        tcp(9443),
        tcp(8081),
    ]
    .into();
    assert_eq!(ports, expected);
    assert_eq!(
        cidrs,
        BTreeSet::from([
            "172.18.0.2/32".into(),
            "fd00::2/128".into(),
            "10.0.0.0/28".into()
        ])
    );

    // ServiceMonitor: the Pushgateway, the pushed labels honoured, this namespace's
    // certrotate series only.
    let monitor = &docs.iter().find(|d| d["kind"] == "ServiceMonitor").unwrap();
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(
        monitor["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    let spec: ServiceMonitorSpec = serde_json::from_value(monitor["spec"].clone())
        .unwrap_or_else(|e| panic!("ServiceMonitor spec: {e}"));
    assert_eq!(spec.namespace_selector.match_names, ["monitoring"]);
    assert_eq!(
        spec.selector.match_labels.unwrap()["app.kubernetes.io/name"],
        "prometheus-pushgateway"
    );
    assert_eq!(spec.endpoints.len(), 1);
    let endpoint = &spec.endpoints[0];
    assert_eq!((&*endpoint.port, &*endpoint.interval), ("http", "1m"));
    assert!(endpoint.honor_labels, "the pushed namespace label is kept");
    assert_eq!(
        endpoint.metric_relabelings,
        [Relabeling {
            source_labels: vec!["__name__".into(), "namespace".into()],
            regex: "certrotate_.+;envoy-gateway-system".into(),
            action: "keep".into(),
        }]
    );

    // PrometheusRule: deploy/monitoring's alerts, untouched by the template engine.
    let rule = &docs.iter().find(|d| d["kind"] == "PrometheusRule").unwrap();
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    let alerts_text =
        std::fs::read_to_string(repo().join("deploy/monitoring/alerts.yaml")).unwrap();
    let alerts: Value = serde_saphyr::from_str(&alerts_text).unwrap();
    assert_eq!(
        rule["spec"], alerts,
        "the PrometheusRule holds deploy/monitoring's alerts"
    );
    let file: RuleFile = serde_json::from_value(rule["spec"].clone())
        .unwrap_or_else(|e| panic!("PrometheusRule spec: {e}"));
    let rules: Vec<&Rule> = file.groups.iter().flat_map(|g| &g.rules).collect();
    assert!(file.groups.iter().all(|g| !g.name.is_empty()));
    assert!(rules.len() >= 7, "{}", rules.len());
    for r in &rules {
        assert!(r.alert.starts_with("Certrotate") && r.expr.contains("certrotate_"));
        assert!(r.labels.contains_key("severity") && r.annotations.contains_key("summary"));
        if let Some(d) = &r.for_ {
            assert!(d.ends_with('m') || d.ends_with('h'), "{}: for {d}", r.alert);
        }
    }
    assert!(
        rules
            .iter()
            .any(|r| r.annotations["summary"].contains("{{ $labels.namespace }}")),
        "Prometheus's templates are kept as written"
    );
}

/// The Pod templates of the Jobs and CronJobs in `docs`.
fn pod_templates(docs: &[Value]) -> Vec<PodTemplateSpec> {
    let mut out = Vec::new();
    for doc in docs {
        match doc["kind"].as_str().unwrap() {
            "Job" => out.push(
                serde_json::from_value::<Job>(doc.clone())
                    .unwrap()
                    .spec
                    .unwrap()
                    .template,
            ),
            "CronJob" => out.push(
                serde_json::from_value::<CronJob>(doc.clone())
                    .unwrap()
                    .spec
                    .unwrap()
                    .job_template
                    .spec
                    .unwrap()
                    .template,
            ),
            _ => {}
        }
    }
    assert!(!out.is_empty());
    out
}

/// A NetworkPolicy without the API server's address would cut certrotate off: refused,
/// naming the value and where to read it.
#[test]
fn a_network_policy_needs_the_api_servers_address() {
    let Some(helm) = helm() else { return };
    let err = template(&helm, &["--set", "networkPolicy.enabled=true"]).unwrap_err();
    assert!(
        err.contains("networkPolicy.apiServer.addresses is required")
            && err.contains("endpointslices"),
        "{err}"
    );
}

/// The PrometheusRule reads the chart's copy of deploy/monitoring/alerts.yaml (a chart reads
/// only its own files): the copy must stay identical.
#[test]
fn the_charts_alerts_are_deploy_monitorings() {
    let source = std::fs::read(repo().join("deploy/monitoring/alerts.yaml")).unwrap();
    let copy = std::fs::read(chart().join("files/alerts.yaml")).unwrap();
    assert!(
        source == copy,
        "deploy/helm/certrotate/files/alerts.yaml differs from deploy/monitoring/alerts.yaml: \
         cp deploy/monitoring/alerts.yaml deploy/helm/certrotate/files/alerts.yaml"
    );
}

/// `helm lint --strict`, with the defaults and with each ci/ values file: no warning, no
/// error (the one INFO, "icon is recommended", is not a finding).
#[test]
fn the_chart_lints_clean() {
    let Some(helm) = helm() else { return };
    let chart = chart();
    let chart = chart.to_str().unwrap().to_owned();
    let mut runs = vec![vec!["lint".to_owned(), "--strict".into(), chart.clone()]];
    for name in ["cronjob", "job", "helm-hook", "optional"] {
        let values = format!("{chart}/ci/{name}-values.yaml");
        runs.push(vec![
            "lint".into(),
            "--strict".into(),
            chart.clone(),
            "-f".into(),
            values,
        ]);
    }
    for args in runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_helm(&helm, &args).unwrap_or_else(|e| panic!("helm {args:?}: {e}"));
        assert!(out.contains("0 chart(s) failed"), "{args:?}: {out}");
        for line in out.lines() {
            assert!(
                !line.contains("[WARNING]") && !line.contains("[ERROR]"),
                "{args:?}: {line}"
            );
        }
    }
}

/// Chart.yaml's version and appVersion (the image tag when `image.tag` is empty) follow the
/// workspace's version.
#[test]
fn the_chart_version_follows_the_workspace() {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ChartYaml {
        api_version: String,
        name: String,
        version: String,
        app_version: String,
    }
    let text = std::fs::read_to_string(chart().join("Chart.yaml")).unwrap();
    let c: ChartYaml = serde_saphyr::from_str(&text).unwrap();
    assert_eq!((&*c.api_version, &*c.name), ("v2", "certrotate"));
    assert_eq!(c.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(c.app_version, env!("CARGO_PKG_VERSION"));
}

/// Issue 23: `gatewayNamespaceMode` renders what the cronjob overlay renders with
/// deploy/components/gateway-namespace (the profile on every command line, the proxies'
/// rule moved from the Role to the ClusterRole).
#[test]
fn gateway_namespace_mode_renders_what_the_component_renders() {
    let Some(helm) = helm() else { return };
    let copy = deploy_copy(|s| s.replace("newTag: 0.1.0", "newTag: 0.1.0 # copy"));
    let file = copy.path().join("overlays/cronjob/kustomization.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replace(
        "  - ../../settings\n",
        "  - ../../settings\n  - ../../components/gateway-namespace\n",
    );
    assert_ne!(edited, text);
    std::fs::write(&file, edited).unwrap();
    let chart =
        without_helm_labels(template(&helm, &["--set", "gatewayNamespaceMode=true"]).unwrap());
    assert_same(
        &chart,
        &without_name_hash(kustomize(copy.path(), "cronjob")),
        "gatewayNamespaceMode",
    );
    let text = serde_json::to_string(&chart.values().collect::<Vec<_>>()).unwrap();
    assert!(text.contains("envoy-gateway-gateway-namespace"), "{text}");
}
