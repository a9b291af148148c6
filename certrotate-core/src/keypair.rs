//! Whether a `tls.key` is the private key of its `tls.crt`: what `check` reports
//! ([`KeyProblem`]) and the planner repairs (a leaf re-issued from the current CA).
//! Never carries or shows any of the key's bytes.

use serde::Serialize;

use crate::error::Origin;
use crate::pem_blocks;
use crate::wire::{KEY_TLS_CRT, KEY_TLS_KEY};

/// What is wrong with a `tls.key`. Never carries any of the key's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyProblem {
    /// The Secret has a `tls.crt` but no `tls.key`, or an empty one (the API server keeps
    /// a `kubernetes.io/tls` Secret's `tls.key`, so there a lost key is an empty value).
    Missing,
    /// `tls.key` is not a PEM private key (PKCS#8, PKCS#1 or SEC1) that parses.
    Unreadable {
        /// Why, without the key's content.
        reason: String,
    },
    /// `tls.key` is a private key, but not the one of `tls.crt`'s public key.
    Mismatch,
}

impl std::fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => write!(f, "no {KEY_TLS_KEY} beside {KEY_TLS_CRT} (absent or empty)"),
            Self::Unreadable { reason } => write!(f, "{KEY_TLS_KEY} unreadable: {reason}"),
            Self::Mismatch => write!(
                f,
                "{KEY_TLS_KEY} does not match the public key of {KEY_TLS_CRT}"
            ),
        }
    }
}

/// What is wrong with `key` as the private key of the first certificate of `crt`, if
/// anything. An unreadable `tls.crt` is reported elsewhere; here it has no problem to add.
pub(crate) fn key_problem(crt: &[u8], key: Option<&[u8]>) -> Option<KeyProblem> {
    let Some(key) = key.filter(|k| !k.iter().all(u8::is_ascii_whitespace)) else {
        return Some(KeyProblem::Missing);
    };
    let ders = pem_blocks::certificates(crt, &Origin::default()).ok()?;
    let cert = pem_blocks::parse_certificate(ders.first()?).ok()?;
    let unreadable = |reason: &str| KeyProblem::Unreadable {
        reason: reason.to_owned(),
    };
    let Ok(text) = std::str::from_utf8(key) else {
        return Some(unreadable("not PEM text"));
    };
    // Only the label is quoted: a decoding error of the body could echo key material.
    match pem_blocks::blocks(key)
        .next()
        .map(|b| b.label().map(str::to_owned))
    {
        None => return Some(unreadable("no PEM block")),
        Some(None) => return Some(unreadable("unreadable PEM framing")),
        Some(Some(label))
            if !matches!(
                label.as_str(),
                "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY"
            ) =>
        {
            return Some(KeyProblem::Unreadable {
                reason: format!("the PEM block is {label:?}, not a private key"),
            });
        }
        Some(Some(_)) => {}
    }
    // rcgen (aws-lc-rs) reads PKCS#8, PKCS#1 and SEC1.
    match rcgen::KeyPair::from_pem(text) {
        Err(_) => Some(unreadable(
            "the private key does not parse (truncated or corrupt)",
        )),
        Ok(pair) if pair.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() => {
            Some(KeyProblem::Mismatch)
        }
        Ok(_) => None,
    }
}
