//! Profiles: what a control plane's certificates look like and where they live.
//!
//! A [`Profile`] names the CA Secret, each component's Secret and leaf, HMAC Secrets, the
//! workloads that read their certificates only at start (and so must be restarted), and the
//! webhook configurations whose `caBundle` carries the CA. Names may use the templates
//! `{namespace}` and `{domain}` (the cluster domain).
//!
//! [`Profile::envoy_gateway`] reproduces Envoy Gateway's `certgen`; others load from TOML or
//! YAML with [`Profile::from_toml`] / [`Profile::from_yaml`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Origin};
use crate::generate::{
    CaParams, DAYS_5Y, ExtendedKeyUsage, KeyAlgorithm, KeyEncoding, KeyUsage, LeafParams,
};

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
    /// Workloads that read their certificates only at start-up and must be restarted.
    #[serde(default)]
    pub workloads: Vec<WorkloadSpec>,
    /// Webhook configurations whose `caBundle` carries the CA.
    #[serde(default)]
    pub webhooks: Vec<WebhookSpec>,
}

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

fn default_namespace() -> String {
    "default".into()
}
fn default_domain() -> String {
    "cluster.local".into()
}
fn default_validity() -> Duration {
    DAYS_5Y
}
fn default_tls_type() -> String {
    "kubernetes.io/tls".into()
}
fn default_hmac_key() -> String {
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

/// The most bytes read from a profile file.
pub const MAX_PROFILE_BYTES: usize = 1 << 20;

impl Profile {
    /// The built-in profile of Envoy Gateway, matching its `certgen`: Secrets `envoy-gateway`,
    /// `envoy` and `envoy-rate-limit` (`kubernetes.io/tls`) and `envoy-oidc-hmac` (`Opaque`,
    /// 32 bytes under `hmac-secret`), all labelled `control-plane: envoy-gateway`; certgen's
    /// SANs and key usages (plus serverAuth/clientAuth; the encipherment bits only on RSA
    /// keys, as RFC 5480 and RFC 8410 require); the rate-limit Deployment
    /// `envoy-ratelimit` restarted because it reads its CA only at start; and the
    /// `caBundle` of `envoy-gateway-topology-injector.{namespace}`. The CA is kept in
    /// `envoy-gateway-ca` (certgen kept no CA key at all).
    pub fn envoy_gateway(namespace: &str) -> Self {
        let leaf = |secret: &str, cn: &str, dns: &[&str]| ComponentSpec {
            secret: secret.into(),
            secret_type: default_tls_type(),
            common_name: cn.into(),
            dns_names: dns.iter().map(|s| (*s).to_owned()).collect(),
            ip_addresses: Vec::new(),
        };
        Self {
            name: "envoy-gateway".into(),
            namespace: namespace.into(),
            cluster_domain: default_domain(),
            labels: BTreeMap::from([("control-plane".into(), "envoy-gateway".into())]),
            ca: CaSpec {
                secret: "envoy-gateway-ca".into(),
                common_name: "envoy-gateway".into(),
                validity: DAYS_5Y,
                key_algorithm: KeyAlgorithm::default(),
            },
            leaf: LeafDefaults {
                key_usages: vec![
                    KeyUsage::DigitalSignature,
                    KeyUsage::DataEncipherment,
                    KeyUsage::KeyEncipherment,
                    KeyUsage::ContentCommitment,
                ],
                ..LeafDefaults::default()
            },
            components: vec![
                leaf(
                    "envoy-gateway",
                    "envoy-gateway",
                    &[
                        "envoy-gateway",
                        "envoy-gateway.{namespace}",
                        "envoy-gateway.{namespace}.svc",
                        "envoy-gateway.{namespace}.svc.{domain}",
                    ],
                ),
                leaf("envoy", "*", &["*.{namespace}"]),
                leaf("envoy-rate-limit", "*", &["*.{namespace}"]),
            ],
            hmac: vec![HmacSpec {
                secret: "envoy-oidc-hmac".into(),
                key: default_hmac_key(),
                length: 32,
            }],
            workloads: vec![WorkloadSpec {
                kind: WorkloadKind::Deployment,
                name: "envoy-ratelimit".into(),
            }],
            webhooks: vec![WebhookSpec {
                kind: WebhookKind::Mutating,
                name: "envoy-gateway-topology-injector.{namespace}".into(),
            }],
        }
    }

    /// A profile named `name` in `namespace`, with its CA and components, default leaf
    /// settings, and no labels, HMAC Secrets, workloads or webhooks (add them with the
    /// `with_*` methods). Check the result with [`Self::validate`].
    ///
    /// ```
    /// use certrotate_core::profile::{ComponentSpec, CaSpec, Profile, WorkloadKind, WorkloadSpec};
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

    /// Parses and validates a profile in TOML.
    pub fn from_toml(text: &str, origin: &Origin) -> Result<Self, Error> {
        check_input(text, origin)?;
        // Not `Display`: toml's message quotes the offending lines of the file.
        let profile: Self = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |span| span.start);
            let (line, column) = line_column(text, at);
            parse_error(origin, line, column, e.message())
        })?;
        profile.validate()?;
        Ok(profile)
    }

    /// Parses and validates a profile in YAML.
    pub fn from_yaml(text: &str, origin: &Origin) -> Result<Self, Error> {
        check_input(text, origin)?;
        // Not `Display`: serde-saphyr's message quotes the offending lines of the file.
        let profile: Self = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
            let message = e.without_snippet().to_string();
            // The bare error still ends with its location, which we give first.
            let message = match message.rsplit_once(" at line ") {
                Some((message, _)) => message.to_owned(),
                None => message,
            };
            parse_error(origin, line, column, &message)
        })?;
        profile.validate()?;
        Ok(profile)
    }

    /// This profile in another namespace.
    pub fn with_namespace(mut self, namespace: &str) -> Result<Self, Error> {
        self.namespace = namespace.to_owned();
        self.validate()?;
        Ok(self)
    }

    /// Checks names, templates and parameters; every error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |field: String, reason: String| Error::InvalidParameter { field, reason };
        validate_label(&self.namespace).map_err(|r| invalid("namespace".into(), r))?;
        validate_dns_name(&self.cluster_domain).map_err(|r| invalid("cluster_domain".into(), r))?;
        validate_subdomain(&self.ca.secret).map_err(|r| invalid("ca.secret".into(), r))?;
        if self.ca.common_name.is_empty() || self.ca.common_name.len() > 64 {
            return Err(invalid(
                "ca.common_name".into(),
                "must be 1 to 64 characters".into(),
            ));
        }
        if self.components.is_empty() {
            return Err(invalid(
                "components".into(),
                "a profile needs at least one component".into(),
            ));
        }
        let mut names = BTreeMap::new();
        names.insert(self.ca.secret.clone(), "ca.secret".to_owned());
        let mut claim =
            |name: &str, field: String| match names.insert(name.to_owned(), field.clone()) {
                Some(other) => Err(invalid(
                    field,
                    format!("Secret {} is also used by {other}", quoted(name)),
                )),
                None => Ok(()),
            };
        for (i, c) in self.components.iter().enumerate() {
            let field = format!("components[{i}]");
            validate_subdomain(&c.secret).map_err(|r| invalid(format!("{field}.secret"), r))?;
            claim(&c.secret, format!("{field}.secret"))?;
            self.leaf_params(c).and_then(|p| {
                for (j, d) in p.dns_names.iter().enumerate() {
                    validate_dns_name(d).map_err(|r| {
                        invalid(
                            format!("{field}.dns_names[{j}]"),
                            format!("{}: {r}", quoted(d)),
                        )
                    })?;
                }
                if p.common_name.is_empty() || p.common_name.len() > 64 {
                    return Err(invalid(
                        format!("{field}.common_name"),
                        "must be 1 to 64 characters".into(),
                    ));
                }
                Ok(())
            })?;
        }
        for (i, h) in self.hmac.iter().enumerate() {
            validate_subdomain(&h.secret).map_err(|r| invalid(format!("hmac[{i}].secret"), r))?;
            claim(&h.secret, format!("hmac[{i}].secret"))?;
            validate_secret_key(&h.key).map_err(|r| invalid(format!("hmac[{i}].key"), r))?;
            if h.length < 16 || h.length > 4096 {
                return Err(invalid(
                    format!("hmac[{i}].length"),
                    format!("{} is outside 16..=4096 bytes", h.length),
                ));
            }
        }
        for (i, w) in self.workloads.iter().enumerate() {
            validate_subdomain(&w.name).map_err(|r| invalid(format!("workloads[{i}].name"), r))?;
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            validate_subdomain(&self.render(&w.name))
                .map_err(|r| invalid(format!("webhooks[{i}].name"), r))?;
        }
        if self.leaf.validity < Duration::from_secs(3600) {
            return Err(invalid("leaf.validity".into(), "shorter than 1h".into()));
        }
        if self.ca.validity < self.leaf.validity {
            return Err(invalid(
                "ca.validity".into(),
                "shorter than leaf.validity: leaves would be cut to the CA's lifetime".into(),
            ));
        }
        if KeyUsage::permitted(&self.leaf.key_usages, self.leaf.key_algorithm).is_empty() {
            return Err(invalid(
                "leaf.key_usages".into(),
                format!(
                    "none is permitted for {} keys (encipherment needs RSA)",
                    self.leaf.key_algorithm
                ),
            ));
        }
        if self.leaf.key_encoding == KeyEncoding::Pkcs1 && !self.leaf.key_algorithm.is_rsa() {
            return Err(invalid(
                "leaf.key_encoding".into(),
                "pkcs1 needs an RSA key algorithm".into(),
            ));
        }
        Ok(())
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

/// A parse error of a profile: where (1-based line and column; 0 when the parser gave
/// none) and what was expected, with every value quoted from the file withheld but short
/// words (see [`shown`]). A profile given by mistake may be a private key: its content must
/// never reach an error message.
fn parse_error(origin: &Origin, line: usize, column: usize, message: &str) -> Error {
    let mut reason = String::new();
    let mut rest = message.trim();
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[open];
        reason.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        // A `"` string may hold escaped quotes (serde prints strings with `{:?}`).
        let mut escaped = false;
        let close = after.char_indices().find_map(|(i, c)| {
            let found = c as u32 == u32::from(quote) && !escaped;
            escaped = !escaped && c == '\\' && quote == b'"';
            found.then_some(i)
        });
        let Some(close) = close else {
            reason.push_str(&withheld(after));
            rest = "";
            break;
        };
        let quoted = &after[..close];
        if shown(quoted) {
            reason.push_str(quoted);
        } else {
            reason.push_str(&withheld(quoted));
        }
        reason.push(quote as char);
        rest = &after[close + 1..];
    }
    reason.push_str(rest);
    if !shown_text(&reason) {
        reason = "not a profile (the parser's message is withheld: it quotes the file)".into();
    }
    let reason = if line == 0 {
        reason
    } else {
        format!("line {line}, column {column}: {reason}")
    };
    Error::ParseProfile {
        origin: origin.clone(),
        reason,
    }
}

/// The 1-based line and column (in characters) of byte `at` of `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Whether a value taken from a file may appear in an error message: a short single line
/// with no PEM armour and no long base64-like run (so no part of a key worth having).
pub(crate) fn shown(value: &str) -> bool {
    value.chars().count() <= 64 && !value.contains(['\n', '\r']) && shown_text(value)
}

fn shown_text(text: &str) -> bool {
    let base64ish = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
    let mut run = 0;
    for c in text.chars() {
        run = if base64ish(c) { run + 1 } else { 0 };
        if run >= 24 {
            return false;
        }
    }
    !text.contains("-----")
}

/// A value that is not [`shown`]: its length only.
fn withheld(value: &str) -> String {
    format!("<{} characters withheld>", value.chars().count())
}

/// A value for a validation message: quoted if [`shown`], else its length only.
fn quoted(value: &str) -> String {
    if shown(value) {
        format!("{value:?}")
    } else {
        withheld(value)
    }
}

/// Refuses what cannot be a profile before parsing: PEM data, or more than the size limit.
fn check_input(text: &str, origin: &Origin) -> Result<(), Error> {
    // The easy slip: a key or certificate file given as the profile.
    if text.trim_start().starts_with("-----BEGIN ") {
        let line = text[..text.len() - text.trim_start().len()]
            .matches('\n')
            .count()
            + 1;
        return Err(parse_error(
            origin,
            line,
            1,
            "PEM data (a certificate or a private key?), expected a profile",
        ));
    }
    if text.len() > MAX_PROFILE_BYTES {
        return Err(Error::TooLarge {
            origin: origin.clone(),
            size: text.len(),
            limit: MAX_PROFILE_BYTES,
        });
    }
    Ok(())
}

/// Checks a DNS name for a SAN: labels of 1 to 63 letters, digits and hyphens, not starting
/// or ending with a hyphen; a `*` only as the whole leftmost label; 253 characters at most.
pub fn validate_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err(format!("must be 1 to 253 characters, got {}", name.len()));
    }
    for (i, label) in name.split('.').enumerate() {
        if label == "*" && i == 0 && name.len() > 1 {
            continue;
        }
        check_label(label).map_err(|r| format!("label {}: {r}", quoted(label)))?;
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() || label.len() > 63 {
        return Err("must be 1 to 63 characters".into());
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err("only letters, digits and '-' are allowed".into());
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("must not start or end with '-'".into());
    }
    Ok(())
}

/// Checks a Kubernetes object name (RFC 1123 subdomain: lower case, 253 characters).
pub fn validate_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err(format!("{} must be 1 to 253 characters", quoted(name)));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("{} must be lower case", quoted(name)));
    }
    for label in name.split('.') {
        check_label(label).map_err(|r| format!("{}: {r}", quoted(name)))?;
    }
    Ok(())
}

/// Checks a Secret data key as Kubernetes does: 1 to 253 letters, digits, `-`, `_` and `.`,
/// neither `.` nor `..`, and not starting with `..` (reserved by the Secret volume layout:
/// `..data`, `..2024_...`). A key may start with one dot (`.hmac`).
pub fn validate_secret_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 253 {
        return Err(format!(
            "a Secret key must be 1 to 253 characters, got {}",
            key.len()
        ));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "{key:?}: a Secret key may hold only letters, digits, '-', '_' and '.'"
        ));
    }
    if key == "." || key.starts_with("..") {
        return Err(format!(
            "{key:?}: a Secret key must not be '.' nor start with '..' (reserved by the Secret volume layout)"
        ));
    }
    Ok(())
}

/// Checks a namespace (RFC 1123 label: lower case, 63 characters).
pub fn validate_label(name: &str) -> Result<(), String> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("{} must be lower case", quoted(name)));
    }
    check_label(name).map_err(|r| format!("{}: {r}", quoted(name)))
}
