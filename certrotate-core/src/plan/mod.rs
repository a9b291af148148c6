//! The rotation protocol as a pure state machine: observed state in, [`RotationPlan`] out.
//!
//! The phases (`stable → prepared → trust → leaves → [retire →] stable`) are persisted in
//! annotations of the profile's CA Secret, beside the CA (and, mid-rotation, the next CA).
//! Each call of [`plan`] looks at what is there and returns the next step: the Secret writes
//! (each with the version it expects to replace), webhook `caBundle` changes and workload
//! restarts, in the order they must be applied, and what comes after. Writes to the CA
//! Secret that advance the phase always come last, so a crash between any two writes
//! leaves the persisted phase behind the data and a rerun repeats an idempotent step with
//! the same next CA.
//!
//! Invariant at every point: every component's leaf chains to a CA that every peer's
//! `ca.crt` and every webhook `caBundle` contain. The staged strategy keeps it because trust
//! is added (and converges) before any leaf changes, and removed only after every leaf
//! changed and converged.

mod apply;
mod converge;
mod drift;
mod observed;
mod phases;
mod planner;
pub(crate) mod policy;
mod restarts;
mod state;
mod status;
pub(crate) mod steps;
mod trigger;
mod views;

pub use observed::{
    Observed, ObservedSecret, ObservedWebhook, ObservedWorkload, Probed, ProfileObjects,
    WorkloadSelector,
};
// Defined beside the planner, not in it (errors and reports use them too); public here.
pub use crate::phase::{Phase, StateProblem, Strategy, UnknownPhase, UnknownStrategy};
pub use crate::refs::{AnyRef, ObjectRef, WebhookRef, WorkloadRef};
pub use policy::{DEFAULT_CONVERGENCE_INTERVAL, DEFAULT_RETIRE_AFTER, RETIRE_BEFORE_EXPIRY};
// Public at the crate root, with `plan` and `RotationPlan`.
pub(crate) use policy::{RotationPolicy, Trigger};
pub use state::RotationState;
/// The names on Kubernetes objects (and in local mode's folders) that code outside
/// certrotate reads or writes: the data keys of the CA and component Secrets, the CA
/// Secret's label, and the pod template annotations of a restart. The rotation state's
/// annotations (`certrotate.io/phase` and the rest) are certrotate's own: read and written
/// through [`RotationState::from_secret`] and [`RotationState::annotations`].
pub mod wire {
    pub use crate::wire::{
        ANNOTATION_RESTARTED_AT, ANNOTATION_RESTARTED_FOR, KEY_CA_CRT, KEY_NEXT_CA_CRT,
        KEY_TLS_CRT, KEY_TLS_KEY, KEY_TRUST, LABEL_CA,
    };
}
pub(crate) use crate::wire::{
    ANNOTATION_HMAC_ROTATION, ANNOTATION_RESTARTED_FOR, KEY_CA_CRT, KEY_CA_KEY, KEY_NEXT_CA_CRT,
    KEY_NEXT_CA_KEY, KEY_TLS_CRT, KEY_TLS_KEY, KEY_TRUST, KEY_UNUSABLE_CA_KEY, LABEL_CA,
};
pub use status::{CaRole, Hold, NextRun, Status, lagging_endpoints, rotation_base, status};
pub(crate) use steps::RotationPlan;
pub use steps::{
    ExistingCa, Next, Note, NoteReason, Restart, RetireReason, RotationTrigger, SecretAction,
    SecretChange, SecretValue, Step, StepReason, Summary, WaitReason, WebhookChange,
};
pub use views::{CaView, LeafView, StoreView};

use time::OffsetDateTime;

use crate::error::Error;
use crate::generate::Entropy;
use crate::profile::Profile;
use planner::Planner;
pub(crate) use planner::signed_by_der;

/// Plans the next step of the rotation of `profile`, given what was `observed`.
///
/// Pure: no I/O, no clock, no global randomness; new keys and serials come from `entropy`.
/// The plan follows `policy` (what starts a rotation and how it proceeds).
pub fn plan(
    profile: &Profile,
    observed: &Observed,
    policy: &RotationPolicy,
    now: OffsetDateTime,
    entropy: &mut dyn Entropy,
) -> Result<RotationPlan, Error> {
    let mut planner = Planner {
        profile,
        objects: ProfileObjects::of(profile).with_selected(observed),
        observed,
        options: policy,
        now,
        entropy,
        steps: Vec::new(),
    };
    planner.run()
}
#[cfg(test)]
mod tests;
