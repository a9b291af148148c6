//! The trust gate's decision on a plan: keep, proceed at risk, or refuse.

use serde::Serialize;
use time::OffsetDateTime;

use super::{PairCheck, check_step};
use crate::plan::{
    KEY_TLS_CRT, KEY_TRUST, Observed, Phase, ProfileObjects, RotationPlan, RotationState,
    SecretAction, Step, Strategy,
};
use crate::profile::Profile;

/// What the trust gate decides about a plan ([`judge`]).
///
/// Closed on purpose: a gate applies, applies with a warning, or refuses; an embedder's
/// `match` must decide each, and a fourth outcome would be a breaking change to review,
/// not a wildcard arm to fall into.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "judgement", content = "pairs", rename_all = "kebab-case")]
// Exhaustive on purpose: certrotate-kube and certrotate-cli match every variant, so a
// new one fails to compile there instead of falling into a wildcard arm.
pub enum GateDecision {
    /// The step keeps trust: apply it.
    Keeps,
    /// A single-step rotation (upstream's order, which breaks trust by design): these
    /// pairs are at risk while components reload; apply it, and say so first.
    AtRisk(Vec<PairCheck>),
    /// The step would break these pairs: refuse it, whatever the options.
    Breaks(Vec<PairCheck>),
}

/// Judges `plan`, made from `before` at `now`: the state after it
/// ([`Observed::after`]) is checked against `before` in every combination
/// ([`check_step`]). A plan that writes no leaf and no bundle keeps trust. For the staged
/// strategy, and every plan outside a single-step rotation (installs, renewals, adoption,
/// repairs), a step that breaks a pair is refused; a single-step rotation's step is applied
/// with its pairs at risk.
pub fn judge(
    profile: &Profile,
    before: &Observed,
    plan: &RotationPlan,
    now: OffsetDateTime,
) -> GateDecision {
    if !changes_trust(plan) {
        return GateDecision::Keeps;
    }
    let after = before.after(plan);
    let report = check_step(profile, before, &after, now);
    let broken: Vec<PairCheck> = report.broken().cloned().collect();
    if broken.is_empty() {
        GateDecision::Keeps
    } else if single_step_rotation(profile, before) {
        GateDecision::AtRisk(broken)
    } else {
        GateDecision::Breaks(broken)
    }
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
