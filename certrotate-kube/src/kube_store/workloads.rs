//! Start-only workloads: read (pod-template annotations and rollout status), listed by a
//! label selector per namespace or cluster-wide (paged), and restarted with the merge patch
//! `kubectl rollout restart` sends.

use std::collections::BTreeMap;

use certrotate_core::plan::{ObservedWorkload, WorkloadRef, WorkloadSelector};
use certrotate_core::profile::WorkloadKind;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::Resource;
use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

use super::*;

pub(super) fn template_annotations(
    template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>,
) -> BTreeMap<String, String> {
    template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default()
}

pub(super) fn deployment_state(d: Deployment) -> ObservedWorkload {
    let generation = d.metadata.generation.unwrap_or(0);
    let spec = d.spec.unwrap_or_default();
    let want = spec.replicas.unwrap_or(1);
    let status = d.status.unwrap_or_default();
    let complete = status.observed_generation.unwrap_or(0) >= generation
        && status.updated_replicas.unwrap_or(0) >= want
        && status.available_replicas.unwrap_or(0) >= want
        && status.replicas.unwrap_or(0) <= want;
    ObservedWorkload::new(template_annotations(Some(&spec.template)), complete)
}

pub(super) fn stateful_set_state(s: StatefulSet) -> ObservedWorkload {
    let generation = s.metadata.generation.unwrap_or(0);
    let spec = s.spec.unwrap_or_default();
    let want = spec.replicas.unwrap_or(1);
    let status = s.status.unwrap_or_default();
    let complete = status.observed_generation.unwrap_or(0) >= generation
        && status.updated_replicas.unwrap_or(0) >= want
        && status.ready_replicas.unwrap_or(0) >= want
        && status.current_revision == status.update_revision;
    ObservedWorkload::new(template_annotations(Some(&spec.template)), complete)
}

pub(super) fn daemon_set_state(d: DaemonSet) -> ObservedWorkload {
    let generation = d.metadata.generation.unwrap_or(0);
    let spec = d.spec.unwrap_or_default();
    let status = d.status.unwrap_or_default();
    let want = status.desired_number_scheduled;
    let complete = status.observed_generation.unwrap_or(0) >= generation
        && status.updated_number_scheduled.unwrap_or(0) >= want
        && status.number_available.unwrap_or(0) >= want;
    ObservedWorkload::new(template_annotations(Some(&spec.template)), complete)
}

impl KubeStore {
    /// Lists the workloads of kind `K` that `selector` chooses into `out`: one list per
    /// namespace (a Role suffices), or one cluster-wide list when it names none, each
    /// paged by [`LIST_PAGE`].
    async fn list_kind<K>(
        &self,
        selector: &WorkloadSelector,
        state: fn(K) -> ObservedWorkload,
        out: &mut Vec<(WorkloadRef, ObservedWorkload)>,
    ) -> Result<(), StoreError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let apis: Vec<Api<K>> = match &selector.namespaces {
            Some(listed) => listed
                .iter()
                .map(|ns| Api::namespaced(self.client.clone(), ns))
                .collect(),
            None => vec![Api::all(self.client.clone())],
        };
        let labels = selector.label_selector();
        for api in apis {
            let mut token: Option<String> = None;
            loop {
                let mut params = ListParams::default().labels(&labels).limit(LIST_PAGE);
                if let Some(t) = &token {
                    params = params.continue_token(t);
                }
                let page = match self.retry(|| api.list(&params)).await {
                    Ok(page) => page,
                    // No such collection (an API server without the apps group): nothing
                    // to select. A missing namespace lists empty.
                    Err(StoreError::NotFound) => break,
                    Err(e) => return Err(e),
                };
                for item in page.items {
                    let meta = item.meta();
                    let (Some(ns), Some(name)) = (meta.namespace.clone(), meta.name.clone()) else {
                        continue;
                    };
                    // The server filtered by label already; this guards against one that
                    // ignored the selector (the restart would hit a workload not chosen).
                    let item_labels = meta.labels.clone().unwrap_or_default();
                    if !selector.matches(selector.kind, &ns, &item_labels) {
                        continue;
                    }
                    out.push((WorkloadRef::new(selector.kind, ns, name), state(item)));
                }
                token = page.metadata.continue_.filter(|t| !t.is_empty());
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// How many workloads one list request asks for.
const LIST_PAGE: u32 = 500;

impl WorkloadStore for KubeStore {
    async fn read_workload(
        &self,
        workload: &WorkloadRef,
    ) -> Result<Option<ObservedWorkload>, StoreError> {
        let (ns, name) = (&workload.object.namespace, &workload.object.name);
        let client = self.client.clone();
        let observed = match workload.kind {
            WorkloadKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(client, ns);
                self.get_opt(&api, name).await?.map(deployment_state)
            }
            WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(client, ns);
                self.get_opt(&api, name).await?.map(stateful_set_state)
            }
            WorkloadKind::DaemonSet => {
                let api: Api<DaemonSet> = Api::namespaced(client, ns);
                self.get_opt(&api, name).await?.map(daemon_set_state)
            }
        };
        Ok(observed)
    }

    async fn list_workloads(
        &self,
        selector: &WorkloadSelector,
    ) -> Result<Vec<(WorkloadRef, ObservedWorkload)>, StoreError> {
        let mut out = Vec::new();
        match selector.kind {
            WorkloadKind::Deployment => {
                self.list_kind::<Deployment>(selector, deployment_state, &mut out)
                    .await?;
            }
            WorkloadKind::StatefulSet => {
                self.list_kind::<StatefulSet>(selector, stateful_set_state, &mut out)
                    .await?;
            }
            WorkloadKind::DaemonSet => {
                self.list_kind::<DaemonSet>(selector, daemon_set_state, &mut out)
                    .await?;
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }

    async fn restart_workload(
        &self,
        workload: &WorkloadRef,
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let (ns, name) = (&workload.object.namespace, &workload.object.name);
        let body = restart_patch(annotations);
        let client = self.client.clone();
        match workload.kind {
            WorkloadKind::Deployment => {
                self.patch_merge(&Api::<Deployment>::namespaced(client, ns), name, &body)
                    .await?;
            }
            WorkloadKind::StatefulSet => {
                self.patch_merge(&Api::<StatefulSet>::namespaced(client, ns), name, &body)
                    .await?;
            }
            WorkloadKind::DaemonSet => {
                self.patch_merge(&Api::<DaemonSet>::namespaced(client, ns), name, &body)
                    .await?;
            }
        }
        Ok(())
    }
}
