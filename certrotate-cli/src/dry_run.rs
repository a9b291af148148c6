//! `rotate --dry-run`: the whole run, not only its first plan. The observed state is
//! copied into memory and the same engine runs there on a manual clock, so the dry run
//! lists every plan the real run would apply, in order, with the waits between them: up
//! to the first wait without `--wait` (one run advances one phase), to the end with it.

use std::sync::Arc;

use anyhow::Result;
use certrotate_core::RotationPolicy;
use certrotate_core::plan::Next;
use certrotate_core::{Profile, RotationPlan};
use certrotate_kube::{Clock, Engine, ManualClock, MemoryStore, RunMode, Store, observe};
use time::OffsetDateTime;
use tracing::instrument::WithSubscriber as _;

/// The plans a run of `profile` on `store` with `options` and `mode` would apply, starting
/// at `now`, each with the (simulated) time it would run at. Nothing is written to `store`.
pub(crate) async fn whole_run<S: Store>(
    store: &S,
    profile: &Profile,
    options: &RotationPolicy,
    mode: RunMode,
    now: OffsetDateTime,
) -> Result<Vec<(OffsetDateTime, RotationPlan)>> {
    let observed = observe(store, profile).await?;
    // Resolved once, as the real run resolves it at its first read.
    let policy = options.resolve(profile, &observed)?;
    // Whole seconds (the times shown are to the second), rounded up: never before a phase
    // start the store recorded a moment ago.
    let now = match now.replace_nanosecond(0) {
        Ok(second) if second < now => second + time::Duration::SECOND,
        _ => now,
    };
    let memory = Arc::new(MemoryStore::new());
    for (secret, value) in observed.secrets {
        memory.insert_secret(secret, value);
    }
    // Rollouts complete at once in memory, which is what a real run waits for.
    for workload in observed.workloads.into_keys() {
        memory.insert_workload(workload);
    }
    for (webhook, value) in observed.webhooks {
        memory.insert_webhook(webhook, value.ca_bundles);
    }
    let clock = Arc::new(ManualClock::new(now));
    let engine = Engine::new(memory).with_clock(Arc::clone(&clock));
    let mut plans = Vec::new();
    // The engine logs what it writes; these writes are in memory, so nothing is logged.
    let quiet = tracing::subscriber::NoSubscriber::default();
    // A rotation is a handful of plans; the bound only guards against a planner bug.
    for _ in 0..64 {
        let plan = engine.plan(profile, &policy).with_subscriber(quiet).await?;
        let at = clock.now();
        if plan.writes() {
            engine.apply(profile, &plan).with_subscriber(quiet).await?;
        }
        let next = plan.next.clone();
        plans.push((at, plan));
        match (next, mode) {
            (Next::Continue, _) => {}
            (Next::Done, _) | (_, RunMode::Once) => break,
            (Next::WaitUntil { at, .. }, RunMode::UntilDone { .. }) => {
                clock.sleep_until(at).await;
            }
            (Next::WaitForRollout { .. }, RunMode::UntilDone { .. }) => {}
        }
    }
    Ok(plans)
}
