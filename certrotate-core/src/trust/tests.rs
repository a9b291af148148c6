//! Tests of the trust check: a state trusts itself, the staged steps keep trust and
//! single-step does not, and every typed failure (unknown issuer, bad signature, names,
//! usages, validity, an issuer outside its validity, empty and unreadable stores) lands on
//! the side of the step it belongs to.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use time::macros::datetime;

use super::*;
use crate::plan::{KEY_TLS_KEY, ObservedSecret, ObservedWebhook, ProfileObjects};
use crate::{Ca, CaParams, SeededEntropy};

const NOW: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);

fn profile() -> Profile {
    Profile::envoy_gateway("ns")
}

fn ca(seed: u64) -> Ca {
    Ca::generate(
        &CaParams::new("envoy-gateway"),
        NOW,
        &mut SeededEntropy::new(seed),
    )
    .unwrap()
}

/// Every component with a leaf from `issuer` and `bundle` as ca.crt; the webhook with
/// `bundle` as caBundle.
fn state(issuer: &Ca, bundle: &[u8]) -> Observed {
    let p = profile();
    let objects = ProfileObjects::of(&p);
    let mut entropy = SeededEntropy::new(9);
    let mut o = Observed::default();
    for (c, secret) in p.components.iter().zip(&objects.components) {
        let leaf = issuer
            .issue_leaf(&p.leaf_params(c).unwrap(), NOW, &mut entropy)
            .unwrap();
        let data = BTreeMap::from([
            (KEY_TRUST.to_owned(), bundle.to_vec()),
            (KEY_TLS_CRT.to_owned(), leaf.cert_pem.into_bytes()),
            (
                KEY_TLS_KEY.to_owned(),
                leaf.key_pem.expose_secret().as_bytes().to_vec(),
            ),
        ]);
        o.secrets.insert(
            secret.clone(),
            ObservedSecret::new("kubernetes.io/tls", data, "1"),
        );
    }
    o.webhooks.insert(
        objects.webhooks[0].clone(),
        ObservedWebhook::new(vec![bundle.to_vec()], "1"),
    );
    o
}

fn both(a: &Ca, b: &Ca) -> Vec<u8> {
    format!("{}{}", a.cert_pem(), b.cert_pem()).into_bytes()
}

#[test]
fn a_state_trusts_itself() {
    let old = ca(1);
    let s = state(&old, old.cert_pem().as_bytes());
    let report = check_state(&profile(), &s, NOW);
    // 3 leaves × (3 ca.crt + 1 caBundle), each unchanged: once, as before.
    assert_eq!(report.checks.len(), 12);
    assert!(report.failures().next().is_none(), "{report:#?}");
    assert!(report.keeps_trust());
}

#[test]
fn the_staged_steps_keep_trust_and_single_step_does_not() {
    let (old, new) = (ca(1), ca(2));
    let installed = state(&old, old.cert_pem().as_bytes());
    let mut trust = installed.clone();
    let bundled = state(&old, &both(&new, &old));
    for (secret, s) in &mut trust.secrets {
        s.data.insert(
            KEY_TRUST.into(),
            bundled.secrets[secret].data[KEY_TRUST].clone(),
        );
    }
    trust.webhooks = bundled.webhooks.clone();
    let trust_step = check_step(&profile(), &installed, &trust, NOW);
    assert!(trust_step.keeps_trust(), "{trust_step:#?}");
    // Leaves unchanged, stores changed: 3 × 4 × 2 combinations.
    assert_eq!(trust_step.checks.len(), 24);

    let leaves = state(&new, &both(&new, &old));
    let leaves_step = check_step(&profile(), &trust, &leaves, NOW);
    assert!(leaves_step.keeps_trust(), "{leaves_step:#?}");

    // Single-step: bundle and leaf in one write; an old leaf meets a new-only store.
    let single = state(&new, new.cert_pem().as_bytes());
    let report = check_step(&profile(), &installed, &single, NOW);
    assert!(!report.keeps_trust());
    let broken: Vec<_> = report.broken().collect();
    assert!(
        broken.iter().all(|c| c.leaf_side != c.store_side),
        "{broken:#?}"
    );
    // Each CA generation has a name of its own (its serial number in the subject): the
    // store lacks the leaf's issuer, by name.
    assert!(
        broken.iter().all(|c| matches!(
            &c.outcome,
            Outcome::Failed { reason: TrustFailure::UnknownIssuer { issuer } }
                if issuer.contains("envoy-gateway") && issuer.contains("serialNumber=")
        )),
        "{broken:#?}"
    );
    let line = broken[0].to_string();
    assert!(line.contains("leaf of secret ns/"), "{line}");
    assert!(line.contains("unknown issuer"), "{line}");
}

#[test]
fn a_store_without_the_issuer_is_an_unknown_issuer() {
    let old = ca(1);
    let other = Ca::generate(
        &CaParams::new("someone-else"),
        NOW,
        &mut SeededEntropy::new(3),
    )
    .unwrap();
    let before = state(&old, old.cert_pem().as_bytes());
    let mut after = before.clone();
    let envoy = ObjectRef::new("ns", "envoy");
    after
        .secrets
        .get_mut(&envoy)
        .unwrap()
        .data
        .insert(KEY_TRUST.into(), other.cert_pem().as_bytes().to_vec());
    let report = check_step(&profile(), &before, &after, NOW);
    let broken: Vec<_> = report.broken().collect();
    assert_eq!(broken.len(), 3, "three leaves against envoy's new ca.crt");
    for c in broken {
        assert_eq!(
            c.trusted_by,
            TrustStore::Component {
                secret: envoy.clone()
            }
        );
        assert_eq!(c.store_side, Side::After);
        assert!(matches!(
            &c.outcome,
            Outcome::Failed {
                reason: TrustFailure::UnknownIssuer { .. }
            }
        ));
    }
    // The same failure, already there before the step, is not the step's.
    let again = check_step(&profile(), &after, &after, NOW);
    assert_eq!(again.failures().count(), 3);
    assert!(again.keeps_trust());
}

#[test]
fn names_usages_and_validity_are_verified() {
    let old = ca(1);
    let before = state(&old, old.cert_pem().as_bytes());
    let gateway = ObjectRef::new("ns", "envoy-gateway");
    let mut entropy = SeededEntropy::new(4);

    // A leaf for the wrong names.
    let wrong = old
        .issue_leaf(
            &crate::LeafParams::new("envoy-gateway", vec!["elsewhere.example".into()]),
            NOW,
            &mut entropy,
        )
        .unwrap();
    let mut after = before.clone();
    after
        .secrets
        .get_mut(&gateway)
        .unwrap()
        .data
        .insert(KEY_TLS_CRT.into(), wrong.cert_pem.into_bytes());
    let report = check_step(&profile(), &before, &after, NOW);
    let broken: Vec<_> = report.broken().collect();
    assert_eq!(broken.len(), 4, "{broken:#?}");
    assert!(broken.iter().all(|c| c.outcome
        == Outcome::Failed {
            reason: TrustFailure::NameMismatch {
                name: "envoy-gateway".into()
            }
        }));

    // A leaf that allows only clientAuth, where the profile asks for serverAuth too.
    let client_only = old
        .issue_leaf(
            &p_params(&profile(), 0)
                .with_extended_key_usages(vec![crate::ExtendedKeyUsage::ClientAuth]),
            NOW,
            &mut entropy,
        )
        .unwrap();
    after
        .secrets
        .get_mut(&gateway)
        .unwrap()
        .data
        .insert(KEY_TLS_CRT.into(), client_only.cert_pem.into_bytes());
    let report = check_step(&profile(), &before, &after, NOW);
    assert!(report.broken().all(|c| c.outcome
        == Outcome::Failed {
            reason: TrustFailure::WrongUsage {
                usage: Usage::ServerAuth
            }
        }));
    assert_eq!(report.broken().count(), 4);

    // Later, the leaf expired: every store says so, and it is the leaf's failure.
    let later = NOW + time::Duration::days(365 * 6);
    let report = check_state(&profile(), &before, later);
    assert!(report.failures().all(|c| matches!(
        c.outcome,
        Outcome::Failed {
            reason: TrustFailure::Expired { .. }
        }
    )));
    assert_eq!(report.failures().count(), 12);
}

#[test]
fn an_issuer_outside_its_validity_is_named() {
    // A CA not back-dated, and a leaf back-dated a day: for that day the leaf is
    // valid and its CA is not yet.
    let ca = Ca::generate(
        &CaParams::new("envoy-gateway").with_backdate(Duration::ZERO),
        NOW,
        &mut SeededEntropy::new(5),
    )
    .unwrap();
    let p = profile();
    let mut s = state(&ca, ca.cert_pem().as_bytes());
    let mut entropy = SeededEntropy::new(6);
    for (c, secret) in p.components.iter().zip(&ProfileObjects::of(&p).components) {
        let leaf = ca
            .issue_leaf(
                &p.leaf_params(c)
                    .unwrap()
                    .with_backdate(Duration::from_secs(86_400)),
                NOW,
                &mut entropy,
            )
            .unwrap();
        s.secrets
            .get_mut(secret)
            .unwrap()
            .data
            .insert(KEY_TLS_CRT.into(), leaf.cert_pem.into_bytes());
    }
    assert!(check_state(&p, &s, NOW).failures().next().is_none());
    let report = check_state(&p, &s, NOW - time::Duration::hours(12));
    assert_eq!(report.failures().count(), 12);
    assert!(report.failures().all(|c| matches!(
        &c.outcome,
        Outcome::Failed { reason: TrustFailure::IssuerOutsideValidity { ca: f, not_before, .. } }
            if *f == ca.fingerprint() && *not_before == NOW
    )), "{report:#?}");
}

#[test]
fn a_leaf_no_store_trusted_cannot_lose_trust() {
    // Every leaf chains to a CA outside its validity: no pair holds before the step.
    let dead = Ca::generate(
        &CaParams::new("envoy-gateway").with_backdate(Duration::ZERO),
        NOW,
        &mut SeededEntropy::new(5),
    )
    .unwrap();
    let p = profile();
    let mut before = state(&dead, dead.cert_pem().as_bytes());
    let mut entropy = SeededEntropy::new(6);
    for (c, secret) in p.components.iter().zip(&ProfileObjects::of(&p).components) {
        let leaf = dead
            .issue_leaf(
                &p.leaf_params(c)
                    .unwrap()
                    .with_backdate(Duration::from_secs(86_400)),
                NOW,
                &mut entropy,
            )
            .unwrap();
        before
            .secrets
            .get_mut(secret)
            .unwrap()
            .data
            .insert(KEY_TLS_CRT.into(), leaf.cert_pem.into_bytes());
    }
    let at = NOW - time::Duration::hours(12);
    assert_eq!(check_state(&p, &before, at).failures().count(), 12);

    // Recovery, trust first: bundles with a new CA; the old leaves lose nothing.
    let new = Ca::generate(
        &CaParams::new("envoy-gateway"),
        at,
        &mut SeededEntropy::new(7),
    )
    .unwrap();
    let recovered = state(&new, new.cert_pem().as_bytes());
    let mut trust = before.clone();
    for (k, v) in &mut trust.secrets {
        v.data.insert(
            KEY_TRUST.into(),
            recovered.secrets[k].data[KEY_TRUST].clone(),
        );
    }
    trust.webhooks = recovered.webhooks.clone();
    let report = check_step(&p, &before, &trust, at);
    assert!(report.keeps_trust(), "{report:#?}");
    assert_eq!(
        report.failures().count(),
        24,
        "old leaves: before and after stores"
    );

    // Leaves and bundles at once: a new leaf against an old store fails, but that store
    // trusted no leaf before either (the pair was broken before the step), so the step
    // loses nothing and is not to blame (issue 22: never wedged on what was broken).
    let report = check_step(&p, &before, &recovered, at);
    assert!(report.keeps_trust(), "{report:#?}");
    assert!(
        report
            .failures()
            .any(|c| c.leaf_side == Side::After && c.store_side == Side::Before)
    );
    // But a day later, when the old CA is valid and its stores trust the old leaves, the
    // same step breaks: the new leaves against the old stores, the old leaves against the
    // new ones.
    assert_eq!(check_state(&p, &before, NOW).failures().count(), 0);
    let report = check_step(&p, &before, &recovered, NOW);
    assert!(!report.keeps_trust());
    assert!(
        report
            .broken()
            .any(|c| c.leaf_side == Side::After && c.store_side == Side::Before)
    );
}

#[test]
fn empty_and_unreadable_stores_fail_on_their_side() {
    let old = ca(1);
    let before = state(&old, old.cert_pem().as_bytes());
    let webhook = ProfileObjects::of(&profile()).webhooks[0].clone();
    let mut after = before.clone();
    after
        .webhooks
        .insert(webhook.clone(), ObservedWebhook::new(vec![Vec::new()], "2"));
    let report = check_step(&profile(), &before, &after, NOW);
    let broken: Vec<_> = report.broken().collect();
    assert_eq!(broken.len(), 3);
    assert!(broken.iter().all(|c| c.outcome
        == Outcome::Failed {
            reason: TrustFailure::MissingBundle
        }));
    // Filling an empty caBundle is a repair, not a break.
    let report = check_step(&profile(), &after, &before, NOW);
    assert!(report.keeps_trust(), "{report:#?}");
    assert_eq!(report.failures().count(), 3, "before: empty");

    let mut junk = before.clone();
    junk.secrets
        .get_mut(&ObjectRef::new("ns", "envoy"))
        .unwrap()
        .data
        .insert(
            KEY_TRUST.into(),
            b"-----BEGIN CERTIFICATE-----\nnope\n".to_vec(),
        );
    let report = check_step(&profile(), &before, &junk, NOW);
    assert_eq!(report.broken().count(), 3);
    assert!(report.broken().all(|c| matches!(
        &c.outcome,
        Outcome::Failed { reason: TrustFailure::UnreadableBundle { reason } } if reason.contains("ca.crt")
    )));
}

fn p_params(p: &Profile, i: usize) -> crate::LeafParams {
    p.leaf_params(&p.components[i]).unwrap()
}

/// The leaves step of a rotation: every component's bundle and the webhook's hold the new
/// and the previous CA (both named `envoy-gateway`), and each leaf goes from the previous
/// CA to the new one. Its check pairs 6 leaves with 4 stores for 2 usages; each of those
/// 48 paths verifies a signature, and half of them tried the wrong CA first (72 ECDSA
/// verifications). It takes one verification per leaf: 6.
#[test]
fn a_step_verifies_each_leaf_once() {
    let (old, new) = (ca(1), ca(2));
    let bundle = format!("{}{}", new.cert_pem(), old.cert_pem());
    let before = state(&old, bundle.as_bytes());
    let after = state(&new, bundle.as_bytes());
    let verifier = Verifier::new();
    let report = check_step_with(&profile(), &before, &after, NOW, &verifier);
    assert_eq!(report.checks.len(), 6 * 4);
    assert!(report.checks.iter().all(|c| c.outcome.is_trusted()));
    assert_eq!(verifier.verifications(), 6);
}

/// A self-signed CA certificate with `ca`'s subject (`envoy-gateway`) and subject key
/// identifier, `key` and the given validity: with another key, a decoy of `ca`.
fn sibling(
    ca: &Ca,
    key: &rcgen::KeyPair,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> String {
    use rcgen::{BasicConstraints, DnType, IsCa, KeyIdMethod, KeyUsagePurpose};
    let parsed = crate::pem_blocks::parse_certificate(ca.cert_der()).unwrap();
    let ski = parsed
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        })
        .unwrap();
    let mut params = rcgen::CertificateParams::default();
    // The CA's exact name: its common name and serialNumber attribute.
    params.distinguished_name = rcgen::DistinguishedName::new();
    for attr in parsed.subject().iter_attributes() {
        let value = attr.as_str().unwrap().to_owned();
        let oid: Vec<u64> = attr.attr_type().iter().unwrap().collect();
        // Encoded as the generator encodes them (a name matches byte for byte).
        if oid == [2, 5, 4, 3] {
            params.distinguished_name.push(DnType::CommonName, value);
        } else {
            params.distinguished_name.push(
                DnType::CustomDnType(oid),
                rcgen::DnValue::PrintableString(value.try_into().unwrap()),
            );
        }
    }
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.key_identifier_method = KeyIdMethod::PreSpecified(ski);
    params.not_before = not_before;
    params.not_after = not_after;
    params.self_signed(key).unwrap().pem()
}

/// A decoy of `ca`: its name and subject key identifier, another key.
pub(crate) fn decoy(ca: &Ca) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    sibling(ca, &key, NOW - time::Duration::days(1), ca.not_after())
}

/// Issue 19, finding 11: a decoy (the CA's name and key identifier, another key) listed
/// before the real CA. rustls-webpki and Go try every candidate and trust the leaf;
/// OpenSSL and BoringSSL (Envoy) take the first and fail on its signature. The check
/// refuses it, typed, naming the decoy; listed after the real CA it is harmless.
#[test]
fn a_decoy_before_the_real_ca_is_refused_and_after_it_is_harmless() {
    let real = ca(1);
    let decoy = decoy(&real);
    let decoy_fingerprint = {
        let ders = crate::pem_blocks::certificates(decoy.as_bytes(), &Origin::default()).unwrap();
        crate::fingerprint::Fingerprint::of(&ders[0])
    };
    let first = format!("{decoy}{}", real.cert_pem());
    let report = check_state(&profile(), &state(&real, first.as_bytes()), NOW);
    assert_eq!(report.failures().count(), 12, "{report:#?}");
    assert!(
        report.failures().all(|c| matches!(
            &c.outcome,
            Outcome::Failed { reason: TrustFailure::FirstMatchRefused {
                issuer, ca, block: Some(1), problem: FirstMatchProblem::BadSignature,
            } } if issuer.contains("envoy-gateway") && *ca == decoy_fingerprint
        )),
        "{report:#?}"
    );
    let line = report.failures().next().unwrap().to_string();
    assert!(line.contains("block 1"), "{line}");
    assert!(line.contains("try no other"), "{line}");

    // A step that writes the decoy first into the stores breaks trust, on its side.
    let installed = state(&real, real.cert_pem().as_bytes());
    let step = check_step(&profile(), &installed, &state(&real, first.as_bytes()), NOW);
    assert!(!step.keeps_trust());
    assert!(step.broken().all(|c| c.store_side == Side::After));

    let after = format!("{}{decoy}", real.cert_pem());
    let report = check_state(&profile(), &state(&real, after.as_bytes()), NOW);
    assert!(report.failures().next().is_none(), "{report:#?}");
}

/// BoringSSL takes the first certificate that names itself the issuer whatever its
/// validity: the CA's own certificate, expired, listed before a renewal of it (same
/// name, key and key identifier) fails there, though OpenSSL and rustls-webpki skip it.
#[test]
fn an_expired_copy_of_the_ca_listed_first_is_refused() {
    let real = ca(1);
    let key = rcgen::KeyPair::from_pem(real.key_pem().expose_secret()).unwrap();
    let expired = sibling(
        &real,
        &key,
        NOW - time::Duration::days(400),
        NOW - time::Duration::days(30),
    );
    let first = format!("{expired}{}", real.cert_pem());
    let report = check_state(&profile(), &state(&real, first.as_bytes()), NOW);
    assert_eq!(report.failures().count(), 12, "{report:#?}");
    assert!(
        report.failures().all(|c| matches!(
            &c.outcome,
            Outcome::Failed {
                reason: TrustFailure::FirstMatchRefused {
                    block: Some(1),
                    problem: FirstMatchProblem::OutsideValidity { .. },
                    ..
                }
            }
        )),
        "{report:#?}"
    );
    let after = format!("{}{expired}", real.cert_pem());
    let report = check_state(&profile(), &state(&real, after.as_bytes()), NOW);
    assert!(report.failures().next().is_none(), "{report:#?}");
}
