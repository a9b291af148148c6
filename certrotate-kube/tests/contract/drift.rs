//! Never wedged (issue 22): trust stores and leaves that drift between runs (a webhook
//! configuration re-created with an empty `caBundle` by a Helm hook, a `ca.crt` that lost
//! a CA, a leaf replaced by hand) never hold a rotation for good. Every run repairs what
//! the phase needs, the gate never blames a step for a pair that was broken before it, and
//! `status` names what holds a rotation while something does. Instantiated per backend by
//! `contract_suite!`.

#![allow(async_fn_in_trait)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use certrotate_core::plan::wire::{KEY_TLS_CRT, KEY_TLS_KEY, KEY_TRUST};
use certrotate_core::plan::{CaRole, NextRun, Phase, RotationState, Summary, WebhookRef};
use certrotate_core::profile::WebhookKind;
use certrotate_core::trust::TrustStore;
use certrotate_core::{Ca, CaParams, RotationPolicy, SeededEntropy};
use certrotate_kube::{
    Clock, DirStore, Error, ManualClock, MemoryStore, RunMode, RunReport, SecretUpdate, Store,
    observe,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::{
    HOUR, NS, T0, assert_trusted, chain, engine, install, profile, request_now, secret, state,
};

/// The topology injector of Envoy Gateway's chart.
pub fn injector() -> WebhookRef {
    WebhookRef {
        kind: WebhookKind::Mutating,
        name: format!("envoy-gateway-topology-injector.{NS}"),
    }
}

/// What a test does to a store behind certrotate's back, as Helm or a person would.
pub trait Tamper {
    /// (Re-)creates the injector's webhook configuration with these `caBundle`s, as a Helm
    /// hook does (deleted, then created). `false` if the store holds no webhooks.
    async fn recreate_injector(&self, ca_bundles: Vec<Vec<u8>>) -> bool;
}

impl Tamper for MemoryStore {
    async fn recreate_injector(&self, ca_bundles: Vec<Vec<u8>>) -> bool {
        self.insert_webhook(injector(), ca_bundles);
        true
    }
}

impl Tamper for DirStore {
    async fn recreate_injector(&self, _: Vec<Vec<u8>>) -> bool {
        false
    }
}

#[cfg(feature = "kube")]
impl Tamper for certrotate_kube::KubeStore {
    async fn recreate_injector(&self, ca_bundles: Vec<Vec<u8>>) -> bool {
        recreate_webhook(self.client(), injector().name, ca_bundles).await
    }
}

/// Deletes (if there) and creates MutatingWebhookConfiguration `name` with one webhook per
/// `caBundle`, as a Helm hook re-creates one.
#[cfg(feature = "kube")]
pub async fn recreate_webhook(
    client: &kube::Client,
    name: String,
    ca_bundles: Vec<Vec<u8>>,
) -> bool {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhook, MutatingWebhookConfiguration, ServiceReference, WebhookClientConfig,
    };
    let namespace = name.rsplit('.').next().unwrap_or_default().to_owned();
    let api: kube::Api<MutatingWebhookConfiguration> = kube::Api::all(client.clone());
    // Absent the first time: a 404 is what a Helm hook sees too.
    let _ = api.delete(&name, &Default::default()).await;
    let mut object = MutatingWebhookConfiguration::default();
    object.metadata.name = Some(name);
    object.webhooks = Some(
        ca_bundles
            .into_iter()
            .enumerate()
            .map(|(i, b)| MutatingWebhook {
                name: format!("topology-{i}.envoyproxy.io"),
                admission_review_versions: vec!["v1".into()],
                side_effects: "None".into(),
                // The API server requires a service (or URL); the chart's is this one.
                client_config: WebhookClientConfig {
                    ca_bundle: Some(ByteString(b)),
                    service: Some(ServiceReference {
                        name: "envoy-gateway".into(),
                        namespace: namespace.clone(),
                        path: Some("/inject-pod-topology".into()),
                        port: Some(9443),
                    }),
                    ..Default::default()
                },
                ..Default::default()
            })
            .collect(),
    );
    api.create(&Default::default(), &object).await.unwrap();
    true
}

impl<T: Tamper> Tamper for Arc<T> {
    async fn recreate_injector(&self, ca_bundles: Vec<Vec<u8>>) -> bool {
        (**self).recreate_injector(ca_bundles).await
    }
}

/// Sets (`Some`) or removes (`None`) keys of a component Secret.
async fn set<S: Store>(store: &S, component: &str, data: &[(&str, Option<Vec<u8>>)]) {
    let s = secret(component);
    let current = store.read_secret(&s).await.unwrap().unwrap();
    let mut update = SecretUpdate::default();
    update.data = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    store
        .update_secret(&s, &current.version, &update)
        .await
        .unwrap();
}

/// Runs `options` once per convergence interval until a run at stable writes nothing,
/// at most `max` runs; each must go through (a refusal is a wedge). The reports.
async fn until_stable<S: Store>(
    store: &Arc<S>,
    clock: &Arc<ManualClock>,
    options: &RotationPolicy,
    max: usize,
    context: &str,
) -> Vec<RunReport> {
    let mut reports = Vec::new();
    for i in 0..max {
        let report = engine(store.clone(), clock, 100 + i as u64)
            .run(&profile(), options, RunMode::Once)
            .await
            .unwrap_or_else(|e| panic!("{context}: run {i} refused: {}", chain(&e)));
        let done = report.phase == Phase::Stable && report.writes == 0;
        reports.push(report);
        if done {
            return reports;
        }
        clock.advance(Duration::from_secs(301));
    }
    panic!("{context}: not stable after {max} runs: {reports:#?}");
}

/// The status of the store now.
async fn status_of<S: Store>(
    store: &S,
    now: time::OffsetDateTime,
) -> certrotate_core::plan::Status {
    let observed = observe(store, &profile()).await.unwrap();
    certrotate_core::plan::status(&profile(), &observed, &super::options(false), now).unwrap()
}

/// Issue 22, the exact wedge: Envoy Gateway's chart re-creates the topology injector
/// with an empty `caBundle` before certgen runs; `rotate --overwrite` adopts the install,
/// persists `prepared`, and the trust step used to be refused for the three leaves
/// against that `caBundle`, on every run. Now every run goes through, the `caBundle`
/// gets certgen's CA (the leaves' issuer, as upstream copies it) with the next one, and
/// the rotation ends with every pair trusted. Stores without webhooks: an adoption whose
/// `ca.crt`s were emptied, the same wedge in local mode.
pub async fn an_empty_webhook_ca_bundle_never_wedges_an_adoption<S: Store + Tamper>(store: S) {
    let store = Arc::new(store);
    let old = super::certgen_install(&*store, super::CERTGEN_VALIDITY).await;
    let held = store.recreate_injector(vec![Vec::new()]).await;
    if !held {
        set(&*store, "envoy", &[(KEY_TRUST, Some(Vec::new()))]).await;
    }
    let clock = Arc::new(ManualClock::new(T0 + HOUR));
    let adopt = request_now(&*store).await;
    let reports = until_stable(&store, &clock, &adopt, 8, "adoption").await;
    let first = &reports[0];
    assert!(
        matches!(first.summary, Summary::Trust { .. }),
        "adopted and trust entered in one run: {}",
        first.summary
    );
    let observed = observe(&store, &profile()).await.unwrap();
    assert_trusted(&observed, clock.now(), "after the adoption");
    if held {
        let bundle = &observed.webhooks[&injector()].ca_bundles[0];
        assert!(!bundle.is_empty());
        // The trust step gave it certgen's CA back with the next one.
        let trust_step = first
            .events
            .iter()
            .any(|e| matches!(e, certrotate_kube::Event::WebhookUpdated { .. }));
        assert!(trust_step, "{:?}", first.events);
    }
    assert_ne!(
        super::ca_pem(&observed),
        old.cert_pem().as_bytes(),
        "a new CA"
    );
}

/// A managed install whose injector a `helm upgrade` re-creates empty mid-rotation,
/// after the trust phase wrote the next CA into it: `status` names the `caBundle` and the
/// CA it lacks, the next run restores it and waits one more interval (the leaves would
/// otherwise reach peers that cannot verify them), and the rotation ends trusted.
pub async fn a_webhook_recreated_empty_mid_rotation_is_restored<S: Store + Tamper>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let ca = super::ca_pem(&observe(&store, &profile()).await.unwrap());
    if !store.recreate_injector(vec![ca.clone(), ca]).await {
        // No webhooks in this store: the same drift on a ca.crt.
        return a_ca_crt_that_lost_the_next_ca_mid_rotation_is_restored(store).await;
    }
    let request = request_now(&*store).await;
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &request, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Trust);
    store.recreate_injector(vec![Vec::new(), Vec::new()]).await;
    clock.advance(Duration::from_secs(301));

    let status = status_of(&*store, clock.now()).await;
    assert_eq!(status.next_run, NextRun::RestoreTrust);
    let named: Vec<String> = status.holds.iter().map(ToString::to_string).collect();
    assert_eq!(status.holds.len(), 4, "{named:?}");
    let next = state(&*store).await.next.unwrap();
    assert!(
        named.iter().any(|h| *h
            == format!(
                "{} webhook 1 caBundle lacks the next CA {}",
                injector(),
                next.short()
            )),
        "{named:?}"
    );

    let report = engine(store.clone(), &clock, 3)
        .run(&profile(), &request, RunMode::Once)
        .await
        .unwrap_or_else(|e| panic!("refused: {}", chain(&e)));
    assert_eq!(
        report.phase,
        Phase::Trust,
        "held in trust: {}",
        report.summary
    );
    let Summary::TrustRestored { stores, .. } = &report.summary else {
        panic!("{}", report.summary);
    };
    assert_eq!(stores.len(), 2, "{stores:?}");
    assert!(
        report.summary.to_string().contains("webhook 2 caBundle"),
        "{}",
        report.summary
    );
    assert!(status_of(&*store, clock.now()).await.holds.is_empty());
    let observed = observe(&store, &profile()).await.unwrap();
    assert_trusted(&observed, clock.now(), "restored");

    until_stable(&store, &clock, &request, 6, "after the restore").await;
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "after the rotation",
    );
}

/// One component's `ca.crt` loses the next CA mid-rotation (put back to the current CA
/// alone, as a restore would): held in trust, restored, converged again, then on.
pub async fn a_ca_crt_that_lost_the_next_ca_mid_rotation_is_restored<S: Store>(store: Arc<S>) {
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let ca = super::ca_pem(&observe(&store, &profile()).await.unwrap());
    let request = request_now(&*store).await;
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &request, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Trust);
    set(&*store, "envoy", &[(KEY_TRUST, Some(ca))]).await;
    clock.advance(Duration::from_secs(301));
    let status = status_of(&*store, clock.now()).await;
    assert_eq!(status.next_run, NextRun::RestoreTrust);
    assert_eq!(status.holds.len(), 1, "{:?}", status.holds);
    assert_eq!(
        status.holds[0].store,
        TrustStore::Component {
            secret: secret("envoy")
        }
    );
    assert_eq!(status.holds[0].role, CaRole::Next);
    let reports = until_stable(&store, &clock, &request, 8, "ca.crt lost the next CA").await;
    assert!(
        matches!(reports[0].summary, Summary::TrustRestored { .. }),
        "{}",
        reports[0].summary
    );
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "after the rotation",
    );
}

/// One component's `ca.crt` loses the current CA mid-rotation: upstream's certgen, run
/// again by a `helm upgrade`, wrote a CA of its own over it. The leaves step used to
/// bundle the next CA with that one (no CA of the leaves peers still present) and be
/// refused on every run. Now `status` names the store and both CAs it lacks, the next run
/// puts them back (held in trust one more interval), and the rotation ends trusted.
pub async fn a_ca_crt_that_lost_the_current_ca_mid_rotation_never_wedges<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let request = request_now(&*store).await;
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &request, RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Trust);
    let certgen = stranger().cert_pem().as_bytes().to_vec();
    set(&*store, "envoy-rate-limit", &[(KEY_TRUST, Some(certgen))]).await;
    clock.advance(Duration::from_secs(301));
    let status = status_of(&*store, clock.now()).await;
    let roles: Vec<CaRole> = status.holds.iter().map(|h| h.role).collect();
    assert_eq!(roles, [CaRole::Next, CaRole::Current], "{:?}", status.holds);
    assert!(
        status.holds[1].to_string().starts_with(&format!(
            "secret {NS}/envoy-rate-limit ca.crt lacks the current CA"
        )),
        "{}",
        status.holds[1]
    );
    until_stable(&store, &clock, &request, 8, "ca.crt lost the current CA").await;
    let observed = observe(&store, &profile()).await.unwrap();
    assert_trusted(&observed, clock.now(), "after the rotation");
}

/// `a_ca_crt_that_lost_the_next_ca_mid_rotation_is_restored` for the suite.
pub async fn a_ca_crt_that_lost_the_next_ca_mid_rotation<S: Store>(store: S) {
    a_ca_crt_that_lost_the_next_ca_mid_rotation_is_restored(Arc::new(store)).await;
}

// ---- random drift ----------------------------------------------------------------------

/// A CA a store is given that issued none of the install's leaves, named as ours.
fn stranger() -> Ca {
    Ca::generate(
        &CaParams::new("envoy-gateway"),
        T0,
        &mut SeededEntropy::new(4242),
    )
    .unwrap()
}

/// A CA that issues hand-made leaves and is in no store.
fn forger() -> Ca {
    Ca::generate(&CaParams::new("forger"), T0, &mut SeededEntropy::new(4343)).unwrap()
}

/// What can drift between two runs.
#[derive(Clone, Debug)]
pub enum Drift {
    /// The injector re-created with these `caBundle`s (`true`: empty; `false`: the
    /// stranger's CA).
    Injector(Vec<bool>),
    /// A component's `ca.crt` emptied.
    EmptyTrust(usize),
    /// A component's `ca.crt` removed.
    NoTrust(usize),
    /// A component's `ca.crt` replaced by the stranger's CA.
    StrangeTrust(usize),
    /// A component's `ca.crt` replaced by the CA Secret's current CA alone.
    CurrentOnly(usize),
    /// A component's `ca.crt` replaced by the CA Secret's next CA alone (when there is one).
    NextOnly(usize),
    /// A component's leaf replaced by a hand-made one (the forger's, with its key).
    HandMadeLeaf(usize),
}

fn drift() -> impl Strategy<Value = Drift> {
    let c = 0..3usize;
    prop_oneof![
        proptest::collection::vec(any::<bool>(), 1..3).prop_map(Drift::Injector),
        c.clone().prop_map(Drift::EmptyTrust),
        c.clone().prop_map(Drift::NoTrust),
        c.clone().prop_map(Drift::StrangeTrust),
        c.clone().prop_map(Drift::CurrentOnly),
        c.clone().prop_map(Drift::NextOnly),
        c.prop_map(Drift::HandMadeLeaf),
    ]
}

/// One case: the drifts made before each run (index), starting from an install with the
/// injector, with a rotation requested.
#[derive(Clone, Debug)]
pub struct Case {
    /// Whether the install is upstream's (adopted) or certrotate's.
    pub certgen: bool,
    /// (before run i, drift).
    pub drifts: Vec<(usize, Drift)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        proptest::collection::vec((0..5usize, drift()), 1..4),
    )
        .prop_map(|(certgen, drifts)| Case { certgen, drifts })
}

async fn apply<S: Store + Tamper>(store: &Arc<S>, drift: &Drift) {
    let p = profile();
    let component = |i: usize| p.components[i].secret.clone();
    let observed = observe(store, &p).await.unwrap();
    let ca_secret = observed.secrets.get(&secret("envoy-gateway-ca"));
    let key = |k: &str| ca_secret.and_then(|s| s.data.get(k)).cloned();
    match drift {
        Drift::Injector(empties) => {
            let bundles = empties
                .iter()
                .map(|empty| {
                    if *empty {
                        Vec::new()
                    } else {
                        stranger().cert_pem().as_bytes().to_vec()
                    }
                })
                .collect();
            store.recreate_injector(bundles).await;
        }
        Drift::EmptyTrust(i) => {
            set(&**store, &component(*i), &[(KEY_TRUST, Some(Vec::new()))]).await
        }
        Drift::NoTrust(i) => set(&**store, &component(*i), &[(KEY_TRUST, None)]).await,
        Drift::StrangeTrust(i) => {
            let pem = stranger().cert_pem().as_bytes().to_vec();
            set(&**store, &component(*i), &[(KEY_TRUST, Some(pem))]).await;
        }
        Drift::CurrentOnly(i) => {
            if let Some(pem) = key("ca.crt") {
                set(&**store, &component(*i), &[(KEY_TRUST, Some(pem))]).await;
            }
        }
        Drift::NextOnly(i) => {
            if let Some(pem) = key("next-ca.crt") {
                set(&**store, &component(*i), &[(KEY_TRUST, Some(pem))]).await;
            }
        }
        Drift::HandMadeLeaf(i) => {
            let c = &p.components[*i];
            let leaf = forger()
                .issue_leaf(&p.leaf_params(c).unwrap(), T0, &mut SeededEntropy::new(7))
                .unwrap();
            let data = [
                (KEY_TLS_CRT, Some(leaf.cert_pem.into_bytes())),
                (
                    KEY_TLS_KEY,
                    Some(leaf.key_pem.expose_secret().as_bytes().to_vec()),
                ),
            ];
            set(&**store, &component(*i), &data).await;
        }
    }
}

/// One case of [`random_drift_never_wedges`]: runs until a run at stable, after every
/// drift, writes nothing; never refused, at most `MAX_RUNS` runs; while a store lacks a
/// CA, `status` names it.
async fn run_case<S: Store + Tamper>(store: S, case: &Case) -> Result<(), String> {
    const MAX_RUNS: usize = 16;
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    if case.certgen {
        super::certgen_install(&*store, super::CERTGEN_VALIDITY).await;
        let ca = observe(&store, &profile()).await.unwrap().secrets[&secret("envoy")].data
            [KEY_TRUST]
            .clone();
        store.recreate_injector(vec![ca]).await;
        clock.advance(HOUR);
    } else {
        install(&store, &clock, 1).await;
        let ca = super::ca_pem(&observe(&store, &profile()).await.unwrap());
        store.recreate_injector(vec![ca]).await;
    }
    let request = request_now(&*store).await;
    let last_drift = case.drifts.iter().map(|(i, _)| *i).max().unwrap_or(0);
    let mut log = String::new();
    for run in 0..MAX_RUNS {
        for (_, d) in case.drifts.iter().filter(|(i, _)| *i == run) {
            apply(&store, d).await;
            let _ = writeln!(log, "before run {run}: {d:?}");
        }
        let observed = observe(&store, &profile()).await.unwrap();
        if observed.secrets.contains_key(&secret("envoy-gateway-ca")) {
            let status = certrotate_core::plan::status(
                &profile(),
                &observed,
                &super::options(false),
                clock.now(),
            )
            .map_err(|e| format!("status: {e}\n{log}"))?;
            let st: RotationState = status.state.clone().unwrap();
            // A store without the CA the phase needs is named, with that CA.
            let needs = match st.phase {
                Phase::Trust => st.next,
                Phase::Stable | Phase::Prepared | Phase::Leaves | Phase::Retire => st.current,
            };
            if let Some(needs) = needs {
                let lacking = lacking(&observed, &needs);
                for store in &lacking {
                    if !status
                        .holds
                        .iter()
                        .any(|h| h.store == *store && h.lacks == needs)
                    {
                        return Err(format!("status does not name {store}: {status:?}\n{log}"));
                    }
                }
                if st.phase == Phase::Trust
                    && !lacking.is_empty()
                    && status.next_run != NextRun::RestoreTrust
                {
                    return Err(format!("next run {:?}\n{log}", status.next_run));
                }
            }
        }
        let report = match engine(store.clone(), &clock, 10 + run as u64)
            .run(&profile(), &request, RunMode::Once)
            .await
        {
            Ok(report) => report,
            Err(e @ Error::TrustWouldBreak { .. }) => {
                return Err(format!("run {run} refused: {}\n{log}", chain(&e)));
            }
            Err(e) => return Err(format!("run {run} failed: {}\n{log}", chain(&e))),
        };
        let _ = writeln!(
            log,
            "run {run}: {} ({} writes)",
            report.summary, report.writes
        );
        if run >= last_drift && report.phase == Phase::Stable && report.writes == 0 {
            let observed = observe(&store, &profile()).await.unwrap();
            let checked =
                certrotate_core::check(&profile(), &observed, clock.now(), Duration::ZERO).unwrap();
            if !checked.all_trusted() {
                return Err(format!("stable but not trusted: {checked:?}\n{log}"));
            }
            return Ok(());
        }
        clock.advance(Duration::from_secs(301));
    }
    Err(format!("not stable after {MAX_RUNS} runs\n{log}"))
}

/// The trust stores of `observed` that do not hold the CA of `fingerprint`.
fn lacking(
    observed: &certrotate_core::plan::Observed,
    fingerprint: &certrotate_core::Fingerprint,
) -> Vec<TrustStore> {
    let holds = |b: &[u8]| {
        certrotate_core::inspect_pem(b, &certrotate_core::Origin::new("t"), T0)
            .is_ok_and(|certs| certs.iter().any(|c| c.fingerprint == *fingerprint))
    };
    let mut out = Vec::new();
    for c in &profile().components {
        let r = secret(&c.secret);
        if let Some(s) = observed.secrets.get(&r)
            && !s.data.get(KEY_TRUST).is_some_and(|b| holds(b))
        {
            out.push(TrustStore::Component { secret: r });
        }
    }
    if let Some(w) = observed.webhooks.get(&injector()) {
        for (i, b) in w.ca_bundles.iter().enumerate() {
            if !holds(b) {
                out.push(TrustStore::Webhook {
                    webhook: injector(),
                    index: i + 1,
                });
            }
        }
    }
    out
}

/// Random drift at any phase, between runs, on a fresh store per case (`make`): repeated
/// runs (one per convergence interval) always reach stable with every pair trusted, are
/// never refused, and take a bounded number of runs; while a store lacks the CA its phase
/// needs, `status` names it. Cases are drawn by proptest from a fixed seed, so a failure
/// prints a case that replays; `CASES` keeps the suite well under 30 s in debug.
pub async fn random_drift_never_wedges<S: Store + Tamper>(make: impl Fn() -> S, cases: u32) {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[22; 32]),
    );
    let strategy = case();
    for n in 0..cases {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        if let Err(e) = run_case(make(), &case).await {
            panic!("case {n}: {case:?}\n{e}");
        }
    }
}
