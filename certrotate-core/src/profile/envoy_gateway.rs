//! The built-in profile of Envoy Gateway, matching its `certgen`.

use std::collections::BTreeMap;

use super::spec::{default_hmac_key, default_tls_type};
use super::{
    CaSpec, ComponentSpec, HmacSpec, LeafDefaults, Profile, WebhookKind, WebhookSpec, WorkloadKind,
    WorkloadSpec, default_domain,
};
use crate::generate::{DAYS_5Y, KeyAlgorithm, KeyUsage};

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
}
