//! The CA bundling rule: new CA first, then at most `max_carried` certificates of the old
//! `ca.crt` that are still valid and not already present.
//!
//! This is Envoy Gateway's `bundleCACerts` (PR #8534), made total: every block of `old` that
//! is not carried is reported with the reason, bad blocks of `old` are skipped instead of
//! failing the rotation, and a private key pasted into `ca.crt` is never carried.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use crate::error::{Error, Origin};
use crate::fingerprint::Fingerprint;
use crate::pem_blocks;
use crate::usable_ca::{self, CaDefect, Stamp};

/// Combines the PEM certificates of `new` with those of `old` under the default
/// [`BundlePolicy`] (at most one certificate carried over, as upstream).
///
/// Every certificate of `new` comes first, in order; then the first certificate of `old` that
/// is not expired at `now` (`not_after < now`) and not already in the bundle (compared by
/// DER). Blocks of `old` that are not certificates, cannot be decoded, are expired,
/// duplicated, or beyond the limit are skipped and listed in the [`BundleReport`].
///
/// Fails only if `new` is not one or more well-formed certificates, each usable as a trust
/// anchor (parsed as rustls-webpki parses the roots it loads). A certificate of `old` is
/// carried only if it passes the same check and a full X.509 parse, except that one not
/// valid yet (`now < not_before`) is carried, as upstream carries it: a CA minted on a node
/// whose clock runs ahead is still the CA of the leaves it issued.
///
/// Large inputs (1,024 certificates or more in `new`) are checked on scoped threads, as many
/// as the machine offers; the result, and the error, do not depend on it.
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

/// The reason of a block of `old` that does not start as a certificate: "not a valid X.509
/// certificate: " and [`pem_blocks::NOT_A_SEQUENCE`], fixed, so a million junk blocks
/// allocate nothing for it.
const NOT_A_CERTIFICATE_SEQUENCE: &str =
    "not a valid X.509 certificate: it does not start with a DER SEQUENCE";

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
        let mut skipped = Vec::new();
        let mut bundle = self.bundle_with(new, old, now, &mut |block| skipped.push(block))?;
        bundle.report.skipped = skipped;
        Ok(bundle)
    }

    /// Like [`BundlePolicy::bundle`], handing each skipped block of `old` to `on_skip`, in
    /// order, instead of keeping it: the report's `skipped` stays empty. A caller that
    /// only counts or summarises them (a million junk blocks) keeps memory bounded by the
    /// input.
    pub fn bundle_with(
        &self,
        new: &[u8],
        old: &[u8],
        now: OffsetDateTime,
        on_skip: &mut dyn FnMut(SkippedBlock),
    ) -> Result<Bundle, Error> {
        let stamp = Stamp::of(now);
        let (mut pem, new_fingerprints) = new_certificates(new, old.len().min(4096), stamp)?;
        let mut report = BundleReport {
            new: new_fingerprints,
            carried: Vec::new(),
            skipped: Vec::new(),
        };

        let mut in_bundle = InBundle::new(&report.new);
        let mut scratch = pem_blocks::Scratch::default();
        for block in pem_blocks::blocks(old) {
            let skip = |reason| SkippedBlock {
                block: block.index,
                reason,
            };
            if report.carried.len() >= self.max_carried {
                // Past the limit: only the label is read, the block is not decoded.
                let reason = match block.label() {
                    Some("CERTIFICATE") => SkipReason::BeyondLimit {
                        limit: self.max_carried,
                    },
                    Some(label) => SkipReason::NotACertificate {
                        label: label.to_owned(),
                    },
                    None => SkipReason::Malformed {
                        reason: Cow::Borrowed("no END line (truncated PEM?)"),
                    },
                };
                on_skip(skip(reason));
                continue;
            }
            let canonical = match block.decode_into(&mut scratch) {
                Ok(("CERTIFICATE", canonical)) => canonical,
                Ok((label, _)) => {
                    on_skip(skip(SkipReason::NotACertificate {
                        label: label.to_owned(),
                    }));
                    continue;
                }
                Err(reason) => {
                    on_skip(skip(SkipReason::Malformed {
                        reason: reason.into(),
                    }));
                    continue;
                }
            };
            let der = scratch.contents.as_slice();
            // Parsed before it is hashed: junk fails here, and a block that does not parse
            // cannot be a duplicate (everything in the bundle parsed). The commonest junk
            // is told without formatting anything.
            if !pem_blocks::starts_as_sequence(der) {
                on_skip(skip(SkipReason::Malformed {
                    reason: Cow::Borrowed(NOT_A_CERTIFICATE_SEQUENCE),
                }));
                continue;
            }
            let not_after = match pem_blocks::parse_certificate_shallow(der) {
                Ok(cert) => cert.validity().not_after.to_datetime(),
                Err(e) => {
                    on_skip(skip(SkipReason::Malformed {
                        reason: format!("not a valid X.509 certificate: {e}").into(),
                    }));
                    continue;
                }
            };
            let fingerprint = Fingerprint::of(der);
            if in_bundle.contains(&fingerprint) {
                on_skip(skip(SkipReason::Duplicate { fingerprint }));
                continue;
            }
            if not_after < now {
                on_skip(skip(SkipReason::Expired { not_after }));
                continue;
            }
            if let Err(reason) = pem_blocks::check_trust_anchor(der) {
                on_skip(skip(SkipReason::Malformed {
                    reason: reason.into(),
                }));
                continue;
            }
            if let Err(defect) = usable_ca::check_carried(der, stamp) {
                on_skip(skip(SkipReason::UnusableCa { defect }));
                continue;
            }
            in_bundle.insert(fingerprint);
            report.carried.push(CarriedCert {
                block: block.index,
                fingerprint,
                not_after,
            });
            pem_blocks::push_certificate(&mut pem, der, canonical);
        }
        Ok(Bundle { pem, report })
    }
}

/// The fingerprints already in the bundle. The first few lookups scan the list (usually
/// one or two, each far cheaper than hashing ten thousand fingerprints); a long run of
/// lookups (`old` full of expired or duplicate blocks) builds a set.
struct InBundle<'a> {
    new: &'a [Fingerprint],
    carried: Vec<Fingerprint>,
    set: Option<HashSet<Fingerprint>>,
    scans: usize,
}

impl<'a> InBundle<'a> {
    /// Lookups answered by scanning before a set is built.
    const SCANS: usize = 8;

    fn new(new: &'a [Fingerprint]) -> Self {
        Self {
            new,
            carried: Vec::new(),
            set: None,
            scans: 0,
        }
    }

    fn contains(&mut self, fingerprint: &Fingerprint) -> bool {
        if self.set.is_none() && self.scans >= Self::SCANS {
            self.set = Some(self.new.iter().chain(&self.carried).copied().collect());
        }
        match &self.set {
            Some(set) => set.contains(fingerprint),
            None => {
                self.scans += 1;
                self.new.contains(fingerprint) || self.carried.contains(fingerprint)
            }
        }
    }

    fn insert(&mut self, fingerprint: Fingerprint) {
        self.carried.push(fingerprint);
        if let Some(set) = &mut self.set {
            set.insert(fingerprint);
        }
    }
}

/// From this many certificates in `new` on, they are checked on several threads.
const PARALLEL_FROM: usize = 1024;

/// Checks and encodes every block of `new` (each must be a certificate usable as a trust
/// anchor): the start of the bundle, with room for `extra` more bytes, and the fingerprints.
///
/// Each block is decoded once, and a block already laid out as we write it is copied, not
/// re-encoded. Large inputs are split over scoped threads, as many as the machine offers (at
/// most 8); the result does not depend on the split, and the error is the first block's.
fn new_certificates(
    new: &[u8],
    extra: usize,
    now: Stamp,
) -> Result<(String, Vec<Fingerprint>), Error> {
    let blocks: Vec<_> = pem_blocks::blocks(new).collect();
    if blocks.is_empty() {
        return Err(Error::NoPemBlock {
            origin: Origin::new("new CA"),
        });
    }
    let threads = if blocks.len() >= PARALLEL_FROM {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
    } else {
        1
    };
    let capacity = new.len() + extra;
    if threads == 1 {
        return new_chunk(&blocks, capacity, now);
    }
    let chunks: Vec<_> = blocks.chunks(blocks.len().div_ceil(threads)).collect();
    std::thread::scope(|scope| {
        // The first chunk runs here; a thread that cannot be started is run here too.
        let spawned: Vec<_> = chunks[1..]
            .iter()
            .map(|chunk| {
                std::thread::Builder::new()
                    .name("certrotate-bundle".into())
                    .spawn_scoped(scope, || new_chunk(chunk, chunk.len() * 1024, now))
                    .map_err(|_| *chunk)
            })
            .collect();
        let (mut pem, mut fingerprints) = new_chunk(chunks[0], capacity, now)?;
        for handle in spawned {
            let (part, part_fingerprints) = match handle {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
                Err(chunk) => new_chunk(chunk, 0, now)?,
            };
            pem.push_str(&part);
            fingerprints.extend(part_fingerprints);
        }
        Ok((pem, fingerprints))
    })
}

fn new_chunk(
    blocks: &[pem_blocks::Block<'_>],
    capacity: usize,
    now: Stamp,
) -> Result<(String, Vec<Fingerprint>), Error> {
    let origin = || Origin::new("new CA");
    let mut pem = String::with_capacity(capacity);
    let mut fingerprints = Vec::with_capacity(blocks.len());
    for block in blocks {
        let decoded = block
            .decode_checked()
            .map_err(|reason| Error::MalformedPem {
                origin: origin(),
                block: block.index,
                reason,
            })?;
        if decoded.label != "CERTIFICATE" {
            return Err(Error::NotACertificate {
                origin: origin(),
                block: block.index,
                label: decoded.label.to_owned(),
            });
        }
        pem_blocks::check_trust_anchor(&decoded.contents).map_err(|reason| {
            Error::InvalidCertificate {
                origin: origin(),
                block: block.index,
                reason,
            }
        })?;
        usable_ca::check(&decoded.contents, now).map_err(|defect| Error::UnusableCa {
            origin: Origin::new(format!("new CA block {}", block.index)),
            defect,
        })?;
        fingerprints.push(Fingerprint::of(&decoded.contents));
        pem_blocks::push_certificate(&mut pem, &decoded.contents, decoded.canonical);
    }
    Ok((pem, fingerprints))
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
        /// What is wrong (a fixed text for the commonest faults, so a million junk blocks
        /// allocate nothing for their reasons).
        reason: Cow<'static, str>,
    },
    /// A certificate that cannot be a CA: not CA:TRUE, no keyCertSign, not valid at `now`,
    /// a weak key or a SHA-1 signature (the test `new` must pass).
    UnusableCa {
        /// Why.
        defect: CaDefect,
    },
    /// Enough certificates were carried already.
    BeyondLimit {
        /// The limit.
        limit: usize,
    },
}

impl SkipReason {
    /// The reason's kind, as serialised (`expired`, `malformed`, `beyond-limit`, ...): what
    /// a summary counts by.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Expired { .. } => "expired",
            Self::Duplicate { .. } => "duplicate",
            Self::NotACertificate { .. } => "not-a-certificate",
            Self::Malformed { .. } => "malformed",
            Self::UnusableCa { .. } => "unusable-ca",
            Self::BeyondLimit { .. } => "beyond-limit",
        }
    }
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
            Self::UnusableCa { defect } => write!(f, "not usable as a CA: {defect}"),
            Self::BeyondLimit { limit } => write!(f, "beyond the carry limit of {limit}"),
        }
    }
}

#[cfg(test)]
mod reason_tests {
    #[test]
    fn the_fixed_junk_reason_is_the_parsers_own() {
        assert_eq!(
            super::NOT_A_CERTIFICATE_SEQUENCE,
            format!(
                "not a valid X.509 certificate: {}",
                crate::pem_blocks::NOT_A_SEQUENCE
            )
        );
    }
}
