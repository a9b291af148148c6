//! Embedding the engine in a kube-rs operator: each reconcile advances the rotation by at
//! most one phase and says when to come back, the shape of a controller's requeue.
//!
//! `cargo run --example operator --features kube` (uses your kubeconfig).

use std::time::Duration;

use certrotate::core::plan::Next;
use certrotate::core::{PlanOptions, Profile};
use certrotate::engine::{KubeStore, Rotator, RunMode};

/// One reconcile: returns how long to wait before the next one.
async fn reconcile(
    client: kube::Client,
    namespace: &str,
    rotate: bool,
) -> Result<Duration, certrotate::engine::Error> {
    let profile = Profile::envoy_gateway(namespace);
    let mut options = PlanOptions::default();
    options.overwrite = rotate;
    // Share the operator's client: no second connection pool, the same kube version.
    let store = KubeStore::new(client);
    let report = Rotator::new(store, profile, options)
        .run(RunMode::Once)
        .await?;
    println!("{namespace}: {} (phase {})", report.summary, report.phase);
    #[allow(clippy::disallowed_methods)] // the operator's own clock
    let now = time::OffsetDateTime::now_utc();
    Ok(match report.next {
        Next::WaitUntil { at, .. } => Duration::try_from(at - now).unwrap_or_default(),
        Next::WaitForRollout { .. } => Duration::from_secs(10),
        _ => Duration::from_secs(3600),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = kube::Client::try_default().await?;
    let namespace = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "envoy-gateway-system".into());
    // Rotate once, then keep reconciling until the rotation is done.
    let mut rotate = true;
    loop {
        let requeue = reconcile(client.clone(), &namespace, rotate).await?;
        rotate = false;
        if requeue >= Duration::from_secs(3600) {
            return Ok(());
        }
        tokio::time::sleep(requeue).await;
    }
}
