//! Kubernetes Events on the CA Secret for what a rotation did, so that
//! `kubectl describe secret envoy-gateway-ca` (or `kubectl events --for secret/...`) tells
//! the story: each phase change, restart, wait and conflict, and a failed or refused run.
//!
//! [`notices`] maps a [`RunReport`] and [`error_notice`] an engine [`Error`] to the
//! [`Notice`]s a person should see (pure, so every store can use it and tests can assert
//! it); [`EventRecorder`] (feature `kube`) publishes them as `events.k8s.io/v1` Events
//! through kube's own recorder, which patches a repeated Event's series instead of
//! creating another. Secret writes that are part of a phase are not Events of their own:
//! the phase change says what they were for.

use std::fmt;

use certrotate_core::plan::{ObjectRef, Phase};

use crate::engine::{Event, RunReport};
use crate::error::Error;

/// The most bytes of an Event's note (the API server's limit is 1 kB).
pub const MAX_NOTE_BYTES: usize = 1024;

/// The reporting controller of certrotate's Events (`From` in `kubectl describe`).
pub const REPORTING_CONTROLLER: &str = "certrotate";

/// Whether an Event reports normal progress or something a person should look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

impl Notice {
    fn new(severity: Severity, reason: &'static str, action: &'static str, note: String) -> Self {
        Self {
            severity,
            reason,
            action,
            note: truncate(note),
        }
    }
}

/// The Events a run's report calls for, in order. `ca_secret` is the profile's CA Secret
/// (its creation is the install).
///
/// Each notice's action is the phase its plan moved to (`Prepare`, `Trust`, `Leaves`,
/// `Retire`, `Stable`): kube's recorder folds Events with the same reason and action into
/// one series (keeping the first note), so a restart in the trust phase and one in the
/// leaves phase stay two Events, while a retried conflict counts up one.
pub fn notices(report: &RunReport, ca_secret: &ObjectRef) -> Vec<Notice> {
    let ca_secret = ca_secret.to_string();
    let mut action = "Rotate";
    let mut out = Vec::new();
    for event in &report.events {
        if let Event::Planned { to, .. } = event {
            action = phase_action(*to);
        }
        out.extend(notice(event, &ca_secret, action));
    }
    out
}

fn phase_action(phase: Phase) -> &'static str {
    match phase {
        Phase::Stable => "Stable",
        Phase::Prepared => "Prepare",
        Phase::Trust => "Trust",
        Phase::Leaves => "Leaves",
        Phase::Retire => "Retire",
        // A phase added to the core shows as a rotation step until it gets its name here.
        _ => "Rotate",
    }
}

/// The Event of one engine event, if a person should see it.
fn notice(event: &Event, ca_secret: &str, action: &'static str) -> Option<Notice> {
    use Severity::{Normal, Warning};
    match event {
        Event::Planned { from, to, summary } => (from != to).then(|| {
            Notice::new(
                Normal,
                "PhaseChanged",
                action,
                format!("phase {from} -> {to}: {summary}"),
            )
        }),
        Event::SecretCreated { secret, reason } => (secret == ca_secret).then(|| {
            Notice::new(
                Normal,
                "Installed",
                "Install",
                format!("created the CA Secret {secret}: {reason}"),
            )
        }),
        Event::WorkloadRestarted { workload, reason } => Some(Notice::new(
            Normal,
            "WorkloadRestarted",
            action,
            format!("restarted {workload}: {reason}"),
        )),
        Event::Waiting { until, reason } => Some(Notice::new(
            Normal,
            "WaitingForConvergence",
            action,
            format!(
                "the next step may run at {}: {reason}",
                certrotate_core::rfc3339(*until)
            ),
        )),
        Event::WaitingForRollout { workloads } => Some(Notice::new(
            Normal,
            "WaitingForRollout",
            action,
            format!(
                "waiting for the rollout of {} before the next step",
                workloads.join(", ")
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
        // Parts of a phase: the phase change above says what they were for.
        Event::SecretUpdated { .. }
        | Event::SecretUnchanged { .. }
        | Event::WebhookUpdated { .. }
        | Event::Note { .. } => None,
    }
}

/// The Event of a failed run: `RotationRefused` when the plan refused the observed state
/// (bad or weak certificates, an inconsistent rotation state), `RotationTimedOut`,
/// `RotationConflict` when another writer kept changing an object, `RotationFailed` for
/// API or file errors. The note is the error and its causes.
pub fn error_notice(error: &Error) -> Notice {
    let reason = match error {
        Error::Plan(_) => "RotationRefused",
        Error::TooManyConflicts { .. } => "RotationConflict",
        Error::Timeout { .. } => "RotationTimedOut",
        Error::ReadSecret { .. }
        | Error::WriteSecret { .. }
        | Error::ReadWorkload { .. }
        | Error::RestartWorkload { .. }
        | Error::ReadWebhook { .. }
        | Error::UpdateWebhook { .. } => "RotationFailed",
    };
    let mut note = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !note.contains(&text) {
            note.push_str(": ");
            note.push_str(&text);
        }
        source = cause.source();
    }
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
pub use recorder::EventRecorder;

#[cfg(feature = "kube")]
mod recorder {
    use certrotate_core::plan::ObjectRef;
    use k8s_openapi::api::core::v1::{ObjectReference, Secret};
    use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
    use kube::{Api, Client, Resource};

    use super::{Notice, REPORTING_CONTROLLER, Severity};

    /// Publishes [`Notice`]s as `events.k8s.io/v1` Events regarding the CA Secret.
    ///
    /// Needs `create` and `patch` on `events.k8s.io` `events` in the Secret's namespace
    /// (a repeated Event is a patch of its series), and `get` on the CA Secret (its UID,
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
            let regarding = self.regarding().await?;
            for notice in notices {
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
                self.recorder.publish(&event, &regarding).await?;
            }
            Ok(())
        }

        /// The CA Secret as an Event's `regarding`, with its UID when it exists (`kubectl
        /// describe` selects Events by it); by name alone before it is created.
        async fn regarding(&self) -> Result<ObjectReference, kube::Error> {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.ca_secret.namespace);
            Ok(match api.get_opt(&self.ca_secret.name).await? {
                Some(secret) => {
                    let mut reference = secret.object_ref(&());
                    // The Event is about the Secret, not one version of it.
                    reference.resource_version = None;
                    reference
                }
                None => ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Secret".into()),
                    namespace: Some(self.ca_secret.namespace.clone()),
                    name: Some(self.ca_secret.name.clone()),
                    ..ObjectReference::default()
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use certrotate_core::Origin;
    use certrotate_core::plan::{Next, Phase};

    use super::*;
    use crate::error::StoreError;

    fn report(events: Vec<Event>) -> RunReport {
        RunReport {
            events,
            phase: Phase::Stable,
            next: Next::Done,
            summary: String::new(),
            writes: 0,
        }
    }

    #[test]
    fn a_report_becomes_the_events_a_person_reads() {
        let until = time::macros::datetime!(2026-11-29 13:05:00 UTC);
        let report = report(vec![
            Event::SecretCreated {
                secret: "ns/ca".into(),
                reason: "first install: new CA".into(),
            },
            Event::SecretCreated {
                secret: "ns/envoy".into(),
                reason: "first install".into(),
            },
            Event::Planned {
                from: Phase::Stable,
                to: Phase::Stable,
                summary: "installed".into(),
            },
            Event::Planned {
                from: Phase::Prepared,
                to: Phase::Trust,
                summary: "trust: bundles carry both CAs".into(),
            },
            Event::SecretUpdated {
                secret: "ns/envoy".into(),
                keys: vec!["ca.crt".into()],
                reason: "trust".into(),
            },
            Event::SecretUnchanged {
                secret: "ns/envoy".into(),
            },
            Event::WebhookUpdated {
                webhook: "mutatingwebhookconfiguration w".into(),
            },
            Event::Note {
                object: "deployment ns/r".into(),
                message: "absent: nothing to restart".into(),
            },
            Event::WorkloadRestarted {
                workload: "deployment ns/r".into(),
                reason: "reads its CA only at start".into(),
            },
            Event::Conflict {
                object: "ns/envoy".into(),
                attempt: 2,
            },
            Event::Waiting {
                until,
                reason: "every component loads the bundles".into(),
            },
            Event::WaitingForRollout {
                workloads: vec!["deployment ns/r".into()],
            },
        ]);
        let got: Vec<(Severity, &str, &str, String)> =
            notices(&report, &ObjectRef::new("ns", "ca"))
                .into_iter()
                .map(|n| (n.severity, n.reason, n.action, n.note))
                .collect();
        use Severity::{Normal, Warning};
        assert_eq!(
            got,
            [
                (Normal, "Installed", "Install", "created the CA Secret ns/ca: first install: new CA".into()),
                (Normal, "PhaseChanged", "Trust", "phase prepared -> trust: trust: bundles carry both CAs".into()),
                (Normal, "WorkloadRestarted", "Trust", "restarted deployment ns/r: reads its CA only at start".into()),
                (Warning, "WriteConflict", "Trust", "ns/envoy changed while certrotate wrote it (attempt 2): re-read and re-planned".into()),
                (Normal, "WaitingForConvergence", "Trust", "the next step may run at 2026-11-29T13:05:00Z: every component loads the bundles".into()),
                (Normal, "WaitingForRollout", "Trust", "waiting for the rollout of deployment ns/r before the next step".into()),
            ]
        );
    }

    #[test]
    fn a_failed_run_is_a_warning_whose_reason_says_what_kind() {
        let failed = error_notice(&Error::WriteSecret {
            secret: "ns/envoy".into(),
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
            origin: Origin::new("secret ns/ca"),
            reason: "phase trust without next-ca.crt".into(),
        }));
        assert_eq!(refused.reason, "RotationRefused");
        assert!(
            refused.note.contains("phase trust without next-ca.crt"),
            "{}",
            refused.note
        );

        let timeout = error_notice(&Error::Timeout {
            waited: "a to b".into(),
            waiting_for: "rollouts".into(),
        });
        assert_eq!(timeout.reason, "RotationTimedOut");
        let conflicts = error_notice(&Error::TooManyConflicts {
            attempts: 6,
            object: "ns/envoy".into(),
        });
        assert_eq!(conflicts.reason, "RotationConflict");
    }

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        let note = truncate("é".repeat(MAX_NOTE_BYTES));
        assert!(note.len() <= MAX_NOTE_BYTES, "{}", note.len());
        assert!(note.ends_with("..."));
        assert_eq!(truncate("short".into()), "short");
    }
}
