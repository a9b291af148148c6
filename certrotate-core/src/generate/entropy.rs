//! The source of every random value ([`Entropy`]): the operating system's
//! ([`SystemEntropy`]) or a seeded ChaCha20 stream ([`SeededEntropy`]), and the keys each
//! draws.

use rcgen::KeyPair;
use zeroize::Zeroizing;

use super::{KeyAlgorithm, PrivateKeyDer};
use crate::error::{BoxError, Error};

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
