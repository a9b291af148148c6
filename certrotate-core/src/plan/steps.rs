//! What a plan says: the steps to apply, in order, and what comes after them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{AnyRef, ObjectRef, Phase, Strategy, WebhookRef, WorkloadRef};
use crate::fingerprint::Fingerprint;
use crate::trust::TrustStore;

/// A value to write into a Secret. Private values serialise as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
// Exhaustive on purpose: certrotate-kube and certrotate-cli match every variant, so a
// new one fails to compile there instead of falling into a wildcard arm.
pub enum SecretValue {
    /// Public material (certificates, bundles).
    Public(Vec<u8>),
    /// Private material (keys, HMAC secrets), zeroized on drop.
    Private(Zeroizing<Vec<u8>>),
}

impl SecretValue {
    /// The bytes to write.
    pub fn expose_secret(&self) -> &[u8] {
        match self {
            Self::Public(v) => v,
            Self::Private(v) => v,
        }
    }

    pub(super) fn private(bytes: &[u8]) -> Self {
        Self::Private(Zeroizing::new(bytes.to_vec()))
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Public(v) => write!(f, "Public({} bytes)", v.len()),
            Self::Private(_) => f.write_str("Private(<redacted>)"),
        }
    }
}

impl Serialize for SecretValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Public(v) => s.serialize_str(&String::from_utf8_lossy(v)),
            Self::Private(_) => s.serialize_str("<redacted>"),
        }
    }
}

/// What to do with a Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
// Exhaustive on purpose: certrotate-kube and certrotate-cli match every variant, so a
// new one fails to compile there instead of falling into a wildcard arm.
pub enum SecretAction {
    /// Create it; fails if it exists.
    Create,
    /// Update the listed keys, labels and annotations, if it is still at `expected_version`.
    Update {
        /// The version read when planning.
        expected_version: String,
    },
    /// Leave it as it is.
    Unchanged,
}

/// What started a rotation: the policy of the options, as data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RotationTrigger {
    /// `overwrite`: rotate whenever stable.
    Overwrite,
    /// A [`Trigger::AwayFrom`](super::Trigger::AwayFrom) or [`Trigger::Once`](super::Trigger::Once)
    /// not yet satisfied.
    Request,
    /// The schedule: the current CA expires within `rotate_ca_before`.
    Schedule {
        /// When it expires.
        #[serde(with = "time::serde::rfc3339")]
        ca_not_after: OffsetDateTime,
    },
    /// The schedule: a leaf due for renewal cannot get a longer life from the current CA.
    CaLimitsLeaves,
    /// A requested rotation away from a current CA that cannot be used (weak, not a CA,
    /// expired, its key missing or not its own).
    Recovery,
    /// [`RotationPolicy::adopt`](super::RotationPolicy::adopt): an install made without
    /// certrotate is adopted on purpose.
    Adopt,
}

impl fmt::Display for RotationTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Overwrite => f.write_str("asked for"),
            Self::Request => f.write_str("requested"),
            Self::Schedule { ca_not_after } => {
                write!(
                    f,
                    "scheduled: the CA expires at {}",
                    crate::rfc3339(*ca_not_after)
                )
            }
            Self::CaLimitsLeaves => f.write_str("scheduled: the CA limits the leaves"),
            Self::Recovery => f.write_str("recovering from an unusable CA"),
            Self::Adopt => f.write_str("adoption asked for"),
        }
    }
}

/// Why a step writes (or, for [`SecretAction::Unchanged`], why it does not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StepReason {
    /// The first install: a new CA and every Secret.
    FirstInstall,
    /// The Secret did not exist.
    Missing,
    /// A leaf within the renewal window, re-issued from the current CA.
    Renewal,
    /// An HMAC Secret without its key.
    HmacKeyMissing,
    /// An HMAC Secret whose key is shorter than [`HmacKey::MIN_LEN`](crate::generate::HmacKey::MIN_LEN)
    /// bytes (an empty file, a truncated write): replaced.
    HmacKeyTooShort {
        /// The length found, in bytes.
        length: usize,
    },
    /// The rotation also rotates the HMAC keys.
    HmacRotation,
    /// A rotation starts: the next CA is minted and persisted.
    NextCaMinted {
        /// How the rotation proceeds.
        strategy: Strategy,
        /// What started it.
        trigger: RotationTrigger,
    },
    /// An install made without certrotate is adopted: the next CA is minted.
    Adoption,
    /// Phase trust: the bundle gets the next CA.
    TrustAdded,
    /// Phase leaves: the leaf is issued by the new CA.
    LeavesSwitched,
    /// Phase retire: the old CA leaves the bundle.
    OldCaDropped,
    /// The single-step strategy: bundle and leaf in one write.
    SingleStep,
    /// The CA Secret records a new phase.
    PhaseRecorded {
        /// The phase recorded.
        phase: Phase,
    },
    /// The Secret's `tls.key` is missing, unreadable or not the key of its `tls.crt`: the
    /// leaf is re-issued from the current CA, trust unchanged.
    KeyRepair,
    /// An expired CA (the previous one, at the end of its life) leaves a bundle: it trusts
    /// nothing any more.
    ExpiredCaDropped,
    /// The trust store lacked a CA it must hold at this phase (a `ca.crt` overwritten, a
    /// webhook `caBundle` re-created empty): the CA is put back, before what was there.
    TrustRestored,
    /// The leaf was not issued by the current CA (replaced by hand, restored from a
    /// backup): re-issued by it.
    LeafReissued,
    /// A restart planned by an earlier run that did not finish.
    UnfinishedRestart,
    /// Nothing to write: the object is already in its target state.
    AlreadyInTargetState,
}

impl fmt::Display for StepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FirstInstall => f.write_str("first install"),
            Self::Missing => f.write_str("missing: created"),
            Self::Renewal => f.write_str("renewal"),
            Self::HmacKeyMissing => f.write_str("HMAC key missing"),
            Self::HmacKeyTooShort { length } => {
                write!(f, "HMAC key of {length} bytes, too short: replaced")
            }
            Self::HmacRotation => f.write_str("HMAC rotation asked for"),
            Self::NextCaMinted { strategy, trigger } => {
                write!(f, "rotation ({strategy}, {trigger}): next CA minted")
            }
            Self::Adoption => f.write_str("adopting an existing install: next CA minted"),
            Self::TrustAdded => f.write_str("trust: bundle with the next CA"),
            Self::LeavesSwitched => f.write_str("leaves: issued by the new CA"),
            Self::OldCaDropped => f.write_str("retire: old CA dropped"),
            Self::SingleStep => f.write_str("single-step: bundle and leaf"),
            Self::PhaseRecorded { phase } => write!(f, "phase {phase}"),
            Self::KeyRepair => f.write_str("tls.key missing or not tls.crt's: leaf re-issued"),
            Self::ExpiredCaDropped => f.write_str("expired CA dropped from the bundle"),
            Self::TrustRestored => {
                f.write_str("the trust store lacked a CA it must hold: restored")
            }
            Self::LeafReissued => f.write_str("leaf not issued by the current CA: re-issued by it"),
            Self::UnfinishedRestart => f.write_str("recovering an unfinished restart"),
            Self::AlreadyInTargetState => f.write_str("already in the target state"),
        }
    }
}

/// One Secret's part of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SecretChange {
    /// The Secret.
    pub secret: ObjectRef,
    /// What to do.
    pub action: SecretAction,
    /// Its type (for a create).
    pub secret_type: String,
    /// Keys to set (`Some`) or remove (`None`); other keys are kept.
    pub data: BTreeMap<String, Option<SecretValue>>,
    /// Labels to set; others are kept.
    pub labels: BTreeMap<String, String>,
    /// Annotations to set (`Some`) or remove (`None`); others are kept.
    pub annotations: BTreeMap<String, Option<String>>,
    /// Why.
    pub reason: StepReason,
}

/// A change of every `caBundle` of a webhook configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WebhookChange {
    /// The configuration.
    pub webhook: WebhookRef,
    /// The version read when planning.
    pub expected_version: String,
    /// The new `caBundle` of each webhook, in order.
    #[serde(serialize_with = "serialize_pems")]
    pub ca_bundles: Vec<Vec<u8>>,
    /// Why.
    pub reason: StepReason,
}

fn serialize_pems<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|b| String::from_utf8_lossy(b)))
}

/// A rolling restart of a workload, as `kubectl rollout restart` does it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Restart {
    /// The workload.
    pub workload: WorkloadRef,
    /// The value of `kubectl.kubernetes.io/restartedAt` (RFC 3339, UTC, seconds).
    pub restarted_at: String,
    /// The value of `certrotate.io/restarted-for`.
    pub token: String,
    /// Why.
    pub reason: StepReason,
}

/// Something that needs no write but is worth saying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Note {
    /// What it is about.
    pub object: AnyRef,
    /// What about it.
    pub reason: NoteReason,
}

impl Note {
    /// A note about `object`.
    pub fn new(object: impl Into<AnyRef>, reason: NoteReason) -> Self {
        Self {
            object: object.into(),
            reason,
        }
    }
}

/// What a [`Note`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
// Exhaustive on purpose: certrotate-kube and certrotate-cli match every variant, so a
// new one fails to compile there instead of falling into a wildcard arm.
pub enum NoteReason {
    /// The object does not exist, so there is nothing to change in it.
    Absent,
    /// The store cannot hold such objects at all (local mode has no workloads or
    /// webhooks): if the object exists elsewhere, it is the user's to change.
    NotHeldByStore,
    /// The workload was already restarted for the state this plan leads to.
    AlreadyRestarted,
    /// The leaf expires within the renewal window.
    WithinRenewalWindow,
    /// Retiring the old CA was asked for, but the bundles carry no CA besides the current
    /// one: nothing to retire.
    NothingToRetire,
}

impl fmt::Display for NoteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Absent => "absent: nothing to change",
            Self::NotHeldByStore => "not held by this store",
            Self::AlreadyRestarted => "already restarted for this state",
            Self::WithinRenewalWindow => "leaf within the renewal window",
            Self::NothingToRetire => "the bundles carry only the current CA: nothing to retire",
        })
    }
}

/// One step of a plan, applied in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
// Exhaustive on purpose: certrotate-kube and certrotate-cli match every variant, so a
// new one fails to compile there instead of falling into a wildcard arm.
pub enum Step {
    /// Create, update or leave a Secret.
    Secret(SecretChange),
    /// Change the `caBundle`s of a webhook configuration.
    Webhook(WebhookChange),
    /// Restart a workload.
    Restart(Restart),
    /// Nothing to write, something to say.
    Note(Note),
}

/// What comes after the steps of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
// Exhaustive on purpose: certrotate-kube and certrotate-cli match every variant, so a
// new one fails to compile there instead of falling into a wildcard arm.
pub enum Next {
    /// Plan again at once: the next step is allowed now.
    Continue,
    /// The next step is allowed at `at`.
    WaitUntil {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Why.
        reason: WaitReason,
    },
    /// The next step waits for these workloads' rollouts to finish.
    WaitForRollout {
        /// The workloads.
        workloads: Vec<WorkloadRef>,
    },
    /// Nothing more to do.
    Done,
}

/// Why the next step must wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
// Exhaustive on purpose: certrotate-kube and certrotate-cli match every variant, so a
// new one fails to compile there instead of falling into a wildcard arm.
pub enum WaitReason {
    /// What the phase wrote must reach every component first.
    Converging {
        /// The phase that must converge.
        phase: Phase,
    },
    /// The convergence interval has passed, but probed servers do not show yet what the
    /// phase wrote (in `trust`, the next CA among the CAs they ask client certificates
    /// from; in `leaves`, a leaf of the new CA).
    Evidence {
        /// The phase that must converge.
        phase: Phase,
        /// How many endpoints lag.
        lagging: usize,
    },
    /// The last rotation ended less than one convergence interval ago: the CA it left in
    /// the bundles may still be loaded somewhere.
    TooSoon {
        /// When the last rotation ended.
        #[serde(with = "time::serde::rfc3339")]
        ended: OffsetDateTime,
    },
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Converging {
                phase: Phase::Trust,
            } => f.write_str("bundles must converge before leaves change"),
            Self::Converging {
                phase: Phase::Leaves,
            } => f.write_str("leaves must converge before the rotation ends"),
            Self::Converging {
                phase: Phase::Retire,
            } => f.write_str("bundles without the old CA must converge"),
            Self::Converging {
                phase: phase @ (Phase::Stable | Phase::Prepared),
            } => write!(f, "the {phase} phase must converge"),
            Self::Evidence { phase, lagging } => write!(
                f,
                "{lagging} probed endpoint(s) do not show the {} yet",
                if *phase == Phase::Trust {
                    "next CA among the CAs they trust"
                } else {
                    "leaf of the new CA"
                }
            ),
            Self::TooSoon { ended } => write!(
                f,
                "too soon to rotate: the last rotation ended at {}",
                crate::rfc3339(*ended)
            ),
        }
    }
}

/// What a plan does, in one typed line: the CLI and operators render it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
// Exhaustive on purpose: certrotate-kube and certrotate-cli match every variant, so a
// new one fails to compile there instead of falling into a wildcard arm.
pub enum Summary {
    /// The first install: a new CA and every Secret.
    Installed {
        /// The new CA.
        ca: Fingerprint,
    },
    /// Component Secrets exist but the CA Secret does not: nothing is changed until a
    /// rotation is asked for (which adopts them with a new CA).
    NotManaged {
        /// The component Secrets found.
        existing: Vec<ObjectRef>,
        /// The CA Secret that is missing.
        ca_secret: ObjectRef,
        /// The CAs that issued the leaves found (certgen's), earliest end first: what
        /// expires with nobody to rotate it.
        cas: Vec<ExistingCa>,
    },
    /// An adoption started: the next CA is persisted.
    Adopting {
        /// The next CA.
        next: Fingerprint,
        /// What started it: a request, [`RotationTrigger::Adopt`], or the schedule.
        trigger: RotationTrigger,
    },
    /// A rotation was asked for, but the last one ended less than one convergence interval
    /// ago.
    TooSoon {
        /// When the last rotation ended.
        #[serde(with = "time::serde::rfc3339")]
        ended: OffsetDateTime,
        /// When a new one may start.
        #[serde(with = "time::serde::rfc3339")]
        earliest: OffsetDateTime,
    },
    /// A rotation started: the next CA is persisted.
    Prepared {
        /// The next CA.
        next: Fingerprint,
        /// What started it.
        trigger: RotationTrigger,
    },
    /// Leaves are due for renewal, but the current CA expires before they would: only a CA
    /// rotation gives them their full validity. Leaves that could still gain were renewed.
    CaExpiresFirst {
        /// Leaves renewed anyway.
        renewed: usize,
        /// Leaves that already end when the CA does.
        limited: usize,
        /// When the CA expires.
        #[serde(with = "time::serde::rfc3339")]
        ca_not_after: OffsetDateTime,
    },
    /// Leaves within the renewal window were re-issued.
    Renewed {
        /// How many.
        count: usize,
        /// The CA that issued them.
        ca: Fingerprint,
    },
    /// Missing Secrets were created.
    CreatedMissing,
    /// Nothing to do.
    UpToDate,
    /// Phase trust entered: every bundle carries the next CA.
    Trust {
        /// The next CA.
        next: Fingerprint,
    },
    /// Trust stores and leaves that drifted from the current CA were repaired: each
    /// store got the current CA back, each leaf it did not issue was re-issued by it.
    Repaired {
        /// The current CA.
        ca: Fingerprint,
        /// The stores that lacked it.
        stores: Vec<TrustStore>,
        /// The component Secrets whose leaf it did not issue.
        leaves: Vec<ObjectRef>,
    },
    /// Phase trust was written again: these trust stores had lost the next CA (a webhook
    /// configuration re-created, a `ca.crt` overwritten), so their peers would refuse the
    /// new leaves. It is back in each, and the phase converges again, from now, before
    /// the leaves change.
    TrustRestored {
        /// The next CA.
        next: Fingerprint,
        /// The stores that lacked it.
        stores: Vec<TrustStore>,
    },
    /// Waiting for a phase to converge.
    Waiting {
        /// The phase.
        phase: Phase,
    },
    /// Phase leaves entered: every leaf is issued by the new CA.
    Leaves {
        /// The new CA, now current.
        ca: Fingerprint,
    },
    /// Phase retire entered: bundles carry only the current CA.
    Retire {
        /// The current CA.
        ca: Fingerprint,
        /// Why the other CAs leave the bundles now.
        reason: RetireReason,
    },
    /// The rotation ended.
    Done {
        /// The current CA.
        ca: Fingerprint,
        /// Whether the old CA was retired.
        retired: bool,
        /// The strategy the rotation ran with.
        strategy: Strategy,
    },
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Installed { ca } => write!(f, "installed: CA {}", ca.short()),
            Self::NotManaged {
                existing,
                ca_secret,
                cas,
            } => {
                let names: Vec<String> = existing.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "not managed yet: {} exist but the CA Secret {ca_secret} does not (no CA \
                     key); no TLS Secret changed",
                    names.join(", ")
                )?;
                for ca in cas {
                    write!(f, "; {ca}")?;
                }
                if !cas.is_empty() {
                    f.write_str(" and nothing rotates it")?;
                }
                Ok(())
            }
            Self::Adopting { next, trigger } => {
                write!(
                    f,
                    "adopting ({trigger}): next CA {} persisted",
                    next.short()
                )
            }
            Self::TooSoon { ended, earliest } => write!(
                f,
                "too soon to rotate: the last rotation ended at {}, a new one may start at {} \
                 (one convergence interval later)",
                crate::rfc3339(*ended),
                crate::rfc3339(*earliest)
            ),
            Self::Prepared { next, trigger } => {
                write!(
                    f,
                    "prepared ({trigger}): next CA {} persisted",
                    next.short()
                )
            }
            Self::CaExpiresFirst {
                renewed,
                limited,
                ca_not_after,
            } => write!(
                f,
                "the CA expires at {}: rotate it ({limited} leaves cannot outlive it; \
                 {renewed} renewed up to it)",
                crate::rfc3339(*ca_not_after)
            ),
            Self::Renewed { count, ca } => {
                write!(f, "renewed {count} leaves from CA {}", ca.short())
            }
            Self::CreatedMissing => f.write_str("created missing Secrets"),
            Self::UpToDate => f.write_str("up to date"),
            Self::Trust { next } => {
                write!(f, "trust: every bundle now carries CA {}", next.short())
            }
            Self::Repaired { ca, stores, leaves } => {
                write!(f, "repaired: CA {} is current", ca.short())?;
                if !stores.is_empty() {
                    write!(f, "; restored in {}", join(stores))?;
                }
                if !leaves.is_empty() {
                    write!(f, "; leaf re-issued in secret {}", join(leaves))?;
                }
                Ok(())
            }
            Self::TrustRestored { next, stores } => write!(
                f,
                "trust held: {} lacked the next CA {}; restored, trust converges again before \
                 the leaves change",
                join(stores),
                next.short()
            ),
            Self::Waiting { phase } => {
                let what = match phase {
                    Phase::Trust => "trust",
                    Phase::Leaves => "leaves",
                    Phase::Retire => "retirement",
                    Phase::Stable | Phase::Prepared => "the phase",
                };
                write!(f, "waiting: {what} converging")
            }
            Self::Leaves { ca } => {
                write!(f, "leaves: every leaf now issued by CA {}", ca.short())
            }
            Self::Retire { ca, reason } => {
                write!(f, "retire ({reason}): bundles carry only CA {}", ca.short())
            }
            Self::Done {
                ca,
                retired,
                strategy,
            } => match (retired, strategy) {
                (true, _) => write!(f, "done: old CA retired; CA {} is current", ca.short()),
                (false, Strategy::SingleStep) => {
                    write!(f, "done (single-step): CA {} is current", ca.short())
                }
                (false, Strategy::Staged) => write!(f, "done: CA {} is current", ca.short()),
            },
        }
    }
}

/// A CA an install made without certrotate relies on: one that issued its leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ExistingCa {
    /// Its SHA-256 fingerprint.
    pub fingerprint: Fingerprint,
    /// Its subject, as read (RFC 4514).
    pub subject: String,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

impl fmt::Display for ExistingCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "their CA {} ({}) expires at {}",
            self.subject,
            self.fingerprint.short(),
            crate::rfc3339(self.not_after)
        )
    }
}

/// Why a retirement drops the CAs the bundles carry besides the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RetireReason {
    /// The rotation was started with `drop_old_ca` (a leaked key): right after its leaves
    /// converged.
    WithRotation,
    /// [`RotationPolicy::drop_old_ca`](super::RotationPolicy::drop_old_ca) on a stable install:
    /// now.
    Asked,
    /// [`RotationPolicy::retire_after`](super::RotationPolicy::retire_after) passed since the
    /// last rotation ended (or the carried CA nears its end).
    Scheduled {
        /// When the last rotation ended.
        #[serde(with = "time::serde::rfc3339")]
        ended: OffsetDateTime,
    },
}

impl fmt::Display for RetireReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WithRotation => f.write_str("with the rotation"),
            Self::Asked => f.write_str("asked for"),
            Self::Scheduled { ended } => write!(
                f,
                "scheduled: no leaf needs the old CA since the rotation ended at {}",
                crate::rfc3339(*ended)
            ),
        }
    }
}

/// `items`, each as it displays, joined by ", ".
fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The next step of a rotation, as a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RotationPlan {
    /// The persisted phase when planning.
    pub from: Phase,
    /// The phase once the steps are applied.
    pub to: Phase,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// What comes after.
    pub next: Next,
    /// What the plan does.
    pub summary: Summary,
}

impl RotationPlan {
    /// Whether applying the plan writes anything.
    pub fn writes(&self) -> bool {
        self.steps.iter().any(|s| match s {
            Step::Secret(c) => c.action != SecretAction::Unchanged,
            Step::Webhook(_) | Step::Restart(_) => true,
            Step::Note(_) => false,
        })
    }
}
