//! Rotation policy: the persisted convergence interval, a phase-since in the future, and
//! three years of a daily scheduled rotation.

use super::*;
use certrotate_core::Trigger;

/// The interval a rotation started with is persisted and every wait of it, and the
/// too-soon guard after it, uses that one, whatever a later run passes; too soon is a
/// wait with its time, which `UntilDone` waits out and JSON carries.
pub async fn convergence_interval_is_persisted<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let five = Duration::from_secs(5);
    let fast = options(true).with_convergence_interval(five);
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &fast, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Trust);
    assert_eq!(state(&*store).await.interval, Some(five));
    // Later runs with the default 5 min: the rotation's own 5 s decide.
    let default = RotationPolicy::default();
    clock.advance(Duration::from_secs(6));
    let report = engine(store.clone(), &clock, 3)
        .run(&profile(), &default, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Leaves);
    assert_eq!(report.requeue_after, Some(five));
    clock.advance(Duration::from_secs(6));
    let report = engine(store.clone(), &clock, 4)
        .run(&profile(), &default, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Stable);
    let ended = clock.now();
    // A new request right after: too soon by the rotation's 5 s, not the default 5 min.
    clock.advance(Duration::from_secs(1));
    let request = request_now(&*store).await;
    let report = engine(store.clone(), &clock, 5)
        .run(&profile(), &request, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(
        report.next,
        Next::WaitUntil {
            at: ended + five,
            reason: WaitReason::TooSoon { ended }
        }
    );
    assert_eq!(report.requeue_after, Some(Duration::from_secs(4)));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["next"]["kind"], "wait-until");
    assert_eq!(
        json["next"]["at"],
        certrotate_core::rfc3339(ended + five).as_str()
    );
    // --wait waits it out, then rotates once.
    let before = ca_pem(&observe(&store, &profile()).await.unwrap());
    let report = engine(store.clone(), &clock, 6)
        .run(&profile(), &request, until_done())
        .await
        .unwrap();
    assert_eq!(report.next, Next::Done);
    assert!(clock.now() >= ended + five);
    assert_ne!(ca_pem(&observe(&store, &profile()).await.unwrap()), before);
}

/// A `phase-since` later than now (a skewed clock) is an error naming the Secret and both
/// times, not a silent stall; `force` proceeds.
pub async fn future_phase_since_is_named_and_force_proceeds<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    // A run whose clock is two hours ahead enters trust.
    let ahead = Arc::new(ManualClock::new(clock.now() + 2 * HOUR));
    let report = engine(store.clone(), &ahead, 2)
        .run(&profile(), &options(true), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Trust);
    let err = engine(store.clone(), &clock, 3)
        .run(&profile(), &options(true), RunMode::Once)
        .await
        .unwrap_err();
    let text = chain(&err);
    assert!(
        text.contains("secret envoy-gateway-system/envoy-gateway-ca")
            && text.contains(&certrotate_core::rfc3339(clock.now() + 2 * HOUR))
            && text.contains("later than now"),
        "{text}"
    );
    assert!(!err.is_transient());
    let forced = options(true).with_force(true);
    let report = engine(store.clone(), &clock, 4)
        .run(&profile(), &forced, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Leaves);
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "forced past a future phase-since",
    );
}

/// Three simulated years of a daily `rotate --rotate-ca-before 90d` (a CronJob, one run a
/// day): no CA or leaf ever expires, workloads restart only on runs that change what they
/// mount, and the number of rotations is what the lifetimes say.
/// Returns how many runs restarted a workload.
pub async fn three_years_of_daily_scheduled_rotation<S: Store>(store: S) -> usize {
    const DAY: Duration = Duration::from_secs(86400);
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    let mut p = profile();
    p.ca.validity = 365 * DAY;
    p.leaf.validity = 120 * DAY;
    let before = 90 * DAY;
    let daily = RotationPolicy::default()
        .with_trigger(Trigger::Schedule {
            rotate_ca_before: before,
        })
        .with_renew_before(Some(before));
    let days = 3 * 365;
    let mut cas = vec![];
    let mut restarts_without_change = 0;
    let mut restart_runs = 0;
    for day in 0..days {
        let report = Engine::new(store.clone())
            .with_clock(clock.clone())
            .with_entropy(SeededEntropy::new(day))
            .run(&p.clone(), &daily, RunMode::Once)
            .await
            .unwrap();
        let changed = report.events.iter().any(|e| match e {
            Event::SecretCreated { secret, .. } | Event::SecretUpdated { secret, .. } => {
                secret.name != "envoy-oidc-hmac"
            }
            _ => false,
        });
        let restarted = report
            .events
            .iter()
            .any(|e| matches!(e, Event::WorkloadRestarted { .. }));
        if restarted && !changed {
            restarts_without_change += 1;
        }
        restart_runs += usize::from(restarted);
        let observed = observe(&store, &p).await.unwrap();
        let now = clock.now();
        let check = check(&p, &observed, now, Duration::ZERO).unwrap();
        assert!(check.all_trusted(), "day {day}: {:?}", check.problems);
        assert!(check.expiring.is_empty(), "day {day}: {:?}", check.expiring);
        let current = state(&*store).await.current.unwrap();
        if cas.last() != Some(&current) {
            cas.push(current);
        }
        clock.advance(DAY);
    }
    assert_eq!(restarts_without_change, 0);
    // A CA lives 365 days and is replaced 90 days before it ends.
    let expected = (days - 1) / (365 - 90);
    assert_eq!(cas.len() - 1, expected as usize, "rotations in {days} days");
    restart_runs
}
