//! A downstream project property-tests its own use of the bundling rule with certrotate's
//! strategies (feature `testing`).
//!
//! `cargo run --example bundle_in_tests --features testing`

use certrotate::core::testing::{BlockKind, Fixtures, old_bundle};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// The downstream code under test: it keeps at most two certificates in a trust bundle.
fn refresh_trust(new_ca: &str, old: &str, now: time::OffsetDateTime) -> String {
    certrotate::core::bundle_ca_certs(new_ca.as_bytes(), old.as_bytes(), now)
        .map(|b| b.pem)
        .unwrap_or_else(|_| new_ca.to_owned())
}

fn main() {
    let fx = Fixtures::new(7);
    let mut runner = TestRunner::new(Config::with_cases(64));
    runner
        .run(&old_bundle(&fx, 6), |old| {
            let out = refresh_trust(fx.new_ca_pem(), &old.pem, fx.now());
            let n = ::pem::parse_many(&out).map(|v| v.len()).unwrap_or(0);
            prop_assert!(n <= 2, "at most new + one old: {n}");
            prop_assert!(out.starts_with(fx.new_ca_pem()));
            let has_valid = old.kinds.iter().any(|k| matches!(k, BlockKind::Valid(_)));
            prop_assert_eq!(n == 2, has_valid);
            Ok(())
        })
        .expect("the property holds");
    println!("64 generated bundles checked");
}
