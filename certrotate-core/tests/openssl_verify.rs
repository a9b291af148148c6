//! Differential test of the chain verifier against `openssl verify` (issue 19, finding 11).
//!
//! rustls-webpki and Go search every candidate issuer; OpenSSL and BoringSSL (Envoy) take
//! the first certificate of the store whose subject is the issuer's name and whose subject
//! key identifier matches the authority key identifier, and fail if it does not do. The
//! trust check accepts a leaf only if both ways do, so it must never trust a (leaf, bundle)
//! that `openssl verify` refuses.
//!
//! Bundles are drawn from a pool of CAs: the real CA, decoys of it (its name and key
//! identifier, another key; valid, expired, not yet valid, an RSA one), copies of it with
//! its own key (expired, not yet valid), a CA rotated under the same name, an unrelated CA,
//! and an intermediate CA with its root, in every order of one and two (duplicates
//! included) and a spread of orders of three. Each verdict of `verify_chain` is compared
//! with `openssl verify -CAfile BUNDLE -attime NOW -purpose sslserver LEAF`: no
//! `-partial_chain`, as Envoy sets no `X509_V_FLAG_PARTIAL_CHAIN`, so a chain must end on
//! a self-signed certificate of the bundle.
//!
//! They must agree, except where the first candidate is outside its validity or has
//! another key type: OpenSSL 3 skips it for a later candidate, BoringSSL does not
//! (`X509_STORE_CTX_get1_issuer` takes the first match), and the check, as strict as the
//! stricter of them, refuses with `FirstMatchRefused`.
//!
//! Without `openssl` on the PATH the test says so and passes, unless
//! `CERTROTATE_REQUIRE_OPENSSL=1` (as in CI), where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use certrotate_core::trust::TrustFailure;
use certrotate_core::{
    Ca, CaParams, ChainVerdict, LeafParams, Origin, SeededEntropy, verify_chain,
};
use rcgen::{BasicConstraints, DnType, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);

/// One CA of the pool.
struct Pooled {
    label: &'static str,
    pem: String,
    /// Whether, as the first candidate issuer of the real CA's leaves, OpenSSL 3 may skip
    /// it where BoringSSL does not.
    boringssl_stricter: bool,
}

/// The subject key identifier of a PEM certificate.
fn ski(pem: &str) -> Vec<u8> {
    let der = pem::parse(pem).unwrap().into_contents();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        })
        .unwrap()
}

/// A CA certificate named `name`, with key identifier `key_id`, signed by `key` (self-signed
/// if `issuer` is `None`), valid from `not_before` to `not_after`.
fn ca_cert(
    name: rcgen::DistinguishedName,
    key_id: Vec<u8>,
    key: &KeyPair,
    issuer: Option<&rcgen::Issuer<'_, KeyPair>>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> String {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_id);
    params.not_before = not_before;
    params.not_after = not_after;
    match issuer {
        None => params.self_signed(key).unwrap().pem(),
        Some(issuer) => {
            params.use_authority_key_identifier_extension = true;
            params.signed_by(key, issuer).unwrap().pem()
        }
    }
}

fn leaf_params() -> LeafParams {
    LeafParams::new("envoy", vec!["envoy.ns.svc".into()])
}

#[test]
fn the_verdicts_agree_with_openssl_verify() {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(
            std::env::var("CERTROTATE_REQUIRE_OPENSSL").as_deref() != Ok("1"),
            "CERTROTATE_REQUIRE_OPENSSL=1 and no openssl on the PATH"
        );
        println!("openssl not found: the differential test against `openssl verify` is skipped");
        return;
    }
    let mut entropy = SeededEntropy::new(11);
    let year = std::time::Duration::from_secs(365 * 86_400);
    let real = Ca::generate(
        &CaParams::new("envoy-gateway").with_validity(year),
        NOW,
        &mut entropy,
    )
    .unwrap();
    let real_key = KeyPair::from_pem(real.key_pem().expose_secret()).unwrap();
    let real_ski = ski(real.cert_pem());
    let (valid_from, valid_to) = (NOW - time::Duration::days(1), real.not_after());
    let (past_from, past_to) = (
        NOW - time::Duration::days(400),
        NOW - time::Duration::days(30),
    );
    let (future_from, future_to) = (
        NOW + time::Duration::days(30),
        NOW + time::Duration::days(400),
    );
    let p256 = || KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    // The real CA's exact name (its common name and serial number), another key.
    let real_name = {
        let (_, parsed) = x509_parser::parse_x509_certificate(real.cert_der()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        for attr in parsed.subject().iter_attributes() {
            let value = attr.as_str().unwrap().to_owned();
            let oid: Vec<u64> = attr.attr_type().iter().unwrap().collect();
            // Encoded as the generator encodes them (a name matches byte for byte).
            if oid == [2, 5, 4, 3] {
                dn.push(DnType::CommonName, value);
            } else {
                dn.push(
                    DnType::CustomDnType(oid),
                    rcgen::DnValue::PrintableString(value.try_into().unwrap()),
                );
            }
        }
        dn
    };
    let sibling =
        |key: &KeyPair, from, to| ca_cert(real_name.clone(), real_ski.clone(), key, None, from, to);
    let rotated = Ca::generate(&CaParams::new("envoy-gateway"), NOW, &mut entropy).unwrap();
    let unrelated = Ca::generate(&CaParams::new("someone-else"), NOW, &mut entropy).unwrap();
    // An intermediate CA and its root.
    let root_key = p256();
    let root_params = {
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, "root");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = valid_from;
        p.not_after = valid_to;
        p
    };
    let root_pem = root_params.self_signed(&root_key).unwrap().pem();
    let root_issuer = rcgen::Issuer::new(root_params, root_key);
    let inter_key = p256();
    let inter_pem = ca_cert(
        {
            let mut dn = rcgen::DistinguishedName::new();
            dn.push(DnType::CommonName, "intermediate");
            dn
        },
        vec![0x1e; 20],
        &inter_key,
        Some(&root_issuer),
        valid_from,
        valid_to,
    );
    let inter = Ca::from_pem(
        &inter_pem,
        &inter_key.serialize_pem(),
        &Origin::new("intermediate"),
    )
    .unwrap();
    let rsa = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();

    let pooled = |label, pem: &str, boringssl_stricter| Pooled {
        label,
        pem: pem.to_owned(),
        boringssl_stricter,
    };
    let pool = [
        pooled("real", real.cert_pem(), false),
        pooled("decoy", &sibling(&p256(), valid_from, valid_to), false),
        pooled("decoy-expired", &sibling(&p256(), past_from, past_to), true),
        pooled(
            "decoy-future",
            &sibling(&p256(), future_from, future_to),
            true,
        ),
        pooled("decoy-rsa", &sibling(&rsa, valid_from, valid_to), true),
        pooled(
            "real-expired",
            &sibling(&real_key, past_from, past_to),
            true,
        ),
        pooled(
            "real-future",
            &sibling(&real_key, future_from, future_to),
            true,
        ),
        pooled("rotated", rotated.cert_pem(), false),
        pooled("unrelated", unrelated.cert_pem(), false),
        pooled("intermediate", &inter_pem, false),
        pooled("root", &root_pem, false),
    ];
    let leaves = [
        (
            "leaf-of-real",
            real.issue_leaf(&leaf_params(), NOW, &mut entropy).unwrap(),
        ),
        (
            "leaf-of-rotated",
            rotated
                .issue_leaf(&leaf_params(), NOW, &mut entropy)
                .unwrap(),
        ),
        (
            "leaf-of-intermediate",
            inter.issue_leaf(&leaf_params(), NOW, &mut entropy).unwrap(),
        ),
    ];

    // Orders of one and two, and every fifth order of three.
    let n = pool.len();
    let mut bundles: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    bundles.extend((0..n * n).map(|k| vec![k / n, k % n]));
    bundles.extend(
        (0..n * n * n)
            .step_by(5)
            .map(|k| vec![k / (n * n), (k / n) % n, k % n]),
    );

    let dir = tempfile::tempdir().unwrap();
    let o = Origin::new("test");
    let leaf_paths: Vec<_> = leaves
        .iter()
        .map(|(label, leaf)| {
            let path = dir.path().join(format!("{label}.pem"));
            std::fs::write(&path, &leaf.cert_pem).unwrap();
            path
        })
        .collect();
    let bundle_path = dir.path().join("bundle.pem");
    let (mut compared, mut trusted, mut stricter, mut decoy_first) = (0, 0, 0, 0);
    for bundle in &bundles {
        let pem: String = bundle.iter().map(|&i| pool[i].pem.as_str()).collect();
        let labels: Vec<&str> = bundle.iter().map(|&i| pool[i].label).collect();
        std::fs::write(&bundle_path, &pem).unwrap();
        let accepted = openssl_verifies(&bundle_path, &leaf_paths);
        // The first candidate issuer of the real CA's leaves, in the bundle's order.
        let first_candidate = bundle
            .iter()
            .map(|&i| &pool[i])
            .find(|p| p.label.starts_with("real") || p.label.starts_with("decoy"));
        for ((leaf_label, leaf), &openssl) in leaves.iter().zip(&accepted) {
            let case = format!("{leaf_label} against [{}]", labels.join(", "));
            let verdict =
                verify_chain(leaf.cert_pem.as_bytes(), &o, pem.as_bytes(), &o, NOW).unwrap();
            compared += 1;
            trusted += usize::from(verdict.is_trusted());
            let of_real = *leaf_label == "leaf-of-real";
            if of_real
                && first_candidate.is_some_and(|p| p.label == "decoy")
                && labels.contains(&"real")
            {
                // Finding 11: rustls-webpki alone trusts this.
                decoy_first += 1;
            }
            if of_real
                && first_candidate.is_some_and(|p| p.boringssl_stricter)
                && openssl
                && !verdict.is_trusted()
            {
                stricter += 1;
                assert!(
                    matches!(
                        &verdict,
                        ChainVerdict::Untrusted {
                            reason: TrustFailure::FirstMatchRefused { .. }
                        }
                    ),
                    "{case}: {verdict:?}"
                );
                continue;
            }
            assert_eq!(
                verdict.is_trusted(),
                openssl,
                "{case}: certrotate says {verdict:?}, openssl verify says {}",
                if openssl { "OK" } else { "no" }
            );
        }
    }
    println!(
        "{compared} (leaf, bundle) pairs: {trusted} trusted; {decoy_first} with a decoy \
         before the real CA; {stricter} refused where OpenSSL 3 skips the first candidate \
         and BoringSSL does not"
    );
    // The comparison covers both verdicts, the decoys and the BoringSSL-only refusals.
    assert!(
        trusted > 50 && compared - trusted > 50,
        "{compared} {trusted}"
    );
    assert!(decoy_first > 5 && stricter > 10, "{decoy_first} {stricter}");
}

/// Whether `openssl verify` accepts each leaf of `leaves` with the bundle at `bundle` as
/// its only trust store, at `NOW`, for a TLS server (one run for all the leaves: it prints
/// `PATH: OK` for each it accepts).
fn openssl_verifies(bundle: &Path, leaves: &[PathBuf]) -> Vec<bool> {
    let out = Command::new("openssl")
        .arg("verify")
        .args(["-no-CApath", "-no-CAstore"])
        .arg("-CAfile")
        .arg(bundle)
        .args(["-attime", &NOW.unix_timestamp().to_string()])
        .args(["-purpose", "sslserver"])
        .args(leaves)
        .output()
        .expect("openssl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    leaves
        .iter()
        .map(|leaf| {
            let ok = format!("{}: OK", leaf.display());
            stdout.lines().any(|l| l == ok)
        })
        .collect()
}
