//! Kubernetes Events on the CA Secret for what a rotation did, so that
//! `kubectl describe secret envoy-gateway-ca` (or `kubectl events --for secret/...`) tells
//! the story: each phase change, restart, wait and conflict, and a failed or refused run.
//!
//! [`notices`] maps a [`RunReport`] and [`error_notice`] an engine [`Error`] to the
//! [`Notice`]s a person should see (pure, so every store can use it and tests can assert
//! it); `EventRecorder` (feature `kube`) publishes them as `events.k8s.io/v1` Events
//! through kube's own recorder, which patches a repeated Event's series instead of
//! creating another. Secret writes that are part of a phase are not Events of their own:
//! the phase change says what they were for.

use std::fmt;

use certrotate_core::plan::{ObjectRef, Phase, Summary, WaitReason};

use crate::engine::{Event, RunReport};
use crate::error::Error;

/// The most bytes of an Event's note (the API server's limit is 1 kB).
pub const MAX_NOTE_BYTES: usize = 1024;

/// The reporting controller of certrotate's Events (`From` in `kubectl describe`).
pub const REPORTING_CONTROLLER: &str = "certrotate";

/// Whether an Event reports normal progress or something a person should look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Severity {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        })
    }
}

/// One Event to record on the CA Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Notice {
    /// `Normal` or `Warning`.
    pub severity: Severity,
    /// A PascalCase reason (`PhaseChanged`, `WorkloadRestarted`, `RotationFailed`, ...).
    pub reason: &'static str,
    /// What certrotate was doing: `Install`, the phase a rotation step moved to
    /// (`Prepare`, `Trust`, `Leaves`, `Retire`, `Stable`), or `Rotate`.
    pub action: &'static str,
    /// A sentence for a person, at most [`MAX_NOTE_BYTES`].
    pub note: String,
    /// The Secret the Event is about, when it is not the CA Secret: an install certrotate
    /// does not manage has no CA Secret, so its Event is about the first component Secret
    /// found (`envoy-gateway`), where `kubectl describe` shows it.
    pub regarding: Option<ObjectRef>,
}

impl Notice {
    fn new(severity: Severity, reason: &'static str, action: &'static str, note: String) -> Self {
        Self {
            severity,
            reason,
            action,
            note: truncate(note),
            regarding: None,
        }
    }

    fn about(mut self, secret: Option<&ObjectRef>) -> Self {
        self.regarding = secret.cloned();
        self
    }
}

/// The Events a run's report calls for, in order (each about the CA Secret, which the
/// `EventRecorder` names): [`NoticeStream`] over every event of the report.
pub fn notices(report: &RunReport) -> Vec<Notice> {
    let mut stream = NoticeStream::default();
    let mut out: Vec<Notice> = report.events.iter().flat_map(|e| stream.push(e)).collect();
    out.extend(stream.finish());
    out
}

/// Maps engine events to Events as they happen (what [`KubeEvents`] does with each run's
/// events, as an [`EventSink`](crate::EventSink)), so a long `--wait` run
/// publishes each phase as it is entered and a run that fails keeps what it did before.
///
/// Each notice's action is the phase its plan moved to (`Prepare`, `Trust`, `Leaves`,
/// `Retire`, `Stable`): kube's recorder folds Events with the same reason and action into
/// one series (keeping the first note), so a restart in the trust phase and one in the
/// leaves phase stay two Events, while a retried conflict counts up one.
///
/// A plan's notices (its phase change or install, its restarts, the pairs it puts at
/// risk) are held until its writes are known to have been made: the next plan, wait or
/// [`Self::finish`] releases them in order. A conflict drops them (the plan was not
/// applied and is planned again) but for restarts, which did happen; a failed run never
/// calls `finish`, so a plan that failed half-way is not reported as done.
#[derive(Debug)]
pub struct NoticeStream {
    action: &'static str,
    /// The current plan's notices, each with whether it stands if the plan conflicts.
    held: Vec<(Notice, bool)>,
}

impl Default for NoticeStream {
    fn default() -> Self {
        Self {
            action: "Rotate",
            held: Vec::new(),
        }
    }
}

impl NoticeStream {
    /// The notices `event` makes due, in order.
    pub fn push(&mut self, event: &Event) -> Vec<Notice> {
        let mut out = Vec::new();
        match event {
            Event::Planned { to, .. } => {
                out.extend(self.finish());
                self.action = phase_action(*to);
                self.hold(event, false);
            }
            Event::Waiting { .. }
            | Event::WaitingForRollout { .. }
            | Event::EndpointsLagging { .. }
            | Event::EndpointsUndiscovered { .. } => {
                out.extend(self.finish());
                out.extend(notice(event, self.action));
            }
            Event::Conflict { .. } => {
                out.extend(
                    self.held
                        .drain(..)
                        .filter(|(_, stands)| *stands)
                        .map(|(n, _)| n),
                );
                out.extend(notice(event, self.action));
            }
            Event::WorkloadRestarted { .. } => self.hold(event, true),
            Event::TrustAtRisk { .. } => self.hold(event, false),
            Event::SecretCreated { .. }
            | Event::SecretUpdated { .. }
            | Event::SecretUnchanged { .. }
            | Event::WebhookUpdated { .. }
            | Event::Note(_) => out.extend(notice(event, self.action)),
        }
        out
    }

    /// The run ended well: the notices of its last plan.
    pub fn finish(&mut self) -> Vec<Notice> {
        self.held.drain(..).map(|(n, _)| n).collect()
    }

    fn hold(&mut self, event: &Event, stands: bool) {
        if let Some(n) = notice(event, self.action) {
            self.held.push((n, stands));
        }
    }
}

fn phase_action(phase: Phase) -> &'static str {
    match phase {
        Phase::Stable => "Stable",
        Phase::Prepared => "Prepare",
        Phase::Trust => "Trust",
        Phase::Leaves => "Leaves",
        Phase::Retire => "Retire",
    }
}

/// The Event of one engine event, if a person should see it.
fn notice(event: &Event, action: &'static str) -> Option<Notice> {
    use Severity::{Normal, Warning};
    match event {
        Event::Planned { from, to, summary } if from != to => Some(Notice::new(
            Normal,
            "PhaseChanged",
            action,
            format!("phase {from} -> {to}: {summary}"),
        )),
        Event::Planned { summary, .. } => plan_outcome(summary),
        Event::WorkloadRestarted { workload, reason } => Some(Notice::new(
            Normal,
            "WorkloadRestarted",
            action,
            format!("restarted {workload}: {reason}"),
        )),
        Event::Waiting { until, reason } => {
            let reason_word = match reason {
                WaitReason::Converging { .. } => "WaitingForConvergence",
                // Probed servers do not show what the phase wrote yet (a Warning would cry
                // wolf: most catch up within seconds; a timeout is the run's error).
                WaitReason::Evidence { .. } => "WaitingForEvidence",
                // A rotation asked for too soon after the last one: refused until `until`.
                WaitReason::TooSoon { .. } => "RotationTooSoon",
            };
            Some(Notice::new(
                Normal,
                reason_word,
                action,
                format!(
                    "the next step may run at {}: {reason}",
                    certrotate_core::rfc3339(*until)
                ),
            ))
        }
        // Each server that does not show the phase's writes yet, and what it shows: the
        // pod to look at (a `subPath` mount, a stuck kubelet, a component not restarted).
        Event::EndpointsLagging { lagging } => Some(Notice::new(
            Normal,
            "EndpointsLagging",
            action,
            format!(
                "waiting for {} endpoint(s) to show the phase's writes: {}",
                lagging.len(),
                lagging.join("; ")
            ),
        )),
        // A Service whose pods give no evidence: the phase falls back to its timers for
        // it, which a person should know (a Warning: the gate is weaker than configured).
        Event::EndpointsUndiscovered { undiscovered } => Some(Notice::new(
            Warning,
            "EndpointsUndiscovered",
            action,
            undiscovered
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )),
        Event::WaitingForRollout { workloads } => Some(Notice::new(
            Normal,
            "WaitingForRollout",
            action,
            format!(
                "waiting for the rollout of {} before the next step",
                join(workloads)
            ),
        )),
        Event::Conflict { object, attempt } => Some(Notice::new(
            Warning,
            "WriteConflict",
            action,
            format!(
                "{object} changed while certrotate wrote it (attempt {attempt}): re-read and re-planned"
            ),
        )),
        Event::TrustAtRisk { pairs } => Some(Notice::new(
            Warning,
            "TrustAtRisk",
            action,
            format!(
                "{} leaf/trust-store pair(s) fail while this step converges: {}",
                pairs.len(),
                join(pairs)
            ),
        )),
        // Parts of a phase: the phase change says what they were for.
        Event::SecretCreated { .. }
        | Event::SecretUpdated { .. }
        | Event::SecretUnchanged { .. }
        | Event::WebhookUpdated { .. }
        | Event::Note(_) => None,
    }
}

/// The Event of a plan that did not change the phase, if it is news: an install, Secrets
/// created or renewed, an install the run refuses to take over, or a CA that expires
/// before the leaves it would renew.
fn plan_outcome(summary: &Summary) -> Option<Notice> {
    use Severity::{Normal, Warning};
    match summary {
        Summary::Installed { .. } => Some(Notice::new(
            Normal,
            "Installed",
            "Install",
            summary.to_string(),
        )),
        Summary::CreatedMissing => Some(Notice::new(
            Normal,
            "SecretsCreated",
            "Install",
            summary.to_string(),
        )),
        Summary::Renewed { count, .. } if *count > 0 => Some(Notice::new(
            Normal,
            "LeavesRenewed",
            "Renew",
            summary.to_string(),
        )),
        // A person has to act: only a CA rotation gives the leaves their validity back.
        Summary::CaExpiresFirst { .. } => Some(Notice::new(
            Warning,
            "CaExpiresFirst",
            "Renew",
            format!("{summary} (request a CA rotation, or schedule one before the CA expires)"),
        )),
        // Loud: the certificates expire with nobody to rotate them. There is no CA Secret
        // to record it on; the first component Secret is where a person looks.
        Summary::NotManaged { existing, .. } => Some(
            Notice::new(
                Warning,
                "NotManaged",
                "Install",
                format!("{summary}; adopting them (or a rotation request) mints a new CA"),
            )
            .about(existing.first()),
        ),
        // Something changed what it must hold behind certrotate's back (a Helm hook, a
        // person, a restore): worth a look even though the run repaired it.
        Summary::Repaired { .. } => Some(Notice::new(
            Warning,
            "TrustRepaired",
            "Repair",
            summary.to_string(),
        )),
        Summary::TrustRestored { .. } => Some(Notice::new(
            Warning,
            "TrustRestored",
            "Repair",
            summary.to_string(),
        )),
        // Said by the Waiting event that follows, or nothing happened.
        Summary::TooSoon { .. }
        | Summary::Waiting { .. }
        | Summary::Renewed { .. }
        | Summary::UpToDate => None,
        // These change the phase; a plan that names them without a change is a rerun.
        Summary::Adopting { .. }
        | Summary::Prepared { .. }
        | Summary::Trust { .. }
        | Summary::Leaves { .. }
        | Summary::Retire { .. }
        | Summary::Done { .. } => None,
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Event of a failed run: `RotationRefused` when the plan refused the observed state
/// (bad or weak certificates, an inconsistent rotation state) or the trust gate refused a
/// step that would break a handshake, `RotationTimedOut`,
/// `RotationConflict` when another writer kept changing an object, `RotationFailed` for
/// API or file errors. The note is the error and its causes.
pub fn error_notice(error: &Error) -> Notice {
    let reason = match error {
        Error::Plan(_) | Error::TrustWouldBreak { .. } => "RotationRefused",
        Error::TooManyConflicts { .. } => "RotationConflict",
        Error::Timeout { .. } => "RotationTimedOut",
        Error::ReadSecret { .. }
        | Error::WriteSecret { .. }
        | Error::ReadWorkload { .. }
        | Error::ListWorkloads { .. }
        | Error::RestartWorkload { .. }
        | Error::ReadWebhook { .. }
        | Error::UpdateWebhook { .. }
        | Error::BlockingTask(_) => "RotationFailed",
    };
    let note = certrotate_core::error_chain(error);
    Notice::new(Severity::Warning, reason, "Rotate", note)
}

/// Cuts `note` to [`MAX_NOTE_BYTES`] on a character boundary, marking the cut.
fn truncate(mut note: String) -> String {
    if note.len() > MAX_NOTE_BYTES {
        let mut end = MAX_NOTE_BYTES - "...".len();
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    note
}

#[cfg(feature = "kube")]
pub use recorder::{EventRecorder, KubeEvents};

#[cfg(feature = "kube")]
mod recorder;

#[cfg(test)]
mod tests;
