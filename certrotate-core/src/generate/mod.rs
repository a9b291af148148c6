//! Generating CAs, leaves and HMAC keys, and loading an existing CA.
//!
//! Nothing here reads the clock or the operating system's random source on its own: `now` and
//! an [`Entropy`] are parameters, so a plan made with [`SeededEntropy`] is reproducible.
//!
//! - `key.rs`: key algorithms and encodings, private keys in PEM and DER, and loading and
//!   encoding a generated key.
//! - `entropy.rs`: [`Entropy`], the only source of randomness; [`SystemEntropy`] and
//!   [`SeededEntropy`].
//! - `ca.rs`: [`CaParams`] and [`Ca`]: generating a CA, loading an existing one, and issuing
//!   leaves from it.
//! - `leaf.rs`: what a leaf is made of: [`LeafParams`], [`KeyUsage`], [`ExtendedKeyUsage`],
//!   its SANs, and the [`IssuedLeaf`].
//! - `hmac.rs`: [`HmacKey`].
//! - here: the validity and serial number every certificate gets.

mod ca;
mod entropy;
mod hmac;
mod key;
mod leaf;

pub use ca::{Ca, CaParams};
pub use entropy::{Entropy, SeededEntropy, SystemEntropy};
pub use hmac::HmacKey;
pub use key::{KeyAlgorithm, KeyEncoding, PrivateKeyDer, PrivateKeyPem};
pub use leaf::{ExtendedKeyUsage, IssuedLeaf, KeyUsage, LeafParams};

use std::time::Duration;

use rcgen::{CertificateParams, SerialNumber};
use time::OffsetDateTime;

use crate::error::Error;

/// 5 × 365 days: certgen's validity for the CA and every leaf.
pub(crate) const DAYS_5Y: Duration = Duration::from_secs(5 * 365 * 86_400);
const ONE_DAY: Duration = Duration::from_secs(86_400);

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
    // In UTC and within the years 0000 to 9999, or rcgen's conversion to UTC panics.
    let utc = crate::in_range(now);
    cert.not_before = time::Duration::try_from(backdate)
        .ok()
        .zip(utc)
        .and_then(|(d, now)| now.checked_sub(d))
        .and_then(crate::in_range)
        .ok_or_else(|| out_of_range(backdate))?;
    cert.not_after = time::Duration::try_from(validity)
        .ok()
        .zip(utc)
        .and_then(|(d, now)| now.checked_add(d))
        .and_then(crate::in_range)
        .ok_or_else(|| out_of_range(validity))?;
    Ok(())
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

fn sign_error(subject: &str, e: rcgen::Error) -> Error {
    Error::SignCertificate {
        subject: subject.into(),
        source: e.into(),
    }
}
