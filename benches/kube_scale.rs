//! Scale benchmark of the Kubernetes backend: 1,000 control planes, one `envoy-gateway`
//! profile per namespace, against the kube-fake-client HTTP server (release-built, on
//! 127.0.0.1), driven from one process with bounded concurrency.
//!
//! `cargo bench --features kube --bench kube_scale [-- PLANES CONCURRENCY]`
//!
//! Steps, each over every control plane: the first install; a staged rotation run to its
//! end in one run each (`RunMode::UntilDone`, convergence waits skipped by a manual
//! clock); an unchanged rerun; then a second rotation one phase per run (as a Job per
//! phase does: trust, leaves, done), for the time and requests of each phase. Printed per
//! step: wall time, API requests per control plane and per Secret by method, and the
//! writes the engine reports; last, one JSON line of the same figures (`bench/scaling.py`
//! reads it). The run fails if the unchanged rerun writes anything, if a rotation to its
//! end takes more than 17 requests per control plane (7 reads by name, 10 writes), or if
//! any control plane does not end trusted on one new CA.
//!
//! Not a criterion benchmark: each step changes the cluster, so it is measured once; the
//! request counts are exact, the wall time is the figure to compare between runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

#[path = "../test-support/fake_server.rs"]
mod fake_server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certrotate::core::plan::wire::{KEY_CA_CRT, KEY_TRUST};
use certrotate::core::plan::{Next, ObjectRef, ProfileObjects};
use certrotate::core::{Profile, RotationPolicy, Trigger, check};
use certrotate::engine::{Clock, Engine, KubeStore, ManualClock, RunMode, observe};
use time::macros::datetime;
use tokio::sync::Semaphore;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let planes: usize = args.next().map_or(1000, |a| a.parse().expect("PLANES"));
    let concurrency: usize = args.next().map_or(16, |a| a.parse().expect("CONCURRENCY"));

    let server = fake_server::start_release(&[]);
    let mut config = kube::Config::new(server.url.parse().unwrap());
    config.default_retry = false;
    let store = KubeStore::new(kube::Client::try_from(config).unwrap());
    let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 0:00 UTC)));
    let namespaces: Vec<String> = (0..planes).map(|i| format!("cp-{i:03}")).collect();
    let objects = ProfileObjects::of(&Profile::envoy_gateway("cp"));
    // The CA Secret, the component Secrets and the HMAC Secret.
    let secrets = 1 + objects.components.len() + objects.hmac.len();

    println!(
        "{planes} control planes x {secrets} Secrets, {concurrency} at a time, kube-fake-client over HTTP\n"
    );
    println!("| step | wall time | requests / control plane | per Secret | writes (engine) |");
    println!("|---|---|---|---|---|");
    let mut seen = 0;
    let mut rotation_writes = String::new();
    let mut json_steps = Vec::new();
    let until_done = RunMode::UntilDone {
        timeout: Duration::from_secs(7 * 86_400),
    };
    let steps = [
        ("install", false, RunMode::Once, Next::Done),
        ("staged rotation, to the end", true, until_done, Next::Done),
        ("unchanged rerun", false, RunMode::Once, Next::Done),
        // A second rotation, one phase per run; the hour between runs passes the
        // convergence interval.
        (
            "phase run: prepare + trust",
            true,
            RunMode::Once,
            Next::Continue,
        ),
        ("phase run: leaves", true, RunMode::Once, Next::Continue),
        ("phase run: done", true, RunMode::Once, Next::Done),
    ];
    for (name, overwrite, mode, expect_done) in steps {
        clock.advance(Duration::from_secs(3600));
        let start = Instant::now();
        let writes = run_all(
            &store,
            &clock,
            &namespaces,
            concurrency,
            overwrite,
            mode,
            expect_done == Next::Done,
        )
        .await;
        let wall = start.elapsed();
        let requests = server.requests();
        let step = &requests[seen..];
        seen = requests.len();
        let mut by_method: BTreeMap<&str, usize> = BTreeMap::new();
        for r in step {
            *by_method.entry(r.split(' ').next().unwrap()).or_default() += 1;
        }
        let per = |n: usize, d: usize| format!("{:.2}", n as f64 / d as f64);
        let methods = |d: usize| {
            by_method
                .iter()
                .map(|(m, n)| format!("{m} {}", per(*n, d)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {name} | {:.0} ms | {} ({}) | {} ({}) | {writes} |",
            wall.as_secs_f64() * 1000.0,
            per(step.len(), planes),
            methods(planes),
            per(step.len(), planes * secrets),
            methods(planes * secrets),
        );
        json_steps.push(format!(
            "{name:?}: {{\"ms\": {:.1}, \"requests\": {}, \"methods\": {:?}, \"writes\": {writes}}}",
            wall.as_secs_f64() * 1000.0,
            per(step.len(), planes),
            methods(planes),
        ));
        if name == "staged rotation, to the end" {
            let requests = step.len() as f64 / planes as f64;
            assert!(
                requests <= 17.0,
                "a staged rotation to its end took {requests:.2} requests per control plane"
            );
        }
        if name == "staged rotation, to the end" {
            // Which objects the rotation wrote, per control plane.
            let mut written: BTreeMap<&str, usize> = BTreeMap::new();
            for r in step.iter().filter(|r| !r.starts_with("GET ")) {
                let path = r.split(' ').nth(1).unwrap().split('?').next().unwrap();
                *written.entry(path.rsplit('/').next().unwrap()).or_default() += 1;
            }
            let list: Vec<String> = written
                .iter()
                .map(|(o, n)| format!("{o} {}", per(*n, planes)))
                .collect();
            rotation_writes = list.join(", ");
        }
        if name == "unchanged rerun" {
            let written = step.iter().filter(|r| !r.starts_with("GET ")).count();
            assert_eq!(
                (writes, written),
                (0, 0),
                "an unchanged rerun must not write"
            );
        }
    }

    // Every control plane ends trusted, on one new CA.
    for ns in &namespaces {
        let profile = Profile::envoy_gateway(ns);
        let observed = observe(&store, &profile).await.unwrap();
        let report = check(&profile, &observed, clock.now(), Duration::ZERO).unwrap();
        let untrusted: Vec<_> = report.untrusted().collect();
        assert!(untrusted.is_empty(), "{ns}: {untrusted:?}");
        let ca = &observed.secrets[&ObjectRef::new(ns, "envoy-gateway-ca")].data[KEY_CA_CRT];
        for c in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
            let trust = &observed.secrets[&ObjectRef::new(ns, c)].data[KEY_TRUST];
            assert!(trust.starts_with(ca), "{ns}/{c}: not on the new CA");
        }
    }
    println!("\nwrites of the rotation per control plane, by object: {rotation_writes}");
    println!("all {planes} control planes trusted, each on its one new CA");
    println!(
        "{{\"planes\": {planes}, \"concurrency\": {concurrency}, \"steps\": {{{}}}}}",
        json_steps.join(", ")
    );
}

/// Runs every namespace's control plane through one shared engine (as an operator does),
/// at most `concurrency` at a time; the writes made.
async fn run_all(
    store: &KubeStore,
    clock: &Arc<ManualClock>,
    namespaces: &[String],
    concurrency: usize,
    overwrite: bool,
    mode: RunMode,
    to_the_end: bool,
) -> usize {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let engine = Arc::new(Engine::new(store.clone()).with_clock(clock.clone()));
    let mut policy = RotationPolicy::default();
    if overwrite {
        policy.trigger = Trigger::Always;
    }
    let policy = Arc::new(policy);
    for ns in namespaces {
        let (engine, policy) = (engine.clone(), policy.clone());
        let profile = Profile::envoy_gateway(ns);
        let permits = permits.clone();
        let ns = ns.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let report = engine
                .run(&profile, &policy, mode)
                .await
                .unwrap_or_else(|e| panic!("{ns}: {e}"));
            if overwrite && to_the_end {
                assert_eq!(report.next, Next::Done, "{ns}: rotation finished");
            }
            report.writes
        });
    }
    let mut writes = 0;
    while let Some(done) = tasks.join_next().await {
        writes += done.unwrap();
    }
    writes
}
