//! [`Profile`]: its fields, builders, templates, and the parameters of its CA and leaves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CaSpec, ComponentSpec, HmacSpec, LeafDefaults, WebhookSpec, WorkloadSpec};
use crate::error::Error;
use crate::generate::{CaParams, KeyAlgorithm, KeyEncoding, LeafParams};

/// A control plane's certificate layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Profile {
    /// The profile's name (`envoy-gateway`).
    pub name: String,
    /// The namespace of every Secret and workload (`--namespace` overrides it).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The cluster DNS domain, for `{domain}` in SANs.
    #[serde(default = "default_domain")]
    pub cluster_domain: String,
    /// Labels set on every Secret written.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The CA and the Secret that keeps it (with the rotation state).
    pub ca: CaSpec,
    /// Defaults for every leaf.
    #[serde(default)]
    pub leaf: LeafDefaults,
    /// The mTLS components, one Secret each.
    pub components: Vec<ComponentSpec>,
    /// HMAC Secrets (random keys, no certificates).
    #[serde(default)]
    pub hmac: Vec<HmacSpec>,
    /// Workloads that read their certificates only at start-up and must be restarted, by
    /// name or by label selector.
    #[serde(default)]
    pub workloads: Vec<WorkloadSpec>,
    /// Webhook configurations whose `caBundle` carries the CA.
    #[serde(default)]
    pub webhooks: Vec<WebhookSpec>,
}

fn default_namespace() -> String {
    "default".into()
}
pub(super) fn default_domain() -> String {
    "cluster.local".into()
}

impl Profile {
    /// The component whose Secret is `secret`, or, for the error, which component Secrets
    /// the profile has: `"profile NAME has no component Secret X (it has A, B)"`.
    pub fn component(&self, secret: &str) -> Result<&ComponentSpec, String> {
        self.components
            .iter()
            .find(|c| c.secret == secret)
            .ok_or_else(|| {
                let known: Vec<&str> = self.components.iter().map(|c| c.secret.as_str()).collect();
                format!(
                    "profile {} has no component Secret {secret} (it has {})",
                    self.name,
                    known.join(", ")
                )
            })
    }

    /// A profile named `name` in `namespace`, with its CA and components, default leaf
    /// settings, and no labels, HMAC Secrets, workloads or webhooks (add them with the
    /// `with_*` methods). Check the result with [`Self::validate`].
    ///
    /// ```
    /// use certrotate_core::Profile;
    /// use certrotate_core::profile::{CaSpec, ComponentSpec, WorkloadKind, WorkloadSpec};
    ///
    /// let profile = Profile::new(
    ///     "my-plane",
    ///     "my-system",
    ///     CaSpec::new("my-plane-ca", "my-plane"),
    ///     vec![ComponentSpec::new("api", "api", ["api.{namespace}.svc"])],
    /// )
    /// .with_workload(WorkloadSpec::new(WorkloadKind::Deployment, "api"));
    /// profile.validate()?;
    /// # Ok::<(), certrotate_core::Error>(())
    /// ```
    pub fn new(
        name: impl Into<String>,
        namespace: impl Into<String>,
        ca: CaSpec,
        components: Vec<ComponentSpec>,
    ) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            cluster_domain: default_domain(),
            labels: BTreeMap::new(),
            ca,
            leaf: LeafDefaults::default(),
            components,
            hmac: Vec::new(),
            workloads: Vec::new(),
            webhooks: Vec::new(),
        }
    }

    /// With a label set on every Secret written.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// With another cluster DNS domain (for `{domain}` in SANs).
    pub fn with_cluster_domain(mut self, domain: impl Into<String>) -> Self {
        self.cluster_domain = domain.into();
        self
    }

    /// With other leaf defaults.
    pub fn with_leaf_defaults(mut self, leaf: LeafDefaults) -> Self {
        self.leaf = leaf;
        self
    }

    /// With an HMAC Secret.
    pub fn with_hmac(mut self, hmac: HmacSpec) -> Self {
        self.hmac.push(hmac);
        self
    }

    /// With a workload to restart.
    pub fn with_workload(mut self, workload: WorkloadSpec) -> Self {
        self.workloads.push(workload);
        self
    }

    /// With a webhook configuration whose `caBundle`s carry the CA.
    pub fn with_webhook(mut self, webhook: WebhookSpec) -> Self {
        self.webhooks.push(webhook);
        self
    }

    /// This profile in another namespace.
    pub fn with_namespace(mut self, namespace: &str) -> Result<Self, Error> {
        self.namespace = namespace.to_owned();
        self.validate()?;
        Ok(self)
    }

    /// Replaces `{namespace}` and `{domain}` in a template.
    pub fn render(&self, template: &str) -> String {
        template
            .replace("{namespace}", &self.namespace)
            .replace("{domain}", &self.cluster_domain)
    }

    /// The parameters of a new CA for this profile.
    pub fn ca_params(&self) -> CaParams {
        CaParams {
            validity: self.ca.validity,
            key_algorithm: self.ca.key_algorithm,
            ..CaParams::new(&self.ca.common_name)
        }
    }

    /// The parameters of a component's leaf, templates rendered.
    pub fn leaf_params(&self, component: &ComponentSpec) -> Result<LeafParams, Error> {
        Ok(LeafParams {
            common_name: self.render(&component.common_name),
            dns_names: component.dns_names.iter().map(|d| self.render(d)).collect(),
            ip_addresses: component.ip_addresses.clone(),
            validity: self.leaf.validity,
            key_algorithm: self.leaf.key_algorithm,
            key_encoding: self.leaf.key_encoding,
            key_usages: self.leaf.key_usages.clone(),
            extended_key_usages: self.leaf.extended_key_usages.clone(),
            ..LeafParams::default()
        })
    }

    /// Sets the key algorithm of the CA and of every leaf.
    pub fn set_key_algorithm(&mut self, algorithm: KeyAlgorithm) {
        self.ca.key_algorithm = algorithm;
        self.leaf.key_algorithm = algorithm;
        if !algorithm.is_rsa() {
            self.leaf.key_encoding = KeyEncoding::Pkcs8;
        }
    }
}
