//! Properties of the bundling rule over generated valid, expired, duplicate and junk blocks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::sync::LazyLock;

use certrotate_core::testing::{BlockKind, Fixtures, old_bundle};
use certrotate_core::{BundlePolicy, Fingerprint, SkipReason, bundle_ca_certs};
use proptest::prelude::*;

static FX: LazyLock<Fixtures> = LazyLock::new(|| Fixtures::new(2026));

fn fp(pem: &str) -> Fingerprint {
    Fingerprint::of(&::pem::parse(pem).unwrap().into_contents())
}

/// What the rule must carry, computed from the model of the input.
fn expected_carried(kinds: &[BlockKind], limit: usize) -> Vec<(usize, Fingerprint)> {
    let mut out: Vec<(usize, Fingerprint)> = Vec::new();
    let mut block = 0;
    for kind in kinds {
        if *kind == BlockKind::Text {
            continue;
        }
        block += 1;
        if let BlockKind::Valid(i) = kind {
            let f = fp(FX.valid()[*i].cert_pem());
            if out.len() < limit && !out.iter().any(|(_, g)| *g == f) {
                out.push((block, f));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn carries_exactly_the_first_qualifying_blocks(old in old_bundle(&FX, 8), limit in 0usize..4) {
        let new = FX.new_ca_pem();
        let out = BundlePolicy::new(limit).bundle(new.as_bytes(), old.pem.as_bytes(), FX.now()).unwrap();

        // New first and unchanged.
        prop_assert!(out.pem.starts_with(new));
        prop_assert_eq!(&out.report.new, &vec![fp(new)]);

        // Exactly the first `limit` valid, distinct, non-new certificates, in the order of old.
        let carried: Vec<(usize, Fingerprint)> =
            out.report.carried.iter().map(|c| (c.block, c.fingerprint)).collect();
        prop_assert_eq!(&carried, &expected_carried(&old.kinds, limit));
        prop_assert!(carried.len() <= limit);

        // Nothing carried is expired at now, and nothing in the output is duplicated.
        for c in &out.report.carried {
            prop_assert!(c.not_after >= FX.now());
        }
        let blocks: Vec<_> = ::pem::parse_many(&out.pem).unwrap();
        let mut seen = std::collections::HashSet::new();
        for b in &blocks {
            prop_assert_eq!(b.tag(), "CERTIFICATE");
            prop_assert!(seen.insert(b.contents().to_vec()), "duplicate in output");
        }
        prop_assert_eq!(blocks.len(), 1 + carried.len());
        prop_assert!(!out.pem.contains("PRIVATE KEY"));

        // Every block of old is accounted for exactly once.
        let n_blocks = old.kinds.iter().filter(|k| **k != BlockKind::Text).count();
        let mut indices: Vec<usize> = out.report.carried.iter().map(|c| c.block)
            .chain(out.report.skipped.iter().map(|s| s.block)).collect();
        indices.sort_unstable();
        prop_assert_eq!(indices, (1..=n_blocks).collect::<Vec<_>>());

        // Expired blocks before the limit was reached are reported as expired.
        for s in &out.report.skipped {
            if let SkipReason::Expired { not_after } = s.reason {
                prop_assert!(not_after < FX.now());
            }
        }

        // Idempotent.
        let again = BundlePolicy::new(limit).bundle(new.as_bytes(), out.pem.as_bytes(), FX.now()).unwrap();
        prop_assert_eq!(&again.pem, &out.pem);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(old in proptest::collection::vec(any::<u8>(), 0..2048),
                                       new in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = bundle_ca_certs(FX.new_ca_pem().as_bytes(), &old, FX.now()).unwrap();
        let _ = bundle_ca_certs(&new, &old, FX.now());
    }

    #[test]
    fn never_panics_on_pem_shaped_junk(parts in proptest::collection::vec(prop_oneof![
        Just("-----BEGIN CERTIFICATE-----".to_owned()),
        Just("-----END CERTIFICATE-----".to_owned()),
        Just("-----BEGIN PRIVATE KEY-----".to_owned()),
        Just("-----END ".to_owned()),
        Just("-----BEGIN ".to_owned()),
        Just("\n".to_owned()), Just("\r\n".to_owned()),
        "[A-Za-z0-9+/=]{0,80}",
        Just(FX.valid()[0].cert_pem().to_owned()),
    ], 0..24)) {
        let old = parts.concat();
        let out = bundle_ca_certs(FX.new_ca_pem().as_bytes(), old.as_bytes(), FX.now()).unwrap();
        let again = bundle_ca_certs(FX.new_ca_pem().as_bytes(), out.pem.as_bytes(), FX.now()).unwrap();
        prop_assert_eq!(again.pem, out.pem);
    }
}

#[test]
fn upstream_cases() {
    let now = FX.now();
    let ca1 = FX.valid()[0].cert_pem();
    let ca2 = FX.valid()[1].cert_pem();
    let ca3 = FX.valid()[2].cert_pem();
    // Identical old and new: new unchanged.
    assert_eq!(
        bundle_ca_certs(ca1.as_bytes(), ca1.as_bytes(), now)
            .unwrap()
            .pem,
        ca1
    );
    // bundle(ca2, ca2+ca1) has 2 certificates: ca2 then ca1.
    let b = bundle_ca_certs(ca2.as_bytes(), format!("{ca2}{ca1}").as_bytes(), now).unwrap();
    assert_eq!(b.pem, format!("{ca2}{ca1}"));
    // Expired excluded.
    let expired = FX.expired()[0].cert_pem();
    let b = bundle_ca_certs(ca2.as_bytes(), expired.as_bytes(), now).unwrap();
    assert_eq!(b.pem, ca2);
    assert!(matches!(
        b.report.skipped[0].reason,
        SkipReason::Expired { .. }
    ));
    // Not yet valid (a CA minted on a node whose clock runs ahead): carried, as upstream's
    // bundleCACerts checks only `now.After(NotAfter)`; it was dropped, and every leaf it
    // issued left untrusted (issue 23).
    let ahead = certrotate_core::Ca::generate(
        &certrotate_core::CaParams::new("ahead"),
        now + time::Duration::days(2),
        &mut certrotate_core::SeededEntropy::new(42),
    )
    .unwrap();
    let b = bundle_ca_certs(ca2.as_bytes(), ahead.cert_pem().as_bytes(), now).unwrap();
    assert_eq!(b.pem, format!("{ca2}{}", ahead.cert_pem()));
    // Three rotations end as ca3+ca2.
    let r1 = bundle_ca_certs(ca1.as_bytes(), b"", now).unwrap();
    let r2 = bundle_ca_certs(ca2.as_bytes(), r1.pem.as_bytes(), now).unwrap();
    let r3 = bundle_ca_certs(ca3.as_bytes(), r2.pem.as_bytes(), now).unwrap();
    assert_eq!(r3.pem, format!("{ca3}{ca2}"));
    assert!(matches!(
        r3.report.skipped[0].reason,
        SkipReason::BeyondLimit { limit: 1 }
    ));
}

#[test]
fn bad_input_names_the_block() {
    let now = FX.now();
    let key = FX.valid()[0].key_pem().expose_secret();
    let ca1 = FX.valid()[0].cert_pem();
    // A private key pasted into old is skipped and named, never carried.
    let b = bundle_ca_certs(
        FX.new_ca_pem().as_bytes(),
        format!("{key}{ca1}").as_bytes(),
        now,
    )
    .unwrap();
    assert_eq!(
        b.report.skipped[0].to_string(),
        "old block 1: not a certificate (found PRIVATE KEY)"
    );
    assert_eq!(b.report.carried[0].block, 2);
    // A private key in new is an error naming the block.
    let err = bundle_ca_certs(format!("{ca1}{key}").as_bytes(), b"", now).unwrap_err();
    assert_eq!(
        err.to_string(),
        "new CA block 2: not a certificate (found PRIVATE KEY)"
    );
    let err = bundle_ca_certs(b"", b"", now).unwrap_err();
    assert_eq!(err.to_string(), "new CA: no PEM block found");
    let truncated = &ca1[..ca1.len() - 30];
    let err = bundle_ca_certs(truncated.as_bytes(), b"", now).unwrap_err();
    assert!(
        err.to_string().starts_with("new CA block 1: malformed PEM"),
        "{err}"
    );
    // CRLF, surrounding whitespace and text between blocks are tolerated.
    let messy = format!(
        "  \r\n# comment\r\n{}\r\nsome text\r\n",
        ca1.replace('\n', "\r\n")
    );
    let b = bundle_ca_certs(FX.new_ca_pem().as_bytes(), messy.as_bytes(), now).unwrap();
    assert_eq!(b.report.carried.len(), 1);
    let b = bundle_ca_certs(messy.as_bytes(), b"", now).unwrap();
    assert_eq!(b.pem, ca1);
}

/// Large `new` inputs are checked on several threads; the bundle, the report and the error
/// (the first bad block's) must not depend on that.
#[test]
fn large_new_inputs_give_the_same_result_and_the_first_error() {
    let now = FX.now();
    let valid: Vec<&str> = FX.valid().iter().map(|ca| ca.cert_pem()).collect();
    // 1,500 blocks (above the threshold), cycling through the fixture CAs, one re-wrapped
    // with CRLF so both the copy and the re-encode paths run in each chunk.
    let blocks: Vec<String> = (0..1500)
        .map(|i| {
            let pem = valid[i % valid.len()];
            if i % 700 == 3 {
                pem.replace('\n', "\r\n")
            } else {
                pem.to_owned()
            }
        })
        .collect();
    let new = blocks.concat();
    let old = FX.expired()[0].cert_pem().to_owned() + FX.new_ca_pem();
    let b = bundle_ca_certs(new.as_bytes(), old.as_bytes(), now).unwrap();
    let expected: String = blocks.iter().map(|b| b.replace("\r\n", "\n")).collect();
    assert_eq!(b.pem, expected + FX.new_ca_pem());
    assert_eq!(b.report.new.len(), 1500);
    assert_eq!(b.report.new[1499], fp(valid[1499 % valid.len()]));
    assert_eq!(b.report.carried[0].block, 2);

    let junk = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
    let with_junk = |at: &[usize]| {
        let mut blocks = blocks.clone();
        for &i in at {
            blocks[i - 1] = junk.to_owned();
        }
        blocks.concat()
    };
    for at in [&[1400][..], &[20, 1400], &[760, 761]] {
        let err = bundle_ca_certs(with_junk(at).as_bytes(), b"", now).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("new CA block {}: ", at[0])),
            "{at:?}: {err}"
        );
    }
}

/// Past the first few lookups the rule switches from scanning to a set: a long run of
/// duplicates and expired blocks before the first qualifying one, then that one again.
#[test]
fn long_runs_of_skipped_blocks_before_the_carried_one() {
    let now = FX.now();
    let new = FX.new_ca_pem();
    let expired = FX.expired()[0].cert_pem();
    let valid = FX.valid()[0].cert_pem();
    let other = FX.valid()[1].cert_pem();
    let mut old: String = (0..20)
        .map(|i| if i % 2 == 0 { new } else { expired })
        .collect();
    old.push_str(valid);
    old.push_str(valid);
    old.push_str(other);
    let b = BundlePolicy::new(2)
        .bundle(new.as_bytes(), old.as_bytes(), now)
        .unwrap();
    let carried: Vec<_> = b.report.carried.iter().map(|c| c.block).collect();
    assert_eq!(carried, [21, 23], "the first of each, once");
    assert!(matches!(
        b.report.skipped[20].reason,
        SkipReason::Duplicate { .. }
    ));
    assert_eq!(b.report.skipped.len(), 21);
    assert_eq!(b.pem, format!("{new}{valid}{other}"));
}

/// Certificates that are not usable CAs, each with the defect `kind` the rule must give.
struct Unusable {
    what: &'static str,
    pem: String,
    kind: &'static str,
}

fn openssl_ca(dir: &std::path::Path, name: &str, args: &[&str], ext: &[&str]) -> String {
    let crt = dir.join(format!("{name}.crt"));
    let mut cmd = std::process::Command::new("openssl");
    cmd.args(["req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=weak"])
        .args(args)
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(&crt);
    for e in ext {
        cmd.args(["-addext", e]);
    }
    let status = cmd.stderr(std::process::Stdio::null()).status().unwrap();
    assert!(status.success(), "openssl {name}");
    std::fs::read_to_string(crt).unwrap()
}

/// Fixtures at a `now` one hour into the validity of the certificates openssl makes (it
/// cannot back-date them), and the unusable CAs.
static UNUSABLE_FX: LazyLock<(Fixtures, Vec<Unusable>)> = LazyLock::new(|| {
    use certrotate_core::{Ca, CaParams, LeafParams, SeededEntropy};
    let tmp = tempfile::tempdir().unwrap();
    let ca = [
        "basicConstraints=critical,CA:TRUE",
        "keyUsage=critical,keyCertSign,cRLSign",
    ];
    let dir = tmp.path();
    let rsa1024 = openssl_ca(dir, "rsa1024", &["-newkey", "rsa:1024", "-sha256"], &ca);
    let der = ::pem::parse(&rsa1024).unwrap().into_contents();
    let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
    let now = x.validity().not_before.to_datetime() + time::Duration::HOUR;
    let fx = Fixtures::at(2026, now);
    let mut entropy = SeededEntropy::new(99);
    let leaf = fx.valid()[0]
        .issue_leaf(
            &LeafParams::new("leaf", vec!["leaf".into()]),
            now,
            &mut entropy,
        )
        .unwrap()
        .cert_pem;
    let future = Ca::generate(
        &CaParams::new("future"),
        now + time::Duration::days(10),
        &mut entropy,
    )
    .unwrap();
    let unusable = vec![
        Unusable {
            what: "a leaf",
            pem: leaf,
            kind: "not-a-ca",
        },
        Unusable {
            what: "CA:FALSE",
            pem: openssl_ca(
                dir,
                "noca",
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                &["basicConstraints=critical,CA:FALSE"],
            ),
            kind: "not-a-ca",
        },
        Unusable {
            what: "no keyCertSign",
            pem: openssl_ca(
                dir,
                "nocertsign",
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                &[
                    "basicConstraints=critical,CA:TRUE",
                    "keyUsage=critical,digitalSignature",
                ],
            ),
            kind: "no-key-cert-sign",
        },
        Unusable {
            what: "not yet valid",
            pem: future.cert_pem().to_owned(),
            kind: "not-yet-valid",
        },
        Unusable {
            what: "expired",
            pem: fx.expired()[0].cert_pem().to_owned(),
            kind: "expired",
        },
        Unusable {
            what: "RSA 1024",
            pem: rsa1024,
            kind: "weak-rsa-key",
        },
        Unusable {
            what: "SHA-1",
            pem: openssl_ca(dir, "sha1", &["-newkey", "rsa:2048", "-sha1"], &ca),
            kind: "weak-signature",
        },
        Unusable {
            what: "P-224",
            pem: openssl_ca(
                dir,
                "p224",
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-224"],
                &ca,
            ),
            kind: "unsupported-curve",
        },
    ];
    (fx, unusable)
});

/// The rule's verdict checked against x509-parser (an independent parse): CA:TRUE,
/// keyCertSign where keyUsage is present, valid at `now`, RSA of 2048 bits or more or a
/// NIST curve from P-256 or Ed25519, not signed with SHA-1 or MD5.
fn oracle_usable(pem: &str, now: time::OffsetDateTime) -> bool {
    oracle(pem, now, false)
}

/// [`oracle_usable`] for a certificate carried from the old bundle: one not valid yet is
/// carried, as upstream carries it.
fn oracle_carriable(pem: &str, now: time::OffsetDateTime) -> bool {
    oracle(pem, now, true)
}

fn oracle(pem: &str, now: time::OffsetDateTime, ahead_ok: bool) -> bool {
    use x509_parser::public_key::PublicKey;
    let der = ::pem::parse(pem).unwrap().into_contents();
    let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
    let key_cert_sign = match x.key_usage().unwrap() {
        Some(ku) => ku.value.key_cert_sign(),
        None => true,
    };
    let spki = x.public_key();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    let key = match spki.parsed().unwrap() {
        PublicKey::RSA(rsa) => rsa.key_size() >= 2048,
        PublicKey::EC(_) => matches!(
            curve.as_deref(),
            Some("1.2.840.10045.3.1.7" | "1.3.132.0.34" | "1.3.132.0.35")
        ),
        _ => spki.algorithm.algorithm.to_id_string() == "1.3.101.112",
    };
    let signature = x.signature_algorithm.algorithm.to_id_string();
    let weak = [
        "1.2.840.113549.1.1.5",
        "1.2.840.10045.4.1",
        "1.2.840.113549.1.1.4",
    ];
    x.is_ca()
        && key_cert_sign
        && (x
            .validity()
            .is_valid_at(x509_parser::time::ASN1Time::from(now))
            || ahead_ok && x.validity().not_after.to_datetime() >= now)
        && key
        && !weak.contains(&signature.as_str())
}

/// Finding 10 of issue 10: NEW must be a usable CA, else refused naming the block and the
/// reason; OLD blocks failing the same test are skipped with that reason.
#[test]
fn unusable_cas_are_refused_as_new_and_skipped_as_old() {
    let (fx, unusable) = &*UNUSABLE_FX;
    let now = fx.now();
    let new = fx.new_ca_pem();
    for u in unusable {
        let err = bundle_ca_certs(u.pem.as_bytes(), b"", now)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("new CA block 1: unusable CA: "),
            "{}: {err}",
            u.what
        );
        let as_second = format!("{new}{}", u.pem);
        let err = bundle_ca_certs(as_second.as_bytes(), b"", now)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("new CA block 2: "), "{}: {err}", u.what);

        let out = bundle_ca_certs(new.as_bytes(), u.pem.as_bytes(), now).unwrap();
        if u.kind == "not-yet-valid" {
            // Carried as old, as upstream's bundleCACerts carries it (PR #8534).
            assert_eq!(out.report.carried.len(), 1, "{}", u.what);
            continue;
        }
        assert!(out.report.carried.is_empty(), "{}", u.what);
        assert_eq!(out.pem, new);
        let reason = serde_json::to_value(&out.report.skipped[0].reason).unwrap();
        let kind = if u.kind == "expired" {
            // Expiry is found first, by the parse every old block gets.
            &reason["kind"]
        } else {
            assert_eq!(reason["kind"], "unusable-ca", "{}: {reason}", u.what);
            &reason["defect"]["kind"]
        };
        let expected = if u.kind == "expired" {
            "expired"
        } else {
            u.kind
        };
        assert_eq!(kind, expected, "{}: {reason}", u.what);
    }
    // Ed25519 and P-384 CAs are usable.
    for alg in [
        certrotate_core::KeyAlgorithm::Ed25519,
        certrotate_core::KeyAlgorithm::EcdsaP384,
    ] {
        let ca = certrotate_core::Ca::generate(
            &certrotate_core::CaParams::new("ok").with_key_algorithm(alg),
            now,
            &mut certrotate_core::SeededEntropy::new(3),
        )
        .unwrap();
        bundle_ca_certs(ca.cert_pem().as_bytes(), b"", now).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Mixed usable and unusable CAs: as old, exactly the first `limit` usable (or only not
    /// yet valid) distinct ones are carried and every other one is skipped; as new, the first unusable block
    /// is the error. Every certificate of every bundle passes the x509-parser oracle.
    #[test]
    fn only_usable_cas_enter_a_bundle(
        picks in proptest::collection::vec((any::<bool>(), 0usize..8), 0..8),
        limit in 0usize..3,
    ) {
        let (fx, unusable) = &*UNUSABLE_FX;
        let now = fx.now();
        let new = fx.new_ca_pem();
        let pems: Vec<(bool, String)> = picks
            .iter()
            .map(|&(usable, i)| if usable {
                (true, fx.valid()[i % fx.valid().len()].cert_pem().to_owned())
            } else {
                (false, unusable[i % unusable.len()].pem.clone())
            })
            .collect();
        let old: String = pems.iter().map(|(_, p)| p.as_str()).collect();
        let out = BundlePolicy::new(limit).bundle(new.as_bytes(), old.as_bytes(), now).unwrap();
        let mut expected = Vec::new();
        for (i, (usable, pem)) in pems.iter().enumerate() {
            prop_assert_eq!(*usable, oracle_usable(pem, now));
            let carriable = oracle_carriable(pem, now);
            if carriable && expected.len() < limit && !expected.iter().any(|(_, p)| p == pem) {
                expected.push((i + 1, pem.clone()));
            }
        }
        let carried: Vec<usize> = out.report.carried.iter().map(|c| c.block).collect();
        prop_assert_eq!(carried, expected.iter().map(|(b, _)| *b).collect::<Vec<_>>());
        for block in ::pem::parse_many(&out.pem).unwrap() {
            prop_assert!(oracle_carriable(&::pem::encode(&block), now));
        }
        for s in &out.report.skipped {
            if !oracle_carriable(&pems[s.block - 1].1, now) {
                let unusable = matches!(s.reason, SkipReason::UnusableCa { .. } | SkipReason::Expired { .. } | SkipReason::BeyondLimit { .. });
                prop_assert!(unusable, "{s}");
            }
        }

        let as_new = format!("{new}{old}");
        match pems.iter().position(|(usable, _)| !usable) {
            Some(first) => {
                let err = bundle_ca_certs(as_new.as_bytes(), b"", now).unwrap_err().to_string();
                let expected = format!("new CA block {}: unusable CA: ", first + 2);
                prop_assert!(err.starts_with(&expected), "{}", err);
            }
            None => prop_assert!(bundle_ca_certs(as_new.as_bytes(), b"", now).is_ok()),
        }
    }
}
