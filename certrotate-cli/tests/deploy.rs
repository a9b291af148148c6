//! The manifests in deploy/ parse into k8s-openapi types, grant exactly what the
//! Kubernetes backend needs for the envoy-gateway profile, and run commands the CLI accepts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use certrotate_cli::Cli;
use certrotate_core::Profile;
use certrotate_core::plan::ProfileObjects;
use clap::Parser;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};

fn docs(file: &str) -> Vec<serde_json::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    text.split("\n---\n")
        .map(|doc| {
            serde_saphyr::from_str::<serde_json::Value>(doc)
                .unwrap_or_else(|e| panic!("{file}: {e}"))
        })
        .collect()
}

fn of_kind<T: serde::de::DeserializeOwned>(docs: &[serde_json::Value], kind: &str) -> Vec<T> {
    docs.iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| serde_json::from_value(d.clone()).unwrap_or_else(|e| panic!("{kind}: {e}")))
        .collect()
}

fn allows(
    rules: &[PolicyRule],
    group: &str,
    resource: &str,
    name: Option<&str>,
    verb: &str,
) -> bool {
    rules.iter().any(|r| {
        r.api_groups
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|g| g == group)
            && r.resources
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|x| x == resource)
            && r.verbs.iter().any(|v| v == verb)
            && match (&r.resource_names, name) {
                (None, _) => true,
                (Some(names), Some(n)) => names.iter().any(|x| x == n),
                (Some(_), None) => false,
            }
    })
}

#[test]
fn rbac_is_exactly_what_the_envoy_gateway_profile_needs() {
    let docs = docs("rbac.yaml");
    let roles: Vec<Role> = of_kind(&docs, "Role");
    let cluster_roles: Vec<ClusterRole> = of_kind(&docs, "ClusterRole");
    assert_eq!(roles.len(), 1);
    assert_eq!(cluster_roles.len(), 1);
    let rules = roles[0].rules.clone().unwrap();
    let cluster_rules = cluster_roles[0].rules.clone().unwrap();
    let objects = ProfileObjects::of(&Profile::envoy_gateway("envoy-gateway-system"));

    for secret in objects.secrets() {
        for verb in ["get", "patch"] {
            assert!(
                allows(&rules, "", "secrets", Some(&secret.name), verb),
                "{verb} {secret}"
            );
        }
    }
    assert!(allows(&rules, "", "secrets", None, "create"));
    for w in &objects.workloads {
        for verb in ["get", "patch"] {
            assert!(
                allows(&rules, "apps", "deployments", Some(&w.object.name), verb),
                "{verb} {w}"
            );
        }
    }
    for w in &objects.webhooks {
        for verb in ["get", "update"] {
            assert!(allows(
                &cluster_rules,
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
                Some(&w.name),
                verb
            ));
        }
    }
    // Least privilege: no wildcards, no Secret outside the profile, nothing else cluster-wide.
    for r in rules.iter().chain(&cluster_rules) {
        assert!(
            !r.verbs
                .iter()
                .any(|v| v == "*" || v == "delete" || v == "list" || v == "watch"),
            "{r:?}"
        );
        assert!(
            !r.resources
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|x| x == "*")
        );
    }
    let named: BTreeSet<String> = rules
        .iter()
        .filter(|r| {
            r.resources
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|x| x == "secrets")
        })
        .flat_map(|r| r.resource_names.clone().unwrap_or_default())
        .collect();
    let wanted: BTreeSet<String> = objects.secrets().map(|s| s.name.clone()).collect();
    assert_eq!(named, wanted);
    assert!(
        cluster_rules.iter().all(|r| r.resource_names.is_some()),
        "cluster rules are by name"
    );
}

#[test]
fn job_and_cronjob_run_commands_the_cli_accepts() {
    let jobs: Vec<Job> = of_kind(&docs("job.yaml"), "Job");
    let crons: Vec<CronJob> = of_kind(&docs("cronjob.yaml"), "CronJob");
    assert_eq!((jobs.len(), crons.len()), (1, 1));
    let mut pods = vec![jobs[0].spec.clone().unwrap().template.spec.unwrap()];
    pods.push(
        crons[0]
            .spec
            .clone()
            .unwrap()
            .job_template
            .spec
            .unwrap()
            .template
            .spec
            .unwrap(),
    );
    let mut commands = 0;
    for pod in pods {
        assert_eq!(pod.service_account_name.as_deref(), Some("certrotate"));
        for c in pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
        {
            let args = c.args.clone().unwrap();
            let mut argv = vec!["certrotate".to_owned()];
            argv.extend(args);
            Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert!(argv.contains(&"--kube".to_owned()));
            let sc = c.security_context.clone().unwrap();
            assert_eq!(sc.read_only_root_filesystem, Some(true));
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            commands += 1;
        }
    }
    assert_eq!(commands, 3, "rotate, renew, check");
}
