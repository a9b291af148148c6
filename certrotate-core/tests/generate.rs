//! Round trips: generate with rcgen, parse back with x509-parser, check what was asked for.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::net::IpAddr;
use std::time::Duration;

use certrotate_core::{
    Ca, CaParams, Error, ExtendedKeyUsage, HmacKey, KeyAlgorithm, KeyEncoding, LeafParams, Origin,
    SeededEntropy, SystemEntropy, verify_chain,
};
use time::OffsetDateTime;
use time::macros::datetime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::parse_x509_certificate;

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

fn der(pem: &str) -> Vec<u8> {
    ::pem::parse(pem).unwrap().into_contents()
}

fn ski(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
}

fn aki(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
}

fn leaf_params(alg: KeyAlgorithm) -> LeafParams {
    LeafParams::new(
        "envoy-gateway",
        vec![
            "envoy-gateway".into(),
            "envoy-gateway.ns.svc.cluster.local".into(),
            "*.ns".into(),
        ],
    )
    .with_ip_addresses(vec!["10.0.0.1".parse().unwrap()])
    .with_key_algorithm(alg)
    .with_validity(Duration::from_secs(90 * 86_400))
}

#[test]
fn every_algorithm_round_trips() {
    for alg in KeyAlgorithm::ALL {
        let mut entropy = SystemEntropy;
        let params = CaParams::new("envoy-gateway").with_key_algorithm(alg);
        let ca = Ca::generate(&params, NOW, &mut entropy).unwrap();
        let leaf = ca.issue_leaf(&leaf_params(alg), NOW, &mut entropy).unwrap();

        let ca_der = der(ca.cert_pem());
        let (_, ca_x) = parse_x509_certificate(&ca_der).unwrap();
        assert!(ca_x.is_ca(), "{alg}: CA flag");
        let ku = ca_x.key_usage().unwrap().unwrap().value;
        assert!(
            ku.key_cert_sign() && ku.digital_signature(),
            "{alg}: CA key usage"
        );
        assert_eq!(
            ca_x.validity().not_before.to_datetime(),
            NOW - time::Duration::days(1),
            "{alg}: back-dated one day"
        );
        assert_eq!(
            ca_x.validity().not_after.to_datetime(),
            NOW + time::Duration::days(5 * 365)
        );
        ca_x.verify_signature(None).unwrap();

        let leaf_der = der(&leaf.cert_pem);
        let (_, leaf_x) = parse_x509_certificate(&leaf_der).unwrap();
        assert!(!leaf_x.is_ca(), "{alg}: leaf is not a CA");
        // Signature of the leaf against the CA's key.
        leaf_x.verify_signature(Some(ca_x.public_key())).unwrap();
        // Same CN as the CA, but not the same name: the CA's subject carries its serial
        // number (as certgen's does), so no leaf looks self-issued.
        assert_eq!(
            ca_x.subject().to_string(),
            format!("CN=envoy-gateway, serialNumber={}", ca_x.serial)
        );
        assert_ne!(leaf_x.subject().to_string(), ca_x.subject().to_string());
        assert_eq!(leaf_x.subject().to_string(), "CN=envoy-gateway");
        assert_eq!(aki(&leaf_x), ski(&ca_x), "{alg}: leaf AKI = CA SKI");
        assert!(ski(&leaf_x).is_some());
        assert_ne!(ski(&leaf_x), ski(&ca_x));

        let san = leaf_x.subject_alternative_name().unwrap().unwrap().value;
        let dns: Vec<&str> = san
            .general_names
            .iter()
            .filter_map(|g| match g {
                GeneralName::DNSName(d) => Some(*d),
                _ => None,
            })
            .collect();
        assert_eq!(
            dns,
            [
                "envoy-gateway",
                "envoy-gateway.ns.svc.cluster.local",
                "*.ns"
            ]
        );
        assert!(
            san.general_names
                .iter()
                .any(|g| matches!(g, GeneralName::IPAddress(b) if *b == [10, 0, 0, 1]))
        );
        let eku = leaf_x.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth, "{alg}: mTLS EKUs");
        // Key usage follows the key type: encipherment only for RSA (RFC 5480, RFC 8410).
        let ku = leaf_x.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature(), "{alg}: digitalSignature");
        assert_eq!(
            ku.key_encipherment(),
            alg.is_rsa(),
            "{alg}: keyEncipherment"
        );
        assert!(!ku.data_encipherment(), "{alg}: dataEncipherment not asked");
        assert_eq!(
            leaf_x.validity().not_after.to_datetime(),
            NOW + time::Duration::days(90)
        );

        // Key algorithm and size.
        let expected_oid = match alg {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => "1.2.840.10045.2.1",
            KeyAlgorithm::Ed25519 => "1.3.101.112",
            _ => "1.2.840.113549.1.1.1",
        };
        assert_eq!(
            leaf_x.public_key().algorithm.algorithm.to_id_string(),
            expected_oid
        );
        let bits = match leaf_x.public_key().parsed().unwrap() {
            x509_parser::public_key::PublicKey::RSA(r) => r.key_size(),
            x509_parser::public_key::PublicKey::EC(e) => e.key_size(),
            _ => 256,
        };
        let want = match alg {
            KeyAlgorithm::EcdsaP384 => 384,
            KeyAlgorithm::Rsa2048 => 2048,
            KeyAlgorithm::Rsa3072 => 3072,
            KeyAlgorithm::Rsa4096 => 4096,
            _ => 256,
        };
        assert_eq!(bits, want, "{alg}: key size");
        assert!(
            leaf.key_pem
                .expose_secret()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );

        let o = Origin::new("t");
        assert!(
            verify_chain(
                leaf.cert_pem.as_bytes(),
                &o,
                ca.cert_pem().as_bytes(),
                &o,
                NOW
            )
            .unwrap()
            .is_trusted()
        );
    }
}

#[test]
fn serials_are_random_positive_and_long() {
    let mut entropy = SystemEntropy;
    let ca = Ca::generate(&CaParams::new("ca"), NOW, &mut entropy).unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let leaf = ca
            .issue_leaf(&leaf_params(KeyAlgorithm::EcdsaP256), NOW, &mut entropy)
            .unwrap();
        let d = der(&leaf.cert_pem);
        let (_, x) = parse_x509_certificate(&d).unwrap();
        let serial = x.raw_serial();
        assert!(
            serial.len() >= 9,
            "at least 64 random bits: {} bytes",
            serial.len()
        );
        assert!(serial[0] & 0x80 == 0, "positive");
        assert!(seen.insert(serial.to_vec()), "unique");
    }
}

#[test]
fn seeded_entropy_is_deterministic_for_ecdsa_and_ed25519() {
    for alg in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
    ] {
        let params = CaParams::new("ca").with_key_algorithm(alg);
        let a = Ca::generate(&params, NOW, &mut SeededEntropy::new(9)).unwrap();
        let b = Ca::generate(&params, NOW, &mut SeededEntropy::new(9)).unwrap();
        let c = Ca::generate(&params, NOW, &mut SeededEntropy::new(10)).unwrap();
        assert_eq!(
            a.key_pem().expose_secret(),
            b.key_pem().expose_secret(),
            "{alg}"
        );
        assert_ne!(
            a.key_pem().expose_secret(),
            c.key_pem().expose_secret(),
            "{alg}"
        );
        if alg == KeyAlgorithm::Ed25519 {
            // Ed25519 signatures are deterministic too, so the whole certificate is.
            assert_eq!(a.cert_pem(), b.cert_pem());
        }
    }
}

#[test]
fn pkcs1_rsa_keys_as_certgen_writes_them_load_back() {
    let mut entropy = SystemEntropy;
    let params = CaParams::new("envoy-gateway")
        .with_key_algorithm(KeyAlgorithm::Rsa2048)
        .with_key_encoding(KeyEncoding::Pkcs1);
    let ca = Ca::generate(&params, NOW, &mut entropy).unwrap();
    assert!(
        ca.key_pem()
            .expose_secret()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    let loaded = Ca::from_pem(
        ca.cert_pem(),
        ca.key_pem().expose_secret(),
        &Origin::new("ca"),
    )
    .unwrap();
    assert_eq!(loaded.fingerprint(), ca.fingerprint());
    let leaf = loaded
        .issue_leaf(&leaf_params(KeyAlgorithm::Rsa2048), NOW, &mut entropy)
        .unwrap();
    let o = Origin::new("t");
    assert!(
        verify_chain(
            leaf.cert_pem.as_bytes(),
            &o,
            ca.cert_pem().as_bytes(),
            &o,
            NOW
        )
        .unwrap()
        .is_trusted()
    );

    // PKCS#1 is RSA only.
    let bad = CaParams::new("x").with_key_encoding(KeyEncoding::Pkcs1);
    assert!(matches!(
        Ca::generate(&bad, NOW, &mut entropy),
        Err(Error::InvalidParameter { .. })
    ));
}

#[test]
fn loading_a_ca_checks_the_key_and_the_ca_flag() {
    let mut entropy = SeededEntropy::new(1);
    let a = Ca::generate(&CaParams::new("a"), NOW, &mut entropy).unwrap();
    let b = Ca::generate(&CaParams::new("b"), NOW, &mut entropy).unwrap();
    let err = Ca::from_pem(
        a.cert_pem(),
        b.key_pem().expose_secret(),
        &Origin::new("secret ns/ca"),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("secret ns/ca") && err.to_string().contains("does not match"),
        "{err}"
    );

    let leaf = a
        .issue_leaf(&leaf_params(KeyAlgorithm::EcdsaP256), NOW, &mut entropy)
        .unwrap();
    let err = Ca::from_pem(
        &leaf.cert_pem,
        leaf.key_pem.expose_secret(),
        &Origin::new("x"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a CA"), "{err}");

    let err = Ca::from_pem(a.cert_pem(), "junk", &Origin::new("x")).unwrap_err();
    assert!(matches!(err, Error::InvalidPrivateKey { .. }), "{err}");
}

#[test]
fn leaves_never_outlive_their_ca_and_bad_params_are_refused() {
    let mut entropy = SeededEntropy::new(2);
    let ca = Ca::generate(
        &CaParams::new("short").with_validity(Duration::from_secs(30 * 86_400)),
        NOW,
        &mut entropy,
    )
    .unwrap();
    let leaf = ca
        .issue_leaf(&leaf_params(KeyAlgorithm::EcdsaP256), NOW, &mut entropy)
        .unwrap();
    let d = der(&leaf.cert_pem);
    let (_, x) = parse_x509_certificate(&d).unwrap();
    assert_eq!(x.validity().not_after.to_datetime(), ca.not_after());

    let mut names = leaf_params(KeyAlgorithm::EcdsaP256).dns_names;
    names.push("bad name!".into());
    let bad = LeafParams::new("envoy-gateway", names);
    let err = ca.issue_leaf(&bad, NOW, &mut entropy).unwrap_err();
    assert!(err.to_string().contains("dns_names[3]"), "{err}");

    let bad = leaf_params(KeyAlgorithm::EcdsaP256).with_validity(Duration::from_secs(60));
    assert!(
        ca.issue_leaf(&bad, NOW, &mut entropy)
            .unwrap_err()
            .to_string()
            .contains("validity")
    );
    let bad = bad.with_validity(Duration::from_secs(u64::MAX / 4));
    assert!(matches!(
        ca.issue_leaf(&bad, NOW, &mut entropy),
        Err(Error::TimeOutOfRange { .. })
    ));
    let _ = ExtendedKeyUsage::ServerAuth;
    let _: IpAddr = "::1".parse().unwrap();
}

#[test]
fn secrets_are_redacted_in_debug() {
    let mut entropy = SeededEntropy::new(3);
    let ca = Ca::generate(&CaParams::new("ca"), NOW, &mut entropy).unwrap();
    let leaf = ca
        .issue_leaf(&leaf_params(KeyAlgorithm::EcdsaP256), NOW, &mut entropy)
        .unwrap();
    let hmac = HmacKey::generate(32, &mut entropy).unwrap();
    assert_eq!(hmac.expose_secret().len(), 32);
    assert!(HmacKey::generate(8, &mut entropy).is_err());
    let text = format!("{ca:?} {leaf:?} {hmac:?}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(
        !text.contains(&leaf.key_pem.expose_secret()[30..60]),
        "{text}"
    );
    assert!(text.contains("redacted"));
}

/// OpenSSL, an independent implementation, accepts the chain, even though leaf and CA
/// share a common name (AKI/SKI disambiguate).
#[test]
fn openssl_verifies_a_leaf_whose_cn_equals_its_ca() {
    let Ok(out) = std::process::Command::new("openssl")
        .arg("version")
        .output()
    else {
        panic!("openssl is needed for this test (apt-get install openssl)");
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    for alg in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Ed25519,
    ] {
        let mut entropy = SystemEntropy;
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(365 * 56);
        let ca = Ca::generate(
            &CaParams::new("envoy-gateway").with_key_algorithm(alg),
            now,
            &mut entropy,
        )
        .unwrap();
        let leaf = ca.issue_leaf(&leaf_params(alg), now, &mut entropy).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        std::fs::write(dir.path().join("leaf.pem"), &leaf.cert_pem).unwrap();
        let out = std::process::Command::new("openssl")
            .args([
                "verify",
                "-attime",
                &now.unix_timestamp().to_string(),
                "-purpose",
                "sslserver",
                "-CAfile",
            ])
            .arg(dir.path().join("ca.pem"))
            .arg(dir.path().join("leaf.pem"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{alg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One CA policy (issue 21): for each certificate, loading it as a CA to sign with
/// (`Ca::from_pem`), putting it into a bundle as the new CA (`bundle_ca_certs`) and
/// inspecting it (`weaknesses`) agree, by the same typed defect. Weak keys and signatures
/// (RSA 1024, SHA-1, MD5, a P-224 key) are refused to issue and to bundle, and flagged
/// when inspected; a sound P-256 and RSA-2048 CA passes all three.
#[test]
fn one_ca_policy_for_loading_bundling_and_inspecting() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<&str>, bool); 6] = [
        ("rsa1024", vec!["-newkey", "rsa:1024", "-sha256"], true),
        ("sha1", vec!["-newkey", "rsa:2048", "-sha1"], true),
        ("md5", vec!["-newkey", "rsa:2048", "-md5"], true),
        (
            "p224",
            vec![
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-224",
                "-sha256",
            ],
            true,
        ),
        (
            "p256",
            vec![
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-sha256",
            ],
            false,
        ),
        ("rsa2048", vec!["-newkey", "rsa:2048", "-sha256"], false),
    ];
    let mut compared = 0;
    for (name, args, weak) in cases {
        let key = dir.path().join(format!("{name}.key"));
        let crt = dir.path().join(format!("{name}.crt"));
        let out = std::process::Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=weak"])
            .args(&args)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .args([
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=keyCertSign",
            ])
            .output()
            .unwrap();
        if !out.status.success() {
            // An OpenSSL built without MD5 signing: that case is not compared.
            assert!(
                name == "md5",
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        let crt = std::fs::read_to_string(&crt).unwrap();
        let key = std::fs::read_to_string(&key).unwrap();
        // openssl made these valid from its own clock's now for 30 days: a fixed NOW
        // would be outside that; `not_before` plus a minute is inside.
        let not_before = certrotate_core::inspect_pem(crt.as_bytes(), &Origin::new("x"), NOW)
            .unwrap()[0]
            .not_before;
        let now = not_before + time::Duration::minutes(1);
        let loaded = Ca::from_pem(&crt, &key, &Origin::new("secret ns/ca"));
        let bundled = certrotate_core::bundle_ca_certs(crt.as_bytes(), b"", now);
        let inspected = certrotate_core::inspect_pem(crt.as_bytes(), &Origin::new("x"), now)
            .unwrap()
            .remove(0);
        assert_eq!(loaded.is_err(), weak, "{name}: loading: {loaded:?}");
        assert_eq!(bundled.is_err(), weak, "{name}: bundling");
        assert_eq!(!inspected.weak.is_empty(), weak, "{name}: inspecting");
        if weak {
            // The same typed defect from each entry point.
            let Err(certrotate_core::Error::UnusableCa {
                defect: on_load,
                origin,
            }) = loaded
            else {
                panic!("{name}: {loaded:?}");
            };
            assert_eq!(origin.to_string(), "secret ns/ca");
            let Err(certrotate_core::Error::UnusableCa {
                defect: on_bundle, ..
            }) = bundled
            else {
                panic!("{name}: bundling");
            };
            assert_eq!(on_load, on_bundle, "{name}");
            assert_eq!(inspected.weak, std::slice::from_ref(&on_load), "{name}");
            assert_eq!(inspected.weaknesses(), [on_load.to_string()], "{name}");
        }
        compared += 1;
    }
    assert!(compared >= 5, "{compared}");
}

/// certgen's key usages on every key type: encipherment only where the key is RSA
/// (RFC 5480 forbids it for ECDSA keys, RFC 8410 for Ed25519); a set with nothing left for
/// the key type is refused, naming the field.
#[test]
fn key_usage_follows_the_key_type() {
    use certrotate_core::KeyUsage;
    let certgen = vec![
        KeyUsage::DigitalSignature,
        KeyUsage::DataEncipherment,
        KeyUsage::KeyEncipherment,
        KeyUsage::ContentCommitment,
    ];
    let mut entropy = SeededEntropy::new(5);
    for alg in KeyAlgorithm::ALL {
        let ca = Ca::generate(
            &CaParams::new("ca").with_key_algorithm(alg),
            NOW,
            &mut entropy,
        )
        .unwrap();
        let leaf = ca
            .issue_leaf(
                &leaf_params(alg).with_key_usages(certgen.clone()),
                NOW,
                &mut entropy,
            )
            .unwrap();
        let leaf_der = der(&leaf.cert_pem);
        let (_, x) = parse_x509_certificate(&leaf_der).unwrap();
        let ku = x.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && ku.non_repudiation(), "{alg}");
        assert_eq!(ku.key_encipherment(), alg.is_rsa(), "{alg}");
        assert_eq!(ku.data_encipherment(), alg.is_rsa(), "{alg}");
        assert!(!ku.key_agreement(), "{alg}");
    }
    let ca = Ca::generate(&CaParams::new("ca"), NOW, &mut entropy).unwrap();
    let err = ca
        .issue_leaf(
            &leaf_params(KeyAlgorithm::EcdsaP256).with_key_usages(vec![KeyUsage::KeyEncipherment]),
            NOW,
            &mut entropy,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("key_usages") && err.contains("ecdsa-p256"),
        "{err}"
    );
}
