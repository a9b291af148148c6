//! The trust invariant over random profiles and options: 2–6 components, with and without
//! webhooks and restart-only workloads, any bundle size, with or without retiring the old
//! CA or rotating HMAC keys.
//!
//! - a staged `simulate` finds no failing combination at any step;
//! - the engine never writes a state that breaks the invariant: a store that checks it
//!   after every single write (not only per step) sees none;
//! - the control: bundles replaced by the new CA alone (what carrying no old CA does)
//!   break it, and the engine refuses that step, so these properties can fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hooked;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use certrotate_core::plan::wire::KEY_TRUST;
use certrotate_core::plan::{Phase, ProfileObjects, Strategy as RotationStrategy};
use certrotate_core::trust::{self, PairCheck};
use certrotate_core::{BundlePolicy, Ca, Origin, Profile, RotationPolicy, SeededEntropy, Trigger};
use certrotate_kube::simulate::{SimulateOptions, Start, simulate};
use certrotate_kube::{Clock, Engine, Error, ManualClock, MemoryStore, RunMode};
use hooked::Hooked;
use proptest::prelude::*;
use time::OffsetDateTime;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);
/// The install's seed, never one of a rotation's.
const INSTALL_SEED: u64 = 1_000_000;

/// A random profile, as the TOML a user would write.
#[derive(Clone, Debug)]
struct Shape {
    components: Vec<(bool, bool)>, // (wildcard SAN, IP SAN)
    webhooks: Vec<(bool, usize)>,  // (validating, webhooks in it)
    workloads: Vec<u8>,            // kind
    hmac: bool,
    algorithm: &'static str,
}

impl Shape {
    fn profile(&self) -> Profile {
        let mut t = String::from(
            "name = \"random\"\nnamespace = \"prop\"\n[ca]\nsecret = \"prop-ca\"\ncommon_name = \"prop-ca\"\n",
        );
        t += &format!("key_algorithm = \"{}\"\n", self.algorithm);
        t += &format!("[leaf]\nkey_algorithm = \"{}\"\n", self.algorithm);
        for (i, (wildcard, ip)) in self.components.iter().enumerate() {
            t += &format!(
                "[[components]]\nsecret = \"c{i}\"\ncommon_name = \"c{i}\"\ndns_names = [\"c{i}.{{namespace}}.svc\"{}]\n",
                if *wildcard {
                    format!(", \"*.c{i}.{{namespace}}.svc\"")
                } else {
                    String::new()
                }
            );
            if *ip {
                t += &format!("ip_addresses = [\"10.0.0.{}\"]\n", i + 1);
            }
        }
        for (i, kind) in self.workloads.iter().enumerate() {
            let kind = ["Deployment", "StatefulSet", "DaemonSet"][usize::from(*kind) % 3];
            t += &format!("[[workloads]]\nkind = \"{kind}\"\nname = \"w{i}\"\n");
        }
        for (i, (validating, _)) in self.webhooks.iter().enumerate() {
            let kind = if *validating {
                "validating"
            } else {
                "mutating"
            };
            t += &format!("[[webhooks]]\nkind = \"{kind}\"\nname = \"hook{i}.{{namespace}}\"\n");
        }
        if self.hmac {
            t += "[[hmac]]\nsecret = \"prop-hmac\"\n";
        }
        Profile::from_toml(&t, &Origin::new("random profile")).unwrap()
    }
}

fn shapes() -> impl Strategy<Value = Shape> {
    (
        proptest::collection::vec((any::<bool>(), any::<bool>()), 2..=6),
        proptest::collection::vec((any::<bool>(), 1usize..=2), 0..=2),
        proptest::collection::vec(any::<u8>(), 0..=2),
        any::<bool>(),
        prop_oneof![Just("ecdsa-p256"), Just("ed25519"), Just("ecdsa-p384")],
    )
        .prop_map(|(components, webhooks, workloads, hmac, algorithm)| Shape {
            components,
            webhooks,
            workloads,
            hmac,
            algorithm,
        })
}

fn plan_options() -> impl Strategy<Value = RotationPolicy> {
    (any::<bool>(), any::<bool>(), 1usize..=3, 0u64..=900).prop_map(
        |(drop_old_ca, rotate_hmac, carried, interval)| {
            let mut o = RotationPolicy::default();
            o.strategy = RotationStrategy::Staged;
            o.drop_old_ca = drop_old_ca;
            o.rotate_hmac = rotate_hmac;
            o.bundle_policy = BundlePolicy::new(carried);
            o.convergence_interval = Duration::from_secs(interval);
            o
        },
    )
}

/// An installed cluster: workloads, Secrets, and webhooks whose `caBundle`s hold the CA
/// (as certgen patches them).
async fn installed(profile: &Profile, shape: &Shape, clock: &Arc<ManualClock>) -> MemoryStore {
    let store = MemoryStore::new();
    let objects = ProfileObjects::of(profile);
    for w in &objects.workloads {
        store.insert_workload(w.clone());
    }
    let store = Arc::new(store);
    Engine::new(store.clone())
        .with_clock(clock.clone())
        // A seed outside the rotations' range (1..1000): a rotation seeded like the install
        // mints its "next" CA with the install's key and subject, which every old leaf
        // verifies against, so a bundle that carries no old CA would not break trust.
        .with_entropy(SeededEntropy::new(INSTALL_SEED))
        .run(&profile.clone(), &RotationPolicy::default(), RunMode::Once)
        .await
        .unwrap();
    let snapshot = store.snapshot();
    let ca = snapshot.secrets[&objects.ca_secret].data["ca.crt"].clone();
    for (webhook, (_, n)) in objects.webhooks.iter().zip(&shape.webhooks) {
        store.insert_webhook(webhook.clone(), vec![ca.clone(); *n]);
    }
    clock.advance(Duration::from_secs(3600));
    Arc::into_inner(store).unwrap()
}

fn failures(report: &trust::TrustReport) -> Vec<PairCheck> {
    report.failures().cloned().collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    // Each case installs and rotates a whole control plane (ECDSA/Ed25519 keys) and checks
    // every step: a few dozen cases keep `cargo test` well under half a minute.
    #![proptest_config(ProptestConfig {
        cases: 20,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn staged_rotations_keep_trust_and_the_control_breaks_it(
        shape in shapes(),
        options in plan_options(),
        seed in 1u64..1000,
    ) {
        runtime().block_on(async {
            let profile = shape.profile();
            let clock = Arc::new(ManualClock::new(T0));
            let start = installed(&profile, &shape, &clock).await;
            let before = start.snapshot();
            prop_assert!(
                trust::check_state(&profile, &before, clock.now()).failures().next().is_none(),
                "the install itself trusts"
            );

            // 1. A staged simulation from the installed state finds no failure.
            let mut sim_options = SimulateOptions::new(options.clone(), clock.now());
            sim_options.seed = seed;
            let sim = simulate(&profile, Start::Observed(before.clone()), &sim_options)
                .await
                .unwrap();
            let failed: Vec<String> = sim
                .failures()
                .map(|(s, c)| format!("step {} ({}): {c}", s.index, s.summary))
                .collect();
            prop_assert!(sim.passed(), "{:?}: {failed:#?}", sim.ending);
            let last = sim.steps.last().unwrap();
            prop_assert_eq!(last.to, Phase::Stable);

            // 2. The engine on a store that checks after every single write.
            // A store that records the state after every accepted write.
            let start = Arc::new(start);
            let states = Arc::new(Mutex::new(vec![(before.clone(), clock.now())]));
            let recording = Arc::new(Hooked::new(start.clone()).on_write({
                let (states, clock) = (states.clone(), clock.clone());
                move || states.lock().unwrap().push((start.snapshot(), clock.now()))
            }));
            let mut rotate = options.clone();
            rotate.trigger = Trigger::Always;
            let report = Engine::new(recording.clone())
                .with_clock(clock.clone())
                .with_entropy(SeededEntropy::new(seed))
                .run(&profile.clone(), &rotate, RunMode::UntilDone { timeout: Duration::from_secs(86_400) })
                .await
                .unwrap();
            prop_assert_eq!(report.phase, Phase::Stable);
            let states = states.lock().unwrap().clone();
            prop_assert!(states.len() > 3, "a rotation writes: {}", states.len());
            for (i, pair) in states.windows(2).enumerate() {
                let step = trust::check_step(&profile, &pair[0].0, &pair[1].0, pair[1].1);
                let f = failures(&step);
                prop_assert!(f.is_empty(), "write {}: {f:#?}", i + 1);
            }

            // 3. The control: every bundle replaced by a new CA alone, leaves unchanged.
            let next = Ca::generate(&profile.ca_params(), clock.now(), &mut SeededEntropy::new(seed + 7))
                .unwrap();
            let only_new = next.cert_pem().as_bytes().to_vec();
            let mut control = before.clone();
            for secret in &ProfileObjects::of(&profile).components {
                control.secrets.get_mut(secret).unwrap().data.insert(KEY_TRUST.into(), only_new.clone());
            }
            for w in control.webhooks.values_mut() {
                for b in &mut w.ca_bundles {
                    b.clone_from(&only_new);
                }
            }
            let broken = trust::check_step(&profile, &before, &control, clock.now());
            let n = profile.components.len();
            let stores = n + shape.webhooks.iter().map(|(_, k)| k).sum::<usize>();
            prop_assert!(!broken.keeps_trust());
            prop_assert_eq!(broken.broken().count(), n * stores, "every leaf by every store");

            // And the engine refuses to carry no old CA.
            let mut zero = options.clone();
            zero.trigger = Trigger::Always;
            zero.bundle_policy = BundlePolicy::new(0);
            let fresh = installed(&profile, &shape, &Arc::new(ManualClock::new(T0))).await;
            let err = Engine::new(fresh)
                .with_clock(ManualClock::new(T0 + Duration::from_secs(3600)))
                .with_entropy(SeededEntropy::new(seed))
                .run(&profile.clone(), &zero, RunMode::UntilDone { timeout: Duration::from_secs(86_400) })
                .await;
            prop_assert!(matches!(err, Err(Error::TrustWouldBreak { .. })), "{err:?}");
            Ok(())
        })?;
    }
}
