//! Whether a certificate is usable as the CA of a bundle: the test every certificate of a
//! bundle's `new` must pass, and every carried certificate of `old` too.
//!
//! The checks read a handful of fields straight from the DER (basicConstraints, keyUsage,
//! validity, the public key and the signature algorithm) after rustls-webpki has accepted
//! the certificate's structure: ten thousand certificates are checked in well under a
//! millisecond, where a full X.509 parse of each takes ~2 µs.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

/// Why a certificate cannot be the CA of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CaDefect {
    /// No basicConstraints with CA:TRUE (a leaf, or a v1 certificate).
    NotACa,
    /// A keyUsage extension without keyCertSign.
    NoKeyCertSign,
    /// Not valid yet at the time of the bundling.
    NotYetValid {
        /// Its start of validity.
        #[serde(with = "time::serde::rfc3339")]
        not_before: OffsetDateTime,
    },
    /// Expired at the time of the bundling.
    Expired {
        /// Its end of validity.
        #[serde(with = "time::serde::rfc3339")]
        not_after: OffsetDateTime,
    },
    /// An RSA key under 2048 bits.
    WeakRsaKey {
        /// The modulus size.
        bits: usize,
    },
    /// An elliptic curve key on a curve other than P-256, P-384 or P-521.
    UnsupportedCurve {
        /// The curve's OID.
        oid: String,
    },
    /// A key that is neither RSA, ECDSA, Ed25519 nor Ed448.
    UnsupportedKey {
        /// The algorithm's OID.
        oid: String,
    },
    /// Signed with SHA-1, MD5 or MD2.
    WeakSignature {
        /// The algorithm's name.
        algorithm: &'static str,
    },
    /// A field the check reads could not be decoded.
    Unreadable {
        /// Which field.
        field: &'static str,
    },
    /// A CA's certificate input holds not exactly one certificate.
    NotOneCertificate {
        /// How many it holds.
        found: usize,
    },
    /// The private key given for the CA is not the key of its certificate.
    KeyMismatch {
        /// Where the key came from (`secret ns/ca key ca.key`).
        key: String,
    },
    /// The signing library refused the CA certificate (its words).
    Refused {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for CaDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotACa => f.write_str("not a CA (no basicConstraints CA:TRUE)"),
            Self::NoKeyCertSign => f.write_str("its keyUsage lacks keyCertSign"),
            Self::NotYetValid { not_before } => {
                write!(f, "not valid before {}", crate::rfc3339(*not_before))
            }
            Self::Expired { not_after } => write!(f, "expired at {}", crate::rfc3339(*not_after)),
            Self::WeakRsaKey { bits } => {
                write!(f, "RSA key of {bits} bits (at least 2048 needed)")
            }
            Self::UnsupportedCurve { oid } => {
                write!(f, "EC key on curve {oid} (P-256, P-384 or P-521 needed)")
            }
            Self::UnsupportedKey { oid } => write!(f, "unsupported key algorithm {oid}"),
            Self::WeakSignature { algorithm } => write!(f, "signed with {algorithm}"),
            Self::Unreadable { field } => write!(f, "its {field} cannot be decoded"),
            Self::NotOneCertificate { found } => {
                write!(f, "expected exactly one CA certificate, found {found}")
            }
            Self::KeyMismatch { key } => write!(
                f,
                "the private key in {key} does not match the certificate's public key"
            ),
            Self::Refused { reason } => f.write_str(reason),
        }
    }
}

/// A time as the 14 digits `YYYYMMDDHHMMSS` in UTC, which order as the times do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp([u8; 14]);

impl Stamp {
    /// `t` in UTC; years outside 0..=9999 are clamped (no certificate can say them).
    pub(crate) fn of(t: OffsetDateTime) -> Self {
        // A time past the years `time` converts to UTC is past every certificate's.
        let Some(t) = t.checked_to_offset(time::UtcOffset::UTC) else {
            return if t.year() > 0 {
                Self(*b"99991231235959")
            } else {
                Self(*b"00000101000000")
            };
        };
        let mut out = [b'0'; 14];
        let year = t.year().clamp(0, 9999) as u32;
        let fields = [
            (year, 0, 4),
            (u32::from(u8::from(t.month())), 4, 2),
            (u32::from(t.day()), 6, 2),
            (u32::from(t.hour()), 8, 2),
            (u32::from(t.minute()), 10, 2),
            (u32::from(t.second()), 12, 2),
        ];
        for (mut value, at, len) in fields {
            for i in (at..at + len).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        Self(out)
    }

    /// A DER UTCTime (`YYMMDDHHMMSSZ`, years 1950 to 2049) or GeneralizedTime
    /// (`YYYYMMDDHHMMSSZ`).
    fn from_der(tag: u8, value: &[u8]) -> Option<Self> {
        let mut out = [0u8; 14];
        match (tag, value) {
            (UTC_TIME, [digits @ .., b'Z']) if digits.len() == 12 => {
                out[0..2].copy_from_slice(if digits[0] >= b'5' { b"19" } else { b"20" });
                out[2..].copy_from_slice(digits);
            }
            (GENERALIZED_TIME, [digits @ .., b'Z']) if digits.len() == 14 => {
                out.copy_from_slice(digits);
            }
            _ => return None,
        }
        out.iter().all(u8::is_ascii_digit).then_some(Self(out))
    }

    fn to_datetime(self) -> Option<OffsetDateTime> {
        let n = |at: usize, len: usize| {
            self.0[at..at + len]
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
        };
        let month = time::Month::try_from(u8::try_from(n(4, 2)).ok()?).ok()?;
        let date = time::Date::from_calendar_date(n(0, 4) as i32, month, n(6, 2) as u8).ok()?;
        let time = time::Time::from_hms(n(8, 2) as u8, n(10, 2) as u8, n(12, 2) as u8).ok()?;
        Some(date.with_time(time).assume_utc())
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

// OIDs, DER-encoded content bytes.
const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const ED448: &[u8] = &[0x2b, 0x65, 0x71];
const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
const WEAK_SIGNATURES: [(&[u8], &str); 5] = [
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05],
        "SHA-1 (sha1WithRSAEncryption)",
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01],
        "SHA-1 (ecdsa-with-SHA1)",
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03],
        "SHA-1 (dsa-with-sha1)",
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04],
        "MD5 (md5WithRSAEncryption)",
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x02],
        "MD2 (md2WithRSAEncryption)",
    ),
];

/// Checks that `der` (a certificate rustls-webpki accepted as a trust anchor) is usable as
/// a CA at `now`: CA:TRUE, keyCertSign where keyUsage is present, valid at `now`, an RSA
/// key of at least 2048 bits or a P-256/P-384/P-521, Ed25519 or Ed448 key, and not signed
/// with SHA-1 or MD5. The first defect found is returned.
pub(crate) fn check(der: &[u8], now: Stamp) -> Result<(), CaDefect> {
    check_at(der, now, NotBefore::Enforced)
}

/// Like [`check`], whatever the time: the material alone (CA:TRUE, keyCertSign, key,
/// signature). What a CA loaded to sign with must be; whether it is still valid is the
/// planner's question (an expired CA is rotated away from, not refused on load).
pub(crate) fn check_material(der: &[u8]) -> Result<(), CaDefect> {
    // At the earliest time a certificate can say, with not-before ignored, no validity
    // rule can fail: only the material is judged.
    check_at(der, Stamp(*b"00000101000000"), NotBefore::Ignored)
}

/// The weaknesses of any certificate, a leaf's included: its key and its signature
/// algorithm, judged as [`check`] judges a CA's (one policy: what bundling refuses in a CA,
/// `inspect` flags in any certificate). Unreadable parts are not weaknesses here.
pub(crate) fn weaknesses(der: &[u8]) -> Vec<CaDefect> {
    let mut out = Vec::new();
    let Some((cert, _)) = expect(der, SEQUENCE) else {
        return out;
    };
    let Some((tbs, rest)) = expect(cert, SEQUENCE) else {
        return out;
    };
    if let Some(spki) = spki_of(tbs)
        && let Err(defect @ (CaDefect::WeakRsaKey { .. } | CaDefect::UnsupportedCurve { .. })) =
            check_key(spki)
    {
        out.push(defect);
    }
    if let Some((signature, _)) = expect(rest, SEQUENCE)
        && let Some((algorithm, _)) = expect(signature, OID)
        && let Some((_, name)) = WEAK_SIGNATURES.iter().find(|(oid, _)| *oid == algorithm)
    {
        out.push(CaDefect::WeakSignature { algorithm: name });
    }
    out
}

/// The subjectPublicKeyInfo of a TBSCertificate.
fn spki_of(tbs: &[u8]) -> Option<&[u8]> {
    let mut fields = tbs;
    if fields.first() == Some(&0xa0) {
        fields = tlv(fields)?.2;
    }
    let (_, fields) = expect(fields, INTEGER)?;
    let (_, fields) = expect(fields, SEQUENCE)?;
    let (_, fields) = expect(fields, SEQUENCE)?;
    let (_, fields) = expect(fields, SEQUENCE)?;
    let (_, fields) = expect(fields, SEQUENCE)?;
    let (spki, _) = expect(fields, SEQUENCE)?;
    Some(spki)
}

/// Like [`check`], for a certificate of the old bundle that is carried into a new one: one
/// that is not valid yet is carried, as upstream's `bundleCACerts` carries it (a CA minted
/// on a node whose clock runs ahead would otherwise be dropped, and every leaf it issued
/// left untrusted until the clocks agree).
pub(crate) fn check_carried(der: &[u8], now: Stamp) -> Result<(), CaDefect> {
    check_at(der, now, NotBefore::Ignored)
}

/// Whether a certificate not valid yet is a defect.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NotBefore {
    Enforced,
    Ignored,
}

fn check_at(der: &[u8], now: Stamp, not_before_rule: NotBefore) -> Result<(), CaDefect> {
    let unreadable = |field| CaDefect::Unreadable { field };
    let (cert, _) = expect(der, SEQUENCE).ok_or(unreadable("certificate"))?;
    let (tbs, rest) = expect(cert, SEQUENCE).ok_or(unreadable("certificate"))?;
    let (signature, _) = expect(rest, SEQUENCE).ok_or(unreadable("signature algorithm"))?;

    let mut fields = tbs;
    if fields.first() == Some(&0xa0) {
        fields = tlv(fields).ok_or(unreadable("version"))?.2;
    }
    let (_, fields) = expect(fields, INTEGER).ok_or(unreadable("serial number"))?;
    let (_, fields) = expect(fields, SEQUENCE).ok_or(unreadable("signature algorithm"))?;
    let (_, fields) = expect(fields, SEQUENCE).ok_or(unreadable("issuer"))?;
    let (validity, fields) = expect(fields, SEQUENCE).ok_or(unreadable("validity"))?;
    let (_, fields) = expect(fields, SEQUENCE).ok_or(unreadable("subject"))?;
    let (spki, mut fields) = expect(fields, SEQUENCE).ok_or(unreadable("public key"))?;
    let mut extensions = None;
    while let Some((tag, value, rest)) = tlv(fields) {
        if tag == 0xa3 {
            extensions = Some(value);
        }
        fields = rest;
    }

    // CA:TRUE, then keyCertSign where keyUsage is present.
    let mut is_ca = false;
    let mut key_cert_sign = None;
    if let Some(extensions) = extensions {
        let (mut list, _) = expect(extensions, SEQUENCE).ok_or(unreadable("extensions"))?;
        while !list.is_empty() {
            let (extension, rest) = expect(list, SEQUENCE).ok_or(unreadable("extensions"))?;
            list = rest;
            let (oid, rest) = expect(extension, OID).ok_or(unreadable("extensions"))?;
            let rest = match expect(rest, BOOLEAN) {
                Some((_, rest)) => rest,
                None => rest,
            };
            let (value, _) = expect(rest, OCTET_STRING).ok_or(unreadable("extensions"))?;
            if oid == BASIC_CONSTRAINTS {
                let (constraints, _) =
                    expect(value, SEQUENCE).ok_or(unreadable("basicConstraints"))?;
                is_ca = matches!(expect(constraints, BOOLEAN), Some(([flag], _)) if *flag != 0);
            } else if oid == KEY_USAGE {
                let (bits, _) = expect(value, BIT_STRING).ok_or(unreadable("keyUsage"))?;
                // Bit 5 (keyCertSign) of the first byte after the unused-bits count.
                key_cert_sign = Some(bits.get(1).is_some_and(|b| b & 0x04 != 0));
            }
        }
    }
    if !is_ca {
        return Err(CaDefect::NotACa);
    }
    if key_cert_sign == Some(false) {
        return Err(CaDefect::NoKeyCertSign);
    }

    let (not_before, rest) = time(validity).ok_or(unreadable("validity"))?;
    let (not_after, _) = time(rest).ok_or(unreadable("validity"))?;
    if not_before_rule == NotBefore::Enforced && now < not_before {
        let not_before = not_before.to_datetime().ok_or(unreadable("validity"))?;
        return Err(CaDefect::NotYetValid { not_before });
    }
    if not_after < now {
        let not_after = not_after.to_datetime().ok_or(unreadable("validity"))?;
        return Err(CaDefect::Expired { not_after });
    }

    check_key(spki)?;

    let (algorithm, _) = expect(signature, OID).ok_or(unreadable("signature algorithm"))?;
    if let Some((_, name)) = WEAK_SIGNATURES.iter().find(|(oid, _)| *oid == algorithm) {
        return Err(CaDefect::WeakSignature { algorithm: name });
    }
    Ok(())
}

fn time(input: &[u8]) -> Option<(Stamp, &[u8])> {
    let (tag, value, rest) = tlv(input)?;
    Some((Stamp::from_der(tag, value)?, rest))
}

fn check_key(spki: &[u8]) -> Result<(), CaDefect> {
    let unreadable = || CaDefect::Unreadable {
        field: "public key",
    };
    let (algorithm, rest) = expect(spki, SEQUENCE).ok_or_else(unreadable)?;
    let (key, _) = expect(rest, BIT_STRING).ok_or_else(unreadable)?;
    let (oid, params) = expect(algorithm, OID).ok_or_else(unreadable)?;
    if oid == RSA || oid == RSA_PSS {
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
        let (rsa, _) = key
            .split_first()
            .and_then(|(_, key)| expect(key, SEQUENCE))
            .ok_or_else(unreadable)?;
        let (modulus, _) = expect(rsa, INTEGER).ok_or_else(unreadable)?;
        let significant = modulus
            .iter()
            .position(|&b| b != 0)
            .map_or(&[][..], |i| &modulus[i..]);
        let bits = significant.first().map_or(0, |first| {
            significant.len() * 8 - first.leading_zeros() as usize
        });
        if bits < 2048 {
            return Err(CaDefect::WeakRsaKey { bits });
        }
        return Ok(());
    }
    if oid == EC {
        let (curve, _) = expect(params, OID).ok_or_else(unreadable)?;
        if [P256, P384, P521].contains(&curve) {
            return Ok(());
        }
        return Err(CaDefect::UnsupportedCurve { oid: dotted(curve) });
    }
    if oid == ED25519 || oid == ED448 {
        return Ok(());
    }
    Err(CaDefect::UnsupportedKey { oid: dotted(oid) })
}

/// One DER element: its tag, its value and what follows it. Only single-byte tags and
/// definite lengths of up to four bytes (DER never needs more for a certificate).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((tag, value, rest))
}

/// The value of the element at the start of `input` if it has tag `tag`, and what follows.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match tlv(input)? {
        (t, value, rest) if t == tag => Some((value, rest)),
        _ => None,
    }
}

/// An OID's content bytes in dotted form (`1.3.132.0.33`).
fn dotted(oid: &[u8]) -> String {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for &b in oid {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn stamps_order_as_times_and_read_both_der_forms() {
        let t = datetime!(2026-03-04 05:06:07 UTC);
        assert_eq!(&Stamp::of(t).0, b"20260304050607");
        assert_eq!(Stamp::of(t).to_datetime(), Some(t));
        assert_eq!(
            Stamp::from_der(UTC_TIME, b"260304050607Z"),
            Some(Stamp::of(t))
        );
        assert_eq!(
            &Stamp::from_der(UTC_TIME, b"500101000000Z").unwrap().0[..4],
            b"1950"
        );
        assert_eq!(
            Stamp::from_der(GENERALIZED_TIME, b"20260304050607Z"),
            Some(Stamp::of(t))
        );
        assert_eq!(
            Stamp::from_der(GENERALIZED_TIME, b"20260304050607.5Z"),
            None
        );
        assert_eq!(Stamp::from_der(UTC_TIME, b"26030405060xZ"), None);
        assert!(Stamp::of(t) < Stamp::of(t + time::Duration::SECOND));
        assert!(Stamp::of(datetime!(9999-12-31 23:59:59 UTC)) > Stamp::of(t));
    }

    #[test]
    fn oids_print_dotted_and_truncated_der_is_unreadable() {
        assert_eq!(dotted(P521), "1.3.132.0.35");
        assert_eq!(dotted(RSA), "1.2.840.113549.1.1.1");
        let now = Stamp::of(datetime!(2026-01-01 0:00 UTC));
        for der in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x00],
        ] {
            assert!(
                matches!(check(der, now), Err(CaDefect::Unreadable { .. })),
                "{der:?}"
            );
        }
    }
}
