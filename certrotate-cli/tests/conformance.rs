//! Conformance of what certrotate writes, judged by an independent RFC 5280 linter:
//! pkilint's `lint_pkix_cert` (<https://github.com/digicert/pkilint>) over every certificate
//! of a fresh install, for every `--key-algorithm` and every profile shipped.
//!
//! pkilint is a Python tool. CI installs a pinned version (`.ci/run`) and sets
//! `CERTROTATE_REQUIRE_PKILINT=1`, which turns a missing linter into a failure; elsewhere the
//! test says why it skips. Install it with `pip install pkilint==0.13.3`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use certrotate_core::KeyAlgorithm;

/// The linter's command.
const PKILINT: &str = "lint_pkix_cert";

/// Every profile certrotate ships (`--profile`).
const SHIPPED_PROFILES: [&str; 1] = ["envoy-gateway"];

/// The one finding allowed: certgen's own SAN choices, kept for parity with Envoy Gateway
/// (its Services are reached by these names inside the cluster). pkilint follows RFC 5280
/// section 4.2.1.6 "preferred name syntax", which wants at least two labels and reads
/// `*.NAMESPACE` as a one-label wildcard: `envoy-gateway` (a single-label name) and
/// `*.envoy-gateway-system` (the wildcard of the `envoy` and `envoy-rate-limit` leaves).
/// Only this code, and only for a name of exactly that shape, is allowed.
const ALLOWED_CODE: &str = "pkix.invalid_domain_name_syntax";

#[test]
fn every_certificate_of_a_fresh_install_passes_pkilint() {
    if !pkilint_available() {
        return;
    }
    let mut linted = BTreeSet::new();
    let mut failures = Vec::new();
    for profile in SHIPPED_PROFILES {
        for alg in KeyAlgorithm::ALL {
            let dir = tempfile::tempdir().unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_certrotate"))
                .args(["rotate", "-q", "--profile", profile, "--key-algorithm"])
                .arg(alg.as_str())
                .arg("--dir")
                .arg(dir.path())
                .env_remove("RUST_LOG")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{profile} {alg}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            for file in crt_files(dir.path()) {
                let text = std::fs::read(&file).unwrap();
                for block in pem::parse_many(&text).unwrap() {
                    assert_eq!(block.tag(), "CERTIFICATE", "{}", file.display());
                    let der = block.contents();
                    // The CA is in every Secret's ca.crt: lint each certificate once.
                    if !linted.insert(der.to_vec()) {
                        continue;
                    }
                    let what = format!("{profile} {alg} {}", file.display());
                    failures.extend(lint(der).into_iter().map(|f| format!("{what}: {f}")));
                }
            }
        }
    }
    // A CA and three leaves per algorithm: nothing was silently left out.
    assert!(
        linted.len() >= SHIPPED_PROFILES.len() * KeyAlgorithm::ALL.len() * 4,
        "only {} certificates linted",
        linted.len()
    );
    println!("pkilint: {} certificates linted", linted.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whether the linter can run; without it, fails under `CERTROTATE_REQUIRE_PKILINT=1` and
/// otherwise says why the test skips.
fn pkilint_available() -> bool {
    let found = Command::new(PKILINT)
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let why = format!("`{PKILINT}` is not on PATH (pip install pkilint==0.13.3)");
        assert!(
            std::env::var_os("CERTROTATE_REQUIRE_PKILINT").is_none(),
            "CERTROTATE_REQUIRE_PKILINT is set but {why}"
        );
        println!("skipped: {why}");
    }
    found
}

/// The `.crt` keys of every Secret below `dir`, read through the store's own key links.
fn crt_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for ns in std::fs::read_dir(dir).unwrap() {
        let ns = ns.unwrap().path();
        if !ns.is_dir() || ns.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        for secret in std::fs::read_dir(&ns).unwrap() {
            let secret = secret.unwrap().path();
            if !secret.is_dir()
                || secret
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with('.')
            {
                continue;
            }
            for key in std::fs::read_dir(&secret).unwrap() {
                let key = key.unwrap().path();
                let name = key.file_name().unwrap().to_string_lossy().into_owned();
                if !name.starts_with('.') && name.ends_with(".crt") {
                    out.push(key);
                }
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no certificate under {}", dir.display());
    out
}

/// Lints one DER certificate: every finding of severity WARNING or worse that is not the
/// documented exception, as `code (SEVERITY) at node: message`.
fn lint(der: &[u8]) -> Vec<String> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), der).unwrap();
    let out = Command::new(PKILINT)
        .args([
            "lint",
            "-s",
            "WARNING",
            "-f",
            "JSON",
            "--document-format",
            "DER",
        ])
        .arg(file.path())
        .output()
        .unwrap();
    // The exit status is the number of findings: the JSON says which.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{PKILINT}: {e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut findings = Vec::new();
    for result in report["results"].as_array().expect("pkilint JSON: results") {
        let node = result["node_path"].as_str().unwrap_or_default();
        for finding in result["finding_descriptions"].as_array().unwrap() {
            let code = finding["code"].as_str().unwrap_or_default();
            let message = finding["message"].as_str().unwrap_or_default();
            if !allowed(code, node, message) {
                findings.push(format!(
                    "{code} ({}) at {node}: {message}",
                    finding["severity"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    findings
}

/// The documented exception: see [`ALLOWED_CODE`].
fn allowed(code: &str, node: &str, message: &str) -> bool {
    let Some(name) = message
        .strip_prefix("Invalid domain name syntax: \"")
        .and_then(|m| m.strip_suffix('"'))
    else {
        return false;
    };
    let one_label = |s: &str| !s.is_empty() && !s.contains(['.', '*']);
    code == ALLOWED_CODE
        && node.contains(".subjectAltName.")
        && (one_label(name) || name.strip_prefix("*.").is_some_and(one_label))
}
