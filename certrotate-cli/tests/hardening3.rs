//! Hardening round 3 (RELIABILITY.md), through the command line: no silent success, and no
//! CA Secret used by surprise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use support::run;

/// `ca.crt` of a Secret folder.
fn ca_crt(dir: &Path, secret: &str) -> Vec<u8> {
    std::fs::read(dir.join("envoy-gateway-system").join(secret).join("ca.crt")).unwrap()
}

/// Finding 2: a CA Secret without the `certrotate.io/current-ca` annotation (dropped by
/// GitOps or a restore) issued every leaf; `rotate --overwrite` rotated nothing, printed
/// "up to date" and exited 0. It now rotates away from the CA its `ca.crt` holds.
#[test]
fn overwrite_rotates_a_ca_secret_whose_annotations_were_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    assert_eq!(run(&["rotate", "--dir", d]).code, 0);
    let before = ca_crt(tmp.path(), "envoy-gateway");
    // Drop every annotation from the CA Secret's metadata, as a restore would.
    let meta = tmp
        .path()
        .join("envoy-gateway-system/envoy-gateway-ca/..data/..meta.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    json["annotations"] = serde_json::json!({});
    let real = std::fs::canonicalize(&meta).unwrap();
    std::fs::write(&real, serde_json::to_vec(&json).unwrap()).unwrap();

    let r = run(&[
        "rotate",
        "--dir",
        d,
        "--overwrite",
        "--wait",
        "--convergence-interval",
        "0s",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("up to date"), "{}", r.stdout);
    let after = ca_crt(tmp.path(), "envoy-gateway");
    assert_ne!(before, after, "the CA was rotated:\n{}", r.stdout);
}

/// Finding 8: a CA Secret planted before the first install (no component Secret issued
/// from it) is refused, naming it, unless `--trust-existing-ca`.
#[test]
fn a_planted_ca_secret_is_refused_until_trusted() {
    let theirs = tempfile::tempdir().unwrap();
    assert_eq!(
        run(&["rotate", "--dir", theirs.path().to_str().unwrap()]).code,
        0
    );
    let ours = tempfile::tempdir().unwrap();
    let ns = ours.path().join("envoy-gateway-system");
    std::fs::create_dir_all(&ns).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(theirs.path().join("envoy-gateway-system/envoy-gateway-ca"))
        .arg(&ns)
        .status()
        .unwrap();
    assert!(status.success());
    let d = ours.path().to_str().unwrap();

    let r = run(&["rotate", "--dir", d]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("envoy-gateway-system/envoy-gateway-ca")
            && r.stderr.contains("issued none")
            && r.stderr.contains("--trust-existing-ca"),
        "{}",
        r.stderr
    );
    assert!(!ns.join("envoy-gateway").exists(), "nothing issued from it");

    let r = run(&["rotate", "--dir", d, "--trust-existing-ca"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        run(&["rotate", "--dir", d]).code,
        0,
        "no flag needed once it issued"
    );
}

/// Finding 3: with --kube, a staged rotation's interval under 2 minutes is refused before
/// anything connects, unless single-step or --allow-short-interval says so.
#[test]
fn a_short_interval_with_kube_is_refused_naming_the_risk() {
    let r = run(&[
        "rotate",
        "--kube",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
        "--overwrite",
        "--convergence-interval",
        "30s",
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("kubelet") && r.stderr.contains("--allow-short-interval"),
        "{}",
        r.stderr
    );
    for extra in [
        &["--allow-short-interval"][..],
        &["--strategy", "single-step"],
    ] {
        let mut args = vec![
            "rotate",
            "--kube",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "--overwrite",
            "--convergence-interval",
            "30s",
        ];
        args.extend_from_slice(extra);
        let r = run(&args);
        assert_ne!(r.code, 2, "{extra:?} accepted:\n{}", r.stderr);
        assert!(!r.stderr.contains("kubelet"), "{}", r.stderr);
    }
}

/// Finding 3: a mistyped interval (`5M`, five months) is refused before a rotation starts,
/// and an explicit interval with --force replaces a persisted one.
#[test]
fn a_mistyped_interval_is_refused_and_force_replaces_a_persisted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    assert_eq!(run(&["rotate", "--dir", d]).code, 0);
    let r = run(&[
        "rotate",
        "--dir",
        d,
        "--overwrite",
        "--convergence-interval",
        "5M",
    ]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("convergence_interval"), "{}", r.stderr);
    let r = run(&["status", "--dir", d]);
    assert!(
        r.stdout.contains("stable"),
        "nothing started:\n{}",
        r.stdout
    );

    // A rotation started with a long interval waits for it...
    let r = run(&[
        "rotate",
        "--dir",
        d,
        "--overwrite",
        "--convergence-interval",
        "2h",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for _ in 0..3 {
        let r = run(&["rotate", "--dir", d, "--convergence-interval", "0s"]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    }
    let r = run(&["status", "--dir", d]);
    assert!(
        r.stdout.contains("phase:    trust"),
        "still waits 2h:\n{}",
        r.stdout
    );
    // ...until an explicit one with --force replaces it.
    let r = run(&[
        "rotate",
        "--dir",
        d,
        "--wait",
        "--convergence-interval",
        "0s",
        "--force",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = run(&["status", "--dir", d]);
    assert!(r.stdout.contains("phase:    stable"), "{}", r.stdout);
}
