//! One verdict for every (leaf, trust store) pair, whichever entry point judges it: `check`
//! (what `certrotate check`, `status` and the metrics report), the trust check the gate and
//! `simulate` run (`trust::check_state`, and `trust::check_step` for the state after a
//! step), and `verify_chain` (what `certrotate inspect` says of a leaf against a bundle).
//! Random states of the Envoy Gateway profile: each component's leaf from a valid, another
//! valid, an expired or a not-yet-valid CA, each `ca.crt` and the webhook's `caBundle` a
//! random sequence of those CAs (duplicates and empty ones included).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use certrotate_core::plan::wire::{KEY_TLS_CRT, KEY_TLS_KEY, KEY_TRUST};
use certrotate_core::plan::{ObjectRef, Observed, ObservedSecret, ObservedWebhook, ProfileObjects};
use certrotate_core::trust::{self, Side, TrustStore};
use certrotate_core::{
    Ca, CaParams, ChainVerdict, Origin, Profile, SeededEntropy, check, verify_chain,
};
use proptest::prelude::*;
use time::OffsetDateTime;
use time::macros::datetime;

const NS: &str = "envoy-gateway-system";
const NOW: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);
const DAY: Duration = Duration::from_secs(86_400);

/// The CAs a state is made of: two valid, one expired, one not yet valid.
const CAS: usize = 4;

struct Pool {
    profile: Profile,
    cas: Vec<Ca>,
    /// `leaves[ca][component]`: (certificate, key) PEM.
    leaves: Vec<Vec<(String, String)>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let profile = Profile::envoy_gateway(NS);
        let mut entropy = SeededEntropy::new(24);
        let made_at = [
            NOW,
            NOW - 3 * DAY,
            // Five years and a day ago, for five years: expired yesterday.
            NOW - 1827 * DAY,
            // Back-dated one day from a week ahead: valid in six days.
            NOW + 7 * DAY,
        ];
        let cas: Vec<Ca> = made_at
            .iter()
            .enumerate()
            .map(|(i, at)| {
                let mut params = CaParams::new(format!("ca-{i}"));
                params.validity = 1826 * DAY;
                Ca::generate(&params, *at, &mut entropy).unwrap()
            })
            .collect();
        let leaves = cas
            .iter()
            .zip(made_at)
            .map(|(ca, at)| {
                profile
                    .components
                    .iter()
                    .map(|c| {
                        let leaf = ca
                            .issue_leaf(&profile.leaf_params(c).unwrap(), at, &mut entropy)
                            .unwrap();
                        (leaf.cert_pem, leaf.key_pem.expose_secret().to_owned())
                    })
                    .collect()
            })
            .collect();
        let mut leaves: Vec<Vec<(String, String)>> = leaves;
        // And leaves of the first CA for names no component serves.
        let mut elsewhere =
            certrotate_core::LeafParams::new("elsewhere", vec!["elsewhere.example".to_owned()]);
        elsewhere.validity = 365 * DAY;
        leaves.push(
            profile
                .components
                .iter()
                .map(|_| {
                    let leaf = cas[0].issue_leaf(&elsewhere, NOW, &mut entropy).unwrap();
                    (leaf.cert_pem, leaf.key_pem.expose_secret().to_owned())
                })
                .collect(),
        );
        Pool {
            profile,
            cas,
            leaves,
        }
    })
}

/// Kinds of leaf: one per CA, and [`WRONG_NAMES`].
const LEAVES: usize = CAS + 1;
/// A leaf of the first CA for names the component does not serve.
const WRONG_NAMES: usize = CAS;

/// One component: the kind of its leaf, and its `ca.crt` as CA indices.
type ComponentChoice = (usize, Vec<usize>);

fn bundle(pool: &Pool, cas: &[usize]) -> Vec<u8> {
    cas.iter()
        .map(|&i| pool.cas[i].cert_pem())
        .collect::<String>()
        .into_bytes()
}

fn state(choices: &[ComponentChoice], webhook: &[usize]) -> Observed {
    let pool = pool();
    let mut observed = Observed::default();
    for (c, (issuer, trust)) in pool.profile.components.iter().zip(choices) {
        let (crt, key) =
            &pool.leaves[*issuer][pool.profile.components.iter().position(|x| x == c).unwrap()];
        let data = BTreeMap::from([
            (KEY_TRUST.to_owned(), bundle(pool, trust)),
            (KEY_TLS_CRT.to_owned(), crt.clone().into_bytes()),
            (KEY_TLS_KEY.to_owned(), key.clone().into_bytes()),
        ]);
        let mut secret = ObservedSecret::default();
        secret.data = data;
        secret.version = "1".into();
        observed
            .secrets
            .insert(ObjectRef::new(NS, &c.secret), secret);
    }
    for w in ProfileObjects::of(&pool.profile).webhooks {
        observed
            .webhooks
            .insert(w, ObservedWebhook::new(vec![bundle(pool, webhook)], "1"));
    }
    observed
}

fn store_pem<'o>(observed: &'o Observed, store: &TrustStore) -> &'o [u8] {
    match store {
        TrustStore::Component { secret } => &observed.secrets[secret].data[KEY_TRUST],
        TrustStore::Webhook { webhook, index } => &observed.webhooks[webhook].ca_bundles[index - 1],
    }
}

fn component() -> impl Strategy<Value = ComponentChoice> {
    (0..LEAVES, prop::collection::vec(0..CAS, 0..4))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_entry_point_gives_a_pair_one_verdict(
        choices in prop::collection::vec(component(), 3),
        webhook in prop::collection::vec(0..CAS, 0..4),
        before in prop::collection::vec(component(), 3),
    ) {
        let pool = pool();
        let observed = state(&choices, &webhook);
        let report = check(&pool.profile, &observed, NOW, 30 * DAY).unwrap();
        let judged = trust::check_state(&pool.profile, &observed, NOW);
        // The gate judges a step: the state after it, against a state before.
        let step = trust::check_step(&pool.profile, &state(&before, &webhook), &observed, NOW);

        let stores_with_certs = observed.secrets.values().filter(|s| !s.data[KEY_TRUST].is_empty()).count()
            + usize::from(!webhook.is_empty());
        prop_assert_eq!(report.pairs.len(), 3 * stores_with_certs);
        for pair in &report.pairs {
            let context = format!("{} by {}", pair.leaf, pair.trusted_by);
            // The trust check of the gate and `simulate`, on this state alone.
            let gate = judged
                .checks
                .iter()
                .find(|c| c.leaf == pair.leaf_secret && c.trusted_by == pair.store)
                .unwrap();
            prop_assert_eq!(
                pair.verdict.is_trusted(),
                gate.outcome.is_trusted(),
                "check and the trust check disagree on {}: {:?} / {:?}",
                context,
                pair.verdict,
                gate.outcome
            );
            // The gate's step check, for the leaf and store as they are after the step.
            let after_after = step.checks.iter().find(|c| {
                c.leaf == pair.leaf_secret
                    && c.trusted_by == pair.store
                    && latest(&step, c.leaf.clone(), c.trusted_by.clone()) == (c.leaf_side, c.store_side)
            });
            if let Some(c) = after_after {
                prop_assert_eq!(
                    c.outcome.is_trusted(),
                    pair.verdict.is_trusted(),
                    "the gate's step check and check disagree on {}",
                    context
                );
            }
            // `inspect` judges two PEM values, for no names: the same verdict but where
            // the leaf does not serve its component's names, which only the profile knows.
            let kind = choices[pool
                .profile
                .components
                .iter()
                .position(|c| c.secret == pair.leaf_secret.name)
                .unwrap()]
            .0;
            if kind == WRONG_NAMES && matches!(
                &gate.outcome,
                trust::Outcome::Failed { reason: trust::TrustFailure::NameMismatch { .. } }
            ) {
                continue;
            }
            let leaf_pem = &observed.secrets[&pair.leaf_secret].data[KEY_TLS_CRT];
            let origin = Origin::new(context.clone());
            let inspected = verify_chain(leaf_pem, &origin, store_pem(&observed, &pair.store), &origin, NOW).unwrap();
            prop_assert_eq!(
                matches!(inspected, ChainVerdict::Trusted { .. }),
                pair.verdict.is_trusted(),
                "inspect and check disagree on {}: {:?} / {:?}",
                context,
                inspected,
                pair.verdict
            );
        }
    }
}

/// The latest sides the step check holds for a (leaf, store): `After` where that side
/// changed, `Before` where it did not (the step check lists a side once when equal).
fn latest(step: &trust::TrustReport, leaf: ObjectRef, store: TrustStore) -> (Side, Side) {
    let combos: Vec<(Side, Side)> = step
        .checks
        .iter()
        .filter(|c| c.leaf == leaf && c.trusted_by == store)
        .map(|c| (c.leaf_side, c.store_side))
        .collect();
    let leaf_side = combos.iter().map(|c| c.0).max().unwrap();
    let store_side = combos.iter().map(|c| c.1).max().unwrap();
    (leaf_side, store_side)
}
