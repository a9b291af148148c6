//! Issue 22, items 2 and 3, through the binary: an install certrotate does not manage is
//! reported loudly (a warning naming its CA and its end, `certrotate_managed 0`, an Event
//! on the `envoy-gateway` Secret) and adopted with `--adopt`; after a rotation, `check`
//! reports the carried CA as information (exit 0, not 4), `--drop-old-ca` on a stable
//! install retires it, and `renew` capped by the CA exits 5 in the same run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "kube")]
#[path = "../../test-support/fake_server.rs"]
mod fake_server;
mod support;

use std::path::Path;

use support::run;

const NS: &str = "envoy-gateway-system";

fn installed(extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut args = vec!["rotate", "--dir", d];
    args.extend_from_slice(extra);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    dir
}

/// The value of the one sample of `name` in OpenMetrics `text`.
fn sample(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit_once(' '))
        .map(|(_, v)| v.to_owned())
}

/// A rotation with waits of a second, to its end.
fn rotate_to_the_end(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "rotate",
        "--dir",
        dir.to_str().unwrap(),
        "--wait",
        "--convergence-interval",
        "1s",
    ];
    args.extend_from_slice(extra);
    let r = run(&args);
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    r.stdout
}

#[test]
fn an_unmanaged_install_is_reported_loudly_then_adopted_with_adopt() {
    // What certgen leaves: the component Secrets of one CA, no CA Secret (its key gone).
    let dir = installed(&[]);
    let d = dir.path().to_str().unwrap();
    std::fs::remove_dir_all(dir.path().join(NS).join("envoy-gateway-ca")).unwrap();

    let r = run(&["rotate", "--dir", d]);
    assert_eq!(
        r.code, 0,
        "never blocks a Helm upgrade: {}{}",
        r.stdout, r.stderr
    );
    for word in [
        "not managed by certrotate",
        "CN=envoy-gateway",
        "expires at",
        "--adopt",
    ] {
        assert!(
            r.stderr.contains(word),
            "a warning with {word:?}: {}",
            r.stderr
        );
    }
    let r = run(&["check", "--dir", d, "-o", "openmetrics"]);
    assert_eq!(
        sample(&r.stdout, "certrotate_managed").as_deref(),
        Some("0"),
        "{}",
        r.stdout
    );

    let out = rotate_to_the_end(dir.path(), &["--adopt"]);
    assert!(out.contains("done: CA"), "{out}");
    let r = run(&["check", "--dir", d, "-o", "openmetrics"]);
    assert_eq!(
        sample(&r.stdout, "certrotate_managed").as_deref(),
        Some("1"),
        "{}",
        r.stdout
    );

    // Managed: --adopt never rotates it.
    let r = run(&["rotate", "--dir", d, "--adopt", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["summary"]["kind"], "up-to-date", "{report:#}");
}

#[test]
fn help_keeps_trust_existing_ca_apart_from_adoption() {
    let r = run(&["rotate", "--help"]);
    assert_eq!(r.code, 0);
    let help = r.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("--adopt"), "{help}");
    assert!(
        help.contains("Not --adopt: that one is for an install with no CA Secret at all"),
        "{help}"
    );
    assert!(help.contains("--retire-after <DURATION>"), "{help}");
}

#[test]
fn a_carried_ca_is_information_and_drop_old_ca_retires_it() {
    // A CA of 60 days, replaced by one of 1000: the old one is carried in every ca.crt.
    let dir = installed(&["--ca-validity", "60d", "--leaf-validity", "20d"]);
    let d = dir.path().to_str().unwrap();
    rotate_to_the_end(
        dir.path(),
        &[
            "--overwrite",
            "--ca-validity",
            "1000d",
            "--leaf-validity",
            "400d",
        ],
    );

    let r = run(&["check", "--dir", d, "--warn-within", "90d"]);
    assert_eq!(r.code, 0, "no false alarm: {}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("INFO") && r.stdout.contains("carried"),
        "{}",
        r.stdout
    );
    let r = run(&["check", "--dir", d, "--warn-within", "90d", "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        report["expiring"].as_array().unwrap().len(),
        0,
        "{report:#}"
    );
    assert_eq!(report["carried"].as_array().unwrap().len(), 3, "{report:#}");
    let r = run(&["check", "--dir", d, "-o", "openmetrics"]);
    let carried = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("certrotate_carried_certificate_not_after_timestamp_seconds{"))
        .count();
    assert_eq!(carried, 3, "{}", r.stdout);
    assert!(
        !r.stdout.lines().any(|l| l
            .starts_with("certrotate_certificate_not_after_timestamp_seconds{")
            && l.contains("key=\"ca.crt\"")
            && l.contains("block=\"2\"")),
        "the carried CA is not an expiring certificate: {}",
        r.stdout
    );

    // On a stable install, --drop-old-ca retires it now, staged.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = rotate_to_the_end(dir.path(), &["--drop-old-ca"]);
    assert!(out.contains("old CA retired"), "{out}");
    let r = run(&["check", "--dir", d, "--warn-within", "90d", "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["carried"].as_array().unwrap().len(), 0, "{report:#}");
    // Nothing left to retire: said, not silent.
    let r = run(&["rotate", "--dir", d, "--drop-old-ca"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("nothing to retire"), "{}", r.stdout);
}

#[test]
fn a_renewal_the_ca_caps_exits_5_in_the_same_run() {
    // Leaves end in 10 days, the CA in 20: renewing within 30 days cannot leave it.
    let dir = installed(&["--ca-validity", "20d", "--leaf-validity", "10d"]);
    let d = dir.path().to_str().unwrap();
    let r = run(&["renew", "--dir", d, "--before", "30d"]);
    assert_eq!(r.code, 5, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("the CA expires at"), "{}", r.stdout);
}

/// The Event of an unmanaged install is about the `envoy-gateway` Secret, where `kubectl
/// describe` shows it (no CA Secret exists to carry it).
#[cfg(feature = "kube")]
#[test]
fn an_unmanaged_install_is_an_event_on_the_envoy_gateway_secret() {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::api::events::v1::Event;
    use kube::Api;

    let server = fake_server::start(&[]);
    let kubeconfig = server.kubeconfig();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(async {
        kube::Client::try_from(kube::Config::new(server.url.parse().unwrap())).unwrap()
    });
    let uid = runtime.block_on(async {
        #[allow(clippy::disallowed_methods)] // the binary reads the system clock
        let now = time::OffsetDateTime::now_utc();
        let mut entropy = certrotate_core::SeededEntropy::new(22);
        let ca = certrotate_core::Ca::generate(
            &certrotate_core::CaParams::new("envoy-gateway"),
            now,
            &mut entropy,
        )
        .unwrap();
        let profile = certrotate_core::Profile::envoy_gateway(NS);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
        for c in &profile.components {
            let leaf = ca
                .issue_leaf(&profile.leaf_params(c).unwrap(), now, &mut entropy)
                .unwrap();
            let mut secret = Secret::default();
            secret.metadata.name = Some(c.secret.clone());
            secret.type_ = Some("kubernetes.io/tls".into());
            secret.data = Some(std::collections::BTreeMap::from([
                (
                    "ca.crt".to_owned(),
                    ByteString(ca.cert_pem().as_bytes().to_vec()),
                ),
                ("tls.crt".to_owned(), ByteString(leaf.cert_pem.into_bytes())),
                (
                    "tls.key".to_owned(),
                    ByteString(leaf.key_pem.expose_secret().as_bytes().to_vec()),
                ),
            ]));
            secrets.create(&Default::default(), &secret).await.unwrap();
        }
        secrets
            .get("envoy-gateway")
            .await
            .unwrap()
            .metadata
            .uid
            .unwrap()
    });
    let out = support::certrotate()
        .env("KUBECONFIG", &kubeconfig)
        .args(["rotate", "--kube"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let events = runtime.block_on(async {
        Api::<Event>::namespaced(client, NS)
            .list(&Default::default())
            .await
            .unwrap()
            .items
    });
    let warning = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("NotManaged"))
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    let regarding = warning.regarding.clone().unwrap();
    assert_eq!(regarding.name.as_deref(), Some("envoy-gateway"));
    assert_eq!(regarding.uid.as_deref(), Some(uid.as_str()));
    let note = warning.note.clone().unwrap();
    assert!(
        note.contains("CN=envoy-gateway") && note.contains("expires at"),
        "{note}"
    );
}
