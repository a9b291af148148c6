//! What a command reads and writes, chosen on the command line and never implied: `--dir`
//! (local mode) or a cluster (`--kube`, `--context`, `--kubeconfig`). Every run names it in
//! its first line of output and in its JSON (`target`), so nobody has to guess which folder
//! or cluster a "MISSING" came from.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::UsageError;

/// The error of a command that has a target when none was given (exit 2).
pub(crate) const NO_TARGET: &str = "no target: pass --dir DIR for local mode, or --kube / \
                                    --context / --kubeconfig for a cluster";

/// A command line without `--dir` or a cluster flag: nothing is read or written.
pub(crate) fn no_target() -> UsageError {
    UsageError(NO_TARGET.to_owned())
}

/// Where a run's objects are: a folder, or an API server.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub(crate) enum Place {
    /// Local mode: Secrets as folders `DIR/NAMESPACE/NAME/KEY` (or `DIR/NAME/KEY` in the
    /// standalone layout).
    Local {
        /// DIR, as given.
        dir: String,
        /// Envoy Gateway's standalone tree (`--layout standalone`).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        standalone: bool,
    },
    /// A cluster.
    // Built only with the `kube` feature: without it a cluster flag is refused first.
    #[cfg_attr(not(feature = "kube"), allow(dead_code))]
    Kubernetes {
        /// The kubeconfig context; `None` in a Pod (`in_cluster`).
        context: Option<String>,
        /// The in-cluster service account, not a kubeconfig.
        in_cluster: bool,
        /// The API server's URL (`None` only for a client made elsewhere).
        server: Option<String>,
        /// `--dry-run=server`: the API server checks the writes and keeps none.
        server_dry_run: bool,
    },
}

impl Place {
    pub(crate) fn local(dir: &Path) -> Self {
        Place::Local {
            dir: dir.display().to_string(),
            standalone: false,
        }
    }

    /// The same folder in Envoy Gateway's standalone layout, when `standalone`.
    pub(crate) fn with_standalone(self, standalone: bool) -> Self {
        match self {
            Place::Local { dir, .. } => Place::Local { dir, standalone },
            other @ Place::Kubernetes { .. } => other,
        }
    }

    #[cfg(feature = "kube")]
    pub(crate) fn kube(store: &certrotate_kube::KubeStore) -> Self {
        let endpoint = store.endpoint();
        Place::Kubernetes {
            context: endpoint.and_then(|e| e.context.clone()),
            in_cluster: endpoint.is_some_and(|e| e.context.is_none()),
            server: endpoint.map(|e| e.server.clone()),
            server_dry_run: store.is_dry_run(),
        }
    }
}

impl fmt::Display for Place {
    /// `directory ./certs`, `kubernetes context kind-edge at https://127.0.0.1:6443`,
    /// `kubernetes in-cluster at https://10.96.0.1:443`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Local { dir, standalone } => {
                write!(f, "directory {dir}")?;
                if *standalone {
                    f.write_str(" (standalone layout)")?;
                }
                Ok(())
            }
            Place::Kubernetes {
                context, server, ..
            } => {
                f.write_str("kubernetes")?;
                match context {
                    Some(context) => write!(f, " context {context}")?,
                    None if server.is_some() => f.write_str(" in-cluster")?,
                    None => {}
                }
                if let Some(server) = server {
                    write!(f, " at {server}")?;
                }
                Ok(())
            }
        }
    }
}

/// A run's target: the place and the profile's namespace in it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Target {
    #[serde(flatten)]
    pub(crate) place: Place,
    pub(crate) namespace: String,
}

impl Target {
    pub(crate) fn new(place: Place, namespace: &str) -> Self {
        Self {
            place,
            namespace: namespace.to_owned(),
        }
    }
}

impl fmt::Display for Target {
    /// `directory ./certs, namespace team-d`; `kubernetes context edge at
    /// https://10.0.0.1:6443, namespace edge-system (server-side dry run)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, namespace {}", self.place, self.namespace)?;
        if let Place::Kubernetes {
            server_dry_run: true,
            ..
        } = self.place
        {
            f.write_str(" (server-side dry run)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_names_its_place_and_namespace() {
        let local = Target::new(Place::local(Path::new("./certs")), "team-d");
        assert_eq!(local.to_string(), "directory ./certs, namespace team-d");
        let cluster = Target::new(
            Place::Kubernetes {
                context: Some("edge".into()),
                in_cluster: false,
                server: Some("https://10.0.0.1:6443".into()),
                server_dry_run: true,
            },
            "edge-system",
        );
        assert_eq!(
            cluster.to_string(),
            "kubernetes context edge at https://10.0.0.1:6443, namespace edge-system \
             (server-side dry run)"
        );
        let pod = Place::Kubernetes {
            context: None,
            in_cluster: true,
            server: Some("https://10.96.0.1".into()),
            server_dry_run: false,
        };
        assert_eq!(
            pod.to_string(),
            "kubernetes in-cluster at https://10.96.0.1"
        );
        let json = serde_json::to_value(Target::new(pod, "ns")).unwrap_or_default();
        assert_eq!(json["mode"], "kubernetes");
        assert_eq!(json["in_cluster"], true);
        assert_eq!(json["namespace"], "ns");
    }
}
