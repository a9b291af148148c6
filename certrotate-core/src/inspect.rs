//! Inspecting certificates and checking that a leaf chains to a bundle.

use std::net::IpAddr;

use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::public_key::PublicKey;

use crate::error::{Error, Origin};
use crate::fingerprint::Fingerprint;
use crate::pem_blocks;
use crate::trust::{self, Outcome, TrustFailure};

/// What a certificate says about itself, for tables, JSON and checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CertSummary {
    /// 1-based position of the block in its input.
    pub block: usize,
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, hex with colons.
    pub serial: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Whole days from `now` to `not_after` (negative once expired).
    pub days_left: i64,
    /// SHA-256 fingerprint of the DER.
    pub fingerprint: Fingerprint,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// Public key algorithm (`rsa`, `ecdsa`, `ed25519`, or the OID).
    pub key_algorithm: String,
    /// Public key size in bits, where meaningful.
    pub key_bits: Option<usize>,
    /// Signature algorithm (`ecdsa-with-SHA256`, `sha256WithRSAEncryption`, ...).
    pub signature_algorithm: String,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// Key usages, as OpenSSL names them.
    pub key_usages: Vec<String>,
    /// Extended key usages (`serverAuth`, `clientAuth`, ...).
    pub extended_key_usages: Vec<String>,
    /// Its key's and signature's weaknesses, by the one CA policy (shown by
    /// [`CertSummary::weaknesses`]).
    #[serde(skip)]
    pub weak: Vec<crate::CaDefect>,
}

impl CertSummary {
    /// Weaknesses that make this certificate unfit for new material: its key or its
    /// signature algorithm, as the one CA policy ([`CaDefect`](crate::CaDefect)) judges
    /// them (RSA under 2048 bits, curves other than P-256/384/521, SHA-1, MD5, MD2).
    pub fn weaknesses(&self) -> Vec<String> {
        self.weak.iter().map(ToString::to_string).collect()
    }
}

/// Summarises every certificate of a PEM input.
///
/// Fails, naming the block, if a block is not a certificate or cannot be parsed.
pub fn inspect_pem(
    input: &[u8],
    origin: &Origin,
    now: OffsetDateTime,
) -> Result<Vec<CertSummary>, Error> {
    let ders = pem_blocks::certificates(input, origin)?;
    ders.iter()
        .enumerate()
        .map(|(i, der)| {
            let cert = parse(der, origin, i + 1)?;
            Ok(summarise(&cert, der, i + 1, now))
        })
        .collect()
}

pub(crate) fn parse<'a>(
    der: &'a [u8],
    origin: &Origin,
    block: usize,
) -> Result<X509Certificate<'a>, Error> {
    pem_blocks::parse_certificate(der).map_err(|reason| Error::InvalidCertificate {
        origin: origin.clone(),
        block,
        reason,
    })
}

pub(crate) fn summarise(
    cert: &X509Certificate<'_>,
    der: &[u8],
    block: usize,
    now: OffsetDateTime,
) -> CertSummary {
    let not_after = cert.validity().not_after.to_datetime();
    let (key_algorithm, key_bits) = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => ("rsa".to_owned(), Some(rsa.key_size())),
        Ok(PublicKey::EC(ec)) => ("ecdsa".to_owned(), Some(ec.key_size())),
        _ => {
            let oid = cert.public_key().algorithm.algorithm.to_id_string();
            match oid.as_str() {
                "1.3.101.112" => ("ed25519".to_owned(), Some(256)),
                _ => (oid, None),
            }
        }
    };
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => dns_names.push((*n).to_owned()),
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        ip_addresses.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        ip_addresses.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    let key_usages = match cert.key_usage() {
        Ok(Some(ku)) => ku
            .value
            .to_string()
            .split(", ")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let mut extended_key_usages = Vec::new();
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        let e = eku.value;
        for (on, name) in [
            (e.any, "any"),
            (e.server_auth, "serverAuth"),
            (e.client_auth, "clientAuth"),
            (e.code_signing, "codeSigning"),
            (e.email_protection, "emailProtection"),
            (e.time_stamping, "timeStamping"),
            (e.ocsp_signing, "OCSPSigning"),
        ] {
            if on {
                extended_key_usages.push(name.to_owned());
            }
        }
        extended_key_usages.extend(e.other.iter().map(|o| o.to_id_string()));
    }
    CertSummary {
        block,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        not_before: cert.validity().not_before.to_datetime(),
        not_after,
        days_left: (not_after - now).whole_days(),
        fingerprint: Fingerprint::of(der),
        is_ca: cert.is_ca(),
        key_algorithm,
        key_bits,
        signature_algorithm: signature_name(&cert.signature_algorithm.algorithm.to_id_string()),
        dns_names,
        ip_addresses,
        key_usages,
        extended_key_usages,
        weak: crate::usable_ca::weaknesses(der),
    }
}

fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.3.101.112" => "ed25519",
        other => other,
    }
    .to_owned()
}

/// Whether a leaf is trusted by a bundle at a given time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
// Closed on purpose: a chain is trusted or not.
pub enum ChainVerdict {
    /// The leaf chains to a CA of the bundle (see [`verify_chain`]).
    Trusted {
        /// Fingerprint of the CA the chain ends on.
        ca: Fingerprint,
    },
    /// It does not, and this is why.
    Untrusted {
        /// The reason, typed as the trust check types it.
        reason: TrustFailure,
    },
}

impl ChainVerdict {
    /// Whether the verdict is [`ChainVerdict::Trusted`].
    pub fn is_trusted(&self) -> bool {
        matches!(self, Self::Trusted { .. })
    }
}

impl From<Outcome> for ChainVerdict {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Trusted { ca } => Self::Trusted { ca },
            Outcome::Failed { reason } => Self::Untrusted { reason },
        }
    }
}

/// Checks whether the first certificate of `leaf` (the others its chain) is trusted by
/// `bundle` at `now`, for TLS server or client authentication, with the verifier of the
/// trust check ([`trust`](crate::trust)): rustls-webpki's path building, the CA the chain
/// ends on within its own validity, and the chain OpenSSL and BoringSSL build (the first
/// matching CA of the bundle, in its order) accepted too.
///
/// Errors are for unreadable input; an untrusted leaf is a [`ChainVerdict::Untrusted`].
pub fn verify_chain(
    leaf: &[u8],
    leaf_origin: &Origin,
    bundle: &[u8],
    bundle_origin: &Origin,
    now: OffsetDateTime,
) -> Result<ChainVerdict, Error> {
    for (input, origin) in [(leaf, leaf_origin), (bundle, bundle_origin)] {
        for (i, der) in pem_blocks::certificates(input, origin)?.iter().enumerate() {
            parse(der, origin, i + 1)?;
        }
    }
    Ok(trust::verify_pair_any_usage(leaf, leaf_origin, bundle, bundle_origin, now).into())
}
