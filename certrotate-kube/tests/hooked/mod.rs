//! A store that passes every call to another, with two hooks for tests: one may answer a
//! Secret read instead of the store (a stale copy, to mix a read), one runs after every
//! accepted write (to record the state after each).

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use certrotate_core::plan::{
    ObjectRef, ObservedSecret, ObservedWebhook, ObservedWorkload, WebhookRef, WorkloadRef,
    WorkloadSelector,
};
use certrotate_kube::{
    NewSecret, SecretStore, SecretUpdate, Store, StoreError, WebhookStore, WorkloadStore,
};

type ReadHook = Box<dyn Fn(&ObjectRef) -> Option<ObservedSecret> + Send + Sync>;
type WriteHook = Box<dyn Fn() + Send + Sync>;

/// `inner` with hooks; [`Hooked::new`] has none.
pub struct Hooked<S> {
    pub inner: S,
    read: ReadHook,
    wrote: WriteHook,
}

impl<S> Hooked<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            read: Box::new(|_| None),
            wrote: Box::new(|| {}),
        }
    }

    /// Answers a Secret read with what `read` returns, when it returns something.
    pub fn on_read(
        mut self,
        read: impl Fn(&ObjectRef) -> Option<ObservedSecret> + Send + Sync + 'static,
    ) -> Self {
        self.read = Box::new(read);
        self
    }

    /// Runs `wrote` after every write the store accepted.
    pub fn on_write(mut self, wrote: impl Fn() + Send + Sync + 'static) -> Self {
        self.wrote = Box::new(wrote);
        self
    }

    fn accepted<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_ok() {
            (self.wrote)();
        }
        result
    }
}

impl<S: SecretStore> SecretStore for Hooked<S> {
    async fn read_secret(&self, s: &ObjectRef) -> Result<Option<ObservedSecret>, StoreError> {
        match (self.read)(s) {
            Some(answer) => Ok(Some(answer)),
            None => self.inner.read_secret(s).await,
        }
    }
    async fn create_secret(&self, s: &ObjectRef, n: &NewSecret) -> Result<String, StoreError> {
        self.accepted(self.inner.create_secret(s, n).await)
    }
    async fn update_secret(
        &self,
        s: &ObjectRef,
        v: &str,
        u: &SecretUpdate,
    ) -> Result<String, StoreError> {
        self.accepted(self.inner.update_secret(s, v, u).await)
    }
}

impl<S: WorkloadStore> WorkloadStore for Hooked<S> {
    async fn read_workload(&self, w: &WorkloadRef) -> Result<Option<ObservedWorkload>, StoreError> {
        self.inner.read_workload(w).await
    }
    async fn list_workloads(
        &self,
        s: &WorkloadSelector,
    ) -> Result<Vec<(WorkloadRef, ObservedWorkload)>, StoreError> {
        self.inner.list_workloads(s).await
    }
    async fn restart_workload(
        &self,
        w: &WorkloadRef,
        a: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        self.accepted(self.inner.restart_workload(w, a).await)
    }
}

impl<S: WebhookStore> WebhookStore for Hooked<S> {
    async fn read_webhook(&self, w: &WebhookRef) -> Result<Option<ObservedWebhook>, StoreError> {
        self.inner.read_webhook(w).await
    }
    async fn update_webhook(
        &self,
        w: &WebhookRef,
        v: &str,
        b: &[Vec<u8>],
    ) -> Result<String, StoreError> {
        self.accepted(self.inner.update_webhook(w, v, b).await)
    }
}

impl<S: Store> Store for Hooked<S> {
    fn describe(&self) -> String {
        format!("hooked {}", self.inner.describe())
    }

    fn has_cluster_objects(&self) -> bool {
        self.inner.has_cluster_objects()
    }

    fn io(&self) -> certrotate_kube::IoKind {
        self.inner.io()
    }
}
