#![allow(clippy::unwrap_used)]

use time::macros::datetime;

use super::*;
use crate::error::Origin;
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

/// Issue 24: a profile names its servers (a Service and port in Kubernetes mode, an address
/// in local mode), loaded from YAML, each applying in its own mode.
#[test]
fn a_profile_names_its_servers_by_service_or_address() {
    let profile = Profile::from_yaml(
        r#"
name: custom
namespace: tenant
ca: {secret: tenant-ca, common_name: tenant-ca}
components:
  - secret: api
    common_name: api
    dns_names: ["api.{namespace}.svc"]
    endpoints:
      - {service: api, port: 8443}
      - {address: "[::1]:8443"}
  - secret: db
    common_name: db
    ip_addresses: ["10.0.0.7"]
    endpoints:
      - {address: "db.example:5432"}
"#,
        &Origin::new("test"),
    )
    .unwrap();
    assert_eq!(
        service_ports(&profile),
        [ServicePort {
            secret: ObjectRef::new("tenant", "api"),
            service: ObjectRef::new("tenant", "api"),
            port: 8443,
        }]
    );
    let literal = address_endpoints(&profile).unwrap();
    let shown: Vec<(String, String)> = literal
        .iter()
        .map(|e| (e.address.clone(), e.server_name.clone()))
        .collect();
    assert_eq!(
        shown,
        [
            ("[::1]:8443".to_owned(), "api.tenant.svc".to_owned()),
            ("db.example:5432".to_owned(), "10.0.0.7".to_owned()),
        ]
    );
    // A pod found through the Service: its own address (IPv6 in brackets), named.
    let pod = service_ports(&profile)[0]
        .endpoint(&profile, "fd00::7".parse().unwrap(), Some("api-7d9f"))
        .unwrap();
    assert_eq!(pod.address, "[fd00::7]:8443");
    assert_eq!(
        pod.to_string(),
        "pod api-7d9f ([fd00::7]:8443, secret tenant/api)"
    );
}

/// Each malformed endpoint is refused naming its component and field.
#[test]
fn a_malformed_endpoint_is_refused_naming_its_component() {
    let load = |endpoint: &str| {
        let text = format!(
            "name: p\nnamespace: ns\nca: {{secret: p-ca, common_name: p}}\ncomponents:\n  - \
             secret: api\n    common_name: api\n    dns_names: [api]\n    endpoints: [{endpoint}]\n"
        );
        Profile::from_yaml(&text, &Origin::new("p.yaml"))
            .unwrap_err()
            .to_string()
    };
    for (endpoint, says) in [
        ("{service: api}", "a service needs its port"),
        ("{port: 8443}", "a port needs its service"),
        ("{}", "give either service and port, or address"),
        ("{service: api, port: 1, address: \"a:1\"}", "not both"),
        ("{service: API_, port: 8443}", "service:"),
        ("{service: api, port: 0}", "port: must be 1 to 65535"),
        ("{address: \"::1:8443\"}", "in brackets"),
        ("{address: \"api\"}", "has no :PORT"),
    ] {
        let err = load(endpoint);
        assert!(
            err.contains("components[0].endpoints[0]")
                && err.contains("\"api\"")
                && err.contains(says),
            "{endpoint}: {err}"
        );
    }
    // A field no endpoint has is refused by name.
    let err = load("{service: api, port: 1, protocol: tcp}");
    assert!(err.contains("protocol"), "{err}");
}

/// The built-in profile declares upstream's serving ports: the controller's on Service
/// `envoy-gateway` (Secret `envoy-gateway`), the rate limit's on `envoy-ratelimit`.
#[test]
fn envoy_gateway_declares_upstreams_serving_ports() {
    let profile = Profile::envoy_gateway("eg");
    let ports: Vec<(String, String, u16)> = service_ports(&profile)
        .into_iter()
        .map(|s| (s.secret.name, s.service.name, s.port))
        .collect();
    let expect = |secret: &str, service: &str, port| (secret.to_owned(), service.to_owned(), port);
    assert_eq!(
        ports,
        [
            expect("envoy-gateway", "envoy-gateway", 18000),
            expect("envoy-gateway", "envoy-gateway", 18001),
            expect("envoy-gateway", "envoy-gateway", 18002),
            expect("envoy-gateway", "envoy-gateway", 9443),
            expect("envoy-rate-limit", "envoy-ratelimit", 8081),
        ]
    );
    assert!(address_endpoints(&profile).unwrap().is_empty());
    profile.validate().unwrap();
}

/// Probes that reached no pod say nothing about the pods: each failed to connect, or what
/// answered shows nothing of the profile's CAs (a proxy in between). One pod that shows
/// ours makes every failure count.
#[test]
fn none_reached_when_every_probe_failed_to_connect_or_met_a_stranger() {
    let g = generations();
    let ours = CaGenerations {
        current: vec![CaName::subject_of(g.old.cert_der()).unwrap()],
        next: vec![CaName::subject_of(g.next.cert_der()).unwrap()],
    };
    let refused = || ProbeFailure {
        kind: ProbeFailureKind::Connect,
        detail: "refused".into(),
    };
    let handshake = ProbeFailure {
        kind: ProbeFailureKind::Handshake,
        detail: "not TLS".into(),
    };
    // A proxy: its own CA, asking no client certificate.
    let mut e = SeededEntropy::new(9);
    let stranger_ca = Ca::generate(&CaParams::new("egress-proxy"), NOW, &mut e).unwrap();
    let stranger_leaf = ::pem::parse(
        stranger_ca
            .issue_leaf(&LeafParams::new("x", vec!["x".into()]), NOW, &mut e)
            .unwrap()
            .cert_pem,
    )
    .unwrap()
    .into_contents();
    let stranger = Evidence {
        client_auth: ClientAuth::NotRequested,
        chain: vec![stranger_leaf],
        ended: HandshakeEnd::Completed,
    };
    let all_failed: Vec<(Endpoint, Result<Evidence, ProbeFailure>)> = vec![
        (endpoint(1), Err(failed())),
        (endpoint(2), Err(refused())),
        (endpoint(3), Ok(stranger.clone())),
    ];
    assert!(none_reached(&all_failed, &ours));
    let one_reached = vec![
        (endpoint(1), Err(refused())),
        (endpoint(2), Ok(requested(&[&g.old], &g.old_leaf))),
    ];
    assert!(!none_reached(&one_reached, &ours));
    // A pod that lists our CA though its leaf is a stranger's is ours.
    let mut listing = stranger;
    listing.client_auth = ClientAuth::Requested {
        ca_names: vec![CaName::subject_of(g.next.cert_der()).unwrap()],
    };
    assert!(!none_reached(
        &[(endpoint(1), Ok::<_, ProbeFailure>(listing))],
        &ours
    ));
    assert!(!none_reached(&[(endpoint(1), Err(handshake))], &ours));
    assert!(!none_reached::<ProbeFailure>(&[], &ours));
}
