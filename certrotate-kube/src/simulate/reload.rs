//! What each process of a control plane has loaded, and when it reloads: the connections
//! of a [`ReloadModel`] checked after every simulated step.
//!
//! [`check_step`](certrotate_core::trust::check_step) pairs every leaf with every trust
//! store as the Secrets hold them, which is what a process sees if it reads its files on
//! every handshake or reloads them when they change. A process that reads a file only at
//! start keeps what its Secret held when it last started: the rate limit's xDS client,
//! Envoy's static `trusted_ca`. A [`ReloadModel`] names the TLS connections of a control
//! plane and how each side loads its leaf and its trust; after each step, every
//! connection is checked for every combination a peer may hold during the step (a live
//! file before or after it; a start-only one as loaded before the step, or as loaded by a
//! pod the step restarted, old and new pods serving side by side during a rolling
//! restart).

use std::collections::BTreeMap;

use certrotate_core::plan::wire::{ANNOTATION_RESTARTED_FOR, KEY_TLS_CRT, KEY_TRUST};
use certrotate_core::plan::{ObjectRef, Observed, WorkloadRef};
use certrotate_core::profile::PROXY_LABELS;
use certrotate_core::{ChainVerdict, Origin, Profile, verify_chain};
use serde::Serialize;
use time::OffsetDateTime;

/// How one side of a connection loads a file of its component's Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "workloads", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Loading {
    /// As the Secret holds it: read on every handshake, or reloaded when the kubelet swaps
    /// the mounted folder (Envoy's SDS files).
    Live,
    /// Once, when a pod of these workloads starts.
    AtStart(StartOnly),
}

/// The workloads whose pods load a file at start only: facts of the control plane,
/// whatever the profile restarts (a simulation starting fresh creates one of each).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StartOnly {
    /// The workload of this name in the profile's namespace, of any kind.
    Named(String),
    /// Every workload carrying these labels, of any kind, in any namespace (each on its
    /// own).
    Labelled(BTreeMap<String, String>),
}

/// One side of a connection: its component's Secret, and how it loads its leaf and its
/// trust store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Peer {
    /// The component Secret it mounts.
    pub secret: String,
    /// How it loads `tls.crt` (the leaf it presents).
    pub leaf: Loading,
    /// How it loads `ca.crt` (the CAs it trusts).
    pub trust: Loading,
}

/// A TLS connection of a control plane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Connection {
    /// What it is (`rate limit -> controller xDS (18001)`).
    pub name: String,
    /// The side that connects.
    pub client: Peer,
    /// The side that serves.
    pub server: Peer,
    /// Whether the server asks for and verifies the client's certificate.
    pub verifies_client: bool,
}

/// The connections of a control plane, with the reload rule of each side.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReloadModel {
    /// The connections.
    pub connections: Vec<Connection>,
}

impl ReloadModel {
    /// Envoy Gateway's connections and reload rules (v1.9.0; the README's design notes
    /// cite upstream's source for each):
    ///
    /// - Envoy → controller xDS (18000), mTLS: both sides live (the controller re-reads
    ///   its files on every handshake; Envoy's `xds_cluster` uses SDS files it reloads when
    ///   the kubelet swaps the folder).
    /// - rate limit → controller xDS (18001), mTLS: the rate limit's client TLS is built
    ///   once at start (leaf and trust); the controller live.
    /// - Envoy → rate limit (8081): the rate limit hot-reloads its serving leaf and asks
    ///   for no client certificate; Envoy trusts a static `trusted_ca` file, loaded at
    ///   start.
    /// - Envoy → controller Wasm (18002), mTLS: the controller live; Envoy's trust is the
    ///   same static file, loaded at start; its client certificate is pushed over xDS from
    ///   the `envoy` Secret (live).
    pub fn envoy_gateway() -> Self {
        let live = |secret: &str| Peer {
            secret: secret.into(),
            leaf: Loading::Live,
            trust: Loading::Live,
        };
        let proxies = StartOnly::Labelled(
            PROXY_LABELS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        let proxy_static_trust = Peer {
            secret: "envoy".into(),
            leaf: Loading::Live,
            trust: Loading::AtStart(proxies),
        };
        let ratelimit_start_only = Loading::AtStart(StartOnly::Named("envoy-ratelimit".into()));
        Self {
            connections: vec![
                Connection {
                    name: "envoy -> controller xDS (18000)".into(),
                    client: live("envoy"),
                    server: live("envoy-gateway"),
                    verifies_client: true,
                },
                Connection {
                    name: "rate limit -> controller xDS (18001)".into(),
                    client: Peer {
                        secret: "envoy-rate-limit".into(),
                        leaf: ratelimit_start_only.clone(),
                        trust: ratelimit_start_only,
                    },
                    server: live("envoy-gateway"),
                    verifies_client: true,
                },
                Connection {
                    name: "envoy -> rate limit (8081)".into(),
                    client: proxy_static_trust.clone(),
                    server: live("envoy-rate-limit"),
                    verifies_client: false,
                },
                Connection {
                    name: "envoy -> controller Wasm (18002)".into(),
                    client: proxy_static_trust,
                    server: live("envoy-gateway"),
                    verifies_client: true,
                },
            ],
        }
    }
}

impl ReloadModel {
    /// The start-only workloads of the model's connections, each once.
    pub fn start_only(&self) -> Vec<&StartOnly> {
        let mut out: Vec<&StartOnly> = Vec::new();
        for c in &self.connections {
            for peer in [&c.client, &c.server] {
                for loading in [&peer.leaf, &peer.trust] {
                    if let Loading::AtStart(s) = loading
                        && !out.contains(&s)
                    {
                        out.push(s);
                    }
                }
            }
        }
        out
    }
}

/// The workloads each [`StartOnly`] of a model stands for, as a store holds them.
pub(super) type Resolved = BTreeMap<StartOnly, Vec<WorkloadRef>>;

/// One failing combination of a connection in a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BrokenConnection {
    /// The connection's name.
    pub connection: String,
    /// The start-only workload whose loaded files failed, if a start-only side did.
    pub workload: Option<WorkloadRef>,
    /// Which leaf failed: the server's (`true`) or the client's.
    pub server_leaf: bool,
    /// Why.
    pub reason: String,
}

/// What a workload's pods loaded: the profile's Secrets as they were when they started.
/// `None` until the Secrets exist (a pod without its certificates does not start).
pub(super) type Loaded = BTreeMap<WorkloadRef, BTreeMap<ObjectRef, BTreeMap<String, Vec<u8>>>>;

/// The files one side may hold during a step, leaf and trust, each possibly several:
/// as before the step (`false`) or as after it (`true`; only where it differs).
struct Holds<'a> {
    workload: Option<WorkloadRef>,
    leaves: Vec<(bool, &'a [u8])>,
    trust: Vec<(bool, &'a [u8])>,
}

/// A file's versions before and after a step, the after one only where it differs.
fn versions<'a>(before: Option<&'a [u8]>, after: Option<&'a [u8]>) -> Vec<(bool, &'a [u8])> {
    let mut out: Vec<(bool, &'a [u8])> = before.map(|b| (false, b)).into_iter().collect();
    if let Some(a) = after
        && before != Some(a)
    {
        out.push((true, a));
    }
    out
}

/// Checks every connection of `model` for the step from `before` to `after` (observed
/// states) with `loaded` (before the step), then records in `loaded` what the pods the
/// step restarted (or started) loaded.
pub(super) fn check_and_load(
    model: &ReloadModel,
    profile: &Profile,
    before: &Observed,
    after: &Observed,
    resolved: &Resolved,
    loaded: &mut Loaded,
    now: OffsetDateTime,
) -> Vec<BrokenConnection> {
    // A workload running before the first step looked at loaded what its Secrets held
    // then (the simulation knows no earlier state).
    if !before.secrets.is_empty() {
        for workload in resolved.values().flatten() {
            loaded
                .entry(workload.clone())
                .or_insert_with(|| secrets_of(before));
        }
    }
    let after_loaded = reload(resolved, loaded, before, after);
    let mut broken = Vec::new();
    for connection in &model.connections {
        let held = (before, after, resolved, &*loaded, &after_loaded);
        let clients = holds(&connection.client, profile, held);
        let servers = holds(&connection.server, profile, held);
        for client in &clients {
            for server in &servers {
                let workload = client.workload.clone().or(server.workload.clone());
                // A combination of two files as they were before the step failed before
                // it too: not this step's doing (the trust matrix shows it).
                let mut check = |(leaf_after, leaf): (bool, &[u8]),
                                 (trust_after, bundle): (bool, &[u8]),
                                 server_leaf: bool| {
                    if !leaf_after && !trust_after {
                        return;
                    }
                    if let Some(reason) = untrusted(leaf, bundle, now) {
                        broken.push(BrokenConnection {
                            connection: connection.name.clone(),
                            workload: workload.clone(),
                            server_leaf,
                            reason,
                        });
                    }
                };
                for leaf in &server.leaves {
                    for bundle in &client.trust {
                        check(*leaf, *bundle, true);
                    }
                }
                if connection.verifies_client {
                    for leaf in &client.leaves {
                        for bundle in &server.trust {
                            check(*leaf, *bundle, false);
                        }
                    }
                }
            }
        }
    }
    broken.sort_by(|a, b| {
        (&a.connection, &a.workload, a.server_leaf, &a.reason).cmp(&(
            &b.connection,
            &b.workload,
            b.server_leaf,
            &b.reason,
        ))
    });
    broken.dedup();
    *loaded = after_loaded;
    broken
}

/// What each workload holds after the step: reloaded where the step restarted it (its
/// `restarted-for` token changed) or where it had loaded nothing yet.
fn reload(resolved: &Resolved, loaded: &Loaded, before: &Observed, after: &Observed) -> Loaded {
    let token = |o: &Observed, w: &WorkloadRef| {
        o.workloads
            .get(w)
            .and_then(|w| w.template_annotations.get(ANNOTATION_RESTARTED_FOR))
            .cloned()
    };
    let secrets = secrets_of(after);
    let mut out = Loaded::new();
    for workload in resolved.values().flatten() {
        let restarted = token(before, workload) != token(after, workload);
        match loaded.get(workload) {
            Some(held) if !restarted && !held.is_empty() => {
                out.insert(workload.clone(), held.clone());
            }
            Some(_) | None => {
                out.insert(workload.clone(), secrets.clone());
            }
        }
    }
    out
}

/// The data of every Secret of `observed`.
fn secrets_of(observed: &Observed) -> BTreeMap<ObjectRef, BTreeMap<String, Vec<u8>>> {
    observed
        .secrets
        .iter()
        .map(|(r, s)| (r.clone(), s.data.clone()))
        .collect()
}

/// The files `peer` may hold during the step, one entry per start-only workload (or one
/// for a live peer).
fn holds<'a>(
    peer: &Peer,
    profile: &Profile,
    (before, after, resolved, loaded, after_loaded): (
        &'a Observed,
        &'a Observed,
        &'a Resolved,
        &'a Loaded,
        &'a Loaded,
    ),
) -> Vec<Holds<'a>> {
    let secret = ObjectRef::new(&profile.namespace, &peer.secret);
    let live = |key: &str| {
        let value = |o: &'a Observed| {
            o.secrets
                .get(&secret)
                .and_then(|s| s.data.get(key))
                .map(Vec::as_slice)
        };
        versions(value(before), value(after))
    };
    let workloads: Vec<WorkloadRef> = match (&peer.leaf, &peer.trust) {
        (Loading::Live, Loading::Live) => {
            return vec![Holds {
                workload: None,
                leaves: live(KEY_TLS_CRT),
                trust: live(KEY_TRUST),
            }];
        }
        (Loading::AtStart(s), _) | (_, Loading::AtStart(s)) => {
            resolved.get(s).cloned().unwrap_or_default()
        }
    };
    workloads
        .into_iter()
        .map(|workload| {
            let at_start = |key: &str| {
                let value = |l: &'a Loaded| {
                    l.get(&workload)
                        .and_then(|held| held.get(&secret))
                        .and_then(|data| data.get(key))
                        .map(Vec::as_slice)
                };
                versions(value(loaded), value(after_loaded))
            };
            let files = |loading: &Loading, key: &str| match loading {
                Loading::Live => live(key),
                Loading::AtStart(_) => at_start(key),
            };
            Holds {
                leaves: files(&peer.leaf, KEY_TLS_CRT),
                trust: files(&peer.trust, KEY_TRUST),
                workload: Some(workload),
            }
        })
        .collect()
}

/// Why `bundle` does not trust `leaf` at `now`, if it does not.
fn untrusted(leaf: &[u8], bundle: &[u8], now: OffsetDateTime) -> Option<String> {
    let origin = Origin::new("simulated");
    match verify_chain(leaf, &origin, bundle, &origin, now) {
        Ok(ChainVerdict::Trusted { .. }) => None,
        Ok(ChainVerdict::Untrusted { reason }) => Some(reason.to_string()),
        Err(e) => Some(e.to_string()),
    }
}
