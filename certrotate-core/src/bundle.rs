//! The CA bundling rule: new CA first, then at most `max_carried` certificates of the old
//! `ca.crt` that are still valid and not already present.
//!
//! This is Envoy Gateway's `bundleCACerts` (PR #8534), made total: every block of `old` that
//! is not carried is reported with the reason, bad blocks of `old` are skipped instead of
//! failing the rotation, and a private key pasted into `ca.crt` is never carried.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use crate::error::{Error, Origin};
use crate::fingerprint::Fingerprint;
use crate::pem_blocks;

/// Combines the PEM certificates of `new` with those of `old` under the default
/// [`BundlePolicy`] (at most one certificate carried over, as upstream).
///
/// Every certificate of `new` comes first, in order; then the first certificate of `old` that
/// is not expired at `now` (`not_after < now`) and not already in the bundle (compared by
/// DER). Blocks of `old` that are not certificates, cannot be decoded, are expired,
/// duplicated, or beyond the limit are skipped and listed in the [`BundleReport`].
///
/// Fails only if `new` is not one or more well-formed certificates.
///
/// The rule is idempotent: `bundle(new, bundle(new, old)) == bundle(new, old)`.
///
/// ```
/// # use certrotate_core::{bundle_ca_certs, Ca, CaParams, SeededEntropy};
/// # use time::macros::datetime;
/// let now = datetime!(2026-01-01 0:00 UTC);
/// let mut entropy = SeededEntropy::new(1);
/// let old = Ca::generate(&CaParams::new("ca-1"), now, &mut entropy)?;
/// let new = Ca::generate(&CaParams::new("ca-2"), now, &mut entropy)?;
///
/// let bundle = bundle_ca_certs(new.cert_pem().as_bytes(), old.cert_pem().as_bytes(), now)?;
/// assert_eq!(bundle.report.carried.len(), 1);
/// assert!(bundle.pem.starts_with(new.cert_pem()));
///
/// // Idempotent: bundling again with the same new CA changes nothing.
/// let again = bundle_ca_certs(new.cert_pem().as_bytes(), bundle.pem.as_bytes(), now)?;
/// assert_eq!(again.pem, bundle.pem);
/// # Ok::<(), certrotate_core::Error>(())
/// ```
pub fn bundle_ca_certs(new: &[u8], old: &[u8], now: OffsetDateTime) -> Result<Bundle, Error> {
    BundlePolicy::default().bundle(new, old, now)
}

/// How many certificates of the old bundle are carried into the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BundlePolicy {
    /// The most certificates of `old` to carry (default 1, as upstream). More than one helps
    /// operators who rotate again before every component converged on the last rotation;
    /// the bundle then holds up to `new + max_carried` certificates, never more.
    pub max_carried: usize,
}

impl Default for BundlePolicy {
    fn default() -> Self {
        Self { max_carried: 1 }
    }
}

impl BundlePolicy {
    /// A policy that carries at most `max_carried` certificates of `old`.
    pub fn new(max_carried: usize) -> Self {
        Self { max_carried }
    }

    /// Applies the rule; see [`bundle_ca_certs`].
    pub fn bundle(&self, new: &[u8], old: &[u8], now: OffsetDateTime) -> Result<Bundle, Error> {
        let new_ders = pem_blocks::certificates(new, &Origin::new("new CA"))?;
        for (i, der) in new_ders.iter().enumerate() {
            pem_blocks::parse_certificate_shallow(der).map_err(|reason| {
                Error::InvalidCertificate {
                    origin: Origin::new("new CA"),
                    block: i + 1,
                    reason,
                }
            })?;
        }
        let in_new: HashSet<&[u8]> = new_ders.iter().map(Vec::as_slice).collect();
        let mut report = BundleReport {
            new: Vec::with_capacity(new_ders.len()),
            carried: Vec::new(),
            skipped: Vec::new(),
        };
        for der in &new_ders {
            report.new.push(Fingerprint::of(der));
        }
        let mut carried_ders: Vec<Vec<u8>> = Vec::new();

        for block in pem_blocks::blocks(old) {
            let skip = |reason| SkippedBlock {
                block: block.index,
                reason,
            };
            if carried_ders.len() >= self.max_carried {
                // Past the limit: only the label is read, the block is not decoded.
                let reason = match block.label() {
                    Some("CERTIFICATE") => SkipReason::BeyondLimit {
                        limit: self.max_carried,
                    },
                    Some(label) => SkipReason::NotACertificate {
                        label: label.to_owned(),
                    },
                    None => SkipReason::Malformed {
                        reason: "no END line (truncated PEM?)".into(),
                    },
                };
                report.skipped.push(skip(reason));
                continue;
            }
            let der = match block.decode() {
                Ok(("CERTIFICATE", der)) => der,
                Ok((label, _)) => {
                    report.skipped.push(skip(SkipReason::NotACertificate {
                        label: label.to_owned(),
                    }));
                    continue;
                }
                Err(reason) => {
                    report.skipped.push(skip(SkipReason::Malformed { reason }));
                    continue;
                }
            };
            if in_new.contains(der.as_slice()) || carried_ders.contains(&der) {
                report.skipped.push(skip(SkipReason::Duplicate {
                    fingerprint: Fingerprint::of(&der),
                }));
                continue;
            }
            let not_after = match pem_blocks::parse_certificate_shallow(&der) {
                Ok(cert) => cert.validity().not_after.to_datetime(),
                Err(e) => {
                    report.skipped.push(skip(SkipReason::Malformed {
                        reason: format!("not a valid X.509 certificate: {e}"),
                    }));
                    continue;
                }
            };
            if not_after < now {
                report.skipped.push(skip(SkipReason::Expired { not_after }));
                continue;
            }
            report.carried.push(CarriedCert {
                block: block.index,
                fingerprint: Fingerprint::of(&der),
                not_after,
            });
            carried_ders.push(der);
        }

        let pem = pem_blocks::encode_certificates(
            new_ders
                .iter()
                .chain(carried_ders.iter())
                .map(Vec::as_slice),
        );
        Ok(Bundle { pem, report })
    }
}

/// The result of the bundling rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Bundle {
    /// The bundle, PEM with LF line endings.
    pub pem: String,
    /// What was kept and what was skipped, and why.
    pub report: BundleReport,
}

/// What [`bundle_ca_certs`] did with each input block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BundleReport {
    /// Fingerprints of the certificates of `new`, in order.
    pub new: Vec<Fingerprint>,
    /// The certificates carried over from `old`.
    pub carried: Vec<CarriedCert>,
    /// The blocks of `old` that were not carried.
    pub skipped: Vec<SkippedBlock>,
}

/// A certificate of `old` that was carried into the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CarriedCert {
    /// 1-based index of the block in `old`.
    pub block: usize,
    /// SHA-256 fingerprint.
    pub fingerprint: Fingerprint,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// A block of `old` that was not carried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SkippedBlock {
    /// 1-based index of the block in `old`.
    pub block: usize,
    /// Why it was skipped.
    pub reason: SkipReason,
}

impl fmt::Display for SkippedBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "old block {}: {}", self.block, self.reason)
    }
}

/// Why a block of `old` was not carried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SkipReason {
    /// The certificate expired before `now`.
    Expired {
        /// Its end of validity.
        #[serde(with = "time::serde::rfc3339")]
        not_after: OffsetDateTime,
    },
    /// The certificate is already in the bundle.
    Duplicate {
        /// Its fingerprint.
        fingerprint: Fingerprint,
    },
    /// The block is not a certificate (a private key pasted into `ca.crt`, say).
    NotACertificate {
        /// The PEM label found.
        label: String,
    },
    /// The block could not be decoded, or is not an X.509 certificate.
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// Enough certificates were carried already.
    BeyondLimit {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expired { not_after } => write!(f, "expired at {}", crate::rfc3339(*not_after)),
            Self::Duplicate { fingerprint } => {
                write!(f, "already in the bundle ({})", fingerprint.short())
            }
            Self::NotACertificate { label } => write!(f, "not a certificate (found {label})"),
            Self::Malformed { reason } => write!(f, "malformed: {reason}"),
            Self::BeyondLimit { limit } => write!(f, "beyond the carry limit of {limit}"),
        }
    }
}
