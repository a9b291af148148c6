//! Profiles: what a control plane's certificates look like and where they live.
//!
//! A [`Profile`] names the CA Secret, each component's Secret and leaf, HMAC Secrets, the
//! workloads that read their certificates only at start (and so must be restarted), and the
//! webhook configurations whose `caBundle` carries the CA. Names may use the templates
//! `{namespace}` and `{domain}` (the cluster domain).
//!
//! [`Profile::envoy_gateway`] reproduces Envoy Gateway's `certgen`; others load from TOML or
//! YAML with [`Profile::from_toml`] / [`Profile::from_yaml`].
//!
//! - `spec.rs`: the parts of a profile ([`CaSpec`], [`LeafDefaults`], [`ComponentSpec`],
//!   [`HmacSpec`], [`WorkloadSpec`] (by name or by label selector, see [`WorkloadSelect`]
//!   and [`WorkloadNamespaces`]), [`WebhookSpec`]), their defaults and constructors.
//! - `envoy_gateway.rs`: the built-in profile, [`Profile::envoy_gateway`].
//! - `load.rs`: parsing TOML and YAML, the checks before parsing, and parse errors that never
//!   quote the file.
//! - `validate.rs`: [`Profile::validate`] and the checks of names it uses
//!   ([`validate_subdomain`], [`validate_secret_key`], [`validate_label`],
//!   [`validate_endpoint_address`]).
//! - `model.rs`: [`Profile`] (public at the crate root, as `certrotate_core::Profile`), its
//!   builders, templates, and the parameters of its CA and leaves.

mod envoy_gateway;
mod load;
pub(crate) mod model;
mod spec;
mod validate;

pub use envoy_gateway::PROXY_LABELS;
pub(crate) use model::Profile;
pub use spec::{
    CaSpec, ComponentSpec, EndpointSpec, EndpointTarget, HmacSpec, LeafDefaults, WebhookKind,
    WebhookSpec, WorkloadKind, WorkloadNamespaces, WorkloadSelect, WorkloadSpec,
};
pub(crate) use validate::validate_dns_name;
pub use validate::{
    validate_endpoint_address, validate_label, validate_secret_key, validate_subdomain,
};
