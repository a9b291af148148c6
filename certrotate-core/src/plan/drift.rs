//! Drift: a component Secret that lost the current CA from its `ca.crt`, or whose leaf
//! the current CA did not issue (replaced by hand, restored from a backup), found in any
//! phase and repaired before the phase advances.

use super::planner::{Cas, Planner, Target, signed_by, trusts};
use super::*;
use crate::error::Error;
use crate::generate::Ca;
use crate::trust::TrustStore;

impl Planner<'_> {
    /// What drifted in one component Secret since the current CA was distributed: its
    /// `ca.crt` lost the current CA ([`StepReason::TrustRestored`]), or its leaf was not
    /// issued by it ([`StepReason::LeafReissued`]). A leaf is re-issued only when no trust
    /// store that trusts it lacks the current CA: such a store gets the CA first, and the
    /// next run re-issues the leaf, so no peer loses trust on the way.
    pub(super) fn drift(&self, s: &ObservedSecret, current: &Ca) -> Option<StepReason> {
        let lacks = !s.data.get(KEY_TRUST).is_some_and(|b| trusts(b, current));
        if lacks {
            return Some(StepReason::TrustRestored);
        }
        let crt = s.data.get(KEY_TLS_CRT)?;
        (!signed_by(crt, current) && !self.reissue_waits(crt, current))
            .then_some(StepReason::LeafReissued)
    }

    /// Whether some trust store trusts the leaf `crt` but lacks `current`: re-issuing the
    /// leaf from `current` now would lose that store's trust.
    pub(super) fn reissue_waits(&self, crt: &[u8], current: &Ca) -> bool {
        let origin = crate::error::Origin::default();
        let stores = self
            .objects
            .components
            .iter()
            .filter_map(|r| self.observed.secrets.get(r)?.data.get(KEY_TRUST))
            .chain(
                self.objects
                    .webhooks
                    .iter()
                    .filter_map(|w| self.observed.webhooks.get(w))
                    .flat_map(|w| w.ca_bundles.iter()),
            );
        stores.into_iter().any(|b| {
            !trusts(b, current)
                && crate::trust::verify_pair_any_usage(crt, &origin, b, &origin, self.now)
                    .is_trusted()
        })
    }

    /// The write that repairs what [`Planner::drift`] found in `secret`: the current CA
    /// put first into a `ca.crt` that lost it (the bundling rule carries what was there),
    /// a leaf the current CA did not issue re-issued by it.
    pub(super) fn drift_target<'c>(
        &self,
        secret: &ObjectRef,
        current: &'c Ca,
        cas: &Cas,
    ) -> Result<Target<'c>, Error> {
        let Some(s) = self.observed.secrets.get(secret) else {
            return Ok(Target {
                trust: None,
                leaf_from: None,
            });
        };
        let lacks = !s.data.get(KEY_TRUST).is_some_and(|b| trusts(b, current));
        let foreign = s.data.get(KEY_TLS_CRT).is_some_and(|crt| {
            !signed_by(crt, current) && (!lacks || !self.reissue_waits(crt, current))
        });
        let trust = if lacks {
            Some(self.bundle(current, &self.existing_trust(secret, cas))?)
        } else {
            None
        };
        Ok(Target {
            trust,
            leaf_from: foreign.then_some(current),
        })
    }

    /// Before a rotation ends: every `ca.crt` and webhook `caBundle` that lost the current
    /// CA gets it back, every leaf it did not issue is re-issued (see [`Planner::drift`]).
    pub(super) fn repair_drift(&mut self, current: &Ca, cas: &Cas) -> Result<(), Error> {
        let mut repaired = false;
        for c in &self.profile.components {
            let secret = ObjectRef::new(&self.profile.namespace, &c.secret);
            let Some(s) = self.observed.secrets.get(&secret) else {
                continue;
            };
            let Some(reason) = self.drift(s, current) else {
                continue;
            };
            let target = self.drift_target(&secret, current, cas)?;
            self.component(c, &target, reason)?;
            repaired = true;
        }
        self.webhooks_trust(current, StepReason::TrustRestored)?;
        if repaired {
            self.restarts(StepReason::TrustRestored, true)?;
        }
        Ok(())
    }

    /// What a [`Summary::Repaired`] names: each component whose write this plan restores
    /// the current CA to, the webhook `caBundle`s that lacked it, and each component whose
    /// leaf it re-issues because the current CA did not issue it.
    pub(super) fn repaired(&self, webhooks: Vec<TrustStore>) -> (Vec<TrustStore>, Vec<ObjectRef>) {
        let mut stores = Vec::new();
        let mut leaves = Vec::new();
        for step in &self.steps {
            match step {
                Step::Secret(c) if matches!(c.reason, StepReason::TrustRestored) => {
                    stores.push(TrustStore::Component {
                        secret: c.secret.clone(),
                    });
                    if c.data.contains_key(KEY_TLS_CRT) {
                        leaves.push(c.secret.clone());
                    }
                }
                Step::Secret(c) if matches!(c.reason, StepReason::LeafReissued) => {
                    leaves.push(c.secret.clone());
                }
                Step::Secret(_) | Step::Webhook(_) | Step::Restart(_) | Step::Note(_) => {}
            }
        }
        stores.extend(webhooks);
        (stores, leaves)
    }
}
