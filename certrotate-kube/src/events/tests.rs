//! Tests of the notices: what a run's events become, and when.
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
