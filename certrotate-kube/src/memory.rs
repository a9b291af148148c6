//! An in-memory store with the API server's semantics, and a fault-injecting wrapper.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use certrotate_core::plan::{
    ObjectRef, Observed, ObservedSecret, ObservedWebhook, ObservedWorkload, WebhookRef,
    WorkloadRef, WorkloadSelector,
};

use crate::error::StoreError;
use crate::store::{NewSecret, SecretStore, SecretUpdate, Store, WebhookStore, WorkloadStore};

/// A store in memory, faithful to the API server where certrotate depends on it: every
/// write bumps a global `resourceVersion`, a write with a stale version is a conflict, a
/// double create is `AlreadyExists`, absent objects are `NotFound`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    version: u64,
    secrets: BTreeMap<ObjectRef, ObservedSecret>,
    workloads: BTreeMap<WorkloadRef, Workload>,
    webhooks: BTreeMap<WebhookRef, ObservedWebhook>,
    writes: u64,
    manual_rollouts: bool,
}

#[derive(Debug, Default, Clone)]
struct Workload {
    observed: ObservedWorkload,
    labels: BTreeMap<String, String>,
    restarts: u32,
}

impl State {
    fn bump(&mut self) -> String {
        self.version += 1;
        self.writes += 1;
        self.version.to_string()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is only mutated under the lock by whole-object assignments.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a workload whose rollouts complete at once (see [`Self::manual_rollouts`]).
    pub fn insert_workload(&self, workload: WorkloadRef) {
        self.insert_labelled_workload(workload, BTreeMap::new());
    }

    /// Adds a workload with these labels (what a selector matches), whose rollouts
    /// complete at once (see [`Self::manual_rollouts`]).
    pub fn insert_labelled_workload(
        &self,
        workload: WorkloadRef,
        labels: BTreeMap<String, String>,
    ) {
        let mut state = self.lock();
        state.workloads.insert(
            workload,
            Workload {
                observed: ObservedWorkload::new(BTreeMap::new(), true),
                labels,
                restarts: 0,
            },
        );
    }

    /// After a restart, leave rollouts in progress until [`Self::complete_rollout`].
    pub fn manual_rollouts(&self, manual: bool) {
        self.lock().manual_rollouts = manual;
    }

    /// Marks a workload's rollout as finished.
    pub fn complete_rollout(&self, workload: &WorkloadRef) {
        if let Some(w) = self.lock().workloads.get_mut(workload) {
            w.observed.rollout_complete = true;
        }
    }

    /// How many times a workload was restarted.
    pub fn restarts(&self, workload: &WorkloadRef) -> u32 {
        self.lock()
            .workloads
            .get(workload)
            .map_or(0, |w| w.restarts)
    }

    /// Adds a webhook configuration with these `caBundle`s.
    pub fn insert_webhook(&self, webhook: WebhookRef, ca_bundles: Vec<Vec<u8>>) {
        let mut state = self.lock();
        let version = state.bump();
        state
            .webhooks
            .insert(webhook, ObservedWebhook::new(ca_bundles, version));
    }

    /// Puts a Secret in place (test setup), bumping its version.
    pub fn insert_secret(&self, secret: ObjectRef, mut value: ObservedSecret) {
        let mut state = self.lock();
        value.version = state.bump();
        state.secrets.insert(secret, value);
    }

    /// Everything in the store.
    pub fn snapshot(&self) -> Observed {
        let state = self.lock();
        let mut observed = Observed::default();
        observed.secrets = state.secrets.clone();
        observed.workloads = state
            .workloads
            .iter()
            .map(|(k, w)| (k.clone(), w.observed.clone()))
            .collect();
        observed.webhooks = state.webhooks.clone();
        observed
    }

    /// How many writes the store accepted.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }
}

impl SecretStore for MemoryStore {
    async fn read_secret(&self, secret: &ObjectRef) -> Result<Option<ObservedSecret>, StoreError> {
        Ok(self.lock().secrets.get(secret).cloned())
    }

    async fn create_secret(
        &self,
        secret: &ObjectRef,
        new: &NewSecret,
    ) -> Result<String, StoreError> {
        let mut state = self.lock();
        if state.secrets.contains_key(secret) {
            return Err(StoreError::AlreadyExists);
        }
        let version = state.bump();
        let mut value = ObservedSecret::new(&new.secret_type, new.data.clone(), &version);
        value.labels = new.labels.clone();
        value.annotations = new.annotations.clone();
        state.secrets.insert(secret.clone(), value);
        Ok(version)
    }

    async fn update_secret(
        &self,
        secret: &ObjectRef,
        expected_version: &str,
        update: &SecretUpdate,
    ) -> Result<String, StoreError> {
        let mut state = self.lock();
        let Some(current) = state.secrets.get(secret) else {
            return Err(StoreError::NotFound);
        };
        if current.version != expected_version {
            return Err(StoreError::Conflict);
        }
        let mut value = current.clone();
        update.apply_to(&mut value);
        let version = state.bump();
        value.version = version.clone();
        state.secrets.insert(secret.clone(), value);
        Ok(version)
    }
}

impl WorkloadStore for MemoryStore {
    async fn read_workload(
        &self,
        workload: &WorkloadRef,
    ) -> Result<Option<ObservedWorkload>, StoreError> {
        Ok(self
            .lock()
            .workloads
            .get(workload)
            .map(|w| w.observed.clone()))
    }

    async fn list_workloads(
        &self,
        selector: &WorkloadSelector,
    ) -> Result<Vec<(WorkloadRef, ObservedWorkload)>, StoreError> {
        Ok(self
            .lock()
            .workloads
            .iter()
            .filter(|(r, w)| selector.matches(r.kind, &r.object.namespace, &w.labels))
            .map(|(r, w)| (r.clone(), w.observed.clone()))
            .collect())
    }

    async fn restart_workload(
        &self,
        workload: &WorkloadRef,
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let manual = state.manual_rollouts;
        state.writes += 1;
        let Some(w) = state.workloads.get_mut(workload) else {
            return Err(StoreError::NotFound);
        };
        w.observed
            .template_annotations
            .extend(annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
        w.observed.rollout_complete = !manual;
        w.restarts += 1;
        Ok(())
    }
}

impl WebhookStore for MemoryStore {
    async fn read_webhook(
        &self,
        webhook: &WebhookRef,
    ) -> Result<Option<ObservedWebhook>, StoreError> {
        Ok(self.lock().webhooks.get(webhook).cloned())
    }

    async fn update_webhook(
        &self,
        webhook: &WebhookRef,
        expected_version: &str,
        ca_bundles: &[Vec<u8>],
    ) -> Result<String, StoreError> {
        let mut state = self.lock();
        let Some(current) = state.webhooks.get(webhook) else {
            return Err(StoreError::NotFound);
        };
        if current.version != expected_version {
            return Err(StoreError::Conflict);
        }
        let version = state.bump();
        state.webhooks.insert(
            webhook.clone(),
            ObservedWebhook::new(ca_bundles.to_vec(), version.clone()),
        );
        Ok(version)
    }
}

impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory".into()
    }
}

/// Wraps a store and fails chosen calls: the Nth write, or every call whose description
/// (`update secret ns/name`, `restart deployment ns/name`, `read secret ns/name`) contains a
/// pattern. The failed write does not reach the inner store, as if the process died just
/// before it.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    fail_write: Option<u64>,
    fail_matching: Option<String>,
    conflict_matching: Option<(String, AtomicU64)>,
    writes: AtomicU64,
}

impl<S> FaultyStore<S> {
    /// Wraps `inner` with no faults.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            fail_write: None,
            fail_matching: None,
            conflict_matching: None,
            writes: AtomicU64::new(0),
        }
    }

    /// Fails the `n`th write (1-based) and every write after it, as a crashed process would.
    pub fn crash_at_write(mut self, n: u64) -> Self {
        self.fail_write = Some(n);
        self
    }

    /// Fails every call whose description contains `pattern`.
    pub fn fail_matching(mut self, pattern: impl Into<String>) -> Self {
        self.fail_matching = Some(pattern.into());
        self
    }

    /// Answers the first `times` calls matching `pattern` with a conflict.
    pub fn conflict_matching(mut self, pattern: impl Into<String>, times: u64) -> Self {
        self.conflict_matching = Some((pattern.into(), AtomicU64::new(times)));
        self
    }

    /// How many writes were attempted.
    pub fn writes_attempted(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn check(&self, call: &str, write: bool) -> Result<(), StoreError> {
        if write {
            let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
            if self.fail_write.is_some_and(|at| n >= at) {
                return Err(StoreError::Backend(
                    format!("injected crash at write {n}: {call}").into(),
                ));
            }
        }
        if self
            .fail_matching
            .as_ref()
            .is_some_and(|p| call.contains(p.as_str()))
        {
            return Err(StoreError::Backend(
                format!("injected fault: {call}").into(),
            ));
        }
        if let Some((p, left)) = &self.conflict_matching
            && call.contains(p.as_str())
            && left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1))
                .is_ok()
        {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }
}

impl<S: SecretStore> SecretStore for FaultyStore<S> {
    async fn read_secret(&self, secret: &ObjectRef) -> Result<Option<ObservedSecret>, StoreError> {
        self.check(&format!("read secret {secret}"), false)?;
        self.inner.read_secret(secret).await
    }

    async fn create_secret(
        &self,
        secret: &ObjectRef,
        new: &NewSecret,
    ) -> Result<String, StoreError> {
        self.check(&format!("create secret {secret}"), true)?;
        self.inner.create_secret(secret, new).await
    }

    async fn update_secret(
        &self,
        secret: &ObjectRef,
        expected_version: &str,
        update: &SecretUpdate,
    ) -> Result<String, StoreError> {
        self.check(&format!("update secret {secret}"), true)?;
        self.inner
            .update_secret(secret, expected_version, update)
            .await
    }
}

impl<S: WorkloadStore> WorkloadStore for FaultyStore<S> {
    async fn read_workload(
        &self,
        workload: &WorkloadRef,
    ) -> Result<Option<ObservedWorkload>, StoreError> {
        self.check(&format!("read {workload}"), false)?;
        self.inner.read_workload(workload).await
    }

    async fn list_workloads(
        &self,
        selector: &WorkloadSelector,
    ) -> Result<Vec<(WorkloadRef, ObservedWorkload)>, StoreError> {
        self.check(&format!("list {selector}"), false)?;
        self.inner.list_workloads(selector).await
    }

    async fn restart_workload(
        &self,
        workload: &WorkloadRef,
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        self.check(&format!("restart {workload}"), true)?;
        self.inner.restart_workload(workload, annotations).await
    }
}

impl<S: WebhookStore> WebhookStore for FaultyStore<S> {
    async fn read_webhook(
        &self,
        webhook: &WebhookRef,
    ) -> Result<Option<ObservedWebhook>, StoreError> {
        self.check(&format!("read {webhook}"), false)?;
        self.inner.read_webhook(webhook).await
    }

    async fn update_webhook(
        &self,
        webhook: &WebhookRef,
        expected_version: &str,
        ca_bundles: &[Vec<u8>],
    ) -> Result<String, StoreError> {
        self.check(&format!("update {webhook}"), true)?;
        self.inner
            .update_webhook(webhook, expected_version, ca_bundles)
            .await
    }
}

impl<S: Store> Store for FaultyStore<S> {
    fn describe(&self) -> String {
        format!("faulty {}", self.inner.describe())
    }

    fn has_cluster_objects(&self) -> bool {
        self.inner.has_cluster_objects()
    }

    fn io(&self) -> crate::IoKind {
        self.inner.io()
    }
}
