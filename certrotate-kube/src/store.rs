//! The narrow store traits every backend implements.

use std::collections::BTreeMap;
use std::future::Future;

use certrotate_core::plan::{
    ObjectRef, ObservedSecret, ObservedWebhook, ObservedWorkload, SecretChange, WebhookRef,
    WorkloadRef, WorkloadSelector,
};

use crate::error::StoreError;

/// A Secret to create.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewSecret {
    /// `kubernetes.io/tls`, `Opaque`, ...
    pub secret_type: String,
    /// Data.
    pub data: BTreeMap<String, Vec<u8>>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("secret_type", &self.secret_type)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .finish()
    }
}

/// A partial update of a Secret: listed keys are set (`Some`) or removed (`None`); every
/// other key, label, annotation and field of the object is kept (a JSON merge patch).
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretUpdate {
    /// Data keys to set or remove.
    pub data: BTreeMap<String, Option<Vec<u8>>>,
    /// Labels to set.
    pub labels: BTreeMap<String, String>,
    /// Annotations to set or remove.
    pub annotations: BTreeMap<String, Option<String>>,
}

impl std::fmt::Debug for SecretUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretUpdate")
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .finish()
    }
}

impl SecretUpdate {
    /// What a planned Secret step sets and removes, as a merge update.
    pub(crate) fn of(change: &SecretChange) -> Self {
        Self {
            data: change
                .data
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map(|v| v.expose_secret().to_vec())))
                .collect(),
            labels: change.labels.clone(),
            annotations: change.annotations.clone(),
        }
    }

    /// Applies the update to an observed Secret's contents (the merge semantics every store
    /// implements).
    pub fn apply_to(&self, secret: &mut ObservedSecret) {
        for (k, v) in &self.data {
            match v {
                Some(v) => secret.data.insert(k.clone(), v.clone()),
                None => secret.data.remove(k),
            };
        }
        for (k, v) in &self.labels {
            secret.labels.insert(k.clone(), v.clone());
        }
        for (k, v) in &self.annotations {
            match v {
                Some(v) => secret.annotations.insert(k.clone(), v.clone()),
                None => secret.annotations.remove(k),
            };
        }
    }
}

/// One write of a batch ([`SecretStore::write_secrets`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretWrite {
    /// Create a Secret ([`SecretStore::create_secret`]).
    Create {
        /// The Secret.
        secret: ObjectRef,
        /// Its contents.
        new: NewSecret,
    },
    /// Update a Secret still at `expected_version` ([`SecretStore::update_secret`]).
    Update {
        /// The Secret.
        secret: ObjectRef,
        /// The version the update was planned from.
        expected_version: String,
        /// What changes.
        update: SecretUpdate,
    },
}

impl SecretWrite {
    /// The Secret written.
    pub fn secret(&self) -> &ObjectRef {
        match self {
            Self::Create { secret, .. } | Self::Update { secret, .. } => secret,
        }
    }
}

/// Reading and writing Secrets with optimistic concurrency.
pub trait SecretStore: Send + Sync {
    /// Reads a Secret; `None` if it does not exist.
    fn read_secret(
        &self,
        secret: &ObjectRef,
    ) -> impl Future<Output = Result<Option<ObservedSecret>, StoreError>> + Send;

    /// Reads several Secrets, each `None` if it does not exist, in the order asked. `labels`
    /// are the labels the profile puts on every Secret it writes: a backend may read all
    /// Secrets carrying them in one request (the Kubernetes store lists by label selector)
    /// and must still find one that lacks them. The default reads one by one.
    fn read_secrets(
        &self,
        secrets: &[ObjectRef],
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Vec<Result<Option<ObservedSecret>, StoreError>>> + Send {
        let _ = labels;
        async move {
            let mut out = Vec::with_capacity(secrets.len());
            for secret in secrets {
                out.push(self.read_secret(secret).await);
            }
            out
        }
    }

    /// Creates a Secret; [`StoreError::AlreadyExists`] if it exists. Returns its version.
    fn create_secret(
        &self,
        secret: &ObjectRef,
        new: &NewSecret,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Updates a Secret if it is still at `expected_version` ([`StoreError::Conflict`]
    /// otherwise). Returns its new version.
    fn update_secret(
        &self,
        secret: &ObjectRef,
        expected_version: &str,
        update: &SecretUpdate,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Makes several writes in order, stopping at the first that fails: one result per
    /// write tried (the new version, or the failure, which is then the last), so the writes
    /// before a failure are made, as if each had been a call of its own.
    ///
    /// The same holds across a crash: whatever a crash (or a power loss) interrupts, what
    /// is left is the writes before some point of the batch, each whole, and none after it,
    /// exactly as if the writes had been made one by one. The engine relies on it: the
    /// last write of a step records the phase, and must never survive a write before it.
    /// A backend may make the batch faster than separate calls (the directory store makes
    /// the new versions durable together instead of one by one) but not weaker. The
    /// default makes the calls one by one.
    fn write_secrets(
        &self,
        writes: &[SecretWrite],
    ) -> impl Future<Output = Vec<Result<String, StoreError>>> + Send {
        async move {
            let mut out = Vec::with_capacity(writes.len());
            for write in writes {
                let result = match write {
                    SecretWrite::Create { secret, new } => self.create_secret(secret, new).await,
                    SecretWrite::Update {
                        secret,
                        expected_version,
                        update,
                    } => self.update_secret(secret, expected_version, update).await,
                };
                let failed = result.is_err();
                out.push(result);
                if failed {
                    break;
                }
            }
            out
        }
    }
}

/// Reading and restarting the workloads that read certificates only at start.
pub trait WorkloadStore: Send + Sync {
    /// Reads a workload's pod-template annotations and rollout status; `None` if absent.
    fn read_workload(
        &self,
        workload: &WorkloadRef,
    ) -> impl Future<Output = Result<Option<ObservedWorkload>, StoreError>> + Send;

    /// Lists the workloads `selector` chooses (its kind, carrying all its labels, in its
    /// namespaces or in all), each with what [`Self::read_workload`] would read, sorted by
    /// reference. [`StoreError::NotApplicable`] where there are no workloads.
    fn list_workloads(
        &self,
        selector: &WorkloadSelector,
    ) -> impl Future<Output = Result<Vec<(WorkloadRef, ObservedWorkload)>, StoreError>> + Send;

    /// Sets pod-template annotations (a rolling restart). [`StoreError::NotFound`] if the
    /// workload is absent, [`StoreError::NotApplicable`] where there are no workloads.
    fn restart_workload(
        &self,
        workload: &WorkloadRef,
        annotations: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Reading and updating the `caBundle`s of webhook configurations.
pub trait WebhookStore: Send + Sync {
    /// Reads every webhook's `caBundle`; `None` if the configuration is absent.
    fn read_webhook(
        &self,
        webhook: &WebhookRef,
    ) -> impl Future<Output = Result<Option<ObservedWebhook>, StoreError>> + Send;

    /// Replaces every webhook's `caBundle` if the configuration is still at
    /// `expected_version`.
    fn update_webhook(
        &self,
        webhook: &WebhookRef,
        expected_version: &str,
        ca_bundles: &[Vec<u8>],
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
}

/// How a store's calls behave on an async executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoKind {
    /// The futures await real async I/O (the Kubernetes API) or no I/O at all (memory):
    /// the engine awaits them in place.
    Async,
    /// The futures block the thread (filesystem calls, `fsync`, `flock`): the engine runs
    /// each call on tokio's blocking pool.
    Blocking,
}

/// Everything the engine needs.
pub trait Store: SecretStore + WorkloadStore + WebhookStore + 'static {
    /// A short description for messages (`directory ./certs`, `kubernetes`).
    fn describe(&self) -> String;

    /// Whether this store has workloads and webhook configurations at all. Local mode does
    /// not; its reads of them answer [`StoreError::NotApplicable`], which the engine records
    /// as data ([`Observed::unavailable`](certrotate_core::plan::Observed::unavailable)).
    fn has_cluster_objects(&self) -> bool {
        true
    }

    /// How this store's calls behave on an async executor (default [`IoKind::Async`]).
    fn io(&self) -> IoKind {
        IoKind::Async
    }
}
