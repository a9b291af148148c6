//! The built-in profile of Envoy Gateway, matching its `certgen`.

use std::collections::BTreeMap;

use super::spec::{default_hmac_key, default_tls_type};
use super::{
    CaSpec, ComponentSpec, EndpointSpec, HmacSpec, LeafDefaults, Profile, WebhookKind, WebhookSpec,
    WorkloadKind, WorkloadNamespaces, WorkloadSelect, WorkloadSpec, model::default_domain,
};
use crate::generate::{DAYS_5Y, KeyAlgorithm, KeyUsage};

/// The labels Envoy Gateway puts on every proxy Deployment and DaemonSet it creates
/// (`EnvoyAppLabel`, internal/infrastructure/kubernetes/proxy/resource.go, v1.9.0).
pub const PROXY_LABELS: [(&str, &str); 3] = [
    ("app.kubernetes.io/name", "envoy"),
    ("app.kubernetes.io/component", "proxy"),
    ("app.kubernetes.io/managed-by", "envoy-gateway"),
];

impl Profile {
    /// The built-in profile of Envoy Gateway, matching its `certgen`: Secrets `envoy-gateway`,
    /// `envoy` and `envoy-rate-limit` (`kubernetes.io/tls`) and `envoy-oidc-hmac` (`Opaque`,
    /// 32 bytes under `hmac-secret`), all labelled `control-plane: envoy-gateway`; certgen's
    /// SANs and key usages (plus serverAuth/clientAuth; the encipherment bits only on RSA
    /// keys, as RFC 5480 and RFC 8410 require); the start-only workloads restarted when
    /// the mounted certificates change: the rate-limit Deployment `envoy-ratelimit` (its
    /// xDS client's TLS is built once at start) and every Envoy proxy Deployment and
    /// DaemonSet carrying upstream's [`PROXY_LABELS`] (their rate-limit and Wasm clusters
    /// trust a static `/certs/ca.crt`), in the controller namespace; and the `caBundle` of
    /// `envoy-gateway-topology-injector.{namespace}`. The CA is kept in
    /// `envoy-gateway-ca` (certgen kept no CA key at all). For GatewayNamespace mode, see
    /// [`Self::with_gateway_namespace_mode`].
    ///
    /// Its TLS servers, probed while a rotation converges (Kubernetes mode, through the
    /// Services' EndpointSlices): the controller's xDS 18000, rate-limit xDS 18001 and Wasm
    /// HTTP 18002 (which request client certificates, so they show their trust) and its
    /// topology-injector webhook 9443, on Service `envoy-gateway`, all serving Secret
    /// `envoy-gateway`; the rate limit's gRPC 8081 on Service `envoy-ratelimit`, serving
    /// `envoy-rate-limit` (a leaf only: it verifies no client). The proxies serve nothing
    /// with the `envoy` Secret: its trust, a client's, no probe can see.
    pub fn envoy_gateway(namespace: &str) -> Self {
        let leaf = |secret: &str, cn: &str, dns: &[&str]| ComponentSpec {
            secret: secret.into(),
            secret_type: default_tls_type(),
            common_name: cn.into(),
            dns_names: dns.iter().map(|s| (*s).to_owned()).collect(),
            ip_addresses: Vec::new(),
            endpoints: Vec::new(),
        };
        // Upstream's serving ports, from envoyproxy/gateway at d32f2829 (v1.9.0-rc.0-375).
        // The controller's Service `envoy-gateway`:
        // charts/gateway-helm/templates/envoy-gateway-service.yaml:4, its ports
        // charts/gateway-helm/values.tmpl.yaml:114-123 and, with the topology injector on,
        // envoy-gateway-service.yaml:24-26. Every one serves the `envoy-gateway` Secret
        // mounted at /certs.
        let controller = [
            // xDS for the proxies: internal/xds/bootstrap/bootstrap.go:43
            // (DefaultXdsServerPort).
            EndpointSpec::service("envoy-gateway", 18000),
            // xDS for the rate limit:
            // internal/infrastructure/kubernetes/ratelimit/resource.go:104
            // (XdsGrpcSotwConfigServerPort).
            EndpointSpec::service("envoy-gateway", 18001),
            // Wasm HTTP: internal/wasm/httpserver.go:25 (serverPort).
            EndpointSpec::service("envoy-gateway", 18002),
            // The topology-injector webhook: internal/provider/kubernetes/kubernetes.go:71
            // (webhookTLSPort).
            EndpointSpec::service("envoy-gateway", 9443),
        ];
        // The rate limit's gRPC, serving `envoy-rate-limit`: Service `envoy-ratelimit`
        // (internal/infrastructure/kubernetes/ratelimit/resource.go:100, InfraName; its
        // Service in resource_provider.go:117-154), port
        // internal/infrastructure/kubernetes/ratelimit/resource.go:102 (InfraGRPCPort).
        let rate_limit = [EndpointSpec::service("envoy-ratelimit", 8081)];
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
                ComponentSpec {
                    endpoints: controller.into(),
                    ..leaf(
                        "envoy-gateway",
                        "envoy-gateway",
                        &[
                            "envoy-gateway",
                            "envoy-gateway.{namespace}",
                            "envoy-gateway.{namespace}.svc",
                            "envoy-gateway.{namespace}.svc.{domain}",
                        ],
                    )
                },
                leaf("envoy", "*", &["*.{namespace}"]),
                ComponentSpec {
                    endpoints: rate_limit.into(),
                    ..leaf("envoy-rate-limit", "*", &["*.{namespace}"])
                },
            ],
            hmac: vec![HmacSpec {
                secret: "envoy-oidc-hmac".into(),
                key: default_hmac_key(),
                length: 32,
            }],
            workloads: vec![
                WorkloadSpec::new(WorkloadKind::Deployment, "envoy-ratelimit"),
                WorkloadSpec::selector(WorkloadKind::Deployment, PROXY_LABELS),
                WorkloadSpec::selector(WorkloadKind::DaemonSet, PROXY_LABELS),
            ],
            webhooks: vec![WebhookSpec {
                kind: WebhookKind::Mutating,
                name: "envoy-gateway-topology-injector.{namespace}".into(),
            }],
        }
    }

    /// This profile for an Envoy Gateway in GatewayNamespace mode, where each Gateway's
    /// proxies live in the Gateway's own namespace: the workloads selected by
    /// [`PROXY_LABELS`] are looked for in every namespace (which needs cluster-wide `list`
    /// and `patch` on Deployments and DaemonSets). The Secrets, the rate limit and the
    /// webhook stay in the controller namespace.
    pub fn with_gateway_namespace_mode(mut self) -> Self {
        for workload in &mut self.workloads {
            if matches!(&workload.select, WorkloadSelect::Labels(labels) if is_proxy_selector(labels))
            {
                workload.namespaces = WorkloadNamespaces::All;
            }
        }
        self
    }
}

fn is_proxy_selector(labels: &BTreeMap<String, String>) -> bool {
    labels.len() == PROXY_LABELS.len()
        && PROXY_LABELS
            .iter()
            .all(|(k, v)| labels.get(*k).is_some_and(|x| x == v))
}
