//! Table tests of every phase, with no store: each case builds the observed state of a
//! phase by applying earlier plans to an in-memory [`Observed`], plans once, and checks the
//! transition, what comes next, the summary, and which keys each step writes and why.

use super::*;

/// Which data keys each Secret step writes, and why; notes by object kind.
fn writes(p: &RotationPlan) -> Vec<(String, Vec<String>, StepReason)> {
    p.steps
        .iter()
        .filter_map(|s| match s {
            Step::Secret(c) if c.action != SecretAction::Unchanged => Some((
                c.secret.name.clone(),
                c.data.keys().cloned().collect(),
                c.reason,
            )),
            Step::Secret(_) | Step::Webhook(_) | Step::Restart(_) | Step::Note(_) => None,
        })
        .collect()
}

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| (*s).to_owned()).collect()
}

const COMPONENTS: [&str; 3] = ["envoy-gateway", "envoy", "envoy-rate-limit"];

/// One row of the table: a state, a run, and what must come out.
struct Case {
    name: &'static str,
    /// The observed state and the time of the run.
    given: Box<dyn Fn() -> (Observed, OffsetDateTime)>,
    options: RotationPolicy,
    from: Phase,
    to: Phase,
    next: fn(&Next, OffsetDateTime) -> bool,
    summary: fn(&Summary) -> bool,
    /// (Secret, data keys written, reason), in plan order; `None`: not checked.
    writes: Option<Vec<(&'static str, Vec<String>, StepReason)>>,
}

fn wait_at(next: &Next, at: OffsetDateTime, reason: WaitReason) -> bool {
    *next == Next::WaitUntil { at, reason }
}

fn cases() -> Vec<Case> {
    let leaf = keys(&[KEY_TRUST, KEY_TLS_CRT, KEY_TLS_KEY]);
    let trust_only = keys(&[KEY_TRUST]);
    let leaf_only = keys(&[KEY_TLS_CRT, KEY_TLS_KEY]);
    let ca_keys = keys(&[KEY_CA_CRT, KEY_CA_KEY]);
    let per_component = |k: &Vec<String>, reason: StepReason| {
        COMPONENTS
            .iter()
            .map(|c| (*c, k.clone(), reason))
            .collect::<Vec<_>>()
    };
    let hour = T0 + Duration::from_secs(3600);
    vec![
        Case {
            name: "nothing: install",
            given: Box::new(|| (Observed::default(), T0)),
            options: options(false),
            from: Phase::Stable,
            to: Phase::Stable,
            next: |n, _| *n == Next::Done,
            summary: |s| matches!(s, Summary::Installed { .. }),
            writes: Some(
                [
                    // First: a missing HMAC Secret is created in every phase and mode.
                    (
                        "envoy-oidc-hmac",
                        keys(&["hmac-secret"]),
                        StepReason::Missing,
                    ),
                    (
                        "envoy-gateway-ca",
                        ca_keys.clone(),
                        StepReason::FirstInstall,
                    ),
                ]
                .into_iter()
                .chain(per_component(&leaf, StepReason::FirstInstall))
                .collect(),
            ),
        },
        Case {
            name: "components without a CA, no request: not managed, nothing written",
            given: Box::new(move || {
                let mut o = installed();
                o.secrets.remove(&ObjectRef::new("ns", "envoy-gateway-ca"));
                (o, hour)
            }),
            options: options(false),
            from: Phase::Stable,
            to: Phase::Stable,
            next: |n, _| *n == Next::Done,
            summary: |s| matches!(s, Summary::NotManaged { existing, .. } if existing.len() == 3),
            writes: Some(Vec::new()),
        },
        Case {
            name: "components without a CA, with a request: adoption starts",
            given: Box::new(move || {
                let mut o = installed();
                o.secrets.remove(&ObjectRef::new("ns", "envoy-gateway-ca"));
                (o, hour)
            }),
            options: options(true),
            from: Phase::Stable,
            to: Phase::Prepared,
            next: |n, _| *n == Next::Continue,
            summary: |s| matches!(s, Summary::Adopting { .. }),
            writes: Some(vec![(
                "envoy-gateway-ca",
                keys(&[KEY_NEXT_CA_CRT, KEY_NEXT_CA_KEY]),
                StepReason::Adoption,
            )]),
        },
        Case {
            name: "stable, complete, no request: up to date",
            given: Box::new(move || (installed(), hour)),
            options: options(false),
            from: Phase::Stable,
            to: Phase::Stable,
            next: |n, _| *n == Next::Done,
            summary: |s| *s == Summary::UpToDate,
            writes: Some(Vec::new()),
        },
        Case {
            name: "stable, a Secret deleted: created from the current CA",
            given: Box::new(move || {
                let mut o = installed();
                o.secrets.remove(&ObjectRef::new("ns", "envoy"));
                (o, hour)
            }),
            options: options(false),
            from: Phase::Stable,
            to: Phase::Stable,
            next: |n, _| *n == Next::Done,
            summary: |s| *s == Summary::CreatedMissing,
            writes: Some(vec![("envoy", leaf.clone(), StepReason::Missing)]),
        },
        Case {
            name: "stable, leaves due but ending with the CA, no schedule: the CA expires first, \
                   nothing re-issued for nothing",
            given: Box::new(move || (installed(), hour)),
            options: options(false).with_renew_before(Some(Duration::from_secs(10 * 365 * 86400))),
            from: Phase::Stable,
            to: Phase::Stable,
            next: |n, _| *n == Next::Done,
            summary: |s| {
                matches!(
                    s,
                    Summary::CaExpiresFirst {
                        renewed: 0,
                        limited: 3,
                        ..
                    }
                )
            },
            writes: Some(Vec::new()),
        },
        Case {
            name: "stable, leaves due but ending with the CA, with a schedule: rotate the CA",
            given: Box::new(move || (installed(), hour)),
            options: options(false)
                .with_renew_before(Some(Duration::from_secs(10 * 365 * 86400)))
                .with_trigger(Trigger::Schedule {
                    rotate_ca_before: Duration::from_secs(90 * 86400),
                }),
            from: Phase::Stable,
            to: Phase::Prepared,
            next: |n, _| *n == Next::Continue,
            summary: |s| {
                matches!(
                    s,
                    Summary::Prepared {
                        trigger: RotationTrigger::CaLimitsLeaves,
                        ..
                    }
                )
            },
            writes: None,
        },
        Case {
            name: "stable, the CA expires within the schedule: rotate it",
            given: Box::new(move || {
                (
                    installed(),
                    T0 + Duration::from_secs(5 * 365 * 86400 - 80 * 86400),
                )
            }),
            options: options(false).with_trigger(Trigger::Schedule {
                rotate_ca_before: Duration::from_secs(90 * 86400),
            }),
            from: Phase::Stable,
            to: Phase::Prepared,
            next: |n, _| *n == Next::Continue,
            summary: |s| {
                matches!(
                    s,
                    Summary::Prepared {
                        trigger: RotationTrigger::Schedule { .. },
                        ..
                    }
                )
            },
            writes: None,
        },
        Case {
            name: "stable, a request away from another CA: already satisfied",
            given: Box::new(move || (installed(), hour)),
            options: options(false).with_trigger(Trigger::AwayFrom(Some(crate::Fingerprint::of(
                b"another CA",
            )))),
            from: Phase::Stable,
            to: Phase::Stable,
            next: |n, _| *n == Next::Done,
            summary: |s| *s == Summary::UpToDate,
            writes: Some(Vec::new()),
        },
        Case {
            name: "stable, a request: the next CA is minted",
            given: Box::new(move || (installed(), hour)),
            options: options(true),
            from: Phase::Stable,
            to: Phase::Prepared,
            next: |n, _| *n == Next::Continue,
            summary: |s| matches!(s, Summary::Prepared { .. }),
            writes: Some(vec![(
                "envoy-gateway-ca",
                keys(&[KEY_NEXT_CA_CRT, KEY_NEXT_CA_KEY]),
                StepReason::NextCaMinted {
                    strategy: Strategy::Staged,
                    trigger: RotationTrigger::Overwrite,
                },
            )]),
        },
        Case {
            name: "stable right after a rotation, a request: too soon, a wait with its time",
            given: Box::new(|| {
                let (mut o, now) = in_phase(Phase::Leaves, &options(true));
                let done = now + INTERVAL;
                step(&mut o, &options(true), done);
                (o, done + Duration::from_secs(60))
            }),
            options: options(true),
            from: Phase::Stable,
            to: Phase::Stable,
            next: |n, now| {
                let ended = now - Duration::from_secs(60);
                wait_at(n, ended + INTERVAL, WaitReason::TooSoon { ended })
            },
            summary: |s| matches!(s, Summary::TooSoon { .. }),
            writes: Some(Vec::new()),
        },
        Case {
            name: "prepared, staged: every bundle gets the next CA, leaves unchanged",
            given: Box::new(|| in_phase(Phase::Prepared, &options(true))),
            options: options(true),
            from: Phase::Prepared,
            to: Phase::Trust,
            next: |n, now| {
                wait_at(
                    n,
                    now + INTERVAL,
                    WaitReason::Converging {
                        phase: Phase::Trust,
                    },
                )
            },
            summary: |s| matches!(s, Summary::Trust { .. }),
            writes: Some(
                per_component(&trust_only, StepReason::TrustAdded)
                    .into_iter()
                    .chain([(
                        "envoy-gateway-ca",
                        Vec::new(),
                        StepReason::PhaseRecorded {
                            phase: Phase::Trust,
                        },
                    )])
                    .collect(),
            ),
        },
        Case {
            name: "prepared, single-step: bundle and leaf in one write, then done",
            given: Box::new(|| {
                in_phase(
                    Phase::Prepared,
                    &options(true).with_strategy(Strategy::SingleStep),
                )
            }),
            options: options(true).with_strategy(Strategy::SingleStep),
            from: Phase::Prepared,
            to: Phase::Stable,
            next: |n, _| *n == Next::Done,
            summary: |s| {
                matches!(
                    s,
                    Summary::Done {
                        strategy: Strategy::SingleStep,
                        ..
                    }
                )
            },
            writes: Some(
                per_component(&leaf, StepReason::SingleStep)
                    .into_iter()
                    .chain([(
                        "envoy-gateway-ca",
                        keys(&[KEY_CA_CRT, KEY_CA_KEY, KEY_NEXT_CA_CRT, KEY_NEXT_CA_KEY]),
                        StepReason::PhaseRecorded {
                            phase: Phase::Stable,
                        },
                    )])
                    .collect(),
            ),
        },
        Case {
            name: "trust, before the interval: wait, nothing written",
            given: Box::new(|| {
                let (o, now) = in_phase(Phase::Trust, &options(true));
                (o, now + Duration::from_secs(10))
            }),
            options: options(true),
            from: Phase::Trust,
            to: Phase::Trust,
            next: |n, now| {
                wait_at(
                    n,
                    now - Duration::from_secs(10) + INTERVAL,
                    WaitReason::Converging {
                        phase: Phase::Trust,
                    },
                )
            },
            summary: |s| {
                *s == Summary::Waiting {
                    phase: Phase::Trust,
                }
            },
            writes: Some(Vec::new()),
        },
        Case {
            name: "trust, a restarted workload still rolling out: wait for it",
            given: Box::new(|| {
                let (mut o, now) = in_phase(Phase::Trust, &options(true));
                for w in o.workloads.values_mut() {
                    w.rollout_complete = false;
                }
                (o, now + INTERVAL)
            }),
            options: options(true),
            from: Phase::Trust,
            to: Phase::Trust,
            next: |n, _| {
                *n == Next::WaitForRollout {
                    workloads: vec![WorkloadRef::new(
                        WorkloadKind::Deployment,
                        "ns",
                        "envoy-ratelimit",
                    )],
                }
            },
            summary: |s| {
                *s == Summary::Waiting {
                    phase: Phase::Trust,
                }
            },
            writes: Some(Vec::new()),
        },
        Case {
            name: "trust, converged: every leaf from the next CA, which becomes current",
            given: Box::new(|| {
                let (o, now) = in_phase(Phase::Trust, &options(true));
                (o, now + INTERVAL)
            }),
            options: options(true),
            from: Phase::Trust,
            to: Phase::Leaves,
            next: |n, now| {
                wait_at(
                    n,
                    now + INTERVAL,
                    WaitReason::Converging {
                        phase: Phase::Leaves,
                    },
                )
            },
            summary: |s| matches!(s, Summary::Leaves { .. }),
            writes: Some(
                per_component(&leaf_only, StepReason::LeavesSwitched)
                    .into_iter()
                    .chain([(
                        "envoy-gateway-ca",
                        keys(&[KEY_CA_CRT, KEY_CA_KEY, KEY_NEXT_CA_CRT, KEY_NEXT_CA_KEY]),
                        StepReason::PhaseRecorded {
                            phase: Phase::Leaves,
                        },
                    )])
                    .collect(),
            ),
        },
        Case {
            name: "leaves, converged: done",
            given: Box::new(|| {
                let (o, now) = in_phase(Phase::Leaves, &options(true));
                (o, now + INTERVAL)
            }),
            options: options(true),
            from: Phase::Leaves,
            to: Phase::Stable,
            next: |n, _| *n == Next::Done,
            summary: |s| {
                matches!(
                    s,
                    Summary::Done {
                        retired: false,
                        strategy: Strategy::Staged,
                        ..
                    }
                )
            },
            writes: Some(vec![(
                "envoy-gateway-ca",
                Vec::new(),
                StepReason::PhaseRecorded {
                    phase: Phase::Stable,
                },
            )]),
        },
        Case {
            name: "leaves, converged, dropping the old CA: retire",
            given: Box::new(|| {
                let (o, now) = in_phase(Phase::Leaves, &options(true).with_drop_old_ca(true));
                (o, now + INTERVAL)
            }),
            options: options(true),
            from: Phase::Leaves,
            to: Phase::Retire,
            next: |n, now| {
                wait_at(
                    n,
                    now + INTERVAL,
                    WaitReason::Converging {
                        phase: Phase::Retire,
                    },
                )
            },
            summary: |s| matches!(s, Summary::Retire { .. }),
            writes: Some(
                per_component(&trust_only, StepReason::OldCaDropped)
                    .into_iter()
                    .chain([(
                        "envoy-gateway-ca",
                        Vec::new(),
                        StepReason::PhaseRecorded {
                            phase: Phase::Retire,
                        },
                    )])
                    .collect(),
            ),
        },
        Case {
            name: "retire, converged: done, old CA retired",
            given: Box::new(|| {
                let (o, now) = in_phase(Phase::Retire, &options(true).with_drop_old_ca(true));
                (o, now + INTERVAL)
            }),
            options: options(true),
            from: Phase::Retire,
            to: Phase::Stable,
            next: |n, _| *n == Next::Done,
            summary: |s| matches!(s, Summary::Done { retired: true, .. }),
            writes: None,
        },
    ]
}

#[test]
fn every_phase_by_table() {
    for case in cases() {
        let (observed, now) = (case.given)();
        let p = plan(
            &profile(),
            &observed,
            &case.options,
            now,
            &mut SeededEntropy::new(3),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!((p.from, p.to), (case.from, case.to), "{}", case.name);
        assert!(
            (case.next)(&p.next, now),
            "{}: next {:?}",
            case.name,
            p.next
        );
        assert!(
            (case.summary)(&p.summary),
            "{}: summary {:?}",
            case.name,
            p.summary
        );
        if let Some(expected) = &case.writes {
            let expected: Vec<(String, Vec<String>, StepReason)> = expected
                .iter()
                .map(|(s, k, r)| ((*s).to_owned(), k.clone(), *r))
                .collect();
            assert_eq!(writes(&p), expected, "{}", case.name);
        }
    }
}
