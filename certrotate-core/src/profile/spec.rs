//! The parts of a profile: its CA, the defaults of its leaves, its components, HMAC
//! Secrets, start-only workloads and webhook configurations, with their serde defaults and
//! constructors.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::generate::{DAYS_5Y, ExtendedKeyUsage, KeyAlgorithm, KeyEncoding, KeyUsage};

/// The CA of a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CaSpec {
    /// The Secret that holds the CA certificate and key and the rotation state.
    pub secret: String,
    /// Subject common name of the CA.
    pub common_name: String,
    /// Validity of a new CA.
    #[serde(default = "default_validity", with = "crate::duration_serde")]
    pub validity: Duration,
    /// Key algorithm of a new CA.
    #[serde(default)]
    pub key_algorithm: KeyAlgorithm,
}

/// Defaults for the leaves of a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LeafDefaults {
    /// Validity of a new leaf.
    #[serde(default = "default_validity", with = "crate::duration_serde")]
    pub validity: Duration,
    /// Key algorithm of a new leaf.
    #[serde(default)]
    pub key_algorithm: KeyAlgorithm,
    /// Private key encoding of a new leaf.
    #[serde(default)]
    pub key_encoding: KeyEncoding,
    /// Key usages; a leaf asserts those its key algorithm permits
    /// ([`KeyUsage::permitted_for`]: encipherment only for RSA keys).
    #[serde(default = "default_key_usages")]
    pub key_usages: Vec<KeyUsage>,
    /// Extended key usages.
    #[serde(default = "default_ekus")]
    pub extended_key_usages: Vec<ExtendedKeyUsage>,
}

impl Default for LeafDefaults {
    fn default() -> Self {
        Self {
            validity: DAYS_5Y,
            key_algorithm: KeyAlgorithm::default(),
            key_encoding: KeyEncoding::default(),
            key_usages: default_key_usages(),
            extended_key_usages: default_ekus(),
        }
    }
}

/// One mTLS component: a Secret with `ca.crt`, `tls.crt` and `tls.key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ComponentSpec {
    /// The Secret's name.
    pub secret: String,
    /// The Secret's type.
    #[serde(default = "default_tls_type", rename = "type")]
    pub secret_type: String,
    /// Subject common name of the leaf.
    pub common_name: String,
    /// DNS SANs (templates allowed).
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// IP SANs.
    #[serde(default)]
    pub ip_addresses: Vec<IpAddr>,
    /// The TLS servers that load this Secret (its leaf, and its `ca.crt` if they verify
    /// clients), probed while a rotation converges. None: the timers alone decide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointSpec>,
}

/// A TLS server of a component: in Kubernetes mode a Service and port, resolved through
/// its EndpointSlices to every ready pod (`{service: envoy-gateway, port: 18000}`); in
/// local and standalone mode a literal `HOST:PORT` (`{address: "127.0.0.1:18000"}`). Each
/// applies in its mode only: a Service is not resolved without a cluster, an address not
/// probed in one (pods are reached at their own addresses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EndpointSpec {
    /// The Service, in the profile's namespace (Kubernetes mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The port the pods serve on, as the Service's EndpointSlices list it (its
    /// `targetPort`, a number), with `service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `HOST:PORT`, `[IPv6]:PORT` (local and standalone mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// What an [`EndpointSpec`] names, once validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Exhaustive on purpose: certrotate-kube and certrotate-cli match every variant, so a
// new one fails to compile there instead of falling into a wildcard arm.
pub enum EndpointTarget<'a> {
    /// Every ready pod of a Service, at this port (Kubernetes mode).
    Service {
        /// The Service's name.
        name: &'a str,
        /// The port.
        port: u16,
    },
    /// One literal address (local and standalone mode).
    Address(&'a str),
}

impl EndpointSpec {
    /// Every ready pod behind the Service `service`, at `port`.
    pub fn service(service: impl Into<String>, port: u16) -> Self {
        Self {
            service: Some(service.into()),
            port: Some(port),
            address: None,
        }
    }

    /// A literal `HOST:PORT`.
    pub fn address(address: impl Into<String>) -> Self {
        Self {
            service: None,
            port: None,
            address: Some(address.into()),
        }
    }

    /// What it names, or why it names nothing: either `service` with `port`, or `address`.
    pub fn target(&self) -> Result<EndpointTarget<'_>, String> {
        match (&self.service, self.port, &self.address) {
            (Some(name), Some(port), None) => Ok(EndpointTarget::Service { name, port }),
            (None, None, Some(address)) => Ok(EndpointTarget::Address(address)),
            (Some(_), None, None) => Err("a service needs its port".into()),
            (None, Some(_), None) => Err("a port needs its service".into()),
            (None, None, None) => Err("give either service and port, or address".into()),
            (_, _, Some(_)) => Err("either service and port, or address, not both".into()),
        }
    }
}

/// An HMAC Secret: one key of random bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HmacSpec {
    /// The Secret's name.
    pub secret: String,
    /// The data key.
    #[serde(default = "default_hmac_key")]
    pub key: String,
    /// The key length in bytes.
    #[serde(default = "default_hmac_len")]
    pub length: usize,
}

/// The kind of a workload to restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
// Exhaustive on purpose: certrotate-kube and certrotate-cli match every variant, so a
// new one fails to compile there instead of falling into a wildcard arm.
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Deployment => "deployment",
            Self::StatefulSet => "statefulset",
            Self::DaemonSet => "daemonset",
        })
    }
}

/// A workload, or a set of workloads chosen by label, that reads its certificates only at
/// start and is restarted when they change.
///
/// In a profile file, exactly one of `name` and `selector`; `namespaces` (templates
/// allowed; default: the profile's namespace) or, for a selector only, `all_namespaces`:
///
/// ```toml
/// [[workloads]]
/// kind = "Deployment"
/// name = "envoy-ratelimit"
///
/// [[workloads]]
/// kind = "DaemonSet"
/// selector.match_labels = { "app.kubernetes.io/component" = "proxy" }
/// all_namespaces = true
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawWorkloadSpec", into = "RawWorkloadSpec")]
#[non_exhaustive]
pub struct WorkloadSpec {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Which workloads of that kind.
    pub select: WorkloadSelect,
    /// Where they live.
    pub namespaces: WorkloadNamespaces,
}

/// Which workloads of a kind a [`WorkloadSpec`] names.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkloadSelect {
    /// The workload of this name.
    Name(String),
    /// Every workload whose labels include all of these (a `matchLabels` selector; an
    /// empty map is refused, as it would select every workload).
    Labels(BTreeMap<String, String>),
}

/// The namespaces a [`WorkloadSpec`]'s workloads live in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkloadNamespaces {
    /// The profile's namespace.
    #[default]
    Profile,
    /// These namespaces (templates allowed).
    Listed(Vec<String>),
    /// Every namespace (a selector only): Envoy Gateway's GatewayNamespace mode, where each
    /// Gateway's proxies live in the Gateway's namespace.
    All,
}

/// A label selector as a profile file writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelector {
    #[serde(alias = "matchLabels")]
    match_labels: BTreeMap<String, String>,
}

/// A [`WorkloadSpec`] as a profile file writes it (checked by `TryFrom`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkloadSpec {
    kind: WorkloadKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    selector: Option<RawSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespaces: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    all_namespaces: bool,
}

impl TryFrom<RawWorkloadSpec> for WorkloadSpec {
    type Error = String;

    fn try_from(raw: RawWorkloadSpec) -> Result<Self, String> {
        let select = match (raw.name, raw.selector) {
            (Some(name), None) => WorkloadSelect::Name(name),
            (None, Some(selector)) => WorkloadSelect::Labels(selector.match_labels),
            (Some(_), Some(_)) => {
                return Err("a workload has either `name` or `selector`, not both".into());
            }
            (None, None) => return Err("a workload needs `name` or `selector`".into()),
        };
        let namespaces = match (raw.namespaces, raw.all_namespaces) {
            (None, false) => WorkloadNamespaces::Profile,
            (Some(listed), false) => WorkloadNamespaces::Listed(listed),
            (None, true) => WorkloadNamespaces::All,
            (Some(_), true) => {
                return Err("a workload has either `namespaces` or `all_namespaces`".into());
            }
        };
        if namespaces == WorkloadNamespaces::All && matches!(select, WorkloadSelect::Name(_)) {
            return Err("`all_namespaces` needs a `selector`, not a `name`".into());
        }
        Ok(Self {
            kind: raw.kind,
            select,
            namespaces,
        })
    }
}

impl From<WorkloadSpec> for RawWorkloadSpec {
    fn from(spec: WorkloadSpec) -> Self {
        let (name, selector) = match spec.select {
            WorkloadSelect::Name(name) => (Some(name), None),
            WorkloadSelect::Labels(match_labels) => (None, Some(RawSelector { match_labels })),
        };
        let (namespaces, all_namespaces) = match spec.namespaces {
            WorkloadNamespaces::Profile => (None, false),
            WorkloadNamespaces::Listed(listed) => (Some(listed), false),
            WorkloadNamespaces::All => (None, true),
        };
        Self {
            kind: spec.kind,
            name,
            selector,
            namespaces,
            all_namespaces,
        }
    }
}

/// The kind of a webhook configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
// Closed on purpose: Kubernetes has these two admission webhook configurations.
pub enum WebhookKind {
    /// admissionregistration.k8s.io/v1 MutatingWebhookConfiguration.
    Mutating,
    /// admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration.
    Validating,
}

/// A webhook configuration whose every webhook's `caBundle` carries the CA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WebhookSpec {
    /// Its kind.
    pub kind: WebhookKind,
    /// Its name (cluster-scoped; templates allowed).
    pub name: String,
}

fn default_validity() -> Duration {
    DAYS_5Y
}
pub(super) fn default_tls_type() -> String {
    "kubernetes.io/tls".into()
}
pub(super) fn default_hmac_key() -> String {
    "hmac-secret".into()
}
fn default_hmac_len() -> usize {
    32
}
fn default_key_usages() -> Vec<KeyUsage> {
    vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment]
}
fn default_ekus() -> Vec<ExtendedKeyUsage> {
    vec![ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth]
}

impl CaSpec {
    /// A CA kept in the Secret `secret`, with subject `CN=common_name`, five years of
    /// validity and the default key algorithm.
    pub fn new(secret: impl Into<String>, common_name: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            common_name: common_name.into(),
            validity: default_validity(),
            key_algorithm: KeyAlgorithm::default(),
        }
    }

    /// With another validity.
    pub fn with_validity(mut self, validity: Duration) -> Self {
        self.validity = validity;
        self
    }

    /// With another key algorithm.
    pub fn with_key_algorithm(mut self, algorithm: KeyAlgorithm) -> Self {
        self.key_algorithm = algorithm;
        self
    }
}

impl ComponentSpec {
    /// A component whose `kubernetes.io/tls` Secret `secret` holds a leaf for
    /// `CN=common_name` with these DNS SANs (templates allowed).
    pub fn new(
        secret: impl Into<String>,
        common_name: impl Into<String>,
        dns_names: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            secret: secret.into(),
            secret_type: default_tls_type(),
            common_name: common_name.into(),
            dns_names: dns_names.into_iter().map(Into::into).collect(),
            ip_addresses: Vec::new(),
            endpoints: Vec::new(),
        }
    }

    /// With another Secret type.
    pub fn with_secret_type(mut self, secret_type: impl Into<String>) -> Self {
        self.secret_type = secret_type.into();
        self
    }

    /// With IP SANs.
    pub fn with_ip_addresses(mut self, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.ip_addresses = ips.into_iter().collect();
        self
    }

    /// With a TLS server that loads this Secret.
    pub fn with_endpoint(mut self, endpoint: EndpointSpec) -> Self {
        self.endpoints.push(endpoint);
        self
    }
}

impl HmacSpec {
    /// An HMAC Secret `secret` with 32 random bytes under `hmac-secret`.
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            key: default_hmac_key(),
            length: default_hmac_len(),
        }
    }
}

impl WorkloadSpec {
    /// The workload `name` in the profile's namespace.
    pub fn new(kind: WorkloadKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            select: WorkloadSelect::Name(name.into()),
            namespaces: WorkloadNamespaces::Profile,
        }
    }

    /// Every workload of `kind` carrying all of `labels`, in the profile's namespace.
    pub fn selector(
        kind: WorkloadKind,
        labels: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Self {
        Self {
            kind,
            select: WorkloadSelect::Labels(
                labels
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            namespaces: WorkloadNamespaces::Profile,
        }
    }

    /// In other namespaces.
    pub fn in_namespaces(mut self, namespaces: WorkloadNamespaces) -> Self {
        self.namespaces = namespaces;
        self
    }
}

impl WebhookSpec {
    /// A webhook configuration whose `caBundle`s carry the CA (templates allowed in the
    /// name).
    pub fn new(kind: WebhookKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::error::Origin;
    use crate::profile::{PROXY_LABELS, Profile};

    const HEAD: &str = r#"
name = "p"
namespace = "cp"
[ca]
secret = "ca"
common_name = "ca"
[[components]]
secret = "api"
common_name = "api"
"#;

    fn toml(workloads: &str) -> Result<Profile, crate::Error> {
        Profile::from_toml(&format!("{HEAD}{workloads}"), &Origin::new("p.toml"))
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Profiles written before selectors (a workload by name) load as they did.
    #[test]
    fn a_named_workload_loads_as_before() {
        let p = toml("[[workloads]]\nkind = \"Deployment\"\nname = \"envoy-ratelimit\"\n").unwrap();
        assert_eq!(
            p.workloads,
            [WorkloadSpec::new(
                WorkloadKind::Deployment,
                "envoy-ratelimit"
            )]
        );
    }

    #[test]
    fn a_selector_loads_from_toml_and_yaml() {
        let p = toml(
            r#"
[[workloads]]
kind = "DaemonSet"
selector.match_labels = { "app.kubernetes.io/component" = "proxy", app = "envoy" }
namespaces = ["{namespace}", "team-a"]
[[workloads]]
kind = "Deployment"
selector = { matchLabels = { app = "envoy" } }
all_namespaces = true
"#,
        )
        .unwrap();
        assert_eq!(
            p.workloads,
            [
                WorkloadSpec::selector(
                    WorkloadKind::DaemonSet,
                    [("app.kubernetes.io/component", "proxy"), ("app", "envoy")]
                )
                .in_namespaces(WorkloadNamespaces::Listed(vec![
                    "{namespace}".into(),
                    "team-a".into()
                ])),
                WorkloadSpec::selector(WorkloadKind::Deployment, [("app", "envoy")])
                    .in_namespaces(WorkloadNamespaces::All),
            ]
        );
        let yaml = r#"
name: p
namespace: cp
ca: { secret: ca, common_name: ca }
components: [{ secret: api, common_name: api }]
workloads:
  - kind: Deployment
    selector:
      match_labels:
        app.kubernetes.io/managed-by: envoy-gateway
    all_namespaces: true
"#;
        let y = Profile::from_yaml(yaml, &Origin::new("p.yaml")).unwrap();
        assert_eq!(
            y.workloads[0].select,
            WorkloadSelect::Labels(labels(&[("app.kubernetes.io/managed-by", "envoy-gateway")]))
        );
        assert_eq!(y.workloads[0].namespaces, WorkloadNamespaces::All);
    }

    /// The built-in profile survives a round trip through its file form.
    #[test]
    fn the_built_in_profile_round_trips() {
        let p = Profile::envoy_gateway("eg").with_gateway_namespace_mode();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["workloads"][0]["name"], "envoy-ratelimit");
        assert_eq!(json["workloads"][1]["all_namespaces"], true);
        // JSON is YAML.
        let back = Profile::from_yaml(&json.to_string(), &Origin::new("t")).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn malformed_workloads_are_refused_naming_what_is_wrong() {
        for (workloads, expected) in [
            (
                "kind = \"Deployment\"\nname = \"a\"\nselector.match_labels = { a = \"b\" }",
                "either `name` or `selector`",
            ),
            ("kind = \"Deployment\"", "needs `name` or `selector`"),
            (
                "kind = \"Deployment\"\nselector.match_labels = { a = \"b\" }\nnamespaces = [\"x\"]\nall_namespaces = true",
                "either `namespaces` or `all_namespaces`",
            ),
            (
                "kind = \"Deployment\"\nname = \"a\"\nall_namespaces = true",
                "`all_namespaces` needs a `selector`",
            ),
            (
                "kind = \"Deployment\"\nselector.match_labels = {}",
                "workloads[0].selector.match_labels",
            ),
            (
                "kind = \"Deployment\"\nselector.match_labels = { \"-a\" = \"b\" }",
                "workloads[0].selector.match_labels",
            ),
            (
                "kind = \"Deployment\"\nname = \"a\"\nnamespaces = []",
                "workloads[0].namespaces",
            ),
            (
                "kind = \"Deployment\"\nname = \"a\"\nnamespaces = [\"Team\"]",
                "workloads[0].namespaces[0]",
            ),
            (
                "kind = \"Deployment\"\nselector.labels = { a = \"b\" }",
                "unknown field",
            ),
        ] {
            let error = toml(&format!("[[workloads]]\n{workloads}\n"))
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{workloads}: {error}");
        }
    }

    #[test]
    fn the_built_in_profile_selects_upstreams_proxies() {
        let p = Profile::envoy_gateway("eg");
        let proxies: Vec<&WorkloadSpec> = p
            .workloads
            .iter()
            .filter(|w| matches!(w.select, WorkloadSelect::Labels(_)))
            .collect();
        assert_eq!(
            proxies.iter().map(|w| w.kind).collect::<Vec<_>>(),
            [WorkloadKind::Deployment, WorkloadKind::DaemonSet]
        );
        for w in &proxies {
            assert_eq!(w.select, WorkloadSelect::Labels(labels(&PROXY_LABELS)));
            assert_eq!(w.namespaces, WorkloadNamespaces::Profile);
        }
        let gns = p.with_gateway_namespace_mode();
        assert_eq!(
            gns.workloads
                .iter()
                .map(|w| w.namespaces.clone())
                .collect::<Vec<_>>(),
            [
                WorkloadNamespaces::Profile,
                WorkloadNamespaces::All,
                WorkloadNamespaces::All
            ],
            "the rate limit stays in the controller namespace"
        );
    }
}
