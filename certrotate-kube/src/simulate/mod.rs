//! A whole rotation in memory, checked step by step: the proof a user can run on their own
//! profile and options before touching a cluster.
//!
//! [`simulate`] copies a starting state (a fresh cluster, or what was observed) into a
//! [`MemoryStore`], runs the engine on it with a [`ManualClock`] (install if needed, then a
//! rotation with the given strategy and options, waits jumped over), and after every step
//! checks the trust invariant between the state before and the state after it in every
//! combination ([`certrotate_core::trust::check_step`]). A combination a step breaks is a
//! failure; one that already failed before the step, and that the step does not touch, is
//! reported apart. A step the engine's trust gate refuses ends the simulation; its matrix
//! shows why.
//!
//! With a [`ReloadModel`] (Envoy Gateway's: [`ReloadModel::envoy_gateway`]), each step
//! also checks the control plane's connections as its processes hold their files: a
//! process that loads a file only at start keeps it until the rotation restarts it
//! (`reload.rs`).

mod reload;

pub use reload::{BrokenConnection, Connection, Loading, Peer, ReloadModel, StartOnly};

use std::collections::BTreeMap;
use std::sync::Arc;

use certrotate_core::evidence::{Endpoint, Evidence};
use certrotate_core::plan::{
    Next, ObjectRef, Observed, ObservedSecret, Phase, ProfileObjects, Strategy, WorkloadRef,
    WorkloadSelector,
};
use certrotate_core::profile::{EndpointTarget, WorkloadKind};
use certrotate_core::trust::{self, PairCheck, TrustReport};
use certrotate_core::{Profile, RotationPolicy, SeededEntropy, Trigger};
use serde::Serialize;
use time::OffsetDateTime;

use crate::clock::{Clock, ManualClock};
use crate::engine::{Engine, observe};
use crate::error::Error;
use crate::evidence::{BoxFuture, EvidenceSource, Gathered};
use crate::memory::MemoryStore;
use crate::store::WorkloadStore as _;

/// Where a simulation starts.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Start {
    /// A cluster without any Secret of the profile; its workloads and webhook
    /// configurations exist (a Helm chart creates them, with empty `caBundle`s). The first
    /// step is the install.
    Fresh,
    /// A state read from a store (see [`observe`]).
    Observed(Observed),
}

/// What to simulate.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SimulateOptions {
    /// The policy of the rotation (its trigger is replaced, and the too-soon guard skipped:
    /// a simulation always rotates once).
    pub plan: RotationPolicy,
    /// The simulated clock's start.
    pub now: OffsetDateTime,
    /// Seed of the keys and serials (a simulation is reproducible).
    pub seed: u64,
    /// The connections to check as their processes load their files (none: only the
    /// Secrets' trust matrix).
    pub reload: Option<ReloadModel>,
    /// Component Secrets whose servers never see an update (a `subPath` mount, a stuck
    /// kubelet): they keep serving, and trusting, the files they had when the rotation
    /// started. The trust matrix of each step checks what they serve, not what the Secret
    /// holds.
    pub never_reloads: Vec<String>,
    /// Apply the evidence rule: each component that names endpoints in the profile is a
    /// simulated server that verifies clients (listing the CAs of the `ca.crt` it serves
    /// with) and presents the leaf it loaded; a phase waits until every one shows what it
    /// wrote, as a run probing them would. A server that never reloads then holds the
    /// rotation ([`Ending::Held`]) instead of letting its pairs break.
    pub evidence: bool,
    /// More simulated servers besides the profile's (`--endpoint SECRET=HOST:PORT`): each
    /// serves its component Secret's files as loaded. Used with [`Self::evidence`].
    pub endpoints: Vec<Endpoint>,
}

impl SimulateOptions {
    /// A simulation of a rotation with `plan`, starting at `now`.
    pub fn new(plan: RotationPolicy, now: OffsetDateTime) -> Self {
        Self {
            plan,
            now,
            seed: 1,
            reload: None,
            never_reloads: Vec::new(),
            evidence: false,
            endpoints: Vec::new(),
        }
    }

    /// With the connections of `model` checked at every step.
    pub fn with_reload(mut self, model: ReloadModel) -> Self {
        self.reload = Some(model);
        self
    }
}

/// One step of a simulated run: a plan applied (or refused), with its trust matrix.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct SimulatedStep {
    /// 1-based position.
    pub index: usize,
    /// Phase before.
    pub from: Phase,
    /// Phase after.
    pub to: Phase,
    /// What the step does.
    pub summary: certrotate_core::plan::Summary,
    /// The simulated time it ran at.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Whether the engine's trust gate refused it (the matrix is then of the state the
    /// step would have written).
    pub refused: bool,
    /// Every combination of the states before and after the step.
    pub trust: TrustReport,
    /// The connections of the [`ReloadModel`] the step breaks, as their processes hold
    /// their files (empty without a model).
    pub connections: Vec<BrokenConnection>,
}

/// How a simulation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
// Closed on purpose: how a simulation ends is its verdict; callers match each ending.
pub enum Ending {
    /// The rotation finished.
    Done,
    /// The trust gate refused a step (see the last step).
    Refused,
    /// The evidence rule holds the rotation in a phase: these simulated servers do not
    /// show what it wrote (a real run waits for them, and exits 6 past
    /// `--convergence-timeout`).
    Held {
        /// The phase it holds in.
        phase: Phase,
        /// Each lagging server and what it shows.
        lagging: Vec<String>,
    },
    /// The engine stopped on an error.
    Failed {
        /// The error.
        error: String,
    },
}

/// The result of [`simulate`].
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Simulation {
    /// The profile's name.
    pub profile: String,
    /// The strategy simulated.
    pub strategy: Strategy,
    /// The steps that wrote something, in order.
    pub steps: Vec<SimulatedStep>,
    /// How it ended.
    pub ending: Ending,
}

impl Simulation {
    /// Every combination a step breaks (see [`PairCheck::breaks`]), with its step.
    pub fn failures(&self) -> impl Iterator<Item = (&SimulatedStep, &PairCheck)> {
        self.steps
            .iter()
            .flat_map(|s| s.trust.broken().map(move |c| (s, c)))
    }

    /// Every combination that fails without being the step's doing (a `caBundle` still
    /// empty before the install fills it, a leaf no store trusted before the rotation),
    /// with its step.
    pub fn already_failing(&self) -> impl Iterator<Item = (&SimulatedStep, &PairCheck)> {
        self.steps.iter().flat_map(|s| {
            s.trust
                .failures()
                .filter(|c| !c.breaks_trust())
                .map(move |c| (s, c))
        })
    }

    /// Every connection a step breaks (see [`ReloadModel`]), with its step.
    pub fn broken_connections(&self) -> impl Iterator<Item = (&SimulatedStep, &BrokenConnection)> {
        self.steps
            .iter()
            .flat_map(|s| s.connections.iter().map(move |c| (s, c)))
    }

    /// Whether the rotation finished and no step broke any combination or connection.
    pub fn passed(&self) -> bool {
        self.ending == Ending::Done
            && self.failures().next().is_none()
            && self.broken_connections().next().is_none()
    }
}

/// Simulates a rotation of `profile` from `start` in memory; see the module docs.
///
/// ```
/// use certrotate_core::{Profile, RotationPolicy};
/// use certrotate_kube::simulate::{simulate, SimulateOptions, Start};
/// use time::macros::datetime;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let profile = Profile::envoy_gateway("envoy-gateway-system");
/// let options = SimulateOptions::new(RotationPolicy::default(), datetime!(2026-06-01 0:00 UTC));
/// let simulation = simulate(&profile, Start::Fresh, &options).await?;
/// for (step, pair) in simulation.failures() {
///     println!("step {} ({}): {pair}", step.index, step.summary);
/// }
/// # Ok::<(), certrotate_kube::Error>(())
/// # }).unwrap();
/// ```
pub async fn simulate(
    profile: &Profile,
    start: Start,
    options: &SimulateOptions,
) -> Result<Simulation, Error> {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(options.now));
    let objects = ProfileObjects::of(profile);
    let start_kind = match start {
        Start::Fresh => StartKind::Fresh,
        Start::Observed(_) => StartKind::Observed,
    };
    match start {
        Start::Fresh => {
            for workload in objects.workloads {
                store.insert_workload(workload);
            }
            // One workload for each selector, as a Gateway's proxy would be.
            for (i, selector) in objects.selectors.iter().enumerate() {
                let namespace = selector
                    .namespaces
                    .as_ref()
                    .and_then(|listed| listed.first())
                    .unwrap_or(&profile.namespace);
                store.insert_labelled_workload(
                    WorkloadRef::new(selector.kind, namespace, format!("selected-{}", i + 1)),
                    selector.labels.clone(),
                );
            }
            for webhook in objects.webhooks {
                store.insert_webhook(webhook, vec![Vec::new()]);
            }
        }
        Start::Observed(observed) => {
            for (secret, value) in observed.secrets {
                store.insert_secret(secret, value);
            }
            // Rollouts complete at once in memory; restart history does not matter to
            // trust.
            for workload in observed.workloads.into_keys() {
                // What a selector found is found again: it carries the labels of every
                // selector of its kind.
                let labels: BTreeMap<String, String> = if observed.selected.contains(&workload) {
                    objects
                        .selectors
                        .iter()
                        .filter(|s| s.kind == workload.kind)
                        .flat_map(|s| s.labels.clone())
                        .collect()
                } else {
                    BTreeMap::new()
                };
                store.insert_labelled_workload(workload, labels);
            }
            for (webhook, value) in observed.webhooks {
                store.insert_webhook(webhook, value.ca_bundles);
            }
        }
    }

    let mut simulation = Simulation {
        profile: profile.name.clone(),
        strategy: options.plan.strategy,
        steps: Vec::new(),
        ending: Ending::Done,
    };
    // Install (a no-op on an installed state), then rotate once.
    let mut install = options.plan.clone();
    install.trigger = Trigger::Never;
    let mut rotate = options.plan.clone();
    rotate.trigger = Trigger::Always;
    rotate.skip_too_soon = true;
    rotate.accept_clock_skew = true;
    let mut seed = options.seed;
    // What the servers that never reload serve: their Secrets as the rotation found them.
    let served = Arc::new(Served::default());
    // Set when the first pass finishes a rotation the observed state was in the middle of:
    // that is the rotation to simulate.
    let mut finished_one = false;
    let mut loaded = reload::Loaded::new();
    let resolved = match (&options.reload, &start_kind) {
        (Some(model), StartKind::Fresh) => {
            for start_only in model.start_only() {
                if resolve(&store, profile, start_only).await?.is_empty() {
                    insert_start_only(&store, profile, start_only);
                }
            }
            resolve_all(&store, profile, model).await?
        }
        (Some(model), StartKind::Observed) => resolve_all(&store, profile, model).await?,
        (None, _) => reload::Resolved::new(),
    };
    for (plan_options, rotation) in [(install, false), (rotate, true)] {
        if rotation && finished_one {
            break;
        }
        if rotation || served.is_empty() {
            served.load(&store.snapshot(), profile, &options.never_reloads);
        }
        // Each plan is its own engine call, as separate runs of a CronJob would be.
        let mut phase_left = false;
        for _ in 0..64 {
            seed = seed.wrapping_add(1);
            let mut engine = Engine::new(store.clone())
                .with_clock(clock.clone())
                .with_entropy(SeededEntropy::new(seed));
            if options.evidence {
                engine = engine.with_evidence(SimulatedServers::new(
                    profile,
                    &options.endpoints,
                    served.clone(),
                ));
            }
            let before = served.apply(observe(&store, profile).await?);
            let plan = match engine.plan(profile, &plan_options).await {
                Ok(plan) => plan,
                Err(e) => {
                    simulation.ending = Ending::Failed {
                        error: e.to_string(),
                    };
                    return Ok(simulation);
                }
            };
            let at = clock.now();
            if plan.writes() {
                let (after, refused) = match engine.apply(profile, &plan).await {
                    Ok(_) => (served.apply(observe(&store, profile).await?), false),
                    Err(Error::TrustWouldBreak { .. }) => (served.apply(before.after(&plan)), true),
                    Err(e) => {
                        simulation.ending = Ending::Failed {
                            error: e.to_string(),
                        };
                        return Ok(simulation);
                    }
                };
                simulation.steps.push(SimulatedStep {
                    index: simulation.steps.len() + 1,
                    from: plan.from,
                    to: plan.to,
                    summary: plan.summary.clone(),
                    at,
                    refused,
                    trust: trust::check_step(profile, &before, &after, at),
                    connections: match &options.reload {
                        Some(model) => reload::check_and_load(
                            model,
                            profile,
                            &before,
                            &after,
                            &resolved,
                            &mut loaded,
                            at,
                        ),
                        None => Vec::new(),
                    },
                });
                if refused {
                    simulation.ending = Ending::Refused;
                    return Ok(simulation);
                }
            }
            phase_left |= plan.to != Phase::Stable;
            if let Next::WaitUntil {
                reason: certrotate_core::plan::WaitReason::Evidence { phase, .. },
                ..
            } = plan.next
            {
                // The servers' evidence as the planner saw it: who lags, and with what.
                let seen = engine.observe(profile).await?;
                let lagging = certrotate_core::plan::lagging_endpoints(profile, &seen, clock.now());
                simulation.ending = Ending::Held {
                    phase,
                    lagging: lagging.iter().map(ToString::to_string).collect(),
                };
                return Ok(simulation);
            }
            match plan.next {
                Next::Continue => {}
                Next::WaitUntil { at, .. } => clock.sleep_until(at).await,
                // Rollouts in memory complete at once; a later look sees them done.
                Next::WaitForRollout { .. } => {}
                // A rotation that ends where it began without leaving stable did not
                // start (a too-soon guard or an unmanaged install): say so.
                Next::Done if rotation && !phase_left => {
                    simulation.ending = Ending::Failed {
                        error: format!("the rotation did not start: {}", plan.summary),
                    };
                    return Ok(simulation);
                }
                Next::Done => break,
            }
        }
        finished_one = phase_left;
    }
    Ok(simulation)
}

/// Whether a simulation started fresh.
enum StartKind {
    Fresh,
    Observed,
}

const KINDS: [WorkloadKind; 3] = [
    WorkloadKind::Deployment,
    WorkloadKind::StatefulSet,
    WorkloadKind::DaemonSet,
];

/// The workloads of the store each start-only process of `model` stands for.
async fn resolve_all(
    store: &MemoryStore,
    profile: &Profile,
    model: &ReloadModel,
) -> Result<reload::Resolved, Error> {
    let mut out = reload::Resolved::new();
    for start_only in model.start_only() {
        out.insert(
            start_only.clone(),
            resolve(store, profile, start_only).await?,
        );
    }
    Ok(out)
}

/// The workloads of the store `start_only` stands for.
async fn resolve(
    store: &MemoryStore,
    profile: &Profile,
    start_only: &StartOnly,
) -> Result<Vec<WorkloadRef>, Error> {
    let mut out = Vec::new();
    for kind in KINDS {
        match start_only {
            StartOnly::Named(name) => {
                let workload = WorkloadRef::new(kind, &profile.namespace, name);
                let read =
                    store
                        .read_workload(&workload)
                        .await
                        .map_err(|source| Error::ReadWorkload {
                            workload: workload.clone(),
                            source,
                        })?;
                if read.is_some() {
                    out.push(workload);
                }
            }
            StartOnly::Labelled(labels) => {
                let selector = WorkloadSelector {
                    kind,
                    labels: labels.clone(),
                    namespaces: None,
                };
                let listed = store.list_workloads(&selector).await.map_err(|source| {
                    Error::ListWorkloads {
                        selector: selector.clone(),
                        source,
                    }
                })?;
                out.extend(listed.into_iter().map(|(w, _)| w));
            }
        }
    }
    Ok(out)
}

/// Creates a Deployment for a start-only process of the model the profile does not name
/// (it runs whether or not the profile restarts it).
fn insert_start_only(store: &MemoryStore, profile: &Profile, start_only: &StartOnly) {
    match start_only {
        StartOnly::Named(name) => store.insert_workload(WorkloadRef::new(
            WorkloadKind::Deployment,
            &profile.namespace,
            name,
        )),
        StartOnly::Labelled(labels) => store.insert_labelled_workload(
            WorkloadRef::new(WorkloadKind::Deployment, &profile.namespace, "unselected-1"),
            labels.clone(),
        ),
    }
}

/// The Secrets the servers that never reload serve, as the rotation found them.
#[derive(Debug, Default)]
struct Served {
    secrets: std::sync::Mutex<std::collections::BTreeMap<ObjectRef, ObservedSecret>>,
}

impl Served {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<ObjectRef, ObservedSecret>> {
        // Plain data: a panic elsewhere leaves it whole.
        self.secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Takes the named component Secrets from `observed` (those it has).
    fn load(&self, observed: &Observed, profile: &Profile, never_reloads: &[String]) {
        let mut secrets = self.lock();
        secrets.clear();
        for name in never_reloads {
            let secret = ObjectRef::new(&profile.namespace, name);
            if let Some(s) = observed.secrets.get(&secret) {
                secrets.insert(secret, s.clone());
            }
        }
    }

    /// `observed` as the servers see it: the Secrets of those that never reload replaced
    /// by what they serve.
    fn apply(&self, mut observed: Observed) -> Observed {
        for (secret, served) in self.lock().iter() {
            observed.secrets.insert(secret.clone(), served.clone());
        }
        observed
    }
}

/// The simulated servers: one per endpoint the profile names, each verifying clients with
/// the `ca.crt` it serves and presenting its `tls.crt`, as loaded (the Secret now, or what
/// a server that never reloads kept).
struct SimulatedServers {
    endpoints: Vec<Endpoint>,
    served: Arc<Served>,
}

impl SimulatedServers {
    fn new(profile: &Profile, literal: &[Endpoint], served: Arc<Served>) -> Self {
        let mut endpoints: Vec<Endpoint> = literal.to_vec();
        for c in &profile.components {
            for e in &c.endpoints {
                let address = match e.target() {
                    Ok(EndpointTarget::Service { name, port }) => format!("{name}:{port}"),
                    Ok(EndpointTarget::Address(address)) => address.to_owned(),
                    // A validated profile has none.
                    Err(_) => continue,
                };
                if let Ok(endpoint) = Endpoint::for_component(profile, &c.secret, address) {
                    endpoints.push(endpoint.with_pod(format!("simulated-{}", c.secret)));
                }
            }
        }
        Self { endpoints, served }
    }
}

impl EvidenceSource for SimulatedServers {
    fn gather<'a>(
        &'a self,
        _profile: &'a Profile,
        observed: &'a Observed,
    ) -> BoxFuture<'a, Gathered> {
        let seen = self.served.apply(observed.clone());
        let probed = self
            .endpoints
            .iter()
            .map(|e| {
                let secret = seen.secrets.get(&e.secret);
                let key = |k: &str| secret.and_then(|s| s.data.get(k)).map(Vec::as_slice);
                let evidence = Evidence::of_server_files(
                    key(certrotate_core::plan::wire::KEY_CA_CRT),
                    key(certrotate_core::plan::wire::KEY_TLS_CRT),
                );
                (e.clone(), Ok(evidence))
            })
            .collect();
        Box::pin(std::future::ready(Gathered::new(probed, Vec::new())))
    }
}

#[cfg(test)]
mod tests;
