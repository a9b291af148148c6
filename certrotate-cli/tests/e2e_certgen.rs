//! Envoy Gateway's own `certgen` (built from its module at the pinned release by
//! `test-support/controlplane/build.sh`) beside certrotate, on the real API server and in
//! local mode:
//!
//! - certgen runs as the chart's pre-install hook does (its ServiceAccount and RBAC, the
//!   webhook configuration created empty), and certrotate adopts what it wrote and rotates
//!   it, staged, to the end; then `helm upgrade`'s hook runs certgen again;
//! - what certgen writes and what certrotate writes with the parity setting
//!   (`--key-algorithm rsa-2048`) are compared field by field. Every difference is either
//!   gone or listed in [`KNOWN_DIFFERENCES`] with its reason (the README's parity table):
//!   a new difference, or a listed one that is gone, fails the test.
//!
//! Where the control plane or certgen is not built, each test prints one line and returns
//! (a failure under `CERTROTATE_REQUIRE_CONTROLPLANE=1`, as in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use certrotate_controlplane::ControlPlane;
use certrotate_core::{CertSummary, Origin, inspect_pem};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use time::OffsetDateTime;

/// The Secrets both write (certrotate adds its CA Secret, listed below).
const SECRETS: [&str; 4] = [
    "envoy-gateway",
    "envoy",
    "envoy-rate-limit",
    "envoy-oidc-hmac",
];

/// Every field in which certrotate's install differs from certgen's, and why. The README's
/// parity table says the same.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "envoy-gateway-ca",
        "certrotate keeps the CA (its key included) in a Secret of its own, labelled \
         `certrotate.io/ca`; certgen discards the CA's key, so it can never issue a leaf from \
         the same CA again",
    ),
    (
        "*.tls.crt.serial",
        "random 127-bit serials (certgen's are the clock's nanoseconds: 32 bits, which can \
         collide)",
    ),
    (
        "*.ca.crt.serial",
        "random 127-bit serials (certgen's are the clock's nanoseconds)",
    ),
    (
        "*.tls.crt.extended_key_usages",
        "serverAuth and clientAuth on every leaf (certgen sets none, which means any): the \
         leaves are used for both ends of mTLS",
    ),
    (
        "*.ca.crt.key_usages",
        "keyCertSign, cRLSign and digitalSignature: the CA key signs certificates (certgen \
         adds keyEncipherment, which a CA's key never does)",
    ),
    (
        "*.tls.key.encoding",
        "PKCS#8 (`PRIVATE KEY`, RFC 5958), which every consumer reads; certgen writes PKCS#1 \
         (`RSA PRIVATE KEY`). certrotate reads both",
    ),
];

/// Secret name → (type, labels, data).
type Install = BTreeMap<String, (String, BTreeMap<String, String>, BTreeMap<String, Vec<u8>>)>;

/// The shared control plane with upstream's certgen built, or `None` after one line saying
/// which is missing (a failure under `CERTROTATE_REQUIRE_CONTROLPLANE=1`).
fn with_certgen() -> Option<&'static ControlPlane> {
    let cp = ControlPlane::shared()?;
    cp.envoy_gateway_binary().map(|_| cp)
}

/// Runs the CLI; (exit code, stdout + stderr). No output may hold a key.
fn certrotate(args: &[&str]) -> (i32, String) {
    let out = Command::cargo_bin("certrotate")
        .unwrap()
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .args(args)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("PRIVATE KEY"), "{args:?}:\n{text}");
    (out.status.code().unwrap_or(-1), text)
}

fn summaries(pem: &[u8], what: &str) -> Vec<CertSummary> {
    // Test support: the real clock, to read validity relative to now.
    #[allow(clippy::disallowed_methods)]
    let now = OffsetDateTime::now_utc();
    inspect_pem(pem, &Origin::new(what), now).unwrap()
}

/// One certificate's facts, as `PREFIX.FIELD → value`, the namespace written `NS`.
fn cert_facts(facts: &mut BTreeMap<String, String>, prefix: &str, c: &CertSummary, ns: &str) {
    // Test support: the real clock, to measure back-dating.
    #[allow(clippy::disallowed_methods)]
    let now = OffsetDateTime::now_utc();
    let norm = |s: &str| s.replace(ns, "NS");
    let mut put = |field: &str, value: String| {
        facts.insert(format!("{prefix}.{field}"), value);
    };
    // The serial number in a CA's subject differs by construction; its presence is compared.
    let subject = match c.subject.split_once("serialNumber=") {
        Some((head, digits)) if digits.chars().all(|d| d.is_ascii_digit()) => {
            format!("{head}serialNumber=<decimal serial>")
        }
        _ => c.subject.clone(),
    };
    put("subject", norm(&subject));
    put(
        "subject_serial_is_serial",
        c.subject
            .split_once("serialNumber=")
            .is_some_and(|(_, d)| {
                u128::from_str_radix(&c.serial.replace(':', ""), 16)
                    .is_ok_and(|s| s.to_string() == d)
            })
            .to_string(),
    );
    put("issuer_is_ca_subject", (c.subject == c.issuer).to_string());
    put("serial", c.serial.clone());
    put("is_ca", c.is_ca.to_string());
    put("key", format!("{} {:?}", c.key_algorithm, c.key_bits));
    put("signature", c.signature_algorithm.clone());
    put("dns_names", norm(&c.dns_names.join(",")));
    put("ip_addresses", format!("{:?}", c.ip_addresses));
    put("key_usages", c.key_usages.join(","));
    put("extended_key_usages", c.extended_key_usages.join(","));
    // To the day, rounded (the two were made a few milliseconds apart).
    put(
        "validity",
        format!(
            "{}d",
            ((c.not_after - c.not_before).whole_seconds() + 43_200) / 86_400
        ),
    );
    // Back-dating, to the hour (both were written seconds ago).
    put(
        "backdated",
        format!("{}h", (now - c.not_before).whole_hours()),
    );
}

/// The facts of one install: each Secret's type, labels and keys; each certificate's
/// fields; the key encodings; the HMAC's length; the webhook's caBundle. `data` maps a
/// Secret to its keys (absent: no such Secret).
fn install_facts(
    secrets: &Install,
    webhook_bundle: Option<&[u8]>,
    ns: &str,
) -> BTreeMap<String, String> {
    let mut facts = BTreeMap::new();
    for (name, (type_, labels, data)) in secrets {
        facts.insert(format!("secret {name}"), "present".into());
        facts.insert(format!("{name}.type"), type_.clone());
        facts.insert(format!("{name}.labels"), format!("{labels:?}"));
        facts.insert(
            format!("{name}.keys"),
            data.keys().cloned().collect::<Vec<_>>().join(","),
        );
        for key in ["tls.crt", "ca.crt"] {
            if let Some(pem) = data.get(key) {
                let certs = summaries(pem, &format!("{name}/{key}"));
                facts.insert(format!("{name}.{key}.count"), certs.len().to_string());
                if let Some(first) = certs.first() {
                    cert_facts(&mut facts, &format!("{name}.{key}"), first, ns);
                }
            }
        }
        if let Some(key) = data.get("tls.key") {
            let label = String::from_utf8_lossy(key)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            facts.insert(format!("{name}.tls.key.encoding"), label);
        }
        if let (Some(crt), Some(ca)) = (data.get("tls.crt"), data.get("ca.crt")) {
            let leaf = &summaries(crt, "tls.crt")[0];
            let ca = &summaries(ca, "ca.crt")[0];
            facts.insert(
                format!("{name}.tls.crt.issued_by_ca.crt"),
                (leaf.issuer == ca.subject).to_string(),
            );
        }
        if let Some(hmac) = data.get("hmac-secret") {
            facts.insert(format!("{name}.hmac-secret.bytes"), hmac.len().to_string());
        }
    }
    if let Some(bundle) = webhook_bundle {
        let gateway_ca = secrets
            .get("envoy-gateway")
            .and_then(|(_, _, d)| d.get("ca.crt"));
        facts.insert(
            "webhook.caBundle".into(),
            if Some(&bundle.to_vec()) == gateway_ca {
                "envoy-gateway's ca.crt".into()
            } else {
                format!("{} bytes, not envoy-gateway's ca.crt", bundle.len())
            },
        );
    }
    facts
}

/// Whether `field` is covered by a listed difference (`*.` matches any Secret).
fn listed(field: &str) -> Option<&'static str> {
    KNOWN_DIFFERENCES.iter().find_map(|(pattern, _)| {
        // `*.REST`: REST of any Secret; `NAME`: that Secret and all its fields.
        let hit = match pattern.strip_prefix("*.") {
            Some(suffix) => field
                .split_once('.')
                .is_some_and(|(_, rest)| rest == suffix),
            None => {
                field == format!("secret {pattern}") || field.starts_with(&format!("{pattern}."))
            }
        };
        hit.then_some(*pattern)
    })
}

/// Compares two installs' facts: the differences not listed, and the listed ones not seen.
fn compare(
    upstream: &BTreeMap<String, String>,
    ours: &BTreeMap<String, String>,
) -> (Vec<String>, BTreeSet<&'static str>) {
    let mut unlisted = Vec::new();
    let mut seen = BTreeSet::new();
    let fields: BTreeSet<&String> = upstream.keys().chain(ours.keys()).collect();
    for field in fields {
        let (a, b) = (upstream.get(field), ours.get(field));
        if a == b {
            continue;
        }
        // Serials always differ between two runs; only their form is compared.
        if field.ends_with(".serial") {
            let form = |s: Option<&String>| s.map(|s| s.len() > 16);
            if form(a) == form(b) {
                continue;
            }
        }
        match listed(field) {
            Some(pattern) => {
                seen.insert(pattern);
            }
            None => unlisted.push(format!("{field}: certgen {a:?}, certrotate {b:?}")),
        }
    }
    (unlisted, seen)
}

async fn read_install(cp: &ControlPlane, ns: &str) -> (Install, Option<Vec<u8>>) {
    let api = Api::<Secret>::namespaced(cp.client().unwrap(), ns);
    let mut out = BTreeMap::new();
    for s in api.list(&Default::default()).await.unwrap() {
        let name = s.metadata.name.clone().unwrap();
        if s.type_.as_deref() == Some("kubernetes.io/service-account-token") {
            continue;
        }
        let data = s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        out.insert(
            name,
            (
                s.type_.unwrap_or_default(),
                s.metadata.labels.unwrap_or_default(),
                data,
            ),
        );
    }
    let webhooks = Api::<MutatingWebhookConfiguration>::all(cp.client().unwrap());
    let bundle = webhooks
        .get_opt(&format!("envoy-gateway-topology-injector.{ns}"))
        .await
        .unwrap()
        .and_then(|w| w.webhooks?.first()?.client_config.ca_bundle.clone())
        .map(|b| b.0);
    (out, bundle)
}

fn ca_fingerprints(pem: &[u8]) -> Vec<String> {
    summaries(pem, "bundle")
        .iter()
        .map(|c| c.fingerprint.to_string())
        .collect()
}

/// certgen as the chart's pre-install hook, on the real API server: it needs the webhook
/// configuration and fills its caBundle. certrotate adopts that install (certgen's CA
/// carried as previous) and rotates it staged to the end; `helm upgrade`'s hook then runs
/// certgen again, which re-creates the webhook empty and fills it from `envoy-gateway`'s
/// `ca.crt`, and every pair stays trusted.
#[tokio::test]
async fn upstream_certgen_as_the_charts_hook_then_certrotate_adopts_and_rotates() {
    let Some(cp) = with_certgen() else {
        return;
    };
    let ns = cp.namespace("certgen").await.unwrap();
    let run = cp.run_certgen_hook(&ns, &[]).await.unwrap();
    assert!(run.success, "certgen:\n{}", run.output);
    let (secrets, bundle) = read_install(cp, &ns).await;
    for name in SECRETS {
        let (_, labels, _) = &secrets[name];
        assert_eq!(
            labels.get("control-plane").map(String::as_str),
            Some("envoy-gateway")
        );
    }
    let certgen_ca = secrets["envoy-gateway"].2["ca.crt"].clone();
    assert_eq!(
        bundle.as_deref(),
        Some(&certgen_ca[..]),
        "certgen fills the caBundle"
    );
    let certgen_fp = ca_fingerprints(&certgen_ca);
    assert_eq!(certgen_fp.len(), 1);

    // certrotate adopts it, staged, with the admin kubeconfig.
    let kubeconfig = cp.admin_kubeconfig().to_str().unwrap();
    let (code, out) = certrotate(&[
        "rotate",
        "--kubeconfig",
        kubeconfig,
        "-n",
        &ns,
        "--overwrite",
        "--wait",
        "--convergence-interval",
        "1s",
        "--allow-short-interval",
    ]);
    assert_eq!(code, 0, "adoption:\n{out}");
    let (secrets, bundle) = read_install(cp, &ns).await;
    let new_ca = secrets["envoy-gateway-ca"].2["ca.crt"].clone();
    let new_fp = ca_fingerprints(&new_ca);
    for name in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
        assert_eq!(
            ca_fingerprints(&secrets[name].2["ca.crt"]),
            [new_fp[0].clone(), certgen_fp[0].clone()],
            "{name}: the new CA, then certgen's carried"
        );
    }
    let bundle = bundle.expect("the webhook's caBundle");
    assert!(
        ca_fingerprints(&bundle).contains(&new_fp[0]),
        "webhook trusts the new CA"
    );
    let (code, out) = certrotate(&["check", "--kubeconfig", kubeconfig, "-n", &ns]);
    assert_eq!(code, 0, "check after adoption:\n{out}");

    // `helm upgrade`: the hook re-creates the webhook empty and runs certgen, which finds
    // the Secrets there and copies envoy-gateway's ca.crt into the caBundle.
    let run = cp.run_certgen_hook(&ns, &[]).await.unwrap();
    assert!(run.success, "certgen on upgrade:\n{}", run.output);
    assert!(run.output.contains("already exists"), "{}", run.output);
    let (after, bundle) = read_install(cp, &ns).await;
    assert_eq!(
        after["envoy-gateway"].2, secrets["envoy-gateway"].2,
        "certgen without --overwrite changes no Secret"
    );
    assert_eq!(
        bundle.as_deref(),
        Some(&after["envoy-gateway"].2["ca.crt"][..])
    );
    let (code, out) = certrotate(&["check", "--kubeconfig", kubeconfig, "-n", &ns]);
    assert_eq!(code, 0, "check after helm upgrade's certgen:\n{out}");
}

/// What certgen writes and what certrotate writes with `--key-algorithm rsa-2048`, on the
/// real API server, field by field: every difference is listed with its reason.
#[tokio::test]
async fn certgen_and_certrotate_installs_differ_only_as_listed() {
    let Some(cp) = with_certgen() else {
        return;
    };
    let upstream_ns = cp.namespace("parity-certgen").await.unwrap();
    let run = cp.run_certgen_hook(&upstream_ns, &[]).await.unwrap();
    assert!(run.success, "certgen:\n{}", run.output);
    let ours_ns = cp.namespace("parity-certrotate").await.unwrap();
    cp.apply(&cp.certgen_hook_objects(&ours_ns).unwrap(), Some(&ours_ns))
        .await
        .unwrap();
    let kubeconfig = cp.admin_kubeconfig().to_str().unwrap();
    let (code, out) = certrotate(&[
        "rotate",
        "--kubeconfig",
        kubeconfig,
        "-n",
        &ours_ns,
        "--key-algorithm",
        "rsa-2048",
    ]);
    assert_eq!(code, 0, "install:\n{out}");
    let (s, b) = read_install(cp, &upstream_ns).await;
    let upstream = install_facts(&s, b.as_deref(), &upstream_ns);
    let (s, b) = read_install(cp, &ours_ns).await;
    let ours = install_facts(&s, b.as_deref(), &ours_ns);
    let (unlisted, seen) = compare(&upstream, &ours);
    print_table(&upstream, &ours);
    assert!(
        unlisted.is_empty(),
        "differences not in KNOWN_DIFFERENCES:\n{}",
        unlisted.join("\n")
    );
    let stale: Vec<_> = KNOWN_DIFFERENCES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !seen.contains(p))
        .collect();
    assert!(
        stale.is_empty(),
        "listed but no longer different: {stale:?}"
    );
}

/// `certgen --local` and certrotate's local mode, field by field, and the files' modes.
#[tokio::test]
async fn certgen_local_and_certrotate_local_mode_differ_only_as_listed() {
    let Some(cp) = with_certgen() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let config_home = home.path().join("eg");
    let run = cp
        .run_envoy_gateway(
            &[
                "certgen",
                "--local",
                "--config-home",
                config_home.to_str().unwrap(),
            ],
            &[("HOME", home.path().as_os_str())],
        )
        .await
        .unwrap();
    assert!(run.success, "certgen --local:\n{}", run.output);
    let ours_dir = home.path().join("certrotate");
    let (code, out) = certrotate(&[
        "rotate",
        "--dir",
        ours_dir.to_str().unwrap(),
        "--key-algorithm",
        "rsa-2048",
    ]);
    assert_eq!(code, 0, "local install:\n{out}");
    let read_tree = |root: &Path| {
        let mut secrets = BTreeMap::new();
        for name in SECRETS.iter().chain(&["envoy-gateway-ca"]) {
            let dir = root.join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut data = BTreeMap::new();
            for e in entries {
                let e = e.unwrap();
                let file = e.file_name().into_string().unwrap();
                // The kubelet layout's files are links into `..data`: followed.
                if file.starts_with('.') || !std::fs::metadata(e.path()).unwrap().is_file() {
                    continue;
                }
                data.insert(file, std::fs::read(e.path()).unwrap());
            }
            secrets.insert(name.to_string(), (String::new(), BTreeMap::new(), data));
        }
        secrets
    };
    // certgen's standalone tree; certrotate's kubelet-style DIR/NAMESPACE/SECRET/ tree.
    let upstream = install_facts(
        &read_tree(&config_home.join("certs")),
        None,
        "envoy-gateway-system",
    );
    let ours = install_facts(
        &read_tree(&ours_dir.join("envoy-gateway-system")),
        None,
        "envoy-gateway-system",
    );
    let (unlisted, _) = compare(&upstream, &ours);
    print_table(&upstream, &ours);
    assert!(
        unlisted.is_empty(),
        "differences not in KNOWN_DIFFERENCES:\n{}",
        unlisted.join("\n")
    );
    // Modes: certgen writes every file 0644, private keys included; certrotate 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&config_home.join("certs/envoy/tls.key")), 0o644);
    assert_eq!(
        mode(&ours_dir.join("envoy-gateway-system/envoy/tls.key")),
        0o600
    );
}

/// The comparison, on standard output (shown with `--nocapture`).
fn print_table(upstream: &BTreeMap<String, String>, ours: &BTreeMap<String, String>) {
    let fields: BTreeSet<&String> = upstream.keys().chain(ours.keys()).collect();
    for f in fields {
        let (a, b) = (upstream.get(f), ours.get(f));
        let mark = if a == b { " " } else { "≠" };
        println!("{mark} {f}: certgen {a:?} | certrotate {b:?}");
    }
}

/// Issue 22, on the real API server: `helm upgrade` mid-rotation. Its hook re-creates the
/// webhook configuration empty and runs certgen, which copies `envoy-gateway`'s `ca.crt`
/// (by then a bundle certrotate wrote) into it; the rotation goes on to the end, never
/// wedged, and every pair is trusted after each step.
#[tokio::test]
async fn helm_upgrade_mid_rotation_never_wedges_it() {
    let Some(cp) = with_certgen() else {
        return;
    };
    let ns = cp.namespace("certgen-upgrade").await.unwrap();
    let run = cp.run_certgen_hook(&ns, &[]).await.unwrap();
    assert!(run.success, "certgen:\n{}", run.output);
    let kubeconfig = cp.admin_kubeconfig().to_str().unwrap();
    let step = |extra: &[&str]| {
        let mut args = vec![
            "rotate",
            "--kubeconfig",
            kubeconfig,
            "-n",
            &ns,
            "--overwrite",
            "--convergence-interval",
            "1s",
            "--allow-short-interval",
        ];
        args.extend_from_slice(extra);
        certrotate(&args)
    };
    // One phase per run, until the rotation is in trust (every bundle gets the next CA).
    let mut phase = String::new();
    for _ in 0..4 {
        let (code, out) = step(&[]);
        assert_eq!(code, 0, "{out}");
        std::thread::sleep(Duration::from_millis(1100));
        let (_, status) = certrotate(&["status", "--kubeconfig", kubeconfig, "-n", &ns]);
        phase = status
            .lines()
            .find_map(|l| l.trim().strip_prefix("phase:"))
            .unwrap_or_default()
            .to_owned();
        if phase.trim_start().starts_with("trust") {
            break;
        }
    }
    assert!(phase.trim_start().starts_with("trust"), "{phase}");
    // helm upgrade: the webhook re-created empty, then certgen fills it.
    let run = cp.run_certgen_hook(&ns, &[]).await.unwrap();
    assert!(run.success, "certgen on upgrade:\n{}", run.output);
    let (code, out) = certrotate(&["check", "--kubeconfig", kubeconfig, "-n", &ns]);
    assert_eq!(code, 0, "check right after helm upgrade's certgen:\n{out}");
    let (code, out) = step(&["--wait"]);
    assert_eq!(code, 0, "the rotation goes on to the end:\n{out}");
    let (code, out) = certrotate(&["check", "--kubeconfig", kubeconfig, "-n", &ns]);
    assert_eq!(code, 0, "check at the end:\n{out}");
    let (_, status) = certrotate(&["status", "--kubeconfig", kubeconfig, "-n", &ns]);
    assert!(status.contains("phase:    stable"), "{status}");
    assert!(!status.contains("held:"), "{status}");
}
