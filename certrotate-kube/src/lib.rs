//! Stores and the rotation engine of certrotate.
//!
//! The core ([`certrotate_core`]) decides; this crate reads and writes. Narrow traits
//! ([`SecretStore`], [`WorkloadStore`], [`WebhookStore`]) have three implementations:
//!
//! - [`MemoryStore`]: in memory, with the API server's semantics (versions, conflicts),
//!   plus [`FaultyStore`] to inject crashes and errors in tests;
//! - [`DirStore`]: local mode, Secrets as folders laid out like a mounted Secret volume;
//! - `KubeStore` (feature `kube`): the Kubernetes API through kube-rs.
//!
//! [`simulate::simulate`] runs a whole rotation in memory and checks the trust invariant
//! of every step.
//!
//! [`Rotator`] drives a rotation: observe → plan → apply in order → wait → repeat. The
//! default strategy adds trust everywhere first, waits, then switches leaves, so no
//! handshake fails whatever order components reload in; a run stopped after any write
//! resumes with the same new CA.
//!
//! # Example: embedding in an operator
//!
//! ```
//! use certrotate_core::{PlanOptions, Profile, SeededEntropy};
//! use certrotate_kube::{ManualClock, MemoryStore, Rotator, RunMode};
//! use time::macros::datetime;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let profile = Profile::envoy_gateway("envoy-gateway-system");
//! let clock = ManualClock::new(datetime!(2026-06-01 0:00 UTC));
//!
//! // First install: every Secret is created.
//! let mut rotator = Rotator::new(MemoryStore::new(), profile.clone(), PlanOptions::default())
//!     .with_clock(clock)
//!     .with_entropy(SeededEntropy::new(1));
//! rotator.run(RunMode::Once).await?;
//!
//! // In a reconcile loop, a rotation advances one phase per call; here we wait it out.
//! let mut options = PlanOptions::default();
//! options.overwrite = true;
//! # let store = std::sync::Arc::new(MemoryStore::new());
//! let report = Rotator::new(store, profile, options)
//!     .with_clock(ManualClock::new(datetime!(2026-06-01 0:00 UTC)))
//!     .run(RunMode::UntilDone { timeout: std::time::Duration::from_secs(3600) })
//!     .await?;
//! assert_eq!(report.next, certrotate_core::plan::Next::Done);
//! # Ok::<(), certrotate_kube::Error>(())
//! # }).unwrap();
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
// A new variant of a workspace enum (a step, an event, a reason) must fail to compile in
// every consumer instead of falling into a catch-all arm.
#![warn(clippy::wildcard_enum_match_arm)]
#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod clock;
mod dir;
mod engine;
mod error;
mod gate;
#[cfg(feature = "kube")]
#[cfg_attr(docsrs, doc(cfg(feature = "kube")))]
mod kube_store;
mod memory;
mod parallel;
pub mod simulate;
mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dir::{DirError, DirStore, MAX_FILE_BYTES, TrustChecks, Untrusted};
pub use engine::{Event, Rotator, RunMode, RunReport, observe};
pub use error::{Error, StoreError};
#[cfg(feature = "kube")]
#[cfg_attr(docsrs, doc(cfg(feature = "kube")))]
pub use kube_store::{FIELD_MANAGER, KubeStore};
pub use memory::{FaultyStore, MemoryStore};
pub use parallel::ParallelKeys;
pub use store::{IoKind, NewSecret, SecretStore, SecretUpdate, Store, WebhookStore, WorkloadStore};

/// Stores behind an `Arc` are stores, so tests and operators can share one.
mod arc_impls {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use certrotate_core::plan::{
        ObjectRef, ObservedSecret, ObservedWebhook, ObservedWorkload, WebhookRef, WorkloadRef,
    };

    use crate::error::StoreError;
    use crate::store::{NewSecret, SecretStore, SecretUpdate, Store, WebhookStore, WorkloadStore};

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
    }

    impl<S: WorkloadStore> WorkloadStore for Arc<S> {
        async fn read_workload(
            &self,
            w: &WorkloadRef,
        ) -> Result<Option<ObservedWorkload>, StoreError> {
            (**self).read_workload(w).await
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
