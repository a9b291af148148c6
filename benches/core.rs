//! Core benchmarks. The clock is pinned (a fixed `now`) so expiry decisions, and so the
//! work done, are the same on every run; entropy is seeded so inputs are identical too.
//!
//! `cargo bench --bench core`

use std::hint::black_box;
use std::time::Duration;

use certrotate::core::plan::Observed;
use certrotate::core::{
    Ca, CaParams, KeyAlgorithm, LeafParams, Origin, Profile, RotationPolicy, SeededEntropy,
    SystemEntropy, Trigger, bundle_ca_certs, inspect_pem, plan,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);

/// `n` distinct CA certificates as PEM, the first `expired` of them expired at NOW.
fn cas(n: usize, expired: usize, seed: u64) -> String {
    let mut entropy = SeededEntropy::new(seed);
    let mut out = String::new();
    for i in 0..n {
        let issued = if i < expired {
            NOW - time::Duration::days(400)
        } else {
            NOW
        };
        let params =
            CaParams::new(format!("ca-{i}")).with_validity(Duration::from_secs(365 * 86_400));
        out.push_str(
            Ca::generate(&params, issued, &mut entropy)
                .expect("CA")
                .cert_pem(),
        );
    }
    out
}

fn generation(c: &mut Criterion) {
    let mut g = c.benchmark_group("generate");
    g.sample_size(20);
    for alg in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa2048,
    ] {
        let params = CaParams::new("ca").with_key_algorithm(alg);
        g.bench_with_input(BenchmarkId::new("ca", alg), &params, |b, p| {
            b.iter(|| Ca::generate(p, NOW, &mut SystemEntropy).expect("CA"))
        });
        let ca = Ca::generate(&params, NOW, &mut SystemEntropy).expect("CA");
        let leaf = LeafParams::new("envoy", vec!["envoy.ns.svc".into()]).with_key_algorithm(alg);
        g.bench_with_input(BenchmarkId::new("leaf", alg), &leaf, |b, p| {
            b.iter(|| ca.issue_leaf(p, NOW, &mut SystemEntropy).expect("leaf"))
        });
    }
    // The envoy-gateway profile's full set: CA + 3 leaves + HMAC, as a first-install plan.
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let mut profile = Profile::envoy_gateway("envoy-gateway-system");
        profile.set_key_algorithm(alg);
        g.bench_with_input(BenchmarkId::new("full_set", alg), &profile, |b, p| {
            b.iter(|| {
                plan(
                    p,
                    &Observed::default(),
                    &RotationPolicy::default(),
                    NOW,
                    &mut SystemEntropy,
                )
                .expect("plan")
            })
        });
    }
    g.finish();
}

fn bundling(c: &mut Criterion) {
    let mut g = c.benchmark_group("bundle_ca_certs");
    for n in [1usize, 100, 10_000] {
        let new = cas(n, 0, 1);
        let small_old = cas(1, 0, 2);
        g.bench_function(BenchmarkId::new("new", n), |b| {
            b.iter(|| {
                bundle_ca_certs(
                    black_box(new.as_bytes()),
                    black_box(small_old.as_bytes()),
                    NOW,
                )
                .expect("bundle")
            })
        });
        // The peer in the same run: what a straightforward implementation does (`pem`
        // decodes every block, x509-parser parses each, dedupe by DER, drop the expired),
        // like the Python peer's `load_pem_x509_certificates`.
        g.bench_function(BenchmarkId::new("peer_parse_all_new", n), |b| {
            b.iter(|| naive_bundle(black_box(&new), black_box(&small_old)))
        });
        // Half of old expired, at the front: the rule must skip them before it carries one.
        let old = cas(n, n / 2, 3);
        let small_new = cas(1, 0, 4);
        g.bench_function(BenchmarkId::new("old_half_expired", n), |b| {
            b.iter(|| {
                bundle_ca_certs(
                    black_box(small_new.as_bytes()),
                    black_box(old.as_bytes()),
                    NOW,
                )
                .expect("bundle")
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("inspect");
    g.sample_size(20);
    let big = cas(10_000, 0, 5);
    g.bench_function("10000", |b| {
        b.iter(|| inspect_pem(black_box(big.as_bytes()), &Origin::new("b"), NOW).expect("inspect"))
    });
    g.finish();
}

/// The naive bundling used as the in-process peer.
fn naive_bundle(new: &str, old: &str) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let blocks = pem::parse_many(new).expect("pem");
    let old_blocks = pem::parse_many(old).expect("pem");
    for (i, block) in blocks.iter().chain(old_blocks.iter()).enumerate() {
        let (_, cert) = x509_parser::parse_x509_certificate(block.contents()).expect("x509");
        let keep = i < blocks.len() || cert.validity().not_after.to_datetime() >= NOW;
        if keep && seen.insert(block.contents().to_vec()) {
            out.push(block.clone());
        }
    }
    pem::encode_many(&out)
}

fn planning(c: &mut Criterion) {
    let profile = Profile::envoy_gateway("envoy-gateway-system");
    let mut entropy = SeededEntropy::new(9);
    let install = plan(
        &profile,
        &Observed::default(),
        &RotationPolicy::default(),
        NOW,
        &mut entropy,
    )
    .expect("plan");
    // Apply the install to an observed state.
    let mut observed = Observed::default();
    for step in &install.steps {
        if let certrotate::core::plan::Step::Secret(s) = step {
            let data = s
                .data
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_ref()?.expose_secret().to_vec())))
                .collect();
            let mut o = certrotate::core::plan::ObservedSecret::new(&s.secret_type, data, "1");
            o.annotations = s
                .annotations
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                .collect();
            observed.secrets.insert(s.secret.clone(), o);
        }
    }
    let mut g = c.benchmark_group("plan");
    g.bench_function("unchanged_rerun", |b| {
        b.iter(|| {
            plan(
                &profile,
                &observed,
                &RotationPolicy::default(),
                NOW,
                &mut entropy,
            )
            .expect("plan")
        })
    });
    let mut rotate = RotationPolicy::default();
    rotate.trigger = Trigger::Always;
    g.bench_function("start_rotation", |b| {
        b.iter(|| plan(&profile, &observed, &rotate, NOW, &mut entropy).expect("plan"))
    });
    g.finish();
}

criterion_group!(benches, generation, bundling, planning);
criterion_main!(benches);
