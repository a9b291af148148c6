//! What each trust store holds and which CA issued each leaf: the views `status` shows
//! mid-rotation ("which CAs does this bundle hold, and which of them signed that leaf?").

use serde::Serialize;
use time::OffsetDateTime;

use super::{KEY_TLS_CRT, KEY_TRUST, Observed, ProfileObjects, RotationState};
use crate::Fingerprint;
use crate::trust::TrustStore;

/// One CA certificate of a trust store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CaView {
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// Its subject (with its serial number, certrotate's and certgen's CAs tell their
    /// generations apart by name).
    pub subject: String,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Its role in the rotation, where the persisted state names it: `current`, `next` or
    /// `previous`.
    pub role: Option<&'static str>,
}

/// A trust store and what it holds, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StoreView {
    /// The store.
    pub store: TrustStore,
    /// Its certificates, in order (an unreadable store holds none here).
    pub cas: Vec<CaView>,
}

/// A component's leaf and the CA that issued it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LeafView {
    /// The component Secret.
    pub secret: super::ObjectRef,
    /// When the leaf expires.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// The leaf's issuer, by name.
    pub issuer: String,
    /// The CA among those of the rotation (the CA Secret's, and every store's) that
    /// verifies it now; `None` if none does.
    pub issued_by: Option<CaView>,
}

/// The views of `observed`, at `now`. Unreadable PEM is shown as holding nothing (the
/// checks name it); nothing here fails.
pub(crate) fn views(
    objects: &ProfileObjects,
    observed: &Observed,
    state: Option<&RotationState>,
    now: OffsetDateTime,
) -> (Vec<StoreView>, Vec<LeafView>) {
    let role = |fp: &Fingerprint| -> Option<&'static str> {
        let state = state?;
        if state.current.as_ref() == Some(fp) {
            Some("current")
        } else if state.next.as_ref() == Some(fp) {
            Some("next")
        } else if state.previous.as_ref() == Some(fp) {
            Some("previous")
        } else {
            None
        }
    };
    let cas_of = |pem: &[u8]| -> Vec<CaView> {
        crate::inspect_pem(pem, &crate::Origin::default(), now)
            .map(|certs| {
                certs
                    .into_iter()
                    .map(|c| CaView {
                        role: role(&c.fingerprint),
                        fingerprint: c.fingerprint,
                        subject: c.subject,
                        not_after: c.not_after,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut stores = Vec::new();
    for component in &objects.components {
        if let Some(pem) = observed
            .secrets
            .get(component)
            .and_then(|s| s.data.get(KEY_TRUST))
        {
            stores.push(StoreView {
                store: TrustStore::Component {
                    secret: component.clone(),
                },
                cas: cas_of(pem),
            });
        }
    }
    for webhook in &objects.webhooks {
        if let Some(w) = observed.webhooks.get(webhook) {
            for (i, bundle) in w.ca_bundles.iter().enumerate() {
                stores.push(StoreView {
                    store: TrustStore::Webhook {
                        webhook: webhook.clone(),
                        index: i + 1,
                    },
                    cas: cas_of(bundle),
                });
            }
        }
    }
    // Every CA the rotation knows: the CA Secret's certificates, then the stores'.
    let mut known: Vec<(CaView, Vec<u8>)> = Vec::new();
    let mut learn = |pem: &[u8]| {
        let Ok(ders) = crate::pem_blocks::certificates(pem, &crate::Origin::default()) else {
            return;
        };
        for der in ders {
            let fp = Fingerprint::of(&der);
            if known.iter().any(|(k, _)| k.fingerprint == fp) {
                continue;
            }
            if let Some(view) = cas_of(
                crate::pem_blocks::encode_certificates(std::iter::once(der.as_slice())).as_bytes(),
            )
            .pop()
            {
                known.push((view, der));
            }
        }
    };
    if let Some(ca) = observed.secrets.get(&objects.ca_secret) {
        for key in [super::KEY_CA_CRT, super::KEY_NEXT_CA_CRT] {
            if let Some(pem) = ca.data.get(key) {
                learn(pem);
            }
        }
    }
    for component in &objects.components {
        if let Some(pem) = observed
            .secrets
            .get(component)
            .and_then(|s| s.data.get(KEY_TRUST))
        {
            learn(pem);
        }
    }
    let mut leaves = Vec::new();
    for component in &objects.components {
        let Some(crt) = observed
            .secrets
            .get(component)
            .and_then(|s| s.data.get(KEY_TLS_CRT))
        else {
            continue;
        };
        let Ok(Some(leaf)) = crate::inspect_pem(crt, &crate::Origin::default(), now)
            .map(|certs| certs.into_iter().next())
        else {
            continue;
        };
        let issued_by = known.iter().find_map(|(view, der)| {
            let pem = crate::pem_blocks::encode_certificates(std::iter::once(der.as_slice()));
            crate::verify_chain(
                crt,
                &crate::Origin::default(),
                pem.as_bytes(),
                &crate::Origin::default(),
                now,
            )
            .is_ok_and(|v| v.is_trusted())
            .then(|| view.clone())
        });
        leaves.push(LeafView {
            secret: component.clone(),
            not_after: leaf.not_after,
            issuer: leaf.issuer,
            issued_by,
        });
    }
    (stores, leaves)
}
