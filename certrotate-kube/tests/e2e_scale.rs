//! Issue 20, item 8: many control planes (one `envoy-gateway` profile per namespace) on a
//! real kube-apiserver: installed, rotated to the end, rerun. The requests per control plane
//! and verb come from the API server's audit log (exact); the wall time is printed for
//! BENCHMARKS.md, never asserted (speed is measured with benches, not tests).
//!
//! Where the control plane is not built, one line and a pass (a failure under
//! `CERTROTATE_REQUIRE_CONTROLPLANE=1`, as in CI).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certrotate_controlplane::ControlPlane;
use certrotate_core::plan::Next;
use certrotate_core::{Profile, RotationPolicy, SeededEntropy, Trigger};
use certrotate_kube::{Engine, KubeStore, ManualClock, RunMode};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;
use time::macros::datetime;
use tokio::sync::Semaphore;

/// The harness's admin (its client certificate's CN).
const ADMIN: &str = "certrotate-e2e-admin";
const PLANES: usize = 100;
const CONCURRENCY: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_control_planes_on_a_real_api_server() {
    let Some(cp) = ControlPlane::shared() else {
        return;
    };
    let client = cp.client().unwrap();
    let prefix = format!("scale-{}", std::process::id());
    let namespaces: Vec<String> = (0..PLANES).map(|i| format!("{prefix}-{i:03}")).collect();
    for ns in &namespaces {
        let object: Namespace =
            serde_json::from_value(serde_json::json!({ "metadata": { "name": ns } })).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }
    let store = KubeStore::new(client);
    let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 0:00 UTC)));
    let until_done = RunMode::UntilDone {
        timeout: Duration::from_secs(7 * 86_400),
    };
    println!(
        "{PLANES} control planes, {CONCURRENCY} at a time, kube-apiserver v1.37 (audit log)\n"
    );
    println!("| step | wall time | requests / control plane (by verb) | writes (engine) |");
    println!("|---|---|---|---|");
    let mut seen = 0;
    let mut per_step = BTreeMap::new();
    for (name, overwrite, mode) in [
        ("install", false, RunMode::Once),
        ("staged rotation, to the end", true, until_done),
        ("unchanged rerun", false, RunMode::Once),
    ] {
        clock.advance(Duration::from_secs(3600));
        let start = Instant::now();
        let semaphore = Arc::new(Semaphore::new(CONCURRENCY));
        let mut tasks = Vec::new();
        for (i, ns) in namespaces.iter().enumerate() {
            let permit = Arc::clone(&semaphore).acquire_owned().await.unwrap();
            let (store, clock, ns) = (store.clone(), Arc::clone(&clock), ns.clone());
            tasks.push(tokio::spawn(async move {
                let options = RotationPolicy::default().with_trigger(if overwrite {
                    Trigger::Always
                } else {
                    Trigger::Never
                });
                let report = Engine::new(store)
                    .with_clock(clock)
                    .with_entropy(SeededEntropy::new(i as u64))
                    .run(&Profile::envoy_gateway(&ns), &options, mode)
                    .await
                    .unwrap();
                drop(permit);
                assert_eq!(report.next, Next::Done, "{ns}: {:?}", report.summary);
                report.writes
            }));
        }
        let mut writes = 0;
        for task in tasks {
            writes += task.await.unwrap();
        }
        let wall = start.elapsed();
        // The audit log is written a moment after each answer.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let events: Vec<serde_json::Value> = cp
            .audit_events()
            .unwrap()
            .into_iter()
            .filter(|e| {
                // The namespaced requests, and the webhook configuration of each plane
                // (cluster-scoped, named after its namespace).
                let ns = e["objectRef"]["namespace"].as_str().unwrap_or_default();
                let name = e["objectRef"]["name"].as_str().unwrap_or_default();
                e["user"]["username"] == ADMIN
                    && (ns.starts_with(&prefix) || name.contains(&format!(".{prefix}-")))
            })
            .collect();
        let step = &events[seen..];
        seen = events.len();
        let mut by_verb: BTreeMap<String, usize> = BTreeMap::new();
        for e in step {
            *by_verb
                .entry(e["verb"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        let per_plane = step.len() as f64 / PLANES as f64;
        let verbs = by_verb
            .iter()
            .map(|(v, n)| format!("{v} {:.2}", *n as f64 / PLANES as f64))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "| {name} | {:.0} ms | {per_plane:.2} ({verbs}) | {writes} |",
            wall.as_secs_f64() * 1000.0
        );
        per_step.insert(name, (per_plane, by_verb, writes));
    }
    // Exact counts: no Secret is listed, only the proxies (one Deployment and one
    // DaemonSet list per observation, issue 23); a rotation to its end reads once (5
    // Secrets, the rate-limit Deployment and the webhook configuration, both absent here,
    // and the two lists) and writes each component Secret twice and the CA Secret at each
    // phase.
    let exact = |step: &str, expected: f64| {
        let (requests, verbs, _) = &per_step[step];
        assert_eq!(
            verbs.get("list").copied().unwrap_or(0),
            2 * PLANES,
            "{step}: {verbs:?}"
        );
        assert!(
            (requests - expected).abs() < f64::EPSILON,
            "{step}: {requests} requests per plane, not {expected}: {verbs:?}"
        );
    };
    // 9 reads (5 Secrets, the Deployment, the webhook configuration, 2 lists) in each.
    exact("install", 14.0);
    exact("staged rotation, to the end", 19.0);
    exact("unchanged rerun", 9.0);
    let (_, _, rerun_writes) = &per_step["unchanged rerun"];
    assert_eq!(*rerun_writes, 0, "an unchanged rerun writes nothing");
}
