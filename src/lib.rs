//! certrotate: rotate the TLS certificates of a Kubernetes control plane without a single
//! failed mTLS handshake.
//!
//! This facade re-exports the crates behind features:
//!
//! - [`core`] (always): generation, the CA bundling rule, inspection, profiles and the
//!   rotation state machine, pure.
//! - [`engine`] (feature `engine`, default): stores (in-memory, directory, and with feature
//!   `kube` the Kubernetes API) and the crash-safe rotation engine.
//! - feature `testing`: proptest strategies and fixtures, as `core::testing`.
#![cfg_attr(feature = "testing", doc = "  (See [`core::testing`].)")]
//!
//! ```
//! use certrotate::core::{bundle_ca_certs, Ca, CaParams, SeededEntropy};
//! use time::macros::datetime;
//!
//! let now = datetime!(2026-06-01 0:00 UTC);
//! let mut entropy = SeededEntropy::new(1);
//! let old = Ca::generate(&CaParams::new("ca"), now, &mut entropy)?;
//! let new = Ca::generate(&CaParams::new("ca"), now, &mut entropy)?;
//! let bundle = bundle_ca_certs(new.cert_pem().as_bytes(), old.cert_pem().as_bytes(), now)?;
//! assert_eq!(bundle.report.carried.len(), 1);
//! # Ok::<(), certrotate::core::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use certrotate_core as core;

#[cfg(feature = "engine")]
#[cfg_attr(docsrs, doc(cfg(feature = "engine")))]
pub use certrotate_kube as engine;
