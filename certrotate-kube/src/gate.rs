//! The trust gate: before the engine applies a plan, it computes the state after it and
//! checks the trust invariant of the step ([`certrotate_core::trust::check_step`]) in every
//! combination of before and after.
//!
//! For the staged strategy (and every plan outside a single-step rotation: installs,
//! renewals, adoption) a step that breaks the invariant is refused, whatever the options
//! (`force` included): it names each pair and the reason. A single-step rotation breaks it
//! by design (upstream parity); its step is applied, and the pairs it puts at risk are
//! reported first.

use certrotate_core::plan::wire::{KEY_TLS_CRT, KEY_TRUST};
use certrotate_core::plan::{
    Observed, ObservedSecret, Phase, ProfileObjects, RotationState, SecretAction, Step, Strategy,
};
use certrotate_core::trust::{self, PairCheck};
use certrotate_core::{Profile, RotationPlan};
use time::OffsetDateTime;

use crate::store::SecretUpdate;

/// What the gate decided about a plan.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// The step keeps trust.
    Keeps,
    /// A single-step rotation: these pairs are at risk; apply it anyway.
    AtRisk(Vec<PairCheck>),
    /// The step would break these pairs: refuse it.
    Breaks(Vec<PairCheck>),
}

/// Checks `plan`, made from `observed` at `now`.
pub(crate) fn check(
    profile: &Profile,
    observed: &Observed,
    plan: &RotationPlan,
    now: OffsetDateTime,
) -> Verdict {
    if !changes_trust(plan) {
        return Verdict::Keeps;
    }
    let after = state_after(observed, plan);
    let report = trust::check_step(profile, observed, &after, now);
    let broken: Vec<PairCheck> = report.broken().cloned().collect();
    if broken.is_empty() {
        Verdict::Keeps
    } else if single_step_rotation(profile, observed) {
        Verdict::AtRisk(broken)
    } else {
        Verdict::Breaks(broken)
    }
}

/// The state after `plan` is applied to `observed`, as every store applies it (creates,
/// merge updates, `caBundle` replacements; restarts change no trust).
pub(crate) fn state_after(observed: &Observed, plan: &RotationPlan) -> Observed {
    let mut after = observed.clone();
    for step in &plan.steps {
        match step {
            Step::Secret(change) => {
                let update = SecretUpdate::of(change);
                match &change.action {
                    SecretAction::Create => {
                        let mut created =
                            ObservedSecret::new(change.secret_type.clone(), Default::default(), "");
                        update.apply_to(&mut created);
                        after.secrets.insert(change.secret.clone(), created);
                    }
                    SecretAction::Update { .. } => {
                        if let Some(s) = after.secrets.get_mut(&change.secret) {
                            update.apply_to(s);
                        }
                    }
                    SecretAction::Unchanged => {}
                }
            }
            Step::Webhook(change) => {
                if let Some(w) = after.webhooks.get_mut(&change.webhook) {
                    w.ca_bundles = change.ca_bundles.clone();
                }
            }
            // Restarts and notes change no trust.
            Step::Restart(_) | Step::Note(_) => {}
        }
    }
    after
}

/// Whether the plan writes anything a trust check looks at: a leaf or a bundle (the CA
/// Secret's own keys and the HMAC Secrets are nobody's trust).
fn changes_trust(plan: &RotationPlan) -> bool {
    plan.steps.iter().any(|s| match s {
        Step::Secret(c) => {
            c.action != SecretAction::Unchanged
                && c.data.keys().any(|k| k == KEY_TRUST || k == KEY_TLS_CRT)
        }
        Step::Webhook(_) => true,
        Step::Restart(_) | Step::Note(_) => false,
    })
}

/// Whether `observed` is mid-way through a single-step rotation (its one write step comes
/// next).
fn single_step_rotation(profile: &Profile, observed: &Observed) -> bool {
    let ca = ProfileObjects::of(profile).ca_secret;
    observed
        .secrets
        .get(&ca)
        .and_then(|s| RotationState::from_secret(s, &ca).ok())
        .is_some_and(|s| s.phase == Phase::Prepared && s.strategy == Strategy::SingleStep)
}
