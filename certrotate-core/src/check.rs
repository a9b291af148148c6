//! The trust matrix of a control plane: does every peer trust every component's leaf?

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::error::{Error, Origin};
use crate::generate::HmacKey;
use crate::inspect::{self, ChainVerdict};
use crate::keypair::{KeyProblem, key_problem};
use crate::pem_blocks;
use crate::plan::{
    KEY_TLS_CRT, KEY_TLS_KEY, KEY_TRUST, ObjectRef, Observed, ProfileObjects, RotationState,
};
use crate::profile::Profile;
use crate::trust::{self, TrustStore};

/// The result of [`check`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// One entry per (leaf, trust store) pair.
    pub pairs: Vec<TrustPair>,
    /// Every certificate of every trust store and leaf, with its expiry.
    pub certificates: Vec<Expiring>,
    /// Certificates that expire within the warning window (or already did), but for
    /// [`Self::carried`] ones: what exit status 4 and the alerts are about.
    pub expiring: Vec<Expiring>,
    /// Certificates of trust stores that expire within the warning window (or already
    /// did) but issued none of the current leaves: a CA carried for peers that have not
    /// reloaded yet (the previous CA after a rotation, upstream's after an adoption, which
    /// `rotate` retires; the next CA before the leaves switch). Information: no handshake
    /// depends on them.
    pub carried: Vec<Expiring>,
    /// Problems that stop a pair from being checked at all (a missing Secret or key, an
    /// unreadable PEM block).
    pub problems: Vec<String>,
    /// Component Secrets whose `tls.key` is missing, unreadable, or not the key of their
    /// `tls.crt`: the component cannot complete a handshake with that leaf.
    pub keys: Vec<KeyCheck>,
    /// Whether the profile's CA Secret exists: certrotate manages the install (without
    /// it, component Secrets made by another tool expire with nobody to rotate them).
    #[serde(skip)]
    pub managed: bool,
    /// The rotation state persisted on the CA Secret, decoded; `None` where there is no CA
    /// Secret or its state cannot be read (`status` says why).
    #[serde(skip)]
    pub state: Option<RotationState>,
}

impl CheckReport {
    /// Pairs whose leaf is not trusted.
    pub fn untrusted(&self) -> impl Iterator<Item = &TrustPair> {
        self.pairs.iter().filter(|p| !p.verdict.is_trusted())
    }

    /// Whether every pair is trusted, every key matches its leaf, and nothing is missing.
    pub fn all_trusted(&self) -> bool {
        self.problems.is_empty() && self.keys.is_empty() && self.untrusted().next().is_none()
    }
}

/// A component Secret whose `tls.key` does not go with its `tls.crt`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeyCheck {
    /// The Secret (`ns/name`).
    pub secret: String,
    /// What is wrong.
    pub problem: KeyProblem,
}

/// Whether one component's leaf is trusted by one trust store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TrustPair {
    /// The Secret whose `tls.crt` is checked (`ns/name`).
    pub leaf: String,
    /// The trust store: a Secret's `ca.crt` (`ns/name`) or a webhook's `caBundle`.
    pub trusted_by: String,
    /// The verdict.
    pub verdict: ChainVerdict,
    /// The Secret whose `tls.crt` is checked.
    #[serde(skip)]
    pub leaf_secret: ObjectRef,
    /// The trust store.
    #[serde(skip)]
    pub store: TrustStore,
}

/// Where a certificate is and when it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Expiring {
    /// Where (`secret ns/name key tls.crt block 1`).
    pub location: String,
    /// Its subject.
    pub subject: String,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Whole days left at `now`.
    pub days_left: i64,
    /// Its SHA-256 fingerprint.
    pub fingerprint: crate::fingerprint::Fingerprint,
    /// A trust store's certificate that issued none of the component leaves present
    /// (see [`CheckReport::carried`]); always false for a leaf.
    pub carried: bool,
}

/// Checks that every component's leaf is trusted by every component's `ca.crt` and by every
/// webhook `caBundle` of the profile, and lists certificates that expire within
/// `warn_within` of `now`.
pub fn check(
    profile: &Profile,
    observed: &Observed,
    now: OffsetDateTime,
    warn_within: Duration,
) -> Result<CheckReport, Error> {
    let objects = ProfileObjects::of(profile);
    let mut report = CheckReport {
        pairs: Vec::new(),
        certificates: Vec::new(),
        expiring: Vec::new(),
        carried: Vec::new(),
        problems: Vec::new(),
        keys: Vec::new(),
        managed: observed.secrets.contains_key(&objects.ca_secret),
        state: observed
            .secrets
            .get(&objects.ca_secret)
            .and_then(|s| RotationState::from_secret(s, &objects.ca_secret).ok()),
    };
    let horizon = time::Duration::try_from(warn_within)
        .ok()
        .and_then(|d| now.checked_add(d))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);

    let mut stores: Vec<(String, Origin, &[u8])> = Vec::new();
    let mut store_refs: Vec<TrustStore> = Vec::new();
    let mut leaves: Vec<(String, Origin, &[u8])> = Vec::new();
    let mut leaf_refs: Vec<ObjectRef> = Vec::new();
    for secret in &objects.components {
        let Some(s) = observed.secrets.get(secret) else {
            report.problems.push(format!("secret {secret}: missing"));
            continue;
        };
        for (key, list) in [(KEY_TRUST, &mut stores), (KEY_TLS_CRT, &mut leaves)] {
            match s.data.get(key) {
                Some(v) => {
                    list.push((
                        secret.to_string(),
                        Origin::new(format!("secret {secret} key {key}")),
                        v,
                    ));
                    if key == KEY_TRUST {
                        store_refs.push(TrustStore::Component {
                            secret: secret.clone(),
                        });
                    } else {
                        leaf_refs.push(secret.clone());
                    }
                }
                None => report
                    .problems
                    .push(format!("secret {secret}: no key {key}")),
            }
        }
    }
    for secret in &objects.components {
        let Some(s) = observed.secrets.get(secret) else {
            continue;
        };
        let Some(crt) = s.data.get(KEY_TLS_CRT) else {
            continue;
        };
        if let Some(problem) = key_problem(crt, s.data.get(KEY_TLS_KEY).map(Vec::as_slice)) {
            report.keys.push(KeyCheck {
                secret: secret.to_string(),
                problem,
            });
        }
    }
    // HMAC Secrets: present, with a key no shorter than any this tool makes (an empty or
    // truncated key signs nothing worth trusting; `rotate` replaces it).
    for (spec, secret) in profile.hmac.iter().zip(&objects.hmac) {
        let key = &spec.key;
        match observed.secrets.get(secret).map(|s| s.data.get(key)) {
            None => report.problems.push(format!("secret {secret}: missing")),
            Some(None) => report
                .problems
                .push(format!("secret {secret}: no key {key}")),
            Some(Some(v)) if v.len() < HmacKey::MIN_LEN => report.problems.push(format!(
                "secret {secret} key {key}: an HMAC key of {} bytes, fewer than {} \
                 (`rotate` replaces it)",
                v.len(),
                HmacKey::MIN_LEN
            )),
            Some(Some(_)) => {}
        }
    }
    for webhook in &objects.webhooks {
        if let Some(w) = observed.webhooks.get(webhook) {
            for (i, b) in w.ca_bundles.iter().enumerate() {
                let name = format!("{webhook} webhook {}", i + 1);
                stores.push((name.clone(), Origin::new(name), b));
                store_refs.push(TrustStore::Webhook {
                    webhook: webhook.clone(),
                    index: i + 1,
                });
            }
        }
    }

    // A store certificate no leaf present chains to is carried, not needed: its end is
    // information, never a warning.
    let needed = |der: &[u8]| {
        leaves
            .iter()
            .any(|(_, _, leaf)| crate::plan::signed_by_der(leaf, der))
    };
    let in_stores = stores.iter().map(|s| (s, true));
    for ((_, origin, pem), is_store) in in_stores.chain(leaves.iter().map(|l| (l, false))) {
        let ders = pem_blocks::certificates(pem, origin).unwrap_or_default();
        match inspect::inspect_pem(pem, origin, now) {
            Ok(certs) => {
                for (c, der) in certs.into_iter().zip(&ders) {
                    let entry = Expiring {
                        location: format!("{origin} block {}", c.block),
                        subject: c.subject,
                        not_after: c.not_after,
                        days_left: c.days_left,
                        fingerprint: c.fingerprint,
                        carried: is_store && !needed(der),
                    };
                    if entry.not_after < horizon {
                        if entry.carried {
                            report.carried.push(entry.clone());
                        } else {
                            report.expiring.push(entry.clone());
                        }
                    }
                    report.certificates.push(entry);
                }
            }
            Err(e) => report.problems.push(e.to_string()),
        }
    }

    // Each pair judged by the trust check itself (the gate's and `simulate`'s): the same
    // verifier, the usages the profile issues leaves for, and the names each component's
    // leaf must serve. Unreadable leaves and stores are problems already.
    let judged = trust::check_state(profile, observed, now);
    let readable =
        |(_, origin, pem): &(String, Origin, &[u8])| pem_blocks::certificates(pem, origin).is_ok();
    for ((leaf_name, leaf_origin, leaf_pem), leaf_ref) in leaves.iter().zip(&leaf_refs) {
        if !readable(&(leaf_name.clone(), leaf_origin.clone(), leaf_pem)) {
            continue;
        }
        for (store, store_ref) in stores.iter().zip(&store_refs) {
            if !readable(store) {
                continue;
            }
            let outcome = judged
                .checks
                .iter()
                .find(|c| &c.leaf == leaf_ref && &c.trusted_by == store_ref)
                .map(|c| c.outcome.clone())
                .unwrap_or_else(|| {
                    // Every pair of the profile is in the trust check's report; were one
                    // not, the same verifier judges it without names.
                    let (_, store_origin, store_pem) = store;
                    trust::verify_pair(
                        leaf_pem,
                        leaf_origin,
                        store_pem,
                        store_origin,
                        &trust::usages(profile),
                        now,
                    )
                });
            report.pairs.push(TrustPair {
                leaf: leaf_name.clone(),
                trusted_by: store.0.clone(),
                verdict: outcome.into(),
                leaf_secret: leaf_ref.clone(),
                store: store_ref.clone(),
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use time::macros::datetime;

    use super::*;
    use crate::plan::{ObjectRef, ObservedSecret};
    use crate::{Ca, CaParams, KeyAlgorithm, KeyEncoding, SeededEntropy};

    const NOW: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);

    /// An installed envoy-gateway state; leaves of `algorithm`, keys in `encoding`.
    fn installed(algorithm: KeyAlgorithm, encoding: KeyEncoding) -> (Profile, Observed) {
        let mut p = Profile::envoy_gateway("ns");
        p.leaf.key_algorithm = algorithm;
        p.leaf.key_encoding = encoding;
        let mut entropy = SeededEntropy::new(1);
        let ca = Ca::generate(&CaParams::new("envoy-gateway"), NOW, &mut entropy).unwrap();
        let mut o = Observed::default();
        for (c, secret) in p.components.iter().zip(&ProfileObjects::of(&p).components) {
            let leaf = ca
                .issue_leaf(&p.leaf_params(c).unwrap(), NOW, &mut entropy)
                .unwrap();
            let data = BTreeMap::from([
                (KEY_TRUST.to_owned(), ca.cert_pem().as_bytes().to_vec()),
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
        let hmac = ObjectRef::new("ns", "envoy-oidc-hmac");
        let data = BTreeMap::from([("hmac-secret".to_owned(), vec![7; 32])]);
        o.secrets
            .insert(hmac, ObservedSecret::new("Opaque", data, "1"));
        (p, o)
    }

    /// Red-team finding 04: `check` said OK for an HMAC Secret whose key was empty or
    /// 1 byte. Missing, keyless and too-short HMAC Secrets are problems, named.
    #[test]
    fn a_missing_or_too_short_hmac_key_is_a_problem() {
        let (p, o) = installed(KeyAlgorithm::EcdsaP256, KeyEncoding::Pkcs8);
        assert!(check(&p, &o, NOW, Duration::ZERO).unwrap().all_trusted());
        let hmac = ObjectRef::new("ns", "envoy-oidc-hmac");
        let cases: [(Option<Option<usize>>, &str); 5] = [
            (None, "secret ns/envoy-oidc-hmac: missing"),
            (Some(None), "secret ns/envoy-oidc-hmac: no key hmac-secret"),
            (
                Some(Some(0)),
                "hmac-secret: an HMAC key of 0 bytes, fewer than 16",
            ),
            (
                Some(Some(1)),
                "hmac-secret: an HMAC key of 1 bytes, fewer than 16",
            ),
            (Some(Some(15)), "an HMAC key of 15 bytes"),
        ];
        for (state, expected) in cases {
            let mut o = o.clone();
            match state {
                None => {
                    o.secrets.remove(&hmac);
                }
                Some(len) => {
                    let data = &mut o.secrets.get_mut(&hmac).unwrap().data;
                    data.clear();
                    if let Some(len) = len {
                        data.insert("hmac-secret".into(), vec![7; len]);
                    }
                }
            }
            let report = check(&p, &o, NOW, Duration::ZERO).unwrap();
            assert!(!report.all_trusted(), "{expected}");
            assert!(
                report.problems.iter().any(|p| p.contains(expected)),
                "{expected}: {:?}",
                report.problems
            );
        }
    }

    /// Issue 19, finding 11: `check` said OK for bundles holding a decoy of the CA (its
    /// name and key identifier, another key) before the CA, which `openssl verify` and
    /// Envoy refuse. `check` now verifies with the trust check's verifier.
    #[test]
    fn a_decoy_before_the_ca_fails_the_check() {
        let (p, o) = installed(KeyAlgorithm::EcdsaP256, KeyEncoding::Pkcs8);
        assert!(check(&p, &o, NOW, Duration::ZERO).unwrap().all_trusted());
        let ca = Ca::generate(
            &CaParams::new("envoy-gateway"),
            NOW,
            &mut SeededEntropy::new(1),
        )
        .unwrap();
        let decoy = crate::trust::tests::decoy(&ca);
        for (bundle, trusted) in [
            (format!("{decoy}{}", ca.cert_pem()), false),
            (format!("{}{decoy}", ca.cert_pem()), true),
        ] {
            let mut o = o.clone();
            for s in o.secrets.values_mut() {
                if s.data.contains_key(KEY_TRUST) {
                    s.data.insert(KEY_TRUST.into(), bundle.clone().into_bytes());
                }
            }
            let report = check(&p, &o, NOW, Duration::ZERO).unwrap();
            assert_eq!(report.all_trusted(), trusted, "{report:#?}");
            assert_eq!(report.untrusted().count(), if trusted { 0 } else { 9 });
            assert!(report.untrusted().all(|pair| matches!(
                &pair.verdict,
                ChainVerdict::Untrusted {
                    reason: crate::trust::TrustFailure::FirstMatchRefused { block: Some(1), .. }
                }
            )));
        }
    }

    fn keys(p: &Profile, o: &Observed) -> Vec<KeyCheck> {
        let report = check(p, o, NOW, Duration::ZERO).unwrap();
        assert_eq!(report.all_trusted(), report.keys.is_empty());
        report.keys
    }

    #[test]
    fn matching_keys_pass_in_every_encoding() {
        for (algorithm, encoding) in [
            (KeyAlgorithm::EcdsaP256, KeyEncoding::Pkcs8),
            (KeyAlgorithm::Ed25519, KeyEncoding::Pkcs8),
            (KeyAlgorithm::Rsa2048, KeyEncoding::Pkcs1),
        ] {
            let (p, o) = installed(algorithm, encoding);
            assert_eq!(keys(&p, &o), [], "{algorithm:?} {encoding:?}");
        }
    }

    #[test]
    fn missing_truncated_foreign_and_mislabelled_keys_are_named() {
        let (p, o) = installed(KeyAlgorithm::EcdsaP256, KeyEncoding::Pkcs8);
        let envoy = ObjectRef::new("ns", "envoy");
        let gateway = ObjectRef::new("ns", "envoy-gateway");
        let key = o.secrets[&envoy].data[KEY_TLS_KEY].clone();
        let cases: Vec<(&str, Option<Vec<u8>>, KeyProblem)> = vec![
            ("missing", None, KeyProblem::Missing),
            ("empty", Some(Vec::new()), KeyProblem::Missing),
            ("blank", Some(b"\n".to_vec()), KeyProblem::Missing),
            (
                "truncated",
                Some(key[..key.len() / 2].to_vec()),
                KeyProblem::Unreadable {
                    reason: "unreadable PEM framing".into(),
                },
            ),
            (
                "another Secret's key",
                Some(o.secrets[&gateway].data[KEY_TLS_KEY].clone()),
                KeyProblem::Mismatch,
            ),
            (
                "a certificate",
                Some(o.secrets[&envoy].data[KEY_TLS_CRT].clone()),
                KeyProblem::Unreadable {
                    reason: "the PEM block is \"CERTIFICATE\", not a private key".into(),
                },
            ),
        ];
        for (what, value, expected) in cases {
            let mut broken = o.clone();
            let data = &mut broken.secrets.get_mut(&envoy).unwrap().data;
            match value {
                Some(v) => data.insert(KEY_TLS_KEY.into(), v),
                None => data.remove(KEY_TLS_KEY),
            };
            let found = keys(&p, &broken);
            assert_eq!(
                found,
                [KeyCheck {
                    secret: "ns/envoy".into(),
                    problem: expected
                }],
                "{what}"
            );
            // The message names the problem and never the key.
            let text = found[0].problem.to_string();
            assert!(!text.contains("PRIVATE KEY-----"), "{what}: {text}");
        }

        // A key whose body does not parse, framing intact.
        let mut corrupt = o.clone();
        let text = String::from_utf8(key).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mangled = format!(
            "{}\nAAAA{}\n{}\n",
            lines[0],
            &lines[1][4..],
            lines[lines.len() - 1]
        );
        corrupt
            .secrets
            .get_mut(&envoy)
            .unwrap()
            .data
            .insert(KEY_TLS_KEY.into(), mangled.into_bytes());
        assert!(matches!(
            &keys(&p, &corrupt)[0].problem,
            KeyProblem::Unreadable { reason } if reason.contains("does not parse")
        ));
    }
}
