//! Install and rotate the envoy-gateway profile's certificates in a local folder, then show
//! that every peer trusts every leaf.
//!
//! `cargo run --example local_rotation [DIR]`

use std::time::Duration;

use certrotate::core::{Profile, RotationPolicy, Trigger, check};
use certrotate::engine::{DirStore, Engine, RunMode, observe};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(Into::into)
        .unwrap_or_else(|| std::env::temp_dir().join("certrotate-example"));
    let profile = Profile::envoy_gateway("envoy-gateway-system");
    let store = DirStore::new(&dir);
    let engine = Engine::new(store.clone());

    // First install (or nothing, if it is there already).
    let report = engine
        .run(&profile, &RotationPolicy::default(), RunMode::Once)
        .await?;
    println!("install: {}", report.summary);

    // A staged rotation away from the current CA, run to the end (what `certrotate rotate
    // --overwrite --force --wait` does). Local mode needs no convergence interval.
    let rotate = RotationPolicy::default()
        .with_trigger(Trigger::Now)
        .with_force(true)
        .with_convergence_interval(Duration::ZERO);
    let report = engine
        .run(
            &profile,
            &rotate,
            RunMode::UntilDone {
                timeout: Duration::from_secs(60),
            },
        )
        .await?;
    println!("rotation: {} ({} writes)", report.summary, report.writes);

    let observed = observe(&store, &profile).await?;
    #[allow(clippy::disallowed_methods)] // an example program may read the clock directly
    let now = time::OffsetDateTime::now_utc();
    let trust = check(&profile, &observed, now, Duration::from_secs(30 * 86_400))?;
    println!(
        "trust: {} of {} pairs trusted; certificates in {}",
        trust
            .pairs
            .iter()
            .filter(|p| p.verdict.is_trusted())
            .count(),
        trust.pairs.len(),
        dir.display()
    );
    Ok(())
}
