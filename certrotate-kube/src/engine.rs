//! The rotation engine: observe → plan → apply in order → wait → repeat.
//!
//! The engine makes no policy decision: what to write, in which order, and when the next
//! step may run all come from the core's [`RotationPlan`]. The engine reads, applies,
//! re-plans after a conflict, and waits. Planning (which generates keys) and the calls of a
//! store that blocks ([`IoKind::Blocking`]) run on tokio's blocking pool, so the async
//! executor stays responsive.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use certrotate_core::plan::{
    ANNOTATION_RESTARTED_AT, ANNOTATION_RESTARTED_FOR, AnyRef, Next, Note, NoteReason, ObjectRef,
    Observed, ObservedSecret, Phase, ProfileObjects, SecretAction, SecretChange, Step, StepReason,
    Summary, WaitReason, WebhookRef, WorkloadRef,
};
use certrotate_core::{Entropy, PlanOptions, Profile, RotationPlan};
use serde::Serialize;
use time::OffsetDateTime;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, StoreError};
use crate::parallel::ParallelKeys;
use crate::store::{IoKind, NewSecret, SecretUpdate, SecretWrite, Store};

/// How far one run goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// Apply every step allowed now and stop at the first wait: one phase per run, for a
    /// Job, a CronJob or a reconcile loop that comes back later.
    Once,
    /// Sleep through the convergence intervals and rollouts until the rotation ends, or
    /// fail after `timeout`.
    UntilDone {
        /// The most time to spend.
        timeout: Duration,
    },
}

/// Something the engine did, for rendering (also emitted through `tracing`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A plan was made.
    Planned {
        /// Phase before.
        from: Phase,
        /// Phase after.
        to: Phase,
        /// What it does.
        summary: Summary,
    },
    /// A Secret was created.
    SecretCreated {
        /// The Secret.
        secret: ObjectRef,
        /// Why.
        reason: StepReason,
    },
    /// A Secret was updated.
    SecretUpdated {
        /// The Secret.
        secret: ObjectRef,
        /// The data keys written or removed.
        keys: Vec<String>,
        /// Why.
        reason: StepReason,
    },
    /// A Secret was already in its target state.
    SecretUnchanged {
        /// The Secret.
        secret: ObjectRef,
    },
    /// A webhook configuration's `caBundle`s were updated.
    WebhookUpdated {
        /// The webhook configuration.
        webhook: WebhookRef,
        /// Why.
        reason: StepReason,
    },
    /// A workload was restarted.
    WorkloadRestarted {
        /// The workload.
        workload: WorkloadRef,
        /// Why.
        reason: StepReason,
    },
    /// Nothing written, something to say (an absent workload, a restart already done).
    Note(Note),
    /// A write conflicted; the engine re-read and re-planned.
    Conflict {
        /// The object.
        object: AnyRef,
        /// Which attempt.
        attempt: u32,
    },
    /// Waiting until a time.
    Waiting {
        /// Until when.
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
        /// Why.
        reason: WaitReason,
    },
    /// Waiting for rollouts.
    WaitingForRollout {
        /// Which workloads.
        workloads: Vec<WorkloadRef>,
    },
    /// A single-step rotation is about to write; these pairs of leaf and trust store fail
    /// in some order of reloads (the staged strategy refuses such a step).
    TrustAtRisk {
        /// The pairs, with the side of the step and the reason.
        pairs: Vec<certrotate_core::trust::PairCheck>,
    },
}

/// What a run did and where the rotation stands.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RunReport {
    /// Everything that happened, in order.
    pub events: Vec<Event>,
    /// The phase at the end.
    pub phase: Phase,
    /// What comes next.
    pub next: Next,
    /// When to run again, measured with the rotator's clock at the end of the run: the
    /// wait of [`Next::WaitUntil`], the poll interval while rollouts are in progress, zero
    /// for [`Next::Continue`], `None` once there is nothing more to do (an operator then
    /// waits for a change, or its own resync period).
    #[serde(with = "duration_opt")]
    pub requeue_after: Option<Duration>,
    /// The last plan's summary.
    pub summary: Summary,
    /// How many writes (creates, updates, restarts) were made.
    pub writes: usize,
}

mod duration_opt {
    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(
        d: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

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
        let store = Arc::clone(&self.store);
        let profile = Arc::clone(&self.profile);
        self.store_call(async move { observe(&*store, &profile).await })
            .await?
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

    /// The trust gate (see [`crate::gate`]): refuses a step that breaks trust, reports the
    /// pairs a single-step rotation puts at risk. No option skips it.
    fn gate(
        &self,
        observed: &Observed,
        plan: &RotationPlan,
        report: &mut RunReport,
    ) -> Result<(), Error> {
        match crate::gate::check(&self.profile, observed, plan, self.clock.now()) {
            crate::gate::Verdict::Keeps => Ok(()),
            crate::gate::Verdict::AtRisk(pairs) => {
                self.emit(report, Event::TrustAtRisk { pairs });
                Ok(())
            }
            crate::gate::Verdict::Breaks(broken) => Err(Error::TrustWouldBreak {
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
        // Continue is only returned by the prepare steps; a handful of rounds always ends.
        for _ in 0..64 {
            let observed = match carried.take() {
                Some(observed) => Arc::new(observed),
                None => Arc::new(self.observe().await?),
            };
            let plan = self.plan_from(Arc::clone(&observed)).await?;
            self.emit(
                &mut report,
                Event::Planned {
                    from: plan.from,
                    to: plan.to,
                    summary: plan.summary.clone(),
                },
            );
            if let Err(refused) = self.gate(&observed, &plan, &mut report) {
                // Refused on what was read. If anything changed since (another writer raced
                // this run, and reads that are not one LIST can mix before and after), the
                // refusal may be the mix's: re-read and re-plan, as after a conflict.
                let now = self.observe().await?;
                if versions(&now) == versions(&observed) {
                    return Err(refused);
                }
                conflicts += 1;
                if conflicts > self.max_conflicts {
                    return Err(refused);
                }
                self.emit(
                    &mut report,
                    Event::Conflict {
                        object: self.ca_secret(),
                        attempt: conflicts,
                    },
                );
                carried = Some(now);
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
    async fn store_call<T, F>(&self, f: F) -> Result<T, Error>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
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

    /// Applies the steps of a plan, in order. Stops at the first failure: the persisted
    /// phase is written last, so a rerun repeats the step. Each write is applied to
    /// `carried` too (the observation the plan was made from), or clears it where the
    /// result cannot be known without reading (a restart starts a rollout). Consecutive
    /// Secret steps go to the store as one batch ([`SecretStore::write_secrets`], which
    /// keeps their order across a crash).
    ///
    /// [`SecretStore::write_secrets`]: crate::SecretStore::write_secrets
    async fn apply_steps(
        &self,
        plan: &RotationPlan,
        report: &mut RunReport,
        carried: &mut Option<Observed>,
    ) -> Result<(), Error> {
        let mut steps = plan.steps.iter().peekable();
        while let Some(step) = steps.next() {
            match step {
                Step::Secret(change) => {
                    let mut changes = vec![change];
                    while let Some(Step::Secret(next)) = steps.peek() {
                        changes.push(next);
                        steps.next();
                    }
                    self.apply_secrets(&changes, report, carried).await?;
                }
                Step::Webhook(change) => {
                    let store = Arc::clone(&self.store);
                    let (webhook, version, bundles) = (
                        change.webhook.clone(),
                        change.expected_version.clone(),
                        change.ca_bundles.clone(),
                    );
                    let version = self
                        .store_call(async move {
                            store.update_webhook(&webhook, &version, &bundles).await
                        })
                        .await?
                        .map_err(|source| Error::UpdateWebhook {
                            webhook: change.webhook.clone(),
                            source,
                        })?;
                    match carried
                        .as_mut()
                        .and_then(|o| o.webhooks.get_mut(&change.webhook))
                    {
                        Some(observed) => {
                            observed.ca_bundles = change.ca_bundles.clone();
                            observed.version = version;
                        }
                        None => *carried = None,
                    }
                    report.writes += 1;
                    self.emit(
                        report,
                        Event::WebhookUpdated {
                            webhook: change.webhook.clone(),
                            reason: change.reason,
                        },
                    );
                }
                Step::Restart(restart) => {
                    let annotations = BTreeMap::from([
                        (
                            ANNOTATION_RESTARTED_AT.to_owned(),
                            restart.restarted_at.clone(),
                        ),
                        (ANNOTATION_RESTARTED_FOR.to_owned(), restart.token.clone()),
                    ]);
                    // Its rollout status changes: the next round reads it.
                    *carried = None;
                    let store = Arc::clone(&self.store);
                    let workload = restart.workload.clone();
                    let result = self
                        .store_call(
                            async move { store.restart_workload(&workload, &annotations).await },
                        )
                        .await?;
                    match result {
                        Ok(()) => {
                            report.writes += 1;
                            self.emit(
                                report,
                                Event::WorkloadRestarted {
                                    workload: restart.workload.clone(),
                                    reason: restart.reason,
                                },
                            );
                        }
                        // Deleted since it was observed: nothing to restart any more.
                        Err(StoreError::NotFound) => self.emit(
                            report,
                            Event::Note(Note::new(restart.workload.clone(), NoteReason::Absent)),
                        ),
                        Err(StoreError::NotApplicable(_)) => self.emit(
                            report,
                            Event::Note(Note::new(
                                restart.workload.clone(),
                                NoteReason::NotHeldByStore,
                            )),
                        ),
                        Err(
                            source @ (StoreError::Conflict
                            | StoreError::AlreadyExists
                            | StoreError::GaveUp { .. }
                            | StoreError::Backend(_)),
                        ) => {
                            return Err(Error::RestartWorkload {
                                workload: restart.workload.clone(),
                                source,
                            });
                        }
                    }
                }
                Step::Note(note) => self.emit(report, Event::Note(note.clone())),
            }
        }
        Ok(())
    }

    /// Applies consecutive Secret steps: their writes in one batch, then, in step order,
    /// their events and their effect on `carried`, up to the first failed write.
    async fn apply_secrets(
        &self,
        changes: &[&SecretChange],
        report: &mut RunReport,
        carried: &mut Option<Observed>,
    ) -> Result<(), Error> {
        let writes: Vec<SecretWrite> = changes
            .iter()
            .filter_map(|change| secret_write(change))
            .collect();
        let (writes, results) = if writes.is_empty() {
            (writes, Vec::new())
        } else {
            let store = Arc::clone(&self.store);
            self.store_call(async move {
                let results = store.write_secrets(&writes).await;
                (writes, results)
            })
            .await?
        };
        let mut written = writes.into_iter().zip(results);
        for change in changes {
            let write_error = |source| Error::WriteSecret {
                secret: change.secret.clone(),
                source,
            };
            if change.action == SecretAction::Unchanged {
                self.emit(
                    report,
                    Event::SecretUnchanged {
                        secret: change.secret.clone(),
                    },
                );
                continue;
            }
            // The store answers every write up to the first failure.
            let (write, result) = written.next().ok_or_else(|| {
                write_error(StoreError::Backend(
                    "the store did not answer this write".into(),
                ))
            })?;
            let version = result.map_err(write_error)?;
            match write {
                SecretWrite::Create { new, .. } => {
                    if let Some(observed) = carried.as_mut() {
                        let mut created = ObservedSecret::new(new.secret_type, new.data, version);
                        created.labels = new.labels;
                        created.annotations = new.annotations;
                        observed.secrets.insert(change.secret.clone(), created);
                    }
                    report.writes += 1;
                    self.emit(
                        report,
                        Event::SecretCreated {
                            secret: change.secret.clone(),
                            reason: change.reason,
                        },
                    );
                }
                SecretWrite::Update { update, .. } => {
                    match carried
                        .as_mut()
                        .and_then(|o| o.secrets.get_mut(&change.secret))
                    {
                        Some(observed) => {
                            update.apply_to(observed);
                            observed.version = version;
                        }
                        None => *carried = None,
                    }
                    report.writes += 1;
                    self.emit(
                        report,
                        Event::SecretUpdated {
                            secret: change.secret.clone(),
                            keys: change.data.keys().cloned().collect(),
                            reason: change.reason,
                        },
                    );
                }
            }
        }
        Ok(())
    }
}

/// The store write of a Secret step; `None` if the Secret is already as the step wants it.
fn secret_write(change: &SecretChange) -> Option<SecretWrite> {
    let secret = change.secret.clone();
    match &change.action {
        SecretAction::Unchanged => None,
        SecretAction::Create => Some(SecretWrite::Create {
            secret,
            new: NewSecret {
                secret_type: change.secret_type.clone(),
                data: change
                    .data
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_ref()?.expose_secret().to_vec())))
                    .collect(),
                labels: change.labels.clone(),
                annotations: change
                    .annotations
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                    .collect(),
            },
        }),
        SecretAction::Update { expected_version } => Some(SecretWrite::Update {
            secret,
            expected_version: expected_version.clone(),
            update: SecretUpdate {
                data: change
                    .data
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_ref().map(|v| v.expose_secret().to_vec())))
                    .collect(),
                labels: change.labels.clone(),
                annotations: change.annotations.clone(),
            },
        }),
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

/// Reads every object of `profile` from `store`. Workloads and webhooks a store cannot
/// hold (local mode) are recorded in [`Observed::unavailable`].
pub async fn observe<S: Store>(store: &S, profile: &Profile) -> Result<Observed, Error> {
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
        match store.read_workload(workload).await {
            Ok(Some(w)) => {
                observed.workloads.insert(workload.clone(), w);
            }
            Ok(None) => {}
            Err(StoreError::NotApplicable(_)) => {
                observed.unavailable.insert(workload.clone().into());
            }
            Err(
                source @ (StoreError::Conflict
                | StoreError::AlreadyExists
                | StoreError::NotFound
                | StoreError::GaveUp { .. }
                | StoreError::Backend(_)),
            ) => {
                return Err(Error::ReadWorkload {
                    workload: workload.clone(),
                    source,
                });
            }
        }
    }
    for webhook in &objects.webhooks {
        match store.read_webhook(webhook).await {
            Ok(Some(w)) => {
                observed.webhooks.insert(webhook.clone(), w);
            }
            Ok(None) => {}
            Err(StoreError::NotApplicable(_)) => {
                observed.unavailable.insert(webhook.clone().into());
            }
            Err(
                source @ (StoreError::Conflict
                | StoreError::AlreadyExists
                | StoreError::NotFound
                | StoreError::GaveUp { .. }
                | StoreError::Backend(_)),
            ) => {
                return Err(Error::ReadWebhook {
                    webhook: webhook.clone(),
                    source,
                });
            }
        }
    }
    Ok(observed)
}

fn event(report: &mut RunReport, e: Event) {
    match &e {
        // Said at info level once its writes are made (see `run`): a log line never
        // reports a write that then fails.
        Event::Planned { from, to, summary } => {
            tracing::debug!(%from, %to, "planned: {summary}");
        }
        Event::SecretCreated { secret, reason } => {
            tracing::info!(%secret, %reason, "secret created");
        }
        Event::SecretUpdated {
            secret,
            keys,
            reason,
        } => {
            tracing::info!(%secret, keys = %keys.join(","), %reason, "secret updated");
        }
        Event::SecretUnchanged { secret } => tracing::debug!(%secret, "secret unchanged"),
        Event::WebhookUpdated { webhook, reason } => {
            tracing::info!(%webhook, %reason, "caBundle updated");
        }
        Event::WorkloadRestarted { workload, reason } => {
            tracing::info!(%workload, %reason, "workload restarted");
        }
        Event::Note(note) => tracing::info!(object = %note.object, "{}", note.reason),
        Event::Conflict { object, attempt } => {
            tracing::warn!(%object, attempt, "conflict: re-reading and re-planning");
        }
        Event::Waiting { until, reason } => {
            tracing::info!(until = %certrotate_core::rfc3339(*until), "waiting: {reason}");
        }
        Event::WaitingForRollout { workloads } => {
            let names: Vec<String> = workloads.iter().map(ToString::to_string).collect();
            tracing::info!(workloads = %names.join(", "), "waiting for rollouts");
        }
        Event::TrustAtRisk { pairs } => {
            for pair in pairs {
                tracing::warn!("single-step puts trust at risk: {pair}");
            }
        }
    }
    report.events.push(e);
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
