//! The pure core of certrotate: rotate the TLS certificates of a Kubernetes control plane
//! without a single failed mTLS handshake.
//!
//! Nothing here does I/O, reads the clock or keeps global state: time (`now`) and
//! randomness (an [`Entropy`]) are parameters, and the rotation protocol is a function from
//! observed state to a [`RotationPlan`]. `certrotate-kube` observes stores and applies plans.
//!
//! - [`Ca`], [`CaParams`], [`LeafParams`], [`HmacKey`]: generation with rcgen (aws-lc).
//! - [`bundle_ca_certs`]: Envoy Gateway's CA bundling rule, made total and reported.
//! - [`inspect_pem`], [`verify_chain`]: what a certificate says, and whether a bundle
//!   trusts a leaf.
//! - [`Profile`]: a control plane's Secrets, leaves, start-only workloads and webhooks;
//!   [`Profile::envoy_gateway`] reproduces `certgen`.
//! - [`plan()`]: the staged rotation state machine (`stable → prepared → trust → leaves →
//!   stable`), one module per concept under [`plan`](mod@plan): the observed model, the
//!   persisted state and its codec, the plan's steps, and the phase transitions.
//! - [`trust::check_step`]: the trust invariant of a step, every combination of before and
//!   after, verified with rustls-webpki.
//! - [`evidence`]: what a TLS server shows a probe (the CAs it asks client certificates
//!   from, the leaf it serves) and the rules that judge whether every server has converged.
//!
//! # Embedding
//!
//! Most users embed `certrotate-kube`, whose engine observes a store, calls [`plan()`] and
//! applies the result. The core is for those who bring their own I/O (another API client,
//! a GitOps repository, a test): hand it what you read, and apply what it returns in
//! order. Everything it decides is in the value: typed steps with the version each write
//! expects, what comes next and when, and a typed summary.
//!
//! ```
//! use certrotate_core::plan::{Next, Observed, Step, StepReason, Summary};
//! use certrotate_core::{plan, RotationPolicy, Profile, SeededEntropy};
//! use time::macros::datetime;
//!
//! let profile = Profile::envoy_gateway("envoy-gateway-system");
//! let now = datetime!(2026-06-01 0:00 UTC);
//! // Nothing read yet: the plan is an install.
//! let p = plan(&profile, &Observed::default(), &RotationPolicy::default(), now, &mut SeededEntropy::new(1))?;
//! assert!(matches!(p.summary, Summary::Installed { .. }));
//! assert_eq!(p.next, Next::Done);
//! let created: Vec<_> = p.steps.iter().filter_map(|s| match s {
//!     Step::Secret(c) if c.reason == StepReason::FirstInstall => Some(c.secret.name.as_str()),
//!     _ => None,
//! }).collect();
//! assert_eq!(created, ["envoy-gateway-ca", "envoy-gateway", "envoy", "envoy-rate-limit"]);
//! # Ok::<(), certrotate_core::Error>(())
//! ```
//!
//! # Example
//!
//! Issue a leaf, rotate the CA, and check that peers holding the bundle trust both the old
//! and the new leaf:
//!
//! ```
//! use certrotate_core::{bundle_ca_certs, verify_chain, Ca, CaParams, LeafParams, Origin, SeededEntropy};
//! use time::macros::datetime;
//!
//! let now = datetime!(2026-06-01 12:00 UTC);
//! let mut entropy = SeededEntropy::new(7);
//! let old_ca = Ca::generate(&CaParams::new("control-plane"), now, &mut entropy)?;
//! let params = LeafParams::new("envoy-gateway", vec!["envoy-gateway.envoy-gateway-system.svc".into()]);
//! let old_leaf = old_ca.issue_leaf(&params, now, &mut entropy)?;
//!
//! let new_ca = Ca::generate(&CaParams::new("control-plane"), now, &mut entropy)?;
//! let new_leaf = new_ca.issue_leaf(&params, now, &mut entropy)?;
//! let bundle = bundle_ca_certs(new_ca.cert_pem().as_bytes(), old_ca.cert_pem().as_bytes(), now)?;
//!
//! let o = Origin::new("example");
//! for leaf in [&old_leaf, &new_leaf] {
//!     let verdict = verify_chain(leaf.cert_pem.as_bytes(), &o, bundle.pem.as_bytes(), &o, now)?;
//!     assert!(verdict.is_trusted());
//! }
//! # Ok::<(), certrotate_core::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod bundle;
mod check;
mod duration_serde;
mod error;
pub mod evidence;
mod fingerprint;
mod generate;
mod inspect;
mod keypair;
mod pem_blocks;
mod phase;
pub mod plan;
pub mod profile;
mod redact;
mod refs;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod trust;
mod usable_ca;
mod wire;

pub use bundle::{
    Bundle, BundlePolicy, BundleReport, CarriedCert, SkipReason, SkippedBlock, bundle_ca_certs,
};
pub use check::{CheckReport, Expiring, KeyCheck, TrustPair, check};
pub use error::{Error, Origin, error_chain};
pub use fingerprint::Fingerprint;
pub use generate::{
    Ca, CaParams, Entropy, ExtendedKeyUsage, HmacKey, IssuedLeaf, KeyAlgorithm, KeyEncoding,
    KeyUsage, LeafParams, PrivateKeyDer, PrivateKeyPem, SeededEntropy, SystemEntropy,
};
pub use inspect::{CertSummary, ChainVerdict, inspect_pem, verify_chain};
pub use keypair::KeyProblem;
pub use plan::plan;
pub use plan::policy::{RotationPolicy, Trigger};
pub use plan::steps::RotationPlan;
pub use profile::model::Profile;
pub use usable_ca::CaDefect;

/// Formats a time as RFC 3339 in UTC at second precision (`2026-06-01T12:00:00Z`), as
/// Kubernetes does: a fraction of a second is cut, never rounded up.
///
/// Total: a time `time` cannot convert to UTC (`9999-12-31T23:59:59-23:59` is year
/// 10000 there) keeps its offset, and one RFC 3339 cannot write at all is written in
/// `time`'s own format. Times read from outside are brought into range by
/// [`parse_rfc3339`] first, so neither happens to them.
///
/// ```
/// let t = time::macros::datetime!(2026-06-01 12:00:00.999 UTC);
/// assert_eq!(certrotate_core::rfc3339(t), "2026-06-01T12:00:00Z");
/// ```
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.checked_to_offset(time::UtcOffset::UTC).unwrap_or(t);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Parses an RFC 3339 time (`2026-06-01T12:00:00Z`, any offset RFC 3339 allows) into UTC.
///
/// A time RFC 3339 can write but that falls outside the years 0000 to 9999 in UTC
/// (`9999-12-31T23:59:59-23:59` is year 10000 there) is [`TimeError::OutOfRange`]: no
/// certificate can say it, and `time` cannot convert it to UTC.
///
/// ```
/// use certrotate_core::{parse_rfc3339, TimeError};
/// let t = parse_rfc3339("2026-06-01T14:00:00+02:00")?;
/// assert_eq!(t, time::macros::datetime!(2026-06-01 12:00 UTC));
/// assert_eq!(parse_rfc3339("9999-12-31T23:59:59-23:59"), Err(TimeError::OutOfRange));
/// assert_eq!(parse_rfc3339("yesterday"), Err(TimeError::Unparsable));
/// # Ok::<(), TimeError>(())
/// ```
pub fn parse_rfc3339(text: &str) -> Result<time::OffsetDateTime, TimeError> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| TimeError::Unparsable)?;
    in_range(t).ok_or(TimeError::OutOfRange)
}

/// Why a text is not a time [`parse_rfc3339`] accepts. The caller names the field; no
/// variant quotes the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// Not an RFC 3339 time.
    #[error("not an RFC 3339 time (such as 2026-06-01T12:00:00Z)")]
    Unparsable,
    /// An RFC 3339 time outside the years 0000 to 9999 in UTC.
    #[error("outside the years 0000 to 9999 in UTC")]
    OutOfRange,
}

/// `t` in UTC if it falls in the years 0000 to 9999 there (what X.509 and RFC 3339 can
/// write), else `None`. Every time computed from a time read from outside passes here.
pub(crate) fn in_range(t: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
    t.checked_to_offset(time::UtcOffset::UTC)
        .filter(|t| (0..=9999).contains(&t.year()))
}

/// The longest duration accepted anywhere (100 years of 365.25 days): any longer one, added
/// to a plausible now, would leave the years X.509 and `time` can represent.
pub(crate) const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(3_155_760_000);

/// Parses a human duration: `90d`, `5y`, `12h`, `1h 30m`, `0s` (humantime's units: a year
/// is 365.25 days), or plain seconds; at most 100 years (longer, added to a plausible now,
/// leaves the years X.509 can write).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, Error> {
    let text = text.trim();
    let parsed = match text.parse::<u64>() {
        Ok(secs) => std::time::Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text).map_err(|e| Error::InvalidParameter {
            field: "duration".into(),
            reason: format!("{text:?}: {e} (try 90d, 5y, 12h or 30m)"),
        })?,
    };
    if parsed > MAX_DURATION {
        return Err(Error::InvalidParameter {
            field: "duration".into(),
            reason: format!("{text:?} is longer than the limit of 100 years"),
        });
    }
    Ok(parsed)
}
