//! The trust gate on every store: steps that would break the trust invariant are refused
//! before any write, whatever the options (`force` included), and the error names each pair
//! and the reason; and `check` verifies every `tls.key`. Instantiated once per backend by
//! `trust_gate_suite!`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use certrotate_core::plan::wire::{KEY_TLS_CRT, KEY_TLS_KEY, KEY_TRUST};
use certrotate_core::plan::{ObjectRef, Observed, Phase, Strategy};
use certrotate_core::trust::{Outcome, Side, TrustFailure, TrustStore};
use certrotate_core::{
    BundlePolicy, KeyProblem, Origin, Profile, RotationPolicy, SeededEntropy, check,
};
use certrotate_kube::{
    Clock, Engine, Error, Event, ManualClock, RunMode, SecretStore, SecretUpdate, Store,
    StoreError, observe,
};

use super::{HOUR, NS, T0, engine, install, options, profile, secret};

/// The state of every Secret and webhook of `profile`, without versions (a store may bump
/// them on reads it answers from a cache; the content is what must not change).
async fn contents<S: Store>(store: &S, profile: &Profile) -> Observed {
    let mut o = observe(store, profile).await.unwrap();
    for s in o.secrets.values_mut() {
        s.version.clear();
    }
    for w in o.webhooks.values_mut() {
        w.version.clear();
    }
    o
}

/// The refusal of a run, or a panic saying what the run did instead.
fn refused(
    result: Result<certrotate_kube::RunReport, Error>,
) -> (String, Vec<certrotate_core::trust::PairCheck>) {
    match result {
        Err(Error::TrustWouldBreak { step, broken }) => {
            assert!(!broken.is_empty());
            (step.to_string(), broken)
        }
        Err(other) => panic!("expected a refusal, got the error {other}"),
        Ok(report) => panic!(
            "expected a refusal, the run went through: {:?}",
            report.events
        ),
    }
}

fn with(mut o: RotationPolicy, f: impl FnOnce(&mut RotationPolicy)) -> RotationPolicy {
    f(&mut o);
    o
}

/// `--max-carried 0` mid-rotation: the leaves step would write bundles with the new CA only
/// while peers still present leaves of the old one. Refused before any write, with
/// `--force` too; the same run with the default policy then finishes.
pub async fn max_carried_zero_mid_rotation_is_refused<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Trust);
    clock.advance(Duration::from_secs(301));

    let before = contents(&store, &profile()).await;
    let zero = with(options(true), |o| {
        o.bundle_policy = BundlePolicy::new(0);
        o.skip_too_soon = true;
        o.accept_clock_skew = true;
    });
    let err = engine(store.clone(), &clock, 3)
        .run(&profile(), &zero, RunMode::Once)
        .await;
    let message = err
        .as_ref()
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    let (step, broken) = refused(err);
    assert!(step.starts_with("leaves"), "{step}");
    assert_eq!(
        contents(&store, &profile()).await,
        before,
        "nothing written"
    );
    // Every old leaf (before the step) against every new-only ca.crt (after it); the CA
    // kept its name, so the store names the issuer but another key signed.
    assert_eq!(broken.len(), 9, "{broken:#?}");
    for pair in &broken {
        assert_eq!(
            (pair.leaf_side, pair.store_side),
            (Side::Before, Side::After)
        );
        assert!(matches!(pair.trusted_by, TrustStore::Component { .. }));
        assert!(
            matches!(
                &pair.outcome,
                Outcome::Failed {
                    reason: TrustFailure::UnknownIssuer { .. }
                }
            ),
            "{pair}"
        );
    }
    assert!(
        message.contains("would break trust for 9 pair(s)"),
        "{message}"
    );
    assert!(
        message.contains(&format!("leaf of secret {NS}/envoy-gateway (before)")),
        "{message}"
    );
    assert!(
        message.contains("ca.crt (after): FAIL: unknown issuer"),
        "{message}"
    );

    // With the default policy the rotation goes on.
    let report = engine(store.clone(), &clock, 4)
        .run(&profile(), &options(true), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Leaves);
}

/// `rotate --overwrite --max-carried 0` from a stable install: the next CA is persisted
/// (that write changes no trust), then the trust step is refused; nothing trusts no one.
pub async fn max_carried_zero_from_stable_is_refused_at_the_trust_step<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let installed = contents(&store, &profile()).await;
    let zero = with(options(true), |o| o.bundle_policy = BundlePolicy::new(0));
    let (step, broken) = refused(
        engine(store.clone(), &clock, 2)
            .run(&profile(), &zero, RunMode::Once)
            .await,
    );
    assert!(step.starts_with("trust"), "{step}");
    assert_eq!(broken.len(), 9, "{broken:#?}");
    let now = contents(&store, &profile()).await;
    for c in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
        assert_eq!(
            now.secrets[&secret(c)].data,
            installed.secrets[&secret(c)].data,
            "{c} untouched"
        );
    }
    super::assert_trusted(&now, T0 + HOUR, "after the refusal");
}

/// `--drop-old-ca` while a leaf still chains to the old CA (here: a Secret restored from a
/// backup after the leaves phase): retiring the old CA would leave that leaf untrusted
/// until the component reloads its new one. Refused, `--force` or not.
pub async fn drop_old_ca_while_a_leaf_chains_to_it_is_refused<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let envoy = secret("envoy");
    let backup = store.read_secret(&envoy).await.unwrap().unwrap();
    let drop = with(options(true), |o| o.drop_old_ca = true);
    let mut phase = Phase::Stable;
    for seed in 2..6 {
        phase = engine(store.clone(), &clock, seed)
            .run(&profile(), &drop, RunMode::Once)
            .await
            .unwrap()
            .phase;
        clock.advance(Duration::from_secs(301));
        if phase == Phase::Leaves {
            break;
        }
    }
    assert_eq!(phase, Phase::Leaves);

    // The old leaf comes back.
    let current = store.read_secret(&envoy).await.unwrap().unwrap();
    let mut restore = SecretUpdate::default();
    restore.data = BTreeMap::from([
        (
            KEY_TLS_CRT.to_owned(),
            Some(backup.data[KEY_TLS_CRT].clone()),
        ),
        (
            KEY_TLS_KEY.to_owned(),
            Some(backup.data[KEY_TLS_KEY].clone()),
        ),
    ]);
    store
        .update_secret(&envoy, &current.version, &restore)
        .await
        .unwrap();
    let before = contents(&store, &profile()).await;

    for force in [false, true] {
        let o = drop.clone().with_force(force);
        let (step, broken) = refused(
            engine(store.clone(), &clock, 10)
                .run(&profile(), &o, RunMode::Once)
                .await,
        );
        assert!(step.starts_with("retire"), "{step}");
        assert_eq!(
            contents(&store, &profile()).await,
            before,
            "nothing written"
        );
        // The old leaf of envoy, as it is now, against every ca.crt without the old CA.
        assert!(!broken.is_empty());
        for pair in &broken {
            assert_eq!(pair.leaf, envoy, "{pair}");
            assert_eq!(
                (pair.leaf_side, pair.store_side),
                (Side::Before, Side::After)
            );
        }
        assert_eq!(broken.len(), 3, "{broken:#?}");
    }
}

/// A custom profile whose `ca.crt` lost the issuer: one component's bundle was replaced
/// by a foreign CA. Until issue 22 the trust step bundled the next CA with that foreign one
/// (still lacking the CA of every leaf peers present) and the gate refused it on every
/// run, `--force` or not: a wedge. The pair was broken before the step, so the gate does
/// not blame the step for it, and the step repairs it: the bundle gets the current CA back
/// (carried before the foreign one, which the default policy then drops), and the rotation
/// ends with every pair trusted.
pub async fn a_custom_profile_whose_bundle_lost_the_issuer_is_repaired<S: Store>(store: S) {
    let profile = Profile::from_toml(
        r#"
name = "custom"
namespace = "tenant"
[ca]
secret = "tenant-ca"
common_name = "tenant-ca"
[[components]]
secret = "api"
common_name = "api"
dns_names = ["api.{namespace}.svc"]
[[components]]
secret = "worker"
common_name = "worker"
dns_names = ["worker.{namespace}.svc"]
"#,
        &Origin::new("test profile"),
    )
    .unwrap();
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    let engine = |seed: u64| {
        Engine::new(store.clone())
            .with_clock(clock.clone())
            .with_entropy(SeededEntropy::new(seed))
    };
    engine(1)
        .run(&profile, &options(false), RunMode::Once)
        .await
        .unwrap();
    clock.advance(HOUR);

    let foreign = certrotate_core::Ca::generate(
        &certrotate_core::CaParams::new("someone-else"),
        T0,
        &mut SeededEntropy::new(99),
    )
    .unwrap();
    let worker = ObjectRef::new("tenant", "worker");
    let current = store.read_secret(&worker).await.unwrap().unwrap();
    let mut update = SecretUpdate::default();
    update.data = BTreeMap::from([(
        KEY_TRUST.to_owned(),
        Some(foreign.cert_pem().as_bytes().to_vec()),
    )]);
    store
        .update_secret(&worker, &current.version, &update)
        .await
        .unwrap();

    let o = options(true).with_force(true);
    let report = engine(2)
        .run(&profile, &o, super::until_done())
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Stable, "{:?}", report.events);
    let observed = observe(&store, &profile).await.unwrap();
    let checked = check(&profile, &observed, clock.now(), Duration::ZERO).unwrap();
    assert!(checked.all_trusted(), "{checked:?}");
    let after = store.read_secret(&worker).await.unwrap().unwrap();
    assert!(
        !String::from_utf8_lossy(&after.data[KEY_TRUST])
            .contains(foreign.cert_pem().lines().nth(1).unwrap()),
        "the foreign CA is not carried before the current one"
    );
    // The trust step names the store it restored the current CA to.
    assert!(
        report.events.iter().any(|e| matches!(
            e,
            Event::SecretUpdated { secret, .. } if *secret == worker
        )),
        "{:?}",
        report.events
    );
}

/// `check` looks at every component's `tls.key`: another Secret's key, a truncated one and
/// none at all are each named, on every store.
pub async fn check_names_a_bad_tls_key<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let envoy = secret("envoy");
    let gateway_key = store
        .read_secret(&secret("envoy-gateway"))
        .await
        .unwrap()
        .unwrap()
        .data[KEY_TLS_KEY]
        .clone();
    let own_key = store.read_secret(&envoy).await.unwrap().unwrap().data[KEY_TLS_KEY].clone();
    // The value written to tls.key (None removes it), and what check must say.
    let cases = [
        (Some(gateway_key), Some(KeyProblem::Mismatch)),
        (Some(Vec::new()), Some(KeyProblem::Missing)),
        (
            Some(own_key[..own_key.len() - 40].to_vec()),
            Some(KeyProblem::Unreadable {
                reason: "unreadable PEM framing".into(),
            }),
        ),
        (None, Some(KeyProblem::Missing)),
        (Some(own_key), None),
    ];
    for (value, expected) in cases {
        let current = store.read_secret(&envoy).await.unwrap().unwrap();
        let mut update = SecretUpdate::default();
        let removes = value.is_none();
        update.data = BTreeMap::from([(KEY_TLS_KEY.to_owned(), value)]);
        match store.update_secret(&envoy, &current.version, &update).await {
            Ok(_) => {}
            // The API server refuses a `kubernetes.io/tls` Secret without `tls.key`: there
            // a missing key cannot happen (an empty one can: the cases above).
            Err(StoreError::Backend(e)) if removes => {
                let e = e.to_string();
                assert!(e.contains("Invalid") && e.contains("data[tls.key]"), "{e}");
                continue;
            }
            Err(e) => panic!("{e}"),
        }
        let observed = observe(&store, &profile()).await.unwrap();
        let report = check(&profile(), &observed, clock.now(), Duration::ZERO).unwrap();
        let Some(expected) = expected else {
            assert!(report.keys.is_empty(), "{:?}", report.keys);
            assert!(report.all_trusted());
            continue;
        };
        assert!(!report.all_trusted());
        assert_eq!(report.keys.len(), 1, "{:?}", report.keys);
        assert_eq!(report.keys[0].secret, format!("{NS}/envoy"));
        assert_eq!(report.keys[0].problem, expected);
    }
}

/// The single-step strategy is not refused (upstream parity), but before its one write
/// step the engine reports every pair that step puts at risk: each new leaf against each
/// peer's old `ca.crt`.
pub async fn single_step_reports_the_pairs_at_risk_before_writing<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let o = with(options(true), |o| o.strategy = Strategy::SingleStep);
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &o, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Stable);
    let at_risk = report
        .events
        .iter()
        .position(|e| matches!(e, Event::TrustAtRisk { .. }))
        .expect("a TrustAtRisk event");
    let first_leaf = report
        .events
        .iter()
        .position(|e| matches!(e, Event::SecretUpdated { keys, .. } if keys.iter().any(|k| k == KEY_TLS_CRT)))
        .expect("leaves written");
    assert!(
        at_risk < first_leaf,
        "reported before the writes: {:?}",
        report.events
    );
    let Event::TrustAtRisk { pairs } = &report.events[at_risk] else {
        unreachable!()
    };
    assert_eq!(pairs.len(), 9, "{pairs:#?}");
    for pair in pairs {
        assert_eq!(
            (pair.leaf_side, pair.store_side),
            (Side::After, Side::Before),
            "{pair}"
        );
        assert!(pair.breaks_trust());
    }
    // And the staged strategy, on the same store, reports none.
    clock.advance(HOUR);
    let report = engine(store.clone(), &clock, 3)
        .run(
            &profile(),
            &options(true).with_force(true),
            super::until_done(),
        )
        .await
        .unwrap();
    assert!(
        !report
            .events
            .iter()
            .any(|e| matches!(e, Event::TrustAtRisk { .. }))
    );
}

/// Instantiates the trust-gate tests for one backend; `$make` builds a fresh store.
#[macro_export]
macro_rules! trust_gate_suite {
    ($name:ident, $make:expr) => {
        $crate::trust_gate_suite!($name, $make, if true);
    };
    ($name:ident, $make:expr, if $run:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn max_carried_zero_mid_rotation_is_refused() {
                if !$run {
                    return;
                }
                contract::trust_gate::max_carried_zero_mid_rotation_is_refused($make).await;
            }
            #[tokio::test]
            async fn max_carried_zero_from_stable_is_refused_at_the_trust_step() {
                if !$run {
                    return;
                }
                contract::trust_gate::max_carried_zero_from_stable_is_refused_at_the_trust_step(
                    $make,
                )
                .await;
            }
            #[tokio::test]
            async fn drop_old_ca_while_a_leaf_chains_to_it_is_refused() {
                if !$run {
                    return;
                }
                contract::trust_gate::drop_old_ca_while_a_leaf_chains_to_it_is_refused($make).await;
            }
            #[tokio::test]
            async fn single_step_reports_the_pairs_at_risk_before_writing() {
                if !$run {
                    return;
                }
                contract::trust_gate::single_step_reports_the_pairs_at_risk_before_writing($make)
                    .await;
            }
            #[tokio::test]
            async fn check_names_a_bad_tls_key() {
                if !$run {
                    return;
                }
                contract::trust_gate::check_names_a_bad_tls_key($make).await;
            }
            #[tokio::test]
            async fn a_custom_profile_whose_bundle_lost_the_issuer_is_repaired() {
                if !$run {
                    return;
                }
                contract::trust_gate::a_custom_profile_whose_bundle_lost_the_issuer_is_repaired(
                    $make,
                )
                .await;
            }
        }
    };
}
