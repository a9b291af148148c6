//! `certrotate simulate`: the trust matrix of a whole rotation, run in memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The fake API server serves the `--kube` tests (feature `kube`, a default).
#[cfg(feature = "kube")]
#[path = "../../test-support/fake_server.rs"]
mod fake_server;

use std::path::Path;

mod support;
use support::{Run, run};

fn expect(code: i32, args: &[&str]) -> Run {
    let r = run(args);
    assert_eq!(
        r.code, code,
        "{args:?}\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    r
}

const NOW: &str = "2026-06-01T00:00:00Z";

/// A profile with three components, one restarted at start, and no webhook.
fn custom_profile(dir: &Path) -> String {
    let path = dir.join("custom.toml");
    std::fs::write(
        &path,
        r#"
name = "custom"
namespace = "tenant"
[ca]
secret = "tenant-ca"
common_name = "tenant-ca"
[[components]]
secret = "api"
common_name = "api"
dns_names = ["api.{namespace}.svc"]
[[components]]
secret = "worker"
common_name = "worker"
dns_names = ["worker.{namespace}.svc"]
[[components]]
secret = "db"
common_name = "db"
dns_names = ["db.{namespace}.svc"]
[[workloads]]
kind = "StatefulSet"
name = "db"
"#,
    )
    .unwrap();
    path.display().to_string()
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", r.stdout))
}

/// The combinations a step breaks.
fn failures(v: &serde_json::Value) -> usize {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["trust"]["checks"].as_array().unwrap())
        .filter(|c| c["breaks"] == true)
        .inspect(|c| assert_ne!(c["outcome"]["outcome"], "trusted"))
        .count()
}

fn phases(v: &serde_json::Value) -> Vec<String> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}->{}",
                s["from"].as_str().unwrap(),
                s["to"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn envoy_gateway_staged_shows_no_failure() {
    let r = expect(0, &["simulate", "--now", NOW]);
    assert!(r.stdout.contains(", 0 failed"), "{}", r.stdout);
    // The control plane's connections, as its processes load their files (issue 23):
    // the proxies and the rate limit restarted after each change keep every one.
    assert!(
        r.stdout
            .contains(", 0 broken connections under the control plane's reload rules;"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("the rotation finished"), "{}", r.stdout);
    assert!(!r.stdout.contains("FAIL"), "{}", r.stdout);
    assert!(
        r.stdout.contains("envoy-gateway-topology-injector"),
        "webhooks are checked"
    );
    // The webhook's caBundle is empty until the install fills it: shown, not failed.
    assert!(
        r.stdout
            .contains("ok (already failing: leaf after / store before: empty trust store)"),
        "{}",
        r.stdout
    );
    let v = json(&expect(0, &["simulate", "--now", NOW, "-o", "json"]));
    assert_eq!(failures(&v), 0);
    assert_eq!(v["ending"]["kind"], "done");
    for step in v["steps"].as_array().unwrap() {
        assert_eq!(step["connections"], serde_json::json!([]), "{step}");
    }
    assert_eq!(
        phases(&v),
        [
            "stable->stable",
            "stable->prepared",
            "prepared->trust",
            "trust->leaves",
            "leaves->stable"
        ]
    );
}

#[test]
fn envoy_gateway_single_step_shows_its_failures() {
    let r = expect(3, &["simulate", "--strategy", "single-step", "--now", NOW]);
    // The rate limit's start-only xDS client trusts the old CA alone when the controller
    // presents its new leaf.
    assert!(
        r.stdout.contains(
            "connection rate limit -> controller xDS (18001) (deployment \
             envoy-gateway-system/envoy-ratelimit as it loaded at start): FAIL the server's leaf"
        ),
        "{}",
        r.stdout
    );
    // A new leaf written with its bundle, while peers still hold the old ca.crt.
    assert!(
        r.stdout
            .contains("FAIL leaf after / store before: unknown issuer"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("the rotation finished"), "{}", r.stdout);
    let v = json(&expect(
        3,
        &[
            "simulate",
            "--strategy",
            "single-step",
            "--now",
            NOW,
            "-o",
            "json",
        ],
    ));
    assert_eq!(v["strategy"], "single-step");
    // 3 new leaves × 3 old ca.crt at least.
    assert!(failures(&v) >= 9, "{}", failures(&v));
    let step = v["steps"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (step["from"].as_str(), step["to"].as_str()),
        (Some("prepared"), Some("stable"))
    );
    let failing = step["trust"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["outcome"]["outcome"] == "failed" && c["trusted_by"]["kind"] == "component")
        .unwrap();
    assert_eq!(failing["leaf_side"], "after");
    assert_eq!(failing["store_side"], "before");
    assert_eq!(failing["outcome"]["reason"]["kind"], "unknown-issuer");
}

#[test]
fn a_custom_profile_staged_and_single_step() {
    let dir = tempfile::tempdir().unwrap();
    let profile = custom_profile(dir.path());
    let r = expect(0, &["simulate", "--profile", &profile, "--now", NOW]);
    assert!(
        r.stdout
            .contains("simulated rotation of profile custom (staged) from a fresh install")
    );
    assert!(r.stdout.contains("5 steps"), "{}", r.stdout);
    expect(
        3,
        &[
            "simulate",
            "--profile",
            &profile,
            "--strategy",
            "single-step",
            "--now",
            NOW,
        ],
    );
}

#[test]
fn max_carried_zero_is_refused_and_fails() {
    let r = expect(3, &["simulate", "--max-carried", "0", "--now", NOW]);
    assert!(
        r.stdout.contains("(REFUSED by the trust gate)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("the trust gate refused the last step"),
        "{}",
        r.stdout
    );
    let r = expect(
        3,
        &["simulate", "--max-carried", "0", "--now", NOW, "-o", "yaml"],
    );
    assert!(r.stdout.contains("kind: refused"), "{}", r.stdout);
    assert!(r.stdout.contains("refused: true"), "{}", r.stdout);
}

#[test]
fn dir_starts_from_the_observed_state_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    expect(0, &["rotate", "--dir", d, "--convergence-interval", "0s"]);
    let files = |p: &Path| -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![p.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let path = e.path();
                if path.is_dir() && !path.is_symlink() {
                    stack.push(path);
                } else if path.is_file() {
                    out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
                }
            }
        }
        out.sort();
        out
    };
    let before = files(dir.path());
    let v = json(&expect(0, &["simulate", "--dir", d, "-o", "json"]));
    // Installed already: the rotation is the whole simulation.
    assert_eq!(
        phases(&v),
        [
            "stable->prepared",
            "prepared->trust",
            "trust->leaves",
            "leaves->stable"
        ]
    );
    assert_eq!(failures(&v), 0);
    assert_eq!(files(dir.path()), before, "simulate writes nothing");

    // A bundle that lost the CA: the observed state fails already; the first step
    // restores it (issue 22: never wedged), and the rotation proceeds with no failure.
    let other = tempfile::tempdir().unwrap();
    let o = other.path().to_str().unwrap();
    expect(0, &["rotate", "--dir", o, "--convergence-interval", "0s"]);
    let foreign = std::fs::read(other.path().join("envoy-gateway-system/envoy/ca.crt")).unwrap();
    let target = dir.path().join("envoy-gateway-system/envoy/ca.crt");
    let real = std::fs::canonicalize(&target).unwrap();
    std::fs::write(&real, foreign).unwrap();
    let r = expect(0, &["simulate", "--dir", d]);
    assert!(
        r.stdout
            .contains("restored in secret envoy-gateway-system/envoy ca.crt"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("envoy ca.crt             ok (already failing"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("REFUSED"), "{}", r.stdout);
}

#[test]
fn bad_input_is_named() {
    let r = expect(1, &["simulate", "--dir", "/nonexistent/certs"]);
    assert!(r.stderr.contains("/nonexistent/certs"), "{}", r.stderr);
    let r = expect(2, &["simulate", "--strategy", "sideways"]);
    assert!(r.stderr.contains("sideways"), "{}", r.stderr);
}

#[cfg(feature = "kube")]
#[test]
fn kube_starts_from_the_cluster_and_only_reads() {
    let server = fake_server::start(&[]);
    let kubeconfig = server.kubeconfig();
    let kube = |args: &[&str]| {
        let out = support::certrotate()
            .env("KUBECONFIG", &kubeconfig)
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code().unwrap_or(-1), stdout, stderr)
    };
    let (code, out, err) = kube(&["rotate", "--kube"]);
    assert_eq!(code, 0, "{out}{err}");
    let writes_before = server.requests().len();
    let (code, out, err) = kube(&["simulate", "--kube", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(failures(&v), 0);
    assert_eq!(
        phases(&v).first().map(String::as_str),
        Some("stable->prepared")
    );
    let during: Vec<String> = server.requests()[writes_before..].to_vec();
    assert!(!during.is_empty());
    assert!(
        during.iter().all(|r| r.starts_with("GET ")),
        "simulate only reads: {during:#?}"
    );
}

#[test]
fn rotate_single_step_warns_of_the_pairs_it_puts_at_risk() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    expect(0, &["rotate", "--dir", d]);
    let r = expect(
        0,
        &[
            "rotate",
            "--dir",
            d,
            "--overwrite",
            "--strategy",
            "single-step",
        ],
    );
    assert!(
        r.stdout
            .contains("warning: single-step put 9 leaf/trust-store combinations at risk"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("single-step puts trust at risk: leaf of secret"),
        "{}",
        r.stderr
    );
    let r = expect(
        0,
        &[
            "rotate",
            "--dir",
            d,
            "--overwrite",
            "--force",
            "--strategy",
            "single-step",
            "-o",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let event = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "trust-at-risk")
        .unwrap();
    assert_eq!(event["pairs"].as_array().unwrap().len(), 9);
    assert_eq!(event["pairs"][0]["breaks"], true);
}

/// Issue 24: `simulate --never-reloads SECRET` checks what a stuck server serves (its pairs
/// break at the leaves on timers alone, exit 3); with `--evidence` the rotation holds at
/// `trust`, naming each of its endpoints, and exits 6 with no pair broken.
#[test]
fn simulate_applies_the_evidence_rule_to_a_server_that_never_reloads() {
    let timers = expect(
        3,
        &["simulate", "--now", NOW, "--never-reloads", "envoy-gateway"],
    );
    assert!(timers.stdout.contains("FAIL"), "{}", timers.stdout);

    let held = expect(
        6,
        &[
            "simulate",
            "--now",
            NOW,
            "--never-reloads",
            "envoy-gateway",
            "--evidence",
        ],
    );
    assert!(!held.stdout.contains("FAIL"), "{}", held.stdout);
    assert!(
        held.stdout
            .contains("the evidence rule holds the rotation at trust: 4 server(s)"),
        "{}",
        held.stdout
    );
    assert!(
        held.stdout
            .contains("lagging: pod simulated-envoy-gateway (envoy-gateway:18000"),
        "{}",
        held.stdout
    );
    let doc = json(&expect(
        6,
        &[
            "simulate",
            "--now",
            NOW,
            "--never-reloads",
            "envoy-gateway",
            "--evidence",
            "-o",
            "json",
        ],
    ));
    assert_eq!(doc["ending"]["kind"], "held", "{doc}");
    assert_eq!(doc["ending"]["phase"], "trust", "{doc}");

    // Every server reloading: the rule lets it finish.
    expect(0, &["simulate", "--now", NOW, "--evidence"]);
    // A name that is not a component, and --evidence without endpoints: usage errors.
    let r = expect(2, &["simulate", "--never-reloads", "envoy-gw"]);
    assert!(
        r.stderr
            .contains("--never-reloads envoy-gw: profile envoy-gateway has no component Secret envoy-gw (it has envoy-gateway, envoy, envoy-rate-limit)"),
        "{}",
        r.stderr
    );
    let tmp = tempfile::tempdir().unwrap();
    let r = expect(
        2,
        &[
            "simulate",
            "--profile",
            &custom_profile(tmp.path()),
            "--evidence",
        ],
    );
    assert!(r.stderr.contains("names no endpoint"), "{}", r.stderr);

    // `--endpoint` adds a simulated server: a profile without endpoints, one stuck server
    // given on the command line, holds at trust naming it; --endpoint needs --evidence.
    let profile = custom_profile(tmp.path());
    let held = expect(
        6,
        &[
            "simulate",
            "--now",
            NOW,
            "--profile",
            &profile,
            "--never-reloads",
            "api",
            "--evidence",
            "--endpoint",
            "api=10.0.0.7:8443",
        ],
    );
    assert!(
        held.stdout.contains("lagging: 10.0.0.7:8443"),
        "{}",
        held.stdout
    );
    let r = expect(
        2,
        &[
            "simulate",
            "--profile",
            &profile,
            "--endpoint",
            "api=10.0.0.7:8443",
        ],
    );
    assert!(r.stderr.contains("add --evidence"), "{}", r.stderr);
}
