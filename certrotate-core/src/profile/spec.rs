//! The parts of a profile: its CA, the defaults of its leaves, its components, HMAC
//! Secrets, start-only workloads and webhook configurations, with their serde defaults and
//! constructors.

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

/// A workload that reads its certificates only at start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WorkloadSpec {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its name.
    pub name: String,
}

/// The kind of a webhook configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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
    /// A workload that reads its certificates only at start.
    pub fn new(kind: WorkloadKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
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
