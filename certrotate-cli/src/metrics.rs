//! Metrics a Prometheus user can alert on: `check -o openmetrics` (for a node-exporter
//! textfile collector) and `check --pushgateway URL` (for Jobs and CronJobs, which live
//! too briefly to be scraped; the push itself is in `pushgateway.rs`).
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
//! | `certrotate_certificate_not_after_timestamp_seconds` | namespace, secret, key, block | each certificate's notAfter, but carried CAs |
//! | `certrotate_carried_certificate_not_after_timestamp_seconds` | namespace, secret, key, block | notAfter of each CA a `ca.crt` carries that no current leaf needs (information: `rotate` retires it) |
//! | `certrotate_managed` | namespace, secret | 1 if the CA Secret exists (certrotate manages the install), 0 if not (an install made by upstream's certgen expires with nobody to rotate it) |
//! | `certrotate_ca_not_after_timestamp_seconds` | namespace, secret | the current CA's notAfter (0: unreadable) |
//! | `certrotate_leaf_not_after_timestamp_seconds` | namespace, secret | each component's leaf notAfter (0: unreadable) |
//! | `certrotate_phase` | namespace, secret, phase | 1 for the persisted rotation phase, 0 for the others |
//! | `certrotate_phase_since_timestamp_seconds` | namespace, secret | when that phase began (0: never rotated) |
//! | `certrotate_check_problems` | namespace | missing Secrets or keys, unreadable blocks |
//! | `certrotate_check_timestamp_seconds` | namespace | when the check ran |
//!
//! With `--endpoint`, what each probed server shows (labels bounded: `endpoint` is an
//! address given on the command line, `ca` is `current`, `next` or `other`):
//!
//! | series | labels | value |
//! |---|---|---|
//! | `certrotate_endpoint_probe_ok` | namespace, secret, endpoint | 1 if the probe read evidence (0: unreachable, not TLS, ...) |
//! | `certrotate_endpoint_trusts_ca` | namespace, secret, endpoint, ca | 1 if the server lists that CA among those it asks client certificates from (servers that verify clients only) |
//! | `certrotate_endpoint_serves_ca` | namespace, secret, endpoint, ca | 1 for the CA whose leaf it serves |
//!
//! `rotate` and `renew` push their own outcome (group `…/command/COMMAND`), also when they
//! fail, so a failed scheduled rotation reaches monitoring even though no `check` follows:
//!
//! | series | labels | value |
//! |---|---|---|
//! | `certrotate_run_success` | namespace, command | 1 if the run exited 0 |
//! | `certrotate_run_exit_code` | namespace, command | its exit status (see `--help`) |
//! | `certrotate_run_timestamp_seconds` | namespace, command | when it ended |
//! | `certrotate_run_phase` | namespace, command, phase | 1 for the phase the run left (none when it failed before reading it) |
//! | `certrotate_run_next_step_timestamp_seconds` | namespace, command | when the next step may run (0: now or nothing to do) |

use anyhow::{Context, Result};
use certrotate_core::plan::wire::{KEY_CA_CRT, KEY_TLS_CRT, KEY_TLS_KEY, KEY_TRUST};
use certrotate_core::plan::{ObjectRef, Observed, Phase, ProfileObjects};
use certrotate_core::trust::TrustStore;
use certrotate_core::{CheckReport, Origin, Profile, inspect_pem};
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
struct EndpointLabels {
    namespace: String,
    secret: String,
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointCaLabels {
    namespace: String,
    secret: String,
    endpoint: String,
    ca: String,
}

/// The series of what each probed endpoint showed (see the module's table).
pub(crate) fn endpoints(
    registry: &mut Registry,
    namespace: &str,
    views: &[crate::output::EndpointView],
) {
    use certrotate_core::plan::CaRole;
    if views.is_empty() {
        return;
    }
    let generation = |role: Option<CaRole>| match role {
        Some(CaRole::Current) => "current",
        Some(CaRole::Next) => "next",
        None => "other",
    };
    let ok = Family::<EndpointLabels, Gauge>::default();
    let trusts = Family::<EndpointCaLabels, Gauge>::default();
    let serves = Family::<EndpointCaLabels, Gauge>::default();
    for view in views {
        let at = |ca: &str| EndpointCaLabels {
            namespace: namespace.to_owned(),
            secret: view.endpoint.secret.name.clone(),
            endpoint: view.endpoint.address.clone(),
            ca: ca.to_owned(),
        };
        ok.get_or_create(&EndpointLabels {
            namespace: namespace.to_owned(),
            secret: view.endpoint.secret.name.clone(),
            endpoint: view.endpoint.address.clone(),
        })
        .set(i64::from(view.error.is_none()));
        if view.client_certificate_requested == Some(true) {
            for ca in ["current", "next"] {
                let listed = view.trusts.iter().any(|t| generation(t.role) == ca);
                trusts.get_or_create(&at(ca)).set(i64::from(listed));
            }
        }
        if view.error.is_none() {
            let served = view.serves_leaf_of.as_ref().map(|n| generation(n.role));
            for ca in ["current", "next", "other"] {
                serves
                    .get_or_create(&at(ca))
                    .set(i64::from(served == Some(ca)));
            }
        }
    }
    registry.register(
        "certrotate_endpoint_probe_ok",
        "1 if probing the endpoint read evidence (a TLS handshake that showed its trust or leaf)",
        ok,
    );
    registry.register(
        "certrotate_endpoint_trusts_ca",
        "1 if the endpoint lists this CA among those it asks client certificates from",
        trusts,
    );
    registry.register(
        "certrotate_endpoint_serves_ca",
        "1 for the CA whose leaf the endpoint serves",
        serves,
    );
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    namespace: String,
    command: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunPhaseLabels {
    namespace: String,
    command: String,
    phase: String,
}

/// What a `rotate` or `renew` run left, for its outcome metrics: the phase and when the
/// next step may run (from its report; absent when it failed before one).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RunFacts {
    /// The exit status the run chose itself (`None`: it failed, or was a dry run).
    pub(crate) code: Option<u8>,
    pub(crate) phase: Option<Phase>,
    pub(crate) next_at: Option<OffsetDateTime>,
}

/// The outcome of one `command` run on `namespace`: exit status `code`, `facts`, at `now`.
pub(crate) fn run_outcome(
    namespace: &str,
    command: &str,
    code: u8,
    facts: RunFacts,
    now: OffsetDateTime,
) -> Registry {
    let mut registry = Registry::default();
    let labels = RunLabels {
        namespace: namespace.to_owned(),
        command: command.to_owned(),
    };
    let gauge = |value: i64| {
        let family = Family::<RunLabels, Gauge>::default();
        family.get_or_create(&labels).set(value);
        family
    };
    registry.register(
        "certrotate_run_success",
        "1 if the run exited 0",
        gauge(i64::from(code == 0)),
    );
    registry.register(
        "certrotate_run_exit_code",
        "The run's exit status (0 done or waiting, 1 failed, 2 usage, 5 the CA expires first, 6 a time limit ran out)",
        gauge(i64::from(code)),
    );
    registry.register_with_unit(
        "certrotate_run_timestamp",
        "When the run ended, in Unix seconds",
        Unit::Seconds,
        gauge(now.unix_timestamp()),
    );
    if let Some(phase) = facts.phase {
        let family = Family::<RunPhaseLabels, Gauge>::default();
        for p in PHASES {
            family
                .get_or_create(&RunPhaseLabels {
                    namespace: namespace.to_owned(),
                    command: command.to_owned(),
                    phase: p.to_string(),
                })
                .set(i64::from(p == phase));
        }
        registry.register(
            "certrotate_run_phase",
            "1 for the rotation phase the run left, 0 for the others",
            family,
        );
    }
    registry.register_with_unit(
        "certrotate_run_next_step_timestamp",
        "When the next step may run, in Unix seconds (0: now, or nothing to do)",
        Unit::Seconds,
        gauge(facts.next_at.map_or(0, OffsetDateTime::unix_timestamp)),
    );
    registry
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
    let mut peers: Vec<(String, TrustStore)> = objects
        .components
        .iter()
        .map(|s| {
            (
                format!("secret/{}", s.name),
                TrustStore::Component { secret: s.clone() },
            )
        })
        .collect();
    for webhook in &objects.webhooks {
        let Some(w) = observed.webhooks.get(webhook) else {
            continue;
        };
        let kind_name = webhook.to_string().replacen(' ', "/", 1);
        for i in 0..w.ca_bundles.len() {
            let peer = if w.ca_bundles.len() == 1 {
                kind_name.clone()
            } else {
                format!("{kind_name}/{}", i + 1)
            };
            let store = TrustStore::Webhook {
                webhook: webhook.clone(),
                index: i + 1,
            };
            peers.push((peer, store));
        }
    }

    // The verdicts are `check`'s (the trust gate's own check); a pair it could not judge
    // (a missing or unreadable leaf or store) is not trusted.
    let trust_ok = Family::<TrustLabels, Gauge>::default();
    for leaf in &objects.components {
        for (peer, store) in &peers {
            let trusted = report
                .pairs
                .iter()
                .any(|p| &p.leaf_secret == leaf && &p.store == store && p.verdict.is_trusted());
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
    // A CA a bundle carries that no current leaf needs is not "expiring": its own series.
    let carried_not_after = Family::<BlockLabels, Gauge>::default();
    let carried: Vec<_> = report
        .certificates
        .iter()
        .filter(|c| c.carried)
        .map(|c| c.fingerprint)
        .collect();
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
            let is_carried =
                *secret != objects.ca_secret && k == KEY_TRUST && carried.contains(&c.fingerprint);
            let family = if is_carried {
                &carried_not_after
            } else {
                &not_after
            };
            family
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
        "certrotate_carried_certificate_not_after_timestamp",
        "notAfter of each CA a ca.crt carries that no current leaf needs (the previous CA \
         after a rotation, which rotate retires), in Unix seconds: information, not expiry",
        Unit::Seconds,
        carried_not_after,
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

    // Whether certrotate manages the install at all.
    let managed = Family::<SecretLabels, Gauge>::default();
    managed
        .get_or_create(&SecretLabels {
            namespace: namespace.clone(),
            secret: objects.ca_secret.name.clone(),
        })
        .set(i64::from(report.managed));
    registry.register(
        "certrotate_managed",
        "1 if the CA Secret exists (certrotate manages the install), 0 if not: component \
         Secrets made without certrotate (upstream's certgen) expire with nobody to rotate \
         them; `certrotate rotate --adopt` adopts them",
        managed,
    );

    // The persisted rotation phase, as a state set.
    let state = report.state.as_ref();
    let phase = Family::<PhaseLabels, Gauge>::default();
    for p in PHASES {
        phase
            .get_or_create(&PhaseLabels {
                namespace: namespace.clone(),
                secret: objects.ca_secret.name.clone(),
                phase: p.to_string(),
            })
            .set(i64::from(state.is_some_and(|s| s.phase == p)));
    }
    let since = Family::<SecretLabels, Gauge>::default();
    since
        .get_or_create(&SecretLabels {
            namespace: namespace.clone(),
            secret: objects.ca_secret.name.clone(),
        })
        .set(
            state
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
