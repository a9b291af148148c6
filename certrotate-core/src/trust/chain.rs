//! One leaf against one trust store, verified with rustls-webpki: a parsed `tls.crt`
//! ([`Leaf`]) and a parsed store ([`Bundle`]: the anchors within their validity and the
//! others), the names a leaf must serve ([`Name`]), and rustls-webpki's errors turned into
//! a typed [`TrustFailure`]. A chain rustls-webpki accepts must also be the one OpenSSL and
//! BoringSSL build, taking the first matching issuer of the store ([`Bundle::first_match`]).

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

use super::{FirstMatchProblem, Outcome, TrustFailure, Usage};
use crate::error::Origin;
use crate::fingerprint::Fingerprint;
use crate::inspect;
use crate::pem_blocks;

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
    /// What links the leaf to its issuer.
    links: Links,
    intermediates: Vec<CertificateDer<'static>>,
    /// The intermediates x509-parser reads, in their order, for the first-match chain.
    chain: Vec<Node>,
    issuer: String,
    dns_names: Vec<String>,
}

impl Leaf {
    pub(super) fn parse(
        pem: &[u8],
        origin: &Origin,
        now: OffsetDateTime,
    ) -> Result<Self, TrustFailure> {
        let unreadable = |reason: String| TrustFailure::UnreadableLeaf { reason };
        let mut ders = pem_blocks::certificates(pem, origin)
            .map_err(|e| unreadable(e.to_string()))?
            .into_iter();
        // `certificates` returns at least one block or an error.
        let first = ders
            .next()
            .ok_or_else(|| unreadable("no certificate".into()))?;
        let (summary, links) = {
            let cert = inspect::parse(&first, origin, 1).map_err(|e| unreadable(e.to_string()))?;
            (inspect::summarise(&cert, &first, 1, now), Links::of(&cert))
        };
        let der = CertificateDer::from(first);
        EndEntityCert::try_from(&der)
            .map_err(|e| unreadable(format!("{origin} block 1: rustls-webpki: {e}")))?;
        let intermediates: Vec<CertificateDer<'static>> = ders.map(CertificateDer::from).collect();
        let chain = intermediates
            .iter()
            .filter_map(|d| Node::read(d.clone(), now).ok())
            .collect();
        Ok(Self {
            der,
            links,
            intermediates,
            chain,
            issuer: summary.issuer,
            dns_names: summary.dns_names,
        })
    }

    /// Verifies the chain to `bundle` for every usage, as rustls-webpki builds it and as
    /// OpenSSL and BoringSSL do (see [`Bundle::first_match`]), then the names.
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
            let preferred = self.links.authority_key_id.as_deref();
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
        if let Err(reason) = bundle.first_match(self, algorithms) {
            return failed(reason);
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
                if bundle.names_issuer(&self.links) {
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

/// What chain building needs of a certificate, read with x509-parser: the names and key
/// identifiers that link it to its issuer, whether it may issue certificates, its
/// validity, and its signed part, signature and public key.
struct Links {
    subject: Vec<u8>,
    issuer: Vec<u8>,
    serial: Vec<u8>,
    /// Its subject key identifier.
    key_id: Option<Vec<u8>>,
    /// The key identifier its authority key identifier names.
    authority_key_id: Option<Vec<u8>>,
    /// The serial number its authority key identifier names.
    authority_serial: Option<Vec<u8>>,
    /// basicConstraints CA:TRUE, or a self-issued version 1 certificate (which OpenSSL
    /// and BoringSSL take as a CA).
    is_ca: bool,
    /// No key usage, or one allowing keyCertSign.
    may_sign_certificates: bool,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    /// The DER of the signed part (`tbsCertificate`).
    tbs: Vec<u8>,
    /// The DER contents of its signature algorithm identifier.
    signature_algorithm: Vec<u8>,
    signature: Vec<u8>,
    /// The DER contents of its public key's algorithm identifier.
    key_algorithm: Vec<u8>,
    /// Its public key (the contents of the subjectPublicKey bit string).
    public_key: Vec<u8>,
}

impl Links {
    fn of(cert: &x509_parser::certificate::X509Certificate<'_>) -> Self {
        let mut links = Self {
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
            serial: cert.raw_serial().to_vec(),
            key_id: None,
            authority_key_id: None,
            authority_serial: None,
            is_ca: false,
            may_sign_certificates: true,
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            tbs: cert.tbs_certificate.as_ref().to_vec(),
            signature_algorithm: Vec::new(),
            signature: cert.signature_value.data.to_vec(),
            key_algorithm: der_contents(cert.public_key().raw)
                .and_then(der_contents)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
        };
        let mut basic_constraints = None;
        for e in cert.extensions() {
            match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => links.key_id = Some(id.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    links.authority_key_id = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
                    links.authority_serial = aki.authority_cert_serial.map(<[u8]>::to_vec);
                }
                ParsedExtension::BasicConstraints(bc) => basic_constraints = Some(bc.ca),
                ParsedExtension::KeyUsage(ku) => links.may_sign_certificates = ku.key_cert_sign(),
                _ => {}
            }
        }
        links.is_ca = basic_constraints.unwrap_or_else(|| {
            cert.version() == x509_parser::x509::X509Version::V1 && links.self_issued()
        });
        links.signature_algorithm = der_contents(cert.as_ref())
            .and_then(|contents| contents.get(cert.tbs_certificate.as_ref().len()..))
            .and_then(der_contents)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        links
    }

    /// Whether OpenSSL and BoringSSL take this certificate as a candidate issuer of
    /// `below` (`X509_check_issued`): its subject is `below`'s issuer, the key identifier
    /// and serial `below`'s authority key identifier names (if any) are its own, and its
    /// key usage (if any) allows keyCertSign. Names are compared as DER bytes, as
    /// rustls-webpki compares them.
    fn may_have_issued(&self, below: &Self) -> bool {
        self.names_as_issuer_of(below) && self.may_sign_certificates
    }

    /// The name and authority key identifier conditions of [`Links::may_have_issued`].
    fn names_as_issuer_of(&self, below: &Self) -> bool {
        self.subject == below.issuer
            && match (&below.authority_key_id, &self.key_id) {
                (Some(named), Some(own)) => named == own,
                _ => true,
            }
            && below
                .authority_serial
                .as_ref()
                .is_none_or(|serial| *serial == self.serial)
    }

    /// Whether it names itself as its issuer (where OpenSSL and BoringSSL end a chain).
    fn self_issued(&self) -> bool {
        self.names_as_issuer_of(self)
    }

    /// Whether its key signed `below`, with one of `algorithms`.
    fn signed(&self, below: &Self, algorithms: &[&dyn SignatureVerificationAlgorithm]) -> bool {
        algorithms.iter().any(|a| {
            a.signature_alg_id().as_ref() == below.signature_algorithm.as_slice()
                && a.public_key_alg_id().as_ref() == self.key_algorithm.as_slice()
                && a.verify_signature(&self.public_key, &below.tbs, &below.signature)
                    .is_ok()
        })
    }

    fn valid_at(&self, now: OffsetDateTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// The contents of the DER SEQUENCE `input` starts with (trailing bytes ignored).
fn der_contents(input: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = input.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    rest.get(..len)
}

/// A certificate of a store or of a `tls.crt` chain, with what chain building needs.
struct Node {
    der: CertificateDer<'static>,
    links: Links,
    /// Whether it is within its validity at `now`.
    valid: bool,
}

impl Node {
    fn read(der: CertificateDer<'static>, now: OffsetDateTime) -> Result<Self, String> {
        let links = Links::of(&pem_blocks::parse_certificate(&der)?);
        let valid = links.valid_at(now);
        Ok(Self { der, links, valid })
    }
}

/// A parsed trust store: its certificates, in their order, each within its validity at
/// `now` (an anchor) or not.
pub(super) struct Bundle {
    certs: Vec<Node>,
}

/// The most links a first-match chain may have (OpenSSL allows 100; a control plane's
/// chains have one or two).
const MAX_DEPTH: usize = 16;

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
        let mut certs = Vec::with_capacity(ders.len());
        for (i, der) in ders.into_iter().enumerate() {
            let node = Node::read(CertificateDer::from(der), now)
                .map_err(|r| unreadable(format!("{origin} block {}: {r}", i + 1)))?;
            webpki::anchor_from_trusted_cert(&node.der).map_err(|e| {
                unreadable(format!(
                    "{origin} block {}: not usable as a trust anchor: {e}",
                    i + 1
                ))
            })?;
            certs.push(node);
        }
        Ok(Self { certs })
    }

    /// Whether OpenSSL and BoringSSL (Envoy) build a chain from `leaf` to this store.
    ///
    /// They do not search for a path as rustls-webpki and Go do: at each link, the issuer
    /// is the first certificate of the store, in its order, that
    /// [`Links::may_have_issued`] the certificate below (else the first such of the
    /// leaf's own chain), and the chain fails if that one did not sign it, is outside its
    /// validity (BoringSSL does not skip it), or is not a CA. The chain ends on a
    /// self-issued certificate of the store (no partial chains, as Envoy). A decoy listed
    /// before the real CA, with its name and key identifier and another key, makes them
    /// refuse a leaf that rustls-webpki trusts.
    fn first_match(
        &self,
        leaf: &Leaf,
        algorithms: &[&dyn SignatureVerificationAlgorithm],
    ) -> Result<(), TrustFailure> {
        let mut below: &Links = &leaf.links;
        // The certificate `below` is, and its position in the store, once past the leaf.
        let mut at: Option<(&Node, Option<usize>)> = None;
        for _ in 0..MAX_DEPTH {
            let picked = self
                .certs
                .iter()
                .enumerate()
                .find(|(_, n)| n.links.may_have_issued(below))
                .map(|(i, n)| (n, Some(i + 1)))
                .or_else(|| {
                    leaf.chain
                        .iter()
                        .find(|n| n.links.may_have_issued(below))
                        .map(|n| (n, None))
                });
            let Some((node, block)) = picked else {
                return Err(match at {
                    // rustls-webpki found an issuer; only a name it matches and these
                    // peers do not can lead here.
                    None => TrustFailure::UnknownIssuer {
                        issuer: leaf.issuer.clone(),
                    },
                    Some((node, block)) => refused(node, block, FirstMatchProblem::NoRoot),
                });
            };
            let problem = if !node.links.signed(below, algorithms) {
                Some(FirstMatchProblem::BadSignature)
            } else if !node.valid {
                Some(FirstMatchProblem::OutsideValidity {
                    not_before: node.links.not_before,
                    not_after: node.links.not_after,
                })
            } else if !node.links.is_ca {
                Some(FirstMatchProblem::NotCa)
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(refused(node, block, problem));
            }
            if block.is_some() && node.links.self_issued() {
                return Ok(());
            }
            below = &node.links;
            at = Some((node, block));
        }
        match at {
            Some((node, block)) => Err(refused(node, block, FirstMatchProblem::NoRoot)),
            None => Err(TrustFailure::UnknownIssuer {
                issuer: leaf.issuer.clone(),
            }),
        }
    }

    /// Builds a path from `cert` to an anchor among `anchors`; returns the anchor's
    /// fingerprint.
    ///
    /// The anchors whose subject key identifier is `preferred` (the leaf's authority key
    /// identifier) are offered first: rustls-webpki tries anchors in order, and a bundle
    /// holding a new and a previous CA of the same name would otherwise cost a failed
    /// signature verification for every leaf of the CA listed second. The order changes
    /// what is tried first, not what is found: every anchor is still offered. (What
    /// OpenSSL and BoringSSL find, in the store's order, is [`Bundle::first_match`].)
    fn verify_with<'n>(
        anchors: impl Iterator<Item = &'n Node>,
        cert: &EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        time: UnixTime,
        usage: Usage,
        algorithms: &[&dyn SignatureVerificationAlgorithm],
        preferred: Option<&[u8]>,
    ) -> Result<Fingerprint, webpki::Error> {
        let mut anchors: Vec<&Node> = anchors.collect();
        if let Some(id) = preferred {
            // Stable: the bundle's order within each group.
            anchors.sort_by_key(|a| a.links.key_id.as_deref() != Some(id));
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
            self.certs.iter().filter(|n| n.valid),
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
        self.certs.iter().filter(|n| !n.valid).find_map(|a| {
            Self::verify_with(
                std::iter::once(a),
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
                not_before: a.links.not_before,
                not_after: a.links.not_after,
            })
        })
    }

    /// Whether a certificate of the store within its validity has the leaf's issuer as
    /// subject.
    fn names_issuer(&self, leaf: &Links) -> bool {
        self.certs
            .iter()
            .any(|n| n.valid && n.links.subject == leaf.issuer)
    }
}

/// The failure that says OpenSSL and BoringSSL take `node` and refuse it.
fn refused(node: &Node, block: Option<usize>, problem: FirstMatchProblem) -> TrustFailure {
    let issuer = pem_blocks::parse_certificate(&node.der)
        .map(|c| c.subject().to_string())
        .unwrap_or_default();
    TrustFailure::FirstMatchRefused {
        issuer,
        ca: Fingerprint::of(node.der.as_ref()),
        block,
        problem,
    }
}
