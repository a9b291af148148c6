//! Keys: the algorithms and encodings a generated key may have, private keys in PEM and
//! DER (zeroized on drop, redacted in `Debug`), and loading and encoding a generated key.

use std::fmt;
use std::str::FromStr;

use rcgen::KeyPair;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Origin};

/// The key algorithm of a generated CA or leaf.
///
/// The default is ECDSA P-256: every TLS stack a control plane uses (Envoy/BoringSSL, Go,
/// rustls, OpenSSL) supports it, it gives 128-bit security, a key is generated in tens of
/// microseconds where RSA 2048 takes tens of milliseconds, and handshakes are cheaper.
/// Choose [`KeyAlgorithm::Rsa2048`] for byte-for-byte parity with Envoy Gateway's `certgen`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256.
    #[default]
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA 2048 with PKCS#1 v1.5 SHA-256 signatures (what `certgen` uses).
    // Spelled as the flag spells it (kebab-case would give `rsa2048`), which is accepted too.
    #[serde(rename = "rsa-2048", alias = "rsa2048")]
    Rsa2048,
    /// RSA 3072.
    #[serde(rename = "rsa-3072", alias = "rsa3072")]
    Rsa3072,
    /// RSA 4096.
    #[serde(rename = "rsa-4096", alias = "rsa4096")]
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order of the command-line help.
    pub const ALL: [KeyAlgorithm; 6] = [
        Self::EcdsaP256,
        Self::EcdsaP384,
        Self::Ed25519,
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
    ];

    /// The name used in profiles and on the command line (`ecdsa-p256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Ed25519 => "ed25519",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
        }
    }

    /// Whether this is an RSA algorithm.
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    pub(super) fn signature_algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::Ed25519 => &rcgen::PKCS_ED25519,
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::InvalidParameter {
                field: "key algorithm".into(),
                reason: format!(
                    "{s:?} is not one of {}",
                    Self::ALL.map(Self::as_str).join(", ")
                ),
            })
    }
}

/// How a generated private key is serialised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyEncoding {
    /// PKCS#8 (`PRIVATE KEY`): every algorithm, every modern TLS stack.
    #[default]
    Pkcs8,
    /// PKCS#1 (`RSA PRIVATE KEY`), RSA only: what `certgen` and kubeadm write.
    Pkcs1,
}

/// A private key in PEM, zeroized on drop and redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(Zeroizing<String>);

impl PrivateKeyPem {
    /// Wraps PEM text that holds a private key.
    pub fn new(pem: String) -> Self {
        Self(Zeroizing::new(pem))
    }

    /// The PEM text. Handle with care: this is the secret.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// A PKCS#8 private key in DER, as produced by an [`Entropy`]; zeroized on drop.
///
/// [`Entropy`]: super::Entropy
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyDer(Zeroizing<Vec<u8>>);

impl PrivateKeyDer {
    /// Wraps PKCS#8 DER bytes.
    pub fn from_pkcs8(der: Vec<u8>) -> Self {
        Self(Zeroizing::new(der))
    }

    /// The PKCS#8 DER bytes. Handle with care: this is the secret.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyDer(<redacted>)")
    }
}

pub(super) fn load_generated(
    algorithm: KeyAlgorithm,
    key: &PrivateKeyDer,
) -> Result<KeyPair, Error> {
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(key.expose_secret());
    KeyPair::from_pkcs8_der_and_sign_algo(&der, algorithm.signature_algorithm()).map_err(|e| {
        Error::GenerateKey {
            algorithm,
            source: e.into(),
        }
    })
}

pub(super) fn encode_key(
    key: &PrivateKeyDer,
    encoding: KeyEncoding,
) -> Result<PrivateKeyPem, Error> {
    let (label, der) = match encoding {
        KeyEncoding::Pkcs8 => ("PRIVATE KEY", Zeroizing::new(key.expose_secret().to_vec())),
        KeyEncoding::Pkcs1 => {
            let info = pkcs8::PrivateKeyInfoRef::try_from(key.expose_secret()).map_err(|e| {
                Error::InvalidPrivateKey {
                    origin: Origin::new("generated key"),
                    reason: e.to_string(),
                }
            })?;
            (
                "RSA PRIVATE KEY",
                Zeroizing::new(info.private_key.as_bytes().to_vec()),
            )
        }
    };
    let pem = pem::Pem::new(label, der.to_vec());
    let text = pem::encode_config(
        &pem,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );
    // `Pem` does not zeroize its contents; overwrite them before they are dropped.
    let mut contents = pem.into_contents();
    zeroize::Zeroize::zeroize(&mut contents);
    Ok(PrivateKeyPem::new(text))
}
