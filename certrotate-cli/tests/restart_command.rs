//! `--restart-command WORKLOAD=ARGV`: the host's `kubectl rollout restart`. On a
//! standalone tree, a staged rotation runs the rate limit's command after `trust` (bundles
//! carry the new CA, leaves still the old one's) and after `leaves` (the new leaf); a failing
//! command fails the run, holds the rotation, and runs again on the next run; its flags are
//! checked against the profile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use certrotate_core::{Fingerprint, Origin, inspect_pem};

mod support;
use support::{Run, run};

fn ok(args: &[&str]) -> Run {
    let r = run(args);
    assert_eq!(
        r.code, 0,
        "{args:?}\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    r
}

/// A command that snapshots what the rate limit would load when it starts
/// (`envoy-rate-limit/{ca.crt,tls.crt}`) into `snap/N/`, then exits with the status in
/// the file `status` (0 if absent).
fn restart_command(work: &Path, certs: &Path) -> String {
    let w = work.display();
    let c = certs.join("envoy-rate-limit").display().to_string();
    format!(
        "envoy-ratelimit=sh -c 'n=$(ls {w}/snap | wc -l); mkdir {w}/snap/$n; \
         cp {c}/ca.crt {c}/tls.crt {w}/snap/$n/; echo $CERTROTATE_WORKLOAD > {w}/snap/$n/who; \
         test -f {w}/status && exit $(cat {w}/status); exit 0'"
    )
}

fn fingerprints(pem: &[u8]) -> Vec<Fingerprint> {
    inspect_pem(pem, &Origin::new("test"), time::OffsetDateTime::UNIX_EPOCH)
        .unwrap()
        .into_iter()
        .map(|c| c.fingerprint)
        .collect()
}

/// The certificates of `file` in `dir`, as fingerprints.
fn read(dir: &Path, file: &str) -> Vec<Fingerprint> {
    fingerprints(&std::fs::read(dir.join(file)).unwrap())
}

#[test]
fn a_staged_rotation_restarts_the_rate_limit_after_trust_and_after_leaves() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    std::fs::create_dir(work.join("snap")).unwrap();
    let certs = work.join("certs");
    let dir = certs.to_str().unwrap();
    let command = restart_command(work, &certs);
    let base = ["--dir", dir, "--layout", "standalone"];
    ok(&[&["rotate"][..], &base, &["--restart-command", &command]].concat());
    let old_ca = read(&certs.join("envoy-gateway-ca"), "ca.crt");
    let old_leaf = read(&certs.join("envoy-rate-limit"), "tls.crt");

    let r = ok(&[
        &["rotate"][..],
        &base,
        &[
            "--overwrite",
            "--wait",
            "--convergence-interval",
            "0",
            "--restart-command",
            &command,
        ],
    ]
    .concat());
    assert!(r.stdout.contains("2 restarted"), "{}", r.stdout);
    let new_ca = read(&certs.join("envoy-gateway-ca"), "ca.crt");
    assert_ne!(new_ca, old_ca);

    let snap = work.join("snap");
    let mut snaps: Vec<_> = std::fs::read_dir(&snap)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    snaps.sort();
    assert_eq!(
        snaps,
        ["0", "1"],
        "one restart after trust, one after leaves"
    );
    // After trust: both CAs trusted, the old leaf still served.
    let first = snap.join("0");
    assert_eq!(
        read(&first, "ca.crt"),
        [new_ca.clone(), old_ca.clone()].concat()
    );
    assert_eq!(read(&first, "tls.crt"), old_leaf);
    assert_eq!(
        std::fs::read_to_string(first.join("who")).unwrap().trim(),
        "envoy-ratelimit"
    );
    // After leaves: the new CA's leaf.
    let second = snap.join("1");
    assert_ne!(read(&second, "tls.crt"), old_leaf);
    assert_eq!(read(&second, "ca.crt")[0], new_ca[0]);
}

#[test]
fn a_failing_restart_command_fails_the_run_and_holds_the_rotation_until_it_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    std::fs::create_dir(work.join("snap")).unwrap();
    let certs = work.join("certs");
    let dir = certs.to_str().unwrap();
    let command = restart_command(work, &certs);
    let base = ["--dir", dir, "--layout", "standalone"];
    let rotate = |extra: &[&str]| {
        run(&[
            &["rotate"][..],
            &base,
            &["--convergence-interval", "0", "--restart-command", &command],
            extra,
        ]
        .concat())
    };
    ok(&[&["rotate"][..], &base].concat());
    let old_leaf = read(&certs.join("envoy-rate-limit"), "tls.crt");
    std::fs::write(work.join("status"), "7").unwrap();

    let failed = rotate(&["--overwrite", "--wait"]);
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    assert!(
        failed.stderr.contains(
            "restarting deployment envoy-gateway-system/envoy-ratelimit: restart command `sh` \
             failed (exit status: 7)"
        ),
        "{}",
        failed.stderr
    );
    // However many runs, the leaves stay: the rate limit never loaded the new trust.
    for _ in 0..3 {
        let r = rotate(&["--wait"]);
        assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
        assert_eq!(read(&certs.join("envoy-rate-limit"), "tls.crt"), old_leaf);
    }
    // Without the command, a run does not pretend it restarted.
    let bare = run(&[
        &["rotate"][..],
        &base,
        &["--wait", "--convergence-interval", "0"],
    ]
    .concat());
    assert_eq!(bare.code, 1, "{}\n{}", bare.stdout, bare.stderr);
    assert!(
        bare.stderr.contains("a restart is pending (the last attempt: restart command `sh` failed (exit status: 7)) and no restart command is given for it"),
        "{}",
        bare.stderr
    );

    std::fs::remove_file(work.join("status")).unwrap();
    let r = rotate(&["--wait"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("phase stable"), "{}", r.stdout);
    assert_ne!(read(&certs.join("envoy-rate-limit"), "tls.crt"), old_leaf);
}

#[test]
fn restart_command_flags_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let dir = dir.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--restart-command", "envoy-proxy=true"],
            "profile envoy-gateway has no start-only workload envoy-proxy (it has: envoy-ratelimit)",
        ),
        (
            &["--restart-command", "envoy-ratelimit="],
            "envoy-ratelimit=: the command is empty",
        ),
        (
            &["--restart-command", "envoy-ratelimit=sh -c 'unclosed"],
            "the command has an unclosed quote",
        ),
        (
            &["--restart-command", "restart-it"],
            "expected WORKLOAD=ARGV",
        ),
        (
            &[
                "--restart-command",
                "envoy-ratelimit=true",
                "--restart-command",
                "envoy-ratelimit=false",
            ],
            "--restart-command envoy-ratelimit: given twice",
        ),
    ];
    for (flags, expect) in cases {
        let r = run(&[&["rotate", "--dir", dir][..], flags].concat());
        assert_eq!(r.code, 2, "{flags:?}: {}", r.stderr);
        assert!(r.stderr.contains(expect), "{flags:?}: {}", r.stderr);
    }
    let r = run(&[
        "rotate",
        "--kube",
        "--restart-command",
        "envoy-ratelimit=true",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
}
