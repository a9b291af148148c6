//! The observed model: references to the objects of a profile, and what a store read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::profile::{Profile, WorkloadKind, WorkloadNamespaces, WorkloadSelect};
use crate::refs::{AnyRef, ObjectRef, WebhookRef, WorkloadRef};

/// A Secret as read from a store. `Debug` shows the data keys, never the values.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObservedSecret {
    /// The Secret's type.
    pub secret_type: String,
    /// Its data.
    pub data: BTreeMap<String, Vec<u8>>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// Its version (`resourceVersion`, or what stands in for it).
    pub version: String,
}

impl ObservedSecret {
    /// A Secret with the given type, data and version, without labels or annotations.
    pub fn new(
        secret_type: impl Into<String>,
        data: BTreeMap<String, Vec<u8>>,
        version: impl Into<String>,
    ) -> Self {
        Self {
            secret_type: secret_type.into(),
            data,
            version: version.into(),
            ..Self::default()
        }
    }
}

impl fmt::Debug for ObservedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObservedSecret")
            .field("secret_type", &self.secret_type)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .field("version", &self.version)
            .finish()
    }
}

/// A workload as read from a store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObservedWorkload {
    /// Its pod template's annotations.
    pub template_annotations: BTreeMap<String, String>,
    /// Whether its latest rollout finished (all replicas updated and available).
    pub rollout_complete: bool,
    /// Whether a restart was asked for and is not known to have happened: a host's
    /// restart command that failed, timed out or was interrupted. The planner asks for it
    /// again, and a phase waits for it as for a rollout. A Kubernetes workload never has
    /// one (its restart is one patch).
    pub restart_pending: bool,
}

impl ObservedWorkload {
    /// A workload with the given pod-template annotations and rollout status.
    pub fn new(template_annotations: BTreeMap<String, String>, rollout_complete: bool) -> Self {
        Self {
            template_annotations,
            rollout_complete,
            restart_pending: false,
        }
    }

    /// With a restart asked for that is not known to have happened
    /// ([`restart_pending`](Self::restart_pending)).
    pub fn with_restart_pending(mut self, pending: bool) -> Self {
        self.restart_pending = pending;
        self
    }
}

/// A webhook configuration as read from a store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObservedWebhook {
    /// The `caBundle` of each of its webhooks, in order (empty if unset).
    pub ca_bundles: Vec<Vec<u8>>,
    /// Its version.
    pub version: String,
}

impl ObservedWebhook {
    /// A webhook configuration with the given bundles and version.
    pub fn new(ca_bundles: Vec<Vec<u8>>, version: impl Into<String>) -> Self {
        Self {
            ca_bundles,
            version: version.into(),
        }
    }
}

/// Everything a plan depends on, as read from a store. Objects of the profile that do not
/// exist are absent from the maps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Observed {
    /// Secrets by name.
    pub secrets: BTreeMap<ObjectRef, ObservedSecret>,
    /// Workloads by name: those the profile names, and those its selectors found.
    pub workloads: BTreeMap<WorkloadRef, ObservedWorkload>,
    /// The workloads the profile's selectors ([`ProfileObjects::selectors`]) found; their
    /// state is in [`Self::workloads`]. The plan restarts them as it restarts the named
    /// ones.
    pub selected: BTreeSet<WorkloadRef>,
    /// Webhook configurations by name.
    pub webhooks: BTreeMap<WebhookRef, ObservedWebhook>,
    /// Objects of the profile the store cannot hold at all (local mode has no workloads
    /// and no webhook configurations). They are absent from the maps too; the plan says
    /// "not held by this store" instead of "absent" for them.
    pub unavailable: BTreeSet<AnyRef>,
    /// What the TLS servers of the components showed a probe, in the order probed;
    /// `None` where no endpoint is known. A phase that waits for convergence also waits
    /// for this evidence: in `trust`, until every server that verifies clients lists the
    /// next CA; in `leaves`, until every server presents a leaf of the new CA. A failed
    /// probe is evidence of nothing: the phase waits.
    pub evidence: Option<Vec<Probed>>,
}

/// One probed endpoint and what it showed (or why it showed nothing).
pub type Probed = (
    crate::evidence::Endpoint,
    Result<crate::evidence::Evidence, crate::evidence::ProbeFailure>,
);

/// The objects a profile touches, i.e. what the engine must observe.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProfileObjects {
    /// The CA Secret.
    pub ca_secret: ObjectRef,
    /// Component Secrets, in profile order.
    pub components: Vec<ObjectRef>,
    /// HMAC Secrets, in profile order.
    pub hmac: Vec<ObjectRef>,
    /// Workloads to restart: those the profile names, then (once
    /// [`Self::with_selected`] added them) those its selectors found.
    pub workloads: Vec<WorkloadRef>,
    /// The profile's workload selectors, which an observation expands into workloads
    /// ([`Observed::selected`]).
    pub selectors: Vec<WorkloadSelector>,
    /// Webhook configurations.
    pub webhooks: Vec<WebhookRef>,
}

impl ProfileObjects {
    /// The objects of `profile`.
    pub fn of(profile: &Profile) -> Self {
        let obj = |name: &str| ObjectRef::new(&profile.namespace, name);
        Self {
            ca_secret: obj(&profile.ca.secret),
            components: profile.components.iter().map(|c| obj(&c.secret)).collect(),
            hmac: profile.hmac.iter().map(|h| obj(&h.secret)).collect(),
            workloads: profile
                .workloads
                .iter()
                .flat_map(|w| match &w.select {
                    WorkloadSelect::Name(name) => namespaces_of(profile, &w.namespaces)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|ns| WorkloadRef::new(w.kind, ns, name))
                        .collect(),
                    WorkloadSelect::Labels(_) => Vec::new(),
                })
                .collect(),
            selectors: profile
                .workloads
                .iter()
                .filter_map(|w| match &w.select {
                    WorkloadSelect::Name(_) => None,
                    WorkloadSelect::Labels(labels) => Some(WorkloadSelector {
                        kind: w.kind,
                        labels: labels.clone(),
                        namespaces: namespaces_of(profile, &w.namespaces),
                    }),
                })
                .collect(),
            webhooks: profile
                .webhooks
                .iter()
                .map(|w| WebhookRef {
                    kind: w.kind,
                    name: profile.render(&w.name),
                })
                .collect(),
        }
    }

    /// With the workloads `observed`'s selectors found, after the named ones (each once):
    /// what a plan restarts and waits for.
    pub fn with_selected(mut self, observed: &Observed) -> Self {
        for workload in &observed.selected {
            if !self.workloads.contains(workload) {
                self.workloads.push(workload.clone());
            }
        }
        self
    }

    /// Every Secret: CA, components, HMAC.
    pub fn secrets(&self) -> impl Iterator<Item = &ObjectRef> {
        std::iter::once(&self.ca_secret)
            .chain(&self.components)
            .chain(&self.hmac)
    }
}

/// The namespaces of a workload spec, rendered; `None` for every namespace.
fn namespaces_of(profile: &Profile, namespaces: &WorkloadNamespaces) -> Option<Vec<String>> {
    match namespaces {
        WorkloadNamespaces::Profile => Some(vec![profile.namespace.clone()]),
        WorkloadNamespaces::Listed(listed) => {
            Some(listed.iter().map(|ns| profile.render(ns)).collect())
        }
        WorkloadNamespaces::All => None,
    }
}

/// Workloads of a kind chosen by label, in some namespaces or all: what a store lists.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct WorkloadSelector {
    /// Their kind.
    pub kind: WorkloadKind,
    /// The labels each carries (all of them, with these values).
    pub labels: BTreeMap<String, String>,
    /// The namespaces to look in, rendered; `None` for every namespace.
    pub namespaces: Option<Vec<String>>,
}

impl WorkloadSelector {
    /// Whether a workload of `kind` in `namespace` with `labels` is selected.
    pub fn matches(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        kind == self.kind
            && self
                .namespaces
                .as_ref()
                .is_none_or(|listed| listed.iter().any(|ns| ns == namespace))
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// The selector as the Kubernetes API takes it (`labelSelector=k=v,k2=v2`).
    pub fn label_selector(&self) -> String {
        self.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for WorkloadSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s labelled {}", self.kind, self.label_selector())?;
        match &self.namespaces {
            Some(listed) => write!(f, " in {}", listed.join(", ")),
            None => f.write_str(" in every namespace"),
        }
    }
}
