//! The envoy-gateway profile reproduces certgen's Secret set; profiles load from files with
//! located errors; plans are pure values.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;

use certrotate_core::plan::wire::KEY_TLS_CRT;
use certrotate_core::plan::{Next, ObjectRef, Observed, ObservedSecret, Phase, SecretAction, Step};
use certrotate_core::{Origin, Profile, SeededEntropy, inspect_pem, plan};
use certrotate_core::{RotationPolicy, Trigger};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

fn first_install(profile: &Profile, seed: u64) -> certrotate_core::RotationPlan {
    plan(
        profile,
        &Observed::default(),
        &RotationPolicy::default(),
        NOW,
        &mut SeededEntropy::new(seed),
    )
    .unwrap()
}

#[test]
fn envoy_gateway_profile_matches_certgen() {
    let mut profile = Profile::envoy_gateway("eg-system");
    profile.cluster_domain = "corp.example".into();
    let plan = first_install(&profile, 1);
    let writes: BTreeMap<String, _> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Secret(c) => Some((c.secret.name.clone(), c)),
            _ => None,
        })
        .collect();
    let names: Vec<&str> = writes.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "envoy",
            "envoy-gateway",
            "envoy-gateway-ca",
            "envoy-oidc-hmac",
            "envoy-rate-limit"
        ]
    );
    for (name, change) in &writes {
        assert_eq!(change.action, SecretAction::Create, "{name}");
        assert_eq!(change.secret.namespace, "eg-system");
        assert_eq!(
            change.labels.get("control-plane").map(String::as_str),
            Some("envoy-gateway"),
            "{name}"
        );
        let keys: Vec<&str> = change.data.keys().map(String::as_str).collect();
        match name.as_str() {
            "envoy-oidc-hmac" => {
                assert_eq!(change.secret_type, "Opaque");
                assert_eq!(keys, ["hmac-secret"]);
                assert_eq!(
                    change.data["hmac-secret"]
                        .as_ref()
                        .unwrap()
                        .expose_secret()
                        .len(),
                    32
                );
            }
            "envoy-gateway-ca" => assert_eq!(keys, ["ca.crt", "ca.key"]),
            _ => {
                assert_eq!(change.secret_type, "kubernetes.io/tls", "{name}");
                assert_eq!(keys, ["ca.crt", "tls.crt", "tls.key"], "{name}");
            }
        }
    }
    let sans = |name: &str| {
        let crt = writes[name].data[KEY_TLS_CRT]
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_vec();
        let s = inspect_pem(&crt, &Origin::new(name), NOW)
            .unwrap()
            .remove(0);
        (s.subject, s.dns_names, s.key_usages, s.extended_key_usages)
    };
    let (subject, dns, ku, eku) = sans("envoy-gateway");
    assert_eq!(subject, "CN=envoy-gateway");
    assert_eq!(
        dns,
        [
            "envoy-gateway",
            "envoy-gateway.eg-system",
            "envoy-gateway.eg-system.svc",
            "envoy-gateway.eg-system.svc.corp.example"
        ]
    );
    // certgen's usages, less the encipherment bits an ECDSA key may not assert (RFC 5480);
    // an RSA leaf keeps them all (`key_usage_follows_the_key_type`).
    assert_eq!(ku, ["Digital Signature", "Non Repudiation"]);
    assert_eq!(eku, ["serverAuth", "clientAuth"]);
    for name in ["envoy", "envoy-rate-limit"] {
        let (subject, dns, _, _) = sans(name);
        assert_eq!(subject, "CN=*");
        assert_eq!(dns, ["*.eg-system"]);
    }
    assert_eq!(plan.next, Next::Done);
    assert!(
        !plan.steps.iter().any(|s| matches!(s, Step::Restart(_))),
        "no restart on first install"
    );
}

#[test]
fn plans_are_deterministic_for_a_seed_and_redact_keys() {
    // Ed25519 signatures are deterministic, so the whole plan is (ECDSA signatures carry a
    // nonce aws-lc draws itself; keys and serials are still seeded).
    let mut profile = Profile::envoy_gateway("ns");
    profile.set_key_algorithm(certrotate_core::KeyAlgorithm::Ed25519);
    let a = serde_json::to_string(&first_install(&profile, 5)).unwrap();
    let b = serde_json::to_string(&first_install(&profile, 5)).unwrap();
    let c = serde_json::to_string(&first_install(&profile, 6)).unwrap();
    assert!(a == b, "same seed, same plan");
    assert!(a != c, "another seed, another plan");
    assert!(
        !a.contains("PRIVATE KEY"),
        "keys must be redacted in a serialised plan"
    );
    assert!(a.contains("<redacted>"));
    let debug = format!("{:?}", first_install(&profile, 5));
    assert!(!debug.contains("PRIVATE KEY"));
}

#[test]
fn an_install_made_without_certrotate_is_not_touched_without_overwrite() {
    let profile = Profile::envoy_gateway("ns");
    let mut observed = Observed::default();
    observed.secrets.insert(
        ObjectRef::new("ns", "envoy"),
        ObservedSecret::new("kubernetes.io/tls", BTreeMap::new(), "1"),
    );
    let p = plan(
        &profile,
        &observed,
        &RotationPolicy::default(),
        NOW,
        &mut SeededEntropy::new(1),
    )
    .unwrap();
    // No TLS Secret is touched; only the missing HMAC Secret (which needs no CA) is
    // created, as certgen does.
    assert!(
        p.steps
            .iter()
            .all(|s| matches!(s, Step::Secret(c) if c.secret.name == "envoy-oidc-hmac")),
        "{:?}",
        p.steps
    );
    assert!(
        p.summary.to_string().contains("not managed yet")
            && p.summary.to_string().contains("ns/envoy"),
        "{}",
        p.summary
    );

    let mut options = RotationPolicy::default();
    options.trigger = Trigger::Always;
    let p = plan(
        &profile,
        &observed,
        &options,
        NOW,
        &mut SeededEntropy::new(1),
    )
    .unwrap();
    assert_eq!(p.to, Phase::Prepared);
    let names: Vec<&str> = p
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Secret(c) => Some(c.secret.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        ["envoy-oidc-hmac", "envoy-gateway-ca"],
        "only the CA Secret (and the missing HMAC Secret) is written when preparing"
    );
    let Step::Secret(ca) = &p.steps[1] else {
        panic!()
    };
    assert_eq!(ca.secret.name, "envoy-gateway-ca");
    assert_eq!(
        ca.annotations["certrotate.io/phase"].as_deref(),
        Some("prepared")
    );
    let keys: Vec<&str> = ca.data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["next-ca.crt", "next-ca.key"],
        "adoption needs no old key"
    );
}

#[test]
fn profiles_load_from_toml_and_yaml_with_located_errors() {
    let toml = r#"
name = "demo"
namespace = "demo-system"
[ca]
secret = "demo-ca"
common_name = "demo"
validity = "10y"
[leaf]
validity = "90d"
key_algorithm = "ecdsa-p384"
[[components]]
secret = "api"
common_name = "api"
dns_names = ["api.{namespace}.svc.{domain}"]
[[workloads]]
kind = "StatefulSet"
name = "db"
"#;
    let p = Profile::from_toml(toml, &Origin::new("demo.toml")).unwrap();
    assert_eq!(p.leaf.validity, std::time::Duration::from_secs(90 * 86_400));
    assert_eq!(
        p.leaf_params(&p.components[0]).unwrap().dns_names,
        ["api.demo-system.svc.cluster.local"]
    );

    // Every algorithm is spelled in a profile as the --key-algorithm flag spells it (and
    // RSA's older `rsa2048` still loads).
    for algorithm in certrotate_core::KeyAlgorithm::ALL {
        for spelling in [
            algorithm.as_str().to_owned(),
            algorithm.as_str().replace("rsa-", "rsa"),
        ] {
            let text = toml.replace("ecdsa-p384", &spelling);
            let p = Profile::from_toml(&text, &Origin::new("demo.toml"))
                .unwrap_or_else(|e| panic!("{spelling}: {e}"));
            assert_eq!(p.leaf.key_algorithm, algorithm, "{spelling}");
        }
    }

    let yaml = "name: demo\nca:\n  secret: demo-ca\n  common_name: demo\ncomponents:\n  - secret: api\n    common_name: api\n    dns_names: [\"api\"]\n";
    let y = Profile::from_yaml(yaml, &Origin::new("demo.yaml")).unwrap();
    assert_eq!(y.components[0].secret_type, "kubernetes.io/tls");

    let err = Profile::from_toml(
        &toml.replace("[ca]", "[ca]\ncolour = \"blue\""),
        &Origin::new("demo.toml"),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("demo.toml") && msg.contains("colour") && msg.contains("line"),
        "{msg}"
    );

    let err = Profile::from_yaml(
        &yaml.replace("dns_names: [\"api\"]", "dns_names: [\"bad_name\"]"),
        &Origin::new("d.yaml"),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("components[0].dns_names[0]"),
        "{err}"
    );

    let err = Profile::from_toml(
        &toml.replace("secret = \"api\"", "secret = \"demo-ca\""),
        &Origin::new("d"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("also used by ca.secret"), "{err}");

    let err =
        Profile::from_toml(&toml.replace("\"10y\"", "\"soon\""), &Origin::new("d")).unwrap_err();
    assert!(err.to_string().contains("soon"), "{err}");

    let err = Profile::envoy_gateway("Bad_NS").validate().unwrap_err();
    assert!(err.to_string().contains("namespace"), "{err}");
}
