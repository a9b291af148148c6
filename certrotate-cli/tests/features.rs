//! Kubernetes support is the default-on feature `kube`. Built without it (the README's
//! quick local build, `--no-default-features`), every flag that needs a cluster exits 2
//! naming the feature and how to get it, before anything runs: never ignored, which would
//! run in local mode instead of on the cluster. Built with it, the same command lines reach the
//! Kubernetes code (here it finds no cluster: the environment points at none).
//! Local mode without the feature is the rest of the suite, run with
//! `cargo test -p certrotate-cli --no-default-features`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::certrotate;

/// Every command line that needs a cluster, with the flag the error names.
const CLUSTER_ONLY: &[(&[&str], &str)] = &[
    (&["rotate", "--kube"], "--kube"),
    (&["rotate", "--kube", "--overwrite", "--wait"], "--kube"),
    (&["rotate", "--kubeconfig", "missing.yaml"], "--kubeconfig"),
    (&["rotate", "--context", "prod"], "--context"),
    (
        &["rotate", "--dir", "certs", "--dry-run=server"],
        "--dry-run=server",
    ),
    (&["status", "--kube"], "--kube"),
    (&["renew", "--kube"], "--kube"),
    (&["check", "--kube"], "--kube"),
    (
        &["check", "--context", "prod", "-o", "openmetrics"],
        "--context",
    ),
    (&["inspect", "secret", "envoy", "--kube"], "--kube"),
    (&["simulate", "--kube"], "--kube"),
    (&["simulate", "--kube", "--context", "prod"], "--kube"),
];

#[test]
fn cluster_flags_need_the_kube_feature_and_say_so() {
    for (args, flag) in CLUSTER_ONLY {
        // No cluster reachable whatever the build: no kubeconfig, no service account.
        let cwd = tempfile::tempdir().unwrap();
        let out = certrotate()
            .current_dir(cwd.path())
            .env("HOME", cwd.path())
            .env("KUBECONFIG", cwd.path().join("no-kubeconfig"))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .args(*args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        if cfg!(feature = "kube") {
            assert!(!stderr.contains("feature `kube`"), "{args:?}: {stderr}");
            assert_ne!(code, Some(0), "{args:?}: no cluster here: {stderr}");
        } else {
            assert_eq!(code, Some(2), "{args:?}: {stderr}");
            let line = stderr.trim_end();
            assert!(
                line.starts_with(&format!("error: {flag}: certrotate was built without")),
                "{args:?}: {stderr}"
            );
            assert!(
                line.contains("feature `kube`")
                    && line.contains("cargo install --locked --path certrotate-cli"),
                "{args:?}: {stderr}"
            );
            assert_eq!(line.lines().count(), 1, "{args:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{args:?}");
        }
        // Refused before anything ran: no local-mode folder appeared.
        assert!(!cwd.path().join("certs").exists(), "{args:?}: {stderr}");
    }
}

#[test]
fn local_mode_needs_no_feature() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("certs");
    let d = d.to_str().unwrap();
    for args in [
        &["rotate", "--dir", d][..],
        &["rotate", "--dir", d, "--overwrite", "--dry-run"],
        &["status", "--dir", d],
        &["check", "--dir", d, "-o", "openmetrics"],
        &["inspect", "secret/envoy", "--dir", d],
        &["simulate", "--dir", d],
    ] {
        let out = certrotate().args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
