//! Tests of `simulate`: staged and single-step matrices, observed starts, upstream's reload
//! rules, and the evidence rule.

#![allow(clippy::unwrap_used)]

use time::macros::datetime;

use super::*;
use certrotate_core::Trigger;

const T0: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);

fn options(strategy: Strategy) -> SimulateOptions {
    let mut plan = RotationPolicy::default();
    plan.strategy = strategy;
    SimulateOptions::new(plan, T0)
}

/// Three components, one restarted at start, no webhook.
fn custom() -> Profile {
    Profile::from_toml(
        r#"
name = "custom"
namespace = "tenant"
[ca]
secret = "tenant-ca"
common_name = "tenant-ca"
[[components]]
secret = "api"
common_name = "api"
dns_names = ["api.{namespace}.svc"]
[[components]]
secret = "worker"
common_name = "worker"
dns_names = ["worker.{namespace}.svc", "*.worker.{namespace}.svc"]
ip_addresses = ["10.0.0.7"]
[[components]]
secret = "db"
common_name = "db"
[[workloads]]
kind = "StatefulSet"
name = "db"
"#,
        &certrotate_core::Origin::new("test"),
    )
    .unwrap()
}

fn phases(sim: &Simulation) -> Vec<(Phase, Phase)> {
    sim.steps.iter().map(|s| (s.from, s.to)).collect()
}

#[tokio::test]
async fn staged_keeps_trust_at_every_step() {
    let sim = simulate(&custom(), Start::Fresh, &options(Strategy::Staged))
        .await
        .unwrap();
    assert_eq!(sim.ending, Ending::Done);
    assert_eq!(
        phases(&sim),
        [
            (Phase::Stable, Phase::Stable),
            (Phase::Stable, Phase::Prepared),
            (Phase::Prepared, Phase::Trust),
            (Phase::Trust, Phase::Leaves),
            (Phase::Leaves, Phase::Stable),
        ]
    );
    assert!(sim.passed(), "{:#?}", sim.failures().collect::<Vec<_>>());
    // Trust: 3 leaves × 3 ca.crt, the stores on both sides.
    assert_eq!(sim.steps[2].trust.checks.len(), 18);
    // Leaves: the leaves on both sides, the stores unchanged.
    assert_eq!(sim.steps[3].trust.checks.len(), 18);
    assert!(sim.steps[2].at < sim.steps[3].at, "the interval was waited");
}

#[tokio::test]
async fn single_step_shows_its_failures() {
    let sim = simulate(&custom(), Start::Fresh, &options(Strategy::SingleStep))
        .await
        .unwrap();
    assert_eq!(sim.ending, Ending::Done);
    assert!(!sim.passed());
    let failures: Vec<_> = sim.failures().collect();
    // Every new leaf against every old ca.crt: 3 × 3, all in the one write step.
    assert_eq!(failures.len(), 9, "{failures:#?}");
    for (step, pair) in failures {
        assert_eq!((step.from, step.to), (Phase::Prepared, Phase::Stable));
        assert_eq!(
            (pair.leaf_side, pair.store_side),
            (trust::Side::After, trust::Side::Before)
        );
    }
}

#[tokio::test]
async fn a_refused_step_ends_the_simulation_with_its_matrix() {
    let mut o = options(Strategy::Staged);
    o.plan.bundle_policy = certrotate_core::BundlePolicy::new(0);
    let sim = simulate(&custom(), Start::Fresh, &o).await.unwrap();
    assert_eq!(sim.ending, Ending::Refused);
    let last = sim.steps.last().unwrap();
    assert!(last.refused);
    assert_eq!((last.from, last.to), (Phase::Prepared, Phase::Trust));
    assert_eq!(last.trust.broken().count(), 9);
}

#[tokio::test]
async fn an_observed_rotation_in_progress_is_finished_not_restarted() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let mut o = RotationPolicy::default();
    Engine::new(store.clone())
        .with_clock(clock.clone())
        .with_entropy(SeededEntropy::new(1))
        .run(&custom(), &o.clone(), crate::RunMode::Once)
        .await
        .unwrap();
    o.trigger = Trigger::Always;
    let report = Engine::new(store.clone())
        .with_clock(clock.clone())
        .with_entropy(SeededEntropy::new(2))
        .run(&custom(), &o, crate::RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Trust);
    let observed = store.snapshot();
    let sim = simulate(
        &custom(),
        Start::Observed(observed),
        &options(Strategy::Staged),
    )
    .await
    .unwrap();
    assert!(sim.passed(), "{sim:#?}");
    assert_eq!(
        phases(&sim),
        [
            (Phase::Trust, Phase::Leaves),
            (Phase::Leaves, Phase::Stable)
        ]
    );
}

#[tokio::test]
async fn an_unmanaged_install_without_a_ca_is_adopted() {
    // What certgen left: component Secrets, no CA Secret.
    let store = Arc::new(MemoryStore::new());
    Engine::new(store.clone())
        .with_clock(ManualClock::new(T0))
        .with_entropy(SeededEntropy::new(1))
        .run(&custom(), &RotationPolicy::default(), crate::RunMode::Once)
        .await
        .unwrap();
    let mut observed = store.snapshot();
    observed.secrets.retain(|k, _| k.name != "tenant-ca");
    let sim = simulate(
        &custom(),
        Start::Observed(observed),
        &options(Strategy::Staged),
    )
    .await
    .unwrap();
    assert!(sim.passed(), "{sim:#?}");
    assert_eq!(sim.steps.first().map(|s| s.to), Some(Phase::Prepared));
}

/// Envoy Gateway's connections under upstream's reload rules.
fn envoy_gateway(strategy: Strategy, profile: &Profile) -> SimulateOptions {
    let mut o = options(strategy).with_reload(ReloadModel::envoy_gateway());
    o.plan.drop_old_ca = true;
    let _ = profile;
    o
}

fn broken(sim: &Simulation) -> Vec<(Phase, Phase, &str, bool)> {
    let mut out: Vec<_> = sim
        .broken_connections()
        .map(|(s, c)| (s.from, s.to, c.connection.as_str(), c.server_leaf))
        .collect();
    out.dedup();
    out
}

/// The built-in profile restarts the rate limit and the proxies it selects by label
/// after every change of their files: no connection breaks at any step, the old CA's
/// drop included.
#[tokio::test]
async fn envoy_gateway_keeps_every_connection_under_upstreams_reload_rules() {
    let profile = Profile::envoy_gateway("eg");
    let o = envoy_gateway(Strategy::Staged, &profile);
    let sim = simulate(&profile, Start::Fresh, &o).await.unwrap();
    assert_eq!(sim.ending, Ending::Done);
    assert!(sim.passed(), "{:#?}", broken(&sim));
    assert!(
        sim.steps.iter().any(|s| s.from == Phase::Trust),
        "the leaves were switched"
    );
}

/// Red-team: without the proxies' restart (the profile before issue 23), a proxy
/// keeps the `ca.crt` it loaded at start, without the new CA: once the rate limit
/// and the controller serve leaves of the new CA, Envoy's rate-limit and Wasm
/// connections fail. Dropping the rate limit's restart breaks its xDS connection.
#[tokio::test]
async fn envoy_gateway_without_its_restarts_breaks_connections() {
    let mut profile = Profile::envoy_gateway("eg");
    profile
        .workloads
        .retain(|w| matches!(w.select, certrotate_core::profile::WorkloadSelect::Name(_)));
    let o = envoy_gateway(Strategy::Staged, &profile);
    let sim = simulate(&profile, Start::Fresh, &o).await.unwrap();
    assert!(!sim.passed());
    let broken_first = broken(&sim);
    // From the leaves on (the rate limit and the controller serve new leaves), and
    // until a restart that never comes.
    assert_eq!(
        broken_first[..2],
        [
            (
                Phase::Trust,
                Phase::Leaves,
                "envoy -> controller Wasm (18002)",
                true
            ),
            (
                Phase::Trust,
                Phase::Leaves,
                "envoy -> rate limit (8081)",
                true
            ),
        ]
    );
    assert!(
        broken_first
            .iter()
            .all(|b| b.2.starts_with("envoy -> ") && b.2 != "envoy -> controller xDS (18000)")
    );

    let mut profile = Profile::envoy_gateway("eg");
    profile
        .workloads
        .retain(|w| !matches!(&w.select, certrotate_core::profile::WorkloadSelect::Name(n) if n == "envoy-ratelimit"));
    let sim = simulate(&profile, Start::Fresh, &o).await.unwrap();
    let broken = broken(&sim);
    assert!(
        broken
            .iter()
            .any(|b| b.2 == "rate limit -> controller xDS (18001)"),
        "{broken:#?}"
    );
    assert!(
        broken
            .iter()
            .all(|b| b.2 == "rate limit -> controller xDS (18001)")
    );
}

/// Upstream's single-step order breaks connections even with every restart: the
/// leaves change with the bundles.
#[tokio::test]
async fn envoy_gateway_single_step_breaks_connections() {
    let profile = Profile::envoy_gateway("eg");
    let o = envoy_gateway(Strategy::SingleStep, &profile);
    let sim = simulate(&profile, Start::Fresh, &o).await.unwrap();
    assert!(sim.broken_connections().next().is_some());
}

/// In GatewayNamespace mode the proxies are found in other namespaces, and restarted.
#[tokio::test]
async fn gateway_namespace_mode_restarts_proxies_elsewhere() {
    let profile = Profile::envoy_gateway("eg").with_gateway_namespace_mode();
    let store = Arc::new(MemoryStore::new());
    let labels: BTreeMap<String, String> = certrotate_core::profile::PROXY_LABELS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let proxy = WorkloadRef::new(
        certrotate_core::profile::WorkloadKind::Deployment,
        "team-a",
        "gw",
    );
    let other = WorkloadRef::new(
        certrotate_core::profile::WorkloadKind::Deployment,
        "team-a",
        "not-a-proxy",
    );
    store.insert_labelled_workload(proxy.clone(), labels);
    store.insert_labelled_workload(other.clone(), BTreeMap::new());
    let clock = Arc::new(ManualClock::new(T0));
    let mut o = RotationPolicy::default();
    Engine::new(store.clone())
        .with_clock(clock.clone())
        .run(&profile.clone(), &o.clone(), crate::RunMode::Once)
        .await
        .unwrap();
    o.trigger = Trigger::Always;
    let report = Engine::new(store.clone())
        .with_clock(clock.clone())
        .run(&profile.clone(), &o, crate::RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Trust);
    assert_eq!(store.restarts(&proxy), 1, "restarted after trust");
    assert_eq!(store.restarts(&other), 0);
    let observed = store.snapshot();
    assert!(
        observed.workloads[&proxy]
            .template_annotations
            .contains_key(certrotate_core::plan::wire::ANNOTATION_RESTARTED_FOR)
    );
}

/// Issue 24: a server that never reloads (a `subPath` pod). On timers alone the leaves
/// switch anyway and its pairs break; with the evidence rule the rotation holds at
/// `trust`, naming it, and nothing breaks. Every server reloading, the rule lets the
/// rotation finish.
#[tokio::test]
async fn a_server_that_never_reloads_holds_the_rotation_with_evidence() {
    let profile = Profile::envoy_gateway("eg");
    let mut o = options(Strategy::Staged);
    o.never_reloads = vec!["envoy-gateway".into()];

    let timers = simulate(&profile, Start::Fresh, &o).await.unwrap();
    assert_eq!(timers.ending, Ending::Done);
    let broken: Vec<_> = timers.failures().collect();
    assert!(!broken.is_empty(), "the stuck server's pairs break");
    for (step, pair) in &broken {
        assert_eq!((step.from, step.to), (Phase::Trust, Phase::Leaves));
        assert!(
            pair.to_string().contains("envoy-gateway"),
            "the stuck server's store: {pair}"
        );
    }

    o.evidence = true;
    let held = simulate(&profile, Start::Fresh, &o).await.unwrap();
    assert!(held.failures().next().is_none(), "{held:#?}");
    let Ending::Held { phase, lagging } = &held.ending else {
        panic!("not held: {:?}", held.ending);
    };
    assert_eq!(*phase, Phase::Trust);
    assert_eq!(lagging.len(), 4, "18000, 18001, 18002, 9443: {lagging:?}");
    for l in lagging {
        assert!(
            l.starts_with("pod simulated-envoy-gateway (envoy-gateway:")
                && l.contains("trusts only"),
            "{l}"
        );
    }
    assert_eq!(held.steps.last().map(|s| s.to), Some(Phase::Trust));

    o.never_reloads.clear();
    let reloading = simulate(&profile, Start::Fresh, &o).await.unwrap();
    assert!(reloading.passed(), "{reloading:#?}");
}
