//! Issue 22, items 2 and 3: an install made by upstream's certgen is adopted (on purpose,
//! or by a schedule whose window covers its CA's end) and otherwise reported, never left
//! to expire silently; and no false alarm after a rotation: the previous CA is retired
//! from the bundles, staged, after `retire_after` (or at once when asked), `check` does
//! not count a carried CA as expiring, and a renewal the CA caps says so in the same run.

use std::sync::Arc;
use std::time::Duration;

use certrotate_core::plan::wire::KEY_TRUST;
use certrotate_core::plan::{NextRun, NoteReason, Phase, RetireReason, RotationTrigger, Summary};
use certrotate_core::{RotationPolicy, SeededEntropy, Trigger, check};
use certrotate_kube::{Clock, Event, ManualClock, RunMode, RunReport, Store, observe};

use super::{
    HOUR, T0, assert_trusted, count_certs, engine, install, options, profile, secret, state,
    until_done,
};

const DAY: Duration = Duration::from_secs(86400);
const BUNDLES: [&str; 3] = ["envoy-gateway", "envoy", "envoy-rate-limit"];

async fn once<S: Store + Clone>(
    store: &S,
    options: RotationPolicy,
    clock: &Arc<ManualClock>,
    seed: u64,
) -> RunReport {
    engine(store.clone(), clock, seed)
        .run(&profile(), &options, RunMode::Once)
        .await
        .unwrap()
}

/// Every component's `ca.crt` holds this many certificates.
async fn bundle_sizes<S: Store>(store: &S) -> Vec<usize> {
    let observed = observe(store, &profile()).await.unwrap();
    BUNDLES
        .iter()
        .map(|c| count_certs(&observed.secrets[&secret(c)].data[KEY_TRUST]))
        .collect()
}

fn entered_retire(report: &RunReport) -> Option<Summary> {
    report.events.iter().find_map(|e| match e {
        Event::Planned {
            to: Phase::Retire,
            summary,
            ..
        } => Some(summary.clone()),
        _ => None,
    })
}

/// Without `adopt`, an install certgen made is reported, naming the CA its leaves chain
/// to (subject, fingerprint, end), and nothing of it changes; with it, the install is
/// adopted, staged; once managed, `adopt` is a no-op (it never rotates a managed CA).
pub async fn a_certgen_install_is_adopted_on_purpose<S: Store>(store: S) {
    let store = Arc::new(store);
    let old = super::certgen_install(&*store, 5 * 365 * DAY).await;
    let clock = Arc::new(ManualClock::new(T0 + HOUR));

    let report = once(&store, options(false), &clock, 1).await;
    let Summary::NotManaged { cas, existing, .. } = &report.summary else {
        panic!("{:?}", report.summary);
    };
    assert_eq!(existing.len(), 3);
    assert_eq!(cas.len(), 1, "{cas:?}");
    assert_eq!(cas[0].fingerprint, old.fingerprint());
    assert_eq!(cas[0].not_after, old.not_after());
    assert!(
        cas[0].subject.contains("CN=envoy-gateway"),
        "{}",
        cas[0].subject
    );
    let text = report.summary.to_string();
    assert!(
        text.contains(&old.fingerprint().short()) && text.contains("expires at"),
        "the warning names the CA and its end: {text}"
    );

    let adopt = options(false).with_adopt(true);
    let report = once(&store, adopt.clone(), &clock, 2).await;
    assert_eq!(
        report.events.iter().find_map(|e| match e {
            Event::Planned {
                summary: Summary::Adopting { trigger, .. },
                ..
            } => Some(*trigger),
            _ => None,
        }),
        Some(RotationTrigger::Adopt),
        "{:?}",
        report.events
    );
    let done = engine(store.clone(), &clock, 3)
        .run(&profile(), &adopt, until_done())
        .await
        .unwrap();
    assert_eq!(done.phase, Phase::Stable);
    let observed = observe(&*store, &profile()).await.unwrap();
    assert_trusted(&observed, clock.now(), "after adoption");
    let current = state(&*store).await.current.unwrap();
    assert_ne!(current, old.fingerprint());

    // Managed now: `adopt` changes nothing, however often a hook passes it.
    clock.advance(HOUR);
    let again = once(&store, adopt, &clock, 4).await;
    assert_eq!(again.writes, 0, "{:?}", again.events);
    assert_eq!(state(&*store).await.current, Some(current));
}

/// A schedule adopts an install certgen made once its window covers the end of that
/// install's CA (30 days left, a 90-day window), and only then.
pub async fn a_schedule_adopts_a_certgen_ca_within_its_window<S: Store>(store: S) {
    let store = Arc::new(store);
    let old = super::certgen_install(&*store, 30 * DAY).await;
    let clock = Arc::new(ManualClock::new(T0 + HOUR));

    let narrow = options(false).with_trigger(Trigger::Schedule {
        rotate_ca_before: 10 * DAY,
    });
    let report = once(&store, narrow, &clock, 1).await;
    assert!(
        matches!(report.summary, Summary::NotManaged { .. }),
        "a window that ends before the CA does not adopt: {:?}",
        report.summary
    );

    let daily = options(false).with_trigger(Trigger::Schedule {
        rotate_ca_before: 90 * DAY,
    });
    let report = once(&store, daily.clone(), &clock, 2).await;
    let trigger = report.events.iter().find_map(|e| match e {
        Event::Planned {
            summary: Summary::Adopting { trigger, .. },
            ..
        } => Some(*trigger),
        _ => None,
    });
    assert_eq!(
        trigger,
        Some(RotationTrigger::Schedule {
            ca_not_after: old.not_after()
        }),
        "{:?}",
        report.events
    );
    let done = engine(store.clone(), &clock, 3)
        .run(&profile(), &daily, until_done())
        .await
        .unwrap();
    assert_eq!(done.phase, Phase::Stable);
    assert_trusted(
        &observe(&*store, &profile()).await.unwrap(),
        clock.now(),
        "after a scheduled adoption",
    );
}

/// After a scheduled rotation, `check` counts the previous CA (carried in every bundle,
/// no current leaf issued by it) as information, not as expiring; `retire_after` after
/// the rotation ended (persisted with it: a later run's option does not move it), the old
/// CA is retired, staged, and every bundle carries the current CA alone.
pub async fn the_previous_ca_is_retired_after_retire_after<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    let mut p = profile();
    p.ca.validity = 365 * DAY;
    p.leaf.validity = 300 * DAY;
    let schedule = |retire_after| {
        RotationPolicy::default()
            .with_trigger(Trigger::Schedule {
                rotate_ca_before: 90 * DAY,
            })
            .with_renew_before(Some(90 * DAY))
            .with_retire_after(retire_after)
    };
    let run = |options: RotationPolicy, seed: u64, mode: RunMode| {
        let (store, clock, p) = (store.clone(), clock.clone(), p.clone());
        async move {
            certrotate_kube::Engine::new(store)
                .with_clock(clock)
                .with_entropy(SeededEntropy::new(seed))
                .run(&p, &options, mode)
                .await
                .unwrap()
        }
    };
    run(schedule(2 * DAY), 1, RunMode::Once).await;
    // The CA has 80 days left: the schedule rotates it, the whole way.
    clock.advance(285 * DAY);
    let done = run(schedule(2 * DAY), 2, until_done()).await;
    assert_eq!(done.phase, Phase::Stable);
    assert!(
        done.events.iter().any(|e| matches!(
            e,
            Event::Planned {
                summary: Summary::Prepared {
                    trigger: RotationTrigger::Schedule { .. },
                    ..
                },
                ..
            }
        )),
        "{:?}",
        done.events
    );
    assert_eq!(bundle_sizes(&*store).await, [2, 2, 2], "the old CA carried");
    let observed = observe(&*store, &p).await.unwrap();
    assert_eq!(
        observed.secrets[&secret("envoy-gateway-ca")].annotations["certrotate.io/retire-after"],
        "2days",
        "persisted with the rotation"
    );
    // A 90-day window covers the old CA (80 days left): carried, not expiring.
    let report = check(&p, &observed, clock.now(), 90 * DAY).unwrap();
    assert!(report.all_trusted(), "{report:#?}");
    assert!(
        report.expiring.is_empty(),
        "nothing a leaf needs expires: {:?}",
        report.expiring
    );
    assert_eq!(report.carried.len(), 3, "{:?}", report.carried);

    // `status` says when, read-only.
    let ended = state(&*store).await.since.unwrap();
    let status =
        certrotate_core::plan::status(&p, &observed, &RotationPolicy::default(), clock.now())
            .unwrap();
    assert_eq!(
        status.next_run,
        NextRun::Retire {
            at: ended + time::Duration::days(2)
        }
    );

    // A later run passes the default (7 days): the rotation keeps its own 2 days.
    clock.advance(2 * DAY - HOUR);
    let early = run(schedule(Duration::from_secs(7 * 86400)), 3, RunMode::Once).await;
    assert_eq!(entered_retire(&early), None, "{:?}", early.events);
    assert_eq!(early.writes, 0, "{:?}", early.events);
    clock.advance(2 * HOUR);
    let report = run(schedule(Duration::from_secs(7 * 86400)), 4, RunMode::Once).await;
    assert!(
        matches!(
            entered_retire(&report),
            Some(Summary::Retire {
                reason: RetireReason::Scheduled { .. },
                ..
            })
        ),
        "{:?}",
        report.events
    );
    // Staged: the bundles lost the old CA, and the phase converges before it ends.
    assert_eq!(report.phase, Phase::Retire);
    assert_eq!(bundle_sizes(&*store).await, [1, 1, 1]);
    assert_trusted(
        &observe(&*store, &p).await.unwrap(),
        clock.now(),
        "retiring",
    );
    let done = run(schedule(2 * DAY), 5, until_done()).await;
    assert_eq!(done.phase, Phase::Stable);
    assert!(
        matches!(done.summary, Summary::Done { retired: true, .. }),
        "{:?}",
        done.summary
    );
    clock.advance(DAY);
    let quiet = run(schedule(2 * DAY), 6, RunMode::Once).await;
    assert_eq!(quiet.writes, 0, "{:?}", quiet.events);
}

/// A carried CA close to its end is retired as soon as the rotation allows (one
/// convergence interval after it ended), whatever `retire_after` says: never later than
/// `RETIRE_BEFORE_EXPIRY` (30 days) before it ends.
pub async fn a_carried_ca_near_its_end_is_retired_early<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    let mut p = profile();
    p.ca.validity = 365 * DAY;
    let schedule = RotationPolicy::default()
        .with_trigger(Trigger::Schedule {
            rotate_ca_before: 20 * DAY,
        })
        .with_convergence_interval(Duration::from_secs(300));
    let run = |seed: u64, mode: RunMode| {
        let (store, clock, p, o) = (store.clone(), clock.clone(), p.clone(), schedule.clone());
        async move {
            certrotate_kube::Engine::new(store)
                .with_clock(clock)
                .with_entropy(SeededEntropy::new(seed))
                .run(&p, &o, mode)
                .await
                .unwrap()
        }
    };
    run(1, RunMode::Once).await;
    clock.advance(350 * DAY);
    run(2, until_done()).await;
    assert_eq!(bundle_sizes(&*store).await, [2, 2, 2]);
    clock.advance(Duration::from_secs(301));
    let report = run(3, RunMode::Once).await;
    assert!(entered_retire(&report).is_some(), "{:?}", report.events);
}

/// `drop_old_ca` on a stable install that carries the previous CA retires it now,
/// staged; with nothing carried, it says so instead of doing nothing silently.
pub async fn drop_old_ca_on_a_stable_install_retires_now<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    assert_eq!(bundle_sizes(&*store).await, [2, 2, 2]);
    clock.advance(HOUR);

    let drop = options(false).with_drop_old_ca(true);
    let report = once(&store, drop.clone(), &clock, 3).await;
    assert!(
        matches!(
            entered_retire(&report),
            Some(Summary::Retire {
                reason: RetireReason::Asked,
                ..
            })
        ),
        "{:?}",
        report.events
    );
    assert_eq!(report.phase, Phase::Retire, "staged: it converges first");
    assert_eq!(bundle_sizes(&*store).await, [1, 1, 1]);
    let done = engine(store.clone(), &clock, 4)
        .run(&profile(), &drop, until_done())
        .await
        .unwrap();
    assert_eq!(done.phase, Phase::Stable);
    assert_trusted(
        &observe(&*store, &profile()).await.unwrap(),
        clock.now(),
        "after retiring",
    );

    clock.advance(HOUR);
    let nothing = once(&store, drop, &clock, 5).await;
    assert_eq!(nothing.writes, 0);
    assert!(
        nothing.events.iter().any(|e| matches!(
            e,
            Event::Note(n) if n.reason == NoteReason::NothingToRetire
        )),
        "{:?}",
        nothing.events
    );
}

/// A renewal whose new leaves still end within the window, because the CA ends there,
/// says so in the same run (the CLI's exit 5), not only on the next day's run.
pub async fn a_renewal_the_ca_caps_says_so_at_once<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    let mut p = profile();
    p.ca.validity = 60 * DAY;
    p.leaf.validity = 45 * DAY;
    let renew = RotationPolicy::default().with_renew_before(Some(30 * DAY));
    let run = |seed: u64| {
        let (store, clock, p, o) = (store.clone(), clock.clone(), p.clone(), renew.clone());
        async move {
            certrotate_kube::Engine::new(store)
                .with_clock(clock)
                .with_entropy(SeededEntropy::new(seed))
                .run(&p, &o, RunMode::Once)
                .await
                .unwrap()
        }
    };
    run(1).await;
    // Leaves end in 10 days, the CA in 25: renewed, up to the CA's end, still inside.
    clock.advance(35 * DAY);
    let report = run(2).await;
    assert!(
        matches!(
            report.summary,
            Summary::CaExpiresFirst {
                renewed: 3,
                limited: 3,
                ..
            }
        ),
        "{:?}",
        report.summary
    );
    assert!(
        report.writes >= 3,
        "the leaves were renewed: {:?}",
        report.events
    );
}
