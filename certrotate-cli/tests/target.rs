//! Issue 22, "an implicit target": every command read and wrote `./certs` unless given
//! `--kube`, even with a kubeconfig set (`rotate` in an empty folder wrote a new CA key
//! there; `check -n team-d` said "MISSING" without saying which folder it read). Now
//! `--dir` or a cluster flag is required, every run names its target first (and in JSON),
//! and no kubeconfig outside a cluster says so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The fake API server serves the cluster tests (feature `kube`, a default).
#[cfg(feature = "kube")]
#[path = "../../test-support/fake_server.rs"]
mod fake_server;

use std::path::Path;

mod support;
use support::{Run, certrotate};

const NO_TARGET: &str = "error: no target: pass --dir DIR for local mode, or --kube / \
                         --context / --kubeconfig for a cluster";

/// Runs `args` in `cwd` with no kubeconfig and no service account in reach: HOME and
/// KUBECONFIG point into `cwd`, the in-cluster variables are removed.
fn run_in(cwd: &Path, args: &[&str]) -> Run {
    let out = certrotate()
        .current_dir(cwd)
        .env("HOME", cwd)
        .env("KUBECONFIG", cwd.join("no-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Without `--dir` or a cluster flag, every command that reads or writes Secrets exits 2
/// naming both choices, and writes nothing (no `./certs` with a new CA key).
#[test]
fn a_command_with_a_target_needs_one() {
    let cwd = tempfile::tempdir().unwrap();
    for args in [
        &["rotate"][..],
        &["rotate", "--overwrite", "--wait"],
        &["rotate", "--dry-run"],
        &["status"],
        &["renew", "--before", "30d"],
        &["check", "-n", "team-d"],
        &["check", "-o", "openmetrics"],
        &["inspect", "secret", "envoy"],
        &["inspect", "secret/envoy"],
    ] {
        let r = run_in(cwd.path(), args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert_eq!(r.stderr.trim_end(), NO_TARGET, "{args:?}");
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    assert_eq!(entries(cwd.path()), Vec::<String>::new(), "nothing written");
}

/// `--dir` with a cluster flag is a usage error; so is a local-mode flag without `--dir`.
#[test]
fn dir_and_a_cluster_flag_conflict() {
    let cwd = tempfile::tempdir().unwrap();
    for args in [
        &["rotate", "--dir", "certs", "--kube"][..],
        &["status", "--dir", "certs", "--context", "prod"],
        &["check", "--dir", "certs", "--kubeconfig", "k.yaml"],
        &["simulate", "--dir", "certs", "--kubeconfig", "k.yaml"],
        &["simulate", "--dir", "certs", "--context", "prod"],
        &["check", "--insecure-skip-dir-checks"],
        &[
            "check",
            "--kubeconfig",
            "k.yaml",
            "--insecure-skip-dir-checks",
        ],
    ] {
        let r = run_in(cwd.path(), args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.starts_with("error: "), "{args:?}: {}", r.stderr);
    }
    assert_eq!(entries(cwd.path()), Vec::<String>::new(), "nothing written");
}

/// Commands without a target are unaffected: a file, completions, the version, a
/// simulation of a fresh install.
#[test]
fn commands_without_a_target_need_none() {
    let cwd = tempfile::tempdir().unwrap();
    let pem = rcgen::generate_simple_self_signed(vec!["a.example".into()])
        .unwrap()
        .cert
        .pem();
    std::fs::write(cwd.path().join("a.pem"), pem).unwrap();
    for args in [
        &["inspect", "a.pem"][..],
        &["completions", "bash"],
        &["--version"],
        &["simulate"],
    ] {
        let r = run_in(cwd.path(), args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    }
}

/// Every run and dry run in local mode names DIR and the namespace in its first line and
/// in its JSON; `check -n team-d` says which folder and namespace its MISSING came from.
#[test]
fn a_local_run_names_its_directory_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let first = format!("directory {dir}, namespace envoy-gateway-system");
    let human = |args: &[&str], code: i32| {
        let r = run_in(tmp.path(), args);
        assert_eq!(r.code, code, "{args:?}: {}{}", r.stdout, r.stderr);
        r.stdout.lines().next().unwrap_or_default().to_owned()
    };
    assert_eq!(
        human(&["rotate", "--dir", dir], 0),
        format!("target: {first}")
    );
    assert_eq!(
        human(&["rotate", "--dir", dir, "--overwrite", "--dry-run"], 0),
        format!("dry run on {first}: nothing was changed; the run would:")
    );
    assert_eq!(
        human(&["renew", "--dir", dir, "--before", "1d"], 0),
        format!("target: {first}")
    );
    assert_eq!(
        human(&["status", "--dir", dir], 0),
        format!("target: {first}")
    );
    assert_eq!(
        human(&["check", "--dir", dir], 0),
        format!("target: {first}")
    );
    let r = run_in(tmp.path(), &["check", "--dir", dir, "-n", "team-d"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let mut lines = r.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(format!("target: directory {dir}, namespace team-d").as_str())
    );
    assert!(
        lines.any(|l| l.contains("MISSING secret team-d/envoy")),
        "{}",
        r.stdout
    );

    for args in [
        &["rotate", "--dir", dir][..],
        &["rotate", "--dir", dir, "--overwrite", "--dry-run"],
        &["renew", "--dir", dir],
        &["status", "--dir", dir],
        &["check", "--dir", dir],
        &["simulate", "--dir", dir],
    ] {
        let r = run_in(tmp.path(), &[args, &["-o", "json"]].concat());
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        // A whole dry run is a list of rounds, each naming the target.
        let document = json.as_array().map_or(&json, |rounds| &rounds[0]);
        assert_eq!(
            document["target"],
            serde_json::json!({"mode": "local", "dir": dir, "namespace": "envoy-gateway-system"}),
            "{args:?}: {}",
            r.stdout
        );
    }
}

/// A run on a cluster names the context, the API server's URL and the namespace, in its
/// first line and in its JSON, for a run, a client dry run and a server dry run.
#[cfg(feature = "kube")]
#[test]
fn a_cluster_run_names_its_context_and_server_first() {
    let server = fake_server::start(&[]);
    let kubeconfig = server.kubeconfig();
    let kubeconfig = kubeconfig.to_str().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let first = format!(
        "kubernetes context fake at {}, namespace envoy-gateway-system",
        server.url
    );
    let run = |args: &[&str]| {
        let r = run_in(cwd.path(), &[args, &["--kubeconfig", kubeconfig]].concat());
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
        r.stdout
    };
    let first_line = |args: &[&str]| run(args).lines().next().unwrap_or_default().to_owned();
    assert_eq!(
        first_line(&["rotate", "--dry-run"]),
        format!("dry run on {first}: nothing was changed; the run would:")
    );
    assert_eq!(first_line(&["rotate"]), format!("target: {first}"));
    assert_eq!(
        first_line(&["rotate", "--overwrite", "--dry-run=server"]),
        format!("dry run on {first} (server-side dry run): nothing was changed")
    );
    assert_eq!(first_line(&["status"]), format!("target: {first}"));
    assert_eq!(first_line(&["check"]), format!("target: {first}"));
    assert!(
        run(&["simulate"]).starts_with(&format!(
            "simulated rotation of profile envoy-gateway (staged) from {first}\n"
        )),
        "simulate names where it started"
    );

    let json: serde_json::Value = serde_json::from_str(&run(&["status", "-o", "json"])).unwrap();
    assert_eq!(
        json["target"],
        serde_json::json!({
            "mode": "kubernetes", "context": "fake", "in_cluster": false,
            "server": server.url, "server_dry_run": false,
            "namespace": "envoy-gateway-system",
        })
    );
    let json: serde_json::Value =
        serde_json::from_str(&run(&["rotate", "--context", "fake", "-o", "json"])).unwrap();
    assert_eq!(json["target"]["context"], "fake");
    assert_eq!(json["target"]["server"], server.url.as_str());
}

/// No kubeconfig (KUBECONFIG and HOME point at an empty folder) and not in a Pod: one
/// clear error instead of kube's "failed to read an incluster environment variable".
#[cfg(feature = "kube")]
#[test]
fn no_kubeconfig_outside_a_cluster_says_so() {
    let cwd = tempfile::tempdir().unwrap();
    for args in [
        &["status", "--kube"][..],
        &["rotate", "--kube", "--dry-run"],
        &["simulate", "--kube"],
    ] {
        let r = run_in(cwd.path(), args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(
                "no kubeconfig found (KUBECONFIG, ~/.kube/config) and not running in a cluster"
            ),
            "{args:?}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("incluster"), "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
    }
}
