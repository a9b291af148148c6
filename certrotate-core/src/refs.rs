//! References to the objects of a control plane: a Secret ([`ObjectRef`]), a workload, a
//! webhook configuration, or any of them ([`AnyRef`]): what plans, events, reports and
//! errors are about. Nothing here depends on the planner.

use std::fmt;

use serde::Serialize;

use crate::profile::{WebhookKind, WorkloadKind};

/// A namespaced object's name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A workload of a profile.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct WorkloadRef {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Namespace and name.
    pub object: ObjectRef,
}

impl WorkloadRef {
    /// A workload of `kind` named `namespace/name`.
    pub fn new(kind: WorkloadKind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            object: ObjectRef::new(namespace, name),
        }
    }
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.object)
    }
}

/// A webhook configuration of a profile.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct WebhookRef {
    /// Its kind.
    pub kind: WebhookKind,
    /// Its (cluster-scoped) name.
    pub name: String,
}

impl WebhookRef {
    /// A webhook configuration of `kind` named `name`.
    pub fn new(kind: WebhookKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for WebhookRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            WebhookKind::Mutating => "mutatingwebhookconfiguration",
            WebhookKind::Validating => "validatingwebhookconfiguration",
        };
        write!(f, "{kind} {}", self.name)
    }
}

/// Any object of a profile: what a note, an event or an error is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", content = "ref", rename_all = "kebab-case")]
// Exhaustive on purpose: certrotate-kube and certrotate-cli match every variant, so a
// new one fails to compile there instead of falling into a wildcard arm.
pub enum AnyRef {
    /// A Secret.
    Secret(ObjectRef),
    /// A workload.
    Workload(WorkloadRef),
    /// A webhook configuration.
    Webhook(WebhookRef),
}

impl fmt::Display for AnyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(s) => write!(f, "secret {s}"),
            Self::Workload(w) => w.fmt(f),
            Self::Webhook(w) => w.fmt(f),
        }
    }
}

impl From<ObjectRef> for AnyRef {
    fn from(r: ObjectRef) -> Self {
        Self::Secret(r)
    }
}

impl From<WorkloadRef> for AnyRef {
    fn from(r: WorkloadRef) -> Self {
        Self::Workload(r)
    }
}

impl From<WebhookRef> for AnyRef {
    fn from(r: WebhookRef) -> Self {
        Self::Webhook(r)
    }
}
