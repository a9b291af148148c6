//! The rotation engine: observe → plan → apply in order → wait → repeat.
//!
//! The engine makes no policy decision: what to write, in which order, and when the next
//! step may run all come from the core's [`RotationPlan`]. The engine reads, applies,
//! re-plans after a conflict, and waits. Planning (which generates keys) and the calls of a
//! store that blocks ([`IoKind::Blocking`]) run on tokio's blocking pool, so the async
//! executor stays responsive.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use certrotate_core::plan::{
    AnyRef, Next, ObjectRef, Observed, Phase, ProfileObjects, Summary, WaitReason,
};
use certrotate_core::trust::GateDecision;
use certrotate_core::{Entropy, Profile, RotationPlan, RotationPolicy};

mod apply;
mod report;
mod sink;

pub use report::{Event, RunMode, RunReport};
pub use sink::{EventSink, Recording, RunEvents};
use sink::{NoEvents, Record};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, StoreError};
use crate::parallel::ParallelKeys;
use crate::store::{IoKind, Store};

/// Drives the rotations of any number of control planes on one store: created once,
/// shared by every reconcile.
///
/// An engine holds what every run shares: the store, the clock, the source of randomness,
/// where events go ([`EventSink`]) and where evidence comes from. What a run is about
/// (the [`Profile`]) and what it is asked to do (the [`RotationPolicy`]) are arguments of
/// each call, as kube-runtime hands each reconcile its object: an operator keeps one
/// engine in its context, whatever the number of namespaces it manages.
///
/// Every method takes `&self`: an engine can be shared (in an `Arc`, or a kube-runtime
/// controller's context) and called from several tasks at once, for the same control plane
/// or for many. Its only shared mutable state is the source of randomness: RSA keys made
/// ahead, taken under a lock held only to pick one (a source given by
/// [`Self::with_entropy`] is drawn from by one plan at a time), never across an `.await`.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), certrotate_kube::Error> {
/// use certrotate_core::{Profile, RotationPolicy, Trigger};
/// use certrotate_kube::{DirStore, Engine};
///
/// let engine = Engine::new(DirStore::new("./certs"));
/// let profile = Profile::envoy_gateway("envoy-gateway-system");
/// let policy = RotationPolicy::default().with_trigger(Trigger::Now);
/// let report = engine.reconcile(&profile, &policy).await?;
/// println!("{}: come back in {:?}", report.summary, report.requeue_after);
/// # Ok(()) }
/// ```
pub struct Engine<S, C = SystemClock> {
    store: Arc<S>,
    clock: C,
    entropy: Randomness,
    max_conflicts: u32,
    poll_interval: Duration,
    sink: Arc<dyn EventSink>,
    /// Where the evidence of a converging phase comes from (none: timers only).
    evidence: Option<Arc<dyn crate::evidence::EvidenceSource>>,
}

/// Where plans draw keys and serials from.
#[derive(Clone)]
enum Randomness {
    /// The operating system's, RSA keys made ahead and shared: each plan takes a clone, so
    /// concurrent reconciles plan at once.
    System(ParallelKeys),
    /// A source given by [`Engine::with_entropy`] (a seeded one makes plans reproducible):
    /// one plan at a time draws from it, in turn.
    Given(Arc<Mutex<Box<dyn Entropy + Send>>>),
}

/// How many RSA keys [`Engine::new`]'s randomness generates at once: a rotation of the
/// built-in profile needs one per component plus the CA; keys made ahead and not used are
/// kept for the next plan.
const KEY_BATCH: usize = 6;

impl<S: Store> Engine<S, SystemClock> {
    /// An engine with the system clock and the operating system's randomness (RSA keys
    /// generated in parallel), its events logged only.
    pub fn new(store: S) -> Self {
        Self {
            store: Arc::new(store),
            clock: SystemClock,
            entropy: Randomness::System(ParallelKeys::new(KEY_BATCH)),
            max_conflicts: 5,
            poll_interval: Duration::from_secs(5),
            sink: Arc::new(NoEvents),
            evidence: None,
        }
    }
}

impl<S: Store, C: Clock> Engine<S, C> {
    /// Uses another clock (tests use [`ManualClock`](crate::ManualClock)).
    pub fn with_clock<C2: Clock>(self, clock: C2) -> Engine<S, C2> {
        Engine {
            store: self.store,
            clock,
            entropy: self.entropy,
            max_conflicts: self.max_conflicts,
            poll_interval: self.poll_interval,
            sink: self.sink,
            evidence: self.evidence,
        }
    }

    /// Uses another source of randomness (a seeded one makes plans reproducible). Plans
    /// draw from it one at a time, in turn.
    pub fn with_entropy(mut self, entropy: impl Entropy + Send + 'static) -> Self {
        self.entropy = Randomness::Given(Arc::new(Mutex::new(Box::new(entropy))));
        self
    }

    /// How many conflicting writes to re-plan after before giving up (default 5).
    pub fn with_max_conflicts(mut self, n: u32) -> Self {
        self.max_conflicts = n;
        self
    }

    /// Sends each run's [`Event`]s to `sink` as they happen, besides collecting them in
    /// the [`RunReport`]: a write's event comes after the write succeeded, and a run that
    /// fails has recorded every event up to the failure (the report is lost with the
    /// error). Kubernetes Events: [`KubeEvents`](crate::events::KubeEvents).
    pub fn with_event_sink(mut self, sink: impl EventSink + 'static) -> Self {
        self.sink = Arc::new(sink);
        self
    }

    /// Probes these TLS servers of the components while a phase converges, and waits for
    /// their evidence too ([`Observed::evidence`]): in `trust`, until every server that
    /// verifies clients lists the next CA; in `leaves`, until every server presents a leaf
    /// of the new CA. The convergence interval stays the minimum wait (for what no probe
    /// can see: clients' trust, start-only components). A failed probe is evidence of
    /// nothing; [`RotationPolicy::convergence_timeout`] bounds the wait.
    pub fn with_endpoints(
        self,
        endpoints: Vec<certrotate_core::evidence::Endpoint>,
        limits: crate::probe::ProbeLimits,
    ) -> Self {
        self.with_evidence(crate::evidence::Probes::new(endpoints, limits))
    }

    /// Gathers the evidence of a converging phase from `source` (as
    /// [`Self::with_endpoints`] does from literal endpoints): Services resolved each time
    /// ([`crate::evidence::Probes::with_services`]), or a simulation's servers. What it
    /// could not look at is reported once per change ([`Event::EndpointsUndiscovered`]);
    /// the timers decide for it.
    pub fn with_evidence(mut self, source: impl crate::evidence::EvidenceSource + 'static) -> Self {
        self.evidence = Some(Arc::new(source));
        self
    }

    /// How often to look at rollouts while waiting for them (default 5 s).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Reads every object of `profile`.
    pub async fn observe(&self, profile: &Profile) -> Result<Observed, Error> {
        let profile = Arc::new(profile.clone());
        Ok(self.observe_probed(&profile).await?.0)
    }

    /// Reads every object of the profile and gathers the evidence of its phase, with what
    /// could not be looked at.
    async fn observe_probed(
        &self,
        profile: &Arc<Profile>,
    ) -> Result<(Observed, Vec<crate::evidence::Undiscovered>), Error> {
        let store = Arc::clone(&self.store);
        let for_store = Arc::clone(profile);
        let mut observed = self
            .store_call(async move { observe(&*store, &for_store).await })
            .await??;
        let undiscovered = self.probe_into(profile, &mut observed).await;
        Ok((observed, undiscovered))
    }

    /// Probes the endpoints into `observed` while its phase converges on what they load
    /// (the servers are asked then only); evidence of an earlier phase is dropped. Returns
    /// the Services whose pods gave no evidence (the timers decide for them).
    async fn probe_into(
        &self,
        profile: &Profile,
        observed: &mut Observed,
    ) -> Vec<crate::evidence::Undiscovered> {
        observed.evidence = None;
        let Some(source) = &self.evidence else {
            return Vec::new();
        };
        if !converging(profile, observed) {
            return Vec::new();
        }
        let gathered = source.gather(profile, observed).await;
        observed.evidence = Some(gathered.probed);
        gathered.undiscovered
    }

    /// Observes and plans the next step without applying it: a dry run. A
    /// [`Trigger::Now`](certrotate_core::Trigger::Now) is resolved against what was read.
    /// Keys are generated on tokio's blocking pool.
    pub async fn plan(
        &self,
        profile: &Profile,
        policy: &RotationPolicy,
    ) -> Result<RotationPlan, Error> {
        let profile = Arc::new(profile.clone());
        let observed = self.observe_probed(&profile).await?.0;
        let policy = policy.resolve(&profile, &observed)?;
        self.plan_from(&profile, &policy, Arc::new(observed)).await
    }

    /// Plans from an observation, on tokio's blocking pool (key generation is CPU-heavy).
    async fn plan_from(
        &self,
        profile: &Arc<Profile>,
        policy: &RotationPolicy,
        observed: Arc<Observed>,
    ) -> Result<RotationPlan, Error> {
        let now = self.clock.now();
        let profile = Arc::clone(profile);
        let policy = policy.clone();
        let entropy = self.entropy.clone();
        let plan = blocking(move || match entropy {
            Randomness::System(mut keys) => {
                certrotate_core::plan(&profile, &observed, &policy, now, &mut keys)
            }
            Randomness::Given(given) => {
                // A panic while planning leaves the entropy source as it was: its state is
                // only a random stream, safe to keep using.
                let mut entropy = given.lock().unwrap_or_else(PoisonError::into_inner);
                certrotate_core::plan(&profile, &observed, &policy, now, entropy.as_mut())
            }
        })
        .await??;
        Ok(plan)
    }

    /// The operator's entry point: advances the rotation of `profile` as far as it safely
    /// may now (every step allowed, up to the first wait) and says when to come back
    /// ([`RunReport::requeue_after`], measured with this engine's clock). Call it again
    /// whenever it asks, or whenever something changed; an unchanged state writes nothing.
    pub async fn reconcile(
        &self,
        profile: &Profile,
        policy: &RotationPolicy,
    ) -> Result<RunReport, Error> {
        self.run(profile, policy, RunMode::Once).await
    }

    /// The trust gate ([`certrotate_core::trust::judge`] decides): refuses a step that
    /// breaks trust, reports the pairs a single-step rotation puts at risk. No option skips
    /// it.
    async fn gate(
        &self,
        profile: &Profile,
        observed: &Observed,
        plan: &RotationPlan,
        record: &mut Record,
    ) -> Result<(), Error> {
        match certrotate_core::trust::judge(profile, observed, plan, self.clock.now()) {
            GateDecision::Keeps => Ok(()),
            GateDecision::AtRisk(pairs) => {
                record.emit(Event::TrustAtRisk { pairs }).await;
                Ok(())
            }
            GateDecision::Breaks(broken) => Err(Error::TrustWouldBreak {
                step: plan.summary.clone(),
                broken,
            }),
        }
    }

    /// Applies one plan (from [`Self::plan`]) of `profile` without re-planning: for a
    /// server-side dry run, or an operator that shows the plan before applying it. A
    /// conflict is an error here; [`Self::run`] re-plans instead. The plan's events go to
    /// the sink as a run's do.
    pub async fn apply(&self, profile: &Profile, plan: &RotationPlan) -> Result<RunReport, Error> {
        let report = RunReport {
            events: Vec::new(),
            phase: plan.to,
            next: plan.next.clone(),
            requeue_after: None,
            summary: plan.summary.clone(),
            writes: 0,
        };
        let mut record = Record::new(report, self.sink.start(profile));
        let outcome = self.apply_one(profile, plan, &mut record).await;
        record.report.requeue_after = self.requeue_after(&record.report.next);
        record.finish(outcome).await
    }

    async fn apply_one(
        &self,
        profile: &Profile,
        plan: &RotationPlan,
        record: &mut Record,
    ) -> Result<(), Error> {
        let profile = Arc::new(profile.clone());
        let observed = self.observe_probed(&profile).await?.0;
        self.gate(&profile, &observed, plan, record).await?;
        self.apply_steps(plan, record, &mut None).await
    }

    /// Runs the rotation of `profile` as far as `mode` allows, as `policy` asks.
    ///
    /// Every object of the profile is read at the start of the run, and again after a
    /// conflict, a workload restart or a wait for rollouts. Between those, each round plans
    /// from what was read with this run's own writes applied (each write returns the new
    /// version). That is safe because every Secret and webhook write carries the version
    /// its plan was made from: a change by anyone else meanwhile (even a deletion) fails
    /// the write, and the engine re-reads and re-plans. A staged rotation to its end thus
    /// reads the profile once instead of once per phase.
    ///
    /// A [`Trigger::Now`](certrotate_core::Trigger::Now) is resolved once, against the
    /// run's first read ([`RotationPolicy::resolve`]): every round of the run, and a run
    /// that races it, rotates away from the same CA, so the rotation happens once.
    pub async fn run(
        &self,
        profile: &Profile,
        policy: &RotationPolicy,
        mode: RunMode,
    ) -> Result<RunReport, Error> {
        let report = RunReport {
            events: Vec::new(),
            phase: Phase::Stable,
            next: Next::Done,
            requeue_after: None,
            summary: Summary::UpToDate,
            writes: 0,
        };
        let mut record = Record::new(report, self.sink.start(profile));
        let outcome = self
            .run_rounds(&Arc::new(profile.clone()), policy, mode, &mut record)
            .await;
        record.report.requeue_after = self.requeue_after(&record.report.next);
        record.finish(outcome).await
    }

    async fn run_rounds(
        &self,
        profile: &Arc<Profile>,
        policy: &RotationPolicy,
        mode: RunMode,
        record: &mut Record,
    ) -> Result<(), Error> {
        let started = self.clock.now();
        let mut conflicts = 0;
        // The policy with `Trigger::Now` resolved at the first read; `None` before it.
        let mut resolved: Option<RotationPolicy> = None;
        // What the next round plans from; `None`: read the store.
        let mut carried: Option<Observed> = None;
        // What discovery last could not look at, said again only when it changes.
        let mut undiscovered_said = Vec::new();
        // Continue is only returned by the prepare steps; a handful of rounds always ends.
        for _ in 0..64 {
            let (observed, undiscovered) = match carried.take() {
                // What this run wrote is known; what the servers show now is not.
                Some(mut observed) => {
                    let undiscovered = self.probe_into(profile, &mut observed).await;
                    (Arc::new(observed), undiscovered)
                }
                None => {
                    let (observed, undiscovered) = self.observe_probed(profile).await?;
                    (Arc::new(observed), undiscovered)
                }
            };
            let policy = match &resolved {
                Some(policy) => policy,
                None => resolved.insert(policy.resolve(profile, &observed)?),
            };
            if !undiscovered.is_empty() && undiscovered != undiscovered_said {
                record
                    .emit(Event::EndpointsUndiscovered {
                        undiscovered: undiscovered.clone(),
                    })
                    .await;
            }
            undiscovered_said = undiscovered;
            let plan = match self.plan_from(profile, policy, Arc::clone(&observed)).await {
                Ok(plan) => plan,
                // The planner refused what was read (a CA Secret that issued no leaf, an
                // inconsistent state). Reads that are not one LIST can mix another writer's
                // before and after (components listed, then the CA Secret read after that
                // writer promoted its CA): if anything changed since, re-read and re-plan.
                Err(refused @ Error::Plan(_)) => {
                    carried = Some(
                        self.re_read_after_refusal(
                            profile,
                            &observed,
                            refused,
                            &mut conflicts,
                            record,
                        )
                        .await?,
                    );
                    continue;
                }
                Err(e) => return Err(e),
            };
            record
                .emit(Event::Planned {
                    from: plan.from,
                    to: plan.to,
                    summary: plan.summary.clone(),
                })
                .await;
            if let Err(refused) = self.gate(profile, &observed, &plan, record).await {
                // Refused on what was read: the refusal may be a mix's (see above).
                carried = Some(
                    self.re_read_after_refusal(profile, &observed, refused, &mut conflicts, record)
                        .await?,
                );
                continue;
            }
            // The planner is done with it: take it back to apply this round's writes to.
            carried = Some(Arc::unwrap_or_clone(observed));
            match self.apply_steps(&plan, record, &mut carried).await {
                Ok(()) => {}
                Err(e) if stale(&e) => {
                    carried = None;
                    conflicts += 1;
                    // A conflict is always about an object of the profile.
                    let object = e.object().unwrap_or_else(|| ca_secret(profile));
                    if conflicts > self.max_conflicts {
                        return Err(Error::TooManyConflicts {
                            attempts: conflicts,
                            object,
                        });
                    }
                    record
                        .emit(Event::Conflict {
                            object,
                            attempt: conflicts,
                        })
                        .await;
                    continue;
                }
                Err(e) => return Err(e),
            }
            tracing::info!(from = %plan.from, to = %plan.to, "{}", plan.summary);
            record.report.phase = plan.to;
            record.report.summary = plan.summary.clone();
            record.report.next = plan.next.clone();
            let until = match &plan.next {
                Next::Continue => continue,
                Next::Done => break,
                Next::WaitUntil { at, reason } => {
                    if let (WaitReason::Evidence { .. }, Some(observed)) = (reason, &carried) {
                        let lagging = certrotate_core::plan::lagging_endpoints(
                            profile,
                            observed,
                            self.clock.now(),
                        );
                        record
                            .emit(Event::EndpointsLagging {
                                lagging: lagging.iter().map(ToString::to_string).collect(),
                            })
                            .await;
                    }
                    record
                        .emit(Event::Waiting {
                            until: *at,
                            reason: *reason,
                        })
                        .await;
                    *at
                }
                Next::WaitForRollout { workloads } => {
                    record
                        .emit(Event::WaitingForRollout {
                            workloads: workloads.clone(),
                        })
                        .await;
                    // The rollouts' progress is only known by reading them.
                    carried = None;
                    self.clock.now() + self.poll_interval
                }
            };
            let RunMode::UntilDone { timeout } = mode else {
                break;
            };
            if until - started > timeout {
                return Err(Error::Timeout {
                    started,
                    timeout,
                    pending: plan.next.clone(),
                    until,
                });
            }
            self.clock.wait_for(until, &plan.next).await;
        }
        Ok(())
    }

    /// When to come back for `next`, from this engine's clock.
    fn requeue_after(&self, next: &Next) -> Option<Duration> {
        match next {
            Next::Done => None,
            Next::Continue => Some(Duration::ZERO),
            Next::WaitUntil { at, .. } => {
                Some(Duration::try_from(*at - self.clock.now()).unwrap_or_default())
            }
            Next::WaitForRollout { .. } => Some(self.poll_interval),
        }
    }

    /// Runs a store future where the store wants it: inline, or on the blocking pool for a
    /// store whose calls block the thread.
    /// After a refusal (by the planner or the gate) of what was read: the store read
    /// again. If nothing changed since, the refusal stands; if something did (another writer
    /// raced this run, and reads that are not one LIST can mix its before and after), the
    /// new read is what to plan from, as after a conflict, within the same budget.
    async fn re_read_after_refusal(
        &self,
        profile: &Arc<Profile>,
        observed: &Observed,
        refused: Error,
        conflicts: &mut u32,
        record: &mut Record,
    ) -> Result<Observed, Error> {
        let now = self.observe_probed(profile).await?.0;
        if versions(&now) == versions(observed) {
            return Err(refused);
        }
        *conflicts += 1;
        if *conflicts > self.max_conflicts {
            return Err(refused);
        }
        record
            .emit(Event::Conflict {
                object: ca_secret(profile),
                attempt: *conflicts,
            })
            .await;
        Ok(now)
    }

    async fn store_call<T, F>(&self, f: F) -> Result<T, Error>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        // Each store call of the engine is one step: its retries share one budget.
        let f = crate::budget::step(f);
        match self.store.io() {
            IoKind::Async => Ok(f.await),
            IoKind::Blocking => {
                let handle = tokio::runtime::Handle::current();
                // The future only does blocking work (no tokio I/O or timers), so
                // `Handle::block_on` on a blocking-pool thread runs it to completion.
                blocking(move || handle.block_on(f)).await
            }
        }
    }
}

/// The CA Secret of `profile`, as the object a run's conflicts are about.
fn ca_secret(profile: &Profile) -> AnyRef {
    AnyRef::Secret(ProfileObjects::of(profile).ca_secret)
}

/// Whether the persisted phase of `profile` is one whose convergence the servers can show.
fn converging(profile: &Profile, observed: &Observed) -> bool {
    let ca = ProfileObjects::of(profile).ca_secret;
    observed
        .secrets
        .get(&ca)
        .and_then(|s| certrotate_core::plan::RotationState::from_secret(s, &ca).ok())
        .is_some_and(|st| matches!(st.phase, Phase::Trust | Phase::Leaves))
}

/// Runs CPU-heavy or blocking work on tokio's blocking pool. A panic there is re-raised
/// here, as if the work had run inline.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Ok(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::BlockingTask(e.to_string())),
    }
}

/// The version of every object in `observed`: equal for two reads when nothing changed
/// between them.
fn versions(observed: &Observed) -> Vec<(AnyRef, &str)> {
    let secrets = observed
        .secrets
        .iter()
        .map(|(r, s)| (AnyRef::from(r.clone()), s.version.as_str()));
    let webhooks = observed
        .webhooks
        .iter()
        .map(|(r, w)| (AnyRef::from(r.clone()), w.version.as_str()));
    secrets.chain(webhooks).collect()
}

/// Whether a failed write means the plan was made from a stale observation: the object
/// changed (or vanished) since it was read, so re-reading and re-planning may succeed.
fn stale(e: &Error) -> bool {
    e.is_conflict()
        || matches!(
            e,
            Error::WriteSecret {
                source: StoreError::NotFound,
                ..
            } | Error::UpdateWebhook {
                source: StoreError::NotFound,
                ..
            }
        )
}

/// A read of an object the store may not hold at all: `None` if it cannot (local mode has
/// no workloads or webhook configurations), else what the read found.
fn held<T>(read: Result<Option<T>, StoreError>) -> Result<Option<Option<T>>, StoreError> {
    match read {
        Ok(found) => Ok(Some(found)),
        Err(StoreError::NotApplicable(_)) => Ok(None),
        Err(
            source @ (StoreError::Conflict
            | StoreError::AlreadyExists
            | StoreError::NotFound
            | StoreError::GaveUp { .. }
            | StoreError::Backend(_)),
        ) => Err(source),
    }
}

/// Reads every object of `profile` from `store`. Workloads and webhooks a store cannot
/// hold (local mode) are recorded in [`Observed::unavailable`]. The reads are one step:
/// a store's retries of transient failures (the Kubernetes store's) share one budget.
pub async fn observe<S: Store>(store: &S, profile: &Profile) -> Result<Observed, Error> {
    crate::budget::step(observe_all(store, profile)).await
}

async fn observe_all<S: Store>(store: &S, profile: &Profile) -> Result<Observed, Error> {
    let objects = ProfileObjects::of(profile);
    let mut observed = Observed::default();
    let secrets: Vec<ObjectRef> = objects.secrets().cloned().collect();
    let reads = store.read_secrets(&secrets, &profile.labels).await;
    for (secret, read) in secrets.into_iter().zip(reads) {
        let read = read.map_err(|source| Error::ReadSecret {
            secret: secret.clone(),
            source,
        })?;
        if let Some(s) = read {
            observed.secrets.insert(secret, s);
        }
    }
    for workload in &objects.workloads {
        let read =
            held(store.read_workload(workload).await).map_err(|source| Error::ReadWorkload {
                workload: workload.clone(),
                source,
            })?;
        match read {
            Some(Some(w)) => {
                observed.workloads.insert(workload.clone(), w);
            }
            Some(None) => {}
            None => {
                observed.unavailable.insert(workload.clone().into());
            }
        }
    }
    for selector in &objects.selectors {
        // A store without workloads (local mode) finds none: nothing to record.
        let listed = held(store.list_workloads(selector).await.map(Some)).map_err(|source| {
            Error::ListWorkloads {
                selector: selector.clone(),
                source,
            }
        })?;
        for (workload, w) in listed.flatten().into_iter().flatten() {
            observed.selected.insert(workload.clone());
            observed.workloads.entry(workload).or_insert(w);
        }
    }
    for webhook in &objects.webhooks {
        let read =
            held(store.read_webhook(webhook).await).map_err(|source| Error::ReadWebhook {
                webhook: webhook.clone(),
                source,
            })?;
        match read {
            Some(Some(w)) => {
                observed.webhooks.insert(webhook.clone(), w);
            }
            Some(None) => {}
            None => {
                observed.unavailable.insert(webhook.clone().into());
            }
        }
    }
    Ok(observed)
}

// An operator spawns reconciles on a multi-threaded runtime from a shared context: the
// futures of `&self` methods must be Send.
const _: () = {
    fn assert_send<T: Send>(_: &T) {}
    #[allow(dead_code)]
    fn futures_are_send(
        e: &Engine<crate::MemoryStore, crate::ManualClock>,
        p: &Profile,
        o: &RotationPolicy,
    ) {
        assert_send(&e.run(p, o, RunMode::Once));
        assert_send(&e.reconcile(p, o));
        assert_send(&e.plan(p, o));
    }
    #[allow(dead_code)]
    fn shared_engine_is_send_and_sync(r: Engine<crate::DirStore, SystemClock>) {
        fn assert_sync<T: Send + Sync>(_: &T) {}
        assert_sync(&r);
    }
};
