//! HMAC keys: random bytes, zeroized on drop and redacted in `Debug`.

use std::fmt;

use zeroize::Zeroizing;

use super::Entropy;
use crate::error::Error;

/// A random HMAC key (certgen's `envoy-oidc-hmac` uses 32 bytes), zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacKey(Zeroizing<Vec<u8>>);

impl HmacKey {
    /// The shortest key generated or accepted: 16 bytes (128 bits). An HMAC Secret read
    /// back with a shorter key is replaced, and `check` reports it.
    pub const MIN_LEN: usize = 16;

    /// Generates `len` random bytes; fails for fewer than [`HmacKey::MIN_LEN`].
    pub fn generate(len: usize, entropy: &mut dyn Entropy) -> Result<Self, Error> {
        if len < Self::MIN_LEN {
            return Err(Error::InvalidParameter {
                field: "hmac length".into(),
                reason: format!("{len} bytes is less than the minimum of {}", Self::MIN_LEN),
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
