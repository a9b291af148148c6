//! What a plan says: the steps to apply, in order, and what comes after them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{ObjectRef, Phase, WebhookRef, WorkloadRef};

/// A value to write into a Secret. Private values serialise as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
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
#[non_exhaustive]
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
    pub reason: String,
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
    pub reason: String,
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
    pub reason: String,
}

/// One step of a plan, applied in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Step {
    /// Create, update or leave a Secret.
    Secret(SecretChange),
    /// Change the `caBundle`s of a webhook configuration.
    Webhook(WebhookChange),
    /// Restart a workload.
    Restart(Restart),
    /// Something that needs no write but is worth saying (an absent workload, say).
    Note {
        /// The object.
        object: String,
        /// What about it.
        message: String,
    },
}

/// What comes after the steps of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Next {
    /// Plan again at once: the next step is allowed now.
    Continue,
    /// The next step is allowed at `at`.
    WaitUntil {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Why.
        reason: String,
    },
    /// The next step waits for these workloads' rollouts to finish.
    WaitForRollout {
        /// The workloads.
        workloads: Vec<String>,
    },
    /// Nothing more to do.
    Done,
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
    /// One line for humans.
    pub summary: String,
}

impl RotationPlan {
    /// Whether applying the plan writes anything.
    pub fn writes(&self) -> bool {
        self.steps.iter().any(|s| match s {
            Step::Secret(c) => c.action != SecretAction::Unchanged,
            Step::Webhook(_) | Step::Restart(_) => true,
            Step::Note { .. } => false,
        })
    }
}
