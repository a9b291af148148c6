//! `certrotate check` verifies every component Secret's `tls.key` (local mode).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use assert_cmd::Command;

const NS: &str = "envoy-gateway-system";

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("certrotate")
        .unwrap()
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    for text in [&stdout, &stderr] {
        assert!(!text.contains("PRIVATE KEY-----"), "key in output:\n{text}");
    }
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// The file behind the Secret volume's `KEY` link.
fn key_file(dir: &Path, secret: &str, key: &str) -> std::path::PathBuf {
    std::fs::canonicalize(dir.join(NS).join(secret).join(key)).unwrap()
}

#[test]
fn a_mismatched_or_truncated_tls_key_fails_check_naming_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = run(&["rotate", "--dir", d]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(&["check", "--dir", d]);
    assert_eq!(code, 0, "{out}");

    let envoy_key = key_file(dir.path(), "envoy", "tls.key");
    let own = std::fs::read(&envoy_key).unwrap();
    let other = std::fs::read(key_file(dir.path(), "envoy-gateway", "tls.key")).unwrap();

    std::fs::write(&envoy_key, &other).unwrap();
    let (code, out, _) = run(&["check", "--dir", d]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains(&format!(
            "BAD KEY secret {NS}/envoy: tls.key does not match the public key of tls.crt"
        )),
        "{out}"
    );
    assert!(out.contains("9 of 9"), "trust itself is intact: {out}");
    let (code, out, _) = run(&["check", "--dir", d, "-o", "json"]);
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["keys"][0]["secret"], format!("{NS}/envoy"));
    assert_eq!(v["keys"][0]["problem"]["kind"], "mismatch");
    let (code, out, _) = run(&["check", "--dir", d, "-o", "openmetrics"]);
    assert_eq!(code, 3);
    assert!(
        out.contains(&format!(
            "certrotate_check_problems{{namespace=\"{NS}\"}} 1"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "certrotate_key_ok{{namespace=\"{NS}\",secret=\"envoy\",key=\"tls.key\"}} 0"
        )),
        "{out}"
    );

    std::fs::write(&envoy_key, &own[..own.len() / 2]).unwrap();
    let (code, out, _) = run(&["check", "--dir", d]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains(&format!("BAD KEY secret {NS}/envoy: tls.key unreadable")),
        "{out}"
    );

    std::fs::write(&envoy_key, &own).unwrap();
    let (code, out, _) = run(&["check", "--dir", d]);
    assert_eq!(code, 0, "{out}");
}
