//! The trust invariant of a rotation step, verified as rustls verifies a handshake.
//!
//! A step of a rotation changes some Secrets and webhook configurations. Components reload
//! what they mount in any order and at any time within the convergence interval, and a
//! crash may stop the step after any write, so for a while every component may present its
//! leaf as it was before the step or as it is after it, and every peer may trust with its
//! bundle as it was before or after. [`check_step`] checks every one of those combinations:
//! each leaf a component may present (its `tls.crt` before or after) must chain to each
//! trust store (every component's `ca.crt` and every webhook `caBundle`, before or after),
//! and serve the names the profile states for it.
//!
//! Chains, validity, extended key usage and names are verified with rustls-webpki, the
//! parser and path builder rustls uses, with aws-lc-rs's signature algorithms; the CA a
//! chain ends on must also be within its own validity (OpenSSL, BoringSSL and Go refuse an
//! expired root, though rustls does not look).
//!
//! Pure: no I/O, and `now` is a parameter.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use serde::Serialize;
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};

use crate::error::Origin;
use crate::fingerprint::Fingerprint;
use crate::generate::ExtendedKeyUsage;
use crate::inspect;
use crate::pem_blocks;
use crate::plan::{KEY_TLS_CRT, KEY_TRUST, ObjectRef, Observed, WebhookRef};
use crate::profile::Profile;

/// Which state of a step a value was taken from. A value the step does not change
/// appears once, as [`Side::Before`] (it is also the value after).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
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
            | Self::Rejected { .. } => false,
        }
    }

    /// Whether the failure is a property of the store alone, whatever the leaf.
    fn of_store(&self) -> bool {
        matches!(self, Self::MissingBundle | Self::UnreadableBundle { .. })
    }
}

/// The outcome of one combination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
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
    /// is not the step's, nor is any failure of a leaf that no store trusted before the
    /// step (a leaf of an expired, weak or otherwise unusable CA): nothing can lose trust
    /// it did not have, and refusing would leave no way to repair it. Everything else is:
    /// a new leaf a peer does not trust, a new bundle that does not trust a leaf peers
    /// present (even if the bundle it replaces did not either: the step chose it).
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
    fn touches_a_write(&self) -> bool {
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

/// Checks the trust invariant of a step from `before` to `after`, at `now`: every leaf any
/// component of `profile` may present (its `tls.crt` before or after the step) against
/// every trust store (each component's `ca.crt` and each webhook `caBundle`, before or
/// after), and the names the profile states for the leaf. Components and webhooks absent
/// from a state present and trust nothing there.
pub fn check_step(
    profile: &Profile,
    before: &Observed,
    after: &Observed,
    now: OffsetDateTime,
) -> TrustReport {
    let objects = crate::plan::ProfileObjects::of(profile);
    let usages = usages(profile);
    let time = unix_time(now);

    // The leaves, with the names each must serve.
    let mut leaves: Vec<LeafEntry> = Vec::new();
    for (component, secret) in profile.components.iter().zip(&objects.components) {
        let names: Vec<Name> = profile
            .leaf_params(component)
            .map(|p| {
                p.dns_names
                    .iter()
                    .map(|d| Name::dns(d))
                    .chain(p.ip_addresses.iter().copied().map(Name::Ip))
                    .collect()
            })
            // Profiles are validated when loaded, so rendering cannot fail here; a profile
            // built by hand that fails it is checked for chains only.
            .unwrap_or_default();
        let (b, a) = (
            secret_value(before, secret, KEY_TLS_CRT),
            secret_value(after, secret, KEY_TLS_CRT),
        );
        for (side, value) in sides(b, a) {
            let leaf = match value {
                Some(pem) => Leaf::parse(pem, secret, now),
                None => Err(TrustFailure::MissingLeaf),
            };
            leaves.push(LeafEntry {
                secret: secret.clone(),
                side,
                leaf,
                names: names.clone(),
            });
        }
    }

    // The stores.
    let mut stores: Vec<StoreEntry> = Vec::new();
    for secret in &objects.components {
        let (b, a) = (
            secret_value(before, secret, KEY_TRUST),
            secret_value(after, secret, KEY_TRUST),
        );
        let store = TrustStore::Component {
            secret: secret.clone(),
        };
        for (side, value) in sides(b, a) {
            let origin = Origin::new(format!("{store}"));
            let bundle = Bundle::parse(value.unwrap_or_default(), &origin, now);
            stores.push(StoreEntry {
                store: store.clone(),
                side,
                bundle,
            });
        }
    }
    for webhook in &objects.webhooks {
        let count = |o: &Observed| o.webhooks.get(webhook).map_or(0, |w| w.ca_bundles.len());
        for i in 0..count(before).max(count(after)) {
            let (b, a) = (
                webhook_value(before, webhook, i),
                webhook_value(after, webhook, i),
            );
            let store = TrustStore::Webhook {
                webhook: webhook.clone(),
                index: i + 1,
            };
            for (side, value) in sides(b, a) {
                let origin = Origin::new(format!("{store}"));
                let bundle = Bundle::parse(value.unwrap_or_default(), &origin, now);
                stores.push(StoreEntry {
                    store: store.clone(),
                    side,
                    bundle,
                });
            }
        }
    }

    let mut report = TrustReport::default();
    for l in &leaves {
        for s in &stores {
            let outcome = match (&l.leaf, &s.bundle) {
                (Err(reason), _) | (_, Err(reason)) => Outcome::Failed {
                    reason: reason.clone(),
                },
                (Ok(leaf), Ok(bundle)) => leaf.verify(bundle, &usages, &l.names, time),
            };
            report.checks.push(PairCheck {
                leaf: l.secret.clone(),
                leaf_side: l.side,
                trusted_by: s.store.clone(),
                store_side: s.side,
                outcome,
                breaks: false,
            });
        }
    }
    // Leaves (as they were before the step) that no store trusted before it.
    let trusted_before: Vec<&ObjectRef> = report
        .checks
        .iter()
        .filter(|c| {
            c.leaf_side == Side::Before && c.store_side == Side::Before && c.outcome.is_trusted()
        })
        .map(|c| &c.leaf)
        .collect();
    let dead_before: Vec<ObjectRef> = leaves
        .iter()
        .filter(|l| l.side == Side::Before && !trusted_before.contains(&&l.secret))
        .map(|l| l.secret.clone())
        .collect();
    for c in &mut report.checks {
        c.breaks =
            c.touches_a_write() && !(c.leaf_side == Side::Before && dead_before.contains(&c.leaf));
    }
    report
}

/// Checks one state on its own: every leaf against every store, as they are.
pub fn check_state(profile: &Profile, observed: &Observed, now: OffsetDateTime) -> TrustReport {
    check_step(profile, observed, observed, now)
}

/// A leaf of one side of a step, with the names it must serve.
struct LeafEntry {
    secret: ObjectRef,
    side: Side,
    leaf: Result<Leaf, TrustFailure>,
    names: Vec<Name>,
}

/// A trust store of one side of a step.
struct StoreEntry {
    store: TrustStore,
    side: Side,
    bundle: Result<Bundle, TrustFailure>,
}

/// A Secret's value under `key`: `None` if the Secret is absent, `Some(None)` if it has
/// no such key.
fn secret_value<'o>(o: &'o Observed, secret: &ObjectRef, key: &str) -> Option<Option<&'o [u8]>> {
    o.secrets
        .get(secret)
        .map(|s| s.data.get(key).map(Vec::as_slice))
}

/// The `caBundle` of the `i`-th webhook (0-based) of a configuration, as [`secret_value`]
/// (a webhook the configuration does not have is absent; an empty `caBundle` is a value).
fn webhook_value<'o>(o: &'o Observed, webhook: &WebhookRef, i: usize) -> Option<Option<&'o [u8]>> {
    o.webhooks
        .get(webhook)
        .and_then(|w| w.ca_bundles.get(i))
        .map(|b| Some(b.as_slice()))
}

/// The sides on which an object holds a value: `None` outside means the object is absent
/// (it presents or trusts nothing); `Some(None)` means it exists without the key.
fn sides<'a>(
    before: Option<Option<&'a [u8]>>,
    after: Option<Option<&'a [u8]>>,
) -> Vec<(Side, Option<&'a [u8]>)> {
    let mut out = Vec::with_capacity(2);
    if let Some(b) = before {
        out.push((Side::Before, b));
    }
    if let Some(a) = after
        && before != Some(a)
    {
        out.push((Side::After, a));
    }
    out
}

/// The usages the profile issues leaves for (mTLS: both, by default).
fn usages(profile: &Profile) -> Vec<Usage> {
    let mut out: Vec<Usage> = profile
        .leaf
        .extended_key_usages
        .iter()
        .map(|u| match u {
            ExtendedKeyUsage::ServerAuth => Usage::ServerAuth,
            ExtendedKeyUsage::ClientAuth => Usage::ClientAuth,
        })
        .collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        out.push(Usage::ServerAuth);
    }
    out
}

fn unix_time(now: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(now.unix_timestamp()).unwrap_or(0),
    ))
}

fn from_unix(t: UnixTime) -> OffsetDateTime {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A name a leaf must serve.
#[derive(Clone, Debug)]
enum Name {
    /// A DNS name, verified as rustls verifies a server name.
    Dns(String),
    /// A wildcard (`*.example`): the leaf must carry it (or the same wildcard in another
    /// case) as a SAN. A wildcard names no one host to verify, and rustls-webpki, like
    /// NSS, refuses wildcards over a single label (`*.namespace`), which Envoy and Go
    /// accept.
    Wildcard(String),
    /// An IP address SAN.
    Ip(IpAddr),
}

impl Name {
    fn dns(name: &str) -> Self {
        if name.starts_with("*.") {
            Self::Wildcard(name.to_owned())
        } else {
            Self::Dns(name.to_owned())
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(n) | Self::Wildcard(n) => f.write_str(n),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A parsed `tls.crt`: the leaf, the intermediates after it, and what the errors need.
struct Leaf {
    der: CertificateDer<'static>,
    intermediates: Vec<CertificateDer<'static>>,
    issuer: String,
    dns_names: Vec<String>,
}

impl Leaf {
    fn parse(pem: &[u8], secret: &ObjectRef, now: OffsetDateTime) -> Result<Self, TrustFailure> {
        let origin = Origin::new(format!("secret {secret} key {KEY_TLS_CRT}"));
        let unreadable = |reason: String| TrustFailure::UnreadableLeaf { reason };
        let mut ders = pem_blocks::certificates(pem, &origin)
            .map_err(|e| unreadable(e.to_string()))?
            .into_iter();
        // `certificates` returns at least one block or an error.
        let first = ders
            .next()
            .ok_or_else(|| unreadable("no certificate".into()))?;
        let summary = {
            let cert = inspect::parse(&first, &origin, 1).map_err(|e| unreadable(e.to_string()))?;
            inspect::summarise(&cert, &first, 1, now)
        };
        let der = CertificateDer::from(first);
        EndEntityCert::try_from(&der)
            .map_err(|e| unreadable(format!("{origin} block 1: rustls-webpki: {e}")))?;
        Ok(Self {
            der,
            intermediates: ders.map(CertificateDer::from).collect(),
            issuer: summary.issuer,
            dns_names: summary.dns_names,
        })
    }

    /// Verifies the chain to `bundle` for every usage, then the names.
    fn verify(&self, bundle: &Bundle, usages: &[Usage], names: &[Name], time: UnixTime) -> Outcome {
        let failed = |reason| Outcome::Failed { reason };
        // Parsed when the leaf was read.
        let Ok(cert) = EndEntityCert::try_from(&self.der) else {
            return failed(TrustFailure::UnreadableLeaf {
                reason: "rustls-webpki cannot parse it".into(),
            });
        };
        let mut ca = None;
        for usage in usages {
            match bundle.verify(&cert, &self.intermediates, time, *usage) {
                Ok(fingerprint) => ca = Some(fingerprint),
                Err(e) => return failed(self.failure(e, bundle, &cert, time, *usage)),
            }
        }
        for name in names {
            let serves = match name {
                Name::Dns(n) => ServerName::try_from(n.as_str())
                    .is_ok_and(|sn| cert.verify_is_valid_for_subject_name(&sn).is_ok()),
                Name::Ip(ip) => cert
                    .verify_is_valid_for_subject_name(&ServerName::IpAddress((*ip).into()))
                    .is_ok(),
                Name::Wildcard(w) => self.dns_names.iter().any(|d| d.eq_ignore_ascii_case(w)),
            };
            if !serves {
                return failed(TrustFailure::NameMismatch {
                    name: name.to_string(),
                });
            }
        }
        match ca {
            Some(ca) => Outcome::Trusted { ca },
            // `usages` is never empty.
            None => failed(TrustFailure::Rejected {
                reason: "no usage to verify".into(),
            }),
        }
    }

    /// Turns a rustls-webpki error into a typed reason.
    fn failure(
        &self,
        e: webpki::Error,
        bundle: &Bundle,
        cert: &EndEntityCert<'_>,
        time: UnixTime,
        usage: Usage,
    ) -> TrustFailure {
        match e {
            webpki::Error::CertExpired { not_after, .. } => TrustFailure::Expired {
                not_after: from_unix(not_after),
            },
            webpki::Error::CertNotValidYet { not_before, .. } => TrustFailure::NotYetValid {
                not_before: from_unix(not_before),
            },
            webpki::Error::CaUsedAsEndEntity => TrustFailure::CaAsLeaf,
            #[allow(deprecated)] // still returned by older paths
            webpki::Error::RequiredEkuNotFound | webpki::Error::RequiredEkuNotFoundContext(_) => {
                TrustFailure::WrongUsage { usage }
            }
            webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
                // An issuer outside its validity is left out of the anchors; say so when
                // it is the one that signed.
                if let Some(reason) =
                    bundle.outside_validity(cert, &self.intermediates, time, usage)
                {
                    return reason;
                }
                if bundle.names_issuer(&self.der) {
                    TrustFailure::BadSignature {
                        issuer: self.issuer.clone(),
                    }
                } else {
                    TrustFailure::UnknownIssuer {
                        issuer: self.issuer.clone(),
                    }
                }
            }
            other => TrustFailure::Rejected {
                reason: other.to_string(),
            },
        }
    }
}

/// A parsed trust store: its certificates within their validity at `now` (the anchors)
/// and the others.
struct Bundle {
    valid: Vec<Anchor>,
    outside: Vec<Anchor>,
}

struct Anchor {
    der: CertificateDer<'static>,
    subject: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Bundle {
    fn parse(pem: &[u8], origin: &Origin, now: OffsetDateTime) -> Result<Self, TrustFailure> {
        if pem.iter().all(u8::is_ascii_whitespace) {
            return Err(TrustFailure::MissingBundle);
        }
        let unreadable = |reason: String| TrustFailure::UnreadableBundle { reason };
        let ders = pem_blocks::certificates(pem, origin).map_err(|e| unreadable(e.to_string()))?;
        let mut bundle = Self {
            valid: Vec::new(),
            outside: Vec::new(),
        };
        for (i, der) in ders.into_iter().enumerate() {
            let (subject, not_before, not_after) = {
                let cert = pem_blocks::parse_certificate_shallow(&der)
                    .map_err(|r| unreadable(format!("{origin} block {}: {r}", i + 1)))?;
                let v = cert.validity();
                (
                    cert.subject().as_raw().to_vec(),
                    v.not_before.to_datetime(),
                    v.not_after.to_datetime(),
                )
            };
            let anchor = Anchor {
                der: CertificateDer::from(der),
                subject,
                not_before,
                not_after,
            };
            webpki::anchor_from_trusted_cert(&anchor.der).map_err(|e| {
                unreadable(format!(
                    "{origin} block {}: not usable as a trust anchor: {e}",
                    i + 1
                ))
            })?;
            if not_before <= now && now <= not_after {
                bundle.valid.push(anchor);
            } else {
                bundle.outside.push(anchor);
            }
        }
        Ok(bundle)
    }

    /// Builds a path from `cert` to an anchor among `anchors`; returns the anchor's
    /// fingerprint.
    fn verify_with(
        anchors: &[Anchor],
        cert: &EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        time: UnixTime,
        usage: Usage,
    ) -> Result<Fingerprint, webpki::Error> {
        // Every anchor was accepted when the bundle was parsed.
        let trust: Vec<TrustAnchor<'_>> = anchors
            .iter()
            .filter_map(|a| webpki::anchor_from_trusted_cert(&a.der).ok())
            .collect();
        let usage = match usage {
            Usage::ServerAuth => KeyUsage::server_auth(),
            Usage::ClientAuth => KeyUsage::client_auth(),
        };
        let path = cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &trust,
            intermediates,
            time,
            usage,
            None,
            None,
        )?;
        let anchor = path.anchor();
        let used = trust
            .iter()
            .position(|t| {
                t.subject == anchor.subject
                    && t.subject_public_key_info == anchor.subject_public_key_info
            })
            .and_then(|i| anchors.get(i));
        Ok(used.map_or_else(
            || Fingerprint::of(anchor.subject_public_key_info.as_ref()),
            |a| Fingerprint::of(a.der.as_ref()),
        ))
    }

    fn verify(
        &self,
        cert: &EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        time: UnixTime,
        usage: Usage,
    ) -> Result<Fingerprint, webpki::Error> {
        Self::verify_with(&self.valid, cert, intermediates, time, usage)
    }

    /// If a certificate of the store outside its validity would have issued the leaf, the
    /// failure that says so.
    fn outside_validity(
        &self,
        cert: &EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        time: UnixTime,
        usage: Usage,
    ) -> Option<TrustFailure> {
        self.outside.iter().find_map(|a| {
            Self::verify_with(std::slice::from_ref(a), cert, intermediates, time, usage)
                .ok()
                .map(|ca| TrustFailure::IssuerOutsideValidity {
                    ca,
                    not_before: a.not_before,
                    not_after: a.not_after,
                })
        })
    }

    /// Whether a certificate of the store has the leaf's issuer as subject.
    fn names_issuer(&self, leaf: &CertificateDer<'_>) -> bool {
        let Ok(parsed) = pem_blocks::parse_certificate_shallow(leaf) else {
            return false;
        };
        let issuer = parsed.issuer().as_raw();
        self.valid.iter().any(|a| a.subject == issuer)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use time::macros::datetime;

    use super::*;
    use crate::plan::{KEY_TLS_KEY, ObservedSecret, ObservedWebhook, ProfileObjects};
    use crate::{Ca, CaParams, SeededEntropy};

    const NOW: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);

    fn profile() -> Profile {
        Profile::envoy_gateway("ns")
    }

    fn ca(seed: u64) -> Ca {
        Ca::generate(
            &CaParams::new("envoy-gateway"),
            NOW,
            &mut SeededEntropy::new(seed),
        )
        .unwrap()
    }

    /// Every component with a leaf from `issuer` and `bundle` as ca.crt; the webhook with
    /// `bundle` as caBundle.
    fn state(issuer: &Ca, bundle: &[u8]) -> Observed {
        let p = profile();
        let objects = ProfileObjects::of(&p);
        let mut entropy = SeededEntropy::new(9);
        let mut o = Observed::default();
        for (c, secret) in p.components.iter().zip(&objects.components) {
            let leaf = issuer
                .issue_leaf(&p.leaf_params(c).unwrap(), NOW, &mut entropy)
                .unwrap();
            let data = BTreeMap::from([
                (KEY_TRUST.to_owned(), bundle.to_vec()),
                (KEY_TLS_CRT.to_owned(), leaf.cert_pem.into_bytes()),
                (
                    KEY_TLS_KEY.to_owned(),
                    leaf.key_pem.expose_secret().as_bytes().to_vec(),
                ),
            ]);
            o.secrets.insert(
                secret.clone(),
                ObservedSecret::new("kubernetes.io/tls", data, "1"),
            );
        }
        o.webhooks.insert(
            objects.webhooks[0].clone(),
            ObservedWebhook::new(vec![bundle.to_vec()], "1"),
        );
        o
    }

    fn both(a: &Ca, b: &Ca) -> Vec<u8> {
        format!("{}{}", a.cert_pem(), b.cert_pem()).into_bytes()
    }

    #[test]
    fn a_state_trusts_itself() {
        let old = ca(1);
        let s = state(&old, old.cert_pem().as_bytes());
        let report = check_state(&profile(), &s, NOW);
        // 3 leaves × (3 ca.crt + 1 caBundle), each unchanged: once, as before.
        assert_eq!(report.checks.len(), 12);
        assert!(report.failures().next().is_none(), "{report:#?}");
        assert!(report.keeps_trust());
    }

    #[test]
    fn the_staged_steps_keep_trust_and_single_step_does_not() {
        let (old, new) = (ca(1), ca(2));
        let installed = state(&old, old.cert_pem().as_bytes());
        let mut trust = installed.clone();
        let bundled = state(&old, &both(&new, &old));
        for (secret, s) in &mut trust.secrets {
            s.data.insert(
                KEY_TRUST.into(),
                bundled.secrets[secret].data[KEY_TRUST].clone(),
            );
        }
        trust.webhooks = bundled.webhooks.clone();
        let trust_step = check_step(&profile(), &installed, &trust, NOW);
        assert!(trust_step.keeps_trust(), "{trust_step:#?}");
        // Leaves unchanged, stores changed: 3 × 4 × 2 combinations.
        assert_eq!(trust_step.checks.len(), 24);

        let leaves = state(&new, &both(&new, &old));
        let leaves_step = check_step(&profile(), &trust, &leaves, NOW);
        assert!(leaves_step.keeps_trust(), "{leaves_step:#?}");

        // Single-step: bundle and leaf in one write; an old leaf meets a new-only store.
        let single = state(&new, new.cert_pem().as_bytes());
        let report = check_step(&profile(), &installed, &single, NOW);
        assert!(!report.keeps_trust());
        let broken: Vec<_> = report.broken().collect();
        assert!(
            broken.iter().all(|c| c.leaf_side != c.store_side),
            "{broken:#?}"
        );
        // The CA kept its name: the store names the issuer, but another key signed.
        assert!(broken.iter().all(|c| matches!(
            &c.outcome,
            Outcome::Failed { reason: TrustFailure::BadSignature { issuer } } if issuer.contains("envoy-gateway")
        )), "{broken:#?}");
        let line = broken[0].to_string();
        assert!(line.contains("leaf of secret ns/"), "{line}");
        assert!(line.contains("FAIL: bad signature"), "{line}");
    }

    #[test]
    fn a_store_without_the_issuer_is_an_unknown_issuer() {
        let old = ca(1);
        let other = Ca::generate(
            &CaParams::new("someone-else"),
            NOW,
            &mut SeededEntropy::new(3),
        )
        .unwrap();
        let before = state(&old, old.cert_pem().as_bytes());
        let mut after = before.clone();
        let envoy = ObjectRef::new("ns", "envoy");
        after
            .secrets
            .get_mut(&envoy)
            .unwrap()
            .data
            .insert(KEY_TRUST.into(), other.cert_pem().as_bytes().to_vec());
        let report = check_step(&profile(), &before, &after, NOW);
        let broken: Vec<_> = report.broken().collect();
        assert_eq!(broken.len(), 3, "three leaves against envoy's new ca.crt");
        for c in broken {
            assert_eq!(
                c.trusted_by,
                TrustStore::Component {
                    secret: envoy.clone()
                }
            );
            assert_eq!(c.store_side, Side::After);
            assert!(matches!(
                &c.outcome,
                Outcome::Failed {
                    reason: TrustFailure::UnknownIssuer { .. }
                }
            ));
        }
        // The same failure, already there before the step, is not the step's.
        let again = check_step(&profile(), &after, &after, NOW);
        assert_eq!(again.failures().count(), 3);
        assert!(again.keeps_trust());
    }

    #[test]
    fn names_usages_and_validity_are_verified() {
        let old = ca(1);
        let before = state(&old, old.cert_pem().as_bytes());
        let gateway = ObjectRef::new("ns", "envoy-gateway");
        let mut entropy = SeededEntropy::new(4);

        // A leaf for the wrong names.
        let wrong = old
            .issue_leaf(
                &crate::LeafParams::new("envoy-gateway", vec!["elsewhere.example".into()]),
                NOW,
                &mut entropy,
            )
            .unwrap();
        let mut after = before.clone();
        after
            .secrets
            .get_mut(&gateway)
            .unwrap()
            .data
            .insert(KEY_TLS_CRT.into(), wrong.cert_pem.into_bytes());
        let report = check_step(&profile(), &before, &after, NOW);
        let broken: Vec<_> = report.broken().collect();
        assert_eq!(broken.len(), 4, "{broken:#?}");
        assert!(broken.iter().all(|c| c.outcome
            == Outcome::Failed {
                reason: TrustFailure::NameMismatch {
                    name: "envoy-gateway".into()
                }
            }));

        // A leaf that allows only clientAuth, where the profile asks for serverAuth too.
        let client_only = old
            .issue_leaf(
                &p_params(&profile(), 0)
                    .with_extended_key_usages(vec![crate::ExtendedKeyUsage::ClientAuth]),
                NOW,
                &mut entropy,
            )
            .unwrap();
        after
            .secrets
            .get_mut(&gateway)
            .unwrap()
            .data
            .insert(KEY_TLS_CRT.into(), client_only.cert_pem.into_bytes());
        let report = check_step(&profile(), &before, &after, NOW);
        assert!(report.broken().all(|c| c.outcome
            == Outcome::Failed {
                reason: TrustFailure::WrongUsage {
                    usage: Usage::ServerAuth
                }
            }));
        assert_eq!(report.broken().count(), 4);

        // Later, the leaf expired: every store says so, and it is the leaf's failure.
        let later = NOW + time::Duration::days(365 * 6);
        let report = check_state(&profile(), &before, later);
        assert!(report.failures().all(|c| matches!(
            c.outcome,
            Outcome::Failed {
                reason: TrustFailure::Expired { .. }
            }
        )));
        assert_eq!(report.failures().count(), 12);
    }

    #[test]
    fn an_issuer_outside_its_validity_is_named() {
        // A CA not back-dated, and a leaf back-dated a day: for that day the leaf is
        // valid and its CA is not yet.
        let ca = Ca::generate(
            &CaParams::new("envoy-gateway").with_backdate(Duration::ZERO),
            NOW,
            &mut SeededEntropy::new(5),
        )
        .unwrap();
        let p = profile();
        let mut s = state(&ca, ca.cert_pem().as_bytes());
        let mut entropy = SeededEntropy::new(6);
        for (c, secret) in p.components.iter().zip(&ProfileObjects::of(&p).components) {
            let leaf = ca
                .issue_leaf(
                    &p.leaf_params(c)
                        .unwrap()
                        .with_backdate(Duration::from_secs(86_400)),
                    NOW,
                    &mut entropy,
                )
                .unwrap();
            s.secrets
                .get_mut(secret)
                .unwrap()
                .data
                .insert(KEY_TLS_CRT.into(), leaf.cert_pem.into_bytes());
        }
        assert!(check_state(&p, &s, NOW).failures().next().is_none());
        let report = check_state(&p, &s, NOW - time::Duration::hours(12));
        assert_eq!(report.failures().count(), 12);
        assert!(report.failures().all(|c| matches!(
            &c.outcome,
            Outcome::Failed { reason: TrustFailure::IssuerOutsideValidity { ca: f, not_before, .. } }
                if *f == ca.fingerprint() && *not_before == NOW
        )), "{report:#?}");
    }

    #[test]
    fn a_leaf_no_store_trusted_cannot_lose_trust() {
        // Every leaf chains to a CA outside its validity: no pair holds before the step.
        let dead = Ca::generate(
            &CaParams::new("envoy-gateway").with_backdate(Duration::ZERO),
            NOW,
            &mut SeededEntropy::new(5),
        )
        .unwrap();
        let p = profile();
        let mut before = state(&dead, dead.cert_pem().as_bytes());
        let mut entropy = SeededEntropy::new(6);
        for (c, secret) in p.components.iter().zip(&ProfileObjects::of(&p).components) {
            let leaf = dead
                .issue_leaf(
                    &p.leaf_params(c)
                        .unwrap()
                        .with_backdate(Duration::from_secs(86_400)),
                    NOW,
                    &mut entropy,
                )
                .unwrap();
            before
                .secrets
                .get_mut(secret)
                .unwrap()
                .data
                .insert(KEY_TLS_CRT.into(), leaf.cert_pem.into_bytes());
        }
        let at = NOW - time::Duration::hours(12);
        assert_eq!(check_state(&p, &before, at).failures().count(), 12);

        // Recovery, trust first: bundles with a new CA; the old leaves lose nothing.
        let new = Ca::generate(
            &CaParams::new("envoy-gateway"),
            at,
            &mut SeededEntropy::new(7),
        )
        .unwrap();
        let recovered = state(&new, new.cert_pem().as_bytes());
        let mut trust = before.clone();
        for (k, v) in &mut trust.secrets {
            v.data.insert(
                KEY_TRUST.into(),
                recovered.secrets[k].data[KEY_TRUST].clone(),
            );
        }
        trust.webhooks = recovered.webhooks.clone();
        let report = check_step(&p, &before, &trust, at);
        assert!(report.keeps_trust(), "{report:#?}");
        assert_eq!(
            report.failures().count(),
            24,
            "old leaves: before and after stores"
        );

        // But a new leaf presented to a store that does not trust it is still a break.
        let report = check_step(&p, &before, &recovered, at);
        assert!(!report.keeps_trust());
        assert!(
            report
                .broken()
                .all(|c| c.leaf_side == Side::After && c.store_side == Side::Before)
        );
    }

    #[test]
    fn empty_and_unreadable_stores_fail_on_their_side() {
        let old = ca(1);
        let before = state(&old, old.cert_pem().as_bytes());
        let webhook = ProfileObjects::of(&profile()).webhooks[0].clone();
        let mut after = before.clone();
        after
            .webhooks
            .insert(webhook.clone(), ObservedWebhook::new(vec![Vec::new()], "2"));
        let report = check_step(&profile(), &before, &after, NOW);
        let broken: Vec<_> = report.broken().collect();
        assert_eq!(broken.len(), 3);
        assert!(broken.iter().all(|c| c.outcome
            == Outcome::Failed {
                reason: TrustFailure::MissingBundle
            }));
        // Filling an empty caBundle is a repair, not a break.
        let report = check_step(&profile(), &after, &before, NOW);
        assert!(report.keeps_trust(), "{report:#?}");
        assert_eq!(report.failures().count(), 3, "before: empty");

        let mut junk = before.clone();
        junk.secrets
            .get_mut(&ObjectRef::new("ns", "envoy"))
            .unwrap()
            .data
            .insert(
                KEY_TRUST.into(),
                b"-----BEGIN CERTIFICATE-----\nnope\n".to_vec(),
            );
        let report = check_step(&profile(), &before, &junk, NOW);
        assert_eq!(report.broken().count(), 3);
        assert!(report.broken().all(|c| matches!(
            &c.outcome,
            Outcome::Failed { reason: TrustFailure::UnreadableBundle { reason } } if reason.contains("ca.crt")
        )));
    }

    fn p_params(p: &Profile, i: usize) -> crate::LeafParams {
        p.leaf_params(&p.components[i]).unwrap()
    }
}
