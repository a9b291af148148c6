//! One leaf against one trust store, verified with rustls-webpki: a parsed `tls.crt`
//! ([`Leaf`]) and a parsed store ([`Bundle`]: the anchors within their validity and the
//! others), the names a leaf must serve ([`Name`]), and rustls-webpki's errors turned into
//! a typed [`TrustFailure`].

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};

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

/// A parsed `tls.crt`: the leaf, the intermediates after it, and what the errors need.
pub(super) struct Leaf {
    der: CertificateDer<'static>,
    intermediates: Vec<CertificateDer<'static>>,
    issuer: String,
    dns_names: Vec<String>,
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
        let summary = {
            let cert = inspect::parse(&first, &origin, 1).map_err(|e| unreadable(e.to_string()))?;
            inspect::summarise(&cert, &first, 1, now)
        };
        let der = CertificateDer::from(first);
        EndEntityCert::try_from(&der)
            .map_err(|e| unreadable(format!("{origin} block 1: rustls-webpki: {e}")))?;
        Ok(Self {
            der,
            intermediates: ders.map(CertificateDer::from).collect(),
            issuer: summary.issuer,
            dns_names: summary.dns_names,
        })
    }

    /// Verifies the chain to `bundle` for every usage, then the names.
    pub(super) fn verify(
        &self,
        bundle: &Bundle,
        usages: &[Usage],
        names: &[Name],
        time: UnixTime,
    ) -> Outcome {
        let failed = |reason| Outcome::Failed { reason };
        // Parsed when the leaf was read.
        let Ok(cert) = EndEntityCert::try_from(&self.der) else {
            return failed(TrustFailure::UnreadableLeaf {
                reason: "rustls-webpki cannot parse it".into(),
            });
        };
        let mut ca = None;
        for usage in usages {
            match bundle.verify(&cert, &self.intermediates, time, *usage) {
                Ok(fingerprint) => ca = Some(fingerprint),
                Err(e) => return failed(self.failure(e, bundle, &cert, time, *usage)),
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
                    bundle.outside_validity(cert, &self.intermediates, time, usage)
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

/// A parsed trust store: its certificates within their validity at `now` (the anchors)
/// and the others.
pub(super) struct Bundle {
    valid: Vec<Anchor>,
    outside: Vec<Anchor>,
}

struct Anchor {
    der: CertificateDer<'static>,
    subject: Vec<u8>,
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
            let (subject, not_before, not_after) = {
                let cert = pem_blocks::parse_certificate_shallow(&der)
                    .map_err(|r| unreadable(format!("{origin} block {}: {r}", i + 1)))?;
                let v = cert.validity();
                (
                    cert.subject().as_raw().to_vec(),
                    v.not_before.to_datetime(),
                    v.not_after.to_datetime(),
                )
            };
            let anchor = Anchor {
                der: CertificateDer::from(der),
                subject,
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
    fn verify_with(
        anchors: &[Anchor],
        cert: &EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        time: UnixTime,
        usage: Usage,
    ) -> Result<Fingerprint, webpki::Error> {
        // Every anchor was accepted when the bundle was parsed.
        let trust: Vec<TrustAnchor<'_>> = anchors
            .iter()
            .filter_map(|a| webpki::anchor_from_trusted_cert(&a.der).ok())
            .collect();
        let usage = match usage {
            Usage::ServerAuth => KeyUsage::server_auth(),
            Usage::ClientAuth => KeyUsage::client_auth(),
        };
        let path = cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &trust,
            intermediates,
            time,
            usage,
            None,
            None,
        )?;
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
    ) -> Result<Fingerprint, webpki::Error> {
        Self::verify_with(&self.valid, cert, intermediates, time, usage)
    }

    /// If a certificate of the store outside its validity would have issued the leaf, the
    /// failure that says so.
    fn outside_validity(
        &self,
        cert: &EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        time: UnixTime,
        usage: Usage,
    ) -> Option<TrustFailure> {
        self.outside.iter().find_map(|a| {
            Self::verify_with(std::slice::from_ref(a), cert, intermediates, time, usage)
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
