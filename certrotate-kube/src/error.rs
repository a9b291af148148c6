//! The error type of the stores and the engine.

use certrotate_core::BoxError;

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
    /// The operation makes no sense for this backend (a restart in local mode).
    #[error("not applicable to this store: {0}")]
    NotApplicable(&'static str),
    /// Anything else the backend reports (I/O, HTTP, permissions).
    #[error("{0}")]
    Backend(BoxError),
}

impl StoreError {
    /// Whether re-reading and re-planning may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict | Self::AlreadyExists)
    }
}

/// Everything that can fail in `certrotate-kube`: each variant names the operation and
/// the object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a Secret failed.
    #[error("reading secret {secret}: {source}")]
    ReadSecret {
        /// `namespace/name`.
        secret: String,
        /// The cause.
        source: StoreError,
    },
    /// Writing (creating or updating) a Secret failed.
    #[error("writing secret {secret}: {source}")]
    WriteSecret {
        /// `namespace/name`.
        secret: String,
        /// The cause.
        source: StoreError,
    },
    /// Reading a workload failed.
    #[error("reading {workload}: {source}")]
    ReadWorkload {
        /// `kind namespace/name`.
        workload: String,
        /// The cause.
        source: StoreError,
    },
    /// Restarting a workload failed.
    #[error("restarting {workload}: {source}")]
    RestartWorkload {
        /// `kind namespace/name`.
        workload: String,
        /// The cause.
        source: StoreError,
    },
    /// Reading a webhook configuration failed.
    #[error("reading {webhook}: {source}")]
    ReadWebhook {
        /// `kind name`.
        webhook: String,
        /// The cause.
        source: StoreError,
    },
    /// Updating a webhook configuration's `caBundle` failed.
    #[error("updating the caBundle of {webhook}: {source}")]
    UpdateWebhook {
        /// `kind name`.
        webhook: String,
        /// The cause.
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
        object: String,
    },
    /// A step would break the trust invariant; it was refused before any write. No
    /// option (`force` included) skips this check.
    #[error(
        "refused to apply \"{step}\": it would break trust for {} pair(s): {}",
        broken.len(),
        describe_pairs(broken)
    )]
    TrustWouldBreak {
        /// The step's summary.
        step: String,
        /// Each pair it breaks: the leaf, the trust store, the sides of the step and why.
        broken: Vec<certrotate_core::trust::PairCheck>,
    },
    /// `--wait` ran out of time.
    #[error("timed out after {waited}: {waiting_for}")]
    Timeout {
        /// How long was waited.
        waited: String,
        /// What was still pending.
        waiting_for: String,
    },
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
    pub(crate) fn is_conflict(&self) -> bool {
        match self {
            Self::WriteSecret { source, .. }
            | Self::UpdateWebhook { source, .. }
            | Self::RestartWorkload { source, .. } => source.is_conflict(),
            _ => false,
        }
    }

    pub(crate) fn object(&self) -> String {
        match self {
            Self::WriteSecret { secret, .. } | Self::ReadSecret { secret, .. } => secret.clone(),
            Self::UpdateWebhook { webhook, .. } | Self::ReadWebhook { webhook, .. } => {
                webhook.clone()
            }
            Self::RestartWorkload { workload, .. } | Self::ReadWorkload { workload, .. } => {
                workload.clone()
            }
            _ => String::new(),
        }
    }
}
