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
//! expired root, though rustls does not look). rustls-webpki and Go search every candidate
//! issuer; OpenSSL and BoringSSL (Envoy) take the first certificate of the store that
//! names itself the issuer and fail if it does not do, so a chain is also built their way
//! and must hold too (a decoy CA listed first is refused: `FirstMatchRefused`).
//!
//! Pure: no I/O, and `now` is a parameter.
//!
//! - `report.rs`: what a check says: [`Side`], [`TrustStore`], [`Usage`], [`TrustFailure`],
//!   [`Outcome`], [`PairCheck`] and [`TrustReport`], and which failures a step is to blame for.
//! - `chain.rs`: one leaf against one store, with rustls-webpki: parsing a `tls.crt` and a
//!   bundle, building the path (rustls-webpki's, then OpenSSL's and BoringSSL's first
//!   match), the names a leaf must serve, and typing webpki's errors. The crate's only
//!   chain verifier: `check`, `verify_chain` and the planner use it too.
//! - `judge.rs`: the trust gate's decision on a plan ([`judge`]: keep, at risk for a
//!   single-step rotation, or refuse), on the state after it ([`Observed::after`]).
//! - here: [`check_step`] and [`check_state`], which pair every leaf with every store on
//!   each side of a step.

mod chain;
mod judge;
mod report;
#[cfg(test)]
pub(crate) mod tests;

pub use judge::{GateDecision, judge};
pub use report::{
    FirstMatchProblem, Outcome, PairCheck, Side, TrustFailure, TrustReport, TrustStore, Usage,
};

use time::OffsetDateTime;

use crate::error::Origin;
use crate::generate::ExtendedKeyUsage;
use crate::plan::{KEY_TLS_CRT, KEY_TRUST, ObjectRef, Observed, WebhookRef};
use crate::profile::Profile;
use chain::{Bundle, Leaf, Name, Verifier, unix_time};

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
    check_step_with(profile, before, after, now, &Verifier::new())
}

/// [`check_step`], verifying signatures with `verifier` (the tests count them).
fn check_step_with(
    profile: &Profile,
    before: &Observed,
    after: &Observed,
    now: OffsetDateTime,
    verifier: &Verifier,
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
                Some(pem) => Leaf::parse(
                    pem,
                    &Origin::new(format!("secret {secret} key {KEY_TLS_CRT}")),
                    now,
                ),
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
                (Ok(leaf), Ok(bundle)) => leaf.verify(bundle, &usages, &l.names, time, verifier),
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
    // The (leaf, store) pairs that failed before the step, as both were: a step cannot
    // break what was already broken. It repairs such a pair or leaves it broken, and it
    // is never to blame for it, whichever side of the leaf or the store fails (a leaf of
    // an expired, weak or otherwise unusable CA; a `caBundle` re-created empty; a
    // `ca.crt` that lost the CA of the leaves). Refusing would leave no way to repair it.
    let broken_before: Vec<(&ObjectRef, &TrustStore)> = report
        .checks
        .iter()
        .filter(|c| {
            c.leaf_side == Side::Before && c.store_side == Side::Before && !c.outcome.is_trusted()
        })
        .map(|c| (&c.leaf, &c.trusted_by))
        .collect();
    let blame: Vec<bool> = report
        .checks
        .iter()
        .map(|c| c.touches_a_write() && !broken_before.contains(&(&c.leaf, &c.trusted_by)))
        .collect();
    for (c, breaks) in report.checks.iter_mut().zip(blame) {
        c.breaks = breaks;
    }
    report
}

/// Checks one state on its own: every leaf against every store, as they are.
pub fn check_state(profile: &Profile, observed: &Observed, now: OffsetDateTime) -> TrustReport {
    check_step(profile, observed, observed, now)
}

/// One leaf (the first certificate of `leaf`, the rest its chain) against one store, at
/// `now`, for each of `usages`, with no names: the chain check of [`check_step`], for the
/// callers that judge one pair (`check`, [`verify_chain`](crate::verify_chain), the
/// planner), so that the crate has one chain verifier.
pub(crate) fn verify_pair(
    leaf: &[u8],
    leaf_origin: &Origin,
    bundle: &[u8],
    bundle_origin: &Origin,
    usages: &[Usage],
    now: OffsetDateTime,
) -> Outcome {
    let parsed = Leaf::parse(leaf, leaf_origin, now)
        .and_then(|l| Bundle::parse(bundle, bundle_origin, now).map(|b| (l, b)));
    match parsed {
        Ok((leaf, bundle)) => leaf.verify(&bundle, usages, &[], unix_time(now), &Verifier::new()),
        Err(reason) => Outcome::Failed { reason },
    }
}

/// [`verify_pair`] for a leaf of either TLS usage: trusted if the chain holds for
/// serverAuth or for clientAuth (a leaf whose extended key usage allows neither fails
/// with [`TrustFailure::WrongUsage`] for serverAuth).
pub(crate) fn verify_pair_any_usage(
    leaf: &[u8],
    leaf_origin: &Origin,
    bundle: &[u8],
    bundle_origin: &Origin,
    now: OffsetDateTime,
) -> Outcome {
    let verify = |usage| verify_pair(leaf, leaf_origin, bundle, bundle_origin, &[usage], now);
    match verify(Usage::ServerAuth) {
        Outcome::Failed {
            reason: TrustFailure::WrongUsage { .. },
        } => match verify(Usage::ClientAuth) {
            trusted @ Outcome::Trusted { .. } => trusted,
            Outcome::Failed {
                reason: TrustFailure::WrongUsage { .. },
            } => Outcome::Failed {
                reason: TrustFailure::WrongUsage {
                    usage: Usage::ServerAuth,
                },
            },
            other @ Outcome::Failed { .. } => other,
        },
        other => other,
    }
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
pub(crate) fn usages(profile: &Profile) -> Vec<Usage> {
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
