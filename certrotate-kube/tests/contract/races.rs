//! Concurrent writers: conflicts re-read and re-plan, racing rotations and racing requests
//! rotate once, and one request survives many reconciles and a restart.

use super::*;
use certrotate_core::Trigger;

pub async fn conflicts_re_read_and_re_plan<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let faulty =
        FaultyStore::new(store.clone()).conflict_matching(format!("update secret {NS}/envoy"), 2);
    let report = engine(faulty, &clock, 2)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    let conflicts = report
        .events
        .iter()
        .filter(|e| matches!(e, Event::Conflict { .. }))
        .count();
    assert_eq!(conflicts, 2);
    assert_eq!(report.next, Next::Done);
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "after conflicts",
    );

    // Endless conflicts: a clear error, bounded.
    clock.advance(HOUR);
    let faulty = FaultyStore::new(store.clone())
        .conflict_matching(format!("update secret {NS}/envoy"), 1000);
    let err = engine(faulty, &clock, 3)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("gave up after 6 conflicting writes"),
        "{err}"
    );
    assert!(err.to_string().contains("envoy"), "{err}");
}

/// Two rotations race on one store: every write carries its version, so exactly one wins
/// each Secret, the other re-reads and re-plans, and both end on one new CA.
pub async fn racing_rotations_stay_consistent<S: Store + 'static>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    engine(store.clone(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    let old = ca_pem(&observe(&store, &profile()).await.unwrap());
    clock.advance(HOUR);
    // Two tasks on two worker threads: a real race, not an interleaving on one task.
    let runs: Vec<_> = [2, 3]
        .into_iter()
        .map(|seed| {
            let racer = engine(store.clone(), &clock, seed).with_max_conflicts(50);
            tokio::spawn(async move { racer.run(&profile(), &options(true), until_done()).await })
        })
        .collect();
    let mut reports = Vec::new();
    for run in runs {
        reports.push(run.await.unwrap().unwrap());
    }
    let (ra, rb) = (&reports[0], &reports[1]);
    let done = observe(&store, &profile()).await.unwrap();
    assert_trusted(&done, clock.now(), "after racing rotations");
    let ca = ca_pem(&done);
    assert_ne!(ca, old, "rotated");
    for c in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
        assert!(
            leaf_issued_by(&done, c, &ca, clock.now()),
            "{c} on the one new CA"
        );
        assert_eq!(
            count_certs(&done.secrets[&secret(c)].data[KEY_TRUST]),
            2,
            "{c}"
        );
    }
    let conflicts = ra
        .events
        .iter()
        .chain(&rb.events)
        .filter(|e| matches!(e, Event::Conflict { .. }))
        .count();
    println!("racing rotations: {conflicts} conflicts resolved by re-planning");
}

/// Twenty racing pairs of `rotate --overwrite --wait`: each pair rotates exactly once, and
/// the CA before it is the one every bundle carries.
pub async fn racing_requests_rotate_once<S: Store>(make: impl Fn() -> S) {
    for pair in 0..20u64 {
        let store = Arc::new(make());
        let clock = Arc::new(ManualClock::new(T0));
        install(&store, &clock, 1).await;
        let original = state(&*store).await.current.unwrap();
        // Each run resolves --overwrite against what it reads at its start, and both start
        // before either writes (racing runs). Resolved inside the spawned tasks, a loaded
        // executor could run the first task to its end before the second read anything:
        // two runs one after the other, which rotate twice, as they should.
        let requests = [request_now(&*store).await, request_now(&*store).await];
        let runs: Vec<_> = [2, 3]
            .into_iter()
            .zip(requests)
            .map(|(seed, request)| {
                let store = store.clone();
                let clock = clock.clone();
                tokio::spawn(async move {
                    engine(store, &clock, seed + 10 * pair)
                        .with_max_conflicts(50)
                        .run(&profile(), &request, until_done())
                        .await
                })
            })
            .collect();
        for run in runs {
            run.await.unwrap().unwrap();
        }
        let done = observe(&store, &profile()).await.unwrap();
        let st = state(&*store).await;
        assert_eq!(st.phase, Phase::Stable, "pair {pair}");
        assert_eq!(
            st.previous,
            Some(original),
            "pair {pair}: rotated exactly once"
        );
        assert_ne!(st.current, Some(original), "pair {pair}: rotated");
        assert_trusted(&done, clock.now(), "after racing requests");
        for c in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
            let bundle = &done.secrets[&secret(c)].data[KEY_TRUST];
            let carried: Vec<_> = inspect_pem(bundle, &Origin::new("t"), clock.now())
                .unwrap()
                .into_iter()
                .map(|s| s.fingerprint)
                .collect();
            assert_eq!(
                carried,
                [st.current.unwrap(), original],
                "pair {pair}: {c} carries the new CA and the original"
            );
        }
    }
}

/// One request (an id, as an operator keeps it), many reconciles and a restart of the
/// operator: exactly one rotation.
pub async fn one_request_many_reconciles_and_a_restart_rotate_once<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let original = state(&*store).await.current.unwrap();
    let request = options(false).with_trigger(Trigger::Once("generation-7".into()));
    let mut rotations = std::collections::BTreeSet::new();
    for restart in 0..2u64 {
        // A fresh engine: the operator restarted and only has its request.
        let r = engine(store.clone(), &clock, 20 + restart);
        for _ in 0..12 {
            let report = r.reconcile(&profile(), &request).await.unwrap();
            rotations.insert(state(&*store).await.current.unwrap());
            clock.advance(
                report
                    .requeue_after
                    .unwrap_or(HOUR)
                    .max(Duration::from_secs(1)),
            );
        }
    }
    let st = state(&*store).await;
    assert_eq!(st.request.as_deref(), Some("generation-7"));
    assert_eq!(st.previous, Some(original));
    assert_eq!(
        rotations.len(),
        2,
        "the original CA and one new one: {rotations:?}"
    );
    // A new id rotates again, once.
    let next = options(false).with_trigger(Trigger::Once("generation-8".into()));
    let r = engine(store.clone(), &clock, 30);
    for _ in 0..8 {
        let report = r.reconcile(&profile(), &next).await.unwrap();
        rotations.insert(state(&*store).await.current.unwrap());
        clock.advance(
            report
                .requeue_after
                .unwrap_or(HOUR)
                .max(Duration::from_secs(1)),
        );
    }
    assert_eq!(rotations.len(), 3);
}
