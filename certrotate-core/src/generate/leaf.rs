//! What a leaf is made of: [`LeafParams`], the key usages and extended key usages it may
//! assert, its subject alternative names, and the [`IssuedLeaf`] a CA returns.

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{KeyUsagePurpose, SanType};
use serde::{Deserialize, Serialize};

use super::{DAYS_5Y, KeyAlgorithm, KeyEncoding, ONE_DAY, PrivateKeyPem};
use crate::error::Error;
use crate::fingerprint::Fingerprint;

/// A key usage of a certificate (X.509 `keyUsage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyUsage {
    /// digitalSignature
    DigitalSignature,
    /// contentCommitment (formerly nonRepudiation)
    ContentCommitment,
    /// keyEncipherment
    KeyEncipherment,
    /// dataEncipherment
    DataEncipherment,
    /// keyAgreement
    KeyAgreement,
    /// keyCertSign
    KeyCertSign,
    /// cRLSign
    CrlSign,
}

impl KeyUsage {
    /// Whether a certificate for a key of `algorithm` may assert this usage.
    ///
    /// RSA keys may assert any usage but keyAgreement (RFC 3279 section 2.3.1), which is
    /// what certgen writes. ECDSA keys sign or agree, never encipher (RFC 5480 section 3);
    /// Ed25519 keys only sign (RFC 8410 section 5). [`Ca::issue_leaf`] leaves out the
    /// usages a leaf's key type forbids, so one profile serves every `--key-algorithm`.
    ///
    /// [`Ca::issue_leaf`]: super::Ca::issue_leaf
    pub fn permitted_for(self, algorithm: KeyAlgorithm) -> bool {
        match self {
            Self::DigitalSignature
            | Self::ContentCommitment
            | Self::KeyCertSign
            | Self::CrlSign => true,
            Self::KeyEncipherment | Self::DataEncipherment => algorithm.is_rsa(),
            Self::KeyAgreement => {
                matches!(algorithm, KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384)
            }
        }
    }

    /// The usages of `usages` that a key of `algorithm` may assert, in order.
    pub fn permitted(usages: &[KeyUsage], algorithm: KeyAlgorithm) -> Vec<KeyUsage> {
        usages
            .iter()
            .copied()
            .filter(|u| u.permitted_for(algorithm))
            .collect()
    }

    pub(super) fn to_rcgen(self) -> KeyUsagePurpose {
        match self {
            Self::DigitalSignature => KeyUsagePurpose::DigitalSignature,
            Self::ContentCommitment => KeyUsagePurpose::ContentCommitment,
            Self::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
            Self::DataEncipherment => KeyUsagePurpose::DataEncipherment,
            Self::KeyAgreement => KeyUsagePurpose::KeyAgreement,
            Self::KeyCertSign => KeyUsagePurpose::KeyCertSign,
            Self::CrlSign => KeyUsagePurpose::CrlSign,
        }
    }
}

/// An extended key usage of a leaf (X.509 `extKeyUsage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ExtendedKeyUsage {
    /// TLS server authentication.
    ServerAuth,
    /// TLS client authentication.
    ClientAuth,
}

/// Parameters of a leaf certificate for an mTLS component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LeafParams {
    /// Subject common name.
    pub common_name: String,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// How long the leaf is valid from `now`.
    #[serde(with = "crate::duration_serde")]
    pub validity: Duration,
    /// How far `not_before` is back-dated to tolerate clock skew.
    #[serde(with = "crate::duration_serde")]
    pub backdate: Duration,
    /// Key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// Private key encoding.
    pub key_encoding: KeyEncoding,
    /// Key usages; those the key algorithm forbids are left out (see
    /// [`KeyUsage::permitted_for`]), so ECDSA and Ed25519 leaves never assert encipherment.
    pub key_usages: Vec<KeyUsage>,
    /// Extended key usages (server and client auth for mTLS).
    pub extended_key_usages: Vec<ExtendedKeyUsage>,
}

impl Default for LeafParams {
    /// No names, 5 years, back-dated 1 day, ECDSA P-256, digitalSignature + keyEncipherment
    /// (keyEncipherment only where the key is RSA), serverAuth + clientAuth.
    fn default() -> Self {
        Self {
            common_name: String::new(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            validity: DAYS_5Y,
            backdate: ONE_DAY,
            key_algorithm: KeyAlgorithm::default(),
            key_encoding: KeyEncoding::default(),
            key_usages: vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment],
            extended_key_usages: vec![ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth],
        }
    }
}

impl LeafParams {
    /// Default parameters with the given common name and DNS names.
    pub fn new(common_name: impl Into<String>, dns_names: Vec<String>) -> Self {
        Self {
            common_name: common_name.into(),
            dns_names,
            ..Self::default()
        }
    }

    /// Sets the IP SANs.
    pub fn with_ip_addresses(mut self, ips: Vec<IpAddr>) -> Self {
        self.ip_addresses = ips;
        self
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

    /// Sets the key usages.
    pub fn with_key_usages(mut self, usages: Vec<KeyUsage>) -> Self {
        self.key_usages = usages;
        self
    }

    /// Sets the extended key usages.
    pub fn with_extended_key_usages(mut self, usages: Vec<ExtendedKeyUsage>) -> Self {
        self.extended_key_usages = usages;
        self
    }
}

/// A freshly issued leaf: certificate and private key in PEM.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IssuedLeaf {
    /// The certificate.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: PrivateKeyPem,
    /// SHA-256 fingerprint of the certificate.
    pub fingerprint: Fingerprint,
}

pub(super) fn sans(params: &LeafParams) -> Result<Vec<SanType>, Error> {
    let mut out = Vec::with_capacity(params.dns_names.len() + params.ip_addresses.len());
    for (i, name) in params.dns_names.iter().enumerate() {
        crate::profile::validate_dns_name(name).map_err(|reason| Error::InvalidParameter {
            field: format!("dns_names[{i}]"),
            reason,
        })?;
        let ia5 = name
            .as_str()
            .try_into()
            .map_err(|e: rcgen::Error| Error::InvalidParameter {
                field: format!("dns_names[{i}]"),
                reason: e.to_string(),
            })?;
        out.push(SanType::DnsName(ia5));
    }
    out.extend(params.ip_addresses.iter().copied().map(SanType::IpAddress));
    Ok(out)
}
