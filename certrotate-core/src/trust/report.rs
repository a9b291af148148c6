//! What a trust check says: the sides of a step, the trust stores, the usages verified,
//! the typed reasons a pair fails, and the report of every pair, with the rule that says
//! which failures a step is to blame for ([`PairCheck::breaks`]).

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use crate::fingerprint::Fingerprint;
use crate::plan::{KEY_TLS_CRT, KEY_TRUST, ObjectRef, WebhookRef};

/// Which state of a step a value was taken from. A value the step does not change
/// appears once, as [`Side::Before`] (it is also the value after).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
// Closed on purpose: a step has a before and an after.
pub enum Side {
    /// As it was before the step (and, if the step does not change it, after).
    Before,
    /// As the step writes it.
    After,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Before => "before",
            Self::After => "after",
        })
    }
}

/// A trust store a leaf must chain to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
// Exhaustive on purpose: certrotate-kube and certrotate-cli match every variant, so a
// new one fails to compile there instead of falling into a wildcard arm.
pub enum TrustStore {
    /// A component Secret's `ca.crt`.
    Component {
        /// The Secret.
        secret: ObjectRef,
    },
    /// The `caBundle` of one webhook of a webhook configuration.
    Webhook {
        /// The configuration.
        webhook: WebhookRef,
        /// The 1-based position of the webhook in the configuration.
        index: usize,
    },
}

impl fmt::Display for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Component { secret } => write!(f, "secret {secret} {KEY_TRUST}"),
            Self::Webhook { webhook, index } => write!(f, "{webhook} webhook {index} caBundle"),
        }
    }
}

/// A TLS usage a leaf is verified for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
// Closed on purpose: the two TLS roles a leaf is checked for.
pub enum Usage {
    /// Presented by a server (extended key usage serverAuth).
    ServerAuth,
    /// Presented by a client (extended key usage clientAuth).
    ClientAuth,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ServerAuth => "serverAuth",
            Self::ClientAuth => "clientAuth",
        })
    }
}

/// Why a leaf is not trusted by a store (or not fit to present at all).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TrustFailure {
    /// The component's Secret has no `tls.crt`.
    MissingLeaf,
    /// The `tls.crt` cannot be read as a certificate.
    UnreadableLeaf {
        /// What is wrong, naming the PEM block.
        reason: String,
    },
    /// The store is empty: no `ca.crt`, or an empty `caBundle` (the API server then uses
    /// its own roots, which do not hold a private CA).
    MissingBundle,
    /// The store cannot be read as certificates.
    UnreadableBundle {
        /// What is wrong, naming the PEM block.
        reason: String,
    },
    /// The leaf expired.
    Expired {
        /// End of its validity.
        #[serde(with = "time::serde::rfc3339")]
        not_after: OffsetDateTime,
    },
    /// The leaf is not valid yet.
    NotYetValid {
        /// Start of its validity.
        #[serde(with = "time::serde::rfc3339")]
        not_before: OffsetDateTime,
    },
    /// No certificate of the store issued the leaf.
    UnknownIssuer {
        /// The leaf's issuer.
        issuer: String,
    },
    /// A certificate of the store carries the issuer's name, but its key did not sign the
    /// leaf (a CA rotated under the same name).
    BadSignature {
        /// The leaf's issuer.
        issuer: String,
    },
    /// The CA of the store that issued the leaf is outside its validity.
    IssuerOutsideValidity {
        /// The CA.
        ca: Fingerprint,
        /// Its validity.
        #[serde(with = "time::serde::rfc3339")]
        not_before: OffsetDateTime,
        /// Its validity.
        #[serde(with = "time::serde::rfc3339")]
        not_after: OffsetDateTime,
    },
    /// The leaf is a CA certificate, which TLS peers refuse as an end entity.
    CaAsLeaf,
    /// The leaf's extended key usage does not allow a usage the profile asks for.
    WrongUsage {
        /// The usage.
        usage: Usage,
    },
    /// The leaf does not serve a name the profile states for it.
    NameMismatch {
        /// The name (a DNS name, a wildcard, or an IP address).
        name: String,
    },
    /// rustls-webpki and Go find an issuer, but OpenSSL and BoringSSL (Envoy) would not:
    /// at each link of the chain they take the first certificate of the store (in its
    /// order) whose subject is the issuer's name and whose subject key identifier, if both
    /// carry one, is the one the certificate below names, and refuse the chain if that one
    /// does not do, without trying the others.
    FirstMatchRefused {
        /// The issuer's name they looked up.
        issuer: String,
        /// The certificate of the store they took.
        ca: Fingerprint,
        /// Its 1-based position in the store; `None` if it came with the leaf, in its
        /// `tls.crt`.
        block: Option<usize>,
        /// Why it does not do.
        problem: FirstMatchProblem,
    },
    /// rustls-webpki refused the chain for another reason.
    Rejected {
        /// Its reason.
        reason: String,
    },
}

impl fmt::Display for TrustFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingLeaf => write!(f, "no {KEY_TLS_CRT}"),
            Self::UnreadableLeaf { reason } => write!(f, "unreadable leaf: {reason}"),
            Self::MissingBundle => f.write_str("empty trust store"),
            Self::UnreadableBundle { reason } => write!(f, "unreadable trust store: {reason}"),
            Self::Expired { not_after } => {
                write!(f, "leaf expired at {}", crate::rfc3339(*not_after))
            }
            Self::NotYetValid { not_before } => {
                write!(f, "leaf not valid before {}", crate::rfc3339(*not_before))
            }
            Self::UnknownIssuer { issuer } => {
                write!(
                    f,
                    "unknown issuer {issuer:?}: the store lacks the leaf's CA"
                )
            }
            Self::BadSignature { issuer } => write!(
                f,
                "bad signature: no CA named {issuer:?} in the store signed the leaf"
            ),
            Self::IssuerOutsideValidity {
                ca,
                not_before,
                not_after,
            } => write!(
                f,
                "issuing CA {} is valid only from {} to {}",
                ca.short(),
                crate::rfc3339(*not_before),
                crate::rfc3339(*not_after)
            ),
            Self::CaAsLeaf => f.write_str("the leaf is a CA certificate"),
            Self::WrongUsage { usage } => {
                write!(f, "the leaf's extended key usage does not allow {usage}")
            }
            Self::NameMismatch { name } => write!(f, "the leaf does not serve {name}"),
            Self::FirstMatchRefused {
                issuer,
                ca,
                block,
                problem,
            } => {
                write!(
                    f,
                    "OpenSSL and BoringSSL (Envoy) take the first certificate named {issuer:?}"
                )?;
                match block {
                    Some(block) => write!(f, " in the store, block {block}")?,
                    None => f.write_str(" in the leaf's chain")?,
                }
                write!(f, " (CA {}), {problem}, and try no other", ca.short())
            }
            Self::Rejected { reason } => write!(f, "rejected by rustls-webpki: {reason}"),
        }
    }
}

impl TrustFailure {
    /// Whether the failure is a property of the leaf alone, whatever the store.
    fn of_leaf(&self) -> bool {
        match self {
            Self::MissingLeaf
            | Self::UnreadableLeaf { .. }
            | Self::Expired { .. }
            | Self::NotYetValid { .. }
            | Self::CaAsLeaf
            | Self::WrongUsage { .. }
            | Self::NameMismatch { .. } => true,
            Self::MissingBundle
            | Self::UnreadableBundle { .. }
            | Self::UnknownIssuer { .. }
            | Self::BadSignature { .. }
            | Self::IssuerOutsideValidity { .. }
            | Self::FirstMatchRefused { .. }
            | Self::Rejected { .. } => false,
        }
    }

    /// Whether the failure is a property of the store alone, whatever the leaf.
    fn of_store(&self) -> bool {
        matches!(self, Self::MissingBundle | Self::UnreadableBundle { .. })
    }
}

/// Why the issuer OpenSSL and BoringSSL pick does not do (see
/// [`TrustFailure::FirstMatchRefused`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FirstMatchProblem {
    /// Its key did not sign the certificate below it: a decoy with the issuer's name and
    /// key identifier but another key, listed before the real issuer.
    BadSignature,
    /// It is outside its validity (BoringSSL does not skip to a later match; OpenSSL
    /// would, if one is valid).
    OutsideValidity {
        /// Its validity.
        #[serde(with = "time::serde::rfc3339")]
        not_before: OffsetDateTime,
        /// Its validity.
        #[serde(with = "time::serde::rfc3339")]
        not_after: OffsetDateTime,
    },
    /// It is not a CA: no basicConstraints CA:TRUE.
    NotCa,
    /// It is not self-signed and its issuer is nowhere to be found: these peers end a
    /// chain only on a self-signed certificate of the store.
    NoRoot,
}

impl fmt::Display for FirstMatchProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSignature => f.write_str(
                "whose key did not sign the certificate below it (a decoy: the same name and \
                 key identifier, another key)",
            ),
            Self::OutsideValidity {
                not_before,
                not_after,
            } => write!(
                f,
                "which is valid only from {} to {}",
                crate::rfc3339(*not_before),
                crate::rfc3339(*not_after)
            ),
            Self::NotCa => f.write_str("which is not a CA"),
            Self::NoRoot => f.write_str("which is not self-signed, and whose issuer is missing"),
        }
    }
}

/// The outcome of one combination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
// Closed on purpose: a pair is trusted or fails.
pub enum Outcome {
    /// The leaf chains to this CA of the store, for every usage, and serves every name.
    Trusted {
        /// The CA the chain ends on.
        ca: Fingerprint,
    },
    /// It does not.
    Failed {
        /// Why.
        reason: TrustFailure,
    },
}

impl Outcome {
    /// Whether the outcome is [`Outcome::Trusted`].
    pub fn is_trusted(&self) -> bool {
        matches!(self, Self::Trusted { .. })
    }
}

/// One combination: a component's leaf, as of one side of the step, against one trust
/// store, as of one side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PairCheck {
    /// The component Secret whose `tls.crt` is presented.
    pub leaf: ObjectRef,
    /// Which side of the step the leaf is from.
    pub leaf_side: Side,
    /// The trust store.
    pub trusted_by: TrustStore,
    /// Which side of the step the store is from.
    pub store_side: Side,
    /// The outcome.
    pub outcome: Outcome,
    /// Whether this combination fails because of the step, so that the step breaks the
    /// invariant. A failure the step does not touch (the leaf and the store as they were)
    /// is not the step's, nor is any failure of a leaf and a store that did not trust each
    /// other before the step, as both were (a leaf of an expired, weak or otherwise
    /// unusable CA, a `caBundle` re-created empty, a `ca.crt` that lost the CA of the
    /// leaves): nothing can lose trust it did not have, the step repairs such a pair or
    /// leaves it as it was, and refusing would leave no way to repair it. Everything else
    /// is: a new leaf a peer trusting the old one does not trust, a new bundle that does
    /// not trust a leaf its old bundle trusted.
    pub breaks: bool,
}

impl PairCheck {
    /// Whether this combination fails because of what the step writes (see
    /// [`PairCheck::breaks`]).
    pub fn breaks_trust(&self) -> bool {
        self.breaks
    }

    /// Whether the failure belongs to what the step writes: a property of the leaf alone
    /// counts against an `after` leaf, of the store alone against an `after` store, and a
    /// chain failure against either being `after`.
    pub(super) fn touches_a_write(&self) -> bool {
        let Outcome::Failed { reason } = &self.outcome else {
            return false;
        };
        if reason.of_leaf() {
            self.leaf_side == Side::After
        } else if reason.of_store() {
            self.store_side == Side::After
        } else {
            self.leaf_side == Side::After || self.store_side == Side::After
        }
    }
}

impl fmt::Display for PairCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "leaf of secret {} ({}) by {} ({}): ",
            self.leaf, self.leaf_side, self.trusted_by, self.store_side
        )?;
        match &self.outcome {
            Outcome::Trusted { ca } => write!(f, "trusted (CA {})", ca.short()),
            Outcome::Failed { reason } => write!(f, "FAIL: {reason}"),
        }
    }
}

/// Every combination of one step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TrustReport {
    /// The combinations, by leaf, then store, then sides.
    pub checks: Vec<PairCheck>,
}

impl TrustReport {
    /// The combinations that fail.
    pub fn failures(&self) -> impl Iterator<Item = &PairCheck> {
        self.checks.iter().filter(|c| !c.outcome.is_trusted())
    }

    /// The combinations that fail because of the step (see [`PairCheck::breaks_trust`]).
    pub fn broken(&self) -> impl Iterator<Item = &PairCheck> {
        self.checks.iter().filter(|c| c.breaks_trust())
    }

    /// Whether the step keeps the invariant: no combination fails because of it.
    pub fn keeps_trust(&self) -> bool {
        self.broken().next().is_none()
    }
}
