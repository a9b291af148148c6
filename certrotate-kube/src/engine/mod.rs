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
use certrotate_core::{Entropy, PlanOptions, Profile, RotationPlan};

mod apply;
mod report;

use report::event;
pub use report::{Event, RunMode, RunReport};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, StoreError};
use crate::parallel::ParallelKeys;
use crate::store::{IoKind, Store};

/// Drives rotations of one profile on one store.
///
/// Every method takes `&self`: a rotator can be shared (in an `Arc`, or a kube-runtime
/// controller's context) and called from several tasks; its only mutable state, the
/// source of randomness, sits behind a mutex that is never held across an `.await`.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), certrotate_kube::Error> {
/// use certrotate_core::{PlanOptions, Profile};
/// use certrotate_kube::{DirStore, Rotator};
///
/// let store = DirStore::new("./certs");
/// let options = PlanOptions::default().with_overwrite(true);
/// let rotator = Rotator::new(store, Profile::envoy_gateway("envoy-gateway-system"), options);
/// let report = rotator.reconcile().await?;
/// println!("{}: come back in {:?}", report.summary, report.requeue_after);
/// # Ok(()) }
/// ```
pub struct Rotator<S, C = SystemClock> {
    store: Arc<S>,
    profile: Arc<Profile>,
    options: PlanOptions,
    clock: C,
    entropy: SharedEntropy,
    max_conflicts: u32,
    poll_interval: Duration,
    observer: Option<Observer>,
    /// Where the evidence of a converging phase comes from (none: timers only).
    evidence: Option<Arc<dyn crate::evidence::EvidenceSource>>,
}

type SharedEntropy = Arc<Mutex<Box<dyn Entropy + Send>>>;
type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

impl<S: Store> Rotator<S, SystemClock> {
    /// A rotator with the system clock and the operating system's randomness (RSA keys
    /// generated in parallel, one per component plus the CA).
    pub fn new(store: S, profile: Profile, options: PlanOptions) -> Self {
        let batch = profile.components.len() + 1;
        Self {
            store: Arc::new(store),
            profile: Arc::new(profile),
            options,
            clock: SystemClock,
            entropy: Arc::new(Mutex::new(Box::new(ParallelKeys::new(batch)))),
            max_conflicts: 5,
            poll_interval: Duration::from_secs(5),
            observer: None,
            evidence: None,
        }
    }
}

impl<S: Store, C: Clock> Rotator<S, C> {
    /// Uses another clock (tests use [`ManualClock`](crate::ManualClock)).
    pub fn with_clock<C2: Clock>(self, clock: C2) -> Rotator<S, C2> {
        Rotator {
            store: self.store,
            profile: self.profile,
            options: self.options,
            clock,
            entropy: self.entropy,
            max_conflicts: self.max_conflicts,
            poll_interval: self.poll_interval,
            observer: self.observer,
            evidence: self.evidence,
        }
    }

    /// Uses another source of randomness.
    pub fn with_entropy(mut self, entropy: impl Entropy + Send + 'static) -> Self {
        self.entropy = Arc::new(Mutex::new(Box::new(entropy)));
        self
    }

    /// How many conflicting writes to re-plan after before giving up (default 5).
    pub fn with_max_conflicts(mut self, n: u32) -> Self {
        self.max_conflicts = n;
        self
    }

    /// Calls `observer` with each [`Event`] as it happens, besides collecting it in the
    /// [`RunReport`]: a write's event comes after the write succeeded, and a run that
    /// fails has reported every event up to the failure (the report is lost with the
    /// error). The CLI publishes Kubernetes Events this way, phase by phase, while
    /// `--wait` waits. Keep it quick: it runs on the run's task.
    pub fn with_observer(mut self, observer: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Probes these TLS servers of the components while a phase converges, and waits for
    /// their evidence too ([`Observed::evidence`]): in `trust`, until every server that
    /// verifies clients lists the next CA; in `leaves`, until every server presents a leaf
    /// of the new CA. The convergence interval stays the minimum wait (for what no probe
    /// can see: clients' trust, start-only components). A failed probe is evidence of
    /// nothing; [`PlanOptions::convergence_timeout`] bounds the wait.
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

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The options every plan is made with.
    pub fn options(&self) -> &PlanOptions {
        &self.options
    }

    /// Reads every object of the profile.
    pub async fn observe(&self) -> Result<Observed, Error> {
        Ok(self.observe_probed().await?.0)
    }

    /// Reads every object of the profile and gathers the evidence of its phase, with what
    /// could not be looked at.
    async fn observe_probed(
        &self,
    ) -> Result<(Observed, Vec<crate::evidence::Undiscovered>), Error> {
        let store = Arc::clone(&self.store);
        let profile = Arc::clone(&self.profile);
        let mut observed = self
            .store_call(async move { observe(&*store, &profile).await })
            .await??;
        let undiscovered = self.probe_into(&mut observed).await;
        Ok((observed, undiscovered))
    }

    /// Probes the endpoints into `observed` while its phase converges on what they load
    /// (the servers are asked then only); evidence of an earlier phase is dropped. Returns
    /// the Services whose pods gave no evidence (the timers decide for them).
    async fn probe_into(&self, observed: &mut Observed) -> Vec<crate::evidence::Undiscovered> {
        observed.evidence = None;
        let Some(source) = &self.evidence else {
            return Vec::new();
        };
        if !self.converging(observed) {
            return Vec::new();
        }
        let gathered = source.gather(&self.profile, observed).await;
        observed.evidence = Some(gathered.probed);
        gathered.undiscovered
    }

    /// Whether the persisted phase is one whose convergence the servers can show.
    fn converging(&self, observed: &Observed) -> bool {
        let ca = self.ca_secret();
        let AnyRef::Secret(ca) = ca else {
            return false;
        };
        observed
            .secrets
            .get(&ca)
            .and_then(|s| certrotate_core::plan::RotationState::from_secret(s, &ca).ok())
            .is_some_and(|st| matches!(st.phase, Phase::Trust | Phase::Leaves))
    }

    /// Observes and plans the next step without applying it: a dry run. Keys are
    /// generated on tokio's blocking pool.
    pub async fn plan(&self) -> Result<RotationPlan, Error> {
        let observed = self.observe().await?;
        self.plan_from(Arc::new(observed)).await
    }

    /// Plans from an observation, on tokio's blocking pool (key generation is CPU-heavy).
    async fn plan_from(&self, observed: Arc<Observed>) -> Result<RotationPlan, Error> {
        let now = self.clock.now();
        let profile = Arc::clone(&self.profile);
        let options = self.options.clone();
        let entropy = Arc::clone(&self.entropy);
        let plan = blocking(move || {
            // A panic while planning leaves the entropy source as it was: its state is
            // only a random stream, safe to keep using.
            let mut entropy = entropy.lock().unwrap_or_else(PoisonError::into_inner);
            certrotate_core::plan(&profile, &observed, &options, now, entropy.as_mut())
        })
        .await??;
        Ok(plan)
    }

    /// The operator's entry point: advances the rotation as far as it safely may now
    /// (every step allowed, up to the first wait) and says when to come back
    /// ([`RunReport::requeue_after`], measured with this rotator's clock). Call it again
    /// whenever it asks, or whenever something changed; an unchanged state writes nothing.
    pub async fn reconcile(&self) -> Result<RunReport, Error> {
        self.run(RunMode::Once).await
    }

    /// The trust gate ([`certrotate_core::trust::judge`] decides): refuses a step that
    /// breaks trust, reports the pairs a single-step rotation puts at risk. No option skips
    /// it.
    fn gate(
        &self,
        observed: &Observed,
        plan: &RotationPlan,
        report: &mut RunReport,
    ) -> Result<(), Error> {
        match certrotate_core::trust::judge(&self.profile, observed, plan, self.clock.now()) {
            GateDecision::Keeps => Ok(()),
            GateDecision::AtRisk(pairs) => {
                self.emit(report, Event::TrustAtRisk { pairs });
                Ok(())
            }
            GateDecision::Breaks(broken) => Err(Error::TrustWouldBreak {
                step: plan.summary.clone(),
                broken,
            }),
        }
    }

    /// Applies one plan (from [`Self::plan`]) without re-planning: for a server-side dry
    /// run, or an operator that shows the plan before applying it. A conflict is an error
    /// here; [`Self::run`] re-plans instead.
    pub async fn apply(&self, plan: &RotationPlan) -> Result<RunReport, Error> {
        let mut report = RunReport {
            events: Vec::new(),
            phase: plan.to,
            next: plan.next.clone(),
            requeue_after: None,
            summary: plan.summary.clone(),
            writes: 0,
        };
        let observed = self.observe().await?;
        self.gate(&observed, plan, &mut report)?;
        self.apply_steps(plan, &mut report, &mut None).await?;
        report.requeue_after = self.requeue_after(&report.next);
        Ok(report)
    }

    /// Runs the rotation as far as `mode` allows.
    ///
    /// Every object of the profile is read at the start of the run, and again after a
    /// conflict, a workload restart or a wait for rollouts. Between those, each round plans
    /// from what was read with this run's own writes applied (each write returns the new
    /// version). That is safe because every Secret and webhook write carries the version
    /// its plan was made from: a change by anyone else meanwhile (even a deletion) fails
    /// the write, and the engine re-reads and re-plans. A staged rotation to its end thus
    /// reads the profile once instead of once per phase.
    pub async fn run(&self, mode: RunMode) -> Result<RunReport, Error> {
        let started = self.clock.now();
        let mut report = RunReport {
            events: Vec::new(),
            phase: Phase::Stable,
            next: Next::Done,
            requeue_after: None,
            summary: Summary::UpToDate,
            writes: 0,
        };
        let mut conflicts = 0;
        // What the next round plans from; `None`: read the store.
        let mut carried: Option<Observed> = None;
        // What discovery last could not look at, said again only when it changes.
        let mut undiscovered_said = Vec::new();
        // Continue is only returned by the prepare steps; a handful of rounds always ends.
        for _ in 0..64 {
            let (observed, undiscovered) = match carried.take() {
                // What this run wrote is known; what the servers show now is not.
                Some(mut observed) => {
                    let undiscovered = self.probe_into(&mut observed).await;
                    (Arc::new(observed), undiscovered)
                }
                None => {
                    let (observed, undiscovered) = self.observe_probed().await?;
                    (Arc::new(observed), undiscovered)
                }
            };
            if !undiscovered.is_empty() && undiscovered != undiscovered_said {
                self.emit(
                    &mut report,
                    Event::EndpointsUndiscovered {
                        undiscovered: undiscovered.clone(),
                    },
                );
            }
            undiscovered_said = undiscovered;
            let plan = match self.plan_from(Arc::clone(&observed)).await {
                Ok(plan) => plan,
                // The planner refused what was read (a CA Secret that issued no leaf, an
                // inconsistent state). Reads that are not one LIST can mix another writer's
                // before and after (components listed, then the CA Secret read after that
                // writer promoted its CA): if anything changed since, re-read and re-plan.
                Err(refused @ Error::Plan(_)) => {
                    carried = Some(
                        self.re_read_after_refusal(&observed, refused, &mut conflicts, &mut report)
                            .await?,
                    );
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.emit(
                &mut report,
                Event::Planned {
                    from: plan.from,
                    to: plan.to,
                    summary: plan.summary.clone(),
                },
            );
            if let Err(refused) = self.gate(&observed, &plan, &mut report) {
                // Refused on what was read: the refusal may be a mix's (see above).
                carried = Some(
                    self.re_read_after_refusal(&observed, refused, &mut conflicts, &mut report)
                        .await?,
                );
                continue;
            }
            // The planner is done with it: take it back to apply this round's writes to.
            carried = Some(Arc::unwrap_or_clone(observed));
            match self.apply_steps(&plan, &mut report, &mut carried).await {
                Ok(()) => {}
                Err(e) if stale(&e) => {
                    carried = None;
                    conflicts += 1;
                    // A conflict is always about an object of the profile.
                    let object = e.object().unwrap_or_else(|| self.ca_secret());
                    if conflicts > self.max_conflicts {
                        return Err(Error::TooManyConflicts {
                            attempts: conflicts,
                            object,
                        });
                    }
                    self.emit(
                        &mut report,
                        Event::Conflict {
                            object,
                            attempt: conflicts,
                        },
                    );
                    continue;
                }
                Err(e) => return Err(e),
            }
            tracing::info!(from = %plan.from, to = %plan.to, "{}", plan.summary);
            report.phase = plan.to;
            report.summary = plan.summary.clone();
            report.next = plan.next.clone();
            let until = match &plan.next {
                Next::Continue => continue,
                Next::Done => break,
                Next::WaitUntil { at, reason } => {
                    if let (WaitReason::Evidence { .. }, Some(observed)) = (reason, &carried) {
                        let lagging = certrotate_core::plan::lagging_endpoints(
                            &self.profile,
                            observed,
                            self.clock.now(),
                        );
                        self.emit(
                            &mut report,
                            Event::EndpointsLagging {
                                lagging: lagging.iter().map(ToString::to_string).collect(),
                            },
                        );
                    }
                    self.emit(
                        &mut report,
                        Event::Waiting {
                            until: *at,
                            reason: *reason,
                        },
                    );
                    *at
                }
                Next::WaitForRollout { workloads } => {
                    self.emit(
                        &mut report,
                        Event::WaitingForRollout {
                            workloads: workloads.clone(),
                        },
                    );
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
        report.requeue_after = self.requeue_after(&report.next);
        Ok(report)
    }

    /// Records `e` in `report` (logging it) and passes it to the observer.
    fn emit(&self, report: &mut RunReport, e: Event) {
        if let Some(observer) = &self.observer {
            observer(&e);
        }
        event(report, e);
    }

    /// When to come back for `next`, from this rotator's clock.
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

    fn ca_secret(&self) -> AnyRef {
        AnyRef::Secret(ProfileObjects::of(&self.profile).ca_secret)
    }

    /// Runs a store future where the store wants it: inline, or on the blocking pool for a
    /// store whose calls block the thread.
    /// After a refusal (by the planner or the gate) of what was read: the store read
    /// again. If nothing changed since, the refusal stands; if something did (another writer
    /// raced this run, and reads that are not one LIST can mix its before and after), the
    /// new read is what to plan from, as after a conflict, within the same budget.
    async fn re_read_after_refusal(
        &self,
        observed: &Observed,
        refused: Error,
        conflicts: &mut u32,
        report: &mut RunReport,
    ) -> Result<Observed, Error> {
        let now = self.observe().await?;
        if versions(&now) == versions(observed) {
            return Err(refused);
        }
        *conflicts += 1;
        if *conflicts > self.max_conflicts {
            return Err(refused);
        }
        self.emit(
            report,
            Event::Conflict {
                object: self.ca_secret(),
                attempt: *conflicts,
            },
        );
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
    fn futures_are_send(r: &Rotator<crate::MemoryStore, crate::ManualClock>) {
        assert_send(&r.run(RunMode::Once));
        assert_send(&r.reconcile());
        assert_send(&r.plan());
    }
    #[allow(dead_code)]
    fn shared_rotator_is_send_and_sync(r: Rotator<crate::DirStore, SystemClock>) {
        fn assert_sync<T: Send + Sync>(_: &T) {}
        assert_sync(&r);
    }
};
