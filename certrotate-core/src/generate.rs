//! Generating CAs, leaves and HMAC keys, and loading an existing CA.
//!
//! Nothing here reads the clock or the operating system's random source on its own: `now` and
//! an [`Entropy`] are parameters, so a plan made with [`SeededEntropy`] is reproducible.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{BoxError, Error, Origin};
use crate::fingerprint::Fingerprint;

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
    Rsa2048,
    /// RSA 3072.
    Rsa3072,
    /// RSA 4096.
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

    fn signature_algorithm(self) -> &'static rcgen::SignatureAlgorithm {
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

/// The source of every random value: serial numbers, HMAC keys and private keys.
///
/// [`SystemEntropy`] is what production uses; [`SeededEntropy`] makes plans reproducible in
/// tests and dry runs.
pub trait Entropy {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);

    /// Generates a private key, returned as PKCS#8 DER.
    fn generate_key(&mut self, algorithm: KeyAlgorithm) -> Result<PrivateKeyDer, Error>;
}

/// Randomness from the operating system, through the crypto backend (aws-lc).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemEntropy;

impl Entropy for SystemEntropy {
    fn fill(&mut self, dest: &mut [u8]) {
        // aws-lc's RNG only fails if the OS RNG is unavailable, which aws-lc itself treats
        // as fatal; there is no sane way to continue minting keys without it.
        #[allow(clippy::expect_used)]
        aws_lc_rs::rand::fill(dest).expect("the operating system's random source failed");
    }

    fn generate_key(&mut self, algorithm: KeyAlgorithm) -> Result<PrivateKeyDer, Error> {
        backend_key(algorithm)
    }
}

/// Deterministic randomness from a 64-bit seed (ChaCha20), for tests and reproducible plans.
///
/// Serial numbers, HMAC keys, and ECDSA and Ed25519 keys are all derived from the seed, so
/// with Ed25519 a plan is byte-for-byte reproducible. Two things are not: RSA keys (aws-lc
/// has no seeded RSA key generation) and ECDSA signature bytes (aws-lc draws the nonce
/// itself); certificates then differ only in their signatures and RSA moduli.
#[derive(Clone, Debug)]
pub struct SeededEntropy(rand_chacha::ChaCha20Rng);

impl SeededEntropy {
    /// An entropy source whose every output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        use rand_core::SeedableRng;
        Self(rand_chacha::ChaCha20Rng::seed_from_u64(seed))
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, dest: &mut [u8]) {
        use rand_core::Rng;
        self.0.fill_bytes(dest);
    }

    fn generate_key(&mut self, algorithm: KeyAlgorithm) -> Result<PrivateKeyDer, Error> {
        use aws_lc_rs::{agreement, signature};
        let err = |source: BoxError| Error::GenerateKey { algorithm, source };
        let ecdsa = |this: &mut Self,
                     len: usize,
                     ecdh: &'static agreement::Algorithm,
                     alg: &'static signature::EcdsaSigningAlgorithm| {
            // A scalar outside [1, n-1] is rejected; that happens with probability ~2^-32
            // for P-256, so a handful of tries always suffices.
            for _ in 0..64 {
                let mut scalar = Zeroizing::new(vec![0u8; len]);
                this.fill(&mut scalar);
                let Ok(private) = agreement::PrivateKey::from_private_key(ecdh, &scalar) else {
                    continue;
                };
                let public = private.compute_public_key().map_err(|e| err(e.into()))?;
                let pair = signature::EcdsaKeyPair::from_private_key_and_public_key(
                    alg,
                    &scalar,
                    public.as_ref(),
                )
                .map_err(|e| err(e.into()))?;
                let doc = pair.to_pkcs8v1().map_err(|e| err(e.into()))?;
                return Ok(PrivateKeyDer::from_pkcs8(doc.as_ref().to_vec()));
            }
            Err(err("no valid scalar drawn in 64 tries".into()))
        };
        match algorithm {
            KeyAlgorithm::EcdsaP256 => ecdsa(
                self,
                32,
                &agreement::ECDH_P256,
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            ),
            KeyAlgorithm::EcdsaP384 => ecdsa(
                self,
                48,
                &agreement::ECDH_P384,
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            ),
            KeyAlgorithm::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                self.fill(seed.as_mut());
                let pair = signature::Ed25519KeyPair::from_seed_unchecked(seed.as_ref())
                    .map_err(|e| err(e.into()))?;
                let doc = pair.to_pkcs8v1().map_err(|e| err(e.into()))?;
                Ok(PrivateKeyDer::from_pkcs8(doc.as_ref().to_vec()))
            }
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                backend_key(algorithm)
            }
        }
    }
}

fn backend_key(algorithm: KeyAlgorithm) -> Result<PrivateKeyDer, Error> {
    let size = match algorithm {
        KeyAlgorithm::Rsa2048 => Some(rcgen::RsaKeySize::_2048),
        KeyAlgorithm::Rsa3072 => Some(rcgen::RsaKeySize::_3072),
        KeyAlgorithm::Rsa4096 => Some(rcgen::RsaKeySize::_4096),
        _ => None,
    };
    let alg = algorithm.signature_algorithm();
    let pair = match size {
        Some(size) => KeyPair::generate_rsa_for(alg, size),
        None => KeyPair::generate_for(alg),
    }
    .map_err(|e| Error::GenerateKey {
        algorithm,
        source: e.into(),
    })?;
    Ok(PrivateKeyDer::from_pkcs8(pair.serialize_der()))
}

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

    fn to_rcgen(self) -> KeyUsagePurpose {
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

/// 5 × 365 days: certgen's validity for the CA and every leaf.
pub const DAYS_5Y: Duration = Duration::from_secs(5 * 365 * 86_400);
const ONE_DAY: Duration = Duration::from_secs(86_400);

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
        cert.serial_number = Some(random_serial(entropy));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, params.common_name.as_str());
        if let Some(org) = &params.organization {
            dn.push(DnType::OrganizationName, org.as_str());
        }
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
        let [der] = blocks.as_slice() else {
            return Err(Error::UnusableCa {
                origin: origin.clone(),
                reason: format!(
                    "expected exactly one CA certificate, found {}",
                    blocks.len()
                ),
            });
        };
        let x509 = crate::pem_blocks::parse_certificate(der).map_err(|reason| {
            Error::InvalidCertificate {
                origin: origin.clone(),
                block: 1,
                reason,
            }
        })?;
        if !x509.is_ca() {
            return Err(Error::UnusableCa {
                origin: origin.clone(),
                reason: "the certificate is not a CA (basicConstraints CA:FALSE or absent)".into(),
            });
        }
        // New leaves must not be issued from weak material: refuse it here, where a CA is
        // loaded to sign (inspection only warns about weak certificates in bundles).
        let summary =
            crate::inspect::summarise(&x509, der, 1, x509.validity().not_before.to_datetime());
        if let Some(weakness) = summary.weaknesses().into_iter().next() {
            return Err(Error::UnusableCa {
                origin: origin.clone(),
                reason: format!("{weakness}: too weak to issue new certificates from"),
            });
        }
        let pair = KeyPair::from_pem(key_pem).map_err(|e| Error::InvalidPrivateKey {
            origin: key_origin.clone(),
            reason: e.to_string(),
        })?;
        if x509.public_key().subject_public_key.data.as_ref() != pair.public_key_raw() {
            return Err(Error::UnusableCa {
                origin: origin.clone(),
                reason: format!(
                    "the private key in {key_origin} does not match the certificate's public key"
                ),
            });
        }
        let issuer = Issuer::from_ca_cert_der(&der.as_slice().into(), pair).map_err(|e| {
            Error::UnusableCa {
                origin: origin.clone(),
                reason: e.to_string(),
            }
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

/// A random HMAC key (certgen's `envoy-oidc-hmac` uses 32 bytes), zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacKey(Zeroizing<Vec<u8>>);

impl HmacKey {
    /// Generates `len` random bytes; fails for fewer than 16 (128 bits).
    pub fn generate(len: usize, entropy: &mut dyn Entropy) -> Result<Self, Error> {
        if len < 16 {
            return Err(Error::InvalidParameter {
                field: "hmac length".into(),
                reason: format!("{len} bytes is less than the minimum of 16"),
            });
        }
        let mut key = Zeroizing::new(vec![0u8; len]);
        entropy.fill(&mut key);
        Ok(Self(key))
    }

    /// The key bytes. Handle with care: this is the secret.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacKey(<redacted {} bytes>)", self.0.len())
    }
}

/// 16 random bytes with the top bit cleared: a positive 127-bit serial, far above the 64
/// bits CA/B practice asks for, and never derived from time or the key.
fn random_serial(entropy: &mut dyn Entropy) -> SerialNumber {
    let mut bytes = [0u8; 16];
    entropy.fill(&mut bytes);
    bytes[0] &= 0x7f;
    // A leading zero byte would be stripped by DER and shrink the serial; keep it non-zero.
    bytes[0] |= 0x40;
    SerialNumber::from_slice(&bytes)
}

fn set_validity(
    cert: &mut CertificateParams,
    now: OffsetDateTime,
    validity: Duration,
    backdate: Duration,
) -> Result<(), Error> {
    if validity < Duration::from_secs(3600) {
        return Err(Error::InvalidParameter {
            field: "validity".into(),
            reason: format!(
                "{} is shorter than the minimum of 1h",
                humantime::format_duration(validity)
            ),
        });
    }
    let out_of_range = |duration: Duration| Error::TimeOutOfRange {
        base: now,
        duration,
    };
    cert.not_before = time::Duration::try_from(backdate)
        .ok()
        .and_then(|d| now.checked_sub(d))
        .ok_or_else(|| out_of_range(backdate))?;
    cert.not_after = time::Duration::try_from(validity)
        .ok()
        .and_then(|d| now.checked_add(d))
        .filter(|t| t.year() <= 9999)
        .ok_or_else(|| out_of_range(validity))?;
    Ok(())
}

fn sans(params: &LeafParams) -> Result<Vec<SanType>, Error> {
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

fn check_name(field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() || value.len() > 64 {
        return Err(Error::InvalidParameter {
            field: field.into(),
            reason: format!("must be 1 to 64 characters, got {}", value.len()),
        });
    }
    Ok(())
}

fn pkcs1_needs_rsa() -> Error {
    Error::InvalidParameter {
        field: "key encoding".into(),
        reason: "PKCS#1 is only defined for RSA keys; use PKCS#8".into(),
    }
}

fn load_generated(algorithm: KeyAlgorithm, key: &PrivateKeyDer) -> Result<KeyPair, Error> {
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(key.expose_secret());
    KeyPair::from_pkcs8_der_and_sign_algo(&der, algorithm.signature_algorithm()).map_err(|e| {
        Error::GenerateKey {
            algorithm,
            source: e.into(),
        }
    })
}

fn encode_key(key: &PrivateKeyDer, encoding: KeyEncoding) -> Result<PrivateKeyPem, Error> {
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

fn sign_error(subject: &str, e: rcgen::Error) -> Error {
    Error::SignCertificate {
        subject: subject.into(),
        source: e.into(),
    }
}
