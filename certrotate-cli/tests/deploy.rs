//! The kustomize overlays in deploy/ render (with `kubectl kustomize`, as a user applies
//! them), parse into k8s-openapi types, grant exactly what the code calls for the
//! envoy-gateway profile (Secrets, the restart, the webhook, Events), run commands the CLI
//! accepts under a locked-down securityContext with resources, and take the namespace,
//! image and schedule from one place (deploy/settings).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use certrotate_cli::Cli;
use certrotate_core::Profile;
use certrotate_core::plan::ProfileObjects;
use certrotate_core::profile::{WebhookKind, WorkloadKind};
use clap::Parser;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

const OVERLAYS: [&str; 3] = ["job", "helm-hook", "cronjob"];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// `kubectl kustomize DIR/overlays/OVERLAY`, split into documents.
fn render_in(deploy: &Path, overlay: &str) -> Vec<serde_json::Value> {
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
    text.split("\n---\n")
        .map(|doc| {
            serde_saphyr::from_str::<serde_json::Value>(doc)
                .unwrap_or_else(|e| panic!("{overlay}: {e}"))
        })
        .collect()
}

fn render(overlay: &str) -> Vec<serde_json::Value> {
    render_in(&deploy_dir(), overlay)
}

fn of_kind<T: serde::de::DeserializeOwned>(docs: &[serde_json::Value], kind: &str) -> Vec<T> {
    docs.iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| serde_json::from_value(d.clone()).unwrap_or_else(|e| panic!("{kind}: {e}")))
        .collect()
}

/// One permission: (API group, resource, object name or `*`, verb).
type Grant = (String, String, String, String);

fn grants(rules: &[k8s_openapi::api::rbac::v1::PolicyRule]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for r in rules {
        let names = r
            .resource_names
            .clone()
            .unwrap_or_else(|| vec!["*".to_owned()]);
        for g in r.api_groups.as_deref().unwrap_or_default() {
            for res in r.resources.as_deref().unwrap_or_default() {
                for n in &names {
                    for v in &r.verbs {
                        out.insert((g.clone(), res.clone(), n.clone(), v.clone()));
                    }
                }
            }
        }
    }
    out
}

fn grant(group: &str, resource: &str, name: &str, verb: &str) -> Grant {
    (group.into(), resource.into(), name.into(), verb.into())
}

/// What the Kubernetes backend and the Event recorder send for `profile`, namespaced and
/// cluster-wide.
fn needed(profile: &Profile) -> (BTreeSet<Grant>, BTreeSet<Grant>) {
    let objects = ProfileObjects::of(profile);
    let mut namespaced = BTreeSet::new();
    for secret in objects.secrets() {
        // GET to read (the Event recorder also reads the CA Secret's UID), a merge PATCH
        // with a resourceVersion precondition to update.
        for verb in ["get", "patch"] {
            namespaced.insert(grant("", "secrets", &secret.name, verb));
        }
    }
    // POST; create cannot be limited by name.
    namespaced.insert(grant("", "secrets", "*", "create"));
    for w in &objects.workloads {
        let resource = match w.kind {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
        };
        for verb in ["get", "patch"] {
            namespaced.insert(grant("apps", resource, &w.object.name, verb));
        }
    }
    let mut cluster = BTreeSet::new();
    // A selector: a LIST by label in each namespace (or cluster-wide), then a merge PATCH
    // of each workload found, whose names are not known in advance.
    for s in &objects.selectors {
        let resource = match s.kind {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
        };
        let to = if s.namespaces.is_some() {
            &mut namespaced
        } else {
            &mut cluster
        };
        for verb in ["list", "patch"] {
            to.insert(grant("apps", resource, "*", verb));
        }
    }
    // kube's Event recorder: POST a new Event, PATCH the series of a repeated one.
    for verb in ["create", "patch"] {
        namespaced.insert(grant("events.k8s.io", "events", "*", verb));
    }
    // The pods behind the profile's Services, probed while a rotation converges: a LIST
    // of EndpointSlices by the Service's label (list and watch, as issue 24 grants; list
    // cannot be limited by name).
    if !certrotate_core::evidence::service_ports(profile).is_empty() {
        for verb in ["list", "watch"] {
            namespaced.insert(grant("discovery.k8s.io", "endpointslices", "*", verb));
        }
    }
    for w in &objects.webhooks {
        let resource = match w.kind {
            WebhookKind::Mutating => "mutatingwebhookconfigurations",
            WebhookKind::Validating => "validatingwebhookconfigurations",
        };
        // GET as raw JSON, then a JSON patch that tests the resourceVersion and changes
        // only the caBundles (an update would PUT the object whole).
        for verb in ["get", "patch"] {
            cluster.insert(grant(
                "admissionregistration.k8s.io",
                resource,
                &w.name,
                verb,
            ));
        }
    }
    (namespaced, cluster)
}

fn namespace_of(docs: &[serde_json::Value]) -> String {
    let accounts: Vec<ServiceAccount> = of_kind(docs, "ServiceAccount");
    assert_eq!(accounts.len(), 1);
    accounts[0].metadata.namespace.clone().unwrap()
}

/// Checks every overlay's RBAC against what the profile needs in its namespace.
fn assert_rbac_exact(docs: &[serde_json::Value], overlay: &str) {
    assert_rbac_exact_for(docs, overlay, Profile::envoy_gateway);
}

/// [`assert_rbac_exact`] for the profile `profile` makes for the namespace.
fn assert_rbac_exact_for(
    docs: &[serde_json::Value],
    overlay: &str,
    profile: impl Fn(&str) -> Profile,
) {
    let namespace = namespace_of(docs);
    let roles: Vec<Role> = of_kind(docs, "Role");
    let cluster_roles: Vec<ClusterRole> = of_kind(docs, "ClusterRole");
    assert_eq!((roles.len(), cluster_roles.len()), (1, 1), "{overlay}");
    assert_eq!(roles[0].metadata.namespace.as_deref(), Some(&*namespace));
    let (namespaced, cluster) = needed(&profile(&namespace));
    assert_eq!(
        grants(roles[0].rules.as_deref().unwrap()),
        namespaced,
        "{overlay}: the Role grants exactly what the code calls"
    );
    assert_eq!(
        grants(cluster_roles[0].rules.as_deref().unwrap()),
        cluster,
        "{overlay}: the ClusterRole grants exactly the webhook, by name"
    );

    // The bindings bind those roles to the ServiceAccount the Pods run as.
    let bindings: Vec<RoleBinding> = of_kind(docs, "RoleBinding");
    let cluster_bindings: Vec<ClusterRoleBinding> = of_kind(docs, "ClusterRoleBinding");
    assert_eq!(
        (bindings.len(), cluster_bindings.len()),
        (1, 1),
        "{overlay}"
    );
    assert_eq!(
        bindings[0].role_ref.name,
        roles[0].metadata.name.clone().unwrap()
    );
    assert_eq!(
        cluster_bindings[0].role_ref.name,
        cluster_roles[0].metadata.name.clone().unwrap()
    );
    for subjects in [
        bindings[0].subjects.clone().unwrap(),
        cluster_bindings[0].subjects.clone().unwrap(),
    ] {
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, "certrotate");
        assert_eq!(subjects[0].namespace.as_deref(), Some(&*namespace));
    }
}

#[test]
fn every_overlay_grants_exactly_what_the_code_calls() {
    for overlay in OVERLAYS {
        assert_rbac_exact(&render(overlay), overlay);
    }
}

/// The Pod specs of an overlay's Jobs and CronJobs.
fn pods(docs: &[serde_json::Value]) -> Vec<PodSpec> {
    let mut out: Vec<PodSpec> = of_kind::<Job>(docs, "Job")
        .into_iter()
        .map(|j| j.spec.unwrap().template.spec.unwrap())
        .collect();
    out.extend(of_kind::<CronJob>(docs, "CronJob").into_iter().map(|c| {
        c.spec
            .unwrap()
            .job_template
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
    }));
    out
}

/// Each container's command line, `$(VAR)` expanded from the downward API as the kubelet
/// does, checked against the CLI and the Pod's security settings.
fn commands(docs: &[serde_json::Value], overlay: &str) -> Vec<Vec<String>> {
    let namespace = namespace_of(docs);
    let mut out = Vec::new();
    for pod in pods(docs) {
        assert_eq!(pod.service_account_name.as_deref(), Some("certrotate"));
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let psc = pod.security_context.clone().unwrap();
        assert_eq!(psc.run_as_non_root, Some(true), "{overlay}");
        assert!(psc.run_as_user.is_some_and(|u| u > 0), "{overlay}");
        assert_eq!(
            psc.seccomp_profile.map(|s| s.type_),
            Some("RuntimeDefault".to_owned())
        );
        for c in pod
            .init_containers
            .iter()
            .flatten()
            .chain(pod.containers.iter())
        {
            let env = c.env.clone().unwrap_or_default();
            let field = |name: &str| {
                env.iter()
                    .find(|e| e.name == name)
                    .and_then(|e| e.value_from.clone())
                    .and_then(|v| v.field_ref)
                    .map(|f| f.field_path)
            };
            assert_eq!(
                field("POD_NAMESPACE").as_deref(),
                Some("metadata.namespace")
            );
            let mut argv = vec!["certrotate".to_owned()];
            argv.extend(
                c.args
                    .clone()
                    .unwrap()
                    .into_iter()
                    .map(|a| a.replace("$(POD_NAMESPACE)", &namespace)),
            );
            assert!(
                !argv.iter().any(|a| a.contains("$(")),
                "{overlay}: unexpanded variable in {argv:?}"
            );
            Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert!(argv.contains(&"--kube".to_owned()), "{argv:?}");
            if ["rotate", "renew"].contains(&argv[1].as_str()) {
                // The reporting instance of the Events it records.
                assert_eq!(field("POD_NAME").as_deref(), Some("metadata.name"));
            }
            assert!(
                c.command.is_none(),
                "the image's entrypoint runs certrotate"
            );

            let sc = c.security_context.clone().unwrap();
            assert_eq!(
                sc.read_only_root_filesystem,
                Some(true),
                "{overlay} {}",
                c.name
            );
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            assert_eq!(sc.run_as_non_root, Some(true));
            assert_eq!(
                sc.capabilities.and_then(|c| c.drop),
                Some(vec!["ALL".to_owned()])
            );
            let resources = c.resources.clone().unwrap();
            for (what, map) in [
                ("requests", resources.requests),
                ("limits", resources.limits),
            ] {
                let map = map.unwrap_or_default();
                assert!(
                    map.contains_key("cpu") && map.contains_key("memory"),
                    "{overlay} {}: {what} {map:?}",
                    c.name
                );
            }
            out.push(argv[1..].to_vec());
        }
    }
    out
}

#[test]
fn overlays_run_the_lifecycle_with_commands_the_cli_accepts() {
    let job = render("job");
    let commands_of = |docs: &[serde_json::Value], overlay| {
        commands(docs, overlay)
            .into_iter()
            .map(|argv| argv.join(" "))
            .collect::<Vec<_>>()
    };
    // One Job rotates the whole way.
    let jobs: Vec<Job> = of_kind(&job, "Job");
    assert_eq!(jobs.len(), 1);
    assert!(
        jobs[0]
            .spec
            .as_ref()
            .unwrap()
            .ttl_seconds_after_finished
            .is_some()
    );
    let cmds = commands_of(&job, "job");
    assert_eq!(cmds.len(), 1);
    assert!(
        cmds[0].starts_with("rotate ") && cmds[0].contains("--overwrite --wait"),
        "{cmds:?}"
    );

    // The Helm hook runs after the chart's certgen (a pre-install/pre-upgrade hook) and
    // adopts what it made (issue 22); it never rotates a managed CA and never waits.
    let hook = render("helm-hook");
    let jobs: Vec<Job> = of_kind(&hook, "Job");
    assert_eq!(jobs.len(), 1);
    let annotations = jobs[0].metadata.annotations.clone().unwrap();
    assert_eq!(annotations["helm.sh/hook"], "post-install,post-upgrade");
    assert!(annotations.contains_key("helm.sh/hook-delete-policy"));
    let cmds = commands_of(&hook, "helm-hook");
    assert_eq!(cmds.len(), 1);
    assert!(
        cmds[0].starts_with("rotate ")
            && cmds[0].contains("--adopt")
            && !cmds[0].contains("--overwrite")
            && !cmds[0].contains("--wait"),
        "{cmds:?}"
    );

    // The daily CronJob: the whole lifecycle (rotate on schedule), then check and push.
    let cron = render("cronjob");
    let crons: Vec<CronJob> = of_kind(&cron, "CronJob");
    assert_eq!(crons.len(), 1);
    let spec = crons[0].spec.clone().unwrap();
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    let cmds = commands_of(&cron, "cronjob");
    let verbs: Vec<&str> = cmds.iter().map(|c| c.split(' ').next().unwrap()).collect();
    assert_eq!(verbs, ["rotate", "check"], "{cmds:?}");
    assert!(
        !cmds[0].contains("--overwrite"),
        "a daily run must not rotate the CA every day"
    );
    assert!(
        cmds[0].contains("--rotate-ca-before 90d"),
        "the CA rotates on schedule: {cmds:?}"
    );
    let check = &pods(&cron)[0].containers[0];
    let push = check
        .env
        .as_deref()
        .unwrap()
        .iter()
        .find(|e| e.name == "CERTROTATE_PUSHGATEWAY")
        .expect("the check container reads the Pushgateway URL");
    let config_map = push
        .value_from
        .clone()
        .unwrap()
        .config_map_key_ref
        .unwrap()
        .name;
    assert!(
        cron.iter()
            .any(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == config_map.as_str()),
        "the ConfigMap {config_map} is rendered (generated in deploy/settings)"
    );
}

/// deploy/ copied to a temporary folder, with `edit` applied to settings/kustomization.yaml.
fn deploy_copy(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(deploy_dir().join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let rel = rel.join(entry.file_name());
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

#[test]
fn namespace_image_and_schedule_are_set_in_one_place() {
    let copy = deploy_copy(|s| {
        s.replace("namespace: envoy-gateway-system", "namespace: edge-system")
            .replace(
                "newName: localhost/certrotate",
                "newName: registry.example/certrotate",
            )
            .replace("newTag: 0.1.0", "newTag: 9.9.9")
            .replace("value: \"17 3 * * *\"", "value: \"5 4 * * 1\"")
    });
    for overlay in OVERLAYS {
        let docs = render_in(copy.path(), overlay);
        let text = serde_json::to_string(&docs).unwrap();
        assert!(
            !text.contains("envoy-gateway-system"),
            "{overlay}: the old namespace is left somewhere: {text}"
        );
        assert_eq!(namespace_of(&docs), "edge-system");
        // The RBAC follows, including the webhook configuration named after the namespace.
        assert_rbac_exact(&docs, overlay);
        let cluster_roles: Vec<ClusterRole> = of_kind(&docs, "ClusterRole");
        assert_eq!(
            cluster_roles[0].metadata.name.as_deref(),
            Some("certrotate.edge-system")
        );
        let mut images = BTreeSet::new();
        for pod in pods(&docs) {
            for c in pod.init_containers.iter().flatten().chain(&pod.containers) {
                images.insert(c.image.clone().unwrap());
            }
        }
        assert_eq!(
            images,
            BTreeSet::from(["registry.example/certrotate:9.9.9".to_owned()]),
            "{overlay}"
        );
        for argv in commands(&docs, overlay) {
            let at = argv.iter().position(|a| a == "--namespace").unwrap();
            assert_eq!(argv[at + 1], "edge-system");
        }
    }
    let crons: Vec<CronJob> = of_kind(&render_in(copy.path(), "cronjob"), "CronJob");
    assert_eq!(crons[0].spec.as_ref().unwrap().schedule, "5 4 * * 1");

    // And nothing outside deploy/settings names the image.
    for overlay in OVERLAYS {
        for pod in pods(&render(overlay)) {
            for c in pod.init_containers.iter().flatten().chain(&pod.containers) {
                assert_eq!(c.image.as_deref(), Some("localhost/certrotate:0.1.0"));
            }
        }
    }
}

/// Issue 23: GatewayNamespace mode is one component added to an overlay: every command
/// runs with the built-in profile that finds the proxies in every namespace, and the
/// ClusterRole grants exactly the cluster-wide list and patch that needs.
#[test]
fn the_gateway_namespace_component_grants_the_proxies_everywhere() {
    let copy = deploy_copy(|s| s.replace("newTag: 0.1.0", "newTag: 0.1.0 # copy"));
    // The helm-hook overlay replaces the Job's command line: the component goes there
    // after it (not tested here).
    for overlay in ["job", "cronjob"] {
        let file = copy
            .path()
            .join("overlays")
            .join(overlay)
            .join("kustomization.yaml");
        let text = std::fs::read_to_string(&file).unwrap();
        let edited = text.replace(
            "  - ../../settings\n",
            "  - ../../settings\n  - ../../components/gateway-namespace\n",
        );
        assert_ne!(edited, text, "{overlay}: the component is added");
        std::fs::write(&file, edited).unwrap();
        let docs = render_in(copy.path(), overlay);
        assert_rbac_exact_for(&docs, overlay, |ns| {
            Profile::envoy_gateway(ns).with_gateway_namespace_mode()
        });
        let commands = commands(&docs, overlay);
        assert!(!commands.is_empty());
        for command in commands {
            assert!(
                command
                    .windows(2)
                    .any(|w| w == ["--profile", "envoy-gateway-gateway-namespace"]),
                "{overlay}: {command:?}"
            );
        }
    }
}
