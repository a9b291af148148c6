//! The trust matrix of a control plane: does every peer trust every component's leaf?

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::error::{Error, Origin};
use crate::inspect::{self, ChainVerdict};
use crate::pem_blocks;
use crate::plan::{KEY_TLS_CRT, KEY_TRUST, Observed, ProfileObjects};
use crate::profile::Profile;

/// The result of [`check`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// One entry per (leaf, trust store) pair.
    pub pairs: Vec<TrustPair>,
    /// Every certificate of every trust store and leaf, with its expiry.
    pub certificates: Vec<Expiring>,
    /// Certificates that expire within the warning window (or already did).
    pub expiring: Vec<Expiring>,
    /// Problems that stop a pair from being checked at all (a missing Secret or key, an
    /// unreadable PEM block).
    pub problems: Vec<String>,
}

impl CheckReport {
    /// Pairs whose leaf is not trusted.
    pub fn untrusted(&self) -> impl Iterator<Item = &TrustPair> {
        self.pairs.iter().filter(|p| !p.verdict.is_trusted())
    }

    /// Whether every pair is trusted and nothing is missing.
    pub fn all_trusted(&self) -> bool {
        self.problems.is_empty() && self.untrusted().next().is_none()
    }
}

/// Whether one component's leaf is trusted by one trust store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TrustPair {
    /// The Secret whose `tls.crt` is checked (`ns/name`).
    pub leaf: String,
    /// The trust store: a Secret's `ca.crt` (`ns/name`) or a webhook's `caBundle`.
    pub trusted_by: String,
    /// The verdict.
    pub verdict: ChainVerdict,
}

/// Where a certificate is and when it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Expiring {
    /// Where (`secret ns/name key tls.crt block 1`).
    pub location: String,
    /// Its subject.
    pub subject: String,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Whole days left at `now`.
    pub days_left: i64,
}

/// Checks that every component's leaf is trusted by every component's `ca.crt` and by every
/// webhook `caBundle` of the profile, and lists certificates that expire within
/// `warn_within` of `now`.
pub fn check(
    profile: &Profile,
    observed: &Observed,
    now: OffsetDateTime,
    warn_within: Duration,
) -> Result<CheckReport, Error> {
    let objects = ProfileObjects::of(profile);
    let mut report = CheckReport {
        pairs: Vec::new(),
        certificates: Vec::new(),
        expiring: Vec::new(),
        problems: Vec::new(),
    };
    let horizon = time::Duration::try_from(warn_within)
        .ok()
        .and_then(|d| now.checked_add(d))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);

    let mut stores: Vec<(String, Origin, &[u8])> = Vec::new();
    let mut leaves: Vec<(String, Origin, &[u8])> = Vec::new();
    for secret in &objects.components {
        let Some(s) = observed.secrets.get(secret) else {
            report.problems.push(format!("secret {secret}: missing"));
            continue;
        };
        for (key, list) in [(KEY_TRUST, &mut stores), (KEY_TLS_CRT, &mut leaves)] {
            match s.data.get(key) {
                Some(v) => list.push((
                    secret.to_string(),
                    Origin::new(format!("secret {secret} key {key}")),
                    v,
                )),
                None => report
                    .problems
                    .push(format!("secret {secret}: no key {key}")),
            }
        }
    }
    for webhook in &objects.webhooks {
        if let Some(w) = observed.webhooks.get(webhook) {
            for (i, b) in w.ca_bundles.iter().enumerate() {
                let name = format!("{webhook} webhook {}", i + 1);
                stores.push((name.clone(), Origin::new(name), b));
            }
        }
    }

    for (_, origin, pem) in stores.iter().chain(&leaves) {
        match inspect::inspect_pem(pem, origin, now) {
            Ok(certs) => {
                for c in certs {
                    let entry = Expiring {
                        location: format!("{origin} block {}", c.block),
                        subject: c.subject,
                        not_after: c.not_after,
                        days_left: c.days_left,
                    };
                    if entry.not_after < horizon {
                        report.expiring.push(entry.clone());
                    }
                    report.certificates.push(entry);
                }
            }
            Err(e) => report.problems.push(e.to_string()),
        }
    }

    let parsed_stores: Vec<(String, Vec<Vec<u8>>)> = stores
        .iter()
        .filter_map(|(name, origin, pem)| {
            pem_blocks::certificates(pem, origin)
                .ok()
                .map(|ders| (name.clone(), ders))
        })
        .collect();
    for (leaf_name, origin, pem) in &leaves {
        let Ok(ders) = pem_blocks::certificates(pem, origin) else {
            continue;
        };
        let Ok(leaf) = pem_blocks::parse_certificate(&ders[0]) else {
            continue;
        };
        for (store_name, cas) in &parsed_stores {
            let parsed: Vec<_> = cas
                .iter()
                .filter_map(|d| {
                    pem_blocks::parse_certificate(d)
                        .ok()
                        .map(|c| (d.as_slice(), c))
                })
                .collect();
            report.pairs.push(TrustPair {
                leaf: leaf_name.clone(),
                trusted_by: store_name.clone(),
                verdict: inspect::verify_parsed(&leaf, &parsed, now),
            });
        }
    }
    Ok(report)
}
