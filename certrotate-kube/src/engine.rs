//! The rotation engine: observe → plan → apply in order → wait → repeat.

use std::collections::BTreeMap;
use std::time::Duration;

use certrotate_core::plan::{
    ANNOTATION_RESTARTED_AT, ANNOTATION_RESTARTED_FOR, Next, ObjectRef, Observed, ObservedSecret,
    Phase, ProfileObjects, SecretAction, SecretChange, Step,
};
use certrotate_core::{Entropy, PlanOptions, Profile, RotationPlan};
use serde::Serialize;
use time::OffsetDateTime;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, StoreError};
use crate::parallel::ParallelKeys;
use crate::store::{NewSecret, SecretUpdate, Store};

/// How far one run goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunMode {
    /// Apply every step allowed now and stop at the first wait: one phase per run, for a
    /// Job or CronJob that comes back later.
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
#[non_exhaustive]
pub enum Event {
    /// A plan was made.
    Planned {
        /// Phase before.
        from: Phase,
        /// Phase after.
        to: Phase,
        /// What it does.
        summary: String,
    },
    /// A Secret was created.
    SecretCreated {
        /// `namespace/name`.
        secret: String,
        /// Why.
        reason: String,
    },
    /// A Secret was updated.
    SecretUpdated {
        /// `namespace/name`.
        secret: String,
        /// The data keys written or removed.
        keys: Vec<String>,
        /// Why.
        reason: String,
    },
    /// A Secret was already in its target state.
    SecretUnchanged {
        /// `namespace/name`.
        secret: String,
    },
    /// A webhook configuration's `caBundle`s were updated.
    WebhookUpdated {
        /// `kind name`.
        webhook: String,
    },
    /// A workload was restarted.
    WorkloadRestarted {
        /// `kind namespace/name`.
        workload: String,
        /// Why.
        reason: String,
    },
    /// A note (absent workload, restart not applicable, ...).
    Note {
        /// The object.
        object: String,
        /// What about it.
        message: String,
    },
    /// A write conflicted; the engine re-read and re-planned.
    Conflict {
        /// The object.
        object: String,
        /// Which attempt.
        attempt: u32,
    },
    /// Waiting for the convergence interval.
    Waiting {
        /// Until when.
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
        /// Why.
        reason: String,
    },
    /// Waiting for rollouts.
    WaitingForRollout {
        /// Which workloads.
        workloads: Vec<String>,
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
    /// The last plan's summary.
    pub summary: String,
    /// How many writes (creates, updates, restarts) were made.
    pub writes: usize,
}

/// Drives rotations of one profile on one store.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), certrotate_kube::Error> {
/// use certrotate_core::{PlanOptions, Profile};
/// use certrotate_kube::{DirStore, Rotator, RunMode};
///
/// let store = DirStore::new("./certs");
/// let mut options = PlanOptions::default();
/// options.overwrite = true;
/// let mut rotator = Rotator::new(store, Profile::envoy_gateway("envoy-gateway-system"), options);
/// let report = rotator.run(RunMode::Once).await?;
/// println!("{}: next {:?}", report.summary, report.next);
/// # Ok(()) }
/// ```
pub struct Rotator<S, C = SystemClock> {
    store: S,
    profile: Profile,
    options: PlanOptions,
    clock: C,
    entropy: Box<dyn Entropy + Send + Sync>,
    max_conflicts: u32,
    poll_interval: Duration,
}

impl<S: Store> Rotator<S, SystemClock> {
    /// A rotator with the system clock and the operating system's randomness (RSA keys
    /// generated in parallel, one per component plus the CA).
    pub fn new(store: S, profile: Profile, options: PlanOptions) -> Self {
        let batch = profile.components.len() + 1;
        Self {
            store,
            profile,
            options,
            clock: SystemClock,
            entropy: Box::new(ParallelKeys::new(batch)),
            max_conflicts: 5,
            poll_interval: Duration::from_secs(5),
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
        }
    }

    /// Uses another source of randomness.
    pub fn with_entropy(mut self, entropy: impl Entropy + Send + Sync + 'static) -> Self {
        self.entropy = Box::new(entropy);
        self
    }

    /// How many conflicting writes to re-plan after before giving up (default 5).
    pub fn with_max_conflicts(mut self, n: u32) -> Self {
        self.max_conflicts = n;
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

    /// Reads every object of the profile.
    pub async fn observe(&self) -> Result<Observed, Error> {
        observe(&self.store, &self.profile).await
    }

    /// Observes and plans the next step without applying it: a dry run.
    pub async fn plan(&mut self) -> Result<RotationPlan, Error> {
        let observed = self.observe().await?;
        self.plan_from(&observed)
    }

    fn plan_from(&mut self, observed: &Observed) -> Result<RotationPlan, Error> {
        let now = self.clock.now();
        Ok(certrotate_core::plan(
            &self.profile,
            observed,
            &self.options,
            now,
            self.entropy.as_mut(),
        )?)
    }

    /// Applies one plan (from [`Self::plan`]) without re-planning: for a server-side dry
    /// run, or an operator that shows the plan before applying it. A conflict is an error
    /// here; [`Self::run`] re-plans instead.
    pub async fn apply(&mut self, plan: &RotationPlan) -> Result<RunReport, Error> {
        let mut report = RunReport {
            events: Vec::new(),
            phase: plan.to,
            next: plan.next.clone(),
            summary: plan.summary.clone(),
            writes: 0,
        };
        self.apply_steps(plan, &mut report, &mut None).await?;
        Ok(report)
    }

    /// Runs the rotation as far as `mode` allows.
    ///
    /// Every object of the profile is read at the start of the run, and again after a
    /// conflict, a workload restart or a wait for rollouts. Between those, each round plans
    /// from what was read with this run's own writes applied (each write returns the new
    /// version). That is safe because every Secret and webhook write carries the version
    /// its plan was made from: a change by anyone else meanwhile (even a deletion) fails
    /// the write, and the engine re-reads and re-plans. A staged rotation to its end reads
    /// the profile once instead of once per phase.
    pub async fn run(&mut self, mode: RunMode) -> Result<RunReport, Error> {
        let started = self.clock.now();
        let mut report = RunReport {
            events: Vec::new(),
            phase: Phase::Stable,
            next: Next::Done,
            summary: String::new(),
            writes: 0,
        };
        let mut conflicts = 0;
        // What the next round plans from; `None`: read the store.
        let mut carried: Option<Observed> = None;
        // Continue is only returned by the prepare steps; a handful of rounds always ends.
        for _ in 0..64 {
            let observed = match carried.take() {
                Some(observed) => observed,
                None => self.observe().await?,
            };
            let plan = self.plan_from(&observed)?;
            carried = Some(observed);
            event(
                &mut report,
                Event::Planned {
                    from: plan.from,
                    to: plan.to,
                    summary: plan.summary.clone(),
                },
            );
            match self.apply_steps(&plan, &mut report, &mut carried).await {
                Ok(()) => {}
                Err(e) if stale(&e) && conflicts < self.max_conflicts => {
                    carried = None;
                    conflicts += 1;
                    event(
                        &mut report,
                        Event::Conflict {
                            object: e.object(),
                            attempt: conflicts,
                        },
                    );
                    continue;
                }
                Err(e) if stale(&e) => {
                    return Err(Error::TooManyConflicts {
                        attempts: conflicts + 1,
                        object: e.object(),
                    });
                }
                Err(e) => return Err(e),
            }
            report.phase = plan.to;
            report.summary = plan.summary.clone();
            report.next = plan.next.clone();
            match (&plan.next, mode) {
                (Next::Continue, _) => continue,
                (Next::Done, _) => return Ok(report),
                (Next::WaitUntil { at, reason }, _) => {
                    event(
                        &mut report,
                        Event::Waiting {
                            until: *at,
                            reason: reason.clone(),
                        },
                    );
                    let RunMode::UntilDone { timeout } = mode else {
                        return Ok(report);
                    };
                    self.check_deadline(started, timeout, *at, reason)?;
                    self.clock.sleep_until(*at).await;
                }
                (Next::WaitForRollout { workloads }, _) => {
                    event(
                        &mut report,
                        Event::WaitingForRollout {
                            workloads: workloads.clone(),
                        },
                    );
                    let RunMode::UntilDone { timeout } = mode else {
                        return Ok(report);
                    };
                    let at = self.clock.now() + self.poll_interval;
                    self.check_deadline(started, timeout, at, &workloads.join(", "))?;
                    self.clock.sleep_until(at).await;
                    // The rollouts' progress is only known by reading them.
                    carried = None;
                }
                _ => return Ok(report),
            }
        }
        Ok(report)
    }

    fn check_deadline(
        &self,
        started: OffsetDateTime,
        timeout: Duration,
        until: OffsetDateTime,
        waiting_for: &str,
    ) -> Result<(), Error> {
        if until - started > timeout {
            return Err(Error::Timeout {
                waited: certrotate_core::rfc3339(started)
                    + " to "
                    + &certrotate_core::rfc3339(self.clock.now()),
                waiting_for: format!(
                    "{waiting_for} (next step at {})",
                    certrotate_core::rfc3339(until)
                ),
            });
        }
        Ok(())
    }

    /// Applies the steps of a plan, in order. Stops at the first failure: the persisted
    /// phase is written last, so a rerun repeats the step. Each write is applied to
    /// `carried` too (the observation the plan was made from), or clears it where the
    /// result cannot be known without reading (a restart starts a rollout).
    async fn apply_steps(
        &mut self,
        plan: &RotationPlan,
        report: &mut RunReport,
        carried: &mut Option<Observed>,
    ) -> Result<(), Error> {
        for step in &plan.steps {
            match step {
                Step::Secret(change) => self.apply_secret(change, report, carried).await?,
                Step::Webhook(change) => {
                    let version = self
                        .store
                        .update_webhook(
                            &change.webhook,
                            &change.expected_version,
                            &change.ca_bundles,
                        )
                        .await
                        .map_err(|source| Error::UpdateWebhook {
                            webhook: change.webhook.to_string(),
                            source,
                        })?;
                    if let Some(w) = carried
                        .as_mut()
                        .and_then(|o| o.webhooks.get_mut(&change.webhook))
                    {
                        w.ca_bundles = change.ca_bundles.clone();
                        w.version = version;
                    } else {
                        *carried = None;
                    }
                    report.writes += 1;
                    event(
                        report,
                        Event::WebhookUpdated {
                            webhook: change.webhook.to_string(),
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
                    match self
                        .store
                        .restart_workload(&restart.workload, &annotations)
                        .await
                    {
                        Ok(()) => {
                            report.writes += 1;
                            event(
                                report,
                                Event::WorkloadRestarted {
                                    workload: restart.workload.to_string(),
                                    reason: restart.reason.clone(),
                                },
                            );
                        }
                        Err(StoreError::NotFound) => event(
                            report,
                            Event::Note {
                                object: restart.workload.to_string(),
                                message: "absent: nothing to restart".into(),
                            },
                        ),
                        Err(source) => {
                            return Err(Error::RestartWorkload {
                                workload: restart.workload.to_string(),
                                source,
                            });
                        }
                    }
                }
                Step::Note { object, message } => {
                    let message = if !self.store.has_cluster_objects()
                        && message.starts_with("absent")
                    {
                        format!(
                            "not applicable to {}: no cluster objects in local mode (restart or update it yourself if it exists)",
                            self.store.describe()
                        )
                    } else {
                        message.clone()
                    };
                    event(
                        report,
                        Event::Note {
                            object: object.clone(),
                            message,
                        },
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn apply_secret(
        &self,
        change: &SecretChange,
        report: &mut RunReport,
        carried: &mut Option<Observed>,
    ) -> Result<(), Error> {
        let secret = change.secret.to_string();
        let write_error = |source| Error::WriteSecret {
            secret: secret.clone(),
            source,
        };
        match &change.action {
            SecretAction::Unchanged => {
                event(
                    report,
                    Event::SecretUnchanged {
                        secret: secret.clone(),
                    },
                );
            }
            SecretAction::Create => {
                let new = NewSecret {
                    secret_type: change.secret_type.clone(),
                    data: change
                        .data
                        .iter()
                        .filter_map(|(k, v)| {
                            Some((k.clone(), v.as_ref()?.expose_secret().to_vec()))
                        })
                        .collect(),
                    labels: change.labels.clone(),
                    annotations: change
                        .annotations
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                        .collect(),
                };
                let version = self
                    .store
                    .create_secret(&change.secret, &new)
                    .await
                    .map_err(write_error)?;
                if let Some(observed) = carried.as_mut() {
                    let mut created = ObservedSecret::new(new.secret_type, new.data, version);
                    created.labels = new.labels;
                    created.annotations = new.annotations;
                    observed.secrets.insert(change.secret.clone(), created);
                }
                report.writes += 1;
                event(
                    report,
                    Event::SecretCreated {
                        secret: secret.clone(),
                        reason: change.reason.clone(),
                    },
                );
            }
            SecretAction::Update { expected_version } => {
                let update = SecretUpdate {
                    data: change
                        .data
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_ref().map(|v| v.expose_secret().to_vec())))
                        .collect(),
                    labels: change.labels.clone(),
                    annotations: change.annotations.clone(),
                };
                let version = self
                    .store
                    .update_secret(&change.secret, expected_version, &update)
                    .await
                    .map_err(write_error)?;
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
                event(
                    report,
                    Event::SecretUpdated {
                        secret: secret.clone(),
                        keys: change.data.keys().cloned().collect(),
                        reason: change.reason.clone(),
                    },
                );
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether a failed write means the plan was made from a stale observation: the object
/// changed (or vanished) since it was read. Re-reading and re-planning may succeed.
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

/// Reads every object of `profile` from `store`. Workloads and webhooks a store does not
/// have (local mode) count as absent.
pub async fn observe<S: Store>(store: &S, profile: &Profile) -> Result<Observed, Error> {
    let objects = ProfileObjects::of(profile);
    let mut observed = Observed::default();
    let secrets: Vec<ObjectRef> = objects.secrets().cloned().collect();
    let reads = store.read_secrets(&secrets, &profile.labels).await;
    for (secret, read) in secrets.into_iter().zip(reads) {
        let read = read.map_err(|source| Error::ReadSecret {
            secret: secret.to_string(),
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
            Ok(None) | Err(StoreError::NotApplicable(_)) => {}
            Err(source) => {
                return Err(Error::ReadWorkload {
                    workload: workload.to_string(),
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
            Ok(None) | Err(StoreError::NotApplicable(_)) => {}
            Err(source) => {
                return Err(Error::ReadWebhook {
                    webhook: webhook.to_string(),
                    source,
                });
            }
        }
    }
    Ok(observed)
}

fn event(report: &mut RunReport, e: Event) {
    match &e {
        Event::Planned { from, to, summary } => {
            tracing::info!(%from, %to, "{summary}");
        }
        Event::SecretCreated { secret, reason } => {
            tracing::info!(%secret, %reason, "secret created")
        }
        Event::SecretUpdated {
            secret,
            keys,
            reason,
        } => {
            tracing::info!(%secret, keys = %keys.join(","), %reason, "secret updated");
        }
        Event::SecretUnchanged { secret } => tracing::debug!(%secret, "secret unchanged"),
        Event::WebhookUpdated { webhook } => tracing::info!(%webhook, "caBundle updated"),
        Event::WorkloadRestarted { workload, reason } => {
            tracing::info!(%workload, %reason, "workload restarted");
        }
        Event::Note { object, message } => tracing::info!(%object, "{message}"),
        Event::Conflict { object, attempt } => {
            tracing::warn!(%object, attempt, "conflict: re-reading and re-planning");
        }
        Event::Waiting { until, reason } => {
            tracing::info!(until = %certrotate_core::rfc3339(*until), "waiting: {reason}");
        }
        Event::WaitingForRollout { workloads } => {
            tracing::info!(workloads = %workloads.join(", "), "waiting for rollouts");
        }
    }
    report.events.push(e);
}

// An operator spawns reconciles on a multi-threaded runtime: the run future must be Send.
const _: () = {
    fn assert_send<T: Send>(_: &T) {}
    #[allow(dead_code)]
    fn run_is_send(r: &mut Rotator<crate::MemoryStore, crate::ManualClock>) {
        assert_send(&r.run(RunMode::Once));
    }
};
