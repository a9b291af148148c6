//! Issue 19, finding 11: `certrotate check` said OK (exit 0) for a `ca.crt` holding a decoy
//! of the CA (its name and subject key identifier, another key) before the CA, which
//! `openssl verify` and Envoy (BoringSSL) refuse: they take the first matching
//! certificate and try no other. The decoy is made with the `openssl` CLI; without it the
//! test says so and passes, unless `CERTROTATE_REQUIRE_OPENSSL=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;

const NS: &str = "envoy-gateway-system";
const COMPONENTS: [&str; 3] = ["envoy-gateway", "envoy", "envoy-rate-limit"];

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::cargo_bin("certrotate")
        .unwrap()
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The file behind the Secret volume's `KEY` link.
fn key_file(dir: &Path, secret: &str, key: &str) -> PathBuf {
    std::fs::canonicalize(dir.join(NS).join(secret).join(key)).unwrap()
}

fn openssl(args: &[&str]) -> String {
    let out = Std::new("openssl").args(args).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_decoy_before_the_ca_fails_check_and_after_it_does_not() {
    if Std::new("openssl").arg("version").output().is_err() {
        assert!(
            std::env::var("CERTROTATE_REQUIRE_OPENSSL").as_deref() != Ok("1"),
            "CERTROTATE_REQUIRE_OPENSSL=1 and no openssl on the PATH"
        );
        println!("openssl not found: the decoy test of `certrotate check` is skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out) = run(&["rotate", "--dir", d]);
    assert_eq!(code, 0, "{out}");
    let ca_path = key_file(dir.path(), "envoy-gateway", "ca.crt");
    let ca = std::fs::read_to_string(&ca_path).unwrap();

    // The decoy: the CA's subject and key identifier, a key of its own.
    let ski = openssl(&[
        "x509",
        "-in",
        ca_path.to_str().unwrap(),
        "-noout",
        "-ext",
        "subjectKeyIdentifier",
    ]);
    let ski = ski.lines().nth(1).unwrap().trim();
    // The CA's name: its common name and its serial number, in decimal (as the CA carries it).
    let serial = openssl(&[
        "x509",
        "-in",
        ca_path.to_str().unwrap(),
        "-noout",
        "-serial",
    ]);
    let serial = u128::from_str_radix(serial.trim().trim_start_matches("serial="), 16).unwrap();
    let subject = format!("/CN=envoy-gateway/serialNumber={serial}");
    let decoy_path = dir.path().join("decoy.pem");
    let key_path = dir.path().join("decoy.key");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key_path.to_str().unwrap(),
        "-subj",
        &subject,
        "-addext",
        &format!("subjectKeyIdentifier={ski}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-days",
        "3650",
        "-out",
        decoy_path.to_str().unwrap(),
    ]);
    let decoy = std::fs::read_to_string(&decoy_path).unwrap();

    for (bundle, trusted) in [
        (format!("{decoy}{ca}"), false),
        (format!("{ca}{decoy}"), true),
    ] {
        for component in COMPONENTS {
            std::fs::write(key_file(dir.path(), component, "ca.crt"), &bundle).unwrap();
        }
        let leaf = key_file(dir.path(), "envoy", "tls.crt");
        let bundle_path = dir.path().join("bundle.pem");
        std::fs::write(&bundle_path, &bundle).unwrap();
        let openssl_ok = Std::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&bundle_path)
            .arg(&leaf)
            .output()
            .unwrap()
            .status
            .success();
        assert_eq!(openssl_ok, trusted, "openssl verify");
        let (code, out) = run(&["check", "--dir", d]);
        if trusted {
            assert_eq!(code, 0, "{out}");
        } else {
            assert_eq!(code, 3, "{out}");
            assert!(out.contains("0 of 9"), "{out}");
            assert!(
                out.contains(&format!(
                    "take the first certificate named \"CN=envoy-gateway, serialNumber={serial}\""
                )),
                "{out}"
            );
            assert!(out.contains("in the store, block 1"), "{out}");
        }
    }
}
