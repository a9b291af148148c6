//! The error types of the stores and the engine.
//!
//! Each cause appears once in a chain: either as the `#[source]` of a variant (walk it with
//! [`std::error::Error::source`], or print it with `anyhow`'s `{:#}`) or inside the
//! message, never both. Variants carry typed references and times, so an operator's
//! `error_policy` can decide with [`Error::is_transient`] and [`Error::object`] instead of
//! parsing a sentence.

use std::time::Duration;

use certrotate_core::plan::{AnyRef, Next, ObjectRef, WebhookRef, WorkloadRef, WorkloadSelector};
use time::OffsetDateTime;

/// A boxed cause from a backend (kube-rs, hyper, the filesystem).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a single store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The object changed since it was read (HTTP 409 on a stale `resourceVersion`).
    #[error("conflict: the object changed since it was read")]
    Conflict,
    /// A create found the object already there.
    #[error("already exists")]
    AlreadyExists,
    /// The object does not exist.
    #[error("not found")]
    NotFound,
    /// The store cannot hold this kind of object at all (local mode has no workloads or
    /// webhook configurations). The text says why, for people; the engine decides on the
    /// variant alone.
    #[error("not applicable to this store: {0}")]
    NotApplicable(&'static str),
    /// A transient failure (throttling, a 5xx, a timeout, a lost connection) outlasted the
    /// store's retries (a budget per step of a run: `attempts` may be 1 when earlier
    /// requests of the step spent it). Trying again later may succeed.
    #[error("gave up after {attempts} attempts{}", if *timed_out { " (the last one timed out)" } else { "" })]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// Whether the last attempt timed out.
        timed_out: bool,
        /// The last failure.
        #[source]
        source: BoxError,
    },
    /// Anything else the backend reports (I/O, permissions, a refused request).
    #[error(transparent)]
    Backend(BoxError),
}

impl StoreError {
    /// Whether re-reading and re-planning may succeed.
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::Conflict | Self::AlreadyExists => true,
            Self::NotFound | Self::NotApplicable(_) | Self::GaveUp { .. } | Self::Backend(_) => {
                false
            }
        }
    }

    /// Whether the same operation may succeed later without anyone changing anything:
    /// conflicts (re-plan) and transient failures that outlasted the retries.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Conflict | Self::AlreadyExists | Self::GaveUp { .. } => true,
            Self::NotFound | Self::NotApplicable(_) | Self::Backend(_) => false,
        }
    }
}

/// Everything that can fail in `certrotate-kube`: each variant names the operation and
/// the object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a Secret failed.
    #[error("reading secret {secret}")]
    ReadSecret {
        /// The Secret.
        secret: ObjectRef,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// Writing (creating or updating) a Secret failed.
    #[error("writing secret {secret}")]
    WriteSecret {
        /// The Secret.
        secret: ObjectRef,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// Reading a workload failed.
    #[error("reading {workload}")]
    ReadWorkload {
        /// The workload.
        workload: WorkloadRef,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// Listing the workloads a profile's selector chooses failed.
    #[error("listing {selector}")]
    ListWorkloads {
        /// The selector.
        selector: WorkloadSelector,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// Restarting a workload failed.
    #[error("restarting {workload}")]
    RestartWorkload {
        /// The workload.
        workload: WorkloadRef,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// Reading a webhook configuration failed.
    #[error("reading {webhook}")]
    ReadWebhook {
        /// The webhook configuration.
        webhook: WebhookRef,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// Updating a webhook configuration's `caBundle` failed.
    #[error("updating the caBundle of {webhook}")]
    UpdateWebhook {
        /// The webhook configuration.
        webhook: WebhookRef,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// Planning failed (bad input in a Secret, an inconsistent rotation state, ...).
    #[error(transparent)]
    Plan(#[from] certrotate_core::Error),
    /// Objects kept changing under us.
    #[error("gave up after {attempts} conflicting writes: another writer keeps changing {object}")]
    TooManyConflicts {
        /// Attempts made.
        attempts: u32,
        /// The last object that conflicted.
        object: AnyRef,
    },
    /// A step would break the trust invariant; it was refused before any write. No
    /// option (`force` included) skips this check.
    #[error(
        "refused to apply \"{step}\": it would break trust for {} pair(s): {}",
        broken.len(),
        describe_pairs(broken)
    )]
    TrustWouldBreak {
        /// What the step does.
        step: certrotate_core::plan::Summary,
        /// Each pair it breaks: the leaf, the trust store, the sides of the step and why.
        broken: Vec<certrotate_core::trust::PairCheck>,
    },
    /// A run with a time limit ([`RunMode::UntilDone`](crate::RunMode::UntilDone)) would
    /// have to wait past it.
    #[error(
        "timed out: started at {}, limit {}, but {}",
        certrotate_core::rfc3339(*started),
        humantime::format_duration(*timeout),
        describe_wait(pending, *until)
    )]
    Timeout {
        /// When the run started.
        started: OffsetDateTime,
        /// The limit.
        timeout: Duration,
        /// What was still pending.
        pending: Next,
        /// When the wait would have ended.
        until: OffsetDateTime,
    },
    /// A blocking task (key generation, a filesystem store call) panicked or was
    /// cancelled by a runtime shutting down.
    #[error("a blocking task of the engine did not finish: {0}")]
    BlockingTask(String),
}

/// The first few pairs, one clause each, and how many more.
fn describe_pairs(pairs: &[certrotate_core::trust::PairCheck]) -> String {
    const SHOWN: usize = 3;
    let mut out: Vec<String> = pairs.iter().take(SHOWN).map(ToString::to_string).collect();
    if pairs.len() > SHOWN {
        out.push(format!("and {} more", pairs.len() - SHOWN));
    }
    out.join("; ")
}

impl Error {
    /// Whether the same reconcile may succeed later without anyone changing anything:
    /// conflicts, throttling and outages that outlasted the retries, and waits that ran out
    /// of time. Bad input (a malformed Secret, an inconsistent rotation state), refused
    /// permissions and missing objects are permanent until a person acts.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::ReadSecret { source, .. }
            | Self::WriteSecret { source, .. }
            | Self::ReadWorkload { source, .. }
            | Self::ListWorkloads { source, .. }
            | Self::RestartWorkload { source, .. }
            | Self::ReadWebhook { source, .. }
            | Self::UpdateWebhook { source, .. } => source.is_transient(),
            Self::TooManyConflicts { .. } | Self::Timeout { .. } => true,
            Self::Plan(_) | Self::BlockingTask(_) | Self::TrustWouldBreak { .. } => false,
        }
    }

    /// Whether a write conflicted, so re-reading and re-planning may succeed at once.
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::WriteSecret { source, .. }
            | Self::UpdateWebhook { source, .. }
            | Self::RestartWorkload { source, .. } => source.is_conflict(),
            Self::ReadSecret { .. }
            | Self::ReadWorkload { .. }
            | Self::ListWorkloads { .. }
            | Self::ReadWebhook { .. }
            | Self::Plan(_)
            | Self::TooManyConflicts { .. }
            | Self::Timeout { .. }
            | Self::TrustWouldBreak { .. }
            | Self::BlockingTask(_) => false,
        }
    }

    /// The object the failing operation was about, if any.
    pub fn object(&self) -> Option<AnyRef> {
        match self {
            Self::ReadSecret { secret, .. } | Self::WriteSecret { secret, .. } => {
                Some(AnyRef::Secret(secret.clone()))
            }
            Self::ReadWorkload { workload, .. } | Self::RestartWorkload { workload, .. } => {
                Some(AnyRef::Workload(workload.clone()))
            }
            Self::ReadWebhook { webhook, .. } | Self::UpdateWebhook { webhook, .. } => {
                Some(AnyRef::Webhook(webhook.clone()))
            }
            Self::Plan(e) => e.object(),
            Self::TooManyConflicts { object, .. } => Some(object.clone()),
            Self::TrustWouldBreak { broken, .. } => {
                broken.first().map(|p| AnyRef::Secret(p.leaf.clone()))
            }
            Self::ListWorkloads { .. } | Self::Timeout { .. } | Self::BlockingTask(_) => None,
        }
    }
}

fn describe_wait(pending: &Next, until: OffsetDateTime) -> String {
    match pending {
        Next::WaitUntil { reason, .. } => format!(
            "the next step may only run at {} ({reason})",
            certrotate_core::rfc3339(until)
        ),
        Next::WaitForRollout { workloads } => {
            let names: Vec<String> = workloads.iter().map(ToString::to_string).collect();
            format!(
                "rollouts of {} were still in progress at {}",
                names.join(", "),
                certrotate_core::rfc3339(until)
            )
        }
        Next::Continue | Next::Done => "nothing was pending".to_owned(),
    }
}
