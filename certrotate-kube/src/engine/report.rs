//! What a run reports: how far it goes ([`RunMode`]), what it did ([`Event`]) and where
//! the rotation stands ([`RunReport`]); each event is also logged through `tracing`.

use certrotate_core::plan::{
    AnyRef, Next, Note, ObjectRef, Phase, StepReason, Summary, WaitReason, WebhookRef, WorkloadRef,
};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

/// How far one run goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Closed on purpose: a run is one step or runs to the end; a third mode would change what every caller waits for.
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
    /// Probed servers that do not show yet what the phase wrote (the run waits for them),
    /// each with what it still shows.
    EndpointsLagging {
        /// Each lagging endpoint and what it shows.
        lagging: Vec<String>,
    },
    /// Services of the profile whose pods give no evidence (not listed, none ready, none
    /// reachable): the phase falls back to its timers for them. Said when it changes.
    EndpointsUndiscovered {
        /// Each Service and why.
        undiscovered: Vec<crate::evidence::Undiscovered>,
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
    /// When to run again, measured with the engine's clock at the end of the run: the
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

pub(super) fn event(report: &mut RunReport, e: Event) {
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
        Event::EndpointsLagging { lagging } => {
            for l in lagging {
                tracing::info!("waiting for evidence: {l}");
            }
        }
        Event::EndpointsUndiscovered { undiscovered } => {
            for u in undiscovered {
                tracing::warn!("{u}");
            }
        }
        Event::TrustAtRisk { pairs } => {
            for pair in pairs {
                tracing::warn!("single-step puts trust at risk: {pair}");
            }
        }
    }
    report.events.push(e);
}
