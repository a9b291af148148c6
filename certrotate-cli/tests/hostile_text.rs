//! Issue 19, findings 5 and 9, end to end: input that panicked the binary (exit 101) and
//! text from outside that reached the terminal raw.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use support::{Run, run};

/// A self-signed certificate (rcgen) with these names and SANs, as PEM.
fn certificate(cn: &str, org: &str, sans: Vec<String>) -> String {
    let mut params = rcgen::CertificateParams::new(sans).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, org);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

fn no_panic(r: &Run, what: &str) {
    assert_ne!(r.code, 101, "{what} panicked: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
}

fn no_raw_controls(r: &Run, what: &str) {
    for text in [&r.stdout, &r.stderr] {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{what}: raw control character in {text:?}"
        );
    }
}

/// Finding 5: 3,000 SANs made a table cell past 65,535 characters, which panicked the
/// renderer. Every SAN is shown.
#[test]
fn inspect_a_certificate_with_3000_sans() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("many.pem");
    let sans: Vec<String> = (0..3000).map(|i| format!("san-{i}.example")).collect();
    std::fs::write(&file, certificate("many", "o", sans)).unwrap();
    let r = run(&["inspect", file.to_str().unwrap()]);
    no_panic(&r, "inspect");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("san-0.example,san-1.example"));
    assert!(r.stdout.contains("san-2999.example"));
}

/// Finding 9: a CN, O and SAN of `ESC[2J` and `\r`, in a file whose name holds `ESC`,
/// could clear the screen and print "ALL OK". `inspect` escapes each as OpenSSL does;
/// `-o json` escapes them its own way.
#[test]
fn inspect_escapes_control_characters_from_a_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("evil\x1b[31m.pem");
    let pem = certificate(
        "\x1b[2J\rALL OK",
        "evil\x1b]0;title\x07",
        vec!["a\x1b[2J.example".into()],
    );
    std::fs::write(&file, pem).unwrap();
    let r = run(&["inspect", file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    no_raw_controls(&r, "inspect");
    for shown in [
        "\\1B[2J\\0DALL OK",
        "evil\\1B]0;title\\07",
        "a\\1B[2J.example",
        "evil\\1B[31m.pem",
    ] {
        assert!(r.stdout.contains(shown), "{shown} not in {}", r.stdout);
    }
    let r = run(&["-o", "json", "inspect", file.to_str().unwrap()]);
    no_raw_controls(&r, "inspect -o json");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[0]["dns_names"][0], "a\x1b[2J.example");
}

/// Finding 9: an error naming a file whose name holds control characters is escaped.
#[test]
fn an_error_naming_a_hostile_file_is_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("x\x1b[2J\r.pem");
    std::fs::write(&file, "not a certificate").unwrap();
    let r = run(&["inspect", file.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    no_raw_controls(&r, "inspect");
    assert!(r.stderr.contains("x\\1B[2J\\0D.pem"), "{}", r.stderr);
}

/// Finding 5: `--now` of year 10000 in UTC is a usage error naming the flag, not a panic.
#[test]
fn a_now_past_year_9999_in_utc_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let pem = tmp.path().join("ca.pem");
    std::fs::write(&pem, certificate("ca", "o", vec![])).unwrap();
    let pem = pem.to_str().unwrap();
    for now in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+00:01"] {
        let r = run(&["bundle", "--now", now, pem, pem]);
        no_panic(&r, now);
        assert_eq!(r.code, 2, "{now}: {}", r.stderr);
        assert!(
            r.stderr.contains("--now") && r.stderr.contains("outside the years 0000 to 9999"),
            "{now}: {}",
            r.stderr
        );
    }
}

/// Sets the CA Secret's `certrotate.io/phase-since` annotation in DIR (its `..meta.json`).
fn set_since(dir: &Path, since: &str) {
    let meta = dir.join("envoy-gateway-system/envoy-gateway-ca/..data/..meta.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    v["annotations"]["certrotate.io/phase-since"] = since.into();
    std::fs::write(&meta, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// Finding 5: a persisted `phase-since` of `9999-12-31T23:59:59-23:59` (year 10000 in
/// UTC) panicked `status` and `rotate` on every run. Each says what is wrong, naming the
/// annotation, and exits 1.
#[test]
fn a_phase_since_past_year_9999_is_an_error_naming_the_annotation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let r = run(&["rotate", "--dir", dir]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    set_since(tmp.path(), "9999-12-31T23:59:59-23:59");
    for args in [
        vec!["status", "--dir", dir],
        vec!["rotate", "--dir", dir],
        vec!["rotate", "--dir", dir, "--overwrite"],
        vec!["rotate", "--dir", dir, "--overwrite", "--force"],
    ] {
        let r = run(&args);
        no_panic(&r, &args.join(" "));
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("certrotate.io/phase-since")
                && r.stderr.contains("outside the years 0000 to 9999 in UTC"),
            "{args:?}: {}",
            r.stderr
        );
    }
}
