//! `--layout standalone`: the tree Envoy Gateway's standalone mode reads
//! (`<configHome>/certs/NAME/`, github.com/envoyproxy/gateway v1.9.0
//! `internal/infrastructure/host/paths.go:68-71`), through the binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

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

/// The SDS file upstream's controller writes into `envoy/` (`xds-certificate.json`,
/// `internal/infrastructure/common/proxy_sds.go:14`), 0644.
const SDS: &str = r#"{"resources":[{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret","name":"xds_certificate","tls_certificate":{"certificate_chain":{"filename":"/certs/tls.crt"},"private_key":{"filename":"/certs/tls.key"}}}]}"#;

/// `rotate --layout standalone` installs, then rotates, the tree upstream reads and no
/// other; `check` and `status` read it (exit 0); and upstream's own file beside ours in
/// `envoy/` is the same, byte for byte and mode, after a whole rotation.
#[test]
fn rotate_then_check_on_the_standalone_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("certs");
    let dir = d.to_str().unwrap();
    ok(&["rotate", "--dir", dir, "--layout", "standalone"]);
    let sds = d.join("envoy/xds-certificate.json");
    std::fs::write(&sds, SDS).unwrap();
    std::fs::set_permissions(&sds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = std::fs::symlink_metadata(&sds).unwrap();

    ok(&[
        "rotate",
        "--dir",
        dir,
        "--layout",
        "standalone",
        "--overwrite",
        "--wait",
        "--convergence-interval",
        "0",
    ]);
    ok(&["check", "--dir", dir, "--layout", "standalone"]);
    ok(&["status", "--dir", dir, "--layout", "standalone"]);
    ok(&["simulate", "--dir", dir, "--layout", "standalone"]);

    // Exactly what upstream reads (plus the CA Secret's folder and the layout's names).
    assert_eq!(
        names(&d),
        [
            "envoy",
            "envoy-gateway",
            "envoy-gateway-ca",
            "envoy-oidc-hmac",
            "envoy-rate-limit"
        ]
    );
    for component in ["envoy-gateway", "envoy-rate-limit"] {
        assert_eq!(names(&d.join(component)), ["ca.crt", "tls.crt", "tls.key"]);
    }
    assert_eq!(
        names(&d.join("envoy")),
        ["ca.crt", "tls.crt", "tls.key", "xds-certificate.json"]
    );
    assert_eq!(names(&d.join("envoy-oidc-hmac")), ["hmac-secret"]);
    for file in [
        "envoy-gateway/ca.crt",
        "envoy-gateway/tls.crt",
        "envoy-gateway/tls.key",
        "envoy/ca.crt",
        "envoy/tls.crt",
        "envoy/tls.key",
        "envoy-rate-limit/ca.crt",
        "envoy-rate-limit/tls.crt",
        "envoy-rate-limit/tls.key",
        "envoy-oidc-hmac/hmac-secret",
    ] {
        let path = d.join(file);
        let name = path.file_name().unwrap();
        assert_eq!(
            std::fs::read_link(&path).unwrap(),
            Path::new("..data").join(name),
            "{file}: a link into the folder's ..data"
        );
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.is_file(), "{file}");
        assert_eq!(meta.mode() & 0o777, 0o600, "{file}");
    }
    assert!(
        !d.join("envoy-gateway-system").exists(),
        "no namespace level"
    );

    assert_eq!(std::fs::read_to_string(&sds).unwrap(), SDS, "byte for byte");
    let after = std::fs::symlink_metadata(&sds).unwrap();
    assert_eq!(
        (after.mode(), after.ino(), after.mtime(), after.mtime_nsec()),
        (
            before.mode(),
            before.ino(),
            before.mtime(),
            before.mtime_nsec()
        ),
        "untouched"
    );
}

/// `--layout standalone` with a cluster flag is a usage error (exit 2), as is `-n` with it,
/// which says why (the tree has no namespace; the namespace would only rename the leaves).
#[test]
fn standalone_refuses_cluster_flags_and_a_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    for flags in [
        &["--kube"][..],
        &["--kubeconfig", "k.yaml"],
        &["--context", "edge"],
    ] {
        let mut args = vec!["check", "--layout", "standalone"];
        args.extend_from_slice(flags);
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("--layout"), "{}", r.stderr);
    }
    let r = run(&[
        "rotate",
        "--dir",
        dir,
        "--layout",
        "standalone",
        "-n",
        "edge",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--layout standalone has no namespace"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing written"
    );
    // The kubelet layout (the default) keeps its namespace level.
    ok(&["rotate", "--dir", dir, "--layout", "kubelet", "-n", "edge"]);
    assert!(tmp.path().join("edge/envoy/tls.crt").exists());
}

/// The names of a folder, without the layout's (`..data`, `..vN`, `..lock`), sorted.
fn names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with(".."))
        .collect();
    names.sort();
    names
}
