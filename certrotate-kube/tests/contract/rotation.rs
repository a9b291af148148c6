//! The engine on a store: install, the staged rotation, one phase per run, a crash at every
//! write position, HMAC keys, retiring the old CA, and upstream's single-step order.

use super::*;

pub async fn install_then_rerun_writes_nothing<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    let report = engine(store.clone(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(
        report.writes, 5,
        "CA + 3 components + HMAC: {:?}",
        report.events
    );
    let observed = observe(&store, &profile()).await.unwrap();
    assert_trusted(&observed, T0, "after install");

    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.writes, 0, "{:?}", report.events);
    assert_eq!(report.summary, Summary::UpToDate);
    assert_eq!(report.summary.to_string(), "up to date");
    assert_eq!(
        observe(&store, &profile()).await.unwrap().secrets,
        observed.secrets
    );
}

pub async fn staged_rotation_keeps_trust_and_ends_with_two<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    engine(store.clone(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    let before = observe(&store, &profile()).await.unwrap();
    let old_ca = ca_pem(&before);
    let hmac_before = before.secrets[&secret("envoy-oidc-hmac")].data.clone();

    clock.advance(HOUR);
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    assert_eq!(report.next, Next::Done);
    let phases: Vec<Phase> = report
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Planned { to, from, .. } if to != from => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(
        phases,
        [Phase::Prepared, Phase::Trust, Phase::Leaves, Phase::Stable]
    );

    let now = clock.now();
    let after = observe(&store, &profile()).await.unwrap();
    let new_ca = ca_pem(&after);
    assert_ne!(new_ca, old_ca);
    for c in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
        let trust = &after.secrets[&secret(c)].data[KEY_TRUST];
        assert_eq!(count_certs(trust), 2, "{c}: bundle of two");
        assert!(leaf_issued_by(&after, c, &new_ca, now), "{c}: new leaf");
        // The old leaf is still trusted by the new bundle.
        let old_leaf = &before.secrets[&secret(c)].data[KEY_TLS_CRT];
        let o = Origin::new("t");
        assert!(
            verify_chain(old_leaf, &o, trust, &o, now)
                .unwrap()
                .is_trusted(),
            "{c}: old leaf trusted"
        );
    }
    assert_trusted(&after, now, "after rotation");
    assert_eq!(
        after.secrets[&secret("envoy-oidc-hmac")].data,
        hmac_before,
        "HMAC kept"
    );

    // A second rotation: still two, the newest two.
    clock.advance(HOUR);
    engine(store.clone(), &clock, 3)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    let third = observe(&store, &profile()).await.unwrap();
    let newest = ca_pem(&third);
    let trust = &third.secrets[&secret("envoy")].data[KEY_TRUST];
    assert_eq!(count_certs(trust), 2);
    assert!(trust.starts_with(&newest));
    assert!(String::from_utf8_lossy(trust).contains(String::from_utf8_lossy(&new_ca).trim()));
    assert_trusted(&third, clock.now(), "after the second rotation");
}

pub async fn one_phase_per_run<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let mut phases = Vec::new();
    for i in 0..8 {
        let report = engine(store.clone(), &clock, 10 + i)
            .run(&profile(), &options(true), RunMode::Once)
            .await
            .unwrap();
        phases.push((report.phase, report.writes > 0));
        assert_trusted(
            &observe(&store, &profile()).await.unwrap(),
            clock.now(),
            "between runs",
        );
        if report.phase == Phase::Stable && i > 0 {
            break;
        }
        // Too early: the next run only waits.
        let early = engine(store.clone(), &clock, 99)
            .run(&profile(), &options(true), RunMode::Once)
            .await
            .unwrap();
        assert_eq!(
            early.writes, 0,
            "a run before the interval writes nothing: {:?}",
            early.events
        );
        clock.advance(Duration::from_secs(301));
    }
    assert_eq!(
        phases,
        [
            (Phase::Trust, true),
            (Phase::Leaves, true),
            (Phase::Stable, true)
        ],
        "prepare+trust, leaves, end"
    );
    // Right after the rotation ended, a new one is too soon.
    let report = engine(store.clone(), &clock, 50)
        .run(&profile(), &options(true), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.writes, 0);
    assert!(
        report.summary.to_string().contains("too soon"),
        "{}",
        report.summary
    );
    // Too soon is a wait with a time, not "done".
    assert!(
        matches!(
            report.next,
            Next::WaitUntil {
                reason: WaitReason::TooSoon { .. },
                ..
            }
        ),
        "{:?}",
        report.next
    );
    assert_eq!(report.requeue_after, Some(Duration::from_secs(300)));
    let mut forced = options(true);
    forced.skip_too_soon = true;
    forced.accept_clock_skew = true;
    let report = engine(store.clone(), &clock, 51)
        .run(&profile(), &forced, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Trust);
}

/// Stops the rotation at every write position in turn; after each stop every leaf is
/// trusted by every peer, and a rerun converges on the CA minted before the stop.
pub async fn crash_at_every_write<S: Store>(make: impl Fn() -> S) {
    // Count the writes of a whole rotation.
    let total = {
        let store = Arc::new(make());
        let clock = Arc::new(ManualClock::new(T0));
        install(&store, &clock, 1).await;
        engine(store.clone(), &clock, 2)
            .run(&profile(), &options(true), until_done())
            .await
            .unwrap()
            .writes
    };
    assert!(
        total >= 10,
        "a rotation writes CA, bundles, leaves, CA: {total}"
    );
    for n in 1..=total as u64 {
        let store = Arc::new(make());
        let clock = Arc::new(ManualClock::new(T0));
        install(&store, &clock, 1).await;
        let faulty = FaultyStore::new(store.clone()).crash_at_write(n);
        let err = engine(faulty, &clock, 2)
            .run(&profile(), &options(true), until_done())
            .await;
        assert!(err.is_err(), "write {n} of {total} must fail");
        let crashed = observe(&store, &profile()).await.unwrap();
        assert_trusted(
            &crashed,
            clock.now(),
            &format!("after a crash at write {n}"),
        );
        let next_at_crash = crashed.secrets[&secret("envoy-gateway-ca")]
            .data
            .get("next-ca.crt")
            .cloned();

        // The rerun (another process: another seed) finishes the job.
        let report = engine(store.clone(), &clock, 3)
            .run(&profile(), &options(true), until_done())
            .await
            .unwrap();
        assert_eq!(report.next, Next::Done, "rerun after a crash at write {n}");
        let done = observe(&store, &profile()).await.unwrap();
        assert_trusted(
            &done,
            clock.now(),
            &format!("after the rerun of a crash at write {n}"),
        );
        let ca = ca_pem(&done);
        if let Some(next) = next_at_crash {
            assert_eq!(
                ca, next,
                "crash at write {n}: the rerun kept the CA minted before it"
            );
        }
        for c in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
            assert!(
                leaf_issued_by(&done, c, &ca, clock.now()),
                "crash at {n}: {c} on one new CA"
            );
        }
    }
    println!("crash positions survived: {total} of {total} (trust intact, rerun converged)");
}

pub async fn hmac_rotates_only_when_asked<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    engine(store.clone(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    let h = secret("envoy-oidc-hmac");
    let before = store.read_secret(&h).await.unwrap().unwrap().data;
    clock.advance(HOUR);
    let mut o = options(true);
    o.rotate_hmac = true;
    engine(store.clone(), &clock, 2)
        .run(&profile(), &o.clone(), until_done())
        .await
        .unwrap();
    let after = store.read_secret(&h).await.unwrap().unwrap().data;
    assert_ne!(before, after);
    assert_eq!(after["hmac-secret"].len(), 32);
}

pub async fn drop_old_ca_retires_it<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let mut o = options(true);
    o.drop_old_ca = true;
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &o, until_done())
        .await
        .unwrap();
    assert!(report.events.iter().any(|e| matches!(
        e,
        Event::Planned {
            to: Phase::Retire,
            ..
        }
    )));
    let after = observe(&store, &profile()).await.unwrap();
    for c in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
        assert_eq!(
            count_certs(&after.secrets[&secret(c)].data[KEY_TRUST]),
            1,
            "{c}"
        );
    }
    assert_trusted(&after, clock.now(), "after retiring the old CA");
}

/// Upstream's single-step strategy breaks the invariant mid-rotation: after the first
/// component write, its new leaf is not trusted by peers still holding the old ca.crt.
pub async fn single_step_breaks_trust_mid_rotation<S: Store>(make: impl Fn() -> S) {
    let store = Arc::new(make());
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let mut o = options(true);
    o.strategy = Strategy::SingleStep;
    // Write 1 persists the next CA; write 2 is the first component; stop before write 3.
    let faulty = FaultyStore::new(store.clone()).crash_at_write(3);
    assert!(
        engine(faulty, &clock, 2)
            .run(&profile(), &o.clone(), until_done())
            .await
            .is_err()
    );
    let mid = observe(&store, &profile()).await.unwrap();
    let report = check(&profile(), &mid, clock.now(), Duration::ZERO).unwrap();
    let untrusted: Vec<_> = report.untrusted().collect();
    assert!(
        !untrusted.is_empty(),
        "single-step must show the failure staged avoids"
    );
    assert!(
        untrusted.iter().all(|p| p.leaf.ends_with("/envoy-gateway")),
        "{untrusted:#?}"
    );
    // And it does finish.
    let done = engine(store.clone(), &clock, 3)
        .run(&profile(), &o, until_done())
        .await
        .unwrap();
    assert_eq!(done.phase, Phase::Stable);
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "single-step end",
    );
}
