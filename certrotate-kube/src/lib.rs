//! Stores and the rotation engine of certrotate.
//!
//! The core ([`certrotate_core`]) decides; this crate reads and writes. Narrow traits
//! ([`SecretStore`], [`WorkloadStore`], [`WebhookStore`]) have three implementations:
//!
//! - [`MemoryStore`]: in memory, with the API server's semantics (versions, conflicts),
//!   plus [`FaultyStore`] to inject crashes and errors in tests;
//! - [`DirStore`]: local mode, Secrets as folders laid out like a mounted Secret volume,
//!   or as Envoy Gateway's standalone mode reads them ([`DirLayout`]);
//! - `KubeStore` (feature `kube`): the Kubernetes API through kube-rs.
//!
//! [`simulate::simulate`] runs a whole rotation in memory and checks the trust invariant
//! of every step.
//!
//! [`probe::probe`] opens one handshake to each TLS server of a control plane, with no
//! client certificate, and records what it shows (the CAs it asks client certificates
//! from, the chain it presents) for the core's rules ([`certrotate_core::evidence`]).
//!
//! [`Engine`] drives rotations: observe → plan → apply in order → wait → repeat. The
//! default strategy adds trust everywhere first, waits, then switches leaves, so no
//! handshake fails whatever order components reload in; a run stopped after any write
//! resumes with the same new CA.
//!
//! # Example: embedding in an operator
//!
//! An operator creates one [`Engine`] (store, clock, [`EventSink`]) and shares it with
//! every reconcile (it takes `&self`, so a controller's context can hold it). Each
//! [`Engine::reconcile`] is handed the control plane's [`Profile`](certrotate_core::Profile)
//! and its [`RotationPolicy`](certrotate_core::RotationPolicy), advances the rotation as far
//! as it safely may, and returns the phase reached and when to come back, measured with
//! the engine's own clock; kube-runtime's `Action::requeue(report.requeue_after)` is the
//! whole mapping (see `examples/controller.rs`). Here an installed control plane is
//! rotated, one reconcile per phase:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use certrotate_core::plan::{Next, Phase};
//! use certrotate_core::{Profile, RotationPolicy, SeededEntropy, Trigger};
//! use certrotate_kube::{Engine, ManualClock, MemoryStore};
//! use time::macros::datetime;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let profile = Profile::envoy_gateway("envoy-gateway-system");
//! let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 0:00 UTC)));
//! let engine = Engine::new(MemoryStore::new())
//!     .with_clock(clock.clone())
//!     .with_entropy(SeededEntropy::new(1));
//!
//! // The install: the CA and every Secret are created; nothing more to do.
//! let install = RotationPolicy::default();
//! let report = engine.reconcile(&profile, &install).await?;
//! assert_eq!((report.phase, report.requeue_after), (Phase::Stable, None));
//! clock.advance(Duration::from_secs(24 * 3600));
//!
//! // A rotation, asked for once (an operator's resource generation): trust first, then
//! // leaves, then done. Reconciling the same request again never rotates twice.
//! let rotate = RotationPolicy::default()
//!     .with_trigger(Trigger::Once("generation-2".into()))
//!     .with_convergence_interval(Duration::from_secs(300));
//! let report = engine.reconcile(&profile, &rotate).await?;
//! assert_eq!(report.phase, Phase::Trust); // every bundle carries both CAs
//! assert_eq!(report.requeue_after, Some(Duration::from_secs(300)));
//!
//! // Too early: nothing is written, and the wait left is what the outcome says.
//! clock.advance(Duration::from_secs(120));
//! let report = engine.reconcile(&profile, &rotate).await?;
//! assert_eq!((report.phase, report.writes), (Phase::Trust, 0));
//! assert_eq!(report.requeue_after, Some(Duration::from_secs(180)));
//!
//! clock.advance(report.requeue_after.unwrap());
//! let report = engine.reconcile(&profile, &rotate).await?;
//! assert_eq!(report.phase, Phase::Leaves); // every leaf issued by the new CA
//!
//! clock.advance(report.requeue_after.unwrap());
//! let report = engine.reconcile(&profile, &rotate).await?;
//! assert_eq!((report.phase, &report.next), (Phase::Stable, &Next::Done));
//! println!("{}", report.summary); // done: CA … is current
//!
//! // The same request, reconciled again: already done.
//! let report = engine.reconcile(&profile, &rotate).await?;
//! assert_eq!(report.writes, 0);
//! # Ok::<(), certrotate_kube::Error>(())
//! # }).unwrap();
//! ```
//!
//! A Job or CronJob does the same with [`Engine::run`]: [`RunMode::Once`] is one
//! reconcile, [`RunMode::UntilDone`] sleeps through the waits.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
// A new variant of a workspace enum (a step, an event, a reason) must fail to compile in
// every consumer instead of falling into a catch-all arm.
#![warn(clippy::wildcard_enum_match_arm)]
#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod budget;
mod clock;
mod dir;
mod engine;
mod error;
pub mod events;
pub mod evidence;
pub mod host;
#[cfg(feature = "kube")]
#[cfg_attr(docsrs, doc(cfg(feature = "kube")))]
mod kube_io;
#[cfg(feature = "kube")]
mod kube_store;
#[cfg(feature = "kube")]
mod kubeconfig;
mod memory;
mod parallel;
pub mod probe;
pub mod simulate;
mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dir::{
    DirError, DirLayout, DirStore, LayoutProblem, MAX_FILE_BYTES, TrustChecks, Untrusted,
};
pub use engine::{Engine, Event, EventSink, Recording, RunEvents, RunMode, RunReport, observe};
pub use error::{Error, StoreError};
#[cfg(feature = "kube")]
#[cfg_attr(docsrs, doc(cfg(feature = "kube")))]
pub use kube_io::{ClientLimits, bounded_client};
#[cfg(feature = "kube")]
#[cfg_attr(docsrs, doc(cfg(feature = "kube")))]
pub use kube_store::{FIELD_MANAGER, KubeEndpoint, KubeStore};
#[cfg(feature = "kube")]
#[cfg_attr(docsrs, doc(cfg(feature = "kube")))]
pub use kubeconfig::NoKubeconfig;
pub use memory::{FaultyStore, MemoryStore};
pub use parallel::ParallelKeys;
pub use store::{
    IoKind, NewSecret, SecretStore, SecretUpdate, SecretWrite, Store, WebhookStore, WorkloadStore,
};

/// Stores behind an `Arc` are stores, so tests and operators can share one.
mod arc_impls {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use certrotate_core::plan::{
        ObjectRef, ObservedSecret, ObservedWebhook, ObservedWorkload, WebhookRef, WorkloadRef,
        WorkloadSelector,
    };

    use crate::error::StoreError;
    use crate::store::{
        NewSecret, SecretStore, SecretUpdate, SecretWrite, Store, WebhookStore, WorkloadStore,
    };

    impl<S: SecretStore> SecretStore for Arc<S> {
        async fn read_secret(&self, s: &ObjectRef) -> Result<Option<ObservedSecret>, StoreError> {
            (**self).read_secret(s).await
        }
        async fn read_secrets(
            &self,
            s: &[ObjectRef],
            l: &BTreeMap<String, String>,
        ) -> Vec<Result<Option<ObservedSecret>, StoreError>> {
            (**self).read_secrets(s, l).await
        }
        async fn create_secret(&self, s: &ObjectRef, n: &NewSecret) -> Result<String, StoreError> {
            (**self).create_secret(s, n).await
        }
        async fn update_secret(
            &self,
            s: &ObjectRef,
            v: &str,
            u: &SecretUpdate,
        ) -> Result<String, StoreError> {
            (**self).update_secret(s, v, u).await
        }
        async fn write_secrets(&self, w: &[SecretWrite]) -> Vec<Result<String, StoreError>> {
            (**self).write_secrets(w).await
        }
    }

    impl<S: WorkloadStore> WorkloadStore for Arc<S> {
        async fn read_workload(
            &self,
            w: &WorkloadRef,
        ) -> Result<Option<ObservedWorkload>, StoreError> {
            (**self).read_workload(w).await
        }
        async fn list_workloads(
            &self,
            s: &WorkloadSelector,
        ) -> Result<Vec<(WorkloadRef, ObservedWorkload)>, StoreError> {
            (**self).list_workloads(s).await
        }
        async fn restart_workload(
            &self,
            w: &WorkloadRef,
            a: &BTreeMap<String, String>,
        ) -> Result<(), StoreError> {
            (**self).restart_workload(w, a).await
        }
    }

    impl<S: WebhookStore> WebhookStore for Arc<S> {
        async fn read_webhook(
            &self,
            w: &WebhookRef,
        ) -> Result<Option<ObservedWebhook>, StoreError> {
            (**self).read_webhook(w).await
        }
        async fn update_webhook(
            &self,
            w: &WebhookRef,
            v: &str,
            b: &[Vec<u8>],
        ) -> Result<String, StoreError> {
            (**self).update_webhook(w, v, b).await
        }
    }

    impl<S: Store> Store for Arc<S> {
        fn describe(&self) -> String {
            (**self).describe()
        }

        fn has_cluster_objects(&self) -> bool {
            (**self).has_cluster_objects()
        }

        fn io(&self) -> crate::IoKind {
            (**self).io()
        }
    }
}
