//! A CA: its parameters ([`CaParams`]), generating a self-signed one, loading an existing
//! one from PEM, and issuing leaves from it ([`Ca::issue_leaf`]).

use std::fmt;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::key::{encode_key, load_generated};
use super::leaf::sans;
use super::{
    DAYS_5Y, Entropy, ExtendedKeyUsage, IssuedLeaf, KeyAlgorithm, KeyEncoding, KeyUsage,
    LeafParams, ONE_DAY, PrivateKeyPem, check_name, pkcs1_needs_rsa, random_serial, set_validity,
    sign_error,
};
use crate::CaDefect;
use crate::error::{Error, Origin};
use crate::fingerprint::Fingerprint;

/// Parameters of a CA certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CaParams {
    /// Subject common name.
    pub common_name: String,
    /// Subject organization, if any.
    pub organization: Option<String>,
    /// How long the CA is valid from `now` (not from the back-dated `not_before`).
    #[serde(with = "crate::duration_serde")]
    pub validity: Duration,
    /// How far `not_before` is back-dated to tolerate clock skew (certgen uses 1 day).
    #[serde(with = "crate::duration_serde")]
    pub backdate: Duration,
    /// Key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// Private key encoding.
    pub key_encoding: KeyEncoding,
}

impl Default for CaParams {
    /// CN `certrotate-ca`, 5 years (certgen's 365×5 days), back-dated 1 day, ECDSA P-256.
    fn default() -> Self {
        Self {
            common_name: "certrotate-ca".into(),
            organization: None,
            validity: DAYS_5Y,
            backdate: ONE_DAY,
            key_algorithm: KeyAlgorithm::default(),
            key_encoding: KeyEncoding::default(),
        }
    }
}

impl CaParams {
    /// Default parameters with the given common name.
    pub fn new(common_name: impl Into<String>) -> Self {
        Self {
            common_name: common_name.into(),
            ..Self::default()
        }
    }

    /// Sets the validity.
    pub fn with_validity(mut self, validity: Duration) -> Self {
        self.validity = validity;
        self
    }

    /// Sets the back-dating of `not_before`.
    pub fn with_backdate(mut self, backdate: Duration) -> Self {
        self.backdate = backdate;
        self
    }

    /// Sets the key algorithm.
    pub fn with_key_algorithm(mut self, algorithm: KeyAlgorithm) -> Self {
        self.key_algorithm = algorithm;
        self
    }

    /// Sets the private key encoding.
    pub fn with_key_encoding(mut self, encoding: KeyEncoding) -> Self {
        self.key_encoding = encoding;
        self
    }

    /// Sets the subject organization.
    pub fn with_organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }
}

/// A CA that can issue leaves: its certificate and its private key.
pub struct Ca {
    cert_pem: String,
    cert_der: Vec<u8>,
    key_pem: PrivateKeyPem,
    issuer: Issuer<'static, KeyPair>,
    fingerprint: Fingerprint,
    not_after: OffsetDateTime,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("fingerprint", &self.fingerprint)
            .field("key", &self.key_pem)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Generates a self-signed CA valid from `now - backdate` to `now + validity`.
    pub fn generate(
        params: &CaParams,
        now: OffsetDateTime,
        entropy: &mut dyn Entropy,
    ) -> Result<Self, Error> {
        check_name("common_name", &params.common_name)?;
        if params.key_encoding == KeyEncoding::Pkcs1 && !params.key_algorithm.is_rsa() {
            return Err(pkcs1_needs_rsa());
        }
        let mut cert = CertificateParams::default();
        set_validity(&mut cert, now, params.validity, params.backdate)?;
        let serial = random_serial(entropy);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, params.common_name.as_str());
        if let Some(org) = &params.organization {
            dn.push(DnType::OrganizationName, org.as_str());
        }
        // The serial number in the subject, as certgen's CAs carry it: two generations of
        // a CA have different names (a verifier, `status` and a TLS server's list of
        // acceptable CAs tell them apart by name), and no leaf of the same common name
        // (`envoy-gateway`) has its issuer's subject.
        dn.push(
            DnType::CustomDnType(SUBJECT_SERIAL_NUMBER.to_vec()),
            DnValue::PrintableString(
                decimal(serial.as_ref())
                    .try_into()
                    .map_err(|e| sign_error(&params.common_name, e))?,
            ),
        );
        cert.serial_number = Some(serial);
        cert.distinguished_name = dn;
        cert.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        cert.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let key = entropy.generate_key(params.key_algorithm)?;
        let pair = load_generated(params.key_algorithm, &key)?;
        let signed = cert
            .self_signed(&pair)
            .map_err(|e| sign_error(&params.common_name, e))?;
        let key_pem = encode_key(&key, params.key_encoding)?;
        let cert_der = signed.der().to_vec();
        Ok(Self {
            cert_pem: signed.pem(),
            fingerprint: Fingerprint::of(&cert_der),
            // As encoded: DER times have whole seconds.
            not_after: cert
                .not_after
                .replace_nanosecond(0)
                .unwrap_or(cert.not_after),
            cert_der,
            key_pem,
            issuer: Issuer::new(cert, pair),
        })
    }

    /// Loads an existing CA from its certificate and private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// Fails if the certificate is not a CA or the key does not match it.
    pub fn from_pem(cert_pem: &str, key_pem: &str, origin: &Origin) -> Result<Self, Error> {
        Self::from_pem_named(cert_pem, origin, key_pem, origin)
    }

    /// Like [`Ca::from_pem`], with the certificate and the key named apart (`secret ns/ca
    /// key ca.crt`, `... key ca.key`), so an error names the input that was actually bad.
    pub fn from_pem_named(
        cert_pem: &str,
        origin: &Origin,
        key_pem: &str,
        key_origin: &Origin,
    ) -> Result<Self, Error> {
        let blocks = crate::pem_blocks::certificates(cert_pem.as_bytes(), origin)?;
        let unusable = |defect| Error::UnusableCa {
            origin: origin.clone(),
            defect,
        };
        let [der] = blocks.as_slice() else {
            return Err(unusable(CaDefect::NotOneCertificate {
                found: blocks.len(),
            }));
        };
        let x509 = crate::pem_blocks::parse_certificate(der).map_err(|reason| {
            Error::InvalidCertificate {
                origin: origin.clone(),
                block: 1,
                reason,
            }
        })?;
        // The one CA policy (what bundling refuses in a `ca.crt` too): new leaves are never
        // issued from a certificate that is not a CA or from weak material. Its validity
        // is the planner's question (an expired CA is rotated away from).
        crate::usable_ca::check_material(der).map_err(unusable)?;
        let pair = KeyPair::from_pem(key_pem).map_err(|e| Error::InvalidPrivateKey {
            origin: key_origin.clone(),
            reason: e.to_string(),
        })?;
        if x509.public_key().subject_public_key.data.as_ref() != pair.public_key_raw() {
            return Err(unusable(CaDefect::KeyMismatch {
                key: key_origin.to_string(),
            }));
        }
        let issuer = Issuer::from_ca_cert_der(&der.as_slice().into(), pair).map_err(|e| {
            unusable(CaDefect::Refused {
                reason: e.to_string(),
            })
        })?;
        Ok(Self {
            cert_pem: crate::pem_blocks::encode_certificates([der.as_slice()]),
            fingerprint: Fingerprint::of(der),
            not_after: x509.validity().not_after.to_datetime(),
            cert_der: der.clone(),
            key_pem: PrivateKeyPem::new(key_pem.to_owned()),
            issuer,
        })
    }

    /// Issues a leaf signed by this CA, valid from `now - backdate` to `now + validity`
    /// (clamped to the CA's own `not_after`, so a leaf never outlives its issuer).
    pub fn issue_leaf(
        &self,
        params: &LeafParams,
        now: OffsetDateTime,
        entropy: &mut dyn Entropy,
    ) -> Result<IssuedLeaf, Error> {
        check_name("common_name", &params.common_name)?;
        if params.key_encoding == KeyEncoding::Pkcs1 && !params.key_algorithm.is_rsa() {
            return Err(pkcs1_needs_rsa());
        }
        let mut cert = CertificateParams::default();
        set_validity(&mut cert, now, params.validity, params.backdate)?;
        cert.not_after = cert.not_after.min(self.not_after());
        cert.serial_number = Some(random_serial(entropy));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, params.common_name.as_str());
        cert.distinguished_name = dn;
        cert.subject_alt_names = sans(params)?;
        let usages = KeyUsage::permitted(&params.key_usages, params.key_algorithm);
        if usages.is_empty() {
            return Err(Error::InvalidParameter {
                field: "key_usages".into(),
                reason: format!(
                    "none of {:?} is permitted for {} keys",
                    params.key_usages, params.key_algorithm
                ),
            });
        }
        cert.key_usages = usages.into_iter().map(KeyUsage::to_rcgen).collect();
        cert.extended_key_usages = params
            .extended_key_usages
            .iter()
            .map(|u| match u {
                ExtendedKeyUsage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            })
            .collect();
        // ExplicitNoCa writes basicConstraints CA:FALSE and, with it, the SubjectKeyId: without
        // an SKI, OpenSSL takes a leaf whose subject equals its CA's for self-signed.
        cert.is_ca = IsCa::ExplicitNoCa;
        cert.use_authority_key_identifier_extension = true;
        let key = entropy.generate_key(params.key_algorithm)?;
        let pair = load_generated(params.key_algorithm, &key)?;
        let signed = cert
            .signed_by(&pair, &self.issuer)
            .map_err(|e| sign_error(&params.common_name, e))?;
        Ok(IssuedLeaf {
            cert_pem: signed.pem(),
            key_pem: encode_key(&key, params.key_encoding)?,
            fingerprint: Fingerprint::of(signed.der()),
        })
    }

    /// The certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificate in DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The private key in PEM.
    pub fn key_pem(&self) -> &PrivateKeyPem {
        &self.key_pem
    }

    /// SHA-256 fingerprint of the certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The end of the CA's validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }
}

/// X.520 `serialNumber` (2.5.4.5), the attribute certgen puts in its CAs' subjects.
const SUBJECT_SERIAL_NUMBER: [u64; 4] = [2, 5, 4, 5];

/// A big-endian unsigned integer of at most 16 bytes, in decimal (certgen writes the serial
/// as Go's `big.Int.String()` does).
fn decimal(bytes: &[u8]) -> String {
    let mut buf = [0u8; 16];
    let tail = bytes.len().min(16);
    buf[16 - tail..].copy_from_slice(&bytes[bytes.len() - tail..]);
    u128::from_be_bytes(buf).to_string()
}
