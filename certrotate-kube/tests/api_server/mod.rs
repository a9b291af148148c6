//! The Kubernetes backend on the real kube-apiserver of `test-support/controlplane` (the
//! contract suite's fourth backend).
//!
//! The contract is written for one namespace (`contract::NS`, as a profile names it), and
//! every test wants a store of its own, while one control plane serves the whole test
//! binary. So each store made here is a [`KubeStore`] on the shared control plane behind a
//! thin renaming: each namespace a test names (the contract's, or a custom profile's)
//! becomes a fresh namespace of the API server (created on first use), and the
//! cluster-scoped webhook configuration the profile names after the contract's namespace
//! is renamed the same way. Nothing else is touched: every read and
//! write is the real store's, against the real API server (validation, admission,
//! `resourceVersion`s, 409s).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use certrotate_controlplane::ControlPlane;
use certrotate_core::plan::{
    ObjectRef, ObservedSecret, ObservedWebhook, ObservedWorkload, WebhookRef, WorkloadRef,
    WorkloadSelector,
};
use certrotate_kube::{
    KubeStore, NewSecret, SecretStore, SecretUpdate, SecretWrite, Store, StoreError, WebhookStore,
    WorkloadStore,
};
use tokio::sync::OnceCell;

use crate::contract::NS;

/// Whether the control plane is built (one line printed when it is not, a panic under
/// `CERTROTATE_REQUIRE_CONTROLPLANE=1`).
pub fn available() -> bool {
    ControlPlane::shared().is_some()
}

/// A fresh store: the contract's namespace is a namespace of its own on the shared API
/// server. Call only where [`available`] said yes.
pub fn store() -> InNamespace {
    let cp = ControlPlane::shared().expect("the control plane is available");
    let client = cp.client().unwrap();
    InNamespace {
        cp,
        inner: KubeStore::new(client).with_retries(3, std::time::Duration::from_millis(10)),
        namespaces: Arc::default(),
    }
}

/// A [`KubeStore`] whose namespaces are namespaces of its own (see the module docs).
#[derive(Clone)]
pub struct InNamespace {
    cp: &'static ControlPlane,
    inner: KubeStore,
    /// The test's namespace → the API server's, each created on first use.
    namespaces: Arc<Mutex<BTreeMap<String, Arc<OnceCell<String>>>>>,
}

impl InNamespace {
    /// The API server's namespace standing for the test's `namespace`.
    pub async fn namespace(&self, namespace: &str) -> Result<String, StoreError> {
        let cell = self
            .namespaces
            .lock()
            .unwrap()
            .entry(namespace.to_owned())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.cp.namespace("contract"))
            .await
            .cloned()
            .map_err(|e| StoreError::Backend(e.to_string().into()))
    }

    async fn object(&self, object: &ObjectRef) -> Result<ObjectRef, StoreError> {
        Ok(ObjectRef::new(
            self.namespace(&object.namespace).await?,
            object.name.clone(),
        ))
    }

    async fn workload(&self, workload: &WorkloadRef) -> Result<WorkloadRef, StoreError> {
        Ok(WorkloadRef {
            kind: workload.kind,
            object: self.object(&workload.object).await?,
        })
    }

    async fn webhook(&self, webhook: &WebhookRef) -> Result<WebhookRef, StoreError> {
        let ns = self.namespace(NS).await?;
        Ok(WebhookRef {
            kind: webhook.kind,
            name: match webhook.name.strip_suffix(NS) {
                Some(stem) => format!("{stem}{ns}"),
                None => webhook.name.clone(),
            },
        })
    }
}

impl SecretStore for InNamespace {
    async fn read_secret(&self, secret: &ObjectRef) -> Result<Option<ObservedSecret>, StoreError> {
        self.inner.read_secret(&self.object(secret).await?).await
    }

    async fn read_secrets(
        &self,
        secrets: &[ObjectRef],
        labels: &BTreeMap<String, String>,
    ) -> Vec<Result<Option<ObservedSecret>, StoreError>> {
        let mut renamed = Vec::with_capacity(secrets.len());
        for s in secrets {
            match self.object(s).await {
                Ok(s) => renamed.push(s),
                Err(e) => return vec![Err(e)],
            }
        }
        self.inner.read_secrets(&renamed, labels).await
    }

    async fn create_secret(
        &self,
        secret: &ObjectRef,
        new: &NewSecret,
    ) -> Result<String, StoreError> {
        self.inner
            .create_secret(&self.object(secret).await?, new)
            .await
    }

    async fn update_secret(
        &self,
        secret: &ObjectRef,
        expected_version: &str,
        update: &SecretUpdate,
    ) -> Result<String, StoreError> {
        self.inner
            .update_secret(&self.object(secret).await?, expected_version, update)
            .await
    }

    async fn write_secrets(&self, writes: &[SecretWrite]) -> Vec<Result<String, StoreError>> {
        let mut renamed = Vec::with_capacity(writes.len());
        for w in writes {
            let secret = match self.object(w.secret()).await {
                Ok(s) => s,
                Err(e) => return vec![Err(e)],
            };
            renamed.push(match w {
                SecretWrite::Create { new, .. } => SecretWrite::Create {
                    secret,
                    new: new.clone(),
                },
                SecretWrite::Update {
                    expected_version,
                    update,
                    ..
                } => SecretWrite::Update {
                    secret,
                    expected_version: expected_version.clone(),
                    update: update.clone(),
                },
            });
        }
        self.inner.write_secrets(&renamed).await
    }
}

impl WorkloadStore for InNamespace {
    async fn read_workload(
        &self,
        workload: &WorkloadRef,
    ) -> Result<Option<ObservedWorkload>, StoreError> {
        self.inner
            .read_workload(&self.workload(workload).await?)
            .await
    }

    /// The selector's namespaces renamed; every namespace stays every namespace, and what
    /// it finds outside this store's namespaces (other tests') is left out. The found
    /// workloads carry the test's namespace names again.
    async fn list_workloads(
        &self,
        selector: &WorkloadSelector,
    ) -> Result<Vec<(WorkloadRef, ObservedWorkload)>, StoreError> {
        let mut renamed = selector.clone();
        if let Some(listed) = &selector.namespaces {
            let mut namespaces = Vec::with_capacity(listed.len());
            for ns in listed {
                namespaces.push(self.namespace(ns).await?);
            }
            renamed.namespaces = Some(namespaces);
        }
        let known: BTreeMap<String, String> = {
            let cells: Vec<(String, Arc<OnceCell<String>>)> = self
                .namespaces
                .lock()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            cells
                .into_iter()
                .filter_map(|(test, cell)| cell.get().map(|real| (real.clone(), test)))
                .collect()
        };
        let found = self.inner.list_workloads(&renamed).await?;
        Ok(found
            .into_iter()
            .filter_map(|(mut workload, observed)| {
                let test = known.get(&workload.object.namespace)?;
                workload.object.namespace = test.clone();
                Some((workload, observed))
            })
            .collect())
    }

    async fn restart_workload(
        &self,
        workload: &WorkloadRef,
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        self.inner
            .restart_workload(&self.workload(workload).await?, annotations)
            .await
    }
}

impl WebhookStore for InNamespace {
    async fn read_webhook(
        &self,
        webhook: &WebhookRef,
    ) -> Result<Option<ObservedWebhook>, StoreError> {
        self.inner.read_webhook(&self.webhook(webhook).await?).await
    }

    async fn update_webhook(
        &self,
        webhook: &WebhookRef,
        expected_version: &str,
        ca_bundles: &[Vec<u8>],
    ) -> Result<String, StoreError> {
        self.inner
            .update_webhook(&self.webhook(webhook).await?, expected_version, ca_bundles)
            .await
    }
}

impl Store for InNamespace {
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

impl crate::contract::drift::Tamper for InNamespace {
    async fn recreate_injector(&self, ca_bundles: Vec<Vec<u8>>) -> bool {
        let name = self
            .webhook(&crate::contract::drift::injector())
            .await
            .unwrap()
            .name;
        crate::contract::drift::recreate_webhook(self.inner.client(), name, ca_bundles).await
    }
}
