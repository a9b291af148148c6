//! One leaf against one trust store, verified with rustls-webpki: a parsed `tls.crt`
//! ([`Leaf`]) and a parsed store ([`Bundle`]: the anchors within their validity and the
//! others), the names a leaf must serve ([`Name`]), and rustls-webpki's errors turned into
//! a typed [`TrustFailure`].

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use rustls_pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, ServerName,
    SignatureVerificationAlgorithm, TrustAnchor, UnixTime,
};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::extensions::ParsedExtension;

use super::{Outcome, TrustFailure, Usage};
use crate::error::Origin;
use crate::fingerprint::Fingerprint;
use crate::inspect;
use crate::pem_blocks;
use crate::plan::{KEY_TLS_CRT, ObjectRef};

pub(super) fn unix_time(now: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(now.unix_timestamp()).unwrap_or(0),
    ))
}

fn from_unix(t: UnixTime) -> OffsetDateTime {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A name a leaf must serve.
#[derive(Clone, Debug)]
pub(super) enum Name {
    /// A DNS name, verified as rustls verifies a server name.
    Dns(String),
    /// A wildcard (`*.example`): the leaf must carry it (or the same wildcard in another
    /// case) as a SAN. A wildcard names no one host to verify, and rustls-webpki, like
    /// NSS, refuses wildcards over a single label (`*.namespace`), which Envoy and Go
    /// accept.
    Wildcard(String),
    /// An IP address SAN.
    Ip(IpAddr),
}

impl Name {
    pub(super) fn dns(name: &str) -> Self {
        if name.starts_with("*.") {
            Self::Wildcard(name.to_owned())
        } else {
            Self::Dns(name.to_owned())
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(n) | Self::Wildcard(n) => f.write_str(n),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// rustls-webpki's signature algorithms, each remembering the signatures it verified.
///
/// A step's check builds a path for every leaf to every store on each side, for each
/// usage: the same leaf is verified against the same CA dozens of times (every component's
/// bundle holds the same CAs), and a bundle holding two CAs of the same name has the wrong
/// one tried first half the time. Each verification is an ECDSA or RSA public-key
/// operation; remembering the outcome of each (public key, message, signature) makes one
/// check cost one verification per leaf and CA. The outcome is the algorithm's own, so a
/// path built with these algorithms is the path built without them.
pub(super) struct Verifier {
    algorithms: Vec<Remembering>,
}

impl Verifier {
    pub(super) fn new() -> Self {
        Self {
            algorithms: webpki::ALL_VERIFICATION_ALGS
                .iter()
                .map(|inner| Remembering {
                    inner: *inner,
                    seen: Mutex::default(),
                    #[cfg(test)]
                    verified: Default::default(),
                })
                .collect(),
        }
    }

    /// How many signatures were verified (not answered from memory).
    #[cfg(test)]
    pub(super) fn verifications(&self) -> usize {
        self.algorithms
            .iter()
            .map(|a| a.verified.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    fn algorithms(&self) -> Vec<&dyn SignatureVerificationAlgorithm> {
        self.algorithms
            .iter()
            .map(|a| a as &dyn SignatureVerificationAlgorithm)
            .collect()
    }
}

/// One algorithm and the outcomes of the verifications it made (see [`Verifier`]).
struct Remembering {
    inner: &'static dyn SignatureVerificationAlgorithm,
    /// Keyed by the public key, message and signature, each prefixed by its length.
    seen: Mutex<HashMap<Vec<u8>, bool>>,
    #[cfg(test)]
    verified: std::sync::atomic::AtomicUsize,
}

impl fmt::Debug for Remembering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl SignatureVerificationAlgorithm for Remembering {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let mut key = Vec::with_capacity(24 + public_key.len() + message.len() + signature.len());
        for part in [public_key, message, signature] {
            key.extend_from_slice(&(part.len() as u64).to_be_bytes());
            key.extend_from_slice(part);
        }
        // A poisoned lock only means another verification panicked: verify again.
        let known = self
            .seen
            .lock()
            .ok()
            .and_then(|seen| seen.get(&key).copied());
        let valid = match known {
            Some(valid) => valid,
            None => {
                #[cfg(test)]
                self.verified
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let valid = self
                    .inner
                    .verify_signature(public_key, message, signature)
                    .is_ok();
                if let Ok(mut seen) = self.seen.lock() {
                    seen.insert(key, valid);
                }
                valid
            }
        };
        if valid { Ok(()) } else { Err(InvalidSignature) }
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}

/// A parsed `tls.crt`: the leaf, the intermediates after it, and what the errors need.
pub(super) struct Leaf {
    der: CertificateDer<'static>,
    intermediates: Vec<CertificateDer<'static>>,
    issuer: String,
    dns_names: Vec<String>,
    /// The key identifier of its authority key identifier, if it has one.
    authority_key_id: Option<Vec<u8>>,
}

impl Leaf {
    pub(super) fn parse(
        pem: &[u8],
        secret: &ObjectRef,
        now: OffsetDateTime,
    ) -> Result<Self, TrustFailure> {
        let origin = Origin::new(format!("secret {secret} key {KEY_TLS_CRT}"));
        let unreadable = |reason: String| TrustFailure::UnreadableLeaf { reason };
        let mut ders = pem_blocks::certificates(pem, &origin)
            .map_err(|e| unreadable(e.to_string()))?
            .into_iter();
        // `certificates` returns at least one block or an error.
        let first = ders
            .next()
            .ok_or_else(|| unreadable("no certificate".into()))?;
        let (summary, authority_key_id) = {
            let cert = inspect::parse(&first, &origin, 1).map_err(|e| unreadable(e.to_string()))?;
            let authority_key_id =
                cert.extensions()
                    .iter()
                    .find_map(|e| match e.parsed_extension() {
                        ParsedExtension::AuthorityKeyIdentifier(aki) => {
                            aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                        }
                        _ => None,
                    });
            (inspect::summarise(&cert, &first, 1, now), authority_key_id)
        };
        let der = CertificateDer::from(first);
        EndEntityCert::try_from(&der)
            .map_err(|e| unreadable(format!("{origin} block 1: rustls-webpki: {e}")))?;
        Ok(Self {
            der,
            intermediates: ders.map(CertificateDer::from).collect(),
            issuer: summary.issuer,
            dns_names: summary.dns_names,
            authority_key_id,
        })
    }

    /// Verifies the chain to `bundle` for every usage, then the names.
    pub(super) fn verify(
        &self,
        bundle: &Bundle,
        usages: &[Usage],
        names: &[Name],
        time: UnixTime,
        verifier: &Verifier,
    ) -> Outcome {
        let algorithms = verifier.algorithms();
        let algorithms = algorithms.as_slice();
        let failed = |reason| Outcome::Failed { reason };
        // Parsed when the leaf was read.
        let Ok(cert) = EndEntityCert::try_from(&self.der) else {
            return failed(TrustFailure::UnreadableLeaf {
                reason: "rustls-webpki cannot parse it".into(),
            });
        };
        let mut ca = None;
        for usage in usages {
            let preferred = self.authority_key_id.as_deref();
            match bundle.verify(
                &cert,
                &self.intermediates,
                time,
                *usage,
                algorithms,
                preferred,
            ) {
                Ok(fingerprint) => ca = Some(fingerprint),
                Err(e) => {
                    return failed(self.failure(e, bundle, &cert, time, *usage, algorithms));
                }
            }
        }
        for name in names {
            let serves = match name {
                Name::Dns(n) => ServerName::try_from(n.as_str())
                    .is_ok_and(|sn| cert.verify_is_valid_for_subject_name(&sn).is_ok()),
                Name::Ip(ip) => cert
                    .verify_is_valid_for_subject_name(&ServerName::IpAddress((*ip).into()))
                    .is_ok(),
                Name::Wildcard(w) => self.dns_names.iter().any(|d| d.eq_ignore_ascii_case(w)),
            };
            if !serves {
                return failed(TrustFailure::NameMismatch {
                    name: name.to_string(),
                });
            }
        }
        match ca {
            Some(ca) => Outcome::Trusted { ca },
            // `usages` is never empty.
            None => failed(TrustFailure::Rejected {
                reason: "no usage to verify".into(),
            }),
        }
    }

    /// Turns a rustls-webpki error into a typed reason.
    fn failure(
        &self,
        e: webpki::Error,
        bundle: &Bundle,
        cert: &EndEntityCert<'_>,
        time: UnixTime,
        usage: Usage,
        algorithms: &[&dyn SignatureVerificationAlgorithm],
    ) -> TrustFailure {
        match e {
            webpki::Error::CertExpired { not_after, .. } => TrustFailure::Expired {
                not_after: from_unix(not_after),
            },
            webpki::Error::CertNotValidYet { not_before, .. } => TrustFailure::NotYetValid {
                not_before: from_unix(not_before),
            },
            webpki::Error::CaUsedAsEndEntity => TrustFailure::CaAsLeaf,
            #[allow(deprecated)] // still returned by older paths
            webpki::Error::RequiredEkuNotFound | webpki::Error::RequiredEkuNotFoundContext(_) => {
                TrustFailure::WrongUsage { usage }
            }
            webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
                // An issuer outside its validity is left out of the anchors; say so when
                // it is the one that signed.
                if let Some(reason) =
                    bundle.outside_validity(cert, &self.intermediates, time, usage, algorithms)
                {
                    return reason;
                }
                if bundle.names_issuer(&self.der) {
                    TrustFailure::BadSignature {
                        issuer: self.issuer.clone(),
                    }
                } else {
                    TrustFailure::UnknownIssuer {
                        issuer: self.issuer.clone(),
                    }
                }
            }
            other => TrustFailure::Rejected {
                reason: other.to_string(),
            },
        }
    }
}

/// The subject key identifier of `cert`, read from the extension's raw value (an OCTET
/// STRING holding the identifier), so a shallow parse suffices.
fn subject_key_id(cert: &x509_parser::certificate::X509Certificate<'_>) -> Option<Vec<u8>> {
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)?;
    match ext.value {
        [0x04, len, id @ ..] if usize::from(*len) == id.len() && id.len() < 0x80 => {
            Some(id.to_vec())
        }
        _ => None,
    }
}

/// A parsed trust store: its certificates within their validity at `now` (the anchors)
/// and the others.
pub(super) struct Bundle {
    valid: Vec<Anchor>,
    outside: Vec<Anchor>,
}

struct Anchor {
    der: CertificateDer<'static>,
    subject: Vec<u8>,
    /// Its subject key identifier, if it has one.
    key_id: Option<Vec<u8>>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Bundle {
    pub(super) fn parse(
        pem: &[u8],
        origin: &Origin,
        now: OffsetDateTime,
    ) -> Result<Self, TrustFailure> {
        if pem.iter().all(u8::is_ascii_whitespace) {
            return Err(TrustFailure::MissingBundle);
        }
        let unreadable = |reason: String| TrustFailure::UnreadableBundle { reason };
        let ders = pem_blocks::certificates(pem, origin).map_err(|e| unreadable(e.to_string()))?;
        let mut bundle = Self {
            valid: Vec::new(),
            outside: Vec::new(),
        };
        for (i, der) in ders.into_iter().enumerate() {
            let (subject, key_id, not_before, not_after) = {
                let cert = pem_blocks::parse_certificate_shallow(&der)
                    .map_err(|r| unreadable(format!("{origin} block {}: {r}", i + 1)))?;
                let v = cert.validity();
                (
                    cert.subject().as_raw().to_vec(),
                    subject_key_id(&cert),
                    v.not_before.to_datetime(),
                    v.not_after.to_datetime(),
                )
            };
            let anchor = Anchor {
                der: CertificateDer::from(der),
                subject,
                key_id,
                not_before,
                not_after,
            };
            webpki::anchor_from_trusted_cert(&anchor.der).map_err(|e| {
                unreadable(format!(
                    "{origin} block {}: not usable as a trust anchor: {e}",
                    i + 1
                ))
            })?;
            if not_before <= now && now <= not_after {
                bundle.valid.push(anchor);
            } else {
                bundle.outside.push(anchor);
            }
        }
        Ok(bundle)
    }

    /// Builds a path from `cert` to an anchor among `anchors`; returns the anchor's
    /// fingerprint.
    ///
    /// The anchors whose subject key identifier is `preferred` (the leaf's authority key
    /// identifier) are offered first: rustls-webpki tries anchors in order, and a bundle
    /// holding a new and a previous CA of the same name would otherwise cost a failed
    /// signature verification for every leaf of the CA listed second. The order changes
    /// what is tried first, not what is found: every anchor is still offered.
    fn verify_with(
        anchors: &[Anchor],
        cert: &EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        time: UnixTime,
        usage: Usage,
        algorithms: &[&dyn SignatureVerificationAlgorithm],
        preferred: Option<&[u8]>,
    ) -> Result<Fingerprint, webpki::Error> {
        let mut anchors: Vec<&Anchor> = anchors.iter().collect();
        if let Some(id) = preferred {
            // Stable: the bundle's order within each group.
            anchors.sort_by_key(|a| a.key_id.as_deref() != Some(id));
        }
        // Every anchor was accepted when the bundle was parsed.
        let trust: Vec<TrustAnchor<'_>> = anchors
            .iter()
            .filter_map(|a| webpki::anchor_from_trusted_cert(&a.der).ok())
            .collect();
        let usage = match usage {
            Usage::ServerAuth => KeyUsage::server_auth(),
            Usage::ClientAuth => KeyUsage::client_auth(),
        };
        let path =
            cert.verify_for_usage(algorithms, &trust, intermediates, time, usage, None, None)?;
        let anchor = path.anchor();
        let used = trust
            .iter()
            .position(|t| {
                t.subject == anchor.subject
                    && t.subject_public_key_info == anchor.subject_public_key_info
            })
            .and_then(|i| anchors.get(i));
        Ok(used.map_or_else(
            || Fingerprint::of(anchor.subject_public_key_info.as_ref()),
            |a| Fingerprint::of(a.der.as_ref()),
        ))
    }

    fn verify(
        &self,
        cert: &EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        time: UnixTime,
        usage: Usage,
        algorithms: &[&dyn SignatureVerificationAlgorithm],
        preferred: Option<&[u8]>,
    ) -> Result<Fingerprint, webpki::Error> {
        Self::verify_with(
            &self.valid,
            cert,
            intermediates,
            time,
            usage,
            algorithms,
            preferred,
        )
    }

    /// If a certificate of the store outside its validity would have issued the leaf, the
    /// failure that says so.
    fn outside_validity(
        &self,
        cert: &EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        time: UnixTime,
        usage: Usage,
        algorithms: &[&dyn SignatureVerificationAlgorithm],
    ) -> Option<TrustFailure> {
        self.outside.iter().find_map(|a| {
            Self::verify_with(
                std::slice::from_ref(a),
                cert,
                intermediates,
                time,
                usage,
                algorithms,
                None,
            )
            .ok()
            .map(|ca| TrustFailure::IssuerOutsideValidity {
                ca,
                not_before: a.not_before,
                not_after: a.not_after,
            })
        })
    }

    /// Whether a certificate of the store has the leaf's issuer as subject.
    fn names_issuer(&self, leaf: &CertificateDer<'_>) -> bool {
        let Ok(parsed) = pem_blocks::parse_certificate_shallow(leaf) else {
            return false;
        };
        let issuer = parsed.issuer().as_raw();
        self.valid.iter().any(|a| a.subject == issuer)
    }
}
