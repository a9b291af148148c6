//! Between rounds the engine plans from what it read plus its own writes (one read of the
//! profile per run, not one per phase). A change someone else makes meanwhile must still be
//! seen: the engine's next write of that object carries the version it planned from, so it
//! conflicts, and the engine re-reads and re-plans instead of overwriting.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use certrotate_core::SeededEntropy;
use certrotate_core::plan::Next;
use certrotate_kube::{Clock, Engine, Event, ManualClock, SecretUpdate, Store, observe};
use time::OffsetDateTime;

use super::{T0, assert_trusted, install, options, profile, secret, until_done};

/// A clock that, at the first wait of a rotation, changes the `envoy` Secret the way an
/// admin or another tool would while the rotation waits for convergence.
struct MeddlingClock<S> {
    inner: Arc<ManualClock>,
    store: S,
    meddled: AtomicBool,
}

const OWNER: &str = "example.com/owner";

impl<S: Store> Clock for MeddlingClock<S> {
    fn now(&self) -> OffsetDateTime {
        self.inner.now()
    }

    fn sleep_until(&self, at: OffsetDateTime) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if !self.meddled.swap(true, Ordering::SeqCst) {
                let envoy = secret("envoy");
                let current = self.store.read_secret(&envoy).await.unwrap().unwrap();
                let mut update = SecretUpdate::default();
                update
                    .annotations
                    .insert(OWNER.into(), Some("platform-team".into()));
                self.store
                    .update_secret(&envoy, &current.version, &update)
                    .await
                    .unwrap();
            }
            self.inner.sleep_until(at).await;
        })
    }
}

pub async fn a_change_during_a_wait_is_seen<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let meddling = MeddlingClock {
        inner: clock.clone(),
        store: store.clone(),
        meddled: AtomicBool::new(false),
    };
    let report = Engine::new(store.clone())
        .with_clock(meddling)
        .with_entropy(SeededEntropy::new(2))
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    assert_eq!(report.next, Next::Done);
    let conflicts = report
        .events
        .iter()
        .filter(|e| matches!(e, Event::Conflict { .. }))
        .count();
    assert!(
        conflicts >= 1,
        "the write planned before the change must conflict: {:?}",
        report.events
    );
    let observed = observe(&*store, &profile()).await.unwrap();
    assert_eq!(
        observed.secrets[&secret("envoy")]
            .annotations
            .get(OWNER)
            .map(String::as_str),
        Some("platform-team"),
        "the change made during the wait is kept"
    );
    assert_trusted(&observed, clock.now(), "after a change during a wait");
}
