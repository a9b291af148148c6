//! HMAC keys: random bytes, zeroized on drop and redacted in `Debug`.

use std::fmt;

use zeroize::Zeroizing;

use super::Entropy;
use crate::error::Error;

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
