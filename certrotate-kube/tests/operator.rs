//! The engine as an operator uses it: one shared engine reconciled from several tasks and
//! for several control planes, its events recorded by a sink,
//! a requeue time computed with its own clock, an executor that stays responsive while
//! keys are generated, and errors as an `error_policy` sees them: every bad-input case
//! carries its cause once (no segment of the chain repeats another), names its object as
//! data, and says whether trying again later may help.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod contract;
#[cfg(feature = "kube")]
mod fake_server;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use certrotate_core::plan::{AnyRef, Next, ObservedSecret, Phase, WorkloadRef};
use certrotate_core::profile::WorkloadKind;
use certrotate_core::{Profile, Trigger};
use certrotate_kube::{
    Clock, Error, Event, EventSink, FaultyStore, ManualClock, MemoryStore, Recording, RunEvents,
    RunMode, RunReport, Store,
};
use contract::*;

/// The segments of an error's chain, top first.
fn segments(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push(c.to_string());
        cause = c.source();
    }
    out
}

/// No segment is empty, and no later segment is already printed by an earlier one.
fn assert_no_repeats(case: &str, e: &Error) {
    let segs = segments(e);
    for (i, s) in segs.iter().enumerate() {
        assert!(!s.trim().is_empty(), "{case}: empty segment in {segs:#?}");
        for later in &segs[i + 1..] {
            assert!(
                !s.contains(later.as_str()),
                "{case}: {later:?} is printed twice in {segs:#?}"
            );
        }
    }
}

struct Expect {
    transient: bool,
    object: Option<AnyRef>,
    /// Text the whole chain must contain.
    mentions: &'static [&'static str],
}

fn check(case: &str, e: &Error, expect: &Expect) {
    assert_no_repeats(case, e);
    assert_eq!(e.is_transient(), expect.transient, "{case}: {}", chain(e));
    assert_eq!(e.object(), expect.object, "{case}: {}", chain(e));
    let text = chain(e);
    for m in expect.mentions {
        assert!(text.contains(m), "{case}: {m:?} not in {text:?}");
    }
}

async fn installed_memory(clock: &Arc<ManualClock>) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    store.insert_workload(WorkloadRef::new(
        WorkloadKind::Deployment,
        NS,
        "envoy-ratelimit",
    ));
    install(&store, clock, 1).await;
    store
}

async fn rotate_err<S: Store>(store: S, clock: &Arc<ManualClock>, mode: RunMode) -> Error {
    engine(store, clock, 2)
        .with_max_conflicts(2)
        .run(&profile(), &options(true), mode)
        .await
        .unwrap_err()
}

fn corrupt_ca(store: &MemoryStore, edit: impl FnOnce(&mut ObservedSecret)) {
    let ca = secret("envoy-gateway-ca");
    let mut s = store.snapshot().secrets[&ca].clone();
    edit(&mut s);
    store.insert_secret(ca, s);
}

#[tokio::test]
async fn every_error_chain_names_its_cause_once() {
    let clock = Arc::new(ManualClock::new(T0));
    let ca = AnyRef::Secret(secret("envoy-gateway-ca"));

    // A store that fails every read of one Secret.
    let store = installed_memory(&clock).await;
    let faulty = FaultyStore::new(store.clone()).fail_matching("read secret");
    let e = rotate_err(faulty, &clock, RunMode::Once).await;
    check(
        "read fails",
        &e,
        &Expect {
            transient: false,
            object: Some(ca.clone()),
            mentions: &["reading secret", "injected fault"],
        },
    );

    // A store that fails a write.
    let faulty = FaultyStore::new(store.clone()).fail_matching("update secret");
    let e = rotate_err(faulty, &clock, RunMode::Once).await;
    check(
        "write fails",
        &e,
        &Expect {
            transient: false,
            object: Some(ca.clone()),
            mentions: &["writing secret", "injected fault"],
        },
    );

    // A restart that fails.
    let faulty = FaultyStore::new(store.clone()).fail_matching("restart");
    let e = rotate_err(faulty, &clock, until_done()).await;
    check(
        "restart fails",
        &e,
        &Expect {
            transient: false,
            object: Some(AnyRef::Workload(WorkloadRef::new(
                WorkloadKind::Deployment,
                NS,
                "envoy-ratelimit",
            ))),
            mentions: &["restarting deployment", "injected fault"],
        },
    );

    // Another writer that keeps winning.
    let store = installed_memory(&clock).await;
    let faulty = FaultyStore::new(store.clone()).conflict_matching("update secret", 1000);
    let e = rotate_err(faulty, &clock, RunMode::Once).await;
    assert!(
        matches!(e, Error::TooManyConflicts { attempts: 3, .. }),
        "{e}"
    );
    check(
        "conflicts",
        &e,
        &Expect {
            transient: true,
            object: Some(ca.clone()),
            mentions: &["gave up after 3 conflicting writes"],
        },
    );

    // A wait longer than the time limit.
    let store = installed_memory(&clock).await;
    let e = rotate_err(
        store.clone(),
        &clock,
        RunMode::UntilDone {
            timeout: Duration::from_secs(60),
        },
    )
    .await;
    check(
        "timeout",
        &e,
        &Expect {
            transient: true,
            object: None,
            mentions: &["timed out", "bundles must converge"],
        },
    );

    // An inconsistent rotation state.
    let store = installed_memory(&clock).await;
    corrupt_ca(&store, |s| {
        s.annotations
            .insert("certrotate.io/phase".into(), "sideways".into());
    });
    let e = rotate_err(store.clone(), &clock, RunMode::Once).await;
    check(
        "invalid state",
        &e,
        &Expect {
            transient: false,
            object: Some(ca.clone()),
            mentions: &["rotation state in secret", "unknown phase \"sideways\""],
        },
    );

    // Bad PEM in the CA Secret.
    let store = installed_memory(&clock).await;
    corrupt_ca(&store, |s| {
        s.data
            .insert("ca.crt".into(), b"-----BEGIN CERTIFICATE-----\n!!".to_vec());
    });
    let e = rotate_err(store.clone(), &clock, RunMode::Once).await;
    check(
        "bad PEM",
        &e,
        &Expect {
            transient: false,
            object: None,
            mentions: &["envoy-gateway-ca", "ca.crt"],
        },
    );
}

/// Retries that give up, over HTTP: `gave up after 4 attempts` appears once, and kube's own
/// repeated causes are flattened.
#[cfg(feature = "kube")]
#[tokio::test]
async fn retries_that_give_up_name_their_cause_once() {
    let clock = Arc::new(ManualClock::new(T0));
    let envoy = format!("/api/v1/namespaces/{NS}/secrets/envoy?");
    let server = fake_server::start(&["--fail", &format!("PATCH:{envoy}:503:1000")]);
    let store = Arc::new(fake_server::store_for(&server));
    install(&store, &clock, 3).await;
    let e = rotate_err(store, &clock, until_done()).await;
    check(
        "503 until the retries give up",
        &e,
        &Expect {
            transient: true,
            object: Some(AnyRef::Secret(secret("envoy"))),
            mentions: &[
                "writing secret",
                "gave up after 4 attempts",
                "ServiceUnavailable",
            ],
        },
    );
    assert_eq!(chain(&e).matches("gave up after 4 attempts").count(), 1);

    // Nobody listening: connection errors, retried, then given up.
    let store = Arc::new({
        let mut config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        config.default_retry = false;
        let client = kube::Client::try_from(config).unwrap();
        certrotate_kube::KubeStore::new(client).with_retries(3, Duration::from_millis(1))
    });
    let e = rotate_err(store, &clock, RunMode::Once).await;
    check(
        "connection refused",
        &e,
        &Expect {
            transient: true,
            object: Some(AnyRef::Secret(secret("envoy-gateway-ca"))),
            mentions: &["reading secret", "gave up after 4 attempts"],
        },
    );
    assert_eq!(chain(&e).matches("gave up after 4 attempts").count(), 1);
}

/// One engine in an `Arc`, reconciled from two tasks at once and again and again: the
/// outcome moves phase by phase, says when to come back with the engine's own clock, and
/// the store ends with one rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_engine_reconciles_phase_by_phase() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = installed_memory(&clock).await;
    let before = ca_pem(&store.snapshot());
    // A request with an identity, as an operator sends one: two tasks racing to end the
    // rotation must not start another (a bare `overwrite` would: it rotates whenever it
    // finds the CA stable).
    let request = Arc::new(options(false).with_trigger(Trigger::Once("generation-1".into())));
    let engine = Arc::new(engine(store.clone(), &clock, 9).with_max_conflicts(20));
    let mut phases = Vec::new();
    for _ in 0..6 {
        let (a, b) = {
            let (e1, e2) = (engine.clone(), engine.clone());
            let (o1, o2) = (request.clone(), request.clone());
            let t1 = tokio::spawn(async move { e1.reconcile(&profile(), &o1).await });
            let t2 = tokio::spawn(async move { e2.reconcile(&profile(), &o2).await });
            (t1.await.unwrap().unwrap(), t2.await.unwrap().unwrap())
        };
        assert_eq!(a.phase, b.phase, "both see the same phase");
        phases.push(a.phase);
        match a.next {
            Next::WaitUntil { at, .. } => {
                assert_eq!(
                    a.requeue_after,
                    Some(Duration::try_from(at - clock.now()).unwrap())
                );
                clock.advance(a.requeue_after.unwrap());
            }
            Next::Done => {
                assert_eq!(a.requeue_after, None);
                break;
            }
            Next::Continue | Next::WaitForRollout { .. } => panic!("{:?}", a.next),
        }
    }
    assert_eq!(phases, [Phase::Trust, Phase::Leaves, Phase::Stable]);
    let after = store.snapshot();
    assert_ne!(ca_pem(&after), before, "rotated");
    assert_trusted(&after, clock.now(), "after shared reconciles");
}

/// RSA-4096 keys take seconds to generate; the engine generates them on the blocking
/// pool, so a current-thread runtime keeps running its other tasks (a timer ticks all
/// along).
#[test]
fn a_current_thread_runtime_stays_responsive_during_rsa_4096_generation() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut profile = profile();
        profile.set_key_algorithm(certrotate_core::KeyAlgorithm::Rsa4096);
        let engine = certrotate_kube::Engine::new(MemoryStore::new())
            .with_entropy(certrotate_core::SystemEntropy);
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_millis(10));
                loop {
                    interval.tick().await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        #[allow(clippy::disallowed_methods)] // a test measuring wall time
        let started = std::time::Instant::now();
        let report = engine
            .run(&profile, &options(false), RunMode::Once)
            .await
            .unwrap();
        let elapsed = started.elapsed();
        ticker.abort();
        assert_eq!(report.writes, 5, "CA, three components, HMAC");
        let ticked = ticks.load(Ordering::Relaxed);
        // Generating four RSA-4096 keys takes far longer than 10 ms; blocking the only
        // thread would leave the ticker at a tick or two.
        let expected = (elapsed.as_millis() / 10) as u64;
        println!("RSA-4096 install: {elapsed:?}, {ticked} ticks of 10 ms (at most {expected})");
        assert!(elapsed > Duration::from_millis(100), "{elapsed:?}");
        assert!(ticked * 2 >= expected, "{ticked} ticks in {elapsed:?}");
    });
}

/// One run as a test sink saw it: its profile's namespace, each event, and how it ended.
type SeenOne = (String, Vec<Event>, Option<Result<(), String>>);

/// What a test sink saw, run by run.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<SeenOne>>>);

struct SeenRun {
    seen: Seen,
    index: usize,
}

impl EventSink for Seen {
    fn start(&self, profile: &Profile) -> Box<dyn RunEvents> {
        let mut runs = self.0.lock().unwrap();
        runs.push((profile.namespace.clone(), Vec::new(), None));
        Box::new(SeenRun {
            seen: self.clone(),
            index: runs.len() - 1,
        })
    }
}

impl RunEvents for SeenRun {
    fn record<'a>(&'a mut self, event: &'a Event) -> Recording<'a> {
        self.seen.0.lock().unwrap()[self.index]
            .1
            .push(event.clone());
        Box::pin(std::future::ready(()))
    }

    fn finish<'a>(&'a mut self, outcome: Result<&'a RunReport, &'a Error>) -> Recording<'a> {
        self.seen.0.lock().unwrap()[self.index].2 =
            Some(outcome.map(|_| ()).map_err(|e| e.to_string()));
        Box::pin(std::future::ready(()))
    }
}

/// One engine, created once, drives two control planes (two namespaces of one store) at
/// once, each reconcile handed its profile and policy: no engine per namespace or per
/// request. Its sink starts one recorder per run, and sees each run's events, in the
/// report's order, under the run's own profile, and how each run ended (a failure too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_engine_serves_every_control_plane_and_records_each_runs_events() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(MemoryStore::new());
    let seen = Seen::default();
    let engine = Arc::new(
        certrotate_kube::Engine::new(store.clone())
            .with_clock(clock.clone())
            .with_entropy(certrotate_core::SeededEntropy::new(3))
            .with_event_sink(seen.clone()),
    );
    let planes = ["tenant-a", "tenant-b"].map(|ns| {
        let mut p = profile();
        p.namespace = ns.into();
        p
    });
    let policy = options(false).with_trigger(Trigger::Once("generation-1".into()));
    // Installed (the first run of a request installs; the next rotates), then rotated.
    let mut reports = Vec::new();
    for round in 0..2 {
        let mut tasks = Vec::new();
        for p in planes.clone() {
            let (engine, policy) = (engine.clone(), policy.clone());
            tasks.push(tokio::spawn(async move {
                engine.run(&p, &policy, until_done()).await
            }));
        }
        reports.clear();
        for t in tasks {
            reports.push(t.await.unwrap().unwrap());
        }
        if round == 0 {
            clock.advance(HOUR);
            seen.0.lock().unwrap().clear();
        }
    }
    let snapshot = store.snapshot();
    for (p, report) in planes.iter().zip(&reports) {
        assert_eq!(
            report.phase,
            Phase::Stable,
            "{}: {:?}",
            p.namespace,
            report.events
        );
        let ca = certrotate_core::plan::ProfileObjects::of(p).ca_secret;
        let st =
            certrotate_core::plan::RotationState::from_secret(&snapshot.secrets[&ca], &ca).unwrap();
        assert_eq!(
            st.request.as_deref(),
            Some("generation-1"),
            "{}",
            p.namespace
        );
        assert!(
            st.previous.is_some(),
            "{}: installed, then rotated once",
            p.namespace
        );
        // The sink saw exactly this run's events, under this run's profile.
        let runs = seen.0.lock().unwrap();
        let mine: Vec<_> = runs.iter().filter(|r| r.0 == p.namespace).collect();
        assert_eq!(mine.len(), 1, "one recorder per run");
        assert_eq!(mine[0].1, report.events, "{}", p.namespace);
        assert_eq!(mine[0].2, Some(Ok(())));
        for e in &report.events {
            if let Event::SecretCreated { secret, .. } | Event::SecretUpdated { secret, .. } = e {
                assert_eq!(secret.namespace, p.namespace, "{e:?}");
            }
        }
    }
    // A failed run is recorded as one, with the error.
    let mut broken = profile();
    broken.namespace = "tenant-c".into();
    let mut bad = policy.clone();
    bad.trigger = Trigger::Schedule {
        rotate_ca_before: broken.ca.validity,
    };
    engine
        .run(&broken, &options(false), RunMode::Once)
        .await
        .unwrap();
    let err = engine.run(&broken, &bad, RunMode::Once).await.unwrap_err();
    let runs = seen.0.lock().unwrap();
    let last = runs.last().unwrap();
    assert_eq!(last.0, "tenant-c");
    assert_eq!(last.2, Some(Err(err.to_string())));
}

/// `Trigger::Now` is resolved once per run, at its first read: a run to the end rotates
/// once (its later rounds do not rotate away from the CA they made), and a second run
/// rotates again (now away from that one).
#[tokio::test]
async fn now_rotates_once_per_run() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = installed_memory(&clock).await;
    let engine = engine(store.clone(), &clock, 5);
    let now = options(false).with_trigger(Trigger::Now);
    let first = ca_pem(&store.snapshot());
    let report = engine.run(&profile(), &now, until_done()).await.unwrap();
    assert_eq!(report.phase, Phase::Stable);
    let second = ca_pem(&store.snapshot());
    assert_ne!(first, second);
    let starts = report
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Planned {
                    from: Phase::Stable,
                    to: Phase::Prepared,
                    ..
                }
            )
        })
        .count();
    assert_eq!(starts, 1, "{:?}", report.events);
    clock.advance(Duration::from_secs(3600));
    engine.run(&profile(), &now, until_done()).await.unwrap();
    assert_ne!(
        ca_pem(&store.snapshot()),
        second,
        "a second run rotates again"
    );
}
