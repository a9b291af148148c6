//! The contract every store must keep, and the protocol guarantees the engine must keep on
//! every store. Instantiated once per backend by `contract_suite!`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use certrotate_core::plan::wire::{KEY_CA_CRT, KEY_TLS_CRT, KEY_TLS_KEY, KEY_TRUST};
use certrotate_core::plan::{
    Next, ObjectRef, Observed, ObservedSecret, Phase, ProfileObjects, RotationRequest, Strategy,
    Summary, WaitReason,
};
use certrotate_core::{
    Origin, PlanOptions, Profile, SeededEntropy, check, inspect_pem, verify_chain,
};
use certrotate_kube::{
    Clock, Event, FaultyStore, ManualClock, NewSecret, Rotator, RunMode, SecretUpdate, Store,
    StoreError, observe,
};
use time::OffsetDateTime;
use time::macros::datetime;

pub mod alarms;
pub mod carried;
pub mod drift;
pub mod trust_gate;

pub const NS: &str = "envoy-gateway-system";
pub const T0: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);
pub const HOUR: Duration = Duration::from_secs(3600);

pub fn profile() -> Profile {
    Profile::envoy_gateway(NS)
}

pub fn secret(name: &str) -> ObjectRef {
    ObjectRef::new(NS, name)
}

pub fn options(overwrite: bool) -> PlanOptions {
    let mut o = PlanOptions::default();
    o.overwrite = overwrite;
    o.convergence_interval = Duration::from_secs(300);
    o
}

pub fn rotator<S: Store>(
    store: S,
    options: PlanOptions,
    clock: &Arc<ManualClock>,
    seed: u64,
) -> Rotator<S, Arc<ManualClock>> {
    Rotator::new(store, profile(), options)
        .with_clock(clock.clone())
        .with_entropy(SeededEntropy::new(seed))
}

/// The first install (one run, no overwrite), then an hour passes.
pub async fn install<S: Store + Clone>(store: &S, clock: &Arc<ManualClock>, seed: u64) {
    rotator(store.clone(), options(false), clock, seed)
        .run(RunMode::Once)
        .await
        .unwrap();
    clock.advance(HOUR);
}

pub fn until_done() -> RunMode {
    RunMode::UntilDone {
        timeout: Duration::from_secs(24 * 3600),
    }
}

/// An error and its causes, joined by ": " as `anyhow`'s `{:#}` prints them.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Every leaf trusted by every peer's ca.crt and webhook caBundle, at `now`.
pub fn assert_trusted(observed: &Observed, now: OffsetDateTime, context: &str) {
    let report = check(&profile(), observed, now, Duration::ZERO).unwrap();
    let bad: Vec<String> = report
        .untrusted()
        .map(|p| {
            format!(
                "{} not trusted by {}: {:?}",
                p.leaf, p.trusted_by, p.verdict
            )
        })
        .chain(report.problems.iter().cloned())
        .collect();
    assert!(bad.is_empty(), "{context}: {bad:#?}");
}

pub fn count_certs(pem: &[u8]) -> usize {
    inspect_pem(pem, &Origin::new("t"), T0).unwrap().len()
}

pub fn ca_pem(observed: &Observed) -> Vec<u8> {
    observed.secrets[&secret("envoy-gateway-ca")].data[KEY_CA_CRT].clone()
}

pub fn leaf_issued_by(
    observed: &Observed,
    component: &str,
    ca: &[u8],
    now: OffsetDateTime,
) -> bool {
    let leaf = &observed.secrets[&secret(component)].data[KEY_TLS_CRT];
    let o = Origin::new("t");
    verify_chain(leaf, &o, ca, &o, now).unwrap().is_trusted()
}

// ---- the store contract ----------------------------------------------------------------

pub async fn store_crud<S: Store>(store: S) {
    let s = secret("contract");
    assert!(store.read_secret(&s).await.unwrap().is_none());
    let mut new = NewSecret::default();
    new.secret_type = "Opaque".into();
    new.data = BTreeMap::from([("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]);
    new.labels = BTreeMap::from([("app".into(), "x".into())]);
    new.annotations = BTreeMap::from([("keep".into(), "me".into())]);
    let v1 = store.create_secret(&s, &new).await.unwrap();
    assert!(matches!(
        store.create_secret(&s, &new).await,
        Err(StoreError::AlreadyExists)
    ));

    let read = store.read_secret(&s).await.unwrap().unwrap();
    assert_eq!(read.version, v1);
    assert_eq!(read.data["a"], b"1");
    assert_eq!(read.secret_type, "Opaque");
    assert_eq!(read.labels["app"], "x");

    let mut update = SecretUpdate::default();
    update.data = BTreeMap::from([
        ("a".into(), Some(b"10".to_vec())),
        ("b".into(), None),
        ("c".into(), Some(b"3".to_vec())),
    ]);
    update.annotations = BTreeMap::from([("new".into(), Some("yes".into()))]);
    let v2 = store.update_secret(&s, &v1, &update).await.unwrap();
    assert_ne!(v1, v2);
    let read = store.read_secret(&s).await.unwrap().unwrap();
    assert_eq!(read.version, v2);
    assert_eq!(
        read.data.keys().collect::<Vec<_>>(),
        ["a", "c"],
        "merge semantics"
    );
    assert_eq!(read.data["a"], b"10");
    assert_eq!(read.labels["app"], "x", "labels kept");
    assert_eq!(read.annotations["keep"], "me", "annotations kept");
    assert_eq!(read.annotations["new"], "yes");

    // A stale version is a conflict and changes nothing.
    assert!(matches!(
        store.update_secret(&s, &v1, &update).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.read_secret(&s).await.unwrap().unwrap().version, v2);
    assert!(matches!(
        store.update_secret(&secret("absent"), "1", &update).await,
        Err(StoreError::NotFound)
    ));
}

// ---- the engine on the store ------------------------------------------------------------

pub async fn install_then_rerun_writes_nothing<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    let report = rotator(store.clone(), options(false), &clock, 1)
        .run(RunMode::Once)
        .await
        .unwrap();
    assert_eq!(
        report.writes, 5,
        "CA + 3 components + HMAC: {:?}",
        report.events
    );
    let observed = observe(&store, &profile()).await.unwrap();
    assert_trusted(&observed, T0, "after install");

    let report = rotator(store.clone(), options(false), &clock, 2)
        .run(RunMode::Once)
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
    rotator(store.clone(), options(false), &clock, 1)
        .run(RunMode::Once)
        .await
        .unwrap();
    let before = observe(&store, &profile()).await.unwrap();
    let old_ca = ca_pem(&before);
    let hmac_before = before.secrets[&secret("envoy-oidc-hmac")].data.clone();

    clock.advance(HOUR);
    let report = rotator(store.clone(), options(true), &clock, 2)
        .run(until_done())
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
    rotator(store.clone(), options(true), &clock, 3)
        .run(until_done())
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
        let report = rotator(store.clone(), options(true), &clock, 10 + i)
            .run(RunMode::Once)
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
        let early = rotator(store.clone(), options(true), &clock, 99)
            .run(RunMode::Once)
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
    let report = rotator(store.clone(), options(true), &clock, 50)
        .run(RunMode::Once)
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
    forced.force = true;
    let report = rotator(store.clone(), forced, &clock, 51)
        .run(RunMode::Once)
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
        rotator(store.clone(), options(true), &clock, 2)
            .run(until_done())
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
        let err = rotator(faulty, options(true), &clock, 2)
            .run(until_done())
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
        let report = rotator(store.clone(), options(true), &clock, 3)
            .run(until_done())
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

pub async fn conflicts_re_read_and_re_plan<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let faulty =
        FaultyStore::new(store.clone()).conflict_matching(format!("update secret {NS}/envoy"), 2);
    let report = rotator(faulty, options(true), &clock, 2)
        .run(until_done())
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
    let err = rotator(faulty, options(true), &clock, 3)
        .run(until_done())
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
    rotator(store.clone(), options(false), &clock, 1)
        .run(RunMode::Once)
        .await
        .unwrap();
    let old = ca_pem(&observe(&store, &profile()).await.unwrap());
    clock.advance(HOUR);
    // Two tasks on two worker threads: a real race, not an interleaving on one task.
    let runs: Vec<_> = [2, 3]
        .into_iter()
        .map(|seed| {
            let r = rotator(store.clone(), options(true), &clock, seed).with_max_conflicts(50);
            tokio::spawn(async move { r.run(until_done()).await })
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

pub async fn other_labels_and_annotations_survive<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    rotator(store.clone(), options(false), &clock, 1)
        .run(RunMode::Once)
        .await
        .unwrap();
    let s = secret("envoy");
    let current = store.read_secret(&s).await.unwrap().unwrap();
    let mut update = SecretUpdate::default();
    update.labels = BTreeMap::from([("team".into(), "edge".into())]);
    update.annotations = BTreeMap::from([("owner".into(), Some("alice".into()))]);
    update.data = BTreeMap::from([("extra".into(), Some(b"keep".to_vec()))]);
    store
        .update_secret(&s, &current.version, &update)
        .await
        .unwrap();
    clock.advance(HOUR);
    rotator(store.clone(), options(true), &clock, 2)
        .run(until_done())
        .await
        .unwrap();
    let after = store.read_secret(&s).await.unwrap().unwrap();
    assert_eq!(after.labels["team"], "edge");
    assert_eq!(after.labels["control-plane"], "envoy-gateway");
    assert_eq!(after.annotations["owner"], "alice");
    assert_eq!(after.data["extra"], b"keep");
}

/// What upstream's certgen leaves: the component Secrets of one CA valid for `validity`
/// (certgen's is 5 years), each `ca.crt` that CA alone, and no CA Secret (certgen keeps no
/// CA key anywhere).
pub async fn certgen_install<S: Store>(store: &S, validity: Duration) -> certrotate_core::Ca {
    let mut entropy = SeededEntropy::new(77);
    let params = certrotate_core::CaParams::new("envoy-gateway").with_validity(validity);
    let old = certrotate_core::Ca::generate(&params, T0, &mut entropy).unwrap();
    let p = profile();
    for c in &p.components {
        let leaf = old
            .issue_leaf(&p.leaf_params(c).unwrap(), T0, &mut entropy)
            .unwrap();
        let mut new = NewSecret::default();
        new.secret_type = "kubernetes.io/tls".into();
        new.data = BTreeMap::from([
            (KEY_CA_CRT.into(), old.cert_pem().as_bytes().to_vec()),
            (KEY_TLS_CRT.into(), leaf.cert_pem.into_bytes()),
            (
                KEY_TLS_KEY.into(),
                leaf.key_pem.expose_secret().as_bytes().to_vec(),
            ),
        ]);
        store.create_secret(&secret(&c.secret), &new).await.unwrap();
    }
    old
}

pub async fn adoption_of_a_certgen_install<S: Store>(store: S) {
    let store = Arc::new(store);
    // What certgen made: component Secrets, no CA key anywhere.
    let _old = certgen_install(&*store, certrotate_core::DAYS_5Y).await;
    let clock = Arc::new(ManualClock::new(T0));
    let report = rotator(store.clone(), options(false), &clock, 1)
        .run(RunMode::Once)
        .await
        .unwrap();
    // No TLS Secret changes without a CA; the missing HMAC Secret, which needs none, is
    // created as certgen does (issue 12, item 5).
    let written: Vec<&ObjectRef> = report
        .events
        .iter()
        .filter_map(|e| match e {
            Event::SecretCreated { secret, .. } | Event::SecretUpdated { secret, .. } => {
                Some(secret)
            }
            _ => None,
        })
        .collect();
    assert_eq!(written, [&secret("envoy-oidc-hmac")]);
    assert_eq!(report.writes, 1);
    assert!(
        report.summary.to_string().contains("not managed yet"),
        "{}",
        report.summary
    );

    let mut phases = Vec::new();
    for i in 0..6 {
        let report = rotator(store.clone(), options(true), &clock, 5 + i)
            .run(RunMode::Once)
            .await
            .unwrap();
        phases.push(report.phase);
        assert_trusted(
            &observe(&store, &profile()).await.unwrap(),
            clock.now(),
            "adoption",
        );
        if report.phase == Phase::Stable {
            break;
        }
        clock.advance(Duration::from_secs(301));
    }
    assert_eq!(phases, [Phase::Trust, Phase::Leaves, Phase::Stable]);
}

pub async fn hmac_rotates_only_when_asked<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    rotator(store.clone(), options(false), &clock, 1)
        .run(RunMode::Once)
        .await
        .unwrap();
    let h = secret("envoy-oidc-hmac");
    let before = store.read_secret(&h).await.unwrap().unwrap().data;
    clock.advance(HOUR);
    let mut o = options(true);
    o.rotate_hmac = true;
    rotator(store.clone(), o.clone(), &clock, 2)
        .run(until_done())
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
    let report = rotator(store.clone(), o, &clock, 2)
        .run(until_done())
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
        rotator(faulty, o.clone(), &clock, 2)
            .run(until_done())
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
    let done = rotator(store.clone(), o, &clock, 3)
        .run(until_done())
        .await
        .unwrap();
    assert_eq!(done.phase, Phase::Stable);
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "single-step end",
    );
}

pub fn objects() -> ProfileObjects {
    ProfileObjects::of(&profile())
}

pub fn plain_secret(data: &[(&str, &[u8])]) -> ObservedSecret {
    ObservedSecret::new(
        "Opaque",
        data.iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect(),
        "",
    )
}

// ---- rotation policy (issue 12) ----------------------------------------------------------

/// The CA Secret's rotation state, read the library's way.
pub async fn state<S: Store>(store: &S) -> certrotate_core::plan::RotationState {
    let observed = observe(store, &profile()).await.unwrap();
    let ca = secret("envoy-gateway-ca");
    certrotate_core::plan::RotationState::from_secret(&observed.secrets[&ca], &ca).unwrap()
}

/// What `certrotate rotate --overwrite` sends: a request away from the CA of now.
pub async fn request_now<S: Store>(store: &S) -> PlanOptions {
    let observed = observe(store, &profile()).await.unwrap();
    let base = certrotate_core::plan::rotation_base(&profile(), &observed).unwrap();
    options(false).with_request(Some(RotationRequest::AwayFrom(base)))
}

/// The interval a rotation started with is persisted and every wait of it, and the
/// too-soon guard after it, uses that one, whatever a later run passes; too soon is a
/// wait with its time, which `UntilDone` waits out and JSON carries.
pub async fn convergence_interval_is_persisted<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let five = Duration::from_secs(5);
    let fast = options(true).with_convergence_interval(five);
    let report = rotator(store.clone(), fast, &clock, 2)
        .run(RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Trust);
    assert_eq!(state(&*store).await.interval, Some(five));
    // Later runs with the default 5 min: the rotation's own 5 s decide.
    let default = PlanOptions::default();
    clock.advance(Duration::from_secs(6));
    let report = rotator(store.clone(), default.clone(), &clock, 3)
        .run(RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Leaves);
    assert_eq!(report.requeue_after, Some(five));
    clock.advance(Duration::from_secs(6));
    let report = rotator(store.clone(), default.clone(), &clock, 4)
        .run(RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Stable);
    let ended = clock.now();
    // A new request right after: too soon by the rotation's 5 s, not the default 5 min.
    clock.advance(Duration::from_secs(1));
    let request = request_now(&*store).await;
    let report = rotator(store.clone(), request.clone(), &clock, 5)
        .run(RunMode::Once)
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
    let report = rotator(store.clone(), request, &clock, 6)
        .run(until_done())
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
    let report = rotator(store.clone(), options(true), &ahead, 2)
        .run(RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Trust);
    let err = rotator(store.clone(), options(true), &clock, 3)
        .run(RunMode::Once)
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
    let report = rotator(store.clone(), forced, &clock, 4)
        .run(RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Leaves);
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "forced past a future phase-since",
    );
}

/// Twenty racing pairs of `rotate --overwrite --wait`: each pair rotates exactly once, and
/// the CA before it is the one every bundle carries.
pub async fn racing_requests_rotate_once<S: Store>(make: impl Fn() -> S) {
    for pair in 0..20u64 {
        let store = Arc::new(make());
        let clock = Arc::new(ManualClock::new(T0));
        install(&store, &clock, 1).await;
        let original = state(&*store).await.current.unwrap();
        let runs: Vec<_> = [2, 3]
            .into_iter()
            .map(|seed| {
                let store = store.clone();
                let clock = clock.clone();
                tokio::spawn(async move {
                    // Each run resolves --overwrite against what it reads at its start.
                    let request = request_now(&*store).await;
                    rotator(store, request, &clock, seed + 10 * pair)
                        .with_max_conflicts(50)
                        .run(until_done())
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
/// rotator: exactly one rotation.
pub async fn one_request_many_reconciles_and_a_restart_rotate_once<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let original = state(&*store).await.current.unwrap();
    let request = options(false).with_request(Some(RotationRequest::Id("generation-7".into())));
    let mut rotations = std::collections::BTreeSet::new();
    for restart in 0..2u64 {
        // A fresh rotator: the operator restarted and only has its request.
        let r = rotator(store.clone(), request.clone(), &clock, 20 + restart);
        for _ in 0..12 {
            let report = r.reconcile().await.unwrap();
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
    let next = options(false).with_request(Some(RotationRequest::Id("generation-8".into())));
    let r = rotator(store.clone(), next, &clock, 30);
    for _ in 0..8 {
        let report = r.reconcile().await.unwrap();
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
    let daily = PlanOptions::default()
        .with_rotate_ca_before(Some(before))
        .with_renew_before(Some(before));
    let days = 3 * 365;
    let mut cas = vec![];
    let mut restarts_without_change = 0;
    let mut restart_runs = 0;
    for day in 0..days {
        let report = Rotator::new(store.clone(), p.clone(), daily.clone())
            .with_clock(clock.clone())
            .with_entropy(SeededEntropy::new(day))
            .run(RunMode::Once)
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

/// A component Secret whose `tls.key` is empty, truncated or another Secret's: a plain
/// run (no rotation asked) re-issues its leaf from the current CA; trust does not change.
pub async fn broken_keys_are_repaired_from_the_current_ca<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let before = observe(&store, &profile()).await.unwrap();
    // envoy: an empty key (the API server refuses a `kubernetes.io/tls` Secret without
    // one; `check_names_a_bad_tls_key` covers a missing key where a store allows it);
    // envoy-rate-limit: a truncated one; envoy-gateway: envoy's key.
    let foreign = before.secrets[&secret("envoy")].data["tls.key"].clone();
    let breakages: [(&str, Option<Vec<u8>>); 3] = [
        ("envoy", Some(Vec::new())),
        (
            "envoy-rate-limit",
            Some(b"-----BEGIN PRIVATE KEY-----\nMIIB".to_vec()),
        ),
        ("envoy-gateway", Some(foreign)),
    ];
    for (name, value) in breakages {
        let version = before.secrets[&secret(name)].version.clone();
        let mut update = SecretUpdate::default();
        update.data.insert("tls.key".into(), value);
        store
            .update_secret(&secret(name), &version, &update)
            .await
            .unwrap();
    }
    let broken = observe(&store, &profile()).await.unwrap();
    assert_eq!(
        check(&profile(), &broken, clock.now(), Duration::ZERO)
            .unwrap()
            .keys
            .len(),
        3
    );

    let report = rotator(store.clone(), options(false), &clock, 2)
        .run(RunMode::Once)
        .await
        .unwrap();
    let repaired = observe(&store, &profile()).await.unwrap();
    let report_check = check(&profile(), &repaired, clock.now(), Duration::ZERO).unwrap();
    assert!(report_check.all_trusted(), "{report_check:?}");
    assert_eq!(ca_pem(&repaired), ca_pem(&before), "the CA did not change");
    for c in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
        assert_eq!(
            repaired.secrets[&secret(c)].data[KEY_TRUST],
            before.secrets[&secret(c)].data[KEY_TRUST],
            "{c}: trust unchanged"
        );
        assert!(leaf_issued_by(&repaired, c, &ca_pem(&before), clock.now()));
    }
    assert_eq!(report.writes, 3, "{:?}", report.events);
}

/// A current CA that cannot be used (its key not its own or missing, not a CA, a weak
/// RSA-1024 key, expired): a plain run names the problem; a requested rotation goes away
/// from it through the same phases and ends with every leaf trusted on a new CA.
pub async fn a_requested_rotation_recovers_from_an_unusable_ca<S: Store>(make: impl Fn() -> S) {
    let weak = openssl_weak_ca();
    for breakage in [
        "key of another certificate",
        "key missing",
        "not a CA",
        "weak RSA-1024",
        "expired",
    ] {
        let store = Arc::new(make());
        let clock = Arc::new(ManualClock::new(T0));
        install(&store, &clock, 1).await;
        let before = observe(&store, &profile()).await.unwrap();
        let ca = secret("envoy-gateway-ca");
        let envoy = &before.secrets[&secret("envoy")];
        let mut update = SecretUpdate::default();
        // The current CA replaced by `crt` and `key`, as a hand-made install would have it.
        let mut replace = |crt: &[u8], key: &[u8]| {
            let fingerprint = inspect_pem(crt, &Origin::new("t"), T0).unwrap()[0]
                .fingerprint
                .to_string();
            update.data.insert("ca.crt".into(), Some(crt.to_vec()));
            update.data.insert("ca.key".into(), Some(key.to_vec()));
            update
                .annotations
                .insert("certrotate.io/current-ca".into(), Some(fingerprint));
        };
        match breakage {
            "key missing" => {
                update.data.insert("ca.key".into(), None);
            }
            "key of another certificate" => {
                update
                    .data
                    .insert("ca.key".into(), Some(envoy.data["tls.key"].clone()));
            }
            "not a CA" => replace(&envoy.data["tls.crt"], &envoy.data["tls.key"]),
            "weak RSA-1024" => replace(weak.0.as_bytes(), weak.1.as_bytes()),
            _ => {}
        }
        if breakage == "expired" {
            // Nobody ran it for six years: the CA (five years) and every leaf expired.
            clock.advance(Duration::from_secs(6 * 366 * 24 * 3600));
        } else {
            let version = before.secrets[&ca].version.clone();
            store.update_secret(&ca, &version, &update).await.unwrap();
        }

        if breakage != "expired" {
            let err = rotator(store.clone(), options(false), &clock, 2)
                .run(RunMode::Once)
                .await
                .unwrap_err();
            let named = match breakage {
                "key of another certificate" => "does not match",
                "key missing" => "ca.key",
                "not a CA" => "not a CA",
                _ => "1024 bits",
            };
            assert!(
                chain(&err).contains("envoy-gateway-ca") && chain(&err).contains(named),
                "{breakage}: {}",
                chain(&err)
            );
        }

        let request = request_now(&*store).await;
        let report = rotator(store.clone(), request, &clock, 3)
            .run(until_done())
            .await
            .unwrap_or_else(|e| panic!("{breakage}: {}", chain(&e)));
        assert_eq!(report.next, Next::Done, "{breakage}");
        let after = observe(&store, &profile()).await.unwrap();
        assert_ne!(ca_pem(&after), ca_pem(&before), "{breakage}: a new CA");
        assert_trusted(&after, clock.now(), breakage);
        let st = state(&*store).await;
        assert_eq!(st.phase, Phase::Stable);
        if breakage != "key missing" && breakage != "expired" {
            assert!(
                after.secrets[&ca].data.contains_key("unusable-ca.key"),
                "{breakage}: the unusable key is kept aside"
            );
        }
        for (name, s) in &after.secrets {
            if let Some(bundle) = s.data.get(KEY_TRUST) {
                let text = String::from_utf8_lossy(bundle);
                assert!(
                    !text.contains(weak.0.lines().nth(1).unwrap()),
                    "{breakage}: {name} must not carry the weak CA"
                );
            }
        }
    }
}

/// A self-signed RSA-1024 CA made by openssl (certrotate refuses to make one): its
/// certificate and key in PEM.
fn openssl_weak_ca() -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = (dir.path().join("ca.crt"), dir.path().join("ca.key"));
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-nodes", "-days", "3650", "-subj", "/CN=weak",
        ])
        .args(["-newkey", "rsa:1024", "-sha256", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (the tests need it on PATH)");
    assert!(status.success(), "openssl req");
    (
        std::fs::read_to_string(crt).unwrap(),
        std::fs::read_to_string(key).unwrap(),
    )
}

/// Instantiates the whole contract suite for one backend; `$make` builds a fresh store.
/// With `if $run`, each test returns at once where `$run` is false (a backend that is not
/// built here, which `$run` says in one line).
#[macro_export]
macro_rules! contract_suite {
    ($name:ident, $make:expr) => {
        $crate::contract_suite!($name, $make, if true);
    };
    ($name:ident, $make:expr, if $run:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn store_crud() {
                if !$run {
                    return;
                }
                contract::store_crud($make).await;
            }
            #[tokio::test]
            async fn install_then_rerun_writes_nothing() {
                if !$run {
                    return;
                }
                contract::install_then_rerun_writes_nothing($make).await;
            }
            #[tokio::test]
            async fn staged_rotation_keeps_trust_and_ends_with_two() {
                if !$run {
                    return;
                }
                contract::staged_rotation_keeps_trust_and_ends_with_two($make).await;
            }
            #[tokio::test]
            async fn one_phase_per_run() {
                if !$run {
                    return;
                }
                contract::one_phase_per_run($make).await;
            }
            #[tokio::test]
            async fn crash_at_every_write() {
                if !$run {
                    return;
                }
                contract::crash_at_every_write(|| $make).await;
            }
            #[tokio::test]
            async fn conflicts_re_read_and_re_plan() {
                if !$run {
                    return;
                }
                contract::conflicts_re_read_and_re_plan($make).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn racing_rotations_stay_consistent() {
                if !$run {
                    return;
                }
                contract::racing_rotations_stay_consistent($make).await;
            }
            #[tokio::test]
            async fn other_labels_and_annotations_survive() {
                if !$run {
                    return;
                }
                contract::other_labels_and_annotations_survive($make).await;
            }
            #[tokio::test]
            async fn adoption_of_a_certgen_install() {
                if !$run {
                    return;
                }
                contract::adoption_of_a_certgen_install($make).await;
            }
            #[tokio::test]
            async fn hmac_rotates_only_when_asked() {
                if !$run {
                    return;
                }
                contract::hmac_rotates_only_when_asked($make).await;
            }
            #[tokio::test]
            async fn drop_old_ca_retires_it() {
                if !$run {
                    return;
                }
                contract::drop_old_ca_retires_it($make).await;
            }
            #[tokio::test]
            async fn convergence_interval_is_persisted() {
                if !$run {
                    return;
                }
                contract::convergence_interval_is_persisted($make).await;
            }
            #[tokio::test]
            async fn future_phase_since_is_named_and_force_proceeds() {
                if !$run {
                    return;
                }
                contract::future_phase_since_is_named_and_force_proceeds($make).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn racing_requests_rotate_once() {
                if !$run {
                    return;
                }
                contract::racing_requests_rotate_once(|| $make).await;
            }
            #[tokio::test]
            async fn one_request_many_reconciles_and_a_restart_rotate_once() {
                if !$run {
                    return;
                }
                contract::one_request_many_reconciles_and_a_restart_rotate_once($make).await;
            }
            #[tokio::test]
            async fn three_years_of_daily_scheduled_rotation() {
                if !$run {
                    return;
                }
                contract::three_years_of_daily_scheduled_rotation($make).await;
            }
            #[tokio::test]
            async fn broken_keys_are_repaired_from_the_current_ca() {
                if !$run {
                    return;
                }
                contract::broken_keys_are_repaired_from_the_current_ca($make).await;
            }
            #[tokio::test]
            async fn a_requested_rotation_recovers_from_an_unusable_ca() {
                if !$run {
                    return;
                }
                contract::a_requested_rotation_recovers_from_an_unusable_ca(|| $make).await;
            }
            #[tokio::test]
            async fn single_step_breaks_trust_mid_rotation() {
                if !$run {
                    return;
                }
                contract::single_step_breaks_trust_mid_rotation(|| $make).await;
            }
            #[tokio::test]
            async fn a_change_during_a_wait_is_seen() {
                if !$run {
                    return;
                }
                contract::carried::a_change_during_a_wait_is_seen($make).await;
            }
            #[tokio::test]
            async fn an_empty_webhook_ca_bundle_never_wedges_an_adoption() {
                if !$run {
                    return;
                }
                contract::drift::an_empty_webhook_ca_bundle_never_wedges_an_adoption($make).await;
            }
            #[tokio::test]
            async fn a_webhook_recreated_empty_mid_rotation_is_restored() {
                if !$run {
                    return;
                }
                contract::drift::a_webhook_recreated_empty_mid_rotation_is_restored($make).await;
            }
            #[tokio::test]
            async fn a_ca_crt_that_lost_the_next_ca_mid_rotation() {
                if !$run {
                    return;
                }
                contract::drift::a_ca_crt_that_lost_the_next_ca_mid_rotation($make).await;
            }
            #[tokio::test]
            async fn a_ca_crt_that_lost_the_current_ca_mid_rotation_never_wedges() {
                if !$run {
                    return;
                }
                contract::drift::a_ca_crt_that_lost_the_current_ca_mid_rotation_never_wedges($make)
                    .await;
            }
            #[tokio::test]
            async fn random_drift_never_wedges() {
                if !$run {
                    return;
                }
                contract::drift::random_drift_never_wedges(|| $make, 24).await;
            }
            #[tokio::test]
            async fn a_certgen_install_is_adopted_on_purpose() {
                if !$run {
                    return;
                }
                contract::alarms::a_certgen_install_is_adopted_on_purpose($make).await;
            }
            #[tokio::test]
            async fn a_schedule_adopts_a_certgen_ca_within_its_window() {
                if !$run {
                    return;
                }
                contract::alarms::a_schedule_adopts_a_certgen_ca_within_its_window($make).await;
            }
            #[tokio::test]
            async fn the_previous_ca_is_retired_after_retire_after() {
                if !$run {
                    return;
                }
                contract::alarms::the_previous_ca_is_retired_after_retire_after($make).await;
            }
            #[tokio::test]
            async fn a_carried_ca_near_its_end_is_retired_early() {
                if !$run {
                    return;
                }
                contract::alarms::a_carried_ca_near_its_end_is_retired_early($make).await;
            }
            #[tokio::test]
            async fn drop_old_ca_on_a_stable_install_retires_now() {
                if !$run {
                    return;
                }
                contract::alarms::drop_old_ca_on_a_stable_install_retires_now($make).await;
            }
            #[tokio::test]
            async fn a_renewal_the_ca_caps_says_so_at_once() {
                if !$run {
                    return;
                }
                contract::alarms::a_renewal_the_ca_caps_says_so_at_once($make).await;
            }
        }
    };
}
