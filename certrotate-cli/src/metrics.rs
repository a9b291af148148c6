//! Metrics a Prometheus user can alert on: `check -o openmetrics` (for a node-exporter
//! textfile collector) and `check --pushgateway URL` (for Jobs and CronJobs, which live
//! too briefly to be scraped).
//!
//! Every series is labelled with what it is about (`namespace`, `secret`, `key`, `block`,
//! `peer`), never with a sentence, and every series a profile implies is present: a
//! missing Secret or a corrupt `ca.crt` turns its series to 0 instead of removing them, so
//! `certrotate_trust_ok == 0` alerts and an absent series only means "not scraped". The
//! text is encoded by `prometheus-client`, the Prometheus project's Rust client.
//!
//! | series | labels | value |
//! |---|---|---|
//! | `certrotate_trust_ok` | namespace, secret, key, peer | 1 if the Secret's leaf is trusted by the peer's bundle now |
//! | `certrotate_certificates_valid` | namespace, secret, key | 1 if the key holds readable certificates |
//! | `certrotate_key_ok` | namespace, secret, key | 1 if `tls.key` is present, readable and the key of `tls.crt` |
//! | `certrotate_certificate_not_after_timestamp_seconds` | namespace, secret, key, block | each certificate's notAfter |
//! | `certrotate_ca_not_after_timestamp_seconds` | namespace, secret | the current CA's notAfter (0: unreadable) |
//! | `certrotate_leaf_not_after_timestamp_seconds` | namespace, secret | each component's leaf notAfter (0: unreadable) |
//! | `certrotate_phase` | namespace, secret, phase | 1 for the persisted rotation phase, 0 for the others |
//! | `certrotate_phase_since_timestamp_seconds` | namespace, secret | when that phase began (0: never rotated) |
//! | `certrotate_check_problems` | namespace | missing Secrets or keys, unreadable blocks |
//! | `certrotate_check_timestamp_seconds` | namespace | when the check ran |

use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use certrotate_core::plan::{
    KEY_CA_CRT, KEY_TLS_CRT, KEY_TLS_KEY, KEY_TRUST, ObjectRef, Observed, Phase, ProfileObjects,
    RotationState,
};
use certrotate_core::{CheckReport, Origin, Profile, inspect_pem, verify_chain};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use time::OffsetDateTime;

/// The Pushgateway job name when `--pushgateway-job` is not given.
pub(crate) const DEFAULT_JOB: &str = "certrotate";

/// The phases of a rotation, each one a `certrotate_phase` series (a state set).
const PHASES: [Phase; 5] = [
    Phase::Stable,
    Phase::Prepared,
    Phase::Trust,
    Phase::Leaves,
    Phase::Retire,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabels {
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SecretLabels {
    namespace: String,
    secret: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    namespace: String,
    secret: String,
    key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BlockLabels {
    namespace: String,
    secret: String,
    key: String,
    block: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrustLabels {
    namespace: String,
    secret: String,
    key: String,
    /// The trust store: `secret/NAME` (its `ca.crt`) or `KIND/NAME` of a webhook
    /// configuration (`KIND/NAME/N` for its N-th webhook when it has several).
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    namespace: String,
    secret: String,
    phase: String,
}

/// The metrics of one control plane at `now`: what `check` saw in `observed`, and its
/// `report`.
pub(crate) fn collect(
    profile: &Profile,
    observed: &Observed,
    report: &CheckReport,
    now: OffsetDateTime,
) -> Registry {
    let objects = ProfileObjects::of(profile);
    let namespace = &profile.namespace;
    let mut registry = Registry::default();

    // Trust stores: every component's ca.crt, then every webhook bundle that exists.
    let mut peers: Vec<(String, Option<&[u8]>, Origin)> = objects
        .components
        .iter()
        .map(|s| {
            (
                format!("secret/{}", s.name),
                key(observed, s, KEY_TRUST),
                Origin::new(format!("secret {s} key {KEY_TRUST}")),
            )
        })
        .collect();
    for webhook in &objects.webhooks {
        let Some(w) = observed.webhooks.get(webhook) else {
            continue;
        };
        let kind_name = webhook.to_string().replacen(' ', "/", 1);
        for (i, bundle) in w.ca_bundles.iter().enumerate() {
            let peer = if w.ca_bundles.len() == 1 {
                kind_name.clone()
            } else {
                format!("{kind_name}/{}", i + 1)
            };
            peers.push((peer, Some(bundle.as_slice()), Origin::new(&kind_name)));
        }
    }

    let trust_ok = Family::<TrustLabels, Gauge>::default();
    for leaf in &objects.components {
        let leaf_origin = Origin::new(format!("secret {leaf} key {KEY_TLS_CRT}"));
        let leaf_pem = key(observed, leaf, KEY_TLS_CRT);
        for (peer, bundle, bundle_origin) in &peers {
            let trusted = match (leaf_pem, bundle) {
                (Some(leaf_pem), Some(bundle)) => {
                    verify_chain(leaf_pem, &leaf_origin, bundle, bundle_origin, now)
                        .is_ok_and(|v| v.is_trusted())
                }
                _ => false,
            };
            trust_ok
                .get_or_create(&TrustLabels {
                    namespace: namespace.clone(),
                    secret: leaf.name.clone(),
                    key: KEY_TLS_CRT.into(),
                    peer: peer.clone(),
                })
                .set(i64::from(trusted));
        }
    }
    registry.register(
        "certrotate_trust_ok",
        "1 if the Secret's leaf (key) is trusted by the peer's CA bundle now, else 0 \
         (also 0 when either is missing or unreadable)",
        trust_ok,
    );

    // Certificates: every block of every component's ca.crt and tls.crt and of the CA.
    let valid = Family::<KeyLabels, Gauge>::default();
    let not_after = Family::<BlockLabels, Gauge>::default();
    let ca_not_after = Family::<SecretLabels, Gauge>::default();
    let leaf_not_after = Family::<SecretLabels, Gauge>::default();
    let keys = std::iter::once((&objects.ca_secret, KEY_CA_CRT)).chain(
        objects
            .components
            .iter()
            .flat_map(|s| [(s, KEY_TRUST), (s, KEY_TLS_CRT)]),
    );
    for (secret, k) in keys {
        let origin = Origin::new(format!("secret {secret} key {k}"));
        let certs = key(observed, secret, k).and_then(|pem| inspect_pem(pem, &origin, now).ok());
        valid
            .get_or_create(&key_labels(secret, k))
            .set(i64::from(certs.as_ref().is_some_and(|c| !c.is_empty())));
        let first = certs
            .as_ref()
            .and_then(|c| c.first())
            .map_or(0, |c| c.not_after.unix_timestamp());
        let labels = SecretLabels {
            namespace: secret.namespace.clone(),
            secret: secret.name.clone(),
        };
        if *secret == objects.ca_secret {
            ca_not_after.get_or_create(&labels).set(first);
        } else if k == KEY_TLS_CRT {
            leaf_not_after.get_or_create(&labels).set(first);
        }
        for c in certs.iter().flatten() {
            not_after
                .get_or_create(&BlockLabels {
                    namespace: secret.namespace.clone(),
                    secret: secret.name.clone(),
                    key: k.into(),
                    block: c.block as u64,
                })
                .set(c.not_after.unix_timestamp());
        }
    }
    // Each component's tls.key: present, readable, and the key of its tls.crt.
    let key_ok = Family::<KeyLabels, Gauge>::default();
    for secret in &objects.components {
        let name = secret.to_string();
        let bad = report.keys.iter().any(|k| k.secret == name)
            || key(observed, secret, KEY_TLS_KEY).is_none();
        key_ok
            .get_or_create(&key_labels(secret, KEY_TLS_KEY))
            .set(i64::from(!bad));
    }
    registry.register(
        "certrotate_key_ok",
        "1 if the Secret's tls.key is present, readable and the key of its tls.crt, else 0",
        key_ok,
    );
    registry.register(
        "certrotate_certificates_valid",
        "1 if the Secret's key holds readable certificates, 0 if it is missing or corrupt",
        valid,
    );
    registry.register_with_unit(
        "certrotate_certificate_not_after_timestamp",
        "notAfter of each certificate (block N of the key), in Unix seconds",
        Unit::Seconds,
        not_after,
    );
    registry.register_with_unit(
        "certrotate_ca_not_after_timestamp",
        "notAfter of the current CA in the CA Secret, in Unix seconds (0: missing or unreadable)",
        Unit::Seconds,
        ca_not_after,
    );
    registry.register_with_unit(
        "certrotate_leaf_not_after_timestamp",
        "notAfter of each component's leaf (tls.crt), in Unix seconds (0: missing or unreadable)",
        Unit::Seconds,
        leaf_not_after,
    );

    // The persisted rotation phase, as a state set.
    let state = observed
        .secrets
        .get(&objects.ca_secret)
        .and_then(|s| RotationState::from_secret(s, &objects.ca_secret).ok());
    let phase = Family::<PhaseLabels, Gauge>::default();
    for p in PHASES {
        phase
            .get_or_create(&PhaseLabels {
                namespace: namespace.clone(),
                secret: objects.ca_secret.name.clone(),
                phase: p.to_string(),
            })
            .set(i64::from(state.as_ref().is_some_and(|s| s.phase == p)));
    }
    let since = Family::<SecretLabels, Gauge>::default();
    since
        .get_or_create(&SecretLabels {
            namespace: namespace.clone(),
            secret: objects.ca_secret.name.clone(),
        })
        .set(
            state
                .as_ref()
                .and_then(|s| s.since)
                .map_or(0, OffsetDateTime::unix_timestamp),
        );
    registry.register(
        "certrotate_phase",
        "1 for the rotation phase persisted on the CA Secret, 0 for the others (all 0: not \
         installed or unreadable)",
        phase,
    );
    registry.register_with_unit(
        "certrotate_phase_since_timestamp",
        "When the persisted phase began, in Unix seconds (0: no rotation yet); a phase other \
         than stable that lasts for hours is a stuck rotation",
        Unit::Seconds,
        since,
    );

    let ns = NamespaceLabels {
        namespace: namespace.clone(),
    };
    let problems_gauge = Family::<NamespaceLabels, Gauge>::default();
    problems_gauge
        .get_or_create(&ns)
        .set(i64::try_from(report.problems.len() + report.keys.len()).unwrap_or(i64::MAX));
    registry.register(
        "certrotate_check_problems",
        "Secrets or keys missing, certificate blocks unreadable, tls.key not matching tls.crt",
        problems_gauge,
    );
    let ran = Family::<NamespaceLabels, Gauge>::default();
    ran.get_or_create(&ns).set(now.unix_timestamp());
    registry.register_with_unit(
        "certrotate_check_timestamp",
        "When the check ran, in Unix seconds",
        Unit::Seconds,
        ran,
    );
    registry
}

fn key<'a>(observed: &'a Observed, secret: &ObjectRef, key: &str) -> Option<&'a [u8]> {
    observed
        .secrets
        .get(secret)
        .and_then(|s| s.data.get(key))
        .map(Vec::as_slice)
}

fn key_labels(secret: &ObjectRef, key: &str) -> KeyLabels {
    KeyLabels {
        namespace: secret.namespace.clone(),
        secret: secret.name.clone(),
        key: key.into(),
    }
}

/// The OpenMetrics text of `registry`, ending in `# EOF`.
pub(crate) fn encode(registry: &Registry) -> Result<String> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)
        .context("encoding the metrics")?;
    Ok(text)
}

/// A Pushgateway's base URL, from `--pushgateway`: `http://HOST[:PORT][/PREFIX]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushgateway {
    base: String,
}

impl std::str::FromStr for Pushgateway {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err(
                "empty (to push nothing, leave it out or unset CERTROTATE_PUSHGATEWAY)".into(),
            );
        }
        let uri: hyper::Uri = s.parse().map_err(|e| format!("{s:?} is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "{s:?}: only http:// is supported (push to the Pushgateway's in-cluster \
                     Service, or through a TLS sidecar)"
                ));
            }
            _ => return Err(format!("{s:?}: expected http://HOST[:PORT]")),
        }
        if uri.authority().is_none() {
            return Err(format!("{s:?}: no host"));
        }
        if uri.query().is_some() {
            return Err(format!("{s:?}: a query has no place in a Pushgateway URL"));
        }
        Ok(Self {
            base: s.trim_end_matches('/').to_owned(),
        })
    }
}

impl std::fmt::Display for Pushgateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base)
    }
}

impl Pushgateway {
    /// The URL of the group `job` with the `grouping` labels:
    /// `BASE/metrics/job/JOB/LABEL/VALUE...`, a value that is not a plain path segment
    /// base64url-encoded (`LABEL@base64/...`), as the Pushgateway reads it.
    pub(crate) fn group_url(&self, job: &str, grouping: &[(&str, &str)]) -> String {
        let mut url = format!("{}/metrics", self.base);
        for (label, value) in std::iter::once(("job", job)).chain(grouping.iter().copied()) {
            let plain = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if plain {
                url.push_str(&format!("/{label}/{value}"));
            } else {
                let encoded = base64::engine::general_purpose::URL_SAFE.encode(value);
                // The Pushgateway reads an empty value as `=` (one padding character).
                let encoded = if encoded.is_empty() {
                    "=".into()
                } else {
                    encoded
                };
                url.push_str(&format!("/{label}@base64/{encoded}"));
            }
        }
        url
    }

    /// Replaces the group's metrics with `body` (HTTP PUT), failing on any answer but 2xx
    /// or after `timeout`.
    pub(crate) async fn push(
        &self,
        job: &str,
        grouping: &[(&str, &str)],
        body: String,
        timeout: Duration,
    ) -> Result<()> {
        let url = self.group_url(job, grouping);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<Bytes>>();
        let request = hyper::Request::put(&url)
            // The Pushgateway parses the Prometheus text format; OpenMetrics text of gauges
            // is that format too (`# UNIT` and `# EOF` read as comments).
            .header(hyper::header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(body)))
            .with_context(|| format!("pushing metrics to {url}"))?;
        let exchange = async {
            let response = client.request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        let (status, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {}s", timeout.as_secs()))
            .and_then(|r| r)
            .with_context(|| format!("pushing metrics to {url}"))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            bail!(
                "pushing metrics to {url}: the Pushgateway answered {status}: {}",
                text.trim()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_urls_encode_what_is_not_a_plain_segment() {
        let gw: Pushgateway = "http://pushgateway.monitoring:9091/".parse().unwrap();
        assert_eq!(
            gw.group_url("certrotate", &[("namespace", "envoy-gateway-system")]),
            "http://pushgateway.monitoring:9091/metrics/job/certrotate/namespace/envoy-gateway-system"
        );
        assert_eq!(
            gw.group_url("a/b", &[("x", "")]),
            "http://pushgateway.monitoring:9091/metrics/job@base64/YS9i/x@base64/="
        );
    }

    #[test]
    fn only_plain_http_urls_are_pushgateways() {
        assert!(
            "https://gw:9091"
                .parse::<Pushgateway>()
                .unwrap_err()
                .contains("only http://")
        );
        assert!("gw:9091".parse::<Pushgateway>().is_err());
        assert!("http://gw:9091/?x=1".parse::<Pushgateway>().is_err());
        assert!("http://gw:9091/prefix".parse::<Pushgateway>().is_ok());
    }
}
