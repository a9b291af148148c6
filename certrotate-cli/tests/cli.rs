//! End-to-end runs of the `certrotate` binary: every command in local mode, bad input, and
//! `--kube` against the kube-fake-client HTTP server (checked with kubectl).

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The fake API server serves the `--kube` tests (feature `kube`, a default).
#[cfg(feature = "kube")]
#[path = "../../test-support/fake_server.rs"]
mod fake_server;

use std::path::Path;

use certrotate_core::{Origin, inspect_pem, verify_chain};

const NS: &str = "envoy-gateway-system";

mod support;
use support::{Run, certrotate, run};

fn ok(args: &[&str]) -> Run {
    let r = run(args);
    assert_eq!(
        r.code, 0,
        "{args:?}\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    r
}

fn read(dir: &Path, secret: &str, key: &str) -> Vec<u8> {
    std::fs::read(dir.join(NS).join(secret).join(key)).unwrap()
}

fn count(pem: &[u8]) -> usize {
    inspect_pem(pem, &Origin::new("t"), time::OffsetDateTime::UNIX_EPOCH)
        .unwrap()
        .len()
}

fn trusted(leaf: &[u8], bundle: &[u8]) -> bool {
    let o = Origin::new("t");
    #[allow(clippy::disallowed_methods)] // a test comparing with what the binary saw
    let now = time::OffsetDateTime::now_utc();
    verify_chain(leaf, &o, bundle, &o, now)
        .unwrap()
        .is_trusted()
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for secret in [
        "envoy-gateway-ca",
        "envoy-gateway",
        "envoy",
        "envoy-rate-limit",
        "envoy-oidc-hmac",
    ] {
        let d = dir.join(NS).join(secret);
        let mut files: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            if f.is_file() {
                out.push((f.display().to_string(), std::fs::read(&f).unwrap()));
            }
        }
    }
    out
}

#[test]
fn install_rerun_rotate_and_rotate_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let r = ok(&["rotate", "--dir", dir]);
    assert!(r.stdout.contains("installed"), "{}", r.stdout);
    assert!(r.stdout.contains("5 created"), "{}", r.stdout);
    let installed = snapshot(tmp.path());

    let r = ok(&["rotate", "--dir", dir]);
    assert!(
        r.stdout.starts_with(&format!(
            "target: directory {dir}, namespace envoy-gateway-system\nup to date\n"
        )),
        "{}",
        r.stdout
    );
    assert_eq!(snapshot(tmp.path()), installed, "a rerun changes nothing");

    let old_leaves: Vec<Vec<u8>> = ["envoy-gateway", "envoy", "envoy-rate-limit"]
        .iter()
        .map(|c| read(tmp.path(), c, "tls.crt"))
        .collect();
    let r = ok(&[
        "rotate",
        "--dir",
        dir,
        "--overwrite",
        "--wait",
        "--convergence-interval",
        "0",
    ]);
    assert!(r.stdout.contains("is current"), "{}", r.stdout);
    assert!(
        r.stdout.contains("not applicable"),
        "restarts in local mode are reported: {}",
        r.stdout
    );
    for (i, c) in ["envoy-gateway", "envoy", "envoy-rate-limit"]
        .iter()
        .enumerate()
    {
        let bundle = read(tmp.path(), c, "ca.crt");
        assert_eq!(count(&bundle), 2, "{c}: bundle of two");
        assert!(
            trusted(&read(tmp.path(), c, "tls.crt"), &bundle),
            "{c}: new leaf trusted"
        );
        assert!(
            trusted(&old_leaves[i], &bundle),
            "{c}: old leaf still trusted"
        );
        assert_ne!(read(tmp.path(), c, "tls.crt"), old_leaves[i]);
    }
    let first_new_ca = read(tmp.path(), "envoy-gateway-ca", "ca.crt");
    // No line of any key body appears in the output of a verbose, JSON run either.
    let r = ok(&[
        "-vv",
        "rotate",
        "--dir",
        dir,
        "--overwrite",
        "--dry-run",
        "--convergence-interval",
        "0",
        "-o",
        "json",
    ]);
    for (secret, key) in [
        ("envoy", "tls.key"),
        ("envoy-gateway-ca", "ca.key"),
        ("envoy-oidc-hmac", "hmac-secret"),
    ] {
        let body = read(tmp.path(), secret, key);
        let text = String::from_utf8_lossy(&body).into_owned();
        for line in text
            .lines()
            .filter(|l| l.len() > 20 && !l.starts_with("-----"))
        {
            assert!(
                !r.stdout.contains(line) && !r.stderr.contains(line),
                "{secret}/{key} leaked"
            );
        }
    }

    ok(&[
        "rotate",
        "--dir",
        dir,
        "--overwrite",
        "--wait",
        "--convergence-interval",
        "0",
    ]);
    let bundle = read(tmp.path(), "envoy", "ca.crt");
    let newest = read(tmp.path(), "envoy-gateway-ca", "ca.crt");
    assert_eq!(count(&bundle), 2, "still two: the newest two");
    assert!(bundle.starts_with(&newest));
    assert!(bundle.ends_with(&first_new_ca));
}

#[test]
fn one_phase_per_run_without_wait_and_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    ok(&["rotate", "--dir", dir]);
    let mut phases = Vec::new();
    for i in 0..3 {
        if i > 0 {
            // The rotation's own interval (persisted with it): 3 s.
            std::thread::sleep(std::time::Duration::from_millis(3100));
        }
        let r = ok(&[
            "rotate",
            "--dir",
            dir,
            "--overwrite",
            "--convergence-interval",
            "3s",
            "-o",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        phases.push(v["phase"].as_str().unwrap().to_owned());
        let s = ok(&["status", "--dir", dir]);
        assert!(
            s.stdout
                .contains(&format!("phase:    {}", phases.last().unwrap())),
            "{}",
            s.stdout
        );
    }
    assert_eq!(phases, ["trust", "leaves", "stable"]);

    // Too soon by the rotation's own interval, whatever a later run passes: exit 0, says
    // when.
    let r = ok(&["rotate", "--dir", dir, "--overwrite"]);
    assert!(r.stdout.contains("too soon"), "{}", r.stdout);
    let r = ok(&[
        "rotate",
        "--dir",
        dir,
        "--overwrite",
        "--convergence-interval",
        "1h",
    ]);
    assert!(r.stdout.contains("too soon"));
    let r = ok(&[
        "rotate",
        "--dir",
        dir,
        "--overwrite",
        "--convergence-interval",
        "1h",
        "--force",
    ]);
    assert!(r.stdout.contains("phase trust"), "{}", r.stdout);
    assert!(r.stdout.contains("may run at"), "{}", r.stdout);
    let s = ok(&["status", "--dir", dir, "-o", "yaml"]);
    assert!(s.stdout.contains("phase: trust"), "{}", s.stdout);
}

#[test]
fn dry_run_prints_the_plan_redacted_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let r = ok(&["rotate", "--dir", dir, "--dry-run"]);
    assert!(r.stdout.contains("dry run"), "{}", r.stdout);
    assert!(r.stdout.contains("tls.key=<redacted>"), "{}", r.stdout);
    assert!(!tmp.path().join(NS).exists(), "nothing written");
    ok(&["rotate", "--dir", dir]);
    let before = snapshot(tmp.path());
    let r = ok(&[
        "rotate",
        "--dir",
        dir,
        "--overwrite",
        "--dry-run",
        "-o",
        "json",
    ]);
    let plans: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(plans[0]["to"], "prepared");
    assert!(r.stdout.contains("<redacted>"));
    assert_eq!(snapshot(tmp.path()), before);
    let r = run(&["rotate", "--dir", dir, "--dry-run=server"]);
    if cfg!(feature = "kube") {
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("needs --kube"), "{}", r.stderr);
    } else {
        // Built without Kubernetes support: the flag itself is unavailable (tests/features.rs).
        assert_eq!(r.code, 2);
        assert!(r.stderr.contains("feature `kube`"), "{}", r.stderr);
    }
}

#[test]
fn renew_reissues_leaves_within_the_window_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    ok(&["rotate", "--dir", dir, "--leaf-validity", "30d"]);
    let before = read(tmp.path(), "envoy", "tls.crt");
    let ca = read(tmp.path(), "envoy", "ca.crt");
    let r = ok(&["renew", "--dir", dir, "--before", "7d"]);
    assert!(
        r.stdout.starts_with(&format!(
            "target: directory {dir}, namespace envoy-gateway-system\nup to date\n"
        )),
        "{}",
        r.stdout
    );
    let r = ok(&["renew", "--dir", dir, "--before", "60d"]);
    assert!(r.stdout.contains("renewed 3 leaves"), "{}", r.stdout);
    let after = read(tmp.path(), "envoy", "tls.crt");
    assert_ne!(before, after);
    assert_eq!(read(tmp.path(), "envoy", "ca.crt"), ca, "no trust change");
    assert!(trusted(&after, &ca));
}

#[test]
fn bundle_command_on_files_and_stdin() {
    let fx = certrotate_core::testing::Fixtures::new(3);
    let tmp = tempfile::tempdir().unwrap();
    let new = tmp.path().join("new.pem");
    let old = tmp.path().join("old.pem");
    std::fs::write(&new, fx.new_ca_pem()).unwrap();
    let old_text = format!(
        "{}{}{}",
        fx.expired()[0].cert_pem(),
        fx.valid()[0].cert_pem(),
        fx.valid()[1].cert_pem()
    );
    std::fs::write(&old, &old_text).unwrap();
    let now = "2026-06-01T00:00:00Z";
    let r = ok(&[
        "bundle",
        new.to_str().unwrap(),
        old.to_str().unwrap(),
        "--now",
        now,
    ]);
    assert_eq!(
        r.stdout,
        format!("{}{}", fx.new_ca_pem(), fx.valid()[0].cert_pem())
    );
    assert!(r.stderr.contains("carried: old block 2"), "{}", r.stderr);
    assert!(
        r.stderr.contains("skipped: old block 1: expired"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("skipped: old block 3: beyond the carry limit of 1"),
        "{}",
        r.stderr
    );

    let out = certrotate()
        .args([
            "bundle",
            new.to_str().unwrap(),
            "-",
            "--now",
            now,
            "--max-carried",
            "2",
            "-o",
            "json",
        ])
        .write_stdin(old_text)
        .output()
        .unwrap();
    assert!(out.status.success());
    // -o json: the data (bundle and report) is one document on stdout.
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(count(doc["pem"].as_str().unwrap().as_bytes()), 3);
    assert_eq!(doc["report"]["carried"].as_array().unwrap().len(), 2);
    assert!(out.stderr.is_empty());
}

#[test]
fn inspect_file_folder_and_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    ok(&["rotate", "--dir", dir]);
    let r = ok(&["inspect", &format!("{dir}/{NS}/envoy-gateway/tls.crt")]);
    assert!(
        r.stdout.contains("SUBJECT") && r.stdout.contains("CN=envoy-gateway"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("envoy-gateway.envoy-gateway-system.svc.cluster.local"),
        "{}",
        r.stdout
    );
    let r = ok(&["inspect", dir]);
    assert!(r.stdout.lines().count() >= 8, "{}", r.stdout);
    let r = ok(&["inspect", "secret/envoy", "--dir", dir, "-o", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        rows.as_array().unwrap().len(),
        2,
        "ca.crt and tls.crt, never tls.key"
    );
    assert_eq!(rows[0]["is_ca"], true);
    let r = run(&["inspect", "secret/absent", "--dir", dir]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("secret envoy-gateway-system/absent not found"),
        "{}",
        r.stderr
    );
}

#[test]
fn check_exit_codes_and_openmetrics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    ok(&["rotate", "--dir", dir]);
    let r = ok(&["check", "--dir", dir]);
    assert!(
        r.stdout.contains("9 of 9") && r.stdout.contains("OK"),
        "{}",
        r.stdout
    );
    let r = run(&["check", "--dir", dir, "--warn-within", "3650d"]);
    assert_eq!(r.code, 4, "{}", r.stdout);
    assert!(r.stdout.contains("EXPIRING"));
    let r = ok(&["check", "--dir", dir, "-o", "openmetrics"]);
    assert!(r.stdout.contains("certrotate_certificate_not_after_timestamp_seconds{namespace=\"envoy-gateway-system\",secret=\"envoy\",key=\"tls.crt\",block=\"1\"}"), "{}", r.stdout);
    assert!(r.stdout.contains("certrotate_trust_ok{"));
    assert!(r.stdout.ends_with("# EOF\n"));

    // A peer that trusts another CA: exit 3, naming the pair.
    let fx = certrotate_core::testing::Fixtures::new(4);
    let ca = tmp.path().join(NS).join("envoy-rate-limit").join("ca.crt");
    let target = std::fs::read_link(&ca).unwrap();
    let real = tmp.path().join(NS).join("envoy-rate-limit").join(target);
    std::fs::remove_file(&real).unwrap();
    std::fs::write(&real, fx.valid()[0].cert_pem()).unwrap();
    let r = run(&["check", "--dir", dir]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "UNTRUSTED leaf of envoy-gateway-system/envoy by envoy-gateway-system/envoy-rate-limit"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_input_is_named_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = certrotate_core::testing::Fixtures::new(5);
    let key = tmp.path().join("key.pem");
    std::fs::write(&key, fx.valid()[0].key_pem().expose_secret()).unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, fx.valid()[0].cert_pem()).unwrap();
    let r = run(&["bundle", key.to_str().unwrap(), ca.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("new CA block 1: not a certificate (found PRIVATE KEY)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked") && !r.stderr.contains("backtrace"));

    let profile = tmp.path().join("p.toml");
    std::fs::write(&profile, "name = \"x\"\ncolour = 1\n").unwrap();
    let r = run(&[
        "rotate",
        "--dir",
        tmp.path().to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("p.toml") && r.stderr.contains("colour"),
        "{}",
        r.stderr
    );

    let r = run(&["inspect", "/nonexistent/file.pem"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("/nonexistent/file.pem"), "{}", r.stderr);

    let r = run(&["rotate", "--key-algorithm", "rsa-1024"]);
    assert_eq!(r.code, 2, "usage error");
    assert!(r.stderr.contains("rsa-1024"), "{}", r.stderr);

    let r = run(&[
        "rotate",
        "--dir",
        tmp.path().to_str().unwrap(),
        "--namespace",
        "Bad_NS",
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("namespace"), "{}", r.stderr);
}

#[test]
fn completions_and_help() {
    let r = ok(&["completions", "bash"]);
    assert!(r.stdout.contains("certrotate"));
    let r = ok(&["--help"]);
    assert!(r.stdout.contains("EXIT STATUS"));
    let r = ok(&["rotate", "--help"]);
    assert!(r.stdout.contains("--convergence-interval"));
}

#[cfg(feature = "kube")]
#[test]
fn rotate_against_the_kubernetes_api_over_http() {
    let server = fake_server::start(&[]);
    let kubeconfig = server.kubeconfig();
    // (stdout, stderr) of a run that must succeed.
    let kube_both = |args: &[&str]| {
        let out = certrotate()
            .env("KUBECONFIG", &kubeconfig)
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}\n{stdout}\n{stderr}");
        assert!(!stdout.contains("PRIVATE KEY-----") && !stderr.contains("PRIVATE KEY-----"));
        (stdout, stderr)
    };
    let kube = |args: &[&str]| kube_both(args).0;
    let kube_log = |args: &[&str]| kube_both(args).1;
    let out = kube(&["rotate", "--kube"]);
    assert!(out.contains("installed"), "{out}");
    let out = kube(&["rotate", "--kube", "--overwrite", "--dry-run=server"]);
    assert!(
        out.starts_with("dry run on kubernetes context fake at http://127.0.0.1:")
            && out.contains(", namespace envoy-gateway-system (server-side dry run): nothing"),
        "{out}"
    );
    // The log says the writes were the API server's dry run, not made.
    let logged = kube_log(&["rotate", "--kube", "--overwrite", "--dry-run=server"]);
    let writes: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("secret updated"))
        .collect();
    assert!(!writes.is_empty(), "{logged}");
    assert!(
        writes.iter().all(|l| l.contains("server_dry_run")),
        "{logged}"
    );
    let out = kube(&[
        "rotate",
        "--kube",
        "--overwrite",
        "--wait",
        "--convergence-interval",
        "0",
        "--allow-short-interval",
    ]);
    assert!(out.contains("is current"), "{out}");
    let out = kube(&["check", "--kube"]);
    assert!(out.contains("9 of 9"), "{out}");

    // kubectl, an independent client, sees the bundle of two.
    let out = std::process::Command::new("kubectl")
        .env("KUBECONFIG", &kubeconfig)
        .args(["get", "secret", "envoy", "-n", NS, "-o", "json"])
        .output()
        .expect("kubectl is installed on these machines");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(
        secret["metadata"]["labels"]["control-plane"],
        "envoy-gateway"
    );
    let ca = secret["data"]["ca.crt"].as_str().unwrap();
    let ca = decode_base64(ca);
    assert_eq!(count(&ca), 2);
}

#[cfg(feature = "kube")]
fn decode_base64(s: &str) -> Vec<u8> {
    // The pem crate decodes base64 for us: wrap the payload as a PEM block.
    let pem = format!("-----BEGIN X-----\n{s}\n-----END X-----\n");
    ::pem::parse(pem).unwrap().into_contents()
}

/// Local mode, killed for real: `rotate --wait` is SIGKILLed at a sweep of moments. After
/// each kill every peer still trusts every leaf, and a rerun finishes on one new CA.
#[test]
fn sigkill_at_any_moment_leaves_trust_intact_and_a_rerun_finishes() {
    let bin = assert_cmd::cargo::cargo_bin("certrotate");
    let mut mid_rotation = 0;
    let mut kills = 0;
    // On tmpfs where there is one: a SIGKILL leaves the page cache intact, so what this
    // sweep tests is the order of renames, not fsync; on a disk shared with busy builds
    // each of the ~100 runs waited on fsyncs, making this the slowest test of the suite.
    let shm = std::path::Path::new("/dev/shm");
    let scratch = || match shm.is_dir() {
        true => tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir()),
        false => tempfile::tempdir(),
    };
    for delay_ms in (0..60).step_by(3) {
        let tmp = scratch().unwrap();
        let dir = tmp.path().to_str().unwrap();
        ok(&["rotate", "--dir", dir]);
        let mut child = std::process::Command::new(&bin)
            .args([
                "-q",
                "rotate",
                "--dir",
                dir,
                "--overwrite",
                "--wait",
                "--convergence-interval",
                "0",
            ])
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        kills += 1;
        let status = ok(&["status", "--dir", dir]);
        if !status.stdout.contains("phase:    stable") {
            mid_rotation += 1;
        }
        let check = run(&["check", "--dir", dir]);
        assert_eq!(
            check.code, 0,
            "killed after {delay_ms} ms:\n{}{}",
            check.stdout, check.stderr
        );
        ok(&[
            "rotate",
            "--dir",
            dir,
            "--overwrite",
            "--wait",
            "--convergence-interval",
            "0",
            "--force",
        ]);
        let check = ok(&["check", "--dir", dir]);
        assert!(check.stdout.contains("9 of 9"), "{}", check.stdout);
        let ca = read(tmp.path(), "envoy-gateway-ca", "ca.crt");
        for c in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
            assert!(
                trusted(&read(tmp.path(), c, "tls.crt"), &ca),
                "{c} on the current CA after {delay_ms} ms"
            );
        }
    }
    println!(
        "SIGKILL sweep: {kills} kills, {mid_rotation} landed mid-rotation; trust intact after each, every rerun finished"
    );
    assert!(
        mid_rotation > 0,
        "the sweep must hit a rotation in progress"
    );
}

/// Issue 22: mid-rotation, `status` shows which CAs each bundle holds (role and
/// fingerprint, in order) and which CA issued each leaf, by role and by name (CA
/// subjects carry their serial number, so two generations of `CN=envoy-gateway` differ).
#[test]
fn status_shows_each_bundles_cas_and_each_leafs_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    ok(&["rotate", "--dir", d]);
    ok(&[
        "rotate",
        "--dir",
        d,
        "--overwrite",
        "--convergence-interval",
        "1h",
    ]);
    let out = ok(&["status", "--dir", d]).stdout;
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap()
    };
    let (current, next) = (field("current:"), field("next:"));
    assert!(
        out.contains("TRUST STORE") && out.contains("ISSUED BY"),
        "{out}"
    );
    for c in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
        let store = out
            .lines()
            .find(|l| l.contains(&format!("secret envoy-gateway-system/{c} ca.crt")))
            .unwrap();
        assert!(
            store.ends_with(&format!("next {next}, current {current}")),
            "{store}"
        );
        let leaf = out
            .lines()
            .find(|l| {
                l.trim_start()
                    .starts_with(&format!("envoy-gateway-system/{c} tls.crt"))
            })
            .unwrap();
        assert!(
            leaf.contains(&format!(
                "current {current} (CN=envoy-gateway, serialNumber="
            )),
            "{leaf}"
        );
    }
}
