#![allow(clippy::unwrap_used)]

use time::macros::datetime;

use super::*;
use crate::{Ca, CaParams, LeafParams, SeededEntropy};

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

struct Generations {
    old: Ca,
    next: Ca,
    old_leaf: Vec<u8>,
    new_leaf: Vec<u8>,
}

fn generations() -> Generations {
    let mut e = SeededEntropy::new(3);
    // Same common name: only the serial number in the subject tells them apart.
    let old = Ca::generate(&CaParams::new("envoy-gateway"), NOW, &mut e).unwrap();
    let next = Ca::generate(&CaParams::new("envoy-gateway"), NOW, &mut e).unwrap();
    let params = LeafParams::new("envoy-gateway", vec!["envoy-gateway".into()]);
    let der = |pem: &str| ::pem::parse(pem).unwrap().into_contents();
    Generations {
        old_leaf: der(&old.issue_leaf(&params, NOW, &mut e).unwrap().cert_pem),
        new_leaf: der(&next.issue_leaf(&params, NOW, &mut e).unwrap().cert_pem),
        old,
        next,
    }
}

fn endpoint(port: u16) -> Endpoint {
    Endpoint::new(
        ObjectRef::new("ns", "envoy-gateway"),
        format!("127.0.0.1:{port}"),
        "envoy-gateway",
    )
}

fn requested(cas: &[&Ca], leaf: &[u8]) -> Evidence {
    Evidence {
        client_auth: ClientAuth::Requested {
            ca_names: cas
                .iter()
                .map(|c| CaName::subject_of(c.cert_der()).unwrap())
                .collect(),
        },
        chain: vec![leaf.to_vec()],
        ended: HandshakeEnd::Completed,
    }
}

fn failed() -> ProbeFailure {
    ProbeFailure {
        kind: ProbeFailureKind::ConnectTimeout,
        detail: "after 1s".into(),
    }
}

#[test]
fn generations_of_one_common_name_have_distinct_names() {
    let g = generations();
    let old = CaName::subject_of(g.old.cert_der()).unwrap();
    let next = CaName::subject_of(g.next.cert_der()).unwrap();
    assert_ne!(old, next);
    let shown = next.to_string();
    assert!(shown.contains("CN=envoy-gateway"), "{shown}");
    assert!(shown.to_lowercase().contains("serialnumber="), "{shown}");
    let pem = format!("{}{}", g.next.cert_pem(), g.old.cert_pem());
    assert_eq!(
        CaName::subjects_of_pem(pem.as_bytes(), &Origin::new("t")).unwrap(),
        [next, old]
    );
}

#[test]
fn trust_converges_only_when_every_requesting_endpoint_lists_next() {
    let g = generations();
    let next = CaName::subject_of(g.next.cert_der()).unwrap();
    let old = CaName::subject_of(g.old.cert_der()).unwrap();
    let mut probes: Vec<(Endpoint, Result<Evidence, ProbeFailure>)> = vec![
        (endpoint(1), Ok(requested(&[&g.next, &g.old], &g.old_leaf))),
        (endpoint(2), Ok(requested(&[&g.old], &g.old_leaf))),
        (
            endpoint(3),
            Ok(Evidence {
                client_auth: ClientAuth::NotRequested,
                chain: vec![g.old_leaf.clone()],
                ended: HandshakeEnd::Completed,
            }),
        ),
    ];
    let j = judge_trust(&probes, &next);
    assert!(!j.converged());
    assert_eq!(j.agreeing, [endpoint(1)]);
    assert_eq!(j.silent, [endpoint(3)]);
    assert_eq!(
        j.lagging,
        [Lagging {
            endpoint: endpoint(2),
            shows: Shows::TrustWithoutNext {
                ca_names: vec![old.clone()]
            }
        }]
    );
    assert!(
        j.lagging[0]
            .to_string()
            .starts_with("127.0.0.1:2 (secret ns/envoy-gateway): trusts only [CN=envoy-gateway")
    );

    // The stuck one reloads: converged.
    probes[1].1 = Ok(requested(&[&g.old, &g.next], &g.old_leaf));
    let j = judge_trust(&probes, &next);
    assert!(j.converged());
    assert_eq!(j.agreeing.len(), 2);

    // A server listing nothing at all does not list the next CA.
    probes[1].1 = Ok(requested(&[], &g.old_leaf));
    assert!(!judge_trust(&probes, &next).converged());
}

#[test]
fn a_failed_probe_lags_under_both_rules() {
    let g = generations();
    let next = CaName::subject_of(g.next.cert_der()).unwrap();
    let probes = vec![(endpoint(9), Err(failed()))];
    let expected = [Lagging {
        endpoint: endpoint(9),
        shows: Shows::Nothing { failure: failed() },
    }];
    let trust = judge_trust(&probes, &next);
    assert_eq!(trust.lagging, expected);
    let leaves = judge_leaves(&probes, g.next.cert_pem().as_bytes(), NOW);
    assert_eq!(leaves.lagging, expected);
    assert_eq!(
        expected[0].to_string(),
        "127.0.0.1:9 (secret ns/envoy-gateway): no evidence: connect timed out: after 1s"
    );
}

#[test]
fn leaves_converge_only_when_every_endpoint_serves_a_leaf_of_the_new_ca() {
    let g = generations();
    let new_ca = g.next.cert_pem().as_bytes();
    let old_subject = CaName::subject_of(g.old.cert_der()).unwrap();
    let mut probes: Vec<(Endpoint, Result<Evidence, ProbeFailure>)> = vec![
        (endpoint(1), Ok(requested(&[&g.next], &g.new_leaf))),
        (endpoint(2), Ok(requested(&[&g.next, &g.old], &g.old_leaf))),
    ];
    let j = judge_leaves(&probes, new_ca, NOW);
    assert_eq!(j.agreeing, [endpoint(1)]);
    assert_eq!(j.lagging.len(), 1);
    match &j.lagging[0].shows {
        Shows::LeafNotFromNew { issuer, reason } => {
            assert_eq!(issuer.as_ref(), Some(&old_subject));
            assert!(
                matches!(reason, TrustFailure::UnknownIssuer { .. }),
                "{reason:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A bundle holding the old CA too would verify the old leaf: the rule is given the new
    // CA alone, and a leaf of the old one lags however the servers trust.
    probes[1].1 = Ok(requested(&[&g.next], &g.new_leaf));
    assert!(judge_leaves(&probes, new_ca, NOW).converged());

    // No chain at all lags too (a TLS server always presents one; the rule does not assume it).
    probes[1].1 = Ok(Evidence {
        client_auth: ClientAuth::NotRequested,
        chain: vec![],
        ended: HandshakeEnd::Completed,
    });
    assert!(!judge_leaves(&probes, new_ca, NOW).converged());
}

#[test]
fn endpoint_names_come_from_the_profile() {
    let p = Profile::envoy_gateway("eg");
    let e = Endpoint::for_component(&p, "envoy-gateway", "10.0.0.1:18000").unwrap();
    assert_eq!(e.server_name, "envoy-gateway");
    assert_eq!(e.secret, ObjectRef::new("eg", "envoy-gateway"));
    // `*.eg` cannot be sent as SNI: a name it covers is.
    let e = Endpoint::for_component(&p, "envoy-rate-limit", "[::1]:8081").unwrap();
    assert_eq!(e.server_name, "envoy-rate-limit.eg");
    let err = Endpoint::for_component(&p, "nope", "h:1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no component Secret nope"), "{err}");
    assert!(
        err.contains("envoy-gateway, envoy, envoy-rate-limit"),
        "{err}"
    );
}

#[test]
fn an_unreadable_name_is_shown_by_size() {
    assert_eq!(
        CaName::from_der(vec![1, 2, 3]).to_string(),
        "<unreadable name of 3 bytes>"
    );
}

#[test]
fn generations_are_read_from_the_ca_secret() {
    use crate::plan::{KEY_CA_CRT, KEY_NEXT_CA_CRT, Observed, ObservedSecret, ProfileObjects};
    let g = generations();
    let profile = Profile::envoy_gateway("eg");
    let mut observed = Observed::default();
    let mut secret = ObservedSecret::default();
    secret
        .data
        .insert(KEY_CA_CRT.into(), g.old.cert_pem().as_bytes().to_vec());
    secret.data.insert(
        KEY_NEXT_CA_CRT.into(),
        g.next.cert_pem().as_bytes().to_vec(),
    );
    observed
        .secrets
        .insert(ProfileObjects::of(&profile).ca_secret, secret);
    let gens = CaGenerations::of(&profile, &observed);
    let old = CaName::subject_of(g.old.cert_der()).unwrap();
    let next = CaName::subject_of(g.next.cert_der()).unwrap();
    assert_eq!(gens.role(&old), Some(CaRole::Current));
    assert_eq!(gens.role(&next), Some(CaRole::Next));
    assert_eq!(gens.role(&CaName::from_der(vec![0x30, 0])), None);
    assert_eq!(
        CaGenerations::of(&profile, &Observed::default()),
        CaGenerations::default()
    );
}
