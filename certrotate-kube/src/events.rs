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
mod recorder {
    use certrotate_core::plan::ObjectRef;
    use k8s_openapi::api::core::v1::{ObjectReference, Secret};
    use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
    use kube::{Api, Client, Resource};

    use certrotate_core::Profile;
    use certrotate_core::plan::ProfileObjects;

    use super::{Notice, NoticeStream, REPORTING_CONTROLLER, Severity, error_notice};
    use crate::engine::{Event, EventSink, Recording, RunEvents, RunReport};
    use crate::error::Error;

    /// The [`EventSink`] of Kubernetes Events: each run's events become `events.k8s.io/v1`
    /// Events on its profile's CA Secret ([`NoticeStream`] decides which, and when;
    /// [`EventRecorder`] publishes them), reported by `certrotate` from `instance`.
    ///
    /// A failure to publish is logged (a warning) and never fails the run: the rotation's
    /// own outcome is what matters. Needs the RBAC of [`EventRecorder`].
    #[derive(Clone)]
    pub struct KubeEvents {
        client: Client,
        instance: Option<String>,
    }

    impl std::fmt::Debug for KubeEvents {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("KubeEvents")
                .field("instance", &self.instance)
                .finish_non_exhaustive()
        }
    }

    impl KubeEvents {
        /// Events reported from `instance` (the Pod's name in a Job or an operator, the
        /// host name elsewhere; `None`: `certrotate`).
        pub fn new(client: Client, instance: Option<String>) -> Self {
            Self { client, instance }
        }
    }

    impl EventSink for KubeEvents {
        fn start(&self, profile: &Profile) -> Box<dyn RunEvents> {
            Box::new(KubeRun {
                recorder: EventRecorder::new(
                    self.client.clone(),
                    ProfileObjects::of(profile).ca_secret,
                    self.instance.clone(),
                ),
                stream: NoticeStream::default(),
            })
        }
    }

    /// One run's Events.
    struct KubeRun {
        recorder: EventRecorder,
        stream: NoticeStream,
    }

    impl KubeRun {
        async fn publish(&self, notices: Vec<Notice>) {
            if let Err(e) = self.recorder.publish(&notices).await {
                // The API server's message is outside text: control characters escaped.
                tracing::warn!(
                    "recording Kubernetes Events on the CA Secret {}: {}",
                    self.recorder.ca_secret,
                    certrotate_core::error_chain(&e).escape_debug()
                );
            }
        }
    }

    impl RunEvents for KubeRun {
        fn record<'a>(&'a mut self, event: &'a Event) -> Recording<'a> {
            let notices = self.stream.push(event);
            Box::pin(self.publish(notices))
        }

        fn finish<'a>(&'a mut self, outcome: Result<&'a RunReport, &'a Error>) -> Recording<'a> {
            let notices = match outcome {
                Ok(_) => self.stream.finish(),
                Err(e) => vec![error_notice(e)],
            };
            Box::pin(self.publish(notices))
        }
    }

    /// Publishes [`Notice`]s as `events.k8s.io/v1` Events regarding the CA Secret (or
    /// the Secret a notice names instead, [`Notice::regarding`]).
    ///
    /// Needs `create` and `patch` on `events.k8s.io` `events` in the Secret's namespace
    /// (a repeated Event is a patch of its series), and `get` on the Secret (its UID,
    /// which `kubectl describe` matches Events by).
    pub struct EventRecorder {
        client: Client,
        recorder: Recorder,
        ca_secret: ObjectRef,
    }

    impl std::fmt::Debug for EventRecorder {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("EventRecorder")
                .field("ca_secret", &self.ca_secret)
                .finish_non_exhaustive()
        }
    }

    impl EventRecorder {
        /// A recorder for Events on `ca_secret`, reported by `certrotate` from `instance`
        /// (the Pod's name in a Job, the host name elsewhere; `None`: `certrotate`).
        pub fn new(client: Client, ca_secret: ObjectRef, instance: Option<String>) -> Self {
            let reporter = Reporter {
                controller: REPORTING_CONTROLLER.into(),
                instance,
            };
            Self {
                recorder: Recorder::new(client.clone(), reporter),
                client,
                ca_secret,
            }
        }

        /// Publishes `notices` in order; stops at the first one the API server refuses.
        pub async fn publish(&self, notices: &[Notice]) -> Result<(), kube::Error> {
            if notices.is_empty() {
                return Ok(());
            }
            let ca_secret = self.regarding(&self.ca_secret).await?;
            for notice in notices {
                let regarding = match &notice.regarding {
                    Some(other) if *other != self.ca_secret => &self.regarding(other).await?,
                    Some(_) | None => &ca_secret,
                };
                let event = KubeEvent {
                    type_: match notice.severity {
                        Severity::Normal => EventType::Normal,
                        Severity::Warning => EventType::Warning,
                    },
                    reason: notice.reason.into(),
                    note: Some(notice.note.clone()),
                    action: notice.action.into(),
                    secondary: None,
                };
                self.recorder.publish(&event, regarding).await?;
            }
            Ok(())
        }

        /// `secret` (the CA Secret, or the one a [`Notice::regarding`] names) as an Event's
        /// `regarding`, with its UID when it exists (`kubectl describe` selects Events by
        /// it); by name alone before it is created.
        async fn regarding(&self, secret: &ObjectRef) -> Result<ObjectReference, kube::Error> {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), &secret.namespace);
            Ok(match api.get_opt(&secret.name).await? {
                Some(secret) => {
                    let mut reference = secret.object_ref(&());
                    // The Event is about the Secret, not one version of it.
                    reference.resource_version = None;
                    reference
                }
                None => ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Secret".into()),
                    namespace: Some(secret.namespace.clone()),
                    name: Some(secret.name.clone()),
                    ..ObjectReference::default()
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use certrotate_core::Fingerprint;
    use certrotate_core::plan::{
        AnyRef, Next, Note, NoteReason, ObjectRef, StateProblem, StepReason, Strategy, WorkloadRef,
    };
    use certrotate_core::profile::WorkloadKind;

    use super::*;
    use crate::error::StoreError;

    fn report(events: Vec<Event>) -> RunReport {
        RunReport {
            events,
            phase: Phase::Stable,
            next: Next::Done,
            requeue_after: None,
            summary: Summary::UpToDate,
            writes: 0,
        }
    }

    fn fingerprint() -> Fingerprint {
        Fingerprint::of(b"a certificate")
    }

    #[test]
    fn a_report_becomes_the_events_a_person_reads() {
        let until = time::macros::datetime!(2026-11-29 13:05:00 UTC);
        let ratelimit = WorkloadRef {
            kind: WorkloadKind::Deployment,
            object: ObjectRef::new("ns", "ratelimit"),
        };
        let envoy = ObjectRef::new("ns", "envoy");
        let report = report(vec![
            Event::SecretCreated {
                secret: ObjectRef::new("ns", "ca"),
                reason: StepReason::FirstInstall,
            },
            Event::Planned {
                from: Phase::Stable,
                to: Phase::Stable,
                summary: Summary::Installed { ca: fingerprint() },
            },
            Event::Planned {
                from: Phase::Prepared,
                to: Phase::Trust,
                summary: Summary::Trust {
                    next: fingerprint(),
                },
            },
            Event::SecretUpdated {
                secret: envoy.clone(),
                keys: vec!["ca.crt".into()],
                reason: StepReason::TrustAdded,
            },
            Event::SecretUnchanged {
                secret: envoy.clone(),
            },
            Event::Note(Note::new(ratelimit.clone(), NoteReason::Absent)),
            Event::WorkloadRestarted {
                workload: ratelimit.clone(),
                reason: StepReason::TrustAdded,
            },
            // The plan conflicted: its phase change is dropped (the restart happened and
            // stands), and the plan made again is reported once its writes are made.
            Event::Conflict {
                object: AnyRef::Secret(envoy),
                attempt: 2,
            },
            Event::Planned {
                from: Phase::Prepared,
                to: Phase::Trust,
                summary: Summary::Trust {
                    next: fingerprint(),
                },
            },
            Event::Waiting {
                until,
                reason: WaitReason::Converging {
                    phase: Phase::Trust,
                },
            },
            Event::WaitingForRollout {
                workloads: vec![ratelimit],
            },
            Event::Planned {
                from: Phase::Stable,
                to: Phase::Stable,
                summary: Summary::TooSoon {
                    ended: until,
                    earliest: until,
                },
            },
            Event::Waiting {
                until,
                reason: WaitReason::TooSoon { ended: until },
            },
        ]);
        let fp = fingerprint().short();
        let got: Vec<(Severity, &str, &str, String)> = notices(&report)
            .into_iter()
            .map(|n| (n.severity, n.reason, n.action, n.note))
            .collect();
        use Severity::{Normal, Warning};
        let rollout = "waiting for the rollout of deployment ns/ratelimit before the next step";
        assert_eq!(
            got,
            [
                (Normal, "Installed", "Install", format!("installed: CA {fp}")),
                (
                    Normal,
                    "WorkloadRestarted",
                    "Trust",
                    "restarted deployment ns/ratelimit: trust: bundle with the next CA".into()
                ),
                (
                    Warning,
                    "WriteConflict",
                    "Trust",
                    "secret ns/envoy changed while certrotate wrote it (attempt 2): re-read and re-planned".into()
                ),
                (
                    Normal,
                    "PhaseChanged",
                    "Trust",
                    format!("phase prepared -> trust: trust: every bundle now carries CA {fp}")
                ),
                (
                    Normal,
                    "WaitingForConvergence",
                    "Trust",
                    "the next step may run at 2026-11-29T13:05:00Z: bundles must converge before leaves change".into()
                ),
                (Normal, "WaitingForRollout", "Trust", rollout.into()),
                (
                    Normal,
                    "RotationTooSoon",
                    "Stable",
                    format!(
                        "the next step may run at 2026-11-29T13:05:00Z: {}",
                        WaitReason::TooSoon { ended: until }
                    )
                ),
            ]
        );
    }

    #[test]
    fn a_plan_is_published_once_its_writes_are_made() {
        let mut stream = NoticeStream::default();
        let planned = |from, to| Event::Planned {
            from,
            to,
            summary: Summary::Trust {
                next: fingerprint(),
            },
        };
        let reasons = |notices: Vec<Notice>| notices.iter().map(|n| n.reason).collect::<Vec<_>>();
        // Planned, then its writes: nothing yet (they may fail).
        assert!(
            stream
                .push(&planned(Phase::Stable, Phase::Prepared))
                .is_empty()
        );
        assert!(
            stream
                .push(&Event::SecretUpdated {
                    secret: ObjectRef::new("ns", "ca"),
                    keys: vec![],
                    reason: StepReason::TrustAdded,
                })
                .is_empty()
        );
        // The next plan means the last one's writes were made.
        assert_eq!(
            reasons(stream.push(&planned(Phase::Prepared, Phase::Trust))),
            ["PhaseChanged"]
        );
        // The run fails in the trust step: never finished, so never reported as entered;
        // what was published before stays published.
        let mut failed = NoticeStream::default();
        assert!(
            failed
                .push(&planned(Phase::Prepared, Phase::Trust))
                .is_empty()
        );
        // A wait releases the plan before it; finish releases the last.
        let until = time::macros::datetime!(2026-11-29 13:05:00 UTC);
        let waiting = Event::Waiting {
            until,
            reason: WaitReason::Converging {
                phase: Phase::Trust,
            },
        };
        assert_eq!(
            reasons(stream.push(&waiting)),
            ["PhaseChanged", "WaitingForConvergence"]
        );
        assert!(
            stream
                .push(&planned(Phase::Trust, Phase::Leaves))
                .is_empty()
        );
        assert_eq!(reasons(stream.finish()), ["PhaseChanged"]);
        assert!(stream.finish().is_empty());
    }

    #[test]
    fn an_install_not_made_by_certrotate_is_a_warning() {
        let report = report(vec![Event::Planned {
            from: Phase::Stable,
            to: Phase::Stable,
            summary: Summary::NotManaged {
                existing: vec![ObjectRef::new("ns", "envoy")],
                ca_secret: ObjectRef::new("ns", "ca"),
                cas: Vec::new(),
            },
        }]);
        let got = notices(&report);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].severity, got[0].reason),
            (Severity::Warning, "NotManaged")
        );
        assert!(
            got[0]
                .note
                .ends_with("adopting them (or a rotation request) mints a new CA")
        );
        // About the component Secret found: there is no CA Secret to describe.
        assert_eq!(got[0].regarding, Some(ObjectRef::new("ns", "envoy")));
        // A rerun that finds nothing to do records nothing.
        let quiet = report_with(Summary::Done {
            ca: fingerprint(),
            retired: false,
            strategy: Strategy::Staged,
        });
        assert!(notices(&quiet).is_empty());
    }

    fn report_with(summary: Summary) -> RunReport {
        report(vec![Event::Planned {
            from: Phase::Stable,
            to: Phase::Stable,
            summary,
        }])
    }

    #[test]
    fn a_failed_run_is_a_warning_whose_reason_says_what_kind() {
        let failed = error_notice(&Error::WriteSecret {
            secret: ObjectRef::new("ns", "envoy"),
            source: StoreError::Backend("connection reset".into()),
        });
        assert_eq!(
            (failed.severity, failed.reason),
            (Severity::Warning, "RotationFailed")
        );
        assert_eq!(
            failed.note, "writing secret ns/envoy: connection reset",
            "the cause once"
        );

        let refused = error_notice(&Error::Plan(certrotate_core::Error::InvalidRotationState {
            secret: ObjectRef::new("ns", "ca"),
            problem: Box::new(StateProblem::UnknownPhase {
                value: "halfway".into(),
            }),
        }));
        assert_eq!(refused.reason, "RotationRefused");
        assert!(
            refused.note.contains("halfway") && refused.note.contains("ns/ca"),
            "{}",
            refused.note
        );
        let gate = error_notice(&Error::TrustWouldBreak {
            step: Summary::UpToDate,
            broken: Vec::new(),
        });
        assert_eq!(gate.reason, "RotationRefused");

        let conflicts = error_notice(&Error::TooManyConflicts {
            attempts: 6,
            object: AnyRef::Secret(ObjectRef::new("ns", "envoy")),
        });
        assert_eq!(conflicts.reason, "RotationConflict");
        let blocked = error_notice(&Error::BlockingTask("panicked".into()));
        assert_eq!(blocked.reason, "RotationFailed");
    }

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        let note = truncate("é".repeat(MAX_NOTE_BYTES));
        assert!(note.len() <= MAX_NOTE_BYTES, "{}", note.len());
        assert!(note.ends_with("..."));
        assert_eq!(truncate("short".into()), "short");
    }
}
